"""vbt.sweep against a Python loop over vbt.simulate (float64), its helpers, result files and error messages.

Multi-device and multi-process runs are in test_sweep_distributed.py.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from _sweep_net import small_network

import vbtjax as vbt
from vbtjax import inference as inf

jax.config.update("jax_enable_x64", True)

T1, DT = 10.0, 0.1


def loop(net, where, values, key=None, **kw):
    """The reference: one vbt.simulate per row of values, key fold_in(key, b)."""
    vals = values if isinstance(values, tuple) else (values,)
    get = (lambda n: tuple(where(n))) if isinstance(values, tuple) else (lambda n: (where(n),))
    out = []
    for b in range(len(vals[0])):
        net_b = eqx.tree_at(get, net, tuple(jnp.asarray(v[b]) for v in vals))
        k = None if key is None else jax.random.fold_in(key, b)
        out.append(vbt.simulate(net_b, T1, DT, key=k, **kw))
    return out


def _one_device_mesh():
    return jax.make_mesh((1,), ("b",), devices=jax.devices()[:1])


def close(a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------------ equal to the loop
def test_scalar_leaf_chunks_padding_and_one_compile(tmp_path):
    net = small_network()
    a = jnp.linspace(0.0, 0.05, 7)
    calls = []

    def features(sol):
        calls.append(1)  # runs once per trace
        return {"raw": sol.ys["raw"], "mean": sol.ys["raw"][:, 0].mean(axis=0)}

    # max_memory of one byte: one simulation per device and chunk, the same program for all chunks
    res = vbt.sweep(
        net, where=lambda n: n.coupling.a, values=a, t1=T1, dt=DT, features=features, max_memory=1, progress=False
    )
    assert res.batch_size == res.n_devices and len(res) == 7 and len(calls) == 2  # eval_shape + one jit trace
    ref = loop(net, lambda n: n.coupling.a, a)
    close(res.features["raw"], np.stack([s.ys["raw"] for s in ref]))
    close(res.ts["raw"], ref[0].ts["raw"])
    assert res.names == ("coupling.a",) and res.finite.all() and res.ys is None
    # the DESIGN.md call, default monitors, a batch of 3 (last chunk padded): the same numbers
    res3 = vbt.sweep(
        net,
        where=lambda n: n.coupling.a,
        values=a,
        t1=T1,
        dt=DT,
        solver=vbt.Heun(),
        key=None,
        batch_size=3,
        progress=True,
    )
    # batch_size rounded up to a multiple of the number of devices
    assert res3.ys["raw"].shape == (7, 100, 2, 5) and res3.batch_size == -(-3 // res3.n_devices) * res3.n_devices
    close(res3.ys["raw"], res.features["raw"])
    np.testing.assert_array_equal(res3.values, np.asarray(a))
    # save / load
    path = res3.save(tmp_path / "sweep")
    back = vbt.SweepResult.load(path)
    assert path.suffix == ".npz" and back.names == res3.names and back.dt == DT and back.n_steps == 100
    np.testing.assert_array_equal(back.ys["raw"], res3.ys["raw"])
    np.testing.assert_array_equal(back.ts["raw"], res3.ts["raw"])
    np.testing.assert_array_equal(back.values, res3.values)


def test_second_call_compiles_nothing():
    """The compiled program is cached by shapes and static settings: a second sweep with other values, another key,
    another `where` function selecting the same leaf and another value of an unswept parameter compiles nothing;
    another number of steps (a negative control of the counter) compiles."""
    from jax._src import dispatch

    compiles = []

    def listener(event, duration, **kw):
        if event == dispatch.BACKEND_COMPILE_EVENT:
            compiles.append(duration)

    net = small_network(noise=True)
    kw = dict(t1=T1, dt=DT, progress=False, monitors={"tavg": vbt.monitors.TemporalAverage(period=1.0)})
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        first = vbt.sweep(net, lambda n: n.coupling.a, jnp.linspace(0.0, 0.05, 6), key=jax.random.key(0), **kw)
        assert compiles, "the compile counter saw no compilation"
        net2 = eqx.tree_at(lambda n: n.model.I, net, net.model.I + 0.1)
        a2, key2 = np.linspace(0.01, 0.04, 6), jax.random.key(1)
        before = len(compiles)
        second = vbt.sweep(net2, lambda n: n.coupling.a, a2, key=key2, **kw)
        assert len(compiles) == before, f"the second sweep compiled {len(compiles) - before} program(s)"
        vbt.sweep(
            net, lambda n: n.coupling.a, jnp.linspace(0.0, 0.05, 6), key=jax.random.key(0), **{**kw, "t1": 2 * T1}
        )
        assert len(compiles) > before  # the counter counts
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    ref = loop(net2, lambda n: n.coupling.a, jnp.asarray(a2), key=key2, monitors=kw["monitors"])
    close(second.ys["tavg"], np.stack([s.ys["tavg"] for s in ref]))
    assert not np.allclose(first.ys["tavg"], second.ys["tavg"])


@pytest.mark.parametrize("width", [1, 2])
def test_rows_one_after_another_equal_the_loop(width):
    """A device's rows run `width` at a time (lax.map of a vmap, with a remainder when width does not divide them):
    the same numbers as per-run simulate, noise keys included."""
    from vbtjax.simulation.batch import BatchRunner

    net = small_network(noise=True)
    a = np.linspace(0.0, 0.05, 5)
    key = jax.random.key(7)

    def run(n, k):
        return vbt.simulate(n, T1, DT, key=k).ys["raw"]

    runner = BatchRunner(
        net,
        lambda n, vs: eqx.tree_at(lambda m: m.coupling.a, n, vs[0]),
        run,
        has_key=True,
        devices=jax.devices()[:1],
        closed=True,
    )
    out = runner((a,), 5, key, 5, width=width)
    close(out, np.stack([s.ys["raw"] for s in loop(net, lambda n: n.coupling.a, jnp.asarray(a), key=key)]))


def test_noise_keys_match_loop():
    net = small_network(noise=True)
    a = jnp.linspace(0.0, 0.05, 5)
    key = jax.random.key(3)
    mons = {"tavg": vbt.monitors.TemporalAverage(period=1.0)}
    res = vbt.sweep(net, lambda n: n.coupling.a, a, T1, DT, monitors=mons, key=key, batch_size=2, progress=False)
    ref = loop(net, lambda n: n.coupling.a, a, key=key, monitors=mons)
    close(res.ys["tavg"], np.stack([s.ys["tavg"] for s in ref]))
    close(res.ts["tavg"], ref[0].ts["tavg"])
    assert not np.allclose(res.ys["tavg"][0], res.ys["tavg"][1])  # distinct noise per simulation


def test_tuple_of_leaves_with_speed_and_random_initial_state():
    """Speed changes the delays: the buffer is laid out for the slowest and the blocks for the fastest speed."""
    net = small_network()
    a, v = vbt.sweep_grid(jnp.array([0.0, 0.04]), jnp.array([1.5, 12.0]))
    where = lambda n: (n.coupling.a, n.speed)
    key = jax.random.key(5)  # deterministic network: the key draws each simulation's initial state
    res = vbt.sweep(net, where, (a, v), T1, DT, key=key, progress=False)
    ref = loop(net, where, (a, v), key=key)
    close(res.ys["raw"], np.stack([s.ys["raw"] for s in ref]))
    assert res.names == ("coupling.a", "speed") and res.units == ("", "mm/ms")
    assert res.params["speed"].tolist() == [1.5, 12.0, 1.5, 12.0]


def test_per_region_values_and_features():
    net = small_network()
    I = np.random.default_rng(1).uniform(-0.5, 0.5, (3, 5))
    feat = lambda sol: vbt.features.fc(sol.ys["raw"][:, 0])
    res = vbt.sweep(net, lambda n: n.model.I, I, T1, DT, features=feat, progress=False)  # scalar leaf, (B, N)
    ref = loop(net, lambda n: n.model.I, I)
    close(res.features, np.stack([feat(s) for s in ref]))
    # one value for all regions of a per-region leaf
    net_h = eqx.tree_at(lambda n: n.model.I, net, jnp.zeros(5))
    res = vbt.sweep(net_h, lambda n: n.model.I, jnp.array([0.1, -0.2]), T1, DT, features=feat, progress=False)
    assert res.values.shape == (2, 5)
    close(res.features, np.stack([feat(s) for s in loop(net_h, lambda n: n.model.I, res.values)]))


def test_lengths_and_weights():
    """Sweeping lengths (delays) and weights (new edges included) gives the loop's results."""
    net = small_network()
    L, W = np.asarray(net.connectome.lengths), np.asarray(net.connectome.weights)
    Ls, Ws = np.stack([0.4 * L, 2.5 * L]), np.stack([0.5 * W, np.full_like(W, 0.2)])  # the second: all pairs
    where = lambda n: (n.connectome.lengths, n.connectome.weights)
    res = vbt.sweep(net, where, (Ls, Ws), T1, DT, progress=False)
    close(res.ys["raw"], np.stack([s.ys["raw"] for s in loop(net, where, (Ls, Ws))]))
    assert res.units == ("mm", "1")


