"""The Virtual Epileptic Patient (VEP): where do seizures start, and what if that tissue is removed.

The VEP (Jirsa et al. 2017; Proix et al. 2017; Hashemi et al. 2020) is an :class:`~vbtjax.models.Epileptor2D` at
every region of a person's connectome, coupled through the permittivity variable; each region's excitability
``x0`` decides whether it starts seizures (``x0 > X0_CRITICAL``, the epileptogenic zone, EZ), joins them through
the network (propagation zone) or stays healthy. Seizures are seen through SEEG contacts; this module infers the
posterior of ``x0`` per region (and the global coupling) from SEEG log-power envelopes with NUTS, ranks the regions
by their probability of being epileptogenic, and predicts whether a virtual resection stops the seizures.

Conventions (shared by vbtjax's own synthetic patients and the TVB-simulated ones in ``tests/golden/vep``; the
time axis is the model's, in ms, with one observation window per ``period``):

- connectome: weights divided by their maximum, no self-connections, no conduction delays (seizure propagation is
  much slower than conduction; tract lengths are set to 0);
- model: ``Epileptor2D(r=0.04, Ks=-1, Kvf=0, Iext=3.1)``, TVB's other defaults, ``x0`` per region; coupling
  ``Difference(a=K)`` (``dz_i += -r K sum_j W_ij (x1_j - x1_i)``, Proix et al. 2014), ``K = 0.3`` by default;
- initial state: every region at the resting fixed point of an uncoupled region with ``x0 = -2.5``
  (:data:`X1_REST`, :data:`Z_REST`);
- Heun, ``dt = 0.1`` ms, ``duration = 50`` ms, one sample of ``x1`` per ``period = 1`` ms;
- observation: each region emits broadband activity of amplitude ``exp(x1)``; a contact's power is
  ``P_k = sum_i G_ki^2 exp(2 x1_i)`` with the inverse-square point-source gain ``G`` (mm^-2,
  :func:`vbtjax.sensors.seeg_gain_point_source`); the data are the log of the mean squared (demeaned) SEEG signal
  in consecutive windows, one window per model sample, modelled as ``log P_k + offset + sigma * N(0, 1)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .connectome import Connectome
from .coupling import Difference
from .inference.params import Affine, Parameter, Positive, Selection
from .inference.posterior import Latent, Posterior
from .models import Epileptor2D
from .network import Network
from .recordings import SEEGRecording
from .sensors import seeg_gain_point_source

__all__ = [
    "X0_CRITICAL",
    "X0_HEALTHY",
    "X1_REST",
    "Z_REST",
    "SEIZURE_X1",
    "SEEGRecording",
    "VEPResult",
    "vep_connectome",
    "vep_network",
    "vep_twin",
    "simulate_x1",
    "simulate_power",
    "seeg_log_power",
    "log_power_envelope",
    "synthetic_seeg",
    "implant",
    "DETECTABLE",
    "detectability",
    "SyntheticPatient",
    "synthetic_patient",
    "VEPPosterior",
    "vep_posterior",
    "recording_posterior",
    "initial_guess",
    "posterior_mode",
    "infer_ez",
    "seizing_regions",
    "virtual_resection",
]

X0_HEALTHY = -2.5
"""Excitability of a healthy region, the centre of the prior."""
X0_CRITICAL = -2.05
"""An uncoupled region with ``x0`` above this value seizes (measured for these conventions: -2.06 does not, -2.04
does); the posterior probability ``P(x0 > X0_CRITICAL)`` ranks the regions."""
X1_REST = -1.6943614343542472
"""``x1`` of the resting fixed point for ``x0 = -2.5``: ``4.1 - z - x1^3 - 2 x1^2 = 0`` with ``z = 4 (x1 - x0)``."""
Z_REST = 3.222554262583011
"""``z`` of that fixed point."""
SEIZURE_X1 = -1.0
"""A region is seizing while ``x1 > SEIZURE_X1`` (the lower branch lies below -1.4, the seizure branch above -0.5)."""

R, KS, IEXT = 0.04, -1.0, 3.1
UNROLL = 5  # Heun steps unrolled in the inner loop (fewer loop iterations; measured faster gradients on CPU)
DT, DURATION, PERIOD, K_DEFAULT = 0.1, 50.0, 2.0, 0.3
TIME_SCALE_RANGE = (0.25, 4.0)
"""Default range of the time scale that maps a recording onto the model's time (see :func:`vep_posterior`)."""


# ---------------------------------------------------------------------------------------------------- the network


def vep_connectome(connectome: Connectome) -> Connectome:
    """The VEP's connectome: weights divided by their maximum, no self-connections, tract lengths 0 (no delays);
    centres and labels kept."""
    if not isinstance(connectome, Connectome):
        raise TypeError(f"vep_connectome: expected a vbtjax.Connectome, got {type(connectome).__name__}.")
    w = np.asarray(connectome.weights, dtype=float)
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("vep_connectome: the weights must be finite and non-negative.")
    w = w * (1.0 - np.eye(w.shape[0]))
    if w.max() <= 0:
        raise ValueError("vep_connectome: the connectome has no connections between regions.")
    return Connectome(
        weights=w / w.max(), lengths=np.zeros_like(w), centres=connectome.centres, labels=connectome.labels
    )


def vep_network(connectome: Connectome, x0: Any = X0_HEALTHY, K: float = K_DEFAULT) -> Network:
    """The Epileptor2D network of the VEP on ``vep_connectome(connectome)``.

    **Arguments:** `x0`: excitability, scalar or ``(N,)``; `K`: global permittivity coupling (>= 0)."""
    conn = vep_connectome(connectome)
    n = conn.n_regions
    x0 = jnp.broadcast_to(jnp.asarray(x0, dtype=float), (n,))
    model = Epileptor2D(x0=x0, r=R, Ks=KS, Kvf=0.0, Iext=IEXT)
    return Network(model=model, connectome=conn, coupling=Difference(a=float(K)), speed=3.0)


def _history(n: int, dtype=None) -> Array:
    y = jnp.asarray([X1_REST, Z_REST], dtype=dtype)
    return jnp.broadcast_to(y[None, :, None], (1, 2, n))


