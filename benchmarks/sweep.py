"""Time of a ``vbt.sweep`` of many parameter sets, against a Python loop over ``vbt.simulate``, and 1 against 4 devices.

The network: TVB's 76-region connectome (``vbt.datasets.tvb_connectome(76)``, weights normalised to max 1; or, with
``--regions 8``, its first 8 regions),
MontbrioPazoRoxin with TVB's defaults, ``Linear`` coupling, 3.0 mm/ms, dt = 0.1 ms, float32, deterministic, a
``TemporalAverage(period=1.0)`` monitor; the sweep varies the coupling strength ``a`` over ``[0, 0.02]`` and keeps only
each simulation's functional connectivity (``features=``: FC of r, ``(N, N)``), as a large sweep would.

Measured:
  sweep      ``vbt.sweep`` of ``--n-sets`` simulations of ``--t1`` ms on all of this process's devices: first call
             (compile + run) and a second call (run only: the compiled program is cached), batch size and chunks
             from the default memory budget.
  loop       a Python loop of ``vbt.simulate`` + the same FC over ``--loop-sets`` values (compiled once; the
             per-simulation time is extrapolated to ``--n-sets``).
  devices    the same sweep in a fresh process with ``--devices`` virtual CPU devices
             (``XLA_FLAGS=--xla_force_host_platform_device_count``), compared with the one-device result. On CPU the
             virtual devices share the same cores, so this checks equality and overhead, not speed-up.

  w2         (``--w2``) the peers' W2 in one process: 64 coupling values x 1 s of the 76-region SupHopf network with
             ``Difference`` coupling, Heun, float32, every step recorded; ``vbt.sweep`` against a Python loop over one
             compiled ``vbt.simulate``, side by side, ``--repeats`` times (medians), the compilations of a second
             sweep counted; then sweeps of 1 .. ``--max-sets`` values (sims/s). ``--cpu-devices K`` gives the process
             K CPU devices (``jax_num_cpu_devices``, set before JAX starts: one per core shares the batch over cores).

    python benchmarks/sweep.py                                  # 1024 sets of 1 s (~2-3 min on 2 cores)
    python benchmarks/sweep.py --w2 --cpu-devices 2             # W2 on both cores, and sweeps of 1 .. 1024 values
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


def _cpu_s() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def w2(args) -> dict:
    """The peers' W2 in this process: sweep against a loop over one compiled simulate, and sweeps of 1 .. max_sets."""
    import statistics

    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax._src import dispatch

    import vbtjax as vbt

    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda ev, d, **kw: compiles.append(d) if ev == dispatch.BACKEND_COMPILE_EVENT else None
    )
    conn = vbt.datasets.tvb_connectome(76)
    net = vbt.Network(
        model=vbt.models.SupHopf(a=0.25, omega=0.2),
        connectome=vbt.Connectome(weights=conn.weights, lengths=conn.lengths),
        coupling=vbt.coupling.Difference(a=0.01),
        speed=3.0,
    )
    dt, steps = 0.1, int(round(args.t1 / 0.1))
    H = net.delay_plan(dt).horizon
    x0 = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 76))
    hist = jnp.asarray(np.broadcast_to(x0, (H, 2, 76)), jnp.float32)
    mons = {"raw": vbt.monitors.Raw()}

    def sim(a):
        n = eqx.tree_at(lambda m: m.coupling.a, net, a)
        return vbt.simulate(n, steps * dt, dt, history=hist, solver=vbt.Heun(), monitors=mons).ys["raw"]

    def sweep(values):
        kw = dict(t1=steps * dt, dt=dt, history=hist, solver=vbt.Heun(), monitors=mons, progress=False)
        return vbt.sweep(net, where=lambda m: m.coupling.a, values=values, **kw)

    one = jax.jit(sim)
    values = np.linspace(0.0, 0.02, 64).astype(np.float32)
    jax.block_until_ready(one(jnp.float32(0.01)))
    t = time.perf_counter()
    res = sweep(values)
    first = time.perf_counter() - t
    times: dict[str, list[float]] = {"loop": [], "sweep": []}
    cpu: dict[str, list[float]] = {"loop": [], "sweep": []}
    later = 0
    args_loop = [jnp.float32(v) for v in values]
    for _ in range(args.repeats):
        c, t = _cpu_s(), time.perf_counter()
        jax.block_until_ready([one(v) for v in args_loop])
        times["loop"].append(time.perf_counter() - t)
        cpu["loop"].append(_cpu_s() - c)
        n, c, t = len(compiles), _cpu_s(), time.perf_counter()
        out = sweep(values)
        times["sweep"].append(time.perf_counter() - t)
        cpu["sweep"].append(_cpu_s() - c)
        later += len(compiles) - n
    ref = np.asarray(one(jnp.float32(values[-1])))
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "devices": len(jax.devices()),
        "sweep_first_call_s": first,
        "compiles_in_later_sweeps": later,
        "times_s": times,
        "cpu_s": cpu,
        "cpu_over_wall": {k: statistics.median(cpu[k]) / statistics.median(times[k]) for k in times},
        "median_s": med,
        "speedup_vs_loop": med["loop"] / med["sweep"],
        "batch_size": res.batch_size,
        "max_abs_diff_last_vs_simulate": float(np.max(np.abs(out.ys["raw"][-1] - ref))),
        "load": os.getloadavg(),
    }
    print(
        f"W2 64 x {args.t1:g} ms, {result['devices']} CPU device(s): loop {med['loop']:.2f} s, "
        f"sweep {med['sweep']:.2f} s "
        f"(median of {args.repeats}; first sweep {first:.1f} s): {result['speedup_vs_loop']:.2f}x; later sweeps "
        f"compiled {later} programs; process CPU / wall: loop {result['cpu_over_wall']['loop']:.2f}, sweep "
        f"{result['cpu_over_wall']['sweep']:.2f}; load {result['load']}",
        flush=True,
    )
    table = []
    S = 1
    while S <= args.max_sets:
        vals = np.resize(values, S)
        sweep(vals)  # compiles for this chunk size
        ts = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            r = sweep(vals)
            ts.append(time.perf_counter() - t)
        row = {"sets": S, "batch_size": r.batch_size, "median_s": statistics.median(ts)}
        row["sims_per_s"] = S / row["median_s"]
        row["vs_loop"] = row["sims_per_s"] * med["loop"] / 64
        table.append(row)
        print(
            f"  {S:5d} values: chunks of {r.batch_size:4d}, {row['median_s']:.3f} s, {row['sims_per_s']:.0f} sims/s, "
            f"{row['vs_loop']:.2f}x the loop",
            flush=True,
        )
        S *= 4
    result["table"] = table
    return result


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
    p.add_argument("--w2", action="store_true", help="the peers' W2 in this process, then sweeps of 1 .. --max-sets")
    p.add_argument("--cpu-devices", type=int, default=0, help="CPU devices of this process (0: JAX's default)")
    p.add_argument("--repeats", type=int, default=3, help="repeats of each --w2 timing (medians)")
    p.add_argument("--max-sets", type=int, default=1024, help="largest sweep of the --w2 table")
    p.add_argument("--_child", help=argparse.SUPPRESS)  # internal: run the sweep only, write the npz here
    args = p.parse_args(argv)
    if args.cpu_devices:
        import jax

        jax.config.update("jax_num_cpu_devices", args.cpu_devices)
    if args.w2:
        out = w2(args)
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=2))
        return out
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
