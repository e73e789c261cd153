"""The integration loop of :func:`~vbtjax.simulate`: chunks of blocks of steps over a linear delay buffer.

Loop structure (see :mod:`vbtjax.delays` for why it is exact): an outer ``lax.scan`` over *chunks* (each under
``jax.checkpoint``, so reverse-mode memory grows with the number of chunks, not of steps), a ``lax.scan`` over *blocks*
of ``K`` steps (one bulk gather of delayed values from the chunk's delay buffer per block), and an inner ``lax.scan``
over the steps of a block, each calling a Diffrax solver's ``step`` with the coupling held constant over the step (TVB)
and each under its own ``jax.checkpoint`` (reverse mode keeps a step's inputs, not its intermediates).
Monitors are updated chunk by chunk and keep only their samples.

The delay buffer is linear within a chunk, not a ring: a chunk starts from the last ``H`` states of the coupling
variables (its carry), appends zero columns for its ``L`` steps, and each block *adds* its new states into its own
(still zero) columns. Reads are then contiguous windows without wrap-around, and the transpose of an addition is the
identity, so reverse mode needs no zeroing of the buffer's cotangent: with a ring (overwrite, plus a mirrored copy of
the first columns) XLA copied the whole cotangent buffer three times per block (``docs/design.md``).

:func:`run` takes the network's parts and a :class:`LoopConfig` of the run's static settings; the step, block and
chunk functions are built by ``_step_fn``, ``_block_fn`` and ``_chunk_fn`` around the values they share (``_Loop``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..network import Network, traced_lags
from ..noise import step_increments
from .delays import DelayPlan, LoopLayout
from .solvers import NetworkTerm, NoiseTerm, is_tvb_solver

__all__ = ["LoopConfig", "run"]


class LoopConfig(eqx.Module):
    """The static settings of one run's loops (all static: they are part of the jit cache key).

    **Fields:**
    - `plan`: the delay plan (edges, lags in steps, horizon, block length).
    - `layout`: blocks, chunks and checkpoint groups of the run.
    - `qs`: steps per sample of each monitor.
    - `vois`: the recorded state variables of each monitor.
    - `trusted`: the lags in the plan come from concrete values (else they are recomputed from the traced speed and
      lengths and checked at run time).
    - `progress`: update a progress bar after every chunk.
    """

    plan: DelayPlan = eqx.field(static=True)
    layout: LoopLayout = eqx.field(static=True)
    qs: tuple[int, ...] = eqx.field(static=True)
    vois: tuple[tuple[int, ...], ...] = eqx.field(static=True)
    trusted: bool = eqx.field(static=True)
    progress: bool = eqx.field(static=True)


@eqx.filter_jit
def run(net, hist, key, solver, monitors, config: LoopConfig):
    """The monitor outputs, the final state, and which of their samples are finite (for the check after the run:
    computed in the same program, so an eager check costs no second dispatch; unused ones are dropped under jit)."""
    ys, final = _loop(net, hist, key, solver, monitors, config)
    return ys, final, _finite_rows(ys, final)


class _Loop(NamedTuple):
    """What the step, block and chunk functions of one run share: the network's parts, the static layout and the
    edges' traced weights and lags. Built once per trace by :func:`_prepare`, closed over by the loop functions."""

    net: Network
    solver: diffrax.AbstractSolver
    key: jax.Array | None
    config: LoopConfig
    cvar: np.ndarray  # the model's coupling variables
    dtype: Any
    source_only: bool  # pre ignores the target (flat edge list, one segment_sum per block)
    separable: bool  # pre = pre_source(x_j) + pre_target(x_i): the flat path plus a local term
    flat_edges: bool  # source_only or separable; else a row-padded (ELL) layout that broadcasts the target's state
    edge_cpl: Any  # the coupling with per-region parameters laid out for (N, P) edges
    flat_cpl: Any  # the coupling with per-region parameters per flat edge (flat path only)
    e_tgt: np.ndarray  # target of each delayed edge (flat path: sorted)
    src_rows: jax.Array  # first delay-buffer row of each edge's source
    back: jax.Array  # start column of each edge's window, relative to the block's first new column
    frac: jax.Array  # fractional lags of the delayed edges (interpolate mode)
    frac_inst: jax.Array  # fractional lags of the zero-delay edges
    w_edges: jax.Array | None  # (E,) weights of the flat edges
    w_delayed: jax.Array  # (N, P) weights of the delayed edges, row-padded
    w_instant: jax.Array  # (N, P0) weights of the zero-delay edges, row-padded
    w_rowsum: jax.Array  # (N,) the delayed edges' weights per target (separable couplings)
    dense_lags: tuple  # distinct lags (steps) of the delayed edges when they are few: one matmul per lag and block
    w_dense: jax.Array | None  # (n_lags, N, N) the delayed weights per lag (dense path)
    w_inst_dense: jax.Array | None  # (N, N) the zero-delay weights (dense path for flat couplings)

    @property
    def interp(self) -> bool:
        return self.config.plan.mode == "interpolate"

    @property
    def width(self) -> int:
        """Buffer columns read per edge and block."""
        return self.config.layout.block + 1 if self.interp else self.config.layout.block


