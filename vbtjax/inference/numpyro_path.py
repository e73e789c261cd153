"""The NumPyro path: a NumPyro model that calls vbtjax's simulator, and NumPyro's NUTS on it.

:func:`numpyro_model` turns a :class:`~vbtjax.inference.Posterior` into a NumPyro model function: one
``numpyro.sample`` site per parameter and latent (same names, same priors), the network built from the sampled
values, and the log-likelihood added with ``numpyro.factor``. NumPyro then chooses its own transforms to
unconstrained space from each prior's support (not the selection's constraints), so the sampled distribution is the
same as BlackJAX's while the parametrisation may differ. Users can wrap the model in NumPyro's effect handlers,
e.g. ``numpyro.handlers.reparam(model, config={"model.x0": LocScaleReparam(0)})`` for a non-centred hierarchical
prior, or write their own model around :func:`vbtjax.simulate`.
"""

from __future__ import annotations

import time
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .nuts_sampler import NutsResult
from .posterior import Posterior, is_distribution

__all__ = ["numpyro_model", "numpyro_nuts"]


def _site_distribution(d: Any, shape: tuple[int, ...]):
    """``d`` expanded to ``shape`` with all of it as event dimensions (one site, one summed log density)."""
    ds = tuple(d.batch_shape) + tuple(d.event_shape)
    if ds != shape:
        d = d.expand(shape[: len(shape) - len(d.event_shape)])
    n_batch = len(d.batch_shape)
    return d.to_event(n_batch) if n_batch else d


def numpyro_model(posterior: Posterior):
    """A NumPyro model function (no arguments) sampling ``posterior``'s parameters and latents from their priors,
    with the log-likelihood as a ``numpyro.factor("log_likelihood", ...)`` site."""
    import numpyro

    if not isinstance(posterior, Posterior):
        raise TypeError(f"numpyro_model: expected a vbtjax.inference.Posterior, got {type(posterior).__name__}.")
    shapes = dict(zip(posterior.names, posterior.shapes, strict=True))
    pnames = posterior.names[: posterior.n_params]

    def model():
        lat: dict[str, Any] = {}
        for name in posterior.latents:
            p = posterior.priors[name]
            d = p if is_distribution(p) else p(lat)
            lat[name] = numpyro.sample(name, _site_distribution(d, shapes[name]))
        xs = []
        for name in pnames:
            p = posterior.priors[name]
            d = p if is_distribution(p) else p(lat)
            xs.append(numpyro.sample(name, _site_distribution(d, shapes[name])))
        xs = posterior.selection.to_leaves(posterior.net, xs)
        where = lambda n: tuple(p.where(n) for p in posterior.selection.params)  # noqa: E731
        net = eqx.tree_at(where, posterior.net, xs)
        if posterior.log_likelihood is not None:
            numpyro.factor("log_likelihood", posterior.log_likelihood(net, lat))

    return model


def numpyro_nuts(
    posterior: Posterior,
    *,
    key: jax.Array,
    num_chains: int = 4,
    num_warmup: int = 500,
    num_samples: int = 500,
    target_accept: float = 0.8,
    max_tree_depth: int = 10,
    init: str = "network",
    progress: bool = True,
) -> NutsResult:
    """Sample ``posterior`` with NumPyro's NUTS (chains vectorised); returns a :class:`NutsResult` like :func:`nuts`
    (``positions`` then hold the constrained values raveled, since NumPyro's unconstrained space is its own).

    `init`: ``"network"`` starts every chain at the network's current values (NumPyro's ``init_to_value``), ``"prior"``
    at a prior draw (``init_to_sample``).
    """
    from numpyro.infer import MCMC, NUTS, init_to_sample, init_to_value

    model = numpyro_model(posterior)
    if init == "network":
        u0 = posterior.initial_position()
        strategy = init_to_value(values={k: v for k, v in posterior.constrained(u0).items()})
    elif init == "prior":
        strategy = init_to_sample
    else:
        raise ValueError(f"numpyro_nuts: init must be 'network' or 'prior', got {init!r}.")
    kernel = NUTS(model, target_accept_prob=target_accept, max_tree_depth=max_tree_depth, init_strategy=strategy)
    mcmc = MCMC(
        kernel,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        chain_method="vectorized",
        progress_bar=progress,
    )
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)  # NumPyro's chain vectorisation needs raw uint32 keys
    t0 = time.perf_counter()
    mcmc.run(key, extra_fields=("diverging", "num_steps", "accept_prob", "energy", "potential_energy", "adapt_state"))
    seconds = time.perf_counter() - t0
    draws = mcmc.get_samples(group_by_chain=True)
    extra = mcmc.get_extra_fields(group_by_chain=True)
    samples = {n: jnp.asarray(draws[n]) for n in posterior.names}
    positions = jnp.concatenate([samples[n].reshape(num_chains, num_samples, -1) for n in posterior.names], axis=-1)
    n_steps = jnp.asarray(extra["num_steps"])
    stats = {
        "diverging": jnp.asarray(extra["diverging"]),
        "acceptance_rate": jnp.asarray(extra["accept_prob"]),
        "n_steps": n_steps,
        "tree_depth": jnp.ceil(jnp.log2(n_steps + 1)).astype(jnp.int32),
        "lp": -jnp.asarray(extra["potential_energy"]),
        "energy": jnp.asarray(extra["energy"]),
    }
    adapt = extra["adapt_state"]
    step_size = jnp.asarray(adapt.step_size)[:, -1]
    imm = adapt.inverse_mass_matrix
    if isinstance(imm, dict):  # NumPyro keys the mass matrix by tuples of site names
        imm = jnp.concatenate([jnp.asarray(v) for v in imm.values()], axis=-1)
    imm = jnp.asarray(imm)[:, -1]  # (chains, d) diagonal at the last draw
    return NutsResult(
        names=tuple(posterior.names),
        samples=samples,
        positions=positions,
        stats=stats,
        step_size=step_size,
        inverse_mass_matrix=jnp.asarray(np.asarray(imm)),
        warmup_stats={},
        seconds=seconds,
    )
