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

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .connectome import Connectome
from .coupling import Difference
from .inference.params import Affine, Parameter, Positive, Real, Selection
from .inference.posterior import Latent, Posterior
from .models import Epileptor2D
from .network import Network
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


def _integrate(net: Network, duration: float, dt: float, period: float) -> tuple[Array, Array]:
    """``(x1, log_power)``, both ``(duration / period, N)``: ``x1`` at the end of each window of `period` ms and
    ``log mean exp(2 x1)`` over the window's steps.

    The VEP network has no delays, so this integrates it with a dense ``(N, N)`` coupling product per step and TVB's
    Heun scheme (the coupling computed once per step) in a nested ``lax.scan``, the outer body under
    ``jax.checkpoint``: the same numbers as :func:`vbtjax.simulate` (tested to 1e-6), with a gradient about 3x
    cheaper, which is what NUTS spends its time on."""
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
        d2 = model.dfun(y + dt * d1, c)
        y = y + (0.5 * dt) * (d1 + d2)
        return y, jnp.exp(2.0 * y[0])

    @jax.checkpoint
    def window(y, _):
        y, p = jax.lax.scan(step, y, None, length=per, unroll=UNROLL)
        return y, (y[0], jnp.log(jnp.mean(p, axis=0)))

    y0 = _history(net.n_regions, dtype)[0]
    _, (x1, logp) = jax.lax.scan(window, y0, None, length=n_steps // per)
    return x1, logp


def simulate_x1(
    net: Network, duration: float = DURATION, dt: float = DT, period: float = PERIOD
) -> Float[Array, "T N"]:
    """``x1`` of the VEP network every `period` ms from the resting state: ``(duration / period, N)``, the sample
    ``m`` at ``(m + 1) * period`` ms (as :func:`vbtjax.simulate` with ``SubSample(period)``)."""
    return _integrate(net, duration, dt, period)[0]


def simulate_power(
    net: Network, duration: float = DURATION, dt: float = DT, period: float = PERIOD
) -> Float[Array, "T N"]:
    """Log source power of each region per window of `period` ms: ``log mean exp(2 x1)`` over the window's steps,
    ``(duration / period, N)``."""
    return _integrate(net, duration, dt, period)[1]


def seizing_regions(x1: Any) -> np.ndarray:
    """Indices of the regions whose ``x1`` (``(T, N)``) exceeds :data:`SEIZURE_X1` at some sample."""
    return np.flatnonzero(np.any(np.asarray(x1) > SEIZURE_X1, axis=0))


# ---------------------------------------------------------------------------------------------------- observation


def seeg_log_power(log_power: Float[Array, "T N"], gain: Float[Array, "C N"]) -> Float[Array, "T C"]:
    """Predicted log power of each contact, ``log sum_i G_ki^2 exp(log_power_i)`` (a stable log-sum-exp), from the
    regions' log power (:func:`simulate_power`)."""
    return jax.nn.logsumexp(log_power[:, None, :] + 2.0 * jnp.log(gain)[None, :, :], axis=-1)


def log_power_envelope(data: Any, sfreq: float, n_windows: int) -> np.ndarray:
    """SEEG log-power envelope: the signal of each contact (``data``: contacts x samples) is demeaned, cut into
    `n_windows` consecutive windows of equal length (trailing samples dropped), and the log of the mean square of
    each window is returned, ``(n_windows, contacts)``."""
    x = np.asarray(data, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"log_power_envelope: data has shape {x.shape}; expected (contacts, samples).")
    if not np.all(np.isfinite(x)):
        raise ValueError("log_power_envelope: the SEEG data contain NaN or inf.")
    per = x.shape[1] // int(n_windows)
    if per < 2:
        raise ValueError(
            f"log_power_envelope: {x.shape[1]} samples cannot fill {n_windows} windows of at least 2 samples; record "
            "longer or use fewer windows (a longer --period)."
        )
    x = x - x.mean(axis=1, keepdims=True)
    w = x[:, : per * n_windows].reshape(x.shape[0], n_windows, per)
    power = np.mean(w * w, axis=-1)
    if np.any(power <= 0):
        bad = int(np.flatnonzero(np.any(power <= 0, axis=1))[0])
        raise ValueError(f"log_power_envelope: contact {bad} has a window of zero power (a flat channel); drop it.")
    del sfreq  # the windows are defined by their number; sfreq is kept in the signature for clarity
    return np.log(power).T


@dataclass
class SEEGRecording:
    """SEEG signals: ``data`` (contacts x samples), ``sfreq`` (Hz), ``ch_names`` (one per contact). Stored as an
    ``.npz`` with exactly these keys (no pickle)."""

    data: np.ndarray
    sfreq: float
    ch_names: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self.data = np.asarray(self.data, dtype=np.float32)
        self.ch_names = [str(c) for c in self.ch_names]
        if self.data.ndim != 2:
            raise ValueError(f"SEEGRecording: data has shape {self.data.shape}; expected (contacts, samples).")
        if len(self.ch_names) != self.data.shape[0]:
            raise ValueError(
                f"SEEGRecording: {len(self.ch_names)} ch_names for {self.data.shape[0]} contacts (rows of data)."
            )
        if not (np.isfinite(self.sfreq) and self.sfreq > 0):
            raise ValueError(f"SEEGRecording: sfreq must be a positive number of Hz, got {self.sfreq}.")

    @classmethod
    def load(cls, path: str | Path) -> SEEGRecording:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"--seeg: {path} does not exist.")
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("data", "sfreq", "ch_names") if k not in z.files]
            if missing:
                raise ValueError(f"{path}: missing keys {missing}; an SEEG file holds data, sfreq and ch_names.")
            meta = json.loads(str(z["meta_json"])) if "meta_json" in z.files else {}
            return cls(z["data"], float(z["sfreq"]), [str(c) for c in z["ch_names"]], meta)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            path,
            data=self.data,
            sfreq=np.asarray(self.sfreq),
            ch_names=np.asarray(self.ch_names),
            meta_json=np.asarray(json.dumps(self.meta)),
        )
        return path


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


