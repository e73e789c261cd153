"""``vbtjax fit``: personalise a resting-state network to a subject's FC (see :mod:`vbtjax.inference.resting_state`).

Writes ``fit.npz`` (fitted parameters, loss and parameter history, simulated and empirical FC, correlations),
``fit.json`` (the summary, with the scores: FC r and FCD KS in sample and held out, the log-SC baseline, the
test-retest ceiling) and ``fit.png`` (empirical vs simulated FC, their scatter, the fit's progress, the scores) to
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
  vbtjax fit                                   # the embedded HCP subject 101309: global coupling and a map of
                                               # a on 10 SC eigenmodes (--heterogeneity auto), 40 steps
  vbtjax fit --heterogeneity none              # global coupling only (one a for all regions)
  vbtjax fit --heterogeneity myelin.txt        # a map of a along a user map (one value per region)
  vbtjax fit --heterogeneity none --fit coupling,a --steps 60   # a free per region (1/ms)
  vbtjax fit --sc DTI_CM.mat --lengths DTI_LEN.mat --bold TC_rsfMRI_REST1_LR.mat --tr 0.72s --name 102311 \\
             --out fit-102311                  # fitted on volumes 1-600, scored on 601-1200 too
  vbtjax fit --sc sc.csv --lengths len.csv --bold sub-01_timeseries.tsv   # any region count; TR from the sidecar
  vbtjax fit --sc sc.npy --lengths len.npy --bold sub-01_task-rest_bold.nii.gz --parcellation atlas.nii.gz \\
             --confounds sub-01_desc-confounds_timeseries.tsv --confound-columns trans_x,trans_y,trans_z \\
             --high-pass 0.01 --low-pass 0.1     # 4-D NIfTI (needs nilearn); TR from the header or sidecar
  vbtjax fit --out fit1 --resume               # continue an interrupted fit from fit1/checkpoint
  vbtjax fit --out fit1 --resume --steps 80    # ... and extend it to 80 steps (the other settings unchanged)

times (--tr, --dt, --fcd-window, --fcd-step): a bare number is ms (--tr 720), or give the unit (--tr 0.72s).

scores (printed, in fit.json and fit.png): FC r = correlation of the upper triangles of the simulated and the
empirical FC, mean +- sd over --eval fresh noise realisations each as long as the recording scored; FCD KS = exact
two-sample Kolmogorov-Smirnov distance between the simulated and the empirical FCD values (FC of --fcd-window windows
shifted by --fcd-step, correlated between windows that do not overlap; 0 = same distribution, 1 = disjoint);
baseline = r(log1p(SC), FC); ceiling = r(FC of the first half, FC of the second half) of the recording.
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
    g.add_argument(
        "--bold",
        metavar="PATH",
        help="BOLD series of the N regions of --sc, N x T or T x N (see --bold-layout): .mat (e.g. tc), .npy, "
        ".csv/.tsv (a header row of names is skipped), or a 4-D NIfTI .nii/.nii.gz with --parcellation (needs nilearn)",
    )
    g.add_argument(
        "--bold-layout",
        choices=("auto", "regions-time", "time-regions"),
        default="auto",
        help="layout of --bold: auto (default: the axis of length N, the region count of --sc, is the regions; a "
        "series with N volumes is ambiguous and must be stated), regions-time (N x T) or time-regions (T x N)",
    )
    g.add_argument("--fc", metavar="PATH", help="an empirical FC matrix (N x N) instead of --bold (needs --n-samples)")
    g.add_argument("--n-samples", type=int, metavar="T", help="BOLD volumes behind --fc (only with --fc)")
    g.add_argument(
        "--tr",
        type=time_arg("--tr", minimum_ms=100),
        metavar="TIME",
        help="repetition time of the BOLD series with --sc: ms, or with a unit: 0.72s (e.g. --tr 720 or --tr 0.72s). "
        "Default: the TR the --bold file states (BIDS sidecar X.json beside X.nii.gz/X.tsv: RepetitionTime in s; or "
        "the NIfTI header's pixdim[4] in its xyzt_units); a --tr that differs from it warns and is used. The "
        "embedded subject's is known",
    )
    g.add_argument("--name", help="subject name for reports (default: the subject id or the --sc file name)")
    _add_nifti_arguments(p)
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
    _add_model_arguments(g)
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
    g.add_argument(
        "--holdout",
        choices=("auto", "none", "half"),
        default="auto",
        help="half: fit on the first half of the BOLD recording, score on both halves (needs --bold); none: fit and "
        "score on all of it (the test-retest ceiling is still reported when the BOLD series is known); auto "
        "(default): half when the BOLD series is known (--bold, or the embedded subject), else none (--fc)",
    )
    g.add_argument(
        "--fcd-window",
        type=time_arg("--fcd-window"),
        default=60_000.0,
        metavar="TIME",
        help="FCD window, rounded to whole TRs (default 60s)",
    )
    g.add_argument(
        "--fcd-step",
        type=time_arg("--fcd-step"),
        default=2_000.0,
        metavar="TIME",
        help="shift between FCD windows, rounded to whole TRs, at least one (default 2s)",
    )
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


def _add_model_arguments(g) -> None:
    """The options of the model's parameter maps and of the loss."""
    g.add_argument(
        "--heterogeneity",
        default="auto",
        metavar="MAP",
        help="a map of the bifurcation parameter a over the regions, fitted with the coupling: a_i = c_0 + sum_k c_k "
        "z_k(i), each map z_k of zero mean and unit sd. strength (node strength of the SC), eigenmodes:K (the K "
        "smoothest non-constant eigenmodes of the SC's Laplacian, e.g. eigenmodes:10), a FILE of one value per region "
        "(N values, or N x K: one map per column; .npy, .csv, .txt, .tsv, .mat; e.g. T1w/T2w myelin), none (one a "
        "for all regions), or auto (default): eigenmodes:K with K = min(10, N // 9) for N >= 18 regions (eigenmodes:10 "
        "for 94), else none",
    )
    g.add_argument(
        "--fcd-weight",
        type=float,
        default=0.0,
        metavar="W",
        help="weight of the FCD term of the loss: 1 - r + W * smooth KS(FCD simulated, FCD empirical), on windows "
        "of --fcd-window (default 0: FC only; needs the BOLD series)",
    )
    g.add_argument(
        "--fcd-temperature",
        type=float,
        default=0.02,
        metavar="T",
        help="smoothing of the KS distance of the FCD term, in units of correlation (default 0.02)",
    )


