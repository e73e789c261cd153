"""The Virtual Epileptic Patient (vbtjax.vep): forward model against vbtjax.simulate, the SEEG observation model,
the virtual resection, the CLI, and (slow) recovery of the epileptogenic zone on patients simulated by TVB."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vbtjax as vbt
from vbtjax import vep
from vbtjax.cli import main
from vbtjax.recordings import split_contact
from vbtjax.sensors import seeg_gain_point_source

GOLDEN = Path(__file__).parent / "golden" / "vep"


@pytest.fixture(scope="module")
def conn():
    return vbt.datasets.tvb_connectome(76)


@pytest.fixture(scope="module")
def sensors():
    return vbt.sensors.tvb_sensors("seeg")


def _patient(k):
    return np.load(GOLDEN / f"patient_{k}.npz", allow_pickle=False)


def _tvb_case(k, conn, sensors):
    z = _patient(k)
    ez = [int(i) for i in z["ez"]]
    contacts = vep.implant(sensors, conn.centres, ez, seed=k)
    gain = seeg_gain_point_source(np.asarray(sensors.positions)[contacts], conn.centres)
    data = vep.synthetic_seeg(z["x1"][:50], gain, key=jax.random.key(k), samples_per_x1=32)
    return z, ez, gain, vep.log_power_envelope(data, 256.0, 25)


def test_forward_model_equals_simulate(conn):
    """The VEP's dense integrator gives vbtjax.simulate's numbers (float64), for its Difference coupling and for a
    source-only coupling (the tests run with jax_enable_x64, tests/conftest.py)."""
    x0 = np.full(76, -2.4)
    x0[[12, 40]] = -1.6
    net = vep.vep_network(conn, x0=x0, K=0.3)
    hist = jnp.broadcast_to(jnp.asarray([vep.X1_REST, vep.Z_REST])[None, :, None], (1, 2, 76))
    for n in (
        net,
        vbt.Network(model=net.model, connectome=net.connectome, coupling=vbt.coupling.Linear(a=-0.1), speed=3.0),
    ):
        ref = vbt.simulate(n, 50.0, 0.1, history=hist, monitors=vbt.monitors.SubSample(period=0.1)).ys[:, 0]
        x1 = vep.simulate_x1(n, 50.0, 0.1, 0.1)
        assert x1.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(x1), np.asarray(ref), atol=1e-9)
        # window log power = log mean exp(2 x1) over the window's steps
        logp = vep.simulate_power(n, 50.0, 0.1, 2.0)
        expect = np.log(np.exp(2 * np.asarray(ref)).reshape(25, 20, 76).mean(axis=1))
        np.testing.assert_allclose(np.asarray(logp), expect, atol=1e-9)
    assert set(vep.seizing_regions(vep.simulate_x1(net)).tolist()) == {12, 40}


def test_critical_excitability():
    """An uncoupled region seizes just above X0_CRITICAL and not just below it."""
    one = vbt.Connectome(weights=np.ones((2, 2)) - np.eye(2), lengths=np.zeros((2, 2)), centres=np.zeros((2, 3)))
    for x0, seizes in ((vep.X0_CRITICAL - 0.02, False), (vep.X0_CRITICAL + 0.02, True)):
        net = vep.vep_network(one, x0=[x0, -2.5], K=0.0)
        x1 = vep.simulate_x1(net, duration=200.0)
        assert bool(np.any(np.asarray(x1[:, 0]) > vep.SEIZURE_X1)) is seizes


def test_observation_model(conn, sensors):
    rng = np.random.default_rng(0)
    x1 = jnp.asarray(rng.uniform(-2, 0.5, (8, 76)))
    gain = seeg_gain_point_source(np.asarray(sensors.positions)[:20], conn.centres)
    want = np.log(np.exp(2 * np.asarray(x1)) @ np.asarray(gain).T ** 2)
    np.testing.assert_allclose(np.asarray(vep.seeg_log_power(2 * x1, gain)), want, rtol=1e-5)
    # synthetic SEEG: its envelope scatters around the model by about sqrt(2 / samples per window)
    data = vep.synthetic_seeg(x1, gain, key=jax.random.key(1), samples_per_x1=256)
    assert data.shape == (20, 8 * 256) and data.dtype == np.float32
    resid = vep.log_power_envelope(data, 256.0, 8) - want
    assert abs(resid.mean()) < 0.05
    assert 0.7 < resid.std() / np.sqrt(2 / 256) < 1.3


def test_log_power_envelope():
    rng = np.random.default_rng(2)
    sd = np.array([1.0, 3.0])[:, None]
    data = 5.0 + sd * rng.standard_normal((2, 10 * 4000 + 7))  # an offset (removed) and trailing samples (dropped)
    env = vep.log_power_envelope(data, 1000.0, 10)
    assert env.shape == (10, 2)
    np.testing.assert_allclose(env.mean(axis=0), 2 * np.log(sd[:, 0]), atol=0.05)
    with pytest.raises(ValueError, match="cannot fill"):
        vep.log_power_envelope(data[:, :15], 1000.0, 10)
    with pytest.raises(ValueError, match="NaN"):
        vep.log_power_envelope(np.full((2, 100), np.nan), 1000.0, 10)
    with pytest.raises(ValueError, match="flat channel"):
        vep.log_power_envelope(np.zeros((2, 100)), 1000.0, 10)
    with pytest.raises(ValueError, match="contacts, samples"):
        vep.log_power_envelope(np.zeros(100), 1000.0, 10)


def test_implant_covers_the_ez(conn, sensors):
    ez = [12, 40]
    contacts = vep.implant(sensors, conn.centres, ez, seed=3, n_electrodes=8)
    pos = np.asarray(sensors.positions)[contacts]
    d = np.linalg.norm(pos[:, None] - np.asarray(conn.centres)[ez][None], axis=-1).min(axis=0)
    assert np.all(d <= 10.0)
    electrodes = {split_contact(sensors.labels[c])[0] for c in contacts}
    assert len(electrodes) == 8


def test_virtual_resection_of_the_truth(conn):
    """On TVB patient 1's true parameters: resecting its EZ stops the seizures, resecting another region does not."""
    z = _patient(1)
    x0 = np.asarray(z["x0"])[None]
    K = np.asarray([0.3])
    ez = [int(i) for i in z["ez"]]
    right = vep.virtual_resection(conn, x0, K, ez)
    assert right["seizing_before_probability"] == 1.0
    assert right["seizure_free_probability"] == 1.0
    assert set(np.flatnonzero(right["p_seizing_before"]).tolist()) == set(ez)
    wrong = vep.virtual_resection(conn, x0, K, [0])
    assert wrong["seizure_free_probability"] == 0.0
    with pytest.raises(ValueError, match="0..75"):
        vep.virtual_resection(conn, x0, K, [76])
    with pytest.raises(ValueError, match="x0_draws"):
        vep.virtual_resection(conn, x0[:, :10], K, ez)


