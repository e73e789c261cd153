"""Resting state: personalise a twin to a subject's FC, then ask what a lesion of a hub's white matter would do.

1. The HCP subject embedded in vbtjax (94 regions, FC of 1 200 BOLD volumes at TR = 720 ms) and the Hopf network
   at the BOLD time scale (Deco et al. 2017): the global coupling is fitted to the subject's FC by gradient descent
   (:func:`vbtjax.inference.fit_fc`).
2. The fitted network becomes a :class:`vbtjax.Twin` with the fit's simulation settings (TR averages after the
   60 s transient, from rest); it is saved and loaded back (a folder of JSON + arrays, content hash checked).
3. What if every tract of the subject's strongest hub were cut (:class:`vbtjax.scenarios.Lesion`)? ``twin.predict``
   simulates the twin with and without the lesion over noise realisations (the same noise for both: common random
   numbers) and returns the FC of each. The change is summarised per realisation by the similarity of the lesioned
   FC to the intact FC, set against the similarity of two intact sessions with different noise (the test-retest
   floor), and per region by the change of its mean FC with the other regions.

    python examples/resting_state.py --out figures            # ~2.5-3 min on 2 cores
    python examples/resting_state.py --quick --out /tmp/rs    # a smoke run (~15-40 s)

Writes resting_state.png, resting_state.json and the twin folder ``twin/`` to ``--out``. Units: ms, mm, 1/ms.
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

import vbtjax as vbt  # noqa: E402
from vbtjax.inference import resting_state as rs  # noqa: E402


def _upper(m):
    return np.asarray(vbt.features.fc_upper(m))


def _corr(a, b):
    return float(np.corrcoef(_upper(a), _upper(b))[0, 1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12, help="Adam steps of the FC fit (default: 12)")
    parser.add_argument("--lr", type=float, default=0.25, help="Adam learning rate (default: 0.25)")
    parser.add_argument(
        "--samples", type=int, default=None, help="BOLD volumes per simulation (default: the recording's 1 200)"
    )
    parser.add_argument("--realisations", type=int, default=16, help="noise realisations of the what-if (default 16)")
    parser.add_argument("--region", default=None, help="region to lesion, index or label (default: the hub)")
    parser.add_argument("--factor", type=float, default=0.0, help="weight left on its tracts (default 0: cut)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--quick", action="store_true", help="tiny run: 1 step, 100 volumes, 4 realisations")
    parser.add_argument("--out", default="resting-state-out", help="output folder (default: resting-state-out)")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.samples, args.realisations = 1, args.samples or 100, min(args.realisations, 4)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    key_fit, key_whatif = jax.random.split(jax.random.key(args.seed))

    # 1. The subject and the fit of the global coupling to its FC.
    data = vbt.datasets.hcp_subject("101309")
    if args.samples is not None and args.samples != data.n_samples:
        # simulations of `samples` volumes (shorter: faster); the empirical FC is that of the whole recording
        data = vbt.empirical.RestingStateData(
            connectome=data.connectome, fc=data.fc, tr=data.tr, n_samples=args.samples, name=data.name
        )
    print(
        f"{data.name}: {data.n_regions} regions, {data.n_samples} volumes per simulation at TR {data.tr:g} ms; "
        f"structural baseline r(log1p(SC), FC) = {data.sc_fc_correlation():.3f}"
    )
    t0 = time.perf_counter()
    fit = vbt.inference.fit_fc(data, steps=args.steps, learning_rate=args.lr, n_eval=2, key=key_fit, progress=False)
    a_fit = float(fit.params["coupling.a"])
    print(
        f"fitted coupling.a = {a_fit:.4g} /ms in {args.steps} steps ({time.perf_counter() - t0:.0f} s): "
        f"r(FC_sim, FC_emp) = {np.mean(fit.r):.3f} (start {np.mean(fit.r_start):.3f})"
    )

    # 2. The twin: the fitted network + the fit's simulation settings, saved and loaded back.
    n_discard = math.ceil(rs.TRANSIENT / data.tr)
    net = fit.net
    twin = vbt.Twin.from_fit(
        fit.result,
        simulation={
            "t1": float((data.n_samples + n_discard) * data.tr),
            "dt": float(fit.dt),
            "monitors": {"tavg": vbt.monitors.TemporalAverage(period=float(data.tr))},
            "history": np.zeros((net.model.n_svar, net.n_regions), np.asarray(net.speed).dtype),
        },
        metadata={"kind": "resting-state", "subject": data.name, "discard_ms": float(n_discard * data.tr)},
    )
    path = twin.save(out / "twin", overwrite=True)
    twin = vbt.Twin.load(path)
    print(f"saved and loaded {twin} from {path}/")

    # 3. The what-if: every tract of the hub (largest total weight) cut, over noise realisations.
    weights = np.asarray(twin.network.connectome.weights)
    labels = list(twin.network.connectome.labels or [str(i) for i in range(twin.network.n_regions)])
    labels = [f"region {lb}" if lb.isdigit() else lb for lb in labels]  # the HCP subject's labels are numbers
    strength = weights.sum(axis=0) + weights.sum(axis=1)
    if args.region is None:
        region = int(np.argmax(strength))
    else:
        region = twin.network.connectome.region_indices(int(args.region) if args.region.isdigit() else args.region)[0]
    scenario = vbt.scenarios.Lesion(regions=[region], factor=args.factor)
    outcome = vbt.outcomes.FC(monitor="tavg", variable=0, discard=twin.metadata["discard_ms"])
    t0 = time.perf_counter()
    pred = twin.predict(scenario, outcome, key=key_whatif, n_samples=args.realisations, progress=False)
    t_pred = time.perf_counter() - t0
    fc_l, fc_b = np.asarray(pred.outcome), np.asarray(pred.baseline)  # (S, N, N) lesioned, intact
    S, n = fc_l.shape[0], fc_l.shape[1]
    similarity = np.array([_corr(fc_l[s], fc_b[s]) for s in range(S)])  # same noise, with vs without the lesion
    retest = np.array([_corr(fc_b[s], fc_b[(s + 1) % S]) for s in range(S)]) if S > 1 else np.array([np.nan])
    emp = np.asarray(data.fc)
    r_emp_intact = np.array([_corr(fc_b[s], emp) for s in range(S)])
    r_emp_lesion = np.array([_corr(fc_l[s], emp) for s in range(S)])
    off = ~np.eye(n, dtype=bool)
    change = pred.change()  # (S, N, N) lesioned - intact, per realisation
    node_change = np.array([(change[s] * off).sum(axis=1) / (n - 1) for s in range(S)])  # (S, N)
    q = np.quantile(node_change, [0.05, 0.5, 0.95], axis=0)
    others = np.delete(np.arange(n), region)
    neighbours = np.argsort(-(weights[region] + weights[:, region]))[:5]
    print(
        f"lesion of every tract of {labels[region]} (index {region}; factor {args.factor:g}), {S} noise realisations "
        f"in "
        f"{t_pred:.0f} s:\n"
        f"  similarity r(FC_lesioned, FC_intact), same noise: {similarity.mean():.3f} +- {similarity.std():.3f} "
        f"(two intact sessions, different noise: {np.nanmean(retest):.3f})\n"
        f"  mean FC of {labels[region]} with the others: {np.mean(fc_b[:, region][:, others]):.3f} -> "
        f"{np.mean(fc_l[:, region][:, others]):.3f}; other regions' mean FC change {node_change[:, others].mean():+.4f}"
        f"\n  r(FC_sim, FC_emp): intact {r_emp_intact.mean():.3f}, lesioned {r_emp_lesion.mean():.3f}"
    )

    # 4. Figure.
    fig, ax = plt.subplots(2, 2, figsize=(13, 9), layout="constrained")
    a = ax[0, 0]
    mean_change = change.mean(axis=0)
    np.fill_diagonal(mean_change, np.nan)
    lim = float(np.nanmax(np.abs(mean_change))) or 1.0
    im = a.imshow(mean_change, cmap="RdBu_r", vmin=-lim, vmax=lim)
    a.set(title=f"mean FC change after the lesion of {labels[region]}", xlabel="region", ylabel="region")
    fig.colorbar(im, ax=a, shrink=0.8, label="FC lesioned - intact")
    a = ax[0, 1]
    bins = np.linspace(min(similarity.min(), np.nanmin(retest)) - 0.01, 1.0, 30)
    a.hist(similarity, bins=bins, alpha=0.7, label="lesioned vs intact (same noise)")
    if S > 1:
        a.hist(retest, bins=bins, alpha=0.7, label="intact vs intact (other noise)")
    a.set(title="FC similarity over noise realisations", xlabel="r between FC upper triangles", ylabel="count")
    a.legend()
    a = ax[1, 0]
    x = np.arange(n)
    a.fill_between(x, q[0], q[2], color="C0", alpha=0.3, label="5-95 % over realisations")
    a.plot(x, q[1], "C0.-", ms=3, lw=0.8, label="median")
    a.plot([region], [q[1, region]], "C3o", label=f"lesioned: {labels[region]}")
    a.plot(neighbours, q[1, neighbours], "C1s", ms=5, label="its 5 strongest partners")
    a.axhline(0, color="k", lw=0.6)
    a.set(title="change of each region's mean FC", xlabel="region", ylabel="mean FC change")
    a.legend(fontsize=8)
    a = ax[1, 1]
    a.plot(1 - np.asarray(fit.result.losses), "C0.-", label="r during the fit")
    a.axhline(data.sc_fc_correlation(), color="C3", ls="--", label="log1p(SC) baseline")
    a.axhline(r_emp_intact.mean(), color="C2", ls=":", label="twin, intact")
    a.axhline(r_emp_lesion.mean(), color="C1", ls="-.", label="twin, lesioned")
    a.set(title="r(FC_sim, FC_emp)", xlabel="Adam step", ylabel="r")
    a.legend(fontsize=8)
    png = out / "resting_state.png"
    fig.savefig(png, dpi=80)
    plt.close(fig)

    results = {
        "subject": data.name,
        "n_regions": n,
        "volumes": data.n_samples,
        "steps": args.steps,
        "coupling_a": a_fit,
        "r_fit": float(np.mean(fit.r)),
        "r_start": float(np.mean(fit.r_start)),
        "sc_baseline": float(data.sc_fc_correlation()),
        "scenario": scenario.to_dict(),
        "region": region,
        "region_label": labels[region],
        "realisations": S,
        "similarity_mean": float(similarity.mean()),
        "similarity_sd": float(similarity.std()),
        "retest_similarity_mean": float(np.nanmean(retest)),
        "region_mean_fc_intact": float(np.mean(fc_b[:, region][:, others])),
        "region_mean_fc_lesioned": float(np.mean(fc_l[:, region][:, others])),
        "region_fc_change": float(node_change[:, region].mean()),
        "others_fc_change": float(node_change[:, others].mean()),
        "r_emp_intact": float(r_emp_intact.mean()),
        "r_emp_lesioned": float(r_emp_lesion.mean()),
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    (out / "resting_state.json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {png}, {out / 'resting_state.json'} ({results['seconds']} s)")
    return results


if __name__ == "__main__":
    main()
