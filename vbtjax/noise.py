"""Noise for stochastic simulations, with TVB's semantics.

TVB's stochastic integrators add ``g(x) * sqrt(dt) * N(0, 1)`` to each state variable at each step; for additive noise
``g = sqrt(2 * nsig)``, so the increment has variance ``2 * nsig * dt``. The random numbers come from an explicit JAX
key: the same key gives the same noise whatever the block or chunk layout of the simulation (the increment of step
``n`` is drawn from ``fold_in(key, n)``).
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._params import as_float_array, is_concrete

__all__ = ["AbstractNoise", "Additive", "Multiplicative", "step_increments"]


class AbstractNoise(eqx.Module):
    """Noise: the diffusion coefficient ``g(state)`` of ``dx = f dt + g dW``."""

    @abc.abstractmethod
    def gfun(self, state: Float[Array, "n_svar N"]) -> Float[Array, "n_svar N"]:
        """Diffusion coefficient, same shape as ``state``."""

    def check_shape(self, n_svar: int, n_regions: int) -> None:
        """Raise ``ValueError`` if the noise parameters cannot broadcast to ``(n_svar, n_regions)``."""


class _AbstractNsigNoise(AbstractNoise):
    """Noise scaled by ``sqrt(2 nsig)`` with ``nsig`` a scalar, ``(n_svar,)`` or ``(n_svar, N)``."""

    nsig: Float[Array, "*shape"] = eqx.field(default=1.0, converter=as_float_array)

    def __check_init__(self):
        if self.nsig.ndim > 2:
            raise ValueError(
                f"{type(self).__name__}: nsig has shape {self.nsig.shape}; expected a scalar, (n_svar,) or (n_svar, N)."
            )
        if is_concrete(self.nsig):
            v = np.asarray(self.nsig)
            if not np.all(np.isfinite(v)) or np.any(v < 0):
                raise ValueError(f"{type(self).__name__}: nsig must be finite and >= 0 (a variance per ms).")

    def _per_svar(self):
        return self.nsig[:, None] if self.nsig.ndim == 1 else self.nsig

    def check_shape(self, n_svar, n_regions):
        try:
            np.broadcast_shapes(tuple(self._per_svar().shape), (n_svar, n_regions))
        except ValueError:
            raise ValueError(
                f"{type(self).__name__}: nsig has shape {self.nsig.shape}, which does not fit a model with "
                f"{n_svar} state variables and {n_regions} regions; "
                f"give a scalar, ({n_svar},) or ({n_svar}, {n_regions})."
            ) from None


class Additive(_AbstractNsigNoise):
    """Additive noise ``g = sqrt(2 nsig)`` (TVB's ``Additive``).

    **Arguments:**
    - `nsig`: noise intensity ``D`` (state units² per ms): a scalar, one value per state variable ``(n_svar,)``,
      or ``(n_svar, N)``. TVB's default is 1.0; typical values are 1e-5..1e-2. Zero switches a variable's noise off.
    """

    def gfun(self, state):
        return jnp.broadcast_to(jnp.sqrt(2.0 * self._per_svar()), state.shape).astype(state.dtype)


class Multiplicative(_AbstractNsigNoise):
    """Multiplicative noise ``g(x) = sqrt(2 nsig) (a x + b)`` (TVB's ``Multiplicative`` with its default linear
    ``b`` equation: ``a = 1, b = 0`` gives noise proportional to the state).

    The noise coefficient is evaluated once per step at the state at the start of the step (TVB's stochastic Euler
    and Heun), i.e. the Itô interpretation.

    **Arguments:** `nsig` as for :class:`Additive`; `a`, `b` coefficients of the linear function of the state.
    """

    a: Float[Array, "*shape"] = eqx.field(default=1.0, converter=as_float_array)
    b: Float[Array, "*shape"] = eqx.field(default=0.0, converter=as_float_array)

    def gfun(self, state):
        return (jnp.sqrt(2.0 * self._per_svar()) * (self.a * state + self.b)).astype(state.dtype)


def step_increments(key: jax.Array, steps: jax.Array, shape: tuple[int, ...], dt: float, dtype) -> jax.Array:
    """Wiener increments ``sqrt(dt) * N(0, 1)`` for the given step indices, shape ``(len(steps), *shape)``."""
    draw = lambda s: jax.random.normal(jax.random.fold_in(key, s), shape, dtype=dtype)
    return jax.vmap(draw)(steps) * jnp.sqrt(jnp.asarray(dt, dtype))
