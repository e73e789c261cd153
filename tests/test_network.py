"""Network: the delay layout follows the actual speed even when it is set outside the declared speed_range."""

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
