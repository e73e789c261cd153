"""Reduced Wong–Wang models: NMDA gating dynamics of one excitatory pool, or of coupled excitatory/inhibitory pools
(also with a regional gain, Deco et al. 2021)."""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array, Float

from .._params import param
from ._base import AbstractNeuralMass

_SERIES_BELOW = 1e-3
_EXP_FLOOR = -700.0


def _rate(y, d):
    r"""The transfer function $y / (1 - e^{-d y})$ without its removable singularity at $y = 0$.

    Near $d y = 0$ the Taylor series $1/d + y/2 + d y^2/12$ replaces the quotient (more accurate than the quotient
    there, and finite with finite gradients at $y = 0$). $d y$ is floored at $-700$ so that ``exp`` never overflows
    (the rate there is below $10^{-300} |y|$, i.e. zero).
    """
    z = d * y
    small = jnp.abs(z) < _SERIES_BELOW
    z_safe = jnp.maximum(jnp.where(small, 1.0, z), _EXP_FLOOR)
    direct = y / (-jnp.expm1(-z_safe))
    series = 1.0 / d + 0.5 * y + d * y * y / 12.0
    return jnp.where(small, series, direct)


class ReducedWongWang(AbstractNeuralMass):
    r"""NMDA gating variable ``S`` of one excitatory population (Deco et al. 2013 reduction of Wong & Wang 2006).

    Equations (time in ms; $S$ dimensionless in $[0, 1]$):

    $$x = w J_N S + I_o + J_N C_S$$
    $$H(x) = \frac{a x - b}{1 - \exp(-d (a x - b))}$$
    $$\dot S = -\frac{S}{\tau_s} + \gamma (1 - S) H(x)$$

    where $C_S$ is the long-range coupling of ``S`` (``cvar = (0,)``) and $H$ is the population rate in kHz.
    Bounds: ``S`` in ``[0, 1]`` (TVB's ``state_variable_boundaries``).

    At $a x - b = 0$, where TVB's quotient is $0/0$, $H$ takes its limit $1/d$ (a Taylor series is used for
    $|d (a x - b)| < 10^{-3}$); elsewhere the values equal TVB's to rounding.

    References: Wong, K.-F., & Wang, X.-J. (2006). A recurrent network mechanism of time integration in perceptual
    decisions. *Journal of Neuroscience*, 26(4), 1314–1328. Deco, G., Ponce-Alvarez, A., Mantini, D., Romani, G. L.,
    Hagmann, P., & Corbetta, M. (2013). Resting-state functional connectivity emerges from structurally and
    dynamically shaped slow linear fluctuations. *Journal of Neuroscience*, 33(27), 11239–11252.

    **Parameters** (TVB names and defaults; each a scalar or per-region ``(N,)``):
    `a` input gain (n/C, 0.270); `b` input shift (kHz, 0.108); `d` curvature of the transfer function (ms, 154.0);
    `gamma` kinetic parameter (0.641); `tau_s` NMDA decay time constant (ms, 100.0); `w` excitatory recurrence
    (0.6); `J_N` NMDA coupling strength (nA, 0.2609); `I_o` effective external input (nA, 0.33); `sigma_noise` noise
    amplitude (nA, 1e-9; unused by the equations, kept for compatibility: set the noise on the integrator instead).
    """

    a: Float[Array, "*N"] = param(0.270)
    b: Float[Array, "*N"] = param(0.108)
    d: Float[Array, "*N"] = param(154.0)
    gamma: Float[Array, "*N"] = param(0.641)
    tau_s: Float[Array, "*N"] = param(100.0)
    w: Float[Array, "*N"] = param(0.6)
    J_N: Float[Array, "*N"] = param(0.2609)
    I_o: Float[Array, "*N"] = param(0.33)
    sigma_noise: Float[Array, "*N"] = param(1e-9)

    state_variables: ClassVar[tuple[str, ...]] = ("S",)
    cvar: ClassVar[tuple[int, ...]] = (0,)
    state_variable_range: ClassVar[dict[str, tuple[float, float]]] = {"S": (0.0, 1.0)}
    state_variable_boundaries: ClassVar[dict[str, tuple[float, float]]] = {"S": (0.0, 1.0)}

    def dfun(self, state, coupling):
        S = state[0]
        x = self.w * self.J_N * S + self.I_o + self.J_N * coupling[0]
        H = _rate(self.a * x - self.b, self.d)
        dS = -(S / self.tau_s) + (1.0 - S) * H * self.gamma
        return jnp.stack([dS])


