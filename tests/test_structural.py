"""Connectomes built from a tractogram and a parcellation (vbtjax.structural), against a synthetic construction:
a labelled volume with box regions and streamlines drawn between known regions with known lengths."""

import json
import zipfile

import nibabel as nib
import numpy as np
import pytest

import vbtjax as vbt
from vbtjax.structural import Parcellation, build_connectome, load_streamlines

AFFINE = np.array([[2.0, 0, 0, -20.0], [0, 2.0, 0, -30.0], [0, 0, 2.0, -10.0], [0, 0, 0, 1]])  # 2 mm voxels
BOXES = {1: (2, 2, 2), 2: (14, 2, 2), 3: (2, 14, 2), 5: (14, 14, 14)}  # label: first voxel of a 4^3 box
NAMES = {1: "alpha", 2: "beta", 3: "gamma", 5: "delta"}


def _world(ijk):
    return (AFFINE @ np.r_[np.asarray(ijk, float), 1.0])[:3]


def _centre(label):  # world centre of a region's box
    return _world(np.asarray(BOXES[label]) + 1.5)


def _image():
    data = np.zeros((20, 20, 20), np.int16)
    for label, (i, j, k) in BOXES.items():
        data[i : i + 4, j : j + 4, k : k + 4] = label
    return nib.Nifti1Image(data, AFFINE)


def _line(a, b, n=7, bend=None):
    """Polyline from a to b through n points; with bend, through the point bend halfway."""
    if bend is None:
        return np.linspace(a, b, n)
    return np.vstack([np.linspace(a, bend, n)[:-1], np.linspace(bend, b, n)])


def _length(p):
    return float(np.sum(np.linalg.norm(np.diff(p, axis=0), axis=1)))


def _streamlines():
    c = {label: _centre(label) for label in BOXES}
    sl = [
        _line(c[1], c[2]),
        _line(c[2], c[1] + 1.0),
        _line(c[1], c[2], bend=(c[1] + c[2]) / 2 + [0, 6.0, 0]),
        _line(c[1], c[3], n=3),
        _line(c[3] + 0.5, c[1]),
        _line(c[2], c[5], bend=c[2] + [0, 10.0, 10.0]),
    ]
    expected = {(0, 1): [_length(p) for p in sl[:3]], (0, 2): [_length(p) for p in sl[3:5]], (1, 3): [_length(sl[5])]}
    extra = {
        "too_short": np.array([c[1], c[1] + [1.0, 0, 0]]),  # 1 mm
        "outside": _line(c[1], np.array([200.0, 0, 0])),
        "unassigned": _line(c[2], _world((9.5, 9.5, 9.5))),  # background, 8+ mm from every box
        "self": c[1] + np.array([[0.0, 0, 0], [3, 0, 0], [3, 3, 0], [0, 3, 0]]),  # 9 mm inside region 1
    }
    return sl, expected, extra


def _check(conn, expected, atol):
    assert conn.weights.shape == (4, 4)
    W, L = np.asarray(conn.weights), np.asarray(conn.lengths)
    want_w, want_l = np.zeros((4, 4)), np.zeros((4, 4))
    for (i, j), ls in expected.items():
        want_w[i, j] = want_w[j, i] = len(ls)
        want_l[i, j] = want_l[j, i] = np.mean(ls)
    np.testing.assert_array_equal(W, want_w)
    np.testing.assert_allclose(L, want_l, atol=atol, rtol=0)


def test_in_memory_streamlines_give_the_construction():
    sl, expected, extra = _streamlines()
    conn, report = build_connectome(sl + list(extra.values()), _image(), lut=NAMES, radius=0.0, min_length=5.0)
    _check(conn, expected, atol=1e-9)
    assert (report.n_streamlines, report.n_connecting) == (10, 6)
    assert (report.too_short, report.outside, report.unassigned, report.self_connections) == (1, 1, 1, 1)
    assert report.n_dropped == 4 and "4" in str(report)
    assert list(conn.labels) == ["alpha", "beta", "gamma", "delta"]
    np.testing.assert_allclose(np.asarray(conn.centres), [_centre(k) for k in BOXES], atol=1e-12)


