"""vbtjax.files: atomic writes survive SIGKILL at any moment; hostile archives and JSON are refused before any large
allocation, with one error type that names the file."""

import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from vbtjax import files


def _npy(shape, dtype="<f8", payload=b""):
    """An .npy member whose header declares `shape`, followed by `payload` (a forged or truncated array)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue() + payload


def test_npz_round_trip_reads_only_the_keys_asked(tmp_path):
    path = files.write_npz(tmp_path / "a.npz", {"x": np.arange(5.0), "y": np.eye(3, dtype=np.float32)})
    got = files.read_npz(path)
    np.testing.assert_array_equal(got["x"], np.arange(5.0))
    assert got["y"].dtype == np.float32
    # an unused member with corrupt deflate data is never decompressed, so it cannot fail the read
    buf = io.BytesIO()
    np.savez_compressed(buf, good=np.ones(4), bad=np.random.default_rng(0).random(2000))
    raw = bytearray(buf.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as z:
        bad = z.getinfo("bad.npy")
    start = bad.header_offset + 30 + len(bad.filename) + 40
    raw[start : start + 200] = b"\xff" * 200
    np.testing.assert_array_equal(files.read_npz(bytes(raw), keys=["good"])["good"], np.ones(4))
    with pytest.raises(files.FileReadError, match="damaged.npz: array 'bad' cannot be read"):
        files.read_npz(bytes(raw), what="damaged.npz")


def test_hostile_archives_are_refused_before_allocating(tmp_path):
    huge = tmp_path / "huge.npz"
    with zipfile.ZipFile(huge, "w") as z:
        z.writestr("w.npy", _npy((100_000, 100_000)))  # 80 GB declared in a few bytes
    with pytest.raises(files.FileReadError, match=r"huge.npz: array 'w' declares shape \(100000, 100000\)"):
        files.read_npz(huge)
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_BZIP2) as z:
        z.writestr("w.npy", _npy((8, 2**20)) + bytes(8 * 2**23))  # 64 MB of zeros in ~100 bytes of bz2
    assert bomb.stat().st_size < 10_000
    with pytest.raises(files.FileReadError, match="over the limit of 1048576 bytes"):
        files.read_npz(bomb, max_bytes=2**20)
    forged = tmp_path / "forged.npz"
    with zipfile.ZipFile(forged, "w") as z:
        z.writestr("w.npy", _npy((1000,), payload=b"\0" * 80))  # declares 8000 bytes, holds 80
    with pytest.raises(files.FileReadError, match="truncated or forged"):
        files.read_npz(forged)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, w=np.array([{"a": 1}], dtype=object))
    with pytest.raises(files.FileReadError, match="Python objects"):
        files.read_npz(pickled)
    empty = tmp_path / "empty.npz"
    zipfile.ZipFile(empty, "w").close()
    with pytest.raises(files.FileReadError, match="holds no arrays"):
        files.read_npz(empty)
    np.savez(tmp_path / "ok.npz", a=np.ones(2))
    with pytest.raises(files.FileReadError, match=r"lacks the arrays \['weights'\]"):
        files.read_npz(tmp_path / "ok.npz", required=["weights"])
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(files.FileReadError, match="text.npz is not a readable"):
        files.read_npz(tmp_path / "text.npz")
    with pytest.raises(files.FileReadError, match="does not exist"):
        files.read_npz(tmp_path / "missing.npz")
    data = (tmp_path / "ok.npz").read_bytes()
    with pytest.raises(files.FileReadError):
        files.read_npz(data[: len(data) // 2], what="half.npz")


def test_hostile_json_is_refused(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(files.FileReadError, match="deep.json: JSON nested too deep"):
        files.read_json(deep)
    (tmp_path / "latin.json").write_bytes('{"name": "Ré"}'.encode("latin-1"))
    with pytest.raises(files.FileReadError, match="latin.json is not UTF-8"):
        files.read_json(tmp_path / "latin.json")
    (tmp_path / "cut.json").write_text('{"a": [1, 2')
    with pytest.raises(files.FileReadError, match="cut.json is not valid JSON"):
        files.read_json(tmp_path / "cut.json")
    with pytest.raises(files.FileReadError, match="over the limit"):
        files.read_json(b"[" + b"1," * 1000 + b"1]", what="big", max_bytes=100)
    files.write_json(tmp_path / "ok.json", {"a": [1, 2.5, "é"]})
    assert files.read_json(tmp_path / "ok.json") == {"a": [1, 2.5, "é"]}
    with pytest.raises(ValueError):  # NaN is not JSON
        files.write_json(tmp_path / "nan.json", {"a": float("nan")})
    assert json.loads((tmp_path / "ok.json").read_text()) == {"a": [1, 2.5, "é"]}


def test_recover_finishes_or_undoes_an_interrupted_swap(tmp_path):
    target = tmp_path / "out"
    for version in ("1", "2"):
        staged = files.staging_dir(target)
        (staged / "v").write_text(version)
        files.replace_dir(staged, target)
    assert (target / "v").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing left behind
    # killed after the old folder was moved aside, before the new one was moved in: the new one is complete
    os.replace(target, tmp_path / ".out.old-aaa")
    (tmp_path / ".out.new-bbb").mkdir()
    (tmp_path / ".out.new-bbb" / "v").write_text("3")
    (tmp_path / ".out.tmp-ccc").mkdir()  # a staging folder that was still being written
    files.recover(target)
    assert (target / "v").read_text() == "3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    # killed with only the old folder aside (the new one never marked complete): the old one comes back
    os.replace(target, tmp_path / ".out.old-ddd")
    files.recover(target)
    assert (target / "v").read_text() == "3"
    assert not files.recover(tmp_path / "never").exists()


_WRITER = """
import sys, itertools
sys.path.insert(0, {root!r})
import files_only as files  # vbtjax/files.py without importing jax
target = sys.argv[1]
for i in itertools.count():
    staged = files.staging_dir(target)
    for k in range(20):
        (staged / f"part{{k}}").write_text(str(i))
    files.replace_dir(staged, target)
    files.write_json(target + ".json", {{"i": i, "pad": "x" * 20000}})
"""


def test_sigkill_at_any_moment_leaves_the_old_or_new_version(tmp_path):
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "files_only.py").write_text(open(files.__file__).read())
    script = tmp_path / "writer.py"
    script.write_text(_WRITER.format(root=str(shim)))
    target = tmp_path / "result"
    staged = files.staging_dir(target)
    for k in range(20):
        (staged / f"part{k}").write_text("first")
    files.replace_dir(staged, target)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(25):
        proc = subprocess.Popen([sys.executable, str(script), str(target)])
        time.sleep(0.3 + rng.uniform(0, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        files.recover(target)
        assert target.is_dir(), "the folder was lost"
        parts = {(target / f"part{k}").read_text() for k in range(20)}
        assert len(parts) == 1, f"a mixed folder: {parts}"
        seen |= parts
        if (tmp_path / "result.json").exists():
            assert files.read_json(tmp_path / "result.json")["pad"] == "x" * 20000
    assert len(seen) > 1  # the kills landed at different moments of different runs


def test_recover_leaves_a_running_writers_temporaries_alone(tmp_path):
    """A load or save in one process must not delete the folder another process is still building."""
    target = tmp_path / "out"
    staged = files.staging_dir(target)  # this process is alive: its staging folder is its own
    assert str(os.getpid()) in staged.name
    files.recover(target)
    assert staged.is_dir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = tmp_path / f".out.tmp-{int(dead.stdout)}-abc"
    orphan.mkdir()
    files.recover(target)
    assert not orphan.exists() and staged.is_dir()
