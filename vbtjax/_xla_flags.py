"""The one XLA option vbtjax sets: CPU while loops up to 8 MiB compiled as one function.

XLA's CPU runtime launches every fused kernel of a loop body as a separate task ("thunk", ~0.5 µs each). A
simulation step of a region network is a handful of kernels on a few hundred numbers, so that launch cost *is* the run
time, and a reverse-mode step (tens of kernels) pays it many times over. XLA can instead compile a small while loop,
body included, into one native function (its ``SmallWhileLoopHoistingPass``); the size limit is the backend option
``xla_cpu_small_while_loop_byte_threshold`` (default 1 KiB, which no network's inner loop fits). vbtjax raises it to
8 MiB. On 2 cores the 76-region forward run became 1.2-1.75x faster and its gradient 1.5-2x
(``benchmarks/RESULTS.md``).

The numbers are the same up to rounding, not always bitwise: the loop compiled as one function may round some
operations differently (e.g. a noisy run differs in the last bit from its first step on). A deterministic run was
measured bitwise unchanged, but that is not promised. A chaotic or noise-driven run can amplify such a difference to
O(1) over a long simulation; for bitwise reproducibility, run with the same XLA flags (``docs/reliability.md``).

XLA reads ``XLA_FLAGS`` once, when JAX's backend starts, so this takes effect only when ``vbtjax`` is imported before
the first JAX computation (:data:`APPLIED` tells): a process that computes with JAX before ``import vbtjax`` runs
without it, as with ``VBTJAX_XLA_FLAGS=0``. An ``XLA_FLAGS`` that already names the option wins.
"""

from __future__ import annotations

import os
import re

OPTION = "xla_cpu_small_while_loop_byte_threshold"
THRESHOLD_BYTES = 8 << 20
"""While loops whose buffers total fewer bytes than this are compiled as one function on the CPU."""

_EXTRA = re.compile(r"--xla_backend_extra_options=(\S*)")


def with_small_loop_option(flags: str, threshold: int = THRESHOLD_BYTES) -> str:
    """``flags`` (an ``XLA_FLAGS`` string) with the small-loop threshold added to ``--xla_backend_extra_options``
    (merged into an existing list of options; unchanged when the option is already named)."""
    if OPTION in flags:
        return flags
    entry = f"{OPTION}={int(threshold)}"
    match = _EXTRA.search(flags)
    if match is None:
        return f"{flags} --xla_backend_extra_options={entry}".strip()
    merged = f"{match.group(1)},{entry}" if match.group(1) else entry
    return f"{flags[: match.start()]}--xla_backend_extra_options={merged}{flags[match.end() :]}"


def configure(environ=os.environ) -> bool:
    """Add the option to ``environ["XLA_FLAGS"]``; True if JAX's backend has not started yet (so it applies)."""
    if environ.get("VBTJAX_XLA_FLAGS", "1") == "0":
        return False
    environ["XLA_FLAGS"] = with_small_loop_option(environ.get("XLA_FLAGS", ""))
    try:
        from jax._src import xla_bridge

        return not xla_bridge.backends_are_initialized()
    except (ImportError, AttributeError):  # a JAX without this private helper: assume it applies
        return True


APPLIED = configure()
"""Whether the option was set before JAX's backend started (so that it applies in this process)."""