@pytest.mark.parametrize("suffix", [".tck", ".trk"])
def test_tractogram_files_give_the_construction(tmp_path, suffix):
    sl, expected, _ = _streamlines()
    path = tmp_path / f"t{suffix}"
    tg = nib.streamlines.Tractogram(sl, affine_to_rasmm=np.eye(4))
    if suffix == ".trk":
        header = {
            nib.streamlines.Field.VOXEL_TO_RASMM: AFFINE,
            nib.streamlines.Field.VOXEL_SIZES: (2.0, 2.0, 2.0),
            nib.streamlines.Field.DIMENSIONS: (20, 20, 20),
        }
        nib.streamlines.save(tg, str(path), header=header)
    else:
        nib.streamlines.save(tg, str(path))
    nib.save(_image(), str(tmp_path / "parc.nii.gz"))
    conn = vbt.Connectome.from_tractogram(str(path), str(tmp_path / "parc.nii.gz"))
    _check(conn, expected, atol=1e-4)  # float32 coordinates in the files


def _write_trx(path, sl, *, sentinel, folder):
    """A TRX tractogram (as trx-python writes it: uncompressed members, little-endian arrays)."""
    points = np.concatenate(sl).astype("<f4")
    counts = np.array([len(p) for p in sl])
    offsets = np.concatenate([[0], np.cumsum(counts)[: None if sentinel else -1]]).astype("<u8")
    header = {"NB_VERTICES": len(points), "NB_STREAMLINES": len(sl), "DIMENSIONS": [20, 20, 20]}
    header["VOXEL_TO_RASMM"] = AFFINE.tolist()
    members = {
        "header.json": json.dumps(header).encode(),
        "positions.3.float32": points.tobytes(),
        "offsets.uint64": offsets.tobytes(),
        "dps/weight.float32": np.ones(len(sl), "<f4").tobytes(),  # per-streamline data: not read
    }
    if folder:
        for name, data in members.items():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            (path / name).write_bytes(data)
    else:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
            for name, data in members.items():
                z.writestr(name, data)
    return path


@pytest.mark.parametrize("folder", [False, True])
@pytest.mark.parametrize("sentinel", [False, True])
def test_trx_gives_the_construction(tmp_path, folder, sentinel):
    sl, expected, _ = _streamlines()
    path = _write_trx(tmp_path / "t.trx", sl, sentinel=sentinel, folder=folder)
    read = load_streamlines(path)
    np.testing.assert_array_equal(read.counts, [len(p) for p in sl])
    np.testing.assert_array_equal(read.points, np.concatenate(sl).astype(np.float32))
    conn, _ = build_connectome(path, _image())
    _check(conn, expected, atol=1e-4)


def test_parcellation_lut_names_must_be_unique():
    with pytest.raises(ValueError, match=r"share the names \['same'\]"):
        Parcellation.load(_image(), {1: "same", 2: "same", 3: "gamma", 5: "delta"})


def test_options_radius_volume_directed_and_self_connections():
    sl, expected, extra = _streamlines()
    # an end point 2 voxels beside region 2: unassigned without search, region 2 within a 5 mm radius
    near = _line(_centre(1), _world((12.0, 3.5, 3.5)))
    _, r0 = build_connectome(sl + [near], _image(), radius=0.0)
    c5, r5 = build_connectome(sl + [near], _image(), radius=5.0)
    assert r0.unassigned == 1 and r5.unassigned == 0 and r5.endpoints_by_search == 1
    assert float(c5.weights[0, 1]) == 4.0
    vol = 64 * 8.0  # mm^3 per box
    cv, _ = build_connectome(sl, _image(), normalise="volume")
    np.testing.assert_allclose(np.asarray(cv.weights[0, 1]), 3 / (2 * vol))
    cc, _ = build_connectome(sl, _image(), normalise="count")
    np.testing.assert_allclose(np.asarray(cc.weights).sum() / 2, 1.0)
    cd, _ = build_connectome(sl, _image(), directed=True)
    W = np.asarray(cd.weights)  # W[i, j]: from region j (first point) to region i (last point)
    assert (W[1, 0], W[0, 1], W[2, 0], W[0, 2], W[3, 1]) == (2, 1, 1, 1, 1)
    ck, rk = build_connectome(sl + [extra["self"]], _image(), self_connections="keep")
    assert float(ck.weights[0, 0]) == 1.0 and rk.self_connections_kept
    cm, _ = build_connectome(sl, _image(), lengths="median")
    np.testing.assert_allclose(float(cm.lengths[0, 1]), np.median(expected[(0, 1)]), atol=1e-9)


