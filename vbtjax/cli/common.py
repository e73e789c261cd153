"""What the ``vbtjax`` subcommands share: the one-line usage error, the parser that raises it, JSON conversion, atomic
output files (JSON, figures, files written by other libraries) and the settings record that lets ``--resume``
refuse a run it cannot honour.

Every file a subcommand writes goes through :mod:`vbtjax.files` (:func:`~vbtjax.files.replacing` for writers that
take a path), so a run killed at any moment leaves each output complete or absent, never half written.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import re
import sys
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import files
from ..files import replacing

__all__ = [
    "PROG",
    "ArgumentParser",
    "Stages",
    "UsageError",
    "fc_panel",
    "jsonable",
    "label_ticks",
    "one_line_warnings",
    "plural",
    "print_error",
    "region_labels",
    "replacing",
    "resume_settings",
    "save_figure",
    "time_arg",
    "time_ms",
    "version",
    "write_json",
    "write_summary_json",
]

PROG = "vbtjax"
SETTINGS_NAME = "settings.json"


class UsageError(Exception):
    """A bad command-line value: reported as ``vbtjax CMD: error: OPTION: message`` with exit code 2."""

    def __init__(self, option: str | None, message: str):
        super().__init__(f"{option}: {message}" if option else message)


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but errors raise (one line, no usage block, no SystemExit) so that ``main`` returns 2."""

    def error(self, message: str):  # noqa: D102
        raise UsageError(None, message)


_TIME = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(ms|s|min)?\s*$")
_TO_MS = {"ms": 1.0, "s": 1000.0, "min": 60000.0}


def time_ms(text: str | float, option: str, minimum_ms: float | None = None) -> float:
    """A time option's value in ms: the CLI's one convention for times.

    A bare number is ms (``720``); a suffix states another unit (``720ms``, ``0.72s``, ``2min``). With
    `minimum_ms`, a bare number below it is refused as ambiguous (``--tr 0.72`` is 0.72 ms, surely meant as
    seconds), naming both spellings; a value with a unit is taken as written.

    Raises :class:`UsageError` naming `option` for anything else.
    """
    if isinstance(text, (int, float)):
        text = repr(float(text))
    m = _TIME.match(str(text))
    if m is None:
        raise UsageError(option, f"{text!r} is not a time: write a number in ms (720) or with a unit (720ms, 0.72s)")
    value, unit = float(m.group(1)), m.group(2)
    if not math.isfinite(value):
        raise UsageError(option, f"{text!r} is not a finite time")
    if unit is None and minimum_ms is not None and 0 < value < minimum_ms:
        raise UsageError(
            option,
            f"{value:g} is read as {value:g} ms, which is implausibly short here; "
            f"write {value:g}s for seconds or {value:g}ms to confirm milliseconds",
        )
    return value * _TO_MS[unit or "ms"]


def time_arg(option: str, minimum_ms: float | None = None):
    """An argparse ``type=`` for :func:`time_ms` (bare numbers in ms, suffixes ms/s/min)."""

    def parse(text: str) -> float:
        return time_ms(text, option, minimum_ms)

    parse.__name__ = "time"  # argparse names the type in its own messages
    return parse


def print_error(command: str | None, message: str) -> None:
    """``vbtjax CMD: error: message`` on stderr (one line: further lines of `message` are joined)."""
    prefix = f"{PROG} {command}" if command else PROG
    print(f"{prefix}: error: {' '.join(str(message).split())}", file=sys.stderr)


def version() -> str:
    """The installed vbtjax version ("unknown" when not installed)."""
    try:
        from importlib.metadata import version as _dist_version

        return _dist_version("vbtjax")
    except Exception:  # pragma: no cover - not installed
        return "unknown"


