"""Jansen–Rit: a cortical column of pyramidal cells with excitatory and inhibitory interneuron feedback."""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array, Float

from .._params import param
from ._base import AbstractNeuralMass


class JansenRit(AbstractNeuralMass):
    r"""Post-synaptic potentials ``y0, y1, y2`` of a cortical column and their time derivatives ``y3, y4, y5``.

    ``y0`` is the output of the pyramidal cells, ``y1`` the excitatory and ``y2`` the inhibitory PSP they receive;
    ``y1 - y2`` is the pyramidal membrane potential (the EEG-like signal). Equations (time in ms, potentials in mV,
    rates in 1/ms):

    $$\dot y_0 = y_3,\qquad \dot y_1 = y_4,\qquad \dot y_2 = y_5$$
    $$\dot y_3 = A a\, S(y_1 - y_2) - 2 a y_3 - a^2 y_0$$
    $$\dot y_4 = A a \left(\mu + \alpha_2 J\, S(\alpha_1 J y_0) + C\right) - 2 a y_4 - a^2 y_1$$
    $$\dot y_5 = B b\, \alpha_4 J\, S(\alpha_3 J y_0) - 2 b y_5 - b^2 y_2$$
    $$S(v) = \frac{2\nu_{max}}{1 + e^{r (v_0 - v)}}$$

    ``cvar = (1, 2)`` (``y1`` and ``y2``), and only the first coupling row $C$ = ``coupling[0]`` enters the equations,
    as in TVB: with :class:`vbtjax.coupling.SigmoidalJansenRit` that row is $a \sum_j W_{ij} S(y_{1,j} - y_{2,j})$
    (the presynaptic firing rate, the intended use); with ``Linear`` it is $a \sum_j W_{ij} y_{1,j} + b$ and the row
    coming from ``y2`` is ignored. No bounds.

    References: Jansen, B. H., & Rit, V. G. (1995). Electroencephalogram and visual evoked potential generation in a
    mathematical model of coupled cortical columns. *Biological Cybernetics*, 73, 357–366. Jansen, B. H.,
    Zouridakis, G., & Brandt, M. E. (1993). A neurophysiologically-based mathematical model of flash visual evoked
    potentials. *Biological Cybernetics*, 68, 275–283.

    **Parameters** (TVB names and defaults; each a scalar or per-region ``(N,)``):
    `A` maximum EPSP amplitude (mV, 3.25); `B` maximum IPSP amplitude (mV, 22.0); `a` inverse excitatory time constant
    (1/ms, 0.1); `b` inverse inhibitory time constant (1/ms, 0.05); `v0` potential at half-maximal firing (mV, 5.52);
    `nu_max` half of the maximal firing rate (1/ms, 0.0025); `r` steepness of the sigmoid (1/mV, 0.56); `J` average
    number of synapses between populations (135.0); `a_1` excitatory feedback connectivity (1.0); `a_2` slow
    excitatory feedback connectivity (0.8); `a_3` inhibitory feedback connectivity (0.25); `a_4` slow inhibitory
    feedback connectivity (0.25); `p_min` minimum input rate (1/ms, 0.12) and `p_max` maximum input rate (1/ms,
    0.32), both unused by TVB's equations and kept for compatibility; `mu` mean input rate (1/ms, 0.22).
    """

    A: Float[Array, "*N"] = param(3.25)
    B: Float[Array, "*N"] = param(22.0)
    a: Float[Array, "*N"] = param(0.1)
    b: Float[Array, "*N"] = param(0.05)
    v0: Float[Array, "*N"] = param(5.52)
    nu_max: Float[Array, "*N"] = param(0.0025)
    r: Float[Array, "*N"] = param(0.56)
    J: Float[Array, "*N"] = param(135.0)
    a_1: Float[Array, "*N"] = param(1.0)
    a_2: Float[Array, "*N"] = param(0.8)
    a_3: Float[Array, "*N"] = param(0.25)
    a_4: Float[Array, "*N"] = param(0.25)
    p_min: Float[Array, "*N"] = param(0.12)
    p_max: Float[Array, "*N"] = param(0.32)
    mu: Float[Array, "*N"] = param(0.22)

    state_variables: ClassVar[tuple[str, ...]] = ("y0", "y1", "y2", "y3", "y4", "y5")
    cvar: ClassVar[tuple[int, ...]] = (1, 2)
    state_variable_range: ClassVar[dict[str, tuple[float, float]]] = {
        "y0": (-1.0, 1.0),
        "y1": (-500.0, 500.0),
        "y2": (-50.0, 50.0),
        "y3": (-6.0, 6.0),
        "y4": (-20.0, 20.0),
        "y5": (-500.0, 500.0),
    }

    def _sigmoid(self, v):
        return 2.0 * self.nu_max / (1.0 + jnp.exp(self.r * (self.v0 - v)))

    def dfun(self, state, coupling):
        y0, y1, y2, y3, y4, y5 = (state[k] for k in range(6))
        a, b, J = self.a, self.b, self.J
        pyramidal_rate = self._sigmoid(y1 - y2)
        excitatory_rate = self._sigmoid(self.a_1 * J * y0)
        inhibitory_rate = self._sigmoid(self.a_3 * J * y0)
        dy3 = self.A * a * pyramidal_rate - 2.0 * a * y3 - a * a * y0
        dy4 = self.A * a * (self.mu + self.a_2 * J * excitatory_rate + coupling[0]) - 2.0 * a * y4 - a * a * y1
        dy5 = self.B * b * (self.a_4 * J * inhibitory_rate) - 2.0 * b * y5 - b * b * y2
        return jnp.stack([y3, y4, y5, dy3, dy4, dy5])
