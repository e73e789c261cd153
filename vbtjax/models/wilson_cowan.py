"""Wilson–Cowan: mean activity of interacting excitatory and inhibitory populations."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._params import param
from ._base import AbstractNeuralMass


class WilsonCowan(AbstractNeuralMass):
    r"""Fractions ``E`` and ``I`` of active excitatory and inhibitory cells (Wilson & Cowan 1972, eqs. 11–12).

    Equations (time in ms; $E$, $I$ dimensionless):

    $$x_e = \alpha_e \left(c_{ee} E - c_{ei} I + P - \theta_e + C_E\right), \qquad
      x_i = \alpha_i \left(c_{ie} E - c_{ii} I + Q - \theta_i\right)$$
    $$\tau_e \dot E = -E + (k_e - r_e E)\, S_e(x_e), \qquad \tau_i \dot I = -I + (k_i - r_i I)\, S_i(x_i)$$

    with the logistic response functions, shifted down so that $S(0) = 0$ when ``shift_sigmoid`` is true (TVB's
    default):

    $$S_e(x) = c_e \left(\frac{1}{1 + e^{-a_e (x - b_e)}} - \frac{1}{1 + e^{a_e b_e}}\right)$$

    and $S_e(x) = c_e / (1 + e^{-a_e (x - b_e)})$ otherwise (likewise $S_i$ with $a_i, b_i, c_i$).
    $C_E$ is the long-range coupling of ``E``. TVB declares ``cvar = (0, 1)``, so the coupling of ``I`` is computed
    too, but, as in TVB, the equations use only the first row: long-range input reaches the excitatory population
    only. No bounds.

    Reference: Wilson, H. R., & Cowan, J. D. (1972). Excitatory and inhibitory interactions in localized populations
    of model neurons. *Biophysical Journal*, 12(1), 1–24.

    **Parameters** (TVB names and defaults; each a scalar or per-region ``(N,)``):
    `c_ee` excitatory-to-excitatory weight (12.0); `c_ei` inhibitory-to-excitatory weight (4.0); `c_ie`
    excitatory-to-inhibitory weight (13.0); `c_ii` inhibitory-to-inhibitory weight (11.0); `tau_e` excitatory time
    constant (ms, 10.0); `tau_i` inhibitory time constant (ms, 10.0); `a_e` slope of the excitatory sigmoid (1.2);
    `b_e` position of its maximum slope (2.8); `c_e` its amplitude (1.0); `theta_e` excitatory threshold (0.0);
    `a_i` slope of the inhibitory sigmoid (1.0); `b_i` position of its maximum slope (4.0); `theta_i` inhibitory
    threshold (0.0); `c_i` its amplitude (1.0); `r_e` excitatory refractory period (1.0); `r_i` inhibitory
    refractory period (1.0); `k_e` maximum of the excitatory response (1.0); `k_i` maximum of the inhibitory
    response (1.0); `P` constant external input to ``E`` (0.0); `Q` constant external input to ``I`` (0.0);
    `alpha_e` gain of the excitatory input (1.0); `alpha_i` gain of the inhibitory input (1.0).
    `shift_sigmoid` (static bool, not differentiable; True): subtract $S(0)$ from the logistic functions.
    """

    c_ee: Float[Array, "*N"] = param(12.0)
    c_ei: Float[Array, "*N"] = param(4.0)
    c_ie: Float[Array, "*N"] = param(13.0)
    c_ii: Float[Array, "*N"] = param(11.0)
    tau_e: Float[Array, "*N"] = param(10.0)
    tau_i: Float[Array, "*N"] = param(10.0)
    a_e: Float[Array, "*N"] = param(1.2)
    b_e: Float[Array, "*N"] = param(2.8)
    c_e: Float[Array, "*N"] = param(1.0)
    theta_e: Float[Array, "*N"] = param(0.0)
    a_i: Float[Array, "*N"] = param(1.0)
    b_i: Float[Array, "*N"] = param(4.0)
    theta_i: Float[Array, "*N"] = param(0.0)
    c_i: Float[Array, "*N"] = param(1.0)
    r_e: Float[Array, "*N"] = param(1.0)
    r_i: Float[Array, "*N"] = param(1.0)
    k_e: Float[Array, "*N"] = param(1.0)
    k_i: Float[Array, "*N"] = param(1.0)
    P: Float[Array, "*N"] = param(0.0)
    Q: Float[Array, "*N"] = param(0.0)
    alpha_e: Float[Array, "*N"] = param(1.0)
    alpha_i: Float[Array, "*N"] = param(1.0)
    shift_sigmoid: bool = eqx.field(default=True, static=True, converter=bool)

    state_variables: ClassVar[tuple[str, ...]] = ("E", "I")
    cvar: ClassVar[tuple[int, ...]] = (0, 1)
    state_variable_range: ClassVar[dict[str, tuple[float, float]]] = {"E": (0.0, 1.0), "I": (0.0, 1.0)}

    def _response(self, x, a, b, c):
        s = jax.nn.sigmoid(a * (x - b))
        if self.shift_sigmoid:
            s = s - jax.nn.sigmoid(-a * b)
        return c * s

    def dfun(self, state, coupling):
        E, I = state[0], state[1]
        x_e = self.alpha_e * (self.c_ee * E - self.c_ei * I + self.P - self.theta_e + coupling[0])
        x_i = self.alpha_i * (self.c_ie * E - self.c_ii * I + self.Q - self.theta_i)
        s_e = self._response(x_e, self.a_e, self.b_e, self.c_e)
        s_i = self._response(x_i, self.a_i, self.b_i, self.c_i)
        dE = (-E + (self.k_e - self.r_e * E) * s_e) / self.tau_e
        dI = (-I + (self.k_i - self.r_i * I) * s_i) / self.tau_i
        return jnp.stack([dE, dI])
