"""Data features of simulated or recorded time series: FC, FCD, spectra, SEEG log power, synchrony.

Every feature is a differentiable ``jax.numpy`` function with no Python control flow on array values, so it works
under ``jax.jit``, ``jax.vmap`` and ``jax.grad``. Arguments that set shapes (``window``, ``step``, ``nperseg``,
``noverlap``, ``nfft``, ``axis``) are static: pass them as Python numbers, and mark them static when you ``jit``
a function that takes them as arguments. Mistakes in them raise ``ValueError`` when the function is called or traced.

Time series are laid out ``(time, region)`` (or ``(time, sensor)``): select a state variable from a simulation's
``(time, state_variable, region)`` output first, e.g. ``fc(sol.ys["raw"][:, 0])``. Batches (parameter sweeps,
several subjects) go through ``jax.vmap``.

Units: windows and steps are numbers of samples; a monitor's sampling period is in ms, and spectra use Hz, so
``fs = sampling_rate(period_ms) = 1000 / period_ms``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._params import is_concrete

__all__ = [
    "analytic_signal",
    "band_power",
    "fc",
    "fc_correlation",
    "fc_distance",
    "fc_upper",
    "fcd",
    "fcd_values",
    "kuramoto_order",
    "ks_distance",
    "metastability",
    "pearson_r",
    "phase_from_signal",
    "relative_band_power",
    "sampling_rate",
    "seeg_log_power",
    "synchrony",
    "welch_psd",
    "window_starts",
]


# ----------------------------------------------------------------------------------------------------------- helpers
def _asarray(x: ArrayLike) -> Array:
    """``jnp.asarray``, but numpy arrays go through ``device_put`` (no copy program to compile)."""
    return jax.device_put(x) if isinstance(x, np.ndarray) else jnp.asarray(x)


def _float_array(x: ArrayLike) -> Array:
    x = _asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


def _check_ndim(name: str, x: Array, ndim: int, layout: str, hint: str = "") -> None:
    if x.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array {layout}, got shape {x.shape}.{hint}")


def _check_positive_int(name: str, arg: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: {arg} must be a positive integer number of samples, got {value!r}.")
    return int(value)


def _check_positive_scalar(name: str, arg: str, value) -> None:
    """Raise if a concrete scalar is not a finite positive number (tracers pass unchecked)."""
    if is_concrete(value):
        v = np.asarray(value)
        if v.ndim != 0 or not np.isfinite(v) or v <= 0:
            raise ValueError(f"{name}: {arg} must be a finite positive number, got {value!r}.")


@jax.jit
def _corr_columns(x: Array) -> Array:
    """Pearson correlation between the columns of ``x`` (shape ``(T, K)``) -> ``(K, K)``."""
    xc = x - jnp.mean(x, axis=0)
    cov = xc.T @ xc
    sd = jnp.sqrt(jnp.diagonal(cov))
    r = jnp.clip(cov / (sd[:, None] * sd[None, :]), -1.0, 1.0)
    return jnp.where(jnp.eye(x.shape[1], dtype=bool), jnp.ones((), r.dtype), r)


def pearson_r(a: Array, b: Array) -> Array:
    """Pearson correlation between `a` and `b` along their last axis (batched over the leading axes)."""
    ac = a - jnp.mean(a, axis=-1, keepdims=True)
    bc = b - jnp.mean(b, axis=-1, keepdims=True)
    return jnp.sum(ac * bc, axis=-1) / jnp.sqrt(jnp.sum(ac * ac, axis=-1) * jnp.sum(bc * bc, axis=-1))


def _safe_sqrt(x: Array) -> Array:
    """``sqrt`` with gradient 0 (instead of inf/NaN) at 0."""
    pos = x > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, x, 1.0)), 0.0)


def window_starts(n_samples: int, window: int, step: int) -> np.ndarray:
    """First sample of each sliding window: ``0, step, 2 step, ...`` while the window fits.

    Window ``w`` covers samples ``[w * step, w * step + window)``; trailing samples that do not fill a window are
    dropped. With a monitor period ``p`` ms, window ``w`` spans ``w * step * p`` to ``(w * step + window) * p`` ms
    after the first sample.

    **Arguments:**
    - `n_samples`: length of the series (samples).
    - `window`: window length (samples), ``1 <= window <= n_samples``.
    - `step`: shift between consecutive windows (samples), ``>= 1``.

    **Returns:** integer array of shape ``(W,)``, ``W = (n_samples - window) // step + 1``.
    """
    return _window_starts(n_samples, window, step, "window_starts")


def _window_starts(n_samples: int, window: int, step: int, name: str) -> np.ndarray:
    window = _check_positive_int(name, "window", window)
    step = _check_positive_int(name, "step", step)
    if window > n_samples:
        raise ValueError(
            f"{name}: window={window} samples is longer than the series ({n_samples} samples); "
            f"use a shorter window or a longer simulation."
        )
    return np.arange((n_samples - window) // step + 1) * step


def _windows(x: Array, window: int, step: int, name: str) -> Array:
    """Stack the sliding windows of ``x`` along a new leading axis: ``(W, window, ...)``."""
    starts = _window_starts(x.shape[0], window, step, name)
    return x[starts[:, None] + np.arange(window)[None, :]]


# ------------------------------------------------------------------------------------------ functional connectivity
def fc(x: Float[ArrayLike, "T N"]) -> Float[Array, "N N"]:
    """Functional connectivity: Pearson correlation between the regions' time series.

    Equals ``numpy.corrcoef(x.T)``. The diagonal is exactly 1. A region whose series is constant has an undefined
    correlation (NaN off the diagonal of its row and column, as numpy, and NaN gradients), so keep some noise in
    simulations that settle on a fixed point before fitting FC.

    **Arguments:**
    - `x`: time series, shape ``(T, N)`` (time, region), ``T >= 2``. From a simulation, select one state variable
      first: ``fc(sol.ys["raw"][:, 0])``; a BOLD monitor's output is usually ``bold[:, 0]``.

    **Returns:** ``(N, N)`` symmetric matrix with entries in ``[-1, 1]``.
    """
    x = _float_array(x)
    _check_ndim("fc", x, 2, "(time, region)", " Select a state variable first, e.g. fc(ys[:, 0]).")
    if x.shape[0] < 2:
        raise ValueError(f"fc: need at least 2 time points, got shape {x.shape}.")
    return _corr_columns(x)


def fc_upper(m: Float[ArrayLike, "*batch N N"], k: int = 1) -> Float[Array, "*batch P"]:
    """The upper triangle of a square matrix (or a batch of them) as a vector, row by row.

    **Arguments:**
    - `m`: matrix of shape ``(..., N, N)``.
    - `k`: diagonal offset; ``k=1`` (default) leaves out the diagonal, as is usual for FC.

    **Returns:** shape ``(..., P)`` with ``P = (N - k) (N - k + 1) / 2`` (``N (N - 1) / 2`` for ``k=1``),
    in the order of ``numpy.triu_indices(N, k)``.
    """
    m = _asarray(m)
    if m.ndim < 2 or m.shape[-1] != m.shape[-2]:
        raise ValueError(f"fc_upper: expected a square matrix of shape (..., N, N), got shape {m.shape}.")
    iu, ju = np.triu_indices(m.shape[-1], k=int(k))
    if iu.size == 0:
        raise ValueError(f"fc_upper: an {m.shape[-1]}x{m.shape[-1]} matrix has no entries above diagonal {k}.")
    return m[..., iu, ju]


def _check_same_square(name: str, a: Array, b: Array) -> None:
    if a.ndim < 2 or a.shape[-1] != a.shape[-2] or a.shape[-2:] != b.shape[-2:]:
        raise ValueError(
            f"{name}: expected two square matrices of the same size (..., N, N), got {a.shape} and {b.shape}."
        )


def fc_correlation(
    fc_a: Float[ArrayLike, "*batch N N"], fc_b: Float[ArrayLike, "*batch N N"]
) -> Float[Array, "*batch"]:
    """Pearson correlation between the upper triangles (``k=1``) of two FC matrices: the usual FC fit score.

    **Arguments:**
    - `fc_a`, `fc_b`: matrices of shape ``(..., N, N)`` (leading axes broadcast), ``N >= 3``.

    **Returns:** ``r`` in ``[-1, 1]`` (1: same pattern up to scale and offset), shape of the broadcast batch axes.
    Maximise it, or minimise ``1 - r``.
    """
    a, b = _asarray(fc_a), _asarray(fc_b)
    _check_same_square("fc_correlation", a, b)
    if a.shape[-1] < 3:
        raise ValueError(f"fc_correlation: need N >= 3 regions (at least 3 upper-triangle values), got {a.shape}.")
    return _fc_correlation(a, b)


@jax.jit
def _fc_correlation(a: Array, b: Array) -> Array:
    return pearson_r(fc_upper(a), fc_upper(b))


def fc_distance(fc_a: Float[ArrayLike, "*batch N N"], fc_b: Float[ArrayLike, "*batch N N"]) -> Float[Array, "*batch"]:
    """Root-mean-square difference between the upper triangles (``k=1``) of two FC matrices.

    Unlike ``fc_correlation`` it is sensitive to the overall level of the correlations. Equals the Frobenius norm of
    the difference of the upper triangles divided by ``sqrt(N (N - 1) / 2)``. Its gradient at exact equality is 0.

    **Arguments:**
    - `fc_a`, `fc_b`: matrices of shape ``(..., N, N)`` (leading axes broadcast), ``N >= 2``.

    **Returns:** RMSE ``>= 0``, shape of the broadcast batch axes.
    """
    a, b = _asarray(fc_a), _asarray(fc_b)
    _check_same_square("fc_distance", a, b)
    return _fc_distance(a, b)


@jax.jit
def _fc_distance(a: Array, b: Array) -> Array:
    d = fc_upper(a) - fc_upper(b)
    return _safe_sqrt(jnp.mean(d * d, axis=-1))


def fcd(x: Float[ArrayLike, "T N"], window: int, step: int) -> Float[Array, "W W"]:
    """Functional connectivity dynamics: correlations between the FC matrices of sliding windows.

    The FC of each window (``fc`` of ``x[w * step : w * step + window]``) is reduced to its upper triangle
    (``k=1``); entry ``[u, v]`` of the result is the Pearson correlation between the upper triangles of windows ``u``
    and ``v``. Windows that share samples correlate because of the overlap; ``fcd_values(m, k=ceil(window / step))``
    keeps only pairs of windows that do not overlap.

    **Arguments:**
    - `x`: time series ``(T, N)`` (time, region), ``N >= 3``; select a state variable first (``ys[:, 0]``).
    - `window`: window length in samples, ``2 <= window <= T`` (time: ``window * period`` ms).
    - `step`: shift between windows in samples, ``>= 1``.

    **Returns:** ``(W, W)`` symmetric matrix, ``W = (T - window) // step + 1``, diagonal 1.
    """
    x = _float_array(x)
    _check_ndim("fcd", x, 2, "(time, region)", " Select a state variable first, e.g. fcd(ys[:, 0], window, step).")
    if x.shape[1] < 3:
        raise ValueError(f"fcd: need N >= 3 regions, got shape {x.shape}.")
    if _check_positive_int("fcd", "window", window) < 2:
        raise ValueError("fcd: window must be at least 2 samples.")
    _window_starts(x.shape[0], window, step, "fcd")
    return _fcd(x, window, step)


@partial(jax.jit, static_argnums=(1, 2))
def _fcd(x: Array, window: int, step: int) -> Array:
    wins = _windows(x, window, step, "fcd")  # (W, window, N)
    ups = fc_upper(jax.vmap(_corr_columns)(wins))  # (W, P)
    return _corr_columns(ups.T)


def fcd_values(m: Float[ArrayLike, "W W"], k: int = 1) -> Float[Array, " P"]:
    """Upper-triangle values of an FCD matrix, the sample whose distribution is compared (``ks_distance``).

    **Arguments:**
    - `m`: FCD matrix ``(W, W)``.
    - `k`: diagonal offset; 1 (default) leaves out the diagonal; ``ceil(window / step)`` leaves out overlapping
      windows.

    **Returns:** vector of ``(W - k) (W - k + 1) / 2`` values.
    """
    m = _asarray(m)
    _check_ndim("fcd_values", m, 2, "(window, window)")
    return fc_upper(m, k=k)


# ------------------------------------------------------------------------------------------------- distributions
def ks_distance(
    a: Float[ArrayLike, "*a_shape"], b: Float[ArrayLike, "*b_shape"], smooth: float | ArrayLike | None = None
) -> Float[Array, ""]:
    """Two-sample Kolmogorov-Smirnov statistic ``D = sup_v |F_a(v) - F_b(v)|`` between two samples of values.

    **Exact** (``smooth=None``): the statistic of ``scipy.stats.ks_2samp``, from the empirical CDFs of the sorted
    samples. It takes only the values ``i / n - j / m``: it is piecewise constant in the data, so its gradient is
    zero almost everywhere (and undefined at ties). Use it to *report* a fit, not to drive gradient descent.

    **Smooth** (``smooth=temperature > 0``): each empirical CDF becomes a sum of sigmoids,
    ``F_a(v) = mean_i sigmoid((v - a_i) / temperature)``, evaluated at the midpoints between consecutive pooled sorted
    values (where the exact step CDFs attain their supremum); the result is the largest difference. The gradient flows
    through the sorted values (the midpoints move with the data) and through the sigmoids, so it is informative
    almost everywhere; it is smaller than the exact statistic, and tends to it once ``temperature`` is well below
    the spacing of the values. **Fitting should use the smooth variant**, with a
    temperature of a few percent of the spread of the values (e.g. 0.01-0.05 for FCD values in ``[-1, 1]``), and
    report the exact one. Time grows as ``(n + m)^2``; the work is done in chunks of about 4M pairs (recomputed in
    the backward pass), so memory stays about ``4M + (n + m)`` values.

    **Arguments:**
    - `a`, `b`: samples of any shape (flattened), at least one value each, e.g. ``fcd_values(fcd(...))``.
    - `smooth`: ``None`` for the exact statistic, or a temperature in the units of the values.

    **Returns:** scalar in ``[0, 1]``.
    """
    a, b = _asarray(a), _asarray(b)
    if a.size == 0 or b.size == 0:
        raise ValueError(f"ks_distance: both samples need at least one value, got sizes {a.size} and {b.size}.")
    if smooth is None:
        return _ks_exact(a, b)
    _check_positive_scalar("ks_distance", "smooth (the temperature)", smooth)
    return _ks_smooth(a, b, smooth)


def _ks_flat(a: Array, b: Array) -> tuple[Array, Array]:
    dtype = jnp.result_type(a, b, float)
    return a.ravel().astype(dtype), b.ravel().astype(dtype)


@jax.jit
def _ks_exact(a: Array, b: Array) -> Array:
    a, b = _ks_flat(a, b)
    pooled = jnp.concatenate([a, b])
    fa = jnp.searchsorted(jnp.sort(a), pooled, side="right").astype(a.dtype) / a.size
    fb = jnp.searchsorted(jnp.sort(b), pooled, side="right").astype(a.dtype) / b.size
    return jnp.max(jnp.abs(fa - fb))


@jax.jit
def _ks_smooth(a: Array, b: Array, temp) -> Array:
    a, b = _ks_flat(a, b)
    temp = jnp.asarray(temp, a.dtype)
    pooled = jnp.sort(jnp.concatenate([a, b]))
    mids = 0.5 * (pooled[1:] + pooled[:-1])

    def gap(v):
        fa = jnp.mean(jax.nn.sigmoid((v[:, None] - a[None, :]) / temp), axis=1)
        fb = jnp.mean(jax.nn.sigmoid((v[:, None] - b[None, :]) / temp), axis=1)
        return jnp.abs(fa - fb)

    n_mid = mids.size
    chunk = max(1, min(n_mid, (1 << 22) // (a.size + b.size)))
    if chunk >= n_mid:
        return jnp.max(gap(mids))
    n_chunks = -(-n_mid // chunk)
    padded = jnp.concatenate([mids, jnp.broadcast_to(mids[-1], (n_chunks * chunk - n_mid,))])
    return jnp.max(jax.lax.map(jax.checkpoint(gap), padded.reshape(n_chunks, chunk)))


# -------------------------------------------------------------------------------------------------------- spectra
def sampling_rate(period_ms: float) -> float:
    """Sampling rate in Hz of a series sampled every ``period_ms`` milliseconds: ``1000 / period_ms``.

    Use it to pass a monitor's period to ``welch_psd`` (which, like scipy, works in Hz).
    """
    _check_positive_scalar("sampling_rate", "period_ms", period_ms)
    return 1000.0 / period_ms


def welch_psd(
    x: Float[ArrayLike, "*shape"],
    fs: float | ArrayLike,
    nperseg: int,
    noverlap: int | None = None,
    window: str | tuple | ArrayLike = "hann",
    axis: int = 0,
    *,
    nfft: int | None = None,
    detrend: str | bool = "constant",
) -> tuple[Float[Array, " F"], Float[Array, "*psd_shape"]]:
    """Power spectral density by Welch's method (one-sided, density scaling), as ``scipy.signal.welch``.

    The series is cut into segments of ``nperseg`` samples that start every ``nperseg - noverlap`` samples (trailing
    samples that do not fill a segment are dropped); each segment is demeaned (``detrend="constant"``), multiplied by
    the window and Fourier transformed; ``|X_k|^2 / (fs * sum(window^2))`` is averaged over the segments and doubled
    at all frequencies but 0 and Nyquist. Matches ``scipy.signal.welch(x, fs, window, nperseg, noverlap, nfft,
    detrend, scaling="density", average="mean", axis=axis)``. Unlike scipy, a segment longer than the series is an
    error (scipy shortens it with a warning).

    **Arguments:**
    - `x`: real series with time along `axis` (default 0, e.g. ``(T, N)`` (time, region)).
    - `fs`: sampling rate in Hz; from a period in ms, ``fs = sampling_rate(period_ms) = 1000 / period_ms``.
    - `nperseg`: segment length in samples (frequency resolution ``fs / nperseg`` Hz), ``<= T``.
    - `noverlap`: overlap of consecutive segments in samples, ``0 <= noverlap < nperseg``; default
      ``nperseg // 2``.
    - `window`: a name or tuple understood by ``scipy.signal.get_window`` (``"hann"``, ``"hamming"``,
      ``"boxcar"``, ``("tukey", 0.25)``, ...; periodic, as scipy's spectral functions) or an array of length
      ``nperseg``.
    - `nfft`: FFT length ``>= nperseg`` (zero padding); default ``nperseg``.
    - `detrend`: ``"constant"`` (subtract each segment's mean) or ``False``.

    **Returns:** ``(freqs, psd)``: ``freqs`` in Hz, shape ``(F,)`` with ``F = nfft // 2 + 1``; ``psd`` in signal
    units² / Hz, shaped as ``x`` with the time axis replaced by ``F`` frequencies.
    """
    x = _float_array(x)
    if jnp.iscomplexobj(x):
        raise ValueError("welch_psd: x must be real (one-sided spectrum).")
    if x.ndim == 0:
        raise ValueError("welch_psd: x must have a time axis, got a scalar.")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"welch_psd: axis={axis} is out of range for x of shape {x.shape}.")
    axis = axis % x.ndim
    n = x.shape[axis]
    nperseg = _check_positive_int("welch_psd", "nperseg", nperseg)
    if nperseg > n:
        raise ValueError(
            f"welch_psd: nperseg={nperseg} is longer than the series ({n} samples along axis {axis}); "
            f"use nperseg <= {n}."
        )
    noverlap = nperseg // 2 if noverlap is None else noverlap
    if isinstance(noverlap, bool) or not isinstance(noverlap, (int, np.integer)) or not 0 <= noverlap < nperseg:
        raise ValueError(
            f"welch_psd: noverlap must be an integer with 0 <= noverlap < nperseg={nperseg}, got {noverlap!r}."
        )
    nfft = nperseg if nfft is None else _check_positive_int("welch_psd", "nfft", nfft)
    if nfft < nperseg:
        raise ValueError(f"welch_psd: nfft={nfft} must be >= nperseg={nperseg}.")
    if detrend not in ("constant", False):
        raise ValueError(f"welch_psd: detrend must be 'constant' or False, got {detrend!r}.")
    _check_positive_scalar("welch_psd", "fs (Hz)", fs)
    if isinstance(window, (str, tuple)):
        import scipy.signal  # imported here: it costs ~1 s and ~60 MB at import time

        win = _asarray(scipy.signal.get_window(window, nperseg).astype(x.dtype))
    else:
        win = _asarray(window)
        if win.shape != (nperseg,):
            raise ValueError(f"welch_psd: window has shape {win.shape}; expected ({nperseg},) (nperseg samples).")

    return _welch(x, fs, win, noverlap, nfft, detrend == "constant", axis)


@partial(jax.jit, static_argnums=(3, 4, 5, 6))
def _welch(x: Array, fs, win: Array, noverlap: int, nfft: int, demean: bool, axis: int):
    xm = jnp.moveaxis(x, axis, -1)  # (..., n)
    fs_arr = jnp.asarray(fs, x.dtype)
    n, nperseg = xm.shape[-1], win.shape[0]
    step = nperseg - noverlap
    starts = np.arange((n - noverlap) // step) * step
    segs = xm[..., starts[:, None] + np.arange(nperseg)[None, :]]  # (..., nseg, nperseg)
    if demean:
        segs = segs - jnp.mean(segs, axis=-1, keepdims=True)
    win = win.astype(xm.dtype)
    spec = jnp.fft.rfft(segs * win, n=nfft, axis=-1)
    power = jnp.mean(jnp.real(spec) ** 2 + jnp.imag(spec) ** 2, axis=-2)  # (..., F)
    n_freq = nfft // 2 + 1
    sides = np.full(n_freq, 2.0)
    sides[0] = 1.0
    if nfft % 2 == 0:
        sides[-1] = 1.0
    psd = power * jnp.asarray(sides, xm.dtype) / (fs_arr * jnp.sum(win * win))
    freqs = jnp.arange(n_freq, dtype=xm.dtype) * (fs_arr / nfft)
    return freqs, jnp.moveaxis(psd, -1, axis)


def _check_band(name: str, band: Sequence[float]) -> tuple[float, float]:
    try:
        lo, hi = band
    except (TypeError, ValueError):
        raise ValueError(f"{name}: band must be a pair (lo, hi) in Hz, got {band!r}.") from None
    if is_concrete(lo) and is_concrete(hi) and not float(lo) < float(hi):
        raise ValueError(f"{name}: band must satisfy lo < hi (Hz), got {band!r}.")
    return lo, hi


def _check_bins(freqs: Array, lo, hi, name: str) -> None:
    """Raise if concrete frequencies hold fewer than 2 bins in ``[lo, hi]``."""
    if is_concrete(freqs) and is_concrete(lo) and is_concrete(hi):
        f = np.asarray(freqs)
        if int(np.sum((f >= lo) & (f <= hi))) < 2:
            raise ValueError(
                f"{name}: the band ({lo}, {hi}) Hz contains fewer than 2 frequency bins; widen it or use a longer "
                f"nperseg (bin width {f[1] - f[0]:g} Hz)."
            )


def _trapezoid(freqs: Array, p: Array, lo, hi) -> Array:
    """Trapezoid integral of ``p`` (frequency on the last axis) over the bins with ``lo <= f <= hi``."""
    inside = (freqs >= lo) & (freqs <= hi)
    both = inside[1:] & inside[:-1]
    area = 0.5 * (p[..., 1:] + p[..., :-1]) * (freqs[1:] - freqs[:-1])
    return jnp.sum(jnp.where(both, area, 0.0), axis=-1)


def _prepare_psd(name: str, freqs, psd, axis: int) -> tuple[Array, Array, int]:
    freqs, psd = _asarray(freqs), _asarray(psd)
    if freqs.ndim != 1 or freqs.size < 2:
        raise ValueError(f"{name}: freqs must be a 1-D array of at least 2 frequencies, got shape {freqs.shape}.")
    if not -psd.ndim <= axis < psd.ndim or psd.shape[axis] != freqs.size:
        raise ValueError(f"{name}: psd of shape {psd.shape} has no axis {axis} of length {freqs.size} (len(freqs)).")
    return freqs, psd, axis % psd.ndim


@partial(jax.jit, static_argnums=6)
def _band_ratio(freqs: Array, psd: Array, lo, hi, tlo, thi, axis: int) -> tuple[Array, Array]:
    """Band power in ``[lo, hi]`` and in ``[tlo, thi]``."""
    dtype = jnp.result_type(freqs, psd, float)
    freqs, p = freqs.astype(dtype), jnp.moveaxis(psd, axis, -1).astype(dtype)
    return _trapezoid(freqs, p, lo, hi), _trapezoid(freqs, p, tlo, thi)


def band_power(
    freqs: Float[ArrayLike, " F"], psd: Float[ArrayLike, "*psd_shape"], band: Sequence[float], axis: int = 0
) -> Float[Array, "*batch"]:
    """Power in a frequency band: trapezoid integral of the PSD over the bins with ``lo <= f <= hi``.

    No interpolation at the edges: only whole bins inside the band count, so choose edges well clear of the peaks
    (or a finer ``nperseg``). For a sinusoid of amplitude ``A`` and a band that holds its spectral peak, the result
    is its mean square ``A^2 / 2``.

    **Arguments:**
    - `freqs`: frequencies in Hz ``(F,)``, increasing (as returned by ``welch_psd``).
    - `psd`: density in units² / Hz with ``F`` frequencies along `axis` (default 0).
    - `band`: ``(lo, hi)`` in Hz, ``lo < hi``; must contain at least 2 bins.

    **Returns:** power in signal units², shaped as ``psd`` without the frequency axis.
    """
    lo, hi = _check_band("band_power", band)
    freqs, psd, axis = _prepare_psd("band_power", freqs, psd, axis)
    _check_bins(freqs, lo, hi, "band_power")
    return _band_ratio(freqs, psd, lo, hi, lo, hi, axis)[0]


def relative_band_power(
    freqs: Float[ArrayLike, " F"],
    psd: Float[ArrayLike, "*psd_shape"],
    band: Sequence[float],
    total_band: Sequence[float] | None = None,
    axis: int = 0,
) -> Float[Array, "*batch"]:
    """Fraction of the power that lies in ``band``: ``band_power(band) / band_power(total_band)``.

    **Arguments:**
    - `freqs`, `psd`, `band`, `axis`: as for ``band_power``.
    - `total_band`: ``(lo, hi)`` in Hz of the reference power; default all frequencies.

    **Returns:** dimensionless ratio, shaped as ``psd`` without the frequency axis.
    """
    lo, hi = _check_band("relative_band_power", band)
    freqs, psd, axis = _prepare_psd("relative_band_power", freqs, psd, axis)
    _check_bins(freqs, lo, hi, "relative_band_power")
    if total_band is None:
        tlo, thi = -np.inf, np.inf
    else:
        tlo, thi = _check_band("relative_band_power", total_band)
        _check_bins(freqs, tlo, thi, "relative_band_power")
    num, den = _band_ratio(freqs, psd, lo, hi, tlo, thi, axis)
    return num / den


# ----------------------------------------------------------------------------------------------------------- SEEG
def seeg_log_power(x: Float[ArrayLike, "T S"], window: int, step: int, eps: float = 1e-10) -> Float[Array, "W S"]:
    """Sliding-window log power of SEEG-like signals (the data feature of the Virtual Epileptic Patient).

    For window ``w`` (samples ``[w * step, w * step + window)``) and sensor ``s``:
    ``log(mean_t (x[t, s] - mean_window(x[:, s]))^2 + eps)``, the log of the window's variance. Removing each
    window's mean acts as a high-pass filter at about ``1 / (window * period)``: the slow DC shifts of the
    Epileptor's (or the recording's) signal do not count, the fast discharges of a seizure do. The VEP pipeline
    high-passes recordings (e.g. Butterworth above 10 Hz) before taking this envelope; apply such a filter to
    empirical data first when you compare with it.

    **Arguments:**
    - `x`: signal ``(T, S)`` (time, sensor), e.g. SEEG from a gain projection, or ``(T, N)`` region activity.
    - `window`: window length in samples, ``2 <= window <= T`` (``window * period`` ms; 100 ms is common).
    - `step`: shift between windows in samples, ``>= 1``.
    - `eps`: floor added to the power (signal units²) so that flat windows give a finite log and gradient.

    **Returns:** ``(W, S)`` log power (natural log of signal units²), ``W = (T - window) // step + 1``; window
    ``w`` is centred at sample ``w * step + (window - 1) / 2``.
    """
    x = _float_array(x)
    _check_ndim("seeg_log_power", x, 2, "(time, sensor)", " For one channel use x[:, None].")
    if _check_positive_int("seeg_log_power", "window", window) < 2:
        raise ValueError("seeg_log_power: window must be at least 2 samples.")
    if is_concrete(eps) and not float(eps) >= 0:
        raise ValueError(f"seeg_log_power: eps must be >= 0, got {eps!r}.")
    _window_starts(x.shape[0], window, step, "seeg_log_power")
    return _seeg_log_power(x, window, step, eps)


@partial(jax.jit, static_argnums=(1, 2))
def _seeg_log_power(x: Array, window: int, step: int, eps) -> Array:
    wins = _windows(x, window, step, "seeg_log_power")  # (W, window, S)
    wins = wins - jnp.mean(wins, axis=1, keepdims=True)
    return jnp.log(jnp.mean(wins * wins, axis=1) + eps)


# --------------------------------------------------------------------------------------------------------- phases
def _hilbert_h(n: int) -> np.ndarray:
    h = np.zeros(n)
    h[0] = 1.0
    if n % 2 == 0:
        h[n // 2] = 1.0
        h[1 : n // 2] = 2.0
    else:
        h[1 : (n + 1) // 2] = 2.0
    return h


def analytic_signal(x: Float[ArrayLike, "*shape"], axis: int = 0) -> Array:
    """Analytic signal ``x + i H[x]`` by the FFT, as ``scipy.signal.hilbert`` (no padding, no demeaning).

    **Arguments:**
    - `x`: real series with time along `axis` (default 0).

    **Returns:** complex array of the shape of ``x``.
    """
    x = _float_array(x)
    if x.ndim == 0 or not -x.ndim <= axis < x.ndim:
        raise ValueError(f"analytic_signal: axis={axis} is not an axis of x (shape {x.shape}).")
    return _analytic_signal(x, axis % x.ndim)


@partial(jax.jit, static_argnums=1)
def _analytic_signal(x: Array, axis: int) -> Array:
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    h = jnp.asarray(_hilbert_h(x.shape[axis]).reshape(shape), x.dtype)
    return jnp.fft.ifft(jnp.fft.fft(x, axis=axis) * h, axis=axis)


def phase_from_signal(x: Float[ArrayLike, "*shape"], axis: int = 0, demean: bool = True) -> Float[Array, "*shape"]:
    """Instantaneous phase (radians, in ``(-pi, pi]``) of each series, from its analytic signal.

    With ``demean=False`` this is ``numpy.angle(scipy.signal.hilbert(x, axis=axis))``. The default removes each
    series' mean first, because a neural mass oscillates around a non-zero level and the phase of an offset signal
    barely turns (which would make any set of regions look synchronous). The phase is only meaningful for
    narrow-band signals: band-pass filter broadband activity first. Edges (first and last few cycles) are distorted
    by the periodic FFT.

    **Arguments:**
    - `x`: real series with time along `axis`, e.g. ``(T, N)`` (time, region).
    - `demean`: subtract each series' time average first.

    **Returns:** phases shaped as ``x``.
    """
    x = _float_array(x)
    if x.ndim == 0 or not -x.ndim <= axis < x.ndim:
        raise ValueError(f"phase_from_signal: axis={axis} is not an axis of x (shape {x.shape}).")
    return _phase(x, axis % x.ndim, bool(demean))


@partial(jax.jit, static_argnums=(1, 2))
def _phase(x: Array, axis: int, demean: bool) -> Array:
    if demean:
        x = x - jnp.mean(x, axis=axis, keepdims=True)
    return jnp.angle(_analytic_signal(x, axis))


def kuramoto_order(phases: Float[ArrayLike, "T N"]) -> Float[Array, " T"]:
    """Kuramoto order parameter ``R(t) = |mean_j exp(i theta_j(t))|`` across regions.

    1 when all regions share one phase; about ``1 / sqrt(N)`` for independent uniform phases. Its gradient is
    undefined where ``R = 0`` exactly.

    **Arguments:**
    - `phases`: phases in radians ``(T, N)`` (time, region), e.g. ``phase_from_signal(ys[:, 0])`` or the state
      of a Kuramoto model.

    **Returns:** ``(T,)`` values in ``[0, 1]``.
    """
    th = _float_array(phases)
    _check_ndim("kuramoto_order", th, 2, "(time, region)", " Select a state variable first, e.g. ys[:, 0].")
    return _kuramoto(th)


@jax.jit
def _kuramoto(th: Array) -> Array:
    c = jnp.mean(jnp.cos(th), axis=-1)
    s = jnp.mean(jnp.sin(th), axis=-1)
    return jnp.sqrt(c * c + s * s)


def metastability(order: Float[ArrayLike, " T"]) -> Float[Array, ""]:
    """Metastability: standard deviation over time (``ddof=0``) of the Kuramoto order parameter ``R(t)``."""
    r = _float_array(order)
    _check_ndim("metastability", r, 1, "(time,) (the output of kuramoto_order)")
    return jnp.std(r)


def synchrony(order: Float[ArrayLike, " T"]) -> Float[Array, ""]:
    """Synchrony: time average of the Kuramoto order parameter ``R(t)``."""
    r = _float_array(order)
    _check_ndim("synchrony", r, 1, "(time,) (the output of kuramoto_order)")
    return jnp.mean(r)