def _add_nifti_arguments(p) -> None:
    """The options of a 4-D NIfTI ``--bold``."""
    g = p.add_argument_group(
        "NIfTI BOLD (--bold X.nii.gz; needs nilearn: NiftiLabelsMasker, the mean of each label's voxels, then the "
        "confounds and band-pass below if given; no detrending or standardisation)"
    )
    g.add_argument(
        "--parcellation",
        metavar="PATH",
        help="label image (NIfTI, 0 = background, one integer per region; the regions of --sc in increasing label "
        "order), resampled to the BOLD image",
    )
    g.add_argument(
        "--confounds",
        metavar="PATH",
        help="confound regressors (time x K) regressed out of every region's series: a .tsv/.csv with a header "
        "(e.g. fMRIPrep's desc-confounds_timeseries.tsv; n/a read as 0) or an .npy; default none",
    )
    g.add_argument(
        "--confound-columns", metavar="NAMES", help="comma-separated columns of --confounds to use (default all)"
    )
    g.add_argument("--high-pass", type=float, metavar="HZ", help="high-pass cutoff in Hz, e.g. 0.01 (default none)")
    g.add_argument("--low-pass", type=float, metavar="HZ", help="low-pass cutoff in Hz, e.g. 0.1 (default none)")


def _load_data(args):
    from ..data.datasets import HCP_SUBJECTS, hcp_subject
    from ..data.empirical import RestingStateData, file_tr

    files = {k: getattr(args, k) for k in ("sc", "lengths", "bold", "fc", "parcellation", "confounds")}
    nifti = {
        "--parcellation": args.parcellation,
        "--confounds": args.confounds,
        "--confound-columns": args.confound_columns,
        "--high-pass": args.high_pass,
        "--low-pass": args.low_pass,
    }
    for opt in ("--high-pass", "--low-pass"):
        if nifti[opt] is not None and not (np.isfinite(nifti[opt]) and nifti[opt] > 0):
            raise UsageError(opt, f"must be a positive frequency in Hz, got {nifti[opt]:g}")
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
    if args.tr is None and args.fc is not None:
        raise UsageError("--tr", "required with --fc: the repetition time, e.g. --tr 0.72s or --tr 720 (ms)")
    if args.tr is not None and not (np.isfinite(args.tr) and args.tr > 0):
        raise UsageError("--tr", f"must be a positive repetition time, got {args.tr:g} ms")
    if args.fc is not None and args.n_samples is None:
        raise UsageError("--n-samples", "required with --fc: the number of BOLD volumes behind the FC")
    if args.fc is None and args.n_samples is not None:
        raise UsageError("--n-samples", "applies with --fc only (the volumes of --bold are counted from the file)")
    if args.fc is not None and args.holdout == "half":
        raise UsageError("--holdout", "half needs the BOLD series (--bold) to split; --fc gives the FC only")
    is_nifti = args.bold is not None and args.bold.lower().endswith((".nii", ".nii.gz"))
    given = [k for k, v in nifti.items() if v is not None]
    if given and not is_nifti:
        raise UsageError(given[0], "applies to a 4-D NIfTI --bold only (a region series is used as given)")
    if is_nifti and args.parcellation is None:
        raise UsageError("--parcellation", "required with a NIfTI --bold: the label image of the regions of --sc")
    if args.confound_columns is not None and args.confounds is None:
        raise UsageError("--confound-columns", "needs --confounds")
    for k, v in files.items():
        if v is not None and not Path(v).exists():
            raise UsageError(f"--{k}", f"{v} does not exist")
    columns = None if args.confound_columns is None else tuple(c.strip() for c in args.confound_columns.split(","))
    try:
        if args.tr is None:
            stated, where = file_tr(args.bold)
            if stated is None:
                raise UsageError("--tr", f"required: the --bold file states no repetition time ({where}); e.g. --tr 2s")
        return RestingStateData.from_files(
            args.sc,
            args.lengths,
            bold=args.bold,
            fc=args.fc,
            tr=args.tr,
            n_samples=args.n_samples,
            name=args.name,
            bold_layout=args.bold_layout,
            parcellation=args.parcellation,
            confounds=args.confounds,
            confound_columns=columns,
            high_pass=args.high_pass,
            low_pass=args.low_pass,
        )
    except ImportError as e:
        raise UsageError("--bold", str(e)) from None
    except (ValueError, OSError) as e:
        raise UsageError(None, str(e)) from None


