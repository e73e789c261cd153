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
horizon and the block length. It is computed with NumPy from concrete values.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math

import numpy as np

MAX_BLOCK = 64
"""Longest block (steps) evaluated with one bulk gather from the delay buffer."""


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


def discretise(delays_ms: np.ndarray, dt: float) -> np.ndarray:
    """TVB's delay discretisation: ``rint(delays / dt)`` (round half to even), int32 steps."""
    return np.rint(np.asarray(delays_ms, dtype=np.float64) / dt).astype(np.int32)


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
        if mode == "round":
            lags = lambda ms: discretise(ms, dt)
        elif mode == "interpolate":
            lags = lambda ms: np.floor(np.asarray(ms, dtype=np.float64) / dt).astype(np.int32)
        else:
            raise ValueError(f"delay mode must be 'round' (TVB) or 'interpolate', got {mode!r}.")
        D, D_short, D_long = lags(pattern.delays_ms), lags(pattern.shortest_ms), lags(pattern.longest_ms)
        mask = pattern.mask
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
