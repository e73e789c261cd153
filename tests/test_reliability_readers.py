"""Hostile and damaged input files (issue 23): every reader of connectomes, sensors, tractograms, SEEG recordings,
sweep results and resting-state matrices refuses them with a ValueError (FileReadError where the file is at fault)
whose message names the file and the reason, never a raw zlib.error, EOFError, BadZipFile, UnicodeDecodeError,
JSONDecodeError, RecursionError or MemoryError. Sizes are checked before anything is decompressed or allocated, and
unused members of an archive are never decompressed.

The files are written here with zipfile, numpy and json: corrupt containers, which no real writer makes."""

import bz2
import io
import json
import re
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest

import vbtjax as vbt
from vbtjax import files
from vbtjax.connectome import Connectome
from vbtjax.empirical import read_matrix
from vbtjax.files import FileReadError
from vbtjax.recordings import SEEGRecording, read_seeg
from vbtjax.sensors import Sensors, tvb_projection
from vbtjax.structural import load_streamlines

W = np.array([[0.0, 2.0, 1.0], [4.0, 0.0, 0.5], [0.5, 1.0, 0.0]])
L = np.array([[0.0, 10.0, 20.0], [10.0, 0.0, 30.0], [20.0, 30.0, 0.0]])


# ---------------------------------------------------------------------------------------------------- helpers


def _text(m: np.ndarray) -> str:
    return "\n".join(" ".join(repr(float(v)) for v in row) for row in m) + "\n"


