"""A newcomer's first session, run as a user runs it: the README's shell commands and every ``vbtjax`` subcommand
in a fresh process each (the console script when installed, else ``python -m vbtjax.cli``), in an empty folder, with
small settings. Each must exit 0 and write its files: PNG figures that are real images of nonzero size, JSON that
parses, arrays that load.

The README's ``bash`` blocks are read from README.md and run as they stand (``pip install`` and ``pytest`` left out),
so a README command that stops working fails here. Keep the commands there quick (seconds to a minute on 2 cores)
or this test grows with them. Options are the commands' defaults where possible, so that changes to their units
(``--tr``, ``--duration``) do not break it.

Timings the README quotes: the BOLD run's ("``--monitor bold`` ... ~30 s") is checked here against the CPU time of
the command (user + sys, which a busy machine hardly changes, unlike the wall time): the command must not need more
than twice the quoted time even on one core. The others are too long for CI (the VEP's ~4 min; the million
streamlines need a 700 MB file) and are measured by ``benchmarks/readme_timings.py``.

Slow (about 3 minutes of CPU on 2 cores, split over the tests below); still run in CI.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shlex
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SUBCOMMANDS = ("simulate", "fit", "vep", "connectome", "whatif", "sbi")

pytestmark = pytest.mark.slow


# ---------------------------------------------------------------------------------------------- helpers
def _env() -> dict[str, str]:
    """The user's environment, plus this checkout on PYTHONPATH (so that the console script imports this tree even
    when the editable install points elsewhere) and a non-interactive matplotlib."""
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env.pop("VBTJAX_DEBUG", None)
    return env


def _vbtjax() -> list[str]:
    exe = shutil.which("vbtjax")
    return [exe] if exe else [sys.executable, "-m", "vbtjax.cli"]


def sh(argv: list[str], cwd: Path, timeout: float = 400) -> subprocess.CompletedProcess:
    """Run one command as a user would; ``vbtjax`` and ``python`` are resolved as on their PATH. Fails the test with
    the command's output when it does not exit 0."""
    argv = [str(a) for a in argv]
    if argv[0] == "vbtjax":
        argv = _vbtjax() + argv[1:]
    elif argv[0] in ("python", "python3"):
        argv = [sys.executable] + argv[1:]
    t, cpu = time.perf_counter(), _children_cpu()
    res = subprocess.run(argv, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)
    took = time.perf_counter() - t
    res.cpu_s = _children_cpu() - cpu  # user + sys of the command and its children: hardly grows with the load
    assert res.returncode == 0, (
        f"`{shlex.join(argv)}` exited {res.returncode} after {took:.0f} s\n"
        f"--- stdout (end)\n{res.stdout[-3000:]}\n--- stderr (end)\n{res.stderr[-3000:]}"
    )
    print(f"{took:6.1f} s (CPU {res.cpu_s:.1f} s)  {shlex.join(argv)}")
    return res


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def check_png(path: Path) -> tuple[int, int]:
    """A PNG file with a nonzero width and height (read from its IHDR chunk) and some content."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR", f"{path}: no IHDR chunk"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 0 and height > 0, f"{path}: an empty {width} x {height} image"
    assert len(data) > 5_000, f"{path}: only {len(data)} bytes, a blank figure?"
    return width, height


def check_json(path: Path) -> object:
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    assert doc not in (None, {}, []), f"{path} is empty"
    return doc


def check_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    assert arrays, f"{path} holds no arrays"
    return arrays


def readme_commands(text: str) -> list[str]:
    """The shell commands of the ```bash blocks of `text`, one per ``&&``-joined part, comments and line
    continuations resolved; ``pip install`` and the test run are left out."""
    commands = []
    for block in re.findall(r"^```(?:bash|sh|console|shell)\n(.*?)^```", text, flags=re.S | re.M):
        block = re.sub(r"\s*\\\n\s*", " ", block)
        for line in block.splitlines():
            line = line.strip().removeprefix("$ ")
            if not line or line.startswith("#"):
                continue
            line = re.sub(r"\s+#.*$", "", line)  # a trailing comment (none of the commands has a ' #' in it)
            for part in (p.strip() for p in line.split("&&")):
                if part and not part.startswith("pip ") and "pytest" not in part:
                    commands.append(part)
    return commands


# ---------------------------------------------------------------------------------------------- the README
def test_readme_commands(tmp_path):
    commands = readme_commands(README.read_text(encoding="utf-8"))
    assert any(c.split()[:2] == ["vbtjax", "simulate"] for c in commands), commands
    for command in commands:
        sh(shlex.split(command), cwd=tmp_path)
    # the main job's outputs, as the README describes them
    check_png(tmp_path / "vbtjax-out" / "simulation.png")
    d = check_npz(tmp_path / "vbtjax-out" / "simulation.npz")
    assert d["data"].shape[-1] == 76 and np.all(np.isfinite(d["data"]))


def test_readme_command_parser():
    text = "x\n```bash\npip install . && vbtjax simulate   # run\n"
    text += "vbtjax connectome --tractogram a \\\n   --out b\n```\n"
    text += "```python\nvbtjax = 1\n```\n```bash\n# only a comment\npython -m pytest\n```\n"
    assert readme_commands(text) == ["vbtjax simulate", "vbtjax connectome --tractogram a --out b"]


