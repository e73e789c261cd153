"""``vbtjax fit``: personalise a resting-state network to a subject's FC (see :mod:`vbtjax.inference.resting_state`).

Writes ``fit.npz`` (fitted parameters, loss and parameter history, simulated and empirical FC, correlations),
``fit.json`` (the summary) and ``fit.png`` (empirical vs simulated FC, their scatter, the fit's progress) to
``--out``, and checkpoints to ``--out/checkpoint`` so that ``--resume`` continues an interrupted fit.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import files
from .common import (
    Stages,
    UsageError,
    fc_panel,
    jsonable,
    label_ticks,
    plural,
    resume_settings,
    save_figure,
    time_arg,
    version,
    write_summary_json,
)

DEFAULT_SUBJECT = "101309"

EPILOG = """\
examples:
  vbtjax fit                                   # the embedded HCP subject 101309, global coupling, 40 steps
  vbtjax fit --fit coupling,a --steps 60       # also the per-region bifurcation parameter a (1/ms)
  vbtjax fit --sc DTI_CM.mat --lengths DTI_LEN.mat --bold TC_rsfMRI_REST1_LR.mat --tr 0.72s --name 102311 \\
             --out fit-102311
  vbtjax fit --out fit1 --resume               # continue an interrupted fit from fit1/checkpoint
  vbtjax fit --out fit1 --resume --steps 80    # ... and extend it to 80 steps (the other settings unchanged)

