"""Make ``tests/golden/monitors_tvb.npz``: TVB's own EEG, MEG and iEEG monitors on one region run, for
``tests/test_monitors_tvb.py``.

This script runs The Virtual Brain itself, which is not a dependency of vbtjax. Run it from the repository root with
a separate virtual environment outside the repository::

    python -m venv /tmp/tvbenv
    /tmp/tvbenv/bin/pip install tvb-library==2.10.0 tvb-data
    /tmp/tvbenv/bin/python tests/golden/make_monitor_golden.py

It is never imported by the package or by the tests; the tests only read the file it writes.

The run: ``Generic2dOscillator(a=4)`` (limit cycle) on ``connectivity_76.zip`` (weights as stored),
``Linear(a=0.006)`` coupling, ``HeunDeterministic`` with ``dt = 0.9765625 / 8 = 0.1220703125`` ms (so that TVB's
default monitor period, 1024 Hz, is 8 steps), no noise, 512 steps (62.5 ms, 64 samples per monitor). Both state
variables are variables of interest of the model (TVB's default for this model is ``V`` only).

The conduction speed is 3.02 mm/ms rather than 3.0 so that TVB's history length ``H = max(idelays) + 1 = 417`` is
1 more than a multiple of 8: TVB numbers the first simulated step ``H`` and ends a monitor sample at every step that
is a multiple of the period in steps, so only then do its samples average the same 8 steps after t0 as vbtjax's
(which end at steps 8, 16, ... after t0). The initial history is constant in time (one float32-representable value
per state variable and region, seeded uniform over ``state_variable_range``), so the file stores it in 152 numbers.

Monitors, all at TVB's default period (0.9765625 ms):

* ``TemporalAverage()`` of both variables (``tavg``);
* ``EEG.from_file(obsnoise=None)``: tvb-data's defaults ``eeg_brainstorm_65.txt`` and
  ``projection_eeg_65_surface_16k.npy`` with ``regionMapping_16k_76.txt``; no reference (``eeg``);
* the same with ``reference="average"`` (``eeg_average``);
* the same with TVB's default observation noise (``obsnoise`` left at its default, ``Additive``); only its first
  8 samples are kept (``eeg_obsnoise``), enough to show the noise convention;
* ``MEG.from_file(obsnoise=None, variables_of_interest=[1])``: ``meg_brainstorm_276.txt`` and
  ``projection_meg_276_surface_16k.npy``, variable ``W`` only (``meg``);
* ``iEEG`` with ``seeg_588.txt``: tvb-data ships no SEEG projection matrix (TVB's default file
  ``projection_seeg_588_surface_16k.npy`` does not exist), so it is given a region-level one, the inverse-square
  point-source gain ``1 / |contact - centre|^2`` (mm^-2) computed here with NumPy from the contacts and
  ``connectivity.centres``; variable ``V`` only. Every 3rd contact is stored (``seeg``, contacts
  ``seeg_contacts``) to keep the file below 500 kB.

Each output is stored as TVB returns it, without the trailing mode axis: ``(T, n_voi, n_sensors)``, with its times
``<name>_time`` (absolute, ms; subtract ``t0 = (H - 1) dt`` for times after t0).
"""

from __future__ import annotations

import json
import pathlib
from importlib.metadata import version

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
PERIOD = 1e3 / 1024.0  # ms, TVB's default monitor period
Q = 8  # steps per period
DT = PERIOD / Q  # 0.1220703125 ms, exact in binary
SPEED = 3.02  # mm/ms: makes H = 417 = 1 (mod 8), see the docstring
N_STEPS = 512  # 62.5 ms
MODEL_A = 4.0
COUPLING_A = 0.006
SEED = 30
SEEG_EVERY = 3
N_OBSNOISE = 8


