"""Choosing what is fitted: parameters of a network, each with a constraint mapping it to unconstrained space.

A :class:`Parameter` selects one array leaf of a :class:`~vbtjax.Network` (``where=lambda net: net.coupling.a``) and
carries a constraint (:class:`Real`, :class:`Positive`, :class:`Interval`, :class:`Affine`). A :class:`Selection`
of parameters maps an unconstrained vector ``u`` (a tuple of arrays, one per parameter, each shaped as its leaf) to
a network, ``selection.apply(net, u)``, so that optimisers (Optax), samplers (BlackJAX NUTS, with
``selection.log_det_jacobian(u)``) and ``jax.vmap`` sweeps all work on the same unconstrained pytree.

Constraints act elementwise, so a leaf may be a scalar or one value per region ``(N,)``, and so may ``Interval``'s
bounds.

A **parameter map** is a per-region leaf spanned by a few maps: ``Parameter(lambda net: net.model.a, basis=B)`` with
``B`` ``(N, K)`` makes the parameter the ``K`` coefficients ``c`` and sets the leaf to ``B @ c`` (a gradient of
excitability along a myelin or connectivity map, say: ``B = [1, map]``). The constraint and the prior act on the
coefficients; the same selection serves fitting, NUTS, simulation budgets and twins (``vbt.sweep`` sets whole leaves:
give it the leaf values ``basis @ c``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

from .._params import as_float_array, is_concrete, leaf_path

__all__ = ["AbstractConstraint", "Real", "Positive", "Interval", "Affine", "Parameter", "Selection"]


class AbstractConstraint(eqx.Module):
    """A bijection ``forward: R -> support`` applied elementwise, with its inverse and log-Jacobian."""

    def forward(self, u: ArrayLike) -> Array:
        """Unconstrained ``u`` to the constrained value ``x``."""
        raise NotImplementedError

    def inverse(self, x: ArrayLike) -> Array:
        """Constrained ``x`` to unconstrained ``u``."""
        raise NotImplementedError

    def log_det_jacobian(self, u: ArrayLike) -> Array:
        """``sum(log |d forward(u) / d u|)`` over the elements of ``u`` (scalar): the change-of-variables term a
        sampler adds to a log density defined in constrained space."""
        raise NotImplementedError

    def check(self, x: Array, what: str) -> None:
        """Raise ``ValueError`` if the (concrete) value ``x`` lies outside the support."""


class Real(AbstractConstraint):
    """No constraint: ``x = u``."""

    def forward(self, u):
        return jnp.asarray(u)

    def inverse(self, x):
        return jnp.asarray(x)

    def log_det_jacobian(self, u):
        return jnp.zeros((), jnp.result_type(u, float))

    def check(self, x, what):
        if not np.all(np.isfinite(np.asarray(x))):  # NumPy: also works while a jit/vmap trace is active
            raise ValueError(f"{what}: value {np.asarray(x)} is not finite.")


class Positive(AbstractConstraint):
    """``x > 0`` through the softplus, ``x = log(1 + exp(u))``.

    Softplus rather than ``exp``: it is linear for large ``u`` (``x ~ u``), so an optimiser's steps in ``u`` are steps
    of the same size in ``x`` instead of multiplicative ones, nothing overflows for large values (``exp`` of a
    parameter of a few hundred overflows in float32), and the gradient ``sigmoid(u)`` is bounded by 1. Near 0 it
    behaves like ``exp`` (``x ~ exp(u)``). For parameters that span orders of magnitude, use
    ``Interval`` on a log scale in your own model or rescale the parameter.
    """

    def forward(self, u):
        return jax.nn.softplus(jnp.asarray(u))

    def inverse(self, x):
        x = jnp.asarray(x)
        # log(exp(x) - 1) = x + log(1 - exp(-x)), stable for large and small x
        return x + jnp.log(-jnp.expm1(-x))

    def log_det_jacobian(self, u):
        # d softplus / du = sigmoid(u); log sigmoid(u) = -softplus(-u)
        return jnp.sum(jax.nn.log_sigmoid(jnp.asarray(u)))

    def check(self, x, what):
        xv = np.asarray(x)
        if not np.all(np.isfinite(xv) & (xv > 0)):
            raise ValueError(f"{what}: value {np.asarray(x)} must be > 0 for a Positive constraint.")


class Interval(AbstractConstraint):
    """``lo < x < hi`` through a scaled sigmoid, ``x = lo + (hi - lo) sigmoid(u)``.

    **Arguments:**
    - `lo`, `hi`: bounds, scalars or per-region ``(N,)`` arrays, ``lo < hi`` elementwise.
    """

    lo: Array = eqx.field(converter=as_float_array)
    hi: Array = eqx.field(converter=as_float_array)

    def __check_init__(self):
        if is_concrete(self.lo) and is_concrete(self.hi):
            ok = np.all(np.isfinite(np.asarray(self.lo))) and np.all(np.isfinite(np.asarray(self.hi)))
            if not ok or not np.all(np.asarray(self.lo) < np.asarray(self.hi)):
                raise ValueError(
                    f"Interval: need finite bounds with lo < hi, got lo={np.asarray(self.lo)}, "
                    f"hi={np.asarray(self.hi)}."
                )

    def forward(self, u):
        return self.lo + (self.hi - self.lo) * jax.nn.sigmoid(jnp.asarray(u))

    def inverse(self, x):
        p = (jnp.asarray(x) - self.lo) / (self.hi - self.lo)
        return jnp.log(p) - jnp.log1p(-p)

    def log_det_jacobian(self, u):
        u = jnp.asarray(u)
        ldj = jnp.log(self.hi - self.lo) + jax.nn.log_sigmoid(u) + jax.nn.log_sigmoid(-u)
        return jnp.sum(jnp.broadcast_to(ldj, jnp.broadcast_shapes(ldj.shape, u.shape)))

    def check(self, x, what):
        lo, hi = np.asarray(self.lo), np.asarray(self.hi)
        xv = np.asarray(x)
        if not np.all(np.isfinite(xv) & (xv > lo) & (xv < hi)):
            raise ValueError(
                f"{what}: initial value {xv} lies outside the open interval ({lo}, {hi}); move the starting value "
                "inside (e.g. with eqx.tree_at) or widen the Interval."
            )


class Affine(AbstractConstraint):
    """No bounds, a shift and a scale: ``x = loc + scale * u``.

    With a prior ``Normal(loc, scale)`` on ``x`` the unconstrained ``u`` is standard normal: the *non-centred*
    parametrisation, which gives samplers an isotropic geometry (per-region excitabilities of a VEP, for example)
    and optimisers steps on the scale of the prior.

    **Arguments:**
    - `loc`, `scale`: scalars or per-region ``(N,)`` arrays, ``scale > 0``.
    """

    loc: Array = eqx.field(converter=as_float_array)
    scale: Array = eqx.field(converter=as_float_array)

    def __check_init__(self):
        if is_concrete(self.loc) and is_concrete(self.scale):
            loc, scale = np.asarray(self.loc), np.asarray(self.scale)
            if not (np.all(np.isfinite(loc)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
                raise ValueError(f"Affine: need a finite loc and a finite scale > 0, got loc={loc}, scale={scale}.")

    def forward(self, u):
        return self.loc + self.scale * jnp.asarray(u)

    def inverse(self, x):
        return (jnp.asarray(x) - self.loc) / self.scale

    def log_det_jacobian(self, u):
        u = jnp.asarray(u)
        ldj = jnp.log(self.scale)
        return jnp.sum(jnp.broadcast_to(ldj, jnp.broadcast_shapes(ldj.shape, u.shape)))

    def check(self, x, what):
        if not np.all(np.isfinite(np.asarray(x))):  # NumPy: also works while a jit/vmap trace is active
            raise ValueError(f"{what}: value {np.asarray(x)} is not finite.")


class Parameter(eqx.Module):
    """One fitted array leaf of a network.

    **Arguments:**
    - `where`: a function selecting the leaf, as for ``eqx.tree_at``: ``lambda net: net.coupling.a``,
      ``lambda net: net.model.eta`` (scalar or per-region ``(N,)``), ``lambda net: net.speed``.
    - `constraint`: :class:`Real` (default), :class:`Positive` or :class:`Interval`.
    - `name`: name used in results and histories; default: the leaf's path in the network, e.g. ``"coupling.a"``.
    - `basis`: ``None`` (the parameter is the leaf itself) or a parameter map's basis ``(N, K)``: the parameter is
      then ``K`` coefficients ``c`` (constrained by `constraint`, shaped ``(K,)``) and the leaf ``(N,)`` is
      ``basis @ c``. A network's current leaf is read back as the least-squares coefficients.
    """

    where: Callable[[Any], Array] = eqx.field(static=True)
    constraint: AbstractConstraint = eqx.field(default_factory=Real)
    name: str | None = eqx.field(default=None, static=True)
    basis: Array | None = eqx.field(default=None, converter=lambda b: None if b is None else as_float_array(b))

    def __check_init__(self):
        if not callable(self.where):
            raise TypeError(
                f"Parameter: where must be a function such as lambda net: net.coupling.a, got {self.where!r}."
            )
        if not isinstance(self.constraint, AbstractConstraint):
            raise TypeError(
                "Parameter: constraint must be Real(), Positive() or Interval(lo, hi), got "
                f"{type(self.constraint).__name__}."
            )
        if self.basis is not None and is_concrete(self.basis):
            b = np.asarray(self.basis)
            if b.ndim != 2 or b.shape[1] < 1:
                raise ValueError(f"Parameter: basis must be (N, K), one column per map, got shape {b.shape}.")
            if not np.all(np.isfinite(b)):
                raise ValueError("Parameter: basis contains NaN or inf.")
            if np.linalg.matrix_rank(b) < b.shape[1]:
                raise ValueError(
                    f"Parameter: the {b.shape[1]} columns of basis are linearly dependent; drop the redundant maps."
                )

    def to_leaf(self, c: ArrayLike) -> Array:
        """The leaf value of the (constrained) parameter value ``c``: ``basis @ c`` (``c`` may carry batch axes
        ``(..., K)`` -> ``(..., N)``), or ``c`` without a basis."""
        c = jnp.asarray(c)
        return c if self.basis is None else c @ self.basis.T.astype(c.dtype)

    def from_leaf(self, x: Array) -> Array:
        """The parameter value of a leaf ``x`` ``(N,)``: ``x``, or its least-squares coefficients on the basis."""
        return x if self.basis is None else jnp.linalg.lstsq(self.basis.astype(x.dtype), x)[0]


class Selection(eqx.Module):
    """The parameters to fit or sample, and the map between their unconstrained values and a network.

    **Arguments:**
    - `params`: a sequence of :class:`Parameter`, each selecting a different array leaf.

    The unconstrained values ``u`` are a tuple of arrays, one per parameter, in order, each shaped as its leaf (as its
    coefficients ``(K,)`` for a parameter map).
    ``apply``, ``log_det_jacobian`` and the constraints work under ``jax.jit``, ``jax.grad`` and ``jax.vmap``.
    """

    params: tuple[Parameter, ...]

    def __init__(self, params: Sequence[Parameter]):
        if isinstance(params, Parameter):
            params = (params,)
        params = tuple(params)
        if not params:
            raise ValueError("Selection: give at least one Parameter.")
        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError(f"Selection: expected Parameter objects, got {type(p).__name__}.")
        names = [p.name for p in params if p.name is not None]
        if len(set(names)) != len(names):
            raise ValueError(f"Selection: parameter names must be unique, got {names}.")
        self.params = params

    def _leaves(self, net: Any) -> list[Array]:
        leaves = []
        for i, p in enumerate(self.params):
            try:
                x = p.where(net)
            except Exception as e:  # noqa: BLE001
                raise ValueError(f"Selection: parameter {i} ({p.name or 'unnamed'}): where(net) failed: {e!r}") from e
            if not eqx.is_array(x) or not jnp.issubdtype(x.dtype, jnp.floating):
                raise ValueError(
                    f"Selection: parameter {i} ({p.name or 'unnamed'}): where must select a floating array leaf of "
                    f"the network (e.g. lambda net: net.coupling.a), got {type(x).__name__}."
                )
            if p.basis is not None and x.shape != (p.basis.shape[0],):
                raise ValueError(
                    f"Selection: parameter {i} ({p.name or 'unnamed'}): its basis has {p.basis.shape[0]} rows but the "
                    f"leaf has shape {x.shape}; a parameter map needs a per-region leaf, one basis row per region "
                    "(make a scalar leaf per-region first: eqx.tree_at(where, net, jnp.full(N, value)))."
                )
            leaves.append(x)
        ids = [id(x) for x in leaves]
        if len(set(ids)) != len(ids):
            raise ValueError("Selection: two parameters select the same leaf of the network.")
        return leaves

    def names(self, net: Any) -> tuple[str, ...]:
        """Names of the parameters: each ``name``, or the leaf's path in ``net`` (``"coupling.a"``)."""
        leaves = self._leaves(net)
        out = []
        for i, (p, x) in enumerate(zip(self.params, leaves, strict=True)):
            if p.name is not None:
                out.append(p.name)
                continue
            path = leaf_path(net, x)
            if path is None:
                raise ValueError(
                    f"Selection: parameter {i}: where(net) returned an array that is not a leaf of the network (a "
                    "computed value such as net.model.a[0] or net.model.a * 2?); select a whole leaf, e.g. "
                    "lambda net: net.model.a."
                )
            out.append(path)
        if len(set(out)) != len(out):
            raise ValueError(f"Selection: parameter names must be unique, got {out}.")
        return tuple(out)

    def check(self, net: Any) -> tuple[str, ...]:
        """Validate the selection against ``net`` (leaves exist, are distinct, and lie in their supports);
        returns the names."""
        names = self.names(net)
        for p, name, x in zip(self.params, names, self._coordinates(net), strict=True):
            if is_concrete(x):
                p.constraint.check(x, f"Selection: parameter {name!r}")
        return names

    def _coordinates(self, net: Any) -> list[Array]:
        """The parameters' values in ``net``: each leaf, or a parameter map's coefficients."""
        return [p.from_leaf(x) for p, x in zip(self.params, self._leaves(net), strict=True)]

    def shapes(self, net: Any) -> tuple[tuple[int, ...], ...]:
        """The shape of each parameter: its leaf's, or ``(K,)`` for a parameter map."""
        return tuple(
            tuple(x.shape) if p.basis is None else (int(p.basis.shape[1]),)
            for p, x in zip(self.params, self._leaves(net), strict=True)
        )

    def to_leaves(self, net: Any, xs: Sequence[ArrayLike]) -> tuple[Array, ...]:
        """Constrained parameter values ``xs`` (one per parameter) -> the leaf values they set in ``net``, checked
        against the leaves' shapes and cast to their dtypes."""
        leaves = self._leaves(net)
        out = []
        for i, (p, x, leaf) in enumerate(zip(self.params, xs, leaves, strict=True)):
            v = p.to_leaf(x)
            if v.shape != leaf.shape:
                raise ValueError(
                    f"Selection.apply: parameter {i} has shape {v.shape} but its leaf has shape {leaf.shape}."
                )
            out.append(v.astype(leaf.dtype))
        return tuple(out)

    def init_unconstrained(self, net: Any) -> tuple[Array, ...]:
        """The unconstrained values of the parameters currently in ``net``; raises ``ValueError`` when a value lies
        outside its constraint's support."""
        self.check(net)
        return tuple(p.constraint.inverse(x) for p, x in zip(self.params, self._coordinates(net), strict=True))

    def constrained(self, u: Sequence[ArrayLike]) -> tuple[Array, ...]:
        """The constrained values ``forward(u)``, one per parameter."""
        u = self._check_u(u)
        return tuple(p.constraint.forward(ui) for p, ui in zip(self.params, u, strict=True))

    def apply(self, net: Any, u: Sequence[ArrayLike]) -> Any:
        """``net`` with every selected leaf replaced by its constrained value ``forward(u_i)`` (``basis @
        forward(u_i)`` for a parameter map)."""
        xs = self.to_leaves(net, self.constrained(u))
        where = lambda n: tuple(p.where(n) for p in self.params)  # noqa: E731
        return eqx.tree_at(where, net, xs)

    def values(self, net: Any) -> dict[str, Array]:
        """The selected (constrained) values in ``net``, by name (a parameter map's coefficients)."""
        return dict(zip(self.names(net), self._coordinates(net), strict=True))

    def log_det_jacobian(self, u: Sequence[ArrayLike]) -> Array:
        """Sum of the constraints' log-Jacobians at ``u`` (scalar)."""
        u = self._check_u(u)
        return sum(p.constraint.log_det_jacobian(ui) for p, ui in zip(self.params, u, strict=True))

    def _check_u(self, u) -> tuple[Array, ...]:
        u = tuple(u)
        if len(u) != len(self.params):
            raise ValueError(
                f"Selection: expected {len(self.params)} unconstrained arrays (one per parameter), got {len(u)}."
            )
        return tuple(jnp.asarray(ui) for ui in u)