def _loop(net, hist, key, solver, monitors, config: LoopConfig):
    """Integrate: the monitors' samples in time order and the final state (see the module's docstring)."""
    ctx, hist = _prepare(net, hist, key, solver, config)
    layout, vois, dt = config.layout, config.vois, config.plan.dt
    # the last H states of the coupling variables, time contiguous, oldest first: (N * n_cvar, H). Within a chunk the
    # buffer is (N * n_cvar, H + L): column H - 1 + r holds the state r steps after the chunk's start.
    hist_c = _buffer_rows(_rows(hist, ctx.cvar, axis=1))
    y0 = hist[-1]
    y_prev0 = hist[-2] if ctx.interp else None
    # the solver's state: the compensation of the state update below float64 (solvers.compensated_add); Diffrax's own
    # solvers get made_jump=True every step and keep no state here
    comp0 = solver.init(NetworkTerm(net.model), 0.0, dt, y0, None) if is_tvb_solver(solver) else None
    chunk = _chunk_fn(ctx, monitors, _block_fn(ctx, _step_fn(ctx)))
    mstates0 = tuple(mon.init(y0[np.asarray(voi)], dt) for mon, voi in zip(monitors, vois, strict=True))
    carry0 = ((y0, comp0), y_prev0, jnp.asarray(0, jnp.int32), hist_c, mstates0)
    ((y_final, _), *_), stacked = _scan_chunks(jax.checkpoint(chunk), carry0, layout)
    return _samples_in_order(stacked, config.qs, layout), y_final


def _prepare(net, hist, key, solver, config: LoopConfig) -> tuple[_Loop, Any]:
    """The loop's shared values: the edge layout (flat or row-padded), weights and lags; and `hist`, with the run-time
    check of traced lags attached (see :func:`_edge_lags`)."""
    plan, K = config.plan, config.layout.block
    cpl, dtype, N = net.coupling, hist.dtype, plan.n_regions
    n_cvar = len(net.model.cvar)
    source_only = type(cpl).source_only
    # pre(x_i, x_j) = pre_source(x_j) + pre_target(x_i): the delayed sum goes through the flat source-only path, plus
    # the local term (sum_j W_ij) pre_target(x_i) with the row sums of the delayed weights
    separable = not source_only and type(cpl).separable
    flat_edges = source_only or separable
    rows = np.arange(N)[:, None]
    W = net.connectome.weights.astype(dtype)
    w_delayed = jnp.where(plan.delayed_valid, W[rows, plan.delayed_src], 0.0)  # (N, P)
    w_instant = jnp.where(plan.instant_valid, W[rows, plan.instant_src], 0.0)  # (N, P0)
    w_edges = flat_cpl = None
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
    hist, lags, frac, frac_inst = _edge_lags(net, hist, plan, K, (e_src, e_tgt, e_D), flat_edges, config.trusted)
    # starting column of each edge's window, relative to the block's first new column (>= 0 in the chunk's buffer:
    # lags <= H - 1, or H - 2 when interpolating)
    back = lags.reshape(-1) + (2 if plan.mode == "interpolate" else 1)
    dense_lags, w_dense, w_inst_dense = _dense_weights(W, cpl, plan, flat_edges, config.trusted)
    ctx = _Loop(
        net=net,
        solver=solver,
        key=key,
        config=config,
        cvar=np.asarray(net.model.cvar),
        dtype=dtype,
        source_only=source_only,
        separable=separable,
        flat_edges=flat_edges,
        edge_cpl=cpl.for_edges(),
        flat_cpl=flat_cpl,
        e_tgt=e_tgt,
        src_rows=src_rows,
        back=back,
        frac=frac,
        frac_inst=frac_inst,
        w_edges=w_edges,
        w_delayed=w_delayed,
        w_instant=w_instant,
        w_rowsum=jnp.sum(w_delayed, axis=-1),
        dense_lags=dense_lags,
        w_dense=w_dense,
        w_inst_dense=w_inst_dense,
    )
    return ctx, hist


