"""``vbtjax sbi``: amortised simulation-based inference (see :mod:`vbtjax.sbi`) in three steps sharing ``--out DIR``.

- ``simulate``: draws parameters from the problem's prior, simulates them and stores their features in
  ``DIR/budget`` (chunked, resumable: run the same command again after an interruption), with the problem's
  definition in ``DIR/problem.json`` (and, for a synthetic VEP patient, its data in ``DIR/patient``).
- ``train``: trains a neural posterior estimator on the budget (early stopping on a validation split), calibrates it
  on held-out simulations and writes ``DIR/npe`` (the estimator with its prior and feature definition),
  ``DIR/calibration.json``/``.png``, ``DIR/training.png`` and ``DIR/train.json``.
- ``infer``: the posterior of a new observation (an SEEG ``.npz`` for the VEP, a BOLD region x time file, an FC
  matrix for FC-only features, or a features ``.npy``) in ``DIR/<--name>``: ``posterior.nc`` (ArviZ), ``summary.json``,
  ``posterior.png``, for the VEP ``ranking.json`` (regions by ``P(x0 > X0_CRITICAL)``) and with ``--compare-nuts``
  ``nuts.nc`` and ``comparison.json`` (NUTS on the same recording, :func:`vbtjax.vep.infer_ez`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import files
from .common import Stages, UsageError, jsonable, plural, time_arg, version, write_json
from .sbi_output import (
    calibration_json,
    calibration_line,
    compare_nuts,
    infer_report,
    plot_posterior,
    plot_training,
    save_posterior,
    short_summary,
    vep_result,
)

VEP_DEFAULTS = {"duration": 50.0, "period": 2.0, "vep_dt": 0.1, "noise_sd": 0.2}
"""Defaults of the vep problem's options (given with the resting-state problem, they are refused)."""
RS_DEFAULTS = {
    "tr": 720.0,
    "volumes": 1200,
    "dt": None,
    "features": "fc+fcd",
    "fcd_window": None,
    "coupling_max": 2e-3,
}
"""Defaults of the resting-state problem's options (given with the vep problem, they are refused)."""
NUTS_DEFAULTS = {"nuts_chains": 2, "nuts_warmup": 200, "nuts_samples": 200}
"""Defaults of ``sbi infer``'s NUTS options (given without --compare-nuts, they are refused)."""

EPILOG = """\
examples:
  vbtjax sbi simulate --problem vep --synthetic-ez 12,40 --seed 1 --n 20000 --out sbi-vep
  vbtjax sbi train --out sbi-vep
  vbtjax sbi infer --out sbi-vep --observation sbi-vep/patient/seeg.npz --compare-nuts
  vbtjax sbi simulate --problem vep --connectome conn.zip --sensors seeg.txt --seeg patient.npz --out sbi-p1
  vbtjax sbi simulate --problem resting-state --volumes 1200 --n 2000 --out sbi-rs    # HCP 101309's connectome
  vbtjax sbi infer --out sbi-rs --observation bold.mat          # BOLD region x time; --features fc: an FC matrix

an interrupted simulate resumes from the finished chunks when run again with the same arguments.
times (--duration, --period, --vep-dt, --tr, --dt): a bare number is ms, or give the unit (--tr 0.72s, --tr 720ms).
each step announces its stages on stderr ([1/3] ...) unless --quiet.
"""


