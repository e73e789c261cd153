# Held-out VEP benchmark patients simulated by The Virtual Brain (benchmarks/data/vep/*.npz, made by
# benchmarks/make_vep_patients.py with tvb-library 2.10.0, whose docstring states every convention). TVB is not
# needed here: these light checks read the files (numpy only, float64 wherever numbers are compared) and check that
# they are complete, consistent, and that the saved lead field reproduces the saved SEEG.

import functools
import json
import pathlib

import numpy as np
import pytest

DATA = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "vep"
PATIENTS = sorted(p.stem for p in DATA.glob("*.npz"))
N = 76
SEIZURE_X1 = -1.0
KEYS = {
    "seeg", "sfreq", "ch_names", "positions", "ez", "pz_candidates", "x0", "seizing", "recruited", "onset_ms",
    "model", "time_scale", "monitored_expression", "coupling", "coupling_a", "speed", "dt", "duration_ms",
    "integrator", "nsig", "noise_seed", "seed", "gain_tvb", "labels", "centres", "orientations", "weights",
    "tract_lengths", "source", "source_period", "meta_json",
}  # fmt: skip
PARAMS = {
    "Epileptor2D": ("a", "b", "c", "d", "r", "x0", "Iext", "slope", "Kvf", "Ks", "tt"),
    "Epileptor": (
        "a", "b", "c", "d", "r", "s", "x0", "Iext", "slope", "Iext2", "tau", "aa", "bb", "Kvf", "Kf", "Ks", "tt",
    ),
}  # fmt: skip
# float32 storage of seeg and source: half an ulp is 6e-8 relative; 1e-6 leaves a margin for the sums
ROUNDING = 1e-6