def jsonable(x: Any) -> Any:
    """`x` with arrays as (nested) lists, paths as strings and non-finite floats as ``"nan"``/``"inf"`` strings."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "tolist"):
        a = np.asarray(x)
        if a.dtype == np.float32:  # shortest float32 repr (0.7, not 0.699999988079071)
            flat = [float(str(v)) for v in a.ravel()]
            return jsonable(flat[0] if a.ndim == 0 else np.asarray(flat).reshape(a.shape).tolist())
        return jsonable(a.tolist())
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)  # JSON has no inf/nan
    return x


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``jsonable(obj)`` to `path` atomically (indented, newline at the end)."""
    return files.write_json(path, jsonable(obj))


_FLAT_LIST = re.compile(r"\[\n[^\[\]{}]*?\n\s*\]")


def write_summary_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``jsonable(obj)`` to `path` atomically, as :func:`write_json`, but with every list of plain values
    (numbers, strings, null) on one line: a per-region list is one line, not one line per region."""
    text = json.dumps(jsonable(obj), indent=1, allow_nan=False)
    # JSON strings hold no raw newline, so the newlines (and indents) inside a flat list are layout only
    text = _FLAT_LIST.sub(lambda m: re.sub(r"\n\s*", " ", m.group(0)).replace("[ ", "[").replace(" ]", "]"), text)
    return files.write_text(path, text + "\n")


def save_figure(fig: Any, path: str | os.PathLike, **kwargs: Any) -> Path:
    """Render a Matplotlib figure (format from the suffix) into memory and write it to `path` atomically."""
    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lstrip(".") or "png", **kwargs)
    return files.write_bytes(path, buf.getvalue())


def fc_panel(fig, ax, fc, title: str, labels=None) -> None:
    """An FC matrix (diagonal omitted) on a symmetric colour scale, with its colour bar; the axes are ticked with the
    region `labels` when given (all of them up to 40 regions, every k-th beyond), else with region indices."""
    off = np.array(fc, dtype=float)
    np.fill_diagonal(off, np.nan)
    finite = np.isfinite(off)
    vmax = float(np.nanpercentile(np.abs(off[finite]), 99.5)) if finite.any() else 1.0
    vmax = min(1.0, vmax) if vmax > 0 else 1.0
    im = ax.imshow(off, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
    ax.set_title(title)
    n = off.shape[0]
    if labels is not None and len(labels) == n and n > 0:
        every = max(1, int(np.ceil(n / 40)))
        ticks = np.arange(0, n, every)
        size = "small" if n <= 20 else 6
        ax.set_xticks(ticks, [str(labels[i]) for i in ticks], rotation=90, fontsize=size)
        ax.set_yticks(ticks, [str(labels[i]) for i in ticks], fontsize=size)
        ax.set_xlabel("region" if every == 1 else f"region (one label per {every} regions)")
        ax.set_ylabel("region")
    else:
        ax.set_xlabel("region index")
        ax.set_ylabel("region index")
    cbar = fig.colorbar(im, ax=ax, shrink=0.85)
    cbar.set_label("Pearson correlation (dimensionless)")


def resume_settings(
    folder: Path,
    checkpoint: str,
    settings: Mapping[str, Any],
    resume: bool,
    allowed: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Keep ``folder/settings.json``, the record of the settings that change a checkpointed command's results, in
    step with the checkpoint ``folder/checkpoint``; returns the list of resumes so far (for the command's summary).

    A fresh run (no `resume`, or nothing to resume) first deletes an old checkpoint, then records `settings`: a run
    killed before its first checkpoint never leaves the old run's state beside the new settings. A resume compares
    `settings` with the record and raises ``UsageError("--resume", ...)`` naming every setting that differs (old ->
    new) outside `allowed`; allowed changes are recorded with the step the checkpoint had reached."""
    from ..inference.fitting import ResumeError, check_resume

    ckpt, record = files.recover(folder / checkpoint), folder / SETTINGS_NAME  # recover: drop temporary leftovers
    settings = jsonable(dict(settings))
    if not (resume and ckpt.exists()):
        ckpt.unlink(missing_ok=True)
        write_json(record, {"settings": settings, "resumed": []})
        return []
    where = f"cannot resume from {folder}"
    hint = "give the same values to continue it, or run without --resume to start afresh"
    if not record.is_file():
        raise UsageError("--resume", f"{where}: it has no record of its settings ({record} is missing); {hint}")
    saved = files.read_json(record, what=f"the checkpoint's settings {record}")
    try:
        changes = check_resume(saved.get("settings", {}), settings, where=where, allowed=allowed, hint=hint)
    except ResumeError as e:
        raise UsageError("--resume", str(e).rstrip(".")) from None
    step = int(files.read_npz(ckpt, keys=["step"], what=f"the checkpoint {ckpt}", required=["step"])["step"])
    resumed = [*saved.get("resumed", []), {"at_step": step, **{k: [old, new] for k, (old, new) in changes.items()}}]
    write_json(record, {"settings": settings, "resumed": resumed})
    return resumed


