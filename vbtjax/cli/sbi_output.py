"""What ``vbtjax sbi train`` and ``vbtjax sbi infer`` write and print (see :mod:`vbtjax.cli.sbi`): the calibration
record and its one-line verdict, the training curve, the posterior (netCDF, figure), the VEP ranking and the
comparison with NUTS."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from .common import label_ticks, plural, save_figure, version, write_json
from .vep import convergence_status

__all__ = [
    "calibration_json",
    "calibration_line",
    "compare_nuts",
    "infer_report",
    "plot_posterior",
    "plot_training",
    "save_posterior",
    "short_summary",
    "vep_ranking",
    "vep_result",
]


def calibration_json(cal) -> dict[str, Any]:
    """``calibration.json``: coverage, rank test p-values, z-scores and shrinkage per parameter, with each check's
    outcome (``checks``) and the verdict (:meth:`vbtjax.sbi.Calibration.verdict`)."""
    i50 = int(np.argmin(np.abs(cal.levels - 0.5)))
    i90 = int(np.argmin(np.abs(cal.levels - 0.9)))
    return {
        "names": list(cal.names),
        "n_test": int(cal.ranks.shape[0]),
        "num_draws": cal.num_draws,
        "levels": cal.levels,
        "coverage": {n: cal.coverage[:, j] for j, n in enumerate(cal.names)},
        "joint_coverage": cal.joint_coverage,
        "joint_coverage_50": float(cal.joint_coverage[i50]),
        "joint_coverage_90": float(cal.joint_coverage[i90]),
        "max_coverage_error": cal.max_coverage_error(),
        "coverage_band_99": cal.coverage_band(0.99),
        "rank_pvalues": cal.rank_pvalues,
        "checks": cal.checks(),
        "verdict": cal.verdict(),
        "z_mean": {n: float(np.nanmean(cal.z[:, j])) for j, n in enumerate(cal.names)},
        "z_sd": {n: float(np.nanstd(cal.z[:, j])) for j, n in enumerate(cal.names)},
        "median_shrinkage": {n: float(np.nanmedian(cal.shrinkage[:, j])) for j, n in enumerate(cal.names)},
    }


def short_summary(c: dict[str, Any]) -> str:
    """The calibration of many parameters in one line (from :func:`calibration_json`), its verdict on the next."""
    z_sd = np.asarray(list(c["z_sd"].values()))
    sh = np.asarray(list(c["median_shrinkage"].values()))
    return (
        f"{len(c['names'])} parameters: joint (HPD) coverage at 50% / 90% {c['joint_coverage_50']:.2f} / "
        f"{c['joint_coverage_90']:.2f}; sd of z per parameter {z_sd.min():.2f}-{z_sd.max():.2f}; median shrinkage "
        f"{np.median(sh):.2f} (range {sh.min():.2f}-{sh.max():.2f}) over {c['n_test']} held-out simulations\n"
        f"{c['verdict']}"
    )


def calibration_line(c: dict[str, Any]) -> str:
    """The coverage numbers with their check's outcome, for the closing line of ``vbtjax sbi train``."""
    ok = "within" if c["checks"]["coverage"] else "OUTSIDE"
    return f"max coverage error {c['max_coverage_error']:.3f} ({ok} the 99% band {c['coverage_band_99']:.3f})"


