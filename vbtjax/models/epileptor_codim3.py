r"""The Epileptor of Saggio et al. (2017): seizure classes as paths of a slow variable on the unfolding of a
codimension-3 singularity, with TVB's two variants (a fixed path, and a path that itself drifts)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._params import param
from ._base import AbstractNeuralMass

_SQRT3 = math.sqrt(3.0)


def _branch(value: Any) -> int:
    n = int(np.asarray(value).reshape(-1)[0])
    if np.size(value) != 1 or n not in (1, 2, 3):
        raise ValueError(
            f"EpileptorCodim3: 'N' selects the branch of the resting state x_s; give 1, 2 or 3, got {value}."
        )
    return n


def _flag(value: Any) -> bool:
    if np.size(value) != 1:
        raise ValueError(f"EpileptorCodim3: 'modification' is one bool shared by all regions, got {value}.")
    return bool(np.asarray(value).reshape(-1)[0])


def _unit(v):
    return v / jnp.sqrt(jnp.sum(v * v, axis=0))


def _arc_frame(start, stop):
    """The great circle from ``start`` towards ``stop`` (3-vectors on axis 0): its unit vectors ``E`` (at ``start``)
    and ``F`` (orthogonal to ``E``, in the plane of both)."""
    F = jnp.cross(jnp.cross(start, stop, axis=0), start, axis=0)
    return _unit(start), _unit(F)


def _point(mu2, mu1, nu):
    """TVB's coordinates of a point of the unfolding, ``(mu2, -mu1, nu)`` on axis 0: ``(3, 1)`` or ``(3, N)``."""
    point = jnp.stack(jnp.broadcast_arrays(mu2, -mu1, nu))
    return point[:, None] if point.ndim == 1 else point


def _resting_state(mu2, mu1, branch):
    """The real part of TVB's Cardano root ``branch`` (1, 2, 3) of ``x^3 - mu2 x - mu1 = 0`` (principal complex
    square and cube roots, as TVB computes them)."""
    ctype = jnp.result_type(mu1.dtype, jnp.complex64)
    disc = jnp.sqrt((mu1 * mu1 / 4.0 - mu2**3 / 27.0).astype(ctype))
    p = (mu1 / 2.0 + disc) ** (1.0 / 3.0)
    q = (mu1 / 2.0 - disc) ** (1.0 / 3.0)
    if branch == 1:
        xs = p + q
    elif branch == 2:
        xs = -0.5 * (1.0 - 1j * _SQRT3) * p - 0.5 * (1.0 + 1j * _SQRT3) * q
    else:
        xs = -0.5 * (1.0 + 1j * _SQRT3) * p - 0.5 * (1.0 - 1j * _SQRT3) * q
    return jnp.real(xs)


def _fast_slow(model, x, y, z, E, F, c_x):
    """``(dx, dy, dz)`` with the unfolding point at angle ``z`` on the great circle ``(E, F)`` of radius ``R``."""
    cz, sz = jnp.cos(z), jnp.sin(z)
    mu2 = model.R * (E[0] * cz + F[0] * sz)
    mu1 = -model.R * (E[1] * cz + F[1] * sz)
    nu = model.R * (E[2] * cz + F[2] * sz)
    xs = _resting_state(mu2, mu1, model.N)
    dx = -y
    dy = x**3 - mu2 * x - mu1 - y * (nu + model.b * x + x * x)
    distance = jnp.sqrt((x - xs) ** 2 + y * y)
    restoring = 0.1 * (z - 0.5) ** 7 if model.modification else 0.0
    dz = -model.c * (distance - model.dstar + restoring + model.Ks * c_x)
    return dx, dy, dz


