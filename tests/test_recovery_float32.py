"""Parameter recovery in float32, as users run it: ``tests/test_recovery.py``'s observation-noise twin fitted with
the network, the initial states and the data in float32 (x64 stays on for the session; every floating leaf is cast).

The tolerance is the float64 test's: every fitted value within 5 % of the truth, about 6 Cramér–Rao standard
deviations of the worst-determined parameter (the coupling, 0.85 %). Float32 must not move the estimate by a
visible fraction of that width: its rounding (``u = 6e-8`` per operation, ``~1e-5`` relative on a 600-step run's
trajectory, ``tests/test_float32.py``) is far below the noise (8 % of the signal), so the float32 estimate is required
to lie within 0.1 Cramér–Rao sd (0.085 % of the coupling) of the float64 estimate from the same data and start.
Measured (x86 CPU): 2.9e-7 relative for the coupling, 7.8e-8 for the inputs; 20 s for both fits on 2 cores.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _tvb_replay import cast
from test_recovery import RTOL, SELECTION, N, _check_start_is_far, _net, _trials, _twin

from vbtjax import inference as inf

CRAMER_RAO_SD = 0.0085  # relative sd of the coupling estimate (tests/test_recovery.py)


def _fit(start, x0s, t1, data):
    loss = lambda net, key: inf.timeseries_loss(_trials(net, x0s, t1), data)  # noqa: E731
    return inf.fit(loss, start, SELECTION, optax.adam(0.05), steps=200, progress=False)


def test_float32_twin_with_observation_noise_recovers_like_float64():
    t1, sigma = 300.0, 0.02
    conn, i_true, a_true, x0s = _twin(2, n_trials=4)
    clean = _trials(_net(conn, i_true, a_true), x0s, t1)  # the "recording": float64 simulator
    data = clean + sigma * jax.random.normal(jax.random.key(2024), clean.shape)
    start = _net(conn, np.full(N, 1.4 * i_true.mean()), 0.6 * a_true)
    _check_start_is_far(start, i_true, a_true)

    start32 = cast(start, jnp.float32)
    assert start32.dtype == np.float32
    res32 = _fit(start32, x0s.astype(jnp.float32), t1, data.astype(jnp.float32))
    res64 = _fit(start, x0s, t1, data)
    a32, a64 = float(res32.params["coupling.a"]), float(res64.params["coupling.a"])
    i32, i64 = np.asarray(res32.params["model.I"], float), np.asarray(res64.params["model.I"], float)
    assert res32.net.dtype == np.float32  # the selection casts every value to its leaf's dtype: float32 runs
    assert _trials(res32.net, x0s.astype(jnp.float32), t1).dtype == jnp.float32
    # the float64 test's tolerance
    np.testing.assert_allclose(i32, i_true, rtol=RTOL)
    np.testing.assert_allclose(a32, a_true, rtol=RTOL)
    losses = np.asarray(res32.losses)
    assert np.all(np.isfinite(losses)) and 0.9 * sigma**2 < losses[-1] < 1.05 * sigma**2
    # float32 against float64 on the same data: a small fraction of the statistical width
    assert abs(a32 / a64 - 1) < 0.1 * CRAMER_RAO_SD
    np.testing.assert_allclose(i32, i64, rtol=0.1 * CRAMER_RAO_SD)