def test_posterior_and_initial_guess(conn, sensors):
    """The VEP log density is finite with finite gradients, is higher at the truth than at a healthy network, and
    the data-driven starting point picks the TVB patient's EZ."""
    z, ez, gain, env = _tvb_case(1, conn, sensors)
    post = vep.vep_posterior(conn, gain, env)
    assert post.names == ("x0", "K", "sigma", "tau", "time_scale") and post.dim == 80 and post.feature == "power"
    u_healthy = post.initial_position()
    u_true = post.unconstrained({"x0": z["x0"], "K": 0.3, "sigma": 0.2, "tau": 0.2, "time_scale": 1.0})
    lp, g = jax.value_and_grad(post.log_density)(u_true)
    assert np.isfinite(float(lp)) and bool(jnp.all(jnp.isfinite(g)))
    assert float(post.log_density(u_true)) > float(post.log_density(u_healthy)) + 100
    guesses = vep.initial_guess(post)
    assert guesses.shape == (4, post.dim)
    guess = post.constrained(guesses[1])["x0"]  # min_share 0.25
    assert set(np.flatnonzero(np.asarray(guess) > vep.X0_CRITICAL).tolist()) == set(ez)
    with pytest.raises(ValueError, match="contacts"):
        vep.vep_posterior(conn, gain[:3], env)
    with pytest.raises(ValueError, match="NaN"):
        vep.vep_posterior(conn, gain, np.full_like(env, np.nan))


def test_seeg_recording_round_trip(tmp_path):
    rec = vep.SEEGRecording(np.ones((2, 10)), 256.0, ["A1", "A2"], {"x": 1})
    back = vep.SEEGRecording.load(rec.save(tmp_path / "s.npz"))
    assert back.ch_names == ["A1", "A2"] and back.sfreq == 256.0 and back.meta == {"x": 1}
    np.testing.assert_array_equal(back.data, rec.data)
    with pytest.raises(ValueError, match="ch_names"):
        vep.SEEGRecording(np.ones((2, 10)), 256.0, ["A1"])
    np.savez(tmp_path / "bad.npz", data=np.ones((2, 3)))
    with pytest.raises(ValueError, match="missing keys"):
        vep.SEEGRecording.load(tmp_path / "bad.npz")


