"""vbtjax's EEG, MEG and SEEG monitors against TVB's own ``EEG``, ``MEG`` and ``iEEG`` monitors.

The golden file ``golden/monitors_tvb.npz`` is one TVB 2.10 region run (``golden/make_monitor_golden.py`` says how
it was made): Generic2dOscillator(a=4) on ``connectivity_76``, Linear(a=0.006), Heun, dt = 0.1220703125 ms, 512 steps,
every monitor at TVB's default period 0.9765625 ms (8 steps). Here the same run is simulated in vbtjax (float64) and
every sensor output compared.

How TVB's conventions map onto vbtjax (each is checked below):

- **Gain.** TVB reduces tvb-data's vertex projection (sensors x 16384) to regions by summing the columns of each
  region's vertices (``regionMapping_16k_76``) and zeroes NaN entries: ``EEG.from_tvb()`` / ``MEG.from_tvb()``
  (``reduce="sum"``). The zeroed rows (EEG: IO1, IO2; MEG: 28 non-brain channels) give exactly 0 in both.
  tvb-data has no SEEG projection, so the golden gives TVB's ``iEEG`` the inverse-square region gain made with NumPy;
  vbtjax builds it with ``SEEG.from_contacts(contacts, centres)``.
- **Sample k** is the gain times the mean of the states after steps ``k q + 1 .. (k + 1) q`` (``q = period / dt``),
  stamped ``(k + 1/2) q dt`` after t0 in both. TVB counts steps from its history length ``H`` (the first simulated
  step is ``H``) and ends a sample at steps that are multiples of ``q``, so its samples line up with vbtjax's only when
  ``H = 1 (mod q)``; the golden run picks its speed (3.02 mm/ms, ``H = 417``) for that. With another ``H``, TVB's first
  sample sums fewer than ``q`` states but still divides by ``q``, and every later window is shifted by
  ``(H - 1) mod q`` steps: vbtjax has no such phase. TVB's absolute times are vbtjax's ``ts + (H - 1) dt``.
- **Variables.** TVB's monitor ``variables_of_interest`` index the model's ``variables_of_interest`` (Generic2d's
  default: ``V`` only; the golden sets ``("V", "W")``); vbtjax's name state variables and default to all of them.
  TVB ``MEG(variables_of_interest=[1])`` = vbtjax ``MEG(variables_of_interest=("W",))``.
- **EEG reference.** TVB's default ``reference=None`` is reference-free, as vbtjax is. TVB's ``reference="average"``
  subtracts the mean over all 65 rows, the two zero-gain EOG rows included: ``y - y.mean(-1, keepdims=True)`` of
  vbtjax's 65-channel output (not of the 63 channels of ``from_tvb(usable_only=True)``).
- **Observation noise.** TVB's default ``obsnoise`` (``Additive``, white, its own ``RandomState(42)``) adds
  ``sqrt(dt) * normal(size=(n_sensors, n_voi)).T`` to every sample (``dt`` the integration step; its ``nsig`` is not
  used). vbtjax's monitors are noiseless: compare with TVB's ``obsnoise=None``.

Tolerance: ``1e-6`` of the largest ``|y|`` per channel type and variable. TVB keeps its delay buffer in float32
(relative rounding 2^-24 = 6e-8 on every delayed state), the only difference between the two runs; measured
4.6e-10 (SEEG) to 6e-9 (``W`` in the temporal average). A window one step late or early misses by 7e-3 to 8e-3 and
the per-region mean gain instead of the sum by 1.0 (the negative controls below): the tolerance is 170x the measured
error and 7000x below the nearest wrong convention.
"""

import json
import pathlib

import numpy as np
import pytest
from conftest import require

import vbtjax as vbt
from vbtjax import sensors as vs

GOLDEN = pathlib.Path(__file__).resolve().parent / "golden" / "monitors_tvb.npz"
TOL = 1e-6
M = vbt.monitors


@pytest.fixture(scope="module")
def golden():
    with np.load(require(GOLDEN, "run tests/golden/make_monitor_golden.py in a venv with tvb-library")) as z:
        return {k: z[k] for k in z.files}


def _monitors(d):
    conn = vbt.datasets.tvb_connectome(76)
    contacts = np.asarray(vs.tvb_sensors("seeg").positions)  # seeg_588, tvb-data's default SEEG sensors
    period = float(d["period"])
    assert period == M.projection.TVB_PROJECTION_PERIOD  # TVB's default period is vbtjax's
    return conn, {
        "tavg": M.TemporalAverage(period=period),
        "eeg": M.EEG.from_tvb(),
        "meg": M.MEG.from_tvb(variables_of_interest=("W",)),
        "seeg": M.SEEG.from_contacts(contacts, conn.centres, variables_of_interest=("V",)),
        "raw": M.Raw(),
    }


@pytest.fixture(scope="module")
def run(golden):
    d = golden
    conn, mons = _monitors(d)
    net = vbt.Network(
        model=vbt.models.Generic2dOscillator(a=4.0),
        connectome=conn,
        coupling=vbt.coupling.Linear(a=0.006),
        speed=float(d["speed"]),
    )
    dt, H = float(d["dt"]), int(d["horizon"])
    history = np.broadcast_to(d["x0"], (H, *d["x0"].shape))  # TVB's history: x0 on every row
    sol = vbt.simulate(net, t1=int(d["n_steps"]) * dt, dt=dt, history=history, solver=vbt.Heun(), monitors=mons)
    return mons, sol