DENSE_MAX_LAGS = 8
"""Most distinct lags for which the delayed coupling is one (N, N) matmul per lag and block instead of a gather."""

DENSE_GATHER_COST = 8
"""A gathered edge costs about this many multiply-adds of a matmul (CPU): the dense path is taken when
``n_lags * N**2 <= DENSE_GATHER_COST * n_edges``."""


def _dense_weights(W, cpl, plan: DelayPlan, flat_edges: bool, trusted: bool):
    """``(lags, (n_lags, N, N) weights, (N, N) zero-delay weights)`` for the dense path (round mode, static lags,
    a flat coupling with scalar parameters), else ``((), None, None)`` (and None for the zero-delay weights when
    they are the diagonal only)."""
    N = plan.n_regions
    scalar = all(getattr(p, "ndim", 0) == 0 for p in jax.tree.leaves(cpl))
    if not (flat_edges and scalar and plan.mode == "round" and trusted):
        return (), None, None
    w_inst = None
    if plan.n_instant and not plan.instant_is_diagonal and N * N <= DENSE_GATHER_COST * plan.n_instant:
        mask = np.zeros((N, N), bool)
        rows = np.broadcast_to(np.arange(N)[:, None], plan.instant_src.shape)
        mask[rows[plan.instant_valid], plan.instant_src[plan.instant_valid]] = True
        w_inst = jnp.where(mask, W, 0.0)
    lags = np.unique(plan.edge_D) if plan.n_delayed else np.zeros(0, int)
    if not lags.size or lags.size > DENSE_MAX_LAGS or lags.size * N * N > DENSE_GATHER_COST * plan.n_delayed:
        return (), None, w_inst
    masks = []
    for d in lags:
        m = np.zeros((N, N), bool)
        sel = plan.edge_D == d
        m[plan.edge_target[sel], plan.edge_source[sel]] = True
        masks.append(m)
    return tuple(int(d) for d in lags), jnp.where(np.stack(masks), W[None], 0.0), w_inst


