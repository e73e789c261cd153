"""The example scripts run and write their figures."""

import runpy
import sys
from pathlib import Path

import jax

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_simulate_tvb76_example(tmp_path, monkeypatch, capsys):
    script = EXAMPLES / "simulate_tvb76.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--duration", "100", "--out", str(tmp_path)])
    runpy.run_path(str(script), run_name="__main__")
    png = tmp_path / "simulate_tvb76.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote" in capsys.readouterr().out


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
    assert "structural baseline r(log1p(SC), FC) = 0.411" in out and "fitted coupling.a" in out
    png = tmp_path / "fit_hcp_subject.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
