"""Helpers for differentiable parameters of models, couplings and noise.

A parameter is a JAX array (so that ``jax.grad`` and ``eqx.filter_grad`` see it), either a scalar or one value per
region, shape ``(N,)``. Python floats given by users are converted on construction. Leaves of a network are named
by dotted paths (``"coupling.a"``): :func:`leaf_path`, :func:`get_leaf`, :func:`leaf_paths`, :func:`set_leaves`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


def as_float_array(value: Any) -> jax.Array:
    """Convert ``value`` to a floating JAX array (float64 under ``jax_enable_x64``, else float32)."""
    if isinstance(value, jax.Array) and jnp.issubdtype(value.dtype, jnp.floating):
        return value
    return jnp.asarray(value, dtype=jnp.result_type(float))


def param(default: float, **kwargs: Any) -> Any:
    """An ``eqx.field`` holding a differentiable parameter (scalar or per-region ``(N,)`` array)."""
    return eqx.field(default=default, converter=as_float_array, **kwargs)


def is_concrete(x: Any) -> bool:
    """True when ``x`` holds values that can be inspected now (not a tracer under jit/vmap/grad)."""
    return not isinstance(x, jax.core.Tracer)


def check_parameter(owner: str, name: str, value: jax.Array) -> None:
    """Raise ``ValueError`` unless ``value`` is a scalar or a 1-D per-region array of finite numbers."""
    if value.ndim > 1:
        raise ValueError(
            f"{owner}: parameter {name!r} has shape {value.shape}; expected a scalar or one value per region, "
            f"shape (N,)."
        )
    if is_concrete(value) and not bool(np.all(np.isfinite(np.asarray(value)))):
        raise ValueError(f"{owner}: parameter {name!r} contains NaN or inf; give finite values.")


def check_parameters(module: eqx.Module, names: tuple[str, ...]) -> None:
    for name in names:
        check_parameter(type(module).__name__, name, getattr(module, name))


def check_n_regions(owner: str, params: dict[str, jax.Array], n: int) -> None:
    """Raise ``ValueError`` if a per-region parameter does not have length ``n`` (or 1)."""
    for name, value in params.items():
        if value.ndim == 1 and value.shape[0] not in (1, n):
            raise ValueError(
                f"{owner}: parameter {name!r} has {value.shape[0]} values but the connectome has {n} regions; "
                f"give a scalar or an array of shape ({n},)."
            )


def finite_or_none(x: float) -> float | None:
    return None if (x is None or math.isinf(x)) else float(x)


# ------------------------------------------------------------------------------------------------------ leaf paths
def _key_path(path: Any) -> str:
    return jax.tree_util.keystr(path).lstrip(".").replace("[", ".").replace("]", "").replace("'", "")


def leaf_path(tree: Any, leaf: Any) -> str | None:
    """The dotted path (``"coupling.a"``) of the leaf of ``tree`` that *is* ``leaf`` (by identity), or None."""
    for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if x is leaf:
            return _key_path(path)
    return None


def _parts(path: str) -> list[str]:
    if not isinstance(path, str) or not path or any(not p for p in path.split(".")):
        raise ValueError(f"leaf path must be a dotted name such as 'coupling.a' or 'model.x0', got {path!r}.")
    return path.split(".")


def get_leaf(net: Any, path: str) -> Any:
    """The leaf of `net` at the dotted `path` (``"coupling.a"``, ``"model.x0"``, ``"stimulus.0.amplitude"``)."""
    obj = net
    for i, part in enumerate(_parts(path)):
        try:
            obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
        except (AttributeError, IndexError, TypeError, KeyError):
            done = ".".join(_parts(path)[:i]) or "the network"
            raise ValueError(f"leaf path {path!r}: {done} has no {part!r}.") from None
    return obj


def leaf_paths(net: Any) -> tuple[str, ...]:
    """The dotted paths of every array leaf of `net`."""
    return tuple(_key_path(p) for p, _ in jax.tree_util.tree_flatten_with_path(net)[0])


def set_leaves(net: Any, values: Mapping[str, Any]) -> Any:
    """`net` with the leaves at the given paths replaced (shapes and dtypes kept); works on traced values."""
    if not values:
        return net
    paths = list(values)
    new = []
    for p in paths:
        leaf = get_leaf(net, p)
        if not eqx.is_array(leaf):
            raise ValueError(f"leaf path {p!r} is not an array leaf of the network.")
        v = jnp.asarray(values[p])
        if v.shape != leaf.shape:
            v = jnp.broadcast_to(v, leaf.shape)
        new.append(v.astype(leaf.dtype))
    return eqx.tree_at(lambda n: tuple(get_leaf(n, p) for p in paths), net, tuple(new))