def test_help_lists_every_subcommand(tmp_path):
    out = sh(["vbtjax", "--help"], cwd=tmp_path).stdout
    for name in SUBCOMMANDS:
        assert name in out, name
    out = sh(["vbtjax", "connectome", "--help"], cwd=tmp_path).stdout
    for option in ("--tractogram", "--parcellation", "--lut", "--out"):
        assert option in out


# ---------------------------------------------------------------------------------------------- structural
def test_demo_tractogram_to_connectome_to_simulation(tmp_path):
    """The demo data (vbt.datasets.write_demo) through `vbtjax connectome`, then simulated with `vbtjax simulate`
    (which checks the dynamics are not degenerate)."""
    sh(["python", "-c", "import vbtjax as vbt; vbt.datasets.write_demo('demo')"], cwd=tmp_path)
    demo = tmp_path / "demo"
    sh(
        ["vbtjax", "connectome", "--tractogram", "demo/tracks.trk", "--parcellation", "demo/parcellation.nii.gz"]
        + ["--lut", "demo/parcellation.tsv", "--out", "demo/connectome"],
        cwd=tmp_path,
    )
    out = demo / "connectome"
    check_png(out / "connectome.png")
    report = check_json(out / "report.json")
    assert report["report"]["n_streamlines"] == 2000 and report["regions"]["names"][0] == "frontal_L"
    assert (out / "connectome.zip").stat().st_size > 0 and (out / "regions.tsv").stat().st_size > 0
    c = check_npz(out / "connectome.npz")
    assert c["weights"].shape == (8, 8) and c["weights"].sum() > 0
    total = sum(p.stat().st_size for p in demo.rglob("*") if p.is_file())
    assert total < 3_000_000, f"the demo and its connectome take {total} bytes"
    # the MontbrioPazoRoxin preset (tuned on TVB's 76 regions) falls quiet on these 8 regions; SupHopf's does not
    sim = ["vbtjax", "simulate", "--connectome", "demo/connectome/connectome.zip", "--model", "SupHopf"]
    sh([*sim, "--out", "demo/sim"], cwd=tmp_path)
    check_png(demo / "sim" / "simulation.png")
    d = check_npz(demo / "sim" / "simulation.npz")
    assert d["data"].shape[-1] == 8 and np.all(np.isfinite(d["data"]))


# ---------------------------------------------------------------------------------------------- personalisation
def test_fit_then_whatif(tmp_path):
    """`vbtjax fit` on the embedded HCP subject (two steps), then a lesion of a region named by its AAL2 label on
    the fitted twin with `vbtjax whatif`."""
    sh(["vbtjax", "fit", "--steps", "2", "--eval", "1", "--out", "fit"], cwd=tmp_path)
    check_png(tmp_path / "fit" / "fit.png")
    check_json(tmp_path / "fit" / "fit.json")
    check_npz(tmp_path / "fit" / "fit.npz")
    assert (tmp_path / "fit" / "twin").is_dir()
    sh(
        ["vbtjax", "whatif", "fit/twin", "--scenario", "lesion:regions=Precentral_L*0.2", "--samples", "2"]
        + ["--out", "whatif"],
        cwd=tmp_path,
    )
    check_png(tmp_path / "whatif" / "whatif.png")
    check_json(tmp_path / "whatif" / "summary.json")


def _demo_connectome(folder: Path) -> Path:
    """The demo's 8-region connectome (centres in the space of tvb-data's SEEG contacts), for the VEP and SBI runs."""
    import vbtjax as vbt

    demo = vbt.datasets.write_demo(folder / "demo", n_streamlines=400)
    conn, _ = vbt.Connectome.from_tractogram(demo.tractogram, demo.parcellation, lut=demo.lut, return_report=True)
    return conn.save(folder / "demo.npz")


