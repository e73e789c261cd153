"""Inference of the epileptogenic zone: sampling, diagnostics, the predictive check and the verdict, the virtual
resection, and the patient's twin."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ...data.connectome import Connectome
from ...inference.posterior import Posterior
from ...network import Network
from .network import (
    DT,
    DURATION,
    PERIOD,
    SEIZURE_X1,
    X0_CRITICAL,
    rest_history,
    simulate_x1,
    vep_connectome,
    vep_network,
)
from .patients import DETECTABLE, detectability
from .posterior import VEPPosterior, initial_guess, laplace_factor, posterior_mode

SAMPLERS = ("nuts", "nuts-gibbs", "smc")
"""Samplers of :func:`infer_ez`."""
MAX_RHAT = 1.05
"""Largest rank-normalised split R-hat over all sampled values for a run to count as converged."""
MAX_DIVERGENT = 0.01
"""Largest fraction of divergent transitions for a run to count as converged."""


class ConvergenceWarning(UserWarning):
    """:func:`infer_ez`'s result should not be used as it is: chains that disagree, divergent transitions, or a
    model that does not reproduce the data."""


def infer_ez(
    posterior: Posterior,
    *,
    key: jax.Array,
    labels: Any = None,
    sampler: str = "nuts",
    num_chains: int = 4,
    num_warmup: int = 200,
    num_samples: int = 200,
    num_particles: int = 64,
    map_steps: int = 200,
    checkpoint: str | Path | None = None,
    progress: bool = True,
    target_accept: float = 0.8,
    max_tree_depth: int = 6,
    ppc_draws: int = 100,
    warn: bool = True,
) -> VEPResult:
    """Rank the regions by their posterior probability of being epileptogenic, and check the result.

    `sampler` ``"nuts"`` (default): the posterior mode first (:func:`posterior_mode` from :func:`initial_guess`,
    Newton-refined), then `num_chains` NUTS chains (:func:`vbtjax.inference.nuts`) started around it and
    preconditioned by the Laplace approximation there (:func:`laplace_factor`), with the diagonal mass matrix adapted
    on top in warmup. ``"nuts-gibbs"``: the same chains, but each NUTS transition is followed by a sweep of
    independence updates of every region's ``x0`` from its prior (:func:`vbtjax.inference.gibbs.nuts_within_gibbs`;
    step size adapted, no checkpoints): the same posterior, with the weakly informed regions moving across their
    prior in one step instead of diffusing (see docs/vep.md for what it does and does not fix). ``"smc"``: adaptive
    tempered SMC (:func:`vbtjax.inference.smc`), `num_chains` independent
    runs of `num_particles` particles, `num_samples` HMC moves... see that function; it also estimates the evidence.

    The result carries the convergence diagnostics (rank-normalised split R-hat over chains or runs, bulk and tail
    ESS, divergences; :attr:`VEPResult.converged`), a posterior predictive check of the envelope from `ppc_draws`
    draws (:attr:`VEPResult.ppc`, :attr:`VEPResult.fits`), and warns (``warn=True``) when either fails: such a
    result should not be used to plan a resection."""
    from ...inference.ppc import predictive_check

    if sampler not in SAMPLERS:
        raise ValueError(f"infer_ez: sampler must be one of {SAMPLERS}, got {sampler!r}.")
    if not isinstance(posterior, VEPPosterior):
        raise TypeError("infer_ez: expected the posterior of vep_posterior() or recording_posterior().")
    if num_chains < 2:
        raise ValueError(f"infer_ez: num_chains must be >= 2 (R-hat compares chains or runs), got {num_chains}.")
    if sampler in ("nuts", "nuts-gibbs"):
        res = _nuts(
            posterior,
            key,
            map_steps=map_steps,
            num_chains=num_chains,
            num_warmup=num_warmup,
            num_samples=num_samples,
            checkpoint=checkpoint,
            progress=progress,
            target_accept=target_accept,
            max_tree_depth=max_tree_depth,
            gibbs=sampler == "nuts-gibbs",
        )
    else:
        from ...inference.tempering import smc

        res = smc(
            posterior,
            key=key,
            num_particles=num_particles,
            num_runs=num_chains,
            progress=progress,
            max_tree_depth=max_tree_depth,
        )
    diagnostics = _diagnostics(res, sampler)
    positions = np.asarray(res.positions)
    flat = positions.reshape(-1, positions.shape[-1])
    x0 = np.asarray(res.samples["x0"])  # (chains, draws, N)
    n = x0.shape[-1]
    x0_flat = jnp.asarray(x0.reshape(-1, n))
    K_flat = jnp.asarray(np.asarray(res.samples["K"]).reshape(-1))
    ts_flat = _time_scale_draws(posterior, res.samples, K_flat.shape[0])
    seizes = _seizing_draws(
        posterior.net, x0_flat, K_flat, duration=posterior.duration, dt=posterior.dt, time_scale=ts_flat
    )
    p_above = (x0 > X0_CRITICAL).mean(axis=(0, 1))
    ez_draws = np.asarray(seizes) & (np.asarray(x0_flat) > X0_CRITICAL)  # (chains * draws, N)
    p = ez_draws.mean(axis=0)
    observed = detectability(posterior.gain) > DETECTABLE
    per_chain = ez_draws.reshape(x0.shape[0], x0.shape[1], n).mean(axis=1)[:, observed]  # (chains, observed)
    # the clinical answer's agreement between chains (or runs), whatever the x0 of unseen regions did
    diagnostics["p_ez_chain_spread"] = float(np.max(np.ptp(per_chain, axis=0))) if per_chain.size else 0.0
    labels = tuple(str(s) for s in (labels if labels is not None else [f"region {i}" for i in range(n)]))
    order = np.lexsort((-p, ~observed))  # observed regions first, each group by probability
    ranking = [{"index": int(i), "label": labels[i], "probability": float(p[i])} for i in order]

    ppc = predictive_check(np.asarray(posterior.envelope), _predictive(posterior, flat, ppc_draws, key))
    result = VEPResult(
        samples=res,
        p_ez=p,
        p_above=p_above,
        observed=observed,
        ranking=ranking,
        labels=labels,
        diagnostics=diagnostics,
        ppc=ppc,
    )
    if warn and not result.trustworthy:
        warnings.warn(result.verdict, ConvergenceWarning, stacklevel=2)
    elif warn and not (diagnostics["max_rhat"] <= 1.01 and diagnostics["divergences"] == 0):
        warnings.warn(  # converged by MAX_RHAT and MAX_DIVERGENT, but not by the strict R-hat <= 1.01
            f"VEP: the chains may not have mixed: max R-hat {diagnostics['max_rhat']:.3f} (strict threshold 1.01), "
            f"{diagnostics['divergences']} divergent of {diagnostics['draws']} draws; run longer (num_warmup, "
            "num_samples) before using the ranking clinically.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return result


def _nuts(
    posterior: VEPPosterior, key: jax.Array, *, map_steps: int, num_chains: int, gibbs: bool = False, **kwargs: Any
):
    """NUTS from around the Newton-refined mode, preconditioned by the Laplace approximation there; with `gibbs`,
    each transition followed by a sweep of prior independence updates of every region's ``x0``."""
    from ...inference.nuts_sampler import nuts

    u_map, hess = posterior_mode(posterior, init=initial_guess(posterior), steps=map_steps)
    L = laplace_factor(hess)
    z = 0.5 * jax.random.normal(jax.random.fold_in(key, 7), (num_chains, u_map.size), u_map.dtype)
    init = u_map + z @ jnp.asarray(L.T, u_map.dtype)
    if gibbs:
        from ...inference.gibbs import nuts_within_gibbs

        x0_mask = posterior.ravel({n: np.full(np.shape(v), n == "x0") for n, v in posterior.unravel(u_map).items()})
        return nuts_within_gibbs(
            posterior,
            key=key,
            init=init,
            gibbs_indices=np.flatnonzero(np.asarray(x0_mask)),
            num_warmup=kwargs["num_warmup"],
            num_samples=kwargs["num_samples"],
            preconditioner=(u_map, L),
            target_accept=kwargs["target_accept"],
            max_tree_depth=kwargs["max_tree_depth"],
        )
    return nuts(
        posterior,
        key=key,
        num_chains=num_chains,
        init=init,
        preconditioner=(u_map, L),
        initial_step_size=0.3,
        **kwargs,
    )


