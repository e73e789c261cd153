"""What compensated summation costs, and float32 against float64: forward runs of TVB's 76-region network
(MontbrioPazoRoxin, Linear coupling, delays, Heun, dt = 0.1 ms), timed side by side in one process and alternated, so
that the ratios hold on a shared machine. Prints the median of `--repeats` runs of each, after one compiling run.

    python benchmarks/float32.py [--ms 10000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)  # float64 runs need it; float32 runs use a float32 network

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import vbtjax as vbt  # noqa: E402


class PlainHeun(vbt.Heun):
    """Heun without compensated summation (``compensate_below = 0``)."""

    compensate_below = 0


def network(dtype):
    conn = vbt.datasets.tvb_connectome(76)
    net = vbt.Network(model=vbt.models.MontbrioPazoRoxin(), connectome=conn, coupling=vbt.coupling.Linear(a=0.01))
    leaf = lambda x: x.astype(dtype) if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating) else x
    return jax.tree.map(leaf, net)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ms", type=float, default=10_000.0, help="simulated ms per run (default 10 000)")
    p.add_argument("--repeats", type=int, default=7)
    a = p.parse_args()
    cases = {
        "float32, compensated (default)": (network(jnp.float32), vbt.Heun()),
        "float32, plain": (network(jnp.float32), PlainHeun()),
        "float64": (network(jnp.float64), vbt.Heun()),
    }

    def run(case):
        net, solver = cases[case]
        return jax.block_until_ready(vbt.simulate(net, t1=a.ms, dt=0.1, solver=solver).ys["raw"])

    for case in cases:
        run(case)  # compile
    times = {case: [] for case in cases}
    for _ in range(a.repeats):
        for case in cases:
            t = time.perf_counter()
            run(case)
            times[case].append(time.perf_counter() - t)
    base = np.median(times["float32, plain"])
    print(f"# {a.ms:g} ms of MontbrioPazoRoxin on 76 regions, dt = 0.1 ms; jax {jax.__version__}, {jax.devices()}")
    for case, ts in times.items():
        med = float(np.median(ts))
        print(f"{case:32s} {med:7.3f} s  ({med / base:.2f} x float32 plain)")


if __name__ == "__main__":
    main()