def test_vep_then_whatif(tmp_path):
    """`vbtjax vep` on a synthetic patient of the demo connectome (few draws: the run is about compilation), then a
    virtual resection on the patient's twin with `vbtjax whatif`."""
    _demo_connectome(tmp_path)
    sh(
        ["vbtjax", "vep", "--connectome", "demo.npz", "--synthetic-ez", "0", "--seed", "1", "--chains", "2"]
        + ["--warmup", "10", "--samples", "10", "--resection-draws", "4", "--out", "vep"],
        cwd=tmp_path,
    )
    vep = tmp_path / "vep"
    for png in ("vep.png", "ppc.png"):
        check_png(vep / png)
    summary = check_json(vep / "vep.json")
    assert "verdict" in summary and "predicted_ez" in summary
    ranking = check_json(vep / "ranking.json")
    assert len(ranking) == 8 and {"index", "label", "probability"} <= set(ranking[0])
    assert (vep / "posterior.nc").stat().st_size > 0
    sh(
        ["vbtjax", "whatif", "vep/twin", "--scenario", "resect:frontal_L", "--samples", "4", "--out", "whatif"],
        cwd=tmp_path,
    )
    check_png(tmp_path / "whatif" / "whatif.png")
    check_json(tmp_path / "whatif" / "summary.json")


def test_sbi_simulate_train_infer(tmp_path):
    """`vbtjax sbi simulate | train | infer` on a synthetic VEP patient of the demo connectome, tiny budget."""
    _demo_connectome(tmp_path)
    sh(
        ["vbtjax", "sbi", "simulate", "--problem", "vep", "--connectome", "demo.npz", "--synthetic-ez", "0"]
        + ["--seed", "1", "--n", "200", "--out", "sbi"],
        cwd=tmp_path,
    )
    sh(
        ["vbtjax", "sbi", "train", "--out", "sbi", "--ensemble", "1", "--layers", "2", "--width", "16"]
        + ["--max-epochs", "3", "--test", "20", "--calibration-draws", "20"],
        cwd=tmp_path,
    )
    sbi = tmp_path / "sbi"
    for png in ("training.png", "calibration.png"):
        check_png(sbi / png)
    check_json(sbi / "calibration.json")
    sh(["vbtjax", "sbi", "infer", "--out", "sbi", "--observation", "sbi/patient/seeg.npz", "--draws", "100"], tmp_path)
    pngs = list((sbi / "infer").glob("*.png"))
    assert pngs, "sbi infer wrote no figure"
    for png in pngs:
        check_png(png)
    for js in (sbi / "infer").glob("*.json"):
        check_json(js)


# ---------------------------------------------------------------------------------------------- quoted timings
def quoted_seconds(text: str, after: str) -> float:
    """The time ``~N s`` / ``~N min`` quoted in the first sentence of `text` that mentions `after`."""
    m = re.search(re.escape(after) + r"[^.]*?~\s*(\d+(?:\.\d+)?)\s*(s|sec|min)\b", text)
    assert m, (
        f"README.md no longer quotes a time as '~N s' or '~N min' in the sentence with {after!r}; update "
        "test_readme_quoted_bold_time in tests/test_newcomer.py to what it says now"
    )
    return float(m[1]) * (60.0 if m[2] == "min" else 1.0)


def test_quoted_seconds_parser():
    assert quoted_seconds("`--monitor bold` simulates 60 s (~1 min on 2 cores) and plots", "--monitor bold") == 60
    assert quoted_seconds("a; `--monitor bold` runs in ~40 s. Then ~5 min", "--monitor bold") == 40


def test_readme_quoted_bold_time(tmp_path):
    """`vbtjax simulate --monitor bold` takes no more than twice the README's quoted time, measured in CPU time (so
    a loaded CI machine does not fail it, and a run that would not fit the quote even on 1 core does)."""
    quoted = quoted_seconds(README.read_text(encoding="utf-8"), "--monitor bold")
    res = sh(["vbtjax", "simulate", "--monitor", "bold", "--out", "bold"], cwd=tmp_path)
    check_png(tmp_path / "bold" / "simulation.png")
    assert res.cpu_s <= 2 * quoted, f"README quotes {quoted:.0f} s; the run needed {res.cpu_s:.0f} s of CPU"