def _integrate(
    net: Network, duration: float, dt: float, period: float, time_scale: Any = 1.0
) -> tuple[Array, Array, Array]:
    """``(x1, log_power, x1_mean)``, each ``(duration / period, N)``: ``x1`` at the end of each window of `period` ms,
    ``log mean exp(2 x1)`` and the mean of ``x1`` over the window's steps.

    `time_scale` (> 0, may be traced) multiplies the whole vector field: the network then covers
    ``time_scale * duration`` ms of its own time in `duration` ms, with the same number of steps (a recording's
    time axis mapped onto the model's).

    The VEP network has no delays, so this integrates it with a dense ``(N, N)`` coupling product per step and TVB's
    Heun scheme (the coupling computed once per step) in a nested ``lax.scan``, the outer body under
    ``jax.checkpoint``: the same numbers as :func:`vbtjax.simulate` (tested to 1e-6), with a gradient about 3x
    cheaper, which is what the samplers spend their time on."""
    n_steps = int(round(duration / dt))
    per = int(round(period / dt))
    if abs(n_steps * dt - duration) > 1e-9 * duration or abs(per * dt - period) > 1e-9 * period or n_steps % per:
        raise ValueError(
            f"VEP: duration ({duration} ms) and period ({period} ms) must be whole multiples of dt ({dt} ms), and "
            "duration a whole multiple of period."
        )
    lengths = net.connectome.lengths
    if not isinstance(lengths, jax.core.Tracer) and float(np.max(np.asarray(lengths))) != 0.0:
        raise ValueError("VEP: the VEP network has no delays; build it with vbtjax.vep.vep_network().")
    model, cpl = net.model, net.coupling
    W = net.connectome.weights
    cvar = np.asarray(model.cvar)
    edge = cpl.for_edges()
    source_only = type(cpl).source_only
    dtype = model.x0.dtype
    h = jnp.asarray(time_scale, dtype) * dt

    separable = not source_only and type(cpl).separable
    row_sums = jnp.sum(W, axis=1)

    def coupling(y):
        xc = y[cvar]
        if separable:  # sum_j W_ij pre(x_i, x_j) = W pre_source(x) + (sum_j W_ij) pre_target(x_i): one mat-vec
            gx = cpl.pre_source(xc) @ W.T + row_sums * cpl.pre_target(xc)
        elif source_only:
            gx = cpl.pre(None, xc) @ W.T
        else:
            gx = jnp.sum(W * edge.pre(xc[:, :, None], xc[:, None, :]), axis=-1)
        return cpl.post(gx)

    def step(y, _):
        c = coupling(y)
        d1 = model.dfun(y, c)
        d2 = model.dfun(y + h * d1, c)
        y = y + (0.5 * h) * (d1 + d2)
        return y, (jnp.exp(2.0 * y[0]), y[0])

    @jax.checkpoint
    def window(y, _):
        y, (p, x) = jax.lax.scan(step, y, None, length=per, unroll=UNROLL)
        return y, (y[0], jnp.log(jnp.mean(p, axis=0)), jnp.mean(x, axis=0))

    y0 = _history(net.n_regions, dtype)[0]
    _, (x1, logp, x1m) = jax.lax.scan(window, y0, None, length=n_steps // per)
    return x1, logp, x1m


def simulate_x1(
    net: Network, duration: float = DURATION, dt: float = DT, period: float = PERIOD, time_scale: Any = 1.0
) -> Float[Array, "T N"]:
    """``x1`` of the VEP network every `period` ms from the resting state: ``(duration / period, N)``, the sample
    ``m`` at ``(m + 1) * period`` ms (as :func:`vbtjax.simulate` with ``SubSample(period)``); `time_scale` as in
    :func:`simulate_power`."""
    return _integrate(net, duration, dt, period, time_scale)[0]


def simulate_power(
    net: Network, duration: float = DURATION, dt: float = DT, period: float = PERIOD, time_scale: Any = 1.0
) -> Float[Array, "T N"]:
    """Log source power of each region per window of `period` ms: ``log mean exp(2 x1)`` over the window's steps,
    ``(duration / period, N)``. `time_scale` (> 0) speeds the whole network up: ``time_scale * duration`` ms of
    the network's own time pass in the `duration` ms (``dt`` steps of ``time_scale * dt``)."""
    return _integrate(net, duration, dt, period, time_scale)[1]


def simulate_level(
    net: Network, duration: float = DURATION, dt: float = DT, period: float = PERIOD, time_scale: Any = 1.0
) -> Float[Array, "T N"]:
    """Mean ``x1`` of each region per window of `period` ms, ``(duration / period, N)`` (the slow "DC" level that a
    gain-projected ``x1`` shows); `time_scale` as in :func:`simulate_power`."""
    return _integrate(net, duration, dt, period, time_scale)[2]


def seizing_regions(x1: Any) -> np.ndarray:
    """Indices of the regions whose ``x1`` (``(T, N)``) exceeds :data:`SEIZURE_X1` at some sample."""
    return np.flatnonzero(np.any(np.asarray(x1) > SEIZURE_X1, axis=0))


# ---------------------------------------------------------------------------------------------------- observation


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


def log_power_envelope(data: Any, sfreq: float, n_windows: int) -> np.ndarray:
    """SEEG log-power envelope ``(n_windows, contacts)``: the signal of each contact (``data``: contacts x samples)
    is cut into `n_windows` consecutive windows of equal length (trailing samples dropped), each window is
    detrended (its mean and linear drift removed, so that slow "DC" shifts do not count as power), and the log of
    its mean square is returned. `sfreq` (Hz) only labels the samples: a recording of any length and rate maps onto
    the model's `n_windows` windows."""
    w = _detrend(_windows(data, n_windows, "log_power_envelope"))
    power = np.mean(w * w, axis=-1)
    scale = np.max(power, axis=1, keepdims=True)
    if np.any(power <= 1e-12 * np.maximum(scale, 1e-300)) or np.any(scale <= 0):
        bad = int(np.flatnonzero(np.any(power <= 1e-12 * np.maximum(scale, 1e-300), axis=1) | (scale[:, 0] <= 0))[0])
        raise ValueError(
            f"log_power_envelope: contact {bad} has a window of zero power (a flat channel); mark it bad or drop it."
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


def synthetic_seeg(
    x1: Any, gain: Any, *, key: jax.Array, samples_per_x1: int = 16, sensor_noise: float = 0.0
) -> np.ndarray:
    """SEEG signals generated from source activity ``x1`` ``(T, N)`` at any time resolution: region ``i`` emits white
    noise of amplitude ``exp(x1_i)``, each ``x1`` sample held for `samples_per_x1` signal samples, and contact ``k``
    records ``sum_i G_ki exp(x1_i) xi_i(t)`` plus white sensor noise of sd `sensor_noise`. Returns
    ``(contacts, T * samples_per_x1)`` float32. The mean square over a window is ``sum_i G_ki^2`` times the window
    mean of ``exp(2 x1_i)`` (the model of :func:`seeg_log_power`), up to a relative scatter of about
    ``sqrt(2 / samples per window)``."""
    x1 = jnp.asarray(x1, dtype=jnp.float32)
    gain = jnp.asarray(gain, dtype=jnp.float32)
    if x1.ndim != 2 or gain.ndim != 2 or gain.shape[1] != x1.shape[1]:
        raise ValueError(f"synthetic_seeg: need x1 (T, N) and gain (contacts, N), got {x1.shape} and {gain.shape}.")
    per = int(samples_per_x1)
    if per < 1:
        raise ValueError("synthetic_seeg: samples_per_x1 must be >= 1.")
    k1, k2 = jax.random.split(key)
    amp = jnp.repeat(jnp.exp(x1), per, axis=0)  # (T * per, N)
    seeg = (amp * jax.random.normal(k1, amp.shape, jnp.float32)) @ gain.T  # (T * per, C)
    if sensor_noise:
        seeg = seeg + sensor_noise * jax.random.normal(k2, seeg.shape, jnp.float32)
    return np.asarray(seeg.T)


def _electrode(label: str) -> str:
    m = re.match(r"^(.*?)(\d+)$", label)
    return m.group(1) if m else label


def implant(
    sensors: Any, centres: Any, ez: Any, *, n_electrodes: int = 8, near_mm: float = 10.0, seed: int = 0
) -> np.ndarray:
    """Contacts of a plausible implantation: every electrode (contacts sharing a label prefix, ``A1..A9`` -> ``A``)
    with a contact within `near_mm` of an EZ region's centre, the electrode with the contact nearest to each EZ
    region (clinicians implant where they suspect the onset), plus randomly chosen other electrodes up to
    `n_electrodes` in all. Returns the indices of the chosen contacts (sorted)."""
    labels = list(sensors.labels)
    pos = np.asarray(sensors.positions, dtype=float)
    cen = np.asarray(centres, dtype=float)[np.asarray(ez, dtype=int)]
    elec = np.asarray([_electrode(lb) for lb in labels])
    names = list(dict.fromkeys(elec))
    dist = np.linalg.norm(pos[:, None] - cen[None], axis=-1)  # (contacts, EZ regions)
    near = dist.min(axis=1) <= near_mm
    nearest = {elec[int(np.argmin(dist[:, j]))] for j in range(dist.shape[1])}
    chosen = [e for e in names if np.any(near[elec == e]) or e in nearest]
    rng = np.random.default_rng(seed)
    others = [e for e in names if e not in chosen]
    extra = max(0, n_electrodes - len(chosen))
    chosen += [others[i] for i in rng.permutation(len(others))[:extra]]
    return np.flatnonzero(np.isin(elec, chosen))


@dataclass
class SyntheticPatient:
    """A simulated patient (see :func:`synthetic_patient`): the truth (``ez``, ``x0`` ``(N,)``, ``K``), the regions
    that seize (``seizing``), the implanted ``contacts`` (indices into the sensors) and the SEEG ``recording``."""

    ez: list[int]
    x0: np.ndarray
    K: float
    seizing: list[int]
    contacts: np.ndarray
    recording: SEEGRecording


def synthetic_patient(
    connectome: Connectome,
    sensors: Any,
    ez: Any,
    *,
    seed: int = 0,
    K: float = K_DEFAULT,
    duration: float = DURATION,
    dt: float = DT,
    period: float = PERIOD,
    samples_per_window: int = 64,
    sfreq: float = 256.0,
    n_electrodes: int = 8,
) -> SyntheticPatient:
    """A synthetic patient with epileptogenic regions `ez`: ``x0`` uniform in [-1.8, -1.5] there and in
    [-2.6, -2.3] elsewhere (seeded), coupling `K`, an :func:`implant` of `n_electrodes` electrodes, and SEEG
    signals from :func:`synthetic_seeg` with `samples_per_window` samples per envelope window (the source activity
    sampled 4 times per window), recorded at `sfreq` Hz (which only labels the time axis)."""
    ez = sorted({int(i) for i in np.asarray(ez).reshape(-1)})
    n = connectome.n_regions
    if not ez or min(ez) < 0 or max(ez) >= n:
        raise ValueError(f"synthetic_patient: ez must hold region indices in 0..{n - 1}, got {ez}.")
    if connectome.centres is None:
        raise ValueError("synthetic_patient: the connectome needs region centres (mm) for the SEEG gain.")
    if samples_per_window % 4:
        raise ValueError("synthetic_patient: samples_per_window must be a multiple of 4.")
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(-2.6, -2.3, n)
    x0[ez] = rng.uniform(-1.8, -1.5, len(ez))
    net = vep_network(connectome, x0=x0, K=K)
    x1 = np.asarray(simulate_x1(net, duration, dt, period / 4))
    contacts = implant(sensors, connectome.centres, ez, n_electrodes=n_electrodes, seed=seed)
    gain = seeg_gain_point_source(np.asarray(sensors.positions)[contacts], connectome.centres)
    data = synthetic_seeg(x1, gain, key=jax.random.key(seed), samples_per_x1=samples_per_window // 4)
    labels = [str(sensors.labels[c]) for c in contacts]
    meta = {"synthetic": True, "ez": ez, "seed": seed, "K": K, "duration_ms": duration, "period_ms": period}
    rec = SEEGRecording(data, sfreq, labels, meta)
    return SyntheticPatient(ez, x0, float(K), seizing_regions(x1).tolist(), contacts, rec)


DETECTABLE = 0.5
"""A region is *observed* when its seizure alone would raise some contact's log power by more than this (about
three times the scatter of a window's log power with 64 samples per window)."""


def detectability(gain: Any) -> np.ndarray:
    """``(N,)``: the largest increase of any contact's log power if region ``i`` alone went from rest
    (:data:`X1_REST`) to the seizure branch (``x1 = 0.4``) while the others stay at rest, from the gain
    ``(contacts, N)``. Regions below :data:`DETECTABLE` are not observed by the implantation."""
    g2 = np.asarray(gain, dtype=float) ** 2
    base = g2.sum(axis=1) * np.exp(2 * X1_REST)
    return np.log1p(g2 * (np.exp(0.8) - np.exp(2 * X1_REST)) / base[:, None]).max(axis=0)


# ---------------------------------------------------------------------------------------------------- inference


def _contact_terms(obs, net, lat) -> tuple[Array, Array]:
    """``(log-likelihood per contact (contacts,), fitted envelope (T, contacts))`` of the observation ``obs =
    (envelope, gain, feature, duration, dt, fixed_time_scale)``, with the per-contact nuisance parameters integrated
    out: ``"power"``, an offset of the log power with a flat prior (a contact's unknown gain); ``"level"``, an offset
    with a flat prior and the contact's polarity (+1 or -1, equally likely), with one ``scale`` shared by all
    contacts (latent) on the gain divided by its largest magnitude. The amplitude across contacts, which locates the
    seizing regions, is kept by both: by the size of each contact's power change, and by the shared scale."""
    env, gain, feature, duration, dt, fixed = obs
    sigma = lat["sigma"]
    ts = lat["time_scale"] if fixed is None else fixed
    T = env.shape[0]
    period = duration / T
    if feature == "power":
        raw = seeg_log_power(simulate_power(net, duration, dt, period, ts), gain)
        r = env - raw
        offset = jnp.mean(r, axis=0)
        rc = r - offset
        ll = -0.5 * (T - 1) * jnp.log(2 * jnp.pi * sigma**2) - 0.5 * jnp.log(T) - jnp.sum(rc**2, 0) / (2 * sigma**2)
        return ll, raw + offset
    raw = simulate_level(net, duration, dt, period, ts) @ (gain / jnp.max(jnp.abs(gain))).T
    mc = raw - jnp.mean(raw, axis=0)
    d = env - jnp.mean(env, axis=0)
    signed = []
    for sign in (1.0, -1.0):
        r = d - sign * lat["scale"] * mc
        signed.append(
            -0.5 * (T - 1) * jnp.log(2 * jnp.pi * sigma**2) - 0.5 * jnp.log(T) - jnp.sum(r**2, 0) / (2 * sigma**2)
        )
    ll = jnp.logaddexp(signed[0], signed[1]) - jnp.log(2.0)
    polarity = jnp.tanh(0.5 * (signed[0] - signed[1]))  # posterior mean of each contact's sign
    return ll, jnp.mean(env, axis=0) + polarity * lat["scale"] * mc


class VEPPosterior(Posterior):
    """A :class:`~vbtjax.inference.Posterior` that also keeps the VEP's data and observation model: the
    `envelope` ``(T, contacts)``, the `gain` ``(contacts, N)``, the `feature` (``"power"`` or ``"level"``, see
    :data:`FEATURES`), the model time ``duration`` and step ``dt`` (ms). :meth:`predict` gives the model's
    envelope at ``u`` and :meth:`pointwise` the log-likelihood per contact."""

    envelope: Array
    gain: Array
    feature: str = eqx.field(static=True)
    duration: float = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    fixed_time_scale: float | None = eqx.field(static=True)
    cropped_s: tuple[float, float] | None = eqx.field(static=True, default=None)

    def __init__(
        self,
        net,
        selection,
        priors,
        latents,
        *,
        envelope,
        gain,
        feature,
        duration,
        dt,
        fixed_time_scale=None,
        cropped_s=None,
    ):
        self.envelope = envelope
        self.gain = gain
        self.feature = str(feature)
        self.duration = float(duration)
        self.dt = float(dt)
        self.fixed_time_scale = None if fixed_time_scale is None else float(fixed_time_scale)
        self.cropped_s = None if cropped_s is None else tuple(float(v) for v in cropped_s)
        obs = (envelope, gain, self.feature, self.duration, self.dt, self.fixed_time_scale)

        def log_likelihood(net, lat):
            return jnp.sum(_contact_terms(obs, net, lat)[0])

        def pointwise(net, lat):
            return _contact_terms(obs, net, lat)[0]

        super().__init__(net, selection, priors, log_likelihood, latents, pointwise_log_likelihood=pointwise)

    @property
    def period(self) -> float:
        """Model time per envelope window, ms."""
        return self.duration / self.envelope.shape[0]

    def _terms(self, u):
        x = self.constrained(u)
        obs = (self.envelope, self.gain, self.feature, self.duration, self.dt, self.fixed_time_scale)
        return _contact_terms(obs, self.network(u), {n: x[n] for n in self.latents})

    def pointwise(self, u: Float[Array, " d"]) -> Float[Array, " contacts"]:
        """Log-likelihood of each contact's envelope at ``u`` (they sum to :meth:`log_likelihood_at`)."""
        return self._terms(u)[0]

    def predict(self, u: Float[Array, " d"]) -> Float[Array, "T contacts"]:
        """The model's envelope at ``u``, with the per-contact offsets (and, for ``"level"``, scales) at their
        posterior mean given ``u``: what the data are compared with."""
        return self._terms(u)[1]


def vep_posterior(
    connectome: Connectome,
    gain: Any,
    envelope: Any,
    *,
    feature: str = "power",
    duration: float = DURATION,
    dt: float = DT,
    x0_prior: tuple[float, float] = (X0_HEALTHY, 0.5),
    K_prior_scale: float = 0.5,
    sigma_prior_scale: float = 1.0,
    time_scale: float | tuple[float, float] | None = TIME_SCALE_RANGE,
    dtype: Any = jnp.float32,
    cropped_s: tuple[float, float] | None = None,
) -> VEPPosterior:
    """The VEP posterior given an SEEG `envelope` ``(T, contacts)`` of the kind `feature` (:func:`seeg_features`) and
    the `gain` ``(contacts, N)`` (mm^-2; rows of a bipolar channel are differences of two contacts' rows).

    Sampled: ``x0`` per region (prior ``Normal(*x0_prior)``, non-centred), the coupling ``K``
    (``HalfNormal(K_prior_scale)``), the observation sd ``sigma`` (``HalfNormal(sigma_prior_scale)``) and, unless
    `time_scale` is a number (then fixed), the ``time_scale`` that maps the recording onto the model's time: the
    network runs ``time_scale * duration`` ms of its own time over the recording (prior log-uniform on the
    `time_scale` range, default :data:`TIME_SCALE_RANGE`); for ``"level"`` also the ``scale`` shared by all contacts
    (``LogNormal(0, 2)``). Each contact's offset (and, for ``"level"``, its polarity) is integrated out
    analytically, so that a contact's unknown reference (and, for ``"power"``, its unknown gain) does not matter; the
    model's window ``m`` (at ``(m + 1) duration / T`` ms) is compared with the data's window ``m``. `cropped_s`: the
    seconds of the recording the envelope covers, kept for the record (:func:`recording_posterior` sets it)."""
    import numpyro.distributions as dist

    from .inference.params import Interval

    env = jnp.asarray(envelope, dtype=dtype)
    gain = jnp.asarray(gain, dtype=dtype)
    if feature not in FEATURES:
        raise ValueError(f"vep_posterior: feature must be one of {FEATURES}, got {feature!r}.")
    if env.ndim != 2:
        raise ValueError(f"vep_posterior: envelope has shape {env.shape}; expected (windows, contacts).")
    if gain.ndim != 2 or gain.shape[0] != env.shape[1]:
        raise ValueError(
            f"vep_posterior: gain has shape {gain.shape} but the envelope has {env.shape[1]} contacts; expected "
            f"({env.shape[1]}, n_regions)."
        )
    if gain.shape[1] != connectome.n_regions:
        raise ValueError(
            f"vep_posterior: gain has {gain.shape[1]} columns but the connectome has {connectome.n_regions} regions."
        )
    if not bool(jnp.all(jnp.isfinite(env))) or not bool(jnp.all(jnp.isfinite(gain))):
        raise ValueError("vep_posterior: the envelope or the gain contains NaN or inf.")
    T = env.shape[0]
    if T < 4:
        raise ValueError(f"vep_posterior: the envelope has {T} windows; at least 4 are needed.")
    period = duration / T
    if abs(round(period / dt) * dt - period) > 1e-9 * period:
        raise ValueError(f"vep_posterior: duration / windows = {period} ms must be a whole number of dt = {dt} ms.")
    loc, scale = x0_prior
    net = vep_network(connectome, x0=loc, K=K_prior_scale)
    net = jax.tree.map(lambda x: x.astype(dtype) if eqx.is_inexact_array(x) else x, net)
    sel = Selection(
        [
            Parameter(lambda n: n.model.x0, Affine(loc, scale), name="x0"),
            Parameter(lambda n: n.coupling.a, Positive(), name="K"),
        ]
    )
    latents = {"sigma": Latent(dist.HalfNormal(sigma_prior_scale), Positive(), init=0.3 * sigma_prior_scale)}
    if feature == "level":  # data (largest sd 1) = scale * model level (gain / max |gain|, x1 in its own units)
        latents["scale"] = Latent(dist.LogNormal(0.0, 2.0), Positive(), init=1.0)
    fixed = None
    if time_scale is None or np.ndim(time_scale) == 0:
        fixed = 1.0 if time_scale is None else float(time_scale)
        if not fixed > 0:
            raise ValueError(f"vep_posterior: a fixed time_scale must be > 0, got {time_scale}.")
    else:
        lo, hi = (float(v) for v in time_scale)
        if not 0 < lo < hi:
            raise ValueError(f"vep_posterior: time_scale range must satisfy 0 < low < high, got {time_scale}.")
        init = float(np.clip(1.0, lo, hi)) if lo < 1.0 < hi else float(np.sqrt(lo * hi))
        latents["time_scale"] = Latent(dist.LogUniform(lo, hi), Interval(lo, hi), init=init)
    return VEPPosterior(
        net,
        sel,
        priors={"x0": dist.Normal(loc, scale), "K": dist.HalfNormal(K_prior_scale)},
        latents=latents,
        envelope=env,
        gain=gain,
        feature=feature,
        duration=duration,
        dt=dt,
        fixed_time_scale=fixed,
        cropped_s=cropped_s,
    )


def recording_posterior(
    connectome: Connectome,
    sensors: Any,
    recording: SEEGRecording,
    *,
    feature: str = "auto",
    crop: Any = "auto",
    duration: float = DURATION,
    period: float = PERIOD,
    dt: float = DT,
    time_scale: float | tuple[float, float] | None = TIME_SCALE_RANGE,
    dtype: Any = jnp.float32,
) -> VEPPosterior:
    """:func:`vep_posterior` of an SEEG `recording` of any length and sampling rate, cut into
    ``duration / period`` windows: its channels are contacts of `sensors` (monopolar) or pairs ``"X-Y"`` of them
    (bipolar); the gain comes from the contacts' positions and the connectome's centres; `feature` ``"auto"``
    chooses the observation model from the data (:func:`signal_kind`). `crop`: ``"auto"`` keeps the first two
    seizure cycles of a ``"level"`` recording with recurring seizures (:func:`crop_to_cycles`), a number keeps the
    first that many seconds, ``None`` keeps everything; the seconds kept are in ``posterior.cropped_s``."""
    from .recordings import channel_gain

    if connectome.centres is None:
        raise ValueError("recording_posterior: the connectome needs region centres (mm) for the SEEG gain.")
    gain = channel_gain(recording.ch_names, sensors, connectome.centres)
    n_win = int(round(duration / period))
    if feature == "auto":
        feature = signal_kind(recording.data)
    if feature == "power":
        recording = _drop_silent(recording, n_win)
    if isinstance(crop, str):
        if crop != "auto":
            raise ValueError(f"recording_posterior: crop must be 'auto', a number of seconds or None, got {crop!r}.")
        if feature == "level":
            recording = crop_to_cycles(recording, 2, feature)
    elif crop is not None:
        if not (np.isfinite(crop) and crop > 0):
            raise ValueError(f"recording_posterior: crop must be a positive number of seconds, got {crop}.")
        recording = recording.crop(0.0, float(crop))
    env, feature = seeg_features(recording.data, recording.sfreq, n_win, feature)
    kept = (0.0, recording.data.shape[1] / recording.sfreq)
    return vep_posterior(
        connectome,
        gain,
        env,
        feature=feature,
        duration=duration,
        dt=dt,
        time_scale=time_scale,
        dtype=dtype,
        cropped_s=kept,
    )


def _drop_silent(recording: SEEGRecording, n_windows: int) -> SEEGRecording:
    """The recording without channels that have a window of (numerically) zero power after detrending, e.g. a
    bipolar pair of contacts quantised to the same values by a 16-bit file format (a warning names them)."""
    w = _detrend(_windows(recording.data, n_windows, "recording_posterior"))
    power = np.mean(w * w, axis=-1)
    silent = np.any(power <= 1e-12 * np.maximum(power.max(axis=1, keepdims=True), 1e-300), axis=1)
    if not np.any(silent):
        return recording
    names = [c for c, s in zip(recording.ch_names, silent, strict=True) if s]
    if len(names) == len(recording.ch_names):
        raise ValueError("recording_posterior: every channel has a window without signal; nothing to fit.")
    import warnings

    warnings.warn(
        f"recording_posterior: left out {len(names)} channels with a window without signal ({', '.join(names[:8])}"
        f"{' ...' if len(names) > 8 else ''}): flat or quantised to one value.",
        stacklevel=3,
    )
    keep = [c for c in recording.ch_names if c not in set(names)]
    out = recording.pick(keep)
    out.meta = {**out.meta, "silent_channels": names}
    return out


class VEPResult(eqx.Module):
    """The outcome of :func:`infer_ez`.

    **Fields:**
    - `samples`: the sampler's result (:class:`~vbtjax.inference.NutsResult` or
      :class:`~vbtjax.inference.SMCResult`), draws ``(chains or runs, draws, ...)``.
    - `p_ez` ``(N,)``: the posterior probability that a region is epileptogenic: its ``x0`` exceeds
      :data:`X0_CRITICAL` *and* it seizes when the draw is simulated (a region above the critical value that the
      network's coupling holds at rest starts no seizure, and the data cannot tell its ``x0`` apart from a healthy
      one); `p_above` ``(N,)``: ``P(x0 > X0_CRITICAL)`` alone.
    - `observed` ``(N,)``: the implantation can see the region's seizures (:func:`detectability` above
      :data:`DETECTABLE`); the data cannot rule out a seizure in a region no contact sees, so such a region is never
      called epileptogenic.
    - `ranking`: list of ``{"index", "label", "probability"}`` with ``probability = p_ez``, the observed regions
      first, each group most likely first.
    - `diagnostics`: ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail``, ``divergences``, ``draws``, ``converged``,
      ``p_ez_chain_spread`` (the largest difference between chains, or runs, of an observed region's ``p_ez``: how
      stable the ranking is even where ``x0`` has not mixed), and the log evidence for SMC.
    - `ppc`: the posterior predictive check of the envelope (:class:`~vbtjax.inference.ppc.PPCResult`).
    """

    samples: Any
    p_ez: np.ndarray
    p_above: np.ndarray
    observed: np.ndarray
    ranking: list[dict[str, Any]] = eqx.field(static=True)
    labels: tuple[str, ...] = eqx.field(static=True)
    diagnostics: dict[str, Any] = eqx.field(static=True, default_factory=dict)
    ppc: Any = None

    def predicted_ez(self, threshold: float = 0.5) -> np.ndarray:
        """Observed regions with ``p_ez > threshold``."""
        return np.flatnonzero((self.p_ez > threshold) & self.observed)

    @property
    def converged(self) -> bool:
        """Max R-hat <= :data:`MAX_RHAT` and at most :data:`MAX_DIVERGENT` of the draws divergent."""
        return bool(self.diagnostics.get("converged", False))

    @property
    def fits(self) -> bool:
        """The posterior predictive check passed (the model reproduces the data)."""
        return bool(self.ppc is not None and self.ppc.fits)

    @property
    def trustworthy(self) -> bool:
        """Converged and fits: only then is a resection recommended."""
        return self.converged and self.fits

    @property
    def verdict(self) -> str:
        """One line: whether the result can be used, and why not."""
        d = self.diagnostics
        problems = []
        if not self.fits:
            r2 = self.ppc.r2 if self.ppc is not None else float("nan")
            cov = self.ppc.coverage if self.ppc is not None else float("nan")
            problems.append(f"the model does not reproduce the data (R² {r2:.2f}, 90 % coverage {cov:.2f})")
        if not self.converged:
            problems.append(
                f"the sampler has not converged (max R-hat {d.get('max_rhat', float('nan')):.2f} > {MAX_RHAT}, "
                f"{d.get('divergences', 0)} divergent of {d.get('draws', 0)} draws)"
            )
        if not problems:
            return "VEP: converged and the model reproduces the data."
        return "VEP: " + "; ".join(problems) + ": do not plan a resection on this result."


def vep_twin(
    connectome: Connectome,
    result: VEPResult,
    *,
    duration: float = DURATION,
    dt: float = DT,
    period: float = PERIOD,
    metadata: dict[str, Any] | None = None,
    inputs: Any = (),
):
    """The patient's :class:`~vbtjax.Twin`: the VEP network at the posterior mean, the posterior draws of ``x0``
    (``"model.x0"``) and ``K`` (``"coupling.a"``), and the VEP's simulation settings (Heun, `duration` and `dt` ms,
    ``x1``/``z`` sampled every `period` ms from rest), so that ``twin.predict(Resect([...]), Seizes(monitor="x1",
    threshold=SEIZURE_X1))`` is the virtual surgery of :func:`virtual_resection` over every draw. With an inferred
    time scale, the twin runs ``duration`` and ``dt`` times its posterior mean (the network's own time)."""
    from .monitors import SubSample
    from .solvers import Heun
    from .twin import Twin

    x0 = np.asarray(result.samples.samples["x0"])
    K = np.asarray(result.samples.samples["K"])
    ts = float(np.mean(result.samples.samples["time_scale"])) if "time_scale" in result.samples.samples else 1.0
    n = connectome.n_regions
    net = vep_network(connectome, x0=x0.reshape(-1, n).mean(axis=0), K=float(K.mean()))
    meta = {"kind": "vep", "labels": list(result.labels), "p_ez": np.asarray(result.p_ez).tolist()}
    meta.update(metadata or {})
    return Twin(
        net,
        posterior={"model.x0": x0, "coupling.a": K},
        simulation={
            "t1": float(duration) * ts,
            "dt": float(dt) * ts,
            "solver": Heun(),
            "monitors": {"x1": SubSample(period=float(period) * ts)},
            "history": np.asarray(_history(n, net.model.x0.dtype)),
        },
        metadata=meta,
        inputs=inputs,
    )


def initial_guess(posterior: Posterior, *, x0_seizing: float = -1.7, min_share: Any = (0.1, 0.25, 0.5)) -> Array:
    """Data-driven starting points for the VEP posterior: ``(len(min_share) + 1, d)`` unconstrained ``u``.

    A region that does not seize has almost no gradient towards seizing, so gradient ascent from a healthy start
    can explain a contact's seizure with the wrong region. These start instead from the regions whose seizures best
    explain each contact's change over the recording, fitted by non-negative least squares as a sum over regions of
    what one region's seizure alone would do to that contact (``"power"``: the relative power increase
    ``exp(max_t y_k - baseline_k) - 1``, baseline the 10 % quantile over windows; ``"level"``: the range of the
    standardised level against the share of the contact's gain); for each value of `min_share`, the regions with a
    fitted share above it start at ``x0 = x0_seizing`` and the others at the prior's centre. The last row is the
    healthy network."""
    from scipy.optimize import nnls

    if not isinstance(posterior, VEPPosterior):
        raise TypeError("initial_guess: expected the posterior of vep_posterior().")
    env, gain = np.asarray(posterior.envelope, dtype=float), np.asarray(posterior.gain, dtype=float)
    if posterior.feature == "power":
        g2 = gain**2
        base = g2.sum(axis=1) * np.exp(2 * X1_REST)
        design = g2 * (np.exp(0.8) - np.exp(2 * X1_REST)) / base[:, None]
        target = np.expm1(env.max(axis=0) - np.quantile(env, 0.1, axis=0))
    else:
        ag = np.abs(gain)
        design = ag / ag.sum(axis=1, keepdims=True)
        rng = env.max(axis=0) - env.min(axis=0)
        target = rng / max(float(rng.max()), 1e-12)
    a, _ = nnls(design, np.maximum(target, 0.0))
    if posterior.feature == "level":
        a = a / max(float(a.max()), 1e-12)
    base_vals = posterior.constrained(posterior.initial_position())
    out = []
    for share in np.atleast_1d(min_share):
        vals = dict(base_vals)
        x0 = np.array(vals["x0"], dtype=float)
        x0[a > share] = x0_seizing
        vals["x0"] = x0
        out.append(posterior.unconstrained(vals))
    out.append(posterior.initial_position())
    return jnp.stack(out)


def posterior_mode(
    posterior: Posterior, *, init: Any = None, steps: int = 200, newton_steps: int = 8
) -> tuple[Array, Array]:
    """The maximum a posteriori point and the Hessian of ``-log_density`` there: ``(u_map (d,), hessian (d, d))``.

    From `init`, one start ``(d,)`` (default the network's values) or several ``(k, d)``, both L-BFGS (Optax, zoom
    line search; `steps` iterations) and Adam (``2 * steps``, learning rate 0.05) run on ``-log_density`` in
    unconstrained space, every start at once (``jax.vmap``); the highest density reached wins, and `newton_steps`
    damped Newton steps (Levenberg-Marquardt, step halving) finish it. Neither first-order method alone was reliable:
    Adam moves every coordinate at its learning rate whatever the size of the gradient, so weakly observed regions
    drift above the critical excitability; L-BFGS's line search sometimes jumps to a configuration where many regions
    seize; and both stop short in the directions the data pin down to 1e-4 (an EZ's ``x0`` against ``K``)."""
    import optax

    u = posterior.initial_position() if init is None else jnp.asarray(init)
    starts = u[None] if u.ndim == 1 else u

    def fun(v):
        return -posterior.log_density(v)

    lbfgs = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(fun)
    adam = optax.adam(0.05)

    def run_lbfgs(u):
        def body(carry, _):
            u, state = carry
            value, grad = value_and_grad(u, state=state)
            upd, state = lbfgs.update(grad, state, u, value=value, grad=grad, value_fn=fun)
            return (optax.apply_updates(u, upd), state), value

        (u, _), _ = jax.lax.scan(body, (u, lbfgs.init(u)), None, length=int(steps))
        return u, fun(u)

    def run_adam(u):
        def body(carry, _):
            u, state = carry
            g = jax.grad(fun)(u)
            upd, state = adam.update(g, state, u)
            return (optax.apply_updates(u, upd), state), None

        (u, _), _ = jax.lax.scan(body, (u, adam.init(u)), None, length=2 * int(steps))
        return u, fun(u)

    results = [jax.jit(jax.vmap(run))(starts) for run in (run_lbfgs, run_adam)]
    us = jnp.concatenate([r[0] for r in results])
    losses = jnp.concatenate([r[1] for r in results])
    losses = jnp.where(jnp.isfinite(losses), losses, jnp.inf)
    u = us[int(jnp.argmin(losses))]
    hess_fn = jax.jit(jax.hessian(fun))  # jitted: evaluated op by op it took longer than the whole search
    grad_fn = jax.jit(jax.value_and_grad(fun))
    value, grad = grad_fn(u)
    hess = hess_fn(u)
    for _ in range(int(newton_steps)):
        h64 = np.asarray(hess, dtype=float)
        w, v = np.linalg.eigh(0.5 * (h64 + h64.T))
        lam = max(0.0, -float(w.min())) + 1e-3 * max(1.0, float(np.abs(w).max())) ** 0.5
        g64 = np.asarray(grad, dtype=float)
        moved = False
        for _ in range(6):
            step = (v / (np.maximum(w, 0.0) + lam)) @ (v.T @ g64)
            cand = jnp.asarray(np.asarray(u, dtype=float) - step, u.dtype)
            c_value, c_grad = grad_fn(cand)
            if bool(jnp.isfinite(c_value)) and float(c_value) < float(value):
                u, value, grad, moved = cand, c_value, c_grad, True
                break
            lam *= 10.0
        if not moved:
            break
        hess = hess_fn(u)
    return u, 0.5 * (hess + hess.T)


def laplace_factor(hessian: Any, *, floor: float = 1.0) -> np.ndarray:
    """``(d, d)`` factor ``L`` with ``L @ L.T`` the inverse of `hessian` (symmetrised, eigenvalues raised to at least
    `floor`, float64): the shape of the Laplace approximation at a mode, used to precondition NUTS. The floor keeps
    the directions the data do not inform (and those of negative curvature) at the prior's unit scale."""
    h = np.asarray(hessian, dtype=float)
    w, v = np.linalg.eigh(0.5 * (h + h.T))
    return v / np.sqrt(np.maximum(w, floor))


SAMPLERS = ("nuts", "smc")
"""Samplers of :func:`infer_ez`."""
MAX_RHAT = 1.05
"""Largest rank-normalised split R-hat over all sampled values for a run to count as converged."""
MAX_DIVERGENT = 0.01
"""Largest fraction of divergent transitions for a run to count as converged."""


def infer_ez(
    posterior: Posterior,
    *,
    key: jax.Array,
    labels: Any = None,
    sampler: str = "nuts",
    num_chains: int = 4,
    num_warmup: int = 200,
    num_samples: int = 200,
    num_particles: int = 64,
    map_steps: int = 200,
    checkpoint: str | Path | None = None,
    progress: bool = True,
    target_accept: float = 0.8,
    max_tree_depth: int = 6,
    ppc_draws: int = 100,
    warn: bool = True,
) -> VEPResult:
    """Rank the regions by their posterior probability of being epileptogenic, and check the result.

    `sampler` ``"nuts"`` (default): the posterior mode first (:func:`posterior_mode` from :func:`initial_guess`,
    Newton-refined), then `num_chains` NUTS chains (:func:`vbtjax.inference.nuts`) started around it and
    preconditioned by the Laplace approximation there (:func:`laplace_factor`), with the diagonal mass matrix adapted
    on top in warmup. ``"smc"``: adaptive tempered SMC (:func:`vbtjax.inference.smc`), `num_chains` independent
    runs of `num_particles` particles, `num_samples` HMC moves... see that function; it also estimates the evidence.

    The result carries the convergence diagnostics (rank-normalised split R-hat over chains or runs, bulk and tail
    ESS, divergences; :attr:`VEPResult.converged`), a posterior predictive check of the envelope from `ppc_draws`
    draws (:attr:`VEPResult.ppc`, :attr:`VEPResult.fits`), and warns (``warn=True``) when either fails: such a
    result should not be used to plan a resection."""
    from .inference.diagnostics import ess_tail
    from .inference.ppc import predictive_check

    if sampler not in SAMPLERS:
        raise ValueError(f"infer_ez: sampler must be one of {SAMPLERS}, got {sampler!r}.")
    if not isinstance(posterior, VEPPosterior):
        raise TypeError("infer_ez: expected the posterior of vep_posterior() or recording_posterior().")
    if num_chains < 2:
        raise ValueError(f"infer_ez: num_chains must be >= 2 (R-hat compares chains or runs), got {num_chains}.")
    if sampler == "nuts":
        from .inference.nuts import nuts

        u_map, hess = posterior_mode(posterior, init=initial_guess(posterior), steps=map_steps)
        L = laplace_factor(hess)
        z = 0.5 * jax.random.normal(jax.random.fold_in(key, 7), (num_chains, u_map.size), u_map.dtype)
        res = nuts(
            posterior,
            key=key,
            num_chains=num_chains,
            num_warmup=num_warmup,
            num_samples=num_samples,
            checkpoint=checkpoint,
            progress=progress,
            target_accept=target_accept,
            max_tree_depth=max_tree_depth,
            init=u_map + z @ jnp.asarray(L.T, u_map.dtype),
            preconditioner=(u_map, L),
            initial_step_size=0.3,
        )
        positions = np.asarray(res.positions)
        divergent = int(np.asarray(res.stats["diverging"]).sum())
    else:
        from .inference.smc import smc

        res = smc(
            posterior,
            key=key,
            num_particles=num_particles,
            num_runs=num_chains,
            progress=progress,
            max_tree_depth=max_tree_depth,
        )
        positions = np.asarray(res.positions)
        divergent = 0
    summ = res.summary()
    rhat = max(float(np.nanmax(v["rhat"])) for v in summ.values())
    ess_b = min(float(np.nanmin(v["ess_bulk"])) for v in summ.values())
    ess_t = min(float(np.nanmin(ess_tail(np.asarray(res.samples[k])))) for k in res.samples)
    n_draws = positions.shape[0] * positions.shape[1]
    converged = bool(np.isfinite(rhat) and rhat <= MAX_RHAT and divergent <= MAX_DIVERGENT * n_draws)
    diagnostics = {
        "sampler": sampler,
        "max_rhat": rhat,
        "min_ess_bulk": ess_b,
        "min_ess_tail": ess_t,
        "divergences": divergent,
        "draws": n_draws,
        "converged": converged,
    }
    if sampler == "smc":  # the log evidence and its spread over runs, as plain numbers (the field is static)
        for k, v in res.evidence().items():
            key_ = k if k.startswith("log_evidence") else f"log_evidence_{k}"
            diagnostics[key_] = np.asarray(v, dtype=float).tolist()

    flat = positions.reshape(-1, positions.shape[-1])
    x0 = np.asarray(res.samples["x0"])  # (chains, draws, N)
    n = x0.shape[-1]
    x0_flat = jnp.asarray(x0.reshape(-1, n))
    K_flat = jnp.asarray(np.asarray(res.samples["K"]).reshape(-1))
    ts_flat = _time_scale_draws(posterior, res.samples, K_flat.shape[0])
    seizes = _seizing_draws(
        posterior.net, x0_flat, K_flat, duration=posterior.duration, dt=posterior.dt, time_scale=ts_flat
    )
    p_above = (x0 > X0_CRITICAL).mean(axis=(0, 1))
    ez_draws = np.asarray(seizes) & (np.asarray(x0_flat) > X0_CRITICAL)  # (chains * draws, N)
    p = ez_draws.mean(axis=0)
    observed = detectability(posterior.gain) > DETECTABLE
    per_chain = ez_draws.reshape(x0.shape[0], x0.shape[1], n).mean(axis=1)[:, observed]  # (chains, observed)
    # the clinical answer's agreement between chains (or runs), whatever the x0 of unseen regions did
    diagnostics["p_ez_chain_spread"] = float(np.max(np.ptp(per_chain, axis=0))) if per_chain.size else 0.0
    labels = tuple(str(s) for s in (labels if labels is not None else [f"region {i}" for i in range(n)]))
    order = np.lexsort((-p, ~observed))  # observed regions first, each group by probability
    ranking = [{"index": int(i), "label": labels[i], "probability": float(p[i])} for i in order]

    ppc = predictive_check(np.asarray(posterior.envelope), _predictive(posterior, flat, ppc_draws, key))
    result = VEPResult(
        samples=res,
        p_ez=p,
        p_above=p_above,
        observed=observed,
        ranking=ranking,
        labels=labels,
        diagnostics=diagnostics,
        ppc=ppc,
    )
    if warn and not result.trustworthy:
        import warnings

        warnings.warn(result.verdict, stacklevel=2)
    return result


def _time_scale_draws(posterior: VEPPosterior, samples: dict, n: int) -> Array:
    if "time_scale" in samples:
        return jnp.asarray(np.asarray(samples["time_scale"]).reshape(-1))
    return jnp.full((n,), 1.0 if posterior.fixed_time_scale is None else posterior.fixed_time_scale)


def _predictive(posterior: VEPPosterior, flat: np.ndarray, n_draws: int, key: jax.Array) -> np.ndarray:
    """``(S, T, contacts)`` envelopes simulated from `n_draws` evenly spaced draws of `flat` ``(draws, d)``, with
    their observation noise."""
    pick = np.linspace(0, flat.shape[0] - 1, min(int(n_draws), flat.shape[0])).astype(int)
    u = jnp.asarray(flat[pick])
    fitted = jax.jit(jax.vmap(lambda v: posterior.predict(v)))(u)
    sigma = jax.vmap(lambda v: posterior.constrained(v)["sigma"])(u)
    noise = jax.random.normal(jax.random.fold_in(key, 11), fitted.shape, fitted.dtype)
    return np.asarray(fitted + sigma[:, None, None] * noise)


def _seizing_draws(
    net: Network, x0_draws: Array, K_draws: Array, *, duration: float, dt: float, time_scale: Any = None
) -> Array:
    """``(S, N)`` bool: does region ``i`` seize (``x1 > SEIZURE_X1`` at some step) in draw ``s`` (over `duration`
    ms at the draw's `time_scale`, default 1)."""
    dtype = net.model.x0.dtype
    ts = jnp.ones(K_draws.shape, dtype) if time_scale is None else jnp.asarray(time_scale, dtype)

    def seizing(x0, K, s):
        n = eqx.tree_at(lambda t: (t.model.x0, t.coupling.a), net, (x0.astype(dtype), K))
        return jnp.any(simulate_x1(n, duration, dt, dt, s) > SEIZURE_X1, axis=0)

    return jax.jit(jax.vmap(seizing))(x0_draws, K_draws.astype(dtype), ts)


def virtual_resection(
    connectome: Connectome,
    x0_draws: Any,
    K_draws: Any,
    resect: Any,
    *,
    duration: float = DURATION,
    dt: float = DT,
    period: float = PERIOD,
    time_scale_draws: Any = None,
) -> dict[str, Any]:
    """What if the regions `resect` are removed? For every posterior draw (``x0_draws`` ``(S, N)``, ``K_draws``
    ``(S,)``, ``time_scale_draws`` ``(S,)`` or None for 1) the network is simulated before and after removing all
    connections of the resected regions; a draw is *seizure-free* after the resection when no remaining region's
    ``x1`` exceeds :data:`SEIZURE_X1`.

    **Returns:** dict with ``seizure_free_probability`` (fraction of draws), ``seizing_before_probability``, the
    per-region recruitment probabilities ``p_seizing_before`` / ``p_seizing_after`` ``(N,)`` (resected regions 0
    after), and ``resected`` (indices)."""
    resect = np.unique(np.asarray(resect, dtype=int).reshape(-1))
    x0_draws = jnp.asarray(x0_draws)
    K_draws = jnp.asarray(K_draws)
    n = connectome.n_regions
    if x0_draws.ndim != 2 or x0_draws.shape[1] != n or K_draws.shape != (x0_draws.shape[0],):
        raise ValueError(
            f"virtual_resection: need x0_draws (S, {n}) and K_draws (S,), got {x0_draws.shape} and {K_draws.shape}."
        )
    if resect.size and (resect.min() < 0 or resect.max() >= n):
        raise ValueError(f"virtual_resection: resect indices must lie in 0..{n - 1}, got {resect.tolist()}.")
    keep = np.ones(n, bool)
    keep[resect] = False
    w = np.asarray(vep_connectome(connectome).weights)
    w_after = w * keep[:, None] * keep[None, :]
    base = vep_network(connectome)
    net_after = eqx.tree_at(lambda t: t.connectome.weights, base, jnp.asarray(w_after, base.connectome.weights.dtype))

    ts = time_scale_draws
    before = np.asarray(_seizing_draws(base, x0_draws, K_draws, duration=duration, dt=dt, time_scale=ts))
    after = np.asarray(_seizing_draws(net_after, x0_draws, K_draws, duration=duration, dt=dt, time_scale=ts))
    after = after & keep[None, :]
    return {
        "resected": resect.tolist(),
        "seizing_before_probability": float(before.any(axis=1).mean()),
        "seizure_free_probability": float((~after.any(axis=1)).mean()),
        "p_seizing_before": before.mean(axis=0),
        "p_seizing_after": after.mean(axis=0),
    }
