"""``vbtjax vep``: the Virtual Epileptic Patient from SEEG (see :mod:`vbtjax.vep`).

Reads a connectome, SEEG contact positions and an SEEG recording (``.npz``, EDF/BDF, BrainVision, FIF or BIDS-iEEG;
or simulates a synthetic patient with ``--synthetic-ez``), samples the posterior of the per-region excitability
``x0``, the coupling and the recording's time scale, checks convergence and the fit, and writes to ``--out``:
``posterior.nc`` (ArviZ InferenceData, netCDF), ``ranking.json`` (regions by probability of being epileptogenic),
``vep.json`` (summary, diagnostics, posterior predictive check, the virtual resection and whether it is
recommended), ``vep.png`` and ``ppc.png`` (figures), and for a synthetic patient ``patient/`` with its data in the
input formats (``seeg.npz``, ``sensors.txt``, ``connectome.npz``, ``truth.json``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from .. import files
from .common import (
    Stages,
    UsageError,
    label_ticks,
    plural,
    region_labels,
    replacing,
    resume_settings,
    save_figure,
    time_arg,
    version,
    write_json,
    write_summary_json,
)

STRICT_RHAT = 1.01
"""The R-hat above which a converged run (R-hat <= vep.MAX_RHAT) still gets a caveat (Vehtari et al. 2021)."""

EPILOG = """\
examples:
  vbtjax vep --synthetic-ez 12,40 --seed 1 --out vep-demo     # simulate a patient, then infer its EZ
  vbtjax vep --synthetic-ez 12,40 --seed 1 --patient-only --out p1   # only write the patient's files to p1/patient
  vbtjax vep --connectome connectivity_76.zip --sensors seeg.txt --seeg patient.npz --out vep-p1
  vbtjax vep --out vep-demo --synthetic-ez 12,40 --seed 1 --resume   # continue an interrupted run
  vbtjax vep --seeg sub-01_task-seizure_ieeg.edf --montage bipolar --out vep-s1    # BIDS-iEEG: positions from
                                                                                  # its electrodes.tsv