def _holdout(args, data) -> str:
    """The holdout of the run: ``--holdout``, with ``auto`` resolved (half when the BOLD series is known)."""
    if args.holdout != "auto":
        return args.holdout
    return "half" if data.bold is not None and data.n_samples >= 6 else "none"


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
    if not (np.isfinite(args.fcd_weight) and args.fcd_weight >= 0):
        raise UsageError("--fcd-weight", f"must be a weight >= 0, got {args.fcd_weight:g}")
    if not (np.isfinite(args.fcd_temperature) and args.fcd_temperature > 0):
        raise UsageError(
            "--fcd-temperature", f"must be positive (units of correlation, e.g. 0.02), got {args.fcd_temperature:g}"
        )
    if args.fit is None:
        return None
    names = tuple(s.strip() for s in args.fit.split(",") if s.strip())
    if not names:
        raise UsageError("--fit", "give at least one parameter name, e.g. --fit coupling")
    return names


def _heterogeneity(args, data, names):
    """The maps of ``--heterogeneity``: None, a name (strength, eigenmodes:K) or the array read from the file,
    checked against the subject's regions."""
    from ..data.empirical import read_matrix
    from ..files import FileReadError
    from ..inference.resting_state import heterogeneity_basis

    spec = args.heterogeneity_used = _auto_heterogeneity(args.heterogeneity, data.n_regions, names)
    if spec == "none":
        return None
    if spec != "strength" and not spec.startswith("eigenmodes:"):
        if not Path(spec).exists():
            raise UsageError(
                "--heterogeneity",
                f"{spec!r} is neither strength, eigenmodes:K nor an existing file of one value per region",
            )
        try:
            spec = read_matrix(spec, what="--heterogeneity")
        except (ValueError, OSError, FileReadError) as e:
            raise UsageError("--heterogeneity", str(e)) from None
        if spec.ndim == 2 and spec.shape[0] == 1:
            spec = spec[0]
    try:
        heterogeneity_basis(data.connectome, spec)
    except ValueError as e:
        raise UsageError("--heterogeneity", str(e).removeprefix("heterogeneity: ")) from None
    return spec


