"""The example scripts run and write their figures."""

import runpy
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_simulate_tvb76_example(tmp_path, monkeypatch, capsys):
    script = EXAMPLES / "simulate_tvb76.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--duration", "100", "--out", str(tmp_path)])
    runpy.run_path(str(script), run_name="__main__")
    png = tmp_path / "simulate_tvb76.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote" in capsys.readouterr().out
