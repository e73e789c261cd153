"""Issue 23, simulation side: clear early errors and warnings for plausible bad inputs, a finite-output check, and the
reproducibility promises of docs/reliability.md (each promise there is a test here)."""

import os
import re
import subprocess
import sys
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vbtjax as vbt
from vbtjax import delays as vdelays
from vbtjax.simulate import NonFiniteError, NonFiniteWarning, SimulationWarning, memory_estimate

jax.config.update("jax_enable_x64", True)

N = 4


def _connectome(seed=0, lengths=(10.0, 30.0)):
    rng = np.random.default_rng(seed)
    W = rng.uniform(0.2, 1.0, (N, N))
    np.fill_diagonal(W, 0.0)
    L = rng.uniform(*lengths, (N, N))
    np.fill_diagonal(L, 0.0)
    return vbt.Connectome(weights=W, lengths=L)


def _net(speed=3.0, a=0.01, noise=None, **kw):
    return vbt.Network(
        model=vbt.models.MontbrioPazoRoxin(),
        connectome=kw.pop("connectome", _connectome()),
        coupling=vbt.coupling.Linear(a=a),
        speed=speed,
        noise=noise,
        **kw,
    )


@pytest.fixture(scope="module")
def net():
    return _net()


# ------------------------------------------------------------------------------------------------ dtypes (x64 on)
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int32])
def test_history_of_another_dtype_is_cast_to_the_networks(net, dtype):
    h = np.full((2, N), 1.0).astype(dtype)
    sol = vbt.simulate(net, 2.0, 0.1, history=h)
    assert net.dtype == np.float64 and sol.ys["raw"].dtype == np.float64
    ref = vbt.simulate(net, 2.0, 0.1, history=h.astype(np.float64))
    np.testing.assert_array_equal(sol.ys["raw"], ref.ys["raw"])
    full = np.broadcast_to(h, (net.horizon(0.1), 2, N))  # the (H, n_svar, N) form too
    np.testing.assert_array_equal(vbt.simulate(net, 2.0, 0.1, history=full).ys["raw"], ref.ys["raw"])


def test_float32_network_under_x64_runs_in_float32():
    f32 = lambda x: jnp.asarray(x, jnp.float32)
    model = vbt.models.MontbrioPazoRoxin(**{k: f32(v) for k, v in vbt.models.MontbrioPazoRoxin().parameters().items()})
    c = _connectome()
    net = vbt.Network(
        model=model,
        connectome=vbt.Connectome(weights=f32(c.weights), lengths=f32(c.lengths)),
        coupling=vbt.coupling.Linear(a=f32(0.01), b=f32(0.0)),
        speed=f32(3.0),
    )
    assert net.dtype == np.float32
    assert vbt.simulate(net, 2.0, 0.1, history=np.zeros((2, N))).ys["raw"].dtype == np.float32


def test_complex_history_is_refused(net):
    with pytest.raises(ValueError, match="history must hold real numbers"):
        vbt.simulate(net, 2.0, 0.1, history=np.zeros((2, N), complex))


# ------------------------------------------------------------------------------------------------ delays and memory
def test_absurd_delays_are_refused_with_the_delay_and_the_speed():
    with pytest.raises(ValueError, match=r"speed 1e-09 mm/ms.*longest conduction delay is 2.\d+e\+10 ms"):
        vbt.simulate(_net(speed=1e-9), 1.0, 0.1)
    with pytest.raises(ValueError, match="longest conduction delay"):
        vdelays.discretise(np.array([1e12]), 0.1)  # no int32 wrap-around (was a negative horizon)
    assert vdelays.discretise(np.array([0.25, 1e8]), 0.1).tolist() == [2, 10**9]


def test_memory_of_a_slow_speed_is_estimated_before_allocating():
    match = r"needs about 56.9 GB \(the delay buffer of 4 regions x 2 variables x 2.96e\+08 steps, twice: 37.9 GB; "
    with pytest.raises(MemoryError, match=match + r".*longest delay is 2.962e\+07 ms \(speed 1e-06 mm/ms\)"):
        vbt.simulate(_net(speed=1e-6), 1.0, 0.1, max_memory=10e9)
    est = memory_estimate(_net(speed=1e-6), 1.0, 0.1)
    assert est["total"] > 4e10