def test_selection_and_sweep_random():
    net = small_network()
    sel = inf.Selection(
        [
            inf.Parameter(lambda n: n.coupling.a, inf.Interval(0.0, 0.1), name="G"),
            inf.Parameter(lambda n: n.model.I, inf.Interval(-1.0, 1.0)),
        ]
    )
    values = vbt.sweep_random(jax.random.key(0), 3, sel)
    assert len(values) == 2 and values[0].shape == (3,)
    assert np.all((values[0] > 0) & (values[0] < 0.1))
    res = vbt.sweep(net, sel, values, T1, DT, progress=False)
    assert res.names == ("G", "model.I")
    close(res.ys["raw"], np.stack([s.ys["raw"] for s in loop(net, lambda n: (n.coupling.a, n.model.I), values)]))
    with pytest.raises(ValueError, match="outside the open interval"):
        vbt.sweep(net, sel, (jnp.array([0.5]), jnp.array([0.0])), T1, DT, progress=False)


# ----------------------------------------------------------------------------------------------------------- helpers
def test_sweep_grid():
    a, b = vbt.sweep_grid(np.array([1.0, 2.0]), np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]))
    assert a.tolist() == [1, 1, 1, 2, 2, 2] and b.shape == (6, 2)
    np.testing.assert_array_equal(b[3], [0.0, 1.0])
    with pytest.raises(ValueError, match="axis 0"):
        vbt.sweep_grid(np.array(1.0))