@functools.cache
def _load(name):
    with np.load(DATA / f"{name}.npz", allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _meta(d):
    return json.loads(str(d["meta_json"]))


def test_the_benchmark_set():
    assert len(PATIENTS) >= 12, PATIENTS
    kinds = {}
    for name in PATIENTS:
        d = _load(name)
        kinds.setdefault((str(d["model"]), str(d["time_scale"])), []).append(name)
    assert set(kinds) == {("Epileptor2D", "fast"), ("Epileptor2D", "slow"), ("Epileptor", "epileptor")}, kinds
    assert all(len(v) >= 4 for v in kinds.values()), kinds
    for (model, _), names in kinds.items():
        integrators = {str(_load(n)["integrator"]) for n in names}
        if model == "Epileptor2D":  # some deterministic, some stochastic
            assert integrators == {"HeunDeterministic", "HeunStochastic"}, (model, integrators)
        else:
            assert integrators == {"HeunStochastic"}
    n_ez = [_load(n)["ez"].size for n in PATIENTS]
    assert sum(k == 1 for k in n_ez) >= 4 and set(n_ez) == {1, 2, 3}, n_ez
    assert any(_load(n)["recruited"].size for n in PATIENTS), "no patient with a propagation zone"
    size = sum(p.stat().st_size for p in DATA.iterdir())
    assert size < 30e6, size


@pytest.mark.parametrize("name", PATIENTS)
def test_patient_file(name):
    d = _load(name)
    assert KEYS <= set(d), KEYS - set(d)
    model = str(d["model"])
    assert {f"param_{p}" for p in PARAMS[model]} <= set(d)
    meta = _meta(d)
    seeg = d["seeg"]
    n_c, n_t = seeg.shape
    assert seeg.dtype == np.float32 and np.all(np.isfinite(seeg))
    assert 8 * 9 <= n_c <= 120
    assert d["ch_names"].shape == (n_c,) and d["ch_names"].dtype.kind == "U" and len(set(d["ch_names"])) == n_c
    assert d["positions"].shape == (n_c, 3) and d["gain_tvb"].shape == (n_c, N)
    assert np.all(np.isfinite(d["gain_tvb"])) and np.all(np.isfinite(d["positions"]))
    assert 8 <= len(meta["electrodes"]) <= 12
    sfreq, duration = float(d["sfreq"]), float(d["duration_ms"])
    assert n_t == round(duration * sfreq / 1000.0) and sfreq == pytest.approx(1000.0 / meta["period_ms"])
    for key in ("x0", "onset_ms"):
        assert d[key].shape == (N,) and d[key].dtype == np.float64
    assert d["labels"].shape == (N,) and d["labels"].dtype.kind == "U"
    assert d["centres"].shape == d["orientations"].shape == (N, 3)
    assert d["weights"].shape == d["tract_lengths"].shape == (N, N)
    assert d["weights"].max() == 1.0 and np.all(np.diag(d["weights"]) == 0)
    np.testing.assert_array_equal(np.asarray(d["param_x0"], float), d["x0"])

    ez, seizing, recruited = d["ez"], d["seizing"], d["recruited"]
    assert 1 <= ez.size <= 3 and np.all(np.isin(ez, seizing)), (ez, seizing)
    np.testing.assert_array_equal(seizing, np.flatnonzero(np.isfinite(d["onset_ms"])))
    np.testing.assert_array_equal(recruited, np.setdiff1d(seizing, ez))
    assert np.all((d["onset_ms"][seizing] >= 0) & (d["onset_ms"][seizing] < duration))
    assert np.all((d["x0"][ez] >= -1.8) & (d["x0"][ez] <= -1.4))
    assert np.all(d["x0"][d["pz_candidates"]] < -2.06)
    healthy = np.setdiff1d(np.arange(N), np.concatenate([ez, d["pz_candidates"]]))
    assert np.all((d["x0"][healthy] >= -2.6) & (d["x0"][healthy] <= -2.2))
    assert meta["ez"] == ez.tolist() and meta["seizing"] == seizing.tolist() and meta["seed"] == int(d["seed"])
    stochastic = str(d["integrator"]) == "HeunStochastic"
    assert (int(d["noise_seed"]) >= 0) == stochastic and bool(np.any(d["nsig"] > 0)) == stochastic
    assert str(d["monitored_expression"]) == ("x2 - x1" if model == "Epileptor" else "x1")
    assert float(d["speed"]) > 0 and np.max(d["tract_lengths"]) > 0  # conduction delays
    # a clinical implantation reaches the EZ
    dist = np.linalg.norm(d["positions"][:, None, :] - d["centres"][None, ez, :], axis=-1).min(axis=0)
    assert np.all(dist < 25.0), dist


@pytest.mark.parametrize("name", PATIENTS)
def test_gain_reproduces_seeg(name):
    """The SEEG is TVB's window mean of gain @ expr, with no observation noise: averaged over the windows of the
    saved source traces (TVB TemporalAverage of the same expression) it is gain_tvb @ source; and gain_tvb is TVB's
    analytic dipole lead field of the saved positions, centres and orientations (sigma = 1)."""
    d = _load(name)
    seeg = np.asarray(d["seeg"], np.float64)
    source = np.asarray(d["source"], np.float64)
    gain = np.asarray(d["gain_tvb"], np.float64)
    n_c, n_t = seeg.shape
    n_src = source.shape[0]
    assert source.shape == (n_src, N) and np.all(np.isfinite(source))
    k = round(float(d["source_period"]) * float(d["sfreq"]) / 1000.0)
    assert n_src * k == n_t
    mean = seeg.reshape(n_c, n_src, k).mean(axis=-1)
    tol = ROUNDING * (np.abs(gain) @ np.abs(source).T + np.abs(mean))
    np.testing.assert_array_less(np.abs(mean - gain @ source.T), tol)
    # the check has power: the neighbouring contact's lead field does not fit
    assert np.any(np.abs(mean - np.roll(gain, 1, axis=0) @ source.T) > 100 * tol)

    a = d["positions"][:, None, :] - d["centres"][None, :, :]
    dipole = np.sum(d["orientations"][None] * a, axis=-1) / np.linalg.norm(a, axis=-1) ** 3 / (4.0 * np.pi)
    np.testing.assert_allclose(gain, dipole, rtol=1e-10, atol=0)

    # the saved source traces of the 2-D model (their expression is x1) show exactly the seizing regions
    if str(d["model"]) == "Epileptor2D":
        top = source.max(axis=0)
        np.testing.assert_array_equal(np.flatnonzero(top > SEIZURE_X1), d["seizing"])