def test_memory_of_long_outputs_is_estimated_and_the_limit_can_be_set(net, monkeypatch):
    from vbtjax import simulate as _  # noqa: F401  (the module, for monkeypatching)

    module = sys.modules["vbtjax.simulate"]
    monkeypatch.setattr(module, "_host_memory", lambda: 8 * 10**9)
    with pytest.raises(MemoryError, match=r"monitors\['raw'\], 1e\+09 x 2 x 4: 64 GB.*80% of this machine's 8 GB"):
        vbt.simulate(net, 1e8, 0.1)
    with pytest.raises(MemoryError, match=r"limit of 1 kB \(max_memory\)"):
        vbt.simulate(net, 10.0, 0.1, max_memory=1000)
    with pytest.raises(ValueError, match="int32 step counter"):
        vbt.simulate(net, 1e9, 0.1, monitors=vbt.monitors.TemporalAverage(period=1e6))


def test_memory_estimate_counts_the_outputs(net):
    mons = {"raw": vbt.monitors.Raw(), "tavg": vbt.monitors.TemporalAverage(period=1.0)}
    est = memory_estimate(net, 10.0, 0.1, mons, batch=3)
    sol = vbt.simulate(net, 10.0, 0.1, monitors=mons)
    assert est["the outputs of monitors['raw'], 100 x 2 x 4"] == 3 * sol.ys["raw"].nbytes
    assert est["the outputs of monitors['tavg'], 10 x 2 x 4"] == 3 * sol.ys["tavg"].nbytes
    assert est["total"] == sum(v for k, v in est.items() if k != "total")


# ------------------------------------------------------------------------------------------------ non-finite output
@pytest.fixture(scope="module")
def diverging():
    return _net(a=1e3)


