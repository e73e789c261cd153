"""Direct tests of public names otherwise reached only through other functions: ``vbt.initial_history``,
``vbt.structural.load_streamlines`` (.tck and .trk written with nibabel), ``vbt.structural.read_lut``,
``Connectome.save_tvb`` and ``vbt.twin.outcomes.outcome_by_name``. Each is checked against values computed by hand
(or read back with NumPy's own parsers), not only shapes."""

import zipfile

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import vbtjax as vbt  # noqa: E402
from vbtjax.twin.outcomes import FC, Seizes, TimeAverage, outcome_by_name  # noqa: E402

W = np.array([[0.0, 2.0, 0.5], [1.0, 0.0, 0.0], [0.25, 3.0, 0.0]])
L = np.array([[0.0, 10.0, 20.0], [10.0, 0.0, 30.0], [20.0, 30.0, 0.0]])  # mm
C = np.array([[1.5, -2.0, 3.25], [-40.0, 5.5, 6.0], [7.0, 8.0, -9.125]])  # mm
LABELS = ("lA", "rB", "lC")


# ---------------------------------------------------------------------------------------------- initial_history
def _net(model=None, speed=4.0):
    conn = vbt.Connectome(weights=W, lengths=L)
    return vbt.Network(model=model or vbt.models.Generic2dOscillator(), connectome=conn, speed=speed)


def test_initial_history_rows_and_default_state():
    """Delays 10/4 = 2.5, 5 and 7.5 ms at dt = 0.1 ms are 25, 50 and 75 steps: 76 rows (the longest delay + the
    present). Without a key every row is the middle of TVB's ranges (V in [-2, 4], W in [-6, 6]: 1 and 0)."""
    net = _net()
    h = vbt.initial_history(net, 0.1)
    assert h.shape == (76, 2, 3) and h.dtype == jnp.float64
    np.testing.assert_array_equal(h, np.broadcast_to(np.array([1.0, 0.0])[None, :, None], (76, 2, 3)))
    assert vbt.initial_history(net, 0.5).shape == (16, 2, 3)  # 5, 10, 15 steps


def test_initial_history_random_state_is_uniform_in_the_ranges():
    net = _net()
    h = np.asarray(vbt.initial_history(net, 0.1, key=jax.random.key(0)))
    assert np.all(h == h[-1])  # held constant over the history
    u = np.asarray(jax.random.uniform(jax.random.key(0), (2, 3), dtype=jnp.float64))
    np.testing.assert_allclose(h[-1], np.array([[-2.0], [-6.0]]) + u * np.array([[6.0], [12.0]]), rtol=1e-15)
    other = np.asarray(vbt.initial_history(net, 0.1, key=jax.random.key(1)))
    assert not np.allclose(other, h)
    # many regions: the draws fill each range (V in [-2, 4], W in [-6, 6]) with mean at its middle
    big = vbt.Network(
        model=vbt.models.Generic2dOscillator(),
        connectome=vbt.Connectome(weights=np.zeros((2000, 2000)), lengths=np.zeros((2000, 2000))),
    )
    s = np.asarray(vbt.initial_history(big, 0.1, key=jax.random.key(2)))[-1]
    assert s[0].min() >= -2.0 and s[0].max() <= 4.0 and s[1].min() >= -6.0 and s[1].max() <= 6.0
    assert abs(s[0].mean() - 1.0) < 4 * 6.0 / np.sqrt(12 * 2000) and abs(s[1].mean()) < 4 * 12.0 / np.sqrt(12 * 2000)


