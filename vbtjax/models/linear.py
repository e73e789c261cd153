"""The linear model: one leaky state variable per region, driven by its long-range input."""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array, Float

from .._params import param
from ._base import AbstractNeuralMass


class Linear(AbstractNeuralMass):
    r"""A linear node ``x`` that relaxes at rate $-\gamma$ and sums its long-range input.

    Equation (time in ms):

    $$\dot x = \gamma x + C$$

    where $C$ is the long-range coupling of ``x`` (``cvar = (0,)``). With ``Linear`` coupling of strength $a$ the
    network $\dot x = \gamma x + a W x(t - D)$ is stable when $\gamma$ is more negative than $a$ times the largest
    in-strength (row sum of the weights). No bounds.

    Not to be confused with :class:`vbtjax.coupling.Linear`, the coupling function of the same TVB name.

    **Parameters** (TVB names and defaults; a scalar or per-region ``(N,)``):
    `gamma` damping rate (1/ms, -10.0; negative for a stable node).
    """

    gamma: Float[Array, "*N"] = param(-10.0)

    state_variables: ClassVar[tuple[str, ...]] = ("x",)
    cvar: ClassVar[tuple[int, ...]] = (0,)
    state_variable_range: ClassVar[dict[str, tuple[float, float]]] = {"x": (-1.0, 1.0)}

    def dfun(self, state, coupling):
        return jnp.stack([self.gamma * state[0] + coupling[0]])
