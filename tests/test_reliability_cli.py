"""Reliability of the command line (issue 23): ``vbtjax fit`` killed (SIGKILL) at several moments leaves every output
complete or absent and ``--resume`` finishes it; ``--resume`` refuses changed settings in one line naming them and
records an allowed extension (more ``--steps``); hostile input files give a one-line error, never a traceback."""

import io
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from vbtjax import Twin, cli, files

N, T = 6, 60  # regions, BOLD volumes: a fit whose steps take milliseconds (the run is compilation)
PNG_END = b"IEND\xaeB`\x82"


@pytest.fixture(scope="module")
def subject(tmp_path_factory):
    """A small subject as files: weights (.npy), tract lengths (.csv, mm), BOLD region x time (.npy)."""
    folder = tmp_path_factory.mktemp("subject")
    rng = np.random.default_rng(0)
    w = rng.uniform(0, 1, (N, N)) * (1 - np.eye(N))
    lengths = rng.uniform(10, 80, (N, N))
    lengths = (lengths + lengths.T) / 2 * (1 - np.eye(N))
    bold = rng.standard_normal((N, T)).cumsum(axis=1) + rng.standard_normal((1, T))  # shared drive: some FC
    np.save(folder / "sc.npy", w)
    np.savetxt(folder / "len.csv", lengths, delimiter=",")
    np.save(folder / "bold.npy", bold)
    return folder


def fit_argv(subject: Path, out: Path, *extra) -> list[str]:
    return [
        "fit",
        "--sc",
        str(subject / "sc.npy"),
        "--lengths",
        str(subject / "len.csv"),
        "--bold",
        str(subject / "bold.npy"),
        "--tr",
        "0.72s",
        "--out",
        str(out),
        "--eval",
        "1",
        "--checkpoint-every",
        "1",
        "--quiet",
        *extra,
    ]


def assert_complete(out: Path) -> list[str]:
    """Every output present (not a temporary dot-file) is complete and loads; returns their names."""
    found = []
    for path in sorted(out.rglob("*")):
        rel = path.relative_to(out)
        if any(part.startswith(".") for part in rel.parts) or path.is_dir() or rel.parts[0] == "twin":
            continue
        found.append(str(rel))
        if path.suffix == ".npz":
            assert files.read_npz(path), rel
        elif path.suffix == ".json":
            assert files.read_json(path) is not None, rel
        elif path.suffix == ".png":
            data = path.read_bytes()
            assert data.startswith(b"\x89PNG") and data.endswith(PNG_END), rel
    if (out / "twin").exists():
        found.append("twin")
        assert Twin.load(out / "twin").network is not None
    return found


