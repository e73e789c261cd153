"""The ``vbtjax`` command line: outputs, help, choices, bad input, file connectomes, float64."""

import json
import shutil
import subprocess

import numpy as np
import pytest

import vbtjax as vbt
from vbtjax import cli
from vbtjax.cli import simulate as _cli_simulate
from vbtjax.cli import simulate_output as _cli_simulate_output

NPZ_KEYS = {"time", "data", "state_variables", "labels", "weights", "lengths", "dt", "speed", "meta_json"}


def run(argv, capsys):
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def load(path):
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def test_default_run_short(tmp_path, capsys):
    rc, out, err = run(["simulate", "--duration", "200", "--out", str(tmp_path)], capsys)
    assert rc == 0, err
    assert "MontbrioPazoRoxin" in out and "76 regions" in out and "20000" in out  # summary: model, N, steps
    assert "simulation.npz" in out and "simulation.png" in out

    d = load(tmp_path / "simulation.npz")
    assert NPZ_KEYS <= set(d)
    T, N = 200, 76
    assert d["data"].shape == (T, 2, N)
    assert d["data"].dtype == np.float32  # float32 by default, even when a test module enabled x64 globally
    assert np.all(np.isfinite(d["data"]))
    assert np.std(d["data"][:, 0]) > 0.01  # not a flat fixed point
    # temporal average at 1 ms: samples stamped at the middle of each window, in ms
    np.testing.assert_allclose(d["time"], np.arange(1, T + 1) - 0.5, atol=1e-4)
    assert list(d["state_variables"]) == ["r", "V"]
    assert d["labels"].shape == (N,) and all(len(s) > 0 for s in d["labels"])
    assert d["weights"].shape == d["lengths"].shape == (N, N)
    assert np.isclose(np.abs(d["weights"]).max(), 1.0)  # --normalise max by default
    assert d["lengths"].max() > 10  # mm
    assert float(d["dt"]) == pytest.approx(0.01)
    assert float(d["speed"]) == 3.0
    assert d["fc"].shape == (N, N)

    meta = json.loads(str(d["meta_json"]))
    assert meta["versions"]["vbtjax"] == vbt.__version__
    assert meta["versions"]["jax"]
    assert meta["options"]["model"] == "MontbrioPazoRoxin" and meta["options"]["duration"] == 200.0
    assert meta["resolved"]["model_parameters"]["eta"] == pytest.approx(-4.6)
    assert meta["resolved"]["coupling_parameters"]["a"] == pytest.approx(0.1)
    assert meta["resolved"]["noise_nsig"] == [0.01, 0.04]

    png = tmp_path / "simulation.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_help_mentions_units_and_choices(capsys):
    rc, out, _ = run(["simulate", "--help"], capsys)
    assert rc == 0
    text = " ".join(out.split())
    for unit in ("ms", "mm/ms", "(mm)"):
        assert unit in text
    for name in ("MontbrioPazoRoxin", "JansenRit", "Epileptor", "Linear", "Difference", "Sigmoidal"):
        assert name in text
    assert "{raw,tavg,subsample,bold,bold-hrf,eeg,meg,seeg}" in text
    assert "720" in text and "Balloon-Windkessel" in text  # the BOLD defaults are documented
    assert "eta=-4.6" in text  # the default run is documented in the epilog
    rc, out, _ = run(["--help"], capsys)
    assert rc == 0 and "simulate" in out