def _auto_heterogeneity(spec: str, n_regions: int, names=None) -> str:
    """``--heterogeneity auto``: ``eigenmodes:K``, ``K = min(10, N // 9)``, for ``N >= 18`` regions, else ``none``
    (the best variant of benchmarks/resting_state.py on the HCP subjects, a map of a few coefficients); ``none`` too
    when ``--fit`` leaves ``a`` out."""
    if spec != "auto":
        return spec
    if n_regions < 18 or (names is not None and "a" not in names):
        return "none"
    return f"eigenmodes:{min(10, n_regions // 9)}"


def _resume(args, data, dt: float, names, folder: Path, holdout: str, maps=None) -> list[dict[str, Any]]:
    """Check ``--resume`` against the checkpoint's settings (or record a fresh run's): see ``--help``."""
    from ..inference.fitting import fingerprint
    from ..inference.resting_state import fc_network, fc_parameters, heterogeneity_basis

    net = fc_network(data.connectome, args.model)
    basis = heterogeneity_basis(data.connectome, maps)
    conn = data.connectome
    arrays = tuple(np.asarray(x, np.float64) for x in (conn.weights, conn.lengths, data.fc, data.tr, data.n_samples))
    settings = {
        "subject data": fingerprint(arrays, max_values=0),  # float64: the same data with and without --x64
        "--model": args.model,
        "--fit": list(fc_parameters(net, dt, names, args.model, basis).names(net)),
        "--lr": args.lr,
        "--dt": dt,
        "--realisations": args.realisations,
        "--seed": args.seed,
        "--x64": bool(args.x64),
        "--steps": args.steps,
    }
    if holdout != "none":  # fits of the whole recording keep the settings of earlier checkpoints
        settings["--holdout"] = holdout
    if basis is not None:  # so do fits without a map or an FCD term
        settings["--heterogeneity"] = fingerprint((np.asarray(basis, np.float64),), max_values=0)
    if args.fcd_weight:
        settings["--fcd-weight"] = [args.fcd_weight, args.fcd_temperature]
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
        res.selection,
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

    from ..inference.resting_state import default_dt, fc_network, fc_parameters, fit_fc, heterogeneity_basis

    names = _check(args)
    out = Path(args.out)
    with jax.enable_x64(bool(args.x64)):
        data = _load_data(args)  # inside: its arrays take the run's float width
        dt = default_dt(data.tr) if args.dt is None else args.dt
        if abs(data.tr / dt - round(data.tr / dt)) > 1e-9:
            raise UsageError("--dt", f"{dt:g} ms must divide the repetition time ({data.tr:g} ms)")
        maps = _heterogeneity(args, data, names)
        try:
            fc_parameters(fc_network(data.connectome, args.model), dt, names, args.model,
                          heterogeneity_basis(data.connectome, maps))  # fmt: skip
        except ValueError as e:
            raise UsageError("--fit", str(e)) from None
        holdout = _holdout(args, data)
        if not args.quiet:
            part = f"volumes 1-{data.n_samples // 2} of " if holdout == "half" else ""
            print(
                f"fitting {args.model} to {data.name}: {data.n_regions} regions, FC of {part}{data.n_samples} volumes "
                f"at TR {data.tr:g} ms; dt {dt:g} ms, {args.steps} steps; structural baseline r(log1p(SC), FC) = "
                f"{data.sc_fc_correlation():.3f}",
                flush=True,
            )
        resumed = _resume(args, data, dt, names, out / "checkpoint", holdout, maps)
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
            holdout=holdout,
            fcd_window=args.fcd_window,
            fcd_step=args.fcd_step,
            heterogeneity=maps,
            fcd_weight=args.fcd_weight,
            fcd_temperature=args.fcd_temperature,
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
        "fcd_ks": np.asarray(res.train.fcd_ks, np.float64),
        "ceiling_r": np.float64(res.ceiling),
        "losses": np.asarray(res.result.losses, np.float64),
        "weights": np.asarray(res.net.connectome.weights, np.float64),
        "lengths": np.asarray(data.connectome.lengths, np.float64),
        "dt": np.float64(res.dt),
        "tr": np.float64(data.tr),
        "summary_json": np.array(json.dumps(summary, indent=1)),
    }
    if res.test is not None:
        arrays |= {
            "r_test": np.asarray(res.test.r, np.float64),
            "fcd_ks_test": np.asarray(res.test.fcd_ks, np.float64),
            "fc_simulated_test": np.asarray(res.test.fc, np.float64),
            "fc_empirical_test": np.asarray(data.split()[1].fc, np.float64),
            "baseline_r_test": np.float64(res.test.baseline),
        }
    if res.basis is not None:
        arrays |= {"a_map": np.asarray(res.net.model.a, np.float64), "heterogeneity_basis": np.asarray(res.basis)}
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
        params = _params_text(res)
        print(f"fitted {params} in {wall:.1f} s (start: FC r = {np.mean(res.r_start):.3f})")
        print(_table(res))
        for path in written:
            print(f"wrote {path}")
    return 0