class ReducedWongWangExcInh(AbstractNeuralMass):
    r"""NMDA gating ``S_e`` and GABA gating ``S_i`` of coupled excitatory and inhibitory pools (Deco et al. 2014).

    Equations (time in ms; rates $H_e$, $H_i$ in Hz, hence $\gamma_e$, $\gamma_i$ carry a factor 1/1000):

    $$G_k = G J_N C_{S_e}$$
    $$y_e = a_e \left(w_p J_N S_e - J_i S_i + W_e I_o + G_k + I_{ext}\right) - b_e, \qquad
      H_e = \frac{y_e}{1 - \exp(-d_e y_e)}$$
    $$y_i = a_i \left(J_N S_e - S_i + W_i I_o + \lambda G_k\right) - b_i, \qquad
      H_i = \frac{y_i}{1 - \exp(-d_i y_i)}$$
    $$\dot S_e = -\frac{S_e}{\tau_e} + \gamma_e (1 - S_e) H_e$$
    $$\dot S_i = -\frac{S_i}{\tau_i} + \gamma_i H_i$$

    where $C_{S_e}$ is the long-range coupling of ``S_e`` (``cvar = (0,)``). Note that, as in TVB, the inhibitory
    equation has no $(1 - S_i)$ saturation factor and the local inhibitory-to-inhibitory weight is fixed to 1.
    Bounds: ``S_e`` and ``S_i`` in ``[0, 1]``. The removable singularity of $H$ at $y = 0$ is handled as in
    :class:`ReducedWongWang`.

    Reference: Deco, G., Ponce-Alvarez, A., Hagmann, P., Romani, G. L., Mantini, D., & Corbetta, M. (2014). How local
    excitation–inhibition ratio impacts the whole brain dynamics. *Journal of Neuroscience*, 34(23), 7886–7898.

    **Parameters** (TVB names and defaults; each a scalar or per-region ``(N,)``):
    `a_e` excitatory input gain (n/C, 310.0); `b_e` excitatory input shift (Hz, 125.0); `d_e` excitatory curvature
    (s, 0.160); `gamma_e` excitatory kinetic parameter (0.641/1000); `tau_e` excitatory (NMDA) decay time constant
    (ms, 100.0); `w_p` excitatory recurrence weight (1.4); `J_N` NMDA current (nA, 0.15); `W_e` excitatory external
    input weight (1.0); `a_i` inhibitory input gain (n/C, 615.0); `b_i` inhibitory input shift (Hz, 177.0); `d_i`
    inhibitory curvature (s, 0.087); `gamma_i` inhibitory kinetic parameter (1/1000); `tau_i` inhibitory (GABA) decay
    time constant (ms, 10.0); `J_i` local inhibitory current (nA, 1.0); `W_i` inhibitory external input weight (0.7);
    `I_o` effective external input (nA, 0.382); `I_ext` external stimulus to the excitatory pool (nA, 0.0); `G` global
    coupling scaling (2.0); `lamda` share of the long-range input that reaches the inhibitory pool (0.0).
    """

    a_e: Float[Array, "*N"] = param(310.0)
    b_e: Float[Array, "*N"] = param(125.0)
    d_e: Float[Array, "*N"] = param(0.160)
    gamma_e: Float[Array, "*N"] = param(0.641 / 1000)
    tau_e: Float[Array, "*N"] = param(100.0)
    w_p: Float[Array, "*N"] = param(1.4)
    J_N: Float[Array, "*N"] = param(0.15)
    W_e: Float[Array, "*N"] = param(1.0)
    a_i: Float[Array, "*N"] = param(615.0)
    b_i: Float[Array, "*N"] = param(177.0)
    d_i: Float[Array, "*N"] = param(0.087)
    gamma_i: Float[Array, "*N"] = param(1.0 / 1000)
    tau_i: Float[Array, "*N"] = param(10.0)
    J_i: Float[Array, "*N"] = param(1.0)
    W_i: Float[Array, "*N"] = param(0.7)
    I_o: Float[Array, "*N"] = param(0.382)
    I_ext: Float[Array, "*N"] = param(0.0)
    G: Float[Array, "*N"] = param(2.0)
    lamda: Float[Array, "*N"] = param(0.0)

    state_variables: ClassVar[tuple[str, ...]] = ("S_e", "S_i")
    cvar: ClassVar[tuple[int, ...]] = (0,)
    state_variable_range: ClassVar[dict[str, tuple[float, float]]] = {"S_e": (0.0, 1.0), "S_i": (0.0, 1.0)}
    state_variable_boundaries: ClassVar[dict[str, tuple[float, float]]] = {"S_e": (0.0, 1.0), "S_i": (0.0, 1.0)}

    def dfun(self, state, coupling):
        return _exc_inh_dfun(self, state, coupling, gain=1.0)


