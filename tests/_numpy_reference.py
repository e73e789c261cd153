"""An independent, deliberately plain NumPy implementation of TVB's network conventions (CONVENTIONS.md), used as
truth for the simulator tests: dense (N, N) matrices, one step at a time, an unwrapped history array."""

from __future__ import annotations

import numpy as np


def simulate_numpy(W, D, hist, dfun, pre, post, cvar, dt, n_steps, bound=lambda x: x, scheme="heun", noise=None):
    """W, D (N, N) weights and delays in steps (integers: TVB; floats: fractional lags read by linear interpolation,
    (1 - w) x(n - d) + w x(n - d - 1) with d = floor(D)); hist (H, n_svar, N) oldest first; dfun(x, c); pre(x_i, x_j) on
    (n_cvar, N, N) arrays (target i on axis 1, source j on axis 2); post(gx). Returns (n_steps, n_svar, N)."""
    H, n_svar, N = hist.shape
    states = [np.array(h, dtype=np.float64) for h in hist]
    out = []
    for n in range(n_steps):
        k = H - 1 + n
        x = states[k]

        def delayed(i, j, k=k):
            d = int(np.floor(D[i, j]))
            w = D[i, j] - d
            value = states[k - d][cvar, j]
            return value if w == 0 else (1 - w) * value + w * states[k - d - 1][cvar, j]

        xj = np.stack([delayed(i, j) for i in range(N) for j in range(N)], axis=-1)
        xj = xj.reshape(len(cvar), N, N)
        xi = np.broadcast_to(x[cvar][:, :, None], xj.shape)
        gx = np.sum(W[None] * pre(xi, xj), axis=-1)
        c = post(gx)
        dW = 0.0 if noise is None else noise[n]
        if scheme == "heun":
            d1 = dfun(x, c)
            xp = bound(x + dt * d1 + dW)
            x1 = bound(x + 0.5 * dt * (d1 + dfun(xp, c)) + dW)
        elif scheme == "euler":
            x1 = bound(x + dt * dfun(x, c) + dW)
        else:
            raise ValueError(scheme)
        states.append(x1)
        out.append(x1)
    return np.stack(out)
