"""Integrate a delayed network: :func:`simulate` and its result :class:`Solution` (the loop itself:
:mod:`vbtjax.simulation.loop`).

Loop structure (see :mod:`vbtjax.delays` for why it is exact): an outer ``lax.scan`` over *chunks* (each under
``jax.checkpoint``, so reverse-mode memory grows with the number of chunks, not of steps), a ``lax.scan`` over *blocks*
of ``K`` steps (one bulk gather of delayed values from the chunk's delay buffer per block), and an inner ``lax.scan``
over the steps of a block, each calling a Diffrax solver's ``step`` with the coupling held constant over the step (TVB)
and each under its own ``jax.checkpoint`` (reverse mode keeps a step's inputs, not its intermediates).
Monitors are updated every step and keep only their samples.

The delay buffer is linear within a chunk, not a ring: a chunk starts from the last ``H`` states of the coupling
variables (its carry), appends zero columns for its ``L`` steps, and each block *adds* its new states into its own
(still zero) columns. Reads are then contiguous windows without wrap-around, and the transpose of an addition is the
identity, so reverse mode needs no zeroing of the buffer's cotangent: with a ring (overwrite, plus a mirrored copy of
the first columns) XLA copied the whole cotangent buffer three times per block (``docs/design.md``).
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PyTree

from .._params import is_concrete
from ..network import Network, plan_for
from ..observation.export import OutputInfo, describe_outputs
from ..observation.monitors import AbstractMonitor, Raw
from .delays import NESTED_ABOVE as NESTED_ABOVE  # noqa: F401  (documented here: checkpoint_levels)
from .delays import DelayPlan, EdgePattern, LoopLayout, longest_delay_ms, pattern_or_none
from .loop import LoopConfig, run
from .solvers import Heun

__all__ = [
    "simulate",
    "Solution",
    "initial_history",
    "memory_estimate",
    "memory_limit",
    "SimulationWarning",
    "NonFiniteWarning",
    "NonFiniteError",
]

CHUNK_STEPS = 1000
"""Default steps per checkpointed chunk."""


MEMORY_FRACTION = 0.8
"""Default memory limit of one simulation, as a fraction of this machine's RAM (and of an accelerator's memory)."""

MAX_MEMORY: float | None = None
"""Memory limit of one simulation in bytes, for every call that does not pass ``max_memory=`` (``None``: the default
:data:`MEMORY_FRACTION` of the RAM; ``math.inf``: no limit)."""

PROGRESS_MIN_WORK = 1e8
"""``progress=None`` shows a bar when ``n_steps * n_regions * n_svar`` exceeds this: a few seconds of forward run on
two CPU cores (100 000 Heun steps of the 76-region, 2-variable network take 0.4-0.5 s in float32, ``docs/design.md``;
float64 and noise take longer). Compilation time is not counted."""

MAX_STEPS = 2**31 - 1
"""Most steps (padding included) one simulation can count: the step counter is an int32."""

CHECKS = ("warn", "raise", "off")


class SimulationWarning(UserWarning):
    """A simulation runs, but not exactly as one might expect: all delays round to zero steps, or ``t1`` is not a
    whole number of a monitor's periods (the last partial period is not sampled)."""


class NonFiniteWarning(RuntimeWarning):
    """A simulation's output contains NaN or inf (it diverged); raised as :class:`NonFiniteError` with
    ``check="raise"``."""


class NonFiniteError(FloatingPointError):
    """A simulation's output contains NaN or inf and ``simulate(..., check="raise")`` was asked."""