def _diagnostics(res: Any, sampler: str) -> dict[str, Any]:
    """Max R-hat, min bulk and tail ESS over every sampled value, divergences, draws, ``converged``, and for SMC the
    log evidence and its spread over runs (plain numbers: :attr:`VEPResult.diagnostics` is a static field)."""
    summ = res.summary()
    positions = np.asarray(res.positions)
    divergent = int(np.asarray(res.stats["diverging"]).sum()) if sampler != "smc" else 0
    n_draws = positions.shape[0] * positions.shape[1]
    rhat = max(float(np.nanmax(v["rhat"])) for v in summ.values())
    out = {
        "sampler": sampler,
        "max_rhat": rhat,
        "min_ess_bulk": min(float(np.nanmin(v["ess_bulk"])) for v in summ.values()),
        "min_ess_tail": min(float(np.nanmin(v["ess_tail"])) for v in summ.values()),
        "divergences": divergent,
        "draws": n_draws,
        "converged": bool(np.isfinite(rhat) and rhat <= MAX_RHAT and divergent <= MAX_DIVERGENT * n_draws),
    }
    if sampler == "smc":
        for k, v in res.evidence().items():
            out[k if k.startswith("log_evidence") else f"log_evidence_{k}"] = np.asarray(v, dtype=float).tolist()
    return out