SEEG file: .npz (data: contacts x samples, sfreq in Hz, ch_names), .edf/.bdf, .vhdr (BrainVision), .fif, or a
BIDS-iEEG *_ieeg.* file (its channels.tsv marks bad channels, its electrodes.tsv gives positions in mm). Channel
names are contacts of the sensors ("A1") or bipolar pairs of them ("A1-A2"). Any duration and sampling rate: the
recording is cut into --duration / --period windows and its time scale is inferred (--time-scale).
Sensors file: one contact a line, "name x y z" in mm, in the frame of the connectome's centres (TVB's format).
Times (--duration, --period, --dt): model time, a bare number in ms (--period 2) or with a unit (--period 2ms).
Stages are announced on stderr ([1/5] loading data, ...); a warning is one line (vbtjax vep: warning: ...).
"""


def add_vep(sub) -> None:
    """Add the ``vep`` subcommand to the subparsers ``sub``."""
    p = sub.add_parser(
        "vep",
        help="Virtual Epileptic Patient: infer the epileptogenic zone from SEEG with NUTS, and a virtual resection",
        description=(
            "Infer each region's excitability x0 and the global coupling of an Epileptor2D network from SEEG "
            "log-power envelopes with NUTS, rank the regions by their posterior probability of being "
            "epileptogenic (x0 > -2.05), and predict whether resecting the most likely ones stops the seizures. "
            "Model time in ms (one envelope window per --period)."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = p.add_argument_group("patient data")
    g.add_argument(
        "--connectome",
        default="76",
        metavar="NAME_OR_PATH",
        help="TVB connectome size (66, 68, 76, 96, 192; default 76) or a file Connectome.from_file reads",
    )
    g.add_argument(
        "--sensors",
        metavar="PATH",
        help="SEEG contact positions (default: the recording's own, e.g. BIDS electrodes.tsv; else tvb-data seeg_588)",
    )
    g.add_argument("--seeg", metavar="PATH", help="SEEG recording: .npz, .edf, .bdf, .vhdr, .fif or BIDS *_ieeg.*")
    g.add_argument(
        "--montage",
        choices=("as-recorded", "bipolar"),
        default="as-recorded",
        help="use the channels as recorded (monopolar or already bipolar), or re-reference to bipolar pairs of "
        "neighbouring contacts (default as-recorded)",
    )
    g.add_argument(
        "--bads",
        metavar="A1,B2",
        default="",
        help="channels to leave out, besides those the file marks bad and flat ones",
    )
    g.add_argument(
        "--synthetic-ez",
        metavar="I,J,...",
        help="simulate a synthetic patient with these epileptogenic regions (0-based) instead of reading --seeg",
    )
    g.add_argument("--seed", type=int, default=0, help="random seed of the synthetic patient and of NUTS (default 0)")
    g.add_argument(
        "--patient-only",
        action="store_true",
        help="with --synthetic-ez: write the patient's files to DIR/patient and stop (no inference; infer later "
        "with --seeg DIR/patient/seeg.npz --sensors DIR/patient/sensors.txt, or give the data to another tool)",
    )
    g = p.add_argument_group("model and sampler")
    g.add_argument(
        "--duration",
        type=time_arg("--duration"),
        default=50.0,
        metavar="TIME",
        help="model time the recording maps onto at time scale 1: ms, or with a unit: 50ms (default 50)",
    )
    g.add_argument(
        "--period",
        type=time_arg("--period"),
        default=2.0,
        metavar="TIME",
        help="model time per envelope window: ms, or with a unit: 2ms (default 2)",
    )
    g.add_argument(
        "--dt", type=time_arg("--dt"), default=0.1, metavar="TIME", help="integration step: ms, or with a unit (0.1)"
    )
    g.add_argument(
        "--feature",
        choices=("auto", "power", "level"),
        default="auto",
        help="observation model: log power of each window (broadband or fast seizure activity), the window's mean "
        "level (slow shifts, e.g. a gain-projected Epileptor2D x1), or chosen from the data (default auto)",
    )
    g.add_argument(
        "--time-scale",
        default="0.25,4",
        metavar="LO,HI or S",
        help="range of the inferred time scale that maps the recording onto the model's time (default 0.25,4), or "
        "one number to fix it",
    )
    g.add_argument("--sampler", choices=("nuts", "smc"), default="nuts", help="NUTS chains or tempered SMC runs")
    g.add_argument("--chains", type=int, default=4, help="NUTS chains or SMC runs, in parallel (4)")
    g.add_argument("--particles", type=int, default=None, help="particles per SMC run, with --sampler smc (64)")
    g.add_argument("--warmup", type=int, default=200, help="warmup steps per chain (200)")
    g.add_argument("--samples", type=int, default=200, help="draws per chain (200)")
    g.add_argument("--max-tree-depth", type=int, default=6, help="NUTS maximum tree depth (6)")
    g.add_argument("--threshold", type=float, default=0.5, help="probability above which a region is called EZ (0.5)")
    g.add_argument("--resection-draws", type=int, default=100, help="posterior draws simulated for the resection")
    g.add_argument("--x64", action="store_true", help="compute in float64 (default float32)")
    g = p.add_argument_group("output")
    g.add_argument("--out", metavar="DIR", default="vbtjax-vep", help="output folder (default vbtjax-vep)")
    g.add_argument(
        "--resume",
        action="store_true",
        help="continue the NUTS sampler from DIR/checkpoint. Only the same run is continued: the patient's data "
        "(connectome, sensors, recording, montage, bad channels) and the model and sampler options must be those of "
        "the checkpoint (else an error names what differs); --samples may change (more draws continue the chains, "
        "fewer keep the first ones), recorded in vep.json as resumed: [{at_step, --samples: [old, new]}]; "
        "--threshold, --resection-draws and the output options may change",
    )
    g.add_argument("--no-plot", action="store_true", help="do not write vep.png")
    g.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    p.set_defaults(func=run_vep)


def parse_ez(text: str, n: int) -> list[int]:
    try:
        ez = sorted({int(v) for v in text.replace(" ", "").split(",") if v != ""})
    except ValueError:
        raise UsageError(
            "--synthetic-ez", f"expected comma-separated region indices such as 12,40, got {text!r}"
        ) from None
    if not ez:
        raise UsageError("--synthetic-ez", "give at least one region index")
    bad = [i for i in ez if not 0 <= i < n]
    if bad:
        raise UsageError("--synthetic-ez", f"indices {bad} outside 0..{n - 1} (the connectome has {n} regions)")
    return ez


def load_connectome(spec: str):
    import vbtjax as vbt

    from .simulate import CONNECTOME_SIZES

    spec = str(spec).strip()
    if spec.isdigit() and not Path(spec).exists():
        if int(spec) not in CONNECTOME_SIZES:
            raise UsageError("--connectome", f"{spec} is not a TVB connectome size ({CONNECTOME_SIZES}) nor a path")
        return vbt.datasets.tvb_connectome(int(spec)), f"TVB connectivity_{spec}"
    path = Path(spec).expanduser()
    if not path.exists():
        raise UsageError("--connectome", f"{spec!r} does not exist")
    try:
        return vbt.Connectome.from_file(path), str(path)
    except (ValueError, OSError) as e:
        raise UsageError("--connectome", str(e)) from None


def load_sensors(path: str | None, rec=None):
    import vbtjax as vbt

    if path is None:
        if rec is not None and rec.positions is not None:
            from ..data.recordings import sensors_from_recording

            try:
                return sensors_from_recording(rec), "the recording's electrode positions"
            except ValueError as e:
                raise UsageError("--sensors", f"{e}; give --sensors") from None
        return vbt.sensors.tvb_sensors("seeg"), "tvb-data seeg_588"
    if not Path(path).exists():
        raise UsageError("--sensors", f"{path} does not exist")
    try:
        return vbt.sensors.Sensors.from_file(path), str(path)
    except (ValueError, OSError) as e:
        raise UsageError("--sensors", str(e)) from None


def write_patient(folder: Path, rec, sensors, conn, truth: dict | None) -> None:
    """A patient's files in the input formats, each written atomically: ``seeg.npz``, ``sensors.txt`` (the contacts
    of the recording), ``connectome.npz`` (with `conn`; None: not written) and ``truth.json`` (None: not written)."""
    folder.mkdir(parents=True, exist_ok=True)
    with replacing(folder / "seeg.npz") as tmp:
        rec.save(tmp)
    positions = np.asarray(sensors.positions)[[sensors.index(c) for c in rec.ch_names]]
    lines = [f"{lb} {x:.6f} {y:.6f} {z:.6f}" for lb, (x, y, z) in zip(rec.ch_names, positions, strict=True)]
    files.write_text(folder / "sensors.txt", "\n".join(lines) + "\n")
    if conn is not None:
        conn.save_npz(folder / "connectome.npz")
    if truth is not None:
        write_json(folder / "truth.json", truth)


def _check(args) -> None:
    for opt, v in (("--duration", args.duration), ("--period", args.period), ("--dt", args.dt)):
        if not (np.isfinite(v) and v > 0):
            raise UsageError(opt, f"must be a positive number of ms, got {v:g}")
    n_win = args.duration / args.period
    if abs(n_win - round(n_win)) > 1e-9 or abs(args.period / args.dt - round(args.period / args.dt)) > 1e-9:
        raise UsageError("--period", "--duration must be a whole number of --period, and --period of --dt")
    for opt, v, lo in (
        ("--chains", args.chains, 1),
        ("--warmup", args.warmup, 0),
        ("--samples", args.samples, 1),
        ("--max-tree-depth", args.max_tree_depth, 1),
        ("--resection-draws", args.resection_draws, 1),
    ):
        if v < lo:
            raise UsageError(opt, f"must be >= {lo}, got {v}")
    if not 0 < args.threshold < 1:
        raise UsageError("--threshold", f"must lie in (0, 1), got {args.threshold}")
    if (args.seeg is None) == (args.synthetic_ez is None):
        raise UsageError("--seeg", "give either --seeg (a recording) or --synthetic-ez (a synthetic patient)")
    if args.patient_only and args.synthetic_ez is None:
        raise UsageError("--patient-only", "needs --synthetic-ez (it writes a synthetic patient's files)")
    if args.chains < 2:
        raise UsageError("--chains", f"must be >= 2 (R-hat compares chains or runs), got {args.chains}")
    if args.particles is not None and args.sampler != "smc":
        raise UsageError("--particles", f"applies to --sampler smc only (this run uses {args.sampler})")
    args.particles = 64 if args.particles is None else args.particles
    if args.particles < 8:
        raise UsageError("--particles", f"must be >= 8, got {args.particles}")
    if args.resume and args.sampler != "nuts":
        raise UsageError("--resume", f"continues a NUTS run from its checkpoint; --sampler {args.sampler} keeps none")
    _time_scale(args.time_scale)


def _time_scale(text: str):
    try:
        vals = [float(v) for v in str(text).split(",")]
    except ValueError:
        raise UsageError("--time-scale", f"expected LO,HI or one number, got {text!r}") from None
    if len(vals) == 1 and np.isfinite(vals[0]) and vals[0] > 0:
        return vals[0]
    if len(vals) == 2 and np.all(np.isfinite(vals)) and 0 < vals[0] < vals[1]:
        return tuple(vals)
    raise UsageError("--time-scale", f"expected 0 < LO < HI or one positive number, got {text!r}")


def run_vep(args: argparse.Namespace) -> int:
    _check(args)
    t_start = time.perf_counter()
    stages = Stages(2 if args.patient_only else 5, quiet=args.quiet)
    stages(
        "loading the connectome and sensors, "
        + ("simulating the synthetic patient" if args.synthetic_ez is not None else f"reading {args.seeg}")
    )
    if args.x64:
        import jax

        jax.config.update("jax_enable_x64", True)
    import jax
    import jax.numpy as jnp

    from ..applications import vep

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    conn, conn_source = load_connectome(args.connectome)
    if conn.centres is None:
        raise UsageError("--connectome", "needs region centres (mm) to compute the SEEG gain")
    rec = None if args.seeg is None else _load_recording(args.seeg, args.bads)
    sensors, sensors_source = load_sensors(args.sensors, rec)
    truth, write_patient_files = None, None
    if args.synthetic_ez is not None:
        rec, truth, write_patient_files = _synthetic(conn, sensors, args, out)
        if args.patient_only:
            stages(f"writing {out / 'patient'}/")
            write_patient_files()
            if not args.quiet:
                print(f"wrote {out / 'patient'}/")
            return 0
    left_out = list(rec.bads)
    rec = _montage(rec, args.montage)
    stages("building the observation model (SEEG gain, envelopes of the recording)")
    try:
        post = vep.recording_posterior(
            conn,
            sensors,
            rec,
            feature=args.feature,
            duration=args.duration,
            period=args.period,
            dt=args.dt,
            time_scale=_time_scale(args.time_scale),
            dtype=jnp.float64 if args.x64 else jnp.float32,
        )
    except ValueError as e:
        raise UsageError("--seeg", f"{e} (sensors: {sensors_source})") from None
    if not args.quiet:
        print(
            f"{plural(len(rec.ch_names), 'channel')}, {rec.data.shape[1] / rec.sfreq:g} s at {rec.sfreq:g} Hz in "
            f"{plural(int(round(args.duration / args.period)), 'window')}; observation model: {post.feature}"
            + (f"; left out: {', '.join(left_out)}" if left_out else "")
        )
    ckpt = out / "checkpoint"
    resumed = _resume(args, conn, post, ckpt) if args.sampler == "nuts" else []
    if args.resume and not resumed and not args.quiet:
        print(f"--resume: no checkpoint in {ckpt} to continue; starting afresh", flush=True)
    if write_patient_files is not None:
        write_patient_files()
    stages(_sampling_stage(args, conn.n_regions))
    result = vep.infer_ez(
        post,
        key=jax.random.key(args.seed),
        labels=region_labels(conn),
        sampler=args.sampler,
        num_chains=args.chains,
        num_warmup=args.warmup,
        num_samples=args.samples,
        num_particles=args.particles,
        max_tree_depth=args.max_tree_depth,
        checkpoint=ckpt if args.sampler == "nuts" else None,
        progress=not args.quiet,
        warn=False,
    )
    sources = {"connectome": conn_source, "sensors": sensors_source, "seeg": args.seeg}
    summary = {
        **sources,
        "channels": list(rec.ch_names),
        "bads": left_out,
        "n_contacts": len(rec.ch_names),
        "seconds_sampling": round(time.perf_counter() - t_start, 1),
        "resumed": resumed,
    }
    summary = _write_results(args, out, conn, post, result, truth, sources, summary, stages)
    summary["seconds_total"] = round(time.perf_counter() - t_start, 1)
    write_summary_json(out / "vep.json", summary)
    if summary["convergence"]["caveat"]:
        import warnings

        warnings.warn(summary["convergence"]["caveat"], stacklevel=1)  # one line: see cli.common.one_line_warnings
    if not args.quiet:
        _report(result, summary, out)
    return 0


def _sampling_stage(args, n_regions: int) -> str:
    """The sampling stage's announcement: what runs, and roughly how long before its progress bar appears."""
    if args.sampler == "smc":
        return f"sampling: compiling tempered SMC ({plural(args.chains, 'run')} of {args.particles} particles)"
    return (
        f"sampling: finding the posterior mode, then compiling NUTS ({n_regions} regions: about "
        f"{_compile_estimate(n_regions)} s on a CPU) before its progress bar; then P(EZ) from simulated draws and the "
        "posterior predictive check"
    )


