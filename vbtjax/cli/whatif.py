"""``vbtjax whatif``: a what-if scenario run over a saved twin's posterior (see :meth:`vbtjax.Twin.predict`).

Writes to ``--out``: ``prediction.npz`` (the outcome of every draw with and without the scenario, the draws),
``summary.json`` (what is printed, as numbers) and ``whatif.png`` (the outcome distributions), each atomically.
When a simulation diverges (NaN or inf in the monitor used) or an outcome is not finite, it writes nothing and exits
with status 1. ``--verify-key-file`` refuses a twin that is not signed with that key (:meth:`vbtjax.Twin.save`'s
``key=``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from .common import UsageError, print_error, save_figure, version, write_json

DEFAULT_OUT = "vbtjax-whatif"

EPILOG = """\
scenarios (--scenario, see vbtjax.scenarios.parse_scenario; join several with '+'):
  resect:3,17                 remove regions 3 and 17 (indices or labels): no connections in or out
  lesion:3-17,4-18*0.5        scale the weights of tracts 3-17 and 4-18 by 0.5
  lesion:regions=3,17*0.2     scale every tract of regions 3 and 17 by 0.2
  slow:2.0                    conduction twice as slow everywhere (speed / 2)
  slow:3-17,4-18*2.0          delays of tracts 3-17 and 4-18 doubled
  age:10                      ten years of ageing (global coupling and conduction speed decline)
  set:model.x0=-2.2@3,17      set a parameter map (here x0 of regions 3 and 17)

outcomes (--outcome):
  seizure   per region: does it seize (variable > --threshold at some sample)? Prints P(seize) per region with
            and without the scenario, and P(seizure-free): no region seizes (baseline), no region outside the
            removed ones seizes (scenario).
  fc        functional connectivity of the variable: prints the correlation between scenario and baseline FC
            per draw and the regions whose connectivity changes most.
  mean      time average of the variable per region, with and without the scenario.

every posterior draw is simulated twice, with and without the scenario, with the same noise, so the change is the
scenario's effect for that draw; the spread over draws is the posterior uncertainty of the prediction.

examples:
  vbtjax vep --out patient01 && vbtjax whatif patient01/twin --scenario resect:LHipp,LAmyg --outcome seizure
  vbtjax fit --out sub01 && vbtjax whatif sub01/twin --scenario lesion:regions=10*0.2 --outcome fc
