"""Make the golden TVB runs of ``tests/test_models_issue3.py`` (``tests/golden/<Model>.npz``, ``compare_until.json``).

This script runs The Virtual Brain itself, so it needs TVB, which is not a dependency of vbtjax. Run it from the
repository root with a separate virtual environment outside the repository::

    python -m venv /tmp/tvbenv
    /tmp/tvbenv/bin/pip install tvb-library==2.10.0 tvb-data
    /tmp/tvbenv/bin/python tests/golden/make_golden.py            # every model
    /tmp/tvbenv/bin/python tests/golden/make_golden.py Linear      # some models only (compare_until.json is merged)

It is never imported by the package or by the tests (its name does not start with ``test_``); the tests only read
the files it writes.

Every run follows the shared TVB references (``../shared/reference/README.md`` and ``CONVENTIONS.md`` section 0):
``connectivity_76.zip`` with its weights as stored, ``connectivity.speed = 3.0`` mm/ms, ``HeunDeterministic`` with
dt = 0.1 ms, a ``Raw`` monitor of every state variable, no noise, no stimulus, ``Linear`` coupling, 200 ms, and an
explicit seeded initial history of exactly ``horizon`` rows drawn uniformly over each state variable's range and
clamped to the model's bounds. Two deviations keep the files small (each below about 1.5 MB):

* the history values are rounded to float32 before TVB sees them, and saved as float32 (exactly the values TVB used;
  TVB keeps its delay buffer in float32 anyway). Load them with ``numpy.asarray(..., float)``;
* only the coupling variables get a new random value at every history row. The other state variables hold their
  t0 value (the last row) on every row: TVB reads them at t0 only, so this changes nothing in the run but lets the
  npz compress.

``trajectory`` keeps every 10th step: ``trajectory[m]`` is the state after ``step_index[m] + 1`` steps, at
``time_rel[m]`` ms after t0. ``compare_until.json[model]`` is the time (whole ms, at most 200) up to which a random
+-1e-9 perturbation of TVB's own initial history changes TVB's trajectory by less than 1e-7 (README of the shared
references): beyond it an implementation that differs from TVB only by rounding may legitimately diverge. One change:
the threshold is 1e-7 x max(1, max|trajectory|), not 1e-7, because ZerlautAdaptationFirstOrder's adaptation ``W_e``
reaches ~2000 pA, where rounding alone moves it by more than 1e-7 (the test's tolerance is relative to
max|trajectory| too). ``meta_json`` also records the time for the plain 1e-7 threshold.

The models run with TVB's defaults except the overrides in ``RUNS`` (chosen so that the network does something
non-trivial within 200 ms); every parameter is saved as ``param_<name>``.
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
N_REGIONS = 76
DT = 0.1
SPEED = 3.0
LENGTH_MS = 200.0
SUBSAMPLE = 10
PERTURBATION = 1e-9
THRESHOLD = 1e-7


def _per_region(seed, values, n=N_REGIONS):
    """A reproducible per-region array: ``values[k]`` at a seeded random ``k`` for each region."""
    rng = np.random.default_rng(seed)
    return np.asarray(values, float)[rng.integers(0, len(values), n)]


# model name -> (model overrides, Linear coupling a, seed, initial ranges overriding state_variable_range)
RUNS = {
    # three epileptogenic levels: x0 = -1.6 seizes, -2.0 is near threshold, -2.4 healthy; a fast r so that z moves
    # within 200 ms, and the permittivity coupling on
    "Epileptor2D": (
        {"x0": _per_region(21, [-2.4, -2.4, -2.0, -1.6]), "r": np.array([0.01]), "Ks": np.array([-0.2])},
        0.01,
        21,
        {},
    ),
    # all three coupling routes on (fast, spike-wave and the resting-state oscillator), half of the regions seizing
    "EpileptorRestingState": (
        {"Ks": np.array([-0.2]), "Kf": np.array([0.1]), "Kvf": np.array([0.1]), "x0": _per_region(22, [-2.2, -1.6])},
        0.01,
        22,
        {},
    ),
    # an external drive of 0.315 Hz (as in TVB's tutorials) and the inhibitory adaptation switched on (TVB's defaults
    # keep W_i at 0; its history is drawn in [0, 50] pA instead of TVB's [0, 0]). ou_drift keeps TVB's range [0, 0]:
    # a 1e-9 perturbation of a drift of ~1e-4 is a 1e-5 relative change of the drive, which spoils compare_until
    "ZerlautAdaptationFirstOrder": (
        {
            "external_input_ex_ex": np.array([0.315e-3]),
            "external_input_in_ex": np.array([0.315e-3]),
            "a_i": np.array([2.0]),
            "b_i": np.array([20.0]),
            "tau_w_i": np.array([300.0]),
        },
        0.1,
        23,
        {"W_i": (0.0, 50.0)},
    ),
    # TVB's eta = 20 makes the isolated node spike so sharply that Heun with dt = 0.1 blows up from a third of the
    # initial states in TVB's range; eta = 5 gives a smooth limit cycle, started near it (r in [0, 2], V in [-2, 2])
    "CoombesByrne": ({"eta": np.array([5.0])}, 0.01, 24, {"r": (0.0, 2.0), "V": (-2.0, 2.0)}),
    "ZetterbergJansen": ({}, 0.01, 25, {}),
    "DecoBalancedExcInh": ({"M_i": _per_region(26, [0.9, 1.0, 1.1, 1.2])}, 0.01, 26, {}),
    # a slower leak than TVB's default gamma = -10 /ms, so that the delayed network input shapes the trajectory
    "Linear": ({"gamma": np.array([-1.0])}, 0.02, 27, {}),
}


def _tvb():
    import tvb
    from tvb.datatypes.connectivity import Connectivity
    from tvb.simulator import coupling, integrators, models, monitors, simulator

    return tvb, Connectivity, coupling, integrators, models, monitors, simulator


def _tvb_version():
    from importlib.metadata import version

    return version("tvb-library")


def numeric_parameters(model_cls):
    """TVB's numeric parameters (NArray traits that are not bool), in TVB's declaration order."""
    from tvb.basic.neotraits.api import NArray

    out = []
    for name in model_cls.declarative_attrs:
        attr = getattr(model_cls, name)
        if isinstance(attr, NArray) and attr.dtype != np.dtype(bool):
            out.append(name)
    return out


def connectivity():
    _, Connectivity, *_ = _tvb()
    conn = Connectivity.from_file("connectivity_76.zip")
    conn.speed = np.array([SPEED])
    conn.configure()
    return conn


def initial_history(model, horizon, seed, ranges):
    """Seeded uniform history (horizon, n_svar, N) over the ranges, clamped to the bounds, float32-representable."""
    rng = np.random.default_rng(seed)
    svars = list(model.state_variables)
    n_svar = len(svars)
    cvar = [int(k) for k in model.cvar]
    hist = np.empty((horizon, n_svar, N_REGIONS))
    for k, name in enumerate(svars):
        lo, hi = (float(v) for v in ranges[name])
        if k in cvar:
            hist[:, k] = rng.uniform(lo, hi, (horizon, N_REGIONS))
        else:
            hist[:, k] = rng.uniform(lo, hi, N_REGIONS)[None, :]
    bounds = model.state_variable_boundaries or {}
    for name, (lo, hi) in bounds.items():
        k = svars.index(name)
        hist[:, k] = np.clip(hist[:, k], lo, hi)
    return hist.astype(np.float32).astype(np.float64)


def _first_exceedance(diff, threshold):
    """Whole ms before the first step whose difference exceeds ``threshold`` (``LENGTH_MS`` if none does)."""
    over = np.nonzero(diff > threshold)[0]
    return LENGTH_MS if over.size == 0 else float(np.floor(over[0] * DT))  # over[0] steps stayed below


def build(name, conn, history):
    _, _, coupling, integrators, models, monitors, simulator = _tvb()
    overrides, a, _, _ = RUNS[name]
    model = getattr(models, name)(**overrides)
    sim = simulator.Simulator(
        model=model,
        connectivity=conn,
        coupling=coupling.Linear(a=np.array([a])),
        integrator=integrators.HeunDeterministic(dt=DT),
        monitors=(monitors.Raw(),),
        initial_conditions=history[..., None],
        simulation_length=LENGTH_MS,
    )
    sim.model.variables_of_interest = tuple(sim.model.state_variables)
    sim.configure()
    return sim


def run_tvb(name, conn, history):
    sim = build(name, conn, history)
    ((time, data),) = sim.run()
    return sim, np.asarray(time), np.asarray(data)[:, :, :, 0]


def make(name):
    overrides, a, seed, range_overrides = RUNS[name]
    _, _, _, _, models, _, _ = _tvb()
    conn = connectivity()
    horizon = int(np.rint(np.asarray(conn.tract_lengths) / SPEED / DT).max()) + 1  # TVB's rint, section 1
    probe = getattr(models, name)(**overrides)
    probe.configure()
    ranges = {k: [float(v) for v in probe.state_variable_range[k]] for k in probe.state_variables}
    ranges.update({k: [float(v) for v in r] for k, r in range_overrides.items()})
    hist = initial_history(probe, horizon, seed, ranges)

    sim, time, traj = run_tvb(name, conn, hist)
    n_steps = traj.shape[0]
    assert n_steps == int(round(LENGTH_MS / DT)), n_steps
    assert sim.connectivity.horizon == horizon
    assert np.all(np.isfinite(traj)), f"{name}: TVB's run is not finite"

    # compare_until: the same run from TVB's own history perturbed by 1e-9
    rng = np.random.default_rng(seed + 1000)
    perturbed = hist + PERTURBATION * rng.choice([-1.0, 1.0], hist.shape)
    _, _, traj_p = run_tvb(name, conn, perturbed)
    diff = np.max(np.abs(traj_p - traj), axis=(1, 2))
    scale = max(1.0, float(np.max(np.abs(traj))))
    until = _first_exceedance(diff, THRESHOLD * scale)
    until_abs = _first_exceedance(diff, THRESHOLD)

    keep = np.arange(SUBSAMPLE - 1, n_steps, SUBSAMPLE)
    model = sim.model
    params = {p: np.asarray(getattr(model, p)) for p in numeric_parameters(type(model))}
    cparams = {"a": np.asarray(sim.coupling.a, float), "b": np.asarray(sim.coupling.b, float)}
    bounds = {
        k: [None if abs(float(v)) >= np.finfo(float).max else float(v) for v in b]
        for k, b in (model.state_variable_boundaries or {}).items()
    }
    meta = {
        "model": name,
        "coupling": "Linear",
        "coupling_params": {k: v.tolist() for k, v in cparams.items()},
        "model_params": {k: v.tolist() for k, v in params.items()},
        "overrides": sorted(overrides),
        "state_variables": list(model.state_variables),
        "cvar": [int(k) for k in model.cvar],
        "state_variable_boundaries": bounds,
        "state_variable_range": {k: [float(v) for v in model.state_variable_range[k]] for k in model.state_variables},
        "dt": DT,
        "length_ms": LENGTH_MS,
        "speed": SPEED,
        "horizon": horizon,
        "n_steps": n_steps,
        "first_step": horizon,
        "seed": seed,
        "init_ranges": ranges,
        "history_note": "float32-representable values saved as float32; non-coupling variables constant over rows",
        "tvb_library_version": _tvb_version(),
        "connectivity": "connectivity_76.zip",
        "integrator": "HeunDeterministic",
        "monitor": "Raw",
        "noise": None,
        "compare_until_ms": until,
        "compare_until_threshold": f"{THRESHOLD} x max(1, max|trajectory|) = {THRESHOLD * scale:.3g}",
        "compare_until_absolute_1e-7_ms": until_abs,
        "self_perturbation_max_diff": float(diff.max()),
        "history_layout": "initial_history[k] is the state at step k; the last entry (k=horizon-1) is the state at "
        "t0; trajectory[m] is the state after step_index[m]+1 steps, at time_rel[m] ms after t0",
    }
    arrays = {
        "trajectory": traj[keep],
        "time": time[keep],
        "time_rel": (keep + 1) * DT,
        "step_index": keep,
        "initial_history": hist.astype(np.float32),
        "weights": np.asarray(conn.weights, float),
        "tract_lengths": np.asarray(conn.tract_lengths, float),
        "delays": np.asarray(sim.connectivity.delays, float),
        "idelays": np.asarray(sim.connectivity.idelays, np.int32),
        "speed": np.asarray(SPEED),
        "dt": np.asarray(DT),
        "horizon": np.asarray(horizon),
        "cvar": np.asarray(model.cvar, np.int32),
        "state_variables": np.asarray(model.state_variables),
        "model_name": np.asarray(name),
        "coupling_name": np.asarray("Linear"),
        **{f"coupling_{k}": v for k, v in cparams.items()},
        **{f"param_{k}": v for k, v in params.items()},
        "meta_json": np.asarray(json.dumps(meta)),
    }
    path = HERE / f"{name}.npz"
    np.savez_compressed(path, **arrays)
    amp = np.max(np.abs(traj), axis=(0, 2))
    spread = np.std(traj[-1], axis=1)
    marks_ms = (1, 5, 10, 20, 50, 100, 200)
    marks = [int(t / DT) - 1 for t in marks_ms]
    marked = np.array2string(diff[marks], precision=1)
    print(f"{name}: until {until} ms (plain 1e-7: {until_abs} ms); self-perturbation diff at {marks_ms} ms: {marked}")
    print(
        f"{name}: {path.stat().st_size / 1e6:.2f} MB, compare_until {until} ms, max|x| per svar {np.round(amp, 4)}, "
        f"std over regions at 200 ms {np.round(spread, 4)}"
    )
    return until


def main(names):
    names = names or list(RUNS)
    path = HERE / "compare_until.json"
    until = json.loads(path.read_text()) if path.exists() else {}
    for name in names:
        until[name] = make(name)
    path.write_text(json.dumps({k: until[k] for k in sorted(until)}, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