class DecoBalancedExcInh(AbstractNeuralMass):
    r""":class:`ReducedWongWangExcInh` with a regional effective gain ``M_i`` (Deco et al. 2021).

    The same NMDA and GABA gating variables ``S_e``, ``S_i`` and equations as :class:`ReducedWongWangExcInh`, with
    both transfer functions scaled by the gain $M_i$ (e.g. derived from the regional expression of E/I genes):

    $$y_e = M_i \left(a_e \left(w_p J_N S_e - J_i S_i + W_e I_o + G J_N C_{S_e} + I_{ext}\right) - b_e\right),
      \qquad H_e = \frac{y_e}{1 - \exp(-d_e y_e)}$$
    $$y_i = M_i \left(a_i \left(J_N S_e - S_i + W_i I_o + \lambda G J_N C_{S_e}\right) - b_i\right),
      \qquad H_i = \frac{y_i}{1 - \exp(-d_i y_i)}$$
    $$\dot S_e = -\frac{S_e}{\tau_e} + \gamma_e (1 - S_e) H_e,\qquad \dot S_i = -\frac{S_i}{\tau_i} + \gamma_i H_i$$

    ``cvar = (0,)``; bounds ``S_e``, ``S_i`` in ``[0, 1]``. With ``M_i = 1`` it is :class:`ReducedWongWangExcInh`.
    The removable singularity of $H$ at $y = 0$ is handled as in :class:`ReducedWongWang`.

    Reference: Deco, G., Kringelbach, M. L., Arnatkeviciute, A., Oldham, S., Sabaroedin, K., Rogasch, N. C., Aquino,
    K. M., & Fornito, A. (2021). Dynamical consequences of regional heterogeneity in the brain's transcriptional
    landscape. *Science Advances*, 7(29), eabf4752.

    **Parameters** (TVB names, order and defaults; each a scalar or per-region ``(N,)``): `M_i` effective gain within
    the region (1.0), then those of :class:`ReducedWongWangExcInh` with the same defaults: `a_e` (310.0), `b_e`
    (125.0), `d_e` (0.160), `gamma_e` (0.641/1000), `tau_e` (100.0), `w_p` (1.4), `J_N` (0.15), `W_e` (1.0), `a_i`
    (615.0), `b_i` (177.0), `d_i` (0.087), `gamma_i` (1/1000), `tau_i` (10.0), `J_i` (1.0), `W_i` (0.7), `I_o`
    (0.382), `I_ext` (0.0), `G` (2.0), `lamda` (0.0).
    """

    M_i: Float[Array, "*N"] = param(1.0)
    a_e: Float[Array, "*N"] = param(310.0)
    b_e: Float[Array, "*N"] = param(125.0)
    d_e: Float[Array, "*N"] = param(0.160)
    gamma_e: Float[Array, "*N"] = param(0.641 / 1000)
    tau_e: Float[Array, "*N"] = param(100.0)
    w_p: Float[Array, "*N"] = param(1.4)
    J_N: Float[Array, "*N"] = param(0.15)
    W_e: Float[Array, "*N"] = param(1.0)
    a_i: Float[Array, "*N"] = param(615.0)
    b_i: Float[Array, "*N"] = param(177.0)
    d_i: Float[Array, "*N"] = param(0.087)
    gamma_i: Float[Array, "*N"] = param(1.0 / 1000)
    tau_i: Float[Array, "*N"] = param(10.0)
    J_i: Float[Array, "*N"] = param(1.0)
    W_i: Float[Array, "*N"] = param(0.7)
    I_o: Float[Array, "*N"] = param(0.382)
    I_ext: Float[Array, "*N"] = param(0.0)
    G: Float[Array, "*N"] = param(2.0)
    lamda: Float[Array, "*N"] = param(0.0)

    state_variables: ClassVar[tuple[str, ...]] = ("S_e", "S_i")
    cvar: ClassVar[tuple[int, ...]] = (0,)
    state_variable_range: ClassVar[dict[str, tuple[float, float]]] = {"S_e": (0.0, 1.0), "S_i": (0.0, 1.0)}
    state_variable_boundaries: ClassVar[dict[str, tuple[float, float]]] = {"S_e": (0.0, 1.0), "S_i": (0.0, 1.0)}

    def dfun(self, state, coupling):
        return _exc_inh_dfun(self, state, coupling, gain=self.M_i)


def _exc_inh_dfun(p, state, coupling, gain):
    """Excitatory/inhibitory reduced Wong–Wang equations shared by ReducedWongWangExcInh (``gain = 1``) and
    DecoBalancedExcInh (``gain = M_i``, applied to both transfer-function arguments as TVB's numba code does)."""
    S_e, S_i = state[0], state[1]
    long_range = p.G * p.J_N * coupling[0]
    JN_Se = p.J_N * S_e
    x_e = p.w_p * JN_Se - p.J_i * S_i + p.W_e * p.I_o + long_range + p.I_ext
    x_i = JN_Se - S_i + p.W_i * p.I_o + p.lamda * long_range
    y_e = (p.a_e * x_e - p.b_e) * gain
    y_i = (p.a_i * x_i - p.b_i) * gain
    dS_e = -(S_e / p.tau_e) + (1.0 - S_e) * _rate(y_e, p.d_e) * p.gamma_e
    dS_i = -(S_i / p.tau_i) + _rate(y_i, p.d_i) * p.gamma_i
    return jnp.stack([dS_e, dS_i])
