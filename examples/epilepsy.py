"""Epilepsy: find a virtual patient's epileptogenic zone with NUTS, then compare virtual surgeries on its twin.

1. A synthetic patient (:func:`vbtjax.vep.synthetic_patient`): an Epileptor2D network on TVB's connectome whose
   epileptogenic zone (EZ) is known, implanted with SEEG electrodes; its seizure is recorded as SEEG signals.
2. The posterior of every region's excitability ``x0`` and the global coupling given the SEEG log-power envelope
   (:func:`vbtjax.vep.recording_posterior`), sampled with NUTS after a MAP start (:func:`vbtjax.vep.infer_ez`);
   regions are ranked by their probability of being epileptogenic.
3. The patient's twin (:func:`vbtjax.vep.vep_twin`: the posterior draws of ``x0`` and ``K`` + the VEP's simulation
   settings), saved and loaded back.
4. Virtual surgery: ``twin.predict(Resect(regions), Seizes(...))`` simulates every posterior draw after the resection
   (and ``twin.predict(None, ...)`` without one); an option's P(seizure-free) is the share of draws in which no
   remaining region seizes. Options: nothing, the predicted EZ (the regions with P(EZ) > 0.5, and, when fewer, those
   with P(EZ) > 0.9), the predicted EZ plus the region most likely recruited by it (propagation zone), and a wrong
   region (the strongest partner of the EZ that the model says does not seize). The recommendation is the option with
   the highest P(seizure-free), the smallest resection among equals.

    python examples/epilepsy.py --out figures                   # 76 regions, 2 x 100 draws: ~3 min on 2 cores
    python examples/epilepsy.py --quick --out /tmp/ep           # 20 regions around the EZ, short chains

Writes epilepsy.png, epilepsy.json and the twin folder ``twin/`` to ``--out``. Model time in ms.
"""

import argparse
import json
import time
from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")  # write files only, no window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import vbtjax as vbt  # noqa: E402
from vbtjax import vep  # noqa: E402


