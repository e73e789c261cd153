"""NUTS within Gibbs: NUTS transitions of the whole vector alternated with sweeps of Metropolis independence
updates of single coordinates drawn from their standard-normal prior.

Made for posteriors whose unconstrained coordinates are non-centred (prior ``Normal(0, 1)`` in ``u``) and mostly
prior-dominated, as the VEP's per-region excitabilities: NUTS has to take small steps wherever a few directions are
stiff, so the many weakly informed coordinates only diffuse, while an independence proposal from the prior moves
such a coordinate across its whole range in one step (it is accepted with probability ``min(1, L(u') / L(u))``, the
likelihood ratio). Each kernel leaves the target invariant, so their alternation does too: the draws are of the same
posterior. Warmup adapts NUTS's step size by dual averaging (Hoffman & Gelman 2014); the metric is the identity in
``z`` with ``u = centre + factor @ z`` (a Laplace approximation, say), or in ``u`` without a preconditioner.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from .nuts_sampler import NutsResult, adapt_init, adapt_update, final_step_size
from .nuts_sampler import init as nuts_init
from .nuts_sampler import step as nuts_step
from .posterior import Posterior

__all__ = ["nuts_within_gibbs", "independence_sweep"]


def independence_sweep(
    logdensity: Callable[[Array], Array], u: Array, logdensity_u: Array, indices: Array, key: jax.Array
) -> tuple[Array, Array, Array]:
    """One sweep, in a random order, over the coordinates `indices` of `u` ``(d,)``: for each, ``u_j`` is replaced
    by a ``Normal(0, 1)`` draw with probability ``min(1, p(u') q(u_j) / (p(u) q(u_j')))`` (``p`` the target
    `logdensity`, ``q`` the standard normal; for a standard-normal prior on ``u_j`` this is the likelihood ratio).

    **Returns:** ``(u, logdensity at u, accepted (len(indices),) bool in the order of indices)``."""
    indices = jnp.asarray(indices)
    k_order, k_steps = jax.random.split(key)
    order = jax.random.permutation(k_order, indices.shape[0])

    def body(carry, xs):
        u, lu = carry
        pos, k = xs
        j = indices[pos]
        k1, k2 = jax.random.split(k)
        new = jax.random.normal(k1, (), u.dtype)
        cand = u.at[j].set(new)
        lc = logdensity(cand)
        log_ratio = lc - lu + 0.5 * (new**2 - u[j] ** 2)
        accept = jnp.isfinite(lc) & (jnp.log(jax.random.uniform(k2, (), u.dtype)) < log_ratio)
        return (jnp.where(accept, cand, u), jnp.where(accept, lc, lu)), accept

    keys = jax.random.split(k_steps, indices.shape[0])
    (u, lu), accepted = jax.lax.scan(body, (u, logdensity_u), (order, keys))
    return u, lu, jnp.zeros(indices.shape[0], bool).at[order].set(accepted)


def nuts_within_gibbs(
    target: Posterior | Callable[[Array], Array],
    *,
    key: jax.Array,
    init: Any,
    gibbs_indices: Any,
    num_warmup: int = 200,
    num_samples: int = 200,
    sweeps: int = 1,
    preconditioner: tuple[Any, Any] | None = None,
    target_accept: float = 0.8,
    max_tree_depth: int = 6,
    initial_step_size: float = 0.3,
) -> NutsResult:
    """Sample `target` (a :class:`~vbtjax.inference.Posterior` or a function ``u (d,) -> log density``) with chains
    that alternate one NUTS transition and `sweeps` :func:`independence_sweep` over `gibbs_indices` (coordinates
    whose prior in ``u`` is ``Normal(0, 1)``).

    **Arguments:** `init` ``(chains, d)`` unconstrained starting points (one chain per row); `num_warmup` steps
    adapt the step size (each chain its own), `num_samples` are kept; `preconditioner` ``(centre, factor)``: NUTS
    moves in ``z`` with ``u = centre + factor @ z`` (see :func:`vbtjax.inference.nuts`); `target_accept`,
    `max_tree_depth` as for NUTS.

    **Returns:** a :class:`~vbtjax.inference.NutsResult` whose ``stats`` also hold ``gibbs_acceptance``
    ``(chains, draws)``, the fraction of the sweep's proposals accepted (``inverse_mass_matrix`` is the identity of
    the metric in ``z``)."""
    if num_samples < 1 or num_warmup < 0 or sweeps < 0:
        raise ValueError(
            f"nuts_within_gibbs: need num_samples >= 1, num_warmup >= 0, sweeps >= 0; got {num_samples}, "
            f"{num_warmup}, {sweeps}."
        )
    if not 0.0 < target_accept < 1.0:
        raise ValueError(f"nuts_within_gibbs: target_accept must lie in (0, 1), got {target_accept}.")
    u0 = jnp.asarray(init)
    if u0.ndim != 2:
        raise ValueError(f"nuts_within_gibbs: init must be (chains, d), got shape {u0.shape}.")
    d, dtype = u0.shape[1], u0.dtype
    idx = np.asarray(gibbs_indices, dtype=int).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= d):
        raise ValueError(f"nuts_within_gibbs: gibbs_indices must lie in 0..{d - 1}.")
    if isinstance(target, Posterior):
        logdensity, names, to_constrained = target.log_density, target.names, target.constrained
    else:
        logdensity, names, to_constrained = target, ("u",), (lambda u: {"u": u})
    if preconditioner is None:
        centre, factor = jnp.zeros(d, dtype), jnp.eye(d, dtype=dtype)
    else:
        centre, factor = (jnp.asarray(a, dtype) for a in preconditioner)
    factor_inv = jnp.asarray(np.linalg.inv(np.asarray(factor, dtype=float)), dtype)
    logdensity_z = lambda z: logdensity(centre + factor @ z)  # noqa: E731
    n_gibbs = max(idx.size, 1)

    def step(carry, xs):
        u, da = carry
        k, warm = xs
        eps = jnp.where(warm, jnp.exp(da.log_eps), final_step_size(da, num_warmup))
        state = nuts_init(factor_inv @ (u - centre), logdensity_z)
        new, info, acc = nuts_step(
            jax.random.fold_in(k, 0), state, logdensity_z, eps, da.imm, max_tree_depth=max_tree_depth
        )
        # dual averaging of the step size only (the metric stays the identity in z)
        adapted = adapt_update(
            da, new.position, acc, False, False, target_accept=target_accept, adapt_mass_matrix=False
        )
        da = jax.tree.map(lambda n, o: jnp.where(warm, n, o), adapted, da)
        u, lu = centre + factor @ new.position, new.logdensity
        accepted = jnp.zeros((), dtype)
        for s in range(sweeps if idx.size else 0):
            u, lu, a = independence_sweep(logdensity, u, lu, jnp.asarray(idx), jax.random.fold_in(k, 1 + s))
            accepted = accepted + jnp.sum(a) / (n_gibbs * sweeps)
        out = {
            "position": u,
            "diverging": info.is_divergent,
            "acceptance_rate": acc,
            "n_steps": info.num_integration_steps,
            "tree_depth": info.num_trajectory_expansions,
            "lp": lu,
            "energy": info.energy,
            "gibbs_acceptance": accepted,
            "step_size": eps,
        }
        return (u, da), out

    @jax.jit
    def run(u0, keys):
        def chain(u, k):
            da = adapt_init(d, dtype, initial_step_size)
            n = num_warmup + num_samples
            ks = jax.vmap(lambda s: jax.random.fold_in(k, s))(jnp.arange(n))
            return jax.lax.scan(step, (u, da), (ks, jnp.arange(n) < num_warmup))[1]

        return jax.vmap(chain)(u0, keys)

    t0 = time.perf_counter()
    out = run(u0, jax.vmap(lambda c: jax.random.fold_in(key, c))(jnp.arange(u0.shape[0])))
    out = jax.tree.map(lambda a: jnp.asarray(np.asarray(a)), out)
    seconds = time.perf_counter() - t0
    positions = out.pop("position")[:, num_warmup:]
    step_size = out["step_size"][:, -1]
    warm = {"step_size": out["step_size"][:, :num_warmup], "acceptance_rate": out["acceptance_rate"][:, :num_warmup]}
    warm["diverging"] = out["diverging"][:, :num_warmup]
    stats = {k: v[:, num_warmup:] for k, v in out.items() if k != "step_size"}
    return NutsResult(
        names=tuple(names),
        samples=dict(jax.vmap(jax.vmap(to_constrained))(positions)),
        positions=positions,
        stats=stats,
        step_size=step_size,
        inverse_mass_matrix=jnp.ones((u0.shape[0], d), dtype),
        warmup_stats=warm,
        seconds=seconds,
    )