def main():
    from tvb.datatypes import projections, region_mapping, sensors
    from tvb.datatypes.connectivity import Connectivity
    from tvb.simulator import coupling, integrators, models, monitors, simulator

    conn = Connectivity.from_file("connectivity_76.zip")
    conn.speed = np.array([SPEED])
    conn.configure()
    n = conn.number_of_regions

    model = models.Generic2dOscillator(a=np.array([MODEL_A]))
    model.variables_of_interest = ("V", "W")
    model.configure()
    rng = np.random.default_rng(SEED)
    x0 = np.stack([rng.uniform(*model.state_variable_range[k], n) for k in model.state_variables])
    x0 = x0.astype(np.float32).astype(np.float64)

    seeg_sensors = sensors.SensorsInternal.from_file("seeg_588.txt")
    contacts = np.asarray(seeg_sensors.locations, float)
    d2 = ((contacts[:, None, :] - np.asarray(conn.centres, float)[None, :, :]) ** 2).sum(-1)
    assert d2.min() > 1.0, "a contact lies within 1 mm of a region centre; vbtjax would clamp it"
    seeg_gain = 1.0 / d2

    def rmap():
        return region_mapping.RegionMapping.from_file("regionMapping_16k_76.txt")

    mons = {
        "tavg": monitors.TemporalAverage(),
        "eeg": monitors.EEG.from_file(obsnoise=None),
        "eeg_average": monitors.EEG.from_file(obsnoise=None, reference="average"),
        "eeg_obsnoise": monitors.EEG.from_file(),
        "meg": monitors.MEG.from_file(obsnoise=None, variables_of_interest=np.array([1])),
        "seeg": monitors.iEEG(
            sensors=seeg_sensors,
            projection=projections.ProjectionSurfaceSEEG(projection_data=seeg_gain),
            region_mapping=rmap(),
            obsnoise=None,
            variables_of_interest=np.array([0]),
        ),
    }
    sim = simulator.Simulator(
        model=model,
        connectivity=conn,
        coupling=coupling.Linear(a=np.array([COUPLING_A])),
        integrator=integrators.HeunDeterministic(dt=DT),
        monitors=tuple(mons.values()),
        simulation_length=N_STEPS * DT,
    )
    horizon = int(np.rint(np.asarray(conn.tract_lengths) / SPEED / DT).max()) + 1
    assert (horizon - 1) % Q == 0, horizon
    history = np.broadcast_to(x0, (horizon,) + x0.shape)[..., None].copy()
    sim.initial_conditions = history
    sim.configure()
    assert sim.connectivity.horizon == horizon, (sim.connectivity.horizon, horizon)
    assert sim.monitors[1]._period_in_steps == Q

    outputs = sim.run()
    arrays = {}
    t0 = (horizon - 1) * DT
    for (name, _), (time, data) in zip(mons.items(), outputs, strict=True):
        time, data = np.asarray(time, float), np.asarray(data, float)[..., 0]
        assert data.shape[0] == N_STEPS // Q and np.all(np.isfinite(data)), (name, data.shape)
        if name == "seeg":
            data = data[:, :, ::SEEG_EVERY]
        if name == "eeg_obsnoise":
            data, time = data[:N_OBSNOISE], time[:N_OBSNOISE]
        arrays[name] = data
        arrays[f"{name}_time"] = time
    arrays["seeg_contacts"] = np.arange(0, contacts.shape[0], SEEG_EVERY)
    obsnoise = mons["eeg_obsnoise"].obsnoise
    meta = {
        "tvb_library_version": version("tvb-library"),
        "tvb_data_version": version("tvb-data"),
        "model": "Generic2dOscillator",
        "model_params": {"a": MODEL_A},
        "variables_of_interest": ["V", "W"],
        "coupling": {"Linear": {"a": COUPLING_A, "b": 0.0}},
        "integrator": "HeunDeterministic",
        "connectivity": "connectivity_76.zip",
        "eeg_files": ["eeg_brainstorm_65.txt", "projection_eeg_65_surface_16k.npy", "regionMapping_16k_76.txt"],
        "meg_files": ["meg_brainstorm_276.txt", "projection_meg_276_surface_16k.npy", "regionMapping_16k_76.txt"],
        "seeg_files": ["seeg_588.txt", "region gain 1/|contact - centre|^2 (mm^-2), made here"],
        "obsnoise_default": {
            "class": type(obsnoise).__name__,
            "nsig": np.asarray(obsnoise.nsig).tolist(),
            "ntau": float(obsnoise.ntau),
            "noise_seed": int(obsnoise.noise_seed),
        },
        "t0_ms": t0,
        "history": "constant in time: every one of the H rows is x0",
    }
    arrays.update(
        x0=x0,
        dt=np.asarray(DT),
        period=np.asarray(PERIOD),
        speed=np.asarray(SPEED),
        horizon=np.asarray(horizon),
        n_steps=np.asarray(N_STEPS),
        meta_json=np.asarray(json.dumps(meta)),
    )
    path = HERE / "monitors_tvb.npz"
    np.savez_compressed(path, **arrays)
    print(f"{path}: {path.stat().st_size / 1e3:.0f} kB, H = {horizon}, t0 = {t0} ms")
    for name in mons:
        print(f"  {name}: {arrays[name].shape}, max |y| = {np.abs(arrays[name]).max():.4g}")


if __name__ == "__main__":
    main()
