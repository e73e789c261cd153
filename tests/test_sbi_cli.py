"""``vbtjax sbi simulate|train|infer`` end to end on tiny problems: an 8-region VEP synthetic patient (budget built,
interrupted, resumed; NPE trained and calibrated; the patient's EZ recovered from its SEEG file), a resting-state
problem on a small connectome (FC features from a file), and bad input (exit 2 naming the option)."""

import json

import numpy as np
import pytest

import vbtjax as vbt
from vbtjax import cli


def run(argv, capsys):
    rc = cli.main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.fixture(scope="module")
def small_vep_connectome(tmp_path_factory):
    """The 8 regions of TVB's 76 nearest region 12, with centres; region 12 is index `EZ` of the subset."""
    conn = vbt.datasets.tvb_connectome(76)
    c = np.asarray(conn.centres)
    keep = np.sort(np.argsort(np.linalg.norm(c - c[12], axis=1), kind="stable")[:8])
    sub = vbt.Connectome(
        weights=np.asarray(conn.weights)[np.ix_(keep, keep)],
        lengths=np.asarray(conn.lengths)[np.ix_(keep, keep)],
        centres=c[keep],
        labels=[conn.labels[i] for i in keep],
    )
    path = tmp_path_factory.mktemp("sbi") / "small.npz"
    sub.save_npz(path)
    return path, int(np.flatnonzero(keep == 12)[0])


@pytest.mark.slow
def test_vep_simulate_resume_train_infer(small_vep_connectome, tmp_path, capsys):
    conn, ez = small_vep_connectome
    out = tmp_path / "p"
    sim = ["sbi", "simulate", "--problem", "vep", "--connectome", conn, "--synthetic-ez", ez, "--seed", 1]
    sim += ["--n", 900, "--chunk-size", 300, "--out", out, "--quiet"]
    assert run(sim, capsys)[0] == 0
    assert sorted(p.name for p in (out / "budget").iterdir()) == ["budget.json"] + [
        f"chunk_0000{i}.npz" for i in range(3)
    ]
    assert (out / "patient" / "seeg.npz").is_file() and json.loads((out / "patient" / "truth.json").read_text())[
        "ez"
    ] == [ez]
    full = vbt.sbi.Budget.load(out / "budget")
    # interrupted: the last chunk missing, a partial file left behind; the same command resumes
    (out / "budget" / "chunk_00002.npz").rename(out / "budget" / "chunk_00002.npz.tmp.npz")
    rc, text, _ = run([a for a in sim if a != "--quiet"], capsys)
    assert rc == 0 and "300 simulated now" in text
    again = vbt.sbi.Budget.load(out / "budget")
    np.testing.assert_array_equal(full.x, again.x)
    np.testing.assert_array_equal(full.theta, again.theta)
    # a different budget in the same folder is refused
    rc, _, err = run([*sim[:-3], "--n", 800, "--out", out], capsys)
    assert rc == 2 and "--out" in err and "another problem" in err

    rc, text, _ = run(
        ["sbi", "train", "--out", out, "--layers", 3, "--width", 32, "--ensemble", 2, "--pca", 32, "--max-epochs", 25]
        + ["--calibration-draws", 40, "--test", 100, "--quiet"],
        capsys,
    )
    assert rc == 0
    for f in ("calibration.json", "calibration.png", "training.png", "train.json", "npe/npe.json"):
        assert (out / f).is_file(), f
    cal = json.loads((out / "calibration.json").read_text())
    assert cal["n_test"] == 100 and len(cal["names"]) == 9
    # the file agrees with itself: the 90 % figure is read off the coverage curve, the error is the curve's worst,
    # and the verdict follows the checks
    levels, joint = np.asarray(cal["levels"]), np.asarray(cal["joint_coverage"])
    assert cal["joint_coverage_90"] == pytest.approx(joint[np.argmin(np.abs(levels - 0.9))])
    per = np.array(list(cal["coverage"].values()))  # (parameters, levels)
    worst = max(np.max(np.abs(per - levels)), np.max(np.abs(joint - levels)))
    assert cal["max_coverage_error"] == pytest.approx(worst)
    assert cal["checks"]["coverage"] == (cal["max_coverage_error"] <= cal["coverage_band_99"])
    assert cal["verdict"].startswith("NOT calibrated") == (not all(cal["checks"].values()))
    npe, prior, info = vbt.sbi.load_npe(out / "npe")
    assert prior.names == ("x0", "K") and info["description"]["problem"] == "vep"
    assert npe.n_members == 2 and npe.x_proj.shape == (npe.x_mean.shape[0], 32)
    assert json.loads((out / "train.json").read_text())["ensemble"] == 2

    rc, text, _ = run(["sbi", "infer", "--out", out, "--observation", out / "patient" / "seeg.npz"], capsys)
    assert rc == 0 and "posterior draws in" in text
    import arviz as az

    idata = az.from_netcdf(out / "infer" / "posterior.nc")
    assert idata.posterior["x0"].shape == (1, 1000, 8) and "region" in idata.posterior["x0"].dims
    summary = json.loads((out / "infer" / "summary.json").read_text())
    ranking = json.loads((out / "infer" / "ranking.json").read_text())
    # the synthetic patient's EZ is the most likely epileptogenic region and is called EZ
    assert ranking[0]["index"] == ez and ranking[0]["probability"] > 0.5, ranking[:3]
    assert ez in summary["predicted_ez"] and summary["recall"] == 1.0
    assert (out / "infer" / "posterior.png").read_bytes()[:4] == b"\x89PNG"

    # bad observations: wrong number of features, a missing file, NUTS without a recording
    np.save(tmp_path / "f.npy", np.zeros(7))
    rc, _, err = run(["sbi", "infer", "--out", out, "--observation", tmp_path / "f.npy"], capsys)
    assert rc == 2 and "--observation" in err and "trained on" in err
    rc, _, err = run(["sbi", "infer", "--out", out, "--observation", tmp_path / "nope.npz"], capsys)
    assert rc == 2 and "--observation" in err and "does not exist" in err
    np.save(tmp_path / "x.npy", np.asarray(npe.x_mean))  # features of the right size, but no recording
    rc, _, err = run(["sbi", "infer", "--out", out, "--observation", tmp_path / "x.npy", "--compare-nuts"], capsys)
    assert rc == 2 and "--compare-nuts" in err