def add_sbi(sub) -> None:
    """Add the ``sbi`` subcommand (``simulate``, ``train``, ``infer``) to the subparsers ``sub``."""
    from .common import ArgumentParser

    p = sub.add_parser(
        "sbi",
        help="amortised simulation-based inference: simulation budget, neural posterior estimation, inference",
        description=(
            "Neural posterior estimation on a simulation budget: simulate (budget from the prior), train (NPE, "
            "early stopping, calibration on held-out simulations), infer (posterior of a new observation in "
            "seconds). Problems: vep (x0 per region and K from SEEG log-power envelopes), resting-state (global "
            "coupling and the bifurcation parameter of the SupHopf network, scalar or a parameter map, from FC/FCD "
            "summaries). Units: ms."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    steps = p.add_subparsers(dest="step", metavar="STEP", parser_class=ArgumentParser)
    p.set_defaults(func=_no_step)
    _add_simulate(steps)
    _add_train(steps)
    _add_infer(steps)


def _add_simulate(steps) -> None:
    s = steps.add_parser("simulate", help="build or resume a simulation budget in DIR/budget")
    s.add_argument("--problem", choices=("vep", "resting-state"), help="the inference problem (required)")
    s.add_argument("--out", metavar="DIR", required=True, help="project folder")
    s.add_argument("--n", type=int, default=10000, help="number of simulations (10000)")
    s.add_argument("--chunk-size", type=int, default=1000, help="simulations per file on disk (1000)")
    s.add_argument("--batch-size", type=int, help="simulations per vmapped call (default: the problem's)")
    s.add_argument("--seed", type=int, default=0, help="seed of the budget and of a synthetic patient (0)")
    g = s.add_argument_group("vep")
    g.add_argument("--connectome", default=None, metavar="NAME_OR_PATH", help="TVB size (76) or a file with centres")
    g.add_argument("--sensors", metavar="PATH", help="SEEG contact positions (default: tvb-data's seeg_588)")
    g.add_argument("--seeg", metavar="PATH", help="a recording whose contacts (ch_names) define the implantation")
    g.add_argument("--synthetic-ez", metavar="I,J", help="a synthetic patient with this EZ (its implant, its data)")
    T = "TIME"
    g.add_argument("--duration", type=time_arg("--duration"), metavar=T, help="model time of the recording: ms (50)")
    g.add_argument("--period", type=time_arg("--period"), metavar=T, help="model time per envelope window: ms (2)")
    g.add_argument("--vep-dt", type=time_arg("--vep-dt"), metavar=T, help="VEP integration step: ms (0.1)")
    g.add_argument("--noise-sd", type=float, help="observation noise sd of the log power (0.2)")
    g = s.add_argument_group("resting-state")
    g.add_argument("--subject", default=None, help="embedded HCP subject whose connectome is used (101309)")
    g.add_argument("--sc", metavar="PATH", help="structural weights file instead (with --lengths)")
    g.add_argument("--lengths", metavar="PATH", help="tract lengths file (mm)")
    g.add_argument(
        "--tr",
        type=time_arg("--tr", minimum_ms=100),
        metavar=T,
        help="repetition time: ms, or with a unit: 0.72s (720)",
    )
    g.add_argument("--volumes", type=int, help="BOLD volumes per simulation, as the observation (1200)")
    g.add_argument("--dt", type=time_arg("--dt"), metavar=T, help="integration step: ms (default: tr / ceil(tr / 40))")
    g.add_argument("--features", choices=("fc", "fc+fcd"), help="summaries (fc+fcd)")
    g.add_argument("--fcd-window", type=int, help="FCD window, volumes (default: 60 s)")
    g.add_argument("--coupling-max", type=float, help="upper bound of the coupling prior, 1/ms (2e-3)")
    g.add_argument(
        "--a-map",
        metavar="MAP",
        default=None,
        help="a parameter map of the bifurcation parameter, a = a0 + a1 z (z: the map z-scored): 'strength' (log "
        "node strength of the connectome) or a file with one value per region (.npy, .csv, .txt, .mat); default one "
        "a for all regions",
    )
    s.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    s.set_defaults(func=run_simulate)


def _add_train(steps) -> None:
    t = steps.add_parser("train", help="train NPE on DIR/budget, calibrate it, write DIR/npe")
    t.add_argument("--out", metavar="DIR", required=True, help="project folder (with budget/)")
    t.add_argument("--flow", choices=("nsf", "maf"), default="nsf", help="spline (nsf) or affine (maf) flow")
    t.add_argument("--layers", type=int, default=5, help="flow layers (5)")
    t.add_argument("--width", type=int, default=64, help="width of the conditioner networks (64)")
    t.add_argument("--embedding", type=int, default=None, help="size of a feature-embedding MLP (default: none)")
    t.add_argument(
        "--pca",
        type=int,
        default=None,
        help="project the features on their first K principal components (default: 64 when there are more than 256 "
        "features, as for the VEP; 0: none)",
    )
    t.add_argument("--ensemble", type=int, default=4, help="train M flows and use their equal-weight mixture (4)")
    t.add_argument("--max-epochs", type=int, default=300, help="epochs at most (300)")
    t.add_argument("--patience", type=int, default=20, help="stop after this many epochs without improvement (20)")
    t.add_argument("--batch-size", type=int, default=256, help="minibatch size (256)")
    t.add_argument("--learning-rate", type=float, default=1e-3, help="Adam step (1e-3)")
    t.add_argument("--test", type=int, default=None, help="held-out simulations for calibration (10%%, <= 500)")
    t.add_argument("--calibration-draws", type=int, default=200, help="posterior draws per held-out simulation")
    t.add_argument("--seed", type=int, default=0, help="seed of training and calibration (0)")
    t.add_argument("--no-plot", action="store_true", help="do not write the figures")
    t.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    t.set_defaults(func=run_train)


def _add_infer(steps) -> None:
    i = steps.add_parser("infer", help="posterior of a new observation from DIR/npe")
    i.add_argument("--out", metavar="DIR", required=True, help="project folder (with npe/)")
    i.add_argument("--observation", metavar="PATH", required=True, help="SEEG .npz, BOLD/FC file or features .npy")
    i.add_argument("--npe", metavar="PATH", help="estimator folder (default DIR/npe)")
    i.add_argument("--name", default="infer", help="results go to DIR/NAME (infer)")
    i.add_argument("--draws", type=int, default=1000, help="posterior draws (1000)")
    i.add_argument("--seed", type=int, default=0, help="seed (0)")
    i.add_argument("--threshold", type=float, help="vep: P(x0 > critical) above which a region is EZ (0.5)")
    i.add_argument("--compare-nuts", action="store_true", help="vep: also run NUTS (vep.infer_ez) on the recording")
    i.add_argument("--nuts-chains", type=int, help="NUTS chains, with --compare-nuts (2)")
    i.add_argument("--nuts-warmup", type=int, help="NUTS warmup per chain, with --compare-nuts (200)")
    i.add_argument("--nuts-samples", type=int, help="NUTS draws per chain, with --compare-nuts (200)")
    i.add_argument("--no-plot", action="store_true", help="do not write posterior.png")
    i.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    i.set_defaults(func=run_infer)


def _no_step(args) -> int:
    raise UsageError(None, "a step is required: simulate, train or infer (see vbtjax sbi --help)")


def _positive(option: str, value, lo: float = 1) -> None:
    if value is not None and not value >= lo:
        raise UsageError(option, f"must be >= {lo:g}, got {value}")


# ------------------------------------------------------------------------------------------------------- simulate
def _vep_setup(args, out: Path):
    """The VEP problem of `args`, the truth of a synthetic patient (or None) and the function that writes its files
    to ``out/patient`` (or None)."""
    from ..applications import vep
    from ..data.sensors import seeg_gain_point_source
    from ..sbi.problems import vep_problem
    from .vep import load_connectome, load_sensors, parse_ez, write_patient

    for opt in ("--subject", "--sc", "--lengths", "--a-map"):
        if getattr(args, opt[2:].replace("-", "_")) is not None:
            raise UsageError(opt, "is a resting-state option; the vep problem takes --connectome, --sensors, --seeg")
    for opt, v in (("--duration", args.duration), ("--period", args.period), ("--vep-dt", args.vep_dt)):
        if not (np.isfinite(v) and v > 0):
            raise UsageError(opt, f"must be a positive number of ms, got {v:g}")
    n_win = args.duration / args.period
    if abs(n_win - round(n_win)) > 1e-9 or abs(args.period / args.vep_dt - round(args.period / args.vep_dt)) > 1e-9:
        raise UsageError("--period", "--duration must be a whole number of --period, and --period of --vep-dt")
    if not (np.isfinite(args.noise_sd) and args.noise_sd > 0):
        raise UsageError("--noise-sd", f"must be a positive number, got {args.noise_sd:g}")
    if (args.seeg is None) == (args.synthetic_ez is None):
        raise UsageError("--seeg", "give either --seeg (the patient's recording) or --synthetic-ez (a synthetic one)")
    conn_spec = args.connectome or "76"
    conn, _ = load_connectome(conn_spec)
    if conn.centres is None:
        raise UsageError("--connectome", "needs region centres (mm) to compute the SEEG gain")
    sensors, _ = load_sensors(args.sensors)
    truth, write = None, None
    if args.synthetic_ez is not None:
        ez = parse_ez(args.synthetic_ez, conn.n_regions)
        patient = vep.synthetic_patient(
            conn, sensors, ez, seed=args.seed, duration=args.duration, dt=args.vep_dt, period=args.period
        )
        rec = patient.recording
        truth = {"ez": ez, "x0": np.asarray(patient.x0).tolist(), "K": patient.K, "seed": args.seed}
        write = lambda: write_patient(out / "patient", rec, sensors, None, truth)  # noqa: E731 - once accepted
    else:
        try:
            rec = vep.SEEGRecording.load(args.seeg)
        except (ValueError, OSError) as e:
            raise UsageError("--seeg", str(e)) from None
    labels = list(sensors.labels)
    missing = [c for c in rec.ch_names if c not in set(labels)]
    if missing:
        raise UsageError("--seeg", f"contacts {missing[:5]} are not in the sensors file; ch_names must be sensor names")
    idx = [labels.index(c) for c in rec.ch_names]
    gain = seeg_gain_point_source(np.asarray(sensors.positions)[idx], conn.centres)
    conn_path = conn_spec if not Path(conn_spec).exists() else str(Path(conn_spec).resolve())
    sens_path = None if args.sensors is None else str(Path(args.sensors).resolve())
    problem = vep_problem(
        conn,
        gain,
        contacts=rec.ch_names,
        duration=args.duration,
        period=args.period,
        dt=args.vep_dt,
        noise_sd=args.noise_sd,
        spec={"connectome": conn_path, "sensors": sens_path},
    )
    return problem, truth, write


def _read_map(path: Path) -> np.ndarray:
    """One value per region from ``.npy``, ``.csv``/``.txt``/``.tsv`` or ``.mat``/``.npz`` (as a vector)."""
    suffix = path.suffix.lower()
    if suffix == ".npy":
        m = np.load(path, allow_pickle=False)
    elif suffix in (".csv", ".txt", ".tsv", ".dat"):
        m = np.loadtxt(path, delimiter="," if suffix == ".csv" else None, ndmin=1)
    else:
        from ..data.empirical import read_matrix

        m = read_matrix(path, ("map", "data", "values"), "--a-map")
    m = np.asarray(m, dtype=float)
    if m.ndim > 1 and sorted(m.shape)[:-1] != [1] * (m.ndim - 1):
        raise ValueError(f"{path} holds an array of shape {m.shape}; expected one value per region")
    return m.ravel()


def _rs_setup(args):
    from ..sbi.problems import resting_state_problem

    for opt in ("--seeg", "--synthetic-ez", "--sensors", "--connectome"):
        if getattr(args, opt[2:].replace("-", "_")) is not None:
            raise UsageError(opt, "is a vep option; the resting-state problem takes --subject or --sc/--lengths")
    import vbtjax as vbt

    if args.sc is not None or args.lengths is not None:
        if args.sc is None or args.lengths is None:
            raise UsageError("--sc", "give both --sc and --lengths")
        if args.subject is not None:
            raise UsageError("--subject", "give --subject or --sc/--lengths, not both")
        for opt, path in (("--sc", args.sc), ("--lengths", args.lengths)):
            if not Path(path).exists():
                raise UsageError(opt, f"{path} does not exist")
        try:
            conn = vbt.Connectome.from_file(args.sc, lengths=args.lengths)
        except (ValueError, OSError) as e:
            raise UsageError("--sc", str(e)) from None
        tmp_spec = {"sc": str(Path(args.sc).resolve()), "lengths": str(Path(args.lengths).resolve())}
    else:
        subject = args.subject or "101309"
        try:
            conn = vbt.datasets.hcp_subject(subject).connectome
        except ValueError as e:
            raise UsageError("--subject", str(e)) from None
        tmp_spec = {"connectome": f"hcp:{subject}"}
    a_map = args.a_map
    if a_map is not None and a_map != "strength":
        if not Path(a_map).exists():
            raise UsageError("--a-map", f"{a_map} is neither 'strength' nor an existing file")
        try:
            a_map = _read_map(Path(a_map))
        except (ValueError, OSError) as e:
            raise UsageError("--a-map", str(e)) from None
    if not (np.isfinite(args.tr) and args.tr > 0):
        raise UsageError("--tr", f"must be a positive repetition time in ms, got {args.tr:g}")
    _positive("--volumes", args.volumes, 10)
    if args.dt is not None and not (args.dt > 0 and abs(args.tr / args.dt - round(args.tr / args.dt)) < 1e-9):
        raise UsageError("--dt", f"must divide --tr={args.tr:g} ms, got {args.dt:g}")
    try:
        problem = resting_state_problem(
            conn,
            tr=args.tr,
            n_samples=args.volumes,
            dt=args.dt,
            features=args.features,
            fcd_window=args.fcd_window,
            coupling_max=args.coupling_max,
            a_map=a_map,
            spec=tmp_spec,
        )
    except ValueError as e:
        msg = str(e)
        opt = "--coupling-max" if "coupling_max" in msg else "--a-map" if "a_map" in msg else "--volumes"
        raise UsageError(opt, str(e).split(": ", 1)[-1]) from None
    return problem, None, None


def _problem_options(args) -> None:
    """Refuse the other problem's options (they would be ignored), then fill in this problem's defaults."""
    mine, other = (VEP_DEFAULTS, RS_DEFAULTS) if args.problem == "vep" else (RS_DEFAULTS, VEP_DEFAULTS)
    for name in other:
        if getattr(args, name) is not None:
            opt = "--" + name.replace("_", "-")
            raise UsageError(
                opt,
                f"is a {'resting-state' if args.problem == 'vep' else 'vep'} option; "
                f"--problem {args.problem} does not use it",
            )
    for name, default in mine.items():
        if getattr(args, name) is None:
            setattr(args, name, default)


def run_simulate(args: argparse.Namespace) -> int:
    if args.problem is None:
        raise UsageError("--problem", "choose the problem: vep or resting-state")
    _problem_options(args)
    _positive("--n", args.n, 2)
    _positive("--chunk-size", args.chunk_size)
    _positive("--batch-size", args.batch_size)
    if args.seed < 0:
        raise UsageError("--seed", f"must be a non-negative integer, got {args.seed}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError("--out", f"{out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    stages = Stages(2, quiet=args.quiet)
    if args.problem == "vep":
        patient = ", simulating the synthetic patient" if args.synthetic_ez is not None else ""
        stages(f"setting up the vep problem: loading the connectome and sensors{patient}")
        problem, truth, write_patient = _vep_setup(args, out)
    else:
        stages("setting up the resting-state problem: loading the connectome")
        problem, truth, write_patient = _rs_setup(args)
    import jax

    from ..inference.fitting import ResumeError

    _problem_record(out, problem, args)  # refuses another problem in this folder before anything is written
    if write_patient is not None:
        write_patient()
    if not args.quiet:
        what = f"{problem.prior.dim} parameters ({', '.join(problem.prior.names)}), {problem.n_features} features"
        print(f"vbtjax sbi simulate: {problem.name}, {what}; {plural(args.n, 'simulation')} into {out / 'budget'}")
        if truth is not None:
            labels = list(problem.labels)
            ez = ", ".join(f"{labels[i]} ({i})" for i in truth["ez"])
            print(f"synthetic patient: EZ {ez}; its SEEG in {out / 'patient' / 'seeg.npz'}")
    stages(
        f"simulating the budget: compiling the simulator first (seconds to a minute), then "
        f"{plural(args.n, 'simulation')}"
    )
    t0 = time.perf_counter()
    try:
        budget = problem.simulate_budget(
            args.n,
            out / "budget",
            key=jax.random.key(args.seed),
            chunk_size=args.chunk_size,
            batch_size=args.batch_size,
            progress=not args.quiet,
        )
    except ResumeError as e:
        raise UsageError("--out", str(e)) from None
    wall = time.perf_counter() - t0
    done = budget.info.get("simulated_now", 0)
    if not args.quiet:
        rate = f", {done / wall:.1f} simulations/s" if done else ""
        print(
            f"budget: {len(budget)} simulations ({int(budget.finite.sum())} finite), {done} simulated now in "
            f"{wall:.1f} s{rate}; next: vbtjax sbi train --out {out}"
        )
    return 0


def _problem_record(out: Path, problem, args) -> None:
    """``DIR/problem.json``: written by the first run; a later run (a resume) must give the same problem, seed and
    chunking, and may raise ``--n`` (more simulations) when the budget so far is a whole number of chunks."""
    from ..inference.fitting import ResumeError, check_resume

    meta = jsonable({"problem": problem.name, "spec": problem.spec, "n": args.n, "chunk_size": args.chunk_size})
    meta["seed"] = args.seed
    path = out / "problem.json"
    if path.exists():
        old = files.read_json(path, what=f"the budget's record {path}")
        names = {"n": "--n", "chunk_size": "--chunk-size", "seed": "--seed", "problem": "--problem"}
        where = f"{out} holds the budget of another problem or settings"
        hint = "use another folder, or the same arguments to resume (--n may grow by whole chunks)"
        rename = lambda d: {names.get(k, k): v for k, v in d.items()}  # noqa: E731
        try:
            saved = {k: v for k, v in old.items() if k != "resumed"}
            changes = check_resume(rename(saved), rename(meta), where=where, allowed=("--n",), hint=hint)
        except ResumeError as e:
            raise UsageError("--out", str(e).rstrip(".")) from None
        if changes and not (args.n > old["n"] and old["n"] % old["chunk_size"] == 0):
            raise UsageError("--out", f"{where}: --n {old['n']} -> {args.n}; {hint}")
        if not changes:
            return
        meta["resumed"] = [*old.get("resumed", []), {"--n": [old["n"], args.n]}]
    write_json(path, meta)


# ---------------------------------------------------------------------------------------------------------- train
def _load_problem_meta(out: Path) -> dict[str, Any]:
    path = out / "problem.json"
    if not path.is_file() or not (out / "budget" / "budget.json").is_file():
        raise UsageError("--out", f"{out} holds no simulation budget; run vbtjax sbi simulate --out {out} first")
    return files.read_json(path)


def run_train(args: argparse.Namespace) -> int:
    out = Path(args.out)
    for opt, v, lo in (
        ("--layers", args.layers, 1),
        ("--width", args.width, 1),
        ("--max-epochs", args.max_epochs, 1),
        ("--patience", args.patience, 1),
        ("--batch-size", args.batch_size, 1),
        ("--calibration-draws", args.calibration_draws, 10),
        ("--embedding", args.embedding, 1),
        ("--pca", args.pca, 0),
        ("--ensemble", args.ensemble, 1),
        ("--test", args.test, 2),
    ):
        _positive(opt, v, lo)
    if not (args.learning_rate > 0):
        raise UsageError("--learning-rate", f"must be positive, got {args.learning_rate:g}")
    meta = _load_problem_meta(out)
    stages = Stages(4, quiet=args.quiet)
    stages(f"loading the simulation budget {out / 'budget'}")
    import jax

    from .. import sbi
    from ..sbi.problems import problem_from_spec

    try:
        budget = sbi.Budget.load(out / "budget")
    except ValueError as e:
        raise UsageError("--out", str(e)) from None
    finite = budget.finite_only()
    n = len(finite)
    n_test = args.test if args.test is not None else min(500, max(2, n // 10))
    if n - n_test < 20:
        raise UsageError("--test", f"{n} finite simulations leave {n - n_test} to train on; simulate more (--n)")
    problem = problem_from_spec(meta["problem"], meta["spec"])
    train, test = finite.split(n_test)
    pca = args.pca
    if pca is None:
        pca = 64 if budget.n_features > 256 else 0
    if pca > min(budget.n_features, int(0.9 * len(train))):
        raise UsageError("--pca", f"{pca} components of {budget.n_features} features and {len(train)} simulations")
    if not args.quiet:
        print(
            f"vbtjax sbi train: {meta['problem']}, {len(train)} simulations to train on (10% of them validate), "
            f"{n_test} held out for calibration; {len(budget) - n} dropped (non-finite)"
        )
    key = jax.random.key(args.seed)
    stages(
        f"training {plural(args.ensemble, 'flow')} (compiling first, seconds to a minute; then up to "
        f"{plural(args.max_epochs, 'epoch')})"
    )
    npe, hist = sbi.train_npe(
        train,
        key=jax.random.fold_in(key, 0),
        flow=args.flow,
        layers=args.layers,
        width=args.width,
        embedding=args.embedding,
        pca=pca or None,
        ensemble=args.ensemble,
        max_epochs=args.max_epochs,
        patience=args.patience,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        progress=not args.quiet,
    )
    stages(f"calibrating on {plural(n_test, 'held-out simulation')}, {args.calibration_draws} posterior draws each")
    t0 = time.perf_counter()
    cal = sbi.calibrate(npe, problem.prior, test, key=jax.random.fold_in(key, 1), num_draws=args.calibration_draws)
    t_cal = time.perf_counter() - t0
    cal_json = calibration_json(cal)
    stages("writing npe/, calibration.json, train.json" + ("" if args.no_plot else " and the figures"))
    write_json(out / "calibration.json", cal_json)
    desc = problem.description()
    desc.update(budget=str((out / "budget").resolve()), n_budget=len(budget), n_test=n_test)
    desc["calibration"] = {
        k: cal_json[k] for k in ("max_coverage_error", "coverage_band_99", "joint_coverage_90", "checks", "verdict")
    }
    npe.save(out / "npe", problem.prior, history=hist, description=jsonable(desc), overwrite=True)
    summary = {
        "vbtjax_version": version(),
        "problem": meta["problem"],
        "n_train": hist["n_train"],
        "n_val": hist["n_val"],
        "n_test": n_test,
        "n_dropped": hist["n_dropped"],
        "epochs": len(hist["val_loss"]),
        "best_epoch": hist["best_epoch"],
        "best_val_loss": hist["best_val_loss"],
        "seconds_training": round(hist["seconds"], 2),
        "seconds_calibration": round(t_cal, 2),
        "flow": args.flow,
        "layers": args.layers,
        "width": args.width,
        "embedding": args.embedding,
        "pca": pca or None,
        "ensemble": args.ensemble,
        "calibration_checks": cal_json["checks"],
        "calibration_verdict": cal_json["verdict"],
    }
    write_json(out / "train.json", summary)
    if not args.no_plot:
        cal.plot(out / "calibration.png")
        plot_training(out / "training.png", hist)
    if not args.quiet:
        print(cal.summary() if len(cal.names) <= 12 else short_summary(cal_json))
        print(
            f"trained in {hist['seconds']:.1f} s ({plural(summary['epochs'], 'epoch')}, best {hist['best_epoch']}); "
            f"calibration in {t_cal:.1f} s; {calibration_line(cal_json)}; wrote {out / 'npe'}; next: vbtjax sbi "
            f"infer --out {out} --observation FILE"
        )
    return 0


# ---------------------------------------------------------------------------------------------------------- infer
def _observation(problem, path: Path, n_features: int) -> tuple[np.ndarray, Any]:
    """Features of the observation file and, for an SEEG recording, the recording."""
    from ..applications import vep

    if not path.exists():
        raise UsageError("--observation", f"{path} does not exist")
    rec = None
    try:
        if path.suffix == ".npy" and np.load(path, allow_pickle=False).ndim == 1:
            x = np.load(path, allow_pickle=False).astype(float)
        elif problem.name == "vep":
            rec = vep.SEEGRecording.load(path)
            x = problem.observe(rec)
        else:
            x = problem.observe(path)
    except (ValueError, OSError, TypeError, KeyError) as e:
        raise UsageError("--observation", str(e)) from None
    if x.shape != (n_features,):
        raise UsageError("--observation", f"{path} gives {x.size} features; the estimator was trained on {n_features}")
    if not np.all(np.isfinite(x)):
        raise UsageError("--observation", f"the features of {path} contain NaN or inf")
    return x, rec


def _infer_options(args, out: Path, npe_dir: Path) -> None:
    """Check ``sbi infer``'s options; NUTS options without --compare-nuts are refused (they would be ignored), then
    the defaults filled in."""
    _positive("--draws", args.draws, 2)
    given = [f"--{k.replace('_', '-')}" for k in NUTS_DEFAULTS if getattr(args, k) is not None]
    if given and not args.compare_nuts:
        raise UsageError(given[0], "applies with --compare-nuts only")
    for k, v in NUTS_DEFAULTS.items():
        setattr(args, k, v if getattr(args, k) is None else getattr(args, k))
    for opt, v, lo in (("--nuts-chains", args.nuts_chains, 1), ("--nuts-samples", args.nuts_samples, 1)):
        _positive(opt, v, lo)
    _positive("--nuts-warmup", args.nuts_warmup, 0)
    if args.threshold is not None and not 0 < args.threshold < 1:
        raise UsageError("--threshold", f"must lie in (0, 1), got {args.threshold}")
    if not (npe_dir / "npe.json").is_file():
        opt = "--npe" if args.npe else "--out"
        raise UsageError(opt, f"{npe_dir} holds no trained estimator; run vbtjax sbi train --out {out} first")
    if "/" in args.name or args.name in ("", ".", "..", "npe", "budget", "patient"):
        raise UsageError("--name", f"must be a plain folder name other than npe, budget, patient; got {args.name!r}")


def run_infer(args: argparse.Namespace) -> int:
    out = Path(args.out)
    npe_dir = Path(args.npe) if args.npe else out / "npe"
    _infer_options(args, out, npe_dir)
    stages = Stages(4 if args.compare_nuts else 3, quiet=args.quiet)
    stages(f"loading the estimator {npe_dir} and the observation {args.observation}")
    import jax

    from .. import sbi
    from ..sbi.problems import problem_from_spec
    from ..twin.twin import TwinFileError

    t0 = time.perf_counter()
    try:
        npe, prior, info = sbi.load_npe(npe_dir)
    except TwinFileError as e:
        raise UsageError("--npe" if args.npe else "--out", str(e)) from None
    desc = info["description"]
    problem = problem_from_spec(desc["problem"], desc["spec"])
    if args.compare_nuts and problem.name != "vep":
        raise UsageError("--compare-nuts", "is available for the vep problem only")
    if args.threshold is not None and problem.name != "vep":
        raise UsageError("--threshold", f"applies to the vep problem only (this estimator's is {problem.name})")
    args.threshold = 0.5 if args.threshold is None else args.threshold
    obs_path = Path(args.observation)
    x, rec = _observation(problem, obs_path, npe.x_mean.shape[0])
    if args.compare_nuts and rec is None:
        raise UsageError("--compare-nuts", "needs the SEEG recording (.npz) as --observation, not features")
    t_load = time.perf_counter() - t0
    stages(f"sampling {plural(args.draws, 'posterior draw')} (compiling first, a few seconds)")
    key = jax.random.key(args.seed)
    t1 = time.perf_counter()
    draws = npe.posterior(prior, key, x, args.draws)
    jax.block_until_ready(draws)
    t_first = time.perf_counter() - t1
    t1 = time.perf_counter()
    draws = npe.posterior(prior, jax.random.fold_in(key, 1), x, args.draws)
    t_sample = time.perf_counter() - t1
    res_dir = out / args.name
    res_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {
        "vbtjax_version": version(),
        "problem": problem.name,
        "observation": str(obs_path),
        "estimator": str(npe_dir),
        "estimator_calibration": (desc.get("calibration") or {}).get("verdict"),
        "draws": args.draws,
        "seconds_load": round(t_load, 3),
        "seconds_first_sampling": round(t_first, 3),
        "seconds_sampling": round(t_sample, 4),
        "posterior": {
            k: {"mean": v.mean(0), "sd": v.std(0), "q05": np.quantile(v, 0.05, 0), "q95": np.quantile(v, 0.95, 0)}
            for k, v in draws.items()
        },
    }
    truth = files.read_json(obs_path.parent / "truth.json") if (obs_path.parent / "truth.json").is_file() else None
    if truth is not None:
        summary["truth"] = truth
    ranking = vep_result(args, problem, draws, truth, res_dir, summary) if problem.name == "vep" else None
    nuts = None
    if args.compare_nuts:
        stages(
            f"NUTS on the same recording for comparison ({plural(args.nuts_chains, 'chain')}; compiling first, about "
            "a minute on a CPU)"
        )
        nuts = compare_nuts(args, problem, rec, draws, res_dir, summary)
    stages("writing posterior.nc, summary.json" + ("" if args.no_plot else " and posterior.png"))
    save_posterior(res_dir, problem, draws, x, obs_path)
    if not args.no_plot:
        plot_posterior(res_dir / "posterior.png", problem, draws, truth, list(problem.labels) or None)
    summary["seconds_total"] = round(time.perf_counter() - t0, 2)
    write_json(res_dir / "summary.json", summary)
    if not args.quiet:
        infer_report(args, summary, ranking, truth, t_sample, t_first, nuts, res_dir)
    return 0
