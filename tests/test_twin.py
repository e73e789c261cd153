"""vbt.Twin: exact save/load round trips (folder and zip), identical simulations in another process, refusal of
tampered, truncated and foreign files, and what-if predictions over posterior draws against independent
computations (a loop over hand-built networks; the VEP's own virtual resection)."""

import json
import subprocess
import sys
import zipfile

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from vbtjax.outcomes import FC, Seizes, TimeAverage

import vbtjax as vbt
from vbtjax import scenarios as sc
from vbtjax import vep
from vbtjax._serialise import SerialisationError, content_hash
from vbtjax.twin import Prediction, Twin, TwinFileError, get_leaf, set_leaves

N = 5


def _conn():
    rng = np.random.default_rng(3)
    w = rng.uniform(0, 1, (N, N)) * (rng.uniform(size=(N, N)) < 0.7)
    np.fill_diagonal(w, 0)
    lengths = rng.uniform(10, 60, (N, N))
    lengths = (lengths + lengths.T) / 2
    return vbt.Connectome(weights=w, lengths=lengths, labels=[f"R{i}" for i in range(N)])


def _net(**kw):
    stim = vbt.stimulus.Stimulus(
        temporal=vbt.stimulus.PulseTrain(onset=5.0, period=20.0, width=2.0, amplitude=0.3),
        weight=np.linspace(0, 1, N),
    )
    base = dict(
        model=vbt.models.Generic2dOscillator(a=np.linspace(-0.5, -0.2, N)),
        connectome=_conn(),
        coupling=vbt.coupling.Linear(a=0.02),
        speed=2.7,
        noise=vbt.noise.Additive(nsig=1e-4),
        stimulus=stim,
    )
    base.update(kw)
    return vbt.Network(**base)


SIM = {"t1": 40.0, "dt": 0.1, "solver": vbt.Heun(), "monitors": {"tavg": vbt.monitors.TemporalAverage(period=1.0)}}


def _twin(**kw):
    rng = np.random.default_rng(0)
    net = _net(**kw)
    post = {
        "coupling.a": rng.uniform(0.0, 0.04, (2, 3)),
        "model.a": rng.uniform(-0.5, -0.2, (2, 3, N)),
        "sigma": rng.uniform(size=(2, 3)),  # a latent: kept, not applied
    }
    return Twin(
        net,
        posterior=post,
        history={"loss": np.linspace(1, 0, 7)},
        simulation=dict(SIM, history=np.full((2, N), 0.1)),
        metadata={"subject": "s01", "notes": ["synthetic"], "value": 1.5},
    )