def _zip(members: dict, compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _data_offset(raw: bytes, name: str) -> int:
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        offset = z.getinfo(name).header_offset
    n_name, n_extra = struct.unpack("<HH", raw[offset + 26 : offset + 30])
    return offset + 30 + n_name + n_extra


def _corrupt(raw: bytes, name: str, n: int = 64) -> bytes:
    """`raw` with the first `n` compressed bytes of member `name` overwritten (an invalid deflate block type)."""
    start = _data_offset(raw, name)
    out = bytearray(raw)
    out[start : start + n] = b"\xff" * n
    return bytes(out)


def _declare(raw: bytes, name: str, size: int) -> bytes:
    """`raw` with the decompressed size that member `name` declares (local and central headers) set to `size`."""
    out = bytearray(raw)
    key = name.encode()
    pos = out.find(b"PK\x01\x02")
    while pos >= 0:
        n_name = struct.unpack("<H", out[pos + 28 : pos + 30])[0]
        if bytes(out[pos + 46 : pos + 46 + n_name]) == key:
            out[pos + 24 : pos + 28] = struct.pack("<I", size)
            local = struct.unpack("<I", out[pos + 42 : pos + 46])[0]
            out[local + 22 : local + 26] = struct.pack("<I", size)
            return bytes(out)
        pos = out.find(b"PK\x01\x02", pos + 4)
    raise KeyError(name)


def _npy_header(shape, dtype="<f8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _refused(call, *names, error=FileReadError, match=None):
    """Run `call`, expecting `error` whose message names every one of `names` (and matches `match`)."""
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    for name in names:
        assert str(name) in message, message
    if match is not None:
        assert re.search(match, message), message
    return message


@pytest.fixture
def no_bz2(monkeypatch):
    """Fail the test if the readers start a bzip2 decompression."""

    def boom(*args, **kwargs):
        raise AssertionError("a bzip2 member was decompressed")

    monkeypatch.setattr(files.bz2, "BZ2Decompressor", boom)


# ---------------------------------------------------------------------------------------------------- connectomes


def test_connectome_npz_damaged(tmp_path):
    buf = io.BytesIO()
    np.savez_compressed(buf, weights=np.random.default_rng(0).random((40, 40)), lengths=np.ones((40, 40)))
    bad = tmp_path / "corrupt.npz"
    bad.write_bytes(_corrupt(buf.getvalue(), "weights.npy"))
    _refused(lambda: Connectome.from_file(bad), bad, match="'weights' cannot be read")
    empty = tmp_path / "empty.npz"
    zipfile.ZipFile(empty, "w").close()
    _refused(lambda: Connectome.from_file(empty), empty, match="holds no arrays")
    huge = tmp_path / "huge.npz"
    huge.write_bytes(_zip({"weights.npy": _npy_header((100_000, 100_000)), "lengths.npy": _npy_header((3, 3))}))
    _refused(lambda: Connectome.from_file(huge), huge, match=r"declares shape \(100000, 100000\)")
    cut = tmp_path / "cut.npz"
    cut.write_bytes(buf.getvalue()[:300])
    _refused(lambda: Connectome.from_file(cut), cut)


def test_connectome_npz_unused_corrupt_member_is_not_read(tmp_path):
    buf = io.BytesIO()
    notes = np.random.default_rng(1).random(5000)
    np.savez_compressed(buf, weights=W, lengths=L, notes=notes)
    path = tmp_path / "extra.npz"
    path.write_bytes(_corrupt(buf.getvalue(), "notes.npy"))
    conn = Connectome.from_file(path)
    np.testing.assert_array_equal(np.asarray(conn.weights), W)


def test_connectome_complex_and_nonnumeric_files(tmp_path):
    np.savez(tmp_path / "c.npz", weights=W + 1j, lengths=L)
    _refused(lambda: Connectome.from_file(tmp_path / "c.npz"), "c.npz", match="weights.*complex")
    np.save(tmp_path / "w.npy", W.astype(complex))
    np.savetxt(tmp_path / "l.csv", L, delimiter=",")
    _refused(lambda: Connectome.from_file(tmp_path / "w.npy", lengths=tmp_path / "l.csv"), "w.npy", match="complex")
    np.savez(tmp_path / "dup.npz", weights=W, lengths=L, labels=np.array(["a", "b", "a"]))
    _refused(lambda: Connectome.from_file(tmp_path / "dup.npz"), "dup.npz", match="'a'.*more than once")
    np.savez(tmp_path / "neg.npz", weights=W, lengths=-L)
    _refused(lambda: Connectome.from_file(tmp_path / "neg.npz"), "neg.npz", match="negative")


def test_npy_matrix_hostile_headers(tmp_path):
    np.savetxt(tmp_path / "l.csv", L, delimiter=",")
    big = tmp_path / "big.npy"
    big.write_bytes(_npy_header((100_000, 100_000)) + b"\0" * 64)
    lengths = tmp_path / "l.csv"
    _refused(lambda: Connectome.from_file(big, lengths=lengths), big, match="declares shape.*over the limit")
    short = tmp_path / "short.npy"
    short.write_bytes(_npy_header((30, 30)) + b"\0" * 64)
    _refused(lambda: Connectome.from_file(short, lengths=lengths), short, match="truncated")
    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    _refused(lambda: Connectome.from_file(pickled, lengths=lengths), pickled, match="Python objects")
    _refused(lambda: read_matrix(short, what="bold"), short, match="^bold: ")


def _tvb_zip(extra: dict | None = None, compression=zipfile.ZIP_DEFLATED) -> bytes:
    return _zip({"weights.txt": _text(W), "tract_lengths.txt": _text(L), **(extra or {})}, compression)


def test_tvb_zip_damaged_members(tmp_path):
    path = tmp_path / "conn.zip"
    path.write_bytes(_corrupt(_tvb_zip(), "weights.txt", n=8))
    _refused(lambda: Connectome.from_file(path), path, "weights.txt", match="corrupt")
    path.write_bytes(_tvb_zip()[:-30])  # the end of the central directory is missing
    _refused(lambda: Connectome.from_file(path), path, match="not a readable zip")
    path.write_bytes(_zip({"weights.txt": b"\xff\xfe1 2 3\n", "tract_lengths.txt": _text(L)}))
    _refused(lambda: Connectome.from_file(path), path, "weights.txt", match="not UTF-8")
    raw = _tvb_zip()
    path.write_bytes(_declare(raw, "tract_lengths.txt", 10))  # forged: holds more than it declares
    _refused(lambda: Connectome.from_file(path), path, "tract_lengths.txt", match="declares")
    bz = tmp_path / "bz.zip"
    bz.write_bytes(_zip({"weights.txt.bz2": bz2.compress(_text(W).encode())[:-10], "tract_lengths.txt": _text(L)}))
    _refused(lambda: Connectome.from_file(bz), bz, "weights.txt.bz2", match="bzip2")


def test_tvb_zip_unused_members_are_not_decompressed(tmp_path, no_bz2):
    """A zip whose unused bzip2 members would fail or be huge if decompressed: one corrupt, one declaring 4 GB.
    Reading the connectome touches neither (no bzip2 decompressor is even started)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("weights.txt", _text(W))
        z.writestr("tract_lengths.txt", _text(L))
        z.writestr("areas.txt", np.random.default_rng(2).random(20_000).tobytes(), compress_type=zipfile.ZIP_BZIP2)
        z.writestr("cortical.txt", b"1\n" * 100_000, compress_type=zipfile.ZIP_BZIP2)
    raw = _declare(_corrupt(buf.getvalue(), "areas.txt"), "cortical.txt", 2**32 - 2)
    path = tmp_path / "conn.zip"
    path.write_bytes(raw)
    assert zipfile.ZipFile(path).getinfo("cortical.txt").file_size == 2**32 - 2
    conn = Connectome.from_file(path)
    np.testing.assert_array_equal(np.asarray(conn.weights), W)
    np.testing.assert_array_equal(np.asarray(conn.lengths), L)


def test_bz2_bomb_refused_before_decompression(tmp_path, monkeypatch, no_bz2):
    """A zip member of 16 MB of text compressed by bzip2 to a few hundred bytes, with the text limit lowered to
    1 MB (the default, 256 MiB, works the same on a 4.6 GB bomb): refused from its declared size, unopened."""
    monkeypatch.setattr(files, "TEXT_MAX_BYTES", 2**20)
    raw = _zip({"weights.txt": b"0" * 2**24, "tract_lengths.txt": _text(L)}, zipfile.ZIP_BZIP2)
    assert len(raw) < 2000
    path = tmp_path / "bomb.zip"
    path.write_bytes(raw)
    _refused(lambda: Connectome.from_file(path), path, "weights.txt", match="declares 16777216 bytes.*over the limit")


def test_bz2_bomb_with_forged_size_stops_at_the_declared_size(tmp_path):
    """The same bomb declaring 100 bytes: decompression stops just past them (zipfile itself would expand a whole
    bzip2 chunk first), so memory stays small."""
    raw = _declare(
        _zip({"weights.txt": b"0" * 2**24, "tract_lengths.txt": _text(L)}, zipfile.ZIP_BZIP2), "weights.txt", 100
    )
    path = tmp_path / "forged.zip"
    path.write_bytes(raw)
    tracemalloc.start()
    try:
        _refused(lambda: Connectome.from_file(path), path, "weights.txt", match="expands past the 100 bytes")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20, peak


def test_bz2_text_file_bomb_is_bounded(tmp_path, monkeypatch):
    """A TVB folder whose weights.txt.bz2 expands past the limit: decompression stops at the limit."""
    monkeypatch.setattr(files, "TEXT_MAX_BYTES", 2**20)
    (tmp_path / "weights.txt.bz2").write_bytes(bz2.compress(b"0" * 2**24))
    (tmp_path / "tract_lengths.txt").write_text(_text(L))
    _refused(lambda: Connectome.from_file(tmp_path), "weights.txt.bz2", match="expands past the limit of 1048576")


def test_mat_damaged(tmp_path):
    path = tmp_path / "c.mat"
    import scipy.io

    scipy.io.savemat(path, {"sc": W, "len": L})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])
    _refused(lambda: Connectome.from_file(path), path)


# ---------------------------------------------------------------------------------------------------- sensors


def test_sensor_files_damaged(tmp_path, monkeypatch, no_bz2):
    good = "a 1 2 3\nb 4 5 6\n"
    path = tmp_path / "s.zip"
    path.write_bytes(_corrupt(_zip({"seeg.txt": good * 50}), "seeg.txt", n=8))
    _refused(lambda: Sensors.from_file(path), path, "seeg.txt", match="corrupt")
    monkeypatch.setattr(files, "TEXT_MAX_BYTES", 2**20)
    path.write_bytes(_zip({"seeg.txt": good * 2**17}, zipfile.ZIP_BZIP2))
    _refused(lambda: Sensors.from_file(path), path, "seeg.txt", match="over the limit")
    path.write_bytes(b"PK\x03\x04 not really")
    _refused(lambda: Sensors.from_file(path), path, match="not a readable zip")


def test_sensor_bz2_truncated(tmp_path):
    path = tmp_path / "s.txt.bz2"
    path.write_bytes(bz2.compress(b"a 1 2 3\n" * 100)[:-8])
    _refused(lambda: Sensors.from_file(path), path, match="bzip2")


def test_projection_npy_header_checked(tmp_path, monkeypatch):
    """tvb_projection reads the .npy header before the data: a forged shape is refused without allocating."""
    fake = tmp_path / "projection.npy"
    fake.write_bytes(_npy_header((100_000, 100_000)) + b"\0" * 64)
    real = vbt.sensors._tvb_resource

    def resource(folder, name, caller):
        return fake if folder == "projectionMatrix" else real(folder, name, caller)

    monkeypatch.setattr(vbt.sensors, "_tvb_resource", resource)
    _refused(lambda: tvb_projection("eeg"), fake, match=r"declares shape \(100000, 100000\)")
    fake.write_bytes(_npy_header((65, 16384), "<c16"))
    _refused(lambda: tvb_projection("eeg"), fake, match="truncated")


# ---------------------------------------------------------------------------------------------------- tractograms


def _trx(header, positions=None, offsets=None, folder=None, path=None, compression=zipfile.ZIP_STORED):
    positions = np.arange(15, dtype=np.float32).reshape(5, 3) if positions is None else positions
    offsets = np.array([0, 3], dtype=np.uint32) if offsets is None else offsets
    head = header if isinstance(header, bytes) else json.dumps(header).encode()
    members = {"header.json": head, "positions.3.float32": positions.tobytes(), "offsets.uint32": offsets.tobytes()}
    if folder is not None:
        folder.mkdir()
        for name, data in members.items():
            (folder / name).write_bytes(data)
        return folder
    path.write_bytes(_zip(members, compression))
    return path


@pytest.mark.parametrize(
    "header, match",
    [
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"NB_VERTICES": 5, ', "not valid JSON"),
        pytest.param(b"[" * 200_000 + b"]" * 200_000, "nested too deep", id="200000-deep"),
        ([5, 2], "not a JSON object"),
        ({"NB_VERTICES": 5}, "lacks NB_STREAMLINES"),
        ({"NB_VERTICES": "5", "NB_STREAMLINES": 2}, "NB_VERTICES='5'"),
        ({"NB_VERTICES": 5, "NB_STREAMLINES": True}, "NB_STREAMLINES=True"),
        ({"NB_VERTICES": -1, "NB_STREAMLINES": 2}, "non-negative"),
        ({"NB_VERTICES": 5.5, "NB_STREAMLINES": 2}, "NB_VERTICES=5.5"),
        ({"NB_VERTICES": 10**12, "NB_STREAMLINES": 2}, "NB_VERTICES=1000000000000"),
        ({"NB_VERTICES": 5, "NB_STREAMLINES": 10**12}, "NB_STREAMLINES=1000000000000"),
    ],
)
def test_trx_malformed_header(tmp_path, header, match):
    path = _trx(header, path=tmp_path / "t.trx")
    _refused(lambda: load_streamlines(path), path, match=match)


def test_trx_damaged_arrays(tmp_path):
    ok = {"NB_VERTICES": 5, "NB_STREAMLINES": 2}
    path = _trx(ok, offsets=np.array([0, 4, 3], np.uint32), path=tmp_path / "t.trx")
    _refused(lambda: load_streamlines(path), path, match="inconsistent offsets")
    path = _trx(ok, path=tmp_path / "d.trx", compression=zipfile.ZIP_DEFLATED)
    path.write_bytes(_corrupt(path.read_bytes(), "positions.3.float32", n=8))
    _refused(lambda: load_streamlines(path), path, "positions.3.float32", match="corrupt")
    folder = _trx(ok, positions=np.zeros((4, 3), np.float32), folder=tmp_path / "f.trx")
    _refused(lambda: load_streamlines(folder), folder, match="NB_VERTICES=5, but positions.3.float32 holds 48 bytes")
    empty = _trx({"NB_VERTICES": 5, "NB_STREAMLINES": 0}, offsets=np.zeros(0, np.uint32), path=tmp_path / "e.trx")
    _refused(lambda: load_streamlines(empty), empty, match="points but no streamlines")
    (tmp_path / "x.trx").write_bytes(b"not a zip at all")
    _refused(lambda: load_streamlines(tmp_path / "x.trx"), "x.trx", match="not a readable zip")


# ---------------------------------------------------------------------------------------------------- SEEG


def _seeg(path, **fields):
    arrays = {"data": np.ones((2, 8)), "sfreq": np.asarray(256.0), "ch_names": np.array(["A1", "A2"])} | fields
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


@pytest.mark.parametrize(
    "fields, match",
    [
        ({"sfreq": np.array([256.0, 512.0])}, "sfreq must be one positive number"),
        ({"sfreq": np.asarray("256")}, "sfreq must be one positive number"),
        ({"sfreq": np.asarray(-1.0)}, "sfreq must be a positive"),
        ({"data": np.ones((2, 8)) * (1 + 1j)}, "data is complex"),
        ({"data": np.array([["a"] * 8] * 2)}, "data is not numeric"),
        ({"meta_json": np.asarray("{not json")}, "meta_json is not valid JSON"),
        ({"meta_json": np.asarray("[1, 2]")}, "meta_json holds a list"),
        pytest.param({"meta_json": np.asarray("[" * 200_000)}, "meta_json: JSON nested too deep", id="deep-meta"),
        ({"meta_json": np.arange(3)}, "meta_json must be one string"),
        ({"ch_names": np.arange(2)}, "ch_names must be a 1-D array of strings"),
        ({"sfreq": None}, r"missing keys \['sfreq'\]"),
        ({"positions": np.ones((2, 3)) * 1j}, "positions must be real"),
    ],
)
def test_seeg_npz_hostile_fields(tmp_path, fields, match):
    path = _seeg(tmp_path / "rec.npz", **fields)
    _refused(lambda: SEEGRecording.load(path), path, match=match)
    _refused(lambda: read_seeg(path), path, match=match)


def test_seeg_npz_damaged_container(tmp_path):
    buf = io.BytesIO()
    np.savez_compressed(
        buf, data=np.random.default_rng(3).random((4, 2000)), sfreq=256.0, ch_names=["a", "b", "c", "d"]
    )
    path = tmp_path / "bad.npz"
    path.write_bytes(_corrupt(buf.getvalue(), "data.npy"))
    _refused(lambda: SEEGRecording.load(path), path, match="'data' cannot be read")
    zipfile.ZipFile(path, "w").close()
    _refused(lambda: SEEGRecording.load(path), path, match="holds no arrays")
    path.write_bytes(_zip({"data.npy": _npy_header((100_000, 100_000)), "sfreq.npy": _npy_header(())}))
    _refused(lambda: SEEGRecording.load(path), path, match="over the limit")


def test_seeg_save_is_atomic_and_round_trips(tmp_path, monkeypatch):
    rec = SEEGRecording(np.ones((2, 8)), 256.0, ["A1", "A2"], {"x": [1, 2]}, ["A2"], np.zeros((2, 3)))
    path = rec.save(tmp_path / "rec.npz")
    back = SEEGRecording.load(path)
    assert back.meta == {"x": [1, 2]} and back.bads == ["A2"] and back.sfreq == 256.0
    # a writer that dies mid-write leaves the old file
    monkeypatch.setattr(files.os, "replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        SEEGRecording(np.zeros((2, 8)), 100.0, ["A1", "A2"]).save(path)
    assert SEEGRecording.load(path).sfreq == 256.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.npz"]


# ---------------------------------------------------------------------------------------------------- sweep results


def _sweep_result(tmp_path):
    res = vbt.SweepResult(
        values=np.array([0.1, 0.2]),
        ts={"raw": np.arange(3.0)},
        ys={"raw": np.zeros((2, 3, 1, 2))},
        features=None,
        finite=np.array([True, True]),
        names=("coupling.a",),
        units=("",),
        dt=0.1,
        t1=0.3,
        n_steps=3,
        batch_size=2,
        n_devices=1,
        n_processes=1,
    )
    return res.save(tmp_path / "sweep.npz")


def _rewrite_meta(path, edit):
    arrays = files.read_npz(path)
    meta = json.loads(str(arrays["meta"]))
    arrays["meta"] = np.asarray(edit(meta) if callable(edit) else edit)
    files.write_npz(path, arrays)
    return path


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda m: json.dumps({k: v for k, v in m.items() if k != "n_values"}), "KeyError: 'n_values'"),
        (lambda m: json.dumps(m | {"n_values": 10**9}), "n_values=1000000000"),
        (lambda m: json.dumps(m | {"trees": {"ts": [[["dict", "raw"]]], "ys": [[5]], "features": None}}), "metadata"),
        (lambda m: json.dumps(m | {"trees": "x"}), "expected ts, ys and features"),
        (lambda m: json.dumps(m | {"dt": "fast"}), "ValueError"),
        (lambda m: json.dumps(m | {"format": "other"}), "not a file written by SweepResult.save"),
        ("{broken", "meta is not valid JSON"),
        pytest.param("[" * 200_000, "nested too deep", id="deep-meta"),
        (np.arange(3), "not one JSON string"),
    ],
)
def test_sweep_result_malformed_meta(tmp_path, edit, match):
    path = _rewrite_meta(_sweep_result(tmp_path), edit)
    _refused(lambda: vbt.SweepResult.load(path), path, match=match)


def test_sweep_result_damaged_container(tmp_path):
    path = _sweep_result(tmp_path)
    back = vbt.SweepResult.load(path)
    np.testing.assert_array_equal(back.values, [0.1, 0.2])
    assert back.ys["raw"].shape == (2, 3, 1, 2) and back.names == ("coupling.a",)
    arrays = files.read_npz(path)
    del arrays["ys_0"]
    files.write_npz(path, arrays)
    _refused(lambda: vbt.SweepResult.load(path), path, match=r"lacks the arrays \['ys_0'\]")
    path.write_bytes(path.read_bytes()[:100])
    _refused(lambda: vbt.SweepResult.load(path), path, match="not a readable")
    zipfile.ZipFile(path, "w").close()
    _refused(lambda: vbt.SweepResult.load(path), path, match="holds no arrays")


# ---------------------------------------------------------------------------------------------------- writers


def test_connectome_writers_are_atomic(tmp_path, monkeypatch):
    conn = Connectome(weights=W, lengths=L, centres=np.zeros((3, 3)), labels=["a", "b", "c"])
    for name in ("c.npz", "c.zip"):
        path = conn.save(tmp_path / name)
        assert Connectome.from_file(path).labels == ("a", "b", "c")
    monkeypatch.setattr(files.os, "replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    other = Connectome(weights=2 * W, lengths=L)
    for name in ("c.npz", "c.zip"):
        with pytest.raises(KeyboardInterrupt):
            other.save(tmp_path / name)
    monkeypatch.undo()
    for name in ("c.npz", "c.zip"):
        np.testing.assert_array_equal(np.asarray(Connectome.from_file(tmp_path / name).weights), W)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npz", "c.zip"]


def test_parcellation_image_declaring_a_huge_shape(tmp_path):
    nib = pytest.importorskip("nibabel")
    header = nib.Nifti1Header()
    header.set_data_dtype(np.int16)
    header.set_data_shape((30_000, 30_000, 30_000))  # 54 TB of int16 declared in 352 bytes
    header.set_qform(np.eye(4), code=1)
    path = tmp_path / "parc.nii"
    path.write_bytes(header.binaryblock + b"\0" * 4 + b"\0" * 64)
    _refused(
        lambda: vbt.structural.Parcellation.load(path), path, error=ValueError, match=r"declares shape.*over the limit"
    )
    path.write_bytes(header.binaryblock[:200])
    _refused(lambda: vbt.structural.Parcellation.load(path), path, error=ValueError)


def test_sensor_constructor_refuses_duplicates_and_complex(tmp_path):
    with pytest.raises(ValueError, match=r"labels \['a'\] occur more than once"):
        Sensors(labels=["a", "b", "a"], positions=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="must be real"):
        Sensors(labels=["a"], positions=np.zeros((1, 3), complex))
    path = tmp_path / "s.txt"
    path.write_text("a 1 2 3\na 4 5 6\n")
    _refused(lambda: Sensors.from_file(path), path, match="occur more than once")
