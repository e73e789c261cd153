"""Simulation-based inference: simulations per second while building a budget, NPE training time, and the time to
sample 1000 posterior draws for one observation, for the VEP and the resting-state problems (CPU).

- VEP: :func:`vbtjax.sbi.problems.vep_problem` on TVB's 76 regions with the implantation of the synthetic patient
  with EZ 12,40 (seed 1), 50 ms at dt = 0.1 ms, 25 windows; NPE (spline flow, 4 layers x 64, embedding 64).
- Resting state: :func:`vbtjax.sbi.problems.resting_state_problem` on the HCP subject (94 regions), 1 200 volumes
  at TR = 720 ms plus the 60 s transient, dt = 72 ms, FC + FCD summaries; NPE (spline flow, 3 layers x 32).

Each budget is built twice with different keys: the first build includes the compilation. Writes
``benchmarks/sbi_output.txt`` (what is printed) and ``benchmarks/sbi_results.json``.

    python benchmarks/sbi.py                        # VEP 4000 simulations, resting state 16
    python benchmarks/sbi.py --vep-n 1000 --rs-n 16
    python benchmarks/sbi.py --rs-only --rs-n 128 --cpu-devices 2   # the resting-state budget on both cores

``--cpu-devices K`` gives the process K CPU devices (``jax_num_cpu_devices``, set before JAX starts), over which the
budget's batches are shared (one per core uses every core); ``--rs-batch`` simulations per chunk (default 16, the
problem's).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
LINES: list[str] = []


def say(text: str = "") -> None:
    print(text, flush=True)
    LINES.append(text)


def _uptime() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0:3].__str__()
    except OSError:
        return str(os.getloadavg())


def _budget_rate(problem, n, batch_size):
    import jax

    out = []
    for seed in (0, 1):
        t = time.perf_counter()
        b = problem.simulate_budget(
            n, None, key=jax.random.key(seed), chunk_size=n, batch_size=batch_size, progress=False
        )
        out.append(time.perf_counter() - t)
    return b, out


def _inference_time(npe, prior, x, repeats=3):
    import jax

    t = time.perf_counter()
    jax.block_until_ready(npe.posterior(prior, jax.random.key(0), x, 1000))
    first = time.perf_counter() - t
    times = []
    for i in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(npe.posterior(prior, jax.random.key(i + 1), x, 1000))
        times.append(time.perf_counter() - t)
    return first, float(np.median(times)), float(np.min(times))


def _resting_state_budget_only(args, results) -> int:
    """The resting-state budget alone: simulations per second (settings printed), no training."""
    import jax

    import vbtjax as vbt
    from vbtjax.sbi.problems import resting_state_problem

    data = vbt.datasets.hcp_subject()
    rs = resting_state_problem(data.connectome, tr=720.0, n_samples=args.rs_volumes, dt=72.0, coupling_max=4e-3)
    steps = int(round((args.rs_volumes + 84) * 720.0 / 72.0))
    say(
        f"resting state: HCP 101309, 94 regions, {args.rs_volumes} volumes + 60 s transient at dt = 72 ms ({steps} "
        f"Heun steps per simulation, float32, noise), FC + FCD summaries; {len(jax.devices())} CPU device(s), "
        f"chunks of {args.rs_batch}"
    )
    _, (t1, t2) = _budget_rate(rs, args.rs_n, args.rs_batch)
    say(
        f"budget of {args.rs_n}: {t1:.1f} s with compilation ({args.rs_n / t1:.2f} sims/s), {t2:.1f} s again "
        f"({args.rs_n / t2:.2f} sims/s)"
    )
    results["resting_state"] = {
        "n": args.rs_n,
        "devices": len(jax.devices()),
        "batch_size": args.rs_batch,
        "budget_seconds_with_compilation": t1,
        "budget_seconds": t2,
        "sims_per_second": args.rs_n / t2,
    }
    results["load_end"] = _uptime()
    say(f"load average at end (1, 5, 15 min): {results['load_end']}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vep-n", type=int, default=4000)
    ap.add_argument("--rs-n", type=int, default=16)
    ap.add_argument("--rs-volumes", type=int, default=1200)
    ap.add_argument("--epochs", type=int, default=50, help="training epochs at most (50)")
    ap.add_argument(
        "--ensemble", type=int, default=4, help="flows in the VEP estimator's mixture (4, as examples/sbi_vep.py)"
    )
    ap.add_argument("--pca", type=int, default=64, help="principal components the VEP flows see (64, as the example)")
    ap.add_argument("--no-write", action="store_true", help="do not write sbi_output.txt / sbi_results.json")
    ap.add_argument("--cpu-devices", type=int, default=0, help="CPU devices of this process (0: JAX's default)")
    ap.add_argument("--rs-only", action="store_true", help="the resting-state budget only (no VEP, no training)")
    ap.add_argument("--rs-batch", type=int, default=16, help="resting-state simulations per chunk (16)")
    args = ap.parse_args()

    import jax

    if args.cpu_devices:
        jax.config.update("jax_num_cpu_devices", args.cpu_devices)

    import vbtjax as vbt
    from vbtjax import sbi, vep
    from vbtjax.data.sensors import seeg_gain_point_source
    from vbtjax.sbi.problems import resting_state_problem, vep_problem

    results: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    say(f"vbtjax sbi benchmark, {results['date']}")
    say(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__}, "
        f"devices {[d.platform for d in jax.devices()]}"
    )
    results["load_start"] = _uptime()
    say(f"load average at start (1, 5, 15 min): {results['load_start']}")

    if args.rs_only:
        return _resting_state_budget_only(args, results)

    # ------------------------------------------------------------------------------------------------- VEP
    conn = vbt.datasets.tvb_connectome(76)
    sensors = vbt.sensors.tvb_sensors("seeg")
    patient = vep.synthetic_patient(conn, sensors, [12, 40], seed=1)
    gain = seeg_gain_point_source(np.asarray(sensors.positions)[patient.contacts], conn.centres)
    problem = vep_problem(conn, gain, contacts=patient.recording.ch_names)
    say(
        f"\nVEP: 76 regions, {gain.shape[0]} contacts, {problem.prior.dim} parameters, {problem.n_features} features "
        f"(500 Heun steps per simulation, batch 256)"
    )
    budget, (t1, t2) = _budget_rate(problem, args.vep_n, 256)
    say(
        f"budget of {args.vep_n}: {t1:.1f} s with compilation ({args.vep_n / t1:.0f} sims/s), {t2:.1f} s again "
        f"({args.vep_n / t2:.0f} sims/s)"
    )
    train, test = budget.split(max(2, args.vep_n // 10))
    npe, hist = sbi.train_npe(
        train,
        key=jax.random.key(1),
        layers=4,
        width=64,
        pca=args.pca,
        ensemble=args.ensemble,
        max_epochs=args.epochs,
        patience=20,
        progress=False,
    )
    ep = int(np.sum(hist["member_epochs"]))
    say(
        f"training (ensemble of {args.ensemble} nsf 4 x 64 on {args.pca} principal components, "
        f"{hist['n_train']} sims): {hist['seconds']:.1f} s, {ep} epochs over the members "
        f"({hist['seconds'] / ep:.2f} s/epoch, compilation included), best epochs {hist['member_best_epoch'].tolist()}"
    )
    x = problem.observe(patient.recording)
    first, med, best = _inference_time(npe, problem.prior, x)
    say(
        f"inference, 1000 draws for one observation: first call {first:.2f} s, then median {med * 1e3:.1f} ms "
        f"(best {best * 1e3:.1f} ms)"
    )
    t = time.perf_counter()
    n_cal = min(50, len(test))
    cal = sbi.calibrate(npe, problem.prior, test.split(len(test) - n_cal)[1], key=jax.random.key(2), num_draws=100)
    t_cal = time.perf_counter() - t
    cov90 = float(cal.joint_coverage[np.argmin(np.abs(cal.levels - 0.9))])
    say(f"calibration on {n_cal} held-out simulations x 100 draws: {t_cal:.1f} s (joint 90 % coverage {cov90:.2f})")
    results["vep"] = {
        "n": args.vep_n,
        "contacts": int(gain.shape[0]),
        "parameters": problem.prior.dim,
        "features": problem.n_features,
        "budget_seconds_with_compilation": t1,
        "budget_seconds": t2,
        "sims_per_second": args.vep_n / t2,
        "training_seconds": hist["seconds"],
        "epochs": ep,
        "ensemble": args.ensemble,
        "pca": args.pca,
        "joint_coverage_90": cov90,
        "inference_first_seconds": first,
        "inference_median_seconds": med,
        "calibration_seconds": t_cal,
        "max_coverage_error": cal.max_coverage_error(),
    }

    # ------------------------------------------------------------------------------------------- resting state
    data = vbt.datasets.hcp_subject()
    rs = resting_state_problem(data.connectome, tr=720.0, n_samples=args.rs_volumes, dt=72.0, coupling_max=4e-3)
    steps = int(round((args.rs_volumes + 84) * 720.0 / 72.0))
    say(
        f"\nresting state: HCP 101309, 94 regions, {args.rs_volumes} volumes + 60 s transient at dt = 72 ms "
        f"({steps} Heun steps with delays per simulation), {rs.n_features} features, batch 16"
    )
    b_rs, (t1, t2) = _budget_rate(rs, args.rs_n, 16)
    say(
        f"budget of {args.rs_n}: {t1:.1f} s with compilation ({args.rs_n / t1:.2f} sims/s), {t2:.1f} s again "
        f"({args.rs_n / t2:.2f} sims/s)"
    )
    npe_rs, h = sbi.train_npe(
        b_rs,
        key=jax.random.key(1),
        layers=3,
        width=32,
        max_epochs=args.epochs,
        patience=20,
        batch_size=16,
        progress=False,
    )
    say(f"training (nsf 3 x 32, {h['n_train']} sims): {h['seconds']:.1f} s, {len(h['val_loss'])} epochs")
    first, med, best = _inference_time(npe_rs, rs.prior, b_rs.x[0])
    say(
        f"inference, 1000 draws for one observation: first call {first:.2f} s, then median {med * 1e3:.1f} ms "
        f"(best {best * 1e3:.1f} ms)"
    )
    results["resting_state"] = {
        "n": args.rs_n,
        "volumes": args.rs_volumes,
        "steps_per_simulation": steps,
        "budget_seconds_with_compilation": t1,
        "budget_seconds": t2,
        "sims_per_second": args.rs_n / t2,
        "training_seconds": h["seconds"],
        "inference_first_seconds": first,
        "inference_median_seconds": med,
    }
    results["load_end"] = _uptime()
    say(f"\nload average at end (1, 5, 15 min): {results['load_end']}")
    if not args.no_write:
        (HERE / "sbi_output.txt").write_text("\n".join(LINES) + "\n")
        (HERE / "sbi_results.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
