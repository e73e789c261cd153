"""BOLD of a long run: 10 minutes of a 76-region delayed network at dt = 0.1 ms (6 000 000 Heun steps), recorded only
through the Balloon-Windkessel monitor (TR = 720 ms). Prints wall time (compile + run), run time, region-steps per
second and the peak RSS of the process, next to what a Raw monitor of the same run would need.

    python benchmarks/bold.py [--minutes 10] [--dt 0.1]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import resource
import time

import jax
import numpy as np

import vbtjax as vbt


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0, help="simulated duration in minutes (default 10)")
    p.add_argument("--dt", type=float, default=0.1, help="integration step in ms (default 0.1)")
    p.add_argument("--tr", type=float, default=720.0, help="BOLD repetition time in ms (default 720)")
    a = p.parse_args()

    conn = vbt.datasets.tvb_connectome(76)
    net = vbt.Network(
        model=vbt.models.MontbrioPazoRoxin(),
        connectome=conn,
        coupling=vbt.coupling.Linear(a=0.01),
        speed=3.0,
        noise=vbt.noise.Additive(nsig=[1e-5, 1e-4]),
    )
    t1 = a.minutes * 60_000.0
    n_steps = round(t1 / a.dt)
    mon = {"bold": vbt.monitors.BalloonWindkessel(period=a.tr)}
    rss0 = peak_rss_mb()

    def run():
        sol = vbt.simulate(net, t1=t1, dt=a.dt, monitors=mon, key=jax.random.key(0))
        return jax.block_until_ready(sol)

    t = time.perf_counter()
    sol = run()
    first = time.perf_counter() - t
    t = time.perf_counter()
    sol = run()
    second = time.perf_counter() - t
    bold = np.asarray(sol.ys["bold"])
    raw_bytes = n_steps * net.model.n_svar * 76 * 4
    print(
        f"# vbtjax BOLD benchmark, {datetime.date.today()}, {platform.processor() or platform.machine()}, "
        f"jax {jax.__version__}, devices {jax.devices()}"
    )
    print("network: MontbrioPazoRoxin on TVB connectivity_76, Linear(a=0.01), speed 3 mm/ms, additive noise")
    print(f"run: {a.minutes:g} min = {n_steps} Heun steps of {a.dt} ms, BalloonWindkessel TR {a.tr:g} ms, float32")
    print(f"BOLD output: {bold.shape} (samples, variables, regions), finite: {bool(np.isfinite(bold).all())}")
    print(f"first call (compile + run): {first:.2f} s")
    print(f"second call (run):          {second:.2f} s  -> {76 * n_steps / second / 1e6:.1f} M region-steps/s")
    print(f"peak RSS of the process:    {peak_rss_mb():.0f} MB (after imports: {rss0:.0f} MB)")
    print(f"a Raw monitor of this run would hold {raw_bytes / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
