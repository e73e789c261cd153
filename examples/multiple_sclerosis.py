"""Multiple sclerosis: lesioned tracts and slowed conduction on a twin, and the conduction speed recovered from FC.

Demyelination slows conduction along white-matter tracts; lesions cut or thin them. This example asks both
questions of a twin, then the inverse one: from a patient's FC, how slow has conduction become?

1. The twin: TVB's connectome (76 regions, or the first ``--regions``), a Generic2dOscillator at every region in its
   excitable regime, linear coupling, conduction at 3 mm/ms with fractional delays (``delay_mode="interpolate"``:
   the simulation is differentiable in the speed). Its data are the FC of the network's response to a known
   perturbation of every region's state (a stimulation protocol): each region makes a damped excursion that the
   others receive through the delayed tracts, so the FC carries the conduction delays. 400 ms, steps of 0.5 ms.
   Deterministic by default; ``--noise`` adds noise, and the what-ifs are then distributions over realisations
   (with noise, the fitted speed is biased by a few %: the FC of the decayed response is noise-dominated).
2. What-ifs with ``twin.predict``: lesioned tracts (:class:`vbtjax.scenarios.Lesion`, the strongest tracts keep
   20 % of their weight), conduction slowed on those tracts only and everywhere
   (:class:`vbtjax.scenarios.SlowConduction`), and lesion and slowing together (``Lesion >> SlowConduction``): how far
   each moves the FC from the healthy twin's.
3. The inverse problem: a "patient" whose conduction is 1.5 times slower everywhere (2 mm/ms) is simulated; its FC
   is the data. The speed is fitted by gradient descent (:func:`vbtjax.inference.fit`, Adam on the squared FC
   distance) from the healthy 3 mm/ms; the true speed is never given to the fit.

    python examples/multiple_sclerosis.py --out figures            # 76 regions: ~10 s on 2 cores
    python examples/multiple_sclerosis.py --quick --out /tmp/ms     # 20 regions, fewer steps

Writes multiple_sclerosis.png and multiple_sclerosis.json to ``--out``. Units: ms, mm, mm/ms.
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
import optax  # noqa: E402

import vbtjax as vbt  # noqa: E402

SPEED_RANGE = (1.0, 8.0)  # mm/ms: the delay buffer serves every speed in it, so the fit may move freely inside


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--regions", type=int, default=76, help="first N regions of TVB's 76 (default 76)")
    parser.add_argument("--speed", type=float, default=3.0, help="healthy conduction speed, mm/ms (default 3)")
    parser.add_argument("--slowing", type=float, default=1.5, help="the patient's slowing factor (default 1.5)")
    parser.add_argument("--lesions", type=int, default=10, help="number of lesioned tracts (default 10)")
    parser.add_argument(
        "--noise", type=float, default=0.0, help="noise nsig of V and W (default 0: deterministic responses)"
    )
    parser.add_argument("--duration", type=float, default=400.0, help="simulated ms per run (default 400)")
    parser.add_argument("--realisations", type=int, default=8, help="noise realisations per what-if (default 8)")
    parser.add_argument("--steps", type=int, default=60, help="Adam steps of the speed fit (default 60)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--quick", action="store_true", help="20 regions, 4 realisations, 2 what-ifs, 25 steps")
    parser.add_argument("--out", default="multiple-sclerosis-out", help="output folder")
    args = parser.parse_args(argv)
    if args.quick:
        args.regions, args.realisations, args.steps = min(args.regions, 20), min(args.realisations, 4), 25
    if args.noise == 0:
        args.realisations = 1  # without noise every realisation is the same
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    k_pert, k_whatif, k_patient, k_fit = jax.random.split(jax.random.key(args.seed), 4)

    # 1. The healthy twin.
    conn = vbt.datasets.tvb_connectome(76)
    idx = np.arange(args.regions)
    conn = vbt.Connectome(
        weights=np.asarray(conn.weights)[np.ix_(idx, idx)],
        lengths=np.asarray(conn.lengths)[np.ix_(idx, idx)],
        labels=[conn.labels[i] for i in idx],
    )
    conn = conn.without_self_connections().normalised("max")
    n = conn.n_regions
    net = vbt.Network(
        model=vbt.models.Generic2dOscillator(),  # TVB's defaults: excitable (a stable focus)
        connectome=conn,
        coupling=vbt.coupling.Linear(a=0.1),
        speed=args.speed,
        noise=vbt.noise.Additive(nsig=args.noise) if args.noise > 0 else None,
        delay_mode="interpolate",
        speed_range=SPEED_RANGE,
    )
    perturbation = np.asarray(jax.random.uniform(k_pert, (2, n), minval=-1.0, maxval=1.0))  # state at t0: (V, W)
    twin = vbt.Twin(
        net,
        simulation={
            "t1": args.duration,
            "dt": 0.5,
            "monitors": {"tavg": vbt.monitors.TemporalAverage(period=2.0)},
            "history": perturbation.astype(np.asarray(net.speed).dtype),
        },
        metadata={"kind": "multiple-sclerosis demo", "connectome": f"TVB 76, first {n} regions"},
    )
    lengths = np.asarray(conn.lengths)
    print(
        f"twin: {n} regions, tracts {lengths[lengths > 0].min():.0f}-{lengths.max():.0f} mm at {args.speed:g} mm/ms "
        f"(delays up to {lengths.max() / args.speed:.0f} ms), {args.duration:g} ms per run"
    )

    # 2. What-ifs (over noise realisations with --noise): lesions, slowed conduction, both.
    w = np.asarray(conn.weights)
    upper = np.triu_indices(n, 1)
    strongest = np.argsort(-(w + w.T)[upper])[: args.lesions]
    tracts = [(int(upper[0][k]), int(upper[1][k])) for k in strongest]
    scenarios = {
        "lesion (20 % left)": vbt.scenarios.Lesion(tracts=tracts, factor=0.2),
        "slowed x2 on those tracts": vbt.scenarios.SlowConduction(2.0, tracts=tracts),
        f"slowed x{args.slowing:g} everywhere": vbt.scenarios.SlowConduction(args.slowing),
        "lesion + slowed everywhere": vbt.scenarios.Lesion(tracts=tracts, factor=0.2)
        >> vbt.scenarios.SlowConduction(args.slowing),
    }
    if args.quick:
        scenarios = {k: v for i, (k, v) in enumerate(scenarios.items()) if i in (0, 2)}
    fc_out = vbt.outcomes.FC(monitor="tavg", variable=0)
    effects = {}
    healthy = None
    t0 = time.perf_counter()
    for name, scenario in scenarios.items():
        # the healthy twin is simulated once (the first what-if's baseline): every what-if uses the same noise keys
        pred = twin.predict(
            scenario, fc_out, key=k_whatif, n_samples=args.realisations, baseline=healthy is None, progress=False
        )
        if healthy is None:
            healthy = {"mean_fc": pred.mean("baseline"), "fc": np.asarray(pred.baseline)}
        d = np.asarray(vbt.features.fc_distance(pred.outcome, healthy["fc"]))  # per realisation, same noise
        effects[name] = {"scenario": scenario.to_dict(), "fc_distance": d, "mean_fc": pred.mean()}
    fcs = healthy["fc"]
    retest = np.asarray(vbt.features.fc_distance(fcs, np.roll(fcs, 1, axis=0))) if len(fcs) > 1 else np.zeros(1)
    print(f"what-ifs, {args.realisations} realisation(s) each ({time.perf_counter() - t0:.0f} s):")
    for name, e in effects.items():
        print(
            f"  {name:28s} FC distance to the healthy twin {e['fc_distance'].mean():.4f} "
            f"+- {e['fc_distance'].std():.4f}"
        )
    if args.noise > 0:
        print(f"  {'(healthy, other noise)':28s} FC distance {retest.mean():.4f}")

    # 3. The patient: conduction --slowing times slower; recover the speed from its FC.
    patient = vbt.scenarios.SlowConduction(args.slowing)(twin.network)
    v_true = float(patient.speed)
    s = twin.simulation

    def simulated_fc(network, key):
        sol = vbt.simulate(network, s["t1"], s["dt"], history=s["history"], monitors=s["monitors"], key=key)
        return fc_out(sol)

    data = simulated_fc(patient, k_patient)
    selection = vbt.inference.Selection(
        [vbt.inference.Parameter(lambda m: m.speed, vbt.inference.Interval(*SPEED_RANGE))]
    )
    t0 = time.perf_counter()
    res = vbt.inference.fit(
        lambda network, key: vbt.features.fc_distance(simulated_fc(network, key), data) ** 2,
        twin.network,
        selection,
        optax.adam(0.1, b1=0.5),  # less momentum than Adam's default 0.9: no overshoot past the minimum
        steps=args.steps,
        key=k_fit,
        progress=False,
    )
    t_fit = time.perf_counter() - t0
    v_fit = float(res.params["speed"])
    rel = v_fit / v_true - 1
    print(
        f"patient speed {v_true:.3f} mm/ms; fitted from {args.speed:g} mm/ms in {args.steps} steps ({t_fit:.0f} s): "
        f"{v_fit:.3f} mm/ms ({100 * rel:+.2f} %)"
    )

    # 4. Figure.
    fig, ax = plt.subplots(2, 3, figsize=(16, 9), layout="constrained")
    fitted_fc = np.asarray(simulated_fc(res.net, k_patient))
    base_fc = np.asarray(healthy["mean_fc"])
    diff = np.asarray(data) - base_fc
    lim = float(np.max(np.abs(diff))) or 1.0
    for a, m, title, vmax, label in (
        (ax[0, 0], base_fc, f"healthy twin ({args.speed:g} mm/ms): FC", 1.0, "FC"),
        (ax[0, 1], diff, f"patient ({v_true:.2f} mm/ms) - healthy", lim, "FC difference"),
        (ax[0, 2], fitted_fc - np.asarray(data), f"fitted ({v_fit:.3f} mm/ms) - patient", lim, "FC difference"),
    ):
        m = m.copy()
        np.fill_diagonal(m, np.nan)
        im = a.imshow(m, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        a.set(title=title, xlabel="region", ylabel="region")
        fig.colorbar(im, ax=a, shrink=0.8, label=label)
    a = ax[1, 0]
    names = list(effects)
    a.barh(
        range(len(names)),
        [effects[k]["fc_distance"].mean() for k in names],
        xerr=[effects[k]["fc_distance"].std() for k in names],
        color="C0",
    )
    if args.noise > 0:
        a.axvline(retest.mean(), color="k", ls=":", label="healthy, other noise")
        a.legend(fontsize=8)
    a.set_yticks(range(len(names)), names, fontsize=8)
    a.set(title="FC distance to the healthy twin", xlabel="RMS difference of FC entries")
    a = ax[1, 1]
    a.semilogy(np.asarray(res.losses), "C0")
    a.set(title="speed fit: loss", xlabel="Adam step", ylabel="FC distance$^2$")
    a = ax[1, 2]
    a.plot(np.asarray(res.history["speed"]), "C0", label="fitted")
    a.axhline(v_true, color="C3", ls="--", label="patient (truth)")
    a.axhline(args.speed, color="k", ls=":", label="healthy")
    a.set(title="speed fit: conduction speed", xlabel="Adam step", ylabel="mm/ms")
    a.legend(fontsize=8)
    png = out / "multiple_sclerosis.png"
    fig.savefig(png, dpi=80)
    plt.close(fig)

    results = {
        "n_regions": n,
        "healthy_speed": args.speed,
        "true_speed": v_true,
        "fitted_speed": v_fit,
        "relative_error": rel,
        "steps": args.steps,
        "lesioned_tracts": tracts,
        "fc_distance": {
            k: {"mean": float(e["fc_distance"].mean()), "sd": float(e["fc_distance"].std())} for k, e in effects.items()
        },
        "fc_distance_retest": float(retest.mean()),
        "realisations": args.realisations,
        "seconds_fit": round(t_fit, 1),
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    (out / "multiple_sclerosis.json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {png}, {out / 'multiple_sclerosis.json'} ({results['seconds']} s)")
    return results


if __name__ == "__main__":
    main()