def _compile_estimate(n_regions: int) -> int:
    """Seconds before the NUTS progress bar of ``vbtjax vep`` appears, roughly: the posterior mode and compiling
    NUTS took 77 CPU seconds for TVB's 76 regions (4 chains, measured on a 2-core machine), most of it compilation,
    which grows slower than the network; scaled with the square root of the number of regions."""
    return int(5 * round(75.0 * max(0.25, n_regions / 76) ** 0.5 / 5))


def _resume(args, conn, post, folder: Path) -> list[dict]:
    """Check ``--resume`` against the checkpoint's settings (or record a fresh run's): see ``--help``."""
    from ..inference.fitting import fingerprint

    data = (post.envelope, post.gain, conn.weights, conn.lengths, conn.centres)
    settings = {
        "patient data": fingerprint(tuple(np.asarray(x, np.float64) for x in data), max_values=0),
        "--feature": post.feature,
        **{f"--{k.replace('_', '-')}": getattr(args, k) for k in _RESUME_OPTIONS},
    }
    return resume_settings(folder, "nuts_checkpoint.npz", settings, args.resume, allowed=("--samples",))


_RESUME_OPTIONS = ("montage", "bads", "synthetic_ez", "duration", "period", "dt", "time_scale", "seed", "chains")
_RESUME_OPTIONS += ("warmup", "samples", "max_tree_depth", "x64")