def test_initial_history_given_state_history_dtype_and_bounds():
    net = _net()
    state = np.array([[0.5, -1.0, 2.0], [0.0, 3.0, -4.0]])
    h = vbt.initial_history(net, 0.1, state)
    np.testing.assert_array_equal(h, np.broadcast_to(state, (76, 2, 3)))
    long = np.arange(80 * 2 * 3, dtype=float).reshape(80, 2, 3)
    np.testing.assert_array_equal(vbt.initial_history(net, 0.1, long), long[4:])  # the last 76 rows, oldest first
    # integers are cast to the network's dtype; dtype= overrides it
    assert vbt.initial_history(net, 0.1, np.ones((2, 3), int)).dtype == jnp.float64
    h32 = vbt.initial_history(net, 0.1, state, dtype=jnp.float32)
    assert h32.dtype == jnp.float32
    np.testing.assert_array_equal(h32[-1], state.astype(np.float32))
    # TVB's state-variable bounds are applied: ReducedWongWang's S in [0, 1]
    rww = _net(vbt.models.ReducedWongWang())
    np.testing.assert_array_equal(vbt.initial_history(rww, 0.1, np.array([[1.5, -0.2, 0.3]]))[0], [[1.0, 0.0, 0.3]])
    with pytest.raises(ValueError, match=r"70 rows but the longest delay needs H = 76 rows.*net.horizon"):
        vbt.initial_history(net, 0.1, np.zeros((70, 2, 3)))
    with pytest.raises(ValueError, match=r"shape \(3, 2\)"):
        vbt.initial_history(net, 0.1, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="NaN or inf"):
        vbt.initial_history(net, 0.1, np.full((2, 3), np.nan))


# ---------------------------------------------------------------------------------------------- load_streamlines
# three streamlines in world mm (RAS+): lengths 5 + 12 = 17, 0 (one point) and 2 + 2 = 4
STREAMLINES = [
    np.array([[0.0, 0.0, 0.0], [3.0, 4.0, 0.0], [3.0, 4.0, 12.0]]),
    np.array([[1.5, -2.5, 7.0]]),
    np.array([[-10.0, 20.0, 5.0], [-10.0, 22.0, 5.0], [-12.0, 22.0, 5.0]]),
]
LENGTHS = [17.0, 0.0, 4.0]


def _check_streamlines(s, source):
    assert s.n_streamlines == 3 and source in s.source
    np.testing.assert_array_equal(s.counts, [3, 1, 3])
    np.testing.assert_array_equal(s.offsets, [0, 3, 4])
    np.testing.assert_allclose(s.points, np.concatenate(STREAMLINES), atol=1e-5)  # stored as float32
    np.testing.assert_allclose(s.lengths(), LENGTHS, atol=1e-5)
    first, last = s.endpoints()
    np.testing.assert_allclose(first, [p[0] for p in STREAMLINES], atol=1e-5)
    np.testing.assert_allclose(last, [p[-1] for p in STREAMLINES], atol=1e-5)


def test_load_streamlines_tck(tmp_path):
    path = tmp_path / "t.tck"
    nib.streamlines.save(nib.streamlines.Tractogram(STREAMLINES, affine_to_rasmm=np.eye(4)), str(path))
    _check_streamlines(vbt.structural.load_streamlines(path), "t.tck")
    _check_streamlines(vbt.structural.load_streamlines(str(path)), "t.tck")


def test_load_streamlines_trk_with_a_voxel_affine(tmp_path):
    """TrackVis stores voxel-mm coordinates; with 2 mm voxels and a shifted, flipped vox_to_ras the file's numbers
    differ from the world mm, and load_streamlines must return the world mm written."""
    affine = np.array([[-2.0, 0, 0, 30.0], [0, 2.0, 0, -40.0], [0, 0, 2.0, 10.0], [0, 0, 0, 1]])
    header = {
        nib.streamlines.Field.VOXEL_TO_RASMM: affine,
        nib.streamlines.Field.VOXEL_SIZES: np.array([2.0, 2.0, 2.0], np.float32),
        nib.streamlines.Field.DIMENSIONS: np.array([64, 64, 64], np.int16),
        nib.streamlines.Field.VOXEL_ORDER: "LAS",
    }
    path = tmp_path / "t.trk"
    trk = nib.streamlines.TrkFile(nib.streamlines.Tractogram(STREAMLINES, affine_to_rasmm=np.eye(4)), header=header)
    trk.save(str(path))
    # the file itself (a 1000-byte header, then per streamline an int32 count and float32 x, y, z): TrackVis's
    # voxel mm from the voxel corner, (A^-1 world + 0.5) x 2 mm
    data = path.read_bytes()[1000:]
    stored, at = [], 0
    for _ in STREAMLINES:
        n = int(np.frombuffer(data, np.int32, 1, at)[0])
        stored.append(np.frombuffer(data, np.float32, 3 * n, at + 4).reshape(n, 3))
        at += 4 + 12 * n
    assert at == len(data)
    inv = np.linalg.inv(affine)
    expected = [((p @ inv[:3, :3].T + inv[:3, 3]) + 0.5) * 2.0 for p in STREAMLINES]
    np.testing.assert_allclose(np.concatenate(stored), np.concatenate(expected), atol=1e-4)
    assert not np.allclose(np.concatenate(stored), np.concatenate(STREAMLINES), atol=1.0)
    _check_streamlines(vbt.structural.load_streamlines(path), "t.trk")


