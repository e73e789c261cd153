"""EpileptorRestingState: the Epileptor with a resting-state oscillator (a Generic 2D oscillator) alongside."""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array, Float

from .._params import param
from ._base import AbstractNeuralMass


class EpileptorRestingState(AbstractNeuralMass):
    r"""The six Epileptor variables ``x1, y1, z, x2, y2, g`` plus a resting-state oscillator ``x_rs, y_rs``.

    Courtiol et al. (2020) add to each region a Generic 2D oscillator near a supercritical Hopf bifurcation, which
    produces the interictal LFP-like signal, next to the :class:`Epileptor` that produces seizures. The two parts are
    not coupled locally. Equations (time in ms; dimensionless):

    $$\dot x_1 = t_t \left(y_1 - z + I_{ext} + K_{vf} C_1 + f_1(x_1, x_2, z)\, x_1\right)$$
    $$\dot y_1 = t_t \left(c - d x_1^2 - y_1\right)$$
    $$\dot z = t_t\, r \left(4 (x_1 - x_0) - 0.1 z^7 [z < 0] - z + K_s C_1\right)$$
    $$\dot x_2 = t_t \left(-y_2 + x_2 - x_2^3 + I_{ext2} + b_b\, g - 0.3 (z - 3.5) + K_f C_2\right)$$
    $$\dot y_2 = \frac{t_t}{\tau}\left(-y_2 + f_2(x_2)\right),\qquad \dot g = -0.01\, t_t \left(g - 0.1 x_1\right)$$
    $$\dot x_{rs} = d_{rs} \tau_{rs} \left(\alpha_{rs} y_{rs} - f_{rs} x_{rs}^3 + e_{rs} x_{rs}^2
      + \gamma_{rs} I_{rs} + \gamma_{rs} K_{rs} C_3\right)$$
    $$\dot y_{rs} = \frac{d_{rs}}{\tau_{rs}} \left(a_{rs} + b_{rs} x_{rs} - \beta_{rs} y_{rs}\right)$$

    with $f_1$ and $f_2$ as in :class:`Epileptor` and always the linear permittivity drive (TVB's model has no
    ``modification`` switch). $C_1, C_2, C_3$ are the long-range couplings of ``x1``, ``x2`` and ``x_rs``
    (``cvar = (0, 3, 6)``); only ``K_rs`` is non-zero by default, so by default only the oscillators are coupled.
    No bounds. TVB's observed LFP is ``p (x2 - x1) + (1 - p) x_rs``.

    References: Courtiol, J., Guye, M., Bartolomei, F., Petkoski, S., & Jirsa, V. K. (2020). Dynamical mechanisms of
    interictal resting-state functional connectivity in epilepsy. *Journal of Neuroscience*, 40(29), 5572–5588.
    Jirsa, V. K., Stacey, W. C., Quilichini, P. P., Ivanov, A. I., & Bernard, C. (2014). On the nature of seizure
    dynamics. *Brain*, 137(8), 2210–2230.

    **Parameters** (TVB names and defaults; each a scalar or per-region ``(N,)``). The Epileptor:
    `a` (1.0), `b` (3.0), `c` (1.0), `d` (5.0), `r` (0.00035), `s` (4.0, unused by TVB's equations, kept for
    compatibility), `x0` (-1.6), `Iext` (3.1), `slope` (0.0), `Iext2` (0.45), `tau` (10.0), `aa` (6.0), `bb` (2.0),
    `Kvf` (0.0), `Kf` (0.0), `Ks` (0.0), `tt` (1.0), as in :class:`Epileptor`. The oscillator: `tau_rs` time scaling
    (1.0); `I_rs` input current (0.0); `a_rs` shift of the ``y_rs`` nullcline (-2.0); `b_rs` linear coefficient of
    ``x_rs`` in the ``y_rs`` equation (-10.0); `d_rs` time scale of the oscillator (0.02); `e_rs` quadratic
    coefficient (3.0); `f_rs` cubic coefficient (1.0); `alpha_rs` feedback of ``y_rs`` onto ``x_rs`` (1.0);
    `beta_rs` self-feedback of ``y_rs`` (1.0); `gamma_rs` gain of the input current and of the coupling (1.0);
    `K_rs` long-range coupling of the oscillator (1.0). `p` weight of the Epileptor in the LFP (0.0; not used by the
    equations).
    """

    a: Float[Array, "*N"] = param(1.0)
    b: Float[Array, "*N"] = param(3.0)
    c: Float[Array, "*N"] = param(1.0)
    d: Float[Array, "*N"] = param(5.0)
    r: Float[Array, "*N"] = param(0.00035)
    s: Float[Array, "*N"] = param(4.0)
    x0: Float[Array, "*N"] = param(-1.6)
    Iext: Float[Array, "*N"] = param(3.1)
    slope: Float[Array, "*N"] = param(0.0)
    Iext2: Float[Array, "*N"] = param(0.45)
    tau: Float[Array, "*N"] = param(10.0)
    aa: Float[Array, "*N"] = param(6.0)
    bb: Float[Array, "*N"] = param(2.0)
    Kvf: Float[Array, "*N"] = param(0.0)
    Kf: Float[Array, "*N"] = param(0.0)
    Ks: Float[Array, "*N"] = param(0.0)
    tt: Float[Array, "*N"] = param(1.0)
    tau_rs: Float[Array, "*N"] = param(1.0)
    I_rs: Float[Array, "*N"] = param(0.0)
    a_rs: Float[Array, "*N"] = param(-2.0)
    b_rs: Float[Array, "*N"] = param(-10.0)
    d_rs: Float[Array, "*N"] = param(0.02)
    e_rs: Float[Array, "*N"] = param(3.0)
    f_rs: Float[Array, "*N"] = param(1.0)
    alpha_rs: Float[Array, "*N"] = param(1.0)
    beta_rs: Float[Array, "*N"] = param(1.0)
    gamma_rs: Float[Array, "*N"] = param(1.0)
    K_rs: Float[Array, "*N"] = param(1.0)
    p: Float[Array, "*N"] = param(0.0)

    state_variables: ClassVar[tuple[str, ...]] = ("x1", "y1", "z", "x2", "y2", "g", "x_rs", "y_rs")
    cvar: ClassVar[tuple[int, ...]] = (0, 3, 6)
    state_variable_range: ClassVar[dict[str, tuple[float, float]]] = {
        "x1": (-1.8, -1.4),
        "y1": (-15.0, -10.0),
        "z": (3.6, 4.0),
        "x2": (-1.1, -0.9),
        "y2": (0.001, 0.01),
        "g": (-1.0, 1.0),
        "x_rs": (-2.0, 4.0),
        "y_rs": (-6.0, 6.0),
    }

    def dfun(self, state, coupling):
        x1, y1, z, x2, y2, g, x_rs, y_rs = (state[k] for k in range(8))
        c1, c2, c3 = coupling[0], coupling[1], coupling[2]
        tt = self.tt
        # the Epileptor (TVB's numba kernel: always the linear permittivity drive)
        f1 = jnp.where(x1 < 0.0, -self.a * x1 * x1 + self.b * x1, self.slope - x2 + 0.6 * (z - 4.0) ** 2)
        dx1 = tt * (y1 - z + self.Iext + self.Kvf * c1 + f1 * x1)
        dy1 = tt * (self.c - self.d * x1 * x1 - y1)
        z_term = jnp.where(z < 0.0, -0.1 * z**7, 0.0)
        dz = tt * (self.r * (4.0 * (x1 - self.x0) + z_term - z + self.Ks * c1))
        dx2 = tt * (-y2 + x2 - x2**3 + self.Iext2 + self.bb * g - 0.3 * (z - 3.5) + self.Kf * c2)
        f2 = jnp.where(x2 < -0.25, 0.0, self.aa * (x2 + 0.25))
        dy2 = tt * ((-y2 + f2) / self.tau)
        dg = tt * (-0.01 * (g - 0.1 * x1))
        # the resting-state oscillator (a Generic 2D oscillator)
        dx_rs = (
            self.d_rs
            * self.tau_rs
            * (
                self.alpha_rs * y_rs
                - self.f_rs * x_rs**3
                + self.e_rs * x_rs**2
                + self.gamma_rs * self.I_rs
                + self.gamma_rs * self.K_rs * c3
            )
        )
        dy_rs = self.d_rs * (self.a_rs + self.b_rs * x_rs - self.beta_rs * y_rs) / self.tau_rs
        return jnp.stack([dx1, dy1, dz, dx2, dy2, dg, dx_rs, dy_rs])
