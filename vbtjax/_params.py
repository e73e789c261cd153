"""Helpers for differentiable parameters of models, couplings and noise.

A parameter is a JAX array (so that ``jax.grad`` and ``eqx.filter_grad`` see it), either a scalar or one value per
region, shape ``(N,)``. Python floats given by users are converted on construction.
"""

from __future__ import annotations

import math
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