@pytest.mark.parametrize(
    "argv, match",
    [
        ([], "either --seeg"),
        (["--seeg", "x.npz", "--synthetic-ez", "1"], "either --seeg"),
        (["--synthetic-ez", "a,b"], "comma-separated"),
        (["--synthetic-ez", "80"], "outside 0..75"),
        (["--synthetic-ez", "1", "--period", "0.25", "--duration", "1.1"], "whole number"),
        (["--seeg", "missing.npz"], "does not exist"),
        (["--synthetic-ez", "1", "--connectome", "77"], "not a TVB connectome size"),
        (["--seeg", "x.npz", "--patient-only"], "needs --synthetic-ez"),
        (["--synthetic-ez", "1", "--chains", "1"], "R-hat compares chains"),
        (["--synthetic-ez", "1", "--time-scale", "4,1"], "0 < LO < HI"),
        (["--synthetic-ez", "1", "--time-scale", "fast"], "LO,HI or one number"),
    ],
)
def test_cli_errors(argv, match, tmp_path, capsys):
    assert main(["vep", "--out", str(tmp_path / "o"), *argv]) == 2
    assert match in capsys.readouterr().err


def test_cli_unknown_contacts(tmp_path, capsys):
    vep.SEEGRecording(np.random.default_rng(0).standard_normal((2, 200)), 256.0, ["A1", "NOPE"]).save(
        tmp_path / "s.npz"
    )
    assert main(["vep", "--seeg", str(tmp_path / "s.npz"), "--out", str(tmp_path / "o")]) == 2
    assert "NOPE" in capsys.readouterr().err


