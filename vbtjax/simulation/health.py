"""Is a simulated time series meaningful? :func:`assess` detects the degenerate outputs that make a functional
connectivity (FC) matrix or a figure meaningless, and says in one sentence each what went wrong and what to change.

The checks, in order (a diverged run stops there):

- ``nonfinite``: NaN or inf anywhere (the integration diverged).
- ``blowup``: finite, but beyond :data:`BLOWUP` in magnitude (diverging; the next steps would overflow).
- ``fixed_point``: every channel constant after the transient (standard deviation below `rtol` times the signal's
  scale, the largest magnitude or range over the whole record); the FC is undefined.
- ``flat_channels``: some channels constant: their FC rows are NaN.
- ``collapse``: the activity dies out, or falls to a quiet state: over the last fifth of the analysed window the
  median standard deviation is below `collapse_ratio` times that of its first fifth (dying out), or below
  :data:`QUIET_RATIO` times the range of the channels during the transient while no two channels correlate above
  :data:`QUIET_FC` (only noise is left: e.g. a bistable network fallen to its down state during the transient).
- ``saturation``: most channels pinned at a bound given in `bounds` (e.g. ``S = 1`` of a Wong-Wang model).
- ``uniform_fc``: every pair of channels correlates above :data:`UNIFORM_FC` (lockstep or a shared drift: the FC has
  no structure).

Runs too short to judge (fewer than :data:`MIN_SAMPLES` samples after the transient) pass, with a note; the
collapse and FC checks need :data:`MIN_STAT_SAMPLES` (a short run is still in its initial transient).
Everything is computed in NumPy float64 on the host: call it on concrete arrays, outside ``jax.jit``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["Health", "assess", "fc_of", "ADVICE", "MIN_SAMPLES", "MIN_STAT_SAMPLES", "BLOWUP", "UNIFORM_FC"]

MIN_SAMPLES = 10
"""Fewest samples after the transient for the checks beyond ``nonfinite``/``blowup`` (fewer: a note, no verdict)."""
MIN_STAT_SAMPLES = 50
"""Fewest samples after the transient for the ``collapse`` and ``uniform_fc`` checks."""
QUIET_RATIO = 0.1
"""Late spread below this fraction of a channel's range during the transient (medians over channels): quiet, if ..."""
QUIET_FC = 0.2
"""... no two channels correlate above this (the fluctuations left are the noise's)."""
BLOWUP = 1e8
"""Magnitude above which finite values count as a blow-up (no model of vbtjax has state values near it)."""
UNIFORM_FC = 0.98
"""Smallest off-diagonal correlation (every pair) for which the FC counts as uniform."""
SATURATED_FRACTION = 0.5
"""Fraction of channels pinned at a bound (in at least 95 % of the samples) that makes a run saturated."""

ADVICE = {
    "nonfinite": "use a smaller dt, a weaker coupling or less noise",
    "blowup": "use a smaller dt or a weaker coupling",
    "fixed_point": "add noise, raise the global coupling, or move the model towards its oscillatory regime",
    "flat_channels": "add noise to every region or raise the global coupling",
    "collapse": "raise the global coupling or the noise",
    "saturation": "lower the global coupling or the external input",
    "uniform_fc": "lower the global coupling or add noise, so that regions do not move in lockstep",
}
"""What to change, by problem code (the first problem's advice is :attr:`Health.suggestion`)."""


@dataclasses.dataclass(frozen=True)
class Health:
    """The verdict of :func:`assess`.

    **Fields:**
    - `ok`: no problem found (``bool(health)`` is the same).
    - `problems`: one plain sentence per problem found, worst first.
    - `codes`: their codes, as in :data:`ADVICE` (``"nonfinite"``, ``"fixed_point"``, ...).
    - `suggestion`: what to change, for the first problem (``""`` when `ok`).
    - `notes`: remarks that are not problems (e.g. a run too short to judge).
    - `stats`: the numbers behind the verdict: ``n_samples``, ``t_start_ms`` (start of the analysed window),
      ``scale``, ``median_sd``, ``flat_channels``, ``collapse_ratio``, ``fc_finite_fraction``, ``fc_min``.
    """

    ok: bool
    problems: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    suggestion: str = ""
    notes: tuple[str, ...] = ()
    stats: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.ok

    def message(self) -> str:
        """One line: the problems and what to change (``"healthy"`` when `ok`)."""
        if self.ok:
            return "healthy" + (f" ({'; '.join(self.notes)})" if self.notes else "")
        text = " ".join(self.problems)
        return f"{text} To fix it: {self.suggestion}." if self.suggestion else text


