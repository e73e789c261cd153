r"""Stefanescu–Jirsa reduced sets: mode decompositions of heterogeneous FitzHugh–Nagumo or Hindmarsh–Rose populations.

TVB simulates these models with a mode axis, state ``(n_svar, N, n_modes)``. vbtjax's state is ``(n_svar, N)``, so
the three modes are flattened into the state variables, variable-major: TVB's ``xi[:, m]`` is vbtjax's ``xi_m``
(``state_variables = ("xi_0", "xi_1", "xi_2", "eta_0", ...)``), and ``cvar`` lists every mode of TVB's coupling
variables. A TVB state reshapes to vbtjax's as ``x.transpose(0, 2, 1).reshape(n_svar * 3, N)``. Each mode is
coupled on its own (row ``k`` of the coupling comes from ``cvar[k]``), and, as in TVB, every mode of both
populations receives the sum over the modes of the coupling of ``xi``.

The number of modes (3) and of sampled neurons per population (``nu = nv = 1500``) are TVB's and fixed. The mode
coefficients are integrals over a Gaussian distribution of the neurons' excitability (mean ``mu``, standard
deviation ``sigma``), computed as TVB does: 1500 quantiles of the distribution, three piecewise-constant modes
normalised on them, trapezoidal integrals. They are recomputed from ``mu`` and ``sigma`` at every call (so that they
are differentiable); ``mu`` and ``sigma`` may be per region.
"""

from __future__ import annotations

import math
from typing import ClassVar

import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri
from jaxtyping import Array, Float

from .._params import param
from ._base import AbstractNeuralMass

_N_MODES = 3
_N_NEURONS = 1500


def _flat_names(names):
    return tuple(f"{v}_{m}" for v in names for m in range(_N_MODES))


def _flat_ranges(ranges):
    return {f"{v}_{m}": r for v, r in ranges.items() for m in range(_N_MODES)}


def _trapz(y, x):
    """Trapezoidal integral of ``y`` over the sample points ``x`` along the last axis."""
    return 0.5 * jnp.sum((y[..., 1:] + y[..., :-1]) * jnp.diff(x, axis=-1), axis=-1)


def _mode_integrals(mu, sigma):
    """TVB's mode integrals of one population, each ``(_N_MODES, 1)`` (scalar ``mu``, ``sigma``) or ``(_N_MODES, N)``.

    Returns ``(I1, IG, I3, I4, IZ)``: the integrals over the excitability ``Z`` of ``V``, ``g V``, ``V^3``, ``V^4``
    and ``Z V``, where ``V`` are the normalised modes and ``g`` the Gaussian density.
    """
    step = 1.0 / (_N_NEURONS + 1)
    quantiles = np.arange(step, 1.0, step)  # TVB's grid, _N_NEURONS points
    per_mode = _N_NEURONS // _N_MODES
    indicator = np.kron(np.eye(_N_MODES), np.ones(per_mode))  # (_N_MODES, _N_NEURONS)
    mu, sigma = jnp.broadcast_arrays(mu, sigma)
    mu, sigma = mu[..., None], sigma[..., None]
    Z = mu + sigma * ndtri(jnp.asarray(quantiles, mu.dtype))  # (..., n)
    g = jnp.exp(-0.5 * ((Z - mu) / sigma) ** 2) / (math.sqrt(2.0 * math.pi) * sigma)
    Zm, gm = Z[..., None, :], g[..., None, :]  # (..., 1, n) against the modes (_N_MODES, n)
    M = jnp.asarray(indicator, Z.dtype)
    V = M / jnp.sqrt(_trapz(M * M, Zm))[..., None]
    out = [_trapz(V, Zm), _trapz(gm * V, Zm), _trapz(V**3, Zm), _trapz(V**4, Zm), _trapz(Zm * V, Zm)]
    out = [jnp.moveaxis(x, -1, 0) for x in out]
    return tuple(x[:, None] if x.ndim == 1 else x for x in out)


def _modes_of(state, n_svar):
    """``(n_svar * _N_MODES, N)`` -> ``n_svar`` arrays ``(_N_MODES, N)``."""
    s = state.reshape(n_svar, _N_MODES, state.shape[-1])
    return tuple(s[k] for k in range(n_svar))


def _mode_couplings(xi, alpha, I1, IG):
    """TVB's intra-regional mode mixing: ``(xi @ A, alpha @ B)`` with ``A_ki = IG_k I1_i`` and ``B_ki = I1_k IG_i``
    (``C = A``)."""
    xA = I1 * jnp.sum(IG * xi, axis=0, keepdims=True)
    aB = IG * jnp.sum(I1 * alpha, axis=0, keepdims=True)
    return xA, aB