class VEPPosterior(Posterior):
    """A :class:`~vbtjax.inference.Posterior` that also keeps the VEP's data (`envelope` ``(T, contacts)``, `gain`
    ``(contacts, N)``, and `offset0`, the offset that matches the healthy network's baseline), which
    :func:`initial_guess` uses."""

    envelope: Array
    gain: Array
    offset0: float = eqx.field(static=True)
    duration: float = eqx.field(static=True)
    dt: float = eqx.field(static=True)

    def __init__(self, net, selection, priors, log_likelihood, latents, *, envelope, gain, offset0, duration, dt):
        super().__init__(net, selection, priors, log_likelihood, latents)
        self.envelope = envelope
        self.gain = gain
        self.offset0 = float(offset0)
        self.duration = float(duration)
        self.dt = float(dt)


def vep_posterior(
    connectome: Connectome,
    gain: Any,
    envelope: Any,
    *,
    duration: float = DURATION,
    dt: float = DT,
    x0_prior: tuple[float, float] = (X0_HEALTHY, 0.5),
    K_prior_scale: float = 0.5,
    sigma_prior_scale: float = 1.0,
    dtype: Any = jnp.float32,
) -> VEPPosterior:
    """The VEP posterior: ``x0`` per region (prior ``Normal(*x0_prior)``, non-centred), the coupling ``K``
    (``HalfNormal(K_prior_scale)``), an offset of the log power (``Normal(mean offset, 2)``) and the observation sd
    ``sigma`` (``HalfNormal(sigma_prior_scale)``), given the log-power `envelope` ``(T, contacts)`` and the gain
    ``(contacts, N)``; the model's sample ``m`` (at ``(m + 1) duration / T`` ms) is compared with window ``m``."""
    import numpyro.distributions as dist

    env = jnp.asarray(envelope, dtype=dtype)
    gain = jnp.asarray(gain, dtype=dtype)
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
    if not bool(jnp.all(jnp.isfinite(env))):
        raise ValueError("vep_posterior: the envelope contains NaN or inf.")
    T = env.shape[0]
    period = duration / T
    if abs(round(period / dt) * dt - period) > 1e-9 * period:
        raise ValueError(f"vep_posterior: duration / windows = {period} ms must be a whole number of dt = {dt} ms.")
    loc, scale = x0_prior
    net = vep_network(connectome, x0=loc, K=K_prior_scale)
    net = jax.tree.map(lambda x: x.astype(dtype) if eqx.is_inexact_array(x) else x, net)
    base = seeg_log_power(simulate_power(net, duration, dt, period), gain)
    offset0 = float(jnp.mean(env) - jnp.mean(base))
    sel = Selection(
        [
            Parameter(lambda n: n.model.x0, Affine(loc, scale), name="x0"),
            Parameter(lambda n: n.coupling.a, Positive(), name="K"),
        ]
    )

    def log_likelihood(n, lat):
        pred = seeg_log_power(simulate_power(n, duration, dt, period), gain) + lat["offset"]
        return jnp.sum(dist.Normal(pred, lat["sigma"]).log_prob(env))

    return VEPPosterior(
        net,
        sel,
        priors={"x0": dist.Normal(loc, scale), "K": dist.HalfNormal(K_prior_scale)},
        log_likelihood=log_likelihood,
        latents={
            "offset": Latent(dist.Normal(offset0, 2.0), Real(), init=offset0),
            "sigma": Latent(dist.HalfNormal(sigma_prior_scale), Positive(), init=0.5 * sigma_prior_scale),
        },
        envelope=env,
        gain=gain,
        offset0=offset0,
        duration=duration,
        dt=dt,
    )