def plot_training(path: Path, hist) -> None:
    """``training.png``: the training and validation loss per epoch, the best epoch marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    e = np.arange(1, len(hist["train_loss"]) + 1)
    ax.plot(e, hist["train_loss"], label="train")
    ax.plot(e, hist["val_loss"], label="validation")
    ax.axvline(hist["best_epoch"], color="k", ls="--", lw=0.8, label=f"best epoch {hist['best_epoch']}")
    ax.set(
        xlabel="epoch",
        ylabel="-log q(u | x) (nats, standardised u)",
        title=f"NPE training ({plural(len(e), 'epoch')})",
    )
    ax.legend()
    save_figure(fig, path, dpi=100)


def plot_posterior(path: Path, problem, draws, truth, labels: list[str] | None = None) -> None:
    """``posterior.png``: for the VEP, x0 per region and P(x0 > critical), regions by label; otherwise a histogram
    per parameter and the first two against each other. Constrained layout, ticks thinned and rotated so that
    their labels never overlap."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if problem.name == "vep":
        fig = Figure(figsize=(13, 6.5), layout="constrained")
        _vep_panels(fig, draws, truth, labels or [str(i) for i in range(np.asarray(draws["x0"]).shape[1])])
    else:
        names = list(draws)
        fig = Figure(figsize=(3.6 * (len(names) + 1), 3.8), layout="constrained")
        _scalar_panels(fig, draws, truth, names)
    FigureCanvasAgg(fig)
    n = len(next(iter(draws.values())))
    fig.suptitle(f"NPE posterior of the observation ({plural(n, 'draw')})", fontsize=10)
    save_figure(fig, path, dpi=100)


def _vep_panels(fig, draws, truth, labels: list[str]) -> None:
    from ..applications.vep import X0_CRITICAL

    x0 = np.asarray(draws["x0"])
    n = x0.shape[1]
    q = np.percentile(x0, [5, 50, 95], axis=0)
    p = (x0 > X0_CRITICAL).mean(0)
    ax = fig.subplots(2, 1, sharex=True)
    ax[0].vlines(np.arange(n), q[0], q[2], color="tab:gray")
    ax[0].plot(np.arange(n), q[1], "k.", ms=3)
    if truth is not None:
        ax[0].plot(np.arange(n), truth["x0"], "x", color="tab:blue", ms=4, label="truth")
        ax[0].legend(loc="lower right")
    ax[0].axhline(X0_CRITICAL, color="k", ls="--", lw=0.8)
    ax[0].set(ylabel="x0 (dimensionless)", title="x0 per region (5-95 %); dashed: X0_CRITICAL")
    colors = ["tab:red" if truth is not None and i in truth["ez"] else "tab:gray" for i in range(n)]
    ax[1].bar(np.arange(n), p, color=colors)
    ax[1].set(ylabel="P(x0 > critical)", ylim=(0, 1.02), title="probability of being epileptogenic per region")
    if label_ticks(ax[1], labels, max_labels=100):
        ax[1].set_xlabel("region" + ("; red: the true EZ" if truth is not None else ""))
    else:
        ax[1].set_xlabel("region (index)")


def _scalar_panels(fig, draws, truth, names: list[str]) -> None:
    from matplotlib.ticker import MaxNLocator

    ax = fig.subplots(1, len(names) + 1)
    flat = {k: np.asarray(draws[k]).reshape(len(draws[k]), -1)[:, 0] for k in names}
    for j, k in enumerate(names):
        ax[j].hist(flat[k], bins=40, color="C0")
        if truth is not None and k in truth:
            ax[j].axvline(float(np.ravel(truth[k])[0]), color="k", label="truth")
            ax[j].legend(fontsize=8)
        ax[j].set(xlabel=k, ylabel="posterior draws", title=f"posterior of {k}")
    if len(names) >= 2:
        a, b = flat[names[0]], flat[names[1]]
        ax[-1].plot(a, b, ".", ms=1, alpha=0.4)
        ax[-1].set(xlabel=names[0], ylabel=names[1], title=f"{names[1]} against {names[0]}")
    else:
        ax[-1].axis("off")
    for a in ax:
        a.xaxis.set_major_locator(MaxNLocator(4))  # few ticks: small numbers (1e-3) have long labels
        a.ticklabel_format(axis="both", style="sci", scilimits=(-3, 4), useMathText=True)
        a.tick_params(axis="x", labelrotation=30, labelsize=8)