class Solution(eqx.Module):
    """The result of :func:`simulate`.

    **Fields:**
    - `ts`: sample times in ms after t0, one array per monitor, with the same structure as the ``monitors`` argument
      (a dict by default: ``ts["raw"]`` is ``(T,)``: ``dt, 2 dt, ..., T dt``).
    - `ys`: the monitor outputs, same structure; ``ys["raw"]`` is ``(T, n_svar, N)`` (time, state variable, region).
    - `final_state`: the state at the last step, ``(n_svar, N)``.
    - `dt`, `n_steps`, `horizon`, `block`: step (ms), number of steps, history rows used, steps per bulk gather.
    - `outputs`: one :class:`~vbtjax.observation.export.OutputInfo` per monitor, in the order of
      ``jax.tree.leaves(ys)``: the recorded variables' names, the region labels (the connectome's) or channel labels
      (a sensor monitor's), units where known, the period and the monitor's kind; ``info`` gives them in the
      structure of ``ys`` (``sol.info["raw"].labels``). Static, so a Solution still passes through ``jax.jit``,
      ``jax.vmap`` and ``jax.grad``.

    **Exports:** :meth:`to_xarray` (labelled ``xarray`` objects), :meth:`to_mne` (an ``mne.io.RawArray`` of an
    EEG/MEG/SEEG output) and :meth:`plot` (a matplotlib figure). :meth:`health` checks that the output is meaningful
    (not diverged, at a fixed point, collapsed or in lockstep) before you compute an FC from it.
    """

    ts: PyTree[Float[Array, " T"]]
    ys: PyTree[Float[Array, "T ..."]]
    final_state: Float[Array, "n_svar N"]
    dt: float = eqx.field(static=True)
    n_steps: int = eqx.field(static=True)
    horizon: int = eqx.field(static=True)
    block: int = eqx.field(static=True)
    outputs: tuple[OutputInfo, ...] = eqx.field(default=(), static=True)

    @property
    def info(self) -> PyTree[OutputInfo] | None:
        """The :class:`~vbtjax.observation.export.OutputInfo` of each output, in the structure of ``ys`` (``None``
        for a Solution built without them)."""
        if not self.outputs:
            return None
        return jax.tree.unflatten(jax.tree.structure(self.ys), self.outputs)

    def to_xarray(self, which: Any = None):
        """The outputs as an ``xarray.DataArray`` (one output, or `which` names one) with dims ``("time",
        "variable", "region" | "channel")``, labelled coordinates and time in ms, or an ``xarray.Dataset`` of every
        output; see :func:`vbtjax.observation.export.to_xarray`."""
        from ..observation.export import to_xarray

        return to_xarray(self, which)

    def to_mne(self, which: Any = None, **kwargs):
        """An EEG/MEG/SEEG output as an ``mne.io.RawArray`` (channel types, sampling frequency, sensor positions;
        values scaled to volts or tesla: see `scale`); keywords `variable`, `scale`, `ch_type`, `coord_frame`,
        `position_unit` as in :func:`vbtjax.observation.export.to_mne`. Needs MNE (``pip install "vbtjax[io]"``)."""
        from ..observation.export import to_mne

        return to_mne(self, which, **kwargs)

    def plot(self, which: Any = None, **kwargs):
        """A matplotlib figure of one output's time series (time in ms; regions or channels chosen with
        `select`, labelled in a legend); keywords as in :func:`vbtjax.observation.export.plot`."""
        from ..observation.export import plot

        return plot(self, which, **kwargs)

    def health(self, which: Any = None, **kwargs):
        """Is one output meaningful? A :class:`~vbtjax.simulation.health.Health` (``bool(h)``, ``h.problems``,
        ``h.suggestion``, ``h.message()``) flagging NaN/inf, blow-up, a fixed point, flat channels, collapse,
        saturation or a uniform FC; keywords (`transient` in ms, `variable`, `bounds`, `check_fc`, ...) as in
        :func:`vbtjax.simulation.health.assess`. Call it on a concrete Solution, outside ``jax.jit``."""
        from .health import assess

        return assess(self, which=which, **kwargs)


def is_monitor(x) -> bool:
    return isinstance(x, AbstractMonitor)