def recording_posterior(
    connectome: Connectome,
    sensors: Any,
    recording: SEEGRecording,
    *,
    duration: float = DURATION,
    period: float = PERIOD,
    dt: float = DT,
    dtype: Any = jnp.float32,
) -> VEPPosterior:
    """:func:`vep_posterior` of an SEEG `recording` whose ``ch_names`` are contacts of `sensors`: the gain from the
    contacts' positions and the connectome's centres, the envelope in ``duration / period`` windows."""
    if connectome.centres is None:
        raise ValueError("recording_posterior: the connectome needs region centres (mm) for the SEEG gain.")
    labels = list(sensors.labels)
    missing = [c for c in recording.ch_names if c not in set(labels)]
    if missing:
        raise ValueError(
            f"recording_posterior: contacts {missing[:5]} are not in the sensors; ch_names must be sensor names."
        )
    idx = [labels.index(c) for c in recording.ch_names]
    gain = seeg_gain_point_source(np.asarray(sensors.positions)[idx], connectome.centres)
    env = log_power_envelope(recording.data, recording.sfreq, int(round(duration / period)))
    return vep_posterior(connectome, gain, env, duration=duration, dt=dt, dtype=dtype)


class VEPResult(eqx.Module):
    """The outcome of :func:`infer_ez`: the NUTS draws (``samples``, a :class:`~vbtjax.inference.NutsResult`),
    ``p_ez`` ``(N,)``, the posterior probability that a region is epileptogenic: its ``x0`` exceeds
    :data:`X0_CRITICAL` *and* it seizes when the draw is simulated (a region above the critical value that the
    network's coupling holds at rest starts no seizure, and the data cannot tell its ``x0`` apart from a healthy
    one); ``p_above`` ``(N,)``, ``P(x0 > X0_CRITICAL)`` alone; ``observed`` ``(N,)``: the implantation can see the
    region's seizures (:func:`detectability` above :data:`DETECTABLE`; the data cannot rule out a seizure in a region
    no contact sees, so such a region is never called epileptogenic); and the ``ranking`` (list of ``{"index",
    "label", "probability"}`` with ``probability = p_ez``, the observed regions first, each group most likely
    first)."""

    samples: Any
    p_ez: np.ndarray
    p_above: np.ndarray
    observed: np.ndarray
    ranking: list[dict[str, Any]] = eqx.field(static=True)
    labels: tuple[str, ...] = eqx.field(static=True)

    def predicted_ez(self, threshold: float = 0.5) -> np.ndarray:
        """Observed regions with ``p_ez > threshold``."""
        return np.flatnonzero((self.p_ez > threshold) & self.observed)


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
    threshold=SEIZURE_X1))`` is the virtual surgery of :func:`virtual_resection` over every draw."""
    from .monitors import SubSample
    from .solvers import Heun
    from .twin import Twin

    x0 = np.asarray(result.samples.samples["x0"])
    K = np.asarray(result.samples.samples["K"])
    n = connectome.n_regions
    net = vep_network(connectome, x0=x0.reshape(-1, n).mean(axis=0), K=float(K.mean()))
    meta = {"kind": "vep", "labels": list(result.labels), "p_ez": np.asarray(result.p_ez).tolist()}
    meta.update(metadata or {})
    return Twin(
        net,
        posterior={"model.x0": x0, "coupling.a": K},
        simulation={
            "t1": float(duration),
            "dt": float(dt),
            "solver": Heun(),
            "monitors": {"x1": SubSample(period=float(period))},
            "history": np.asarray(_history(n, net.model.x0.dtype)),
        },
        metadata=meta,
        inputs=inputs,
    )


def initial_guess(posterior: Posterior, *, x0_seizing: float = -1.7, min_share: Any = (0.1, 0.25, 0.5)) -> Array:
    """Data-driven starting points for the VEP posterior: ``(len(min_share) + 1, d)`` unconstrained ``u``.

    A region that does not seize has almost no gradient towards seizing, so gradient ascent from a healthy start
    can explain a contact's seizure power with the wrong region. These start instead from the regions whose
    seizures best explain the observed power increase: the increase of each contact's power over its baseline (the
    first window), ``exp(max_t y_k) - exp(y_k(0))``, is fitted by non-negative least squares as
    ``sum_i G_ki^2 a_i`` (``a_i`` the power increase of region ``i``, in units of one region's seizure power); for
    each value of `min_share`, the regions with ``a_i > min_share`` start at ``x0 = x0_seizing`` and the others at
    the prior's centre. The last row is the healthy network."""
    from scipy.optimize import nnls

    if not isinstance(posterior, VEPPosterior):
        raise TypeError("initial_guess: expected the posterior of vep_posterior().")
    env, gain = np.asarray(posterior.envelope, dtype=float), np.asarray(posterior.gain, dtype=float)
    offset0 = posterior.offset0
    x_seiz = 0.4  # x1 on the seizure branch
    seizure_power = np.exp(2 * x_seiz) - np.exp(2 * X1_REST)
    increase = np.exp(env.max(axis=0) - offset0) - np.exp(env[0] - offset0)
    a, _ = nnls((gain**2) * seizure_power, np.maximum(increase, 0.0))
    base = posterior.constrained(posterior.initial_position())
    out = []
    for share in np.atleast_1d(min_share):
        vals = dict(base)
        x0 = np.array(vals["x0"], dtype=float)
        x0[a > share] = x0_seizing
        vals["x0"] = x0
        out.append(posterior.unconstrained(vals))
    out.append(posterior.initial_position())
    return jnp.stack(out)


def posterior_mode(posterior: Posterior, *, init: Any = None, steps: int = 200) -> tuple[Array, Array]:
    """The maximum a posteriori point and the Hessian of ``-log_density`` there: ``(u_map (d,), hessian (d, d))``.

    From `init`, one start ``(d,)`` (default the network's values) or several ``(k, d)``, both L-BFGS (Optax, zoom
    line search; `steps` iterations) and Adam (``2 * steps``, learning rate 0.05) run on ``-log_density`` in
    unconstrained space, every start at once (``jax.vmap``); the highest density reached wins. Neither alone was
    reliable on the TVB patients: Adam moves every coordinate at its learning rate whatever the size of the
    gradient, so weakly observed regions drift above the critical excitability; L-BFGS's line search sometimes
    jumps to a configuration where many regions seize."""
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
    hess = jax.jit(jax.hessian(fun))(u)  # jitted: evaluated op by op it took longer than the whole search
    return u, 0.5 * (hess + hess.T)


def infer_ez(
    posterior: Posterior,
    *,
    key: jax.Array,
    labels: Any = None,
    num_chains: int = 2,
    num_warmup: int = 200,
    num_samples: int = 200,
    map_steps: int = 200,
    checkpoint: str | Path | None = None,
    progress: bool = True,
    target_accept: float = 0.8,
    max_tree_depth: int = 6,
) -> VEPResult:
    """Rank the regions by their posterior probability of being epileptogenic (see :class:`VEPResult`): the
    posterior mode first (:func:`posterior_mode` from :func:`initial_guess`), then NUTS
    (:func:`vbtjax.inference.nuts`) from there with ``num_chains`` chains, the inverse Hessian at the mode as a dense
    mass matrix and only the step size adapted in warmup."""
    from .inference.nuts import nuts

    u_map, hess = posterior_mode(posterior, init=initial_guess(posterior), steps=map_steps)
    # the inverse Hessian at the mode (eigenvalues clipped to keep it positive definite) as a dense mass matrix:
    # the posterior's sharp directions mix x0 of the EZ with the coupling, which a diagonal matrix cannot follow
    w, v = jnp.linalg.eigh(hess)
    w = jnp.clip(w, 1e-2, None)
    imm = (v / w) @ v.T
    chol = v / jnp.sqrt(w)
    noise = jax.random.normal(jax.random.fold_in(key, 7), (num_chains, u_map.size), u_map.dtype)
    init = u_map + 0.1 * noise @ chol.T
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
        init=init,
        inverse_mass_matrix=imm,
        adapt_mass_matrix=False,
        initial_step_size=0.5,
    )
    x0 = np.asarray(res.samples["x0"])  # (chains, draws, N)
    n = x0.shape[-1]
    x0_flat = jnp.asarray(x0.reshape(-1, n))
    K_flat = jnp.asarray(np.asarray(res.samples["K"]).reshape(-1))
    seizes = _seizing_draws(posterior.net, x0_flat, K_flat, duration=posterior.duration, dt=posterior.dt)
    p_above = (x0 > X0_CRITICAL).mean(axis=(0, 1))
    p = (np.asarray(seizes) & (np.asarray(x0_flat) > X0_CRITICAL)).mean(axis=0)
    observed = detectability(posterior.gain) > DETECTABLE if isinstance(posterior, VEPPosterior) else np.ones(n, bool)
    labels = tuple(str(s) for s in (labels if labels is not None else [f"region {i}" for i in range(n)]))
    order = np.lexsort((-p, ~observed))  # observed regions first, each group by probability
    ranking = [{"index": int(i), "label": labels[i], "probability": float(p[i])} for i in order]
    return VEPResult(samples=res, p_ez=p, p_above=p_above, observed=observed, ranking=ranking, labels=labels)


