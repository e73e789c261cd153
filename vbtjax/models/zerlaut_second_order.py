"""Zerlaut / di Volo mean field of adaptive exponential integrate-and-fire neurons, second order (with the rates'
covariances)."""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp

from .zerlaut import ZerlautAdaptationFirstOrder

_DF = 1e-7
"""TVB's finite-difference step of the rates (kHz) in the derivatives of the transfer functions."""
# the points (E + a h, I + b h) of the differences: centre, E +- h, I +- h, then the four corners
_SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1))


class ZerlautAdaptationSecondOrder(ZerlautAdaptationFirstOrder):
    r""":class:`ZerlautAdaptationFirstOrder` with the second-order closure of El Boustani & Destexhe: the firing rates
    ``E``, ``I`` (kHz) are corrected by their covariances ``C_ee``, ``C_ei``, ``C_ii``, which evolve with them.

    Equations (time in ms; $F_\lambda$ the transfer functions of :class:`ZerlautAdaptationFirstOrder`, evaluated at
    $(E, I)$ with each population's inputs; $\partial$ their derivatives in the rates, taken as TVB takes them, by
    central differences with step $10^{-7}$ kHz divided by $10^{-4}$, i.e. per Hz):

    $$T\dot E = F_e - E + \tfrac12 C_{ee}\partial_{ee}F_e + C_{ei}\partial_{ei}F_e + \tfrac12 C_{ii}\partial_{ii}F_e,
      \qquad T\dot I = \text{the same with } F_i$$
    $$T\dot C_{ee} = F_e(1/T - F_e)/N_e + (F_e - E)^2 + 2C_{ee}\partial_e F_e + 2C_{ei}\partial_i F_e - 2C_{ee}$$
    $$T\dot C_{ei} = (F_e - E)(F_i - I) + C_{ee}\partial_e F_e + C_{ei}\partial_e F_i + C_{ei}\partial_i F_e
      + C_{ii}\partial_i F_i - 2C_{ei}$$
    $$T\dot C_{ii} = F_i(1/T - F_i)/N_i + (F_i - I)^2 + 2C_{ii}\partial_i F_i + 2C_{ei}\partial_e F_i - 2C_{ii}$$

    with $N_e = N_{tot}(1 - g)$, $N_i = N_{tot} g$; ``W_e``, ``W_i`` and ``ou_drift`` as in the first-order model.
    ($\partial_{ei}F$ is TVB's mean of the two mixed differences, $\partial_e\partial_i F$ and
    $\partial_i\partial_e F$.) The inputs differ from the first-order model's: the excitatory population receives
    $\max(0, C + \nu^{ee} + w_{noise}\,ou)$ and the inhibitory one $\max(0, S_i C + \nu^{ie} + w_{noise}\,ou)$ as
    external excitatory rates ($C$ the long-range coupling of ``E``, ``cvar = (0,)``), so ``S_i`` is used here.
    Bounds: ``E >= 0`` and ``I >= 0``.

    References: El Boustani, S., & Destexhe, A. (2009). A master equation formalism for macroscopic modeling of
    asynchronous irregular activity states. *Neural Computation*, 21(1), 46–100. Zerlaut, Y., et al. (2018), di Volo,
    M., et al. (2019): see :class:`ZerlautAdaptationFirstOrder`.

    **Parameters**: those of :class:`ZerlautAdaptationFirstOrder` (TVB's names and defaults).
    """

    state_variables: ClassVar[tuple[str, ...]] = ("E", "I", "C_ee", "C_ei", "C_ii", "W_e", "W_i", "ou_drift")
    cvar: ClassVar[tuple[int, ...]] = (0,)
    state_variable_range: ClassVar[dict[str, tuple[float, float]]] = {
        "E": (1e-3, 250e-3),
        "I": (1e-3, 250e-3),
        "C_ee": (0.0, 0.5e-3),
        "C_ei": (-0.5e-3, 0.5e-3),
        "C_ii": (0.0, 0.5e-3),
        "W_e": (0.0, 200.0),
        "W_i": (0.0, 0.0),
        "ou_drift": (0.0, 0.0),
    }

    def _closure(self, E, I, fe_ext, fi_ext, W, P, E_L):
        """``F``, ``mu_V``, the first derivatives ``(d_e, d_i)`` and the second ``(d_ee, d_ie, d_ei, d_ii)`` of one
        population's transfer function, by TVB's central differences (per Hz); the nine points in one batch."""
        h, step = _DF, _DF * 1e3
        shifts = jnp.asarray(_SHIFTS, E.dtype) * h  # (9, 2)
        e = E + shifts[:, 0, None]  # E + 0, E + h, E - h: the same roundings as TVB's
        i = I + shifts[:, 1, None]
        F, mu_V = self._transfer(e, i, fe_ext, fi_ext, W, P, E_L)
        F0, Fp0, Fm0, F0p, F0m, Fpp, Fpm, Fmp, Fmm = (F[k] for k in range(9))
        d_e = (Fp0 - Fm0) / (2.0 * step)
        d_i = (F0p - F0m) / (2.0 * step)
        d_ee = (Fp0 - 2.0 * F0 + Fm0) / step**2
        d_ii = (F0p - 2.0 * F0 + F0m) / step**2
        d_ie = ((Fpp - Fpm) / (2.0 * step) - (Fmp - Fmm) / (2.0 * step)) / (2.0 * step)
        d_ei = ((Fpp - Fmp) / (2.0 * step) - (Fpm - Fmm) / (2.0 * step)) / (2.0 * step)
        return F0, mu_V[0], (d_e, d_i), (d_ee, d_ie, d_ei, d_ii)

    def dfun(self, state, coupling):
        E, I, C_ee, C_ei, C_ii, W_e, W_i, ou = (state[k] for k in range(8))
        drift = self.weight_noise * ou
        ext_e = jnp.maximum(coupling[0] + self.external_input_ex_ex + drift, 0.0)
        ext_i = jnp.maximum(self.S_i * coupling[0] + self.external_input_in_ex + drift, 0.0)
        Fe, mu_e, (de_e, di_e), (dee_e, die_e, dei_e, dii_e) = self._closure(
            E, I, ext_e, self.external_input_ex_in, W_e, self.P_e, self.E_L_e
        )
        Fi, mu_i, (de_i, di_i), (dee_i, die_i, dei_i, dii_i) = self._closure(
            E, I, ext_i, self.external_input_in_in, W_i, self.P_i, self.E_L_i
        )
        T = self.T
        N_e = self.N_tot * (1.0 - self.g)
        N_i = self.N_tot * self.g
        dE = (Fe - E + 0.5 * C_ee * dee_e + 0.5 * C_ei * dei_e + 0.5 * C_ei * die_e + 0.5 * C_ii * dii_e) / T
        dI = (Fi - I + 0.5 * C_ee * dee_i + 0.5 * C_ei * dei_i + 0.5 * C_ei * die_i + 0.5 * C_ii * dii_i) / T
        dC_ee = (Fe * (1.0 / T - Fe) / N_e + (Fe - E) ** 2 + 2.0 * C_ee * de_e + 2.0 * C_ei * di_e - 2.0 * C_ee) / T
        dC_ei = ((Fe - E) * (Fi - I) + C_ee * de_e + C_ei * de_i + C_ei * di_e + C_ii * di_i - 2.0 * C_ei) / T
        dC_ii = (Fi * (1.0 / T - Fi) / N_i + (Fi - I) ** 2 + 2.0 * C_ii * di_i + 2.0 * C_ei * de_i - 2.0 * C_ii) / T
        dW_e = -W_e / self.tau_w_e + self.b_e * E + self.a_e * (mu_e - self.E_L_e) / self.tau_w_e
        dW_i = -W_i / self.tau_w_i + self.b_i * I + self.a_i * (mu_i - self.E_L_i) / self.tau_w_i
        dou = -ou / self.tau_OU
        return jnp.stack([dE, dI, dC_ee, dC_ei, dC_ii, dW_e, dW_i, dou])