def test_cli_synthetic_patient_files(tmp_path):
    """`vbtjax vep --synthetic-ez --patient-only`: the patient's files in the input formats, readable back as a
    recording and sensors whose names match, and the truth (inference on such patients: the epilepsy example, the
    SBI tests and benchmarks/vep.py; one CLI inference run: test_cli_recovers_a_tvb_patient)."""
    out = tmp_path / "vep"
    argv = ["vep", "--synthetic-ez", "12,40", "--seed", "1", "--patient-only", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    for f in ("patient/seeg.npz", "patient/sensors.txt", "patient/connectome.npz", "patient/truth.json"):
        assert (out / f).stat().st_size > 0, f
    assert not (out / "posterior.nc").exists()
    truth = json.loads((out / "patient" / "truth.json").read_text())
    assert truth["ez"] == [12, 40] and len(truth["x0"]) == 76
    assert all(truth["x0"][i] > vep.X0_CRITICAL for i in (12, 40))
    rec = vep.SEEGRecording.load(out / "patient" / "seeg.npz")
    sens = vbt.sensors.Sensors.from_file(out / "patient" / "sensors.txt")
    assert list(sens.labels) == rec.ch_names and np.all(np.isfinite(rec.data))
    assert vbt.Connectome.from_file(out / "patient" / "connectome.npz").n_regions == 76


@pytest.mark.slow
def test_cli_recovers_a_tvb_patient(tmp_path, conn, sensors):
    """A patient simulated by TVB's own stochastic Epileptor2D (dt = 0.05 ms), given to `vbtjax vep --seeg` as an
    SEEG recording on a subset of tvb-data's contacts, inferred at dt = 0.1 ms: the true EZ ranks on top and is the
    predicted EZ (all five TVB patients: benchmarks/vep.py; CI time allows one here). Then the outputs (netCDF
    posterior, ranking, summary, figure, twin) and a virtual surgery of the predicted EZ with `vbtjax whatif`."""
    z = _patient(4)
    ez = [int(i) for i in z["ez"]]
    contacts = vep.implant(sensors, conn.centres, ez, seed=4)
    gain = seeg_gain_point_source(np.asarray(sensors.positions)[contacts], conn.centres)
    data = vep.synthetic_seeg(z["x1"][:50], gain, key=jax.random.key(4), samples_per_x1=32)
    vep.SEEGRecording(data, 256.0, [sensors.labels[c] for c in contacts]).save(tmp_path / "p4.npz")
    out = tmp_path / "out"
    argv = ["vep", "--seeg", str(tmp_path / "p4.npz"), "--warmup", "25", "--samples", "25", "--out", str(out)]
    assert main([*argv, "--quiet", "--resection-draws", "20"]) == 0
    for f in ("posterior.nc", "ranking.json", "vep.json", "vep.png"):
        assert (out / f).stat().st_size > 0, f
    ranking = json.loads((out / "ranking.json").read_text())
    assert {r["index"] for r in ranking[: len(ez)]} == set(ez), ranking[:4]
    assert set(ranking[0]) == {"index", "label", "probability"}
    summary = json.loads((out / "vep.json").read_text())
    assert set(summary["predicted_ez"]) == set(ez)
    assert summary["resection"]["seizing_before_probability"] > 0.9
    import arviz as az

    assert az.from_netcdf(out / "posterior.nc").posterior["x0"].shape == (4, 25, 76)
    assert {"max_rhat", "divergences", "ppc", "verdict", "resection_recommended", "fits"} <= set(summary)
    assert summary["feature"] == "power" and summary["ppc"]["fits"], summary["ppc"]["message"]
    # the patient's twin: virtual surgery of the predicted EZ over its posterior with `vbtjax whatif`
    twin = vbt.Twin.load(out / "twin")
    assert twin.posterior["model.x0"].shape == (4, 25, 76) and twin.n_draws == 100
    resect = ",".join(str(i) for i in summary["predicted_ez"])
    w = tmp_path / "whatif"
    argv = ["whatif", str(out / "twin"), "--scenario", f"resect:{resect}", "--samples", "8", "--out", str(w)]
    assert main([*argv, "--quiet"]) == 0
    s = json.loads((w / "summary.json").read_text())
    assert s["outcome"] == "seizure" and s["draws"] == 8
    assert s["p_seizure_free_scenario"] > s["p_seizure_free_baseline"]
    assert s["removed"] == summary["predicted_ez"]


def test_detectability(conn, sensors):
    """detectability() is the largest log-power increase of any contact when one region alone seizes (checked
    against seeg_log_power), large for regions next to contacts and below DETECTABLE far from every contact."""
    contacts = vep.implant(sensors, conn.centres, [12, 40], seed=3)
    pos = np.asarray(sensors.positions)[contacts]
    gain = seeg_gain_point_source(pos, conn.centres)
    d = vep.detectability(gain)
    rest = np.full((1, 76), 2 * vep.X1_REST)
    for i in (12, 40, 0, 55):
        one = rest.copy()
        one[0, i] = 0.8
        inc = np.asarray(vep.seeg_log_power(jnp.asarray(one), gain) - vep.seeg_log_power(jnp.asarray(rest), gain))
        np.testing.assert_allclose(d[i], inc.max(), rtol=1e-4)
    assert d[12] > 2 and d[40] > 2
    far = np.linalg.norm(pos[:, None] - np.asarray(conn.centres)[None], axis=-1).min(axis=0) > 45
    assert far.any() and np.all(d[far] < vep.DETECTABLE)


def test_nuts_within_gibbs_samples_the_target():
    """nuts_within_gibbs (infer_ez's sampler="nuts-gibbs") alternates NUTS with prior independence updates of the
    chosen coordinates and keeps the target: on a Gaussian with four standard-normal-prior coordinates of various
    widths and two narrow ones, 4 chains give its means and sds, R-hat ~ 1, no divergences, and accepted updates."""
    from vbtjax.inference.diagnostics import summary
    from vbtjax.inference.gibbs import nuts_within_gibbs

    m = jnp.array([0.5, -0.3, 0.0, 1.0, 2.0, -1.0])
    s = jnp.array([0.8, 1.0, 0.5, 0.9, 0.05, 0.1])
    r = nuts_within_gibbs(
        lambda u: -0.5 * jnp.sum(((u - m) / s) ** 2),
        key=jax.random.key(0),
        init=jnp.zeros((4, 6)),
        gibbs_indices=[0, 1, 2, 3],
        num_warmup=300,
        num_samples=1000,
    )
    draws = np.asarray(r.positions).reshape(-1, 6)
    np.testing.assert_allclose(draws.mean(axis=0), m, atol=0.06)
    np.testing.assert_allclose(draws.std(axis=0), s, rtol=0.06)
    assert np.max(summary({"u": np.asarray(r.positions)})["u"]["rhat"]) < 1.01
    assert int(np.asarray(r.stats["diverging"]).sum()) == 0
    assert 0.3 < float(np.asarray(r.stats["gibbs_acceptance"]).mean()) < 0.95
    with pytest.raises(ValueError, match="gibbs_indices"):
        nuts_within_gibbs(lambda u: -jnp.sum(u**2), key=jax.random.key(0), init=jnp.zeros((2, 3)), gibbs_indices=[3])


@pytest.mark.slow
def test_infer_ez_nuts_gibbs_runs(conn):
    """sampler="nuts-gibbs" on a 12-region patient: the result has the NUTS diagnostics, p_ez in [0, 1], and the
    sweeps' acceptance in the sampler's stats."""
    sub = conn.subset(conn.nearest([12], 12))
    sensors = vbt.sensors.tvb_sensors("seeg")
    p = vep.synthetic_patient(sub, sensors, [0], seed=2, n_electrodes=4)
    post = vep.recording_posterior(sub, sensors, p.recording, time_scale=1.0)
    r = vep.infer_ez(
        post, key=jax.random.key(0), sampler="nuts-gibbs", num_warmup=30, num_samples=30, progress=False, warn=False
    )
    d = r.diagnostics
    assert d["sampler"] == "nuts-gibbs" and d["draws"] == 120 and np.isfinite(d["max_rhat"])
    assert np.all((r.p_ez >= 0) & (r.p_ez <= 1)) and r.samples.stats["gibbs_acceptance"].shape == (4, 30)
