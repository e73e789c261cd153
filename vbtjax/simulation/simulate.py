"""Integrate a delayed network: :func:`simulate` and its result :class:`Solution`.

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
import warnings
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PyTree

from .._params import is_concrete
from ..network import Network, _pattern_or_none, plan_for, traced_lags
from ..noise import step_increments
from ..observation.monitors import AbstractMonitor, Raw
from .delays import NESTED_ABOVE as NESTED_ABOVE  # noqa: F401  (documented here: checkpoint_levels)
from .delays import DelayPlan, EdgePattern, LoopLayout, longest_delay_ms
from .solvers import Heun, NetworkTerm, NoiseTerm, is_tvb_solver

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
    """

    ts: PyTree[Float[Array, " T"]]
    ys: PyTree[Float[Array, "T ..."]]
    final_state: Float[Array, "n_svar N"]
    dt: float = eqx.field(static=True)
    n_steps: int = eqx.field(static=True)
    horizon: int = eqx.field(static=True)
    block: int = eqx.field(static=True)


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
    progress: bool = False,
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
    - `progress`: show a progress bar (one update per chunk).
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
    checked = _check_arguments(net, solver, monitors, key, chunk_steps, checkpoint_levels, check)
    solver, leaves, mon_tree, names = checked
    pattern = _pattern_or_none(net.connectome, net.speed, net.speed_range)
    trusted = pattern is not None
    plan = net.delay_plan(dt) if trusted else _traced_plan(net, dt)
    _warn_instantaneous(plan, pattern if trusted else net.edges, net)
    qs = tuple(m.istep(dt) for m in leaves)
    _check_periods(names, leaves, qs, n_steps, dt)
    vois = tuple(m.voi_indices(net.model.state_variables) for m in leaves)
    layout = LoopLayout.make(plan, n_steps, chunk_steps, unroll, checkpoint_levels)
    _n_steps(t1, dt, padded=layout.n_chunks * layout.chunk_len + layout.block + max(qs))  # the loops count further
    dtype = net.dtype
    _check_memory(
        _memory_parts(net, plan, n_steps, layout.chunk_len, leaves, names, vois, qs, dtype.itemsize),
        max_memory,
        net,
        plan,
    )

    key_hist = key_noise = None
    if key is not None:
        key_hist, key_noise = jax.random.split(key)
    hist = initial_history(net, dt, history, key=key_hist if history is None else None, dtype=dtype)
    ys, final, finite = _run(net, hist, key_noise, solver, tuple(leaves), plan, layout, qs, vois, trusted, progress)
    ts = [jnp.asarray(m.sample_times(n_steps // q, dt), hist.dtype) for m, q in zip(leaves, qs, strict=True)]
    ys, final = _check_finite(list(ys), final, finite, ts, names, check)
    return Solution(
        ts=jax.tree.unflatten(mon_tree, ts),
        ys=jax.tree.unflatten(mon_tree, ys),
        final_state=final,
        dt=float(dt),
        n_steps=n_steps,
        horizon=plan.horizon,
        block=plan.block,
    )


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
            stacklevel=3,
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
                stacklevel=3,
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
    concrete = _pattern_or_none(net.connectome, net.speed, net.speed_range) is not None
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


@eqx.filter_jit
def _run(net, hist, key, solver, monitors, plan, layout, qs, vois, trusted, progress):
    """The monitor outputs, the final state, and which of their samples are finite (for the check after the run:
    computed in the same program, so an eager check costs no second dispatch; unused ones are dropped under jit)."""
    ys, final = _loop(net, hist, key, solver, monitors, plan, layout, qs, vois, trusted, progress)
    return ys, final, _finite_rows(ys, final)


def _loop(net, hist, key, solver, monitors, plan, layout, qs, vois, trusted, progress):
    model, cpl, noise = net.model, net.coupling, net.noise
    dtype = hist.dtype
    N = plan.n_regions
    K, C, H = layout.block, layout.blocks_per_chunk, plan.horizon
    L = layout.chunk_len
    T = layout.n_steps
    dt = plan.dt
    cvar = np.asarray(model.cvar)
    n_cvar = cvar.size
    tvb_solver = is_tvb_solver(solver)
    source_only = type(cpl).source_only
    # pre(x_i, x_j) = pre_source(x_j) + pre_target(x_i): the delayed sum goes through the flat source-only path, plus
    # the local term (sum_j W_ij) pre_target(x_i) with the row sums of the delayed weights
    separable = not source_only and type(cpl).separable
    flat_edges = source_only or separable
    edge_cpl = cpl.for_edges()
    interp = plan.mode == "interpolate"
    width = K + 1 if interp else K  # buffer columns read per edge and block

    rows = np.arange(N)[:, None]
    W = net.connectome.weights.astype(dtype)
    w_delayed = jnp.where(plan.delayed_valid, W[rows, plan.delayed_src], 0.0)  # (N, P)
    w_instant = jnp.where(plan.instant_valid, W[rows, plan.instant_src], 0.0)  # (N, P0)
    if flat_edges:  # flat edge list, one window per (cvar, edge), summed per target
        e_src, e_tgt, e_D = plan.edge_source, plan.edge_target, plan.edge_D
        w_edges = W[e_tgt, e_src]  # (E,)
        flat_cpl = jax.tree.map(lambda p: p[e_tgt][:, None] if getattr(p, "ndim", 0) == 1 else p, cpl)
    else:  # row-wise (ELL) layout, so that pre(x_i, x_j) broadcasts the target's state
        e_src, e_tgt, e_D = plan.delayed_src, np.broadcast_to(rows, plan.delayed_src.shape), plan.delayed_D
    # the delay buffer's rows are region-major (row j * n_cvar + k holds coupling variable k of region j), so that one
    # (n_cvar, width) slice per edge reads all its coupling variables, edges leading: no transposes around the
    # gather and the per-target sum (measured: they cost more than the gather and the sum themselves)
    src_rows = jnp.asarray(e_src.reshape(-1) * n_cvar, jnp.int32)

    hist, lags, frac, frac_inst = _edge_lags(net, hist, plan, K, (e_src, e_tgt, e_D), flat_edges, trusted)
    # starting column of each edge's window, relative to the block's first new column (>= 0 in the chunk's buffer:
    # lags <= H - 1, or H - 2 when interpolating)
    back = lags.reshape(-1) + (2 if interp else 1)

    # the last H states of the coupling variables, time contiguous, oldest first: (N * n_cvar, H). Within a chunk the
    # buffer is (N * n_cvar, H + L): column H - 1 + r holds the state r steps after the chunk's start.
    hist_c = _buffer_rows(_rows(hist, cvar, axis=1))
    y0 = hist[-1]
    y_prev0 = hist[-2] if interp else None

    def read_windows(buf, col0):
        """Each edge's window of its source's coupling variables: (n_edges, n_cvar, width)."""
        starts = jnp.stack([src_rows, col0 - back], axis=1)
        return jax.lax.gather(buf, starts, _READ_WINDOWS, (n_cvar, width), mode="clip")

    def interpolate(v, w):
        """Window values v[..., i] = x(n0 + i - d - 1) -> delayed values (1 - w) x(n - d) + w x(n - d - 1)."""
        return v[..., 1:] + w[..., None] * (v[..., :-1] - v[..., 1:]) if interp else v

    def coupling_sum(pre_fn, weights, x_j):
        return jnp.sum(weights * pre_fn(x_j), axis=-1)

    w_rowsum = jnp.sum(w_delayed, axis=-1)  # (N,): the delayed edges' weights (separable couplings)
    diagonal_instant = plan.instant_is_diagonal
    w_diag = w_instant[:, 0]
    f_diag = frac_inst[:, 0]

    def step(carry, xs):
        y, y_prev, n = carry
        xc = _rows(y, cvar)
        if diagonal_instant:  # self-connections only: no gather
            xs_self = xc if not interp else xc + f_diag * (_rows(y_prev, cvar) - xc)
            gx = w_diag * (cpl.pre(xc, xs_self) if not source_only else cpl.pre(None, xs_self))
        else:
            xj = xc[:, plan.instant_src]
            if interp:
                xj = xj + frac_inst * (_rows(y_prev, cvar)[:, plan.instant_src] - xj)
            gx = coupling_sum(lambda v: edge_cpl.pre(xc[:, :, None], v), w_instant, xj)
        if flat_edges:
            gx = gx + xs["gx"]
            if separable:
                gx = gx + w_rowsum * cpl.pre_target(xc)
        else:
            gx = gx + coupling_sum(lambda v: edge_cpl.pre(xc[:, :, None], v), w_delayed, xs["xd"])
        c = cpl.post(gx)
        if "stim" in xs:
            c = (c, xs["stim"])
        t = (n * dt).astype(dtype)
        drift = NetworkTerm(model)
        terms = drift if noise is None else diffrax.MultiTerm(drift, NoiseTerm(noise, xs["dW"]))
        y1 = solver.step(terms, t, t + dt, y, c, None, True)[0]
        if not tvb_solver:
            y1 = model.bound(y1)
        if layout.padded:
            y1 = jnp.where(n < T, y1, y)  # steps past the end (last chunk) leave the state unchanged
        return (y1, y if interp else None, n + 1), y1

    # each step under its own checkpoint: reverse mode keeps only the steps' inputs and recomputes a step within the
    # backward iteration that needs it, instead of stacking a dozen per-step intermediates in the chunk's recomputation
    # and slicing them back out block by block (each a separate XLA kernel): measured 13-20 % faster gradients; no
    # effect on the forward run or forward mode (docs/design.md)
    step_ckpt = jax.checkpoint(step, prevent_cse=False)

    def block(carry, _):
        y, y_prev, n, col0, buf = carry
        xs = {}
        if plan.n_delayed:
            xd = read_windows(buf, col0)  # (E, n_cvar, width)
            if flat_edges:
                xd = interpolate(xd, frac[:, None])  # (E, n_cvar, K)
                pre = jnp.moveaxis(flat_cpl.pre_source(jnp.moveaxis(xd, 1, 0)), 0, 1)  # (E, n_out, K)
                gx = jax.ops.segment_sum(w_edges[:, None, None] * pre, e_tgt, num_segments=N, indices_are_sorted=True)
                xs["gx"] = jnp.transpose(gx, (2, 1, 0))  # (K, n_out, N)
            else:
                xd = interpolate(xd.reshape(N, -1, n_cvar, width), frac[..., None])  # (N, P, n_cvar, K)
                xs["xd"] = jnp.transpose(xd, (3, 2, 0, 1))  # (K, n_cvar, N, P)
        elif flat_edges:
            xs["gx"] = jnp.zeros((K, cpl.n_out(n_cvar), N), dtype)
        else:
            xs["xd"] = jnp.zeros((K, n_cvar, N, 1), dtype)
        if net.stimulus:
            times = ((n + jnp.arange(K)) * dt).astype(dtype)
            xs["stim"] = jax.vmap(net.stimulus_at)(times)
        if noise is not None:
            xs["dW"] = step_increments(key, n + jnp.arange(K), (model.n_svar, N), dt, dtype)
        (y, y_prev, n), ys = jax.lax.scan(step_ckpt, (y, y_prev, n), xs, unroll=layout.unroll)
        new = _buffer_rows(_rows(ys, cvar, axis=1))
        # columns col0 .. col0 + K - 1 are still zero: adding writes them, and transposes without zeroing (see top)
        buf = jax.lax.scatter_add(
            buf, col0[None, None], new[None], _WRITE_COLUMNS, indices_are_sorted=True, unique_indices=True
        )
        return (y, y_prev, n, col0 + K, buf), ys

    def chunk(carry, c_index):
        y, y_prev, n, hist_c, mstates = carry
        n_start = n
        buf = jnp.concatenate([hist_c, jnp.zeros((hist_c.shape[0], L), hist_c.dtype)], axis=1)
        col0 = jnp.asarray(H, jnp.int32)
        (y, y_prev, n, _, buf), ys = jax.lax.scan(block, (y, y_prev, n, col0, buf), None, length=C)
        hist_c = buf[:, L:]
        ys = ys.reshape((L,) + ys.shape[2:])
        outs, new_states = [], []
        for mon, voi, ms in zip(monitors, vois, mstates, strict=True):
            ms, samples = mon.chunk(ms, _rows(ys, voi, axis=1), n_start, dt)
            new_states.append(ms)
            outs.append(samples)
        if progress:
            jax.debug.callback(_progress_update, c_index, layout.n_chunks, ordered=False)
        return (y, y_prev, n, hist_c, tuple(new_states)), tuple(outs)

    mstates0 = tuple(mon.init(y0[np.asarray(voi)], dt) for mon, voi in zip(monitors, vois, strict=True))
    carry0 = (y0, y_prev0, jnp.asarray(0, jnp.int32), hist_c, mstates0)
    (y_final, *_), stacked = _scan_chunks(jax.checkpoint(chunk), carry0, layout)
    return _samples_in_order(stacked, qs, layout), y_final


def _scan_chunks(chunks, carry0, layout: LoopLayout):
    """``lax.scan`` of the (checkpointed) chunk function over the run's chunks: ``(final carry, stacked outputs)``
    with outputs ``(n_chunks, ...)``. With ``layout.group > 1``, two levels: reverse mode keeps one carry per group,
    then one per chunk of the group being reversed."""
    if layout.group == 1:
        return jax.lax.scan(chunks, carry0, jnp.arange(layout.n_chunks))

    def group(carry, c_indices):
        return jax.lax.scan(chunks, carry, c_indices)

    c_indices = jnp.arange(layout.n_chunks).reshape(-1, layout.group)
    carry, stacked = jax.lax.scan(jax.checkpoint(group), carry0, c_indices)
    return carry, jax.tree.map(lambda x: x.reshape((layout.n_chunks,) + x.shape[2:]), stacked)


def _samples_in_order(stacked, qs, layout: LoopLayout) -> tuple:
    """Each monitor's ``(n_chunks, n_slots, ...)`` outputs -> its samples in time order (unused slots dropped)."""
    outputs = []
    for q, mb in zip(qs, stacked, strict=True):
        S = mb.shape[1]
        flat = mb.reshape((layout.n_chunks * S,) + mb.shape[2:])
        index = layout.sample_index(q, S)
        contiguous = np.array_equal(index, np.arange(index.size))
        outputs.append(flat[: index.size] if contiguous else flat[index])  # a slice does not copy
    return tuple(outputs)


def _edge_lags(net, hist, plan: DelayPlan, K: int, edges, flat_edges: bool, trusted: bool):
    """``(hist, lags, frac, frac_inst)``: the delayed edges' lags in steps and fractional parts, and the instant
    edges' fractional parts. Lags are static from the plan when the values were concrete, else from the traced values,
    checked at run time (on `hist`) with an error that names the bad value; fractional parts always come from the
    traced values (gradients)."""
    e_src, e_tgt, e_D = edges
    dtype = hist.dtype
    rows = np.arange(plan.n_regions)[:, None]
    D_traced, frac = traced_lags(net, plan, e_src, e_tgt)
    D_inst, frac_inst = traced_lags(net, plan, plan.instant_src, np.broadcast_to(rows, plan.instant_src.shape))
    frac_inst = jnp.where(plan.instant_valid, frac_inst, 0.0).astype(dtype)
    if trusted:
        return hist, jnp.asarray(e_D, jnp.int32), frac.astype(dtype), frac_inst
    valid = np.ones(e_D.shape, bool) if flat_edges else plan.delayed_valid
    top = plan.horizon - (2 if plan.mode == "interpolate" else 1)
    fits = jnp.all(jnp.where(valid, (D_traced >= K) & (D_traced <= top), True))
    fits = fits & jnp.all(jnp.where(plan.instant_valid, D_inst == 0, True))
    lengths = net.connectome.lengths
    bad_speed = ~(net.speed > 0)  # NaN too
    bad_lengths = ~jnp.all(jnp.where(net.connectome.weights != 0, jnp.isfinite(lengths) & (lengths >= 0), True))
    served = f"speed_range={net.speed_range}" if net.speed_range else "the speed it was built with"
    messages = (
        "simulate: the network's speed is not a positive number (a traced value <= 0 or NaN): conduction speeds are "
        "in mm/ms and must be > 0 (inf removes the delays).",
        "simulate: the connectome's lengths (traced) contain NaN, inf or negative values on connected edges: tract "
        "lengths are finite, >= 0 mm.",
        f"simulate: the traced speed or lengths give delays outside the network's delay layout, which serves lags of "
        f"{K} to {top} steps of dt={plan.dt:g} ms (delays of about {K * plan.dt:g} to {top * plan.dt:g} ms; laid out "
        f"for {served} when the Network was built, outside jit/vmap). Give the Network a speed_range=(slowest, "
        "fastest) covering the speeds you will use, or build it with these lengths.",
    )
    index = jnp.where(bad_speed, 0, jnp.where(bad_lengths, 1, 2))
    hist = eqx.branched_error_if(hist, bad_speed | bad_lengths | ~fits, index, messages)
    return hist, D_traced, frac.astype(dtype), frac_inst


def _finite_rows(ys, final):
    """Per output, whether each sample is finite; and whether the final state is."""
    rows = [jnp.all(jnp.isfinite(y).reshape(y.shape[0], -1), axis=1) for y in ys]
    return rows, jnp.all(jnp.isfinite(final))


def _buffer_rows(x):
    """``(T, n_cvar, N)`` states -> ``(N * n_cvar, T)`` delay-buffer columns (region-major rows)."""
    T, n_cvar, N = x.shape
    return jnp.transpose(x, (2, 1, 0)).reshape(N * n_cvar, T)


_READ_WINDOWS = jax.lax.GatherDimensionNumbers(offset_dims=(1, 2), collapsed_slice_dims=(), start_index_map=(0, 1))
"""Gather of one (n_cvar, width) window per edge from the delay buffer: rows from the source's first row, columns from
the window's start."""

_WRITE_COLUMNS = jax.lax.ScatterDimensionNumbers(
    update_window_dims=(1, 2), inserted_window_dims=(), scatter_dims_to_operand_dims=(1,)
)
"""Scatter of one (rows, K) window at a column offset: the block's write into the chunk's delay buffer."""


def _rows(x, index, axis: int = 0):
    """``x`` at the given indices of ``axis``: a static slice when they are consecutive (a gather's transpose in
    reverse mode is a scatter; a slice's is a pad, which fuses)."""
    index = np.asarray(index)
    if index.size and np.array_equal(index, np.arange(index[0], index[0] + index.size)):
        return jax.lax.slice_in_dim(x, int(index[0]), int(index[0]) + index.size, axis=axis)
    return jnp.take(x, index, axis=axis)


_BARS: dict = {}


def _progress_update(c_index, n_chunks):
    from tqdm.auto import tqdm

    c = int(c_index)
    bar = _BARS.get("sim")
    if bar is None or c == 0:
        if bar is not None:
            bar.close()
        bar = _BARS["sim"] = tqdm(total=int(n_chunks), desc="simulate", unit="chunk", leave=False)
    bar.update(1)
    if c + 1 >= int(n_chunks):
        bar.close()
        _BARS.pop("sim", None)
