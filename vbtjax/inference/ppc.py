"""Posterior predictive checks: do the posterior's simulated data reproduce the observed data?

:func:`predictive_check` compares observed data with draws from the posterior predictive distribution (one simulated
data set per posterior draw, observation noise included) and reports the coverage of the central predictive
intervals, the R² of the predictive mean, and a one-line verdict (:attr:`PPCResult.fits`). A model that does not fit
its data should not be used for "what if" questions, however well its sampler converged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .. import files

__all__ = ["PPCResult", "predictive_check"]

MIN_R2 = 0.5
"""Below this R² of the predictive mean the model is said not to reproduce the data."""
MIN_COVERAGE = 0.5
"""Below this fraction of observations inside their 90 % predictive intervals the model is said not to fit."""


class PPCResult:
    """A posterior predictive check (:func:`predictive_check`).

    **Fields:** `observed` ``(*shape)``; `mean`, `lower`, `upper` ``(*shape)``: the predictive mean and the central
    `prob` interval; `coverage`: fraction of observations inside their interval (about `prob` when the model fits);
    `r2`: ``1 - SS(observed - mean) / SS(observed - centre)``, where the centre is the observed mean along `axis`
    (per channel) or overall; `r2_per`: the same per index of the last axis; `fits`: ``r2 >= min_r2`` and
    ``coverage >= min_coverage``; `message`: one line that says so."""

    def __init__(self, observed, mean, lower, upper, prob, coverage, r2, r2_per, min_r2, min_coverage):
        self.observed, self.mean, self.lower, self.upper = observed, mean, lower, upper
        self.prob, self.coverage, self.r2, self.r2_per = float(prob), float(coverage), float(r2), r2_per
        self.min_r2, self.min_coverage = float(min_r2), float(min_coverage)
        self.fits = bool(self.r2 >= self.min_r2 and self.coverage >= self.min_coverage)

    @property
    def message(self) -> str:
        verdict = "the model reproduces the data" if self.fits else "the model does NOT reproduce the data"
        return (
            f"posterior predictive check: R² {self.r2:.2f} (needs >= {self.min_r2:g}), {self.prob:.0%} interval "
            f"coverage {self.coverage:.2f} (needs >= {self.min_coverage:g}): {verdict}"
        )

    def to_dict(self) -> dict[str, Any]:
        """The figures as plain Python values (for JSON)."""
        return {
            "r2": self.r2,
            "coverage": self.coverage,
            "prob": self.prob,
            "fits": self.fits,
            "min_r2": self.min_r2,
            "min_coverage": self.min_coverage,
            "r2_per_channel": np.asarray(self.r2_per).tolist(),
            "message": self.message,
        }

    def plot(
        self,
        path: str | Path | None = None,
        *,
        channels: Any = None,
        n: int = 6,
        xlabel: str = "window",
        ylabel: str = "feature",
        time: Any = None,
    ):
        """Observed data (dots) against the predictive mean (line) and interval (band) for `n` channels (default:
        those whose data change most); saved to `path` if given. Returns the matplotlib figure."""
        from matplotlib.figure import Figure  # no pyplot: the caller's backend is left alone

        obs = np.asarray(self.observed)
        if obs.ndim == 1:
            obs, mean, lo, hi = obs[:, None], self.mean[:, None], self.lower[:, None], self.upper[:, None]
        else:
            mean, lo, hi = self.mean, self.lower, self.upper
        if channels is None:
            channels = np.argsort(-(obs.max(0) - obs.min(0)))[:n]
        t = np.arange(obs.shape[0]) if time is None else np.asarray(time)
        fig = Figure(figsize=(8, 4.5))
        ax = fig.subplots()
        for k in channels:
            (line,) = ax.plot(t, mean[:, k], "-", lw=1.2)
            ax.fill_between(t, lo[:, k], hi[:, k], color=line.get_color(), alpha=0.2, lw=0)
            ax.plot(t, obs[:, k], ".", color=line.get_color(), ms=4)
        ax.set(
            title=f"posterior predictive check: R² {self.r2:.2f}, {self.prob:.0%} coverage {self.coverage:.2f}"
            + ("" if self.fits else " (MISFIT)"),
            xlabel=xlabel,
            ylabel=ylabel,
        )
        fig.tight_layout()
        if path is not None:
            with files.replacing(path) as tmp:
                fig.savefig(tmp, dpi=110)
        return fig


def predictive_check(
    observed: Any,
    predictive: Any,
    *,
    prob: float = 0.9,
    axis: int | None = 0,
    min_r2: float = MIN_R2,
    min_coverage: float = MIN_COVERAGE,
) -> PPCResult:
    """Posterior predictive check of `observed` ``(*shape)`` against `predictive` ``(S, *shape)``: S data sets
    simulated from S posterior draws, observation noise included.

    `axis`: the axis of `observed` along which each channel's own mean is the baseline of the R² (``0`` for data
    laid out ``(time, channel)``, so that per-channel offsets are not counted as explained; ``None``: the overall
    mean). Raises ``ValueError`` on mismatched shapes or non-finite values."""
    obs = np.asarray(observed, dtype=float)
    pred = np.asarray(predictive, dtype=float)
    if pred.ndim != obs.ndim + 1 or pred.shape[1:] != obs.shape:
        raise ValueError(
            f"predictive_check: predictive has shape {pred.shape}; expected (draws, *{obs.shape}) for observed "
            f"{obs.shape}."
        )
    if pred.shape[0] < 10:
        raise ValueError(f"predictive_check: {pred.shape[0]} predictive draws are too few; give at least 10.")
    if not (np.all(np.isfinite(obs)) and np.all(np.isfinite(pred))):
        raise ValueError("predictive_check: observed or predictive contains NaN or inf.")
    if not 0 < prob < 1:
        raise ValueError(f"predictive_check: prob must lie in (0, 1), got {prob}.")
    lo, hi = np.quantile(pred, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
    mean = pred.mean(axis=0)
    coverage = float(np.mean((obs >= lo) & (obs <= hi)))
    centre = obs.mean(axis=axis, keepdims=True) if axis is not None else obs.mean()
    ss_res = (obs - mean) ** 2
    ss_tot = (obs - centre) ** 2
    r2 = 1.0 - ss_res.sum() / max(ss_tot.sum(), 1e-300)
    if obs.ndim >= 2:
        red = tuple(range(obs.ndim - 1))
        r2_per = 1.0 - ss_res.sum(axis=red) / np.maximum(ss_tot.sum(axis=red), 1e-300)
    else:
        r2_per = np.asarray([r2])
    return PPCResult(obs, mean, lo, hi, prob, coverage, r2, r2_per, min_r2, min_coverage)
