"""``vbtjax whatif``: a what-if scenario run over a saved twin's posterior (see :meth:`vbtjax.Twin.predict`).

Writes to ``--out``: ``prediction.npz`` (the outcome of every draw with and without the scenario, the draws),
``summary.json`` (what is printed, as numbers) and ``whatif.png`` (the outcome distributions), each atomically.
When a simulation diverges (NaN or inf in the monitor used) or an outcome is not finite, it writes nothing and exits
with status 1. ``--verify-key-file`` refuses a twin that is not signed with that key (:meth:`vbtjax.Twin.save`'s
``key=``).
"""

from __future__ import annotations

import argparse
import difflib
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import files
from .common import (
    Stages,
    UsageError,
    label_ticks,
    plural,
    print_error,
    region_labels,
    save_figure,
    time_arg,
    version,
    write_summary_json,
)

DEFAULT_OUT = "vbtjax-whatif"
TOP = 20
"""Regions listed in the printed table and in summary.json's ``top``."""

EPILOG = """\
scenarios (--scenario, see vbtjax.scenarios.parse_scenario; join several with '+'; regions are 0-based indices or
the connectome's labels, e.g. lHC, lAMYG, rHC on TVB's 76-region connectome, the default of vbtjax vep):
  resect:3,17                 remove regions 3 and 17: no connections in or out (resect:lHC,lAMYG by labels)
  lesion:3-17,4-18*0.5        scale the weights of tracts 3-17 and 4-18 by 0.5
  lesion:regions=3,17*0.2     scale every tract of regions 3 and 17 by 0.2
  slow:2.0                    conduction twice as slow everywhere (speed / 2)
  slow:3-17,4-18*2.0          delays of tracts 3-17 and 4-18 doubled
  age:10                      ten years of ageing (global coupling and conduction speed decline)
  set:model.x0=-2.2@lHC,lAMYG set a parameter map (here x0, a VEP twin's, of lHC and lAMYG)

outcomes (--outcome):
  seizure   per region: does it seize (variable > --threshold at some sample)? Prints P(seize) per region with
            and without the scenario, and P(seizure-free): no region seizes (baseline), no region outside the
            removed ones seizes (scenario). Removed regions are shown as removed, not as seizing.
  fc        functional connectivity of the variable: prints the correlation between scenario and baseline FC
            per draw and the regions whose connectivity changes most.
  mean      time average of the variable per region, with and without the scenario.

every posterior draw is simulated twice, with and without the scenario, with the same noise, so the change is the
scenario's effect for that draw; the spread over draws is the posterior uncertainty of the prediction.
times (--duration, --dt, --discard): a bare number is ms, or give the unit (--duration 2s, --discard 500ms).

outputs: summary.json (numbers per region with their labels), summary.npz (the matrices), prediction.npz (every
draw's outcome), whatif.png.

examples:
  vbtjax vep --synthetic-ez 40,47 --seed 1 --out patient01 && \\
    vbtjax whatif patient01/twin --scenario resect:lAMYG,lHC --outcome seizure
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
    g.add_argument(
        "--threshold", metavar="X", type=float, help="seizure threshold, --outcome seizure only (default: x1 > 0)"
    )
    g.add_argument(
        "--discard",
        metavar="TIME",
        type=time_arg("--discard"),
        default=0.0,
        help="transient left out: ms, or with a unit: 0.5s (default 0)",
    )
    g = p.add_argument_group("simulation")
    g.add_argument("--samples", metavar="N", type=int, help="posterior draws used, evenly thinned (default all)")
    g.add_argument(
        "--duration",
        metavar="TIME",
        type=time_arg("--duration"),
        help="simulated time: ms, or with a unit: 2s (default: the twin's)",
    )
    g.add_argument(
        "--dt", metavar="TIME", type=time_arg("--dt"), help="time step: ms, or with a unit (default: the twin's)"
    )
    g.add_argument("--seed", metavar="S", type=int, default=0, help="noise seed (default 0)")
    g.add_argument("--batch-size", metavar="B", type=int, help="simulations per vmapped chunk")
    g = p.add_argument_group("output")
    g.add_argument("--out", metavar="DIR", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    g.add_argument("--no-plot", action="store_true", help="do not write whatif.png")
    g.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=run_whatif)


# ------------------------------------------------------------------------------------------------------ scenario
def scenario_kinds() -> list[str]:
    """The scenario kinds of :data:`vbtjax.scenarios.GRAMMAR` (``resect``, ``lesion``, ...), in its order."""
    from ..twin.scenarios import GRAMMAR

    return list(dict.fromkeys(re.findall(r"^ {2}([a-z]+):", GRAMMAR, flags=re.M)))


def parse_scenario_arg(text: str, net=None):
    """``--scenario`` parsed and, given `net`, checked against it (labels and indices resolved now); a bad one
    raises a one-line :class:`UsageError` naming the valid kinds or labels, with close matches."""
    from ..twin.scenarios import parse_scenario

    try:
        scenario = parse_scenario(text)
        if net is not None:
            scenario(net)
    except (ValueError, TypeError) as e:
        raise UsageError("--scenario", _scenario_message(str(e))) from None
    return scenario


def _scenario_message(message: str) -> str:
    """The first paragraph of a scenario error (not the grammar that follows it), with the valid kinds and close
    matches of an unknown kind (an unknown region's message names its close matches itself)."""
    first = message.split("\n\n", 1)[0].removeprefix("parse_scenario: ").strip()
    kind = re.search(r"unknown scenario kind '([^']*)'", first)
    if kind is not None:
        kinds = scenario_kinds()
        close = difflib.get_close_matches(kind.group(1).lower(), kinds, n=2, cutoff=0.5)
        hint = f"did you mean {' or '.join(k + ':' for k in close)}? " if close else ""
        return (
            f"unknown scenario kind {kind.group(1)!r}: {hint}the kinds are {', '.join(k + ':' for k in kinds)} "
            "(e.g. resect:3,17; see vbtjax whatif --help)"
        )
    return first


# ------------------------------------------------------------------------------------------------------ summary
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


def _kept_list(values: np.ndarray, removed: np.ndarray) -> list:
    """Per-region values for JSON, ``None`` (null) at removed regions: they are not part of the brain any more."""
    return [None if r else float(v) for v, r in zip(np.asarray(values, float), removed, strict=True)]


def _summarise(kind: str, pred, labels: list[str], removed: np.ndarray):
    """``(summary, arrays, lines)``: the compact numbers for summary.json (scalars, per-region lists beside the
    labels, removed regions as null), the arrays for summary.npz (matrices, unmasked per-region values) and the
    printed table."""
    base = np.asarray(pred.baseline)
    scen = np.asarray(pred.outcome)
    summary: dict[str, Any] = {"outcome": kind, "draws": int(scen.shape[0]), "labels": labels}
    summary.update(
        removed=np.flatnonzero(removed).tolist(), removed_labels=[labels[i] for i in np.flatnonzero(removed)]
    )
    arrays: dict[str, Any] = {"labels": np.asarray(labels), "removed": removed}
    if kind == "seizure":
        lines = _seizure(base, scen, labels, removed, summary, arrays)
    elif kind == "fc":
        lines = _fc(base, scen, labels, removed, summary, arrays)
    else:
        lines = _mean(base, scen, labels, removed, summary, arrays)
    if removed.any():
        lines.append(
            f"removed by the scenario (not part of the brain any more): {', '.join(summary['removed_labels'])}"
        )
    return summary, arrays, lines


def _seizure(base, scen, labels, removed, summary, arrays) -> list[str]:
    pb, ps = base.mean(0), scen.mean(0)
    free_b = 1.0 - np.mean(np.any(base, axis=1))  # before the intervention, every region counts
    free_s = 1.0 - np.mean(np.any(scen & ~removed, axis=1))
    summary.update(
        p_seize_baseline=pb.tolist(),
        p_seize_scenario=_kept_list(ps, removed),
        p_seizure_free_baseline=float(free_b),
        p_seizure_free_scenario=float(free_s),
    )
    arrays.update(p_seize_baseline=pb, p_seize_scenario=np.where(removed, np.nan, ps))
    lines = [
        f"P(seizure-free): baseline {free_b:.2f} (no region seizes) -> scenario {free_s:.2f} (no region outside "
        "the removed ones seizes)"
    ]
    shown = np.flatnonzero((pb > 0) | ((ps > 0) & ~removed) | removed)
    shown = shown[np.argsort(-np.maximum(pb[shown], np.where(removed, 0, ps)[shown]), kind="stable")][:TOP]
    summary["top"] = [
        {
            "index": int(i),
            "label": labels[i],
            "p_seize_baseline": float(pb[i]),
            "p_seize_scenario": "removed" if removed[i] else float(ps[i]),
        }
        for i in shown
    ]
    if not shown.size:
        return [*lines, "no region seizes in any draw, with or without the scenario"]
    lines.append(f"{'region':<24} {'P(seize) baseline':>18} {'scenario':>9}")
    for i in shown:
        lines.append(f"{labels[i]:<24} {pb[i]:>18.2f} {'removed' if removed[i] else f'{ps[i]:.2f}':>9}")
    return lines


def _fc(base, scen, labels, removed, summary, arrays) -> list[str]:
    keep = ~removed
    r = _corr_rows(_upper(scen[:, keep][:, :, keep]), _upper(base[:, keep][:, :, keep]))  # among the kept regions
    lo, med, hi = _interval(r)
    per_region = np.nanmean(np.abs(scen - base)[:, :, keep], axis=2)  # (S, N): mean |dFC| to the kept regions
    mlo, mmed, mhi = _interval(per_region)
    summary.update(
        fc_correlation=r.tolist(),
        fc_correlation_median=float(med),
        fc_correlation_90=[float(lo), float(hi)],
        region_change_median=_kept_list(mmed, removed),
        region_change_lo=_kept_list(mlo, removed),
        region_change_hi=_kept_list(mhi, removed),
    )
    arrays.update(
        fc_baseline_mean=base.mean(0),
        fc_scenario_mean=scen.mean(0),
        fc_correlation=r,
        region_change_median=mmed,
        region_change_lo=mlo,
        region_change_hi=mhi,
    )
    lines = [f"corr(FC scenario, FC baseline) per draw: median {med:.3f}, 90% interval [{lo:.3f}, {hi:.3f}]"]
    order = [i for i in np.argsort(-mmed, kind="stable") if keep[i]][: TOP // 2]
    summary["top"] = [
        {
            "index": int(i),
            "label": labels[i],
            "change_median": float(mmed[i]),
            "change_90": [float(mlo[i]), float(mhi[i])],
        }
        for i in order
    ]
    lines.append(f"{'region':<24} {'mean |dFC|':>10} {'90% interval':>20}")
    for i in order:
        lines.append(f"{labels[i]:<24} {mmed[i]:>10.4f} [{mlo[i]:>8.4f}, {mhi[i]:>8.4f}]")
    return lines


def _mean(base, scen, labels, removed, summary, arrays) -> list[str]:
    d = scen - base
    lo, med, hi = _interval(d)
    bm, sm = base.mean(0), scen.mean(0)
    summary.update(
        baseline_mean=bm.tolist(),
        scenario_mean=_kept_list(sm, removed),
        change_median=_kept_list(med, removed),
        change_lo=_kept_list(lo, removed),
        change_hi=_kept_list(hi, removed),
    )
    arrays.update(baseline_mean=bm, scenario_mean=sm, change_median=med, change_lo=lo, change_hi=hi)
    order = [i for i in np.argsort(-np.abs(med), kind="stable") if not removed[i]][: TOP // 2]
    summary["top"] = [
        {
            "index": int(i),
            "label": labels[i],
            "baseline": float(bm[i]),
            "scenario": float(sm[i]),
            "change_median": float(med[i]),
            "change_90": [float(lo[i]), float(hi[i])],
        }
        for i in order
    ]
    lines = [f"{'region':<24} {'baseline':>10} {'scenario':>10} {'change (90% interval)':>32}"]
    for i in order:
        lines.append(f"{labels[i]:<24} {bm[i]:>10.4g} {sm[i]:>10.4g} {med[i]:>10.4g} [{lo[i]:>9.4g}, {hi[i]:>9.4g}]")
    return lines


# ------------------------------------------------------------------------------------------------------ figures
def _plot(kind: str, arrays: dict[str, Any], summary: dict[str, Any], path: Path, title: str) -> None:
    """whatif.png: the outcome with and without the scenario; every panel titled, axes labelled with units, regions
    by label, removed regions drawn as removed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels, removed = list(summary["labels"]), np.asarray(arrays["removed"], bool)
    if kind == "fc":
        fig = Figure(figsize=(17, 4.6), layout="constrained")
        _plot_fc(fig, arrays, labels, removed)
    else:
        n_shown = len(summary.get("top", [])) if kind == "seizure" else len(labels)
        fig = Figure(figsize=(min(18, max(7, 0.32 * n_shown + 3)), 4.8), layout="constrained")
        ax = fig.subplots()
        (_plot_seizure if kind == "seizure" else _plot_mean)(ax, arrays, summary, labels, removed)
    FigureCanvasAgg(fig)
    fig.suptitle(title, fontsize=9)
    save_figure(fig, path, dpi=110)


def _plot_seizure(ax, arrays, summary, labels, removed) -> None:
    idx = np.asarray([r["index"] for r in summary["top"]], int)
    pb, ps = np.asarray(arrays["p_seize_baseline"]), np.asarray(arrays["p_seize_scenario"])
    x = np.arange(idx.size)
    ax.bar(x - 0.2, pb[idx], 0.4, color="C0", label="baseline")
    kept = ~removed[idx]
    ax.bar(x[kept] + 0.2, ps[idx][kept], 0.4, color="C1", label="scenario")
    for xi in x[~kept]:  # not a bar: a removed region neither seizes nor stays seizure-free
        ax.text(xi + 0.2, 0.03, "removed", rotation=90, ha="center", va="bottom", fontsize=7, color="0.35")
    if (~kept).any():
        ax.plot(
            x[~kept] + 0.2,
            np.zeros((~kept).sum()),
            "x",
            color="0.35",
            ms=6,
            clip_on=False,
            label="scenario: removed (not part of the brain)",
        )
    ax.set_xticks(x, [labels[i] for i in idx], rotation=90, fontsize=7)
    ax.set(xlabel="region", ylabel="P(region seizes) over posterior draws", ylim=(0, 1.05))
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(
        f"P(seizure-free): baseline {summary['p_seizure_free_baseline']:.2f} -> scenario "
        f"{summary['p_seizure_free_scenario']:.2f} (removed regions excluded)",
        fontsize=9,
    )
    if not idx.size:
        ax.text(0.5, 0.5, "no region seizes in any draw", transform=ax.transAxes, ha="center")


def _plot_fc(fig, arrays, labels, removed) -> None:
    axes = fig.subplots(1, 4, width_ratios=[1, 1, 1, 0.9])
    masked = lambda m: np.where(removed[:, None] | removed[None, :], np.nan, m)  # noqa: E731 - removed: blank
    base, scen = np.asarray(arrays["fc_baseline_mean"]), masked(np.asarray(arrays["fc_scenario_mean"]))
    change = scen - base
    v = float(np.nanmax(np.abs(change))) if np.isfinite(change).any() else 1.0
    for ax, m, t, lim, unit in (
        (axes[0], base, "mean FC, baseline", 1.0, "Pearson r"),
        (axes[1], scen, "mean FC, scenario" + (" (removed regions blank)" if removed.any() else ""), 1.0, "Pearson r"),
        (axes[2], change, "mean change, scenario - baseline", v or 1.0, "change of correlation"),
    ):
        im = ax.imshow(m, vmin=-lim, vmax=lim, cmap="RdBu_r", interpolation="nearest")
        ax.set_title(t, fontsize=9)
        if not label_ticks(ax, labels, "both"):
            ax.set(xlabel="region (index)", ylabel="region (index)")
        fig.colorbar(im, ax=ax, shrink=0.8, label=unit)
    r = np.asarray(arrays["fc_correlation"])
    axes[3].hist(r[np.isfinite(r)], bins=20, color="C0")
    axes[3].set(xlabel="corr(FC scenario, FC baseline)\nper draw (Pearson r)", ylabel="posterior draws")
    axes[3].set_title("similarity of the FC per draw", fontsize=9)


def _plot_mean(ax, arrays, summary, labels, removed) -> None:
    med, lo, hi = (np.asarray(arrays[k]) for k in ("change_median", "change_lo", "change_hi"))
    x = np.arange(med.size)
    k = ~removed
    ax.errorbar(x[k], med[k], yerr=[med[k] - lo[k], hi[k] - med[k]], fmt="o", ms=3, label="median, 90% interval")
    for xi in x[removed]:
        ax.axvspan(
            xi - 0.5, xi + 0.5, color="0.85", lw=0, label="removed by the scenario" if xi == x[removed][0] else None
        )
    ax.axhline(0, color="k", lw=0.5)
    if label_ticks(ax, labels):
        ax.set_xlabel("region")
    else:  # too many labels to read on the axis: the regions that change most, by label
        for r in summary["top"][:5]:
            ax.annotate(
                r["label"], (r["index"], r["change_median"]), xytext=(3, 3), textcoords="offset points", fontsize=7
            )
        ax.set_xlabel("region (index); the 5 largest changes named")
    ax.set_ylabel(f"change of the time average of variable {summary.get('variable', 0)}\n(model units)")
    ax.set_title("time average per region: scenario - baseline, per posterior draw", fontsize=9)
    ax.legend(fontsize=8)


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


def _outcome(args, twin, net):
    """``(kind, monitor, outcome)`` of the command line, checked against the twin's simulation settings."""
    from ..applications import vep as _vep
    from ..models import Epileptor2D
    from ..twin.outcomes import outcome_by_name

    kind = args.outcome or ("seizure" if isinstance(net.model, Epileptor2D) else "fc")
    if args.threshold is not None and kind != "seizure":
        raise UsageError("--threshold", f"applies to --outcome seizure only (this run's outcome is {kind})")
    sim = twin.simulation or {}
    monitors = sim.get("monitors")
    monitor = args.monitor or (next(iter(monitors)) if isinstance(monitors, dict) and monitors else "raw")
    if isinstance(monitors, dict) and monitor not in monitors:
        raise UsageError("--monitor", f"the twin's simulation has monitors {sorted(monitors)}, not {monitor!r}")
    if args.samples is not None and args.samples < 1:
        raise UsageError("--samples", f"must be a positive integer, got {args.samples}")
    for opt, v in (("--duration", args.duration), ("--dt", args.dt)):
        if v is not None and not v > 0:
            raise UsageError(opt, f"must be positive, got {v:g} ms")
    if args.duration is None and "t1" not in sim:
        raise UsageError("--duration", "the twin has no saved simulation settings: give --duration and --dt (ms)")
    if args.dt is None and "dt" not in sim:
        raise UsageError("--dt", "the twin has no saved simulation settings: give --dt (ms)")
    kw: dict[str, Any] = {"monitor": monitor, "variable": args.variable, "discard": args.discard}
    if kind == "seizure":
        kw["threshold"] = _vep.SEIZURE_X1 if args.threshold is None else args.threshold
    try:
        return kind, monitor, outcome_by_name(kind, **kw)
    except ValueError as e:
        raise UsageError("--discard" if "discard" in str(e) else "--variable", str(e)) from None


def _caveat(twin) -> str | None:
    """The convergence caveat a twin's posterior carries (``vbtjax vep`` records it), or None."""
    conv = (twin.metadata or {}).get("convergence")
    return conv.get("caveat") if isinstance(conv, dict) else None


def run_whatif(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    parse_scenario_arg(args.scenario)  # a misspelled scenario: one line, before any work
    stages = Stages(3, quiet=args.quiet)
    stages(f"loading the twin {args.twin}")
    import jax

    from ..twin.twin import Prediction, Twin, TwinFileError

    key = _verify_key(args.verify_key_file)
    try:
        twin = Twin.load(args.twin, verify=key)
    except TwinFileError as e:
        raise UsageError("TWIN", str(e)) from None
    net = twin.network
    scenario = parse_scenario_arg(args.scenario, net)  # resolves labels and indices against this twin's connectome
    kind, monitor, outcome = _outcome(args, twin, net)
    n_used = min(args.samples, twin.n_draws) if args.samples and twin.n_draws else (args.samples or twin.n_draws or 1)
    stages(
        f"simulating {plural(n_used, 'posterior draw')} with and without the scenario (compiling first, a few "
        "seconds to a minute)"
    )
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
            f"{bad} of {plural(pred.n_samples, 'draw')} gave NaN or inf (the simulation of monitor {monitor!r} "
            "diverged, with or without the scenario): use a smaller --dt, or check the twin's parameters. Nothing "
            "was written.",
        )
        return 1
    stages("writing prediction.npz, summary.json, summary.npz" + ("" if args.no_plot else " and whatif.png"))
    pred = Prediction(outcome=pred.outcome[0], baseline=pred.baseline[0], params=pred.params, scenario=pred.scenario)
    labels = region_labels(net.connectome)
    removed = np.asarray(scenario.removed(net), bool) if hasattr(scenario, "removed") else np.zeros(len(labels), bool)
    summary, arrays, lines = _summarise(kind, pred, labels, removed)
    caveat = _caveat(twin)
    header = [
        f"twin: {args.twin} ({type(net.model).__name__}, {plural(net.n_regions, 'region')}, "
        f"{plural(twin.n_draws, 'posterior draw') if twin.n_draws else 'no posterior draws'}, {pred.n_samples} used)",
        f"scenario: {args.scenario}",
        f"outcome: {kind} of monitor {monitor!r}, variable {args.variable}",
    ]
    if caveat:
        header.append(f"caveat: the twin's posterior is {caveat}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pred.save(out / "prediction.npz")
    files.write_npz(out / "summary.npz", arrays)
    summary.update(
        arrays="summary.npz",
        twin=str(args.twin),
        twin_caveat=caveat,
        scenario=args.scenario,
        scenario_dict=pred.scenario,
        monitor=monitor,
        variable=args.variable,
        seconds=round(time.perf_counter() - t0, 2),
        vbtjax=version(),
    )
    write_summary_json(out / "summary.json", summary)
    if not args.no_plot:
        title = f"what if {args.scenario}? ({plural(pred.n_samples, 'posterior draw')})"
        _plot(kind, arrays, summary, out / "whatif.png", title + (f"\ncaveat: {caveat}" if caveat else ""))
    if not args.quiet:
        print("\n".join(header + lines))
        print(
            f"wrote {out}/prediction.npz, summary.json, summary.npz"
            + ("" if args.no_plot else ", whatif.png")
            + f" in {time.perf_counter() - t0:.1f} s"
        )
    return 0