def _time_scale_draws(posterior: VEPPosterior, samples: dict, n: int) -> Array:
    if "time_scale" in samples:
        return jnp.asarray(np.asarray(samples["time_scale"]).reshape(-1))
    return jnp.full((n,), 1.0 if posterior.fixed_time_scale is None else posterior.fixed_time_scale)


def _predictive(posterior: VEPPosterior, flat: np.ndarray, n_draws: int, key: jax.Array) -> np.ndarray:
    """``(S, T, contacts)`` envelopes simulated from `n_draws` evenly spaced draws of `flat` ``(draws, d)``, with
    their observation noise."""
    pick = np.linspace(0, flat.shape[0] - 1, min(int(n_draws), flat.shape[0])).astype(int)
    u = jnp.asarray(flat[pick])
    keys = jax.random.split(jax.random.fold_in(key, 11), u.shape[0])
    return np.asarray(jax.jit(jax.vmap(lambda v, k: posterior.predict(v) + posterior.noise(v, k)))(u, keys))


def _seizing_draws(
    net: Network, x0_draws: Array, K_draws: Array, *, duration: float, dt: float, time_scale: Any = None
) -> Array:
    """``(S, N)`` bool: does region ``i`` seize (``x1 > SEIZURE_X1`` at some step) in draw ``s`` (over `duration`
    ms at the draw's `time_scale`, default 1)."""
    dtype = net.model.x0.dtype
    ts = jnp.ones(K_draws.shape, dtype) if time_scale is None else jnp.asarray(time_scale, dtype)

    def seizing(x0, K, s):
        n = eqx.tree_at(lambda t: (t.model.x0, t.coupling.a), net, (x0.astype(dtype), K))
        return jnp.any(simulate_x1(n, duration, dt, dt, s) > SEIZURE_X1, axis=0)

    return jax.jit(jax.vmap(seizing))(x0_draws, K_draws.astype(dtype), ts)


