"""Synthetic VEP patients: SEEG signals from source activity, a plausible implantation, and which regions an
implantation can see."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ...data.connectome import Connectome
from ...data.recordings import SEEGRecording, split_contact
from ...data.sensors import seeg_gain_point_source
from .network import DT, DURATION, K_DEFAULT, PERIOD, X1_REST, seizing_regions, simulate_x1, vep_network


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
    parts = split_contact(label)
    return label if parts is None else parts[0]


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
