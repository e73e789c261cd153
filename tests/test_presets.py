"""Model presets (``vbtjax.models.PRESETS``) and how ``vbtjax simulate`` uses them: every model has one, it builds a
network, its default CLI run gives a finite, non-degenerate FC (slow: one short run per model), the options override
it one by one, time options take units, and a degenerate run exits 3 with one line (npz written, no figure)."""

import json

import jax
import numpy as np
import pytest

import vbtjax as vbt
from vbtjax import cli
from vbtjax.cli import simulate as cli_simulate
from vbtjax.models import PRESETS, Preset, preset

MODELS = cli_simulate._model_names()


def run(argv, capsys):
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def build(argv):
    return cli_simulate._build(cli.build_parser().parse_args(["simulate", *argv]))


def load(path):
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def test_every_model_has_a_consistent_preset():
    assert sorted(PRESETS) == sorted(MODELS)
    conn = vbt.datasets.tvb_connectome(76)
    for name in MODELS:
        p = preset(name)
        assert isinstance(p, Preset) and p.model == name and p.model_class is getattr(vbt.models, name)
        cls = p.model_class
        assert len(p.noise) == len(cls.state_variables), name
        assert set(p.initial_range) <= set(cls.state_variables), name
        assert p.signal is None or p.signal in cls.state_variables
        assert p.dt > 0 and p.speed > 0 and p.period >= p.dt and p.fc_transient < p.duration
        assert p.strength == p.coupling_params["a"] and p.measured["fc_finite"] == 1.0 and p.reference and p.why
        net = vbt.Network(connectome=conn.normalised(p.normalise), **p.network_kwargs())
        assert type(net.model).__name__ == name and type(net.coupling).__name__ == p.coupling
        assert (net.noise is None) == (not any(p.noise))
        x0 = p.initial_state(jax.random.key(0), 76)
        if p.initial_range:
            assert x0.shape == (len(cls.state_variables), 76)
            for v, (lo, hi) in p.initial_range.items():
                row = np.asarray(x0[cls.state_variables.index(v)])
                assert np.all((row >= lo - 1e-6) & (row <= hi + 1e-6)), (name, v)
        else:
            assert x0 is None
    with pytest.raises(ValueError, match="JansenRit"):
        preset("jansenrit")


def test_cli_resolves_the_preset_and_overrides():
    s = build(["--model", "JansenRit"])
    p = PRESETS["JansenRit"]
    net = s["network"]
    assert type(net.coupling).__name__ == "SigmoidalJansenRit" and float(net.coupling.a) == p.strength
    assert s["speed"] == p.speed and s["dt"] == p.dt and s["duration"] == p.duration and s["period"] == p.period
    assert float(net.model.mu) == pytest.approx(0.15) and s["overrides"] == [] and s["preset"] is p
    s = build(["--model", "JansenRit", "--coupling-strength", "2", "--speed", "5", "--param", "mu=0.2"])
    assert float(s["network"].coupling.a) == 2.0 and s["speed"] == 5.0 and float(s["network"].model.mu) == 0.2
    assert s["overrides"] == ["--param", "--coupling-strength", "--speed"]
    s = build(["--preset", "Kuramoto"])  # --preset sets the model
    assert type(s["network"].model).__name__ == "Kuramoto" and s["transform"] == "sin"
    s = build(["--model", "JansenRit", "--preset", "none"])  # TVB's defaults
    assert type(s["network"].coupling).__name__ == "Linear" and s["network"].noise is None and s["speed"] == 3.0
    assert s["dt"] == cli_simulate.DEFAULT_DT and s["preset"] is None
    s = build(["--model", "ReducedWongWang", "--coupling", "Scaling"])  # another function: its TVB defaults
    assert type(s["network"].coupling).__name__ == "Scaling" and s["overrides"] == ["--coupling"]
    s = build(["--model", "EpileptorRestingState", "--monitor", "bold", "--dt", "0.05"])
    assert s["monitor"].variables_of_interest == (PRESETS["EpileptorRestingState"].signal_index,)
    assert build(["--monitor", "bold"])["coupling_strength"] == 0.115  # MPR's BOLD strength


