r"""Exact mean fields of quadratic integrate-and-fire populations beyond :class:`MontbrioPazoRoxin`: Coombes &
Byrne's 2D reduction, Gast–Schmidt–Knösche's adaptive populations and Dumont & Gutkin's E–I pair (TVB's
``infinite_theta`` family). Firing rates ``r`` are bounded below by 0, as in TVB."""

from __future__ import annotations

import math
from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array, Float

from .._params import param
from ._base import AbstractNeuralMass

_PI = math.pi
_INF = float("inf")


class CoombesByrne2D(AbstractNeuralMass):
    r"""Coombes & Byrne's QIF mean field with instantaneous synapses: firing rate ``r`` and mean membrane potential
    ``V`` of a Lorentzian-heterogeneous population with conductance-based self-coupling.

    Equations (dimensionless time; TVB reads it as ms):

    $$\dot r = \Delta/\pi + 2 V r - k \pi r^2$$
    $$\dot V = V^2 - \pi^2 r^2 + \eta + (v_{syn} - V)\, k \pi r + C_r$$

    where $C_r$ is the long-range coupling of ``r`` (``cvar = (0, 1)`` as in TVB, but only the first row is used).
    Bounds: ``r >= 0``.

    References: Coombes, S., & Byrne, Á. (2019). Next generation neural mass models. In *Nonlinear Dynamics in
    Computational Neuroscience*, 1–16. Springer.

    **Parameters** (TVB names and defaults; each a scalar or per-region ``(N,)``):
    `Delta` half-width of the excitability distribution (1.0); `v_syn` synaptic reversal potential (-4.0); `k`
    synaptic strength (1.0); `eta` mean excitability (2.0).
    """

    Delta: Float[Array, "*N"] = param(1.0)
    v_syn: Float[Array, "*N"] = param(-4.0)
    k: Float[Array, "*N"] = param(1.0)
    eta: Float[Array, "*N"] = param(2.0)

    state_variables: ClassVar[tuple[str, ...]] = ("r", "V")
    cvar: ClassVar[tuple[int, ...]] = (0, 1)
    state_variable_range: ClassVar[dict[str, tuple[float, float]]] = {"r": (0.0, 2.0), "V": (-2.0, 1.5)}
    state_variable_boundaries: ClassVar[dict[str, tuple[float, float]]] = {"r": (0.0, _INF)}

    def dfun(self, state, coupling):
        r, V = state[0], state[1]
        kpr = self.k * _PI * r
        dr = self.Delta / _PI + 2.0 * V * r - kpr * r
        dV = V * V - _PI**2 * r * r + self.eta + (self.v_syn - V) * kpr + coupling[0]
        return jnp.stack([dr, dV])


def _gast_rates(model, state, coupling, drive):
    """``(dr, dV, dA, dB)`` of both Gast–Schmidt–Knösche models; ``drive(r, A)`` is their adaptation-dependent
    input to ``V``."""
    r, V, A, B = (state[k] for k in range(4))
    tau = model.tau
    dr = (model.Delta / (_PI * tau) + 2.0 * V * r) / tau
    dV = (
        V * V
        - (_PI * tau * r) ** 2
        + model.eta
        + drive(r, A)
        + model.I
        + model.cr * coupling[0]
        + model.cv * coupling[1]
    ) / tau
    dA = B / model.tau_A
    dB = (-2.0 * B - A + model.alpha * r) / model.tau_A
    return jnp.stack([dr, dV, dA, dB])


