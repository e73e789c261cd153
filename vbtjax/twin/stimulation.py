"""Stimulation design by gradient: find the stimulation parameters that minimise a loss of the simulated network,
robustly over a twin's posterior, within safety limits.

A design is a dict of named parameters (e.g. ``{"weights": (N,), "amplitude": (), "width": ()}``); a user function
``make_stimulus(params) -> Stimulus`` (or a tuple of them) turns it into stimuli that are added to the network. Each
parameter has an elementwise constraint of :mod:`vbtjax.inference.params` (``Interval(lo, hi)`` through a sigmoid,
``Positive()`` through a softplus, ``Real()``): Optax works on the unconstrained values, as :func:`vbtjax.fit` does.

Safety limits (:class:`SafetyLimits`) are enforced by a **reparametrisation**: after the constraints, the amplitude
is multiplied by ``min(1, Q_max / (|amplitude| width), I_max / (sum_i |w_i| |amplitude|))``. A design inside the
limits is unchanged; one outside is scaled onto their boundary along the amplitude. Every design the optimiser
visits, and so the one returned, satisfies both limits, and the gradient flows through the scaling.

The objective is the loss averaged over `K` posterior draws (each draw's network gets its leaf values, as in
:meth:`~vbtjax.Twin.predict`), simulated in one ``jax.vmap`` with common random numbers: draw ``k`` uses the noise
key ``fold_in(key, k)`` at every iteration, so the optimiser sees a deterministic function of the design. With
``quantile=q`` the objective is the conditional value at risk: the mean of the worst ``ceil((1 - q) K)`` per-draw
losses, an upper bound of the ``q``-quantile (robust design).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float

from .._params import get_leaf, leaf_paths, set_leaves
from ..inference.params import AbstractConstraint, Real
from ..network import Network
from ..observation.features import band_power, welch_psd
from ..simulation.simulate import Solution, simulate
from ..stimulus import AbstractTemporal, Stimulus
from .twin import Twin

__all__ = [
    "SafetyLimits",
    "SmoothPulseTrain",
    "DesignProblem",
    "DesignResult",
    "design",
    "seizure_loss",
    "band_power_loss",
]


# ------------------------------------------------------------------------------------------------------ temporal
class SmoothPulseTrain(AbstractTemporal):
    """Pulses of ``amplitude`` lasting ``width`` ms at ``frequency`` Hz from ``onset`` ms, with sigmoid edges of
    ``edge`` ms, so that the width, frequency and onset are differentiable (a :class:`~vbtjax.stimulus.PulseTrain`
    has hard edges: its gradient in width and onset is zero). Keep ``width`` at least a few ``edge`` below the
    period ``1000 / frequency`` ms."""

    amplitude: Float[Array, ""] = eqx.field(default=1.0, converter=jnp.asarray)
    width: Float[Array, ""] = eqx.field(default=1.0, converter=jnp.asarray)
    frequency: Float[Array, ""] = eqx.field(default=100.0, converter=jnp.asarray)
    onset: Float[Array, ""] = eqx.field(default=0.0, converter=jnp.asarray)
    edge: float = eqx.field(default=0.1, static=True)

    def __call__(self, t):
        since = t - self.onset
        phase = jnp.mod(since, 1000.0 / self.frequency)
        on = jax.nn.sigmoid(phase / self.edge) * jax.nn.sigmoid((self.width - phase) / self.edge)
        return self.amplitude * on * jax.nn.sigmoid(since / self.edge)


# ------------------------------------------------------------------------------------------------ safety limits
class SafetyLimits(eqx.Module):
    """Charge-per-phase and total-current limits on a design, enforced by scaling the amplitude (see the module).

    **Arguments:**
    - `charge`: ``Q_max``, the largest ``|amplitude| * width`` (amplitude units x ms); None: no limit.
    - `current`: ``I_max``, the largest ``sum_i |w_i| * |amplitude|`` (amplitude units); None: no limit.
    - `amplitude`, `width`, `weights`: the names of those parameters in the design (`width` and `weights` may be
      absent from a design: a width of 1 ms and a single weight of 1 are then assumed).
    """

    charge: float | None = eqx.field(default=None, static=True)
    current: float | None = eqx.field(default=None, static=True)
    amplitude: str = eqx.field(default="amplitude", static=True)
    width: str = eqx.field(default="width", static=True)
    weights: str = eqx.field(default="weights", static=True)

    def __check_init__(self):
        for name in ("charge", "current"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise ValueError(f"SafetyLimits: {name} must be a positive finite number or None, got {v!r}.")

    def values(self, params: Mapping[str, Any]) -> dict[str, Array]:
        """``{"charge": |amplitude| width, "current": sum |w| |amplitude|}`` of a design."""
        if self.amplitude not in params:
            raise ValueError(f"SafetyLimits: the design has no parameter {self.amplitude!r} (the amplitude).")
        a = jnp.abs(jnp.asarray(params[self.amplitude]))
        w = jnp.asarray(params.get(self.width, 1.0))
        s = jnp.sum(jnp.abs(jnp.asarray(params.get(self.weights, 1.0))))
        return {"charge": a * w, "current": a * s}

    def apply(self, params: Mapping[str, Any]) -> dict[str, Array]:
        """The design with its amplitude scaled into the limits (unchanged when inside them)."""
        v = self.values(params)
        scale = jnp.ones_like(v["charge"])
        for name, lim in (("charge", self.charge), ("current", self.current)):
            if lim is not None:
                scale = jnp.minimum(scale, lim / jnp.maximum(v[name], 1e-30))
        out = dict(params)
        out[self.amplitude] = jnp.asarray(params[self.amplitude]) * scale
        return out

    def satisfied(self, params: Mapping[str, Any], rtol: float = 1e-6) -> bool:
        """True when the (concrete) design lies within the limits, up to a relative `rtol`."""
        v = self.values(params)
        ok = True
        for name, lim in (("charge", self.charge), ("current", self.current)):
            if lim is not None:
                ok &= bool(np.all(np.asarray(v[name]) <= lim * (1 + rtol)))
        return ok


# ------------------------------------------------------------------------------------------------------ targets
def seizure_loss(
    regions: Any = None,
    *,
    window: float = 10.0,
    threshold: float | None = None,
    sharpness: float = 0.1,
    monitor: str = "x1",
    variable: int = 0,
) -> Callable[[Solution], Array]:
    """ "End a seizure": ``loss(solution)``, the mean over the last `window` ms and the chosen `regions` (default
    all) of the smooth indicator ``sigmoid((x1 - threshold) / sharpness)`` that ``x1`` is on the seizure branch
    (``threshold`` default :data:`vbtjax.vep.SEIZURE_X1`); 0 when every region has left the seizure, 1 when all
    seize. `monitor` and `variable` select ``x1`` in ``solution.ys`` (a VEP twin records ``"x1"``)."""
    if threshold is None:
        from ..applications.vep.network import SEIZURE_X1

        threshold = SEIZURE_X1
    if not sharpness > 0 or not window > 0:
        raise ValueError(f"seizure_loss: window ({window} ms) and sharpness ({sharpness}) must be > 0.")
    idx = None if regions is None else np.atleast_1d(np.asarray(regions, int))

    def loss(sol: Solution) -> Array:
        x = _series(sol, monitor, variable, window, "seizure_loss")
        if idx is not None:
            x = x[:, idx]
        return jnp.mean(jax.nn.sigmoid((x - threshold) / sharpness))

    return loss


def band_power_loss(
    band: tuple[float, float],
    regions: Any = None,
    *,
    direction: str = "raise",
    nperseg: int = 256,
    discard: float = 0.0,
    monitor: str = "raw",
    variable: int = 0,
) -> Callable[[Solution], Array]:
    """ "Raise or lower band power": ``loss(solution) = -/+ mean_i log P_i``, ``P_i`` the power in `band` (Hz) of
    region ``i`` of `regions` (default all), from :func:`vbtjax.features.welch_psd` (`nperseg` samples per segment)
    and :func:`vbtjax.features.band_power` of the monitor's `variable` after `discard` ms. `direction`: ``"raise"``
    (minimising the loss raises the power) or ``"lower"``."""
    if direction not in ("raise", "lower"):
        raise ValueError(f"band_power_loss: direction must be 'raise' or 'lower', got {direction!r}.")
    sign = -1.0 if direction == "raise" else 1.0
    idx = None if regions is None else np.atleast_1d(np.asarray(regions, int))

    def loss(sol: Solution) -> Array:
        x = _series(sol, monitor, variable, None, "band_power_loss", discard)
        if idx is not None:
            x = x[:, idx]
        period = sol.n_steps * sol.dt / sol.ys[monitor].shape[0]  # ms per sample
        f, p = welch_psd(x, 1000.0 / period, min(nperseg, x.shape[0]))
        return sign * jnp.mean(jnp.log(band_power(f, p, band) + 1e-30))

    return loss


def _series(sol, monitor, variable, window, owner, discard=0.0):
    if not isinstance(sol.ys, dict) or monitor not in sol.ys:
        have = list(sol.ys) if isinstance(sol.ys, dict) else type(sol.ys).__name__
        raise ValueError(f"{owner}: the simulation has no monitor {monitor!r} (it has {have}); pass monitor=.")
    ys = sol.ys[monitor]
    period = sol.n_steps * sol.dt / ys.shape[0]
    if window is not None:
        keep = max(1, int(round(window / period)))
        return ys[-keep:, variable]
    return ys[int(math.floor(discard / period + 1e-9)) :, variable]


# ------------------------------------------------------------------------------------------------------ problem
class DesignProblem:
    """A design problem: the network(s) of a twin's posterior draws, how a design becomes stimuli, the loss, the
    constraints and limits. :func:`design` optimises it; :meth:`per_draw` and :meth:`objective` evaluate any design
    (e.g. random designs, for comparison).

    **Arguments:** as :func:`design` (`target`, `make_stimulus`, `loss`, `init`, `constraints`, `limits`, `draws`,
    `key`, `quantile`, `t1`, `dt`, `solver`, `monitors`, `history`).
    """

    def __init__(self, target, make_stimulus, loss, *, init, constraints=None, limits=None, draws=None, key=None,
                 quantile=None, t1=None, dt=None, solver=None, monitors=None, history=None):  # fmt: skip
        if isinstance(target, Twin):
            net, self.values = target.network, _thinned_draws(target, draws)
            settings = dict(target.simulation or {})
        elif isinstance(target, Network):
            net, self.values, settings = target, {}, {}
        else:
            raise TypeError(f"design: target must be a vbtjax.Twin or Network, got {type(target).__name__}.")
        if not callable(make_stimulus) or not callable(loss):
            raise TypeError("design: make_stimulus(params) -> Stimulus and loss(solution) -> scalar must be functions.")
        if not isinstance(init, Mapping) or not init:
            raise TypeError("design: init must be a non-empty dict name -> initial value of each design parameter.")
        self.net, self.make_stimulus, self.loss = net, make_stimulus, loss
        self.names = tuple(init)
        self.constraints = {n: (constraints or {}).get(n, Real()) for n in self.names}
        unknown = sorted(set(constraints or {}) - set(self.names))
        if unknown:
            raise ValueError(f"design: constraints name {unknown}, which are not in init ({list(self.names)}).")
        for n, c in self.constraints.items():
            if not isinstance(c, AbstractConstraint):
                raise TypeError(f"design: constraints[{n!r}] must be Real(), Positive() or Interval(lo, hi).")
            c.check(jnp.asarray(init[n], float), f"design: init[{n!r}]")
        if limits is not None and not isinstance(limits, SafetyLimits):
            raise TypeError(f"design: limits must be a SafetyLimits, got {type(limits).__name__}.")
        self.limits = limits
        self.u0 = {n: self.constraints[n].inverse(jnp.asarray(init[n], float)) for n in self.names}
        if quantile is not None and not 0.0 <= quantile < 1.0:
            raise ValueError(f"design: quantile must lie in [0, 1), got {quantile!r}.")
        self.quantile = quantile
        self.t1 = t1 if t1 is not None else settings.get("t1")
        self.dt = dt if dt is not None else settings.get("dt")
        if self.t1 is None or self.dt is None:
            raise ValueError("design: give t1= and dt= (ms): the target has no saved simulation settings.")
        self.solver = solver if solver is not None else settings.get("solver")
        self.monitors = monitors if monitors is not None else settings.get("monitors")
        self.history = history if history is not None else settings.get("history")
        if net.noise is not None and key is None:
            raise ValueError("design: the network has noise, so a key is required: key=jax.random.key(0).")
        self.key = key
        self.n_draws = next(iter(self.values.values())).shape[0] if self.values else 1

    def params(self, u: Mapping[str, Any]) -> dict[str, Array]:
        """The design (constrained, then scaled into the safety limits) of unconstrained values `u`."""
        p = {n: self.constraints[n].forward(u[n]) for n in self.names}
        return self.limits.apply(p) if self.limits is not None else p

    def _one(self, params, values, key) -> Array:
        net = set_leaves(self.net, values) if values else self.net
        stim = self.make_stimulus(params)
        stim = (stim,) if isinstance(stim, Stimulus) else tuple(stim)
        net = eqx.tree_at(lambda n: n.stimulus, net, (*(net.stimulus or ()), *stim), is_leaf=lambda x: x is None)
        sol = simulate(net, self.t1, self.dt, self.history, self.solver, self.monitors, key, progress=False,
                       check="off")  # fmt: skip
        return jnp.asarray(self.loss(sol)).reshape(())

    def per_draw(self, params: Mapping[str, Any]) -> Float[Array, " K"]:
        """The loss of the design `params` (constrained values) in each of the `K` draws, ``(K,)``."""
        keys = (
            None if self.key is None else jax.vmap(lambda k: jax.random.fold_in(self.key, k))(jnp.arange(self.n_draws))
        )
        if self.values:
            return jax.vmap(self._one, in_axes=(None, 0, 0 if keys is not None else None))(params, self.values, keys)
        return self._one(params, {}, None if keys is None else keys[0])[None]

    def reduce(self, losses: Float[Array, " K"]) -> Array:
        """The objective of per-draw losses: their mean, or with `quantile` the mean of the worst
        ``ceil((1 - quantile) K)``."""
        if self.quantile is None:
            return jnp.mean(losses)
        m = max(1, math.ceil((1.0 - self.quantile) * losses.shape[0] - 1e-9))
        return jnp.mean(jnp.sort(losses)[-m:])

    def objective(self, u: Mapping[str, Any]) -> Array:
        """The objective at unconstrained values `u` (differentiable)."""
        return self.reduce(self.per_draw(self.params(u)))

    def random_designs(self, n: int, key: jax.Array, spread: float = 2.0) -> list[dict[str, Array]]:
        """`n` random feasible designs: each unconstrained value drawn as ``N(0, spread^2)`` (uniform-like across an
        ``Interval``), then constrained and scaled into the limits."""
        out = []
        for i in range(n):
            ks = jax.random.split(jax.random.fold_in(key, i), len(self.names))
            u = {
                nm: spread * jax.random.normal(k, jnp.shape(self.u0[nm])) for nm, k in zip(self.names, ks, strict=True)
            }
            out.append(self.params(u))
        return out


def _thinned_draws(twin: Twin, draws: int | None) -> dict[str, np.ndarray]:
    """The twin's posterior draws of network leaves, ``(K, *leaf_shape)``, evenly thinned to `draws`."""
    if not twin.posterior:
        return {}
    paths = set(leaf_paths(twin.network))
    out = {}
    for name, a in twin.posterior.items():
        if name in paths:
            k = a.ndim - get_leaf(twin.network, name).ndim
            out[name] = a.reshape((-1, *a.shape[k:]))
    if not out:
        return {}
    s = next(iter(out.values())).shape[0]
    if draws is not None:
        if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
            raise ValueError(f"design: draws must be a positive integer, got {draws!r}.")
        idx = np.unique(np.linspace(0, s - 1, min(draws, s)).round().astype(int))
        out = {k: v[idx] for k, v in out.items()}
    return {k: jnp.asarray(v) for k, v in out.items()}


