"""Monitors: pure stream transforms of the simulated states.

A monitor sees every integration step (``update``) and emits a sample every ``period`` ms (``sample``), like TVB's
monitors and like optax's ``init``/``update`` pairs. Only the samples are kept, so the memory of a long run is the
monitor outputs plus the delay buffer.
"""

from __future__ import annotations

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PyTree


def as_tuple(v):
    """``None`` or a tuple: the converter of monitors' ``variables_of_interest`` (a list becomes hashable, static)."""
    return v if v is None else tuple(v)


class AbstractMonitor(eqx.Module):
    """Base class of monitors.

    **Fields:**
    - `period`: sampling period in ms (``None``: every step). Must be a whole multiple of ``dt``.
    - `variables_of_interest`: names or indices of the state variables to record (``None``: all of them).
    """

    period: float | None = eqx.field(default=None, static=True)
    variables_of_interest: tuple | None = eqx.field(default=None, static=True, converter=as_tuple)

    def __check_init__(self):
        if self.period is not None and (
            isinstance(self.period, bool | np.bool_) or not (self.period > 0 and math.isfinite(self.period))
        ):
            raise ValueError(f"{type(self).__name__}: period must be a positive number of ms, got {self.period!r}.")

    # ---------------------------------------------------------------- static helpers
    def istep(self, dt: float) -> int:
        """Steps per sample, ``period / dt`` (1 when ``period`` is None)."""
        if self.period is None:
            return 1
        q = round(self.period / dt)
        if q < 1 or abs(q * dt - self.period) > 1e-6 * max(self.period, dt):
            raise ValueError(
                f"{type(self).__name__}: period={self.period} ms is not a whole multiple of dt={dt} ms; "
                f"choose a period such as {max(q, 1) * dt:g} ms."
            )
        return q

    def voi_indices(self, state_variables: tuple[str, ...]) -> tuple[int, ...]:
        """Indices of the recorded state variables."""
        if self.variables_of_interest is None:
            return tuple(range(len(state_variables)))
        out = []
        for v in self.variables_of_interest:
            if isinstance(v, str):
                if v not in state_variables:
                    raise ValueError(
                        f"{type(self).__name__}: unknown variable of interest {v!r}; the model has {state_variables}."
                    )
                out.append(state_variables.index(v))
            else:
                if not 0 <= int(v) < len(state_variables):
                    raise ValueError(
                        f"{type(self).__name__}: variable index {v} out of range for {len(state_variables)} variables."
                    )
                out.append(int(v))
        return tuple(out)

    def sample_shape(self, n_voi: int, n_regions: int) -> tuple[int, ...]:
        """Shape of one sample, given the number of recorded variables and of regions (for memory estimates)."""
        return (n_voi, n_regions)

    def sample_times(self, n_samples: int, dt: float) -> np.ndarray:
        """Times (ms after t0) of the samples; sample ``k`` ends at step ``(k + 1) * istep``."""
        q = self.istep(dt)
        return (np.arange(1, n_samples + 1) * q) * dt

    # ---------------------------------------------------------------- stream transform
    def n_slots(self, q: int, chunk_len: int) -> int:
        """Most samples one chunk of ``chunk_len`` steps can end: ``ceil(chunk_len / q)``."""
        return -(-chunk_len // q)

    @abc.abstractmethod
    def init(self, x: Float[Array, "n_voi N"], dt: float) -> PyTree:
        """Initial monitor state, given the recorded variables at t0 and the integration step ``dt`` (ms)."""

    @abc.abstractmethod
    def chunk(
        self, mstate: PyTree, xs: Float[Array, "L n_voi N"], n_start: Int[Array, ""], dt: float
    ) -> tuple[PyTree, Float[Array, "S ..."]]:
        """Consume the states of one chunk of steps and return ``(new_state, samples)``.

        ``xs[m]`` is the recorded state after step ``n_start + m + 1`` (steps counted from 1; ``n_start`` is traced,
        ``dt`` in ms is static). Sample ``j`` of the returned ``(n_slots(q, L), ...)`` array, ``q = istep(dt)``, must be
        the one that ends at the ``j``-th multiple of ``q`` after ``n_start``; slots past the end of the chunk are
        ignored, so their content does not matter.
        """


def sample_positions(n_start, q: int, n_slots: int, chunk_len: int):
    """Positions in a chunk of the steps that end samples: ``pos0 + j q`` (clipped to the chunk)."""
    pos0 = ((n_start + q) // q) * q - n_start - 1
    return jnp.minimum(pos0 + q * jnp.arange(n_slots), chunk_len - 1)


class Raw(AbstractMonitor):
    """Every integration step: ``ys`` has shape ``(T, n_voi, N)``, times ``dt, 2 dt, ..., T dt`` (ms after t0)."""

    def __check_init__(self):
        if self.period is not None:
            raise ValueError("Raw: records every step and takes no period; use SubSample(period=...) instead.")

    def init(self, x, dt):
        return None

    def chunk(self, mstate, xs, n_start, dt):
        return mstate, xs


class SubSample(AbstractMonitor):
    """The state at every ``period`` ms (TVB's ``SubSample``): sample ``k`` is the state at ``(k + 1) * period``."""

    period: float | None = eqx.field(default=None, static=True)

    def init(self, x, dt):
        return None

    def chunk(self, mstate, xs, n_start, dt):
        q = self.istep(dt)
        pos = sample_positions(n_start, q, self.n_slots(q, xs.shape[0]), xs.shape[0])
        return mstate, xs[pos]


class TemporalAverage(AbstractMonitor):
    """Mean of the states over each ``period`` ms window (TVB's ``TemporalAverage``).

    Sample ``k`` averages the ``q = period / dt`` states at steps ``k q + 1, ..., (k + 1) q``; its time stamp is
    ``((k + 1) q - q / 2) dt``, as in TVB. TVB numbers its first step after the history length ``H`` and closes a
    window at every step that is a multiple of ``q``, so its windows coincide with these only when
    ``H = 1 (mod q)``; otherwise TVB's first sample averages fewer than ``q`` states (still divided by ``q``) and
    every window is shifted by ``(H - 1) mod q`` steps (``tests/test_monitors_tvb.py``).
    """

    period: float | None = eqx.field(default=1.0, static=True)

    def init(self, x, dt):
        return jnp.zeros_like(x)  # sum over the window still open at the chunk boundary

    def chunk(self, mstate, xs, n_start, dt):
        q = self.istep(dt)
        L = xs.shape[0]
        S = self.n_slots(q, L)
        m = jnp.arange(L)
        seg = (n_start + m) // q - n_start // q  # window of each step, 0 = the window open at n_start
        sums = jax.ops.segment_sum(xs, seg, num_segments=S + 1)
        sums = sums.at[0].add(mstate)
        open_end = (n_start + L) % q != 0
        carry = jnp.where(open_end, sums[seg[-1]], jnp.zeros_like(mstate))
        return carry, sums[:S] / q

    def sample_times(self, n_samples, dt):
        q = self.istep(dt)
        return (np.arange(1, n_samples + 1) * q - 0.5 * q) * dt
