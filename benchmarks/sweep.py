"""Time of a ``vbt.sweep`` of many parameter sets, against a Python loop over ``vbt.simulate``, and 1 against 4 devices.

The network: TVB's 76-region connectome (``vbt.datasets.tvb_connectome(76)``, weights normalised to max 1; or, with
``--regions 8``, its first 8 regions),
MontbrioPazoRoxin with TVB's defaults, ``Linear`` coupling, 3.0 mm/ms, dt = 0.1 ms, float32, deterministic, a
``TemporalAverage(period=1.0)`` monitor; the sweep varies the coupling strength ``a`` over ``[0, 0.02]`` and keeps only
each simulation's functional connectivity (``features=``: FC of r, ``(N, N)``), as a large sweep would.

Measured:
  sweep      ``vbt.sweep`` of ``--n-sets`` simulations of ``--t1`` ms on all of this process's devices: first call
             (compile + run) and a second call (run only; ``sweep`` compiles once per call), batch size and chunks
             from the default memory budget.
  loop       a Python loop of ``vbt.simulate`` + the same FC over ``--loop-sets`` values (compiled once; the
             per-simulation time is extrapolated to ``--n-sets``).
  devices    the same sweep in a fresh process with ``--devices`` virtual CPU devices
             (``XLA_FLAGS=--xla_force_host_platform_device_count``), compared with the one-device result. On CPU the
             virtual devices share the same cores, so this checks equality and overhead, not speed-up.

    python benchmarks/sweep.py                                  # 1024 sets of 1 s (~2-3 min on 2 cores)
    python benchmarks/sweep.py --regions 8                      # where vmapping pays on a CPU: small networks
    python benchmarks/sweep.py --n-sets 256 --t1 200 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def network(regions: int):
    import vbtjax as vbt

    if regions in (66, 68, 76, 96, 192):
        conn = vbt.datasets.tvb_connectome(regions)
    else:  # the first `regions` regions of the 76-region connectome
        full = vbt.datasets.tvb_connectome(76)
        conn = vbt.Connectome(weights=full.weights[:regions, :regions], lengths=full.lengths[:regions, :regions])
    conn = conn.normalised("max")
    return vbt.Network(
        model=vbt.models.MontbrioPazoRoxin(), connectome=conn, coupling=vbt.coupling.Linear(a=0.01), speed=3.0
    )


def fc_feature(sol):
    import vbtjax as vbt

    return vbt.features.fc(sol.ys["tavg"][:, 0])


def run_sweep(args, out_npz: str | None = None) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np

    import vbtjax as vbt

    net = network(args.regions)
    mons = {"tavg": vbt.monitors.TemporalAverage(period=1.0)}
    a = jnp.linspace(0.0, 0.02, args.n_sets)
    kw = dict(
        where=lambda n: n.coupling.a, values=a, t1=args.t1, dt=0.1, monitors=mons, features=fc_feature, progress=False
    )
    t = time.perf_counter()
    res = vbt.sweep(net, **kw)
    first = time.perf_counter() - t
    t = time.perf_counter()
    res = vbt.sweep(net, **kw)
    second = time.perf_counter() - t
    if out_npz:
        res.save(out_npz)
    return {
        "devices": res.n_devices,
        "platform": jax.devices()[0].platform,
        "first_call_s": first,
        "second_call_s": second,
        "sims_per_s": args.n_sets / second,
        "batch_size": res.batch_size,
        "chunks": -(-args.n_sets // res.batch_size),
        "all_finite": bool(res.finite.all()),
        "fc_shape": list(np.shape(res.features)),
    }


def run_loop(args) -> dict:
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    import vbtjax as vbt

    net = network(args.regions)
    mons = {"tavg": vbt.monitors.TemporalAverage(period=1.0)}

    @eqx.filter_jit
    def one(net):
        return fc_feature(vbt.simulate(net, args.t1, 0.1, monitors=mons))

    a = jnp.linspace(0.0, 0.02, args.loop_sets)
    jax.block_until_ready(one(eqx.tree_at(lambda n: n.coupling.a, net, a[0])))  # compile
    t = time.perf_counter()
    for v in a:
        jax.block_until_ready(one(eqx.tree_at(lambda n: n.coupling.a, net, v)))
    per = (time.perf_counter() - t) / args.loop_sets
    return {"per_sim_s": per, "extrapolated_s": per * args.n_sets}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-sets", type=int, default=1024, help="parameter sets (default 1024)")
    p.add_argument("--t1", type=float, default=1000.0, help="simulated ms per set (default 1000)")
    p.add_argument(
        "--regions", type=int, default=76, help="TVB connectome: 66, 68, 76, 96, 192, or the first N of 76 (default 76)"
    )
    p.add_argument("--loop-sets", type=int, default=8, help="simulations timed in the Python loop (default 8)")
    p.add_argument("--devices", type=int, default=4, help="virtual CPU devices of the second run (0: skip)")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--_child", help=argparse.SUPPRESS)  # internal: run the sweep only, write the npz here
    args = p.parse_args(argv)
    if args._child:
        print(json.dumps(run_sweep(args, args._child)))
        return {}

    out = {
        "config": {
            "n_sets": args.n_sets,
            "t1_ms": args.t1,
            "dt_ms": 0.1,
            "regions": args.regions,
            "model": "MontbrioPazoRoxin",
            "dtype": "float32",
            "features": "FC of r (TemporalAverage 1 ms)",
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        },
    }
    with tempfile.TemporaryDirectory() as tmp:
        one_npz, many_npz = str(Path(tmp) / "one.npz"), str(Path(tmp) / "many.npz")
        # the main measurement in a child too, so that both runs start from the same state
        for name, n_dev, npz in (("sweep", 1, one_npz), ("devices", args.devices, many_npz)):
            if n_dev == 0:
                continue
            env = dict(os.environ)
            if n_dev > 1:
                env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={n_dev}"
            cmd = [
                sys.executable,
                __file__,
                "--n-sets",
                str(args.n_sets),
                "--t1",
                str(args.t1),
                "--regions",
                str(args.regions),
                "--_child",
                npz,
            ]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            if proc.returncode:
                sys.exit(f"{name} run failed:\n{proc.stderr[-4000:]}")
            out[name] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"{name:8s} {out[name]}", flush=True)
        out["loop"] = run_loop(args)
        print(f"loop     {out['loop']}", flush=True)
        if args.devices:
            import numpy as np

            import vbtjax as vbt

            f1 = vbt.SweepResult.load(one_npz).features
            f4 = vbt.SweepResult.load(many_npz).features
            out["devices"]["max_abs_diff_vs_one_device"] = float(np.max(np.abs(f1 - f4)))
            out["devices"]["bitwise_equal"] = bool(np.array_equal(f1, f4))
    s, lp = out["sweep"], out["loop"]
    print(
        f"\n{args.n_sets} sets x {args.t1:g} ms, {args.regions} regions: sweep {s['second_call_s']:.1f} s "
        f"({s['first_call_s']:.1f} s with compile; {s['sims_per_s']:.0f} sims/s, chunks of {s['batch_size']}); "
        f"Python loop ~{lp['extrapolated_s']:.0f} s ({lp['per_sim_s'] * 1e3:.0f} ms per simulation)"
    )
    if args.devices:
        d = out["devices"]
        print(
            f"{args.devices} virtual devices: {d['second_call_s']:.1f} s, max |difference| to one device "
            f"{d['max_abs_diff_vs_one_device']:.1e} (bitwise equal: {d['bitwise_equal']})"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
