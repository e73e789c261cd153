"""Differentiable losses between simulated and empirical data features, and their weighted combination.

Each loss takes the simulated quantity first and the empirical one second, returns a scalar to minimise, and works
under ``jax.jit``, ``jax.grad`` and ``jax.vmap``. Time series are ``(time, region)``: select a state variable or a
BOLD channel from a :class:`~vbtjax.Solution` first, e.g. ``sol.ys["raw"][:, 0]``. Shape arguments (``window``,
``step``, ``nperseg``) are static Python integers.

Combine losses with :func:`weighted_sum` after giving them the same signature, e.g.::

    loss = weighted_sum([
        (1.0, lambda x: fc_correlation_loss(fc(x), emp_fc)),
        (0.5, lambda x: fcd_ks_loss(x, emp_fcd, window=30, step=5, temperature=0.02)),
    ])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ..observation import features as _f

__all__ = [
    "fc_correlation_loss",
    "fc_distance_loss",
    "fcd_ks_loss",
    "log_psd_loss",
    "quantile_ks_loss",
    "sample_quantiles",
    "timeseries_loss",
    "weighted_sum",
]


def fc_correlation_loss(sim_fc: Float[ArrayLike, "N N"], emp_fc: Float[ArrayLike, "N N"]) -> Float[Array, ""]:
    """``1 - r``, with ``r`` the Pearson correlation of the upper triangles of two FC matrices (0 for the same
    pattern, up to 2). Insensitive to the overall level of the correlations; see :func:`fc_distance_loss`."""
    return 1.0 - _f.fc_correlation(sim_fc, emp_fc)


def fc_distance_loss(sim_fc: Float[ArrayLike, "N N"], emp_fc: Float[ArrayLike, "N N"]) -> Float[Array, ""]:
    """Root-mean-square difference between the upper triangles of two FC matrices
    (:func:`vbtjax.features.fc_distance`)."""
    return _f.fc_distance(sim_fc, emp_fc)


def fcd_ks_loss(
    sim_ts: Float[ArrayLike, "T N"],
    emp_fcd_values: Float[ArrayLike, " P"],
    window: int,
    step: int,
    temperature: float = 0.02,
    k: int = 1,
) -> Float[Array, ""]:
    """Smooth Kolmogorov-Smirnov distance between the FCD values of a simulated series and empirical ones.

    **Arguments:**
    - `sim_ts`: simulated series ``(T, N)`` (time, region).
    - `emp_fcd_values`: empirical FCD values, e.g. ``fcd_values(fcd(emp_ts, window, step), k)``.
    - `window`, `step`: FCD window and shift in samples (as used for the empirical values).
    - `temperature`: smoothing of the empirical CDFs (units of correlation; a few percent of their spread).
    - `k`: diagonal offset of the FCD values kept (``ceil(window / step)`` drops overlapping windows).
    """
    sim = _f.fcd_values(_f.fcd(sim_ts, window, step), k=k)
    return _f.ks_distance(sim, emp_fcd_values, smooth=temperature)


def log_psd_loss(
    sim: Float[ArrayLike, "T N"],
    emp_psd: Float[ArrayLike, "F N"],
    fs: float,
    nperseg: int,
    *,
    eps: float = 1e-20,
    freq_mask: ArrayLike | None = None,
) -> Float[Array, ""]:
    """Mean squared difference of log power spectra: ``mean((log(P_sim + eps) - log(P_emp + eps))^2)``.

    **Arguments:**
    - `sim`: simulated series ``(T, N)``; its Welch PSD (``welch_psd(sim, fs, nperseg)``, default overlap) is used.
    - `emp_psd`: empirical PSD on the same frequencies, ``(F, N)`` with ``F = nperseg // 2 + 1`` (or broadcastable).
    - `fs`: sampling rate in Hz (``1000 / period_ms``); `nperseg`: segment length in samples.
    - `eps`: added before the log (units² / Hz).
    - `freq_mask`: optional boolean ``(F,)`` selecting the frequencies compared (e.g. ``(f > 1) & (f < 40)``).
    """
    _, psd = _f.welch_psd(sim, fs, nperseg)
    emp = jnp.asarray(emp_psd)
    try:
        ok = np.broadcast_shapes(psd.shape, emp.shape) == psd.shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"log_psd_loss: emp_psd has shape {emp.shape}; expected {psd.shape} (frequency, region).")
    d = jnp.log(psd + eps) - jnp.log(emp + eps)
    d2 = jnp.broadcast_to(d * d, psd.shape)
    if freq_mask is None:
        return jnp.mean(d2)
    mask = jnp.asarray(freq_mask, bool)
    if mask.shape != psd.shape[:1]:
        raise ValueError(f"log_psd_loss: freq_mask has shape {mask.shape}; expected ({psd.shape[0]},).")
    w = jnp.broadcast_to(mask.reshape((-1,) + (1,) * (psd.ndim - 1)), psd.shape).astype(d2.dtype)
    return jnp.sum(d2 * w) / jnp.sum(w)


def timeseries_loss(sim: ArrayLike, emp: ArrayLike) -> Float[Array, ""]:
    """Mean squared error between two arrays of the same shape (e.g. simulated and recorded time series)."""
    sim, emp = jnp.asarray(sim), jnp.asarray(emp)
    if sim.shape != emp.shape:
        raise ValueError(f"timeseries_loss: shapes differ: simulated {sim.shape}, empirical {emp.shape}.")
    d = sim - emp
    return jnp.mean(d * d)


def weighted_sum(terms: Sequence[tuple[float, Callable[..., Array]]]) -> Callable[..., Array]:
    """A loss ``sum_i w_i * loss_i(*args, **kwargs)`` from ``[(w_1, loss_1), (w_2, loss_2), ...]``.

    All the losses are called with the same arguments (wrap them with ``lambda`` or ``functools.partial`` to give
    them a common signature, e.g. the simulated time series).
    """
    terms = tuple(terms)
    if not terms:
        raise ValueError("weighted_sum: give at least one (weight, loss) pair.")
    for t in terms:
        if not (isinstance(t, tuple | list) and len(t) == 2 and callable(t[1])):
            raise TypeError(f"weighted_sum: each term must be a (weight, loss_function) pair, got {t!r}.")

    def loss(*args, **kwargs):
        return sum(w * fn(*args, **kwargs) for w, fn in terms)

    return loss


def sample_quantiles(values: Float[ArrayLike, ...], n_quantiles: int = 256) -> Float[Array, " n_quantiles"]:
    """The ``n_quantiles`` quantiles of a sample (flattened) at probabilities ``(i + 1/2) / n_quantiles``: a
    fixed-size summary of its distribution for :func:`quantile_ks_loss` (compute an empirical one once, outside the
    loss). Differentiable through the sorted values."""
    if isinstance(n_quantiles, bool) or not isinstance(n_quantiles, int | np.integer) or n_quantiles < 2:
        raise ValueError(f"sample_quantiles: n_quantiles must be an integer >= 2, got {n_quantiles!r}.")
    v = jnp.ravel(jnp.asarray(values))
    return jnp.quantile(v, ((jnp.arange(n_quantiles) + 0.5) / n_quantiles).astype(v.dtype))


def quantile_ks_loss(
    sim_values: Float[ArrayLike, " P"],
    emp_quantiles: Float[ArrayLike, " Q"],
    n_quantiles: int = 256,
    temperature: float = 0.02,
) -> Float[Array, ""]:
    """Smooth Kolmogorov-Smirnov distance between a large sample and an empirical distribution, both summarised by
    quantiles: :func:`vbtjax.features.ks_distance` with ``smooth=temperature`` between
    ``sample_quantiles(sim_values, n_quantiles)`` and ``emp_quantiles`` (e.g. ``sample_quantiles(emp_values)``,
    computed once). Its cost is ``(n_quantiles + Q)^2`` whatever the sample sizes (an FCD of a 15-minute recording
    holds ~10^4-10^5 values, whose full smooth KS costs ``(P + Q)^2``); it differs from the KS distance of the whole
    samples by about ``1 / n_quantiles`` plus the smoothing. Gradients flow through the sorted values."""
    return _f.ks_distance(sample_quantiles(sim_values, n_quantiles), emp_quantiles, smooth=temperature)
