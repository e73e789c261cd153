"""MCMC diagnostics as data: rank-normalised split R-hat, bulk and tail effective sample sizes, summaries,
divergence counts, posterior z-scores and shrinkage against a known truth, and export to ArviZ.

Samples are laid out ``(chains, draws, *shape)``, one array per parameter, as NUTS samplers return them with
``group_by_chain``. Every diagnostic returns an array of shape ``shape`` (one value per scalar element). The
estimators follow Vehtari, Gelman, Simpson, Carpenter and Bürkner (2021), "Rank-normalization, folding, and
localization: an improved R-hat for assessing convergence of MCMC", and agree with ``arviz.rhat(method="rank")``,
``arviz.ess(method="bulk")`` and ``arviz.ess(method="tail")`` to floating-point rounding. They are computed here in
NumPy (FFT autocovariances, Geyer's initial monotone sequence); ArviZ is imported only by
:func:`to_inference_data`, so ``import vbtjax`` stays light.

For synthetic studies (data simulated from known parameters), :func:`z_scores` and :func:`shrinkage` give
Betancourt's posterior z-score ``(mean - truth) / sd`` and shrinkage ``1 - var_post / var_prior``: a well-identified,
well-calibrated parameter has ``|z|`` of order 1 and shrinkage near 1.

Typical use::

    stats = summary(samples)                 # {"coupling.a": {"mean": ..., "rhat": ..., ...}, ...}
    print(format_summary(stats))
    idata = to_inference_data(samples, sample_stats={"diverging": info.is_divergent, "step_size": h})
    save_netcdf(idata, "run.nc")             # arviz.from_netcdf("run.nc") for ArviZ's plots
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import fft as _fft
from scipy import special as _special
from scipy import stats as _stats

from .. import files

__all__ = [
    "divergence_summary",
    "ess_bulk",
    "ess_tail",
    "format_summary",
    "save_netcdf",
    "shrinkage",
    "split_rhat",
    "summary",
    "to_inference_data",
    "z_scores",
]

MIN_DRAWS = 4
"""Fewest draws per chain the diagnostics accept (as ArviZ)."""

# Sampler-statistic names of BlackJAX and NumPyro -> the names ArviZ's plots expect.
_STAT_ALIASES = {
    "is_divergent": "diverging",
    "divergent": "diverging",
    "num_integration_steps": "n_steps",
    "num_steps": "n_steps",
    "accept_prob": "acceptance_rate",
    "num_trajectory_expansions": "tree_depth",
    "logdensity": "lp",
    "log_density": "lp",
}

# ----------------------------------------------------------------------------------------------------------------
# validation and layout


def _as_draws(x: Any, name: str) -> np.ndarray:
    """Samples ``(chains, draws, *shape)`` as a finite float64 array, or a ValueError naming the variable."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name}: samples must be a numeric array laid out (chains, draws, *shape); {e}") from e
    if arr.ndim < 2:
        raise ValueError(
            f"{name}: samples must be laid out (chains, draws, *shape), got shape {arr.shape} "
            f"({arr.ndim} dimension{'s' if arr.ndim != 1 else ''}); for one chain of draws use x[None]."
        )
    if arr.shape[0] < 1:
        raise ValueError(f"{name}: samples have no chains (shape {arr.shape}).")
    if arr.shape[1] < MIN_DRAWS:
        raise ValueError(
            f"{name}: need at least {MIN_DRAWS} draws per chain, got {arr.shape[1]} (shape {arr.shape}, "
            "laid out (chains, draws, *shape))."
        )
    finite = np.isfinite(arr)
    if not finite.all():
        n_nan = int(np.isnan(arr).sum())
        n_inf = int((~finite).sum()) - n_nan
        first = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(
            f"{name}: samples contain {n_nan} NaN and {n_inf} infinite value(s), the first at index {first} "
            "(chain, draw, ...); diagnostics need finite draws (a NaN usually means the log density or the "
            "simulation diverged)."
        )
    return arr


def _flat(arr: np.ndarray) -> np.ndarray:
    """``(chains, draws, *shape)`` -> ``(K, chains, draws)``, K = prod(shape), contiguous along draws."""
    c, n = arr.shape[:2]
    k = math.prod(arr.shape[2:])
    return np.ascontiguousarray(np.moveaxis(arr.reshape(c, n, k), 2, 0))


