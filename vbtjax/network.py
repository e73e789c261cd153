"""A brain network model: everything needed to advance the simulation by one step."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._params import as_float_array, is_concrete
from .coupling import AbstractCoupling, Linear
from .data.connectome import Connectome
from .models._base import AbstractNeuralMass
from .noise import AbstractNoise
from .simulation import delays as _delays
from .simulation.delays import DelayPlan, EdgePattern, cached_plan, pattern_or_none
from .stimulus import Stimulus

__all__ = ["Network"]


class Network(eqx.Module):
    """A neural mass model on every region of a connectome, coupled through delayed connections.

    **Arguments:**
    - `model`: a neural mass model (:mod:`vbtjax.models`), parameters scalar or per region ``(N,)``.
    - `connectome`: a :class:`~vbtjax.Connectome` (weights used as given; lengths in mm).
    - `coupling`: a coupling function (:mod:`vbtjax.coupling`); default ``Linear()`` (TVB's default).
    - `speed`: conduction speed in mm/ms (= m/s), positive; ``inf`` removes the delays. Default 3.0 (TVB's).
    - `noise`: ``None`` for a deterministic network, or e.g. ``vbtjax.noise.Additive(nsig=1e-3)``.
    - `stimulus`: ``None``, a :class:`~vbtjax.stimulus.Stimulus`, or a tuple of them (their effects add up).
    - `delay_mode`: ``"round"`` (TVB: delays rounded to whole steps) or ``"interpolate"`` (fractional delays by
      linear interpolation between steps: simulations are then differentiable with respect to ``speed`` and
      ``lengths``). See :mod:`vbtjax.delays`.
    - `speed_range`: optional ``(slowest, fastest)`` speeds (mm/ms) the delay buffer must serve when ``speed`` is
      later traced and changed (``jax.vmap`` over speeds, fitting the speed): the buffer is sized for the slowest
      and the block length for the fastest. Default: the given speed only.

    All numeric leaves (model and coupling parameters, weights, lengths, speed, noise) are differentiable. The edges
    (non-zero weights) and their delays in ms are also recorded when the network is built (``edges``), so that a
    simulation can still lay out its delay buffer when the network is passed through ``jax.jit`` as an argument.
    """

    model: AbstractNeuralMass
    connectome: Connectome
    coupling: AbstractCoupling
    speed: Float[Array, ""]
    noise: AbstractNoise | None
    stimulus: tuple[Stimulus, ...] | None
    delay_mode: str = eqx.field(static=True)
    speed_range: tuple[float, float] | None = eqx.field(static=True)
    edges: EdgePattern | None = eqx.field(static=True)

    def __init__(
        self,
        model: AbstractNeuralMass,
        connectome: Connectome,
        coupling: AbstractCoupling | None = None,
        speed: float | Array = 3.0,
        noise: AbstractNoise | None = None,
        stimulus: Stimulus | tuple[Stimulus, ...] | None = None,
        delay_mode: str = "round",
        speed_range: tuple[float, float] | None = None,
    ):
        if delay_mode not in ("round", "interpolate"):
            raise ValueError(f"Network: delay_mode must be 'round' (TVB) or 'interpolate', got {delay_mode!r}.")
        if not isinstance(model, AbstractNeuralMass):
            raise TypeError(f"Network: model must be a vbtjax.models model, got {type(model).__name__}.")
        if not isinstance(connectome, Connectome):
            raise TypeError(
                f"Network: connectome must be a vbtjax.Connectome, got {type(connectome).__name__}; build one with "
                "vbtjax.Connectome(weights=W, lengths=L) or vbtjax.datasets.tvb_connectome(76)."
            )
        coupling = Linear() if coupling is None else coupling
        if not isinstance(coupling, AbstractCoupling):
            raise TypeError(f"Network: coupling must be a vbtjax.coupling function, got {type(coupling).__name__}.")
        if noise is not None and not isinstance(noise, AbstractNoise):
            raise TypeError(f"Network: noise must be None or a vbtjax.noise object, got {type(noise).__name__}.")
        if stimulus is not None:
            stimulus = (stimulus,) if isinstance(stimulus, Stimulus) else tuple(stimulus)
            for s in stimulus:
                if not isinstance(s, Stimulus):
                    raise TypeError(
                        f"Network: stimulus must be vbtjax.stimulus.Stimulus objects, got {type(s).__name__}."
                    )
                s.check(model, connectome.n_regions)
        speed = as_float_array(speed)
        if speed.ndim != 0:
            raise ValueError(f"Network: speed must be a scalar in mm/ms, got shape {speed.shape}.")
        if is_concrete(speed) and not float(speed) > 0:
            raise ValueError(
                f"Network: speed must be a positive conduction speed in mm/ms (e.g. 3.0), got {float(speed)}."
            )
        n = connectome.n_regions
        model.check_n_regions(n)
        coupling.check_n_regions(n)
        coupling.n_out(model.n_cvar)  # raises when the coupling cannot serve this model
        if noise is not None:
            noise.check_shape(model.n_svar, n)
        self.model = model
        self.connectome = connectome
        self.coupling = coupling
        self.speed = speed
        self.noise = noise
        self.stimulus = stimulus
        self.delay_mode = delay_mode
        if speed_range is not None:
            lo, hi = (float(v) for v in speed_range)
            if not 0 < lo <= hi:
                raise ValueError(
                    f"Network: speed_range must be (slowest, fastest) with 0 < slowest <= fastest, got {speed_range}."
                )
            if is_concrete(speed) and not lo <= float(speed) <= hi:
                raise ValueError(f"Network: speed {float(speed)} lies outside speed_range {speed_range}.")
            speed_range = (lo, hi)
        self.speed_range = speed_range
        self.edges = pattern_or_none(connectome, speed, speed_range)

    @property
    def n_regions(self) -> int:
        return self.connectome.n_regions

    def stimulus_at(self, t: Float[Array, ""]) -> Float[Array, "n_svar N"] | None:
        """Total stimulus ``(n_svar, N)`` at time ``t`` ms (``None`` without stimuli)."""
        if not self.stimulus:
            return None
        n = self.n_regions
        return sum(s(t, self.model, n) for s in self.stimulus)

    def delays(self) -> Float[Array, "N N"]:
        """Conduction delays ``lengths / speed`` in ms, ``(N, N)``."""
        return self.connectome.lengths / self.speed

    def delay_plan(self, dt: float) -> DelayPlan:
        """The delay layout for time step ``dt`` (ms): horizon, block length, edges. See :mod:`vbtjax.delays`."""
        pattern = pattern_or_none(self.connectome, self.speed, self.speed_range)
        if pattern is None:
            pattern = self.edges
        if pattern is None:
            raise ValueError(
                "Network: the connectome and speed were traced when the network was built (inside jit/vmap), so "
                "its delays are unknown; build the Network outside the transformed function."
            )
        return plan_for(self, pattern, dt)

    def with_layout(
        self, *, edges: EdgePattern | None = None, speed_range: tuple[float, float] | None = None
    ) -> Network:
        """A copy with its static delay layout replaced: `edges` (the pattern a traced network's simulation lays its
        delay buffer out from, see :meth:`delay_plan`) and/or `speed_range` (only the arguments given change).
        ``eqx.tree_at`` reaches only the leaves; sweeps, predictions and scenarios use this for the static part."""
        static = {}
        if edges is not None:
            static["edges"] = edges
        if speed_range is not None:
            static["speed_range"] = (float(speed_range[0]), float(speed_range[1]))
        return _with_static(self, **static)

    def widened(self, structures: Iterable[tuple[Any, Any, Any]], dt: float, owner: str = "Network") -> Network:
        """A copy whose delay layout serves every network of `structures`: batches ``(weights (B, N, N), lengths
        (B, N, N), speed (B,))`` (concrete). The layout is the union of their non-zero weights and, per edge, the
        shortest and longest delay, widened by a relative 1e-6 so that rounding the traced delays cannot fall
        outside. Raises ``ValueError`` naming `owner` when one layout cannot serve them all at `dt` ms."""
        n = self.n_regions
        mask = np.zeros((n, n), bool)
        shortest = np.full((n, n), np.inf)
        longest = np.zeros((n, n))
        for W, L, v in structures:
            W, L, v = (np.asarray(x, np.float64) for x in (W, L, v))
            mask |= np.any(W.reshape(-1, n, n) != 0, axis=0)
            d = L.reshape(-1, n, n) / v.reshape(-1, 1, 1)
            shortest = np.minimum(shortest, d.min(axis=0))
            longest = np.maximum(longest, d.max(axis=0))
        shortest = shortest * (1 - 1e-6)
        longest = longest * (1 + 1e-6)
        for a in (mask, shortest, longest):
            a.setflags(write=False)
        pattern = EdgePattern(mask=mask, delays_ms=longest, shortest_ms=shortest, longest_ms=longest)
        try:
            cached_plan(pattern, float(dt), _delays.MAX_BLOCK, self.delay_mode)
        except ValueError as e:
            lo = float(shortest[mask].min()) if mask.any() else 0.0
            hi = float(longest[mask].max()) if mask.any() else 0.0
            raise ValueError(
                f"{owner}: the networks give delays from {lo:.4g} to {hi:.4g} ms, which one delay layout cannot serve "
                f"at dt={dt} ms ({e}) Split them into ranges (e.g. of speed), or reduce dt."
            ) from None
        return self.with_layout(edges=pattern)

    @property
    def dtype(self) -> np.dtype:
        """The floating dtype a simulation runs in: the promotion of the network's floating leaves (parameters,
        weights, lengths, speed, noise, stimuli), so float64 under ``jax_enable_x64`` unless every leaf is float32.
        Histories are cast to it."""
        leaves = jax.tree.leaves(self)
        dtypes = [x.dtype for x in leaves if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating)]
        return np.dtype(jnp.result_type(*dtypes) if dtypes else jnp.result_type(float))

    def horizon(self, dt: float) -> int:
        """Number of history rows a simulation with step ``dt`` (ms) needs: ``max(rint(delay / dt)) + 1``."""
        return self.delay_plan(dt).horizon


def _with_static(module: eqx.Module, **static) -> eqx.Module:
    """A shallow copy of `module` with the given static fields replaced, nothing else recomputed.

    Static fields live in the pytree's structure, not its leaves, so ``eqx.tree_at`` cannot reach them;
    ``dataclasses.replace`` would call ``Network.__init__``, whose signature has no ``edges`` and which would check
    every part again and lay the edges out anew from (possibly traced) values. So the fields are set on a copy the
    way equinox itself sets them when it rebuilds a module from its pytree (``object.__setattr__``: Modules are frozen
    dataclasses); the copy is new, no existing object changes, and only fields the class declares static are allowed.
    """
    fields = {f.name: f for f in dataclasses.fields(module)}
    for name in static:
        if name not in fields or not fields[name].metadata.get("static", False):
            raise TypeError(f"{type(module).__name__}: {name!r} is not a static field.")
    new = copy.copy(module)
    for name, value in static.items():
        object.__setattr__(new, name, value)
    return new


def plan_for(net: Network, pattern: EdgePattern, dt: float) -> DelayPlan:
    """The delay plan of `pattern` at `dt` ms; a refusal (delays too long for a buffer) names the network's speed."""
    try:
        return cached_plan(pattern, float(dt), _delays.MAX_BLOCK, net.delay_mode)
    except ValueError as e:
        speed = f"{float(net.speed):.4g} mm/ms" if is_concrete(net.speed) else "traced"
        if net.speed_range is not None:
            speed += f", speed_range {net.speed_range}"
        raise ValueError(f"Network (speed {speed}): {e}") from None


def traced_lags(net: Network, plan: DelayPlan, src: np.ndarray, tgt: np.ndarray) -> tuple[jax.Array, jax.Array]:
    """Lags of the given edges from the network's (possibly traced) lengths and speed: ``(D, w)`` with ``D`` integer
    steps (TVB's rint, or floor when interpolating) and ``w`` the fractional part (0 in "round" mode)."""
    lam = net.connectome.lengths[tgt, src] / (net.speed * plan.dt)
    # clipped before the cast, so that a huge traced delay fails the layout check instead of wrapping around int32
    to_int = lambda d: jnp.clip(d, -1, _delays.MAX_DELAY_STEPS + 1).astype(jnp.int32)
    if plan.mode == "round":
        return to_int(jnp.rint(lam)), jnp.zeros_like(lam)
    d = jnp.floor(lam)
    return to_int(d), lam - d
