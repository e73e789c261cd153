"""A parameter sweep across processes and machines with JAX's multi-controller runtime (``jax.distributed``).

A grid of coupling strengths x conduction speeds on TVB's 76-region connectome (Montbrió–Pazó–Roxin, noisy), keeping
only each simulation's functional connectivity. Every process runs this same script; each one simulates the shards of
its own devices, and every process ends with the whole result (process 0 writes it).

    python examples/sweep_multihost.py                          # one process, all local devices
    python examples/sweep_multihost.py --local-processes 2      # try it: two processes on this machine
    srun python examples/sweep_multihost.py --out sweep.npz     # a SLURM job step: one process per task

Under SLURM (and Open MPI, or on Cloud TPU) ``jax.distributed.initialize()`` finds the coordinator, the number of
processes and this process's index by itself. Elsewhere pass ``--coordinator HOST:PORT --num-processes N
--process-id I`` on each machine. See docs/sweep.md for an sbatch script.

Units: time in ms, tract lengths in mm, conduction speed in mm/ms.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-coupling", type=int, default=32, help="coupling strengths in [0, 0.03] (default 32)")
    p.add_argument("--n-speed", type=int, default=8, help="conduction speeds in [2, 10] mm/ms (default 8)")
    p.add_argument("--duration", type=float, default=1000.0, help="simulated ms per set (default 1000)")
    p.add_argument("--out", default="sweep_multihost.npz", help="result file, written by process 0")
    p.add_argument("--local-processes", type=int, default=0, help="start this many processes on this machine")
    p.add_argument("--coordinator", help="HOST:PORT of process 0 (not needed under SLURM/Open MPI)")
    p.add_argument("--num-processes", type=int)
    p.add_argument("--process-id", type=int)
    p.add_argument("--cpu", action="store_true", help="use the CPU backend even where there is an accelerator")
    return p.parse_args(argv)


def launch_local(args) -> int:
    """Start ``args.local_processes`` copies of this script on localhost (CPU), joined through a free port."""
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    common = [
        "--n-coupling",
        str(args.n_coupling),
        "--n-speed",
        str(args.n_speed),
        "--duration",
        str(args.duration),
        "--out",
        args.out,
        "--cpu",
        "--coordinator",
        f"localhost:{port}",
        "--num-processes",
        str(args.local_processes),
    ]
    procs = [
        subprocess.Popen([sys.executable, __file__, *common, "--process-id", str(i)])
        for i in range(args.local_processes)
    ]
    return max(p.wait() for p in procs)


def main(argv=None) -> int:
    args = parse(argv)
    if args.local_processes:
        return launch_local(args)
    if args.cpu:
        os.environ["JAX_PLATFORMS"] = "cpu"

    import jax

    # 1. Join the other processes, before anything else touches JAX (importing vbtjax already does, through BlackJAX).
    #    With no arguments this detects SLURM, Open MPI or a TPU pod; on one machine outside them it is skipped.
    if args.coordinator:
        jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    elif any(v in os.environ for v in ("SLURM_STEP_NODELIST", "OMPI_COMM_WORLD_SIZE")):
        jax.distributed.initialize()

    import jax.numpy as jnp
    import numpy as np

    import vbtjax as vbt

    main_process = jax.process_index() == 0
    if main_process:
        print(f"{jax.process_count()} process(es), {jax.device_count()} device(s): {jax.devices()}", flush=True)

    # 2. The network and the grid: every process builds the same ones.
    conn = vbt.datasets.tvb_connectome(76).normalised("max")
    net = vbt.Network(
        model=vbt.models.MontbrioPazoRoxin(eta=-4.6, J=14.5, Delta=0.7),
        connectome=conn,
        coupling=vbt.coupling.Linear(a=0.01),
        speed=3.0,
        noise=vbt.noise.Additive(nsig=jnp.array([1e-2, 2e-2])),  # per state variable: r, V
    )
    a, v = vbt.sweep_grid(jnp.linspace(0.0, 0.03, args.n_coupling), jnp.linspace(2.0, 10.0, args.n_speed))

    # 3. One call: the batch is sharded over the devices of all processes; only the FC of each run is kept.
    t = time.perf_counter()
    res = vbt.sweep(
        net,
        where=lambda n: (n.coupling.a, n.speed),
        values=(a, v),
        t1=args.duration,
        dt=0.1,
        monitors={"tavg": vbt.monitors.TemporalAverage(period=1.0)},
        key=jax.random.key(0),
        features=lambda sol: vbt.features.fc(sol.ys["tavg"][100:, 0]),  # r, after the first 100 ms
    )
    elapsed = time.perf_counter() - t

    # 4. Every process holds the whole result; process 0 reports and saves it.
    if main_process:
        fc = res.features.reshape(args.n_coupling, args.n_speed, 76, 76)
        iu = np.triu_indices(76, 1)
        mean_fc = fc[..., iu[0], iu[1]].mean(axis=-1)  # (n_coupling, n_speed)
        i, j = np.unravel_index(np.argmax(mean_fc), mean_fc.shape)
        print(
            f"{len(res)} simulations of {args.duration:g} ms in {elapsed:.1f} s on {res.n_devices} device(s) in "
            f"{res.n_processes} process(es), chunks of {res.batch_size}; {int(res.finite.sum())} finite.\n"
            f"highest mean FC {mean_fc[i, j]:.3f} at a = {a.reshape(mean_fc.shape)[i, j]:.4f}, "
            f"speed = {v.reshape(mean_fc.shape)[i, j]:.2f} mm/ms",
            flush=True,
        )
        print(f"wrote {res.save(args.out)}", flush=True)
    if jax.process_count() > 1:
        jax.distributed.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