def test_time_options_take_units():
    s = build(["--duration", "2s", "--dt", "0.02ms", "--period", "0.005s", "--transient", "0.5s"])
    assert s["duration"] == 2000.0 and s["dt"] == pytest.approx(0.02) and s["period"] == 5.0
    assert s["transient"] == 500.0
    assert build(["--duration", "0.1min", "--dt", "0.1"])["duration"] == pytest.approx(6000.0)
    text = " ".join(cli.build_parser()._subparsers._group_actions[0].choices["simulate"].format_help().split())
    assert text.count("(ms, or with a unit: 2s)") >= 4 and "--preset" in text and "SC-FC r" in text


BAD = [
    (["--preset", "Nope"], "--preset", "JansenRit"),
    (["--preset", "jansenrit"], "--preset", "did you mean JansenRit"),
    (["--preset", "JansenRit", "--model", "Kuramoto"], "--preset", "--model Kuramoto"),
    (["--duration", "2 parsecs"], "--duration", "not a time"),
    (["--transient", "5s", "--duration", "1s"], "--transient", "shorter than"),
]


@pytest.mark.parametrize("args, option, hint", BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_preset_options_exit_2(args, option, hint, capsys, tmp_path):
    rc, _, err = run(["simulate", *args, "--out", str(tmp_path / "o"), "--quiet"], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and option in err and hint in err
    assert not (tmp_path / "o").exists()


def test_degenerate_run_exits_3_in_one_line(tmp_path, capsys):
    # the Linear model without its preset: gamma = -10 /ms, no noise: every region decays to 0 within a few ms
    argv = ["simulate", "--model", "Linear", "--preset", "none", "--dt", "0.1", "--duration", "400"]
    rc, out, err = run([*argv, "--out", str(tmp_path / "o"), "--quiet"], capsys)
    assert rc == 3 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vbtjax simulate: error: degenerate dynamics:")
    assert "fixed point" in lines[0] and "--preset Linear" in lines[0] and "Traceback" not in err
    d = load(tmp_path / "o" / "simulation.npz")  # written, with the verdict
    meta = json.loads(str(d["meta_json"]))
    assert meta["health"]["ok"] is False and meta["health"]["codes"] == ["fixed_point"]
    assert not (tmp_path / "o" / "simulation.png").exists()  # never a blank figure
    rc, out, err = run([*argv, "--out", str(tmp_path / "p"), "--no-check"], capsys)
    assert rc == 0 and "warning (--no-check)" in out and (tmp_path / "p" / "simulation.png").exists()


def test_divergence_without_preset(tmp_path, capsys):
    # SupHopf from TVB's random initial state (|x|, |y| up to 5) is far too stiff for dt = 0.5 ms
    argv = ["simulate", "--model", "SupHopf", "--preset", "none", "--dt", "0.5", "--duration", "20"]
    rc, _, err = run([*argv, "--out", str(tmp_path / "o"), "--quiet"], capsys)
    assert rc == 1 and "diverged" in err and "--preset SupHopf" in err and err.count("\n") == 1
    assert not (tmp_path / "o" / "simulation.npz").exists()


SHORT_MS = 1500.0  # every preset's default run, shortened (the transient then is min(1000 ms, a quarter))


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_each_preset_default_cli_run_is_healthy(model, tmp_path, capsys):
    rc, _, err = run(
        ["simulate", "--model", model, "--duration", f"{SHORT_MS:g}", "--no-plot", "--quiet", "--out", str(tmp_path)],
        capsys,
    )
    assert rc == 0, err
    d = load(tmp_path / "simulation.npz")
    fc = d["fc"][~np.eye(len(d["labels"]), dtype=bool)]
    assert np.all(np.isfinite(fc)) and np.ptp(fc) > 0.05  # finite and not constant
    assert np.all(np.isfinite(d["data"]))
    meta = json.loads(str(d["meta_json"]))
    assert meta["health"]["ok"] and meta["resolved"]["preset"]["name"] == model