times (--tr, --dt): a bare number is ms (--tr 720), or give the unit (--tr 0.72s, --tr 720ms).
"""


def add_fit(sub) -> None:
    """Add the ``fit`` subcommand to the subparsers ``sub``."""
    p = sub.add_parser(
        "fit",
        help="fit a resting-state network to a subject's functional connectivity (writes .npz, .json and .png)",
        description=(
            "Personalise a whole-brain network: gradient descent (Adam) on 1 - r between the simulated and the "
            "empirical FC (Pearson correlation of the upper triangles), the noise drawn anew at every step. "
            "Without --sc, fits the HCP subject embedded in vbtjax (101309). Units: ms, mm, mm/ms; times in ms unless "
            "they carry a unit (--tr 0.72s)."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = p.add_argument_group("subject data")
    g.add_argument(
        "--subject", default=None, help=f"embedded subject (default {DEFAULT_SUBJECT} when --sc is not given)"
    )
    g.add_argument("--sc", metavar="PATH", help="structural weights (N x N): .mat (e.g. DTI_CM.mat), .npy, .csv, .txt")
    g.add_argument("--lengths", metavar="PATH", help="tract lengths in mm (N x N), same formats (e.g. DTI_LEN.mat)")
    g.add_argument("--bold", metavar="PATH", help="BOLD series, region x time (N x T): .mat (e.g. tc), .npy, .csv")
    g.add_argument("--fc", metavar="PATH", help="an empirical FC matrix (N x N) instead of --bold (needs --n-samples)")
    g.add_argument("--n-samples", type=int, metavar="T", help="BOLD volumes behind --fc (only with --fc)")
    g.add_argument(
        "--tr",
        type=time_arg("--tr", minimum_ms=100),
        metavar="TIME",
        help="repetition time of the BOLD series with --sc: ms, or with a unit: 0.72s (e.g. --tr 720 or --tr 0.72s); "
        "the embedded subject's is known",
    )
    g.add_argument("--name", help="subject name for reports (default: the subject id or the --sc file name)")
    g = p.add_argument_group("model and fit")
    g.add_argument(
        "--model", default="SupHopf", help="resting-state model (default SupHopf; see vbtjax.inference.MODELS)"
    )
    g.add_argument(
        "--fit",
        default=None,
        metavar="NAMES",
        help="comma-separated parameters to fit: coupling (global coupling), a (per-region bifurcation parameter), "
        "omega (frequency); default: coupling",
    )
    g.add_argument("--steps", type=int, default=40, help="optimiser steps (default 40)")
    g.add_argument("--lr", type=float, default=0.1, help="Adam step size in unconstrained space (default 0.1)")
    g.add_argument(
        "--dt",
        type=time_arg("--dt"),
        default=None,
        metavar="TIME",
        help="integration step: ms, or with a unit: 0.04s (default: TR / ceil(TR / 40 ms))",
    )
    g.add_argument("--realisations", type=int, default=1, help="noise realisations averaged per step (default 1)")
    g.add_argument("--eval", type=int, default=4, help="noise realisations for the final evaluation (default 4)")
    g.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    g.add_argument("--x64", action="store_true", help="fit in float64 (default: float32)")
    g = p.add_argument_group("output")
    g.add_argument("--out", metavar="DIR", default="vbtjax-fit", help="output folder (default: vbtjax-fit)")
    g.add_argument("--checkpoint-every", type=int, default=5, help="steps between checkpoints (default 5)")
    g.add_argument(
        "--resume",
        action="store_true",
        help="continue from DIR/checkpoint when it exists. Only the same fit is continued: the subject's data, "
        "--model, --fit, --lr, --dt, --realisations, --seed and --x64 must be those of the checkpoint (else an error "
        "names what differs); --steps may change (more steps extend the fit; not fewer than it has done), recorded "
        "in fit.json as resumed: [{at_step, --steps: [old, new]}]; --eval and the output options may change",
    )
    g.add_argument("--no-plot", action="store_true", help="do not write fit.png")
    g.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    p.set_defaults(func=run_fit)


def _load_data(args):
    from ..data.datasets import HCP_SUBJECTS, hcp_subject
    from ..data.empirical import RestingStateData

    files = {k: getattr(args, k) for k in ("sc", "lengths", "bold", "fc")}
    if args.sc is None:
        other = [f"--{k}" for k, v in files.items() if v is not None]
        if other:
            raise UsageError(other[0], "needs --sc (the structural weights) as well")
        subject = args.subject or DEFAULT_SUBJECT
        if subject not in HCP_SUBJECTS:
            raise UsageError("--subject", f"{subject!r} is not embedded; available: {', '.join(HCP_SUBJECTS)}")
        if args.n_samples is not None:
            raise UsageError("--n-samples", "applies with --fc only (the embedded subject's BOLD is known)")
        data = hcp_subject(subject)
        if args.tr is not None and abs(args.tr - data.tr) > 1e-9 * data.tr:
            raise UsageError(
                "--tr",
                f"the embedded subject {subject} was recorded at TR {data.tr:g} ms, not {args.tr:g} ms; --tr applies "
                "to the files given with --sc (leave it out here)",
            )
        return data if args.name is None else dataclasses.replace(data, name=args.name)
    if args.subject is not None:
        raise UsageError("--subject", "give either an embedded --subject or files (--sc ...), not both")
    if args.lengths is None:
        raise UsageError("--lengths", "required with --sc: the tract lengths in mm (N x N)")
    if (args.bold is None) == (args.fc is None):
        raise UsageError("--bold", "give exactly one of --bold (region x time) or --fc (N x N) with --sc")
    if args.tr is None:
        raise UsageError("--tr", "required with --sc: the repetition time, e.g. --tr 0.72s or --tr 720 (ms)")
    if not (np.isfinite(args.tr) and args.tr > 0):
        raise UsageError("--tr", f"must be a positive repetition time, got {args.tr:g} ms")
    if args.fc is not None and args.n_samples is None:
        raise UsageError("--n-samples", "required with --fc: the number of BOLD volumes behind the FC")
    if args.fc is None and args.n_samples is not None:
        raise UsageError("--n-samples", "applies with --fc only (the volumes of --bold are counted from the file)")
    for k, v in files.items():
        if v is not None and not Path(v).exists():
            raise UsageError(f"--{k}", f"{v} does not exist")
    try:
        return RestingStateData.from_files(
            args.sc,
            args.lengths,
            bold=args.bold,
            fc=args.fc,
            tr=args.tr,
            n_samples=args.n_samples,
            name=args.name,
        )
    except (ValueError, OSError) as e:
        raise UsageError(None, str(e)) from None


def _check(args) -> tuple[str, ...] | None:
    from ..inference.resting_state import MODELS

    if args.model not in MODELS:
        raise UsageError("--model", f"unknown model {args.model!r}; available: {', '.join(MODELS)}")
    for opt, v, lo in (
        ("--steps", args.steps, 0),
        ("--realisations", args.realisations, 1),
        ("--eval", args.eval, 1),
        ("--checkpoint-every", args.checkpoint_every, 1),
    ):
        if v < lo:
            raise UsageError(opt, f"must be >= {lo}, got {v}")
    if not (np.isfinite(args.lr) and args.lr > 0):
        raise UsageError("--lr", f"must be a positive step size, got {args.lr:g}")
    if args.dt is not None and not (np.isfinite(args.dt) and args.dt > 0):
        raise UsageError("--dt", f"must be a positive step in ms, got {args.dt:g}")
    if args.fit is None:
        return None
    names = tuple(s.strip() for s in args.fit.split(",") if s.strip())
    if not names:
        raise UsageError("--fit", "give at least one parameter name, e.g. --fit coupling")
    return names


def _resume(args, data, dt: float, names, folder: Path) -> list[dict[str, Any]]:
    """Check ``--resume`` against the checkpoint's settings (or record a fresh run's): see ``--help``."""
    from ..inference.fitting import fingerprint
    from ..inference.resting_state import fc_network, fc_parameters

    net = fc_network(data.connectome, args.model)
    conn = data.connectome
    arrays = tuple(np.asarray(x, np.float64) for x in (conn.weights, conn.lengths, data.fc, data.tr, data.n_samples))
    settings = {
        "subject data": fingerprint(arrays, max_values=0),  # float64: the same data with and without --x64
        "--model": args.model,
        "--fit": list(fc_parameters(net, dt, names, args.model).names(net)),
        "--lr": args.lr,
        "--dt": dt,
        "--realisations": args.realisations,
        "--seed": args.seed,
        "--x64": bool(args.x64),
        "--steps": args.steps,
    }
    return resume_settings(folder, "checkpoint.npz", settings, args.resume, allowed=("--steps",))


def _twin(args, data, res) -> Path:
    """Save the fitted network as a :class:`~vbtjax.Twin` in ``--out/twin`` (for ``vbtjax whatif``), with the
    simulation settings of the fit (TemporalAverage at the TR after the transient, from rest)."""
    import math

    from ..inference.resting_state import TRANSIENT
    from ..observation.monitors import TemporalAverage
    from ..twin.twin import Twin

    n_discard = math.ceil(TRANSIENT / data.tr)
    net = res.net
    simulation = {
        "t1": float((data.n_samples + n_discard) * data.tr),
        "dt": float(res.dt),
        "monitors": {"tavg": TemporalAverage(period=float(data.tr))},
        "history": np.zeros((net.model.n_svar, net.n_regions), np.asarray(net.speed).dtype),
    }
    inputs = [p for p in (args.sc, args.lengths, args.bold, args.fc) if p is not None]
    twin = Twin.from_fit(
        res.result,
        simulation=simulation,
        metadata={
            "kind": "resting-state",
            "subject": data.name,
            "model": args.model,
            "discard_ms": float(n_discard * data.tr),
            "tr_ms": float(data.tr),
            "fc_correlation": float(np.mean(np.asarray(res.r))),
        },
        inputs=inputs,
    )
    return twin.save(Path(args.out) / "twin", overwrite=True)


def run_fit(args: argparse.Namespace) -> int:
    """``vbtjax fit``: load the subject, fit, evaluate, save, plot. Returns the exit code."""
    t_start = time.perf_counter()
    stages = Stages(3, quiet=args.quiet)
    stages(
        "loading the subject's data" + (f" ({args.sc}, ...)" if args.sc else f" ({args.subject or DEFAULT_SUBJECT})")
    )
    import jax

    from ..inference.resting_state import default_dt, fc_network, fc_parameters, fit_fc

    names = _check(args)
    out = Path(args.out)
    with jax.enable_x64(bool(args.x64)):
        data = _load_data(args)  # inside: its arrays take the run's float width
        dt = default_dt(data.tr) if args.dt is None else args.dt
        if abs(data.tr / dt - round(data.tr / dt)) > 1e-9:
            raise UsageError("--dt", f"{dt:g} ms must divide the repetition time ({data.tr:g} ms)")
        try:
            fc_parameters(fc_network(data.connectome, args.model), dt, names, args.model)
        except ValueError as e:
            raise UsageError("--fit", str(e)) from None
        if not args.quiet:
            print(
                f"fitting {args.model} to {data.name}: {data.n_regions} regions, FC of {data.n_samples} volumes at "
                f"TR {data.tr:g} ms; dt {dt:g} ms, {args.steps} steps; structural baseline r(log1p(SC), FC) = "
                f"{data.sc_fc_correlation():.3f}",
                flush=True,
            )
        resumed = _resume(args, data, dt, names, out / "checkpoint")
        if args.resume and not resumed and not args.quiet:
            print(f"--resume: no checkpoint in {out / 'checkpoint'} to continue; starting afresh", flush=True)
        stages(
            f"fitting: compiling the model (a few seconds to a minute), then {plural(args.steps, 'step')} (progress "
            f"bar), then {plural(args.eval, 'noise realisation')} to evaluate the start and the fit"
        )
        res = fit_fc(
            data,
            model=args.model,
            fit_parameters=names,
            steps=args.steps,
            learning_rate=args.lr,
            dt=dt,
            n_realisations=args.realisations,
            n_eval=args.eval,
            key=jax.random.key(args.seed),
            checkpoint_dir=out / "checkpoint",
            checkpoint_every=args.checkpoint_every,
            resume=args.resume,
            progress=not args.quiet,
        )
    stages("writing fit.npz, fit.json, the twin" + ("" if args.no_plot else " and fit.png"))
    wall = time.perf_counter() - t_start
    summary = _summary(args, data, res, wall)
    summary["resumed"] = resumed
    arrays = {
        "fc_simulated": np.asarray(res.fc, np.float64),
        "fc_empirical": np.asarray(data.fc, np.float64),
        "r": np.asarray(res.r, np.float64),
        "r_start": np.asarray(res.r_start, np.float64),
        "r_mean_fc": np.float64(res.r_mean_fc),
        "baseline_r": np.float64(res.baseline),
        "losses": np.asarray(res.result.losses, np.float64),
        "weights": np.asarray(res.net.connectome.weights, np.float64),
        "lengths": np.asarray(data.connectome.lengths, np.float64),
        "dt": np.float64(res.dt),
        "tr": np.float64(data.tr),
        "summary_json": np.array(json.dumps(summary, indent=1)),
    }
    for k, v in res.params.items():
        arrays[f"param_{k}"] = np.asarray(v, np.float64)
        arrays[f"history_{k}"] = np.asarray(res.result.history[k], np.float64)
    npz = files.write_npz(out / "fit.npz", arrays)
    write_summary_json(out / "fit.json", summary)
    twin = _twin(args, data, res)
    written = [npz, out / "fit.json", twin]
    if not args.no_plot:
        _plot(out / "fit.png", data, res)
        written.append(out / "fit.png")
    if not args.quiet:
        r = np.asarray(res.r)
        params = ", ".join(f"{k} = {_short(v)}" for k, v in res.params.items())
        print(
            f"fitted {params}\nFC correlation r = {r.mean():.3f} +- {r.std():.3f} over {plural(r.size, 'realisation')} "
            f"(start {np.mean(res.r_start):.3f}; mean simulated FC {res.r_mean_fc:.3f}; structural baseline "
            f"{res.baseline:.3f}) in {wall:.1f} s"
        )
        for path in written:
            print(f"wrote {path}")
    return 0


def _short(v) -> str:
    a = np.asarray(v)
    return f"{float(a):.4g}" if a.ndim == 0 else f"[{a.min():.3g} .. {a.max():.3g}] ({a.size} regions)"


def _summary(args, data, res, wall) -> dict[str, Any]:
    import jax

    from ..inference.resting_state import MODELS

    r = np.asarray(res.r)
    return jsonable(
        {
            "command": "vbtjax fit",
            "argv": ["vbtjax", *getattr(args, "argv", [])],
            "subject": data.name,
            "n_regions": data.n_regions,
            **({"labels": list(data.connectome.labels)} if data.connectome.labels is not None else {}),
            "n_samples": data.n_samples,
            "tr_ms": data.tr,
            "model": res.model,
            "model_description": MODELS[res.model].description,
            "fitted": {k: np.asarray(v) for k, v in res.params.items()},
            "steps_done": res.result.steps_done,
            "stopped_early": res.result.stopped_early,
            "dt_ms": res.dt,
            "r_mean": float(r.mean()),
            "r_std": float(r.std()),
            "r_realisations": r,
            "r_mean_fc": res.r_mean_fc,
            "r_start_mean": float(np.mean(res.r_start)),
            "baseline_log1p_sc_r": res.baseline,
            "beats_baseline": bool(r.mean() > res.baseline),
            "final_loss": float(res.result.losses[-1]) if res.result.steps_done else None,
            "seed": args.seed,
            "units": {"time": "ms", "lengths": "mm", "coupling.a": "1/ms", "model.a": "1/ms", "model.omega": "rad/ms"},
            "wall_time_s": wall,
            "versions": {"vbtjax": version(), "jax": jax.__version__},
        }
    )


def _plot(path: Path, data, res) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    emp = np.asarray(data.fc, np.float64)
    sim = np.asarray(res.fc, np.float64)
    iu = np.triu_indices(data.n_regions, 1)
    r = np.asarray(res.r)
    fig = Figure(figsize=(17, 4.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax_e, ax_s, ax_x, ax_l = fig.subplots(1, 4, width_ratios=[1, 1, 0.9, 1.1])
    fc_panel(fig, ax_e, emp, f"empirical FC ({plural(data.n_samples, 'volume')})")
    fc_panel(fig, ax_s, sim, f"simulated FC (fitted, mean of {plural(r.size, 'realisation')})")
    if data.connectome.labels is not None:
        for ax in (ax_e, ax_s):
            if label_ticks(ax, list(data.connectome.labels), "both"):
                ax.set(xlabel="region", ylabel="region")
    ax_x.plot(emp[iu], sim[iu], ".", ms=1.5, alpha=0.3, color="C0")
    ax_x.set_xlabel("empirical FC (Pearson r)")
    ax_x.set_ylabel("simulated FC (Pearson r)")
    ax_x.set_title(f"FC entries: r = {r.mean():.3f} +- {r.std():.3f} per realisation\n(mean FC: {res.r_mean_fc:.3f})")
    losses = np.asarray(res.result.losses, np.float64)
    if losses.size:
        ax_l.plot(np.arange(1, losses.size + 1), 1.0 - losses, color="C0", label="r during the fit (one realisation)")
    ax_l.axhline(res.baseline, color="C3", ls="--", label=f"structural baseline log1p(SC): {res.baseline:.3f}")
    ax_l.axhline(r.mean(), color="C2", ls=":", label=f"fitted, {plural(r.size, 'fresh realisation')}: {r.mean():.3f}")
    ax_l.set_xlabel("optimiser step")
    ax_l.set_ylabel("FC correlation r (1 - loss)")
    ax_l.set_title("fit progress")
    ax_l.legend(loc="best", fontsize="small")
    ax_l.grid(True, alpha=0.3)
    params = ", ".join(f"{k} = {_short(v)}" for k, v in res.params.items())
    fig.suptitle(f"{data.name}: {res.model} fitted to FC ({params}; dt {res.dt:g} ms)", fontsize="medium")
    save_figure(fig, path, dpi=100)