def _mean_sd(x) -> str:
    x = np.asarray(x, np.float64)
    if not np.all(np.isfinite(x)):
        return "n/a"
    return f"{x.mean():.3f} +- {x.std():.3f}" if x.size > 1 else f"{x.mean():.3f}"


def _table(res) -> str:
    """The scores as a small text table: in sample and, with a holdout, on the held-out part."""
    cols = [("fitted on", res.train)]
    if res.test is not None:
        cols += [("held out", res.test), ("all volumes", res.whole)]
    w, s = res.train.fcd_window / 1000, res.train.fcd_step / 1000
    rows = [
        ("volumes", [f"{sc.n_samples}" for _, sc in cols]),
        ("FC r (per realisation)", [_mean_sd(sc.r) for _, sc in cols]),
        ("FC r (mean simulated FC)", [f"{sc.r_mean_fc:.3f}" for _, sc in cols]),
        (f"FCD KS ({w:g} s windows, {s:g} s step)", [_mean_sd(sc.fcd_ks) for _, sc in cols]),
        ("baseline r(log1p(SC), FC)", [f"{sc.baseline:.3f}" for _, sc in cols]),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{'':{width}}  " + "  ".join(f"{c:>16}" for c, _ in cols)]
    lines += [f"{name:{width}}  " + "  ".join(f"{v:>16}" for v in vals) for name, vals in rows]
    ceiling = "n/a (no BOLD series)" if not np.isfinite(res.ceiling) else f"{res.ceiling:.3f}"
    lines.append(f"test-retest ceiling r(FC half 1, FC half 2) = {ceiling}")
    return "\n".join(lines)


def _short(v, what: str = "regions") -> str:
    a = np.asarray(v)
    return f"{float(a):.4g}" if a.ndim == 0 else f"[{a.min():.3g} .. {a.max():.3g}] ({a.size} {what})"


def _params_text(res) -> str:
    """The fitted values, with a heterogeneity map's coefficients and the map of a they make."""
    text = ", ".join(
        f"{k} = {_short(v, 'coefficients' if k.endswith('.coef') else 'regions')}" for k, v in res.params.items()
    )
    return text if res.basis is None else f"{text}: model.a = {_short(res.net.model.a)}"


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
            "heterogeneity": getattr(args, "heterogeneity_used", args.heterogeneity),
            **({"a_map": np.asarray(res.net.model.a)} if res.basis is not None else {}),
            "fcd_weight": res.fcd_weight,
            "fcd_temperature": args.fcd_temperature if res.fcd_weight else None,
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
            "holdout": res.holdout,
            "ceiling_r": res.ceiling if np.isfinite(res.ceiling) else None,
            "fcd_ks_mean": _finite_mean(res.train.fcd_ks),
            **_held_out_summary(res),
            "scores": {
                "fitted_on": _score_summary(res.train),
                "held_out": _score_summary(res.test),
                "all_volumes": _score_summary(res.whole),
            },
            "fcd": {"window_ms": res.train.fcd_window, "step_ms": res.train.fcd_step, "pairs": "not overlapping"},
            "seed": args.seed,
            "units": {
                "time": "ms",
                "lengths": "mm",
                "coupling.a": "1/ms",
                "model.a": "1/ms",
                "model.a.coef": "1/ms",
                "model.omega": "rad/ms",
            },  # fmt: skip
            "wall_time_s": wall,
            "versions": {"vbtjax": version(), "jax": jax.__version__},
        }
    )


def _finite_mean(x) -> float | None:
    x = np.asarray(x, np.float64)
    return float(x.mean()) if np.all(np.isfinite(x)) else None


