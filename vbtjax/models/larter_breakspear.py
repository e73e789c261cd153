"""Larter–Breakspear: a Morris–Lecar-type cortical column with an inhibitory interneuron population."""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array, Float

from .._params import param
from ._base import AbstractNeuralMass


class LarterBreakspear(AbstractNeuralMass):
    r"""Pyramidal membrane potential ``V``, potassium gating ``W`` and inhibitory potential ``Z`` (Breakspear 2003).

    Equations (non-dimensional and normalised; TVB's time unit is ms, scaled by $t_{scale}$):

    $$m_{ion} = \tfrac12 \left(1 + \tanh\frac{V - T_{ion}}{\delta_{ion}}\right) \quad (ion = Ca, Na, K)$$
    $$Q_V = \tfrac12 Q_{V,max} \left(1 + \tanh\frac{V - V_T}{\delta_V}\right), \qquad
      Q_Z = \tfrac12 Q_{Z,max} \left(1 + \tanh\frac{Z - Z_T}{\delta_Z}\right)$$
    $$\dot V / t_{scale} = -\left(g_{Ca} + r_{NMDA} a_{ee} \left((1 - C) Q_V + C\, C_V\right)\right) m_{Ca} (V - V_{Ca})
      - g_K W (V - V_K) - g_L (V - V_L)$$
    $$\qquad - \left(g_{Na} m_{Na} + a_{ee} \left((1 - C) Q_V + C\, C_V\right)\right) (V - V_{Na})
      - a_{ie} Z Q_Z + a_{ne} I_{ext}$$
    $$\dot W / t_{scale} = \phi \frac{m_K - W}{\tau_K}, \qquad
      \dot Z / t_{scale} = b \left(a_{ni} I_{ext} + a_{ei} V Q_V\right)$$

    $C_V$ is the long-range coupling of ``V`` (``cvar = (0,)``) as the coupling function returns it: the model
    does not turn ``V`` into a firing rate itself, so the paper's mean neighbour rate $\langle Q_V \rangle$ is
    obtained with TVB's ``HyperbolicTangent`` coupling, ``pre = a (1 + tanh((b V_j - midpoint) / sigma))``: with
    ``a = QV_max / 2``, ``b = 1``, ``midpoint = VT`` and ``sigma = d_V`` it is the source's $Q_V$, and $C_V$ becomes
    $\sum_j W_{ij} Q_{V,j}$ (the TVB reference run uses ``a = 0.0125``, ``sigma = 0.65``). TVB adds its local
    (surface) coupling ``lc * Q_V`` to the two $Q_V$ terms multiplied by $(1 - C)$; region-level simulations have
    no local coupling, and this model has none. No bounds.

    References: Larter, R., Speelman, B., & Worth, R. M. (1999). A coupled ordinary differential equation lattice
    model for the simulation of epileptic seizures. *Chaos*, 9(3), 795–804. Breakspear, M., Terry, J. R., & Friston,
    K. J. (2003). Modulation of excitatory synaptic coupling facilitates synchronization and complex dynamics in a
    biophysical model of neuronal dynamics. *Network: Computation in Neural Systems*, 14(4), 703–732.

    **Parameters** (TVB names and defaults; each a scalar or per-region ``(N,)``):
    `gCa` Ca conductance (1.1); `gK` K conductance (2.0); `gL` leak conductance (0.5); `phi` temperature scaling
    factor (0.7); `gNa` Na conductance (6.7); `TK` K threshold (0.0); `TCa` Ca threshold (-0.01); `TNa` Na threshold
    (0.3); `VCa` Ca Nernst potential (1.0); `VK` K Nernst potential (-0.7); `VL` leak Nernst potential (-0.5);
    `VNa` Na Nernst potential (0.53); `d_K` spread of the K threshold (0.3); `tau_K` K relaxation time (ms, 1.0);
    `d_Na` spread of the Na threshold (0.15); `d_Ca` spread of the Ca threshold (0.15); `aei` excitatory-to-inhibitory
    strength (2.0); `aie` inhibitory-to-excitatory strength (2.0); `b` time-scale factor of ``Z`` (0.1); `C` share
    of long-range versus local excitation (0.1); `ane` non-specific-to-excitatory strength (1.0); `ani`
    non-specific-to-inhibitory strength (0.4); `aee` excitatory-to-excitatory strength (0.4); `Iext` subcortical
    input (0.3); `rNMDA` NMDA/AMPA receptor ratio (0.25); `VT` mean excitatory threshold (0.0); `d_V` spread of the
    excitatory threshold (0.65); `ZT` mean inhibitory threshold (0.0); `d_Z` spread of the inhibitory threshold
    (0.7); `QV_max` maximal excitatory firing rate (1.0); `QZ_max` maximal inhibitory firing rate (1.0); `t_scale`
    time-scale factor of all three equations (1.0).
    """

    gCa: Float[Array, "*N"] = param(1.1)
    gK: Float[Array, "*N"] = param(2.0)
    gL: Float[Array, "*N"] = param(0.5)
    phi: Float[Array, "*N"] = param(0.7)
    gNa: Float[Array, "*N"] = param(6.7)
    TK: Float[Array, "*N"] = param(0.0)
    TCa: Float[Array, "*N"] = param(-0.01)
    TNa: Float[Array, "*N"] = param(0.3)
    VCa: Float[Array, "*N"] = param(1.0)
    VK: Float[Array, "*N"] = param(-0.7)
    VL: Float[Array, "*N"] = param(-0.5)
    VNa: Float[Array, "*N"] = param(0.53)
    d_K: Float[Array, "*N"] = param(0.3)
    tau_K: Float[Array, "*N"] = param(1.0)
    d_Na: Float[Array, "*N"] = param(0.15)
    d_Ca: Float[Array, "*N"] = param(0.15)
    aei: Float[Array, "*N"] = param(2.0)
    aie: Float[Array, "*N"] = param(2.0)
    b: Float[Array, "*N"] = param(0.1)
    C: Float[Array, "*N"] = param(0.1)
    ane: Float[Array, "*N"] = param(1.0)
    ani: Float[Array, "*N"] = param(0.4)
    aee: Float[Array, "*N"] = param(0.4)
    Iext: Float[Array, "*N"] = param(0.3)
    rNMDA: Float[Array, "*N"] = param(0.25)
    VT: Float[Array, "*N"] = param(0.0)
    d_V: Float[Array, "*N"] = param(0.65)
    ZT: Float[Array, "*N"] = param(0.0)
    d_Z: Float[Array, "*N"] = param(0.7)
    QV_max: Float[Array, "*N"] = param(1.0)
    QZ_max: Float[Array, "*N"] = param(1.0)
    t_scale: Float[Array, "*N"] = param(1.0)

    state_variables: ClassVar[tuple[str, ...]] = ("V", "W", "Z")
    cvar: ClassVar[tuple[int, ...]] = (0,)
    state_variable_range: ClassVar[dict[str, tuple[float, float]]] = {
        "V": (-1.5, 1.5),
        "W": (-1.5, 1.5),
        "Z": (-1.5, 1.5),
    }

    def dfun(self, state, coupling):
        V, W, Z = state[0], state[1], state[2]
        c_V = coupling[0]

        def gate(x, threshold, spread):
            return 0.5 * (1.0 + jnp.tanh((x - threshold) / spread))

        m_Ca = gate(V, self.TCa, self.d_Ca)
        m_Na = gate(V, self.TNa, self.d_Na)
        m_K = gate(V, self.TK, self.d_K)
        QV = self.QV_max * gate(V, self.VT, self.d_V)
        QZ = self.QZ_max * gate(Z, self.ZT, self.d_Z)

        local = 1.0 - self.C
        g_Ca_total = self.gCa + self.rNMDA * self.aee * (local * QV + self.C * c_V)
        g_Na_total = self.gNa * m_Na + self.aee * (local * QV + self.C * c_V)
        dV = (
            -g_Ca_total * m_Ca * (V - self.VCa)
            - self.gK * W * (V - self.VK)
            - self.gL * (V - self.VL)
            - g_Na_total * (V - self.VNa)
            - self.aie * Z * QZ
            + self.ane * self.Iext
        )
        dW = self.phi * (m_K - W) / self.tau_K
        dZ = self.b * (self.ani * self.Iext + self.aei * V * QV)
        return self.t_scale * jnp.stack([dV, dW, dZ])
