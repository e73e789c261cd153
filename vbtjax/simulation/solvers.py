"""Fixed-step solvers with TVB's semantics, written as Diffrax solvers.

The network's coupling is held constant over a step (it is computed once per step from the delay buffer and passed to
the vector field as ``args``), so the solvers here are one-step methods in Diffrax's interface
(:class:`diffrax.AbstractSolver`): they work in :func:`diffrax.diffeqsolve` for plain ODEs/SDEs too, and the simulator
also accepts Diffrax's own solvers (``diffrax.Heun()``, ``diffrax.Tsit5()``...) used with a constant step.

What differs from Diffrax's solvers of the same name, and why (TVB compatibility):

- state-variable bounds (e.g. ``r >= 0``) are applied after every stage, not only at the end of a step;
- in stochastic runs the noise increment ``g(x_n) dW`` is evaluated once, at the start of the step, and added in
  every stage (TVB's ``HeunStochastic``; for additive noise this is also the Stratonovich/Itô Heun scheme).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import diffrax
import equinox as eqx
from jaxtyping import Array, Float

__all__ = ["Euler", "Heun", "RK4", "NetworkTerm", "NoiseTerm", "split_terms"]


class NetworkTerm(diffrax.AbstractTerm):
    """Drift of a network: ``vf(t, y, args) = model.dfun(y, c) (+ s)`` where ``args`` is the coupling ``c``
    ``(n_cpl, N)`` or a pair ``(c, s)`` with ``s`` a stimulus ``(n_svar, N)`` added to the derivative (TVB)."""

    model: eqx.Module

    def vf(self, t, y, args):
        if isinstance(args, tuple):
            coupling, stimulus = args
            return self.model.dfun(y, coupling) + stimulus
        return self.model.dfun(y, args)

    def contr(self, t0, t1, **kwargs):
        return t1 - t0

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

    def init(self, terms, t0, t1, y0, args):
        return None

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)

    def strong_order(self, terms):
        return 0.5

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        drift, diffusion, bound = split_terms(terms)
        dt = drift.contr(t0, t1)
        noise = 0.0 if diffusion is None else diffusion.vf_prod(t0, y0, args, diffusion.contr(t0, t1))
        y1 = self._advance(drift, bound, t0, dt, y0, args, noise)
        return y1, None, dict(y0=y0, y1=y1), None, diffrax.RESULTS.successful

    def _advance(self, drift, bound, t0, dt, y0, args, noise):
        raise NotImplementedError


class Euler(_AbstractTVBSolver):
    """Euler (Euler–Maruyama with noise): ``x1 = bound(x0 + dt f(x0) + g(x0) dW)``. TVB's ``EulerDeterministic`` /
    ``EulerStochastic``."""

    def order(self, terms):
        return 1

    def _advance(self, drift, bound, t0, dt, y0, args, noise):
        return bound(y0 + dt * drift.vf(t0, y0, args) + noise)


class Heun(_AbstractTVBSolver):
    """Heun's method as TVB's ``HeunDeterministic`` / ``HeunStochastic``::

        d1 = f(x0);  x~ = bound(x0 + dt d1 + g(x0) dW)
        x1 = bound(x0 + dt (d1 + f(x~)) / 2 + g(x0) dW)

    with the same coupling ``args`` in both stages.
    """

    def order(self, terms):
        return 2

    def _advance(self, drift, bound, t0, dt, y0, args, noise):
        d1 = drift.vf(t0, y0, args)
        y_pred = bound(y0 + dt * d1 + noise)
        d2 = drift.vf(t0 + dt, y_pred, args)
        return bound(y0 + 0.5 * dt * (d1 + d2) + noise)


class RK4(_AbstractTVBSolver):
    """Classical 4th-order Runge–Kutta (TVB's ``RungeKutta4thOrderDeterministic``), bounds applied to every stage.
    With noise, ``g(x0) dW`` is added once at the end of the step."""

    def order(self, terms):
        return 4

    def _advance(self, drift, bound, t0, dt, y0, args, noise):
        h = 0.5 * dt
        k1 = drift.vf(t0, y0, args)
        k2 = drift.vf(t0 + h, bound(y0 + h * k1), args)
        k3 = drift.vf(t0 + h, bound(y0 + h * k2), args)
        k4 = drift.vf(t0 + dt, bound(y0 + dt * k3), args)
        return bound(y0 + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4) + noise)


def is_tvb_solver(solver) -> bool:
    return isinstance(solver, _AbstractTVBSolver)
