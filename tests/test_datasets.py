"""Named data sets: the embedded HCP subject's AAL2 labels (order checked against its own structure) and the demo
tractogram + parcellation of :func:`vbtjax.datasets.write_demo` (real formats, consistent, mapped by
``Connectome.from_tractogram``)."""

import numpy as np
import pytest

import vbtjax as vbt


# ---------------------------------------------------------------------------------------------- HCP labels
def test_hcp_subject_has_aal2_labels_in_atlas_order():
    conn = vbt.datasets.hcp_subject("101309").connectome
    labels = conn.labels
    assert labels is not None and len(labels) == 94 and len(set(labels)) == 94
    assert labels[:4] == ("Precentral_L", "Precentral_R", "Frontal_Sup_2_L", "Frontal_Sup_2_R")
    assert labels[-2:] == ("Temporal_Inf_L", "Temporal_Inf_R")
    # left and right alternate: index 2k is a left region, 2k + 1 its right homologue
    for left, right in zip(labels[::2], labels[1::2], strict=True):
        assert left.endswith("_L") and right == left[:-2] + "_R"
    # neurolib's 0-based groups of the same atlas (neurolib/utils/atlases.py); no cerebellum
    assert labels[80:82] == ("Thalamus_L", "Thalamus_R") and labels[44:46] == ("Amygdala_L", "Amygdala_R")
    assert [labels[i] for i in range(74, 80, 2)] == ["Caudate_L", "Putamen_L", "Pallidum_L"]
    assert not any(lab.startswith(("Cerebelum", "Vermis")) for lab in labels)
    # regions are addressable by name
    assert conn.region_indices(["Hippocampus_L", "Hippocampus_R"]) == (40, 41)


def test_hcp_labels_match_the_subjects_structure():
    """Under this order most streamlines stay within a hemisphere (same index parity) and homologous regions have
    high FC: a wrong order (e.g. hemispheres in halves) would not show it."""
    d = vbt.datasets.hcp_subject("101309")
    w = np.asarray(d.connectome.weights)
    parity = np.arange(94) % 2
    same = parity[:, None] == parity[None, :]
    assert w[same].sum() / w.sum() > 0.8
    halves = (np.arange(94) < 47)[:, None] == (np.arange(94) < 47)[None, :]
    assert w[halves].sum() / w.sum() < 0.7
    fc = np.asarray(d.fc)
    homologous = fc[np.arange(0, 94, 2), np.arange(1, 94, 2)]
    assert homologous.mean() > fc[~np.eye(94, dtype=bool)].mean() + 0.2


# ---------------------------------------------------------------------------------------------- demo data
@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return vbt.datasets.write_demo(tmp_path_factory.mktemp("demo") / "demo")


def test_demo_files_are_real_formats(demo):
    import nibabel as nib

    assert demo.tractogram.name == "tracks.trk" and demo.parcellation.name == "parcellation.nii.gz"
    assert demo.lut.name == "parcellation.tsv" and demo.folder == demo.tractogram.parent
    img = nib.load(str(demo.parcellation))
    data = np.asarray(img.dataobj)
    assert data.dtype.kind == "i" and set(np.unique(data)) == set(range(9))
    assert np.allclose(img.header.get_zooms(), 2.0) and img.header.get_xyzt_units()[0] == "mm"
    assert vbt.structural.read_lut(demo.lut) == {k + 1: n for k, n in enumerate(vbt.datasets.DEMO_REGIONS)}
    tf = nib.streamlines.load(str(demo.tractogram))
    assert len(tf.streamlines) == 2000
    # small: a README command, not a download
    assert demo.tractogram.stat().st_size < 2_000_000 and demo.parcellation.stat().st_size < 100_000
    # every file is replaced atomically: nothing else is left in the folder
    assert sorted(p.name for p in demo.folder.iterdir()) == ["parcellation.nii.gz", "parcellation.tsv", "tracks.trk"]


def test_demo_streamlines_connect_the_parcels(demo):
    conn, report = vbt.Connectome.from_tractogram(demo.tractogram, demo.parcellation, lut=demo.lut, return_report=True)
    assert conn.labels == vbt.datasets.DEMO_REGIONS and conn.n_regions == 8
    w, ln = np.asarray(conn.weights), np.asarray(conn.lengths)
    # every streamline ends in a region: all are in the connectome but the few U-fibres within one region
    assert report.outside == report.unassigned == report.too_short == 0
    assert 0.02 < report.self_connections / 2000 < 0.09 and report.n_connecting + report.self_connections == 2000
    assert report.n_connections == 28 and report.regions_without_streamlines == ()
    assert np.all(w[~np.eye(8, dtype=bool)] > 0) and np.allclose(w, w.T)
    # nearer regions are more strongly connected; lengths are plausible and longer than the straight line
    c = np.asarray(conn.centres)
    dist = np.linalg.norm(c[:, None] - c[None], axis=-1)
    iu = np.triu_indices(8, 1)
    assert np.corrcoef(dist[iu], np.log(w[iu]))[0, 1] < -0.5
    assert np.all(ln[iu] > dist[iu] * 0.8) and np.all(ln[iu] < 150)
    # left-hemisphere regions (odd labels) lie at x < 0 (RAS+)
    assert np.all(c[0::2, 0] < 0) and np.all(c[1::2, 0] > 0)


def test_demo_tck_and_seed(tmp_path):
    a = vbt.datasets.write_demo(tmp_path / "a", n_streamlines=50, seed=1, tractogram_format="tck")
    b = vbt.datasets.write_demo(tmp_path / "b", n_streamlines=50, seed=1, tractogram_format="tck")
    assert a.tractogram.name == "tracks.tck" and a.tractogram.read_bytes() == b.tractogram.read_bytes()
    conn, _ = vbt.Connectome.from_tractogram(a.tractogram, a.parcellation, lut=a.lut, return_report=True)
    assert conn.n_regions == 8 and float(np.asarray(conn.weights).sum()) > 0
    with pytest.raises(ValueError, match="tractogram_format"):
        vbt.datasets.write_demo(tmp_path / "c", tractogram_format="trx")
    with pytest.raises(ValueError, match="n_streamlines"):
        vbt.datasets.write_demo(tmp_path / "c", n_streamlines=0)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        vbt.datasets.write_demo(tmp_path / "file")
