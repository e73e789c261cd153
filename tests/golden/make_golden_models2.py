"""Make the golden TVB runs of ``tests/test_models_tvb28.py`` (``tests/golden/tvb28_<Model>.npz``, and their entries
in ``compare_until.json``): the TVB 2.10 region models that ``make_golden.py`` and the shared references do not cover.

This script runs The Virtual Brain itself, so it needs TVB, which is not a dependency of vbtjax. Run it from the
repository root with a separate virtual environment outside the repository::

    python -m venv /tmp/tvbvenv
    /tmp/tvbvenv/bin/pip install tvb-library==2.10.0 tvb-data
    /tmp/tvbvenv/bin/python tests/golden/make_golden_models2.py                     # every model
    /tmp/tvbvenv/bin/python tests/golden/make_golden_models2.py CoombesByrne2D      # some models only

It is never imported by the package or by the tests. The runs follow ``make_golden.py`` (``HeunDeterministic``,
dt = 0.1 ms, speed 3 mm/ms, delays on, ``Linear`` coupling, no noise, 200 ms, an explicit seeded history clamped to
the bounds and rounded to float32, the compare window from a 1e-9 perturbation of TVB's own history) with three
changes that keep each file below 300 kB:

* a 20-region sub-network of ``connectivity_76.zip`` (regions 0-9 and their right-hemisphere homologues 38-47, the
  weights and tract lengths as stored, interhemispheric tracts included), saved in the npz;
* the coupling variables' history is piecewise constant in blocks of ``HISTORY_BLOCK`` rows (a new random value per
  block and region, so that delayed reads still differ from edge to edge), the other variables hold their t0 value;
* ``trajectory`` keeps, in float64, about ``MAX_SAMPLES`` evenly spaced steps within the compare window only (the
  test compares nothing beyond it); ``meta_json["subsample"]`` is their spacing in steps.

Models with modes (TVB's reduced sets, state ``(n_svar, N, n_modes)``) are saved in TVB's layout with a trailing mode
axis: ``initial_history`` ``(H, n_svar, N, n_modes)`` and ``trajectory`` ``(T, n_svar, N, n_modes)``.
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from make_golden import _tvb_version, numeric_parameters  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
REGIONS = np.r_[0:10, 38:48]
DT = 0.1
SPEED = 3.0
LENGTH_MS = 200.0
PERTURBATION = 1e-9
THRESHOLD = 1e-7
HISTORY_BLOCK = 32
MAX_SAMPLES = 80

# run name -> model (the TVB class, when it differs from the run name), overrides, Linear coupling a, seed,
# initial ranges overriding state_variable_range, dt (default DT)
RUNS = {
    # TVB's ranges (xi, alpha in [-4, 4]) make Heun blow up within 3 steps (the cubic term of mode 1, e_i = 3.3, is
    # stiff): halved ranges, dt = 0.05 ms (dt = 0.1 ms runs but is visibly inaccurate)
    "ReducedSetFitzHughNagumo": dict(
        overrides={},
        a=0.02,
        seed=31,
        ranges={"xi": (-2.0, 2.0), "eta": (-1.5, 1.5), "alpha": (-2.0, 2.0), "beta": (-1.5, 1.5)},
        dt=0.05,
    ),
    # the same for the Hindmarsh-Rose set (dt = 0.1 ms blows up from the halved ranges too)
    "ReducedSetHindmarshRose": dict(
        overrides={},
        a=0.01,
        seed=32,
        ranges={
            "xi": (-2.0, 2.0),
            "eta": (-12.5, 10.0),
            "tau": (1.0, 5.0),
            "alpha": (-2.0, 2.0),
            "beta": (-10.0, 10.0),
            "gamma": (1.0, 5.0),
        },
        dt=0.05,
    ),
    # the coupling acts on z only, and TVB's Ks = 0 switches it off; a faster z (c = 0.005) so that it moves
    "EpileptorCodim3": dict(overrides={"Ks": np.array([-0.5]), "c": np.array([0.005])}, a=0.02, seed=33, ranges={}),
    # the path drifts 20-fold faster than TVB's default and starts from spread angles uA, uB (TVB: 0)
    "EpileptorCodim3SlowMod": dict(
        overrides={"Ks": np.array([-0.5]), "cA": np.array([0.002]), "cB": np.array([0.0024])},
        a=0.02,
        seed=34,
        ranges={"uA": (0.0, 0.05), "uB": (0.0, 0.05), "x": (-0.2, 0.6), "y": (-0.3, 0.3)},
    ),
    "CoombesByrne2D": dict(overrides={}, a=0.01, seed=35, ranges={}),
    "GastSchmidtKnosche_SD": dict(overrides={}, a=0.01, seed=36, ranges={}),
    # bursts of r up to ~8: Heun needs dt = 0.02 ms (it diverges from TVB's ranges with 0.1 and 0.05)
    "GastSchmidtKnosche_SF": dict(overrides={}, a=0.01, seed=37, ranges={}, dt=0.02),
    "DumontGutkin": dict(overrides={}, a=0.01, seed=38, ranges={}),
    "Hopfield": dict(overrides={}, a=0.05, seed=39, ranges={}),
    # as make_golden.py's first-order run: an external drive and the inhibitory adaptation on, S_i != 1
    "ZerlautAdaptationSecondOrder": dict(
        overrides={
            "external_input_ex_ex": np.array([0.315e-3]),
            "external_input_in_ex": np.array([0.315e-3]),
            "a_i": np.array([2.0]),
            "b_i": np.array([20.0]),
            "tau_w_i": np.array([300.0]),
            "S_i": np.array([1.2]),
        },
        a=0.1,
        seed=41,
        ranges={"W_i": (0.0, 50.0)},
    ),
    # the dynamic threshold (TVB's configure() then sets cvar = [0, 1])
    "Hopfield_dynamic": dict(model="Hopfield", overrides={"dynamic": np.array([1])}, a=0.05, seed=40, ranges={}),
}


def _first_exceedance(diff, threshold, dt):
    """Whole ms before the first step whose difference exceeds ``threshold`` (``LENGTH_MS`` if none does)."""
    over = np.nonzero(diff > threshold)[0]
    return LENGTH_MS if over.size == 0 else float(np.floor(over[0] * dt))


def _tvb():
    from tvb.datatypes.connectivity import Connectivity
    from tvb.simulator import coupling, integrators, models, monitors, simulator

    return Connectivity, coupling, integrators, models, monitors, simulator


def connectivity():
    """The 20-region sub-network of connectivity_76 with speed ``SPEED``, configured."""
    Connectivity, *_ = _tvb()
    full = Connectivity.from_file("connectivity_76.zip")
    full.configure()
    sub = np.ix_(REGIONS, REGIONS)
    conn = Connectivity(
        weights=np.array(full.weights[sub]),
        tract_lengths=np.array(full.tract_lengths[sub]),
        region_labels=np.array(full.region_labels[REGIONS]),
        centres=np.array(full.centres[REGIONS]),
        speed=np.array([SPEED]),
    )
    conn.configure()
    return conn


def initial_history(model, horizon, n, n_modes, seed, ranges):
    """Seeded history ``(horizon, n_svar, n, n_modes)`` over the ranges, clamped to the bounds, float32-exact."""
    rng = np.random.default_rng(seed)
    svars = list(model.state_variables)
    cvar = [int(k) for k in model.cvar]
    hist = np.empty((horizon, len(svars), n, n_modes))
    n_blocks = -(-horizon // HISTORY_BLOCK)
    for k, name in enumerate(svars):
        lo, hi = (float(v) for v in ranges[name])
        if k in cvar:
            blocks = rng.uniform(lo, hi, (n_blocks, n, n_modes))
            hist[:, k] = np.repeat(blocks, HISTORY_BLOCK, axis=0)[-horizon:]
        else:
            hist[:, k] = rng.uniform(lo, hi, (n, n_modes))[None]
    for name, (lo, hi) in (model.state_variable_boundaries or {}).items():
        k = svars.index(name)
        hist[:, k] = np.clip(hist[:, k], lo, hi)
    return hist.astype(np.float32).astype(np.float64)


def build(name, conn, history):
    _, coupling, integrators, models, monitors, simulator = _tvb()
    run = RUNS[name]
    model = getattr(models, run.get("model", name))(**run["overrides"])
    sim = simulator.Simulator(
        model=model,
        connectivity=conn,
        coupling=coupling.Linear(a=np.array([run["a"]])),
        integrator=integrators.HeunDeterministic(dt=run.get("dt", DT)),
        monitors=(monitors.Raw(),),
        initial_conditions=history,
        simulation_length=LENGTH_MS,
    )
    try:
        sim.model.variables_of_interest = tuple(sim.model.state_variables)
    except ValueError:  # EpileptorCodim3SlowMod does not list uA, uB among its choices: observe the whole state
        sim.configure()
        sim.model.observe = lambda state: state.copy()  # TVB updates the state in place
        return sim
    sim.configure()
    return sim


def run_tvb(name, conn, history):
    sim = build(name, conn, history)
    ((time, data),) = sim.run()
    return sim, np.asarray(time), np.asarray(data)


def make(name):
    run = RUNS[name]
    _, _, _, models, _, _ = _tvb()
    conn = connectivity()
    n = len(REGIONS)
    dt = run.get("dt", DT)
    horizon = int(np.rint(np.asarray(conn.tract_lengths) / SPEED / dt).max()) + 1
    probe = getattr(models, run.get("model", name))(**run["overrides"])
    probe.configure()
    n_modes = int(probe.number_of_modes)
    ranges = {k: [float(v) for v in probe.state_variable_range[k]] for k in probe.state_variables}
    ranges.update({k: [float(v) for v in r] for k, r in run["ranges"].items()})
    hist = initial_history(probe, horizon, n, n_modes, run["seed"], ranges)

    sim, time, traj = run_tvb(name, conn, hist)
    n_steps = traj.shape[0]
    assert n_steps == int(round(LENGTH_MS / dt)), n_steps
    assert sim.connectivity.horizon == horizon
    assert np.all(np.isfinite(traj)), f"{name}: TVB's run is not finite"

    rng = np.random.default_rng(run["seed"] + 1000)
    perturbed = hist + PERTURBATION * rng.choice([-1.0, 1.0], hist.shape)
    _, _, traj_p = run_tvb(name, conn, perturbed)
    axes = tuple(range(1, traj.ndim))
    diff = np.max(np.abs(traj_p - traj), axis=axes)
    scale = max(1.0, float(np.max(np.abs(traj))))
    until = _first_exceedance(diff, THRESHOLD * scale, dt)
    until_abs = _first_exceedance(diff, THRESHOLD, dt)

    # keep about MAX_SAMPLES samples within the compare window (the test compares nothing beyond it)
    n_window = int(round(until / dt))
    sub = max(1, -(-n_window // MAX_SAMPLES))
    keep = np.arange(sub - 1, n_window, sub)
    model = sim.model
    params = {p: np.asarray(getattr(model, p)) for p in numeric_parameters(type(model))}
    cparams = {"a": np.asarray(sim.coupling.a, float), "b": np.asarray(sim.coupling.b, float)}
    bounds = {
        k: [None if abs(float(v)) >= np.finfo(float).max else float(v) for v in b]
        for k, b in (model.state_variable_boundaries or {}).items()
    }
    meta = {
        "model": run.get("model", name),
        "run": name,
        "coupling": "Linear",
        "coupling_params": {k: v.tolist() for k, v in cparams.items()},
        "model_params": {k: v.tolist() for k, v in params.items()},
        "overrides": sorted(run["overrides"]),
        "state_variables": list(model.state_variables),
        "cvar": [int(k) for k in model.cvar],
        "number_of_modes": n_modes,
        "state_variable_boundaries": bounds,
        "state_variable_range": {k: [float(v) for v in model.state_variable_range[k]] for k in model.state_variables},
        "dt": dt,
        "length_ms": LENGTH_MS,
        "speed": SPEED,
        "regions_of_connectivity_76": REGIONS.tolist(),
        "horizon": horizon,
        "n_steps": n_steps,
        "subsample": sub,
        "seed": run["seed"],
        "init_ranges": ranges,
        "history_block": HISTORY_BLOCK,
        "tvb_library_version": _tvb_version(),
        "integrator": "HeunDeterministic",
        "monitor": "Raw",
        "noise": None,
        "compare_until_ms": until,
        "compare_until_threshold": f"{THRESHOLD} x max(1, max|trajectory|) = {THRESHOLD * scale:.3g}",
        "compare_until_absolute_1e-7_ms": until_abs,
        "self_perturbation_max_diff": float(diff.max()),
        "layout": "initial_history (H, n_svar, N, n_modes), trajectory (T, n_svar, N, n_modes); "
        "initial_history[k] is the state at step k, the last row the state at t0; trajectory[m] is the state after "
        "step_index[m]+1 steps, at time_rel[m] ms after t0",
    }
    arrays = {
        "trajectory": traj[keep],
        "time_rel": (keep + 1) * dt,
        "step_index": keep,
        "initial_history": hist.astype(np.float32),
        "weights": np.asarray(conn.weights, float),
        "tract_lengths": np.asarray(conn.tract_lengths, float),
        "speed": np.asarray(SPEED),
        "dt": np.asarray(dt),
        "horizon": np.asarray(horizon),
        "cvar": np.asarray(model.cvar, np.int32),
        "state_variables": np.asarray(model.state_variables),
        "model_name": np.asarray(run.get("model", name)),
        "coupling_name": np.asarray("Linear"),
        **{f"coupling_{k}": v for k, v in cparams.items()},
        **{f"param_{k}": v for k, v in params.items()},
        "meta_json": np.asarray(json.dumps(meta)),
    }
    path = HERE / f"tvb28_{name}.npz"
    np.savez_compressed(path, **arrays)
    amp = np.max(np.abs(traj), axis=tuple(i for i in range(traj.ndim) if i != 1))
    spread = np.std(traj[-1], axis=1).reshape(traj.shape[1], -1).max(axis=1)
    print(
        f"{name}: {path.stat().st_size / 1e3:.0f} kB, compare_until {until} ms (plain 1e-7: {until_abs} ms), "
        f"max|x| per svar {np.round(amp, 4)}, std over regions at 200 ms {np.round(spread, 4)}"
    )
    return until


def main(names):
    names = names or list(RUNS)
    path = HERE / "compare_until.json"
    until = json.loads(path.read_text()) if path.exists() else {}
    for name in names:
        until[f"tvb28_{name}"] = make(name)
        path.write_text(json.dumps({k: until[k] for k in sorted(until)}, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
