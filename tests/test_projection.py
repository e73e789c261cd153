"""Sensors, gain matrices and the EEG/MEG/SEEG projection monitors, against independent NumPy computations
(against TVB's own EEG, MEG and iEEG monitors: ``test_monitors_tvb.py``)."""

import jax

jax.config.update("jax_enable_x64", True)

import bz2
import importlib.resources
import zipfile

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest
import tvb_data  # noqa: F401  (a dependency: its absence is a failure, not a skip)

import vbtjax as vbt
from vbtjax import sensors as vs

SENSOR_DIR = importlib.resources.files("tvb_data") / "sensors"


def _numpy_parse(text):
    rows = [line.split() for line in text.splitlines() if line.strip()]
    return [r[0] for r in rows], np.array([[float(v) for v in r[1:]] for r in rows])


def _sensor_files():
    return sorted(p.name for p in SENSOR_DIR.iterdir() if p.name.endswith((".txt", ".txt.bz2")))


# ---------------------------------------------------------------------- Sensors.from_file


@pytest.mark.parametrize("name", _sensor_files())
def test_every_tvb_sensor_file(name):
    with importlib.resources.as_file(SENSOR_DIR / name) as path:
        s = vs.Sensors.from_file(path)
        data = path.read_bytes()
    text = (bz2.decompress(data) if name.endswith(".bz2") else data).decode("utf-8")
    labels, values = _numpy_parse(text)
    assert s.labels == tuple(labels)
    np.testing.assert_array_equal(np.asarray(s.positions), values[:, :3])
    if name.startswith("meg"):
        np.testing.assert_array_equal(np.asarray(s.orientations), values[:, 3:6])
    else:
        assert s.orientations is None and values.shape[1] == 3


def test_tvb_sensors_table():
    counts = {
        ("eeg", 65): 65,
        ("eeg", 62): 62,
        ("meg", 276): 276,
        ("meg", 151): 151,
        ("seeg", 588): 588,
        ("seeg", 39): 103,
    }  # seeg_39 holds 103 contacts
    for (kind, n), count in counts.items():
        assert vs.tvb_sensors(kind, n).n_sensors == count
    assert vs.tvb_sensors("meg").n_sensors == 276 and vs.tvb_sensors("seeg").n_sensors == 588
    with pytest.raises(ValueError, match="available: 65, 62"):
        vs.tvb_sensors("eeg", 64)
    with pytest.raises(ValueError, match="unknown kind"):
        vs.tvb_sensors("ecog")


def test_sensor_text_variants(tmp_path):
    text = "# comment\nA1\t1.0\t2.0\t3.0\n\n  B2 -4 5e1 6.5  \nC´3 7 8 9\n"
    plain = tmp_path / "s.txt"
    plain.write_text(text, encoding="utf-8")
    (tmp_path / "s.txt.bz2").write_bytes(bz2.compress(text.encode()))
    with zipfile.ZipFile(tmp_path / "s.zip", "w") as zf:
        zf.writestr("sub/s.txt.bz2", bz2.compress(text.encode()))
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as zf:
        zf.writestr("a.txt", text)
        zf.writestr("b.txt", "X 0 0 0\n")
    expected = np.array([[1, 2, 3], [-4, 50, 6.5], [7, 8, 9]], float)
    for s in (
        vs.Sensors.from_file(plain),
        vs.Sensors.from_file(tmp_path / "s.txt.bz2"),
        vs.Sensors.from_file(tmp_path / "s.zip"),
        vs.Sensors.from_file(tmp_path / "two.zip", member="a.txt"),
    ):
        assert s.labels == ("A1", "B2", "C´3") and s.orientations is None
        np.testing.assert_array_equal(np.asarray(s.positions), expected)
    with pytest.raises(ValueError, match="exactly one"):
        vs.Sensors.from_file(tmp_path / "two.zip")
    meg = tmp_path / "meg.txt"
    meg.write_text("m1 1 2 3 0 0 1\nm2 4 5 6 1 0 0\n")
    s = vs.Sensors.from_file(meg)
    np.testing.assert_array_equal(np.asarray(s.orientations), [[0, 0, 1], [1, 0, 0]])
    assert s.subset(["m2"]).labels == ("m2",) and s.subset(np.array([True, False])).labels == ("m1",)
    assert s.index("m2") == 1


