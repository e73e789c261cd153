"""Epileptor: the six-variable Hindmarsh–Rose–Jirsa model of seizure onset, offset and propagation, and its 2D
reduction."""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._params import param
from ._base import AbstractNeuralMass


def _as_flag(value: Any, owner: str = "Epileptor") -> bool | tuple[bool, ...]:
    """A hashable switch: one ``bool``, or a tuple of ``bool`` (one per region) for a per-region switch."""
    flags = np.asarray(value, dtype=bool).reshape(-1)
    if np.ndim(value) > 1:
        raise ValueError(f"{owner}: 'modification' must be a bool or one bool per region, got shape {np.shape(value)}.")
    if np.ndim(value) == 0 or flags.size == 1:
        return bool(flags[0])
    return tuple(bool(f) for f in flags)


def _check_flag_length(owner: str, modification: bool | tuple[bool, ...], n: int) -> None:
    if isinstance(modification, tuple) and len(modification) != n:
        raise ValueError(
            f"{owner}: 'modification' has {len(modification)} values but the connectome has {n} regions; "
            f"give a bool or {n} bools."
        )


def _permittivity_drive(x1, z, x0, modification):
    """The drive ``h`` of the permittivity variable ``z``: linear (``modification`` False) or sigmoidal (True)."""
    linear = 4.0 * (x1 - x0) + jnp.where(z < 0.0, -0.1 * z**7, 0.0)
    if modification is False:
        return linear
    sigmoidal = x0 + 3.0 / (1.0 + jnp.exp(-(x1 + 0.5) / 0.1))
    if modification is True:
        return sigmoidal
    return jnp.where(jnp.asarray(modification), sigmoidal, linear)