def _step_fn(ctx: _Loop):
    """One integration step ``(((y, comp), y_prev, n), xs) -> (((y1, comp1), y_prev1, n + 1), y1)``: the zero-delay
    edges from the current state, plus the block's delayed input ``xs["gx"]`` (flat) or ``xs["xd"]`` (row-padded),
    the stimulus and the noise increment; the coupling is held constant over the step (TVB). ``comp`` is the solver's
    state (the compensation of a compensated update, or ``None``). Time is ``n dt`` (never accumulated)."""
    net, plan, cvar, interp = ctx.net, ctx.config.plan, ctx.cvar, ctx.interp
    model, cpl, noise, solver = net.model, net.coupling, net.noise, ctx.solver
    dt, T, dtype = plan.dt, ctx.config.layout.n_steps, ctx.dtype
    tvb_solver = is_tvb_solver(solver)
    w_diag, f_diag = ctx.w_instant[:, 0], ctx.frac_inst[:, 0]

    def coupling_sum(pre_fn, weights, x_j):
        return jnp.sum(weights * pre_fn(x_j), axis=-1)

    def step(carry, xs):
        (y, comp), y_prev, n = carry
        xc = _rows(y, cvar)
        if ctx.w_inst_dense is not None:  # zero-delay edges of a flat coupling: one matvec
            gx = jnp.einsum("ij,oj->oi", ctx.w_inst_dense, cpl.pre(None, xc) if ctx.source_only else cpl.pre_source(xc))
            if not ctx.source_only:
                gx = gx + jnp.sum(ctx.w_inst_dense, axis=1) * cpl.pre_target(xc)
        elif plan.instant_is_diagonal:  # self-connections only: no gather
            xs_self = xc if not interp else xc + f_diag * (_rows(y_prev, cvar) - xc)
            gx = w_diag * (cpl.pre(xc, xs_self) if not ctx.source_only else cpl.pre(None, xs_self))
        else:
            xj = xc[:, plan.instant_src]
            if interp:
                xj = xj + ctx.frac_inst * (_rows(y_prev, cvar)[:, plan.instant_src] - xj)
            gx = coupling_sum(lambda v: ctx.edge_cpl.pre(xc[:, :, None], v), ctx.w_instant, xj)
        if ctx.flat_edges:
            gx = gx + xs["gx"]
            if ctx.separable:
                gx = gx + ctx.w_rowsum * cpl.pre_target(xc)
        else:
            gx = gx + coupling_sum(lambda v: ctx.edge_cpl.pre(xc[:, :, None], v), ctx.w_delayed, xs["xd"])
        c = cpl.post(gx)
        if "stim" in xs:
            c = (c, xs["stim"])
        t = (n * dt).astype(dtype)
        drift = NetworkTerm(model, dt)  # the step itself, not t1 - t0 (rounded in float32)
        terms = drift if noise is None else diffrax.MultiTerm(drift, NoiseTerm(noise, xs["dW"]))
        if tvb_solver:
            y1, _, _, comp1, _ = solver.step(terms, t, t + dt, y, c, comp, True)
        else:
            y1, comp1 = model.bound(solver.step(terms, t, t + dt, y, c, None, True)[0]), None
        if ctx.config.layout.padded:  # steps past the end (last chunk) leave the state unchanged
            y1, comp1 = jax.tree.map(lambda new, old: jnp.where(n < T, new, old), (y1, comp1), (y, comp))
        return ((y1, comp1), y if interp else None, n + 1), y1

    return step


def _delayed_inputs(ctx: _Loop, buf, col0) -> dict:
    """A block's delayed coupling input, read from the chunk's delay buffer in one gather: ``{"gx": (K, n_out, N)}``
    (the per-target sums, flat path) or ``{"xd": (K, n_cvar, N, P)}`` (the delayed values, row-padded path)."""
    plan, K, N, n_cvar = ctx.config.plan, ctx.config.layout.block, ctx.config.plan.n_regions, ctx.cvar.size
    if not plan.n_delayed:
        if ctx.flat_edges:
            return {"gx": jnp.zeros((K, ctx.net.coupling.n_out(n_cvar), N), ctx.dtype)}
        return {"xd": jnp.zeros((K, n_cvar, N, 1), ctx.dtype)}
    if ctx.dense_lags:  # one (N, N) matmul per distinct lag: the windows of all regions, read as slices
        gx = 0.0
        for w, d in zip(ctx.w_dense, ctx.dense_lags, strict=True):
            x = jax.lax.dynamic_slice_in_dim(buf, col0 - (d + 1), K, axis=1).reshape(N, n_cvar, K)
            pre = ctx.net.coupling.pre_source(jnp.moveaxis(x, 1, 0))  # (n_out, N, K)
            gx = gx + jnp.einsum("ij,ojk->koi", w, pre)
        return {"gx": gx}
    # each edge's window of its source's coupling variables: (n_edges, n_cvar, width)
    starts = jnp.stack([ctx.src_rows, col0 - ctx.back], axis=1)
    xd = jax.lax.gather(buf, starts, _READ_WINDOWS, (n_cvar, ctx.width), mode="clip")
    if ctx.flat_edges:
        xd = _interpolate(ctx, xd, ctx.frac[:, None])  # (E, n_cvar, K)
        pre = jnp.moveaxis(ctx.flat_cpl.pre_source(jnp.moveaxis(xd, 1, 0)), 0, 1)  # (E, n_out, K)
        gx = jax.ops.segment_sum(ctx.w_edges[:, None, None] * pre, ctx.e_tgt, num_segments=N, indices_are_sorted=True)
        return {"gx": jnp.transpose(gx, (2, 1, 0))}  # (K, n_out, N)
    xd = _interpolate(ctx, xd.reshape(N, -1, n_cvar, ctx.width), ctx.frac[..., None])  # (N, P, n_cvar, K)
    return {"xd": jnp.transpose(xd, (3, 2, 0, 1))}  # (K, n_cvar, N, P)