def _rel_err(got, ref):
    """Largest error per variable over the largest |ref| of that variable, ``(n_voi,)``."""
    return np.max(np.abs(got - ref), axis=(0, 2)) / np.max(np.abs(ref), axis=(0, 2))


def test_golden_is_what_the_docstring_says(golden):
    meta = json.loads(str(golden["meta_json"]))
    assert meta["tvb_library_version"] == "2.10.0" and meta["obsnoise_default"]["noise_seed"] == 42
    dt, q, H = float(golden["dt"]), 8, int(golden["horizon"])
    assert dt * q == float(golden["period"]) and (H - 1) % q == 0
    assert golden["eeg"].shape == (64, 2, 65) and golden["meg"].shape == (64, 1, 276)
    assert golden["seeg"].shape == (64, 1, golden["seeg_contacts"].size)


@pytest.mark.parametrize("name", ["tavg", "eeg", "meg", "seeg"])
def test_sensor_outputs_equal_tvb(golden, run, name):
    _, sol = run
    got, ref = np.asarray(sol.ys[name]), golden[name]
    if name == "seeg":
        got = got[:, :, golden["seeg_contacts"]]
    assert got.shape == ref.shape
    err = _rel_err(got, ref)
    assert np.all(err <= TOL), f"{name}: relative error per variable {err}"
    t0 = (int(golden["horizon"]) - 1) * float(golden["dt"])
    np.testing.assert_allclose(np.asarray(sol.ts[name]) + t0, golden[f"{name}_time"], rtol=0, atol=1e-12)


def test_zeroed_channels_are_zero_in_both(golden, run):
    _, sol = run
    eeg_zero = np.flatnonzero(np.all(golden["eeg"] == 0, axis=(0, 1)))
    eeg = vs.tvb_projection("eeg")
    assert [eeg.sensors.labels[i] for i in eeg_zero] == ["IO1", "IO2"]
    assert np.all(np.asarray(sol.ys["eeg"])[:, :, eeg_zero] == 0)
    meg_zero = np.all(golden["meg"] == 0, axis=(0, 1))
    assert meg_zero.sum() == 28
    np.testing.assert_array_equal(meg_zero, ~vs.tvb_projection("meg").usable)
    assert np.all(np.asarray(sol.ys["meg"])[:, :, meg_zero] == 0)


def test_gain_alone_reproduces_tvb_from_its_own_average(golden, run):
    """TVB's sensor output is its region gain times its own temporal average: the gains agree to rounding."""
    mons, _ = run
    tavg = golden["tavg"]
    eeg = np.einsum("kn,tvn->tvk", np.asarray(mons["eeg"].gain), tavg)
    meg = np.einsum("kn,tn->tk", np.asarray(mons["meg"].gain), tavg[:, 1])[:, None]
    for got, ref in ((eeg, golden["eeg"]), (meg, golden["meg"])):
        assert np.all(_rel_err(got, ref) <= 1e-13)


def test_average_reference_is_mean_over_all_65_rows(golden, run):
    _, sol = run
    y = np.asarray(sol.ys["eeg"])
    assert np.all(_rel_err(y - y.mean(-1, keepdims=True), golden["eeg_average"]) <= TOL)
    usable = vs.tvb_projection("eeg").usable  # the 63 brain channels only: not TVB's average reference
    y63 = y - y[:, :, usable].mean(-1, keepdims=True)
    assert np.all(_rel_err(y63, golden["eeg_average"]) > 1e3 * TOL)


def test_tvb_default_obsnoise_is_seeded_white_noise(golden):
    noise = golden["eeg_obsnoise"] - golden["eeg"][: golden["eeg_obsnoise"].shape[0]]
    dt = float(golden["dt"])
    rs = np.random.RandomState(42)
    expected = np.stack([np.sqrt(dt) * rs.normal(size=(65, 2)).T for _ in range(noise.shape[0])])
    np.testing.assert_allclose(noise, expected, rtol=0, atol=1e-9)


def test_negative_controls_shifted_window_and_mean_gain(golden, run):
    """What the tolerance rejects: the sample window one step late or early, and the per-region mean gain."""
    mons, sol = run
    raw = np.asarray(sol.ys["raw"])  # (512, 2, 76), states after steps 1..512
    gain = np.asarray(mons["eeg"].gain)

    def eeg_of(window_means):
        return np.einsum("kn,tvn->tvk", gain, window_means)

    aligned = raw.reshape(64, 8, 2, 76).mean(1)
    assert np.all(_rel_err(eeg_of(aligned), golden["eeg"]) <= TOL)  # the windows spelled out by hand
    late = raw[1:505].reshape(63, 8, 2, 76).mean(1)  # steps 2..9, 10..17, ...
    assert np.all(_rel_err(eeg_of(late), golden["eeg"][:63]) > 1e3 * TOL)
    early = raw[7:511].reshape(63, 8, 2, 76).mean(1)  # steps 8..15, 16..23, ... (samples 1..63)
    assert np.all(_rel_err(eeg_of(early), golden["eeg"][1:]) > 1e3 * TOL)
    mean_gain = np.asarray(M.EEG.from_tvb(reduce="mean").gain)
    assert np.all(_rel_err(np.einsum("kn,tvn->tvk", mean_gain, golden["tavg"]), golden["eeg"]) > 1e3 * TOL)