def _ms(name: str, value: Any, example: str) -> float:
    """A time argument (ms) as a Python float: Python, NumPy and concrete 0-d JAX numbers (a float32 or float16 as
    the decimal it prints as); not bools, strings or traced values (the number of steps and the delay layout are
    static)."""
    if isinstance(value, jax.core.Tracer):
        raise ValueError(
            f"simulate: {name} must be a concrete number of ms, not a traced value: the number of steps and the delay "
            f"layout depend on it. Under jax.jit close over it or mark it static (jax.jit(f, static_argnames=...))."
        )
    kind = getattr(value, "dtype", None)
    if isinstance(value, bool | np.bool_ | str) or (kind is not None and not np.issubdtype(kind, np.number)):
        raise ValueError(f"simulate: {name} must be a positive number of ms (e.g. {example}), got {value!r}.")
    try:
        v = float(value) if np.ndim(value) == 0 else math.nan
        if kind is not None and np.issubdtype(kind, np.floating) and np.dtype(kind).itemsize < 8:
            v = float(str(np.asarray(value)[()]))  # np.float32(0.1) means 0.1 ms, not 0.10000000149
    except (TypeError, ValueError):
        v = math.nan
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"simulate: {name} must be a positive number of ms (e.g. {example}), got {value!r}.")
    return v


def _n_steps(t1: float, dt: float, padded: int = 0) -> int:
    """The number of steps, refused when it is not whole or when it (plus `padded` steps) overflows the counter."""
    n = round(t1 / dt)
    if n < 1 or abs(n * dt - t1) > 1e-6 * max(t1, dt):
        raise ValueError(
            f"simulate: t1={t1} ms is not a whole number of steps of dt={dt} ms; use t1={max(n, 1) * dt:g}."
        )
    if max(n, padded) > MAX_STEPS:
        steps = f"{n} steps" + (f" ({padded} with the loops' padding)" if padded > n else "")
        raise ValueError(
            f"simulate: t1={t1:g} ms is {steps} of dt={dt:g} ms, more than the int32 step counter holds ({MAX_STEPS});"
            " use a larger dt, or simulate in pieces (each starting from the last one's final_state)."
        )
    return n


def initial_history(
    net: Network, dt: float, history: Any = None, *, key: jax.Array | None = None, dtype=None
) -> Float[Array, "H n_svar N"]:
    """The ``(H, n_svar, N)`` history a simulation starts from (oldest first, row ``-1`` is the state at t0).

    **Arguments:**
    - `history`: ``None``: a constant history, at a random state drawn in the model's ``state_variable_range`` if
      `key` is given, else at the middle of those ranges; ``(n_svar, N)``: that state held constant;
      ``(H', n_svar, N)`` with ``H' >= H``: its last ``H`` rows.
    - `key`: random key for the random initial state.
    - `dtype`: the history's dtype (default: the network's, :attr:`~vbtjax.Network.dtype`); a given history of
      another dtype (float32 or float16 under ``jax_enable_x64``, integers) is cast to it.

    State-variable bounds are applied to the history, as TVB does.
    """
    model = net.model
    n = net.n_regions
    H = net.horizon(dt)
    dtype = dtype or net.dtype
    if history is None:
        x0 = model.default_state(n, dtype) if key is None else model.random_state(key, n, dtype)
        return jnp.broadcast_to(x0, (H, model.n_svar, n))
    kind = history.dtype if hasattr(history, "dtype") else np.asarray(history).dtype
    if not (jnp.issubdtype(kind, jnp.floating) or jnp.issubdtype(kind, jnp.integer)):
        raise ValueError(f"simulate: history must hold real numbers (cast to {np.dtype(dtype)}), got dtype {kind}.")
    hist = jnp.asarray(history).astype(dtype)  # the scan's carry has the network's dtype
    expected = f"({H}, {model.n_svar}, {n}) (rows oldest first, last row = state at t0) or ({model.n_svar}, {n})"
    if hist.ndim == 2:
        if hist.shape != (model.n_svar, n):
            raise ValueError(f"simulate: history has shape {hist.shape}; expected {expected}.")
        hist = jnp.broadcast_to(hist, (H, model.n_svar, n))
    elif hist.ndim == 3:
        if hist.shape[1:] != (model.n_svar, n):
            raise ValueError(f"simulate: history has shape {hist.shape}; expected {expected}.")
        if hist.shape[0] < H:
            raise ValueError(
                f"simulate: history has {hist.shape[0]} rows but the longest delay needs H = {H} rows at dt={dt} ms; "
                f"expected {expected}. Use net.horizon(dt) to size it, or pass a single state."
            )
        hist = hist[hist.shape[0] - H :]
    else:
        raise ValueError(f"simulate: history has shape {hist.shape}; expected {expected}.")
    if is_concrete(hist) and not bool(np.all(np.isfinite(np.asarray(hist)))):  # numpy: no tracer under jit
        raise ValueError("simulate: history contains NaN or inf.")
    return jax.vmap(model.bound)(hist)