"""


def add_whatif(sub) -> None:
    """Add the ``whatif`` subcommand to the subparsers ``sub``."""
    p = sub.add_parser(
        "whatif",
        help="run a what-if scenario over a saved twin's posterior (writes .npz, summary.json, .png)",
        description=(
            "Apply an intervention (resection, lesion, slowed conduction, ageing, a parameter change) to every "
            "posterior draw of a saved twin (vbtjax.Twin.save, or the twin folder written by vbtjax fit / vbtjax vep), "
            "simulate each draw with and without it, and report the distribution of the outcome. Units: ms."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("twin", metavar="TWIN", help="twin folder or .zip written by Twin.save")
    p.add_argument("--scenario", metavar="SPEC", required=True, help="the intervention, e.g. resect:3,17 (see below)")
    p.add_argument(
        "--verify-key-file",
        metavar="PATH",
        help="refuse the twin unless it is signed (Twin.save(..., key=)) with the key held in PATH: the file's bytes "
        "as they are, a trailing newline included",
    )
    g = p.add_argument_group("outcome")
    g.add_argument(
        "--outcome",
        choices=("seizure", "fc", "mean"),
        default=None,
        help="default: seizure for an Epileptor twin, else fc",
    )
    g.add_argument("--monitor", metavar="NAME", help="monitor whose output is used (default: the twin's first)")
    g.add_argument("--variable", metavar="I", type=int, default=0, help="state-variable index (default 0)")
    g.add_argument("--threshold", metavar="X", type=float, help="seizure threshold (default: the VEP's x1 > 0)")
    g.add_argument("--discard", metavar="MS", type=float, default=0.0, help="transient left out, ms (default 0)")
    g = p.add_argument_group("simulation")
    g.add_argument("--samples", metavar="N", type=int, help="posterior draws used, evenly thinned (default all)")
    g.add_argument("--duration", metavar="MS", type=float, help="simulated time, ms (default: the twin's)")
    g.add_argument("--dt", metavar="MS", type=float, help="time step, ms (default: the twin's)")
    g.add_argument("--seed", metavar="S", type=int, default=0, help="noise seed (default 0)")
    g.add_argument("--batch-size", metavar="B", type=int, help="simulations per vmapped chunk")
    g = p.add_argument_group("output")
    g.add_argument("--out", metavar="DIR", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    g.add_argument("--no-plot", action="store_true", help="do not write whatif.png")
    g.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=run_whatif)


def _labels(net) -> list[str]:
    labels = net.connectome.labels
    return list(labels) if labels else [str(i) for i in range(net.n_regions)]


def _removed(scenario, net) -> np.ndarray:
    """Regions the scenario removes (a resection), as a boolean ``(N,)``."""
    if hasattr(scenario, "removed"):
        return np.asarray(scenario.removed(net), bool)
    return np.zeros(net.n_regions, bool)


def _interval(a: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    q = np.quantile(a, (0.05, 0.5, 0.95), axis=axis)
    return q[0], q[1], q[2]


def _upper(m: np.ndarray) -> np.ndarray:
    n = m.shape[-1]
    i, j = np.triu_indices(n, 1)
    return m[..., i, j]


def _corr_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(-1, keepdims=True)
    b = b - b.mean(-1, keepdims=True)
    den = np.sqrt((a * a).sum(-1) * (b * b).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(-1) / den, np.nan)


def _summarise(kind: str, pred, labels: list[str], removed: np.ndarray) -> tuple[dict[str, Any], list[str]]:
    base = np.asarray(pred.baseline)
    scen = np.asarray(pred.outcome)
    S = scen.shape[0]
    lines = []
    out: dict[str, Any] = {"outcome": kind, "draws": S}
    if kind == "seizure":
        pb, ps = base.mean(0), scen.mean(0)
        keep = ~removed
        free_b = 1.0 - np.mean(np.any(base, axis=1))  # before the intervention, every region counts
        free_s = 1.0 - np.mean(np.any(scen & keep, axis=1))
        out.update(
            p_seize_baseline=pb,
            p_seize_scenario=ps,
            removed=np.flatnonzero(removed),
            p_seizure_free_baseline=free_b,
            p_seizure_free_scenario=free_s,
        )
        lines.append(
            f"P(seizure-free): baseline {free_b:.2f} (no region seizes) -> scenario {free_s:.2f} (no region outside "
            "the removed ones seizes)"
        )
        shown = np.flatnonzero((pb > 0) | (ps > 0))
        shown = shown[np.argsort(-np.maximum(pb[shown], ps[shown]), kind="stable")][:20]
        if shown.size:
            lines.append(f"{'region':<24} {'P(seize) baseline':>18} {'scenario':>9}")
            for i in shown:
                mark = "  (removed)" if removed[i] else ""
                lines.append(f"{labels[i]:<24} {pb[i]:>18.2f} {ps[i]:>9.2f}{mark}")
        else:
            lines.append("no region seizes in any draw, with or without the scenario")
    elif kind == "fc":
        r = _corr_rows(_upper(scen), _upper(base))
        lo, med, hi = _interval(r)
        per_region = np.nanmean(np.abs(scen - base), axis=2)  # (S, N): mean |dFC| of each region's row
        mlo, mmed, mhi = _interval(per_region)
        out.update(
            fc_correlation=r,
            fc_baseline_mean=base.mean(0),
            fc_scenario_mean=scen.mean(0),
            region_change_median=mmed,
            region_change_lo=mlo,
            region_change_hi=mhi,
        )
        lines.append(f"corr(FC scenario, FC baseline) per draw: median {med:.3f}, 90% interval [{lo:.3f}, {hi:.3f}]")
        lines.append(f"{'region':<24} {'mean |dFC|':>10} {'90% interval':>20}")
        for i in np.argsort(-mmed, kind="stable")[:10]:
            lines.append(f"{labels[i]:<24} {mmed[i]:>10.4f} [{mlo[i]:>8.4f}, {mhi[i]:>8.4f}]")
    else:
        d = scen - base
        lo, med, hi = _interval(d)
        out.update(
            change_median=med, change_lo=lo, change_hi=hi, baseline_mean=base.mean(0), scenario_mean=scen.mean(0)
        )
        lines.append(f"{'region':<24} {'baseline':>10} {'scenario':>10} {'change (90% interval)':>32}")
        for i in np.argsort(-np.abs(med), kind="stable")[:10]:
            lines.append(
                f"{labels[i]:<24} {base[:, i].mean():>10.4g} {scen[:, i].mean():>10.4g} "
                f"{med[i]:>10.4g} [{lo[i]:>9.4g}, {hi[i]:>9.4g}]"
            )
    return out, lines


def _plot(kind: str, summary: dict[str, Any], labels: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if kind == "seizure":
        pb, ps = summary["p_seize_baseline"], summary["p_seize_scenario"]
        idx = np.flatnonzero((pb > 0) | (ps > 0))
        idx = idx[np.argsort(-np.maximum(pb[idx], ps[idx]), kind="stable")][:40]
        fig, ax = plt.subplots(figsize=(max(6, 0.3 * len(idx) + 2), 4))
        x = np.arange(len(idx))
        ax.bar(x - 0.2, pb[idx], 0.4, label="baseline")
        ax.bar(x + 0.2, ps[idx], 0.4, label="scenario")
        ax.set_xticks(x, [labels[i] for i in idx], rotation=90, fontsize=7)
        ax.set_ylabel("P(region seizes) over draws")
        ax.set_ylim(0, 1.05)
        ax.legend()
        ax.set_title(
            f"{title}\nP(seizure-free): {summary['p_seizure_free_baseline']:.2f} -> "
            f"{summary['p_seizure_free_scenario']:.2f}",
            fontsize=9,
        )
    elif kind == "fc":
        fig, axes = plt.subplots(1, 4, figsize=(16, 4))
        for ax, m, t in zip(
            axes[:2],
            (summary["fc_baseline_mean"], summary["fc_scenario_mean"]),
            ("mean FC, baseline", "mean FC, scenario"),
            strict=True,
        ):
            im = ax.imshow(m, vmin=-1, vmax=1, cmap="RdBu_r")
            ax.set_title(t)
            fig.colorbar(im, ax=ax, shrink=0.8)
        d = summary["fc_scenario_mean"] - summary["fc_baseline_mean"]
        v = float(np.nanmax(np.abs(d))) or 1.0
        im = axes[2].imshow(d, vmin=-v, vmax=v, cmap="RdBu_r")
        axes[2].set_title("mean change")
        fig.colorbar(im, ax=axes[2], shrink=0.8)
        axes[3].hist(summary["fc_correlation"][np.isfinite(summary["fc_correlation"])], bins=20)
        axes[3].set_xlabel("corr(FC scenario, FC baseline) per draw")
        fig.suptitle(title, fontsize=9)
    else:
        med, lo, hi = summary["change_median"], summary["change_lo"], summary["change_hi"]
        fig, ax = plt.subplots(figsize=(max(6, 0.12 * len(med) + 2), 4))
        x = np.arange(len(med))
        ax.errorbar(x, med, yerr=[med - lo, hi - med], fmt="o", ms=3)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xlabel("region")
        ax.set_ylabel("change of the time average (median, 90% interval)")
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def _verify_key(path: str | None) -> bytes | None:
    if path is None:
        return None
    try:
        key = Path(path).read_bytes()
    except OSError as e:
        raise UsageError("--verify-key-file", f"{path} cannot be read: {e.strerror or e}") from None
    if not key:
        raise UsageError("--verify-key-file", f"{path} is empty; it must hold the key the twin was signed with")
    return key


def _with_finite(outcome, monitor: str):
    """``sol -> (outcome(sol), every sample of the monitor is finite)``: a diverging simulation is caught even where
    its outcome looks valid (a NaN never exceeds a seizure threshold)."""
    import jax.numpy as jnp

    def run(sol):
        ys = sol.ys[monitor] if isinstance(sol.ys, dict) and monitor in sol.ys else sol.ys
        return outcome(sol), jnp.all(jnp.isfinite(jnp.asarray(ys)))

    return run


def _not_finite(out, base) -> int:
    """Number of draws whose simulation (with or without the scenario) diverged or whose outcome is not finite."""
    bad = np.zeros(np.asarray(out[1]).shape[0], bool)
    for value, ok in (out, base):
        v = np.asarray(value)
        bad |= ~np.asarray(ok, bool)
        if v.dtype.kind in "fc":
            bad |= ~np.isfinite(v.reshape(v.shape[0], -1)).all(axis=1)
    return int(bad.sum())


def run_whatif(args: argparse.Namespace) -> int:
    import jax

    from ..applications import vep as _vep
    from ..models import Epileptor2D
    from ..twin import scenarios as _scenarios
    from ..twin.outcomes import outcome_by_name
    from ..twin.twin import Prediction, Twin, TwinFileError

    t0 = time.perf_counter()
    key = _verify_key(args.verify_key_file)
    try:
        twin = Twin.load(args.twin, verify=key)
    except TwinFileError as e:
        raise UsageError("TWIN", str(e)) from None
    net = twin.network
    try:
        scenario = _scenarios.parse_scenario(args.scenario)
    except ValueError as e:
        raise UsageError("--scenario", str(e)) from None
    try:
        scenario(net)  # resolves labels and indices against this twin's connectome now
    except (ValueError, TypeError) as e:
        raise UsageError("--scenario", str(e)) from None
    kind = args.outcome or ("seizure" if isinstance(net.model, Epileptor2D) else "fc")
    sim = twin.simulation or {}
    monitors = sim.get("monitors")
    monitor = args.monitor or (next(iter(monitors)) if isinstance(monitors, dict) and monitors else "raw")
    if isinstance(monitors, dict) and monitor not in monitors:
        raise UsageError("--monitor", f"the twin's simulation has monitors {sorted(monitors)}, not {monitor!r}")
    if args.samples is not None and args.samples < 1:
        raise UsageError("--samples", f"must be a positive integer, got {args.samples}")
    for opt, v in (("--duration", args.duration), ("--dt", args.dt)):
        if v is not None and not v > 0:
            raise UsageError(opt, f"must be positive (ms), got {v}")
    if args.duration is None and "t1" not in sim:
        raise UsageError("--duration", "the twin has no saved simulation settings: give --duration MS and --dt MS")
    if args.dt is None and "dt" not in sim:
        raise UsageError("--dt", "the twin has no saved simulation settings: give --dt MS")
    kw: dict[str, Any] = {"monitor": monitor, "variable": args.variable, "discard": args.discard}
    if kind == "seizure":
        kw["threshold"] = _vep.SEIZURE_X1 if args.threshold is None else args.threshold
    outcome = outcome_by_name(kind, **kw)
    try:
        pred = twin.predict(
            scenario,
            _with_finite(outcome, monitor),
            t1=args.duration,
            dt=args.dt,
            key=jax.random.key(args.seed),
            n_samples=args.samples,
            batch_size=args.batch_size,
            progress=not args.quiet,
        )
    except ValueError as e:
        raise UsageError(None, str(e)) from None
    bad = _not_finite(pred.outcome, pred.baseline)
    if bad:
        print_error(
            "whatif",
            f"{bad} of {pred.n_samples} draws gave NaN or inf (the simulation of monitor {monitor!r} diverged, with or "
            f"without the scenario): use a smaller --dt, or check the twin's parameters. Nothing was written.",
        )
        return 1
    pred = Prediction(outcome=pred.outcome[0], baseline=pred.baseline[0], params=pred.params, scenario=pred.scenario)
    labels = _labels(net)
    removed = _removed(scenario, net)
    summary, lines = _summarise(kind, pred, labels, removed)
    header = [
        f"twin: {args.twin} ({type(net.model).__name__}, {net.n_regions} regions, "
        f"{twin.n_draws or 'no'} posterior draws, {pred.n_samples} used)",
        f"scenario: {args.scenario}",
        f"outcome: {kind} of monitor {monitor!r}, variable {args.variable}",
    ]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pred.save(out / "prediction.npz")
    summary.update(
        twin=str(args.twin),
        scenario=args.scenario,
        scenario_dict=pred.scenario,
        monitor=monitor,
        variable=args.variable,
        seconds=time.perf_counter() - t0,
        vbtjax=version(),
    )
    write_json(out / "summary.json", summary)
    if not args.no_plot:
        _plot(kind, summary, labels, out / "whatif.png", f"{args.scenario} ({pred.n_samples} draws)")
    if not args.quiet:
        print("\n".join(header + lines))
        print(
            f"wrote {out}/prediction.npz, summary.json"
            + ("" if args.no_plot else ", whatif.png")
            + f" in {time.perf_counter() - t0:.1f} s"
        )
    return 0