def test_sweep_random_specs():
    key = jax.random.key(1)
    u = vbt.sweep_random(key, 100, (0.0, 2.0))
    assert u.shape == (100,) and 0 < u.min() and u.max() < 2
    u, d, i = vbt.sweep_random(key, 50, (jnp.zeros(4), 1.0), dist.Normal(jnp.zeros(3), 1.0), inf.Interval(2.0, 3.0))
    assert u.shape == (50, 4) and d.shape == (50, 3) and i.shape == (50,) and np.all(i > 2)
    np.testing.assert_array_equal(vbt.sweep_random(key, 5, (0.0, 1.0)), vbt.sweep_random(key, 5, (0.0, 1.0)))
    net = small_network()
    post = inf.Posterior(
        net,
        inf.Selection([inf.Parameter(lambda n: n.coupling.a, inf.Positive())]),
        priors={"coupling.a": dist.HalfNormal(0.02)},
        log_likelihood=lambda net, lat: 0.0,
    )
    (g,) = vbt.sweep_random(key, 20, post)
    assert g.shape == (20,) and np.all(g > 0)
    with pytest.raises(ValueError, match="Positive constraint"):
        vbt.sweep_random(key, 3, inf.Selection([inf.Parameter(lambda n: n.speed, inf.Positive())]))
    with pytest.raises(TypeError, match="spec 0"):
        vbt.sweep_random(key, 3, "a")
    with pytest.raises(ValueError, match="positive number"):
        vbt.sweep_random(key, 0, (0.0, 1.0))