def assess(
    x: Any,
    ts: Any = None,
    *,
    which: Any = None,
    transient: float | None = None,
    variable: int = 0,
    rtol: float = 1e-5,
    collapse_ratio: float = 0.05,
    bounds: tuple[float, float] | None = None,
    check_fc: bool = True,
) -> Health:
    """Check a simulated time series for degenerate dynamics.

    **Arguments:**
    - `x`: a :class:`~vbtjax.Solution` (its one monitor output, or the one `which` names: a key of ``ys``), or an
      array ``(T, n_var, N)`` (time, variable, channel) or ``(T, N)``.
    - `ts`: sample times ``(T,)`` in ms (taken from the Solution; default ``1, 2, ..., T``).
    - `transient`: ms left out at the start (default: ``min(1000 ms, a quarter of the run)``, as ``vbtjax simulate``;
      the run starts at t = 0).
    - `variable`: which variable the FC, saturation and collapse checks use (the NaN and blow-up checks see all).
    - `rtol`: a channel is constant when its standard deviation is below ``rtol`` times the scale of the variable.
    - `collapse_ratio`: the activity has collapsed when its late spread is below this fraction of its early spread.
    - `bounds`: ``(lo, hi)`` of `variable` (e.g. a model's ``state_variable_boundaries``) for the saturation check.
    - `check_fc`: also check the FC (``uniform_fc``); off for sensor signals, whose channels share sources.

    Returns a :class:`Health`; it never raises on degenerate data.
    """
    times, data = _as_arrays(x, ts, which)
    if transient is None:
        transient = min(1000.0, 0.25 * float(times[-1])) if len(times) else 0.0
    bad = _nonfinite(times, data)
    if bad is not None:
        return bad
    stats: dict[str, Any] = {"n_samples": int(len(times))}
    peak = float(np.max(np.abs(data))) if data.size else 0.0
    if peak > BLOWUP:
        return _verdict(
            [
                (
                    "blowup",
                    f"The activity grew to {peak:.3g}, far beyond any physiological range: the "
                    "integration is unstable.",
                )
            ],
            (),
            stats,
        )
    sig = data[:, variable, :]
    keep = times > transient
    stats["t_start_ms"] = float(transient)
    if int(keep.sum()) < MIN_SAMPLES:
        note = f"too few samples after the transient ({int(keep.sum())} < {MIN_SAMPLES}) to judge the dynamics"
        return Health(ok=True, notes=(note,), stats=stats)
    found = _flatness(sig, keep, rtol, transient, stats)
    if found and found[0][0] == "fixed_point":
        return _verdict(found, (), stats)
    found += _saturation(sig[keep], bounds)
    if int(keep.sum()) < MIN_STAT_SAMPLES:
        note = f"{int(keep.sum())} samples after the transient: too few for the collapse and FC checks"
        return _verdict(found, (note,), stats)
    fc = fc_of(sig[keep])
    found += _collapse(sig, times, keep, fc, collapse_ratio, stats)
    if check_fc:
        found += _uniform_fc(fc, stats)
    return _verdict(found, (), stats)


