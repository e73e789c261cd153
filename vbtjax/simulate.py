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
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PyTree

from . import delays as _delays
from ._params import is_concrete
from .delays import DelayPlan
from .monitors import AbstractMonitor, Raw
from .network import Network, _pattern_or_none, _plan, traced_lags
from .noise import step_increments
from .solvers import Heun, NetworkTerm, NoiseTerm, is_tvb_solver

__all__ = ["simulate", "Solution", "initial_history"]

CHUNK_STEPS = 1000
"""Default steps per checkpointed chunk."""

NESTED_ABOVE = 256
"""With ``checkpoint_levels=None``, runs of more chunks than this checkpoint groups of chunks too (two levels)."""


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


def _is_monitor(x) -> bool:
    return isinstance(x, AbstractMonitor)


def _n_steps(t1: float, dt: float) -> int:
    if not (isinstance(dt, int | float) and math.isfinite(dt) and dt > 0):
        raise ValueError(f"simulate: dt must be a positive time step in ms (e.g. 0.1), got {dt!r}.")
    if not (isinstance(t1, int | float) and math.isfinite(t1) and t1 > 0):
        raise ValueError(f"simulate: t1 must be a positive duration in ms, got {t1!r}.")
    n = round(t1 / dt)
    if n < 1 or abs(n * dt - t1) > 1e-6 * max(t1, dt):
        raise ValueError(
            f"simulate: t1={t1} ms is not a whole number of steps of dt={dt} ms; use t1={max(n, 1) * dt:g}."
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

    State-variable bounds are applied to the history, as TVB does.
    """
    model = net.model
    n = net.n_regions
    H = net.horizon(dt)
    dtype = dtype or jnp.result_type(float)
    if history is None:
        x0 = model.default_state(n, dtype) if key is None else model.random_state(key, n, dtype)
        return jnp.broadcast_to(x0, (H, model.n_svar, n))
    hist = jnp.asarray(history)
    if not jnp.issubdtype(hist.dtype, jnp.floating):
        hist = hist.astype(dtype)
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
) -> Solution:
    """Simulate a network from t0 = 0 to ``t1`` ms with fixed step ``dt`` ms.

    **Arguments:**
    - `net`: the :class:`~vbtjax.Network`.
    - `t1`: duration in ms (a whole number of steps).
    - `dt`: integration step in ms.
    - `history`: initial history, see :func:`initial_history`; e.g. an ``(H, n_svar, N)`` array, oldest first,
      last row the state at t0 (TVB's ``initial_conditions``).
    - `solver`: :class:`~vbtjax.Heun` (default), :class:`~vbtjax.Euler`, :class:`~vbtjax.RK4`, or any Diffrax
      solver (its ``step`` is called with the coupling held fixed over the step; bounds applied after it).
      With noise, the same solver integrates the SDE.
    - `monitors`: one monitor or a dict/list/tuple of monitors (default ``{"raw": Raw()}``).
      ``Solution.ts`` and ``Solution.ys`` have the same structure.
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

    Works under ``jax.jit``, ``jax.vmap`` and ``jax.grad`` with respect to any model, coupling, noise or connectome
    parameter. Delays use TVB's discretisation ``rint(lengths / speed / dt)``, so they are piecewise constant in
    ``speed`` and ``lengths``.
    """
    n_steps = _n_steps(t1, dt)
    if not isinstance(net, Network):
        raise TypeError(f"simulate: net must be a vbtjax.Network, got {type(net).__name__}.")
    solver = Heun() if solver is None else solver
    if not isinstance(solver, diffrax.AbstractSolver):
        raise TypeError(
            f"simulate: solver must be a Diffrax solver such as vbtjax.Heun(), got {type(solver).__name__}."
        )
    monitors = {"raw": Raw()} if monitors is None else monitors
    leaves, mon_tree = jax.tree.flatten(monitors, is_leaf=_is_monitor)
    if not leaves or not all(_is_monitor(m) for m in leaves):
        raise TypeError("simulate: monitors must be a monitor or a dict/list/tuple of vbtjax.monitors objects.")
    if net.noise is not None and key is None:
        raise ValueError("simulate: the network has noise, so a key is required: simulate(..., key=jax.random.key(0)).")
    if chunk_steps < 1:
        raise ValueError(f"simulate: chunk_steps must be >= 1, got {chunk_steps}.")
    if checkpoint_levels not in (None, 1, 2):
        raise ValueError(f"simulate: checkpoint_levels must be None, 1 or 2, got {checkpoint_levels!r}.")

    pattern = _pattern_or_none(net.connectome, net.speed, net.speed_range)
    trusted = pattern is not None
    plan = net.delay_plan(dt) if trusted else _traced_plan(net, dt)
    key_hist = key_noise = None
    if key is not None:
        key_hist, key_noise = jax.random.split(key)
    hist = initial_history(net, dt, history, key=key_hist if history is None else None)

    qs = tuple(m.istep(dt) for m in leaves)
    vois = tuple(m.voi_indices(net.model.state_variables) for m in leaves)
    layout = _Layout.make(plan, n_steps, chunk_steps, unroll, checkpoint_levels)
    ys, final = _run(net, hist, key_noise, solver, tuple(leaves), plan, layout, qs, vois, trusted, progress)
    ts = [jnp.asarray(m.sample_times(n_steps // q, dt), hist.dtype) for m, q in zip(leaves, qs, strict=True)]
    return Solution(
        ts=jax.tree.unflatten(mon_tree, ts),
        ys=jax.tree.unflatten(mon_tree, list(ys)),
        final_state=final,
        dt=float(dt),
        n_steps=n_steps,
        horizon=plan.horizon,
        block=plan.block,
    )


def _traced_plan(net: Network, dt: float) -> DelayPlan:
    if net.edges is None:
        raise ValueError(
            "simulate: the network's connectome/speed are traced and the network was built under a transformation, "
            "so its delays are unknown; build the Network outside jit/vmap."
        )
    return _plan(net.edges, float(dt), _delays.MAX_BLOCK, net.delay_mode)


class _Layout(eqx.Module):
    """Static loop layout: blocks of K steps, C blocks per chunk, n_chunks chunks (in checkpointed groups of
    ``group`` chunks when ``group > 1``), inner-loop unrolling."""

    block: int
    blocks_per_chunk: int
    n_chunks: int
    n_steps: int
    unroll: int
    group: int = 1

    @classmethod
    def make(cls, plan: DelayPlan, n_steps: int, chunk_steps: int, unroll: int, levels: int | None = 1) -> _Layout:
        K = plan.block
        n_blocks = -(-n_steps // K)
        c0 = max(1, chunk_steps // K)
        # prefer a chunk length that divides the run exactly (no padded steps to mask), else pad the last chunk
        exact = [c for c in range(max(1, c0 // 2), 2 * c0 + 1) if n_blocks % c == 0]
        C = min(exact, key=lambda c: abs(c - c0)) if exact else -(-n_blocks // -(-n_blocks // c0))
        n_chunks = -(-n_blocks // C)
        group = 1
        if (levels == 2 or (levels is None and n_chunks > NESTED_ABOVE)) and n_chunks >= 4:
            # groups of ~sqrt(n_chunks) chunks: a divisor when there is one near it, else pad with masked chunks
            s = math.sqrt(n_chunks)
            exact = [
                g
                for g in range(max(2, math.ceil(s / 3)), min(n_chunks - 1, math.floor(3 * s)) + 1)
                if n_chunks % g == 0
            ]
            group = min(exact, key=lambda g: abs(g - s)) if exact else math.ceil(s)
            n_chunks = -(-n_chunks // group) * group
        return cls(K, C, n_chunks, n_steps, max(1, min(unroll, K)), group)

    @property
    def padded(self) -> bool:
        """True when the loops run past ``n_steps`` (those steps are masked)."""
        return self.n_chunks * self.chunk_len != self.n_steps

    @property
    def chunk_len(self) -> int:
        return self.block * self.blocks_per_chunk

    def sample_index(self, q: int, n_slots: int) -> np.ndarray:
        """Flat indices into the stacked ``(n_chunks * n_slots)`` monitor outputs of the samples, in time order."""
        L = self.chunk_len
        out = []
        for c in range(self.n_chunks):
            count = min(c * L + L, self.n_steps) // q - (c * L) // q
            out.extend(c * n_slots + np.arange(max(count, 0)))
        return np.asarray(out, dtype=np.int64)


@eqx.filter_jit
def _run(net, hist, key, solver, monitors, plan, layout, qs, vois, trusted, progress):
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

    # lags of the delayed edges: static from the plan when the values were concrete, else from the traced values
    # (checked against the buffer layout at run time); fractional parts always from the traced values (gradients)
    D_traced, frac = traced_lags(net, plan, e_src, e_tgt)
    frac = frac.astype(dtype)
    D_inst, frac_inst = traced_lags(net, plan, plan.instant_src, np.broadcast_to(rows, plan.instant_src.shape))
    frac_inst = jnp.where(plan.instant_valid, frac_inst, 0.0).astype(dtype)
    if trusted:
        lags = jnp.asarray(e_D, jnp.int32)
    else:
        lags = D_traced
        valid = np.ones(e_D.shape, bool) if flat_edges else plan.delayed_valid
        top = H - (2 if interp else 1)
        ok = jnp.all(jnp.where(valid, (lags >= K) & (lags <= top), True))
        ok = ok & jnp.all(jnp.where(plan.instant_valid, D_inst == 0, True))
        hist = eqx.error_if(
            hist,
            ~ok,
            "simulate: the network's delays (lengths / speed / dt) no longer fit the delay layout it was built with "
            f"(lags between {K} and {top} steps); under jit/vmap the layout comes from the values at construction: "
            "give the Network a speed_range=(slowest, fastest) covering the speeds you will use.",
        )
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
    chunks = jax.checkpoint(chunk)
    if layout.group == 1:
        (y_final, *_), stacked = jax.lax.scan(chunks, carry0, jnp.arange(layout.n_chunks))
    else:  # two levels: reverse mode keeps one carry per group, then one per chunk of the group being reversed

        def group(carry, c_indices):
            return jax.lax.scan(chunks, carry, c_indices)

        c_indices = jnp.arange(layout.n_chunks).reshape(-1, layout.group)
        (y_final, *_), stacked = jax.lax.scan(jax.checkpoint(group), carry0, c_indices)
        stacked = jax.tree.map(lambda x: x.reshape((layout.n_chunks,) + x.shape[2:]), stacked)
    outputs = []
    for q, mb in zip(qs, stacked, strict=True):
        S = mb.shape[1]
        flat = mb.reshape((layout.n_chunks * S,) + mb.shape[2:])
        index = layout.sample_index(q, S)
        contiguous = np.array_equal(index, np.arange(index.size))
        outputs.append(flat[: index.size] if contiguous else flat[index])  # a slice does not copy
    return tuple(outputs), y_final


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
