"""Outcomes of a simulation for what-if predictions (:meth:`vbtjax.Twin.predict`): functions of a
:class:`~vbtjax.Solution` that reduce it to what a clinician asks about.

Each outcome is an Equinox module called as ``outcome(solution)``, pure and vmappable, with a ``name`` used by
``vbtjax whatif --outcome``:

- :class:`FC`: functional connectivity ``(N, N)`` of one state variable of one monitor (Pearson correlation over
  time, after a transient).
- :class:`Seizes`: ``(N,)`` booleans, True where a region's variable exceeds a threshold at some sample (e.g. the
  Epileptor's ``x1 > 0``); the mean over posterior draws is the probability that each region seizes.
- :class:`TimeAverage`: ``(N,)`` mean of one variable after a transient.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from ..observation.features import fc as _fc
from ..simulation.simulate import Solution

__all__ = ["AbstractOutcome", "FC", "Seizes", "TimeAverage", "OUTCOMES", "outcome_by_name"]


class AbstractOutcome(eqx.Module):
    """An outcome: ``outcome(solution) -> array``. Subclasses set `monitor` (key of ``solution.ys``) and
    `variable` (state-variable index)."""

    monitor: str = eqx.field(default="raw", static=True)
    variable: int = eqx.field(default=0, static=True)
    discard: float = eqx.field(default=0.0, static=True)

    name = "outcome"

    def __check_init__(self):
        if not isinstance(self.monitor, str):
            raise TypeError(f"{type(self).__name__}: monitor must be the name of a monitor (e.g. 'raw').")
        if isinstance(self.variable, bool) or not isinstance(self.variable, int) or self.variable < 0:
            raise ValueError(f"{type(self).__name__}: variable must be a state-variable index >= 0.")
        if not self.discard >= 0:
            raise ValueError(f"{type(self).__name__}: discard must be a transient in ms >= 0, got {self.discard}.")

    def series(self, sol: Solution) -> Float[Array, "T N"]:
        """The selected variable ``(T, N)`` after the first `discard` ms."""
        if not isinstance(sol.ys, dict) or self.monitor not in sol.ys:
            have = list(sol.ys) if isinstance(sol.ys, dict) else type(sol.ys).__name__
            raise ValueError(f"{type(self).__name__}: the simulation has no monitor {self.monitor!r} (it has {have}).")
        ys = sol.ys[self.monitor]
        if ys.ndim != 3:
            raise ValueError(
                f"{type(self).__name__}: monitor {self.monitor!r} gives shape {ys.shape}; expected (T, n_var, N)."
            )
        if self.variable >= ys.shape[1]:
            raise ValueError(
                f"{type(self).__name__}: variable {self.variable} but monitor {self.monitor!r} has {ys.shape[1]}."
            )
        period = sol.n_steps * sol.dt / ys.shape[0]  # monitors sample every period ms: at period, 2 period, ...
        keep = int(math.floor(self.discard / period + 1e-9))
        x = ys[keep:, self.variable]
        if x.shape[0] < 2:
            raise ValueError(f"{type(self).__name__}: discard={self.discard} ms leaves fewer than 2 samples.")
        return x


class FC(AbstractOutcome):
    """Functional connectivity ``(N, N)``: Pearson correlation between regions of the selected variable."""

    name = "fc"

    def __call__(self, sol: Solution) -> Float[Array, "N N"]:
        return _fc(self.series(sol))


class Seizes(AbstractOutcome):
    """``(N,)`` True where the selected variable exceeds `threshold` at some sample after `discard` ms (the VEP's
    seizure criterion is ``x1 > 0``: :data:`vbtjax.vep.SEIZURE_X1`)."""

    threshold: float = eqx.field(default=0.0, static=True)
    name = "seizure"

    def __call__(self, sol: Solution) -> Bool[Array, " N"]:
        return jnp.any(self.series(sol) > self.threshold, axis=0)


class TimeAverage(AbstractOutcome):
    """``(N,)`` time average of the selected variable after `discard` ms."""

    name = "mean"

    def __call__(self, sol: Solution) -> Float[Array, " N"]:
        return jnp.mean(self.series(sol), axis=0)


OUTCOMES = {"fc": FC, "seizure": Seizes, "mean": TimeAverage}
"""The outcomes by name, as ``vbtjax whatif --outcome NAME`` and :func:`outcome_by_name` take them."""


def outcome_by_name(name: str, **kwargs) -> AbstractOutcome:
    """The outcome called `name` (``fc``, ``seizure``, ``mean``) built with `kwargs`."""
    if name not in OUTCOMES:
        raise ValueError(f"unknown outcome {name!r}; choose one of {sorted(OUTCOMES)}.")
    return OUTCOMES[name](**kwargs)
