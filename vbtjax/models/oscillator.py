"""Oscillators: the generic 2D oscillator, the supercritical Hopf normal form and the Kuramoto phase oscillator."""

from __future__ import annotations

import math
from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array, Float

from .._params import param
from ._base import AbstractNeuralMass


class Generic2dOscillator(AbstractNeuralMass):
    r"""A fast variable ``V`` with a cubic nullcline and a slow variable ``W`` with a configurable quadratic nullcline.

    Equations (time in ms; ``V`` and ``W`` dimensionless, as in TVB):

    $$\dot V = d\,\tau\,\left(\alpha W - f V^3 + e V^2 + g V + \gamma I + \gamma C_V\right)$$
    $$\dot W = \frac{d}{\tau}\left(a + b V + c V^2 - \beta W\right)$$

    where $C_V$ is the long-range coupling of ``V`` (``cvar = (0,)``). With the defaults the model is excitable
    (FitzHugh–Nagumo-like, a stable fixed point); ``a = 4`` (or ``a = 2``) gives a limit cycle. No bounds.

    References: FitzHugh, R. (1961). Impulses and physiological states in theoretical models of nerve membrane.
    *Biophysical Journal*, 1, 445. Stefanescu, R., & Jirsa, V. K. (2008). A low dimensional description of globally
    coupled heterogeneous neural networks of excitatory and inhibitory neurons. *PLoS Computational Biology*, 4(11).
    Sanz Leon, P., et al. (2013). The Virtual Brain: a simulator of primate brain network dynamics. *Frontiers in
    Neuroinformatics*, 7, 10.

    **Parameters** (TVB names and defaults; each a scalar or per-region ``(N,)``):
    `tau` time-scale ratio of ``V`` and ``W`` (1.0); `I` baseline input shifting the cubic nullcline (0.0);
    `a` constant term of the ``W`` nullcline (-2.0); `b` its linear slope (-10.0); `c` its quadratic term (0.0);
    `d` overall rate (1/ms, 0.02); `e` quadratic coefficient of the cubic nullcline (3.0); `f` its cubic coefficient
    (1.0); `g` its linear coefficient (0.0); `alpha` feedback of ``W`` onto ``V`` (1.0); `beta` self-feedback of
    ``W`` (1.0); `gamma` gain of ``I`` and of the long-range coupling (1.0).
    """

    tau: Float[Array, "*N"] = param(1.0)
    I: Float[Array, "*N"] = param(0.0)
    a: Float[Array, "*N"] = param(-2.0)
    b: Float[Array, "*N"] = param(-10.0)
    c: Float[Array, "*N"] = param(0.0)
    d: Float[Array, "*N"] = param(0.02)
    e: Float[Array, "*N"] = param(3.0)
    f: Float[Array, "*N"] = param(1.0)
    g: Float[Array, "*N"] = param(0.0)
    alpha: Float[Array, "*N"] = param(1.0)
    beta: Float[Array, "*N"] = param(1.0)
    gamma: Float[Array, "*N"] = param(1.0)

    state_variables: ClassVar[tuple[str, ...]] = ("V", "W")
    cvar: ClassVar[tuple[int, ...]] = (0,)
    state_variable_range: ClassVar[dict[str, tuple[float, float]]] = {"V": (-2.0, 4.0), "W": (-6.0, 6.0)}

    def dfun(self, state, coupling):
        V, W = state[0], state[1]
        V2 = V * V
        drive = self.alpha * W - self.f * V2 * V + self.e * V2 + self.g * V + self.gamma * self.I
        dV = self.d * self.tau * (drive + self.gamma * coupling[0])
        dW = self.d * (self.a + self.b * V + self.c * V2 - self.beta * W) / self.tau
        return jnp.stack([dV, dW])


class SupHopf(AbstractNeuralMass):
    r"""Normal form of a supercritical Hopf bifurcation in Cartesian coordinates (the "Hopf" or Stuart–Landau model).

    Equations (time in ms; dimensionless ``x``, ``y``):

    $$\dot x = (a - x^2 - y^2)\,x - \omega y + C_x$$
    $$\dot y = (a - x^2 - y^2)\,y + \omega x + C_y$$

    where $C_x$ and $C_y$ are the long-range coupling of ``x`` and ``y`` (``cvar = (0, 1)``), added without a gain
    (scale them with the coupling function; with ``Difference`` coupling this is the diffusive Hopf network of Deco et
    al.). For ``a < 0`` the origin is a stable focus; for ``a > 0`` there is a stable limit cycle of radius
    $\sqrt a$ and angular frequency $\omega$ (rad/ms). No bounds.

    References: Kuznetsov, Y. A. (2013). *Elements of Applied Bifurcation Theory*. Springer. Deco, G., Kringelbach,
    M. L., Jirsa, V. K., & Ritter, P. (2017). The dynamics of resting fluctuations in the brain: metastability and its
    dynamical cortical core. *Scientific Reports*, 7, 3095.

    **Parameters** (TVB names and defaults; each a scalar or per-region ``(N,)``):
    `a` bifurcation parameter (-0.5); `omega` angular frequency (rad/ms, 1.0).
    """

    a: Float[Array, "*N"] = param(-0.5)
    omega: Float[Array, "*N"] = param(1.0)

    state_variables: ClassVar[tuple[str, ...]] = ("x", "y")
    cvar: ClassVar[tuple[int, ...]] = (0, 1)
    state_variable_range: ClassVar[dict[str, tuple[float, float]]] = {"x": (-5.0, 5.0), "y": (-5.0, 5.0)}

    def dfun(self, state, coupling):
        x, y = state[0], state[1]
        growth = self.a - x * x - y * y
        dx = growth * x - self.omega * y + coupling[0]
        dy = growth * y + self.omega * x + coupling[1]
        return jnp.stack([dx, dy])


class Kuramoto(AbstractNeuralMass):
    r"""Kuramoto phase oscillator: a phase ``theta`` advancing at its natural frequency plus the coupling.

    Equation (time in ms, ``theta`` in rad):

    $$\dot\theta = \omega + C_\theta$$

    where $C_\theta$ is the long-range coupling of ``theta`` (``cvar = (0,)``); with
    :class:`vbtjax.coupling.Kuramoto` it is $a \sum_j W_{ij} \sin(\theta_j(t - \tau_{ij}) - \theta_i(t))$. The phase
    is not wrapped (it grows without bound, as in TVB). No bounds.

    References: Kuramoto, Y. (1975). Self-entrainment of a population of coupled non-linear oscillators. In
    *International Symposium on Mathematical Problems in Theoretical Physics*, Lecture Notes in Physics 39, 420.
    Strogatz, S. H. (2000). From Kuramoto to Crawford. *Physica D*, 143, 1–20. Cabral, J., Hugues, E., Sporns, O., &
    Deco, G. (2011). Role of local network oscillations in resting-state functional connectivity. *NeuroImage*, 57(1).

    **Parameters** (TVB names and defaults; each a scalar or per-region ``(N,)``):
    `omega` natural angular frequency (rad/ms, 1.0).
    """

    omega: Float[Array, "*N"] = param(1.0)

    state_variables: ClassVar[tuple[str, ...]] = ("theta",)
    cvar: ClassVar[tuple[int, ...]] = (0,)
    state_variable_range: ClassVar[dict[str, tuple[float, float]]] = {"theta": (0.0, 2.0 * math.pi)}

    def dfun(self, state, coupling):
        dtheta = self.omega + coupling[0]
        return jnp.stack([jnp.broadcast_to(dtheta, state[0].shape)])