def _interpolate(ctx: _Loop, v, w):
    """Window values v[..., i] = x(n0 + i - d - 1) -> delayed values (1 - w) x(n - d) + w x(n - d - 1)."""
    return v[..., 1:] + w[..., None] * (v[..., :-1] - v[..., 1:]) if ctx.interp else v


def _block_fn(ctx: _Loop, step):
    """One block of ``K`` steps ``(((y, comp), y_prev, n, col0, buf), None) -> (carry, (K, n_svar, N) states)``: the
    delayed inputs in one gather, the steps, then the block's new states added into its (still zero) buffer columns."""
    net, K, dt, dtype = ctx.net, ctx.config.layout.block, ctx.config.plan.dt, ctx.dtype
    model, noise, N = net.model, net.noise, ctx.config.plan.n_regions
    # each step under its own checkpoint: reverse mode keeps only the steps' inputs and recomputes a step within the
    # backward iteration that needs it, instead of stacking a dozen per-step intermediates in the chunk's recomputation
    # and slicing them back out block by block (each a separate XLA kernel): measured 13-20 % faster gradients; no
    # effect on the forward run or forward mode (docs/design.md)
    step_ckpt = jax.checkpoint(step, prevent_cse=False)

    def block(carry, _):
        state, y_prev, n, col0, buf = carry  # state: (y, comp)
        xs = _delayed_inputs(ctx, buf, col0)
        if net.stimulus:
            times = ((n + jnp.arange(K)) * dt).astype(dtype)
            xs["stim"] = jax.vmap(net.stimulus_at)(times)
        if noise is not None:
            xs["dW"] = step_increments(ctx.key, n + jnp.arange(K), (model.n_svar, N), dt, dtype)
        (state, y_prev, n), ys = jax.lax.scan(step_ckpt, (state, y_prev, n), xs, unroll=ctx.config.layout.unroll)
        new = _buffer_rows(_rows(ys, ctx.cvar, axis=1))
        # columns col0 .. col0 + K - 1 are still zero: adding writes them, and transposes without zeroing (see top)
        buf = jax.lax.scatter_add(
            buf, col0[None, None], new[None], _WRITE_COLUMNS, indices_are_sorted=True, unique_indices=True
        )
        return (state, y_prev, n, col0 + K, buf), ys

    return block


def _chunk_fn(ctx: _Loop, monitors, block):
    """One chunk ``(((y, comp), y_prev, n, hist_c, monitor states), c_index) -> (carry, monitor outputs)``: a linear
    delay buffer of the last ``H`` states plus the chunk's ``L`` zero columns, its blocks, and the monitors' update."""
    layout, H, dt = ctx.config.layout, ctx.config.plan.horizon, ctx.config.plan.dt
    L, C = layout.chunk_len, layout.blocks_per_chunk

    def chunk(carry, c_index):
        state, y_prev, n, hist_c, mstates = carry
        n_start = n
        buf = jnp.concatenate([hist_c, jnp.zeros((hist_c.shape[0], L), hist_c.dtype)], axis=1)
        col0 = jnp.asarray(H, jnp.int32)
        (state, y_prev, n, _, buf), ys = jax.lax.scan(block, (state, y_prev, n, col0, buf), None, length=C)
        hist_c = buf[:, L:]
        ys = ys.reshape((L,) + ys.shape[2:])
        outs, new_states = [], []
        for mon, voi, ms in zip(monitors, ctx.config.vois, mstates, strict=True):
            ms, samples = mon.chunk(ms, _rows(ys, voi, axis=1), n_start, dt)
            new_states.append(ms)
            outs.append(samples)
        if ctx.config.progress:
            jax.debug.callback(_progress_update, c_index, layout.n_chunks, ordered=False)
        return (state, y_prev, n, hist_c, tuple(new_states)), tuple(outs)

    return chunk


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