def _subset(conn, ez, k):
    """The `k` regions nearest to the EZ (by centre distance; the EZ included), as a connectome, and the EZ's
    indices in it."""
    keep = conn.nearest(ez, k)
    return conn.subset(keep), [int(np.flatnonzero(keep == i)[0]) for i in ez]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ez", default="12,40", help="true EZ, region indices of TVB's 76 (default 12,40)")
    parser.add_argument("--regions", type=int, default=76, help="keep the N regions nearest the EZ (default 76: all)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the patient and of NUTS (default 1)")
    parser.add_argument("--chains", type=int, default=2, help="NUTS chains (default 2)")
    parser.add_argument("--warmup", type=int, default=100, help="warmup steps per chain (default 100)")
    parser.add_argument("--samples", type=int, default=100, help="draws per chain (default 100)")
    parser.add_argument("--map-steps", type=int, default=200, help="L-BFGS/Adam steps to the MAP start (200)")
    parser.add_argument("--draws", type=int, default=100, help="posterior draws simulated per surgery (default 100)")
    parser.add_argument("--quick", action="store_true", help="20 regions, 2 x 10 draws after 10 warmup steps")
    parser.add_argument("--out", default="epilepsy-out", help="output folder (default: epilepsy-out)")
    args = parser.parse_args(argv)
    if args.quick:
        args.regions, args.warmup, args.samples = min(args.regions, 20), 10, 10
        args.map_steps, args.draws = 50, 20
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    # 1. The patient.
    conn = vbt.datasets.tvb_connectome(76)
    sensors = vbt.sensors.tvb_sensors("seeg")
    ez_76 = sorted(int(i) for i in args.ez.split(","))
    conn, ez = _subset(conn, ez_76, args.regions) if args.regions < conn.n_regions else (conn, ez_76)
    labels = list(conn.labels)
    n = conn.n_regions
    patient = vep.synthetic_patient(conn, sensors, ez, seed=args.seed)
    pz_true = sorted(set(patient.seizing) - set(ez))
    print(
        f"synthetic patient: {n} regions, EZ {[labels[i] for i in ez]} ({ez}), seizing regions {patient.seizing}, "
        f"{len(patient.recording.ch_names)} SEEG contacts"
    )

    # 2. The posterior and the EZ.
    t0 = time.perf_counter()
    post = vep.recording_posterior(conn, sensors, patient.recording)
    result = vep.infer_ez(
        post,
        key=jax.random.key(args.seed),
        labels=labels,
        num_chains=args.chains,
        num_warmup=args.warmup,
        num_samples=args.samples,
        map_steps=args.map_steps,
        progress=False,
    )
    t_nuts = time.perf_counter() - t0
    predicted = result.predicted_ez().tolist()
    top = ", ".join(f"{r['label']} ({r['index']}) {r['probability']:.2f}" for r in result.ranking[:4])
    print(f"NUTS {args.chains} x {args.samples} draws in {t_nuts:.0f} s; P(EZ): {top}; predicted EZ {predicted}")

    # 3. The twin, saved and loaded back.
    twin = vep.vep_twin(conn, result, metadata={"patient": "synthetic", "true_ez": ez})
    twin = vbt.Twin.load(twin.save(out / "twin", overwrite=True))
    print(f"saved and loaded {twin}")

    # 4. Virtual surgeries over the posterior draws.
    seizes = vbt.outcomes.Seizes(monitor="x1", threshold=vep.SEIZURE_X1)
    draws = min(args.draws, twin.n_draws)
    t0 = time.perf_counter()
    before = np.asarray(twin.predict(None, seizes, n_samples=draws, baseline=False, progress=False).outcome)
    p_before = before.mean(axis=0)
    weights = np.asarray(twin.network.connectome.weights)
    to_ez = weights[:, predicted].sum(axis=1) + weights[predicted].sum(axis=0) if predicted else weights.sum(0)
    candidates = [i for i in np.argsort(-p_before) if i not in predicted and p_before[i] > 0]
    pz = int(candidates[0]) if candidates else int(np.argmax(np.where(np.isin(np.arange(n), predicted), -1, to_ez)))
    healthy = [i for i in np.argsort(-to_ez) if i not in predicted and p_before[i] < 0.05 and i != pz]
    wrong = int(healthy[0])
    confident = result.predicted_ez(0.9).tolist()
    options = {"nothing": []}
    if confident and confident != predicted:
        options["EZ, P > 0.9"] = confident
    options["EZ, P > 0.5"] = predicted
    options["EZ + propagation"] = sorted({*predicted, pz})
    options["wrong region"] = [wrong]
    report = {}
    for name, regions in options.items():
        if regions:
            scenario = vbt.scenarios.Resect(regions)
            seized = np.asarray(twin.predict(scenario, seizes, n_samples=draws, baseline=False, progress=False).outcome)
            seized = seized & scenario.kept(twin.network)[None]  # a resected region is no longer part of the brain
        else:
            seized = before
        report[name] = {
            "resect": [int(i) for i in regions],
            "labels": [labels[i] for i in regions],
            "p_seizure_free": float(1.0 - np.mean(np.any(seized, axis=1))),
            "p_seize": seized.mean(axis=0),
        }
    t_surgery = time.perf_counter() - t0
    best = max(report, key=lambda k: (report[k]["p_seizure_free"], -len(report[k]["resect"])))
    for name, r in report.items():
        mark = "  <- recommended" if name == best else ""
        print(f"  {name:17s} resect {r['labels']!s:28s} P(seizure-free) = {r['p_seizure_free']:.2f}{mark}")
    print(f"{draws} posterior draws per option in {t_surgery:.0f} s")

    # 5. Figure.
    fig, ax = plt.subplots(1, 3, figsize=(17, 5), layout="constrained", width_ratios=[2, 1.3, 1.7])
    x = np.arange(n)
    a = ax[0]
    a.bar(x, result.p_ez, color=["C3" if i in ez else "C7" for i in x])
    a.set(title="posterior P(epileptogenic); red: true EZ", xlabel="region", ylabel="probability", ylim=(0, 1.05))
    a = ax[1]
    names = list(report)
    colours = ["C7", "C2", "C4", "C0", "C1"][: len(names)]
    y = np.arange(len(names))[::-1]
    p_free = [report[k]["p_seizure_free"] for k in names]
    bars = a.barh(y, p_free, color=colours)
    bars[names.index(best)].set_edgecolor("k")
    bars[names.index(best)].set_linewidth(2)
    for yi, p in zip(y, p_free, strict=True):
        a.text(min(p, 0.8) + 0.02, yi, f"{p:.2f}", va="center", fontsize=9)
    a.set_yticks(y, [f"{k}\n{', '.join(report[k]['labels']) or '-'}" for k in names], fontsize=8)
    a.set(title=f"P(seizure-free) over {draws} posterior draws", xlim=(0, 1.05))
    a = ax[2]
    shown = sorted({*ez, *np.flatnonzero(np.max([r["p_seize"] for r in report.values()], axis=0) > 0).tolist()})
    w = 0.8 / len(names)
    for k, name in enumerate(names):
        a.bar(
            np.arange(len(shown)) + w * (k - (len(names) - 1) / 2),
            report[name]["p_seize"][shown],
            w,
            color=colours[k],
            label=name,
        )
    a.set_xticks(range(len(shown)), [labels[i] + (" (EZ)" if i in ez else "") for i in shown], fontsize=8)
    a.set(title="P(region seizes) before / after each surgery", ylabel="probability", ylim=(0, 1.05))
    a.legend(fontsize=8)
    png = out / "epilepsy.png"
    fig.savefig(png, dpi=80)
    plt.close(fig)

    results = {
        "n_regions": n,
        "true_ez": ez,
        "true_ez_labels": [labels[i] for i in ez],
        "true_seizing": patient.seizing,
        "true_propagation": pz_true,
        "predicted_ez": predicted,
        "ranking": result.ranking[:5],
        "chains": args.chains,
        "warmup": args.warmup,
        "samples": args.samples,
        "draws": draws,
        "options": {
            k: {kk: (np.asarray(v).tolist() if kk == "p_seize" else v) for kk, v in r.items()}
            for k, r in report.items()
        },
        "recommended": best,
        "recommended_resection": report[best]["resect"],
        "seconds_nuts": round(t_nuts, 1),
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    (out / "epilepsy.json").write_text(json.dumps(results, indent=1) + "\n")
    print(
        f"recommended: {best} (resect {report[best]['labels']}); wrote {png}, {out / 'epilepsy.json'} "
        f"({results['seconds']} s)"
    )
    return results


if __name__ == "__main__":
    main()
