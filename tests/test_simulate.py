"""Simulator behaviour against independent truth: a plain NumPy implementation of TVB's conventions, analytic
results, finite differences, and invariances (chunking, blocking, jit/vmap)."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _numpy_reference import simulate_numpy

import vbtjax as vbt
from vbtjax import delays as vdelays
from vbtjax.simulate import SimulationWarning

jax.config.update("jax_enable_x64", True)


def random_connectome(n=6, seed=0, zero_offdiag=0, max_len=12.0):
    rng = np.random.default_rng(seed)
    W = rng.uniform(0, 1, (n, n)) * (rng.uniform(size=(n, n)) < 0.7)
    L = rng.uniform(1.0, max_len, (n, n))
    np.fill_diagonal(L, 0.0)
    for k in range(zero_offdiag):  # some off-diagonal edges with zero length: instantaneous coupling
        i, j = k % n, (k + 2) % n
        L[i, j] = 0.0
        W[i, j] = 0.5
    return vbt.Connectome(weights=W, lengths=L)


def g2d_numpy(model):
    p = {k: float(v) for k, v in model.parameters().items()}

    def dfun(x, c):
        V, W_ = x
        dV = (
            p["d"]
            * p["tau"]
            * (p["alpha"] * W_ - p["f"] * V**3 + p["e"] * V**2 + p["g"] * V + p["gamma"] * p["I"] + p["gamma"] * c[0])
        )
        dW = p["d"] * (p["a"] + p["b"] * V + p["c"] * V**2 - p["beta"] * W_) / p["tau"]
        return np.stack([dV, dW])

    return dfun


@pytest.mark.parametrize(
    "coupling,pre,post",
    [
        (vbt.coupling.Linear(a=0.1, b=0.01), lambda xi, xj: xj, lambda g: 0.1 * g + 0.01),
        (vbt.coupling.Difference(a=0.2), lambda xi, xj: xj - xi, lambda g: 0.2 * g),
        (
            vbt.coupling.HyperbolicTangent(a=0.3, b=1.2, midpoint=0.1, sigma=0.7),
            lambda xi, xj: 0.3 * (1 + np.tanh((1.2 * xj - 0.1) / 0.7)),
            lambda g: g,
        ),
        (
            vbt.coupling.Sigmoidal(cmin=-1.0, cmax=1.0, midpoint=0.2, a=2.0, sigma=1.5),
            lambda xi, xj: xj,
            lambda g: -1 + 2 / (1 + np.exp(-2.0 * (g - 0.2) / 1.5)),
        ),
    ],
    ids=["Linear", "Difference", "HyperbolicTangent", "Sigmoidal"],
)
@pytest.mark.parametrize("zero_offdiag", [0, 3])
def test_matches_plain_numpy_implementation(coupling, pre, post, zero_offdiag):
    conn = random_connectome(zero_offdiag=zero_offdiag)
    model = vbt.models.Generic2dOscillator(a=4.0)
    net = vbt.Network(model=model, connectome=conn, coupling=coupling, speed=2.0)
    dt = 0.1
    D = vdelays.discretise(np.asarray(conn.lengths) / 2.0, dt)
    H = net.horizon(dt)
    hist = np.random.default_rng(1).uniform(-1, 1, (H, 2, 6))
    n = 120
    sol = vbt.simulate(net, t1=n * dt, dt=dt, history=hist)
    ref = simulate_numpy(np.asarray(conn.weights), D, hist, g2d_numpy(model), pre, post, [0], dt, n)
    np.testing.assert_allclose(np.asarray(sol.ys["raw"]), ref, rtol=1e-10, atol=1e-10)


def test_euler_and_bounds_match_numpy():
    conn = random_connectome(seed=3)
    model = vbt.models.MontbrioPazoRoxin(eta=-4.0)
    net = vbt.Network(model=model, connectome=conn, coupling=vbt.coupling.Linear(a=0.5), speed=4.0)
    dt = 0.05
    D = vdelays.discretise(np.asarray(conn.lengths) / 4.0, dt)
    hist = np.random.default_rng(2).uniform(0, 0.05, (net.horizon(dt), 2, 6))
    hist[:, 1] -= 2.0

    def dfun(x, c):
        r, V = x
        return np.stack([1.0 / np.pi + 2 * V * r, V * V - np.pi**2 * r * r - 4.0 + 15.0 * r + c[0]])

    bound = lambda x: np.stack([np.maximum(x[0], 0.0), x[1]])
    ref = simulate_numpy(
        np.asarray(conn.weights),
        D,
        hist,
        dfun,
        lambda xi, xj: xj,
        lambda g: 0.5 * g,
        [0, 1],
        dt,
        200,
        bound=bound,
        scheme="euler",
    )
    sol = vbt.simulate(net, t1=200 * dt, dt=dt, history=hist, solver=vbt.Euler())
    np.testing.assert_allclose(np.asarray(sol.ys["raw"]), ref, rtol=1e-10, atol=1e-12)


def _noisy_oscillators():
    """8 delayed Generic2dOscillators with additive noise, delays of many steps (blocks of K > 1)."""
    return vbt.Network(
        model=vbt.models.Generic2dOscillator(a=4.0),
        connectome=random_connectome(n=8, seed=4, max_len=30.0),
        coupling=vbt.coupling.Linear(a=0.05),
        speed=1.0,
        noise=vbt.noise.Additive(nsig=1e-3),
    )


def test_blocking_and_chunking_are_exact(monkeypatch):
    net = _noisy_oscillators()
    key = jax.random.key(3)
    base = vbt.simulate(net, t1=100.0, dt=0.1, key=key)
    assert base.block > 1
    for chunk in (1, 7, 64, 5000):
        other = vbt.simulate(net, t1=100.0, dt=0.1, key=key, chunk_steps=chunk)
        np.testing.assert_allclose(other.ys["raw"], base.ys["raw"], rtol=0, atol=1e-12)
    monkeypatch.setattr(vdelays, "MAX_BLOCK", 1)
    one = vbt.simulate(net, t1=100.0, dt=0.1, key=key)
    assert one.block == 1
    np.testing.assert_allclose(one.ys["raw"], base.ys["raw"], rtol=0, atol=1e-12)


def test_rk4_is_fourth_order_on_uncoupled_oscillator():
    # uncoupled SupHopf at a = 0: dz/dt = (i w - |z|^2) z; with zero weights the network is N independent ODEs
    n = 2
    conn = vbt.Connectome(weights=np.zeros((n, n)), lengths=np.zeros((n, n)))
    net = vbt.Network(model=vbt.models.SupHopf(a=-1.0, omega=1.0), connectome=conn, speed=3.0)
    x0 = np.array([[1.0, 0.5], [0.0, 0.2]])
    # linear part only (|z| small effect): compare with a very fine RK4 solution
    fine = vbt.simulate(net, t1=2.0, dt=1e-4, history=x0, solver=vbt.RK4(), monitors=vbt.monitors.Raw()).ys[-1]
    errs = []
    for dt in (0.1, 0.05):
        y = vbt.simulate(net, t1=2.0, dt=dt, history=x0, solver=vbt.RK4(), monitors=vbt.monitors.Raw()).ys[-1]
        errs.append(float(jnp.max(jnp.abs(y - fine))))
    assert 12 < errs[0] / errs[1] < 20  # 2^4 = 16


def test_diffrax_solver_is_accepted():
    conn = random_connectome(seed=5)
    net = vbt.Network(
        model=vbt.models.Generic2dOscillator(a=4.0), connectome=conn, coupling=vbt.coupling.Linear(a=0.1), speed=2.0
    )
    hist = 0.3 * np.ones((2, 6))
    ours = vbt.simulate(net, t1=20.0, dt=0.1, history=hist, solver=vbt.Heun())
    theirs = vbt.simulate(net, t1=20.0, dt=0.1, history=hist, solver=diffrax.Heun())
    np.testing.assert_allclose(ours.ys["raw"], theirs.ys["raw"], rtol=1e-10, atol=1e-12)  # no bounds: identical


def test_monitors_against_raw():
    conn = random_connectome(seed=6)
    net = vbt.Network(
        model=vbt.models.Generic2dOscillator(a=4.0), connectome=conn, coupling=vbt.coupling.Linear(a=0.1), speed=2.0
    )
    mons = {
        "raw": vbt.monitors.Raw(),
        "sub": vbt.monitors.SubSample(period=0.7),
        "tavg": vbt.monitors.TemporalAverage(period=1.3),
        "V": vbt.monitors.Raw(variables_of_interest=("V",)),
    }
    # 50 ms is not a whole number of 0.7 or 1.3 ms periods: floor(t1 / period) samples, as in TVB, with a warning
    with pytest.warns(SimulationWarning) as record:
        sol = vbt.simulate(net, t1=50.0, dt=0.1, history=0.2 * np.ones((2, 6)), monitors=mons, chunk_steps=33)
    said = " ".join(str(w.message) for w in record)
    assert "monitors['sub'] (period 0.7 ms): it returns 71 samples, up to t = 49.7 ms" in said
    assert "monitors['tavg'] (period 1.3 ms): it returns 38 samples" in said
    raw = np.asarray(sol.ys["raw"])
    assert raw.shape == (500, 2, 6)
    np.testing.assert_allclose(sol.ts["raw"], 0.1 * np.arange(1, 501))
    np.testing.assert_allclose(sol.ys["sub"], raw[6::7])
    np.testing.assert_allclose(sol.ts["sub"], 0.7 * np.arange(1, 500 // 7 + 1))
    n_avg = 500 // 13
    expected = raw[: n_avg * 13].reshape(n_avg, 13, 2, 6).mean(axis=1)
    np.testing.assert_allclose(sol.ys["tavg"], expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sol.ts["tavg"], (13 * np.arange(1, n_avg + 1) - 6.5) * 0.1)
    np.testing.assert_allclose(sol.ys["V"], raw[:, :1])
    np.testing.assert_allclose(sol.final_state, raw[-1])


def test_single_monitor_gives_arrays():
    conn = random_connectome(seed=6)
    net = vbt.Network(model=vbt.models.Generic2dOscillator(), connectome=conn, speed=2.0)
    sol = vbt.simulate(net, t1=5.0, dt=0.1, monitors=vbt.monitors.TemporalAverage(period=1.0))
    assert sol.ys.shape == (5, 2, 6) and sol.ts.shape == (5,)


def test_additive_noise_variance_is_tvb():
    # Kuramoto with omega = 0 and no coupling: theta(T) - theta(0) = sqrt(2 nsig) W(T), variance 2 nsig T
    n, nsig, T = 4000, 0.05, 10.0
    conn = vbt.Connectome(weights=np.zeros((n, n)), lengths=np.zeros((n, n)))
    net = vbt.Network(
        model=vbt.models.Kuramoto(omega=0.0),
        connectome=conn,
        coupling=vbt.coupling.Kuramoto(a=0.0),
        noise=vbt.noise.Additive(nsig=nsig),
    )
    sol = vbt.simulate(
        net, t1=T, dt=0.5, history=np.zeros((1, n)), key=jax.random.key(0), monitors=vbt.monitors.SubSample(period=T)
    )
    var = float(jnp.var(sol.ys[-1, 0]))
    se = 2 * nsig * T * np.sqrt(2 / n)
    assert abs(var - 2 * nsig * T) < 4 * se


def test_noise_reproducible_and_key_dependent():
    conn = random_connectome(seed=7)
    net = vbt.Network(
        model=vbt.models.Generic2dOscillator(a=4.0),
        connectome=conn,
        coupling=vbt.coupling.Linear(a=0.1),
        speed=2.0,
        noise=vbt.noise.Additive(nsig=[1e-3, 0.0]),
    )
    a = vbt.simulate(net, t1=20.0, dt=0.1, key=jax.random.key(1)).ys["raw"]
    b = vbt.simulate(net, t1=20.0, dt=0.1, key=jax.random.key(1)).ys["raw"]
    c = vbt.simulate(net, t1=20.0, dt=0.1, key=jax.random.key(2)).ys["raw"]
    np.testing.assert_array_equal(a, b)
    assert float(jnp.max(jnp.abs(a - c))) > 1e-4


def test_jit_vmap_and_net_as_argument():
    conn = random_connectome(seed=8)
    net = vbt.Network(
        model=vbt.models.Generic2dOscillator(a=4.0), connectome=conn, coupling=vbt.coupling.Linear(a=0.1), speed=2.0
    )
    hist = 0.1 * np.ones((2, 6))
    run = lambda n: vbt.simulate(n, t1=10.0, dt=0.1, history=hist).ys["raw"]
    direct = run(net)
    np.testing.assert_allclose(eqx.filter_jit(run)(net), direct, rtol=1e-12)
    values = jnp.array([0.0, 0.05, 0.1])
    batched = jax.vmap(lambda a: run(eqx.tree_at(lambda n: n.coupling.a, net, a)))(values)
    for k, a in enumerate(values):
        np.testing.assert_allclose(batched[k], run(eqx.tree_at(lambda n: n.coupling.a, net, a)), rtol=1e-12)
    np.testing.assert_allclose(batched[2], direct, rtol=1e-12)


def test_changed_delays_under_jit_are_caught():
    conn = random_connectome(seed=8)
    net = vbt.Network(model=vbt.models.Generic2dOscillator(), connectome=conn, speed=2.0)
    f = jax.jit(lambda v: vbt.simulate(eqx.tree_at(lambda n: n.speed, net, v), t1=5.0, dt=0.1).ys["raw"])
    f(2.0)  # same delays: fine
    with pytest.raises(Exception, match="delays"):
        jax.block_until_ready(f(0.5))


def _loss(net, hist):
    ys = vbt.simulate(net, t1=30.0, dt=0.1, history=hist, monitors=vbt.monitors.TemporalAverage(period=1.0)).ys
    return jnp.mean(ys[-10:, 0] ** 2)


@pytest.mark.parametrize(
    "where",
    [lambda n: n.coupling.a, lambda n: n.model.I, lambda n: n.connectome.weights],
    ids=["coupling.a", "model.I", "weights"],
)
def test_gradients_match_finite_differences(where):
    conn = random_connectome(seed=9)
    net = vbt.Network(
        model=vbt.models.Generic2dOscillator(a=4.0), connectome=conn, coupling=vbt.coupling.Linear(a=0.1), speed=2.0
    )
    hist = np.random.default_rng(0).uniform(-1, 1, (net.horizon(0.1), 2, 6))
    x0 = where(net)
    loss_at = lambda x: _loss(eqx.tree_at(where, net, x), hist)
    g = jax.grad(loss_at)(x0)
    direction = np.random.default_rng(1).normal(size=np.shape(x0))
    if np.ndim(x0) == 2:
        direction = direction * (np.asarray(x0) != 0)  # edges are the non-zero weights
    h = 1e-5
    fd = (loss_at(x0 + h * direction) - loss_at(x0 - h * direction)) / (2 * h)
    np.testing.assert_allclose(jnp.sum(g * direction), fd, rtol=1e-6, atol=1e-10)


def test_per_region_parameters_equal_scalar():
    conn = random_connectome(seed=10)
    hist = 0.1 * np.ones((2, 6))
    a = vbt.Network(
        model=vbt.models.Generic2dOscillator(a=4.0, I=0.2),
        connectome=conn,
        coupling=vbt.coupling.HyperbolicTangent(a=0.1),
        speed=2.0,
    )
    b = vbt.Network(
        model=vbt.models.Generic2dOscillator(a=4.0, I=np.full(6, 0.2)),
        connectome=conn,
        coupling=vbt.coupling.HyperbolicTangent(a=np.full(6, 0.1)),
        speed=2.0,
    )
    ya = vbt.simulate(a, t1=10.0, dt=0.1, history=hist).ys["raw"]
    yb = vbt.simulate(b, t1=10.0, dt=0.1, history=hist).ys["raw"]
    np.testing.assert_allclose(ya, yb, rtol=1e-12)


def test_per_region_coupling_refers_to_target():
    conn = random_connectome(seed=11)
    a = np.linspace(0.05, 0.3, 6)
    net = vbt.Network(
        model=vbt.models.Generic2dOscillator(a=4.0),
        connectome=conn,
        coupling=vbt.coupling.HyperbolicTangent(a=a),
        speed=2.0,
    )
    D = vdelays.discretise(np.asarray(conn.lengths) / 2.0, 0.1)
    hist = np.random.default_rng(3).uniform(-1, 1, (net.horizon(0.1), 2, 6))
    pre = lambda xi, xj: a[None, :, None] * (1 + np.tanh(xj))
    ref = simulate_numpy(np.asarray(conn.weights), D, hist, g2d_numpy(net.model), pre, lambda g: g, [0], 0.1, 50)
    got = vbt.simulate(net, t1=5.0, dt=0.1, history=hist).ys["raw"]
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


def test_history_forms():
    conn = random_connectome(seed=12)
    net = vbt.Network(model=vbt.models.Generic2dOscillator(), connectome=conn, speed=2.0)
    H = net.horizon(0.1)
    state = 0.3 * np.ones((2, 6))
    a = vbt.simulate(net, t1=2.0, dt=0.1, history=state).ys["raw"]
    b = vbt.simulate(net, t1=2.0, dt=0.1, history=np.broadcast_to(state, (H + 5, 2, 6))).ys["raw"]
    np.testing.assert_array_equal(a, b)
    r1 = vbt.simulate(net, t1=2.0, dt=0.1, key=jax.random.key(0)).ys["raw"]
    r2 = vbt.simulate(net, t1=2.0, dt=0.1, key=jax.random.key(1)).ys["raw"]
    assert not np.allclose(r1, r2)
    assert np.all(np.isfinite(vbt.simulate(net, t1=2.0, dt=0.1).ys["raw"]))


def test_float32_by_default_without_x64():
    import subprocess
    import sys

    code = (
        "import vbtjax as vbt, numpy as np\n"
        "c = vbt.datasets.tvb_connectome(76)\n"
        "net = vbt.Network(model=vbt.models.MontbrioPazoRoxin(), connectome=c, speed=3.0)\n"
        "s = vbt.simulate(net, t1=5.0, dt=0.1)\n"
        "print(s.ys['raw'].dtype, bool(np.isfinite(np.asarray(s.ys['raw'])).all()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["float32", "True"]


# ------------------------------------------------------------------------------------------------ bad input
@pytest.fixture
def small_net():
    return vbt.Network(model=vbt.models.Generic2dOscillator(), connectome=random_connectome(seed=13), speed=2.0)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(t1=10.0, dt=0.0), "dt"),
        (dict(t1=10.0, dt=-0.1), "dt"),
        (dict(t1=10.0, dt=float("nan")), "dt"),
        (dict(t1=-1.0, dt=0.1), "t1"),
        (dict(t1=1.05, dt=0.1), "t1"),
        (dict(t1=1.0, dt=0.1, history=np.zeros((3, 6))), "history"),
        (dict(t1=1.0, dt=0.1, history=np.zeros((2, 2, 6))), "history"),
        (dict(t1=1.0, dt=0.1, history=np.full((2, 6), np.nan)), "NaN"),
        (dict(t1=1.0, dt=0.1, monitors=vbt.monitors.SubSample(period=0.25)), "period"),
        (dict(t1=1.0, dt=0.1, monitors={"x": vbt.monitors.Raw(variables_of_interest=("nope",))}), "nope"),
        (dict(t1=1.0, dt=0.1, monitors={"x": "raw"}), "monitors"),
        (dict(t1=1.0, dt=0.1, solver="heun"), "solver"),
    ],
)
def test_simulate_rejects_bad_input(small_net, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        vbt.simulate(small_net, **kwargs)


def test_noise_requires_key():
    net = vbt.Network(
        model=vbt.models.Generic2dOscillator(), connectome=random_connectome(), noise=vbt.noise.Additive(nsig=1e-3)
    )
    with pytest.raises(ValueError, match="key"):
        vbt.simulate(net, t1=1.0, dt=0.1)


@pytest.mark.parametrize(
    "build,match",
    [
        (lambda c: vbt.Network(model=vbt.models.Generic2dOscillator(), connectome=c, speed=0.0), "speed"),
        (lambda c: vbt.Network(model=vbt.models.Generic2dOscillator(), connectome=c, speed=-3.0), "speed"),
        (lambda c: vbt.Network(model=vbt.models.Generic2dOscillator(I=np.zeros(5)), connectome=c), "'I'"),
        (
            lambda c: vbt.Network(
                model=vbt.models.Generic2dOscillator(), connectome=c, coupling=vbt.coupling.Linear(a=np.ones(4))
            ),
            "'a'",
        ),
        (
            lambda c: vbt.Network(
                model=vbt.models.Kuramoto(), connectome=c, coupling=vbt.coupling.SigmoidalJansenRit()
            ),
            "two coupling variables",
        ),
        (
            lambda c: vbt.Network(
                model=vbt.models.Generic2dOscillator(), connectome=c, noise=vbt.noise.Additive(nsig=np.ones(3))
            ),
            "nsig",
        ),
        (
            lambda c: vbt.Network(
                model=vbt.models.Generic2dOscillator(), connectome=c, noise=vbt.noise.Additive(nsig=-1.0)
            ),
            "nsig",
        ),
        (lambda c: vbt.Network(model="MontbrioPazoRoxin", connectome=c), "model"),
        (lambda c: vbt.Network(model=vbt.models.Generic2dOscillator(), connectome=np.eye(6)), "connectome"),
        (lambda c: vbt.models.Generic2dOscillator(a=np.ones((2, 2))), "'a'"),
        (lambda c: vbt.coupling.Linear(a=float("inf")), "'a'"),
    ],
)
def test_network_rejects_bad_input(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build(random_connectome())


# ------------------------------------------------------------------------------------------------ interpolated delays
def test_interpolated_delays_match_numpy():
    conn = random_connectome(seed=21, zero_offdiag=2)
    L = np.asarray(conn.lengths).copy()
    L[0, 3] = 0.13  # a tract shorter than speed * dt: lag in (0, 1), reads x(n) and x(n - 1)
    conn = vbt.Connectome(weights=conn.weights, lengths=L)
    for coupling, pre, post in [
        (vbt.coupling.Linear(a=0.2), lambda xi, xj: xj, lambda g: 0.2 * g),
        (vbt.coupling.Difference(a=0.2), lambda xi, xj: xj - xi, lambda g: 0.2 * g),
    ]:
        net = vbt.Network(
            model=vbt.models.Generic2dOscillator(a=4.0),
            connectome=conn,
            coupling=coupling,
            speed=1.7,
            delay_mode="interpolate",
        )
        dt = 0.1
        lam = L / 1.7 / dt
        hist = np.random.default_rng(5).uniform(-1, 1, (net.horizon(dt), 2, 6))
        ref = simulate_numpy(np.asarray(conn.weights), lam, hist, g2d_numpy(net.model), pre, post, [0], dt, 150)
        got = vbt.simulate(net, t1=15.0, dt=dt, history=hist).ys["raw"]
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


def test_interpolate_equals_round_on_whole_step_delays():
    conn = random_connectome(seed=22)
    L = np.round(np.asarray(conn.lengths) / 0.2) * 0.2 + 1e-9  # whole multiples of speed * dt = 0.2 mm
    conn = vbt.Connectome(weights=conn.weights, lengths=L)
    hist = np.random.default_rng(6).uniform(-1, 1, (80, 2, 6))
    kw = dict(model=vbt.models.Generic2dOscillator(a=4.0), connectome=conn, coupling=vbt.coupling.Linear(a=0.1))
    a = vbt.simulate(vbt.Network(**kw, speed=2.0), t1=20.0, dt=0.1, history=hist).ys["raw"]
    b = vbt.simulate(vbt.Network(**kw, speed=2.0, delay_mode="interpolate"), t1=20.0, dt=0.1, history=hist).ys["raw"]
    np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)


def test_gradient_wrt_speed_with_interpolated_delays():
    conn = random_connectome(seed=23, max_len=20.0)
    net = vbt.Network(
        model=vbt.models.Generic2dOscillator(a=4.0),
        connectome=conn,
        coupling=vbt.coupling.Linear(a=0.3),
        speed=2.0,
        delay_mode="interpolate",
    )
    hist = np.random.default_rng(7).uniform(-1, 1, (net.horizon(0.1), 2, 6))
    loss_at = lambda v: _loss(eqx.tree_at(lambda n: n.speed, net, v), hist)
    g = jax.grad(loss_at)(2.0)
    h = 1e-5
    fd = (loss_at(2.0 + h) - loss_at(2.0 - h)) / (2 * h)
    assert abs(float(g)) > 1e-6
    np.testing.assert_allclose(g, fd, rtol=1e-5)
    # "round" delays are piecewise constant in speed: zero gradient
    rounded = vbt.Network(model=net.model, connectome=conn, coupling=net.coupling, speed=2.0)
    assert float(jax.grad(lambda v: _loss(eqx.tree_at(lambda n: n.speed, rounded, v), hist))(2.0)) == 0.0


def test_vmap_over_speed_within_layout():
    conn = random_connectome(seed=24, max_len=20.0)
    kw = dict(model=vbt.models.Generic2dOscillator(a=4.0), connectome=conn, coupling=vbt.coupling.Linear(a=0.3))
    slow = vbt.Network(**kw, speed=1.0, delay_mode="interpolate", speed_range=(0.9, 1.2))
    hist = 0.2 * np.ones((2, 6))
    run = lambda n: vbt.simulate(n, t1=10.0, dt=0.1, history=hist).ys["raw"]
    speeds = jnp.array([1.0, 1.05, 1.1])
    batched = jax.vmap(lambda v: run(eqx.tree_at(lambda n: n.speed, slow, v)))(speeds)
    for k, v in enumerate([1.0, 1.05, 1.1]):
        np.testing.assert_allclose(batched[k], run(vbt.Network(**kw, speed=v, delay_mode="interpolate")), rtol=1e-9)
    with pytest.raises(Exception, match="delays"):
        jax.block_until_ready(jax.vmap(lambda v: run(eqx.tree_at(lambda n: n.speed, slow, v)))(jnp.array([0.5, 1.0])))


def test_forward_mode_matches_reverse_mode():
    """jax.jvp and jax.jacfwd through simulate (checkpointed chunks, traced delays checked with eqx.error_if) equal
    the reverse-mode gradient; also under jit with the network as an argument and with the history closed over."""
    conn = random_connectome(seed=25, max_len=20.0)
    net = vbt.Network(
        model=vbt.models.Generic2dOscillator(a=4.0), connectome=conn, coupling=vbt.coupling.Linear(a=0.1), speed=2.0
    )
    hist = np.random.default_rng(8).uniform(-1, 1, (net.horizon(0.1), 2, 6))
    loss_a = lambda a: _loss(eqx.tree_at(lambda n: n.coupling.a, net, a), hist)
    g = jax.grad(loss_a)(0.1)
    _, t = jax.jvp(loss_a, (0.1,), (1.0,))
    np.testing.assert_allclose(t, g, rtol=1e-10)
    # per-region parameter: jacfwd against grad; through jit with the (traced) network as the argument
    I0 = jnp.full(6, 0.2)
    loss_I = jax.jit(lambda n, v: _loss(eqx.tree_at(lambda m: m.model.I, n, v), hist))
    np.testing.assert_allclose(jax.jacfwd(loss_I, argnums=1)(net, I0), jax.grad(loss_I, argnums=1)(net, I0), rtol=1e-9)
    h = 1e-5
    fd = (loss_a(0.1 + h) - loss_a(0.1 - h)) / (2 * h)
    np.testing.assert_allclose(t, fd, rtol=1e-6)


@pytest.mark.filterwarnings("ignore:simulate. t1=94.4 ms is not a whole number of periods")
@pytest.mark.parametrize("t1", [96.0, 94.4], ids=["groups-divide", "groups-padded"])
def test_two_checkpoint_levels_give_the_same_values_and_gradients(t1):
    """Nested checkpointing (groups of chunks under a checkpoint) changes only what reverse mode stores: the same
    samples (with noise and a monitor window spanning chunks) and the same gradients, also when the chunks do not
    fill the last group (padded chunks are masked)."""
    net = _noisy_oscillators()
    key = jax.random.key(5)
    mons = {"raw": vbt.monitors.Raw(), "tavg": vbt.monitors.TemporalAverage(period=3.0)}

    def run(a, levels):
        n = eqx.tree_at(lambda m: m.coupling.a, net, a)
        return vbt.simulate(n, t1, 0.1, monitors=mons, key=key, chunk_steps=16, checkpoint_levels=levels)

    one, two = run(0.05, 1), run(0.05, 2)
    from vbtjax.delays import LoopLayout

    n_steps = round(t1 / 0.1)
    layout = LoopLayout.make(net.delay_plan(0.1), n_steps, 16, 1, 2)
    assert one.block == 16 and layout.group > 1  # 60 chunks in groups of 6; 59 chunks padded to 8 groups of 8
    assert (layout.n_chunks * layout.chunk_len > n_steps) == (t1 == 94.4)
    for k in mons:
        np.testing.assert_array_equal(np.asarray(two.ys[k]), np.asarray(one.ys[k]))
    np.testing.assert_array_equal(np.asarray(two.final_state), np.asarray(one.final_state))

    def loss(a, levels):
        return jnp.mean(run(a, levels).ys["tavg"][:, 0] ** 2)

    g1, g2 = jax.grad(loss)(0.05, 1), jax.grad(loss)(0.05, 2)
    assert abs(float(g1)) > 1e-6
    np.testing.assert_allclose(g2, g1, rtol=1e-12)
    with pytest.raises(ValueError, match="checkpoint_levels"):
        vbt.simulate(net, 96.0, 0.1, key=key, checkpoint_levels=3)


class _RowWiseDifference(vbt.coupling.Difference):
    """Difference without the separable declaration: the simulator's exact edge-wise (row-wise) evaluation."""

    separable = False


