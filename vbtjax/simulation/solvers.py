"""Fixed-step solvers with TVB's semantics, written as Diffrax solvers.

The network's coupling is held constant over a step (it is computed once per step from the delay buffer and passed to
the vector field as ``args``), so the solvers here are one-step methods in Diffrax's interface
(:class:`diffrax.AbstractSolver`): they work in :func:`diffrax.diffeqsolve` for plain ODEs/SDEs too, and the simulator
also accepts Diffrax's own solvers (``diffrax.Heun()``, ``diffrax.Tsit5()``...) used with a constant step.

What differs from Diffrax's solvers of the same name, and why (TVB compatibility):

- state-variable bounds (e.g. ``r >= 0``) are applied after every stage, not only at the end of a step;
- in stochastic runs the noise increment ``g(x_n) dW`` is evaluated once, at the start of the step, and added in
  every stage (TVB's ``HeunStochastic``; for additive noise this is also the Stratonovich/Itô Heun scheme);
- below float64 (float32, float16, bfloat16) the update ``x1 = x0 + dx`` is a compensated (Kahan) sum: the solver's
  state (``init`` / ``step``'s ``solver_state``) carries the low-order part that rounding ``x0 + dx`` lost, and the
  next step adds it back. The state then carries one rounding error instead of one per step (``docs/concepts.md``,
  "Precision"). float64 runs are unchanged; a subclass with ``compensate_below = 0`` turns it off.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import diffrax
import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

__all__ = ["Euler", "Heun", "RK4", "NetworkTerm", "NoiseTerm", "split_terms"]


class NetworkTerm(diffrax.AbstractTerm):
    """Drift of a network: ``vf(t, y, args) = model.dfun(y, c) (+ s)`` where ``args`` is the coupling ``c``
    ``(n_cpl, N)`` or a pair ``(c, s)`` with ``s`` a stimulus ``(n_svar, N)`` added to the derivative (TVB).

    `dt` (ms, optional): the step, returned by ``contr`` instead of ``t1 - t0``. In float32 ``t1 - t0`` at
    ``t0 = n dt`` is off by up to half an ulp of ``t0`` (3e-5 ms at t0 = 500 ms: a 3e-4 relative error in the step,
    the same sign for runs of steps), which the simulator avoids by giving the step itself."""

    model: eqx.Module
    dt: float | None = eqx.field(static=True, default=None)

    def vf(self, t, y, args):
        if isinstance(args, tuple):
            coupling, stimulus = args
            return self.model.dfun(y, coupling) + stimulus
        return self.model.dfun(y, args)

    def contr(self, t0, t1, **kwargs):
        return t1 - t0 if self.dt is None else self.dt

    def prod(self, vf, control):
        return vf * control

    def bound(self, y):
        return self.model.bound(y)


class NoiseTerm(diffrax.AbstractTerm):
    """Diagonal noise ``g(y) * dW`` whose increment ``dW`` (same shape as ``y``) was drawn for this step."""

    noise: eqx.Module
    increment: Float[Array, "n_svar N"]

    def vf(self, t, y, args):
        return self.noise.gfun(y)

    def contr(self, t0, t1, **kwargs):
        return self.increment

    def prod(self, vf, control):
        return vf * control


def split_terms(terms) -> tuple[diffrax.AbstractTerm, diffrax.AbstractTerm | None, Callable]:
    """Split ``terms`` into (drift, diffusion or None, bound function)."""
    if isinstance(terms, diffrax.MultiTerm):
        drift, diffusion = terms.terms
    else:
        drift, diffusion = terms, None
    bound = getattr(drift, "bound", lambda y: y)
    return drift, diffusion, bound


class _AbstractTVBSolver(diffrax.AbstractSolver):
    term_structure: ClassVar = diffrax.AbstractTerm
    interpolation_cls: ClassVar[Callable[..., diffrax.LocalLinearInterpolation]] = diffrax.LocalLinearInterpolation
    compensate_below: ClassVar[int] = 8
    """States of floating types narrower than this many bytes are updated with compensated (Kahan) summation."""

    def compensates(self, dtype) -> bool:
        """Whether states of `dtype` are updated with compensated summation (float32, float16, bfloat16)."""
        return np.dtype(dtype).itemsize < self.compensate_below

    def init(self, terms, t0, t1, y0, args):
        """The solver's state: the compensation (zeros like `y0`) when :meth:`compensates`, else ``None``."""
        return jnp.zeros_like(y0) if self.compensates(y0.dtype) else None

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)

    def strong_order(self, terms):
        return 0.5

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        drift, diffusion, bound = split_terms(terms)
        dt = drift.contr(t0, t1)
        noise = 0.0 if diffusion is None else diffusion.vf_prod(t0, y0, args, diffusion.contr(t0, t1))
        dy = self._increment(drift, bound, t0, dt, y0, args, noise)
        y1, solver_state = compensated_add(y0, dy, solver_state, bound)
        return y1, None, dict(y0=y0, y1=y1), solver_state, diffrax.RESULTS.successful

    def _increment(self, drift, bound, t0, dt, y0, args, noise):
        """The step's increment ``dx``, so that ``x1 = bound(x0 + dx)``."""
        raise NotImplementedError