def simulate(
    net: Network,
    t1: float,
    dt: float,
    history: Any = None,
    solver: diffrax.AbstractSolver | None = None,
    monitors: PyTree[AbstractMonitor] | None = None,
    key: jax.Array | None = None,
    *,
    chunk_steps: int = CHUNK_STEPS,
    checkpoint_levels: int | None = None,
    unroll: int = 1,
    progress: bool | None = None,
    check: str = "warn",
    max_memory: float | None = None,
) -> Solution:
    """Simulate a network from t0 = 0 to ``t1`` ms with fixed step ``dt`` ms.

    **Arguments:**
    - `net`: the :class:`~vbtjax.Network`.
    - `t1`: duration in ms (a whole number of steps; a Python or NumPy number).
    - `dt`: integration step in ms (a Python or NumPy number).
    - `history`: initial history, see :func:`initial_history`; e.g. an ``(H, n_svar, N)`` array, oldest first,
      last row the state at t0 (TVB's ``initial_conditions``). Cast to the network's dtype.
    - `solver`: :class:`~vbtjax.Heun` (default), :class:`~vbtjax.Euler`, :class:`~vbtjax.RK4`, or any Diffrax
      solver (its ``step`` is called with the coupling held fixed over the step; bounds applied after it).
      With noise, the same solver integrates the SDE.
    - `monitors`: one monitor or a dict/list/tuple of monitors (default ``{"raw": Raw()}``).
      ``Solution.ts`` and ``Solution.ys`` have the same structure. A monitor returns ``floor(t1 / period)`` samples,
      as TVB's do: when ``t1`` is not a whole number of its periods a :class:`SimulationWarning` says that the last
      partial period is not sampled; a period longer than ``t1`` (no samples) is an error.
    - `key`: ``jax.random`` key; required when the network has noise, and used for a random initial state when
      `history` is None.
    - `chunk_steps`: steps per checkpointed chunk (memory of reverse-mode gradients is about
      ``n_steps / chunk_steps`` delay buffers plus the monitor outputs).
    - `checkpoint_levels`: ``1``: one checkpoint per chunk; ``2``: also groups of about ``sqrt(n_chunks)`` chunks
      under a checkpoint, so reverse-mode memory grows as ``2 sqrt(n_chunks)`` delay buffers (for hour-long runs)
      at the cost of one more forward pass in the gradient; ``None`` (default): 2 above :data:`NESTED_ABOVE`
      chunks, else 1. The values are the same either way.
    - `unroll`: steps unrolled in the innermost loop (faster run, longer compile).
    - `progress`: show a progress bar (``tqdm.auto``: a widget in Jupyter; one update per chunk); ``None``
      (default): on for a long run watched from a terminal or a notebook, off under a transformation (see
      :func:`auto_progress`).
    - `check`: what a non-finite output (NaN or inf: the run diverged) does: ``"warn"`` (default) a
      :class:`NonFiniteWarning`, ``"raise"`` a :class:`NonFiniteError`, ``"off"`` nothing. Under ``jax.jit``,
      ``jax.vmap`` or ``jax.grad`` the values are not known when ``simulate`` runs: ``"warn"`` then does nothing (check
      the result yourself, as :func:`~vbtjax.sweep` does), and ``"raise"`` becomes a runtime check
      (``equinox.error_if``) that fails the compiled call.
    - `max_memory`: refuse (``MemoryError``, with the estimate) a run whose delay history, delay buffer and outputs
      would need more bytes than this (see :func:`memory_estimate`). Default :data:`MAX_MEMORY`, else
      :data:`MEMORY_FRACTION` of this machine's RAM; ``math.inf`` for no limit. Under ``jax.vmap`` the estimate is
      per simulation (it cannot see the batch).

    Works under ``jax.jit``, ``jax.vmap`` and ``jax.grad`` with respect to any model, coupling, noise or connectome
    parameter. Delays use TVB's discretisation ``rint(lengths / speed / dt)``, so they are piecewise constant in
    ``speed`` and ``lengths``; when every delay rounds to 0 steps a :class:`SimulationWarning` says the coupling is
    instantaneous.
    """
    t1, dt = _ms("t1", t1, "1000.0"), _ms("dt", dt, "0.1")
    n_steps = _n_steps(t1, dt)
    solver, leaves, tree, names = _check_arguments(net, solver, monitors, key, chunk_steps, checkpoint_levels, check)
    progress = auto_progress(progress, net, n_steps, (history, key))
    config = _configure(net, t1, dt, n_steps, leaves, names, chunk_steps, unroll, checkpoint_levels, progress)
    plan, dtype = config.plan, net.dtype
    parts = _memory_parts(
        net, plan, n_steps, config.layout.chunk_len, leaves, names, config.vois, config.qs, dtype.itemsize
    )
    _check_memory(parts, max_memory, net, plan)
    key_hist, key_noise = (None, None) if key is None else jax.random.split(key)
    hist = initial_history(net, dt, history, key=key_hist if history is None else None, dtype=dtype)
    ys, final, finite = run(net, hist, key_noise, solver, tuple(leaves), config)
    ts = [jnp.asarray(m.sample_times(n_steps // q, dt), hist.dtype) for m, q in zip(leaves, config.qs, strict=True)]
    ys, final = _check_finite(list(ys), final, finite, ts, names, check)
    return _solution(net, tree, leaves, ts, ys, final, dt, n_steps, plan)


def _solution(net, tree, leaves, ts, ys, final, dt: float, n_steps: int, plan: DelayPlan) -> Solution:
    """The :class:`Solution` of a run: outputs in the structure of the monitors, each described (labels, variables)."""
    return Solution(
        ts=jax.tree.unflatten(tree, ts),
        ys=jax.tree.unflatten(tree, ys),
        final_state=final,
        dt=float(dt),
        n_steps=n_steps,
        horizon=plan.horizon,
        block=plan.block,
        outputs=describe_outputs(net, jax.tree.unflatten(tree, leaves), dt),
    )


def auto_progress(progress: bool | None, net: Network, n_steps: int, inputs: Any = None) -> bool:
    """Whether :func:`simulate` shows a progress bar: `progress` when given; for ``None``, on when the run is long
    (``n_steps * n_regions * n_svar`` above :data:`PROGRESS_MIN_WORK`), its inputs (`net` and `inputs`) are not
    traced (no bars under ``jax.jit``/``vmap``/``grad`` of the inputs), and someone watches: a terminal on stderr or a
    Jupyter kernel (``tqdm.auto`` draws a notebook widget there)."""
    if progress is not None:
        return bool(progress)
    if n_steps * net.n_regions * net.model.n_svar < PROGRESS_MIN_WORK:
        return False
    if not all(is_concrete(x) for x in jax.tree.leaves((net, inputs))):
        return False
    return "ipykernel" in sys.modules or bool(getattr(sys.stderr, "isatty", lambda: False)())


def _configure(net, t1, dt, n_steps, leaves, names, chunk_steps, unroll, checkpoint_levels, progress) -> LoopConfig:
    """The run's static layout: the delay plan (from concrete values, else the network's recorded edges), the
    monitors' sampling, and the blocks and chunks; warns about instantaneous delays and partial periods."""
    pattern = pattern_or_none(net.connectome, net.speed, net.speed_range)
    trusted = pattern is not None
    plan = net.delay_plan(dt) if trusted else _traced_plan(net, dt)
    _warn_instantaneous(plan, pattern if trusted else net.edges, net)
    qs = tuple(m.istep(dt) for m in leaves)
    _check_periods(names, leaves, qs, n_steps, dt)
    vois = tuple(m.voi_indices(net.model.state_variables) for m in leaves)
    layout = LoopLayout.make(plan, n_steps, chunk_steps, unroll, checkpoint_levels)
    _n_steps(t1, dt, padded=layout.n_chunks * layout.chunk_len + layout.block + max(qs))  # the loops count further
    return LoopConfig(plan, layout, qs, vois, trusted, progress)


def _check_arguments(net, solver, monitors, key, chunk_steps, checkpoint_levels, check):
    """Type checks of simulate's arguments: ``(solver, monitor leaves, their treedef, their names)``."""
    if not isinstance(net, Network):
        raise TypeError(f"simulate: net must be a vbtjax.Network, got {type(net).__name__}.")
    solver = Heun() if solver is None else solver
    if not isinstance(solver, diffrax.AbstractSolver):
        raise TypeError(
            f"simulate: solver must be a Diffrax solver such as vbtjax.Heun(), got {type(solver).__name__}."
        )
    monitors = {"raw": Raw()} if monitors is None else monitors
    with_paths, mon_tree = jax.tree_util.tree_flatten_with_path(monitors, is_leaf=is_monitor)
    leaves = [m for _, m in with_paths]
    if not leaves or not all(is_monitor(m) for m in leaves):
        raise TypeError("simulate: monitors must be a monitor or a dict/list/tuple of vbtjax.monitors objects.")
    names = [f"monitors{jax.tree_util.keystr(path)}" if path else "the monitor" for path, _ in with_paths]
    if net.noise is not None and key is None:
        raise ValueError("simulate: the network has noise, so a key is required: simulate(..., key=jax.random.key(0)).")
    if isinstance(chunk_steps, bool) or not isinstance(chunk_steps, int | np.integer) or chunk_steps < 1:
        raise ValueError(f"simulate: chunk_steps must be a positive integer, got {chunk_steps!r}.")
    if checkpoint_levels not in (None, 1, 2):
        raise ValueError(f"simulate: checkpoint_levels must be None, 1 or 2, got {checkpoint_levels!r}.")
    if check not in CHECKS:
        raise ValueError(f"simulate: check must be one of {CHECKS} (what NaN/inf in the output does), got {check!r}.")
    return solver, leaves, mon_tree, names


def _warn_instantaneous(plan: DelayPlan, pattern: EdgePattern | None, net: Network) -> None:
    """A SimulationWarning when the network has delays but all of them round to 0 steps (TVB's discretisation)."""
    if plan.mode != "round" or plan.n_delayed or pattern is None:
        return
    longest = longest_delay_ms(pattern)
    if longest > 0:
        speed = f" at speed {float(net.speed):.4g} mm/ms" if is_concrete(net.speed) else ""
        warnings.warn(
            f"simulate: every conduction delay{speed} is shorter than dt/2 (the longest is {longest:.4g} ms), so "
            f"with dt={plan.dt:g} ms all of them round to 0 steps and the coupling is instantaneous (TVB's "
            f"discretisation). If the delays matter use dt <= {longest / 5:.3g} ms or delay_mode='interpolate'; "
            "speed=inf states that they do not.",
            SimulationWarning,
            stacklevel=4,
        )


def _check_periods(names, monitors, qs, n_steps: int, dt: float) -> None:
    """A period longer than the run is an error; a run that is not a whole number of periods is sampled as TVB does
    (``floor(t1 / period)`` samples), with a SimulationWarning saying so."""
    for name, mon, q in zip(names, monitors, qs, strict=True):
        n = n_steps // q
        if n == 0:
            raise ValueError(
                f"simulate: {name} has period {mon.period:g} ms, longer than t1={n_steps * dt:g} ms, so it would "
                f"return no samples; simulate at least t1={q * dt:g} ms or give it a shorter period."
            )
        if n_steps % q:
            warnings.warn(
                f"simulate: t1={n_steps * dt:g} ms is not a whole number of periods of {name} (period "
                f"{mon.period:g} ms): it returns {n} samples, up to t = {n * q * dt:g} ms, and the last "
                f"{(n_steps - n * q) * dt:g} ms are simulated but not sampled (as in TVB). Use t1={n * q * dt:g} or "
                f"{(n + 1) * q * dt:g} ms to avoid this.",
                SimulationWarning,
                stacklevel=4,
            )


def _traced_plan(net: Network, dt: float) -> DelayPlan:
    if net.edges is None:
        raise ValueError(
            "simulate: the network's connectome/speed are traced and the network was built under a transformation, "
            "so its delays are unknown; build the Network outside jit/vmap."
        )
    return plan_for(net, net.edges, dt)


# ------------------------------------------------------------------------------------------------ memory and checks


def memory_estimate(
    net: Network,
    t1: float,
    dt: float,
    monitors: PyTree[AbstractMonitor] | None = None,
    *,
    batch: int = 1,
    chunk_steps: int = CHUNK_STEPS,
) -> dict[str, int]:
    """Bytes that :func:`simulate` (forward, ``batch`` simulations at once, e.g. under ``jax.vmap``) allocates for its
    largest arrays, from shapes and the network's dtype, without allocating them: ``{what: bytes}`` for the initial
    delay history ``(H, n_svar, N)``, the delay buffer (the last ``H`` states of the coupling variables plus one
    chunk, twice) and each monitor's outputs, and ``"total"``. Reverse-mode gradients need more (about one delay
    buffer per chunk, see ``chunk_steps``)."""
    t1, dt = _ms("t1", t1, "1000.0"), _ms("dt", dt, "0.1")
    n_steps = _n_steps(t1, dt)
    _, leaves, _, names = _check_arguments(net, None, monitors, "no key needed", chunk_steps, None, "off")
    concrete = pattern_or_none(net.connectome, net.speed, net.speed_range) is not None
    plan = net.delay_plan(dt) if concrete else _traced_plan(net, dt)
    qs = tuple(m.istep(dt) for m in leaves)
    vois = tuple(m.voi_indices(net.model.state_variables) for m in leaves)
    chunk_len = LoopLayout.make(plan, n_steps, chunk_steps, 1).chunk_len
    parts = _memory_parts(net, plan, n_steps, chunk_len, leaves, names, vois, qs, np.dtype(net.dtype).itemsize)
    out = {what: int(b) * int(batch) for what, b in parts}
    out["total"] = sum(out.values())
    return out


def _memory_parts(net, plan, n_steps, chunk_len, monitors, names, vois, qs, itemsize) -> list[tuple[str, int]]:
    """``(what, bytes)`` of the largest arrays of one simulation (see :func:`memory_estimate`)."""
    N, n_svar, n_cvar, H = net.n_regions, net.model.n_svar, net.model.n_cvar, plan.horizon
    count = lambda n: f"{n}" if n < 100_000 else f"{n:.3g}"
    history = f"the initial delay history of {N} regions x {n_svar} variables x {count(H)} steps"
    buffer = f"the delay buffer of {N} regions x {n_cvar} variables x {count(H + chunk_len)} steps, twice"
    parts = [(history, H * n_svar * N * itemsize), (buffer, 2 * N * n_cvar * (H + chunk_len) * itemsize)]
    for name, mon, voi, q in zip(names, monitors, vois, qs, strict=True):
        shape = (n_steps // q, *mon.sample_shape(len(voi), N))
        parts.append((f"the outputs of {name}, {' x '.join(map(count, shape))}", math.prod(shape) * itemsize))
    return parts


def _fmt_bytes(b: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if b >= size:
            return f"{b / size:.3g} {unit}"
    return f"{b:.0f} bytes"


def memory_limit(max_memory: float | None = None) -> tuple[float, str]:
    """The byte limit :func:`simulate` enforces, and where it comes from: `max_memory`, else :data:`MAX_MEMORY`, else
    :data:`MEMORY_FRACTION` of the RAM (``os.sysconf``, or ``psutil`` when installed) and of an accelerator's
    memory; ``inf`` when neither is known."""
    if max_memory is not None or MAX_MEMORY is not None:
        limit = max_memory if max_memory is not None else MAX_MEMORY
        if isinstance(limit, bool) or not (isinstance(limit, int | float | np.number) and limit > 0):
            raise ValueError(f"simulate: max_memory must be a positive number of bytes (or math.inf), got {limit!r}.")
        return float(limit), "max_memory" if max_memory is not None else "vbtjax.simulate.MAX_MEMORY"
    limit, source = math.inf, "unknown RAM"
    ram = _host_memory()
    if ram:
        limit, source = MEMORY_FRACTION * ram, f"{MEMORY_FRACTION:.0%} of this machine's {_fmt_bytes(ram)} of RAM"
    if jax.default_backend() != "cpu":
        stats = jax.devices()[0].memory_stats() or {}
        if stats.get("bytes_limit") and MEMORY_FRACTION * stats["bytes_limit"] < limit:
            device = f"{_fmt_bytes(stats['bytes_limit'])} of {jax.devices()[0].device_kind} memory"
            limit, source = MEMORY_FRACTION * stats["bytes_limit"], f"{MEMORY_FRACTION:.0%} of the {device}"
    return limit, source


def _host_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        try:
            import psutil

            return int(psutil.virtual_memory().total)
        except ImportError:
            return None


def _check_memory(parts, max_memory, net: Network, plan: DelayPlan) -> None:
    total = sum(b for _, b in parts)
    limit, source = memory_limit(max_memory)
    if total <= limit:
        return
    listed = "; ".join(f"{what}: {_fmt_bytes(b)}" for what, b in sorted(parts, key=lambda p: -p[1]) if b)
    if parts[0][1] + parts[1][1] >= total / 2:
        speed = f"{float(net.speed):.4g} mm/ms" if is_concrete(net.speed) else "traced"
        hint = (
            f"the longest delay is {(plan.horizon - 1) * plan.dt:.4g} ms (speed {speed}): check the speed's units "
            "(mm/ms = m/s) and the lengths (mm), or use a larger dt"
        )
    else:
        hint = "record less: a monitor with a longer period, fewer variables_of_interest, or a shorter t1"
    raise MemoryError(
        f"simulate: this run needs about {_fmt_bytes(total)} ({listed}), more than the limit of {_fmt_bytes(limit)} "
        f"({source}); {hint}. To run it anyway raise the limit: simulate(..., max_memory=bytes) (math.inf: none)."
    )


def _check_finite(ys: list, final, finite, ts: list, names, check: str):
    """NaN/inf in the outputs (`finite`: from :func:`_finite_rows`): a NonFiniteWarning, a NonFiniteError
    (``check="raise"``), or a runtime error under a transformation (``"raise"`` only; ``"warn"`` cannot see traced
    values)."""
    if check == "off":
        return ys, final
    advice = (
        "the simulation diverged: use a smaller dt, check the parameters (coupling strength, noise), the history and "
        "the model's bounds"
    )
    rows, final_ok = finite
    if not all(is_concrete(x) for x in (*rows, final_ok)):
        if check == "raise":
            ok = jnp.all(jnp.stack([jnp.all(r) for r in rows])) & final_ok
            ys, final = eqx.error_if((ys, final), ~ok, f"simulate: the output contains NaN or inf; {advice}.")
        return ys, final
    rows, final_ok = jax.device_get(finite)
    found = [
        f"{name} from t = {float(t[int(np.argmin(ok))]):g} ms on"
        for name, ok, t in zip(names, rows, ts, strict=True)
        if not ok.all()
    ]
    if not found and not final_ok:
        found.append("the final state")
    if found:
        text = f"simulate: the output contains NaN or inf ({', '.join(found)}); {advice}."
        if check == "raise":
            raise NonFiniteError(text)
        warnings.warn(text + " simulate(..., check='off') silences this.", NonFiniteWarning, stacklevel=3)
    return ys, final
