"""Ageing: a synthetic cohort of twins from 20 to 80 years, the trend of FC with age, and the coupling decline
recovered from the cohort's FC.

1. A young base twin: the Hopf network at the BOLD time scale (Deco et al. 2017; the preset of
   :mod:`vbtjax.inference.resting_state`) on the embedded HCP subject's connectome (94 regions), with the global
   coupling fitted to that subject in ``examples/resting_state.py`` (3.6e-3 /ms), BOLD-like series averaged per TR
   (720 ms) after a 60 s transient.
2. The cohort: for every age, ``twin.predict(Age(age - 20), FC(...))`` simulates the twin aged by
   :class:`vbtjax.scenarios.Age` (global coupling -0.3 % and conduction speed -0.5 % a year, exponential
   trajectory) over noise realisations (the spread of a person's sessions). FC summaries per realisation: mean FC,
   the SC-FC correlation r(log1p(SC), FC), and the similarity r(FC, young FC) to the mean FC of the 20-year-old.
3. The inverse problem: one session per age is taken as that subject's data, and the global coupling is fitted to it
   by gradient descent (:func:`vbtjax.inference.fit`, Adam with a decaying step on the squared FC distance, fresh
   noise every step, from the young coupling; the estimate is the mean of the last third of the steps). A straight
   line through log(fitted coupling) against age gives the yearly relative decline, compared with the truth
   (:data:`vbtjax.scenarios.AGE_COUPLING_RATE`). At the BOLD time scale (0.05 Hz) conduction delays of < 0.1 s do not
   change FC, so the speed decline is not identifiable from FC here: only the coupling is fitted.

    python examples/ageing.py --out figures                       # 7 ages, ~4 min on 2 cores
    python examples/ageing.py --quick --out /tmp/ageing            # 3 ages, short sessions

Writes ageing.png and ageing.json to ``--out``. Units: ms, mm, 1/ms; ages in years.
"""

import argparse
import json
import math
import time
from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")  # write files only, no window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import vbtjax as vbt  # noqa: E402
from vbtjax.inference import resting_state as rs  # noqa: E402

YOUNG_COUPLING = 3.6e-3  # 1/ms: examples/resting_state.py's fit of the embedded subject (docs/inference.md: 3.58e-3)


