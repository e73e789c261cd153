"""Conduction delays: TVB's discretisation and the layout of the delay buffer.

Delays are ``tau[i, j] = lengths[i, j] / speed`` (ms). Two delay modes:

- ``"round"`` (TVB): ``D = rint(tau / dt)`` steps (round half to even); the coupling at step ``n`` reads source ``j``
  at ``n - D[i, j]``; ``D = 0`` reads the current state. Piecewise constant in speed and lengths.
- ``"interpolate"``: the fractional lag ``lam = tau / dt`` is split into ``d = floor(lam)`` and ``w = lam - d``, and
  the delayed value is ``(1 - w) x(n - d) + w x(n - d - 1)`` (linear interpolation between buffer slots). It is
  continuous and piecewise linear in speed and lengths, so gradients with respect to conduction speed are non-zero.

The simulator advances in *blocks* of ``K`` steps where ``K`` is the shortest non-zero delay (in steps, capped): within
a block no edge with ``D >= K`` can see a state computed in that block, so all its delayed values are gathered from the
delay buffer at once, and only the zero-delay edges (self-connections) are evaluated step by step. This is exact, not
an approximation, and it is what makes the simulator fast.

:class:`DelayPlan` holds the static (shape-determining) part of this: which edges exist, their delays in steps, the
horizon and the block length. It is computed with NumPy from concrete values. :class:`LoopLayout` lays a run's steps
out in blocks and chunks (each chunk a linear delay buffer of the last ``H`` states plus its own steps).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math

import equinox as eqx
import numpy as np

from .._params import is_concrete

MAX_BLOCK = 64
"""Longest block (steps) evaluated with one bulk gather from the delay buffer."""

NESTED_ABOVE = 256
"""With ``checkpoint_levels=None``, runs of more chunks than this checkpoint groups of chunks too (two levels)."""

MAX_DELAY_STEPS = 2**30
"""Longest delay in steps a delay buffer may hold: the buffer is indexed with int32 (up to ``2**31 - 1``), which must
also hold the horizon plus a chunk of steps. A delay this long (over a day of simulated time at ``dt = 0.1`` ms) is
a unit mistake (speeds are in mm/ms, i.e. m/s), and it would need gigabytes per region long before it overflowed."""


@dataclasses.dataclass(frozen=True, eq=False)
class EdgePattern:
    """Static description of a connectome's edges: the non-zero weights and their delays in ms.

    Hashable by content, so that it can live in a static field of an Equinox module (jit cache key).
    """

    mask: np.ndarray  # (N, N) bool, W != 0
    delays_ms: np.ndarray  # (N, N) float64, lengths / speed (0 where speed is inf)
    shortest_ms: np.ndarray  # (N, N) delays at the fastest speed the layout must serve
    longest_ms: np.ndarray  # (N, N) delays at the slowest speed the layout must serve

    @classmethod
    def from_arrays(cls, weights, lengths, speed, speed_range=None) -> EdgePattern:
        w = np.asarray(weights, dtype=np.float64)
        ln = np.asarray(lengths, dtype=np.float64)
        lo, hi = (speed, speed) if speed_range is None else speed_range
        delays, shortest, longest = (
            np.zeros_like(ln) if math.isinf(float(v)) else ln / float(v) for v in (speed, hi, lo)
        )
        mask = w != 0
        for a in (mask, delays, shortest, longest):
            a.setflags(write=False)
        return cls(mask=mask, delays_ms=delays, shortest_ms=shortest, longest_ms=longest)

    @property
    def n_regions(self) -> int:
        return self.mask.shape[0]

    def _key(self) -> bytes:
        if not hasattr(self, "_digest"):
            h = hashlib.sha1(self.mask.tobytes())
            for a in (self.delays_ms, self.shortest_ms, self.longest_ms):
                h.update(a.tobytes())
            object.__setattr__(self, "_digest", h.digest())
        return self._digest

    def __hash__(self):
        return hash(self._key())

    def __eq__(self, other):
        return isinstance(other, EdgePattern) and self._key() == other._key()


def pattern_or_none(connectome, speed, speed_range=None) -> EdgePattern | None:
    """The :class:`EdgePattern` of a connectome (anything with ``weights`` and ``lengths``) at `speed` (mm/ms), or
    ``None`` when one of them is traced (under ``jit``/``vmap``: the pattern is static and needs concrete values).
    A `speed` outside `speed_range` (set after construction, e.g. by ``eqx.tree_at``) widens the range to it."""
    leaves = (connectome.weights, connectome.lengths, speed)
    if not all(is_concrete(x) for x in leaves):
        return None
    speed_value = float(speed)
    if speed_range is not None and not speed_range[0] <= speed_value <= speed_range[1]:
        # a speed set after construction (eqx.tree_at) outside the declared range: lay the buffer out for both
        speed_range = (min(speed_range[0], speed_value), max(speed_range[1], speed_value))
    return EdgePattern.from_arrays(
        np.asarray(connectome.weights), np.asarray(connectome.lengths), speed_value, speed_range
    )


def discretise(delays_ms: np.ndarray, dt: float) -> np.ndarray:
    """TVB's delay discretisation: ``rint(delays / dt)`` (round half to even), int32 steps.

    Computed in float64 and checked before the cast: raises ``ValueError`` (giving the longest delay in ms) when a
    delay is not finite or longer than :data:`MAX_DELAY_STEPS` steps, instead of wrapping around int32."""
    return lag_steps(delays_ms, dt, "round")


def lag_steps(delays_ms: np.ndarray, dt: float, mode: str = "round") -> np.ndarray:
    """Delays in ms -> whole steps of ``dt`` (int32): ``rint`` in ``"round"`` mode (TVB), ``floor`` when
    interpolating. Raises ``ValueError`` naming the longest delay when one is NaN, negative or longer than
    :data:`MAX_DELAY_STEPS` steps (the int32 range of the delay buffer's indices)."""
    ms = np.asarray(delays_ms, dtype=np.float64)
    steps = np.rint(ms / dt) if mode == "round" else np.floor(ms / dt)
    if steps.size and not (np.all(np.isfinite(steps)) and steps.min() >= 0 and steps.max() <= MAX_DELAY_STEPS):
        finite = ms[np.isfinite(ms)]
        if np.isnan(ms).any() or (finite.size and finite.min() < 0):
            raise ValueError(
                "delays (lengths / speed) contain NaN or negative values: lengths must be finite and >= 0 mm and the "
                "speed a positive number of mm/ms."
            )
        longest = float(np.max(ms))
        raise ValueError(
            f"the longest conduction delay is {longest:.4g} ms, {longest / dt:.4g} steps of dt={dt:g} ms: more than a "
            f"delay buffer can hold ({MAX_DELAY_STEPS:.3g} steps). Check the speed's units (mm/ms = m/s; typical "
            "values 1-20) and the lengths (mm)."
        )
    return steps.astype(np.int32)


def longest_delay_ms(pattern: EdgePattern) -> float:
    """The longest delay (ms) among the pattern's edges at the slowest speed it serves (0 without edges)."""
    d = pattern.longest_ms[pattern.mask]
    return float(d.max()) if d.size else 0.0


def _ell(mask: np.ndarray, values: np.ndarray, fill: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row-wise padded (ELL) layout of the True entries of ``mask``: sources (N, P), values (N, P), valid (N, P)."""
    n = mask.shape[0]
    counts = mask.sum(axis=1)
    p = max(int(counts.max()) if n else 0, 1)
    src = np.tile(np.arange(n, dtype=np.int32)[:, None], (1, p))
    val = np.full((n, p), fill, dtype=np.int32)
    valid = np.zeros((n, p), dtype=bool)
    for i in range(n):
        (js,) = np.nonzero(mask[i])
        src[i, : js.size] = js
        val[i, : js.size] = values[i, js]
        valid[i, : js.size] = True
    return src, val, valid


@dataclasses.dataclass(frozen=True, eq=False)
class DelayPlan:
    """The static structure of a delayed network for one ``dt``.

    Edges with ``D >= 1`` ("delayed") and ``D = 0`` ("instant") are stored row-wise (ELL layout): row ``i`` lists the
    sources of target ``i``, padded with invalid entries of weight 0. The delayed edges are also listed flat
    (``edge_target``, ``edge_source``, ``edge_D``, sorted by target), which is faster for couplings whose ``pre``
    ignores the target's state.

    **Attributes:** `n_regions`; `dt` (ms); `mode` (``"round"`` or ``"interpolate"``); `horizon` ``H`` (history rows
    needed: ``max(D) + 1`` over existing edges, ``+ 2`` when interpolating);
    `block` ``K`` (steps per bulk gather);
    `delayed_src`, `delayed_D`, `delayed_valid` (N, P); `instant_src`, `instant_valid` (N, P0).
    """

    n_regions: int
    dt: float
    mode: str
    horizon: int
    block: int
    delayed_src: np.ndarray
    delayed_D: np.ndarray
    delayed_valid: np.ndarray
    instant_src: np.ndarray
    instant_valid: np.ndarray
    edge_target: np.ndarray
    edge_source: np.ndarray
    edge_D: np.ndarray

    @classmethod
    def build(cls, pattern: EdgePattern, dt: float, max_block: int = MAX_BLOCK, mode: str = "round") -> DelayPlan:
        if mode not in ("round", "interpolate"):
            raise ValueError(f"delay mode must be 'round' (TVB) or 'interpolate', got {mode!r}.")
        mask = pattern.mask
        # only the edges' delays matter (lengths under zero weights are never read), and they are checked
        D, D_short, D_long = (
            np.where(mask, lag_steps(np.where(mask, ms, 0.0), dt, mode), 0)
            for ms in (pattern.delays_ms, pattern.shortest_ms, pattern.longest_ms)
        )
        delayed = mask & (D_short > 0)
        instant = mask & (D_long == 0)
        if np.any(mask & (D_short == 0) & (D_long > 0)):
            raise ValueError(
                "the speed range is too wide for this dt: some tracts have a zero delay at the fastest speed and a "
                "non-zero one at the slowest; narrow speed_range or reduce dt."
            )
        extra = 1 if mode == "round" else 2  # interpolation also reads the slot before the lag
        horizon = int(D_long[mask].max()) + extra if mask.any() else extra
        block = int(min(D_short[delayed].min(), max_block)) if delayed.any() else max_block
        block = 1 << (block.bit_length() - 1)  # a power of two: XLA's CPU loops vectorise those best (measured)
        d_src, d_D, d_valid = _ell(delayed, D, fill=block)
        i_src, _, i_valid = _ell(instant, D, fill=0)
        tgt, src = np.nonzero(delayed)  # row-major: sorted by target
        return cls(
            n_regions=pattern.n_regions,
            dt=float(dt),
            mode=mode,
            horizon=horizon,
            block=block,
            delayed_src=d_src,
            delayed_D=d_D,
            delayed_valid=d_valid,
            instant_src=i_src,
            instant_valid=i_valid,
            edge_target=tgt.astype(np.int32),
            edge_source=src.astype(np.int32),
            edge_D=D[tgt, src].astype(np.int32),
        )

    @property
    def n_delayed(self) -> int:
        return int(self.delayed_valid.sum())

    @property
    def instant_is_diagonal(self) -> bool:
        """True when the only zero-delay edges are self-connections (one per row at most)."""
        n = self.n_regions
        return self.instant_src.shape[1] == 1 and bool(
            np.all(np.where(self.instant_valid[:, 0], self.instant_src[:, 0] == np.arange(n), True))
        )

    @property
    def n_instant(self) -> int:
        return int(self.instant_valid.sum())

    # identity semantics: plans are cached per (pattern, dt); hashing by id is enough and cheap
    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        return self is other


class LoopLayout(eqx.Module):
    """The static loop layout of a simulation (:func:`vbtjax.simulate`): blocks of K steps, C blocks per chunk,
    n_chunks chunks (in checkpointed groups of ``group`` chunks when ``group > 1``), inner-loop unrolling."""

    block: int
    blocks_per_chunk: int
    n_chunks: int
    n_steps: int
    unroll: int
    group: int = 1

    @classmethod
    def make(cls, plan: DelayPlan, n_steps: int, chunk_steps: int, unroll: int, levels: int | None = 1) -> LoopLayout:
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


@functools.lru_cache(maxsize=64)
def cached_plan(pattern: EdgePattern, dt: float, max_block: int = MAX_BLOCK, mode: str = "round") -> DelayPlan:
    """:meth:`DelayPlan.build`, cached by the pattern's content (a network's plan is asked for several times per
    simulation); refuses a `dt` that is not a positive finite number of ms."""
    if not (dt > 0 and math.isfinite(dt)):
        raise ValueError(f"dt must be a positive time step in ms, got {dt}.")
    return DelayPlan.build(pattern, dt, max_block=max_block, mode=mode)