@pytest.mark.parametrize("mode", ["round", "interpolate"])
@pytest.mark.parametrize("solver", [vbt.Heun(), vbt.Euler()], ids=["Heun", "Euler"])
def test_separable_difference_equals_row_wise_evaluation(solver, mode):
    """Difference is separable: sum_j W_ij (x_j(n - D_ij) - x_i(n)) runs as the flat source-only delayed sum minus
    (sum_j W_ij) x_i. Same values and gradients (w.r.t. a, weights, model parameters) as the exact row-wise path, on
    heterogeneous delays with self-connections and zero-delay off-diagonal edges, per-region a, two cvars."""
    assert vbt.coupling.Difference.separable and not _RowWiseDifference.separable
    assert not vbt.coupling.Kuramoto.separable
    conn = random_connectome(n=7, seed=21, zero_offdiag=2, max_len=15.0)
    a = np.linspace(0.05, 0.2, 7)
    model = vbt.models.SupHopf(a=-0.1, omega=0.3)  # cvar = (0, 1)
    nets = [
        vbt.Network(model=model, connectome=conn, coupling=cls(a=a), speed=2.5, delay_mode=mode)
        for cls in (vbt.coupling.Difference, _RowWiseDifference)
    ]
    hist = np.random.default_rng(4).uniform(-1, 1, (nets[0].horizon(0.1), 2, 7))
    fast, exact = (vbt.simulate(n, t1=40.0, dt=0.1, history=hist, solver=solver) for n in nets)
    assert fast.block == exact.block and fast.block > 1
    ref = np.asarray(exact.ys["raw"])
    np.testing.assert_allclose(np.asarray(fast.ys["raw"]), ref, rtol=1e-12, atol=1e-13 * np.abs(ref).max())

    def loss(net, a, w, om):
        net = eqx.tree_at(lambda m: (m.coupling.a, m.connectome.weights, m.model.omega), net, (a, w, om))
        ys = vbt.simulate(net, t1=40.0, dt=0.1, history=hist, solver=solver).ys["raw"]
        return jnp.mean(ys[-100:, 0] ** 2)

    args = (jnp.asarray(a), jnp.asarray(conn.weights), jnp.asarray(0.3))
    gf, ge = (jax.grad(loss, argnums=(1, 2, 3))(n, *args) for n in nets)
    for f, e in zip(gf, ge, strict=True):
        assert np.abs(np.asarray(e)).max() > 1e-8
        np.testing.assert_allclose(np.asarray(f), np.asarray(e), rtol=1e-10, atol=1e-12 * np.abs(np.asarray(e)).max())
    # weights swept under vmap (traced): the row sums follow the traced weights
    ws = jnp.stack([args[1], 0.5 * args[1]])
    run = lambda net: jax.vmap(lambda w: loss(net, args[0], w, args[2]))(ws)
    np.testing.assert_allclose(np.asarray(run(nets[0])), np.asarray(run(nets[1])), rtol=1e-11)
