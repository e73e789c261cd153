"""Region stimuli with TVB's semantics: ``spatial weight x temporal pattern`` added to the derivative of the model's
stimulated state variables (``model.stvar``, or those chosen), held constant over each integration step and evaluated
at the step's start time ``t = n dt`` (ms after t0), as TVB's integrators do (``x1 = x0 + dt (f + stimulus)`` for
Euler; both Heun stages see the same stimulus).

Every numeric parameter (amplitudes, onsets, frequencies, spatial weights) is a differentiable array.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._params import as_float_array, check_parameter, param

__all__ = [
    "AbstractTemporal",
    "PulseTrain",
    "Sinusoid",
    "Step",
    "GaussianPulse",
    "Stimulus",
]


class AbstractTemporal(eqx.Module):
    """A temporal pattern ``f(t)``, ``t`` in ms after t0 (scalar or array)."""

    @abc.abstractmethod
    def __call__(self, t: Float[Array, "*shape"]) -> Float[Array, "*shape"]: ...

    def __check_init__(self):
        for name, value in vars(self).items():
            if hasattr(value, "ndim") and name not in ("duration",):
                check_parameter(type(self).__name__, name, value)


class PulseTrain(AbstractTemporal):
    """Rectangular pulses: ``amplitude`` for ``width`` ms every ``period`` ms, starting at ``onset`` ms
    (TVB's ``PulseTrain`` with ``T = period``, ``tau = width``, ``amp = amplitude``)."""

    onset: Float[Array, ""] = param(0.0)
    period: Float[Array, ""] = param(100.0)
    width: Float[Array, ""] = param(10.0)
    amplitude: Float[Array, ""] = param(1.0)

    def __call__(self, t):
        since = t - self.onset
        on = (since >= 0) & (jnp.mod(since, self.period) < self.width)
        return jnp.where(on, self.amplitude, 0.0)


class Sinusoid(AbstractTemporal):
    """``amplitude * sin(2 pi frequency (t - onset) / 1000 + phase)`` for ``t >= onset``; ``frequency`` in Hz
    (TVB's ``Sinusoid`` takes kHz, since its time is in ms: TVB ``frequency=0.01`` is 10 Hz here)."""

    amplitude: Float[Array, ""] = param(1.0)
    frequency: Float[Array, ""] = param(10.0)
    phase: Float[Array, ""] = param(0.0)
    onset: Float[Array, ""] = param(0.0)

    def __call__(self, t):
        since = t - self.onset
        value = self.amplitude * jnp.sin(2.0 * jnp.pi * self.frequency * since / 1000.0 + self.phase)
        return jnp.where(since >= 0, value, 0.0)


class Step(AbstractTemporal):
    """``amplitude`` from ``onset`` ms for ``duration`` ms (default: until the end), 0 otherwise."""

    onset: Float[Array, ""] = param(0.0)
    amplitude: Float[Array, ""] = param(1.0)
    duration: Float[Array, ""] = param(float("inf"))

    def __call__(self, t):
        since = t - self.onset
        return jnp.where((since >= 0) & (since < self.duration), self.amplitude, 0.0)


class GaussianPulse(AbstractTemporal):
    """``amplitude * exp(-(t - midpoint)^2 / (2 sigma^2))``, ``midpoint`` and ``sigma`` in ms (TVB's ``Gaussian``)."""

    amplitude: Float[Array, ""] = param(1.0)
    midpoint: Float[Array, ""] = param(100.0)
    sigma: Float[Array, ""] = param(10.0)

    def __call__(self, t):
        return self.amplitude * jnp.exp(-((t - self.midpoint) ** 2) / (2.0 * self.sigma**2))


class Stimulus(eqx.Module):
    """A stimulus on chosen regions and state variables.

    **Arguments:**
    - `temporal`: the time course, e.g. ``PulseTrain(period=100.0, width=5.0, amplitude=2.0)``.
    - `regions`: indices of the stimulated regions (``None``: all regions).
    - `weight`: spatial weight, a scalar or one value per region ``(N,)`` (multiplies the temporal pattern).
    - `variables`: names or indices of the stimulated state variables (``None``: the model's ``stvar``, TVB's
      stimulated variables).

    The value added to ``d state / dt`` at time ``t`` is ``weight[i] * temporal(t)`` on each chosen region ``i`` and
    variable, in the variable's units per ms.
    """

    temporal: AbstractTemporal
    weight: Float[Array, "*N"] = eqx.field(default=1.0, converter=as_float_array)
    regions: tuple[int, ...] | None = eqx.field(default=None, static=True)
    variables: tuple | None = eqx.field(default=None, static=True)

    def __init__(
        self,
        temporal: AbstractTemporal,
        regions: Sequence[int] | None = None,
        weight=1.0,
        variables: Sequence[str | int] | None = None,
    ):
        if not isinstance(temporal, AbstractTemporal):
            raise TypeError(
                f"Stimulus: temporal must be a vbtjax.stimulus pattern (PulseTrain, Sinusoid, Step, GaussianPulse), "
                f"got {type(temporal).__name__}."
            )
        self.temporal = temporal
        self.weight = as_float_array(weight)
        check_parameter("Stimulus", "weight", self.weight)
        self.regions = None if regions is None else tuple(int(r) for r in np.atleast_1d(regions))
        self.variables = None if variables is None else tuple(variables)

    def variable_indices(self, model) -> tuple[int, ...]:
        if self.variables is None:
            return model.stimulated_variables
        out = []
        for v in self.variables:
            if isinstance(v, str):
                if v not in model.state_variables:
                    raise ValueError(
                        f"Stimulus: unknown state variable {v!r}; {type(model).__name__} has {model.state_variables}."
                    )
                out.append(model.state_variables.index(v))
            else:
                if not 0 <= int(v) < model.n_svar:
                    raise ValueError(f"Stimulus: variable index {v} out of range for {model.n_svar} state variables.")
                out.append(int(v))
        return tuple(out)

    def check(self, model, n: int) -> None:
        """Raise ``ValueError`` if the stimulus does not fit ``model`` on ``n`` regions."""
        self.variable_indices(model)
        if self.weight.ndim == 1 and self.weight.shape[0] not in (1, n):
            raise ValueError(f"Stimulus: weight has {self.weight.shape[0]} values; expected a scalar or ({n},).")
        if self.regions is not None and any(not 0 <= r < n for r in self.regions):
            raise ValueError(f"Stimulus: regions {self.regions} out of range for a connectome of {n} regions.")

    def pattern(self, model, n: int) -> Float[Array, "n_svar N"]:
        """The spatial pattern ``(n_svar, N)`` multiplying the temporal course."""
        mask = np.zeros((model.n_svar, n))
        cols = slice(None) if self.regions is None else list(self.regions)
        for k in self.variable_indices(model):
            mask[k, cols] = 1.0
        return jnp.asarray(mask, self.weight.dtype) * self.weight

    def __call__(self, t, model, n: int) -> Float[Array, "n_svar N"]:
        """Stimulus ``(n_svar, N)`` at time ``t`` (ms)."""
        return self.temporal(t) * self.pattern(model, n)