def test_lut_files_and_errors(tmp_path):
    sl, _, _ = _streamlines()
    (tmp_path / "lut.txt").write_text(
        "# FreeSurfer style\n0 Unknown 0 0 0 0\n1 alpha 1 2 3 0\n2 beta 1 2 3 0\n3 gamma 1 2 3 0\n5 delta 1 2 3 0\n"
    )
    (tmp_path / "lut.tsv").write_text("index\tname\n1\talpha\n2\tbeta\n3\tgamma\n5\tdelta\n")
    for lut in ("lut.txt", "lut.tsv"):
        conn, _ = build_connectome(sl, _image(), lut=tmp_path / lut)
        assert list(conn.labels) == ["alpha", "beta", "gamma", "delta"]
    shifted = nib.Nifti1Image(
        np.asarray(_image().dataobj), AFFINE @ np.diag([1, 1, 1, 1.0]) + np.c_[np.zeros((4, 3)), [500, 0, 0, 0]]
    )
    with pytest.raises(ValueError, match="overlap"):
        build_connectome(sl, shifted)
    with pytest.raises(ValueError, match="NaN|finite"):
        build_connectome([np.array([[0.0, 0, 0], [np.nan, 0, 0]])], _image())
    with pytest.raises(ValueError, match="normalise"):
        build_connectome(sl, _image(), normalise="nope")


def test_parcellation_alone_and_tvb_round_trips(tmp_path):
    conn = vbt.Connectome.from_parcellation(_image(), lut=NAMES)
    np.testing.assert_allclose(np.asarray(conn.centres), [_centre(k) for k in BOXES], atol=1e-12)
    tvb = vbt.datasets.tvb_connectome(76)
    for name in ("c.zip", "c.npz"):
        back = vbt.Connectome.from_file(tvb.save(tmp_path / name))
        np.testing.assert_array_equal(np.asarray(back.weights), np.asarray(tvb.weights))
        np.testing.assert_array_equal(np.asarray(back.lengths), np.asarray(tvb.lengths))
        np.testing.assert_array_equal(np.asarray(back.centres), np.asarray(tvb.centres))
        assert list(back.labels) == list(tvb.labels)


def test_cli_connectome_output_simulates(tmp_path):
    from vbtjax.cli import main

    sl, expected, extra = _streamlines()
    nib.streamlines.save(
        nib.streamlines.Tractogram(sl + list(extra.values()), affine_to_rasmm=np.eye(4)), str(tmp_path / "t.tck")
    )
    nib.save(_image(), str(tmp_path / "parc.nii.gz"))
    out = tmp_path / "out"
    rc = main(
        [
            "connectome",
            "--tractogram",
            str(tmp_path / "t.tck"),
            "--parcellation",
            str(tmp_path / "parc.nii.gz"),
            "--min-length",
            "5",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert rc == 0
    for name in ("connectome.npz", "connectome.zip", "report.json", "connectome.png"):
        assert (out / name).is_file(), name
    _check(vbt.Connectome.from_file(out / "connectome.zip"), expected, atol=1e-4)
    rc = main(
        [
            "simulate",
            "--connectome",
            str(out / "connectome.zip"),
            "--duration",
            "20",
            "--out",
            str(tmp_path / "sim"),
            "--no-plot",
        ]
    )
    assert rc == 0 and (tmp_path / "sim" / "simulation.npz").is_file()
