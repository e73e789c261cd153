"""Long-range coupling functions with TVB's semantics.

For each coupling variable ``k`` and target region ``i``::

    c[k, i] = post( sum_j W[i, j] * pre(x_i[k](n), x_j[k](n - D[i, j])) )

``x_i`` is the current state of the target, ``x_j`` the delayed state of the source (the coupling variables
``model.cvar`` only). ``pre`` acts on the edge values, ``post`` on the weighted sums. Parameters are differentiable
arrays (scalar or per-region).
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._params import check_n_regions, check_parameter, param

__all__ = [
    "AbstractCoupling",
    "Linear",
    "Scaling",
    "Difference",
    "Kuramoto",
    "HyperbolicTangent",
    "Sigmoidal",
    "SigmoidalJansenRit",
]


class AbstractCoupling(eqx.Module):
    """A coupling function ``post(sum_j W_ij pre(x_i, x_j))``.

    Subclasses override :meth:`pre` and/or :meth:`post`. ``pre`` receives arrays whose leading axis holds the
    coupling variables (``(n_cvar, ...)``); it returns ``(n_out, ...)`` with ``n_out`` given by :meth:`n_out`.
    Set the class variable ``source_only = False`` when ``pre`` uses ``x_i`` (the target's current state): the
    simulator then evaluates it at every step; otherwise it is evaluated in bulk for several steps at once.

    A coupling whose ``pre`` uses ``x_i`` but is a *sum* of a source part and a target part,
    ``pre(x_i, x_j) = pre_source(x_j) + pre_target(x_i)`` (diffusive coupling ``x_j - x_i``), can declare it with
    ``separable = True`` and the two methods :meth:`pre_source` and :meth:`pre_target`. The simulator then evaluates
    the delayed part as ``sum_j W_ij pre_source(x_j(n - D_ij)) + (sum_j W_ij) pre_target(x_i(n))``: the bulk,
    source-only path for the delayed sum, plus a local term with the row sums of the weights (the same value up to
    floating-point rounding). Couplings that are not separable (``sin(x_j - x_i)``) keep the exact edge-wise path.
    """

    source_only: ClassVar[bool] = True
    separable: ClassVar[bool] = False

    def pre(self, x_i: Float[Array, "n_cvar ..."], x_j: Float[Array, "n_cvar ..."]) -> Float[Array, "n_out ..."]:
        """Edge-wise function of the target's current value ``x_i`` and the source's delayed value ``x_j``."""
        return x_j

    def pre_source(self, x_j: Float[Array, "n_cvar ..."]) -> Float[Array, "n_out ..."]:
        """The source part of a separable ``pre`` (``separable = True``): ``pre(x_i, x_j) - pre_target(x_i)``.
        By default ``pre(None, x_j)``, which is right for source-only couplings. Per-region parameters refer to
        the target region, as in :meth:`pre`."""
        return self.pre(None, x_j)

    def pre_target(self, x_i: Float[Array, "n_cvar N"]) -> Float[Array, "n_out N"]:
        """The target part of a separable ``pre``: ``pre(x_i, x_j) - pre_source(x_j)``, a function of the target's
        current state only (``(n_cvar, N)`` in, ``(n_out, N)`` out). Needed when ``separable = True``."""
        raise NotImplementedError(f"{type(self).__name__} declares separable = True but does not define pre_target.")

    def post(self, gx: Float[Array, "n_out N"]) -> Float[Array, "n_out N"]:
        """Function of the weighted sum ``gx[k, i] = sum_j W[i, j] pre(...)[k, i, j]``."""
        return gx

    def n_out(self, n_cvar: int) -> int:
        """Number of rows that ``pre`` returns for ``n_cvar`` coupling variables."""
        return n_cvar

    def __check_init__(self):
        for name, value in self.parameters().items():
            check_parameter(type(self).__name__, name, value)

    def parameters(self) -> dict:
        """The numeric parameters as ``{name: array}``."""
        return {k: v for k, v in vars(self).items() if hasattr(v, "ndim")}

    def check_n_regions(self, n: int) -> None:
        check_n_regions(type(self).__name__, self.parameters(), n)

    def for_edges(self) -> AbstractCoupling:
        """This coupling with per-region parameters reshaped to ``(N, 1)``, for ``pre`` on edge arrays ``(..., N, P)``
        whose axis ``-2`` is the target region. Per-region coupling parameters always refer to the target region."""
        return jax.tree.map(lambda p: p[:, None] if getattr(p, "ndim", 0) == 1 else p, self)

    def __call__(self, weights, x_i, x_j):
        """Dense reference evaluation: ``weights`` (N, N), ``x_i`` (n_cvar, N), ``x_j`` (n_cvar, N, N) delayed
        values of source j as seen by target i. Returns ``(n_out, N)``. The simulator uses a faster sparse path."""
        pre = self.for_edges().pre(x_i[:, :, None], x_j)
        return self.post(jnp.sum(weights * pre, axis=-1))


class Linear(AbstractCoupling):
    """``post(gx) = a * gx + b`` with ``pre = x_j`` (``b`` is added to every region)."""

    a: Float[Array, "*N"] = param(0.00390625)
    b: Float[Array, "*N"] = param(0.0)

    def post(self, gx):
        return self.a * gx + self.b


class Scaling(AbstractCoupling):
    """``post(gx) = a * gx`` with ``pre = x_j``."""

    a: Float[Array, "*N"] = param(0.00390625)

    def post(self, gx):
        return self.a * gx


class Difference(AbstractCoupling):
    """Diffusive coupling: ``pre = x_j - x_i``, ``post = a * gx``.

    Separable: the simulator evaluates ``sum_j W_ij (x_j(n - D_ij) - x_i(n))`` as
    ``sum_j W_ij x_j(n - D_ij) - (sum_j W_ij) x_i(n)`` (see :class:`AbstractCoupling`).
    """

    a: Float[Array, "*N"] = param(0.1)
    source_only: ClassVar[bool] = False
    separable: ClassVar[bool] = True

    def pre(self, x_i, x_j):
        return x_j - x_i

    def pre_source(self, x_j):
        return x_j

    def pre_target(self, x_i):
        return -x_i

    def post(self, gx):
        return self.a * gx


class Kuramoto(AbstractCoupling):
    """Phase coupling: ``pre = sin(x_j - x_i)``, ``post = a / n_cvar * gx``.

    As in TVB, the sum is divided by the number of coupling variables (1 for the Kuramoto model), not by the number
    of regions: scale ``a`` by ``1/N`` yourself for the classical ``K/N`` normalisation.
    """

    a: Float[Array, "*N"] = param(1.0)
    source_only: ClassVar[bool] = False

    def pre(self, x_i, x_j):
        return jnp.sin(x_j - x_i)

    def post(self, gx):
        return self.a / gx.shape[0] * gx


class HyperbolicTangent(AbstractCoupling):
    """Pre-summation sigmoid: ``pre = a * (1 + tanh((b * x_j - midpoint) / sigma))``, ``post = gx``."""

    a: Float[Array, "*N"] = param(1.0)
    b: Float[Array, "*N"] = param(1.0)
    midpoint: Float[Array, "*N"] = param(0.0)
    sigma: Float[Array, "*N"] = param(1.0)

    def pre(self, x_i, x_j):
        return self.a * (1.0 + jnp.tanh((self.b * x_j - self.midpoint) / self.sigma))


class Sigmoidal(AbstractCoupling):
    """Post-summation sigmoid: ``pre = x_j``,
    ``post = cmin + (cmax - cmin) / (1 + exp(-a (gx - midpoint) / sigma))``."""

    cmin: Float[Array, "*N"] = param(-1.0)
    cmax: Float[Array, "*N"] = param(1.0)
    midpoint: Float[Array, "*N"] = param(0.0)
    a: Float[Array, "*N"] = param(1.0)
    sigma: Float[Array, "*N"] = param(230.0)

    def post(self, gx):
        return self.cmin + (self.cmax - self.cmin) / (1.0 + jnp.exp(-self.a * ((gx - self.midpoint) / self.sigma)))


class SigmoidalJansenRit(AbstractCoupling):
    """Jansen–Rit sigmoid of the source's PSP difference (one output row).

    ``pre = cmin + (cmax - cmin) / (1 + exp(r (midpoint - (x_j[0] - x_j[1]))))`` where rows 0, 1 are the model's
    two coupling variables (``y1``, ``y2`` for :class:`~vbtjax.models.JansenRit`); ``post = a * gx``.
    Units: ``midpoint`` mV, ``r`` 1/mV, ``cmax`` 1/ms (2 e0 = 0.005).
    """

    cmin: Float[Array, "*N"] = param(0.0)
    cmax: Float[Array, "*N"] = param(2.0 * 0.0025)
    midpoint: Float[Array, "*N"] = param(6.0)
    r: Float[Array, "*N"] = param(0.56)
    a: Float[Array, "*N"] = param(1.0)

    def pre(self, x_i, x_j):
        v = x_j[0] - x_j[1]
        return (self.cmin + (self.cmax - self.cmin) / (1.0 + jnp.exp(self.r * (self.midpoint - v))))[None]

    def post(self, gx):
        return self.a * gx

    def n_out(self, n_cvar: int) -> int:
        if n_cvar < 2:
            raise ValueError(
                "SigmoidalJansenRit needs a model with two coupling variables (e.g. JansenRit, cvar = (1, 2)); "
                f"this model has {n_cvar}."
            )
        return 1