def virtual_resection(
    connectome: Connectome,
    x0_draws: Any,
    K_draws: Any,
    resect: Any,
    *,
    duration: float = DURATION,
    dt: float = DT,
    period: float = PERIOD,
    time_scale_draws: Any = None,
) -> dict[str, Any]:
    """What if the regions `resect` are removed? For every posterior draw (``x0_draws`` ``(S, N)``, ``K_draws``
    ``(S,)``, ``time_scale_draws`` ``(S,)`` or None for 1) the network is simulated before and after removing all
    connections of the resected regions; a draw is *seizure-free* after the resection when no remaining region's
    ``x1`` exceeds :data:`SEIZURE_X1`.

    **Returns:** dict with ``seizure_free_probability`` (fraction of draws), ``seizing_before_probability``, the
    per-region recruitment probabilities ``p_seizing_before`` / ``p_seizing_after`` ``(N,)`` (resected regions 0
    after), and ``resected`` (indices)."""
    resect = np.unique(np.asarray(resect, dtype=int).reshape(-1))
    x0_draws = jnp.asarray(x0_draws)
    K_draws = jnp.asarray(K_draws)
    n = connectome.n_regions
    if x0_draws.ndim != 2 or x0_draws.shape[1] != n or K_draws.shape != (x0_draws.shape[0],):
        raise ValueError(
            f"virtual_resection: need x0_draws (S, {n}) and K_draws (S,), got {x0_draws.shape} and {K_draws.shape}."
        )
    if resect.size and (resect.min() < 0 or resect.max() >= n):
        raise ValueError(f"virtual_resection: resect indices must lie in 0..{n - 1}, got {resect.tolist()}.")
    keep = np.ones(n, bool)
    keep[resect] = False
    w = np.asarray(vep_connectome(connectome).weights)
    w_after = w * keep[:, None] * keep[None, :]
    base = vep_network(connectome)
    net_after = eqx.tree_at(lambda t: t.connectome.weights, base, jnp.asarray(w_after, base.connectome.weights.dtype))

    ts = time_scale_draws
    before = np.asarray(_seizing_draws(base, x0_draws, K_draws, duration=duration, dt=dt, time_scale=ts))
    after = np.asarray(_seizing_draws(net_after, x0_draws, K_draws, duration=duration, dt=dt, time_scale=ts))
    after = after & keep[None, :]
    return {
        "resected": resect.tolist(),
        "seizing_before_probability": float(before.any(axis=1).mean()),
        "seizure_free_probability": float((~after.any(axis=1)).mean()),
        "p_seizing_before": before.mean(axis=0),
        "p_seizing_after": after.mean(axis=0),
    }


