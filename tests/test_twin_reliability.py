"""Twins under stress (issue 23): saves killed with SIGKILL at every step and at random moments always leave the old
or the new twin, loadable; a loaded twin passes the checks a constructed one does, even when its content hash was
recomputed after a deliberate edit; hostile files (bad UTF-8, deep JSON, corrupt deflate, bz2 bombs, huge declared
shapes, empty archives) give a TwinFileError naming the file; HMAC signatures; `vbtjax whatif` refuses to write
non-finite outcomes."""

import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import equinox as eqx
import numpy as np
import pytest

import vbtjax as vbt
from vbtjax._serialise import content_hash
from vbtjax.twin import Prediction, Twin, TwinFileError

N = 4


def _twin(a: float = 0.02, which: str = "A") -> Twin:
    rng = np.random.default_rng(1)
    w = rng.uniform(0, 1, (N, N))
    np.fill_diagonal(w, 0)
    net = vbt.Network(
        model=vbt.models.Generic2dOscillator(a=np.linspace(-0.5, -0.2, N)),
        connectome=vbt.Connectome(weights=w, lengths=rng.uniform(5, 30, (N, N))),
        coupling=vbt.coupling.Linear(a=a),
        speed=3.0,
        noise=vbt.noise.Additive(nsig=1e-4),
    )
    return Twin(
        net,
        posterior={"coupling.a": rng.uniform(0.0, 0.04, (2, 3)), "model.a": rng.uniform(-0.5, -0.2, (2, 3, N))},
        simulation={"t1": 20.0, "dt": 0.1, "history": np.full((2, N), 0.1)},
        metadata={"which": which},
    )


def _leftovers(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}."))


# ------------------------------------------------------------------------------------------------- SIGKILL
KILLER = r"""
import json, os, random, signal, sys, time, warnings
from vbtjax.twin import Twin
sys.path.insert(0, sys.argv[2])
from test_twin_reliability import _twin, _leftovers
from pathlib import Path

path = Path(sys.argv[1])
twins = {"A": _twin(0.01, "A"), "B": _twin(0.03, "B")}
for t in twins.values():
    t._meta_and_arrays()  # host copies of the arrays made before forking: the forked writers need no JAX runtime
twins["A"].save(path)
random.seed(0)
warnings.filterwarnings("ignore", "os.fork")  # the forked writers only run Python, NumPy and file calls


def reap(pid):
    # wait for a writer; one stuck (a lock held by another thread at the fork) is killed and reported
    for _ in range(2000):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise SystemExit("a writer hung for 20 s")


def loaded():
    t = Twin.load(path)
    which = t.metadata["which"]
    a = float(t.network.coupling.a)
    assert a == float(twins[which].network.coupling.a), (which, a)  # JSON and arrays of one and the same version
    assert _leftovers(path) == [], _leftovers(path)  # recover() completed or removed every half-done swap
    return which


def writer(target, loop):
    # in the forked child: count every file-system step of the save, SIGKILL ourselves before or after step `target`
    count = [0]

    def tick():
        count[0] += 1
        if count[0] == target:
            os.kill(os.getpid(), signal.SIGKILL)

    def hooked(fn):
        def f(*a, **k):
            tick()
            out = fn(*a, **k)
            tick()
            return out
        return f

    for name in ("replace", "fsync", "unlink", "rmdir", "mkdir"):
        setattr(os, name, hooked(getattr(os, name)))
    current = loaded_now
    while True:
        current = "B" if current == "A" else "A"
        twins[current].save(path, overwrite=True)
        if not loop:
            os._exit(3)  # the save completed before step `target`


loaded_now = "A"
results = []
target = 1
while True:  # one kill at each step of a save, until a save completes before its kill
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        writer(target, loop=False)
    status = reap(pid)
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    new = "B" if loaded_now == "A" else "A"
    loaded_now = loaded()
    results.append({"kind": "step", "target": target, "killed": killed, "new": new, "found": loaded_now})
    if not killed:
        break
    target += 1
for i in range(int(sys.argv[3])):  # a writer saving A, B, A, ... in a loop, killed from outside at a random moment
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        writer(-1, loop=True)
    time.sleep(random.uniform(0.0, 0.04))
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    loaded_now = loaded()
    results.append({"kind": "random", "found": loaded_now})
print(json.dumps(results))
"""


