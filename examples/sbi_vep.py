"""Amortised VEP: train one neural posterior estimator for an implantation, then find the epileptogenic zone (EZ) of
several synthetic patients in seconds each, and compare with NUTS on one of them.

1. An implantation (:func:`vbtjax.vep.implant` around the candidate EZ regions, tvb-data's seeg_588 contacts) on
   the ``--regions`` regions of TVB's 76-region connectome nearest the candidates (all 76 with ``--regions 76``).
2. The SBI problem (:func:`vbtjax.sbi.problems.vep_problem`: the VEP's priors, the contacts' log-power envelope
   with fixed observation noise, minus its mean), a budget of ``--n`` simulations, NPE trained on it (an ensemble
   of ``--ensemble`` spline flows on the first ``--pca`` principal components of the features) and calibrated on
   held-out simulations.
3. Synthetic patients (``x0`` drawn as :func:`vbtjax.vep.synthetic_patient` does, recorded on the same contacts):
   for each the true EZ, the regions ranked by the NPE's ``P(x0 > X0_CRITICAL)``, and the predicted EZ.
4. NUTS (:func:`vbtjax.vep.infer_ez`) on the first patient: posterior means and widths side by side.

    python examples/sbi_vep.py --out /tmp/sbi-vep                       # 20 regions, 20 000 simulations
    python examples/sbi_vep.py --quick --out /tmp/sbi-vep-quick         # tiny settings (tests)

Writes ``sbi_vep.json`` and ``sbi_vep.png`` to ``--out`` (and the budget and estimator under it). Model time in ms.
"""

import argparse
import json
import time
from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import vbtjax as vbt  # noqa: E402
from vbtjax import sbi, vep  # noqa: E402
from vbtjax.sbi.problems import vep_problem  # noqa: E402
from vbtjax.sensors import seeg_gain_point_source  # noqa: E402


def _subset(conn, centre_regions, k):
    keep = conn.nearest(centre_regions, k)
    return conn.subset(keep), keep


