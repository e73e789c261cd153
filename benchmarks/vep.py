"""Virtual Epileptic Patient: recovery of the epileptogenic zone and wall time of the inference.

Patients: the five patients simulated by TVB 2.10's own Epileptor2D network (``tests/golden/vep/patient_*.npz``,
made by ``tests/golden/make_vep_patients.py``; two of them stochastic, all at dt = 0.05 ms) and vbtjax's own
synthetic patients (``vbtjax.vep.synthetic_patient``). For a TVB patient the first 50 ms of its ``x1`` are turned
into SEEG signals with ``vbtjax.vep.synthetic_seeg`` on the contacts of ``vbtjax.vep.implant`` (tvb-data's
seeg_588), then inferred exactly as ``vbtjax vep --seeg`` does (``vep_posterior`` + ``infer_ez``, dt = 0.1 ms).

Prints, per patient, the true and predicted EZ (``p_ez > 0.5``), the top of the ranking, divergences, max R-hat,
and the wall time (MAP + NUTS, compilation included), then precision and recall pooled over patients.

    python benchmarks/vep.py                            # all patients, 2 chains x (200 warmup + 200 draws)
    python benchmarks/vep.py --warmup 60 --samples 60 --tvb 1 2 --synthetic 12,40
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

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "vep"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tvb", type=int, nargs="*", default=[1, 2, 3, 4, 5], help="TVB patients (1..5)")
    ap.add_argument("--synthetic", nargs="*", default=["12,40", "5,33"], help="EZ sets of synthetic patients")
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--json", default=None, help="write the results to this JSON file")
    ap.add_argument("--grad-only", action="store_true", help="only time the gradient of the VEP log density")
    args = ap.parse_args()

    import jax

    import vbtjax as vbt
    from vbtjax import vep
    from vbtjax.sensors import seeg_gain_point_source

    conn = vbt.datasets.tvb_connectome(76)
    sensors = vbt.sensors.tvb_sensors("seeg")
    pos = np.asarray(sensors.positions)
    cases = []
    for k in args.tvb:
        z = np.load(GOLDEN / f"patient_{k}.npz", allow_pickle=False)
        ez = [int(i) for i in z["ez"]]
        contacts = vep.implant(sensors, conn.centres, ez, seed=k)
        gain = seeg_gain_point_source(pos[contacts], conn.centres)
        data = vep.synthetic_seeg(z["x1"][:50], gain, key=jax.random.key(k), samples_per_x1=32)
        cases.append((f"TVB patient {k} ({str(z['integrator'])})", ez, gain, data))
    for i, spec in enumerate(args.synthetic):
        ez = [int(v) for v in spec.split(",")]
        p = vep.synthetic_patient(conn, sensors, ez, seed=100 + i)
        gain = seeg_gain_point_source(pos[p.contacts], conn.centres)
        cases.append((f"vbtjax synthetic (seed {100 + i})", ez, gain, p.recording.data))

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__}")
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    _time_gradients(conn, cases[0][2], cases[0][3])
    if args.grad_only:
        return 0
    print(f"NUTS: {args.chains} chains x ({args.warmup} warmup + {args.samples} draws), dense mass matrix from MAP")
    rows, tp, n_pred, n_true = [], 0, 0, 0
    for name, ez, gain, data in cases:
        env = vep.log_power_envelope(data, 256.0, 25)
        t0 = time.perf_counter()
        post = vep.vep_posterior(conn, gain, env)
        res = vep.infer_ez(
            post,
            key=jax.random.key(0),
            labels=conn.labels,
            num_chains=args.chains,
            num_warmup=args.warmup,
            num_samples=args.samples,
            progress=False,
        )
        seconds = time.perf_counter() - t0
        pred = res.predicted_ez().tolist()
        summ = res.samples.summary()
        rhat = max(float(np.nanmax(v["rhat"])) for v in summ.values())
        div = int(np.asarray(res.samples.stats["diverging"]).sum())
        hit = len(set(pred) & set(ez))
        tp, n_pred, n_true = tp + hit, n_pred + len(pred), n_true + len(ez)
        top = [(r["index"], round(r["probability"], 2)) for r in res.ranking[: len(ez) + 2]]
        print(
            f"{name:34s} EZ {ez!s:14s} predicted {pred!s:14s} top {top}  div {div:3d}  R-hat {rhat:5.2f}  "
            f"{seconds:6.1f} s",
            flush=True,
        )
        rows.append(
            {
                "patient": name,
                "ez": ez,
                "predicted": pred,
                "top": top,
                "divergences": div,
                "max_rhat": rhat,
                "seconds": round(seconds, 1),
            }
        )
    precision = tp / max(n_pred, 1)
    recall = tp / max(n_true, 1)
    print(f"pooled: precision {precision:.2f}, recall {recall:.2f} over {len(cases)} patients")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "precision": precision, "recall": recall}, indent=1))
    return 0


def _time_gradients(conn, gain, data, repeats: int = 20) -> None:
    """Gradient of the VEP log density: vbtjax.vep's dense integrator against the same likelihood computed through
    vbtjax.simulate (general delayed path), side by side, best of `repeats` (float32)."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    import vbtjax as vbt
    from vbtjax import vep

    post = vep.vep_posterior(conn, gain, vep.log_power_envelope(data, 256.0, 25))
    h = jnp.broadcast_to(jnp.asarray([vep.X1_REST, vep.Z_REST], jnp.float32)[None, :, None], (1, 2, 76))

    def via_simulate(u):
        net = post.network(u)
        x1 = vbt.simulate(net, 50.0, 0.1, history=h, monitors=vbt.monitors.SubSample(period=0.1)).ys[:, 0]
        logp = jnp.log(jnp.mean(jnp.exp(2 * x1).reshape(25, 20, 76), axis=1))
        lat = post.constrained(u)
        pred = vep.seeg_log_power(logp, post.gain) + lat["offset"]
        import numpyro.distributions as dist

        return post.log_prior(u) + jnp.sum(dist.Normal(pred, lat["sigma"]).log_prob(post.envelope))

    u = post.initial_position()
    np.testing.assert_allclose(float(via_simulate(u)), float(post.log_density(u)), rtol=1e-4)
    fns = {
        "vbtjax.vep (dense scan)": eqx.filter_jit(jax.value_and_grad(post.log_density)),
        "vbtjax.simulate": eqx.filter_jit(jax.value_and_grad(via_simulate)),
    }
    times = {k: [] for k in fns}
    for f in fns.values():
        jax.block_until_ready(f(u))
    for _ in range(repeats):
        for k, f in fns.items():
            t = time.perf_counter()
            jax.block_until_ready(f(u))
            times[k].append(time.perf_counter() - t)
    for k, v in times.items():
        print(
            f"gradient of the VEP log density via {k:26s}: best {1e3 * min(v):6.2f} ms, median "
            f"{1e3 * float(np.median(v)):6.2f} ms"
        )


if __name__ == "__main__":
    sys.exit(main())