class GastSchmidtKnosche_SD(AbstractNeuralMass):
    r"""Gast, Schmidt & Knösche's QIF mean field with synaptic depression: rate ``r``, potential ``V``, and a
    second-order (alpha-kernel) depression ``A`` with its derivative ``B``, which scales down the recurrent input.

    Equations (dimensionless time; TVB reads it as ms):

    $$\tau\dot r = \Delta/(\pi\tau) + 2 V r$$
    $$\tau\dot V = V^2 - \pi^2\tau^2 r^2 + \eta + J\tau r\,(1 - A) + I + c_r C_r + c_v C_V$$
    $$\tau_A\dot A = B,\qquad \tau_A\dot B = -2B - A + \alpha r$$

    where $C_r, C_V$ are the long-range couplings of ``r`` and ``V`` (``cvar = (0, 1, 2, 3)`` as in TVB; the rows of
    ``A`` and ``B`` are not used). Bounds: ``r >= 0``.

    References: Gast, R., Schmidt, H., & Knösche, T. R. (2020). A mean-field description of bursting dynamics in
    spiking neural networks with short-term adaptation. *Neural Computation*, 32(9), 1615–1634.

    **Parameters** (TVB names and defaults; each a scalar or per-region ``(N,)``):
    `tau` membrane time constant (1.0); `tau_A` depression time constant (10.0); `alpha` depression rate (0.5);
    `I` external input (0.0); `Delta` half-width of the excitability distribution (2.0); `J` recurrent coupling
    (21.2132); `eta` mean excitability (-6.0); `cr` gain of the coupling of ``r`` (1.0); `cv` gain of the coupling
    of ``V`` (0.0).
    """

    tau: Float[Array, "*N"] = param(1.0)
    tau_A: Float[Array, "*N"] = param(10.0)
    alpha: Float[Array, "*N"] = param(0.5)
    I: Float[Array, "*N"] = param(0.0)
    Delta: Float[Array, "*N"] = param(2.0)
    J: Float[Array, "*N"] = param(21.2132)
    eta: Float[Array, "*N"] = param(-6.0)
    cr: Float[Array, "*N"] = param(1.0)
    cv: Float[Array, "*N"] = param(0.0)

    state_variables: ClassVar[tuple[str, ...]] = ("r", "V", "A", "B")
    cvar: ClassVar[tuple[int, ...]] = (0, 1, 2, 3)
    state_variable_range: ClassVar[dict[str, tuple[float, float]]] = {
        "r": (0.0, 4.0),
        "V": (-3.0, 0.3),
        "A": (0.0, 0.4),
        "B": (-0.2, 0.3),
    }
    state_variable_boundaries: ClassVar[dict[str, tuple[float, float]]] = {"r": (0.0, _INF)}

    def dfun(self, state, coupling):
        return _gast_rates(self, state, coupling, lambda r, A: self.J * self.tau * r * (1.0 - A))


class GastSchmidtKnosche_SF(AbstractNeuralMass):
    r"""Gast, Schmidt & Knösche's QIF mean field with spike-frequency adaptation: as
    :class:`GastSchmidtKnosche_SD`, but the adaptation ``A`` is subtracted from the input instead of scaling the
    recurrent coupling.

    Equations (dimensionless time; TVB reads it as ms):

    $$\tau\dot r = \Delta/(\pi\tau) + 2 V r$$
    $$\tau\dot V = V^2 - \pi^2\tau^2 r^2 + \eta + J\tau r - A + I + c_r C_r + c_v C_V$$
    $$\tau_A\dot A = B,\qquad \tau_A\dot B = -2B - A + \alpha r$$

    ``cvar = (0, 1, 2, 3)`` as in TVB (the rows of ``A`` and ``B`` are not used). Bounds: ``r >= 0``.

    References: Gast, R., Schmidt, H., & Knösche, T. R. (2020). A mean-field description of bursting dynamics in
    spiking neural networks with short-term adaptation. *Neural Computation*, 32(9), 1615–1634.

    **Parameters** (TVB names and defaults; each a scalar or per-region ``(N,)``):
    `tau` (1.0); `tau_A` (10.0); `alpha` adaptation rate (10.0); `I` (0.0); `Delta` (2.0); `J` (21.2132); `eta`
    (1.0); `cr` (1.0); `cv` (0.0), as in :class:`GastSchmidtKnosche_SD`.
    """

    tau: Float[Array, "*N"] = param(1.0)
    tau_A: Float[Array, "*N"] = param(10.0)
    alpha: Float[Array, "*N"] = param(10.0)
    I: Float[Array, "*N"] = param(0.0)
    Delta: Float[Array, "*N"] = param(2.0)
    J: Float[Array, "*N"] = param(21.2132)
    eta: Float[Array, "*N"] = param(1.0)
    cr: Float[Array, "*N"] = param(1.0)
    cv: Float[Array, "*N"] = param(0.0)

    state_variables: ClassVar[tuple[str, ...]] = ("r", "V", "A", "B")
    cvar: ClassVar[tuple[int, ...]] = (0, 1, 2, 3)
    state_variable_range: ClassVar[dict[str, tuple[float, float]]] = {
        "r": (0.0, 2.0),
        "V": (-2.0, 1.5),
        "A": (-1.0, 1.0),
        "B": (-1.0, 1.0),
    }
    state_variable_boundaries: ClassVar[dict[str, tuple[float, float]]] = {"r": (0.0, _INF)}

    def dfun(self, state, coupling):
        return _gast_rates(self, state, coupling, lambda r, A: self.J * self.tau * r - A)