# ------------------------------------------------------------------------------------------------------- result
class DesignResult(eqx.Module):
    """The result of :func:`design`.

    **Fields:**
    - `params`: the design (constrained, within the limits), name -> array: the best one visited.
    - `losses`: ``(steps + 1,)`` objective at each step's design (the last entry: after the last update).
    - `history`: name -> ``(steps + 1, ...)`` the designs visited.
    - `per_draw_before`, `per_draw_after`: ``(K,)`` per-draw loss of the initial and the returned design.
    - `limits`: ``{"charge": ..., "current": ...}`` of the returned design (empty without limits).
    - `n_simulations`: simulations run (``K`` per objective evaluation; a gradient costs about 2-3 of them).
    """

    params: dict[str, Array]
    losses: Array
    history: dict[str, Array]
    per_draw_before: Array
    per_draw_after: Array
    limits: dict[str, Array]
    n_simulations: int = eqx.field(static=True)


def design(
    target: Twin | Network,
    make_stimulus: Callable[[dict[str, Array]], Stimulus | tuple[Stimulus, ...]],
    loss: Callable[[Solution], Array],
    *,
    init: Mapping[str, Any],
    constraints: Mapping[str, AbstractConstraint] | None = None,
    limits: SafetyLimits | None = None,
    steps: int = 50,
    learning_rate: float = 0.1,
    optimizer: optax.GradientTransformation | None = None,
    draws: int | None = None,
    key: jax.Array | None = None,
    quantile: float | None = None,
    t1: float | None = None,
    dt: float | None = None,
    solver: Any = None,
    monitors: Any = None,
    history: Any = None,
) -> DesignResult:
    """Optimise a stimulation by gradient through the simulation, over a twin's posterior draws.

    **Arguments:**
    - `target`: a :class:`~vbtjax.Twin` (its posterior draws of network leaves are applied, as by
      :meth:`~vbtjax.Twin.predict`; its saved simulation settings are the defaults) or a :class:`~vbtjax.Network`.
    - `make_stimulus`: ``params -> Stimulus`` (or a tuple), e.g. ``lambda p: Stimulus(SmoothPulseTrain(
      amplitude=p["amplitude"], width=p["width"]), weight=p["weights"])``; added to the network's stimuli.
    - `loss`: ``loss(solution) -> scalar`` per draw, e.g. :func:`seizure_loss`, :func:`band_power_loss`.
    - `init`: name -> initial value (strictly inside its constraint's support).
    - `constraints`: name -> ``Interval(lo, hi)`` / ``Positive()`` / ``Real()`` (default ``Real()``).
    - `limits`: :class:`SafetyLimits` (charge per phase, total current).
    - `steps`, `learning_rate`, `optimizer`: Optax settings (default ``optax.adam(learning_rate)``).
    - `draws`: number `K` of posterior draws used (evenly thinned; default all).
    - `key`: noise key (required with noise); draw ``k`` always uses ``fold_in(key, k)`` (common random numbers).
    - `quantile`: None (minimise the mean loss) or ``q`` in [0, 1): minimise the mean of the worst ``1 - q`` share
      of draws (CVaR).
    - `t1`, `dt` (ms), `solver`, `monitors`, `history`: simulation settings (defaults: the twin's).

    **Returns:** a :class:`DesignResult`.
    """
    prob = DesignProblem(target, make_stimulus, loss, init=init, constraints=constraints, limits=limits,
                         draws=draws, key=key, quantile=quantile, t1=t1, dt=dt, solver=solver, monitors=monitors,
                         history=history)  # fmt: skip
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"design: steps must be a non-negative integer, got {steps!r}.")
    opt = optimizer if optimizer is not None else optax.adam(learning_rate)
    value_and_grad = eqx.filter_jit(jax.value_and_grad(prob.objective))
    per_draw = eqx.filter_jit(prob.per_draw)

    @eqx.filter_jit
    def update(u, state, g):
        upd, state = opt.update(g, state, u)
        return optax.apply_updates(u, upd), state

    u, state = prob.u0, opt.init(prob.u0)
    losses, visited = [], []
    for _ in range(steps):
        value, g = value_and_grad(u)
        losses.append(float(value))
        visited.append(prob.params(u))
        if not np.isfinite(losses[-1]):
            break
        u, state = update(u, state, g)
    visited.append(prob.params(u))
    losses.append(float(prob.objective(u)) if np.isfinite(losses[-1] if losses else 0.0) else float("nan"))
    best = int(np.nanargmin(np.asarray(losses)))
    params = visited[best]
    hist = {n: jnp.stack([v[n] for v in visited]) for n in prob.names}
    return DesignResult(
        params=params,
        losses=jnp.asarray(losses),
        history=hist,
        per_draw_before=per_draw(visited[0]),
        per_draw_after=per_draw(params),
        limits={} if limits is None else limits.values(params),
        n_simulations=prob.n_draws * (len(losses) + 2),
    )
