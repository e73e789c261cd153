"""Zerlaut / di Volo mean field of adaptive exponential integrate-and-fire neurons, first order."""

from __future__ import annotations

import math
from typing import ClassVar

import jax.numpy as jnp
from jax.scipy.special import erfc
from jaxtyping import Array, Float

from .._params import check_n_regions, param
from ._base import AbstractNeuralMass

_N_COEFFICIENTS = 10
_COEFFICIENTS = ("P_e", "P_i")
# Floors used only where TVB would take the square root of a negative number or divide 0 by 0 (never inside the
# bounds E, I >= 0, where both quantities are positive); they keep values and gradients finite there.
_VARIANCE_FLOOR = 1e-30
_DENOMINATOR_FLOOR = 1e-30

# TVB's defaults: Table I of di Volo et al. (2019), in volts
_P_E = (
    -0.04983106,
    0.005063550882777035,
    -0.023470121807314552,
    0.0022951513725067503,
    -0.0004105302652029825,
    0.010547051343547399,
    -0.03659252821136933,
    0.007437487505797858,
    0.001265064721846073,
    -0.04072161294490446,
)
_P_I = (
    -0.05149122024209484,
    0.004003689190271077,
    -0.008352013668528155,
    0.0002414237992765705,
    -0.0005070645080016026,
    0.0014345394104282397,
    -0.014686689498949967,
    0.004502706285435741,
    0.0028472190352532454,
    -0.015357804594594548,
)


