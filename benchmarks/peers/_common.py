"""Helpers shared by the per-tool benchmark scripts of ``benchmarks/peers.py`` (numpy only: each script runs in the
virtual environment of its tool, where vbtjax is not installed).

Protocol: ``python run_TOOL.py SPEC.json OUT_DIR``. SPEC (written by ``benchmarks/peers.py``) names the network file
(``network.npz``: ``weights`` (N, N), W[i, j] from j to i; ``lengths`` (N, N) mm; ``x0`` (2, N) the state held over
the whole history) and the workloads; the script writes ``OUT_DIR/result.json`` and ``OUT_DIR/traces.npz``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
import traceback

import numpy as np


def load_spec(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    spec_path, out_dir = argv[0], argv[1]
    with open(spec_path) as fh:
        spec = json.load(fh)
    net = dict(np.load(spec["network"]))
    os.makedirs(out_dir, exist_ok=True)
    return spec, net, out_dir


def delays_steps(lengths, speed, dt):
    """TVB's discretisation: D = rint(L / speed / dt) (round half to even), in steps."""
    return np.rint(np.asarray(lengths, np.float64) / speed / dt).astype(np.int64)


def loss_from_x(x, n_last):
    """The W3 loss: mean of x(t)^2 over the last ``n_last`` steps and all regions; ``x`` is (T, N)."""
    x = np.asarray(x, np.float64)
    return float(np.mean(x[-n_last:] ** 2))


def sweep_stat(x, n_last):
    """Per-simulation summary kept from W2 (cross-check): mean of x^2 over the last ``n_last`` steps."""
    return float(np.mean(np.asarray(x, np.float64)[-n_last:] ** 2))


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def repeat(fn, repeats, cap_s, *args):
    """Call ``fn(*args)`` up to ``repeats`` times, stopping early once ``cap_s`` seconds were spent (at least once).
    Returns (times, last output)."""
    times, out, spent = [], None, 0.0
    for _ in range(max(1, repeats)):
        t, out = timed(fn, *args)
        times.append(t)
        spent += t
        if spent >= cap_s:
            break
    return times, out


def summary(times):
    return dict(best_s=min(times), median_s=statistics.median(times), n=len(times), all_s=[round(t, 4) for t in times])


def loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def base_info(tool):
    return dict(
        tool=tool,
        python=platform.python_version(),
        executable=sys.executable,
        loadavg_start=loadavg(),
    )


def finish(out_dir, result, traces):
    result["loadavg_end"] = loadavg()
    np.savez(os.path.join(out_dir, "traces.npz"), **{k: np.asarray(v) for k, v in traces.items()})
    with open(os.path.join(out_dir, "result.json"), "w") as fh:
        json.dump(result, fh, indent=1, default=float)


def run_main(tool, body):
    """Run ``body(spec, net, result, traces)``; on an exception the error is recorded and the exit status is 1, so
    the driver reports the tool as failed rather than crashing."""
    spec, net, out_dir = load_spec()
    result, traces = base_info(tool), {}
    try:
        body(spec, net, result, traces)
        rc = 0
    except Exception as exc:  # noqa: BLE001 - reported, not hidden
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc()
        rc = 1
    finish(out_dir, result, traces)
    return rc