class DumontGutkin(AbstractNeuralMass):
    r"""Dumont & Gutkin's excitatory–inhibitory pair of QIF mean fields with first-order synapses: rates ``r_e``,
    ``r_i``, potentials ``V_e``, ``V_i`` and the synaptic activations ``s_ab`` (from population ``b`` onto ``a``).

    Equations (dimensionless time; TVB reads it as ms), for $a \in \{e, i\}$:

    $$\tau_a\dot r_a = \Delta_a/(\pi\tau_a) + 2 V_a r_a$$
    $$\tau_a\dot V_a = V_a^2 + \eta_a - \pi^2\tau_a^2 r_a^2 + \tau_a s_{ae} - \tau_a s_{ai} + I_a$$
    $$\tau_s\dot s_{ee} = -s_{ee} + J_{ee} r_e + C,\quad \tau_s\dot s_{ei} = -s_{ei} + J_{ei} r_i,\quad
      \tau_s\dot s_{ie} = -s_{ie} + J_{ie} r_e + \Gamma C,\quad \tau_s\dot s_{ii} = -s_{ii} + J_{ii} r_i$$

    where $C$ is the long-range coupling of ``r_e`` (``cvar = (0, 1, 4, 5)`` as in TVB; only the first row is used),
    reaching the excitatory population and, with gain $\Gamma$, the inhibitory one. Bounds: ``r_e, r_i >= 0``.

    References: Dumont, G., & Gutkin, B. (2019). Macroscopic phase resetting-curves determine oscillatory coherence
    and signal transfer in inter-coupled neural circuits. *PLoS Computational Biology*, 15(5), e1007019.

    **Parameters** (TVB names and defaults; each a scalar or per-region ``(N,)``):
    `I_e` (0.0), `Delta_e` (1.0), `eta_e` (-5.0), `tau_e` (10.0): input, excitability half-width and mean, and
    time constant of the excitatory population; `I_i` (0.0), `Delta_i` (1.0), `eta_i` (-5.0), `tau_i` (10.0): the
    same for the inhibitory one; `tau_s` synaptic time constant (1.0); `J_ee` (0.0), `J_ei` (10.0), `J_ie` (0.0),
    `J_ii` (15.0) synaptic weights; `Gamma` gain of the long-range coupling onto the inhibitory population (5.0).
    """

    I_e: Float[Array, "*N"] = param(0.0)
    Delta_e: Float[Array, "*N"] = param(1.0)
    eta_e: Float[Array, "*N"] = param(-5.0)
    tau_e: Float[Array, "*N"] = param(10.0)
    I_i: Float[Array, "*N"] = param(0.0)
    Delta_i: Float[Array, "*N"] = param(1.0)
    eta_i: Float[Array, "*N"] = param(-5.0)
    tau_i: Float[Array, "*N"] = param(10.0)
    tau_s: Float[Array, "*N"] = param(1.0)
    J_ee: Float[Array, "*N"] = param(0.0)
    J_ei: Float[Array, "*N"] = param(10.0)
    J_ie: Float[Array, "*N"] = param(0.0)
    J_ii: Float[Array, "*N"] = param(15.0)
    Gamma: Float[Array, "*N"] = param(5.0)

    state_variables: ClassVar[tuple[str, ...]] = ("r_e", "V_e", "s_ee", "s_ei", "r_i", "V_i", "s_ie", "s_ii")
    cvar: ClassVar[tuple[int, ...]] = (0, 1, 4, 5)
    state_variable_range: ClassVar[dict[str, tuple[float, float]]] = {
        "r_e": (0.0, 2.0),
        "V_e": (-2.0, 1.5),
        "s_ee": (-1.0, 1.0),
        "s_ei": (-1.0, 1.0),
        "r_i": (0.0, 2.0),
        "V_i": (-2.0, 1.5),
        "s_ie": (-1.0, 1.0),
        "s_ii": (-1.0, 1.0),
    }
    state_variable_boundaries: ClassVar[dict[str, tuple[float, float]]] = {"r_e": (0.0, _INF), "r_i": (0.0, _INF)}

    def dfun(self, state, coupling):
        r_e, V_e, s_ee, s_ei, r_i, V_i, s_ie, s_ii = (state[k] for k in range(8))
        C = coupling[0]

        def population(r, V, tau, Delta, eta, s_in_e, s_in_i, I):
            dr = (Delta / (_PI * tau) + 2.0 * V * r) / tau
            dV = (V * V + eta - (tau * _PI * r) ** 2 + tau * s_in_e - tau * s_in_i + I) / tau
            return dr, dV

        dr_e, dV_e = population(r_e, V_e, self.tau_e, self.Delta_e, self.eta_e, s_ee, s_ei, self.I_e)
        dr_i, dV_i = population(r_i, V_i, self.tau_i, self.Delta_i, self.eta_i, s_ie, s_ii, self.I_i)
        ds_ee = (-s_ee + self.J_ee * r_e + C) / self.tau_s
        ds_ei = (-s_ei + self.J_ei * r_i) / self.tau_s
        ds_ie = (-s_ie + self.J_ie * r_e + self.Gamma * C) / self.tau_s
        ds_ii = (-s_ii + self.J_ii * r_i) / self.tau_s
        return jnp.stack([dr_e, dV_e, ds_ee, ds_ei, dr_i, dV_i, ds_ie, ds_ii])
