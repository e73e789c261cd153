"""The continuous Hopfield network: each region relaxes towards its input, with an optional dynamic threshold."""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._params import param
from ._base import AbstractNeuralMass


def _switch(value: Any) -> bool:
    if np.size(value) != 1 or int(np.asarray(value).reshape(-1)[0]) not in (0, 1):
        raise ValueError(f"Hopfield: 'dynamic' is 0 (static threshold) or 1 (dynamic threshold), got {value}.")
    return bool(int(np.asarray(value).reshape(-1)[0]))


class Hopfield(AbstractNeuralMass):
    r"""Continuous Hopfield units (Hopfield 1984): a potential ``x`` that relaxes to its input and a threshold
    ``theta``.

    Equations (time in ms):

    $$\tau_x \dot x = -x + C_x$$
    $$\tau_\theta \dot\theta = -\theta + C_\theta \quad\text{(``dynamic = 1``)},\qquad
      \dot\theta = \dot x \quad\text{(``dynamic = 0``, TVB's default)}$$

    where $C_x$, $C_\theta$ are the long-range couplings of ``x`` and ``theta``. With a static threshold TVB's
    model returns the derivative of ``x`` for both variables, and so does this one; ``cvar`` is ``(0,)``. With a
    dynamic threshold ``cvar`` is ``(0, 1)``, as TVB sets it when it configures the model (``cvar`` is a property of
    the instance here). The sigmoid of the Hopfield network is the coupling's (e.g.
    :class:`vbtjax.coupling.Sigmoidal`). No bounds.

    References: Hopfield, J. J. (1982). Neural networks and physical systems with emergent collective computational
    abilities. *PNAS*, 79, 2554–2558. Hopfield, J. J. (1984). Neurons with graded response have collective
    computational properties like those of two-state neurons. *PNAS*, 81, 3088–3092.

    **Parameters** (TVB names and defaults; each a scalar or per-region ``(N,)``):
    `taux` time constant of ``x`` (ms, 1.0); `tauT` time constant of ``theta`` (ms, 5.0). Static (shared by all
    regions, not differentiable): `dynamic` 0 or 1 (0).
    """

    taux: Float[Array, "*N"] = param(1.0)
    tauT: Float[Array, "*N"] = param(5.0)
    dynamic: bool = eqx.field(static=True, default=False, converter=_switch)

    state_variables: ClassVar[tuple[str, ...]] = ("x", "theta")
    state_variable_range: ClassVar[dict[str, tuple[float, float]]] = {"x": (-1.0, 2.0), "theta": (0.0, 1.0)}

    @property
    def cvar(self) -> tuple[int, ...]:  # type: ignore[override]
        """``(0, 1)`` with a dynamic threshold, else ``(0,)`` (TVB's)."""
        return (0, 1) if self.dynamic else (0,)

    def dfun(self, state, coupling):
        x, theta = state[0], state[1]
        dx = (coupling[0] - x) / self.taux
        dtheta = (coupling[1] - theta) / self.tauT if self.dynamic else dx
        return jnp.stack([dx, dtheta])
