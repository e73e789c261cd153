"""Simulation-based calibration (SBC; Talts, Betancourt, Simpson, Vehtari and Gelman 2018, "Validating Bayesian
inference algorithms with simulation-based calibration", arXiv:1804.06788).

If the parameters are drawn from the prior, ``theta* ~ p(theta)``, the data simulated from them, ``y ~ p(y |
theta*)``, and ``L`` independent draws taken from the exact posterior ``p(theta | y)``, then the rank of
``theta*`` among the ``L`` draws (the number of draws below it) is uniform on ``0, ..., L`` for every scalar
element of ``theta``. :func:`sbc` repeats this for many replicates; a rank histogram that is not flat shows that the
sampler, the likelihood or the simulator used by the posterior do not match the generative model:

- a ``∪`` shape (truth often outside the draws): posteriors too narrow (over-confident; noise understated, a
  sampler that does not explore, too few effective draws);
- a ``∩`` shape (truth too often in the middle): posteriors too wide (noise overstated, prior counted twice);
- a slope: biased posteriors (a shifted likelihood or prior, a wrong Jacobian);
- spikes at ``0`` and ``L``: autocorrelated draws (thinning below the effective sample size).

SBC checks calibration *averaged over the prior*: it cannot see an error that leaves the average unchanged (a
sampler that returns the prior whatever the data is perfectly calibrated), so read it together with the
z-scores and shrinkage of a few replicates (``SBCResult.z_scores``, :func:`vbtjax.inference.diagnostics.shrinkage`).

**How many replicates.** The power grows with the number of replicates ``N``. Measured on exact posterior draws
of a conjugate normal model (``L = 100``, 300 trials each; rejection rate at level 0.01, default bins ``N / 10``):

=============================================  ===============  ===============
posterior error                                N = 100 chi2/KS  N = 1000 chi2/KS
=============================================  ===============  ===============
none (size of the test)                        0.02 / 0.01      0.00 / 0.00
sd 2x too wide, or 2x too narrow               1.00 / 0.94      1.00 / 1.00
sd 20 % too wide                               0.08 / 0.02      0.92 / 0.75
sd 20 % too narrow                             0.17 / 0.06      1.00 / 0.98
mean biased by 0.5 posterior sd                0.85 / 0.95      1.00 / 1.00
mean biased by 0.25 posterior sd               0.16 / 0.32      0.98 / 1.00
=============================================  ===============  ===============

So ``N = 100`` catches gross errors (a misstated noise level, a missing Jacobian, a sampler that does not move),
subtle ones need ``N`` of several hundred to a thousand (Talts et al. use 1000). Where the prior dominates some
direction of the posterior, errors of the likelihood are diluted there and need more replicates. The chi-square
test is the better one against ``∪``/``∩`` shapes, the KS test against biases. Each replicate is a full NUTS
run; :func:`sbc` runs all replicates (and their chains) of a batch as one vectorised program, so ``N = 100`` small
networks cost about as much as a few single runs.
"""

from __future__ import annotations

import inspect
import io
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ..files import write_bytes
from ..simulation.batch import BatchRunner
from . import diagnostics as _diag
from .nuts_sampler import adapt_init, adapt_update, final_step_size, warmup_schedule
from .nuts_sampler import init as nuts_init
from .nuts_sampler import step as nuts_step
from .posterior import Posterior

__all__ = ["sbc", "SBCResult", "sbc_ranks", "rank_pvalues", "default_bins", "rank_band"]


# ----------------------------------------------------------------------------------------------------------------
# ranks and uniformity


def sbc_ranks(truth: Any, draws: Any) -> np.ndarray:
    """Ranks of the true values among posterior draws: the number of draws strictly below the truth.

    **Arguments:**
    - `truth`: ``(R, K)`` true values (R replicates, K scalars).
    - `draws`: ``(R, L, K)`` posterior draws.

    **Returns:** ``(R, K)`` integer ranks in ``0, ..., L``.
    """
    truth = np.asarray(truth)
    draws = np.asarray(draws)
    if truth.ndim != 2 or draws.ndim != 3 or draws.shape[0] != truth.shape[0] or draws.shape[2] != truth.shape[1]:
        raise ValueError(f"sbc_ranks: expected truth (R, K) and draws (R, L, K), got {truth.shape} and {draws.shape}.")
    return (draws < truth[:, None, :]).sum(axis=1).astype(np.int64)


