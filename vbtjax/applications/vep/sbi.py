"""The Virtual Epileptic Patient as a simulation-based inference problem (:func:`vep_problem`), for
:func:`vbtjax.sbi.simulate_budget` and :func:`vbtjax.sbi.train_npe`.

The network, priors and constraints of :func:`vbtjax.vep.vep_posterior`; the features are the SEEG log-power
envelope minus its mean, with fixed observation noise (see :mod:`vbtjax.sbi.problems`). Also available as
``vbtjax.sbi.vep_problem``; :func:`vbtjax.sbi.problems.problem_from_spec` rebuilds it from its spec.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ...data.recordings import SEEGRecording
from ...sbi.problems import Problem, register_problem
from .network import simulate_power, vep_network
from .observation import log_power_envelope, seeg_log_power
from .patients import DETECTABLE, detectability

__all__ = ["vep_problem", "vep_from_spec"]


def vep_problem(
    connectome: Any,
    gain: Any,
    *,
    contacts: Sequence[str] | None = None,
    duration: float = 50.0,
    period: float = 2.0,
    dt: float = 0.1,
    noise_sd: float = 0.2,
    x0_prior: tuple[float, float] = (-2.5, 0.5),
    K_prior_scale: float = 0.5,
    spec: Mapping[str, Any] | None = None,
) -> Problem:
    """The VEP as an SBI problem (see the module docstring).

    **Arguments:** `connectome` (with centres), `gain` ``(contacts, N)`` (:func:`vbtjax.sensors.seeg_gain_point_source`
    of the implanted contacts), `contacts`: their names (an observation's ``ch_names`` are matched to them),
    `duration`, `period`, `dt` (ms) as for :func:`vbtjax.vep.vep_posterior`, `noise_sd` (fixed observation noise of
    the log power), the priors. `spec`: how the connectome and the contacts were obtained (stored, see
    :func:`problem_from_spec`)."""
    import numpyro.distributions as dist

    from ...inference.params import Affine, Parameter, Positive, Selection
    from ...inference.posterior import Posterior

    gain = np.asarray(gain, dtype=float)
    n = connectome.n_regions
    if gain.ndim != 2 or gain.shape[1] != n:
        raise ValueError(f"vep_problem: gain must be (contacts, {n}), got {gain.shape}.")
    contacts = [f"contact {k}" for k in range(gain.shape[0])] if contacts is None else [str(c) for c in contacts]
    if len(contacts) != gain.shape[0]:
        raise ValueError(f"vep_problem: {len(contacts)} contact names for a gain of {gain.shape[0]} contacts.")
    if not (noise_sd > 0 and math.isfinite(noise_sd)):
        raise ValueError(f"vep_problem: noise_sd must be a positive number, got {noise_sd}.")
    n_win = int(round(duration / period))
    if abs(n_win * period - duration) > 1e-9 * duration or abs(period / dt - round(period / dt)) > 1e-9:
        raise ValueError("vep_problem: duration must be a whole number of periods, and period of dt.")
    loc, scale = (float(v) for v in x0_prior)
    net = vep_network(connectome, x0=loc, K=K_prior_scale)
    net = jax.tree.map(lambda x: x.astype(jnp.float32) if isinstance(x, jax.Array) and x.dtype.kind == "f" else x, net)
    sel = Selection(
        [
            Parameter(lambda m: m.model.x0, Affine(loc, scale), name="x0"),
            Parameter(lambda m: m.coupling.a, Positive(), name="K"),
        ]
    )
    prior = Posterior(net, sel, {"x0": dist.Normal(loc, scale), "K": dist.HalfNormal(K_prior_scale)}, None)
    g = jnp.asarray(gain, jnp.float32)
    sd = float(noise_sd)

    def run(m, key):
        y = seeg_log_power(simulate_power(m, duration, dt, period), g)
        y = y + sd * jax.random.normal(key, y.shape, y.dtype)
        return (y - jnp.mean(y)).reshape(-1)

    names = tuple(f"{c}@{w}" for w in range(n_win) for c in contacts)

    def observe(obs) -> np.ndarray:
        rec = obs
        if isinstance(obs, str | Path):
            rec = SEEGRecording.load(obs)
        if not isinstance(rec, SEEGRecording):
            raise TypeError("vep problem: the observation must be an SEEG recording (.npz with data, sfreq, ch_names).")
        missing = [c for c in contacts if c not in rec.ch_names]
        if missing:
            raise ValueError(
                f"the recording lacks the contacts {missing[:5]}{' ...' if len(missing) > 5 else ''} that the budget "
                f"was simulated for ({len(contacts)} contacts); build a budget for this implantation"
            )
        idx = [rec.ch_names.index(c) for c in contacts]
        env = log_power_envelope(np.asarray(rec.data)[idx], rec.sfreq, n_win)
        return (env - env.mean()).reshape(-1)

    full_spec = {
        "duration": duration,
        "period": period,
        "dt": dt,
        "noise_sd": sd,
        "x0_prior": [loc, scale],
        "K_prior_scale": K_prior_scale,
        "contacts": contacts,
    }
    full_spec.update(dict(spec or {}))
    labels = tuple(connectome.labels) if connectome.labels is not None else tuple(f"region {i}" for i in range(n))
    return Problem(
        "vep",
        full_spec,
        prior,
        run,
        float(dt),
        names,
        observe,
        labels=labels,
        gain=gain,
        batch_size=256,
        extra={"connectome": connectome, "n_windows": n_win, "observed": detectability(gain) > DETECTABLE},
    )


def vep_from_spec(conn: Any, spec: dict) -> Problem:
    """The VEP problem of `spec` on the connectome `conn` (:func:`vbtjax.sbi.problems.problem_from_spec`): the
    contacts' positions from ``spec["sensors"]`` (a path, or ``None``: tvb-data's seeg_588), their names
    ``spec["contacts"]``, and the settings of :func:`vep_problem`."""
    from ...data.sensors import Sensors, seeg_gain_point_source, tvb_sensors

    sensors = tvb_sensors("seeg") if spec.get("sensors") is None else Sensors.from_file(spec["sensors"])
    labels = list(sensors.labels)
    contacts = spec["contacts"]
    missing = [c for c in contacts if c not in labels]
    if missing:
        raise ValueError(f"problem_from_spec: contacts {missing[:5]} are not in the sensors {spec.get('sensors')}.")
    idx = [labels.index(c) for c in contacts]
    gain = seeg_gain_point_source(np.asarray(sensors.positions)[idx], conn.centres)
    keys = ("duration", "period", "dt", "noise_sd", "K_prior_scale")
    kw = {k: spec[k] for k in keys if k in spec}
    if "x0_prior" in spec:
        kw["x0_prior"] = tuple(spec["x0_prior"])
    return vep_problem(conn, gain, contacts=contacts, spec=spec, **kw)


register_problem("vep", vep_problem, vep_from_spec)