class VEPResult(eqx.Module):
    """The outcome of :func:`infer_ez`.

    **Fields:**
    - `samples`: the sampler's result (:class:`~vbtjax.inference.NutsResult` or
      :class:`~vbtjax.inference.SMCResult`), draws ``(chains or runs, draws, ...)``.
    - `p_ez` ``(N,)``: the posterior probability that a region is epileptogenic: its ``x0`` exceeds
      :data:`X0_CRITICAL` *and* it seizes when the draw is simulated (a region above the critical value that the
      network's coupling holds at rest starts no seizure, and the data cannot tell its ``x0`` apart from a healthy
      one); `p_above` ``(N,)``: ``P(x0 > X0_CRITICAL)`` alone.
    - `observed` ``(N,)``: the implantation can see the region's seizures (:func:`detectability` above
      :data:`DETECTABLE`); the data cannot rule out a seizure in a region no contact sees, so such a region is never
      called epileptogenic.
    - `ranking`: list of ``{"index", "label", "probability"}`` with ``probability = p_ez``, the observed regions
      first, each group most likely first.
    - `diagnostics`: ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail``, ``divergences``, ``draws``, ``converged``,
      ``p_ez_chain_spread`` (the largest difference between chains, or runs, of an observed region's ``p_ez``: how
      stable the ranking is even where ``x0`` has not mixed), and the log evidence for SMC.
    - `ppc`: the posterior predictive check of the envelope (:class:`~vbtjax.inference.ppc.PPCResult`).
    """

    samples: Any
    p_ez: np.ndarray
    p_above: np.ndarray
    observed: np.ndarray
    ranking: list[dict[str, Any]] = eqx.field(static=True)
    labels: tuple[str, ...] = eqx.field(static=True)
    diagnostics: dict[str, Any] = eqx.field(static=True, default_factory=dict)
    ppc: Any = None

    def predicted_ez(self, threshold: float = 0.5) -> np.ndarray:
        """Observed regions with ``p_ez > threshold``."""
        return np.flatnonzero((self.p_ez > threshold) & self.observed)

    @property
    def converged(self) -> bool:
        """Max R-hat <= :data:`MAX_RHAT` and at most :data:`MAX_DIVERGENT` of the draws divergent."""
        return bool(self.diagnostics.get("converged", False))

    @property
    def fits(self) -> bool:
        """The posterior predictive check passed (the model reproduces the data)."""
        return bool(self.ppc is not None and self.ppc.fits)

    @property
    def trustworthy(self) -> bool:
        """Converged and fits: only then is a resection recommended."""
        return self.converged and self.fits

    @property
    def verdict(self) -> str:
        """One line: whether the result can be used, and why not."""
        d = self.diagnostics
        problems = []
        if not self.fits:
            r2 = self.ppc.r2 if self.ppc is not None else float("nan")
            cov = self.ppc.coverage if self.ppc is not None else float("nan")
            problems.append(f"the model does not reproduce the data (R² {r2:.2f}, 90 % coverage {cov:.2f})")
        if not self.converged:
            problems.append(
                f"the sampler has not converged (max R-hat {d.get('max_rhat', float('nan')):.2f} > {MAX_RHAT}, "
                f"{d.get('divergences', 0)} divergent of {d.get('draws', 0)} draws)"
            )
        if not problems:
            return "VEP: converged and the model reproduces the data."
        return "VEP: " + "; ".join(problems) + ": do not plan a resection on this result."


def vep_twin(
    connectome: Connectome,
    result: VEPResult,
    *,
    duration: float = DURATION,
    dt: float = DT,
    period: float = PERIOD,
    metadata: dict[str, Any] | None = None,
    inputs: Any = (),
):
    """The patient's :class:`~vbtjax.Twin`: the VEP network at the posterior mean, the posterior draws of ``x0``
    (``"model.x0"``) and ``K`` (``"coupling.a"``), and the VEP's simulation settings (Heun, `duration` and `dt` ms,
    ``x1``/``z`` sampled every `period` ms from rest), so that ``twin.predict(Resect([...]), Seizes(monitor="x1",
    threshold=SEIZURE_X1))`` is the virtual surgery of :func:`virtual_resection` over every draw. With an inferred
    time scale, the twin runs ``duration`` and ``dt`` times its posterior mean (the network's own time)."""
    from ...observation.monitors import SubSample
    from ...simulation.solvers import Heun
    from ...twin.twin import Twin

    x0 = np.asarray(result.samples.samples["x0"])
    K = np.asarray(result.samples.samples["K"])
    ts = float(np.mean(result.samples.samples["time_scale"])) if "time_scale" in result.samples.samples else 1.0
    n = connectome.n_regions
    net = vep_network(connectome, x0=x0.reshape(-1, n).mean(axis=0), K=float(K.mean()))
    meta = {"kind": "vep", "labels": list(result.labels), "p_ez": np.asarray(result.p_ez).tolist()}
    meta.update(metadata or {})
    return Twin(
        net,
        posterior={"model.x0": x0, "coupling.a": K},
        simulation={
            "t1": float(duration) * ts,
            "dt": float(dt) * ts,
            "solver": Heun(),
            "monitors": {"x1": SubSample(period=float(period) * ts)},
            "history": np.asarray(rest_history(n, net.model.x0.dtype)),
        },
        metadata=meta,
        inputs=inputs,
    )
