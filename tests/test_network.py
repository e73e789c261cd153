"""Network: the delay layout follows the actual speed even when it is set outside the declared speed_range; the
Scaling coupling value by hand on a 3-region network."""

import equinox as eqx
import jax.numpy as jnp
import numpy as np

import vbtjax as vbt


def test_speed_set_outside_speed_range_simulates_like_a_network_built_with_it():
    rng = np.random.default_rng(0)
    conn = vbt.Connectome(weights=rng.uniform(size=(5, 5)), lengths=rng.uniform(10, 50, (5, 5)))
    kw = dict(model=vbt.models.Generic2dOscillator(), connectome=conn, coupling=vbt.coupling.Linear(a=0.05))
    ranged = vbt.Network(**kw, speed=3.0, speed_range=(2.5, 3.5))
    for speed in (1.0, 6.0):  # slower and faster than the range
        moved = eqx.tree_at(lambda n: n.speed, ranged, jnp.asarray(speed))
        plain = vbt.Network(**kw, speed=speed)
        h = np.full((2, 5), 0.1)
        a = vbt.simulate(moved, 100.0, 0.1, h).ys["raw"]
        b = vbt.simulate(plain, 100.0, 0.1, h).ys["raw"]
        np.testing.assert_array_equal(a, b)


def _three_region_first_step(coupling):
    """One Euler step of ``dx/dt = gamma x + c`` on 3 regions with integer delays and a history that differs on every
    row, so that the coupling value is visible in ``x(dt)`` and every delay picks a different row."""
    W = np.array([[0.5, 2.0, 0.0], [1.5, 0.0, 0.25], [3.0, 0.75, 1.0]])  # row = target, column = source
    L = np.array([[0.0, 0.2, 0.5], [0.3, 0.0, 0.1], [0.4, 0.6, 0.0]])  # mm; speed 1 mm/ms, dt 0.1 ms: D = 10 L steps
    net = vbt.Network(
        model=vbt.models.Linear(gamma=-0.5),
        connectome=vbt.Connectome(weights=W, lengths=L),
        coupling=coupling,
        speed=1.0,
    )
    dt = 0.1
    H = net.horizon(dt)
    assert H == 7  # the longest delay is 6 steps
    hist = (np.arange(1, H + 1)[:, None, None] * np.array([1.0, -2.0, 0.5]) + 0.1) ** 2 / 10  # (H, 1, 3), distinct rows
    x1 = np.asarray(vbt.simulate(net, t1=dt, dt=dt, history=hist, solver=vbt.Euler()).ys["raw"])[0, 0]
    return x1, hist, W, np.rint(L * 10).astype(int), dt


def test_scaling_coupling_value_by_hand():
    """``Scaling(a)``: ``c_i = a sum_j W_ij x_j(-D_ij)`` (TVB's Scaling: pre = x_j, post = a gx), read from one step."""
    a = 0.3
    x1, hist, W, D, dt = _three_region_first_step(vbt.coupling.Scaling(a=a))
    H = hist.shape[0]
    x0 = hist[-1, 0]
    # by hand, term by term: region i reads source j at D_ij steps before t0, i.e. history row H - 1 - D_ij
    c = np.zeros(3)
    for i in range(3):
        for j in range(3):
            c[i] += W[i, j] * hist[H - 1 - D[i, j], 0, j]
    c *= a
    np.testing.assert_allclose(x1, x0 + dt * (-0.5 * x0 + c), rtol=1e-14, atol=0)
    # negative control: the coupling read without delays (all at t0) gives a visibly different step
    c_nodelay = a * W @ x0
    assert np.max(np.abs(c_nodelay - c)) > 0.1 * np.max(np.abs(c))
    # per-region strengths scale each target's row
    a_i = np.array([0.1, 0.2, 0.4])
    x1r, *_ = _three_region_first_step(vbt.coupling.Scaling(a=a_i))
    np.testing.assert_allclose(x1r, x0 + dt * (-0.5 * x0 + a_i * c / a), rtol=1e-14, atol=0)
    # Linear(a, b=0) is the same function; Linear's offset b is what Scaling lacks
    x1l, *_ = _three_region_first_step(vbt.coupling.Linear(a=a, b=0.0))
    np.testing.assert_array_equal(x1l, x1)
    x1b, *_ = _three_region_first_step(vbt.coupling.Linear(a=a, b=0.05))
    np.testing.assert_allclose(x1b - x1, dt * 0.05, rtol=1e-12)
