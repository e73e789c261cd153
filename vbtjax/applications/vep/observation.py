"""SEEG features of a recording for the VEP's observation models: windows, log power, level, the choice between
them, and the seizure onsets used to crop a recording with recurring seizures."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ...data.recordings import SEEGRecording


def seeg_log_power(log_power: Float[Array, "T N"], gain: Float[Array, "C N"]) -> Float[Array, "T C"]:
    """Predicted log power of each contact, ``log sum_i G_ki^2 exp(log_power_i)`` (a stable log-sum-exp), from the
    regions' log power (:func:`simulate_power`); the gain may have zeros and either sign (bipolar channels)."""
    g2 = jnp.square(gain)
    return jax.nn.logsumexp(log_power[:, None, :] + jnp.log(jnp.maximum(g2, jnp.finfo(g2.dtype).tiny))[None], axis=-1)


def _windows(data: Any, n_windows: int, caller: str) -> np.ndarray:
    """``data`` (contacts x samples) cut into `n_windows` consecutive windows of equal length (trailing samples
    dropped): ``(contacts, n_windows, samples per window)`` float64."""
    x = np.asarray(data, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"{caller}: data has shape {x.shape}; expected (contacts, samples).")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{caller}: the SEEG data contain NaN or inf; drop or repair those channels.")
    per = x.shape[1] // int(n_windows)
    if per < 4:
        raise ValueError(
            f"{caller}: {x.shape[1]} samples cannot fill {n_windows} windows of at least 4 samples; record longer or "
            "use fewer windows (a longer --period)."
        )
    return x[:, : per * n_windows].reshape(x.shape[0], n_windows, per)


def _detrend(w: np.ndarray) -> np.ndarray:
    """Each window (last axis) minus its least-squares line."""
    t = np.linspace(-1.0, 1.0, w.shape[-1])
    slope = (w * t).sum(-1, keepdims=True) / (t * t).sum()
    return w - w.mean(-1, keepdims=True) - slope * t


def window_power(data: Any, n_windows: int, caller: str = "window_power") -> np.ndarray:
    """Mean square of each detrended window (mean and linear drift removed, so that slow "DC" shifts do not count
    as power): ``(contacts, n_windows)`` from ``data`` (contacts x samples) cut into `n_windows` equal windows."""
    w = _detrend(_windows(data, n_windows, caller))
    return np.mean(w * w, axis=-1)


def silent(power: np.ndarray) -> np.ndarray:
    """``(contacts,)`` bool: a window of `power` ``(contacts, windows)`` is (numerically) zero, e.g. a flat channel or
    a bipolar pair quantised to the same values by a 16-bit file format."""
    return np.any(power <= 1e-12 * np.maximum(power.max(axis=1, keepdims=True), 1e-300), axis=1)


def log_power_envelope(data: Any, sfreq: float, n_windows: int) -> np.ndarray:
    """SEEG log-power envelope ``(n_windows, contacts)``: the log of :func:`window_power` of ``data`` (contacts x
    samples) in `n_windows` consecutive windows of equal length (trailing samples dropped). `sfreq` (Hz) only labels
    the samples: a recording of any length and rate maps onto the model's `n_windows` windows."""
    power = window_power(data, n_windows, "log_power_envelope")
    bad = silent(power)
    if np.any(bad):
        raise ValueError(
            f"log_power_envelope: contact {int(np.flatnonzero(bad)[0])} has a window of zero power (a flat channel); "
            "mark it bad or drop it."
        )
    del sfreq
    return np.log(power).T


def level_envelope(data: Any, sfreq: float, n_windows: int) -> np.ndarray:
    """Slow level of each contact ``(n_windows, contacts)``: the mean of the signal in each of `n_windows`
    consecutive windows minus the contact's mean, all contacts divided by one common scale (the largest contact's
    sd over the windows), so that the amplitudes across contacts, which locate the sources, are kept. This is what a
    gain-projected ``x1`` (TVB's raw SEEG of an Epileptor2D) shows."""
    m = _windows(data, n_windows, "level_envelope").mean(axis=-1)  # (contacts, windows)
    m = m - m.mean(axis=1, keepdims=True)
    scale = float(m.std(axis=1).max())
    if not scale > 0:
        raise ValueError("level_envelope: no contact's level changes over the recording; nothing to fit.")
    del sfreq
    return (m / scale).T


FEATURES = ("power", "level")
"""The observation models: ``"power"`` (log power of the detrended signal per window, for broadband or fast
seizure activity) and ``"level"`` (the window mean, for recordings whose seizures are slow shifts of the level)."""