def compensated_add(y, dy, compensation, bound=lambda y: y):
    """``(bound(y + dy), new compensation)``: with `compensation` ``None`` a plain sum (and ``None``); else Kahan's
    compensated sum, where `compensation` is what rounding the previous sums lost (``exact = y + compensation``).
    Where `bound` clips the sum the compensation restarts at 0. Written so that no algebraic simplification applies:
    XLA does not reassociate floating-point sums (no fast-math), so ``(s - y) - z`` is kept."""
    if compensation is None:
        return bound(y + dy), None
    z = dy + compensation
    s = y + z
    lost = z - (s - y)  # exact when |y| >= |z| (Fast2Sum): the low part of y + z that s could not hold
    y1 = bound(s)
    return y1, jnp.where(y1 == s, lost, jnp.zeros_like(lost))


class Euler(_AbstractTVBSolver):
    """Euler (Euler–Maruyama with noise): ``x1 = bound(x0 + dt f(x0) + g(x0) dW)``. TVB's ``EulerDeterministic`` /
    ``EulerStochastic``."""

    def order(self, terms):
        return 1

    def _increment(self, drift, bound, t0, dt, y0, args, noise):
        return dt * drift.vf(t0, y0, args) + noise


class Heun(_AbstractTVBSolver):
    """Heun's method as TVB's ``HeunDeterministic`` / ``HeunStochastic``::

        d1 = f(x0);  x~ = bound(x0 + dt d1 + g(x0) dW)
        x1 = bound(x0 + dt (d1 + f(x~)) / 2 + g(x0) dW)

    with the same coupling ``args`` in both stages. Below float64 the final sum ``x0 + dx`` is compensated (Kahan;
    the compensation is the solver's state, see :mod:`vbtjax.simulation.solvers`).
    """

    def order(self, terms):
        return 2

    def _increment(self, drift, bound, t0, dt, y0, args, noise):
        d1 = drift.vf(t0, y0, args)
        y_pred = bound(y0 + dt * d1 + noise)
        d2 = drift.vf(t0 + dt, y_pred, args)
        return 0.5 * dt * (d1 + d2) + noise


class RK4(_AbstractTVBSolver):
    """Classical 4th-order Runge–Kutta (TVB's ``RungeKutta4thOrderDeterministic``), bounds applied to every stage.
    With noise, ``g(x0) dW`` is added once at the end of the step."""

    def order(self, terms):
        return 4

    def _increment(self, drift, bound, t0, dt, y0, args, noise):
        h = 0.5 * dt
        k1 = drift.vf(t0, y0, args)
        k2 = drift.vf(t0 + h, bound(y0 + h * k1), args)
        k3 = drift.vf(t0 + h, bound(y0 + h * k2), args)
        k4 = drift.vf(t0 + dt, bound(y0 + dt * k3), args)
        return dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4) + noise


def is_tvb_solver(solver) -> bool:
    return isinstance(solver, _AbstractTVBSolver)