# ---------------------------------------------------------------------------------------------------------- infer
def save_posterior(res_dir: Path, problem, draws, x, obs_path: Path) -> None:
    from ..inference.diagnostics import save_netcdf, to_inference_data

    dims, coords = {}, {}
    if problem.name == "vep":
        dims, coords = {"x0": ["region"]}, {"region": list(problem.labels)}
    attrs = {"vbtjax_version": version(), "method": "NPE", "observation": str(obs_path), "problem": problem.name}
    idata = to_inference_data(
        {k: v[None] for k, v in draws.items()}, observed_data={"features": x}, dims=dims, coords=coords, attrs=attrs
    )
    save_netcdf(idata, res_dir / "posterior.nc")


def vep_result(args, problem, draws, truth, res_dir: Path, summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The VEP's ranking (written to ranking.json) and predicted EZ, by index and label, in `summary`."""
    ranking = vep_ranking(problem, draws, args.threshold)
    write_json(res_dir / "ranking.json", ranking)
    predicted = [r["index"] for r in ranking if r["observed"] and r["probability"] > args.threshold]
    summary["predicted_ez"] = predicted
    summary["predicted_ez_labels"] = [problem.labels[i] for i in predicted]
    summary["threshold"] = args.threshold
    if truth is not None and "ez" in truth:
        tp = len(set(truth["ez"]) & set(predicted))
        summary["precision"] = tp / max(len(predicted), 1)
        summary["recall"] = tp / len(truth["ez"])
    return ranking


def infer_report(args, summary, ranking, truth, t_sample, t_first, nuts, res_dir: Path) -> None:
    print(
        f"vbtjax sbi infer: {plural(args.draws, 'posterior draw')} in {t_sample * 1e3:.1f} ms (first call "
        f"{t_first:.2f} s)"
    )
    if ranking is not None:
        top = ", ".join(f"{r['label']} ({r['index']}): {r['probability']:.2f}" for r in ranking[:5])
        print(f"P(x0 > X0_CRITICAL), most likely first: {top}")
        named = ", ".join(
            f"{lb} ({i})" for lb, i in zip(summary["predicted_ez_labels"], summary["predicted_ez"], strict=True)
        )
        print(f"predicted EZ: {named or 'none'}" + (f" (true EZ {truth['ez']})" if truth else ""))
        if summary["estimator_calibration"]:
            print(f"the estimator's {summary['estimator_calibration']}")
    else:
        for k, v in summary["posterior"].items():
            print(f"{k}: mean {np.ravel(v['mean'])[0]:.4g}, 90% interval [{v['q05']:.4g}, {v['q95']:.4g}]")
    if nuts is not None:
        print(nuts)
    print(f"wrote {res_dir}/")


def vep_ranking(problem, draws, threshold) -> list[dict[str, Any]]:
    from ..applications.vep import X0_CRITICAL

    x0 = np.asarray(draws["x0"])
    p = (x0 > X0_CRITICAL).mean(axis=0)
    observed = np.asarray(problem.extra["observed"])
    order = np.lexsort((-p, ~observed))
    return [
        {"index": int(i), "label": problem.labels[i], "probability": float(p[i]), "observed": bool(observed[i])}
        for i in order
    ]


def compare_nuts(args, problem, rec, draws, res_dir: Path, summary: dict[str, Any]) -> str:
    """NUTS (vep.infer_ez) on the same recording; writes nuts.nc and comparison.json, returns a printed line."""
    import jax

    from .. import sbi
    from ..applications import vep
    from ..data.sensors import Sensors, tvb_sensors
    from ..inference.diagnostics import save_netcdf

    spec = problem.spec
    sensors = tvb_sensors("seeg") if spec.get("sensors") is None else Sensors.from_file(spec["sensors"])
    conn = problem.extra["connectome"]
    post = vep.recording_posterior(
        conn,
        sensors,
        rec,
        feature="power",
        time_scale=1.0,  # the estimator's prior has no time scale: compare like with like
        duration=spec["duration"],
        period=spec["period"],
        dt=spec["dt"],
    )
    t0 = time.perf_counter()
    res = vep.infer_ez(
        post,
        key=jax.random.key(args.seed + 1),
        labels=problem.labels,
        num_chains=args.nuts_chains,
        num_warmup=args.nuts_warmup,
        num_samples=args.nuts_samples,
        progress=not args.quiet,
    )
    t_nuts = time.perf_counter() - t0
    idata = res.samples.to_inference_data(
        dims={"x0": ["region"]}, coords={"region": list(problem.labels)}, attrs={"method": "NUTS"}
    )
    save_netcdf(idata, res_dir / "nuts.nc")
    nres = res.samples
    ess = {k: v["ess_bulk"] for k, v in nres.summary().items()}
    cmp = sbi.compare_posteriors(draws, {k: nres.samples[k] for k in ("x0", "K")}, ess_b=ess)
    npe_rank = vep_ranking(problem, draws, args.threshold)
    p_npe = np.zeros(len(problem.labels))
    for r in npe_rank:
        p_npe[r["index"]] = r["probability"]
    p_nuts = np.asarray(res.p_above)
    observed = np.asarray(problem.extra["observed"])
    x0c = cmp["x0"]
    disagree = np.flatnonzero(observed & (np.abs(p_npe - p_nuts) > 0.3)).tolist()
    out = {
        "seconds_nuts": round(t_nuts, 1),
        "divergences": int(np.asarray(nres.stats["diverging"]).sum()),
        "nuts_predicted_ez": np.flatnonzero(observed & (p_nuts > args.threshold)).tolist(),
        "npe_predicted_ez": summary.get("predicted_ez"),
        "p_above_npe": p_npe,
        "p_above_nuts": p_nuts,
        "p_ez_nuts": res.p_ez,
        "regions_disagreeing": disagree,
        "K": {k: np.asarray(v).tolist() for k, v in cmp["K"].items()},
        "x0": {k: np.asarray(v).tolist() for k, v in x0c.items()},
        "x0_observed_abs_mean_difference_over_nuts_sd": float(
            np.median(np.abs(x0c["mean_a"] - x0c["mean_b"])[observed] / x0c["sd_b"][observed])
        ),
        "x0_observed_median_sd_ratio": float(np.median(x0c["sd_ratio"][observed])),
    }
    labels = list(problem.labels)
    out["nuts_predicted_ez_labels"] = [labels[i] for i in out["nuts_predicted_ez"]]
    out["regions_disagreeing_labels"] = [labels[i] for i in disagree]
    out["nuts_convergence"] = convergence_status(res)
    write_json(res_dir / "comparison.json", out)
    keep = ("seconds_nuts", "divergences", "nuts_predicted_ez", "nuts_predicted_ez_labels", "regions_disagreeing")
    summary["nuts"] = {k: out[k] for k in (*keep, "regions_disagreeing_labels", "nuts_convergence")}
    kc = cmp["K"]
    conv = out["nuts_convergence"]
    return (
        f"NUTS ({t_nuts:.0f} s; {conv['caveat'] or conv['status']}): predicted EZ "
        f"{', '.join(out['nuts_predicted_ez_labels']) or 'none'}; K mean NPE {float(kc['mean_a']):.3f} vs "
        f"NUTS {float(kc['mean_b']):.3f}, sd ratio {float(kc['sd_ratio']):.2f}; observed regions' x0: median "
        f"|mean difference| / NUTS sd {out['x0_observed_abs_mean_difference_over_nuts_sd']:.2f}, median sd ratio "
        f"{out['x0_observed_median_sd_ratio']:.2f}; P(x0 > critical) differs by > 0.3 in "
        f"{', '.join(out['regions_disagreeing_labels']) or 'no region'}"
    )