@pytest.mark.parametrize(
    "body,match",
    [
        ("a 1 2 3\nb 1 2 3\nc 1 2\n", "line 3"),
        ("a 1 2 3\n\nb 1 x 3\n", "line 3: non-numeric"),
        ("a 1 2 3 0 0 1\nb 1 2 3\n", "line 2: 3 numbers but line 1 has 6"),
        ("a 1 2 3\nb 1 nan 3\n", "line 2: NaN"),
        ("1.0 2.0 3.0\n", "line 1"),
        ("# only a comment\n\n", "no sensors"),
    ],
)
def test_malformed_sensor_files(tmp_path, body, match):
    p = tmp_path / "bad.txt"
    p.write_text(body)
    with pytest.raises(ValueError, match=match):
        vs.Sensors.from_file(p)


def test_sensor_constructor_errors(tmp_path):
    with pytest.raises(ValueError, match="positions has shape"):
        vs.Sensors(labels=["a"], positions=np.zeros((1, 2)))
    with pytest.raises(ValueError, match="2 labels for 1"):
        vs.Sensors(labels=["a", "b"], positions=np.zeros((1, 3)))
    with pytest.raises(ValueError, match="orientations"):
        vs.Sensors(labels=["a"], positions=np.zeros((1, 3)), orientations=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        vs.Sensors(labels=["a"], positions=[[0.0, np.nan, 0.0]])
    with pytest.raises(FileNotFoundError):
        vs.Sensors.from_file(tmp_path / "missing.txt")


# ---------------------------------------------------------------------- gains


def _loop_region_gain(proj, rmap, n, reduce):
    out = np.zeros((proj.shape[0], n))
    for r in range(n):
        cols = proj[:, rmap == r]
        if cols.shape[1]:
            out[:, r] = cols.sum(axis=1) if reduce == "sum" else cols.mean(axis=1)
    return out


@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_region_gain_matches_loop(reduce):
    rng = np.random.default_rng(0)
    proj = rng.normal(size=(4, 50))
    rmap = rng.integers(0, 6, 50)
    rmap[rmap == 3] = 2  # region 3 has no vertices: zero column
    got = vs.region_gain_from_surface(proj, rmap, 7, reduce=reduce)
    np.testing.assert_allclose(got, _loop_region_gain(proj, rmap, 7, reduce), rtol=1e-13, atol=1e-15)
    assert np.all(np.asarray(got)[:, [3, 6]] == 0)


def test_tvb_projection_and_region_gain():
    p = vs.tvb_projection("eeg")
    assert p.projection.shape == (65, 16384) and p.region_mapping.shape == (16384,)
    assert p.sensors.n_sensors == 65 and np.isfinite(p.projection).all()
    assert [p.sensors.labels[i] for i in np.flatnonzero(~p.usable)] == ["IO1", "IO2"]
    assert set(np.unique(p.region_mapping)) == set(range(76))
    gain = vs.region_gain_from_surface(p.projection, p.region_mapping, 76)
    np.testing.assert_allclose(gain, _loop_region_gain(p.projection, p.region_mapping, 76, "sum"), rtol=1e-10)
    p62 = vs.tvb_projection("eeg", 62)
    assert p62.projection.shape == (62, 16384) and p62.usable.all()
    meg = vs.tvb_projection("meg")
    assert meg.projection.shape == (276, 16384) and int(meg.usable.sum()) == 248
    assert meg.sensors.orientations is not None
    with pytest.raises(ValueError, match="no SEEG projection"):
        vs.tvb_projection("seeg")
    eeg = vbt.monitors.EEG.from_tvb(period=1.0, usable_only=True)
    assert eeg.gain.shape == (63, 76) and "IO1" not in eeg.sensors.labels
    np.testing.assert_allclose(eeg.gain, np.asarray(gain)[p.usable])
    with pytest.raises(ValueError, match="seeg_gain_point_source"):
        vbt.monitors.SEEG.from_tvb()


def test_region_gain_errors():
    proj = np.ones((3, 10))
    rmap = np.arange(10) % 4
    with pytest.raises(ValueError, match="transposed"):
        vs.region_gain_from_surface(proj.T, rmap)
    with pytest.raises(ValueError, match="NaN"):
        vs.region_gain_from_surface(np.where(np.eye(3, 10) > 0, np.nan, 1.0), rmap)
    with pytest.raises(ValueError, match="n_regions=3"):
        vs.region_gain_from_surface(proj, rmap, 3)
    with pytest.raises(ValueError, match="integer"):
        vs.region_gain_from_surface(proj, rmap + 0.5)
    with pytest.raises(ValueError, match="negative"):
        vs.region_gain_from_surface(proj, rmap - 1)
    with pytest.raises(ValueError, match="reduce"):
        vs.region_gain_from_surface(proj, rmap, reduce="max")


def test_seeg_point_source_gain():
    rng = np.random.default_rng(1)
    contacts = rng.uniform(-50, 50, (7, 3))
    centres = rng.uniform(-50, 50, (5, 3))
    d = np.linalg.norm(contacts[:, None] - centres[None], axis=-1)
    expected = 1.0 / d**2
    np.testing.assert_allclose(vs.seeg_gain_point_source(contacts, centres), expected, rtol=1e-13)
    np.testing.assert_allclose(
        vs.seeg_gain_point_source(contacts, centres, normalise="max"), expected / expected.max(), rtol=1e-13
    )
    np.testing.assert_allclose(
        vs.seeg_gain_point_source(contacts, centres, normalise="rows"),
        expected / expected.sum(1, keepdims=True),
        rtol=1e-13,
    )
    # a contact on a centre and one 0.1 mm away: clamped at min_distance, finite values and gradients
    contacts[0] = centres[2]
    contacts[1] = centres[3] + np.array([0.1, 0.0, 0.0])
    g = vs.seeg_gain_point_source(contacts, centres, min_distance=0.5)
    assert np.isfinite(g).all() and float(g[0, 2]) == 4.0 and float(g[1, 3]) == 4.0
    grad = jax.grad(lambda c: jnp.sum(vs.seeg_gain_point_source(c, centres, min_distance=0.5)))(jnp.asarray(contacts))
    assert np.isfinite(grad).all()
    with pytest.raises(ValueError, match="contacts has shape"):
        vs.seeg_gain_point_source(contacts[:, :2], centres)
    with pytest.raises(ValueError, match="centres contains NaN"):
        vs.seeg_gain_point_source(contacts, np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="min_distance"):
        vs.seeg_gain_point_source(contacts, centres, min_distance=0.0)
    with pytest.raises(ValueError, match="normalise"):
        vs.seeg_gain_point_source(contacts, centres, normalise="sum")


# ---------------------------------------------------------------------- monitors


def _network(n=5, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.uniform(0, 1, (n, n)) * (rng.uniform(size=(n, n)) < 0.7)
    L = rng.uniform(1.0, 10.0, (n, n))
    np.fill_diagonal(L, 0.0)
    conn = vbt.Connectome(weights=W, lengths=L)
    return vbt.Network(
        model=vbt.models.Generic2dOscillator(a=4.0), connectome=conn, coupling=vbt.coupling.Linear(a=0.1), speed=2.0
    )


HIST = 0.2 * np.ones((2, 5))


def test_projection_monitors_equal_gain_times_temporal_average():
    net = _network()
    rng = np.random.default_rng(2)
    g_eeg, g_meg = rng.normal(size=(3, 5)), rng.normal(size=(4, 5))
    contacts = rng.uniform(-30, 30, (6, 3))
    centres = rng.uniform(-30, 30, (5, 3))
    mons = {
        "tavg": vbt.monitors.TemporalAverage(period=1.3),
        "eeg": vbt.monitors.EEG(g_eeg, period=1.3),
        "meg": vbt.monitors.MEG(g_meg, period=1.3, variables_of_interest=("W",)),
        "seeg": vbt.monitors.SEEG.from_contacts(contacts, centres, period=1.3, normalise="max"),
    }
    sol = vbt.simulate(net, t1=40.0, dt=0.1, history=HIST, monitors=mons, chunk_steps=33)
    tavg = np.asarray(sol.ys["tavg"])  # (T, 2, 5)
    T = 400 // 13
    assert sol.ys["eeg"].shape == (T, 2, 3) and sol.ys["meg"].shape == (T, 1, 4) and sol.ys["seeg"].shape == (T, 2, 6)
    np.testing.assert_allclose(sol.ys["eeg"], np.einsum("kn,tvn->tvk", g_eeg, tavg), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(
        sol.ys["meg"], np.einsum("kn,tn->tk", g_meg, tavg[:, 1])[:, None], rtol=1e-12, atol=1e-13
    )
    d2 = ((contacts[:, None] - centres[None]) ** 2).sum(-1)
    g_seeg = (1 / d2) / (1 / d2).max()
    np.testing.assert_allclose(sol.ys["seeg"], np.einsum("kn,tvn->tvk", g_seeg, tavg), rtol=1e-12, atol=1e-13)
    for k in ("eeg", "meg", "seeg"):
        np.testing.assert_allclose(sol.ts[k], sol.ts["tavg"])


def test_projection_chunk_independent_and_default_period():
    net = _network(seed=1)
    g = np.random.default_rng(3).normal(size=(3, 5))
    dt = vbt.monitors.projection.TVB_PROJECTION_PERIOD / 8  # TVB's 1024 Hz default period = 8 steps
    run = lambda c: vbt.simulate(  # noqa: E731
        net, t1=300 * dt, dt=dt, history=HIST, monitors=vbt.monitors.EEG(g), chunk_steps=c
    )
    a, b = run(1000), run(7)
    assert a.ys.shape == (37, 2, 3)
    np.testing.assert_allclose(a.ts, (8 * np.arange(1, 38) - 4) * dt)
    np.testing.assert_allclose(b.ys, a.ys, rtol=1e-12, atol=1e-14)


def test_gradient_wrt_gain_and_through_projection():
    net = _network(seed=2)
    g0 = jnp.asarray(np.random.default_rng(4).normal(size=(3, 5)))
    w = jnp.asarray(np.random.default_rng(5).normal(size=(10, 2, 3)))

    def loss(g, a):
        n = eqx.tree_at(lambda m: m.coupling.a, net, a)
        ys = vbt.simulate(n, t1=10.0, dt=0.1, history=HIST, monitors=vbt.monitors.EEG(g, period=1.0)).ys
        return jnp.sum(w * jnp.tanh(ys))

    vg = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))  # one compilation for gradients and values
    f = lambda g, a: vg(g, a)[0]  # noqa: E731
    a0 = jnp.asarray(0.1)
    _, (dg, da) = vg(g0, a0)
    eps = 1e-6
    for i, j in [(0, 0), (1, 3), (2, 4)]:
        e = jnp.zeros_like(g0).at[i, j].set(eps)
        fd = (f(g0 + e, a0) - f(g0 - e, a0)) / (2 * eps)
        np.testing.assert_allclose(dg[i, j], fd, rtol=1e-6, atol=1e-9)
    fd = (f(g0, a0 + eps) - f(g0, a0 - eps)) / (2 * eps)
    np.testing.assert_allclose(da, fd, rtol=1e-5, atol=1e-9)


def test_projection_bad_inputs():
    net = _network()
    with pytest.raises(ValueError, match=r"gain has shape \(3, 4\) but the network has N = 5"):
        vbt.simulate(net, t1=2.0, dt=0.1, history=HIST, monitors=vbt.monitors.EEG(np.ones((3, 4)), period=1.0))
    with pytest.raises(ValueError, match="transposed"):
        vbt.simulate(net, t1=2.0, dt=0.1, history=HIST, monitors=vbt.monitors.SEEG(np.ones((5, 3)), period=1.0))
    with pytest.raises(ValueError, match="gain has shape"):
        vbt.monitors.MEG(np.ones(5))
    with pytest.raises(ValueError, match="gain contains NaN"):
        vbt.monitors.EEG(np.full((2, 5), np.nan))
    with pytest.raises(ValueError, match="3 sensors"):
        vbt.monitors.EEG(np.ones((3, 5)), sensors=vs.Sensors(labels=["a"], positions=np.zeros((1, 3))))
    with pytest.raises(ValueError, match="not a whole multiple of dt"):  # TVB's default period with dt = 0.1
        vbt.simulate(net, t1=2.0, dt=0.1, history=HIST, monitors=vbt.monitors.EEG(np.ones((3, 5))))
    with pytest.raises(ValueError, match="period"):
        vbt.monitors.EEG(np.ones((3, 5)), period=-1.0)