def _r(a, b):
    return float(np.corrcoef(a, b)[0, 1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ages", default="20,30,40,50,60,70,80", help="ages in years (default 20,30,...,80)")
    parser.add_argument("--volumes", type=int, default=600, help="BOLD volumes per session (default 600: 7.2 min)")
    parser.add_argument("--realisations", type=int, default=6, help="noise realisations per age (default 6)")
    parser.add_argument("--steps", type=int, default=10, help="Adam steps of each coupling fit (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--quick", action="store_true", help="ages 20, 50, 80; 150 volumes; 3 realisations; 3 steps")
    parser.add_argument("--out", default="ageing-out", help="output folder (default: ageing-out)")
    args = parser.parse_args(argv)
    if args.quick:
        args.ages, args.volumes, args.realisations, args.steps = "20,50,80", 150, 3, 3
    ages = np.array(sorted(float(a) for a in args.ages.split(",")))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    k_cohort, k_fit = jax.random.split(jax.random.key(args.seed))

    # 1. The young twin.
    data = vbt.datasets.hcp_subject("101309")
    net = rs.fc_network(data.connectome)
    net = vbt.scenarios.SetParameter("coupling.a", YOUNG_COUPLING)(net)
    dt = rs.default_dt(data.tr)
    n_discard = math.ceil(rs.TRANSIENT / data.tr)
    twin = vbt.Twin(
        net,
        simulation={
            "t1": float((args.volumes + n_discard) * data.tr),
            "dt": dt,
            "monitors": {"tavg": vbt.monitors.TemporalAverage(period=float(data.tr))},
            "history": np.zeros((net.model.n_svar, net.n_regions), np.asarray(net.speed).dtype),
        },
        metadata={"kind": "ageing cohort", "age": float(ages[0]), "subject": data.name},
    )
    fc_out = vbt.outcomes.FC(monitor="tavg", variable=0, discard=float(n_discard * data.tr))
    n = net.n_regions
    iu = np.triu_indices(n, 1)
    log_sc = np.log1p(np.asarray(data.connectome.weights))[iu]
    print(
        f"young twin: {data.name}, {n} regions, coupling {YOUNG_COUPLING:g} /ms, speed {float(net.speed):g} mm/ms, "
        f"{args.volumes} volumes per session; cohort ages {ages.astype(int).tolist()}"
    )

    # 2. The cohort: the twin aged by Age(age - young) over noise realisations.
    fcs, scenarios = [], []
    t0 = time.perf_counter()
    for age in ages:
        scenario = vbt.scenarios.Age(age - ages[0])
        pred = twin.predict(
            scenario,
            fc_out,
            key=jax.random.fold_in(k_cohort, int(age)),
            n_samples=args.realisations,
            baseline=False,
            progress=False,
        )
        fcs.append(np.asarray(pred.outcome))  # (R, N, N)
        scenarios.append(scenario)
    t_cohort = time.perf_counter() - t0
    fcs = np.stack(fcs)  # (ages, R, N, N)
    young = fcs[0].mean(axis=0)[iu]
    mean_fc = fcs[..., iu[0], iu[1]].mean(axis=-1)  # (ages, R)
    sc_fc = np.array([[_r(log_sc, f[iu]) for f in fa] for fa in fcs])
    sim_young = np.array([[_r(young, f[iu]) for f in fa] for fa in fcs])
    slope_mean_fc = float(np.polyfit(np.repeat(ages, mean_fc.shape[1]), mean_fc.ravel(), 1)[0])
    print(f"cohort: {len(ages)} ages x {args.realisations} realisations in {t_cohort:.0f} s")
    for k, age in enumerate(ages):
        print(
            f"  age {age:3.0f}: coupling x {float(scenarios[k].coupling_factor):.3f}, speed x "
            f"{float(scenarios[k].speed_factor):.3f}; mean FC {mean_fc[k].mean():.3f} +- {mean_fc[k].std():.3f}, "
            f"r(SC, FC) {sc_fc[k].mean():.3f}, r(FC, young FC) {sim_young[k].mean():.3f}"
        )
    print(f"  trend of mean FC: {10 * slope_mean_fc:+.4f} per decade")

    # 3. The coupling of every age fitted to one session (the first realisation) of that age.
    selection = rs.fc_parameters(net, dt, ("coupling",))  # coupling.a in (0, stability bound)
    fitted = []
    t0 = time.perf_counter()
    for k, age in enumerate(ages):
        session = fcs[k, 0]

        def loss(network, key, session=session):
            sim = rs.simulated_fc(network, data.tr, args.volumes, dt, key=key)
            return vbt.features.fc_distance(sim, session) ** 2

        res = vbt.inference.fit(
            loss,
            twin.network,
            selection,
            optax.adam(optax.cosine_decay_schedule(0.1, args.steps), b1=0.5),
            steps=args.steps,
            key=jax.random.fold_in(k_fit, int(age)),
            progress=False,
        )
        # the last steps' mean: the estimate with less of the gradient's noise
        fitted.append(float(np.mean(np.asarray(res.history["coupling.a"])[-max(1, args.steps // 3) :])))
    t_fit = time.perf_counter() - t0
    fitted = np.asarray(fitted)
    truth = np.array([float(s.coupling_factor) * YOUNG_COUPLING for s in scenarios])
    slope, intercept = np.polyfit(ages, np.log(fitted), 1)
    resid = np.log(fitted) - (intercept + slope * ages)
    dof = max(len(ages) - 2, 1)
    slope_se = float(np.sqrt(np.sum(resid**2) / dof / np.sum((ages - ages.mean()) ** 2)))  # standard error
    rate_fit = float(np.expm1(slope))
    rate_true = float(vbt.scenarios.AGE_COUPLING_RATE)
    print(f"coupling fits ({args.steps} steps each, {t_fit:.0f} s):")
    for age, f, t in zip(ages, fitted, truth, strict=True):
        print(f"  age {age:3.0f}: fitted {f:.4g} /ms, truth {t:.4g} /ms ({100 * (f / t - 1):+.1f} %)")
    print(
        f"  yearly change of the coupling: fitted {100 * rate_fit:+.3f} % (standard error {100 * slope_se:.3f} %), "
        f"truth {100 * rate_true:+.3f} %"
    )

    # 4. Figure.
    fig, ax = plt.subplots(1, 3, figsize=(16, 4.6), layout="constrained")
    for a, y, title in (
        (ax[0], mean_fc, "mean FC"),
        (ax[1], sim_young, "r(FC, mean FC at the youngest age)"),
    ):
        for k, age in enumerate(ages):
            a.plot(np.full(y.shape[1], age), y[k], ".", color="C7", ms=5)
        a.errorbar(ages, y.mean(axis=1), yerr=y.std(axis=1), fmt="o-", color="C0", capsize=3, label="mean +- sd")
        a.set(title=f"{title}: {args.realisations} noise realisations per age", xlabel="age (years)")
        a.legend(fontsize=8)
    ax[0].plot(ages, sc_fc.mean(axis=1), "s--", color="C1", label="r(log1p(SC), FC)")
    ax[0].legend(fontsize=8)
    a = ax[2]
    a.plot(ages, fitted, "o", color="C0", label="fitted to one session")
    a.plot(
        ages,
        np.exp(intercept + slope * ages),
        "-",
        color="C0",
        label=f"fit: {100 * rate_fit:+.2f} ± {100 * slope_se:.2f} %/year",
    )
    a.plot(ages, truth, "--", color="C3", label=f"truth: {100 * rate_true:+.2f} %/year")
    a.set(title="global coupling against age", xlabel="age (years)", ylabel="coupling.a (1/ms)")
    a.legend(fontsize=8)
    png = out / "ageing.png"
    fig.savefig(png, dpi=80)
    plt.close(fig)

    results = {
        "ages": ages.tolist(),
        "volumes": args.volumes,
        "realisations": args.realisations,
        "young_coupling": YOUNG_COUPLING,
        "coupling_factor": [float(s.coupling_factor) for s in scenarios],
        "speed_factor": [float(s.speed_factor) for s in scenarios],
        "mean_fc": mean_fc.mean(axis=1).tolist(),
        "mean_fc_sd": mean_fc.std(axis=1).tolist(),
        "sc_fc": sc_fc.mean(axis=1).tolist(),
        "similarity_to_young": sim_young.mean(axis=1).tolist(),
        "mean_fc_slope_per_year": slope_mean_fc,
        "fitted_coupling": fitted.tolist(),
        "true_coupling": truth.tolist(),
        "fitted_rate_per_year": rate_fit,
        "fitted_rate_se": slope_se,
        "true_rate_per_year": rate_true,
        "steps": args.steps,
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    (out / "ageing.json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {png}, {out / 'ageing.json'} ({results['seconds']} s)")
    return results


if __name__ == "__main__":
    main()