def test_resting_state_cli_on_a_small_connectome(tmp_path, capsys):
    rng = np.random.default_rng(0)
    w = rng.uniform(0, 1, (6, 6))
    w = (w + w.T) / 2 * (1 - np.eye(6))
    np.save(tmp_path / "sc.npy", w)
    np.save(tmp_path / "len.npy", 30.0 * (1 - np.eye(6)))
    out = tmp_path / "rs"
    sim = ["sbi", "simulate", "--problem", "resting-state", "--sc", tmp_path / "sc.npy", "--lengths"]
    sim += [tmp_path / "len.npy", "--volumes", 20, "--tr", 2000, "--dt", 200, "--features", "fc", "--n", 48]
    sim += ["--chunk-size", 24, "--coupling-max", 1e-3, "--out", out, "--quiet"]
    assert run(sim, capsys)[0] == 0
    budget = vbt.sbi.Budget.load(out / "budget")
    assert budget.x.shape == (48, 10) and budget.finite.all()
    # the same folder: another seed is refused (one line naming it); more simulations by whole chunks extend it
    rc, _, err = run([*sim[:-1], "--seed", 1], capsys)
    error = [ln for ln in err.splitlines() if ": error: " in ln]  # after the announced stage "[1/2] setting up ..."
    assert rc == 2 and len(error) == 1 and "--seed 0 -> 1" in error[0] and "--out" in error[0], err
    rc, _, err = run([72 if before == "--n" else a for before, a in zip([None, *sim], sim, strict=False)], capsys)
    assert rc == 0, err
    more = vbt.sbi.Budget.load(out / "budget")
    np.testing.assert_array_equal(more.x[:48], budget.x)
    assert len(more) == 72 and more.info["resumed"] == [{"n": [48, 72]}]
    assert json.loads((out / "problem.json").read_text())["resumed"] == [{"--n": [48, 72]}]
    assert (
        run(
            ["sbi", "train", "--out", out, "--max-epochs", 3, "--flow", "maf", "--ensemble", 1, "--test", 8, "--quiet"],
            capsys,
        )[0]
        == 0
    )
    # an FC matrix (FC-only features) and a BOLD (regions x time) file are both observations
    bold = rng.normal(size=(6, 20))
    np.savetxt(tmp_path / "bold.txt", bold)
    fc = np.corrcoef(bold)
    np.save(tmp_path / "fc.npy", fc)
    for obs, name in ((tmp_path / "bold.txt", "a"), (tmp_path / "fc.npy", "b")):
        rc, _, err = run(["sbi", "infer", "--out", out, "--observation", obs, "--name", name, "--draws", 50], capsys)
        assert rc == 0, err
        s = json.loads((out / name / "summary.json").read_text())
        assert set(s["posterior"]) == {"coupling.a", "model.a"}
        assert 0 <= s["posterior"]["coupling.a"]["mean"] <= 1e-3
    a = json.loads((out / "a" / "summary.json").read_text())["posterior"]["model.a"]["mean"]
    b = json.loads((out / "b" / "summary.json").read_text())["posterior"]["model.a"]["mean"]
    assert abs(a - b) < 1e-8  # the same features from the BOLD and from its FC (same seed)
    rc, _, err = run(["sbi", "infer", "--out", out, "--observation", tmp_path / "bold.txt", "--compare-nuts"], capsys)
    assert rc == 2 and "--compare-nuts" in err and "vep" in err