def _seizing_draws(net: Network, x0_draws: Array, K_draws: Array, *, duration: float, dt: float) -> Array:
    """``(S, N)`` bool: does region ``i`` seize (``x1 > SEIZURE_X1`` at some sample) in draw ``s``."""

    def seizing(x0, K):
        n = eqx.tree_at(lambda t: (t.model.x0, t.coupling.a), net, (x0.astype(net.model.x0.dtype), K))
        return jnp.any(simulate_x1(n, duration, dt, dt) > SEIZURE_X1, axis=0)

    return jax.jit(jax.vmap(seizing))(x0_draws, K_draws.astype(net.model.x0.dtype))


def virtual_resection(
    connectome: Connectome,
    x0_draws: Any,
    K_draws: Any,
    resect: Any,
    *,
    duration: float = DURATION,
    dt: float = DT,
    period: float = PERIOD,
) -> dict[str, Any]:
    """What if the regions `resect` are removed? For every posterior draw (``x0_draws`` ``(S, N)``, ``K_draws``
    ``(S,)``) the network is simulated before and after removing all connections of the resected regions; a draw
    is *seizure-free* after the resection when no remaining region's ``x1`` exceeds :data:`SEIZURE_X1`.

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

    before = np.asarray(_seizing_draws(base, x0_draws, K_draws, duration=duration, dt=dt))
    after = np.asarray(_seizing_draws(net_after, x0_draws, K_draws, duration=duration, dt=dt)) & keep[None, :]
    return {
        "resected": resect.tolist(),
        "seizing_before_probability": float(before.any(axis=1).mean()),
        "seizure_free_probability": float((~after.any(axis=1)).mean()),
        "p_seizing_before": before.mean(axis=0),
        "p_seizing_after": after.mean(axis=0),
    }