class ReducedSetFitzHughNagumo(AbstractNeuralMass):
    r"""A reduced set of FitzHugh–Nagumo oscillators (Stefanescu & Jirsa 2008's "2D" model), three modes each of an
    excitatory (``xi``, ``eta``) and an inhibitory (``alpha``, ``beta``) population.

    Equations for mode $i$ (time in ms, variables dimensionless; $c_0$ the sum over modes of the coupling of ``xi``):

    $$\dot\xi_i = \tau\left(\xi_i - e_i\xi_i^3/3 - \eta_i\right) + K_{11}\Big(\sum_k A_{ki}\xi_k - \xi_i\Big)
      - K_{12}\Big(\sum_k B_{ki}\alpha_k - \xi_i\Big) + \tau\left(I_{E,i} + c_0\right)$$
    $$\dot\eta_i = \left(\xi_i - b\,\eta_i + m_i\right)/\tau$$
    $$\dot\alpha_i = \tau\left(\alpha_i - f_i\alpha_i^3/3 - \beta_i\right) + K_{21}\Big(\sum_k C_{ki}\xi_k -
      \alpha_i\Big) + \tau\left(I_{I,i} + c_0\right)$$
    $$\dot\beta_i = \left(\alpha_i - b\,\beta_i + n_i\right)/\tau$$

    with TVB's mode coefficients ($A, B, C, e_i, f_i, I_{E,i}, I_{I,i}$ from ``mu`` and ``sigma``; $m_i, n_i$
    proportional to ``a``). State layout (modes flattened, ``cvar`` = every mode of ``xi`` and ``alpha``): see
    :mod:`vbtjax.models.stefanescu_jirsa`. No bounds. TVB's ranges (``xi``, ``alpha`` in [-4, 4]) make Heun with
    dt = 0.1 ms diverge within a few steps; start within about half of them.

    References: Stefanescu, R. A., & Jirsa, V. K. (2008). A low dimensional description of globally coupled
    heterogeneous neural networks of excitatory and inhibitory neurons. *PLoS Computational Biology*, 4(11), e1000219.

    **Parameters** (TVB names and defaults; each a scalar or per-region ``(N,)``):
    `tau` time-scale separation (3.0); `a` constant of the slow nullclines (0.45); `b` slow self-decay (0.9);
    `K11` excitatory-to-excitatory internal coupling (0.5); `K12` inhibitory-to-excitatory (0.15); `K21`
    excitatory-to-inhibitory (0.15); `sigma` standard deviation of the excitability distribution (0.35); `mu` its
    mean (0.0).
    """

    tau: Float[Array, "*N"] = param(3.0)
    a: Float[Array, "*N"] = param(0.45)
    b: Float[Array, "*N"] = param(0.9)
    K11: Float[Array, "*N"] = param(0.5)
    K12: Float[Array, "*N"] = param(0.15)
    K21: Float[Array, "*N"] = param(0.15)
    sigma: Float[Array, "*N"] = param(0.35)
    mu: Float[Array, "*N"] = param(0.0)

    number_of_modes: ClassVar[int] = _N_MODES
    state_variables: ClassVar[tuple[str, ...]] = _flat_names(("xi", "eta", "alpha", "beta"))
    cvar: ClassVar[tuple[int, ...]] = (0, 1, 2, 6, 7, 8)
    state_variable_range: ClassVar[dict[str, tuple[float, float]]] = _flat_ranges(
        {"xi": (-4.0, 4.0), "eta": (-3.0, 3.0), "alpha": (-4.0, 4.0), "beta": (-3.0, 3.0)}
    )

    def dfun(self, state, coupling):
        xi, eta, alpha, beta = _modes_of(state, 4)
        c0 = jnp.sum(coupling[:_N_MODES], axis=0)
        I1, IG, _, I4, IZ = _mode_integrals(self.mu, self.sigma)
        xA, aB = _mode_couplings(xi, alpha, I1, IG)
        tau = self.tau
        dxi = tau * (xi - I4 * xi**3 / 3.0 - eta) + self.K11 * (xA - xi) - self.K12 * (aB - xi) + tau * (IZ + c0)
        deta = (xi - self.b * eta + self.a * I1) / tau
        dalpha = tau * (alpha - I4 * alpha**3 / 3.0 - beta) + self.K21 * (xA - alpha) + tau * (IZ + c0)
        dbeta = (alpha - self.b * beta + self.a * I1) / tau
        return jnp.concatenate([dxi, deta, dalpha, dbeta])