def _write_results(args, out: Path, conn, post, result, truth, sources: dict, summary: dict, stages) -> dict:
    """The resection, ``posterior.nc``, ``ranking.json``, the twin and the figures; returns the summary completed
    for ``vep.json`` (every file written atomically)."""
    from ..applications import vep
    from ..inference.diagnostics import save_netcdf

    nres = result.samples
    n = conn.n_regions
    predicted = result.predicted_ez(args.threshold).tolist()
    x0 = np.asarray(nres.samples["x0"]).reshape(-1, n)
    K = np.asarray(nres.samples["K"]).reshape(-1)
    ts = np.asarray(nres.samples["time_scale"]).reshape(-1) if "time_scale" in nres.samples else None
    pick = np.linspace(0, x0.shape[0] - 1, min(args.resection_draws, x0.shape[0])).astype(int)
    what = ", ".join(result.labels[i] for i in predicted) or "nothing"
    stages(f"virtual resection of the predicted EZ ({what}) over {plural(pick.size, 'posterior draw')}")
    resection = vep.virtual_resection(
        conn,
        x0[pick],
        K[pick],
        predicted,
        duration=args.duration,
        dt=args.dt,
        period=args.period,
        time_scale_draws=None if ts is None else ts[pick],
    )
    stages("writing posterior.nc, ranking.json, vep.json, the twin" + ("" if args.no_plot else " and figures"))
    idata = nres.to_inference_data(
        dims={"x0": ["region"]},
        coords={"region": list(result.labels)},
        attrs={"vbtjax_version": version(), "connectome": sources["connectome"], "sensors": sources["sensors"]},
    )
    save_netcdf(idata, out / "posterior.nc")
    write_json(out / "ranking.json", result.ranking)
    inputs = [p for p in (args.connectome, args.sensors, args.seeg) if p is not None and Path(p).is_file()]
    convergence = convergence_status(result)
    twin = vep.vep_twin(
        conn,
        result,
        duration=args.duration,
        dt=args.dt,
        period=args.period,
        inputs=inputs,
        metadata={**sources, "convergence": convergence},  # for vbtjax whatif's caveat
    )
    twin.save(out / "twin", overwrite=True)
    summary = {
        "vbtjax_version": version(),
        **summary,
        "windows": int(round(args.duration / args.period)),
        "feature": post.feature,
        "duration_ms": args.duration,
        "period_ms": args.period,
        "dt_ms": args.dt,
        "sampler": args.sampler,
        "chains": args.chains,
        "warmup": args.warmup,
        "samples": int(x0.shape[0] // args.chains),
        "threshold": args.threshold,
        **_result_summary(result, resection, predicted, x0, K, ts),
        "convergence": convergence,
        "seconds_total": None,
    }
    if hasattr(nres, "step_size"):
        summary["step_size"] = np.asarray(nres.step_size).tolist()
    if truth is not None:
        tp = len(set(truth["ez"]) & set(predicted))
        summary.update(truth=truth, precision=tp / max(len(predicted), 1), recall=tp / len(truth["ez"]))
    if not args.no_plot:
        _plot(out / "vep.png", np.asarray(post.envelope), post, result, resection, truth, args)
        with replacing(out / "ppc.png") as tmp:
            ylabel = "log power" if post.feature == "power" else "level (common scale)"
            result.ppc.plot(tmp, xlabel="window", ylabel=ylabel)
    return summary


def _synthetic(conn, sensors, args, out: Path):
    """A synthetic patient's recording, truth, and the function that writes its files to ``out/patient`` in the
    input formats (called once a ``--resume`` is accepted: a refused command writes nothing)."""
    from ..applications import vep

    ez = parse_ez(args.synthetic_ez, conn.n_regions)
    patient = vep.synthetic_patient(
        conn, sensors, ez, seed=args.seed, duration=args.duration, dt=args.dt, period=args.period
    )
    truth = {"ez": ez, "x0": np.asarray(patient.x0).tolist(), "K": patient.K, "seed": args.seed}
    truth["seizing"] = list(patient.seizing)
    if not args.quiet:
        n_ch = len(patient.recording.ch_names)
        labels = region_labels(conn)
        named = lambda idx: ", ".join(f"{labels[i]} ({i})" for i in idx) or "none"  # noqa: E731
        print(f"synthetic patient: EZ {named(ez)}; {n_ch} contacts; seizing regions {named(patient.seizing)}")
    return patient.recording, truth, lambda: write_patient(out / "patient", patient.recording, sensors, conn, truth)


def _result_summary(result, resection, predicted, x0, K, ts) -> dict:
    """The inference's part of ``vep.json``: the EZ, posterior means, diagnostics, the predictive check, the
    verdict and the resection, recommended only for a trustworthy result that calls some region epileptogenic."""
    diag = result.diagnostics
    return {
        "predicted_ez": predicted,
        "predicted_ez_labels": [result.labels[i] for i in predicted],
        "labels": list(result.labels),
        "unobserved_regions": np.flatnonzero(~np.asarray(result.observed)).tolist(),
        "unobserved_region_labels": [result.labels[i] for i in np.flatnonzero(~np.asarray(result.observed))],
        "x0_mean": x0.mean(axis=0).tolist(),
        "K_mean": float(K.mean()),
        "time_scale_mean": None if ts is None else float(ts.mean()),
        "divergences": diag["divergences"],
        "max_rhat": diag["max_rhat"],
        "min_ess_bulk": diag["min_ess_bulk"],
        "min_ess_tail": diag["min_ess_tail"],
        "diagnostics": diag,
        "converged": result.converged,
        "ppc": result.ppc.to_dict(),
        "fits": result.fits,
        "verdict": result.verdict,
        "resection": {
            **{k: v for k, v in resection.items() if not k.startswith("p_")},
            "resected_labels": [result.labels[i] for i in resection["resected"]],
        },
        "resection_recommended": bool(result.trustworthy and predicted),
    }


def convergence_status(result) -> dict:
    """What goes with every ranking and recommendation: the convergence status (converged by vep.MAX_RHAT and
    vep.MAX_DIVERGENT; strict: R-hat <= STRICT_RHAT and no divergent transition), whether the model reproduces the
    data, and the caveat when a check fails (None when all pass)."""
    from ..applications.vep import MAX_RHAT

    d = result.diagnostics
    rhat, div, draws = float(d["max_rhat"]), int(d["divergences"]), int(d["draws"])
    strict = bool(np.isfinite(rhat) and rhat <= STRICT_RHAT and div == 0)
    line = f"max R-hat {rhat:.3f}, {div} divergent of {plural(draws, 'draw')}"
    problems = [] if result.converged else [f"not converged ({line})"]
    if not result.fits:
        problems.append(f"the model does not reproduce the data ({result.ppc.message.rsplit(':', 1)[0].strip()})")
    if problems:
        status = "not converged" if not result.converged else "converged, but the model does not reproduce the data"
        status += ", and the model does not reproduce the data" if not (result.converged or result.fits) else ""
        caveat = "; ".join(problems) + ": do not use clinically"
    elif not strict:
        status = f"converged by the loose thresholds only (R-hat <= {MAX_RHAT})"
        caveat = (
            f"not converged by the strict check (R-hat <= {STRICT_RHAT}, no divergent transition; {line}): run "
            "longer (--warmup, --samples) before any clinical use"
        )
    else:
        status, caveat = "converged", None
    return {
        "status": status,
        "converged": result.converged,
        "strict": strict,
        "fits": result.fits,
        "summary": line,
        "caveat": caveat,
    }


def _report(result, summary: dict, out: Path) -> None:
    """The run's outcome in a few printed lines; the ranking and any recommendation come with the convergence
    status, and with the caveat when a check fails."""
    diag, predicted, conv = result.diagnostics, summary["predicted_ez"], summary["convergence"]
    top = ", ".join(f"{r['label']} ({r['index']}): {r['probability']:.2f}" for r in result.ranking[:5])
    print(f"most likely epileptogenic: {top}")
    print(result.ppc.message)
    print(
        f"max R-hat {diag['max_rhat']:.3f}, min bulk ESS {diag['min_ess_bulk']:.0f}, divergences "
        f"{diag['divergences']} of {diag['draws']} draws; P(EZ) differs between chains by up to "
        f"{diag['p_ez_chain_spread']:.2f}"
    )
    print(f"convergence: {conv['caveat'] or conv['status'] + ' (' + conv['summary'] + ')'}")
    named = ", ".join(f"{result.labels[i]} ({i})" for i in predicted) or "none"
    if summary["resection_recommended"]:
        caveat = f" ({conv['caveat']})" if conv["caveat"] else f" ({conv['status']})"
        print(
            f"predicted EZ: {named}; resecting them: seizure-free in "
            f"{summary['resection']['seizure_free_probability']:.0%} of posterior draws{caveat}; "
            f"{summary['seconds_total']} s; wrote {out}/"
        )
    else:
        why = result.verdict if not result.trustworthy else "no region is called epileptogenic"
        print(f"predicted EZ: {named}; no resection recommended: {why.rstrip('.')}; wrote {out}/")


def _load_recording(path: str, bads_text: str):
    from ..data.recordings import detect_bad_channels, read_seeg

    if not Path(path).exists():
        raise UsageError("--seeg", f"{path} does not exist")
    bads = [b.strip() for b in str(bads_text).split(",") if b.strip()]
    try:
        rec = read_seeg(path, bads=bads)
    except (ValueError, OSError, KeyError) as e:
        raise UsageError("--seeg", str(e)) from None
    except ImportError as e:
        raise UsageError("--seeg", str(e)) from None
    unknown = [b for b in bads if b not in rec.ch_names]
    if unknown:
        raise UsageError("--bads", f"channels {unknown} are not in the recording")
    flat = detect_bad_channels(rec, z=None)  # non-finite or flat; seizing channels are outliers by design
    rec.bads = list(dict.fromkeys(list(rec.bads) + flat))
    rec = rec.drop_bads()
    if not rec.ch_names:
        raise UsageError("--seeg", "no usable channel is left after leaving out the bad and flat ones")
    return rec


def _montage(rec, montage: str):
    from ..data.recordings import bipolar, is_bipolar

    if montage == "bipolar" and not is_bipolar(rec):
        try:
            return bipolar(rec)
        except ValueError as e:
            raise UsageError("--montage", str(e)) from None
    return rec


def _plot(path: Path, env, post, result, resection, truth, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import jax
    import matplotlib.pyplot as plt

    from ..applications import vep

    nres = result.samples
    n = len(result.labels)
    fig, ax = plt.subplots(2, 2, figsize=(13, 8))
    a = ax[0, 0]
    what = "log power" if post.feature == "power" else "level (common scale)"
    im = a.imshow(np.asarray(env).T, aspect="auto", origin="lower", cmap="magma")
    a.set(title=f"SEEG envelope: {what} per window (data)", xlabel="window", ylabel="channel")
    fig.colorbar(im, ax=a, label=what)
    a = ax[0, 1]
    pos = np.asarray(nres.positions).reshape(-1, post.dim)
    u_mean = jax.numpy.asarray(pos.mean(axis=0))
    pred = np.asarray(post.predict(u_mean))
    order = np.argsort(-(np.asarray(env).max(0) - np.asarray(env).min(0)))[:4]
    t = np.arange(env.shape[0]) + 1
    names = list(getattr(post, "channels", None) or [])
    for k in order:
        (line,) = a.plot(t, np.asarray(env)[:, k], ".", ms=4, label=names[k] if k < len(names) else f"channel {k}")
        a.plot(t, pred[:, k], "-", color=line.get_color())
    a.legend(fontsize=7, loc="best")
    a.set(
        title=f"data (dots) and fit at the posterior mean (lines), {plural(len(order), 'channel')}",
        xlabel="window (the model's time: window x period x time scale, ms)",
        ylabel=what,
    )
    a = ax[1, 0]
    x0 = np.asarray(nres.samples["x0"]).reshape(-1, n)
    q = np.percentile(x0, [5, 50, 95], axis=0)
    colors = ["tab:red" if result.p_ez[i] > args.threshold else "tab:gray" for i in range(n)]
    a.vlines(np.arange(n), q[0], q[2], colors=colors)
    a.plot(np.arange(n), q[1], "k.", ms=3)
    if truth is not None:
        a.plot(np.arange(n), truth["x0"], "x", color="tab:blue", ms=4, label="truth")
        a.legend(loc="lower right")
    a.axhline(vep.X0_CRITICAL, color="k", lw=0.8, ls="--")
    a.set(
        title="posterior of x0 per region (5-95 %); dashed: X0_CRITICAL", xlabel="region", ylabel="x0 (dimensionless)"
    )
    _region_axis(a, result.labels, result.p_ez, args.threshold)
    a = ax[1, 1]
    a.bar(np.arange(n), result.p_ez, color=colors)
    resected = ", ".join(result.labels[i] for i in resection["resected"]) or "nothing"
    a.set(
        title=f"P(epileptogenic); resecting {resected}: seizure-free {resection['seizure_free_probability']:.0%}",
        xlabel="region",
        ylabel="probability",
        ylim=(0, 1.02),
    )
    _region_axis(a, result.labels, result.p_ez, args.threshold, annotate=True)
    conv = convergence_status(result)
    fig.suptitle(f"VEP: {conv['caveat'] or conv['status'] + ' (' + conv['summary'] + ')'}", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def _region_axis(ax, labels, p, threshold: float, annotate: bool = False, top: int = 5) -> None:
    """Region labels on `ax`'s x axis where they are readable (<= 40 regions); otherwise, with `annotate`, the
    labels of the regions above `threshold` (at least the `top` most likely) written over their bars."""
    if label_ticks(ax, labels) or not annotate:
        return
    p = np.asarray(p)
    shown = sorted(set(np.flatnonzero(p > threshold).tolist()) | set(np.argsort(-p, kind="stable")[:top].tolist()))
    ax.set_ylim(0, 1.3)  # room for the labels over the bars
    for i in shown:
        ax.annotate(
            labels[i],
            (i, p[i]),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            fontsize=7,
            rotation=90,
            va="bottom",
        )
