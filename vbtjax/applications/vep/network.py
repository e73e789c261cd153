"""The VEP's network: an Epileptor2D at every region of the connectome, without delays, integrated by a dense
scan (see :mod:`vbtjax.vep` for the conventions)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ...coupling import Difference
from ...data.connectome import Connectome
from ...models import Epileptor2D
from ...network import Network

X0_HEALTHY = -2.5
"""Excitability of a healthy region, the centre of the prior."""
X0_CRITICAL = -2.05
"""An uncoupled region with ``x0`` above this value seizes (measured for these conventions: -2.06 does not, -2.04
does); the posterior probability ``P(x0 > X0_CRITICAL)`` ranks the regions."""
X1_REST = -1.6943614343542472
"""``x1`` of the resting fixed point for ``x0 = -2.5``: ``4.1 - z - x1^3 - 2 x1^2 = 0`` with ``z = 4 (x1 - x0)``."""
Z_REST = 3.222554262583011
"""``z`` of that fixed point."""
SEIZURE_X1 = -1.0
"""A region is seizing while ``x1 > SEIZURE_X1`` (the lower branch lies below -1.4, the seizure branch above -0.5)."""

R, KS, IEXT = 0.04, -1.0, 3.1
UNROLL = 5  # Heun steps unrolled in the inner loop (fewer loop iterations; measured faster gradients on CPU)
DT = 0.1
"""Integration step of the VEP network, ms."""
DURATION = 50.0
"""Model time a recording is mapped onto at time scale 1, ms."""
PERIOD = 2.0
"""Model time per envelope window, ms (``DURATION / PERIOD`` windows)."""
K_DEFAULT = 0.3
"""Default global coupling of the VEP network."""
TIME_SCALE_RANGE = (0.25, 4.0)
"""Default range of the time scale that maps a recording onto the model's time (see :func:`vep_posterior`)."""


def vep_connectome(connectome: Connectome) -> Connectome:
    """The VEP's connectome: weights divided by their maximum, no self-connections, tract lengths 0 (no delays);
    centres and labels kept."""
    if not isinstance(connectome, Connectome):
        raise TypeError(f"vep_connectome: expected a vbtjax.Connectome, got {type(connectome).__name__}.")
    w = np.asarray(connectome.weights, dtype=float)
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("vep_connectome: the weights must be finite and non-negative.")
    w = w * (1.0 - np.eye(w.shape[0]))
    if w.max() <= 0:
        raise ValueError("vep_connectome: the connectome has no connections between regions.")
    return Connectome(
        weights=w / w.max(), lengths=np.zeros_like(w), centres=connectome.centres, labels=connectome.labels
    )


def vep_network(connectome: Connectome, x0: Any = X0_HEALTHY, K: float = K_DEFAULT) -> Network:
    """The Epileptor2D network of the VEP on ``vep_connectome(connectome)``.

    **Arguments:** `x0`: excitability, scalar or ``(N,)``; `K`: global permittivity coupling (>= 0)."""
    conn = vep_connectome(connectome)
    n = conn.n_regions
    x0 = jnp.broadcast_to(jnp.asarray(x0, dtype=float), (n,))
    model = Epileptor2D(x0=x0, r=R, Ks=KS, Kvf=0.0, Iext=IEXT)
    return Network(model=model, connectome=conn, coupling=Difference(a=float(K)), speed=3.0)


def rest_history(n: int, dtype=None) -> Array:
    """``(1, 2, N)``: every region at the resting state (:data:`X1_REST`, :data:`Z_REST`), the VEP's initial state."""
    y = jnp.asarray([X1_REST, Z_REST], dtype=dtype)
    return jnp.broadcast_to(y[None, :, None], (1, 2, n))