class EpileptorCodim3(AbstractNeuralMass):
    r"""Saggio et al.'s Epileptor: a fast bursting pair ``(x, y)`` whose bifurcation parameters move along a great
    circle of the unfolding of the degenerate Takens–Bogdanov singularity as the slow variable ``z`` changes.

    Equations (dimensionless time units; TVB reads them as ms):

    $$\dot x = -y,\qquad \dot y = x^3 - \mu_2 x - \mu_1 - y\,(\nu + b x + x^2)$$
    $$\dot z = -c\left(\sqrt{(x - x_s)^2 + y^2} - d^* + 0.1 (z - 0.5)^7 + K_s C_x\right)$$

    with $(\mu_2, -\mu_1, \nu) = R\,(E \cos z + F \sin z)$: $E$ points to the seizure onset
    $(\mu_{2,start}, -\mu_{1,start}, \nu_{start})$ and $F$ is orthogonal to it, in the plane through the offset point
    (TVB's great arc). $x_s$ is the resting state, root ``N`` of $x^3 - \mu_2 x - \mu_1 = 0$ in TVB's Cardano
    form (its real part). The term $0.1 (z - 0.5)^7$ (``modification``, TVB's default on) keeps $z$ near the
    path. $C_x$ is the long-range coupling of ``x`` (``cvar = (0,)``). No bounds. The defaults give a
    saddle-node onset and a saddle-homoclinic offset ("square-wave" bursting).

    References: Saggio, M. L., Spiegler, A., Bernard, C., & Jirsa, V. K. (2017). Fast–slow bursters in the unfolding
    of a high codimension singularity and the ultra-slow transitions of classes. *Journal of Mathematical
    Neuroscience*, 7, 7.

    **Parameters** (TVB names and defaults; each a scalar or per-region ``(N,)``):
    `mu1_start` (-0.02285), `mu2_start` (0.3448), `nu_start` (0.2014): the onset point; `mu1_stop` (-0.07465),
    `mu2_stop` (0.3351), `nu_stop` (0.2053): the offset point; `b` (1.0) damping slope; `R` (0.4) radius of the
    sphere; `c` (0.001) rate of the slow variable; `dstar` (0.3) its threshold distance; `Ks` (0.0) gain of the
    long-range coupling. Static (not differentiable, shared by all regions): `N` (1) the branch of $x_s$ (1, 2 or
    3); `modification` (True).
    """

    mu1_start: Float[Array, "*N"] = param(-0.02285)
    mu2_start: Float[Array, "*N"] = param(0.3448)
    nu_start: Float[Array, "*N"] = param(0.2014)
    mu1_stop: Float[Array, "*N"] = param(-0.07465)
    mu2_stop: Float[Array, "*N"] = param(0.3351)
    nu_stop: Float[Array, "*N"] = param(0.2053)
    b: Float[Array, "*N"] = param(1.0)
    R: Float[Array, "*N"] = param(0.4)
    c: Float[Array, "*N"] = param(0.001)
    dstar: Float[Array, "*N"] = param(0.3)
    Ks: Float[Array, "*N"] = param(0.0)
    N: int = eqx.field(static=True, default=1, converter=_branch)
    modification: bool = eqx.field(static=True, default=True, converter=_flag)

    state_variables: ClassVar[tuple[str, ...]] = ("x", "y", "z")
    cvar: ClassVar[tuple[int, ...]] = (0,)
    state_variable_range: ClassVar[dict[str, tuple[float, float]]] = {
        "x": (0.4, 0.6),
        "y": (-0.1, 0.1),
        "z": (0.0, 0.15),
    }

    def dfun(self, state, coupling):
        x, y, z = state[0], state[1], state[2]
        start = _point(self.mu2_start, self.mu1_start, self.nu_start)
        stop = _point(self.mu2_stop, self.mu1_stop, self.nu_stop)
        E, F = _arc_frame(start, stop)
        return jnp.stack(_fast_slow(self, x, y, z, E, F, coupling[0]))


