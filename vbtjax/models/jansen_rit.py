"""Jansen–Rit and Zetterberg–Jansen: cortical columns of pyramidal cells with excitatory and inhibitory feedback."""

from __future__ import annotations

from typing import ClassVar

import jax
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


class ZetterbergJansen(AbstractNeuralMass):
    r"""Zetterberg's model of a cortical column: spiny stellate cells, pyramidal cells and inhibitory interneurons.

    The model of Zetterberg et al. (1978) from which the Jansen–Rit model was derived. Each post-synaptic potential
    ``v_k`` obeys a second-order linear filter, written as ``(v_k, y_k = dv_k/dt)``; ``v6`` and ``v7`` integrate the
    net potentials of the pyramidal cells and of the interneurons. Equations (time in ms, potentials in mV, rates in
    1/ms), with $S(v) = 2 e_0 / (1 + e^{\rho_1 (\rho_2 - v)})$ and $u = S(C)$ the long-range input rate:

    $$\dot v_k = y_k \quad (k = 1 \dots 5),\qquad \dot v_6 = y_2 - y_3,\qquad \dot v_7 = y_4 - y_5$$
    $$\dot y_1 = H_e k_e \left(\gamma_1 S(v_2 - v_3) + \gamma_{1T} (U + u)\right) - 2 k_e y_1 - k_e^2 v_1$$
    $$\dot y_2 = H_e k_e \left(\gamma_2 S(v_1) + \gamma_{2T} (P + u)\right) - 2 k_e y_2 - k_e^2 v_2$$
    $$\dot y_3 = H_i k_i\, \gamma_4 S(v_4 - v_5) - 2 k_i y_3 - k_i^2 v_3$$
    $$\dot y_4 = H_e k_e \left(\gamma_3 S(v_2 - v_3) + \gamma_{3T} (Q + u)\right) - 2 k_e y_4 - k_e^2 v_4$$
    $$\dot y_5 = H_i k_i\, \gamma_5 S(v_4 - v_5) - 2 k_i y_5 - k_e^2 v_5$$

    $C$ is the long-range coupling of ``v6`` (``cvar = (10,)``), passed through the sigmoid $S$ before it enters
    (TVB's equations assume a ``Linear`` coupling). Note the $k_e^2 v_5$ in the last equation: TVB 2.10 uses the
    excitatory rate constant there (where the inhibitory $k_i^2$ would be expected); vbtjax reproduces it. No bounds.

    $S$ is evaluated as $2 e_0\, \sigma(\rho_1 (v - \rho_2))$ with the logistic $\sigma$, which never overflows; TVB
    sets $S = 0$ when $\rho_1 (\rho_2 - v) > 709$, where this form gives below $10^{-307}$.

    References: Zetterberg, L. H., Kristiansson, L., & Mossberg, K. (1978). Performance of a model for a local neuron
    population. *Biological Cybernetics*, 31, 15–26. Jansen, B. H., & Rit, V. G. (1995). Electroencephalogram and
    visual evoked potential generation in a mathematical model of coupled cortical columns. *Biological
    Cybernetics*, 73, 357–366.

    **Parameters** (TVB names and defaults; each a scalar or per-region ``(N,)``):
    `He` maximum EPSP amplitude (mV, 3.25); `Hi` maximum IPSP amplitude (mV, 22.0); `ke` inverse excitatory time
    constant (1/ms, 0.1); `ki` inverse inhibitory time constant (1/ms, 0.05); `e0` half of the maximum firing rate
    (1/ms, 0.0025); `rho_2` firing threshold (mV, 6.0); `rho_1` steepness of the sigmoid (1/mV, 0.56); `gamma_1`
    pyramidal to stellate synapses (135.0); `gamma_2` stellate to pyramidal (108.0); `gamma_3` pyramidal to
    interneurons (33.75); `gamma_4` interneurons to pyramidal (33.75); `gamma_5` interneurons to interneurons
    (15.0); `gamma_1T`, `gamma_2T`, `gamma_3T` gains of the extrinsic input to the stellate, pyramidal and
    inhibitory populations (1.0 each); `P`, `U`, `Q` constant extrinsic rates to the pyramidal, stellate and
    inhibitory populations (1/ms, 0.12 each).
    """

    He: Float[Array, "*N"] = param(3.25)
    Hi: Float[Array, "*N"] = param(22.0)
    ke: Float[Array, "*N"] = param(0.1)
    ki: Float[Array, "*N"] = param(0.05)
    e0: Float[Array, "*N"] = param(0.0025)
    rho_2: Float[Array, "*N"] = param(6.0)
    rho_1: Float[Array, "*N"] = param(0.56)
    gamma_1: Float[Array, "*N"] = param(135.0)
    gamma_2: Float[Array, "*N"] = param(108.0)
    gamma_3: Float[Array, "*N"] = param(33.75)
    gamma_4: Float[Array, "*N"] = param(33.75)
    gamma_5: Float[Array, "*N"] = param(15.0)
    gamma_1T: Float[Array, "*N"] = param(1.0)
    gamma_2T: Float[Array, "*N"] = param(1.0)
    gamma_3T: Float[Array, "*N"] = param(1.0)
    P: Float[Array, "*N"] = param(0.12)
    U: Float[Array, "*N"] = param(0.12)
    Q: Float[Array, "*N"] = param(0.12)

    state_variables: ClassVar[tuple[str, ...]] = (
        "v1", "y1", "v2", "y2", "v3", "y3", "v4", "y4", "v5", "y5", "v6", "v7"
    )  # fmt: skip
    cvar: ClassVar[tuple[int, ...]] = (10,)
    state_variable_range: ClassVar[dict[str, tuple[float, float]]] = {
        "v1": (-100.0, 100.0),
        "y1": (-500.0, 500.0),
        "v2": (-100.0, 50.0),
        "y2": (-100.0, 6.0),
        "v3": (-100.0, 6.0),
        "y3": (-100.0, 6.0),
        "v4": (-100.0, 20.0),
        "y4": (-100.0, 20.0),
        "v5": (-100.0, 20.0),
        "y5": (-500.0, 500.0),
        "v6": (-100.0, 20.0),
        "v7": (-100.0, 20.0),
    }

    def _sigmoid(self, v):
        return 2.0 * self.e0 * jax.nn.sigmoid(self.rho_1 * (v - self.rho_2))

    def dfun(self, state, coupling):
        v1, y1, v2, y2, v3, y3, v4, y4, v5, y5 = (state[k] for k in range(10))
        ke, ki = self.ke, self.ki
        exc_gain, inh_gain = self.He * ke, self.Hi * ki
        u = self._sigmoid(coupling[0])
        s_pyramidal = self._sigmoid(v2 - v3)
        s_inhibitory = self._sigmoid(v4 - v5)
        dy1 = exc_gain * (self.gamma_1 * s_pyramidal + self.gamma_1T * (self.U + u)) - 2.0 * ke * y1 - ke * ke * v1
        s_stellate = self._sigmoid(v1)
        dy2 = exc_gain * (self.gamma_2 * s_stellate + self.gamma_2T * (self.P + u)) - 2.0 * ke * y2 - ke * ke * v2
        dy3 = inh_gain * (self.gamma_4 * s_inhibitory) - 2.0 * ki * y3 - ki * ki * v3
        dy4 = exc_gain * (self.gamma_3 * s_pyramidal + self.gamma_3T * (self.Q + u)) - 2.0 * ke * y4 - ke * ke * v4
        dy5 = inh_gain * (self.gamma_5 * s_inhibitory) - 2.0 * ki * y5 - ke * ke * v5  # ke: as in TVB 2.10
        return jnp.stack([y1, dy1, y2, dy2, y3, dy3, y4, dy4, y5, dy5, y2 - y3, y4 - y5])
