"""Log densities for Bayesian inference: priors on a parameter selection (and on extra latent variables), a
likelihood, and the change of variables to unconstrained space.

A :class:`Posterior` turns a network, a :class:`~vbtjax.inference.Selection` of its parameters, priors and a
log-likelihood into ``log p(u | data)`` over one flat unconstrained vector ``u`` (shape ``(d,)``):

    log_density(u) = sum_i log prior_i(x_i) + log |dx/du| + log_likelihood(net(x), latents)

where ``x = forward(u)`` are the constrained values. The same object feeds BlackJAX NUTS (:func:`nuts`), tempered SMC
(:func:`smc`, which needs the prior and the likelihood separately: :meth:`Posterior.log_prior`,
:meth:`Posterior.log_likelihood_at`), the NumPyro path (:func:`numpyro_model`), simulation-based calibration and
``jax.vmap`` over many ``u``. An optional pointwise log-likelihood (one value per observation) feeds PSIS-LOO and
WAIC (:mod:`~vbtjax.inference.compare`).

Priors are NumPyro distributions over the *constrained* values (``numpyro.distributions.HalfNormal(0.1)`` for a
coupling, ``Normal(-2.5, 1.0)`` per region for an excitability); a prior may also be a function of the values of
the latents, which makes hierarchical priors (``lambda lat: Normal(lat["x0_mu"], lat["x0_sd"])``). For a prior
``Normal(loc, scale)`` with fixed ``loc, scale`` use the :class:`~vbtjax.inference.Affine` constraint with the same
``loc, scale``: the sampler then moves in the standard-normal ``u`` (the non-centred parametrisation).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .params import AbstractConstraint, Real, Selection

__all__ = ["Latent", "Posterior", "is_distribution"]


class Latent(eqx.Module):
    """A latent variable that is not a leaf of the network (observation noise, an offset, a hyper-parameter).

    **Arguments:**
    - `prior`: a NumPyro distribution of the constrained value.
    - `constraint`: its constraint (:class:`Real`, :class:`Positive`, :class:`Interval`, :class:`Affine`); must
      map onto the prior's support.
    - `init`: starting value (constrained); default: the prior's mean where finite, else its median from samples.
    - `shape`: shape of the value (default: the prior's ``batch_shape + event_shape``).
    """

    prior: Any
    constraint: AbstractConstraint = eqx.field(default_factory=Real)
    init: Any = None
    shape: tuple[int, ...] | None = eqx.field(default=None, static=True)

    def value_shape(self) -> tuple[int, ...]:
        if self.shape is not None:
            return tuple(self.shape)
        return tuple(self.prior.batch_shape) + tuple(self.prior.event_shape)


@dataclasses.dataclass(frozen=True)
class _Summed:
    """``(net, latents) -> sum(pointwise(net, latents))``: the log-likelihood of a posterior given only its pointwise
    form (a frozen dataclass rather than a lambda, so that two posteriors of the same function compare equal)."""

    pointwise: Callable[[Any, dict[str, Array]], Array]

    def __call__(self, net: Any, latents: dict[str, Array]) -> Array:
        return jnp.sum(self.pointwise(net, latents))


def is_distribution(d: Any) -> bool:
    """Whether `d` is a distribution object (``log_prob`` and ``sample``, as NumPyro's and distrax's) rather than a
    function of the latents that returns one."""
    return hasattr(d, "log_prob") and hasattr(d, "sample")


class Posterior(eqx.Module):
    """``log p(u | data)`` over the flat unconstrained vector ``u`` of a selection and latents.

    **Arguments:**
    - `net`: the network; its current values of the selected leaves are the default starting point.
    - `selection`: the :class:`~vbtjax.inference.Selection` of sampled network parameters.
    - `priors`: parameter name (as ``selection.names(net)``, e.g. ``"coupling.a"``, or a latent's name) -> a NumPyro
      distribution over the constrained value, or a function ``latent_values -> distribution`` (hierarchical). Every
      selected parameter and latent needs one (a latent's own prior is its ``Latent.prior`` unless given here).
      Batch shapes broadcast against the value (a scalar ``Normal(-2.5, 1)`` for an ``(N,)`` leaf is N independent
      normals); ``log_prob`` is summed over elements.
    - `log_likelihood`: ``(net, latents) -> scalar``, with ``latents`` a dict name -> constrained value. ``None``
      samples the prior (used by simulation-based calibration and prior predictive checks).
    - `latents`: name -> :class:`Latent`, sampled alongside the network parameters.
    - `pointwise_log_likelihood`: optional ``(net, latents) -> array`` of the log-likelihood of each observation
      (any shape, e.g. ``(T, contacts)``), whose sum is `log_likelihood`; needed only for PSIS-LOO and WAIC
      (:func:`~vbtjax.inference.comparison.loo`, :func:`~vbtjax.inference.comparison.waic`). Given without
      `log_likelihood` (``None``), the log-likelihood is its sum.

    ``u`` concatenates the raveled unconstrained values of the parameters (selection order) then of the latents
    (dict order). Everything is pure: ``log_density`` works under ``jax.jit``, ``jax.grad`` and ``jax.vmap``.
    """

    net: Any
    selection: Selection
    priors: dict[str, Any]
    log_likelihood: Callable[[Any, dict[str, Array]], Array] | None = eqx.field(static=True)
    latents: dict[str, Latent]
    names: tuple[str, ...] = eqx.field(static=True)
    shapes: tuple[tuple[int, ...], ...] = eqx.field(static=True)
    pointwise_log_likelihood: Callable[[Any, dict[str, Array]], Array] | None = eqx.field(static=True)

    def __init__(
        self,
        net: Any,
        selection: Selection,
        priors: Mapping[str, Any],
        log_likelihood: Callable[[Any, dict[str, Array]], Array] | None = None,
        latents: Mapping[str, Latent] | None = None,
        pointwise_log_likelihood: Callable[[Any, dict[str, Array]], Array] | None = None,
    ):
        if not isinstance(selection, Selection):
            raise TypeError(
                f"Posterior: selection must be a vbtjax.inference.Selection, got {type(selection).__name__}."
            )
        latents = dict(latents or {})
        for name, lat in latents.items():
            if not isinstance(lat, Latent):
                raise TypeError(f"Posterior: latents[{name!r}] must be a Latent(prior, constraint), got {lat!r}.")
        pnames = selection.check(net)
        names = tuple(pnames) + tuple(latents)
        if len(set(names)) != len(names):
            raise ValueError(f"Posterior: a latent has the same name as a network parameter: {names}.")
        priors = dict(priors)
        unknown = sorted(set(priors) - set(names))
        if unknown:
            raise ValueError(
                f"Posterior: priors given for unknown names {unknown}; the sampled names are {list(names)}."
            )
        missing = [n for n in pnames if n not in priors]
        if missing:
            raise ValueError(
                f"Posterior: no prior for {missing}; give e.g. priors={{{missing[0]!r}: "
                "numpyro.distributions.Normal(0.0, 1.0)}."
            )
        for name, lat in latents.items():
            priors.setdefault(name, lat.prior)
        for name, p in priors.items():
            if not (is_distribution(p) or callable(p)):
                raise TypeError(
                    f"Posterior: priors[{name!r}] must be a NumPyro distribution or a function of the latents."
                )
        if log_likelihood is not None and not callable(log_likelihood):
            raise TypeError("Posterior: log_likelihood must be a function (net, latents) -> scalar, or None.")
        if pointwise_log_likelihood is not None:
            if not callable(pointwise_log_likelihood):
                raise TypeError(
                    "Posterior: pointwise_log_likelihood must be a function (net, latents) -> array of the "
                    "log-likelihood of each observation, or None."
                )
            if log_likelihood is None:
                log_likelihood = _Summed(pointwise_log_likelihood)
        shapes = selection.shapes(net) + tuple(lat.value_shape() for lat in latents.values())
        self.net = net
        self.selection = selection
        self.priors = priors
        self.log_likelihood = log_likelihood
        self.latents = latents
        self.names = names
        self.shapes = shapes
        self.pointwise_log_likelihood = pointwise_log_likelihood

    # ------------------------------------------------------------------ layout

    @property
    def n_params(self) -> int:
        return len(self.selection.params)

    @property
    def dim(self) -> int:
        """Length ``d`` of the unconstrained vector."""
        return int(sum(int(np.prod(s)) for s in self.shapes))

    def _constraints(self) -> list[AbstractConstraint]:
        return [p.constraint for p in self.selection.params] + [lat.constraint for lat in self.latents.values()]

    def unravel(self, u: Float[Array, " d"]) -> dict[str, Array]:
        """The flat ``u`` (``(d,)``) split into name -> unconstrained array of each value's shape."""
        u = jnp.asarray(u)
        if u.shape != (self.dim,):
            raise ValueError(f"Posterior: expected an unconstrained vector of shape ({self.dim},), got {u.shape}.")
        out, i = {}, 0
        for name, shape in zip(self.names, self.shapes, strict=True):
            n = int(np.prod(shape))
            out[name] = u[i : i + n].reshape(shape)
            i += n
        return out

    def ravel(self, values: Mapping[str, Any]) -> Array:
        """Inverse of :meth:`unravel`: name -> unconstrained arrays to the flat ``(d,)`` vector."""
        parts = []
        for name, shape in zip(self.names, self.shapes, strict=True):
            if name not in values:
                raise ValueError(f"Posterior: missing value for {name!r}.")
            v = jnp.asarray(values[name], dtype=float)
            if v.shape != shape:
                v = jnp.broadcast_to(v, shape)
            parts.append(v.reshape(-1))
        return jnp.concatenate(parts) if parts else jnp.zeros((0,))

    def constrained(self, u: Float[Array, " d"]) -> dict[str, Array]:
        """name -> constrained value ``forward(u)``."""
        uu = self.unravel(u)
        return {n: c.forward(uu[n]) for n, c in zip(self.names, self._constraints(), strict=True)}

    def unconstrained(self, values: Mapping[str, Any]) -> Array:
        """Flat ``u`` of the constrained values ``values`` (name -> array)."""
        cons = dict(zip(self.names, self._constraints(), strict=True))
        return self.ravel({n: cons[n].inverse(jnp.asarray(values[n], dtype=float)) for n in self.names})

    def network(self, u: Float[Array, " d"]) -> Any:
        """The network with the selected parameters set from ``u``."""
        uu = self.unravel(u)
        return self.selection.apply(self.net, [uu[n] for n in self.names[: self.n_params]])

    # ------------------------------------------------------------------ densities

    def _prior(self, name: str, latent_values: dict[str, Array]):
        p = self.priors[name]
        return p if is_distribution(p) else p(latent_values)

    def log_prior(self, u: Float[Array, " d"]) -> Array:
        """``sum log prior(x) + log |dx/du|`` at ``u`` (the prior density of ``u``)."""
        x = self.constrained(u)
        uu = self.unravel(u)
        lat = {n: x[n] for n in self.latents}
        total = jnp.zeros(())
        for name, c in zip(self.names, self._constraints(), strict=True):
            lp = self._prior(name, lat).log_prob(x[name])
            total = total + jnp.sum(jnp.broadcast_to(lp, jnp.broadcast_shapes(jnp.shape(lp), x[name].shape)))
            total = total + c.log_det_jacobian(uu[name])
        return total

    def log_likelihood_at(self, u: Float[Array, " d"]) -> Array:
        """The log-likelihood at ``u`` (0 when ``log_likelihood`` is None)."""
        if self.log_likelihood is None:
            return jnp.zeros(())
        x = self.constrained(u)
        return jnp.asarray(self.log_likelihood(self.network(u), {n: x[n] for n in self.latents}))

    def pointwise_log_likelihood_at(self, u: Float[Array, " d"]) -> Array:
        """The log-likelihood of each observation at ``u`` (the array `pointwise_log_likelihood` returns, whose sum
        is :meth:`log_likelihood_at`); ``ValueError`` when the posterior has no pointwise log-likelihood."""
        if self.pointwise_log_likelihood is None:
            raise ValueError(
                "Posterior: no pointwise log-likelihood; construct the posterior with "
                "pointwise_log_likelihood=lambda net, latents: <log-likelihood of each observation> (its sum must "
                "equal log_likelihood) to compute LOO or WAIC."
            )
        x = self.constrained(u)
        return jnp.asarray(self.pointwise_log_likelihood(self.network(u), {n: x[n] for n in self.latents}))

    def log_density(self, u: Float[Array, " d"]) -> Array:
        """``log p(u | data)`` up to a constant; ``-inf`` is replaced by a large negative number so that samplers
        reject such points instead of producing NaN gradients."""
        lp = self.log_prior(u) + self.log_likelihood_at(u)
        return jnp.where(jnp.isfinite(lp), lp, -1e30)

    def __call__(self, u):
        return self.log_density(u)

    # ------------------------------------------------------------------ starting points

    def initial_position(self) -> Array:
        """``u`` of the network's current values and each latent's ``init`` (default: its prior mean)."""
        vals = self.selection.values(self.net)
        for name, lat in self.latents.items():
            if lat.init is not None:
                v = jnp.asarray(lat.init, dtype=float)
            else:
                v = jnp.asarray(self._default_init(lat), dtype=float)
            lat.constraint.check(v, f"Posterior: latent {name!r} starting value")
            vals[name] = jnp.broadcast_to(v, lat.value_shape())
        return self.unconstrained(vals)

    @staticmethod
    def _default_init(lat: Latent):
        try:
            m = np.asarray(lat.prior.mean)
            if np.all(np.isfinite(m)):
                return m
        except (NotImplementedError, AttributeError):
            pass
        s = lat.prior.sample(jax.random.key(0), (201,))
        return np.median(np.asarray(s), axis=0)

    def sample_prior(self, key: jax.Array, n: int | None = None) -> Array:
        """Draw ``u`` from the prior: ``(d,)``, or ``(n, d)`` for ``n`` draws (latents first, so that hierarchical
        priors see their hyper-parameters)."""
        if n is not None:
            return jax.vmap(lambda k: self.sample_prior(k))(jax.random.split(key, n))
        keys = jax.random.split(key, len(self.names))
        x: dict[str, Array] = {}
        order = list(self.latents) + list(self.names[: self.n_params])
        kmap = dict(zip(self.names, keys, strict=True))
        for name in order:
            lat = {k: x[k] for k in self.latents if k in x}
            shape = dict(zip(self.names, self.shapes, strict=True))[name]
            d = self._prior(name, lat)
            ev = tuple(d.event_shape)
            batch = jnp.broadcast_shapes(tuple(d.batch_shape), shape[: len(shape) - len(ev)])
            v = d.expand(batch).sample(kmap[name]) if tuple(d.batch_shape) != batch else d.sample(kmap[name])
            x[name] = jnp.broadcast_to(v, shape)
        return self.unconstrained(x)