def kill_when(argv: list[str], ready, timeout: float = 180.0) -> int:
    """Run ``vbtjax ARGV`` in a subprocess and SIGKILL it as soon as ``ready()`` is true; returns its exit status
    (-9 when killed, else the status it finished with before the moment came)."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.Popen([sys.executable, "-m", "vbtjax.cli", *argv], env=env, stderr=subprocess.PIPE)
    t0 = time.monotonic()
    try:
        while proc.poll() is None:
            if ready():
                proc.kill()
                break
            if time.monotonic() - t0 > timeout:
                proc.kill()
                raise AssertionError(f"vbtjax {argv[0]} did not reach the moment in {timeout} s")
            time.sleep(0.002)
        err = proc.communicate()[1].decode()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode in (0, -9), err
    return proc.returncode


def checkpoint_step(out: Path) -> int:
    path = out / "checkpoint" / "checkpoint.npz"
    return int(files.read_npz(path, keys=["step"])["step"]) if path.exists() else -1


def test_fit_killed_at_several_moments_resumes(subject, tmp_path):
    out = tmp_path / "out"
    argv = fit_argv(subject, out, "--steps", "5")
    # 1: during the fit, once two steps are checkpointed
    rc = kill_when(argv, lambda: checkpoint_step(out) >= 2)
    assert rc == -9 and 2 <= checkpoint_step(out) < 5
    assert "checkpoint/checkpoint.npz" in assert_complete(out)
    losses = files.read_npz(out / "checkpoint" / "checkpoint.npz")["losses"]
    # 2: resumed, killed as soon as its first output appears (while the others are being written)
    rc = kill_when([*argv, "--resume"], lambda: (out / "fit.npz").exists())
    assert_complete(out)
    # 3: resumed again, killed in the middle of writing the twin (or later)
    kill_when([*argv, "--resume"], lambda: (out / "twin").exists() or any(out.glob(".twin*")))
    assert_complete(out)
    # resumed to the end: every output complete, the fit continues the steps done before the kills
    assert cli.main([*argv, "--resume"]) == 0
    names = assert_complete(out)
    assert {"fit.npz", "fit.json", "fit.png", "twin", "checkpoint/checkpoint.npz"} <= set(names)
    fit = files.read_npz(out / "fit.npz")
    assert fit["losses"].shape == (5,)
    np.testing.assert_array_equal(fit["losses"][: len(losses)], losses)
    resumed = files.read_json(out / "fit.json")["resumed"]
    assert len(resumed) >= 2 and resumed[0]["at_step"] == len(losses)


def test_fit_resume_refuses_changed_settings_and_records_more_steps(subject, tmp_path, capsys):
    out = tmp_path / "out"
    argv = fit_argv(subject, out, "--no-plot")
    assert cli.main([*argv, "--steps", "2"]) == 0
    capsys.readouterr()
    for extra, named in [
        (["--seed", "1"], "--seed 0 -> 1"),
        (["--lr", "0.2"], "--lr 0.1 -> 0.2"),
        (["--seed", "3", "--lr", "0.05"], "--lr 0.1 -> 0.05, --seed 0 -> 3"),
        (["--dt", "24"], "--dt 40.0 -> 24.0"),
    ]:
        rc = cli.main([*argv, "--steps", "3", "--resume", *extra])
        err = capsys.readouterr().err
        assert rc == 2, err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert err.startswith("vbtjax fit: error: --resume: cannot resume from") and named in err, err
    assert files.read_npz(out / "checkpoint" / "checkpoint.npz", keys=["step"])["step"] == 2  # untouched
    # another subject in the same folder
    other = tmp_path / "other"
    other.mkdir()
    for name in ("sc.npy", "len.csv"):
        (other / name).write_bytes((subject / name).read_bytes())
    np.save(other / "bold.npy", np.load(subject / "bold.npy") + np.random.default_rng(5).standard_normal((N, T)))
    rc = cli.main([*fit_argv(other, out, "--no-plot"), "--steps", "3", "--resume"])
    assert rc == 2 and "subject data" in capsys.readouterr().err
    # more steps: allowed, recorded in fit.json, the first two steps kept
    first = files.read_npz(out / "fit.npz")["losses"]
    assert cli.main([*argv, "--steps", "4", "--resume"]) == 0
    summary = json.loads((out / "fit.json").read_text())
    assert summary["resumed"] == [{"at_step": 2, "--steps": [2, 4]}] and summary["steps_done"] == 4
    np.testing.assert_array_equal(files.read_npz(out / "fit.npz")["losses"][:2], first)
    # a fresh run (no --resume) with other settings starts afresh: the old checkpoint goes, the new settings stay
    assert cli.main([*argv, "--steps", "0", "--seed", "5"]) == 0
    record = files.read_json(out / "checkpoint" / "settings.json")
    assert record["settings"]["--seed"] == 5 and record["resumed"] == []
    assert not (out / "checkpoint" / "checkpoint.npz").exists()


# ------------------------------------------------------------------------------------------------- hostile input
def _hostile_files(folder: Path) -> dict[str, Path]:
    w = np.random.default_rng(1).uniform(0, 1, (4, 4))
    buf = io.BytesIO()
    np.savez_compressed(buf, weights=w, lengths=10 * w)
    corrupt = bytearray(buf.getvalue())
    corrupt[60:90] = bytes(30)  # inside the first member's deflate stream
    paths = {
        "corrupt.npz": bytes(corrupt),
        "truncated.npz": buf.getvalue()[:150],
        "notzip.npz": b"this is not an archive\n",
        "non-utf8.json": b'{"problem": "\xff\xfe vep"}',
        "deep.json": b"[" * 200_000 + b"]" * 200_000,
    }
    out = {}
    for name, data in paths.items():
        out[name] = folder / name
        out[name].write_bytes(data)
    out["empty.npz"] = folder / "empty.npz"
    zipfile.ZipFile(out["empty.npz"], "w").close()
    return out


def _sbi_project(folder: Path, problem_json: Path) -> Path:
    """An sbi project folder whose problem.json is the given (hostile) file."""
    (folder / "budget").mkdir(parents=True)
    (folder / "budget" / "budget.json").write_text("{}")
    (folder / "problem.json").write_bytes(problem_json.read_bytes())
    return folder


def test_hostile_inputs_give_one_line_errors(tmp_path, capsys):
    bad = _hostile_files(tmp_path)
    out = str(tmp_path / "o")
    sim = ["simulate", "--duration", "1", "--dt", "0.1", "--out", out, "--quiet", "--no-plot", "--connectome"]
    cases = [
        [*sim, str(bad["corrupt.npz"])],
        [*sim, str(bad["truncated.npz"])],
        [*sim, str(bad["notzip.npz"])],
        [*sim, str(bad["empty.npz"])],
        [*sim, str(tmp_path / "missing.npz")],
        [
            "fit",
            "--sc",
            str(tmp_path / "missing.npy"),
            "--lengths",
            str(bad["empty.npz"]),
            "--bold",
            str(bad["empty.npz"]),
        ]
        + ["--tr", "0.72s", "--out", out, "--quiet"],
        ["fit", "--sc", str(bad["corrupt.npz"]), "--lengths", str(bad["empty.npz"]), "--bold", str(bad["notzip.npz"])]
        + ["--tr", "0.72s", "--out", out, "--quiet"],
        ["sbi", "train", "--out", str(_sbi_project(tmp_path / "p1", bad["non-utf8.json"])), "--quiet"],
        ["sbi", "train", "--out", str(_sbi_project(tmp_path / "p2", bad["deep.json"])), "--quiet"],
        ["sbi", "infer", "--out", str(tmp_path / "p1"), "--observation", str(bad["corrupt.npz"]), "--quiet"],
        ["whatif", str(tmp_path / "p1"), "--scenario", "resect:1", "--out", out, "--quiet"],
        ["simulate", "--monitor", "raw", "--duration", "1e9", "--dt", "0.01", "--out", out, "--quiet"],
    ]
    for argv in cases:
        rc = cli.main(argv)
        err = capsys.readouterr().err
        assert rc == 2, (argv, err)
        assert "Traceback" not in err and err.count("\n") == 1, (argv, err)
        assert err.startswith(f"vbtjax {argv[0]}: error: "), (argv, err)
    assert not (tmp_path / "o").exists()


def test_internal_errors_are_reported_as_bugs(monkeypatch, tmp_path, capsys):
    from vbtjax.cli import simulate as _cli_simulate

    def broken(setup, progress):
        raise TypeError("an internal mistake")

    monkeypatch.setattr(_cli_simulate, "_simulate", broken)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.delenv("VBTJAX_DEBUG", raising=False)
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    rc = cli.main(["simulate", "--duration", "1", "--dt", "0.1", "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert "internal error: TypeError: an internal mistake" in err and "this is a bug" in err
    saved = list(tmp_path.glob("vbtjax-traceback-*.txt"))
    assert len(saved) == 1 and "Traceback" in saved[0].read_text() and "broken" in saved[0].read_text()
    monkeypatch.setenv("VBTJAX_DEBUG", "1")
    with pytest.raises(TypeError, match="internal mistake"):
        cli.main(["simulate", "--duration", "1", "--dt", "0.1", "--out", str(tmp_path / "o"), "--quiet"])


def test_resume_settings_record(tmp_path):
    """The settings record behind every ``--resume`` (fit, vep): a fresh run drops an old checkpoint and records its
    settings; a resume refuses other settings (one line, old -> new) and records the allowed changes."""
    from vbtjax.cli.common import UsageError, resume_settings

    folder = tmp_path / "checkpoint"
    settings = {"--seed": 0, "--lr": 0.1, "--samples": 5, "data": "sha256:abc"}
    assert resume_settings(folder, "ckpt.npz", settings, resume=True) == []  # nothing to resume: a fresh run
    files.write_npz(folder / "ckpt.npz", {"step": np.asarray(7)})
    with pytest.raises(UsageError, match=r'--resume: .*--lr 0.1 -> 0.2, data "sha256:abc" -> "sha256:abd" differ'):
        resume_settings(folder, "ckpt.npz", {**settings, "--lr": 0.2, "data": "sha256:abd"}, True, ("--samples",))
    resumed = resume_settings(folder, "ckpt.npz", {**settings, "--samples": 9}, True, ("--samples",))
    assert resumed == [{"at_step": 7, "--samples": [5, 9]}]
    again = resume_settings(folder, "ckpt.npz", {**settings, "--samples": 9}, True, ("--samples",))
    assert again == [{"at_step": 7, "--samples": [5, 9]}, {"at_step": 7}]
    (folder / "settings.json").unlink()
    with pytest.raises(UsageError, match="no record of its settings"):
        resume_settings(folder, "ckpt.npz", settings, True)
    assert resume_settings(folder, "ckpt.npz", {**settings, "--seed": 1}, resume=False) == []  # a fresh run
    assert not (folder / "ckpt.npz").exists()
    assert files.read_json(folder / "settings.json")["settings"]["--seed"] == 1