def fc_of(x: np.ndarray) -> np.ndarray:
    """Pearson correlation between the columns of ``x`` ``(T, N)``: ``(N, N)``, NaN for constant columns."""
    x = np.asarray(x, dtype=np.float64)
    size = np.abs(x).max(axis=0, initial=0.0)
    x = x - x.mean(axis=0)
    sd = np.sqrt((x * x).mean(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = x / np.where(sd > 1e-12 * size, sd, np.nan)  # rounding of the mean leaves ~1e-16 in a constant
        return np.clip((z.T @ z) / max(x.shape[0], 1), -1.0, 1.0)


# ----------------------------------------------------------------------------------------------------------- helpers


def _as_arrays(x: Any, ts: Any, which: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(times (T,), data (T, n_var, N))`` in float64 from a Solution or an array."""
    if hasattr(x, "ys") and hasattr(x, "ts"):
        ys, tss = x.ys, x.ts
        if isinstance(ys, Mapping):
            if which is None:
                if len(ys) != 1:
                    raise ValueError(
                        f"assess: the Solution has {len(ys)} outputs ({', '.join(map(str, ys))}); name one with which="
                    )
                which = next(iter(ys))
            ys, tss = ys[which], tss[which]
        elif isinstance(ys, Sequence):
            ys, tss = ys[which or 0], tss[which or 0]
        x, ts = ys, tss if ts is None else ts
    data = np.asarray(x, dtype=np.float64)
    if data.ndim == 2:
        data = data[:, None, :]
    if data.ndim != 3:
        raise ValueError(f"assess: expected (T, n_var, N) or (T, N) data, got shape {data.shape}")
    times = np.arange(1, data.shape[0] + 1, dtype=np.float64) if ts is None else np.asarray(ts, dtype=np.float64)
    if times.shape != (data.shape[0],):
        raise ValueError(f"assess: {times.shape[0] if times.ndim else 0} times for {data.shape[0]} samples")
    return times, data


def _nonfinite(times: np.ndarray, data: np.ndarray) -> Health | None:
    finite = np.isfinite(data)
    if finite.all():
        return None
    rows = ~finite.reshape(len(times), -1).all(axis=1)
    t_bad = float(times[int(np.argmax(rows))])
    channels = int((~finite).any(axis=(0, 1)).sum())
    sentence = (
        f"The output is not finite (NaN/inf from t = {t_bad:g} ms, in {channels} of {data.shape[2]} "
        "channels): the integration diverged."
    )
    return _verdict([("nonfinite", sentence)], (), {"n_samples": int(len(times)), "t_nonfinite_ms": t_bad})


def _flatness(sig: np.ndarray, keep: np.ndarray, rtol: float, t0: float, stats: dict) -> list[tuple[str, str]]:
    """``fixed_point`` (every channel constant) or ``flat_channels`` (some)."""
    scale = float(max(np.max(np.abs(sig)), np.ptp(sig)))
    sd = sig[keep].std(axis=0)
    flat = sd <= rtol * scale
    stats.update(scale=scale, median_sd=float(np.median(sd)), flat_channels=int(flat.sum()))
    n = sig.shape[1]
    if flat.all():
        return [
            (
                "fixed_point",
                f"Every channel is constant after t = {t0:g} ms (standard deviation below {rtol:g} "
                "of the signal's scale): the network sits at a fixed point, so its FC is undefined (NaN).",
            )
        ]
    if flat.any():
        return [
            (
                "flat_channels",
                f"{int(flat.sum())} of {n} channels are constant after t = {t0:g} ms, so their "
                "rows of the FC are undefined (NaN).",
            )
        ]
    return []


def _collapse(sig, t, keep, fc, ratio: float, stats: dict) -> list[tuple[str, str]]:
    """The late spread (last fifth of the window) against the window's first fifth (dying out) and, when the FC is
    noise, against the range of each channel during the transient (fallen to a quiet state)."""
    w, tw = sig[keep], t[keep]
    k = max(len(w) // 5, 2)
    early = float(np.median(w[:k].std(axis=0)))
    start = float(np.median(np.ptp(sig[~keep], axis=0))) if (~keep).sum() > 1 else 0.0
    late = float(np.median(w[-k:].std(axis=0)))
    off = np.abs(fc[~np.eye(fc.shape[0], dtype=bool)])
    fc_max = float(np.nanmax(off)) if off.size and np.isfinite(off).any() else 0.0
    r, r0 = (late / early if early > 0 else 1.0), (late / start if start > 0 else 1.0)
    stats.update(collapse_ratio=r, quiet_ratio=r0, fc_max=fc_max)
    if r < ratio:
        return [
            (
                "collapse",
                f"The activity dies out: over the last {tw[-1] - tw[-k]:g} ms its spread is {r:.2g} of "
                f"that at t = {tw[0]:g}-{tw[k - 1]:g} ms (the network falls to a quiet state).",
            )
        ]
    if r0 < QUIET_RATIO and fc_max < QUIET_FC and fc.shape[0] > 1:
        return [
            (
                "collapse",
                f"The activity collapsed to a quiet state during the transient (the first {stats['t_start_ms']:g} "
                f"ms): its spread is {r0:.2g} of its range before and no two channels correlate above {QUIET_FC:g} "
                "(largest "
                f"{fc_max:.2f}), so what is left is noise.",
            )
        ]
    return []


def _saturation(w: np.ndarray, bounds: tuple[float, float] | None) -> list[tuple[str, str]]:
    if bounds is None:
        return []
    out = []
    for b in bounds:
        if not np.isfinite(b):
            continue
        tol = 1e-6 * max(1.0, abs(b))
        pinned = (np.abs(w - b) <= tol).mean(axis=0) >= 0.95
        if pinned.mean() >= SATURATED_FRACTION:
            out.append(
                (
                    "saturation",
                    f"{int(pinned.sum())} of {w.shape[1]} channels are pinned at the bound {b:g}: "
                    "the network is saturated.",
                )
            )
    return out


def _uniform_fc(fc: np.ndarray, stats: dict) -> list[tuple[str, str]]:
    off = fc[~np.eye(fc.shape[0], dtype=bool)]
    finite = off[np.isfinite(off)]
    stats["fc_finite_fraction"] = float(np.isfinite(off).mean()) if off.size else 1.0
    stats["fc_min"] = float(finite.min()) if finite.size else float("nan")
    if finite.size and finite.size == off.size and finite.min() > UNIFORM_FC:
        return [
            (
                "uniform_fc",
                f"Every pair of channels correlates above {UNIFORM_FC:g} (lowest "
                f"{finite.min():.3f}): the regions move in lockstep, so the FC has no structure.",
            )
        ]
    return []


def _verdict(found: list[tuple[str, str]], notes: tuple[str, ...], stats: dict) -> Health:
    if not found:
        return Health(ok=True, notes=notes, stats=stats)
    codes = tuple(c for c, _ in found)
    return Health(
        ok=False,
        problems=tuple(s for _, s in found),
        codes=codes,
        suggestion=ADVICE[codes[0]],
        notes=notes,
        stats=stats,
    )