def test_load_streamlines_in_memory_forms():
    _check_streamlines(vbt.structural.load_streamlines(STREAMLINES), "list")
    tract = nib.streamlines.Tractogram(STREAMLINES, affine_to_rasmm=np.eye(4))
    _check_streamlines(vbt.structural.load_streamlines(tract), "Tractogram")
    # a Tractogram in voxel coordinates (1 voxel = 2 mm, origin at -10 mm): its affine is applied
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = -10.0
    vox = [(p + 10.0) / 2.0 for p in STREAMLINES]
    _check_streamlines(vbt.structural.load_streamlines(nib.streamlines.Tractogram(vox, affine_to_rasmm=affine)), "")
    same = vbt.structural.load_streamlines(np.stack([STREAMLINES[0], STREAMLINES[0]]))  # (S, n, 3)
    np.testing.assert_array_equal(same.lengths(), [17.0, 17.0])
    with pytest.raises(ValueError, match=r"streamline 1 \(0-based\) has shape \(3,\)"):
        vbt.structural.load_streamlines([STREAMLINES[0], np.zeros(3)])


# ---------------------------------------------------------------------------------------------- read_lut
def test_read_lut_freesurfer_layout(tmp_path):
    path = tmp_path / "LUT.txt"
    path.write_text(
        "#$Id: FreeSurferColorLUT.txt\n"
        "# No. Label Name:   R   G   B   A\n"
        "\n"
        "0   Unknown                            0   0   0   0\n"
        "2   Left-Cerebral-White-Matter       245 245 245   0  # a comment after the row\n"
        "1035 ctx-lh-insula                   255 192  32   0\n"
    )
    assert vbt.structural.read_lut(path) == {0: "Unknown", 2: "Left-Cerebral-White-Matter", 1035: "ctx-lh-insula"}


def test_read_lut_tsv_with_header_and_spaces(tmp_path):
    path = tmp_path / "dseg.tsv"
    path.write_text("name\tindex\tcolor\nleft superior frontal\t7\t#ff0000\nright insula\t12\t#00ff00\n")
    assert vbt.structural.read_lut(path) == {7: "left superior frontal", 12: "right insula"}
    plain = tmp_path / "plain.tsv"
    plain.write_text("1\tleft thalamus\n4\tright thalamus\textra\n")
    assert vbt.structural.read_lut(plain) == {1: "left thalamus", 4: "right thalamus"}