def default_bins(n_replicates: int, num_draws: int) -> int:
    """Default number of histogram bins: ``n_replicates // 10`` (about 10 expected ranks per bin, twice
    Cochran's minimum of 5 for the chi-square approximation), between 2 and 50, and at most the ``L + 1``
    possible rank values."""
    return int(max(2, min(50, n_replicates // 10, num_draws + 1)))


def _bin_edges(num_draws: int, bins: int) -> np.ndarray:
    """Integer edges splitting the ``L + 1`` rank values into ``bins`` groups of (nearly) equal size."""
    n_values = num_draws + 1
    if not 1 <= bins <= n_values:
        raise ValueError(f"SBC: need 1 <= bins <= L + 1 = {n_values}, got bins={bins}.")
    return np.round(np.linspace(0, n_values, bins + 1)).astype(np.int64)


def _histogram(ranks: np.ndarray, num_draws: int, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts ``(bins, K)`` of ``(R, K)`` ranks and the probability of each bin under uniformity ``(bins,)``."""
    edges = _bin_edges(num_draws, bins)
    idx = np.searchsorted(edges, ranks, side="right") - 1  # bin b holds ranks edges[b] <= r < edges[b + 1]
    counts = np.stack([(idx == b).sum(axis=0) for b in range(bins)])
    return counts, np.diff(edges) / (num_draws + 1)


def rank_pvalues(
    ranks: Any, num_draws: int, *, method: str = "chi2", bins: int | None = None, seed: int = 0
) -> np.ndarray:
    """p-values of the hypothesis "the ranks are uniform on ``0, ..., L``", one per column of ``ranks``.

    **Arguments:**
    - `ranks`: ``(R, K)`` integer ranks (or ``(R,)``).
    - `num_draws`: ``L``, the number of posterior draws each rank was computed against.
    - `method`:
      ``"chi2"``: Pearson's chi-square test of the rank histogram with `bins` bins (default
      :func:`default_bins`, about 10 expected counts per bin), ``bins - 1`` degrees of freedom; bins of unequal
      width (when ``L + 1`` is not a multiple of `bins`) get their exact expected counts. It is sensitive to any
      shape (``∪``, ``∩``, slopes, spikes) once the bins resolve it, and is the test of Talts et al.
      ``"ks"``: Kolmogorov-Smirnov test of the randomised PIT ``(rank + V) / (L + 1)`` with ``V ~ U(0, 1)``, which is
      exactly ``U(0, 1)`` under the hypothesis (the ``V`` only fill the gaps between the discrete ranks, so the
      exact continuous KS p-value applies); it needs no bins and is the more powerful of the two against smooth
      deviations of the CDF (biases, posteriors too wide or too narrow), less against narrow spikes.
    - `bins`: number of chi-square bins.
    - `seed`: seed of the NumPy generator drawing ``V`` (``"ks"``), so that p-values are reproducible.

    **Returns:** ``(K,)`` p-values (a scalar for 1-D `ranks`).
    """
    from scipy import stats

    r = np.asarray(ranks)
    one = r.ndim == 1
    r = r[:, None] if one else r
    if r.ndim != 2 or r.shape[0] < 2:
        raise ValueError(f"rank_pvalues: expected ranks of shape (R, K) with R >= 2, got {np.shape(ranks)}.")
    L = int(num_draws)
    if np.any(r < 0) or np.any(r > L):
        raise ValueError(f"rank_pvalues: ranks must lie in 0..L = 0..{L}.")
    n = r.shape[0]
    if method == "chi2":
        b = default_bins(n, L) if bins is None else int(bins)
        counts, prob = _histogram(r, L, b)
        expected = n * prob[:, None]
        chi2 = ((counts - expected) ** 2 / expected).sum(axis=0)
        p = stats.chi2.sf(chi2, df=b - 1)
    elif method == "ks":
        v = np.random.default_rng(seed).uniform(size=r.shape)
        pit = (r + v) / (L + 1)
        p = np.array([stats.kstest(pit[:, k], "uniform").pvalue for k in range(r.shape[1])])
    else:
        raise ValueError(f"rank_pvalues: method must be 'chi2' or 'ks', got {method!r}.")
    p = np.asarray(p, dtype=float)
    return p[0] if one else p


def rank_band(n_replicates: int, num_draws: int, bins: int, prob: float = 0.99) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise ``prob`` band of the counts of a histogram of ``n_replicates`` uniform ranks: per bin the
    ``(1 - prob) / 2`` and ``(1 + prob) / 2`` quantiles of ``Binomial(n_replicates, p_bin)`` -> ``(lo, hi)``, each
    ``(bins,)``."""
    from scipy import stats

    _, p = _histogram(np.zeros((1, 1), np.int64), num_draws, bins)
    lo = stats.binom.ppf((1.0 - prob) / 2.0, n_replicates, p)
    hi = stats.binom.ppf((1.0 + prob) / 2.0, n_replicates, p)
    return lo, hi


# ----------------------------------------------------------------------------------------------------------------
# result


@dataclass(frozen=True)
class SBCResult:
    """Output of :func:`sbc`.

    **Fields:**
    - `names`: the K scalar names (``"coupling.a"``, ``"model.gamma[2]"``), parameters then latents.
    - `ranks`: ``(R, K)`` ranks of the truth among the `num_draws` thinned draws of each replicate.
    - `num_draws`: ``L``, draws kept per replicate after thinning (ranks lie in ``0..L``).
    - `truth`: ``(R, K)`` true (constrained) values; `post_mean`, `post_sd`: ``(R, K)`` over all draws.
    - `divergences`: ``(R,)`` divergent transitions after warmup (all chains); `max_rhat`: ``(R,)`` largest split
      R-hat over the scalars (NaN with one chain); `min_ess`: ``(R,)`` smallest bulk or tail ESS over the scalars,
      before thinning; `init_ok`: ``(R,)`` False where the log density was not finite at a starting point (for
      per-replicate samplers: at a draw).
    - `sampler`: which sampler ran; `seconds`: wall time.
    - `draws`: ``(R, L, K)`` the thinned draws the ranks count (``ranks == sbc_ranks(truth, draws)``), kept so
      that a variant (e.g. a deliberately miscalibrated one, as a power check) can be ranked without sampling
      again; None where not kept.
    """

    names: tuple[str, ...]
    ranks: np.ndarray
    num_draws: int
    truth: np.ndarray
    post_mean: np.ndarray
    post_sd: np.ndarray
    divergences: np.ndarray
    max_rhat: np.ndarray
    min_ess: np.ndarray
    init_ok: np.ndarray
    sampler: str = "blackjax"
    seconds: float = 0.0
    draws: np.ndarray | None = None

    @property
    def n_replicates(self) -> int:
        return int(self.ranks.shape[0])

    def histograms(self, bins: int | None = None) -> np.ndarray:
        """``(bins, K)`` rank counts (default :func:`default_bins`)."""
        b = default_bins(self.n_replicates, self.num_draws) if bins is None else int(bins)
        return _histogram(self.ranks, self.num_draws, b)[0]

    def uniformity_pvalues(self, method: str = "chi2", bins: int | None = None, seed: int = 0) -> dict[str, float]:
        """name -> p-value of the rank uniformity test (see :func:`rank_pvalues` for ``"chi2"`` and ``"ks"``)."""
        p = rank_pvalues(self.ranks, self.num_draws, method=method, bins=bins, seed=seed)
        return dict(zip(self.names, (float(v) for v in p), strict=True))

    def min_pvalue(self, methods: tuple[str, ...] = ("chi2", "ks"), bins: int | None = None) -> float:
        """Bonferroni-adjusted smallest p-value over the scalars and `methods`: ``min(1, n_tests * min p)``."""
        ps = [p for m in methods for p in self.uniformity_pvalues(m, bins=bins).values()]
        return float(min(1.0, len(ps) * min(ps)))

    def is_calibrated(self, alpha: float = 0.01, bins: int | None = None) -> bool:
        """True when no chi-square or KS test rejects uniformity at family-wise level `alpha` (Bonferroni over
        the scalars and the two tests)."""
        return self.min_pvalue(("chi2", "ks"), bins=bins) > alpha

    def z_scores(self) -> np.ndarray:
        """``(R, K)`` posterior z-scores ``(mean - truth) / sd``."""
        return (self.post_mean - self.truth) / self.post_sd

    def plot(self, path: str | Path, bins: int | None = None, prob: float = 0.99) -> Path:
        """Rank histograms, one panel per scalar, with the pointwise `prob` band of a uniform histogram (grey),
        written to `path` (PNG, PDF, ... by extension). Uses Matplotlib's Agg canvas (no display needed)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        b = default_bins(self.n_replicates, self.num_draws) if bins is None else int(bins)
        counts, p = _histogram(self.ranks, self.num_draws, b)
        lo, hi = rank_band(self.n_replicates, self.num_draws, b, prob)
        edges = _bin_edges(self.num_draws, b)
        pv = rank_pvalues(self.ranks, self.num_draws, method="chi2", bins=b)
        k = len(self.names)
        ncol = min(k, 4)
        nrow = math.ceil(k / ncol)
        fig = Figure(figsize=(3.2 * ncol, 2.6 * nrow), layout="constrained")
        FigureCanvasAgg(fig)
        axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False)).ravel()
        for i, ax in enumerate(axes):
            if i >= k:
                ax.set_visible(False)
                continue
            ax.fill_between(edges, np.r_[lo, lo[-1]], np.r_[hi, hi[-1]], step="post", color="0.85", lw=0)
            ax.step(edges, np.r_[self.n_replicates * p, self.n_replicates * p[-1]], where="post", color="0.5", lw=0.8)
            ax.stairs(counts[:, i], edges, color="C0", lw=1.5)
            ax.set_title(f"{self.names[i]}  (chi2 p={pv[i]:.2g})", fontsize=9)
            ax.set_xlabel(f"rank (L={self.num_draws})", fontsize=8)
            ax.set_xlim(0, self.num_draws + 1)
        fig.suptitle(f"SBC rank histograms, {self.n_replicates} replicates, {int(prob * 100)}% band", fontsize=10)
        path = Path(path)
        buf = io.BytesIO()  # rendered in memory, then written atomically: a kill leaves no half-written figure
        fig.savefig(buf, format=Path(path).suffix.lstrip(".") or "png", dpi=110)
        write_bytes(path, buf.getvalue())
        return path

    def report(self) -> str:
        """A short text table: per scalar the chi-square and KS p-values; the replicates' diagnostics."""
        chi = self.uniformity_pvalues("chi2")
        ks = self.uniformity_pvalues("ks")
        w = max(len(n) for n in self.names)
        lines = [f"SBC: {self.n_replicates} replicates, L={self.num_draws}, sampler={self.sampler}"]
        lines += [f"  {n:<{w}}  chi2 p={chi[n]:.3g}  ks p={ks[n]:.3g}" for n in self.names]
        lines.append(
            f"  divergences: {int(self.divergences.sum())} in {int((self.divergences > 0).sum())} replicates; "
            f"max R-hat {np.nanmax(self.max_rhat) if np.isfinite(self.max_rhat).any() else float('nan'):.3f}; "
            f"min ESS {self.min_ess.min():.0f}; failed starts {int((~self.init_ok).sum())}"
        )
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------------
# vectorised NUTS (the algorithm of vbtjax.inference.nuts, as one pure function)


def _nuts_program(
    logdensity: Callable[[Array], Array],
    u0: Array,
    key: jax.Array,
    *,
    num_warmup: int,
    num_samples: int,
    target_accept: float,
    max_tree_depth: int,
    initial_step_size: float,
) -> tuple[Array, Array, Array]:
    """The warmup and sampling of :func:`vbtjax.inference.nuts` for the chains ``u0`` ``(C, d)`` as one traceable
    function (same keys, same adaptation, same draws); returns positions ``(C, S, d)``, divergences ``(C, S)`` and
    the initial log densities ``(C,)``. Usable under ``jax.vmap`` over replicates."""
    num_chains, d = u0.shape
    dtype = u0.dtype
    slow_np, end_np = warmup_schedule(num_warmup)

    # One scan over warmup and sampling (one NUTS kernel in the program: half the compile time of two scans). In
    # warmup the step size is the dual-averaging iterate and the adaptation advances; in sampling the adaptation
    # is frozen and the step size is its final average, as in nuts().
    warm_np = np.arange(num_warmup + num_samples) < num_warmup
    slow_all = np.concatenate([slow_np, np.zeros(num_samples, bool)])
    end_all = np.concatenate([end_np, np.zeros(num_samples, bool)])

    def one_step(carry, xs):
        chain, a, key_c = carry
        s, warm, slow, end = xs
        eps = jnp.where(warm, jnp.exp(a.log_eps), final_step_size(a, num_warmup))
        chain, info, acc = nuts_step(
            jax.random.fold_in(key_c, s), chain, logdensity, eps, a.imm, max_tree_depth=max_tree_depth
        )
        a_new = adapt_update(a, chain.position, acc, slow, end, target_accept=target_accept)
        a = jax.tree.map(lambda new, old: jnp.where(warm, new, old), a_new, a)
        return (chain, a, key_c), (chain.position, info.is_divergent)

    def per_chain(u, key_c):
        chain = nuts_init(u, logdensity)
        a = adapt_init(d, dtype, initial_step_size)
        xs = (
            jnp.arange(num_warmup + num_samples),
            jnp.asarray(warm_np),
            jnp.asarray(slow_all),
            jnp.asarray(end_all),
        )
        _, (pos, div) = jax.lax.scan(one_step, (chain, a, key_c), xs)
        return pos[num_warmup:], div[num_warmup:], chain.logdensity

    keys = jax.vmap(lambda c: jax.random.fold_in(key, c))(jnp.arange(num_chains))
    return jax.vmap(per_chain)(u0, keys)


# ----------------------------------------------------------------------------------------------------------------
# driver


def _replicate_keys(key: jax.Array, r: Any) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Keys of replicate ``r``: ``(truth, data, sampler) = split(fold_in(key, r), 3)``."""
    k = jax.random.split(jax.random.fold_in(key, r), 3)
    return k[0], k[1], k[2]


def _scalar_names(names: tuple[str, ...], shapes: tuple[tuple[int, ...], ...]) -> tuple[str, ...]:
    out = []
    for n, s in zip(names, shapes, strict=True):
        if s == ():
            out.append(n)
        else:
            out.extend(f"{n}[{','.join(map(str, i))}]" for i in np.ndindex(*s))
    return tuple(out)


def _flatten(values: Mapping[str, Any], names: tuple[str, ...], lead: int) -> Array:
    """name -> ``(*lead_dims, *shape)`` to ``(*lead_dims, K)``."""
    parts = []
    for n in names:
        v = jnp.asarray(values[n])
        parts.append(v.reshape(v.shape[:lead] + (-1,)))
    return jnp.concatenate(parts, axis=-1)


def _n_args(f: Callable) -> int | None:
    try:
        ps = inspect.signature(f).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind == p.VAR_POSITIONAL for p in ps):
        return None
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty for p in ps)


def _check_args(prior, n_replicates, num_chains, num_warmup, num_samples, target_accept, thin_to, sampler) -> None:
    if not isinstance(prior, Posterior):
        raise TypeError(f"sbc: prior must be a vbtjax.inference.Posterior, got {type(prior).__name__}.")
    if n_replicates < 2:
        raise ValueError(f"sbc: need n_replicates >= 2, got {n_replicates}.")
    if num_chains < 1 or num_samples < 4 or num_warmup < 0:
        raise ValueError(
            f"sbc: need num_chains >= 1, num_samples >= 4 and num_warmup >= 0, got {num_chains}, {num_samples}, "
            f"{num_warmup}."
        )
    if not 0.0 < target_accept < 1.0:
        raise ValueError(f"sbc: target_accept must lie in (0, 1), got {target_accept}.")
    total_draws = num_chains * num_samples
    if thin_to is not None and not 1 <= thin_to <= total_draws:
        raise ValueError(f"sbc: thin_to must lie in 1..num_chains * num_samples = {total_draws}, got {thin_to}.")
    if not (sampler in ("blackjax", "numpyro") or callable(sampler)):
        raise ValueError(f"sbc: sampler must be 'blackjax', 'numpyro' or a function, got {sampler!r}.")


def _replicate_functions(prior: Posterior, simulate_data: Callable, key: jax.Array):
    """``prepare(r) -> (u_true, data, k_mcmc)``, replicate ``r``'s truth, data and sampler key; ``flat_draws(u)``:
    unconstrained ``(..., d)`` to constrained scalars ``(..., K)``."""
    names = prior.names
    two_args = _n_args(simulate_data) == 2

    def prepare(r):
        k_true, k_data, k_mcmc = _replicate_keys(key, r)
        u_true = prior.sample_prior(k_true)
        values = prior.constrained(u_true)
        net = prior.network(u_true)
        data = simulate_data(k_data, net) if two_args else simulate_data(k_data, net, values)
        return u_true, data, k_mcmc

    def flat_draws(u):  # (..., d) unconstrained -> (..., K) constrained
        lead = u.ndim - 1
        fn = prior.constrained
        for _ in range(lead):
            fn = jax.vmap(fn)
        return _flatten(fn(u), names, lead)

    return prepare, flat_draws


def _run_vectorised(prepare, flat_draws, make_posterior, n_replicates, batch_size, num_chains, nuts_kw, progress):
    """``sampler="blackjax"``: the replicates as one vmapped program through the batched runner
    (:class:`~vbtjax.simulation.batch.BatchRunner`: sharded over the devices, in chunks of `batch_size`, default
    all); returns the lists of truths, draws, divergences and initial-point checks."""

    def one(r, _key):
        u_true, data, k_mcmc = prepare(r)
        # Posterior() validates the network's (concrete) values with jnp operations, which a jit trace would
        # stage; evaluate those eagerly (operations on the traced data are still traced).
        with jax.ensure_compile_time_eval():
            post = make_posterior(data)
        u0 = post.sample_prior(jax.random.fold_in(k_mcmc, 2**20), num_chains)
        pos, div, lp0 = _nuts_program(post.log_density, u0, k_mcmc, **nuts_kw)
        ok = jnp.all(jnp.isfinite(lp0) & (lp0 > -1e29))
        return flat_draws(u_true), flat_draws(pos), div.sum(), ok

    # a row of the batch is a replicate index; its keys come from the index (prepare), not from the runner
    runner = BatchRunner(None, lambda _net, vs: vs[0], one, has_key=False, owner="sbc", closed=True)
    per_device = -(-(n_replicates if batch_size is None else max(1, int(batch_size))) // runner.n_devices)
    bs = runner.chunk_size(n_replicates, per_device)
    replicates = (np.arange(n_replicates, dtype=np.int32),)
    tr, dr, dv, ok = runner(replicates, n_replicates, None, bs, progress="SBC (blackjax)" if progress else None)
    return [tr], [dr], [dv], [ok]


def _run_each(prepare, flat_draws, make_posterior, sampler, names, n_replicates, num_chains, nuts_kw, bar):
    """``sampler="numpyro"`` or a function: one sampler call per replicate (same returns as
    :func:`_run_vectorised`)."""
    truth_l, draws_l, div_l, init_l = [], [], [], []
    num_samples = nuts_kw["num_samples"]
    prep = jax.jit(prepare)
    for r in range(n_replicates):
        u_true, data, k_mcmc = prep(r)
        post = make_posterior(data)
        if sampler == "numpyro":
            from .numpyro_path import numpyro_nuts

            res = numpyro_nuts(
                post,
                key=k_mcmc,
                num_chains=num_chains,
                num_warmup=nuts_kw["num_warmup"],
                num_samples=num_samples,
                target_accept=nuts_kw["target_accept"],
                max_tree_depth=nuts_kw["max_tree_depth"],
                init="prior",
                progress=False,
            )
        else:
            res = sampler(post, k_mcmc)
        samples = {n: jnp.asarray(res.samples[n]) for n in names}
        dr = _flatten(samples, names, 2)
        if dr.shape[:2] != (num_chains, num_samples):
            raise ValueError(
                f"sbc: the sampler returned draws of shape {tuple(dr.shape[:2])} (chains, draws); expected "
                f"({num_chains}, {num_samples}) as given to sbc."
            )
        truth_l.append(np.asarray(flat_draws(u_true))[None])
        draws_l.append(np.asarray(dr)[None])
        div_l.append(np.asarray(res.stats["diverging"]).sum()[None])
        init_l.append(np.asarray([bool(np.all(np.isfinite(np.asarray(res.stats["lp"]))))]))
        if bar is not None:
            bar.update(1)
    return truth_l, draws_l, div_l, init_l


def _chain_diagnostics(draws: np.ndarray, num_chains: int) -> tuple[np.ndarray, np.ndarray]:
    """Per replicate of `draws` ``(R, C, S, K)``: the smallest bulk/tail ESS over the scalars (0 for non-finite or
    constant draws) and the largest split R-hat (NaN with one chain)."""
    R = draws.shape[0]
    min_ess = np.empty(R)
    max_rhat = np.full(R, np.nan)
    for r in range(R):
        x = draws[r]
        ok = np.isfinite(x).all()
        if not ok or np.ptp(x, axis=(0, 1)).min() == 0.0:
            min_ess[r] = 0.0
            continue
        min_ess[r] = min(np.min(_diag.ess_bulk(x)), np.min(_diag.ess_tail(x)))
        if num_chains >= 2:
            max_rhat[r] = np.nanmax(_diag.split_rhat(x))
    return min_ess, max_rhat


def sbc(
    make_posterior: Callable[[Any], Posterior],
    simulate_data: Callable[..., Any],
    prior: Posterior,
    *,
    key: jax.Array,
    n_replicates: int = 100,
    num_chains: int = 2,
    num_warmup: int = 300,
    num_samples: int = 300,
    thin_to: int | None = None,
    sampler: str | Callable[[Posterior, jax.Array], Any] = "blackjax",
    batch_size: int | None = None,
    target_accept: float = 0.8,
    max_tree_depth: int = 10,
    initial_step_size: float = 0.1,
    progress: bool = True,
) -> SBCResult:
    """Simulation-based calibration of a posterior and its sampler (see the module docstring for what it detects
    and how many replicates it needs).

    For replicate ``r`` with keys ``(k_true, k_data, k_mcmc) = split(fold_in(key, r), 3)``:

    1. ``u* = prior.sample_prior(k_true)``, the truth, and its constrained values ``x* = prior.constrained(u*)``;
    2. ``data = simulate_data(k_data, prior.network(u*), x*)`` (or ``simulate_data(k_data, net)`` for a
       function of two arguments): the data, including their observation noise, simulated at the truth;
    3. ``posterior = make_posterior(data)``, sampled with NUTS, every chain started at a prior draw;
    4. the draws of every scalar are thinned to ``L`` evenly spaced draws (pooled over chains) and the rank of the
       truth among them is recorded.

    **Arguments:**
    - `make_posterior`: ``data -> Posterior`` with the same parameters, latents and priors as `prior`.
    - `simulate_data`: ``(key, net, values) -> data`` (a pytree of arrays), ``values`` the name -> constrained
      truth (latents such as an observation noise included).
    - `prior`: a :class:`Posterior` whose priors define the generative model (its ``log_likelihood`` is
      ignored; ``make_posterior(data)`` of any data works).
    - `key`: ``jax.random`` key; `n_replicates`: number of replicates ``R``.
    - `num_chains`, `num_warmup`, `num_samples`, `target_accept`, `max_tree_depth`, `initial_step_size`: as for
      :func:`~vbtjax.inference.nuts`.
    - `thin_to`: ``L``; default: the 10 % quantile over replicates of the smallest bulk/tail ESS over the scalars
      (so that about 90 % of the replicates have at least ``L`` effective draws, Talts et al.'s advice of
      thinning to roughly independent draws; conservative, since ESS estimates from few draws are noisy), at most
      ``num_chains * num_samples``. Each replicate keeps ``L`` evenly spaced draws of its chains laid end to end.
    - `sampler`:
      ``"blackjax"``: the algorithm of :func:`~vbtjax.inference.nuts` with the same keys, starts and
      adaptation as ``nuts(make_posterior(data), key=k_mcmc, init="prior", ...)`` (bitwise the same draws for the
      same log density; here truth, data and starts are computed inside one compiled program, so the draws agree
      with such a ``nuts`` call up to floating-point rounding, which NUTS trajectories amplify), run for a whole
      batch of replicates as one ``jax.vmap``-ed program; `simulate_data` and `make_posterior` must then be
      traceable (``data`` arrives as tracers; build the log-likelihood from jnp operations on it).
      ``"numpyro"``: :func:`~vbtjax.inference.numpyro_nuts` per replicate (a Python loop; each replicate
      compiles anew).
      A function ``(posterior, key) -> NutsResult`` (e.g. a wrapped :func:`~vbtjax.inference.nuts` with
      other options): called per replicate with ``key = k_mcmc``.
    - `batch_size`: replicates per vectorised call (``"blackjax"``; default all). Chains of a batch step in
      lock-step, so each NUTS step costs the longest trajectory in the batch; smaller batches waste less on
      heterogeneous replicates, larger ones amortise the per-call overhead.
    - `progress`: a progress bar over replicates.

    **Returns:** an :class:`SBCResult` (ranks, L, names, per-replicate divergences, R-hat and ESS; its
    ``uniformity_pvalues()``, ``is_calibrated()`` and ``plot(path)``).
    """
    _check_args(prior, n_replicates, num_chains, num_warmup, num_samples, target_accept, thin_to, sampler)
    names = prior.names
    prepare, flat_draws = _replicate_functions(prior, simulate_data, key)
    t0 = time.perf_counter()
    bar = None
    if progress and sampler != "blackjax":  # "blackjax": the batched runner's bar, when there are several chunks
        from tqdm.auto import tqdm

        bar = tqdm(total=n_replicates, desc=f"SBC ({sampler if isinstance(sampler, str) else 'custom'})", unit="rep")
    nuts_kw = dict(
        num_warmup=num_warmup,
        num_samples=num_samples,
        target_accept=target_accept,
        max_tree_depth=int(max_tree_depth),
        initial_step_size=initial_step_size,
    )
    try:
        if sampler == "blackjax":
            run = _run_vectorised(
                prepare, flat_draws, make_posterior, n_replicates, batch_size, num_chains, nuts_kw, progress
            )
        else:
            run = _run_each(prepare, flat_draws, make_posterior, sampler, names, n_replicates, num_chains, nuts_kw, bar)
    finally:
        if bar is not None:
            bar.close()

    truth = np.concatenate(run[0]).astype(float)  # (R, K)
    draws = np.concatenate(run[1]).astype(float)  # (R, C, S, K)
    min_ess, max_rhat = _chain_diagnostics(draws, num_chains)
    R, K = truth.shape
    total_draws = num_chains * num_samples
    if thin_to is None:
        L = int(np.clip(np.floor(np.quantile(min_ess, 0.1)), 1, total_draws))
    else:
        L = int(thin_to)
    pooled = draws.reshape(R, total_draws, K)  # chain-major: each chain's draws in order
    keep = (np.arange(L) * total_draws) // L  # evenly spaced
    thinned = pooled[:, keep, :]
    with np.errstate(invalid="ignore"):
        post_mean = pooled.mean(axis=1)
        post_sd = pooled.std(axis=1, ddof=1)
    return SBCResult(
        names=_scalar_names(names, prior.shapes),
        ranks=sbc_ranks(truth, thinned),
        num_draws=L,
        truth=truth,
        post_mean=post_mean,
        post_sd=post_sd,
        divergences=np.concatenate(run[2]).astype(np.int64),
        max_rhat=max_rhat,
        min_ess=min_ess,
        init_ok=np.concatenate(run[3]).astype(bool),
        sampler=sampler if isinstance(sampler, str) else getattr(sampler, "__name__", "custom"),
        seconds=time.perf_counter() - t0,
        draws=thinned,
    )