@pytest.mark.parametrize("name, n_random", [("twin", 12), ("twin.zip", 16)])
def test_save_killed_at_any_moment_leaves_the_old_or_the_new_twin(tmp_path, name, n_random):
    """A writer process saving over an existing twin is SIGKILLed before and after each of its file-system steps (every
    write, flush, rename, deletion), then at random moments while saving in a loop: each time, Twin.load finds the
    old twin or the new one, complete, and no leftover."""
    path = tmp_path / name
    tests = str(Path(__file__).parent)
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    run = subprocess.run(
        [sys.executable, "-c", KILLER, str(path), tests, str(n_random)],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout.strip().splitlines()[-1])
    steps = [r for r in results if r["kind"] == "step"]
    kills = [r for r in steps if r["killed"]]
    assert len(kills) >= (20 if name == "twin" else 4)  # a folder save has >= 20 steps; a zip save is one write
    assert len(kills) + n_random >= 20
    assert not steps[-1]["killed"] and steps[-1]["found"] == steps[-1]["new"]
    old = [r["found"] != r["new"] for r in kills]
    # the old twin until the swap, then the new one: never anything else, never back
    assert old[0] and not all(old) and old == sorted(old, reverse=True), steps
    assert sum(r["kind"] == "random" for r in results) == n_random


def test_save_over_a_half_swapped_folder_and_load_recovers(tmp_path):
    """The states a killed folder swap can leave (only the new folder complete, or only the old) are found again."""
    a, b = _twin(0.01, "A"), _twin(0.03, "B")
    path = a.save(tmp_path / "t")
    path.rename(tmp_path / ".t.new-0123456789ab")  # killed after moving the old away, before moving the new in
    assert Twin.load(path).metadata["which"] == "A" and _leftovers(path) == []
    path.rename(tmp_path / ".t.old-0123456789ab")  # the old one moved away, the new one lost in its staging folder
    (tmp_path / ".t.tmp-0123456789ab").mkdir()
    b.save(path, overwrite=True)
    assert Twin.load(path).metadata["which"] == "B" and _leftovers(path) == []
    with pytest.raises(FileExistsError):
        a.save(path)


def test_prediction_save_is_atomic_and_adds_npz(tmp_path):
    pred = Prediction(outcome=np.arange(3.0), baseline=None, params={"coupling.a": np.ones(3)}, scenario={"x": 1})
    p = pred.save(tmp_path / "pred")
    assert p == tmp_path / "pred.npz" and sorted(os.listdir(tmp_path)) == ["pred.npz"]
    with np.load(p) as z:
        assert np.array_equal(z["outcome"], np.arange(3.0)) and json.loads(str(z["scenario"])) == {"x": 1}


# ------------------------------------------------------------------------------------------ loading validates
def _arrays(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "arrays.npz") as z:
        return {k: z[k] for k in z.files}


def _tampered(tmp_path: Path, edit, name: str = "t") -> Path:
    """A saved twin edited by `edit(meta, arrays)`, with its content hash recomputed (a deliberate edit)."""
    folder = _twin().save(tmp_path / name)
    meta = json.loads((folder / "twin.json").read_text())
    meta.pop("content_hash")
    arrays = _arrays(folder)
    edit(meta, arrays)
    meta["content_hash"] = content_hash(meta, arrays)
    (folder / "twin.json").write_text(json.dumps(meta))
    np.savez(folder / "arrays.npz", **arrays)
    return folder


def _set(key, value):
    def edit(meta, arrays):
        arrays[key] = np.asarray(value, arrays[key].dtype) if key in arrays else np.asarray(value)

    return edit


def _fields(meta):
    """The saved fields of the network: name -> description."""
    return meta["network"]["fields"]


NAN_W = np.ones((N, N))
NAN_W[0, 1] = np.nan