def _pooled(x: np.ndarray) -> np.ndarray:
    """``(K, M, n)`` -> ``(K, M * n)``: all chains and draws of each variable together."""
    return x.reshape(x.shape[0], x.shape[1] * x.shape[2])


def _split(x: np.ndarray) -> np.ndarray:
    """``(K, M, n)`` -> ``(K, 2M, n // 2)``: each chain cut into its first and last halves (the middle draw of an
    odd-length chain is dropped, as ArviZ does)."""
    half = x.shape[-1] // 2
    return np.concatenate([x[..., :half], x[..., x.shape[-1] - half :]], axis=1)


def _z_scale(x: np.ndarray) -> np.ndarray:
    """Rank-normalise each of the K variables over all its chains and draws (average ranks for ties, Blom's
    offset 3/8), ``(K, M, n)`` -> same shape."""
    flat = _pooled(x)
    size = flat.shape[1]
    ranks = _stats.rankdata(flat, method="average", axis=1)
    return _special.ndtri((ranks - 3 / 8) / (size - 2 * 3 / 8 + 1)).reshape(x.shape)  # the normal quantile


def _rhat_core(x: np.ndarray) -> np.ndarray:
    """Classic potential scale reduction of ``(K, M, n)`` chains -> ``(K,)`` (NaN for a constant variable)."""
    n = x.shape[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        between = n * np.var(x.mean(axis=-1), axis=-1, ddof=1)
        within = np.mean(np.var(x, axis=-1, ddof=1), axis=-1)
        return np.sqrt((between / within + n - 1) / n)


def _ess_core(x: np.ndarray, relative: bool = False) -> np.ndarray:
    """Effective sample size of each of K variables from ``(K, M, n)`` chains -> ``(K,)``.

    Stan's estimator: multi-chain autocorrelations from FFT autocovariances, truncated by Geyer's initial positive
    sequence and made monotone (initial monotone sequence), as ``arviz.stats.diagnostics._ess``."""
    k, m, n = x.shape
    out = np.empty(k)
    if k == 0:
        return out
    nfft = _fft.next_fast_len(2 * n, real=True)
    block = max(1, (1 << 23) // (m * nfft))  # bound the FFT buffers to ~100 MB
    for s in range(0, k, block):
        out[s : s + block] = _ess_block(x[s : s + block], nfft)
    const = (x.max(axis=(1, 2)) - x.min(axis=(1, 2))) < np.finfo(float).resolution
    out[const] = m * n
    return out / (m * n) if relative else out


def _ess_block(x: np.ndarray, nfft: int) -> np.ndarray:
    k, m, n = x.shape
    xc = x - x.mean(axis=-1, keepdims=True)
    f = np.fft.rfft(xc, n=nfft, axis=-1)
    acov = np.fft.irfft(f.real**2 + f.imag**2, n=nfft, axis=-1)[..., :n] / n  # (k, m, n)
    mean_acov = acov.mean(axis=1)  # (k, n)
    mean_var = mean_acov[:, 0] * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if m > 1:
        var_plus = var_plus + np.var(x.mean(axis=-1), axis=-1, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = 1.0 - (mean_var[:, None] - mean_acov) / var_plus[:, None]  # (k, n) autocorrelation by lag
    rho[:, 0] = 1.0
    # Pair sums P_j = rho[2j] + rho[2j+1]. Geyer's initial positive sequence looks at pairs j = 1, 2, ... up to
    # kmax (lags below n - 1) while the previous pair sum is positive; kstar is the last pair it looks at.
    n_pairs = n // 2
    pairs = rho[:, 0 : 2 * n_pairs : 2] + rho[:, 1 : 2 * n_pairs : 2]
    kmax = (n - 1) // 2 - 1
    positive = pairs[:, :kmax] > 0.0
    kstar = np.cumprod(positive, axis=1).sum(axis=1) if kmax > 0 else np.zeros(k, dtype=int)
    # Pairs before kstar enter monotone (running minimum); the even lag of pair kstar enters once, if its pair
    # sum is non-negative or it is positive itself.
    monotone = np.minimum.accumulate(pairs, axis=1)
    used = np.arange(n_pairs)[None, :] < kstar[:, None]
    head = np.where(used, monotone, 0.0).sum(axis=1)
    rows = np.arange(k)
    last = rho[rows, 2 * kstar]
    take_last = ((kstar >= 1) & (pairs[rows, kstar] >= 0.0)) | (last > 0.0)
    tau = -1.0 + 2.0 * head + np.where(take_last, last, 0.0)
    total = m * n
    tau = np.maximum(tau, 1.0 / np.log10(total))
    return total / tau


def _tail_probs(prob: float | Sequence[float]) -> tuple[float, float]:
    lo, hi = (prob, 1.0 - prob) if np.ndim(prob) == 0 else tuple(prob)
    if not (0.0 < lo < 1.0 and 0.0 < hi < 1.0):
        raise ValueError(f"tail probabilities must lie in (0, 1), got {(lo, hi)}.")
    return float(lo), float(hi)


def _rhat_flat(x: np.ndarray, z_split: np.ndarray | None = None) -> np.ndarray:
    xs = _split(x)
    bulk = _rhat_core(_z_scale(xs) if z_split is None else z_split)
    med = np.median(_pooled(xs), axis=1)[:, None, None]
    folded = _rhat_core(_z_scale(np.abs(xs - med)))
    return np.maximum(bulk, folded)


def _ess_bulk_flat(x: np.ndarray, relative: bool, z_split: np.ndarray | None = None) -> np.ndarray:
    return _ess_core(_z_scale(_split(x)) if z_split is None else z_split, relative)


def _ess_tail_flat(x: np.ndarray, probs: tuple[float, float], relative: bool) -> np.ndarray:
    flat = _pooled(x)
    out = []
    for p in probs:
        q = np.quantile(flat, p, axis=1)  # R's type 7, as ArviZ
        out.append(_ess_core(_split((x <= q[:, None, None]).astype(np.float64)), relative))
    return np.minimum(*out)


def _need_chains(arr: np.ndarray, name: str) -> None:
    if arr.shape[0] < 2:
        raise ValueError(
            f"{name}: R-hat compares chains and needs at least 2, got {arr.shape[0]} (shape {arr.shape}, laid out "
            "(chains, draws, *shape)); run several chains from dispersed starts (ess_bulk/ess_tail work with one)."
        )


# ----------------------------------------------------------------------------------------------------------------
# public diagnostics


def split_rhat(x: Any, *, name: str = "samples") -> np.ndarray:
    """Rank-normalised split R-hat: the larger of the bulk R-hat (split chains, rank-normalised) and the tail one
    (the same on draws folded about the median). Equals ``arviz.rhat(method="rank")``; values above 1.01 signal
    chains that have not mixed.

    **Arguments:**
    - `x`: samples ``(chains, draws, *shape)``, at least 2 chains and 4 draws.
    - `name`: the variable's name, used in error messages.

    **Returns:** R-hat, shape ``shape`` (NaN for a variable that is constant over all draws).
    """
    arr = _as_draws(x, name)
    _need_chains(arr, name)
    return _rhat_flat(_flat(arr)).reshape(arr.shape[2:])


def ess_bulk(x: Any, *, relative: bool = False, name: str = "samples") -> np.ndarray:
    """Bulk effective sample size: the ESS of the rank-normalised split chains, a measure of how well the centre of
    the distribution (means, medians) is estimated. Equals ``arviz.ess(method="bulk")``.

    **Arguments:**
    - `x`: samples ``(chains, draws, *shape)``, at least 4 draws (one chain is fine).
    - `relative`: return ESS per draw (divided by ``chains * 2 * (draws // 2)``, the split-chain count).
    - `name`: the variable's name, used in error messages.

    **Returns:** ESS, shape ``shape``.
    """
    arr = _as_draws(x, name)
    return _ess_bulk_flat(_flat(arr), relative).reshape(arr.shape[2:])


def ess_tail(
    x: Any, *, prob: float | Sequence[float] = (0.05, 0.95), relative: bool = False, name: str = "samples"
) -> np.ndarray:
    """Tail effective sample size: the smaller of the ESS of the indicators ``x <= q_lo`` and ``x <= q_hi`` at the
    5% and 95% quantiles, a measure of how well the tails (interval ends) are estimated. Equals
    ``arviz.ess(method="tail")``.

    **Arguments:**
    - `x`: samples ``(chains, draws, *shape)``, at least 4 draws.
    - `prob`: the two tail probabilities ``(lo, hi)``, or one ``p`` meaning ``(p, 1 - p)``.
    - `relative`: return ESS per draw, as in :func:`ess_bulk`.
    - `name`: the variable's name, used in error messages.

    **Returns:** ESS, shape ``shape``.
    """
    probs = _tail_probs(prob)
    arr = _as_draws(x, name)
    return _ess_tail_flat(_flat(arr), probs, relative).reshape(arr.shape[2:])


def _quantile_key(p: float) -> str:
    whole, _, frac = f"{100.0 * p:.10g}".partition(".")
    return "q" + whole.zfill(2) + (f"_{frac}" if frac else "")


def summary(samples: Mapping[str, Any], *, prob: float = 0.9) -> dict[str, dict[str, np.ndarray]]:
    """Posterior summary and convergence diagnostics of every variable.

    **Arguments:**
    - `samples`: ``{name: (chains, draws, *shape)}``.
    - `prob`: mass of the central (equal-tailed) interval.

    **Returns:** ``{name: {stat: array of shape shape}}`` with stats, in this order: ``mean``; ``sd`` (ddof=1 over
    all chains and draws); the lower and upper quantiles ``(1 - prob) / 2`` and ``(1 + prob) / 2``, keyed ``q`` +
    the percentage with its integer part padded to two digits and ``_`` for the decimal point (``q05``, ``q95``
    for ``prob=0.9``; ``q02_5``, ``q97_5`` for 0.95); ``rhat`` (:func:`split_rhat`; NaN when there is a single
    chain); ``ess_bulk`` and ``ess_tail`` (:func:`ess_bulk`, :func:`ess_tail` at the 5%/95% quantiles whatever
    `prob`). See :func:`format_summary` for a table.
    """
    if not 0.0 < prob < 1.0:
        raise ValueError(f"prob must lie in (0, 1), got {prob}.")
    lo = (1.0 - prob) / 2.0
    hi = 1.0 - lo
    out: dict[str, dict[str, np.ndarray]] = {}
    for name, value in samples.items():
        arr = _as_draws(value, name)
        shape = arr.shape[2:]
        x = _flat(arr)
        flat = _pooled(x)
        q_lo, q_hi = np.quantile(flat, [lo, hi], axis=1)
        z_split = _z_scale(_split(x))  # shared by the bulk R-hat and the bulk ESS
        rhat = _rhat_flat(x, z_split) if arr.shape[0] >= 2 else np.full(x.shape[0], np.nan)
        stats = {
            "mean": flat.mean(axis=1),
            "sd": flat.std(axis=1, ddof=1),
            _quantile_key(lo): q_lo,
            _quantile_key(hi): q_hi,
            "rhat": rhat,
            "ess_bulk": _ess_bulk_flat(x, False, z_split),
            "ess_tail": _ess_tail_flat(x, (0.05, 0.95), False),
        }
        out[name] = {k: v.reshape(shape) for k, v in stats.items()}
    return out


def _fmt(stat: str, v: float) -> str:
    if not np.isfinite(v):
        return str(v)
    if stat == "rhat":
        return f"{v:.3f}"
    if stat.startswith("ess"):
        return f"{v:.0f}"
    return f"{v:.4g}"


def format_summary(summary_dict: Mapping[str, Mapping[str, Any]]) -> str:
    """A plain-text table of a :func:`summary`: one row per scalar element (``coupling.a``, ``model.x0[3]``,
    ``w[1,2]``), one column per statistic, in the summary's order."""
    rows: list[list[str]] = []
    columns: list[str] = []
    for name, stats in summary_dict.items():
        arrays = {k: np.asarray(v) for k, v in stats.items()}
        for k in arrays:
            if k not in columns:
                columns.append(k)
        shape = next(iter(arrays.values())).shape if arrays else ()
        for idx in np.ndindex(shape):
            label = name if not idx else f"{name}[{','.join(str(i) for i in idx)}]"
            rows.append([label] + [_fmt(k, float(arrays[k][idx])) if k in arrays else "" for k in columns])
    header = ["name", *columns]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [header, *rows]
    return "\n".join(
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths, strict=True)))
        for r in lines
    )


