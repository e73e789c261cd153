"""Diagnostics of a neural posterior estimator on held-out simulations, and its comparison with NUTS.

For each held-out simulation ``(u*, x)`` of a test budget, ``L`` draws are taken from ``q(u | x)``:

- **ranks** of each element of ``u*`` among the draws (simulation-based calibration: uniform on ``0..L`` when the
  estimator is the true posterior; tested with :func:`vbtjax.inference.rank_pvalues`);
- **expected coverage** of central credible intervals per parameter, at levels ``alpha``: the share of held-out
  truths inside the interval (``alpha`` when calibrated; above: over-dispersed, below: over-confident);
- **joint (highest-density) coverage**: the share of draws with a higher density ``q`` than the truth; its empirical
  distribution over the test set is uniform when calibrated;
- **z-scores** ``(mean - truth) / sd`` and **shrinkage** ``1 - var_post / var_prior`` in the constrained space.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..files import write_bytes
from .budget import Budget

__all__ = ["Calibration", "MIN_TESTS", "calibrate", "compare_posteriors"]

MIN_TESTS = 50
"""Held-out simulations below which :meth:`Calibration.verdict` calls passing checks inconclusive."""


@dataclass(frozen=True)
class Calibration:
    """The result of :func:`calibrate`; arrays over ``T`` held-out simulations and ``D`` scalar parameters.

    - `names`: ``(D,)`` scalar parameter names; `num_draws`: ``L``.
    - `ranks` ``(T, D)``; `rank_pvalues`: name -> chi-square and KS p-values of their uniformity.
    - `levels` ``(K,)``; `coverage` ``(K, D)`` expected coverage of central intervals; `joint_coverage` ``(K,)``.
    - `hpd_level` ``(T,)``: share of draws denser than the truth (uniform when calibrated).
    - `z` ``(T, D)``, `shrinkage` ``(T, D)``, `mean`, `sd` ``(T, D)`` (constrained), `truth` ``(T, D)``.
    """

    names: tuple[str, ...]
    num_draws: int
    ranks: np.ndarray
    rank_pvalues: dict[str, dict[str, float]]
    levels: np.ndarray
    coverage: np.ndarray
    joint_coverage: np.ndarray
    hpd_level: np.ndarray
    z: np.ndarray
    shrinkage: np.ndarray
    mean: np.ndarray
    sd: np.ndarray
    truth: np.ndarray

    def max_coverage_error(self) -> float:
        """Largest ``|coverage - level|`` over levels and parameters (marginal) and the joint coverage."""
        marg = np.max(np.abs(self.coverage - self.levels[:, None]))
        joint = np.max(np.abs(self.joint_coverage - self.levels))
        return float(max(marg, joint))

    def coverage_band(self, prob: float = 0.99) -> float:
        """Half-width of the binomial band of one coverage estimate at level 0.5 over ``T`` tests (normal
        approximation): ``|coverage - level|`` below it is consistent with calibration."""
        from scipy.stats import norm

        T = self.ranks.shape[0]
        return float(norm.ppf(0.5 + prob / 2) * np.sqrt(0.25 / T))

    def hpd_pvalue(self) -> float:
        """KS p-value of "the joint HPD levels are uniform on [0, 1]" (calibration of the joint posterior)."""
        from scipy.stats import kstest

        return float(kstest(self.hpd_level, "uniform").pvalue)

    def is_calibrated(self, alpha: float = 0.01, joint: bool = True) -> bool:
        """True unless a test rejects calibration at family-wise level `alpha` (Bonferroni over the chi-square and
        KS rank tests of every parameter and, with `joint`, the KS test of the joint HPD levels).

        These rank tests only: True means "not rejected by them", which says little over few held-out simulations,
        and nothing about the coverage check (:meth:`coverage_ok`); :meth:`checks` and :meth:`verdict` report
        both."""
        pvals = [p for d in self.rank_pvalues.values() for p in d.values()] + ([self.hpd_pvalue()] if joint else [])
        return bool(min(pvals) > alpha / len(pvals))

    def coverage_ok(self, prob: float = 0.99) -> bool:
        """The coverage check: :meth:`max_coverage_error` within :meth:`coverage_band` at `prob` (the numbers
        ``vbtjax sbi train`` prints side by side)."""
        return bool(self.max_coverage_error() <= self.coverage_band(prob))

    def checks(self, alpha: float = 0.01) -> dict[str, bool]:
        """Each check by name, True where it passes: ``rank tests`` (:meth:`is_calibrated` at `alpha`, with the
        joint HPD levels) and ``coverage`` (:meth:`coverage_ok` at ``1 - alpha``)."""
        return {"rank tests": self.is_calibrated(alpha), "coverage": self.coverage_ok(1.0 - alpha)}

    def verdict(self, alpha: float = 0.01, min_tests: int = MIN_TESTS) -> str:
        """One line on the estimator's calibration that never calls it calibrated next to a failing check:
        ``NOT calibrated: <the failing checks>`` when a check fails; ``inconclusive`` when every check passes over
        fewer than `min_tests` held-out simulations (too few for the checks to detect much); otherwise ``calibration
        checks pass``; each with the numbers behind it."""
        T = self.ranks.shape[0]
        pvals = [p for d in self.rank_pvalues.values() for p in d.values()] + [self.hpd_pvalue()]
        ok = self.checks(alpha)
        err, band = self.max_coverage_error(), self.coverage_band(1.0 - alpha)
        ranks = f"min rank/HPD test p {min(pvals):.3g} vs {alpha / len(pvals):.2g} (family-wise {alpha:g}, Bonferroni)"
        coverage = f"max coverage error {err:.3f} vs the {1 - alpha:.0%} band {band:.3f}"
        failed = [text for text, good in ((ranks, ok["rank tests"]), (coverage, ok["coverage"])) if not good]
        over = f"over {T} held-out simulation{'s' if T != 1 else ''}"
        if failed:
            return f"NOT calibrated: {'; '.join(failed)} ({over})"
        if T < min_tests:
            return (
                f"calibration inconclusive: no check fails ({ranks}; {coverage}), but {T} held-out simulations are too "
                f"few for the checks to detect much (use --test {min_tests} or more)"
            )
        return f"calibration checks pass: {ranks}; {coverage} ({over})"

    def summary(self) -> str:
        lines = [
            f"{'parameter':<20} {'cov50':>6} {'cov90':>6} {'mean z':>7} {'sd z':>6} {'shrink':>7} "
            f"{'chi2 p':>7} {'KS p':>7}"
        ]
        i50 = int(np.argmin(np.abs(self.levels - 0.5)))
        i90 = int(np.argmin(np.abs(self.levels - 0.9)))
        for j, name in enumerate(self.names):
            p = self.rank_pvalues.get(name, {})
            lines.append(
                f"{name:<20} {self.coverage[i50, j]:>6.2f} {self.coverage[i90, j]:>6.2f} {self.z[:, j].mean():>7.2f} "
                f"{self.z[:, j].std():>6.2f} {np.median(self.shrinkage[:, j]):>7.2f} {p.get('chi2', np.nan):>7.3f} "
                f"{p.get('ks', np.nan):>7.3f}"
            )
        lines.append(
            f"joint (HPD) coverage at 50% / 90%: {self.joint_coverage[i50]:.2f} / {self.joint_coverage[i90]:.2f} "
            f"(KS p {self.hpd_pvalue():.3f}) over {self.ranks.shape[0]} held-out simulations, {self.num_draws} draws "
            "each"
        )
        lines.append(self.verdict())
        return "\n".join(lines)

    def plot(self, path: Any) -> None:
        """Coverage curves (marginal per parameter, and joint) and rank histograms, to `path` (PNG)."""
        from matplotlib.figure import Figure  # no pyplot: the backend stays the user's choice, and saving needs none

        D = len(self.names)
        show = min(D, 6)
        fig = Figure(figsize=(3.2 * (1 + show), 3.6), layout="constrained")
        axes = fig.subplots(1, 1 + show)
        ax = axes[0]
        ax.plot([0, 1], [0, 1], "k--", lw=0.8)
        band = self.coverage_band(0.99)
        ax.fill_between([0, 1], [-band, 1 - band], [band, 1 + band], color="0.9", label="99% band")
        for j in range(D):
            ax.plot(self.levels, self.coverage[:, j], color="C0", alpha=0.3 if D > 6 else 0.8)
        ax.plot(self.levels, self.joint_coverage, color="C3", lw=2, label="joint (HPD)")
        ax.set(xlabel="credibility level", ylabel="expected coverage", title="coverage", xlim=(0, 1), ylim=(0, 1))
        ax.legend(fontsize=7)
        bins = min(20, self.num_draws + 1)
        T = self.ranks.shape[0]
        for j in range(show):
            a = axes[1 + j]
            a.hist(self.ranks[:, j], bins=bins, range=(0, self.num_draws + 1), color="C0")
            a.axhline(T / bins, color="k", ls="--", lw=0.8)  # expected count per bin when calibrated
            a.set_title(f"ranks of {self.names[j]}", fontsize=8)
            a.set(xlabel=f"rank among {self.num_draws} draws", ylabel="held-out simulations")
        fig.suptitle(self.verdict(), fontsize=8, wrap=True)
        buf = io.BytesIO()  # rendered in memory, then written atomically: a kill leaves no half-written figure
        fig.savefig(buf, format=Path(path).suffix.lstrip(".") or "png", dpi=100)
        write_bytes(path, buf.getvalue())


def _flat_constrained(prior, u):
    return jnp.concatenate([v.reshape(-1) for v in prior.constrained(u).values()])


def calibrate(
    npe: Any,
    prior: Any,
    test: Budget,
    *,
    key: jax.Array,
    num_draws: int = 200,
    levels: Any = None,
    batch: int = 64,
) -> Calibration:
    """Calibration of `npe` on the held-out simulations `test` (``u``, ``theta``, ``x``; non-finite ones left out).

    **Arguments:** `prior`: the prior the budget was drawn from (for the constrained space and the prior variance);
    `num_draws`: posterior draws ``L`` per simulation; `levels`: credibility levels (default 0.05 ... 0.95);
    `batch`: simulations per vectorised call."""
    from ..inference.calibration import rank_pvalues

    test = test.finite_only()
    T = len(test)
    if T < 2:
        raise ValueError("calibrate: need at least 2 held-out simulations with finite features.")
    levels = np.linspace(0.05, 0.95, 19) if levels is None else np.asarray(levels, float)
    L = int(num_draws)

    @eqx.filter_jit
    def one(m, k, u_true, x):
        u = m.sample(k, x, L)
        lq = m.log_prob(u, jnp.broadcast_to(x, (L, x.shape[0])))
        lq_true = m.log_prob(u_true, x)
        theta = jax.vmap(lambda ui: _flat_constrained(prior, ui))(u)
        return u, theta, jnp.mean(lq > lq_true)

    us, thetas, hpd = [], [], []
    batched = eqx.filter_jit(eqx.filter_vmap(one, in_axes=(None, 0, 0, 0)))
    keys = jax.random.split(key, T)
    dtype = npe.u_mean.dtype
    for lo in range(0, T, batch):
        sl = slice(lo, lo + batch)
        u, th, h = batched(npe, keys[sl], jnp.asarray(test.u[sl], dtype), jnp.asarray(test.x[sl], dtype))
        us.append(np.asarray(u))
        thetas.append(np.asarray(th))
        hpd.append(np.asarray(h))
    u = np.concatenate(us)  # (T, L, d)
    theta = np.concatenate(thetas)
    hpd_level = np.concatenate(hpd)
    names = tuple(test.scalar_names())
    ranks = np.sum(u < test.u[:, None, :], axis=1)
    p_chi2 = np.atleast_1d(rank_pvalues(ranks, L, method="chi2"))
    p_ks = np.atleast_1d(rank_pvalues(ranks, L, method="ks"))
    pv = {n: {"chi2": float(p_chi2[j]), "ks": float(p_ks[j])} for j, n in enumerate(names)}
    lo_q = np.quantile(u, 0.5 - levels / 2, axis=1)  # (K, T, d)
    hi_q = np.quantile(u, 0.5 + levels / 2, axis=1)
    inside = (test.u[None] >= lo_q) & (test.u[None] <= hi_q)
    coverage = inside.mean(axis=1)
    joint = np.mean(hpd_level[None, :] <= levels[:, None], axis=1)
    mean, sd = theta.mean(axis=1), theta.std(axis=1)
    prior_var = np.var(test.theta, axis=0) if T > 10 else np.var(theta.reshape(-1, theta.shape[-1]), axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (mean - test.theta) / sd
        shrink = 1.0 - sd**2 / prior_var
    return Calibration(names, L, ranks, pv, levels, coverage, joint, hpd_level, z, shrink, mean, sd, test.theta)


def compare_posteriors(a: Mapping[str, Any], b: Mapping[str, Any], *, ess_b: Mapping[str, Any] | None = None) -> dict:
    """Means and standard deviations of two posteriors over the same names (e.g. NPE draws ``(n, ...)`` and NUTS
    draws ``(chains, draws, ...)``), per scalar element, with the difference of the means in units of its Monte
    Carlo standard error (NPE draws independent; NUTS draws with their bulk ESS if `ess_b` is given, else their
    number). **Returns:** name -> dict of arrays ``mean_a, mean_b, sd_a, sd_b, mcse, z_mean, sd_ratio``."""
    out = {}
    for name in a:
        if name not in b:
            continue
        xa = np.asarray(a[name])
        xb = np.asarray(b[name])
        shape = xa.shape[1:]
        xb = xb.reshape((-1, *shape))
        ma, mb = xa.mean(0), xb.mean(0)
        sa, sb = xa.std(0), xb.std(0)
        nb = np.asarray(ess_b[name]) if ess_b is not None and name in ess_b else xb.shape[0]
        mcse = np.sqrt(sa**2 / xa.shape[0] + sb**2 / nb)
        out[name] = {
            "mean_a": ma,
            "mean_b": mb,
            "sd_a": sa,
            "sd_b": sb,
            "mcse": mcse,
            "z_mean": (ma - mb) / mcse,
            "sd_ratio": sa / sb,
        }
    return out