BAD = {
    "nan weights": (_set("network.connectome.weights", NAN_W), "Connectome: weights contains NaN"),
    "negative nsig": (_set("network.noise.nsig", -1e-4), "nsig must be finite and >= 0"),
    "zero speed": (_set("network.speed", 0.0), "speed must be a positive"),
    "negative speed": (_set("network.speed", -3.0), "speed must be a positive"),
    "negative lengths": (_set("network.connectome.lengths", -np.ones((N, N))), "lengths contains negative"),
    "lengths shape": (_set("network.connectome.lengths", np.ones((N, N + 1))), "lengths has shape"),
    "model parameter shape": (_set("network.model.a", np.ones(N + 2)), "connectome has 4 regions"),
    "model parameter nan": (_set("network.model.a", np.full(N, np.nan)), "parameter 'a' contains NaN"),
    "posterior shape": (_set("posterior.model.a", np.ones((2, 3, N + 1))), "posterior\\['model.a'\\] has shape"),
    "posterior nan": (_set("posterior.coupling.a", np.full((2, 3), np.nan)), "contains NaN"),
    "history shape": (_set("simulation.history", np.ones((2, N + 1))), "simulation\\['history'\\] has shape"),
    "history nan": (_set("simulation.history", np.full((2, N), np.inf)), "history'\\] contains NaN"),
    "negative t1": (
        lambda m, a: m["simulation"]["__dict__"].update(t1=-5.0),
        "simulation\\['t1'\\] must be a positive",
    ),
    "string dt": (lambda m, a: m["simulation"]["__dict__"].update(dt="0.1"), "simulation\\['dt'\\]"),
    "nan dt": (lambda m, a: m["simulation"]["__dict__"].update(dt={"__float__": "nan"}), "simulation\\['dt'\\]"),
    "forged float": (lambda m, a: m["simulation"]["__dict__"].update(dt={"__float__": "1e-3"}), "non-finite"),
    "equinox model": (
        lambda m, a: _fields(m)["model"].update({"__module__": "equinox:Module"}),
        "'equinox:Module' from outside vbtjax",
    ),
    "equinox class through vbtjax": (
        lambda m, a: _fields(m)["model"].update({"__module__": "vbtjax.network:eqx.nn.Linear"}),
        "'vbtjax.network:eqx.nn.Linear', which is the class 'equinox.*from outside vbtjax",
    ),
    "abstract class": (
        lambda m, a: _fields(m).update(noise={"__module__": "vbtjax.noise:AbstractNoise", "fields": {}}),
        "abstract class",
    ),
    "coupling as the model": (
        lambda m, a: _fields(m).update(model=_fields(m)["coupling"]),
        "model must be a vbtjax.models model",
    ),
    "unknown array": (lambda m, a: _fields(m).update(speed={"__array__": ["x"]}), "missing from the file"),
    "string array": (lambda m, a: a.update({"network.speed": np.asarray("fast")}), "dtype <U4"),
    "no network": (lambda m, a: m.pop("network"), "network must be a vbtjax.Network"),
    "bad metadata": (lambda m, a: m.update(metadata=[1, 2]), "metadata must be a dict"),
    "bad tuple": (lambda m, a: _fields(m).update(stimulus={"__tuple__": 5}), "a saved tuple is a list"),
    "bad fields": (lambda m, a: _fields(m)["noise"].update(fields=[1]), "has fields"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_loading_runs_the_checks_of_constructing(tmp_path, case):
    """Each value a constructor refuses, saved with a recomputed content hash (a deliberate edit), is refused on load
    with a TwinFileError naming the file and the problem."""
    edit, match = BAD[case]
    folder = _tampered(tmp_path, edit)
    with pytest.raises(TwinFileError, match=match) as e:
        Twin.load(folder)
    assert str(folder) in str(e.value) and "\n" not in str(e.value)


def test_untampered_twin_still_loads_and_trusted_user_classes_are_built_by_their_constructor(tmp_path, monkeypatch):
    assert Twin.load(_twin().save(tmp_path / "ok")).metadata == {"which": "A"}
    # a user's model class, trusted by name: rebuilt through its own checks too
    mod = type(sys)("userpkg_twin_models")

    class Quiet(vbt.noise.Additive):
        pass

    Quiet.__module__, Quiet.__qualname__ = mod.__name__, "Quiet"
    mod.Quiet = Quiet
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    net = eqx.tree_at(lambda n: n.noise, _twin().network, Quiet(nsig=1e-4))
    path = Twin(net).save(tmp_path / "user")
    assert type(Twin.load(path, trust=(mod.__name__,)).network.noise) is Quiet
    meta = json.loads((path / "twin.json").read_text())
    meta.pop("content_hash")
    arrays = _arrays(path)
    arrays["network.noise.nsig"] = np.asarray(-1.0)
    meta["content_hash"] = content_hash(meta, arrays)
    (path / "twin.json").write_text(json.dumps(meta))
    np.savez(path / "arrays.npz", **arrays)
    with pytest.raises(TwinFileError, match="Quiet: nsig must be finite and >= 0"):
        Twin.load(path, trust=(mod.__name__,))


# ------------------------------------------------------------------------------------------------ hostile files
def _npy(shape, dtype="<f8", data=b"") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue() + data


def _zip(members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for k, v in members.items():
            z.writestr(k, v)
    return buf.getvalue()


def _corrupt_deflate() -> bytes:
    """A deflated .npz whose compressed data has bytes overwritten (its headers intact)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **_arrays_of(_twin()))
    data = bytearray(buf.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
        info = max(z.infolist(), key=lambda i: i.compress_size)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for i in range(start + 4, start + info.compress_size - 4, 7):
        data[i] ^= 0x5A
    return bytes(data)


def _arrays_of(twin: Twin) -> dict[str, np.ndarray]:
    return twin._meta_and_arrays()[1]


def _bz2_bomb() -> bytes:
    """A 4 MB run of zeros behind a header declaring a 1e5 x 1e5 float64 array (80 GB), compressed with bz2."""
    arrays = {f"{k}.npy": _npy_bytes(v) for k, v in _arrays_of(_twin()).items()}
    arrays["network.speed.npy"] = _npy((100_000, 100_000), data=bytes(4 * 2**20))
    return _zip(arrays, zipfile.ZIP_BZIP2)


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _forged(shape) -> bytes:
    arrays = {f"{k}.npy": _npy_bytes(v) for k, v in _arrays_of(_twin()).items()}
    arrays["network.speed.npy"] = _npy(shape, data=bytes(64))
    return _zip(arrays)


HOSTILE_JSON = {
    "non-UTF-8": (b'{"format": "vbtjax-twin", "x": "\xff\xfe"}', "not UTF-8"),
    "200 000 deep": (b"[" * 200_000 + b"]" * 200_000, "nested too deep"),
    "truncated": (b'{"format": "vbtjax-twin", ', "not valid JSON"),
    "a list": (b"[1, 2]", "not a vbtjax twin"),
    "future format": (b'{"format": "vbtjax-twin", "format_version": 99}', "format version 99"),
}
HOSTILE_NPZ = {
    "corrupt deflate": (_corrupt_deflate, "arrays.npz"),
    "bz2 bomb": (_bz2_bomb, "over the limit"),
    "1e5 x 1e5 declared": (lambda: _forged((100_000, 100_000)), "over the limit"),
    "more than it holds": (lambda: _forged((1000, 1000)), "truncated or forged"),
    "empty npz": (lambda: _zip({}), "holds no arrays"),
    "not a zip": (lambda: b"\x93NUMPY garbage", "not a readable"),
    "object array": (lambda: _zip({"x.npy": _npy((2,), "|O", bytes(16))}), "Python objects"),
}


@pytest.mark.parametrize("form", ["folder", "zip"])
@pytest.mark.parametrize("case", sorted(HOSTILE_JSON) + sorted(HOSTILE_NPZ))
def test_hostile_files_give_a_twin_file_error(tmp_path, case, form):
    """Damaged or hostile twin.json / arrays.npz, in a folder or in a twin zip: a TwinFileError naming the file,
    never a raw zlib, EOF, Unicode, recursion or memory error, and nothing large allocated."""
    good = _twin().save(tmp_path / "good")
    files = {"twin.json": (good / "twin.json").read_bytes(), "arrays.npz": (good / "arrays.npz").read_bytes()}
    if case in HOSTILE_JSON:
        files["twin.json"], match = HOSTILE_JSON[case]
    else:
        make, match = HOSTILE_NPZ[case]
        files["arrays.npz"] = make()
    if form == "folder":
        path = tmp_path / "bad"
        path.mkdir()
        for k, v in files.items():
            (path / k).write_bytes(v)
    else:
        path = tmp_path / "bad.zip"
        path.write_bytes(_zip(files, zipfile.ZIP_DEFLATED))
    with pytest.raises(TwinFileError, match=match) as e:
        Twin.load(path)
    assert str(path) in str(e.value)


def _declared_size(data: bytes, member: str, size: int) -> bytes:
    """`data` (a zip) with the uncompressed size of `member` in its central directory forged to `size`."""
    out = bytearray(data)
    at = out.index(b"PK\x01\x02")
    while True:
        n = int.from_bytes(out[at + 28 : at + 30], "little")
        if out[at + 46 : at + 46 + n] == member.encode():
            out[at + 24 : at + 28] = size.to_bytes(4, "little")
            return bytes(out)
        at = out.index(b"PK\x01\x02", at + 4)


def test_hostile_twin_zips(tmp_path):
    good = _twin().save(tmp_path / "good")
    files = {"twin.json": (good / "twin.json").read_bytes(), "arrays.npz": (good / "arrays.npz").read_bytes()}
    cases = {
        "missing member": (_zip({"twin.json": files["twin.json"]}), "arrays.npz is missing"),
        "empty zip": (_zip({}), "twin.json is missing"),
        "truncated": (_zip(files)[:300], "truncated"),
        "twin.json declared 3 GB": (_declared_size(_zip(files), "twin.json", 3 * 2**30), "over the limit"),
    }
    for name, (data, match) in cases.items():
        p = tmp_path / f"{name}.zip"
        p.write_bytes(data)
        with pytest.raises(TwinFileError, match=match):
            Twin.load(p)
    # an outer member whose compressed data is damaged
    data = bytearray(_zip(files, zipfile.ZIP_DEFLATED))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
        info = z.getinfo("arrays.npz")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for i in range(start + 8, start + info.compress_size - 8, 5):
        data[i] ^= 0xA5
    p = tmp_path / "deflate.zip"
    p.write_bytes(bytes(data))
    with pytest.raises(TwinFileError, match=re.escape(str(p))):
        Twin.load(p)


# ------------------------------------------------------------------------------------------------------ signing
@pytest.mark.parametrize("suffix", ["", ".zip"])
def test_signed_twins(tmp_path, suffix):
    twin = _twin()
    path = twin.save(tmp_path / f"s{suffix}", key=b"site-secret")
    assert Twin.load(path).signature == "unverified"
    assert Twin.load(path, verify=b"site-secret").signature == "verified"
    assert Twin.load(path, verify="site-secret").signature == "verified"  # a str key is its UTF-8 bytes
    assert twin.signature is None
    with pytest.raises(TwinFileError, match="signature does not match"):
        Twin.load(path, verify=b"another-secret")
    unsigned = twin.save(tmp_path / f"u{suffix}")
    assert Twin.load(unsigned).signature is None
    with pytest.raises(TwinFileError, match="not signed"):
        Twin.load(unsigned, verify=b"site-secret")
    with pytest.raises(TypeError, match="bytes or str"):
        twin.save(tmp_path / f"k{suffix}", key=123)
    with pytest.raises(ValueError, match="empty"):
        Twin.load(path, verify=b"")


def test_an_edit_with_a_recomputed_hash_passes_the_hash_but_not_the_signature(tmp_path):
    path = _twin().save(tmp_path / "s", key="site-secret")
    meta = json.loads((path / "twin.json").read_text())
    meta.pop("content_hash")
    sig = meta.pop("signature")
    arrays = _arrays(path)
    arrays["network.coupling.a"] = arrays["network.coupling.a"] * 2
    meta["content_hash"] = content_hash(meta, arrays)
    meta["signature"] = sig
    (path / "twin.json").write_text(json.dumps(meta))
    np.savez(path / "arrays.npz", **arrays)
    assert Twin.load(path).signature == "unverified"  # the hash only catches accidents
    with pytest.raises(TwinFileError, match="signature does not match"):
        Twin.load(path, verify="site-secret")
    for forged in ({"value": "é" * 64}, {"value": 5}, "sig", None):  # forged signatures are refused alike
        meta["signature"] = forged
        (path / "twin.json").write_text(json.dumps(meta))
        with pytest.raises(TwinFileError, match="signature does not match" if forged else "not signed"):
            Twin.load(path, verify="site-secret")
    meta.pop("signature")  # stripping the signature does not help either
    (path / "twin.json").write_text(json.dumps(meta))
    with pytest.raises(TwinFileError, match="not signed"):
        Twin.load(path, verify="site-secret")


# ------------------------------------------------------------------------------------------------------ whatif
def _diverging_twin() -> Twin:
    net = vbt.Network(
        model=vbt.models.Linear(gamma=30.0),  # x grows 8.5-fold per Heun step: inf within the 400 steps
        connectome=vbt.Connectome(weights=np.ones((3, 3)) - np.eye(3), lengths=np.full((3, 3), 10.0)),
        speed=3.0,
    )
    return Twin(net, simulation={"t1": 40.0, "dt": 0.1, "history": np.ones((1, 3))})


def test_whatif_refuses_non_finite_outcomes_and_writes_nothing(tmp_path, capsys):
    from vbtjax.cli import main

    path = _diverging_twin().save(tmp_path / "twin", key=b"k1")
    (tmp_path / "key").write_bytes(b"k1")
    (tmp_path / "wrong").write_bytes(b"k2")
    out = tmp_path / "out"
    base = ["whatif", str(path), "--scenario", "resect:0", "--out", str(out), "--quiet"]
    for outcome in ("mean", "seizure"):  # a NaN never exceeds a threshold: seizure outcomes are caught too
        assert main([*base, "--outcome", outcome, "--verify-key-file", str(tmp_path / "key")]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "NaN or inf" in err and "Nothing was written" in err
        assert not out.exists()
    assert main([*base, "--verify-key-file", str(tmp_path / "wrong")]) == 2
    assert "signature does not match" in capsys.readouterr().err
    assert main([*base, "--verify-key-file", str(tmp_path / "nokey")]) == 2
    assert "--verify-key-file" in capsys.readouterr().err
    assert not out.exists()


# ------------------------------------------------------------------------------------------- property-based
import hypothesis  # noqa: E402 - a [test] dependency; the property tests below use it
import hypothesis.strategies as st  # noqa: E402

_SAVED: dict[str, bytes] = {}


def _saved() -> dict[str, bytes]:
    if not _SAVED:
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            path = _twin().save(Path(d) / "t")
            _SAVED.update({k: (path / k).read_bytes() for k in ("twin.json", "arrays.npz")})
    return _SAVED


def _load_or_refuse(members: dict[str, bytes]) -> Twin | None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "t"
        path.mkdir()
        for k, v in members.items():
            (path / k).write_bytes(v)
        try:
            return Twin.load(path)
        except TwinFileError:
            return None


def _paths(tree, at=()):
    yield at
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _paths(v, (*at, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _paths(v, (*at, i))


_KEYS = st.sampled_from(["__array__", "__tuple__", "__dict__", "__module__", "__float__", "__derived__", "fields"])
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(_KEYS | st.text(max_size=4), kids, max_size=3),
    max_leaves=8,
)


@hypothesis.settings(max_examples=60, deadline=None, derandomize=True, database=None)
@hypothesis.given(data=st.data())
def test_any_edit_of_twin_json_with_a_recomputed_hash_loads_or_is_refused_clearly(data):
    """Any JSON value put anywhere in twin.json (content hash recomputed): a twin, or a TwinFileError; never another
    exception."""
    files = _saved()
    meta = json.loads(files["twin.json"])
    meta.pop("content_hash")
    arrays = dict(np.load(io.BytesIO(files["arrays.npz"])))
    where = data.draw(st.sampled_from([p for p in _paths(meta) if p]))
    value = data.draw(_JSON)
    d = meta
    for k in where[:-1]:
        d = d[k]
    d[where[-1]] = value
    try:
        meta["content_hash"] = content_hash(meta, arrays)
    except ValueError:  # an infinite float: not JSON, so not a file anyone can write
        return
    _load_or_refuse({"twin.json": json.dumps(meta).encode(), "arrays.npz": files["arrays.npz"]})


@hypothesis.settings(max_examples=60, deadline=None, derandomize=True, database=None)
@hypothesis.given(
    member=st.sampled_from(["twin.json", "arrays.npz"]),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), min_size=1, max_size=4),
    cut=st.none() | st.floats(0, 1),
)
def test_damaged_bytes_are_refused_or_harmless(member, edits, cut):
    """Bytes of twin.json or arrays.npz flipped or cut off: a TwinFileError, or (a flip the format ignores) the same
    twin; never another exception."""
    files = dict(_saved())
    b = bytearray(files[member])
    for at, x in edits:
        b[int(at * len(b))] ^= x
    if cut is not None:
        b = b[: int(cut * len(b))]
    files[member] = bytes(b)
    twin = _load_or_refuse(files)
    if twin is not None:
        assert content_hash(*twin._meta_and_arrays()) == json.loads(_saved()["twin.json"])["content_hash"]