def _score_summary(score) -> dict[str, Any] | None:
    if score is None:
        return None
    r = np.asarray(score.r)
    return {
        "n_samples": score.n_samples,
        "r_mean": float(r.mean()),
        "r_std": float(r.std()),
        "r_realisations": r,
        "r_mean_fc": score.r_mean_fc,
        "fcd_ks_mean": _finite_mean(score.fcd_ks),
        "fcd_ks_realisations": [None if not np.isfinite(v) else float(v) for v in np.asarray(score.fcd_ks)],
        "baseline_log1p_sc_r": score.baseline,
    }


def _held_out_summary(res) -> dict[str, Any]:
    if res.test is None:
        return {}
    r = float(np.mean(np.asarray(res.test.r)))
    return {
        "r_held_out_mean": r,
        "fcd_ks_held_out_mean": _finite_mean(res.test.fcd_ks),
        "baseline_held_out_r": res.test.baseline,
        "beats_baseline_held_out": bool(r > res.test.baseline),
    }


def _plot(path: Path, data, res) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fitted_on = data.split()[0] if res.holdout == "half" else data
    emp = np.asarray(fitted_on.fc, np.float64)
    sim = np.asarray(res.fc, np.float64)
    iu = np.triu_indices(data.n_regions, 1)
    r = np.asarray(res.r)
    fig = Figure(figsize=(21, 4.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax_e, ax_s, ax_x, ax_l, ax_b = fig.subplots(1, 5, width_ratios=[1, 1, 0.9, 1.1, 1.1])
    part = f"volumes 1-{res.n_samples}" if res.holdout == "half" else plural(data.n_samples, "volume")
    fc_panel(fig, ax_e, emp, f"empirical FC ({part})")
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
    if res.test is not None:
        r_test = float(np.mean(np.asarray(res.test.r)))
        ax_l.axhline(r_test, color="C1", ls="-.", label=f"fitted, on the held-out half: {r_test:.3f}")
    ax_l.set_xlabel("optimiser step")
    ax_l.set_ylabel("FC correlation r (1 - loss)")
    ax_l.set_title("fit progress")
    ax_l.legend(loc="best", fontsize="small")
    ax_l.grid(True, alpha=0.3)
    _scores_panel(ax_b, res)
    params = _params_text(res)
    part = f"volumes 1-{res.n_samples}, scored on the rest too" if res.test is not None else "all volumes"
    fig.suptitle(f"{data.name}: {res.model} fitted to the FC of {part} ({params}; dt {res.dt:g} ms)", fontsize="medium")
    save_figure(fig, path, dpi=100)


def _scores_panel(ax, res) -> None:
    """Bars of the scores: FC r and FCD KS on the fitted and held-out parts, the baseline and the ceiling."""
    bars = [("FC r\nfitted on", np.mean(np.asarray(res.r)), "C2")]
    if res.test is not None:
        bars.append(("FC r\nheld out", np.mean(np.asarray(res.test.r)), "C1"))
    bars.append(("baseline r\nlog1p(SC)", res.baseline, "C3"))
    bars.append(("ceiling r\nhalf 1 vs 2", res.ceiling, "C7"))
    bars.append(("FCD KS\nfitted on", np.mean(np.asarray(res.train.fcd_ks)), "C2"))
    if res.test is not None:
        bars.append(("FCD KS\nheld out", np.mean(np.asarray(res.test.fcd_ks)), "C1"))
    x = np.arange(len(bars))
    values = np.array([float(v) for _, v, _ in bars])
    shown = np.where(np.isfinite(values), values, 0.0)
    ax.bar(x, shown, color=[c for *_, c in bars], alpha=0.8)
    for i, v in enumerate(values):
        ax.text(i, max(shown[i], 0) + 0.02, "n/a" if not np.isfinite(v) else f"{v:.2f}", ha="center", fontsize=8)
    ax.set_xticks(x, [name for name, *_ in bars], fontsize=7)
    ax.set_ylim(min(0.0, float(shown.min()) - 0.05), 1.1)
    ax.set_ylabel("FC r (Pearson) / FCD KS distance (0-1)")
    w, s = res.train.fcd_window / 1000, res.train.fcd_step / 1000
    ax.set_title(f"scores, mean over realisations\n(FCD: {w:g} s windows, {s:g} s step; KS: lower is better)",
                 fontsize="medium")  # fmt: skip
    ax.grid(True, axis="y", alpha=0.3)