def test_console_script_installed():
    exe = shutil.which("vbtjax")
    assert exe is not None, "the vbtjax console script is not installed (pip install -e .)"
    res = subprocess.run([exe, "simulate", "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "mm/ms" in res.stdout and "--duration" in res.stdout


def test_model_and_coupling_choices(capsys, tmp_path):
    models = _cli_simulate._model_names()
    assert "MontbrioPazoRoxin" in models and "AbstractNeuralMass" not in models
    assert all(issubclass(getattr(vbt.models, m), vbt.models.AbstractNeuralMass) for m in models)
    couplings = _cli_simulate._coupling_names()
    assert {"Linear", "Scaling", "Difference", "Kuramoto", "HyperbolicTangent", "Sigmoidal"} <= set(couplings)
    assert "AbstractCoupling" not in couplings
    parser = cli.build_parser()
    sim = parser._subparsers._group_actions[0].choices["simulate"]
    monitor = next(a for a in sim._actions if a.dest == "monitor")
    assert tuple(monitor.choices) == ("raw", "tavg", "subsample", "bold", "bold-hrf", "eeg", "meg", "seeg")
    # a non-default model and coupling run end to end
    argv = ["simulate", "--model", "Kuramoto", "--coupling", "Kuramoto", "--coupling-strength", "0.05"]
    argv += ["--duration", "20", "--dt", "0.1", "--monitor", "raw", "--out", str(tmp_path), "--quiet", "--no-plot"]
    rc, out, err = run(argv, capsys)
    assert rc == 0, err
    assert out == ""  # --quiet
    d = load(tmp_path / "simulation.npz")
    assert d["data"].shape == (200, 1, 76) and list(d["state_variables"]) == ["theta"]
    np.testing.assert_allclose(d["time"], 0.1 * np.arange(1, 201), rtol=1e-5)
    assert not (tmp_path / "simulation.png").exists()


BAD = [
    (["--model", "NoSuchModel"], "--model", "MontbrioPazoRoxin"),
    (["--model", "montbriopazoroxin"], "--model", "did you mean MontbrioPazoRoxin"),
    (["--coupling", "Nope"], "--coupling", "Linear"),
    (["--dt", "0"], "--dt", "positive"),
    (["--dt", "-0.1"], "--dt", "positive"),
    (["--dt", "abc"], "--dt", "abc"),
    (["--duration", "0"], "--duration", "positive"),
    (["--duration", "-5"], "--duration", "positive"),
    (["--duration", "100.005"], "--duration", "whole number"),
    (["--speed", "0"], "--speed", "positive"),
    (["--speed", "-3"], "--speed", "positive"),
    (["--connectome", "/no/such/connectome.zip"], "--connectome", "66, 68, 76, 96, 192"),
    (["--connectome", "77"], "--connectome", "66, 68, 76, 96, 192"),
    (["--lengths", "/no/such/lengths.txt"], "--lengths", ""),
    (["--param", "eta"], "--param", "NAME=VALUE"),
    (["--param", "eta=abc"], "--param", "abc"),
    (["--param", "foo=1"], "--param", "eta"),
    (["--noise", "-1"], "--noise", ">= 0"),
    (["--noise", "0.1,0.2,0.3"], "--noise", "r, V"),
    (["--period", "0.015"], "--period", "multiple"),
    (["--monitor", "raw", "--period", "1"], "--period", "raw"),
    (["--monitor", "fmri"], "--monitor", "bold"),
    (["--monitor", "bold", "--dt", "0.1", "--period", "100.5"], "--period", "dt_hemo"),
    (["--monitor", "bold", "--duration", "500", "--dt", "0.1"], "--period", "longer than --duration"),
    (["--monitor", "bold-hrf", "--dt", "0.3", "--duration", "3000"], "--dt", "4 ms"),
    (["--monitor", "eeg", "--connectome", "68"], "--connectome", "--connectome 76"),
    (["--monitor", "meg", "--connectome", "192"], "--connectome", "76 regions"),
    (["--monitor", "seeg", "--connectome", "66"], "--connectome", "frame"),
    (["--solver", "rk5"], "--solver", "heun"),
    (["--seed", "-1"], "--seed", ""),
]


@pytest.mark.parametrize("args, option, hint", BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_input_exit_2(args, option, hint, capsys, tmp_path):
    rc, out, err = run(["simulate", *args, "--out", str(tmp_path / "out"), "--quiet"], capsys)
    assert rc == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err  # one line
    assert lines[0].startswith("vbtjax simulate: error:")
    assert option in lines[0]
    assert hint in lines[0]
    assert not (tmp_path / "out").exists()


def test_no_command_and_unknown_command(capsys):
    rc, _, err = run([], capsys)
    assert rc == 2 and "simulate" in err
    rc, _, err = run(["simulat"], capsys)
    assert rc == 2 and "simulate" in err and len(err.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def small_connectome(tmp_path_factory):
    """A 4-region connectome written by Connectome.save_npz: (path, weights, lengths)."""
    rng = np.random.default_rng(0)
    n = 4
    w = rng.uniform(0, 2, (n, n)) * (1 - np.eye(n))
    lengths = rng.uniform(5, 40, (n, n))
    lengths = (lengths + lengths.T) / 2 * (1 - np.eye(n))
    conn = vbt.Connectome(weights=w, lengths=lengths, labels=[f"R{i}" for i in range(n)])
    path = conn.save_npz(tmp_path_factory.mktemp("conn") / "small.npz")
    return path, w, lengths


def test_connectome_from_npz(small_connectome, tmp_path, capsys):
    path, w, lengths = small_connectome
    n = w.shape[0]
    argv = ["simulate", "--connectome", str(path), "--normalise", "none", "--duration", "20", "--dt", "0.05"]
    argv += ["--monitor", "subsample", "--period", "0.5", "--speed", "5", "--out", str(tmp_path / "o"), "--quiet"]
    rc, _, err = run(argv + ["--no-plot"], capsys)
    assert rc == 0, err
    d = load(tmp_path / "o" / "simulation.npz")
    assert d["data"].shape == (40, 2, n)
    np.testing.assert_allclose(d["time"], 0.5 * np.arange(1, 41), rtol=1e-5)
    assert list(d["labels"]) == ["R0", "R1", "R2", "R3"]
    np.testing.assert_allclose(d["weights"], w, rtol=1e-6)  # --normalise none: as stored
    np.testing.assert_allclose(d["lengths"], lengths, rtol=1e-6)
    assert float(d["speed"]) == 5.0 and float(d["dt"]) == pytest.approx(0.05)
    assert json.loads(str(d["meta_json"]))["resolved"]["connectome"] == str(path)


def test_x64_gives_float64(small_connectome, tmp_path, capsys):
    argv = ["simulate", "--x64", "--connectome", str(small_connectome[0]), "--duration", "10", "--dt", "0.1"]
    argv += ["--out", str(tmp_path), "--quiet", "--no-plot"]
    rc, _, err = run(argv, capsys)
    assert rc == 0, err
    d = load(tmp_path / "simulation.npz")
    assert d["data"].dtype == np.float64 and d["data"].shape == (10, 2, 4)
    assert np.all(np.isfinite(d["data"]))
    assert json.loads(str(d["meta_json"]))["resolved"]["dtype"] == "float64"


def test_divergence_is_reported(tmp_path, capsys):
    # SupHopf from TVB's random initial state (|x|, |y| up to 5) is far too stiff for dt = 0.5 ms
    argv = [
        "simulate",
        "--model",
        "SupHopf",
        "--preset",
        "none",
        "--dt",
        "0.5",
        "--duration",
        "20",
        "--out",
        str(tmp_path / "o"),
    ]
    rc, _, err = run(argv + ["--quiet"], capsys)
    assert rc == 1
    assert "diverged" in err and "--dt" in err and "Traceback" not in err
    assert not (tmp_path / "o" / "simulation.npz").exists()


# ------------------------------------------------------------------------------------------- BOLD, EEG, MEG, SEEG


def test_bold_defaults_without_running():
    args = cli.build_parser().parse_args(["simulate", "--monitor", "bold"])
    setup = _cli_simulate._build(args)
    assert (
        setup["duration"] == cli.DEFAULT_DURATIONS["bold"] == 59760.0
    )  # 83 whole TRs of 720 ms  # a long run by default
    assert setup["period"] == 720.0 and setup["dt"] == pytest.approx(0.01)
    mon = setup["monitor"]
    assert isinstance(mon, vbt.monitors.BalloonWindkessel) and mon.dt_hemo == 1.0 and mon.variables_of_interest == (0,)
    # the hemodynamic transient left out of FC
    assert _cli_simulate_output.transient(setup["duration"], "bold") == 59760.0 / 3  # min(20 s, a third): 56 TRs kept
    args = cli.build_parser().parse_args(["simulate", "--monitor", "bold-hrf"])
    setup = _cli_simulate._build(args)
    assert setup["period"] == 2000.0 and setup["duration"] == 120000.0
    assert isinstance(setup["monitor"], vbt.monitors.Bold)
    # a --dt that does not divide 1 ms: the hemodynamics advance every dt
    args = cli.build_parser().parse_args(["simulate", "--monitor", "bold", "--dt", "0.3", "--period", "720"])
    assert _cli_simulate._build(args)["monitor"].dt_hemo == pytest.approx(0.3)


@pytest.mark.parametrize("monitor", ["bold", "bold-hrf"])
def test_bold_short(monitor, tmp_path, capsys):
    # a few short TRs (100 ms) at dt = 0.1 ms: only shapes, metadata and the figure are checked here
    argv = ["simulate", "--monitor", monitor, "--period", "100", "--dt", "0.1", "--duration", "400"]
    rc, out, err = run(argv + ["--out", str(tmp_path)], capsys)
    assert rc == 0, err
    assert f"{monitor} every 100 ms" in out
    d = load(tmp_path / "simulation.npz")
    N = 76
    assert d["data"].shape == (4, 1, N) and np.all(np.isfinite(d["data"]))
    np.testing.assert_allclose(d["time"], [100, 200, 300, 400], rtol=1e-6)  # end of each TR, ms
    assert str(d["monitor"]) == monitor and float(d["period"]) == 100.0
    assert list(d["variables_of_interest"]) == ["r"]
    assert list(d["channel_labels"]) == list(d["labels"]) and len(d["labels"]) == N
    assert d["fc"].shape == (N, N) and np.isfinite(float(d["sc_fc_r"]))
    assert float(d["transient"]) == pytest.approx(400 / 3)  # min(20 s, duration / 3)
    if monitor == "bold":
        assert d["data"][0].max() < d["data"][-1].max()  # BOLD rises from rest
    meta = json.loads(str(d["meta_json"]))
    assert meta["resolved"]["monitor"] == monitor and meta["resolved"]["period_ms"] == 100.0
    assert meta["resolved"]["sc_fc_r"] == pytest.approx(float(d["sc_fc_r"]))
    png = tmp_path / "simulation.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


@pytest.mark.parametrize(
    "monitor, n_sensors, first_label", [("eeg", 63, "Fp1"), ("meg", 248, None), ("seeg", 588, "TP1")]
)
def test_sensor_monitors_short(monitor, n_sensors, first_label, tmp_path, capsys):
    argv = ["simulate", "--monitor", monitor, "--duration", "60", "--out", str(tmp_path)]
    rc, out, err = run(argv, capsys)
    assert rc == 0, err
    assert f"on {n_sensors} sensors" in out
    d = load(tmp_path / "simulation.npz")
    T = 60  # 1 ms period by default
    assert d["data"].shape == (T, 2, n_sensors) and np.all(np.isfinite(d["data"]))
    assert np.std(d["data"][:, 0]) > 0
    np.testing.assert_allclose(d["time"], np.arange(1, T + 1) - 0.5, atol=1e-4)
    assert str(d["monitor"]) == monitor and float(d["period"]) == 1.0
    assert list(d["variables_of_interest"]) == ["r", "V"]
    assert d["channel_labels"].shape == (n_sensors,) and len(set(d["channel_labels"])) == n_sensors
    if first_label:
        assert d["channel_labels"][0] == first_label
    assert d["gain"].shape == (n_sensors, 76) and np.all(np.isfinite(d["gain"]))
    assert d["sensor_positions"].shape == (n_sensors, 3)
    F = d["psd_freqs"].shape[0]
    assert d["psd"].shape == (F, 2, n_sensors) and np.all(d["psd"] >= 0)
    assert d["psd_freqs"][0] == 0 and d["psd_freqs"][-1] <= 500.0  # Hz, up to Nyquist of 1 kHz
    assert "fc" not in d
    png = tmp_path / "simulation.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


@pytest.mark.parametrize("monitor, hint", [("eeg", "--connectome 76"), ("seeg", "no region centres")])
def test_sensor_monitors_need_a_matching_connectome(monitor, hint, small_connectome, tmp_path, capsys):
    argv = ["simulate", "--monitor", monitor, "--connectome", str(small_connectome[0]), "--duration", "10"]
    rc, _, err = run(argv + ["--out", str(tmp_path / "o"), "--quiet"], capsys)
    assert rc == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "--connectome" in err and hint in err
    assert not (tmp_path / "o").exists()