def _same_tree(a, b):
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    assert ta == tb
    for x, y in zip(la, lb, strict=True):
        assert type(x) is type(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        assert np.array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("suffix", ["", ".zip"])
def test_round_trip_is_exact(tmp_path, suffix):
    twin = _twin(delay_mode="interpolate", speed_range=(2.0, 4.0))
    path = twin.save(tmp_path / f"twin{suffix}")
    back = Twin.load(path)
    _same_tree(twin.network, back.network)
    assert back.network.edges == twin.network.edges  # the delay layout is recomputed identically
    assert back.network.delay_mode == "interpolate" and back.network.speed_range == (2.0, 4.0)
    for k in twin.posterior:
        assert (
            np.array_equal(twin.posterior[k], back.posterior[k]) and back.posterior[k].dtype == twin.posterior[k].dtype
        )
    assert np.array_equal(back.history["loss"], twin.history["loss"])
    assert back.metadata == twin.metadata and back.provenance == twin.provenance
    assert back.simulation["t1"] == 40.0 and isinstance(back.simulation["solver"], vbt.Heun)
    assert np.array_equal(back.simulation["history"], twin.simulation["history"])
    key = jax.random.key(2)
    _same_tree(twin.simulate(key=key).ys, back.simulate(key=key).ys)
    # a second save of the loaded twin is byte-identical in content
    meta_a, arr_a = twin._meta_and_arrays()
    meta_b, arr_b = back._meta_and_arrays()
    assert content_hash(meta_a, arr_a) == content_hash(meta_b, arr_b)
    with pytest.raises(FileExistsError):
        twin.save(path)


def test_loaded_in_another_process_simulates_identically(tmp_path):
    twin = _twin()
    path = twin.save(tmp_path / "twin")
    key = jax.random.key(11)
    here = np.asarray(twin.simulate(key=key).ys["tavg"])
    script = (
        "import jax, numpy as np, sys\n"
        "jax.config.update('jax_enable_x64', True)\n"
        "from vbtjax import Twin\n"
        "t = Twin.load(sys.argv[1])\n"
        "np.save(sys.argv[2], np.asarray(t.simulate(key=jax.random.key(11)).ys['tavg']))\n"
    )
    out = tmp_path / "there.npy"
    subprocess.run([sys.executable, "-c", script, str(path), str(out)], check=True, timeout=300)
    there = np.load(out)
    assert there.dtype == here.dtype and np.array_equal(there, here)


def test_tampered_truncated_and_foreign_files_are_refused(tmp_path):
    twin = _twin()
    folder = twin.save(tmp_path / "twin")
    # an edited number in the JSON
    meta = json.loads((folder / "twin.json").read_text())
    meta["metadata"]["value"] = 2.5
    (folder / "twin.json").write_text(json.dumps(meta))
    with pytest.raises(TwinFileError, match="modified"):
        Twin.load(folder)
    # an edited array
    folder = twin.save(tmp_path / "twin2")
    with np.load(folder / "arrays.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["network.coupling.a"] = arrays["network.coupling.a"] + 1.0
    np.savez(folder / "arrays.npz", **arrays)
    with pytest.raises(TwinFileError, match="modified"):
        Twin.load(folder)
    # truncated zip, missing file, not a twin
    z = twin.save(tmp_path / "twin.zip")
    data = z.read_bytes()
    (tmp_path / "cut.zip").write_bytes(data[: len(data) // 2])
    with pytest.raises(TwinFileError, match="truncated"):
        Twin.load(tmp_path / "cut.zip")
    folder = twin.save(tmp_path / "twin3")
    (folder / "arrays.npz").unlink()
    with pytest.raises(TwinFileError, match="missing"):
        Twin.load(folder)
    with pytest.raises(TwinFileError, match="does not exist"):
        Twin.load(tmp_path / "nothing")
    # a file naming a class outside vbtjax is refused even with a valid hash (nothing is imported from it)
    folder = twin.save(tmp_path / "twin4")
    meta = json.loads((folder / "twin.json").read_text())
    meta.pop("content_hash")
    meta["network"]["fields"]["noise"]["__module__"] = "os:system"
    with np.load(folder / "arrays.npz") as zz:
        arrays = {k: zz[k] for k in zz.files}
    meta["content_hash"] = content_hash(meta, arrays)
    (folder / "twin.json").write_text(json.dumps(meta))
    with pytest.raises(TwinFileError, match="outside vbtjax"):
        Twin.load(folder)
    # the archive holds no pickles: every array loads with allow_pickle=False
    with zipfile.ZipFile(z) as zf:
        assert sorted(zf.namelist()) == ["arrays.npz", "twin.json"]


class _UserTemporal(vbt.stimulus.AbstractTemporal):
    f: object = eqx.field(static=True)

    def __call__(self, t):
        return self.f(t)


def test_functions_cannot_be_saved_and_user_classes_need_trust(tmp_path):
    stim = vbt.stimulus.Stimulus(temporal=_UserTemporal(f=jnp.sin), weight=np.ones(N))
    with pytest.raises(SerialisationError, match="Python function"):
        Twin(_net(stimulus=stim)).save(tmp_path / "t")
    assert not (tmp_path / "t").exists()  # nothing half-written

    class Quiet(vbt.noise.Additive):
        pass

    Quiet.__module__ = "userpkg.noise"
    twin = Twin(_net(noise=Quiet(nsig=1e-4)))
    path = twin.save(tmp_path / "u")
    with pytest.raises(TwinFileError, match="outside vbtjax"):
        Twin.load(path)


def test_bad_arguments():
    net = _net()
    with pytest.raises(TypeError, match="vbtjax.Network"):
        Twin("net")
    with pytest.raises(ValueError, match="posterior\\['model.a'\\] has shape"):
        Twin(net, posterior={"model.a": np.zeros((4, N + 1))})
    with pytest.raises(ValueError, match="NaN"):
        Twin(net, posterior={"coupling.a": np.array([0.1, np.nan])})
    with pytest.raises(ValueError, match="unknown keys"):
        Twin(net, simulation={"duration": 1.0})
    with pytest.raises(TypeError, match="JSON"):
        Twin(net, metadata={"x": object()})
    with pytest.raises(FileNotFoundError, match="inputs"):
        Twin(net, inputs=["/no/such/file"])
    with pytest.raises(ValueError, match="has no 'zz'"):
        get_leaf(net, "coupling.zz")
    with pytest.raises(ValueError, match="key is required"):
        _twin().predict(None, FC(monitor="tavg"))


def test_provenance_records_versions_and_input_hashes(tmp_path):
    f = tmp_path / "weights.csv"
    f.write_text("1,2\n3,4\n")
    twin = Twin(_net(), inputs=[f])
    p = twin.provenance
    assert p["jax"] == jax.__version__ and p["vbtjax"] == vbt.__version__ and p["x64"] is True
    import hashlib

    assert p["inputs"][str(f)] == hashlib.sha256(f.read_bytes()).hexdigest()
    assert p["created"].endswith("+00:00")


def test_predict_equals_a_loop_over_hand_built_networks():
    """Twin.predict(Lesion >> SlowConduction) over posterior draws of coupling.a and model.a equals simulating, for
    each draw, a network built by hand (weights scaled, speed divided) with key fold_in(key, s)."""
    twin = _twin()
    scen = sc.Lesion(tracts=[(0, 1), (2, 3)], factor=0.25) >> sc.SlowConduction(1.6)
    key = jax.random.key(5)
    out = TimeAverage(monitor="tavg", variable=0, discard=10.0)
    pred = twin.predict(scen, out, key=key, n_samples=3, batch_size=2, progress=False)
    assert isinstance(pred, Prediction) and pred.n_samples == 3
    # 3 of the 6 draws, evenly spaced (rows 0, 2 or 3, and 5), each simulated with key fold_in(key, s)
    a = twin.posterior["coupling.a"].reshape(-1)
    m = twin.posterior["model.a"].reshape(-1, N)
    rows = [int(np.flatnonzero(a == v)[0]) for v in pred.params["coupling.a"]]
    assert rows[0] == 0 and rows[-1] == 5 and len(set(rows)) == 3
    np.testing.assert_array_equal(pred.params["model.a"], m[rows])
    w = np.asarray(twin.network.connectome.weights).copy()
    for i, j in [(0, 1), (2, 3)]:
        w[i, j] *= 0.25
        w[j, i] *= 0.25
    hist = twin.simulation["history"]
    for s, row in enumerate(rows):
        net = twin.network
        net = eqx.tree_at(lambda n: (n.coupling.a, n.model.a), net, (jnp.asarray(a[row]), jnp.asarray(m[row])))
        lesioned = vbt.Network(
            model=net.model,
            connectome=vbt.Connectome(weights=w, lengths=net.connectome.lengths),
            coupling=net.coupling,
            speed=float(net.speed) / 1.6,
            noise=net.noise,
            stimulus=net.stimulus,
        )
        k = jax.random.fold_in(key, s)
        for target, which in ((lesioned, pred.outcome), (net, pred.baseline)):
            sol = vbt.simulate(target, 40.0, 0.1, hist, vbt.Heun(), SIM["monitors"], k)
            expect = np.asarray(sol.ys["tavg"][10:, 0]).mean(axis=0)
            np.testing.assert_allclose(which[s], expect, rtol=1e-12, atol=1e-14)
    assert not np.allclose(pred.outcome, pred.baseline)
    np.testing.assert_allclose(pred.change(), pred.outcome - pred.baseline)
    np.testing.assert_allclose(pred.mean(), pred.outcome.mean(0))
    assert pred.quantiles((0.1, 0.9)).shape == (2, N)
    assert pred.scenario["type"] == "Compose"


def test_predict_fc_equals_numpy_corrcoef_after_the_discard_window():
    """FC(monitor, variable, discard) of each draw is ``np.corrcoef`` of that variable's samples stamped after
    `discard` ms, from a simulation of the draw's network by hand (key ``fold_in(key, s)``)."""
    twin = _twin()
    key = jax.random.key(7)
    pred = twin.predict(None, FC(monitor="tavg", variable=1, discard=12.0), key=key, n_samples=2, progress=False)
    a = twin.posterior["coupling.a"].reshape(-1)
    m = twin.posterior["model.a"].reshape(-1, N)
    rows = [int(np.flatnonzero(a == v)[0]) for v in pred.params["coupling.a"]]
    for s, row in enumerate(rows):
        net = eqx.tree_at(lambda n: (n.coupling.a, n.model.a), twin.network, (jnp.asarray(a[row]), jnp.asarray(m[row])))
        sol = vbt.simulate(
            net, 40.0, 0.1, twin.simulation["history"], vbt.Heun(), SIM["monitors"], jax.random.fold_in(key, s)
        )
        ts, ys = np.asarray(sol.ts["tavg"]), np.asarray(sol.ys["tavg"])
        after = ys[ts > 12.0, 1]  # windows (k, k + 1] ms stamped k + 0.5: those after the discard window
        assert after.shape == (28, N)
        np.testing.assert_allclose(pred.outcome[s], np.corrcoef(after.T), rtol=0, atol=1e-12)
        # negative control: the transient changes the FC, so a wrong discard would be seen
        assert np.max(np.abs(np.corrcoef(ys[:, 1].T) - pred.outcome[s])) > 1e-3
    assert pred.baseline is None or np.allclose(pred.baseline, pred.outcome)


def test_predict_without_posterior_gives_noise_realisations(tmp_path):
    twin = Twin(_net(), simulation=dict(SIM, history=np.full((2, N), 0.1)))
    key = jax.random.key(1)
    pred = twin.predict(sc.Resect([1]), FC(monitor="tavg", discard=5.0), key=key, n_samples=3, progress=False)
    assert pred.outcome.shape == (3, N, N)
    # a resected region is disconnected: its FC with others changes, but each realisation differs only by noise
    assert not np.allclose(pred.outcome[0], pred.outcome[1])
    path = pred.save(tmp_path / "p.npz")
    with np.load(path) as z:
        assert np.array_equal(z["outcome"], pred.outcome) and json.loads(str(z["scenario"]))["type"] == "Resect"


def test_vep_virtual_surgery_matches_virtual_resection():
    """predict(Resect) with the Seizes outcome over VEP posterior draws reproduces vep.virtual_resection (its own
    integrator), region by region."""
    conn = vbt.datasets.tvb_connectome(76)
    rng = np.random.default_rng(4)
    S = 6
    x0 = rng.uniform(-2.6, -2.3, (S, 76))
    x0[:, [5, 10]] = rng.uniform(-1.8, -1.5, (S, 2))
    x0[::2, 40] = -1.6
    K = rng.uniform(0.2, 1.5, S)
    resect = [5, 10]
    expect = vep.virtual_resection(conn, x0, K, resect)
    twin = _vep_twin_of(conn, x0, K)
    net = twin.network
    pred = twin.predict(sc.Resect(resect), Seizes(monitor="x1", threshold=vep.SEIZURE_X1), progress=False)
    kept = sc.Resect(resect).kept(net)
    np.testing.assert_array_equal(pred.probability("baseline"), expect["p_seizing_before"])
    assert expect["seizing_before_probability"] > 0 and expect["seizure_free_probability"] > 0
    np.testing.assert_allclose(np.mean(pred.outcome & kept, axis=0), expect["p_seizing_after"])
    free = 1 - np.mean(np.any(pred.outcome & kept, axis=1))
    assert free == pytest.approx(expect["seizure_free_probability"])
    # run=: the VEP's own integrator as the simulator gives the same outcome
    custom = twin.predict(
        sc.Resect(resect),
        run=lambda net, k: jnp.any(vep.simulate_x1(net) > vep.SEIZURE_X1, axis=0),
        baseline=False,
        progress=False,
    )
    np.testing.assert_array_equal(custom.outcome, pred.outcome)


def test_set_leaves_and_from_samples():
    net = _net()
    new = set_leaves(net, {"coupling.a": 0.5, "model.a": np.zeros(N)})
    assert float(new.coupling.a) == 0.5 and np.all(np.asarray(new.model.a) == 0)
    sel = vbt.inference.Selection([vbt.inference.Parameter(lambda n: n.coupling.a, name="G")])
    twin = Twin.from_samples(net, {"G": np.ones((2, 4)) * 0.01}, selection=sel)
    assert set(twin.posterior) == {"coupling.a"} and twin.n_draws == 8


def _vep_twin_of(conn, x0, K):
    """A VEP twin with posterior draws `x0` (S, N) and `K` (S,) and the VEP's simulation settings."""
    net = vep.vep_network(conn, x0=x0.mean(0), K=float(np.mean(K)))
    simulation = {
        "t1": vep.DURATION,
        "dt": vep.DT,
        "solver": vbt.Heun(),
        "monitors": {"x1": vbt.monitors.SubSample(period=vep.PERIOD)},
        "history": vep.rest_history(conn.n_regions),
    }
    return Twin(net, posterior={"model.x0": x0, "coupling.a": K}, simulation=simulation)


def _vep_twin(tmp_path, x0_ez):
    rng = np.random.default_rng(4)
    x0 = rng.uniform(-2.6, -2.3, (4, 76))
    x0[:, [5, 10]] = x0_ez
    twin = _vep_twin_of(vbt.datasets.tvb_connectome(76), x0, np.full(4, 0.5))
    return twin, twin.save(tmp_path / "twin")


def test_cli_whatif(tmp_path, capsys):
    """`vbtjax whatif` on a saved VEP twin: the printed and saved outcome equal Twin.predict's; bad inputs exit 2."""
    from vbtjax.cli import main

    twin, path = _vep_twin(tmp_path, x0_ez=-1.6)
    label = twin.network.connectome.labels[5]
    out = tmp_path / "w"
    assert main(["whatif", str(path), "--scenario", f"resect:{label},10", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "P(seizure-free): baseline 0.00 (no region seizes) -> scenario 1.00" in printed
    s = json.loads((out / "summary.json").read_text())
    pred = twin.predict(sc.Resect([5, 10]), Seizes(monitor="x1", threshold=vep.SEIZURE_X1), progress=False)
    np.testing.assert_allclose(s["p_seize_baseline"], pred.probability("baseline"))
    kept = np.ones(76, bool)
    kept[[5, 10]] = False  # removed regions are reported as removed (null), not as seizing
    np.testing.assert_allclose(np.asarray(s["p_seize_scenario"], float)[kept], pred.probability()[kept])
    assert s["p_seize_scenario"][5] is None and s["p_seize_scenario"][10] is None
    assert s["removed"] == [5, 10] and (out / "whatif.png").read_bytes()[:4] == b"\x89PNG"
    with np.load(out / "prediction.npz") as z:
        np.testing.assert_array_equal(z["outcome"], pred.outcome)
    for argv, match in (
        (["--scenario", "cut:3"], "--scenario"),
        (["--scenario", "resect:NoSuchRegion"], "NoSuchRegion"),
        (["--scenario", "resect:3", "--monitor", "bold"], "--monitor"),
        (["--scenario", "resect:3", "--samples", "0"], "--samples"),
    ):
        assert main(["whatif", str(path), *argv, "--out", str(tmp_path / "x"), "--quiet"]) == 2
        assert match in capsys.readouterr().err
    (path / "arrays.npz").write_bytes(b"PK\x03\x04broken")
    assert main(["whatif", str(path), "--scenario", "resect:3", "--out", str(tmp_path / "x")]) == 2
    assert "TWIN" in capsys.readouterr().err