def test_diverging_run_warns_with_the_time(diverging):
    with pytest.warns(NonFiniteWarning, match=r"monitors\['raw'\] from t = [\d.]+ ms on"):
        sol = vbt.simulate(diverging, 5.0, 0.1)
    assert not np.isfinite(sol.ys["raw"]).all()
    with pytest.raises(NonFiniteError, match="diverged"):
        vbt.simulate(diverging, 5.0, 0.1, check="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vbt.simulate(diverging, 5.0, 0.1, check="off")
    with pytest.raises(ValueError, match="check must be one of"):
        vbt.simulate(diverging, 5.0, 0.1, check="strict")


def test_finite_check_under_jit(diverging):
    run = lambda check: jax.jit(lambda a: vbt.simulate(diverging, 5.0, 0.1, check=check).ys["raw"] * a)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "warn" cannot see traced values: nothing
        assert not np.isfinite(run("warn")(1.0)).all()
    with pytest.raises(Exception, match="the output contains NaN or inf"):
        jax.block_until_ready(run("raise")(1.0))


# ------------------------------------------------------------------------------------------------ traced bad values
@pytest.mark.parametrize(
    "where, value, match",
    [
        (lambda n: n.speed, -1.0, "speed is not a positive number"),
        (lambda n: n.speed, np.nan, "speed is not a positive number"),
        (lambda n: n.connectome.lengths, np.full((N, N), np.nan), "lengths .traced. contain NaN"),
        (lambda n: n.speed, 1e-9, r"delays outside the network's delay layout.*speed_range"),
    ],
    ids=["negative-speed", "nan-speed", "nan-lengths", "slow-speed"],
)
def test_traced_bad_values_are_named(net, where, value, match):
    f = jax.jit(lambda v: vbt.simulate(eqx.tree_at(where, net, v), 2.0, 0.1).ys["raw"])
    with pytest.raises(Exception, match=match):
        jax.block_until_ready(f(jnp.asarray(value)))


def test_traced_time_arguments_are_refused_clearly(net):
    with pytest.raises(ValueError, match="dt must be a concrete number of ms, not a traced value"):
        jax.jit(lambda dt: vbt.simulate(net, 2.0, dt).ys["raw"])(0.1)


def test_concrete_negative_speed_is_refused(net):
    with pytest.raises(ValueError, match=r"speed -1 mm/ms.*NaN or negative"):
        vbt.simulate(eqx.tree_at(lambda n: n.speed, net, jnp.asarray(-1.0)), 2.0, 0.1)


# ------------------------------------------------------------------------------------------------ dt, t1, periods
def test_numpy_scalars_are_accepted_and_bools_refused(net):
    ref = vbt.simulate(net, 2.0, 0.1)
    for t1, dt in ((np.float32(2.0), np.float32(0.1)), (np.int64(2), np.float64(0.1)), (2.0, jnp.float32(0.1))):
        sol = vbt.simulate(net, t1, dt)  # a float32 0.1 is read as the 0.1 it prints as
        assert sol.dt == 0.1
        np.testing.assert_array_equal(sol.ys["raw"], ref.ys["raw"])
    for bad in (dict(t1=2.0, dt=True), dict(t1=True, dt=0.5), dict(t1=2.0, dt="0.1"), dict(t1=2.0, dt=np.bool_(1))):
        with pytest.raises(ValueError, match="must be a positive number of ms"):
            vbt.simulate(net, **bad)
    with pytest.raises(ValueError, match="period"):
        vbt.monitors.SubSample(period=True)


def test_delays_all_rounded_to_zero_warn():
    with pytest.warns(SimulationWarning, match=r"every conduction delay at speed 1e\+04 mm/ms is shorter than dt/2"):
        vbt.simulate(_net(speed=1e4), 1.0, 0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vbt.simulate(_net(speed=float("inf")), 1.0, 0.1)  # no delays at all: nothing to say
        vbt.simulate(_net(speed=1e4, delay_mode="interpolate"), 1.0, 0.1)  # fractional delays are kept


def test_monitor_periods_against_t1(net):
    with pytest.raises(ValueError, match=r"monitors\['bold'\] has period 720 ms, longer than t1=100 ms"):
        vbt.simulate(net, 100.0, 0.1, monitors={"bold": vbt.monitors.BalloonWindkessel(period=720.0)})
    with pytest.warns(SimulationWarning, match=r"returns 2 samples, up to t = 2 ms, and the last 0.5 ms"):
        sol = vbt.simulate(net, 2.5, 0.1, monitors={"tavg": vbt.monitors.TemporalAverage(period=1.0)})
    assert sol.ys["tavg"].shape == (2, 2, N)


# ------------------------------------------------------------------------------------------------ reproducibility
def _noisy():
    return _net(noise=vbt.noise.Additive(nsig=1e-3))


def _noisy_run(jit=False):
    net = _noisy()
    run = lambda: vbt.simulate(net, 20.0, 0.1, key=jax.random.key(7)).ys["raw"]
    return np.asarray(jax.jit(run)() if jit else run())


def test_same_key_same_process_is_bitwise_equal():
    np.testing.assert_array_equal(_noisy_run(), _noisy_run())
    np.testing.assert_array_equal(_noisy_run(jit=True), _noisy_run(jit=True))


def test_jit_and_eager_agree_to_rounding_only():
    """Not promised bitwise: the two are different XLA programs (docs/reliability.md); here they agree closely."""
    np.testing.assert_allclose(_noisy_run(jit=True), _noisy_run(), rtol=1e-9, atol=1e-12)


_CHILD = """
import sys
import jax
jax.config.update("jax_enable_x64", True)
import numpy as np
sys.path.insert(0, sys.argv[2])
import test_reliability_simulate as t
np.save(sys.argv[1], t._noisy_run())
"""


def test_a_new_process_with_the_same_flags_is_bitwise_equal(tmp_path):
    environ = dict(os.environ)
    if not vbt._xla_flags.APPLIED:  # this process runs without vbtjax's XLA option: so must the child
        environ["VBTJAX_XLA_FLAGS"] = "0"
        environ["XLA_FLAGS"] = re.sub(r"--xla_backend_extra_options=\S*", "", environ.get("XLA_FLAGS", "")).strip()
    out = tmp_path / "child.npy"
    here = os.path.dirname(__file__)
    res = subprocess.run([sys.executable, "-c", _CHILD, str(out), here], env=environ, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    np.testing.assert_array_equal(np.load(out), _noisy_run())