class ZerlautAdaptationFirstOrder(AbstractNeuralMass):
    r"""Excitatory and inhibitory firing rates ``E, I`` (kHz), their adaptation currents ``W_e, W_i`` (pA) and an
    Ornstein–Uhlenbeck drift ``ou_drift`` of the external input.

    The first-order mean field of di Volo et al. (2019), built on Zerlaut et al. (2018). Equations (time in ms):

    $$T \dot E = F_e - E,\qquad T \dot I = F_i - I$$
    $$\dot W_e = -\frac{W_e}{\tau_{w,e}} + b_e E + \frac{a_e (\mu_V^e - E_{L,e})}{\tau_{w,e}},\qquad
      \dot W_i = -\frac{W_i}{\tau_{w,i}} + b_i I + \frac{a_i (\mu_V^i - E_{L,i})}{\tau_{w,i}}$$
    $$\dot{ou} = -\frac{ou}{\tau_{OU}}$$

    The external excitatory rate is $\nu_{ext} = C + w_{noise}\, ou$ ($C$: the long-range coupling of ``E``,
    ``cvar = (0,)``), set to 0 where $\nu_{ext} K_{ext,e} < 0$. Population $\lambda \in \{e, i\}$ receives the
    excitatory rate $\nu_{ext} + \nu^{\lambda e}$ and the inhibitory rate $\nu^{\lambda i}$ from outside
    ($\nu^{\lambda\mu}$: ``external_input_<λ>_<μ>``, e.g. ``external_input_ex_in``). Its transfer function is

    $$F_\lambda = \frac{1}{2 T_V} \operatorname{erfc}\left(\frac{V^{eff}_{thr,\lambda} - \mu_V}{\sqrt 2\, \sigma_V}
      \right)$$

    with, for inputs $f_e = (E + 10^{-6})(1 - g) p_e N_{tot} + \nu_e K_{ext,e}$ and
    $f_i = (I + 10^{-6}) g\, p_i N_{tot} + \nu_i K_{ext,i}$:
    $\mu_{G_e} = Q_e \tau_e f_e$, $\mu_{G_i} = Q_i \tau_i f_i$, $\mu_G = g_L + \mu_{G_e} + \mu_{G_i}$,
    $T_m = C_m / \mu_G$, $\mu_V = (\mu_{G_e} E_e + \mu_{G_i} E_i + g_L E_L - W) / \mu_G$,
    $U_k = Q_k (E_k - \mu_V) / \mu_G$,
    $\sigma_V^2 = \sum_k f_k (U_k \tau_k)^2 / (2 (\tau_k + T_m))$,
    $T_V = \sum_k f_k (U_k \tau_k)^2 / \sum_k f_k (U_k \tau_k)^2 / (\tau_k + T_m)$, and the phenomenological
    threshold (mV) $V^{eff}_{thr} = 10^3\, P(v, s, t)$, a second-order polynomial with coefficients
    ``P_e`` or ``P_i`` (volts) in $v = (\mu_V + 60)/10$, $s = (\sigma_V - 4)/6$, $t = T_V g_L / C_m - 0.5$:
    $P = P_0 + P_1 v + P_2 s + P_3 t + P_4 v^2 + P_5 s^2 + P_6 t^2 + P_7 v s + P_8 v t + P_9 s t$.
    Population $e$ uses $W_e$ and $E_{L,e}$, population $i$ $W_i$ and $E_{L,i}$.

    Bounds: ``E >= 0`` and ``I >= 0``. Inside them $\sigma_V^2 > 0$ and the denominator of $T_V$ is positive; where
    they do not hold (``E`` or ``I`` below $-10^{-6}$, never reached by a simulation) TVB's values can be NaN, whereas
    here $\sigma_V^2$ is floored at $10^{-30}$ and $T_V = 1$ where its denominator is below $10^{-30}$, so that
    values and gradients stay finite. As in TVB's first-order model, the parameter ``S_i`` is not used (TVB uses it in
    the second-order model only) and the inhibitory population receives the same long-range input as the excitatory
    one.

    References: Zerlaut, Y., Chemla, S., Chavane, F., & Destexhe, A. (2018). Modeling mesoscopic cortical dynamics
    using a mean-field model of conductance-based networks of adaptive exponential integrate-and-fire neurons.
    *Journal of Computational Neuroscience*, 44(1), 45–61. di Volo, M., Romagnoni, A., Capone, C., & Destexhe, A.
    (2019). Biologically realistic mean-field models of conductance-based networks of spiking neurons with
    adaptation. *Neural Computation*, 31(4), 653–680.

    **Parameters** (TVB names and defaults; each a scalar or per-region ``(N,)``, except ``P_e`` and ``P_i``):
    `g_L` leak conductance (nS, 10.0); `E_L_e`, `E_L_i` leak reversal potentials (mV, -65.0, -65.0); `C_m` membrane
    capacitance (pF, 200.0); `b_e` excitatory adaptation increment (pA, 60.0); `a_e` excitatory adaptation
    conductance (nS, 4.0); `b_i` (0.0) and `a_i` (0.0) the inhibitory ones; `tau_w_e`, `tau_w_i` adaptation time
    constants (ms, 500.0, 1.0); `E_e`, `E_i` synaptic reversal potentials (mV, 0.0, -80.0); `Q_e`, `Q_i` quantal
    conductances (nS, 1.5, 5.0); `tau_e`, `tau_i` synaptic decay times (ms, 5.0, 5.0); `N_tot` number of cells
    (10000); `p_connect_e`, `p_connect_i` connection probabilities (0.05, 0.05); `g` fraction of inhibitory cells
    (0.2); `K_ext_e`, `K_ext_i` numbers of external excitatory and inhibitory synapses (400, 0); `T` time scale of
    the rates (ms, 20.0); `external_input_ex_ex`, `external_input_ex_in`, `external_input_in_ex`,
    `external_input_in_in` constant external rates (kHz, 0.0 each); `tau_OU` time constant of the drift (ms, 5.0);
    `weight_noise` weight of the drift in the external rate (10.5); `S_i` (1.0, unused, see above).
    (TVB stores ``N_tot``, ``K_ext_e`` and ``K_ext_i`` as integers; here they are floats like every parameter.)

    `P_e`, `P_i`: the 10 coefficients of the excitatory and inhibitory thresholds (volts; TVB's defaults from
    di Volo et al. 2019), each an array of shape ``(10,)`` shared by all regions.
    """

    g_L: Float[Array, "*N"] = param(10.0)
    E_L_e: Float[Array, "*N"] = param(-65.0)
    E_L_i: Float[Array, "*N"] = param(-65.0)
    C_m: Float[Array, "*N"] = param(200.0)
    b_e: Float[Array, "*N"] = param(60.0)
    a_e: Float[Array, "*N"] = param(4.0)
    b_i: Float[Array, "*N"] = param(0.0)
    a_i: Float[Array, "*N"] = param(0.0)
    tau_w_e: Float[Array, "*N"] = param(500.0)
    tau_w_i: Float[Array, "*N"] = param(1.0)
    E_e: Float[Array, "*N"] = param(0.0)
    E_i: Float[Array, "*N"] = param(-80.0)
    Q_e: Float[Array, "*N"] = param(1.5)
    Q_i: Float[Array, "*N"] = param(5.0)
    tau_e: Float[Array, "*N"] = param(5.0)
    tau_i: Float[Array, "*N"] = param(5.0)
    N_tot: Float[Array, "*N"] = param(10000.0)
    p_connect_e: Float[Array, "*N"] = param(0.05)
    p_connect_i: Float[Array, "*N"] = param(0.05)
    g: Float[Array, "*N"] = param(0.2)
    K_ext_e: Float[Array, "*N"] = param(400.0)
    K_ext_i: Float[Array, "*N"] = param(0.0)
    T: Float[Array, "*N"] = param(20.0)
    P_e: Float[Array, "n_coefficients=10"] = param(_P_E)
    P_i: Float[Array, "n_coefficients=10"] = param(_P_I)
    external_input_ex_ex: Float[Array, "*N"] = param(0.0)
    external_input_ex_in: Float[Array, "*N"] = param(0.0)
    external_input_in_ex: Float[Array, "*N"] = param(0.0)
    external_input_in_in: Float[Array, "*N"] = param(0.0)
    tau_OU: Float[Array, "*N"] = param(5.0)
    weight_noise: Float[Array, "*N"] = param(10.5)
    S_i: Float[Array, "*N"] = param(1.0)

    state_variables: ClassVar[tuple[str, ...]] = ("E", "I", "W_e", "W_i", "ou_drift")
    cvar: ClassVar[tuple[int, ...]] = (0,)
    state_variable_range: ClassVar[dict[str, tuple[float, float]]] = {
        "E": (1e-3, 250e-3),
        "I": (1e-3, 250e-3),
        "W_e": (0.0, 200.0),
        "W_i": (0.0, 0.0),
        "ou_drift": (0.0, 0.0),
    }
    state_variable_boundaries: ClassVar[dict[str, tuple[float, float]]] = {
        "E": (0.0, float("inf")),
        "I": (0.0, float("inf")),
    }

    def __check_init__(self):
        for name in _COEFFICIENTS:
            shape = getattr(self, name).shape
            if shape != (_N_COEFFICIENTS,):
                raise ValueError(
                    f"ZerlautAdaptationFirstOrder: {name!r} holds the {_N_COEFFICIENTS} coefficients of the "
                    f"threshold polynomial (shared by all regions); expected shape ({_N_COEFFICIENTS},), got {shape}."
                )

    def check_n_regions(self, n: int) -> None:
        # P_e and P_i are coefficient vectors, not per-region parameters
        per_region = {k: v for k, v in self.parameters().items() if k not in _COEFFICIENTS}
        check_n_regions(type(self).__name__, per_region, n)

    # ------------------------------------------------------------------ transfer function
    def _fluctuations(self, fe_rate, fi_rate, fe_ext, fi_ext, W, E_L):
        """Mean ``mu_V``, standard deviation ``sigma_V`` and autocorrelation time ``T_V`` of the membrane potential."""
        fe = (fe_rate + 1.0e-6) * (1.0 - self.g) * self.p_connect_e * self.N_tot + fe_ext * self.K_ext_e
        fi = (fi_rate + 1.0e-6) * self.g * self.p_connect_i * self.N_tot + fi_ext * self.K_ext_i
        mu_Ge = self.Q_e * self.tau_e * fe
        mu_Gi = self.Q_i * self.tau_i * fi
        mu_G = self.g_L + mu_Ge + mu_Gi
        T_m = self.C_m / mu_G
        mu_V = (mu_Ge * self.E_e + mu_Gi * self.E_i + self.g_L * E_L - W) / mu_G
        U_e = self.Q_e / mu_G * (self.E_e - mu_V)
        U_i = self.Q_i / mu_G * (self.E_i - mu_V)
        ae = fe * (U_e * self.tau_e) ** 2
        ai = fi * (U_i * self.tau_i) ** 2
        variance = ae / (2.0 * (self.tau_e + T_m)) + ai / (2.0 * (self.tau_i + T_m))
        sigma_V = jnp.sqrt(jnp.maximum(variance, _VARIANCE_FLOOR))
        denominator = ae / (self.tau_e + T_m) + ai / (self.tau_i + T_m)
        ok = denominator > _DENOMINATOR_FLOOR
        T_V = jnp.where(ok, (ae + ai) / jnp.where(ok, denominator, 1.0), 1.0)
        return mu_V, sigma_V, T_V

    def _transfer(self, fe_rate, fi_rate, fe_ext, fi_ext, W, P, E_L):
        """Output rate (kHz) of a population, and its ``mu_V`` (mV). ``P`` has the 10 coefficients on axis 0."""
        mu_V, sigma_V, T_V = self._fluctuations(fe_rate, fi_rate, fe_ext, fi_ext, W, E_L)
        v = (mu_V + 60.0) / 10.0
        s = (sigma_V - 4.0) / 6.0
        t = (T_V * self.g_L / self.C_m - 0.5) / 1.0
        threshold = 1e3 * (
            P[0]
            + P[1] * v
            + P[2] * s
            + P[3] * t
            + P[4] * v**2
            + P[5] * s**2
            + P[6] * t**2
            + P[7] * v * s
            + P[8] * v * t
            + P[9] * s * t
        )
        rate = erfc((threshold - mu_V) / (math.sqrt(2.0) * sigma_V)) / (2.0 * T_V)
        return rate, mu_V

    def dfun(self, state, coupling):
        E, I, W_e, W_i, ou = (state[k] for k in range(5))
        nu_ext = coupling[0] + self.weight_noise * ou
        nu_ext = jnp.where(nu_ext * self.K_ext_e < 0.0, 0.0, nu_ext)

        # both populations at once, on a leading axis of length 2 (excitatory, inhibitory)
        def pair(exc, inh):
            return jnp.stack([jnp.broadcast_to(exc, E.shape), jnp.broadcast_to(inh, E.shape)])

        F, mu_V = self._transfer(
            E,
            I,
            pair(nu_ext + self.external_input_ex_ex, nu_ext + self.external_input_in_ex),
            pair(self.external_input_ex_in, self.external_input_in_in),
            jnp.stack([W_e, W_i]),
            jnp.stack([self.P_e, self.P_i], axis=1)[:, :, None],  # (10, 2, 1)
            pair(self.E_L_e, self.E_L_i),
        )
        dE = (F[0] - E) / self.T
        dI = (F[1] - I) / self.T
        dW_e = -W_e / self.tau_w_e + self.b_e * E + self.a_e * (mu_V[0] - self.E_L_e) / self.tau_w_e
        dW_i = -W_i / self.tau_w_i + self.b_i * I + self.a_i * (mu_V[1] - self.E_L_i) / self.tau_w_i
        dou = -ou / self.tau_OU
        return jnp.stack([dE, dI, dW_e, dW_i, dou])