class ReducedSetHindmarshRose(AbstractNeuralMass):
    r"""A reduced set of Hindmarsh–Rose neurons (Stefanescu & Jirsa 2008's "3D" model), three modes each of an
    excitatory (``xi``, ``eta``, ``tau``) and an inhibitory (``alpha``, ``beta``, ``gamma``) population.

    Equations for mode $i$ (time in ms, variables dimensionless; $c_0$ the sum over modes of the coupling of ``xi``):

    $$\dot\xi_i = \eta_i - a_i\xi_i^3 + b_i\xi_i^2 - \tau_i + K_{11}\Big(\sum_k A_{ki}\xi_k - \xi_i\Big)
      - K_{12}\Big(\sum_k B_{ki}\alpha_k - \xi_i\Big) + I_{E,i} + c_0$$
    $$\dot\eta_i = c_i - d_i\xi_i^2 - \eta_i,\qquad \dot\tau_i = r s\,\xi_i - r\,\tau_i - m_i$$
    $$\dot\alpha_i = \beta_i - e_i\alpha_i^3 + f_i\alpha_i^2 - \gamma_i + K_{21}\Big(\sum_k C_{ki}\xi_k - \alpha_i\Big)
      + I_{I,i} + c_0$$
    $$\dot\beta_i = h_i - p_i\alpha_i^2 - \beta_i,\qquad \dot\gamma_i = r s\,\alpha_i - r\,\gamma_i - n_i$$

    with TVB's mode coefficients: $a_i, e_i \propto$ ``a``, $b_i, f_i \propto$ ``b``, $c_i, h_i \propto$ ``c``,
    $d_i, p_i \propto$ ``d`` (TVB's corrected form, the integral of $V^3$), $m_i, n_i \propto r s\,x_o$; $A, B, C,
    I_{E,i}, I_{I,i}$ from ``mu`` and ``sigma``. State layout (modes flattened, ``cvar`` = every mode of ``xi`` and
    ``alpha``): see :mod:`vbtjax.models.stefanescu_jirsa`. No bounds. TVB's ranges make Heun with dt = 0.1 ms
    diverge; start within about half of them and use dt = 0.05 ms.

    References: Stefanescu, R. A., & Jirsa, V. K. (2008). A low dimensional description of globally coupled
    heterogeneous neural networks of excitatory and inhibitory neurons. *PLoS Computational Biology*, 4(11), e1000219.
    Hindmarsh, J. L., & Rose, R. M. (1984). A model of neuronal bursting using three coupled first order differential
    equations. *Proceedings of the Royal Society B*, 221, 87–102.

    **Parameters** (TVB names and defaults; each a scalar or per-region ``(N,)``):
    `r` adaptation rate (0.006); `a` (1.0), `b` (3.0), `c` (1.0), `d` (5.0) Hindmarsh–Rose coefficients; `s`
    adaptation feedback (4.0); `xo` leftmost equilibrium of ``x`` (-1.6); `K11` excitatory-to-excitatory internal
    coupling (0.5); `K12` inhibitory-to-excitatory (0.1); `K21` excitatory-to-inhibitory (0.15); `sigma` standard
    deviation of the excitability distribution (0.3); `mu` its mean (3.3).
    """

    r: Float[Array, "*N"] = param(0.006)
    a: Float[Array, "*N"] = param(1.0)
    b: Float[Array, "*N"] = param(3.0)
    c: Float[Array, "*N"] = param(1.0)
    d: Float[Array, "*N"] = param(5.0)
    s: Float[Array, "*N"] = param(4.0)
    xo: Float[Array, "*N"] = param(-1.6)
    K11: Float[Array, "*N"] = param(0.5)
    K12: Float[Array, "*N"] = param(0.1)
    K21: Float[Array, "*N"] = param(0.15)
    sigma: Float[Array, "*N"] = param(0.3)
    mu: Float[Array, "*N"] = param(3.3)

    number_of_modes: ClassVar[int] = _N_MODES
    state_variables: ClassVar[tuple[str, ...]] = _flat_names(("xi", "eta", "tau", "alpha", "beta", "gamma"))
    cvar: ClassVar[tuple[int, ...]] = (0, 1, 2, 9, 10, 11)
    state_variable_range: ClassVar[dict[str, tuple[float, float]]] = _flat_ranges(
        {
            "xi": (-4.0, 4.0),
            "eta": (-25.0, 20.0),
            "tau": (2.0, 10.0),
            "alpha": (-4.0, 4.0),
            "beta": (-20.0, 20.0),
            "gamma": (2.0, 10.0),
        }
    )

    def dfun(self, state, coupling):
        xi, eta, tau, alpha, beta, gamma = _modes_of(state, 6)
        c0 = jnp.sum(coupling[:_N_MODES], axis=0)
        I1, IG, I3, I4, IZ = _mode_integrals(self.mu, self.sigma)
        xA, aB = _mode_couplings(xi, alpha, I1, IG)
        rs = self.r * self.s
        drift = rs * self.xo * I1
        dxi = (
            eta
            - self.a * I4 * xi**3
            + self.b * I3 * xi**2
            - tau
            + self.K11 * (xA - xi)
            - self.K12 * (aB - xi)
            + IZ
            + c0
        )
        deta = self.c * I1 - self.d * I3 * xi**2 - eta
        dtau = rs * xi - self.r * tau - drift
        dalpha = beta - self.a * I4 * alpha**3 + self.b * I3 * alpha**2 - gamma + self.K21 * (xA - alpha) + IZ + c0
        dbeta = self.c * I1 - self.d * I3 * alpha**2 - beta
        dgamma = rs * alpha - self.r * gamma - drift
        return jnp.concatenate([dxi, deta, dtau, dalpha, dbeta, dgamma])