class EpileptorCodim3SlowMod(AbstractNeuralMass):
    r""":class:`EpileptorCodim3` whose path itself drifts: the onset and offset points move on their own great
    circles, at angles ``uA`` and ``uB`` that grow at the constant rates ``cA`` and ``cB`` (ultra-slow transitions
    between seizure classes).

    Equations: those of :class:`EpileptorCodim3` for ``x``, ``y``, ``z`` with $E = A/|A|$ and $F$ the unit vector
    of $(A \times B) \times A$, where $A = R\,(G\cos u_A + H\sin u_A)$ and $B = R\,(L\cos u_B + M\sin u_B)$, $(G,
    H)$ the great arc from ``Ain`` towards ``Aend`` and $(L, M)$ from ``Bin`` towards ``Bend`` (points
    $(\mu_2, -\mu_1, \nu)$); $\dot u_A = c_A$, $\dot u_B = c_B$. ``cvar = (0,)``. No bounds.

    References: Saggio, M. L., Spiegler, A., Bernard, C., & Jirsa, V. K. (2017). Fast–slow bursters in the unfolding
    of a high codimension singularity and the ultra-slow transitions of classes. *Journal of Mathematical
    Neuroscience*, 7, 7.

    **Parameters** (TVB names and defaults; each a scalar or per-region ``(N,)``):
    `mu1_Ain` (0.05494), `mu2_Ain` (0.2731), `nu_Ain` (0.287): initial onset point; `mu1_Bin` (-0.0461), `mu2_Bin`
    (0.243), `nu_Bin` (0.3144): initial offset point; `mu1_Aend` (0.06485), `mu2_Aend` (0.07337), `nu_Aend`
    (-0.3878): final onset point; `mu1_Bend` (0.03676), `mu2_Bend` (-0.02792), `nu_Bend` (-0.3973): final offset
    point; `b` (1.0); `R` (0.4); `c` (0.002); `cA` (0.0001) and `cB` (0.00012) drift rates of ``uA`` and ``uB``;
    `dstar` (0.3); `Ks` (0.0). Static: `N` (1), `modification` (True), as in :class:`EpileptorCodim3`.
    """

    mu1_Ain: Float[Array, "*N"] = param(0.05494)
    mu2_Ain: Float[Array, "*N"] = param(0.2731)
    nu_Ain: Float[Array, "*N"] = param(0.287)
    mu1_Bin: Float[Array, "*N"] = param(-0.0461)
    mu2_Bin: Float[Array, "*N"] = param(0.243)
    nu_Bin: Float[Array, "*N"] = param(0.3144)
    mu1_Aend: Float[Array, "*N"] = param(0.06485)
    mu2_Aend: Float[Array, "*N"] = param(0.07337)
    nu_Aend: Float[Array, "*N"] = param(-0.3878)
    mu1_Bend: Float[Array, "*N"] = param(0.03676)
    mu2_Bend: Float[Array, "*N"] = param(-0.02792)
    nu_Bend: Float[Array, "*N"] = param(-0.3973)
    b: Float[Array, "*N"] = param(1.0)
    R: Float[Array, "*N"] = param(0.4)
    c: Float[Array, "*N"] = param(0.002)
    cA: Float[Array, "*N"] = param(0.0001)
    cB: Float[Array, "*N"] = param(0.00012)
    dstar: Float[Array, "*N"] = param(0.3)
    Ks: Float[Array, "*N"] = param(0.0)
    N: int = eqx.field(static=True, default=1, converter=_branch)
    modification: bool = eqx.field(static=True, default=True, converter=_flag)

    state_variables: ClassVar[tuple[str, ...]] = ("x", "y", "z", "uA", "uB")
    cvar: ClassVar[tuple[int, ...]] = (0,)
    state_variable_range: ClassVar[dict[str, tuple[float, float]]] = {
        "x": (0.4, 0.6),
        "y": (-0.1, 0.1),
        "z": (0.0, 0.1),
        "uA": (0.0, 0.0),
        "uB": (0.0, 0.0),
    }

    def dfun(self, state, coupling):
        x, y, z, uA, uB = (state[k] for k in range(5))
        G, H = _arc_frame(
            _point(self.mu2_Ain, self.mu1_Ain, self.nu_Ain), _point(self.mu2_Aend, self.mu1_Aend, self.nu_Aend)
        )
        L, M = _arc_frame(
            _point(self.mu2_Bin, self.mu1_Bin, self.nu_Bin), _point(self.mu2_Bend, self.mu1_Bend, self.nu_Bend)
        )
        A = self.R * (G * jnp.cos(uA) + H * jnp.sin(uA))
        B = self.R * (L * jnp.cos(uB) + M * jnp.sin(uB))
        E, F = _arc_frame(A, B)
        dx, dy, dz = _fast_slow(self, x, y, z, E, F, coupling[0])
        duA = jnp.broadcast_to(self.cA, uA.shape).astype(uA.dtype)
        duB = jnp.broadcast_to(self.cB, uB.shape).astype(uB.dtype)
        return jnp.stack([dx, dy, dz, duA, duB])
