"""The example scripts run, write their figures, and print or return numbers that agree with independent values
where one exists (step counts, the HCP subject's structural baseline from its raw file, the hub picked by hand)."""

import importlib.resources
import json
import runpy
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import vbtjax as vbt

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_simulate_tvb76_example(tmp_path, monkeypatch, capsys):
    script = EXAMPLES / "simulate_tvb76.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--duration", "100", "--out", str(tmp_path)])
    runpy.run_path(str(script), run_name="__main__")
    png = tmp_path / "simulate_tvb76.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert "simulated 100 ms (10000 steps)" in out and "wrote" in out  # 100 ms / dt 0.01 ms


def _hcp_raw():
    """The embedded HCP subject's file read with NumPy alone: weights, labels, and the FC of its BOLD series."""
    resource = importlib.resources.files("vbtjax") / "data" / "hcp_101309.npz"
    with importlib.resources.as_file(resource) as path, np.load(path) as z:
        weights, labels, bold = np.asarray(z["weights"], float), [str(v) for v in z["labels"]], z["bold"]
    return weights, labels, np.corrcoef(np.asarray(bold, float))


def _sc_baseline(weights, fc):
    iu = np.triu_indices(weights.shape[0], 1)
    return float(np.corrcoef(np.log1p(weights[iu]), fc[iu])[0, 1])


def test_fit_synthetic_twin_example(tmp_path, capsys):
    script = EXAMPLES / "fit_synthetic_twin.py"
    main = runpy.run_path(str(script))["main"]  # not run as __main__: call main(argv) to get its result
    res = main(["--regions", "5", "--duration", "150", "--steps", "60", "--out", str(tmp_path)])
    png = tmp_path / "fit_synthetic_twin.png"
    assert res["path"] == png and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert "worst relative error" in out and "wrote" in out
    losses = res["losses"]
    assert losses.shape == (60,) and losses[-1] < 0.01 * losses[0]  # a short fit, but going the right way
    assert res["I"].shape == (5,) and abs(res["a"] / res["a_true"] - 1) < 0.5


def test_fit_hcp_subject_example(tmp_path, monkeypatch, capsys):
    script = EXAMPLES / "fit_hcp_subject.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--steps", "1", "--samples", "100", "--out", str(tmp_path)])
    with jax.enable_x64(False):  # as users run it
        runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    weights, _, fc = _hcp_raw()  # the baseline recomputed from the BOLD series in the file: 0.411
    assert f"structural baseline r(log1p(SC), FC) = {_sc_baseline(weights, fc):.3f}" in out
    assert "structural baseline r(log1p(SC), FC) = 0.411" in out and "fitted coupling.a" in out
    png = tmp_path / "fit_hcp_subject.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------------ applications (issue 7 item 3)
def _run_example(name, argv):
    """Run examples/NAME.py's main(argv) in float32, as users run it; returns its results dict."""
    main = runpy.run_path(str(EXAMPLES / f"{name}.py"))["main"]
    with jax.enable_x64(False):
        return main(argv)


def _png(path):
    return path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resting_state_example(tmp_path, capsys):
    """Fit (1 step), twin saved and loaded, lesion of the hub's tracts: the hub's FC with the others collapses while
    the other regions' FC hardly changes; the FC as a whole moves away from the intact FC."""
    res = _run_example("resting_state", ["--quick", "--out", str(tmp_path)])
    assert _png(tmp_path / "resting_state.png") and (tmp_path / "resting_state.json").exists()
    assert json.loads((tmp_path / "resting_state.json").read_text())["region"] == res["region"]
    twin = vbt.Twin.load(tmp_path / "twin")
    assert float(twin.network.coupling.a) == pytest.approx(res["coupling_a"], rel=1e-6)
    assert res["scenario"]["type"] == "Lesion" and res["realisations"] == 4
    assert res["region_mean_fc_lesioned"] < res["region_mean_fc_intact"] - 0.03
    assert res["region_fc_change"] < -0.03 and abs(res["others_fc_change"]) < 0.2 * abs(res["region_fc_change"])
    assert res["similarity_mean"] < 0.999
    weights, labels, fc = _hcp_raw()  # the hub (largest in + out weight) and the baseline, by hand from the file
    hub = int(np.argmax(weights.sum(0) + weights.sum(1)))
    assert res["region"] == hub and res["region_label"] == labels[hub]
    assert res["sc_baseline"] == pytest.approx(_sc_baseline(weights, fc), abs=1e-5)  # float32 BOLD copy: ~2e-6
    assert "wrote" in capsys.readouterr().out


@pytest.mark.slow
def test_epilepsy_example(tmp_path):
    """A 20-region synthetic patient, short NUTS chains: the recommended surgery resects the true EZ and has the
    highest P(seizure-free); doing nothing or resecting a wrong region leaves the patient seizing."""
    res = _run_example("epilepsy", ["--quick", "--out", str(tmp_path)])
    assert _png(tmp_path / "epilepsy.png") and (tmp_path / "epilepsy.json").exists()
    assert vbt.Twin.load(tmp_path / "twin").n_draws == 20
    opts = res["options"]
    best = opts[res["recommended"]]
    assert set(res["true_ez"]) <= set(best["resect"])
    assert best["p_seizure_free"] == max(o["p_seizure_free"] for o in opts.values()) and best["p_seizure_free"] > 0.8
    assert opts["nothing"]["p_seizure_free"] < 0.2 and opts["wrong region"]["p_seizure_free"] < 0.2


def test_multiple_sclerosis_example(tmp_path):
    """Lesions and slowed conduction move the FC; the patient's conduction speed (2 mm/ms) is recovered from its FC
    from the healthy 3 mm/ms within 2 %."""
    res = _run_example("multiple_sclerosis", ["--quick", "--out", str(tmp_path)])
    assert _png(tmp_path / "multiple_sclerosis.png") and (tmp_path / "multiple_sclerosis.json").exists()
    assert res["true_speed"] == pytest.approx(2.0) and abs(res["relative_error"]) < 0.02
    assert all(d["mean"] > 0.005 for d in res["fc_distance"].values())


def test_ageing_example(tmp_path):
    """A 3-age cohort: mean FC and the similarity to the young FC decline with age, as does the fitted coupling."""
    res = _run_example("ageing", ["--quick", "--out", str(tmp_path)])
    assert _png(tmp_path / "ageing.png") and (tmp_path / "ageing.json").exists()
    assert res["mean_fc_slope_per_year"] < 0 and res["mean_fc"][-1] < res["mean_fc"][0]
    assert res["similarity_to_young"][-1] < res["similarity_to_young"][0]
    assert res["fitted_rate_per_year"] < 0 and res["fitted_coupling"][-1] < res["fitted_coupling"][0]
