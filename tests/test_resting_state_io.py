"""Resting-state subjects of any region count and format (issue 26, part 3), and held-out scoring (part 1): BOLD from
.mat, .npy, .csv and .tsv in either layout, a 4-D NIfTI through nilearn, the TR from the NIfTI header or the BIDS
sidecar, the split of a recording, the FCD KS score against scipy, and a holdout fit that never sees the held-out
half. Every file is written by the library people use for it (scipy.io.savemat, numpy, nibabel)."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from vbtjax.empirical import RestingStateData

import vbtjax as vbt
from vbtjax import cli
from vbtjax.data import empirical
from vbtjax.inference import resting_state as rs

N = 68  # a parcellation of another size than the embedded subject's 94 and TVB's 76


def _structure(n=N, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.uniform(0, 1, (n, n)) * (rng.uniform(size=(n, n)) < 0.3)
    w = (w + w.T) / 2
    np.fill_diagonal(w, 0)
    ln = rng.uniform(20, 150, (n, n))
    ln = (ln + ln.T) / 2
    np.fill_diagonal(ln, 0)
    return w, ln


def _bold(n=N, t=200, seed=1):
    """(T, N) series with region-specific structure (a shared signal with different loadings)."""
    rng = np.random.default_rng(seed)
    shared = rng.standard_normal((t, 3))
    return shared @ rng.standard_normal((3, n)) + rng.standard_normal((t, n))


@pytest.fixture
def files(tmp_path):
    w, ln = _structure()
    np.save(tmp_path / "sc.npy", w)
    np.savetxt(tmp_path / "len.csv", ln, delimiter=",")
    return tmp_path, tmp_path / "sc.npy", tmp_path / "len.csv"


def test_bold_formats_and_layouts(files):
    from scipy.io import savemat

    folder, sc, ln = files
    x = _bold()  # (T, N)
    names = "\t".join(f"roi{i}" for i in range(N))
    savemat(folder / "tc.mat", {"tc": x.T})  # HCP's layout: regions x time
    np.save(folder / "bold.npy", x)  # time x regions
    np.savetxt(folder / "bold.csv", x, delimiter=",", header=names.replace("\t", ","), comments="")
    np.savetxt(folder / "bold.tsv", x, delimiter="\t", header=names, comments="")  # as nilearn/fMRIPrep write
    np.savetxt(folder / "bold_rt.tsv", x.T, delimiter="\t")  # regions x time, no header
    truth = np.corrcoef(x.T)
    for name in ("tc.mat", "bold.npy", "bold.csv", "bold.tsv", "bold_rt.tsv"):
        d = RestingStateData.from_files(sc, ln, bold=folder / name, tr=2000.0)
        assert d.n_regions == N and d.n_samples == 200 and d.bold.shape == (N, 200), name
        np.testing.assert_allclose(np.asarray(d.fc), truth, atol=1e-10, err_msg=name)


def test_bold_layout_rule(files):
    folder, sc, ln = files
    square = _bold(t=N)  # as many volumes as regions: the layout cannot be told
    np.save(folder / "square.npy", square)
    with pytest.raises(ValueError, match=r"bold: the series is 68 x 68.*layout='regions-time' or 'time-regions'"):
        RestingStateData.from_files(sc, ln, bold=folder / "square.npy", tr=2000.0)
    d = RestingStateData.from_files(sc, ln, bold=folder / "square.npy", tr=2000.0, bold_layout="time-regions")
    np.testing.assert_allclose(np.asarray(d.fc), np.corrcoef(square.T), atol=1e-10)
    d = RestingStateData.from_files(sc, ln, bold=folder / "square.npy", tr=2000.0, bold_layout="regions-time")
    np.testing.assert_allclose(np.asarray(d.fc), np.corrcoef(square), atol=1e-10)
    np.save(folder / "other.npy", _bold(n=70))
    with pytest.raises(ValueError, match=r"shape \(200, 70\) but the connectome has 68 regions"):
        RestingStateData.from_files(sc, ln, bold=folder / "other.npy", tr=2000.0)
    with pytest.raises(ValueError, match="layout 'sideways' is not one of"):
        empirical.orient_bold(square, N, "sideways")
    with pytest.raises(ValueError, match="confounds: applies to a 4-D NIfTI bold only"):
        RestingStateData.from_files(sc, ln, bold=folder / "other.npy", tr=2000.0, confounds=folder / "other.npy")


def test_tr_from_bids_sidecar(files):
    folder, sc, ln = files
    x = _bold(t=120)
    np.savetxt(folder / "sub-01_timeseries.tsv", x, delimiter="\t")
    (folder / "sub-01_timeseries.json").write_text(json.dumps({"RepetitionTime": 0.8}))
    d = RestingStateData.from_files(sc, ln, bold=folder / "sub-01_timeseries.tsv")
    assert d.tr == pytest.approx(800.0)
    with pytest.warns(UserWarning, match=r"tr = 720 ms differs from the 800 ms stated by RepetitionTime in sub-01"):
        d = RestingStateData.from_files(sc, ln, bold=folder / "sub-01_timeseries.tsv", tr=720.0)
    assert d.tr == 720.0  # the given one is used
    np.save(folder / "plain.npy", x)
    with pytest.raises(ValueError, match=r"give the repetition time tr.*no sidecar plain.json"):
        RestingStateData.from_files(sc, ln, bold=folder / "plain.npy")


def _nifti(folder, series, tr_value=2.0, unit="sec", shape=(6, 6, 4)):
    """A 4-D image whose voxels of label k + 1 all carry series[:, k] (k < 4, one label per x pair of slabs), and
    its label image, both written by nibabel."""
    import nibabel as nib

    t, k = series.shape
    labels = np.zeros(shape, np.int16)
    for i in range(k):
        labels[i, :, :] = i + 1  # slabs of x; x = 4, 5 background
    data = np.zeros((*shape, t), np.float32)
    for i in range(k):
        data[labels == i + 1] = series[:, i]
    img = nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0]))
    img.header.set_xyzt_units("mm", unit)
    img.header["pixdim"][4] = tr_value
    nib.save(img, folder / "bold.nii.gz")
    nib.save(nib.Nifti1Image(labels, np.diag([2.0, 2.0, 2.0, 1.0])), folder / "atlas.nii.gz")
    return folder / "bold.nii.gz", folder / "atlas.nii.gz"


def test_tr_from_nifti_header(tmp_path):
    x = _bold(n=4, t=30)
    bold, _ = _nifti(tmp_path, x, 2.0, "sec")
    assert empirical.file_tr(bold)[0] == pytest.approx(2000.0)
    bold, _ = _nifti(tmp_path, x, 720.0, "msec")
    assert empirical.file_tr(bold)[0] == pytest.approx(720.0)
    bold, _ = _nifti(tmp_path, x, 2.0, "unknown")
    tr, why = empirical.file_tr(bold)
    assert tr is None and "time unit 'unknown'" in why
    (tmp_path / "bold.json").write_text(json.dumps({"RepetitionTime": 1.5}))  # the BIDS sidecar comes first
    assert empirical.file_tr(bold) == (1500.0, "RepetitionTime in bold.json")


def test_nifti_without_nilearn_is_a_clear_error(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "nilearn.maskers", None)  # import raises ImportError, as when not installed
    w, ln = _structure(n=4)
    bold, atlas = _nifti(tmp_path, _bold(n=4, t=30))
    conn = vbt.Connectome(weights=w, lengths=ln)
    with pytest.raises(ImportError, match=r"needs nilearn.*pip install 'vbtjax\[nifti\]'"):
        empirical.read_bold(bold, conn.n_regions, parcellation=atlas, tr=2000.0)


def test_cli_nifti_errors(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "nilearn.maskers", None)
    w, ln = _structure(n=4)
    np.save(tmp_path / "sc.npy", w)
    np.save(tmp_path / "len.npy", ln)
    bold, atlas = _nifti(tmp_path, _bold(n=4, t=30))
    argv = ["fit", "--sc", str(tmp_path / "sc.npy"), "--lengths", str(tmp_path / "len.npy"), "--bold", str(bold)]
    cases = [
        ([], "--parcellation: required with a NIfTI --bold"),
        (["--parcellation", str(atlas)], "--bold: bold: reading the NIfTI image"),
        (["--parcellation", str(atlas), "--high-pass", "-1"], "--high-pass: must be a positive frequency"),
        (["--parcellation", str(atlas), "--confound-columns", "a"], "--confound-columns: needs --confounds"),
    ]
    for extra, match in cases:
        assert cli.main([*argv, *extra, "--out", str(tmp_path / "o"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert match in err, (extra, err)
    cli.main([*argv, "--parcellation", str(atlas), "--out", str(tmp_path / "o"), "--quiet"])
    assert "pip install 'vbtjax[nifti]'" in capsys.readouterr().err


def test_nifti_through_nilearn(tmp_path):
    pytest.importorskip("nilearn")
    x = _bold(n=4, t=40)
    bold, atlas = _nifti(tmp_path, x)
    series = empirical.read_bold(bold, 4, parcellation=atlas, tr=2000.0)
    np.testing.assert_allclose(series, x.T, rtol=1e-5, atol=1e-4)  # the mean of identical voxels
    # a confound regressed out: the result is orthogonal to it and equals numpy's least-squares residual
    conf = np.random.default_rng(3).standard_normal((40, 1))
    np.savetxt(tmp_path / "conf.tsv", conf, delimiter="\t", header="motion", comments="")
    cleaned = empirical.read_bold(bold, 4, parcellation=atlas, tr=2000.0, confounds=tmp_path / "conf.tsv")
    design = np.column_stack([np.ones(40), conf])
    resid = x - design @ np.linalg.lstsq(design, x, rcond=None)[0]
    np.testing.assert_allclose(cleaned.T - cleaned.T.mean(0), resid, atol=1e-3 * np.abs(x).max())
    with pytest.raises(ValueError, match="parcellation: .* gave 4 regions but the connectome has 5"):
        empirical.read_bold(bold, 5, parcellation=atlas, tr=2000.0)


# ---------------------------------------------------------------------------------------------- held-out scoring
def test_split_halves(files):
    folder, sc, ln = files
    x = _bold(t=101)
    np.save(folder / "b.npy", x)
    d = RestingStateData.from_files(sc, ln, bold=folder / "b.npy", tr=2000.0, name="s")
    first, rest = d.split()
    assert (first.n_samples, rest.n_samples) == (50, 51) and first.name == "s (volumes 1-50)"
    np.testing.assert_allclose(np.asarray(first.fc), np.corrcoef(x[:50].T), atol=1e-10)
    np.testing.assert_allclose(np.asarray(rest.fc), np.corrcoef(x[50:].T), atol=1e-10)
    fc_only = RestingStateData(d.connectome, d.fc, d.tr, d.n_samples, name="s")
    with pytest.raises(ValueError, match="no BOLD series to split"):
        fc_only.split()
    with pytest.raises(ValueError, match="fraction must be in"):
        d.split(1.0)


def _fcd_numpy(x, w, s):
    """FCD values by hand: window FC upper triangles, correlated between windows at least ceil(w / s) apart."""
    iu = np.triu_indices(x.shape[1], 1)
    ups = np.array([np.corrcoef(x[i : i + w].T)[iu] for i in range(0, x.shape[0] - w + 1, s)])
    m = np.corrcoef(ups)
    return m[np.triu_indices(len(ups), int(np.ceil(w / s)))]


def test_fcd_ks_score_against_scipy_and_a_negative_control():
    from scipy.stats import ks_2samp

    w, ln = _structure(n=10)
    conn = vbt.Connectome(weights=w, lengths=ln)
    net = eqx.tree_at(
        lambda m: (m.coupling.a, m.model.a), rs.fc_network(conn), (jnp.asarray(3e-3), jnp.full(10, -1e-4))
    )
    x = np.asarray(rs.simulated_bold(net, 2000.0, 300, 40.0, key=jax.random.key(9)), np.float64)
    data = RestingStateData.from_bold(conn, x.T, 2000.0)
    score = rs.score_fc(net, data, key=jax.random.key(4), n_eval=2, fcd_window=40_000.0, fcd_step=4_000.0)
    assert rs.fcd_windows(2000.0, 40_000.0, 4_000.0) == (20, 2)
    sims = [
        np.asarray(rs.simulated_bold(net, 2000.0, 300, 40.0, key=k)) for k in jax.random.split(jax.random.key(4), 2)
    ]
    for sim, ks, r in zip(sims, np.asarray(score.fcd_ks), np.asarray(score.r), strict=True):
        assert ks == pytest.approx(ks_2samp(_fcd_numpy(sim, 20, 2), _fcd_numpy(x, 20, 2)).statistic, abs=1e-6)
        iu = np.triu_indices(10, 1)
        assert r == pytest.approx(np.corrcoef(np.corrcoef(sim.T)[iu], np.corrcoef(x.T)[iu])[0, 1], abs=1e-5)
    # negative control: uncoupled regions (white-ish noise) have FCD values unlike the coupled network's
    far = eqx.tree_at(lambda m: m.coupling.a, net, jnp.asarray(0.0))
    control = rs.score_fc(far, data, key=jax.random.key(4), n_eval=2, fcd_window=40_000.0, fcd_step=4_000.0)
    assert float(jnp.mean(control.fcd_ks)) > float(jnp.mean(score.fcd_ks)) + 0.2
    assert float(jnp.mean(score.r)) > float(jnp.mean(control.r)) + 0.2
    # too short for two windows that do not overlap: reported as NaN, not an error
    short = rs.score_fc(net, data, key=jax.random.key(4), n_eval=1, fcd_window=400_000.0)
    assert np.isnan(float(short.fcd_ks[0]))


@pytest.mark.slow
def test_holdout_fit_never_sees_the_held_out_half():
    """Fitting on the first half gives the same parameters whatever the second half holds; the held-out score
    tells a second half from the same network from one whose regions were shuffled (negative control)."""
    w, ln = _structure(n=12, seed=2)
    conn = vbt.Connectome(weights=w, lengths=ln)
    truth = eqx.tree_at(
        lambda m: (m.coupling.a, m.model.a), rs.fc_network(conn), (jnp.asarray(2e-3), jnp.full(12, -2e-4))
    )
    x = np.asarray(rs.simulated_bold(truth, 2000.0, 400, 40.0, key=jax.random.key(5)), np.float64).T
    shuffled = x.copy()
    shuffled[:, 200:] = x[np.random.default_rng(0).permutation(12), 200:]
    start = eqx.tree_at(lambda m: m.coupling.a, truth, jnp.asarray(5e-4))
    kw = dict(start=start, steps=6, n_eval=2, holdout="half", key=jax.random.key(1), progress=False)
    kw |= dict(fcd_window=40_000.0, fcd_step=4_000.0)
    same = rs.fit_fc(RestingStateData.from_bold(conn, x, 2000.0), **kw)
    other = rs.fit_fc(RestingStateData.from_bold(conn, shuffled, 2000.0), **kw)
    np.testing.assert_array_equal(np.asarray(same.params["coupling.a"]), np.asarray(other.params["coupling.a"]))
    np.testing.assert_allclose(np.asarray(same.r), np.asarray(other.r), rtol=1e-12)  # the same first-half scores
    assert same.n_samples == 200 and same.test.n_samples == 200 and same.whole.n_samples == 400
    assert float(jnp.mean(same.test.r)) > float(jnp.mean(other.test.r)) + 0.2
    assert float(jnp.mean(same.test.r)) > same.test.baseline
    iu = np.triu_indices(12, 1)
    assert same.ceiling == pytest.approx(np.corrcoef(np.corrcoef(x[:, :200])[iu], np.corrcoef(x[:, 200:])[iu])[0, 1])
    assert other.ceiling < same.ceiling - 0.2
    with pytest.raises(ValueError, match="holdout must be one of none, half"):
        rs.fit_fc(RestingStateData.from_bold(conn, x, 2000.0), holdout="third", steps=0)


@pytest.mark.slow
def test_cli_fit_68_regions_tsv_with_sidecar(files, capsys):
    """`vbtjax fit` unchanged on a 68-region subject given as a time x regions .tsv (header of names) with its BIDS
    sidecar, the TR taken from the sidecar and the holdout on by default."""
    folder, sc, ln = files
    w, lengths = _structure()
    net = eqx.tree_at(lambda m: m.coupling.a, rs.fc_network(vbt.Connectome(weights=w, lengths=lengths)), 2e-3)
    x = np.asarray(rs.simulated_bold(net, 2000.0, 120, 40.0, key=jax.random.key(2)))
    header = "\t".join(f"roi{i}" for i in range(N))
    np.savetxt(folder / "sub-01_timeseries.tsv", x, delimiter="\t", header=header, comments="")
    (folder / "sub-01_timeseries.json").write_text(json.dumps({"RepetitionTime": 2.0}))
    out = folder / "out"
    argv = ["fit", "--sc", str(sc), "--lengths", str(ln), "--bold", str(folder / "sub-01_timeseries.tsv")]
    rc = cli.main([*argv, "--steps", "1", "--eval", "1", "--fcd-window", "30s", "--out", str(out), "--no-plot"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "68 regions, FC of volumes 1-60 of 120 volumes at TR 2000 ms" in captured.out
    summary = json.loads((out / "fit.json").read_text())
    assert summary["n_regions"] == 68 and summary["tr_ms"] == 2000.0 and summary["holdout"] == "half"
    assert summary["fcd_ks_held_out_mean"] is not None and 0 <= summary["fcd_ks_held_out_mean"] <= 1
    with np.load(out / "fit.npz") as z:
        np.testing.assert_allclose(z["fc_empirical_test"], np.corrcoef(x[60:].T), atol=1e-5)