def _integrate(
    net: Network, duration: float, dt: float, period: float, time_scale: Any = 1.0
) -> tuple[Array, Array, Array]:
    """``(x1, log_power, x1_mean)``, each ``(duration / period, N)``: ``x1`` at the end of each window of `period` ms,
    ``log mean exp(2 x1)`` and the mean of ``x1`` over the window's steps.

    `time_scale` (> 0, may be traced) multiplies the whole vector field: the network then covers
    ``time_scale * duration`` ms of its own time in `duration` ms, with the same number of steps (a recording's
    time axis mapped onto the model's).

    The VEP network has no delays, so this integrates it with a dense ``(N, N)`` coupling product per step and TVB's
    Heun scheme (the coupling computed once per step) in a nested ``lax.scan``, the outer body under
    ``jax.checkpoint``: the same numbers as :func:`vbtjax.simulate` (tested to 1e-6), with a gradient about 3x
    cheaper, which is what the samplers spend their time on."""
    n_steps = int(round(duration / dt))
    per = int(round(period / dt))
    if abs(n_steps * dt - duration) > 1e-9 * duration or abs(per * dt - period) > 1e-9 * period or n_steps % per:
        raise ValueError(
            f"VEP: duration ({duration} ms) and period ({period} ms) must be whole multiples of dt ({dt} ms), and "
            "duration a whole multiple of period."
        )
    lengths = net.connectome.lengths
    if not isinstance(lengths, jax.core.Tracer) and float(np.max(np.asarray(lengths))) != 0.0:
        raise ValueError("VEP: the VEP network has no delays; build it with vbtjax.vep.vep_network().")
    model, cpl = net.model, net.coupling
    W = net.connectome.weights
    cvar = np.asarray(model.cvar)
    edge = cpl.for_edges()
    source_only = type(cpl).source_only
    dtype = model.x0.dtype
    h = jnp.asarray(time_scale, dtype) * dt

    separable = not source_only and type(cpl).separable
    row_sums = jnp.sum(W, axis=1)

    def coupling(y):
        xc = y[cvar]
        if separable:  # sum_j W_ij pre(x_i, x_j) = W pre_source(x) + (sum_j W_ij) pre_target(x_i): one mat-vec
            gx = cpl.pre_source(xc) @ W.T + row_sums * cpl.pre_target(xc)
        elif source_only:
            gx = cpl.pre(None, xc) @ W.T
        else:
            gx = jnp.sum(W * edge.pre(xc[:, :, None], xc[:, None, :]), axis=-1)
        return cpl.post(gx)

    def step(y, _):
        c = coupling(y)
        d1 = model.dfun(y, c)
        d2 = model.dfun(y + h * d1, c)
        y = y + (0.5 * h) * (d1 + d2)
        return y, (jnp.exp(2.0 * y[0]), y[0])

    @jax.checkpoint
    def window(y, _):
        y, (p, x) = jax.lax.scan(step, y, None, length=per, unroll=UNROLL)
        return y, (y[0], jnp.log(jnp.mean(p, axis=0)), jnp.mean(x, axis=0))

    y0 = rest_history(net.n_regions, dtype)[0]
    _, (x1, logp, x1m) = jax.lax.scan(window, y0, None, length=n_steps // per)
    return x1, logp, x1m


def simulate_x1(
    net: Network, duration: float = DURATION, dt: float = DT, period: float = PERIOD, time_scale: Any = 1.0
) -> Float[Array, "T N"]:
    """``x1`` of the VEP network every `period` ms from the resting state: ``(duration / period, N)``, the sample
    ``m`` at ``(m + 1) * period`` ms (as :func:`vbtjax.simulate` with ``SubSample(period)``); `time_scale` as in
    :func:`simulate_power`."""
    return _integrate(net, duration, dt, period, time_scale)[0]


def simulate_power(
    net: Network, duration: float = DURATION, dt: float = DT, period: float = PERIOD, time_scale: Any = 1.0
) -> Float[Array, "T N"]:
    """Log source power of each region per window of `period` ms: ``log mean exp(2 x1)`` over the window's steps,
    ``(duration / period, N)``. `time_scale` (> 0) speeds the whole network up: ``time_scale * duration`` ms of
    the network's own time pass in the `duration` ms (``dt`` steps of ``time_scale * dt``)."""
    return _integrate(net, duration, dt, period, time_scale)[1]


def simulate_level(
    net: Network, duration: float = DURATION, dt: float = DT, period: float = PERIOD, time_scale: Any = 1.0
) -> Float[Array, "T N"]:
    """Mean ``x1`` of each region per window of `period` ms, ``(duration / period, N)`` (the slow "DC" level that a
    gain-projected ``x1`` shows); `time_scale` as in :func:`simulate_power`."""
    return _integrate(net, duration, dt, period, time_scale)[2]


def seizing_regions(x1: Any) -> np.ndarray:
    """Indices of the regions whose ``x1`` (``(T, N)``) exceeds :data:`SEIZURE_X1` at some sample."""
    return np.flatnonzero(np.any(np.asarray(x1) > SEIZURE_X1, axis=0))