class Epileptor(AbstractNeuralMass):
    r"""Fast discharges (``x1, y1``), spike-wave events (``x2, y2``), the slow permittivity ``z`` and a filter ``g``.

    Equations (time in ms; dimensionless variables as in TVB; every right-hand side is multiplied by ``tt``):

    $$\dot x_1 = y_1 - z + I_{ext} + K_{vf} C_1 + f_1(x_1, x_2, z)\, x_1$$
    $$\dot y_1 = c - d x_1^2 - y_1$$
    $$\dot z = r \left(h(x_1, z) - z + K_s C_1\right)$$
    $$\dot x_2 = -y_2 + x_2 - x_2^3 + I_{ext2} + b_b\, g - 0.3 (z - 3.5) + K_f C_2$$
    $$\dot y_2 = \frac{1}{\tau}\left(-y_2 + f_2(x_2)\right)$$
    $$\dot g = -0.01\,(g - 0.1 x_1)$$

    with

    $$f_1 = \begin{cases} -a x_1^2 + b x_1 & x_1 < 0 \\ \mathrm{slope} - x_2 + 0.6 (z - 4)^2 & x_1 \ge 0 \end{cases}
    \qquad f_2 = \begin{cases} 0 & x_2 < -0.25 \\ a_a (x_2 + 0.25) & x_2 \ge -0.25 \end{cases}$$

    $$h = \begin{cases} 4 (x_1 - x_0) - 0.1 z^7 [z < 0] & \text{modification = False (linear, default)} \\
    x_0 + 3 / \left(1 + e^{-(x_1 + 0.5)/0.1}\right) & \text{modification = True (nonlinear)} \end{cases}$$

    $C_1$ and $C_2$ are the long-range coupling of ``x1`` and ``x2`` (``cvar = (0, 3)``): $C_1$ acts on the fast
    subsystem through ``Kvf`` and on the permittivity (the slow coupling of Proix et al. 2014) through ``Ks``, $C_2$
    on the spike-wave subsystem through ``Kf``. With TVB's defaults ``Kvf = Kf = Ks = 0`` the regions are uncoupled;
    the usual permittivity coupling is ``Ks < 0`` with a ``Difference``-like or ``Linear`` coupling. No bounds.
    The observed signal is usually ``x2 - x1``.

    As in TVB, the factor 4 of the linear ``h`` is hard-coded: the parameter ``s`` is declared but not used.

    References: Jirsa, V. K., Stacey, W. C., Quilichini, P. P., Ivanov, A. I., & Bernard, C. (2014). On the nature
    of seizure dynamics. *Brain*, 137(8), 2210–2230. Proix, T., Bartolomei, F., Chauvel, P., Bernard, C., & Jirsa,
    V. K. (2014). Permittivity coupling across brain regions determines seizure recruitment in partial epilepsy.
    *Journal of Neuroscience*, 34(45), 15009–15021.

    **Parameters** (TVB names and defaults; each a scalar or per-region ``(N,)``):
    `a` cubic coefficient of the first population (1.0); `b` its quadratic coefficient (3.0); `c` additive term of
    ``y1`` (``y0`` in Jirsa et al., 1.0); `d` quadratic coefficient of ``y1`` (5.0); `r` time scale of ``z``
    ($1/\tau_0$, 1/ms, 0.00035); `s` linear coefficient of ``z`` (4.0, unused by TVB's equations, kept for
    compatibility); `x0` epileptogenicity (-1.6); `Iext` input current of the first population (3.1); `slope` linear
    coefficient of $f_1$ (0.0); `Iext2` input current of the second population (0.45); `tau` time scale of ``y2``
    (10.0); `aa` linear coefficient of $f_2$ (6.0); `bb` gain of the filtered ``g`` onto ``x2`` (2.0); `Kvf`
    coupling on the very fast time scale (0.0); `Kf` coupling on the fast time scale (0.0); `Ks` permittivity
    coupling onto ``z`` (0.0); `tt` time scaling of the whole system (1.0).

    `modification` (static, not differentiable; default ``False``): ``True`` selects the nonlinear ``h`` of Proix et
    al.; a bool, or one bool per region.
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
    modification: bool | tuple[bool, ...] = eqx.field(static=True, default=False, converter=_as_flag)

    state_variables: ClassVar[tuple[str, ...]] = ("x1", "y1", "z", "x2", "y2", "g")
    cvar: ClassVar[tuple[int, ...]] = (0, 3)
    state_variable_range: ClassVar[dict[str, tuple[float, float]]] = {
        "x1": (-2.0, 1.0),
        "y1": (-20.0, 2.0),
        "z": (2.0, 5.0),
        "x2": (-2.0, 0.0),
        "y2": (0.0, 2.0),
        "g": (-1.0, 1.0),
    }

    def check_n_regions(self, n: int) -> None:
        super().check_n_regions(n)
        _check_flag_length(type(self).__name__, self.modification, n)

    def _h(self, x1, z):
        """The drive of the permittivity variable ``z`` (without the ``- z + Ks C_1`` terms)."""
        return _permittivity_drive(x1, z, self.x0, self.modification)

    def dfun(self, state, coupling):
        x1, y1, z, x2, y2, g = (state[k] for k in range(6))
        c1, c2 = coupling[0], coupling[1]
        tt = self.tt
        f1 = jnp.where(x1 < 0.0, -self.a * x1 * x1 + self.b * x1, self.slope - x2 + 0.6 * (z - 4.0) ** 2)
        dx1 = tt * (y1 - z + self.Iext + self.Kvf * c1 + f1 * x1)
        dy1 = tt * (self.c - self.d * x1 * x1 - y1)
        dz = tt * (self.r * (self._h(x1, z) - z + self.Ks * c1))
        dx2 = tt * (-y2 + x2 - x2**3 + self.Iext2 + self.bb * g - 0.3 * (z - 3.5) + self.Kf * c2)
        f2 = jnp.where(x2 < -0.25, 0.0, self.aa * (x2 + 0.25))
        dy2 = tt * ((-y2 + f2) / self.tau)
        dg = tt * (-0.01 * (g - 0.1 * x1))
        return jnp.stack([dx1, dy1, dz, dx2, dy2, dg])


class Epileptor2D(AbstractNeuralMass):
    r"""The two-dimensional Epileptor of the Virtual Epileptic Patient: fast activity ``x1`` and permittivity ``z``.

    The fast subsystem of :class:`Epileptor` averaged over its fast oscillations (Proix et al. 2014, 2017). Equations
    (time in ms; dimensionless; every right-hand side is multiplied by ``tt``):

    $$\dot x_1 = c - z + I_{ext} + K_{vf} C - f(x_1, z)\, x_1$$
    $$\dot z = r \left(h(x_1, z) - z + K_s C\right)$$

    with

    $$f = \begin{cases} a x_1^2 + (d - b) x_1 & x_1 < 0 \\ d x_1 - \mathrm{slope} - 0.6 (z - 4)^2 & x_1 \ge 0
    \end{cases}$$

    and $h$ as in :class:`Epileptor` (linear $4 (x_1 - x_0) - 0.1 z^7 [z < 0]$ by default, the sigmoid
    $x_0 + 3 / (1 + e^{-(x_1 + 0.5)/0.1})$ with ``modification = True``). With TVB's defaults ($a = 1$, $b = 3$,
    $c = 1$, $d = 5$) the $x_1 < 0$ branch is $\dot x_1 = 1 - x_1^3 - 2 x_1^2 - z + I_{ext}$.

    $C$ is the long-range coupling of ``x1`` (``cvar = (0,)``). It acts on ``x1`` through ``Kvf`` and on the
    permittivity through ``Ks``; with TVB's defaults ``Kvf = Ks = 0`` the regions are uncoupled (the permittivity
    coupling of Proix et al. is ``Ks < 0``). No bounds.

    References: Proix, T., Bartolomei, F., Chauvel, P., Bernard, C., & Jirsa, V. K. (2014). Permittivity coupling
    across brain regions determines seizure recruitment in partial epilepsy. *Journal of Neuroscience*, 34(45),
    15009–15021. Proix, T., Bartolomei, F., Guye, M., & Jirsa, V. K. (2017). Individual brain structure and modelling
    predict seizure propagation. *Brain*, 140(3), 641–654.

    **Parameters** (TVB names and defaults; each a scalar or per-region ``(N,)``):
    `a` cubic coefficient (1.0); `b` quadratic coefficient (3.0); `c` additive term (``y0`` of the 6D model, 1.0);
    `d` quadratic coefficient of the eliminated ``y1`` (5.0); `r` time scale of ``z`` ($1/\tau_0$, 1/ms, 0.00035);
    `x0` epileptogenicity (-1.6); `Iext` input current (3.1); `slope` linear coefficient of $f$ for $x_1 \ge 0$ (0.0);
    `Kvf` coupling onto ``x1`` (0.0); `Ks` permittivity coupling onto ``z`` (0.0); `tt` time scaling of the whole
    system (1.0).

    `modification` (static, not differentiable; default ``False``): ``True`` selects the sigmoidal $h$; a bool, or
    one bool per region.
    """

    a: Float[Array, "*N"] = param(1.0)
    b: Float[Array, "*N"] = param(3.0)
    c: Float[Array, "*N"] = param(1.0)
    d: Float[Array, "*N"] = param(5.0)
    r: Float[Array, "*N"] = param(0.00035)
    x0: Float[Array, "*N"] = param(-1.6)
    Iext: Float[Array, "*N"] = param(3.1)
    slope: Float[Array, "*N"] = param(0.0)
    Kvf: Float[Array, "*N"] = param(0.0)
    Ks: Float[Array, "*N"] = param(0.0)
    tt: Float[Array, "*N"] = param(1.0)
    modification: bool | tuple[bool, ...] = eqx.field(
        static=True, default=False, converter=functools.partial(_as_flag, owner="Epileptor2D")
    )

    state_variables: ClassVar[tuple[str, ...]] = ("x1", "z")
    cvar: ClassVar[tuple[int, ...]] = (0,)
    state_variable_range: ClassVar[dict[str, tuple[float, float]]] = {"x1": (-2.0, 1.0), "z": (2.0, 5.0)}

    def check_n_regions(self, n: int) -> None:
        super().check_n_regions(n)
        _check_flag_length(type(self).__name__, self.modification, n)

    def dfun(self, state, coupling):
        x1, z = state[0], state[1]
        c1 = coupling[0]
        tt = self.tt
        f = jnp.where(
            x1 < 0.0, self.a * x1 * x1 + (self.d - self.b) * x1, self.d * x1 - self.slope - 0.6 * (z - 4.0) ** 2
        )
        dx1 = tt * (self.c - z + self.Iext + self.Kvf * c1 - f * x1)
        dz = tt * (self.r * (_permittivity_drive(x1, z, self.x0, self.modification) - z + self.Ks * c1))
        return jnp.stack([dx1, dz])