def test_read_lut_errors(tmp_path):
    dup = tmp_path / "dup.txt"
    dup.write_text("1 A 0 0 0 0\n2 B 0 0 0 0\n1 C 0 0 0 0\n")
    with pytest.raises(ValueError, match=r"label 1 appears twice.*line 3"):
        vbt.structural.read_lut(dup)
    bad = tmp_path / "bad.txt"
    bad.write_text("1 A\nx\n")
    with pytest.raises(ValueError, match=r"line 2 .* is not 'index name"):
        vbt.structural.read_lut(bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        vbt.structural.read_lut(tmp_path / "missing.txt")


# ---------------------------------------------------------------------------------------------- Connectome.save_tvb
def _numpy_read_tvb(files: dict[str, str]):
    """Weights, lengths, labels and centres parsed from TVB's text files with NumPy alone."""
    w = np.loadtxt(files["weights.txt"].splitlines(), ndmin=2)
    ln = np.loadtxt(files["tract_lengths.txt"].splitlines(), ndmin=2)
    rows = [r.split() for r in files["centres.txt"].splitlines() if r.strip()]
    return w, ln, tuple(r[0] for r in rows), np.array([[float(v) for v in r[1:]] for r in rows])


def test_save_tvb_zip_and_folder_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    w = rng.uniform(0, 1, (5, 5)) / 3.0  # numbers with 17 significant digits: the text must keep them all
    ln = rng.uniform(10, 100, (5, 5))
    c = rng.normal(0, 30, (5, 3))
    labels = ("a", "b", "c", "d", "e")
    conn = vbt.Connectome(weights=w, lengths=ln, centres=c, labels=labels)
    path = conn.save_tvb(tmp_path / "c.zip")
    assert path == tmp_path / "c.zip"
    with zipfile.ZipFile(path) as z:
        assert {"weights.txt", "tract_lengths.txt", "centres.txt"} <= set(z.namelist())
        files = {n: z.read(n).decode() for n in z.namelist()}
    w2, ln2, lab2, c2 = _numpy_read_tvb(files)
    np.testing.assert_array_equal(w2, w)
    np.testing.assert_array_equal(ln2, ln)
    np.testing.assert_array_equal(c2, c)
    assert lab2 == labels
    back = vbt.Connectome.from_file(path)
    for a, b in ((back.weights, w), (back.lengths, ln), (back.centres, c)):
        np.testing.assert_array_equal(np.asarray(a), b)
    assert back.labels == labels
    # a folder of text files holds the same
    folder = conn.save_tvb(tmp_path / "folder")
    text = {n: (folder / n).read_text() for n in ("weights.txt", "tract_lengths.txt", "centres.txt")}
    assert text == {n: files[n] for n in text}


def test_save_tvb_round_trips_tvb_data_and_fixes_labels(tmp_path):
    tvb76 = vbt.datasets.tvb_connectome(76)
    back = vbt.Connectome.from_file(tvb76.save_tvb(tmp_path / "tvb76.zip"))
    np.testing.assert_array_equal(np.asarray(back.weights), np.asarray(tvb76.weights))
    np.testing.assert_array_equal(np.asarray(back.lengths), np.asarray(tvb76.lengths))
    np.testing.assert_array_equal(np.asarray(back.centres), np.asarray(tvb76.centres))
    assert back.labels == tvb76.labels
    spaced = vbt.Connectome(weights=W, lengths=L, centres=C, labels=("left A", "rB", "l  C"))
    with pytest.warns(UserWarning, match="whitespace in region labels replaced"):
        p = spaced.save_tvb(tmp_path / "spaced.zip")
    assert vbt.Connectome.from_file(p).labels == ("left_A", "rB", "l_C")


# ---------------------------------------------------------------------------------------------- outcome_by_name
def _solution():
    """A hand-made Solution: 10 samples every 1 ms (20 steps of 0.5 ms) of 2 variables in 3 regions."""
    t = np.arange(1, 11, dtype=float)
    v0 = np.stack([np.sin(t), t - 5.0, np.cos(0.7 * t) + 0.1 * t], axis=-1)  # (10, 3)
    v1 = np.stack([t, -t, 0.5 * np.ones_like(t)], axis=-1)
    ys = jnp.asarray(np.stack([v0, v1], axis=1))  # (10, 2, 3)
    return vbt.Solution(ts={"raw": jnp.asarray(t)}, ys={"raw": ys}, final_state=ys[-1], dt=0.5, n_steps=20,
                        horizon=1, block=1), v0, v1  # fmt: skip


def test_outcome_by_name_builds_each_outcome_with_its_arguments():
    sol, v0, v1 = _solution()
    mean = outcome_by_name("mean", discard=3.0)  # samples at 1, 2, 3 ms are the transient
    assert isinstance(mean, TimeAverage) and mean.discard == 3.0
    np.testing.assert_allclose(mean(sol), v0[3:].mean(0), rtol=1e-14)
    np.testing.assert_allclose(outcome_by_name("mean", variable=1)(sol), [5.5, -5.5, 0.5], rtol=1e-14)
    seize = outcome_by_name("seizure", threshold=4.5, discard=2.0)
    assert isinstance(seize, Seizes)
    np.testing.assert_array_equal(seize(sol), [False, True, False])  # t - 5 > 4.5 at t = 10 only
    np.testing.assert_array_equal(outcome_by_name("seizure", threshold=0.9)(sol), [True, True, True])
    fc = outcome_by_name("fc", discard=0.0)
    assert isinstance(fc, FC)
    np.testing.assert_allclose(fc(sol), np.corrcoef(v0.T), rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match=r"unknown outcome 'fcd'.*\['fc', 'mean', 'seizure'\]"):
        outcome_by_name("fcd")
    with pytest.raises(ValueError, match="no monitor 'bold'"):
        outcome_by_name("mean", monitor="bold")(sol)