def signal_kind(data: Any, n_windows: int | None = None) -> str:
    """Which observation model fits a recording (``data``: contacts x samples): ``"level"`` for a smooth signal
    whose first differences carry under 10 % of its variance (median over contacts; e.g. a gain-projected
    Epileptor2D ``x1``, whose seizures are shifts of the level: 0.008-0.05 for TVB's), else ``"power"`` (broadband
    or oscillatory activity: white noise gives 2, the 6-D Epileptor's fast discharges about 0.2). `n_windows` is
    accepted for symmetry with :func:`seeg_features` and not used."""
    x = np.asarray(data, dtype=float)
    if x.ndim != 2 or x.shape[1] < 3:
        raise ValueError(f"signal_kind: data has shape {x.shape}; expected (contacts, samples >= 3).")
    if not np.all(np.isfinite(x)):
        raise ValueError("signal_kind: the SEEG data contain NaN or inf; drop or repair those channels.")
    var = x.var(axis=1)
    ok = var > 0
    if not np.any(ok):
        raise ValueError("signal_kind: every channel is flat.")
    ratio = np.diff(x[ok], axis=1).var(axis=1) / var[ok]
    del n_windows
    return "level" if float(np.median(ratio)) < 0.1 else "power"


def seizure_onsets(data: Any, sfreq: float, feature: str = "auto", *, n_fine: int = 400) -> np.ndarray:
    """Onset times (s) of the recurring events in a recording (``data``: contacts x samples, `sfreq` Hz): the
    recording is cut into `n_fine` windows, each contact's :func:`seeg_features` standardised, and the first principal
    component across contacts (signed so that it is high for less than half of the time: seizures are shorter than
    the time between them) smoothed over 3 windows; an onset is a rise from below 35 % to above 65 % of its 5-95 %
    range. Used to map a recording with recurring seizures onto the model (:func:`crop_to_cycles`)."""
    x = np.asarray(data, dtype=float)
    n_fine = int(min(n_fine, x.shape[1] // 16))
    if n_fine < 16:
        return np.zeros(0)
    env, _ = seeg_features(x, sfreq, n_fine, feature)
    env = env - env.mean(axis=0)
    sd = env.std(axis=0)
    env = env[:, sd > 0] / sd[sd > 0]
    if env.shape[1] == 0:
        return np.zeros(0)
    u, s_, _ = np.linalg.svd(env, full_matrices=False)
    pc = np.convolve(u[:, 0] * s_[0], np.ones(3) / 3, mode="same")
    lo, hi = np.quantile(pc, [0.05, 0.95])
    if np.mean(pc > 0.5 * (lo + hi)) > 0.5:
        pc, lo, hi = -pc, -hi, -lo
    low, high = lo + 0.35 * (hi - lo), lo + 0.65 * (hi - lo)
    onsets, armed = [], pc[0] < low
    for i, v in enumerate(pc):
        if armed and v > high:
            onsets.append(i)
            armed = False
        elif v < low:
            armed = True
    per = (x.shape[1] // n_fine) / float(sfreq)
    return np.asarray(onsets, dtype=float) * per


def crop_to_cycles(recording: SEEGRecording, n_cycles: int = 2, feature: str = "auto") -> SEEGRecording:
    """The recording up to the onset of its ``n_cycles + 1``-th seizure (:func:`seizure_onsets`) when it has that
    many, so that ``n_cycles`` whole seizure cycles remain (the model's time scale then needs to cover only those;
    a recording of many cycles leaves it ambiguous by whole cycles); otherwise the recording unchanged. The crop is
    recorded in ``meta["cropped_s"]``."""
    onsets = seizure_onsets(recording.data, recording.sfreq, feature)
    if len(onsets) <= n_cycles:
        return recording
    end = float(onsets[n_cycles])
    out = recording.crop(0.0, end)
    out.meta = {**out.meta, "cropped_s": [0.0, end], "onsets_s": onsets.tolist()}
    return out


def seeg_features(data: Any, sfreq: float, n_windows: int, feature: str = "auto") -> tuple[np.ndarray, str]:
    """``(envelope (n_windows, contacts), feature)``: :func:`log_power_envelope` or :func:`level_envelope` of an
    SEEG recording, `feature` ``"power"``, ``"level"`` or ``"auto"`` (:func:`signal_kind` decides)."""
    if feature == "auto":
        feature = signal_kind(data, n_windows)
    if feature == "power":
        return log_power_envelope(data, sfreq, n_windows), feature
    if feature == "level":
        return level_envelope(data, sfreq, n_windows), feature
    raise ValueError(f"seeg_features: feature must be 'power', 'level' or 'auto', got {feature!r}.")