# ------------------------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "where,values,match",
    [
        (lambda n: n.coupling.a, jnp.array(0.1), "single number"),
        (lambda n: n.coupling.a, jnp.ones((3, 2)), r"shape \(3, 2\) but the leaf 'coupling.a' has shape \(\)"),
        (lambda n: n.speed, jnp.ones((3, 5)), r"expected \(B,\)"),
        (lambda n: n.coupling.a, jnp.array([0.1, jnp.nan]), "NaN or inf \\(first at batch index 1\\)"),
        (lambda n: n.coupling.a, jnp.zeros((0,)), "empty"),
        (lambda n: (n.coupling.a, n.speed), (jnp.ones(3), jnp.ones(4)), "different batch sizes"),
        (lambda n: (n.coupling.a, n.speed), jnp.ones(3), "tuple of 2 arrays"),
        (lambda n: (n.coupling.a, n.speed), (jnp.ones(3),), "values has 1 arrays"),
        (lambda n: n.speed, jnp.array([1.0, -2.0]), "speeds must be > 0"),
        (lambda n: n.delay_mode, jnp.ones(2), "not an array leaf"),
        (lambda n: n.model.I * 2, jnp.ones(2), "not a leaf of the network"),
        (lambda n: (n.coupling.a, n.coupling.a), (jnp.ones(2), jnp.ones(2)), "same leaf twice"),
        (lambda n: n.model.foo, jnp.ones(2), "where\\(net\\) failed"),
        ("coupling.a", jnp.ones(2), "where must be a function"),
        (lambda n: n.coupling.a, np.array(["x"]), "numeric array"),
    ],
)
def test_errors(where, values, match):
    net = small_network()
    with pytest.raises((ValueError, TypeError), match=match):
        vbt.sweep(net, where, values, T1, DT, progress=False)


def test_errors_of_arguments():
    net = small_network()
    a = jnp.ones(2) * 0.01
    with pytest.raises(ValueError, match="key is required"):
        vbt.sweep(small_network(noise=True), lambda n: n.coupling.a, a, T1, DT, progress=False)
    with pytest.raises(ValueError, match="not both"):
        vbt.sweep(net, lambda n: n.coupling.a, a, T1, DT, batch_size=2, max_memory=10)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        vbt.sweep(net, lambda n: n.coupling.a, a, T1, DT, batch_size=0)
    with pytest.raises(ValueError, match="devices= or mesh="):
        vbt.sweep(net, lambda n: n.coupling.a, a, T1, DT, devices=jax.devices(), mesh=_one_device_mesh())
    with pytest.raises(ValueError, match="not a whole number of steps"):  # simulate's own checks, before compiling
        vbt.sweep(net, lambda n: n.coupling.a, a, 10.05, DT, progress=False)
    with pytest.raises(TypeError, match="inside jit"):
        jax.jit(lambda x: vbt.sweep(net, lambda n: n.coupling.a, x, T1, DT).ys)(a)
    with pytest.raises(ValueError, match="history contains NaN"):
        vbt.sweep(net, lambda n: n.coupling.a, a, T1, DT, history=np.full((2, 5), np.nan), progress=False)
    with pytest.raises(TypeError, match="net must be"):
        vbt.sweep("net", lambda n: n.coupling.a, a, T1, DT)