def _patient(conn, gain, contacts, ez, seed):
    """x0 as vep.synthetic_patient draws it, recorded on the given contacts (64 samples per window)."""
    rng = np.random.default_rng(seed)
    n = conn.n_regions
    x0 = rng.uniform(-2.6, -2.3, n)
    x0[ez] = rng.uniform(-1.8, -1.5, len(ez))
    net = vep.vep_network(conn, x0=x0, K=vep.K_DEFAULT)
    x1 = np.asarray(vep.simulate_x1(net, 50.0, 0.1, 0.5))
    data = vep.synthetic_seeg(x1, gain, key=jax.random.key(seed), samples_per_x1=16)
    return vep.SEEGRecording(data, 256.0, contacts), x0, vep.seizing_regions(x1).tolist()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patients", nargs="*", default=["12", "40", "12,40"], help="EZ of each patient (TVB 76 indices)")
    ap.add_argument("--regions", type=int, default=20, help="regions nearest the candidate EZs kept (76: all)")
    ap.add_argument("--n", type=int, default=20000, help="simulation budget (20000)")
    ap.add_argument("--max-epochs", type=int, default=300)
    ap.add_argument("--pca", type=int, default=64, help="principal components of the features the flows see (64)")
    ap.add_argument("--ensemble", type=int, default=4, help="flows in the estimator's mixture (4)")
    ap.add_argument("--nuts-warmup", type=int, default=100)
    ap.add_argument("--nuts-samples", type=int, default=100)
    ap.add_argument("--no-nuts", action="store_true", help="skip the NUTS comparison")
    ap.add_argument("--quick", action="store_true", help="tiny settings: 8 regions, 1500 simulations, short NUTS")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="sbi-vep", help="output folder")
    args = ap.parse_args(argv)
    if args.quick:
        args.regions, args.n, args.max_epochs, args.nuts_warmup, args.nuts_samples = 8, 1500, 40, 30, 30
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    full = vbt.datasets.tvb_connectome(76)
    sensors = vbt.sensors.tvb_sensors("seeg")
    ez_full = [[int(v) for v in p.split(",")] for p in args.patients]
    candidates = sorted({i for e in ez_full for i in e})
    conn, keep = _subset(full, candidates, args.regions)
    ez_sets = [[int(np.flatnonzero(keep == i)[0]) for i in e] for e in ez_full]
    contacts_idx = vep.implant(sensors, conn.centres, [ez[0] for ez in ez_sets], n_electrodes=8, seed=args.seed)
    contacts = [str(sensors.labels[c]) for c in contacts_idx]
    gain = seeg_gain_point_source(np.asarray(sensors.positions)[contacts_idx], conn.centres)
    problem = vep_problem(conn, gain, contacts=contacts)
    print(
        f"{conn.n_regions} regions, {len(contacts)} contacts, {problem.prior.dim} parameters, "
        f"{problem.n_features} features"
    )

    # 2. budget, training, calibration
    t0 = time.perf_counter()
    budget = problem.simulate_budget(args.n, out / "budget", key=jax.random.key(args.seed), chunk_size=2000)
    t_budget = time.perf_counter() - t0
    train, test = budget.split(min(500, args.n // 10))
    npe, hist = sbi.train_npe(
        train,
        key=jax.random.key(1),
        layers=4,
        width=64,
        pca=args.pca,
        ensemble=args.ensemble,
        max_epochs=args.max_epochs,
        patience=20,
    )
    cal = sbi.calibrate(npe, problem.prior, test, key=jax.random.key(2), num_draws=200)
    print(cal.summary().splitlines()[-1])
    print(
        f"budget {t_budget:.1f} s ({args.n / t_budget:.0f} sims/s incl. compilation), training {hist['seconds']:.1f} s "
        f"({hist['member_epochs'].tolist()} epochs), max coverage error {cal.max_coverage_error():.3f} "
        f"(99% band {cal.coverage_band():.3f})"
    )
    npe.save(out / "npe", problem.prior, history=hist, description=problem.description(), overwrite=True)

    # 3. the patients
    observed = problem.extra["observed"]
    rows, recs = [], []
    for j, ez in enumerate(ez_sets):
        rec, x0, seizing = _patient(conn, gain, contacts, ez, seed=100 + j)
        x = problem.observe(rec)
        t0 = time.perf_counter()
        draws = npe.posterior(problem.prior, jax.random.key(10 + j), x, 1000)
        t_inf = time.perf_counter() - t0
        p = (draws["x0"] > vep.X0_CRITICAL).mean(0)
        order = np.lexsort((-p, ~observed))
        predicted = [int(i) for i in order if observed[i] and p[i] > 0.5]
        top = [(int(i), conn.labels[i], round(float(p[i]), 2)) for i in order[: len(ez) + 2]]
        print(
            f"patient {j}: true EZ {ez} ({[conn.labels[i] for i in ez]}), seizing {seizing}; predicted {predicted}; "
            f"top {top}; {t_inf * 1e3:.0f} ms"
        )
        rows.append(
            {
                "ez": ez,
                "ez_tvb76": ez_full[j],
                "seizing": seizing,
                "predicted": predicted,
                "top": top,
                "p_above": p,
                "x0_true": x0,
                "seconds": t_inf,
            }
        )
        recs.append((rec, draws, x0))

    # 4. NUTS on the first patient
    comparison = None
    if not args.no_nuts:
        rec, draws, x0 = recs[0]
        post = vep.recording_posterior(conn, sensors, rec, feature="power", time_scale=1.0)  # as the estimator
        t0 = time.perf_counter()
        res = vep.infer_ez(
            post,
            key=jax.random.key(3),
            labels=conn.labels,
            num_warmup=args.nuts_warmup,
            num_samples=args.nuts_samples,
            progress=False,
        )
        t_nuts = time.perf_counter() - t0
        cmp = sbi.compare_posteriors(draws, {k: res.samples.samples[k] for k in ("x0", "K")})
        print(f"NUTS on patient 0: {t_nuts:.0f} s; predicted EZ {res.predicted_ez().tolist()}")
        print(
            f"{'':10s} {'NPE mean':>9s} {'NUTS mean':>9s} {'NPE sd':>7s} {'NUTS sd':>7s} {'P>crit NPE':>10s} "
            f"{'NUTS':>5s}  truth"
        )
        p_npe = rows[0]["p_above"]
        disagree = []
        for i in range(conn.n_regions):
            c = cmp["x0"]
            d = abs(c["mean_a"][i] - c["mean_b"][i]) / c["sd_b"][i]
            flag = ""
            if observed[i] and (d > 1 or abs(p_npe[i] - res.p_above[i]) > 0.3):
                flag = "  <- disagree"
                disagree.append(i)
            print(
                f"x0[{i:2d}] {c['mean_a'][i]:9.2f} {c['mean_b'][i]:9.2f} {c['sd_a'][i]:7.3f} {c['sd_b'][i]:7.3f} "
                f"{p_npe[i]:10.2f} {res.p_above[i]:5.2f}  {x0[i]:.2f}{'' if observed[i] else ' (unobserved)'}{flag}"
            )
        k = cmp["K"]
        print(
            f"K      {float(k['mean_a']):9.3f} {float(k['mean_b']):9.3f} {float(k['sd_a']):7.3f} "
            f"{float(k['sd_b']):7.3f}  truth {vep.K_DEFAULT}"
        )
        print(f"observed regions where NPE and NUTS disagree (|mean diff| > 1 NUTS sd or |dP| > 0.3): {disagree}")
        comparison = {
            "seconds_nuts": t_nuts,
            "nuts_predicted": res.predicted_ez().tolist(),
            "disagree": disagree,
            "x0": cmp["x0"],
            "K": cmp["K"],
            "p_above_nuts": res.p_above,
        }

    fig, ax = plt.subplots(1 + len(rows), 1, figsize=(10, 2.4 * (1 + len(rows))))
    ax[0].plot(hist["train_loss"], label="train")
    ax[0].plot(hist["val_loss"], label="validation")
    ax[0].set(title="NPE training", xlabel="epoch")
    ax[0].legend()
    for a, r in zip(ax[1:], rows, strict=True):
        colors = ["tab:red" if i in r["ez"] else "tab:gray" for i in range(conn.n_regions)]
        a.bar(np.arange(conn.n_regions), r["p_above"], color=colors)
        a.set(ylabel="P(x0 > crit)", ylim=(0, 1.02), title=f"true EZ {r['ez']} (red)")
    fig.tight_layout()
    fig.savefig(out / "sbi_vep.png", dpi=100)
    summary = {
        "regions": conn.n_regions,
        "contacts": len(contacts),
        "n": args.n,
        "seconds_budget": t_budget,
        "seconds_training": hist["seconds"],
        "epochs": hist["member_epochs"],
        "pca": args.pca,
        "ensemble": args.ensemble,
        "joint_coverage_50": float(cal.joint_coverage[np.argmin(np.abs(cal.levels - 0.5))]),
        "hpd_pvalue": cal.hpd_pvalue(),
        "is_calibrated": cal.is_calibrated(),
        "max_coverage_error": cal.max_coverage_error(),
        "coverage_band_99": cal.coverage_band(),
        "joint_coverage_90": float(cal.joint_coverage[np.argmin(np.abs(cal.levels - 0.9))]),
        "patients": rows,
        "nuts": comparison,
        "seconds_total": time.perf_counter() - t_start,
    }
    from vbtjax.cli import _jsonable

    (out / "sbi_vep.json").write_text(json.dumps(_jsonable(summary), indent=1) + "\n")
    print(f"{summary['seconds_total']:.0f} s in all; wrote {out}/")
    return summary


if __name__ == "__main__":
    main()