@pytest.mark.parametrize(
    "argv, option",
    [
        (["sbi", "simulate", "--out", "{tmp}/a"], "--problem"),
        (["sbi", "simulate", "--problem", "vep", "--out", "{tmp}/a"], "--seeg"),
        (["sbi", "simulate", "--problem", "vep", "--synthetic-ez", "99", "--out", "{tmp}/a"], "--synthetic-ez"),
        (["sbi", "simulate", "--problem", "resting-state", "--seeg", "x.npz", "--out", "{tmp}/a"], "--seeg"),
        (["sbi", "simulate", "--problem", "resting-state", "--subject", "nobody", "--out", "{tmp}/a"], "--subject"),
        (["sbi", "simulate", "--problem", "vep", "--n", "1", "--out", "{tmp}/a"], "--n"),
        (["sbi", "simulate", "--problem", "resting-state", "--a-map", "myelin", "--out", "{tmp}/a"], "--a-map"),
        (["sbi", "simulate", "--problem", "resting-state", "--a-map", "{tmp}/map.npy", "--out", "{tmp}/a"], "--a-map"),
        (["sbi", "simulate", "--problem", "vep", "--a-map", "strength", "--out", "{tmp}/a"], "--a-map"),
        (["sbi", "train", "--out", "{tmp}/empty"], "--out"),
        (["sbi", "train", "--out", "{tmp}/empty", "--ensemble", "0"], "--ensemble"),
        (["sbi", "infer", "--out", "{tmp}/empty", "--observation", "x.npz"], "--out"),
        (["sbi"], "a step is required"),
    ],
)
def test_bad_input_exit_2(argv, option, tmp_path, capsys):
    np.save(tmp_path / "map.npy", np.arange(5.0))  # a map of 5 values for a 94-region connectome
    rc, _, err = run([a.replace("{tmp}", str(tmp_path)) for a in argv], capsys)
    assert rc == 2 and option in err and "Traceback" not in err, err