def _check_keys(given: Mapping[str, Any], samples: Mapping[str, Any], what: str) -> None:
    unknown = [k for k in given if k not in samples]
    if unknown:
        raise ValueError(
            f"{what} has keys {unknown} that are not in samples; sample names are {sorted(samples)}. (Every key of "
            f"{what} must name a sampled variable; variables without an entry are left out.)"
        )


def _reference(value: Any, shape: tuple[int, ...], what: str, name: str) -> np.ndarray:
    v = np.asarray(value, dtype=np.float64)
    try:
        v = np.broadcast_to(v, shape)
    except ValueError:
        raise ValueError(
            f"{what}[{name!r}] has shape {v.shape}, which does not broadcast to the sample shape {shape} of {name!r}."
        ) from None
    if not np.isfinite(v).all():
        raise ValueError(f"{what}[{name!r}] contains non-finite values.")
    return v


def z_scores(samples: Mapping[str, Any], truth: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Posterior z-scores ``(posterior mean - truth) / posterior sd`` (Betancourt), for synthetic studies where the
    data were simulated from known parameters. ``|z|`` well above 2-3 flags a posterior concentrated away from
    the truth (bias, or an overconfident, too narrow posterior).

    **Arguments:**
    - `samples`: ``{name: (chains, draws, *shape)}``.
    - `truth`: ``{name: true value}``, each broadcastable to ``shape``; its keys must be sample names (a subset
      is fine).

    **Returns:** ``{name: z}``, shape ``shape``, for the names in `truth`.
    """
    _check_keys(truth, samples, "truth")
    out = {}
    for name, t in truth.items():
        arr = _as_draws(samples[name], name)
        t = _reference(t, arr.shape[2:], "truth", name)
        out[name] = (arr.mean(axis=(0, 1)) - t) / arr.std(axis=(0, 1), ddof=1)
    return out


def shrinkage(samples: Mapping[str, Any], prior_sd: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Posterior shrinkage ``1 - posterior variance / prior variance`` (Betancourt): near 1 when the data inform a
    parameter, near 0 when the posterior is the prior (not identified).

    **Arguments:**
    - `samples`: ``{name: (chains, draws, *shape)}``.
    - `prior_sd`: ``{name: prior standard deviation}``, each positive and broadcastable to ``shape``; its keys
      must be sample names (a subset is fine).

    **Returns:** ``{name: shrinkage}``, shape ``shape``, for the names in `prior_sd`.
    """
    _check_keys(prior_sd, samples, "prior_sd")
    out = {}
    for name, s in prior_sd.items():
        arr = _as_draws(samples[name], name)
        s = _reference(s, arr.shape[2:], "prior_sd", name)
        if (s <= 0).any():
            raise ValueError(f"prior_sd[{name!r}] must be positive.")
        out[name] = 1.0 - arr.var(axis=(0, 1), ddof=1) / s**2
    return out


def divergence_summary(diverging: Any) -> dict[str, Any]:
    """Count divergent transitions.

    **Arguments:**
    - `diverging`: ``(chains, draws)`` booleans (BlackJAX ``info.is_divergent``, NumPyro ``diverging``).

    **Returns:** ``{"total": int, "per_chain": int array (chains,), "fraction": float}``, the fraction being of
    all ``chains * draws`` transitions. Any divergence after warm-up makes the posterior suspect.
    """
    d = np.asarray(diverging)
    if d.ndim != 2:
        raise ValueError(f"diverging must be laid out (chains, draws), got shape {d.shape}; for one chain use d[None].")
    if d.dtype != bool:
        if not np.isin(d, (0, 1)).all():
            raise ValueError("diverging must be boolean (or 0/1).")
        d = d.astype(bool)
    per_chain = d.sum(axis=1).astype(np.int64)
    return {"total": int(per_chain.sum()), "per_chain": per_chain, "fraction": float(d.mean()) if d.size else 0.0}


# ----------------------------------------------------------------------------------------------------------------
# ArviZ export


def arviz_module():
    """The ``arviz`` module, imported without its announcement of the 1.0 refactor."""
    with warnings.catch_warnings():  # ArviZ 0.2x announces its 1.0 refactor on import
        warnings.filterwarnings("ignore", message=r"\s*ArviZ is undergoing", category=FutureWarning)
        import arviz
    return arviz


def _draw_arrays(group: Mapping[str, Any], what: str, lead: tuple[int, int] | None) -> dict[str, np.ndarray]:
    out = {}
    for name, value in group.items():
        if isinstance(value, Mapping):
            raise TypeError(f"{what}[{name!r}] is a mapping, expected an array (chains, draws, ...).")
        arr = np.asarray(value)
        if arr.ndim < 2:
            raise ValueError(f"{what}[{name!r}] must be laid out (chains, draws, ...), got shape {arr.shape}.")
        if lead is None:
            lead = arr.shape[:2]
        elif arr.shape[:2] != lead:
            raise ValueError(f"{what}[{name!r}] has (chains, draws) = {arr.shape[:2]}, but the posterior has {lead}.")
        out[name] = arr
    return out


def to_inference_data(
    samples: Mapping[str, Any],
    *,
    sample_stats: Mapping[str, Any] | None = None,
    observed_data: Mapping[str, Any] | None = None,
    coords: Mapping[str, Any] | None = None,
    dims: Mapping[str, Sequence[str]] | None = None,
    attrs: Mapping[str, Any] | None = None,
):
    """Package samples for ArviZ (``arviz.InferenceData``), for its plots (``plot_trace``, ``plot_pair``,
    ``plot_rank``, ``plot_energy``) and ``arviz.summary``.

    **Arguments:**
    - `samples`: ``{name: (chains, draws, *shape)}``, the posterior group. Dotted names (``"coupling.a"``) are
      kept as they are: xarray and netCDF accept them.
    - `sample_stats`: ``{name: (chains, draws, ...)}`` sampler statistics. Use ArviZ's names (``diverging``,
      ``step_size``, ``n_steps``, ``acceptance_rate``, ``lp``, ``tree_depth``, ``energy``); BlackJAX and NumPyro
      names are renamed: ``is_divergent``/``divergent`` -> ``diverging``, ``num_integration_steps``/``num_steps``
      -> ``n_steps``, ``accept_prob`` -> ``acceptance_rate``, ``num_trajectory_expansions`` -> ``tree_depth``,
      ``logdensity``/``log_density`` -> ``lp``, and ``potential_energy`` -> ``lp = -potential_energy`` (as
      ``arviz.from_numpyro``). ``diverging`` is stored as booleans.
    - `observed_data`: ``{name: array}``, the data conditioned on (no chain or draw axes).
    - `coords`, `dims`: ArviZ's coordinates and per-variable dimension names, e.g.
      ``coords={"region": labels}, dims={"model.x0": ["region"]}``; without them axes are named
      ``{name}_dim_0``, ...
    - `attrs`: global attributes (numbers, strings, lists of them if the result is to be saved as netCDF).

    **Returns:** ``arviz.InferenceData``; see :func:`save_netcdf`.
    """
    if not samples:
        raise ValueError("samples is empty; the posterior group needs at least one variable.")
    posterior = _draw_arrays(samples, "samples", None)
    lead = next(iter(posterior.values())).shape[:2]
    stats = None
    if sample_stats is not None:
        stats = {}
        for key, value in _draw_arrays(sample_stats, "sample_stats", lead).items():
            new, value = ("lp", -value) if key == "potential_energy" else (_STAT_ALIASES.get(key, key), value)
            if new in stats:
                raise ValueError(f"sample_stats gives {new!r} twice (under {key!r} and an alias of it).")
            stats[new] = value.astype(bool) if new == "diverging" else value
    observed = None if observed_data is None else {k: np.asarray(v) for k, v in observed_data.items()}
    az = arviz_module()
    return az.from_dict(
        posterior=posterior,
        sample_stats=stats,
        observed_data=observed,
        coords=None if coords is None else dict(coords),
        dims=None if dims is None else {k: list(v) for k, v in dims.items()},
        attrs=None if attrs is None else dict(attrs),  # from_dict edits the dict it is given
    )


def save_netcdf(idata: Any, path: str | os.PathLike) -> Path:
    """Write an ``arviz.InferenceData`` to netCDF (HDF5, through h5netcdf), atomically: to a temporary file in the
    same folder, then renamed over `path`, so a reader never sees a half-written file. Read it back with
    ``arviz.from_netcdf(path)``.

    **Returns:** `path`, as a ``Path``.
    """
    path = Path(path)
    with files.replacing(path) as tmp:
        idata.to_netcdf(str(tmp))
    return path