# ------------------------------------------------------------------------------------ progress, warnings, labels
class Stages:
    """The named stages of a long command, each announced on stderr as it starts (``[2/4] compiling the model``),
    so that a run shows what it is doing from its first second; silent with `quiet`.

    ``stages = Stages(4, quiet=args.quiet); stages("loading data"); ...``: each call starts the next stage. The
    elapsed time since the first stage is appended from the second stage on.
    """

    def __init__(self, total: int, quiet: bool = False):
        self.total, self.quiet, self.done = int(total), bool(quiet), 0
        self.t0: float | None = None

    def __call__(self, text: str) -> None:
        self.done += 1
        now = time.perf_counter()
        self.t0 = now if self.t0 is None else self.t0
        if self.quiet:
            return
        at = f" [{now - self.t0:.0f} s]" if self.done > 1 else ""
        print(f"[{self.done}/{max(self.total, self.done)}] {text}{at}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def one_line_warnings(command: str | None) -> Iterator[None]:
    """Within the block, a warning displayed is one plain line on stderr, ``vbtjax CMD: warning: message`` (no file
    path, no source line, no category; the message's lines joined); the previous ``warnings.formatwarning`` comes
    back after it.

    Only the display's format changes (``warnings.formatwarning``, not ``showwarning``): filters (``-W error``,
    ``warnings.simplefilter``) and recorders (``warnings.catch_warnings(record=True)``, ``pytest.warns``) around or
    inside the block see every warning as before."""
    prefix = f"{PROG} {command}" if command else PROG
    previous = warnings.formatwarning

    def one_line(message, category, filename, lineno, line=None) -> str:  # noqa: ARG001 - formatwarning's signature
        return f"{prefix}: warning: {' '.join(str(message).split())}\n"

    warnings.formatwarning = one_line
    try:
        yield
    finally:
        warnings.formatwarning = previous


def plural(n: int, word: str, many: str | None = None) -> str:
    """``"1 draw"``, ``"3 draws"`` (`many`: the plural when it is not `word` + "s")."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


def region_labels(connectome: Any) -> list[str]:
    """The connectome's region labels, or the indices as text ("0", "1", ...) when it has none."""
    labels = getattr(connectome, "labels", None)
    n = int(np.asarray(connectome.weights).shape[0])
    return [str(v) for v in labels] if labels is not None and len(labels) == n else [str(i) for i in range(n)]


def label_ticks(
    ax: Any, labels: Sequence[str], axis: str = "x", max_labels: int = 40, fontsize: float | None = None
) -> bool:
    """Region labels as the tick labels of `ax`'s `axis` ("x", "y" or "both"), at positions 0..N-1, where there
    are at most `max_labels` of them (rotated on x; `fontsize` by default smaller for more labels); returns whether
    they were set (else the ticks stay indices)."""
    if len(labels) > max_labels:
        return False
    if fontsize is None:
        fontsize = 8 if len(labels) <= 20 else 6 if len(labels) <= 40 else 5
    pos = np.arange(len(labels))
    if axis in ("x", "both"):
        ax.set_xticks(pos, list(labels), rotation=90, fontsize=fontsize)
    if axis in ("y", "both"):
        ax.set_yticks(pos, list(labels), fontsize=fontsize)
    return True
