"""Make the golden run of TVB's HRF-kernel ``Bold`` monitor for ``tests/test_bold.py``: ``tests/golden/Bold_G2D.npz``.

This script runs The Virtual Brain itself, so it needs TVB, which is not a dependency of vbtjax. Run it from the
repository root with a separate virtual environment outside the repository::

    python -m venv /tmp/tvbenv
    /tmp/tvbenv/bin/pip install tvb-library==2.10.0 tvb-data
    /tmp/tvbenv/bin/python tests/golden/make_bold_golden.py

It is never imported by the package or by the tests (its name does not start with ``test_``); the tests only read
the file it writes.

The run: ``connectivity_76.zip`` with its weights as stored, ``speed = 3.0`` mm/ms, ``Generic2dOscillator`` with TVB's
defaults, ``Linear(a=0.01)`` coupling, ``HeunStochastic`` with dt = 0.5 ms (so that 24 s of simulated time stay
quick) and seeded additive noise ``nsig = 5e-3`` (without it the network settles on a fixed point and the BOLD
signal would be constant; the noise is only there to make the monitor's input rich: the test reads TVB's trajectory
and never simulates it), a seeded initial history of exactly ``horizon`` rows (uniform over the state-variable
ranges). One simulation feeds a ``Raw`` monitor and several ``Bold`` monitors (observed variable ``V``, the model's
default):

* ``fov2000``: TVB's defaults (``FirstOrderVolterra`` kernel, period 2000 ms, hrf_length 20000 ms);
* ``fov500``: ``FirstOrderVolterra``, period 500 ms, hrf_length 2000 ms;
* ``odd``: ``FirstOrderVolterra``, period 1002 ms (not a multiple of the 4 ms interim period), hrf_length 2999 ms;
* ``gamma``, ``dexp``, ``mog``: the ``Gamma``, ``DoubleExponential`` and ``MixtureOfGammas`` kernels with TVB's
  default parameters, period 1000 ms, hrf_length 8000 ms.

The Bold monitors work region by region, so only the regions ``REGIONS`` are saved (the whole 76-region network is
simulated) to keep the file small. Saved arrays (float64 unless said):

* ``raw`` ``(n_steps, len(REGIONS))``: ``V`` after every step; ``raw_time`` the times TVB stamped them with (ms,
  ``step * dt`` with TVB's absolute step count);
* ``first_step``: TVB's absolute step number of ``raw[0]`` (the run starts after ``horizon - 1`` history steps, so
  TVB's monitors sample on absolute step counts that include the history; the test prepends ``first_step - 1`` rows
  of zeros, the values TVB's interim and kernel buffers hold before they are written, and feeds vbtjax's monitor
  from absolute step 1);
* ``<name>_time``, ``<name>_bold`` ``(n_samples, len(REGIONS))``: the Bold monitor's output;
* ``<name>_hrf``: TVB's sampled kernel as it stores it (``hemodynamic_response_function[0]``, time reversed);
* ``<name>_period``, ``<name>_hrf_length``; ``dt``; ``tvb_version``.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
DT = 0.5
SPEED = 3.0
LENGTH_MS = 24000.0
COUPLING_A = 0.01
SEED = 7
NSIG = 5e-3
REGIONS = [0, 17, 40, 63]

MONITORS = {
    "fov2000": ("FirstOrderVolterra", 2000.0, 20000.0),
    "fov500": ("FirstOrderVolterra", 500.0, 2000.0),
    "odd": ("FirstOrderVolterra", 1002.0, 2999.0),
    "gamma": ("Gamma", 1000.0, 8000.0),
    "dexp": ("DoubleExponential", 1000.0, 8000.0),
    "mog": ("MixtureOfGammas", 1000.0, 8000.0),
}


def main() -> None:
    from importlib.metadata import version

    from tvb.datatypes import connectivity, equations
    from tvb.simulator import coupling, integrators, models, monitors, noise, simulator

    conn = connectivity.Connectivity.from_file()  # connectivity_76.zip
    conn.speed = np.array([SPEED])
    conn.configure()
    model = models.Generic2dOscillator()
    mons = [monitors.Raw()]
    for kernel, period, hrf_length in MONITORS.values():
        mons.append(monitors.Bold(period=period, hrf_length=hrf_length, hrf_kernel=getattr(equations, kernel)()))
    sim = simulator.Simulator(
        connectivity=conn,
        model=model,
        coupling=coupling.Linear(a=np.array([COUPLING_A])),
        integrator=integrators.HeunStochastic(dt=DT, noise=noise.Additive(nsig=np.array([NSIG]), noise_seed=SEED)),
        monitors=mons,
        simulation_length=LENGTH_MS,
    )
    horizon = int(np.rint(conn.tract_lengths / SPEED / DT).astype(int).max()) + 1  # TVB's horizon
    rng = np.random.default_rng(SEED)
    n_svar = len(model.state_variables)
    hist = np.empty((horizon, n_svar, conn.number_of_regions, 1))
    for k, name in enumerate(model.state_variables):
        lo, hi = model.state_variable_range[name]
        hist[:, k] = rng.uniform(lo, hi, (horizon, conn.number_of_regions, 1))
    sim.initial_conditions = hist
    sim.configure()
    outputs = sim.run()
    assert sim.connectivity.horizon == horizon, (sim.connectivity.horizon, horizon)

    raw_t, raw_y = outputs[0]
    out = {
        "raw": raw_y[:, 0, REGIONS, 0],
        "raw_time": raw_t,
        "first_step": np.int64(round(raw_t[0] / DT)),
        "dt": np.float64(DT),
        "regions": np.asarray(REGIONS),
        "tvb_version": np.asarray(version("tvb-library")),
    }
    for (name, (_, period, hrf_length)), mon, (t, y) in zip(MONITORS.items(), mons[1:], outputs[1:], strict=True):
        out[f"{name}_time"] = t
        out[f"{name}_bold"] = y[:, 0, REGIONS, 0]
        out[f"{name}_hrf"] = np.asarray(mon.hemodynamic_response_function[0])
        out[f"{name}_period"] = np.float64(period)
        out[f"{name}_hrf_length"] = np.float64(hrf_length)
    path = HERE / "Bold_G2D.npz"
    np.savez_compressed(path, **out)
    summary = {k: (v.shape if np.ndim(v) else v.item()) for k, v in out.items()}
    print(json.dumps({k: str(v) for k, v in summary.items()}, indent=1))
    print(f"wrote {path} ({path.stat().st_size / 2**20:.2f} MB)")


if __name__ == "__main__":
    main()
