"""Montbrió–Pazó–Roxin and Coombes–Byrne: exact mean fields of quadratic integrate-and-fire neurons."""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array, Float

from .._params import param
from ._base import AbstractNeuralMass


class MontbrioPazoRoxin(AbstractNeuralMass):
    r"""Firing rate ``r`` and mean membrane potential ``V`` of an infinite population of QIF neurons.

    Equations (time in ms, dimensionless rate and potential as in TVB):

    $$\tau \dot r = \frac{\Delta}{\pi\tau} + 2 V r$$
    $$\tau \dot V = V^2 - \pi^2\tau^2 r^2 + \eta + J\tau r + I + c_r C_r + c_v C_V$$

    where $C_r$ and $C_V$ are the long-range coupling of ``r`` and ``V`` (``cvar = (0, 1)``).
    Bounds: ``r >= 0``.

    Reference: Montbrió, E., Pazó, D., & Roxin, A. (2015). Macroscopic description for networks of spiking neurons.
    *Physical Review X*, 5(2), 021028.

    **Parameters** (TVB names and defaults; each a scalar or per-region ``(N,)``):
    `tau` characteristic time (ms, 1.0); `I` external current (0.0); `Delta` half-width of the excitability
    distribution (1.0); `J` mean synaptic weight (15.0); `eta` mean excitability (-5.0); `Gamma` half-width of the
    synaptic weight distribution (0.0, unused by TVB's equations, kept for compatibility); `cr` weight of the
    coupling through ``r`` (1.0); `cv` weight of the coupling through ``V`` (0.0).
    """

    tau: Float[Array, "*N"] = param(1.0)
    I: Float[Array, "*N"] = param(0.0)
    Delta: Float[Array, "*N"] = param(1.0)
    J: Float[Array, "*N"] = param(15.0)
    eta: Float[Array, "*N"] = param(-5.0)
    Gamma: Float[Array, "*N"] = param(0.0)
    cr: Float[Array, "*N"] = param(1.0)
    cv: Float[Array, "*N"] = param(0.0)

    state_variables: ClassVar[tuple[str, ...]] = ("r", "V")
    cvar: ClassVar[tuple[int, ...]] = (0, 1)
    stvar: ClassVar[tuple[int, ...]] = (1,)
    state_variable_range: ClassVar[dict[str, tuple[float, float]]] = {"r": (0.0, 2.0), "V": (-2.0, 1.5)}
    state_variable_boundaries: ClassVar[dict[str, tuple[float, float]]] = {"r": (0.0, float("inf"))}

    def dfun(self, state, coupling):
        r, V = state[0], state[1]
        tau = self.tau
        dr = (self.Delta / (jnp.pi * tau) + 2.0 * V * r) / tau
        dV = (
            V * V
            - jnp.pi**2 * tau * tau * r * r
            + self.eta
            + self.J * tau * r
            + self.I
            + self.cr * coupling[0]
            + self.cv * coupling[1]
        ) / tau
        return jnp.stack([dr, dV])


class CoombesByrne(AbstractNeuralMass):
    r"""Rate ``r``, mean potential ``V``, synaptic conductance ``g`` and its derivative ``q`` of an infinite
    population of QIF (theta) neurons with conductance-based synapses (Coombes & Byrne 2019).

    The Ott–Antonsen reduction, written (as in TVB) in the firing rate and mean potential of Montbrió et al. Equations
    as TVB 2.10 computes them (time and variables dimensionless):

    $$\dot r = \frac{\Delta}{\pi} + 2 V r - g r$$
    $$\dot V = V^2 - \pi^2 r^2 + \eta + (v_{syn} - V) g + C$$
    $$\dot g = \alpha q$$
    $$\dot q = \alpha (k \pi r - g - 2 q)$$

    where $C$ = ``coupling[0]`` is the long-range coupling of ``r``. TVB declares all four state variables as
    coupling variables (``cvar = (0, 1, 2, 3)``) but only the row from ``r`` enters the equations; the others are
    ignored. Note that TVB's equation for ``r`` has $-g r$, whereas its docstring (and Coombes & Byrne) write
    $-g r^2$; vbtjax follows the code TVB runs. Bounds: ``r >= 0``.

    Reference: Coombes, S., & Byrne, Á. (2019). Next generation neural mass models. In *Nonlinear Dynamics in
    Computational Neuroscience* (pp. 1–16). Springer.

    **Parameters** (TVB names and defaults; each a scalar or per-region ``(N,)``):
    `Delta` half-width of the excitability distribution (0.5); `alpha` rate of the alpha-function synapse (0.95);
    `v_syn` synaptic reversal potential (-10.0); `k` local coupling strength (1.0); `eta` mean excitability (20.0).
    """

    Delta: Float[Array, "*N"] = param(0.5)
    alpha: Float[Array, "*N"] = param(0.95)
    v_syn: Float[Array, "*N"] = param(-10.0)
    k: Float[Array, "*N"] = param(1.0)
    eta: Float[Array, "*N"] = param(20.0)

    state_variables: ClassVar[tuple[str, ...]] = ("r", "V", "g", "q")
    cvar: ClassVar[tuple[int, ...]] = (0, 1, 2, 3)
    state_variable_range: ClassVar[dict[str, tuple[float, float]]] = {
        "r": (0.0, 6.0),
        "V": (-10.0, 10.0),
        "g": (1.0, 2.0),
        "q": (-0.5, 0.7),
    }
    state_variable_boundaries: ClassVar[dict[str, tuple[float, float]]] = {"r": (0.0, float("inf"))}

    def dfun(self, state, coupling):
        r, V, g, q = state[0], state[1], state[2], state[3]
        dr = self.Delta / jnp.pi + 2.0 * V * r - g * r
        dV = V * V - jnp.pi**2 * r * r + self.eta + (self.v_syn - V) * g + coupling[0]
        dg = self.alpha * q
        dq = self.alpha * (self.k * jnp.pi * r - g - 2.0 * q)
        return jnp.stack([dr, dV, dg, dq])
