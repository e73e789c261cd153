"""Small networks shared by the sweep tests and the scripts they spawn."""

import numpy as np

import vbtjax as vbt


def small_network(n: int = 5, seed: int = 0, noise: bool = False, **kw) -> vbt.Network:
    """``n`` regions, Generic2dOscillator, Linear coupling, delays of 0.1 to 4 ms at 3 mm/ms."""
    rng = np.random.default_rng(seed)
    W = rng.uniform(0, 1, (n, n)) * (rng.uniform(size=(n, n)) < 0.7)
    L = rng.uniform(1.0, 12.0, (n, n))
    np.fill_diagonal(L, 0.0)
    return vbt.Network(
        model=vbt.models.Generic2dOscillator(),
        connectome=vbt.Connectome(weights=W, lengths=L),
        coupling=vbt.coupling.Linear(a=0.01),
        speed=3.0,
        noise=vbt.noise.Additive(nsig=1e-3) if noise else None,
        **kw,
    )
