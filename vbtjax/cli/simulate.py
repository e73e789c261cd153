"""``vbtjax simulate``: one region-level simulation of a neural mass model on a connectome, written to
``simulation.npz`` (+ ``simulation.png``) by :mod:`vbtjax._cli_simulate_output`.

Units everywhere: time in ms, lengths in mm, conduction speed in mm/ms (= m/s).
Exit codes: 0 success, 1 the simulation itself failed (e.g. diverged), 2 bad command-line input.
"""

from __future__ import annotations

import argparse
import inspect
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..files import FileReadError
from .common import UsageError, print_error
from .simulate_output import BOLD_MONITORS, SENSOR_MONITORS, fmt_list, write_outputs

__all__ = ["add_simulate", "run_simulate", "PRESETS", "CONNECTOME_SIZES"]

CONNECTOME_SIZES = (66, 68, 76, 96, 192)  # as vbtjax.datasets.TVB_CONNECTOME_SIZES (not imported: keeps --help light)
NORMALISE_CHOICES = ("none", "max", "region", "sum", "rows")
MONITOR_CHOICES = ("raw", "tavg", "subsample", "bold", "bold-hrf", "eeg", "meg", "seeg")
REGION_MONITORS = ("raw", "tavg", "subsample")
SOLVER_CHOICES = ("heun", "euler", "rk4")
DEFAULT_MODEL = "MontbrioPazoRoxin"
DEFAULT_COUPLING = "Linear"
DEFAULT_DURATION = 4000.0  # ms
DEFAULT_DT = 0.01  # ms (TVB's default is 0.0122 ms; MPR with tau = 1 ms needs it, see PRESETS)
DEFAULT_SPEED = 3.0  # mm/ms (TVB's)
DEFAULT_PERIOD = 1.0  # ms
DEFAULT_PERIODS = {"bold": 720.0, "bold-hrf": 2000.0}  # ms (the TR); every other monitor: DEFAULT_PERIOD
DEFAULT_DURATIONS = {"bold": 59760.0, "bold-hrf": 120000.0}  # ms, 83 and 60 whole TRs; others: DEFAULT_DURATION
DT_HEMO = 1.0  # ms, Balloon-Windkessel step (BalloonWindkessel's default); dt itself when dt does not divide it
BOLD_INTERIM_PERIOD = 4.0  # ms, TVB's Bold monitor interim averages (vbtjax.monitors.Bold's default)
SEEG_SENSORS = 588  # tvb-data's seeg_588.txt: contacts in the frame of the 76- (and 192-) region connectome
DEFAULT_NORMALISE = "max"
PROGRESS_MIN_MS = 1000.0
MAX_STEPS = 2**31 - 1  # simulate's int32 step counter

PRESETS: dict[str, dict[str, Any]] = {
    "MontbrioPazoRoxin": {
        # Rabuffo et al. 2021 (J Neurosci / eNeuro "neuronal cascades") working point for a single region: bistable
        # between a down state (r ~ 0.06, V ~ -1.95) and an up state (r ~ 1, V ~ -0.1).
        "params": {"tau": 1.0, "eta": -4.6, "J": 14.5, "Delta": 0.7},
        # Linear coupling on max-normalised TVB-76 weights (mean in-strength ~13): at a = 0.1 the network sits at the
        # edge of its bistable regime (0.095 collapses to the down state within a few s, 0.105 locks ~75 % of the
        # regions up): regions hop between down and up states and recruit their neighbours.
        "coupling_strength": 0.1,
        # a = 0.1 is not stationary over a BOLD run: the network falls to the all-down state after ~10-20 s (seed 0:
        # ~10 s, seed 1: ~17 s), and its BOLD FC is then that of the hemodynamic settling (mean FC ~0.8, SC-FC ~0).
        # At a = 0.105 it stays up for 60 s (seeds 0, 1, 2): ~3/4 of the regions up, each region switching ~1.3
        # times per 10 s; BOLD FC mean 0.1-0.2, SC-FC r 0.30-0.40. Used with --monitor bold/bold-hrf.
        "bold_coupling_strength": 0.105,
        # nsig per state variable (r, V): noise on r kicks regions up, noise on V knocks them down.
        "noise": (0.01, 0.04),
    }
}

SIMULATE_EPILOG = """\
units: time in ms, tract lengths in mm, conduction speed in mm/ms (= m/s); noise nsig in (state units)^2/ms.

default run (`vbtjax simulate` with no options):
  TVB's 76-region connectome (tvb-data), weights normalised by their maximum (--normalise max),
  MontbrioPazoRoxin with tau=1 ms, eta=-4.6, J=14.5, Delta=0.7 (Montbrio, Pazo & Roxin 2015, Phys Rev X 5:021028;
  working point of Rabuffo et al. 2021, eNeuro 8:ENEURO.0283-21.2021), Linear coupling a=0.1 through r,
  delays from tract lengths at 3 mm/ms, additive noise nsig=0.01 on r and 0.04 on V, stochastic Heun at
  dt=0.01 ms for 4000 ms, temporal average monitor at 1 ms, float32, random TVB-style initial state (--seed 0).
  Why: each region is bistable (down state r~0.06, up state r~1); noise on r kicks regions up, noise on V knocks
  them down, and a=0.1 puts the max-normalised TVB-76 network at the edge of its bistable regime (a=0.095 falls to
  the all-down state within seconds, a=0.105 locks ~3/4 of the regions up), so regions switch states and recruit
  their neighbours: the rates fluctuate between ~0.05 and ~1.3 and the functional connectivity shows structure
  (blocks and stripes of regions that switch together). dt=0.01 ms (close to TVB's 0.0122 ms) because
  tau=1 ms: at dt=0.1 ms Heun does not resolve the up-state transients (the run diverges or collapses to the down
  state). The model parameters, a=0.1 and the noise (marked [MPR preset]) apply when --model is MontbrioPazoRoxin;
  any option or --param overrides them one by one. Other models start from TVB's parameters, the coupling's TVB
  default strength and no noise.

monitors (--monitor; --period in ms):
  raw, tavg, subsample  every state variable of every region (tavg/subsample every --period, default 1 ms).
  bold      BOLD from the Balloon-Windkessel hemodynamic model (Friston et al. 2000; vbtjax.monitors.
            BalloonWindkessel) driven by the model's first state variable (r for MontbrioPazoRoxin), advanced by RK4
            every dt_hemo = 1 ms (--dt itself when it does not divide 1 ms), sampled at the end of each TR = --period
            (default 720 ms, HCP's TR; a multiple of dt_hemo). Default --duration 59760 ms: 83 TRs, of which the
            first 20 s are discarded before FC (the hemodynamics start at rest and take ~10-20 s to settle; the
            network's own transient too), leaving 56 TRs. At --dt 0.01 ms that is 6 million steps: about 1 min on
            2 CPU cores (the MPR preset needs dt = 0.01 ms, see above; BOLD does not need more). Shorter runs
            discard the first third instead of 20 s.
            [MPR preset] with bold and bold-hrf the coupling strength is a=0.105, not 0.1: over a BOLD-length run
            the network at a=0.1 falls to the all-down state after ~10-20 s and its BOLD is then flat (the FC
            would be that of the hemodynamic settling); at a=0.105 ~3/4 of the regions are up at any time, each
            switching ~1.3 times per 10 s, stationary over 60 s (seeds 0-2), BOLD FC mean ~0.1-0.2 and SC-FC
            correlation ~0.3-0.4. --coupling-strength overrides it.
  bold-hrf  TVB's Bold monitor (vbtjax.monitors.Bold): the first state variable averaged over 4 ms and convolved
            with TVB's FirstOrderVolterra HRF kernel (20 s long; the kernel fills from zeros during the first
            20 s, as in TVB), sampled every --period (default 2000 ms, TVB's). Default --duration 120000 ms (60
            TRs, 50 after the 20 s transient; ~2-2.5 min). --dt must divide 4 ms.
  eeg, meg  every state variable projected through tvb-data's lead field (eeg_brainstorm_65: 63 EEG channels;
            meg_brainstorm_276: 248 MEG channels; the non-brain channels, EOG/ECG/reference coils/trigger, whose
            lead field is NaN, are dropped); region gain = sum over each region's cortical vertices (as TVB). The
            lead fields exist for the 76 regions of TVB's connectome only: other --connectome values are refused.
            Default --period 1 ms (1000 Hz): TVB's default 1024 Hz (0.9765625 ms) is not a whole number of steps
            of dt = 0.01 ms (97.66); for it use --period 0.9765625 with e.g. --dt 0.01220703125 (1/80 of it).
  seeg      every state variable projected on the 588 contacts of tvb-data's seeg_588 with the inverse-square
            point-source gain 1/max(d, 1 mm)^2 (mm^-2) from each region centre (vbtjax.monitors.SEEG.
            from_contacts). seeg_588 is in the frame of TVB's 76- (and 192-) region connectome: its contacts span
            the same box as the 76 centres (to ~5 mm on each axis), median 15 mm from the nearest centre (the
            centres are ~17 mm apart). tvb-data's other file, seeg_39 (103 contacts), is one left-hemisphere
            implantation and is not used. Needs a --connectome with centres in that frame (76 or 192).
            Default --period 1 ms.

outputs (in --out DIR):
  simulation.npz  time (T,) ms (for bold: the end of each TR); data (T, n_voi, n_channels) with channel = region,
                  or sensor for eeg/meg/seeg; monitor; period (ms); variables_of_interest (n_voi,) names;
                  channel_labels (n_channels,); state_variables; labels (regions); weights (as simulated, i.e.
                  after --normalise); lengths (mm); dt (ms); speed (mm/ms); transient (ms, left out of the FC or
                  spectrum); meta_json (options, parameters, versions). raw/tavg/subsample/bold/bold-hrf: fc (N, N)
                  Pearson correlation of the first recorded variable after the transient; bold/bold-hrf also
                  sc_fc_r, the correlation of the upper triangles of FC and the (symmetrised) weights.
                  eeg/meg/seeg: psd_freqs (F,) Hz, psd (F, n_voi, n_channels) Welch spectra (units^2/Hz, 1 s Hann
                  segments, 50 % overlap) after the transient, gain (n_channels, N), sensor_positions (mm).
  simulation.png  raw/tavg/subsample: first state variable of every region over time, and the FC matrix (the
                  first min(1000 ms, 25 %) of the run is discarded as transient). bold/bold-hrf: BOLD of every
                  region (time in s) and the BOLD FC with its SC-FC correlation. eeg/meg/seeg: 16 sensor traces
                  (the first recorded variable, stacked) and the power spectrum averaged over all sensors
                  (log-log, Hz).

examples:
  vbtjax simulate
  vbtjax simulate --duration 10000 --coupling-strength 0.105 --seed 3 --out run2
  vbtjax simulate --model Generic2dOscillator --coupling-strength 0.02 --noise 1e-4 --dt 0.05
  vbtjax simulate --connectome my_conn.zip --speed 5 --monitor raw --duration 500
  vbtjax simulate --connectome weights.csv --lengths tract_lengths.csv --normalise region
  vbtjax simulate --monitor bold                        # 60 s, BOLD + BOLD FC, ~1 min
  vbtjax simulate --monitor bold --period 2000 --duration 300000 --out bold5min
  vbtjax simulate --monitor eeg --duration 10000
"""


def add_simulate(sub) -> None:
    """Add the ``simulate`` subcommand to the subparsers ``sub``."""
    p = sub.add_parser(
        "simulate",
        help="simulate a brain network model on a connectome (writes .npz and .png)",
        description="Simulate a neural mass model on every region of a connectome, coupled through delayed "
        "connections (TVB semantics), and write the monitored time series and a figure.",
        epilog=SIMULATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_network_options(p)
    _add_recording_options(p)
    g = p.add_argument_group("output")
    g.add_argument("--out", metavar="DIR", default="vbtjax-out", help="output folder (default: vbtjax-out)")
    g.add_argument("--no-plot", action="store_true", help="do not write simulation.png")
    g.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    p.set_defaults(func=run_simulate)


def _add_network_options(p) -> None:
    g = p.add_argument_group("model and network")
    g.add_argument(
        "--model",
        metavar="NAME",
        default=DEFAULT_MODEL,
        help="neural mass model, a class of vbtjax.models with TVB's name (case-sensitive): "
        f"{', '.join(_model_names())} (default: {DEFAULT_MODEL})",
    )
    g.add_argument(
        "--param",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        help="set a model parameter (TVB names, e.g. eta=-4.6); VALUE is a number or N comma-separated numbers "
        "(one per region); repeatable. Time constants in ms.",
    )
    g.add_argument(
        "--connectome",
        metavar="NAME_OR_PATH",
        default="76",
        help=f"TVB connectome size from tvb-data ({', '.join(map(str, CONNECTOME_SIZES))}) or a path readable by "
        "Connectome.from_file: TVB .zip or folder, .npz, .mat, or a weights matrix file (.csv/.txt/.npy) with "
        "--lengths (default: 76)",
    )
    g.add_argument(
        "--lengths",
        metavar="PATH",
        help="tract lengths file (mm) for a --connectome weights matrix file (.csv, .txt, .npy, .mat, .npz)",
    )
    g.add_argument(
        "--normalise",
        choices=NORMALISE_CHOICES,
        default=DEFAULT_NORMALISE,
        help="weight normalisation (Connectome.normalised): none = as stored; max = W/max|W| (TVB's 'tract'); "
        "region = W/max row sum; sum = W/sum|W|; rows = each row by its own sum. Default: max, so that the strongest "
        "connection is 1 and the coupling strength means the same for any connectome scale.",
    )
    g.add_argument(
        "--coupling",
        metavar="NAME",
        default=DEFAULT_COUPLING,
        help=f"coupling function, a class of vbtjax.coupling: {', '.join(_coupling_names())} (default: Linear)",
    )
    g.add_argument(
        "--coupling-strength",
        metavar="A",
        type=float,
        help="the coupling's global strength `a` (dimensionless; scales the weighted sum of the coupling "
        "variables). Default: 0.1 [MPR preset] with Linear (0.105 with --monitor bold or bold-hrf, see 'monitors' "
        "below), else the coupling's TVB default",
    )
    g.add_argument(
        "--speed",
        metavar="V",
        type=float,
        default=DEFAULT_SPEED,
        help="conduction speed in mm/ms (= m/s); delays = tract length (mm) / speed; 'inf' for no delays "
        f"(default: {DEFAULT_SPEED:g} mm/ms)",
    )
    g.add_argument(
        "--noise",
        metavar="NSIG",
        help="additive noise intensity nsig (TVB: each step adds sqrt(2 nsig dt) N(0,1)), one value for all "
        "state variables or one per state variable, comma-separated; 0 = deterministic. "
        "Default: 0.01,0.04 on (r, V) [MPR preset], else 0",
    )
    g.add_argument(
        "--seed", metavar="S", type=int, default=0, help="random seed for noise and initial state (default: 0)"
    )


def _add_recording_options(p) -> None:
    g = p.add_argument_group("integration and recording")
    g.add_argument(
        "--duration",
        metavar="MS",
        type=float,
        help=f"simulated time in ms, a whole number of steps (default: {DEFAULT_DURATION:g} ms; "
        f"{DEFAULT_DURATIONS['bold']:g} ms with --monitor bold, {DEFAULT_DURATIONS['bold-hrf']:g} ms with "
        "bold-hrf: see 'BOLD' below)",
    )
    g.add_argument(
        "--dt",
        metavar="MS",
        type=float,
        help=f"integration step in ms (default: {DEFAULT_DT:g} ms)",
    )
    g.add_argument(
        "--solver",
        choices=SOLVER_CHOICES,
        default="heun",
        help="integration scheme (stochastic with noise) (default: heun)",
    )
    g.add_argument(
        "--monitor",
        choices=MONITOR_CHOICES,
        default="tavg",
        help="what is recorded: raw = every state variable at every step; tavg = their temporal average over "
        "--period; subsample = the state every --period; bold = BOLD signal of the first state variable from the "
        "Balloon-Windkessel hemodynamic model, one sample per TR = --period; bold-hrf = TVB's Bold monitor (HRF "
        "kernel convolution); eeg, meg = every state variable projected through tvb-data's lead field (needs "
        "--connectome 76); seeg = every state variable projected on tvb-data's SEEG contacts (inverse-square "
        "gain from the region centres). See 'monitors' below (default: tavg)",
    )
    g.add_argument(
        "--period",
        metavar="MS",
        type=float,
        help="sampling period in ms, a multiple of --dt (not with raw). Default: "
        f"{DEFAULT_PERIOD:g} ms for tavg, subsample, eeg, meg, seeg; the TR {DEFAULT_PERIODS['bold']:g} ms for "
        f"bold (a multiple of the {DT_HEMO:g} ms hemodynamic step) and {DEFAULT_PERIODS['bold-hrf']:g} ms for "
        "bold-hrf",
    )
    g.add_argument("--x64", action="store_true", help="simulate in float64 (default: float32)")


def run_simulate(args: argparse.Namespace) -> int:
    """``vbtjax simulate``: validate, build the network, simulate, save, plot. Returns the exit code."""
    import jax

    t_start = time.perf_counter()
    with jax.enable_x64(bool(args.x64)):
        setup = _build(args)
        if not args.quiet:
            print(_describe(setup), flush=True)
        sol, wall = _simulate(setup, progress=(not args.quiet) and setup["duration"] > PROGRESS_MIN_MS)
    ts = np.asarray(sol.ts["mon"])
    ys = np.asarray(sol.ys["mon"])
    bad = ~np.isfinite(ys).reshape(ys.shape[0], -1).all(axis=1)
    if bad.any():
        t_bad = ts[int(np.argmax(bad))]
        print_error(
            "simulate",
            f"the simulation diverged (NaN/inf from t = {t_bad:g} ms); use a smaller --dt (e.g. "
            f"{setup['dt'] / 10:g} ms), a smaller --coupling-strength or less --noise. Nothing was written.",
        )
        return 1
    written = write_outputs(args, setup, sol, wall)
    if not args.quiet:
        print(
            f"simulated {setup['n_steps']} steps in {wall:.2f} s (total {time.perf_counter() - t_start:.2f} s "
            f"with set-up and output)"
        )
        for path in written:
            print(f"wrote {path}")
    return 0


def _build(args: argparse.Namespace) -> dict[str, Any]:
    """Validate the options and build the network, solver and monitor (inside the dtype context)."""
    import jax.numpy as jnp

    import vbtjax as vbt

    model_cls = _resolve_class("--model", args.model, vbt.models, _model_names())
    preset = PRESETS.get(args.model, {})

    # -- times
    default_duration = DEFAULT_DURATIONS.get(args.monitor, DEFAULT_DURATION)
    duration = _positive("--duration", default_duration if args.duration is None else args.duration, "ms")
    dt = _positive("--dt", DEFAULT_DT if args.dt is None else args.dt, "ms")
    n_steps = round(duration / dt)
    if n_steps < 1 or abs(n_steps * dt - duration) > 1e-6 * max(duration, dt):
        raise UsageError(
            "--duration",
            f"{duration:g} ms is not a whole number of --dt={dt:g} ms steps; use e.g. {max(n_steps, 1) * dt:g} ms",
        )
    if n_steps > MAX_STEPS:
        raise UsageError("--duration", f"{duration:g} ms is {n_steps} steps of {dt:g} ms, more than {MAX_STEPS}")
    speed = args.speed
    if not (speed > 0):  # also rejects NaN; inf (no delays) is allowed
        raise UsageError("--speed", f"must be a positive conduction speed in mm/ms (e.g. 3.0), got {speed:g}")
    if args.seed < 0:
        raise UsageError("--seed", f"must be a non-negative integer, got {args.seed}")

    # -- monitor timing (checked before the connectome is loaded; the monitor itself is built after it)
    period, dt_hemo = _monitor_timing(args, dt, duration, n_steps)

    # -- connectome
    conn, source = _load_connectome(args)
    if args.normalise != "none":
        conn = conn.normalised(args.normalise)
    n = conn.n_regions
    labels = list(conn.labels) if conn.labels is not None else [f"region {i}" for i in range(n)]
    monitor, channels, monitor_info = _build_monitor(args, period, dt_hemo, conn, source, labels, model_cls)

    # -- model
    params = dict(preset.get("params", {}))
    params.update(_parse_params(args.param, model_cls, n))
    try:
        model = model_cls(**params)
    except (TypeError, ValueError) as e:
        raise UsageError("--param", str(e)) from None

    # -- coupling
    cpl_cls = _resolve_class("--coupling", args.coupling, vbt.coupling, _coupling_names())
    strength = args.coupling_strength
    if strength is None and preset and args.coupling == DEFAULT_COUPLING:
        strength = preset.get("coupling_strength")
        if args.monitor in BOLD_MONITORS:
            strength = preset.get("bold_coupling_strength", strength)
    if strength is not None and not math.isfinite(strength):
        raise UsageError("--coupling-strength", f"must be a finite number, got {strength}")
    fields = _field_names(cpl_cls)
    if strength is not None and "a" not in fields:
        raise UsageError("--coupling-strength", f"coupling {args.coupling} has no strength parameter 'a'")
    coupling = cpl_cls() if strength is None else cpl_cls(a=strength)

    # -- noise
    nsig = _parse_noise(args.noise, preset.get("noise", 0.0), model_cls.state_variables, args.model)
    noise = None if not np.any(np.asarray(nsig) > 0) else vbt.noise.Additive(nsig=jnp.asarray(nsig))

    # -- network
    try:
        net = vbt.Network(model=model, connectome=conn, coupling=coupling, speed=speed, noise=noise)
    except ValueError as e:
        msg = str(e).lower()
        option = "--coupling" if "coupl" in msg else "--noise" if "nsig" in msg else "--param"
        raise UsageError(option, str(e)) from None

    solver = {"heun": vbt.Heun, "euler": vbt.Euler, "rk4": vbt.RK4}[args.solver]()
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError("--out", f"{out} exists and is not a folder")
    return dict(
        network=net,
        connectome=conn,
        connectome_source=source,
        labels=labels,
        model_params=params,
        coupling_strength=strength,
        nsig=nsig,
        duration=duration,
        dt=dt,
        n_steps=n_steps,
        speed=speed,
        monitor=monitor,
        monitor_info=monitor_info,
        channels=channels,
        period=period,
        solver=solver,
        seed=args.seed,
        out=out,
        args=args,
        dtype="float64" if args.x64 else "float32",
        preset=args.model if preset else None,
    )


def _whole(value: float, unit: float) -> int | None:
    """``value / unit`` when it is a whole number >= 1, else None."""
    q = round(value / unit)
    return q if q >= 1 and abs(q * unit - value) <= 1e-6 * max(value, unit) else None


def _hemo_step(dt: float) -> float:
    """The Balloon-Windkessel step: DT_HEMO when it is a whole number of --dt steps, else --dt itself."""
    return DT_HEMO if _whole(DT_HEMO, dt) is not None else dt


def _monitor_timing(args, dt: float, duration: float, n_steps: int) -> tuple[float | None, float | None]:
    """Validate --period for --monitor: returns ``(period, dt_hemo)`` in ms (None where they do not apply)."""
    kind = args.monitor
    if kind == "raw":
        if args.period is not None:
            raise UsageError("--period", "the raw monitor records every step; use --monitor tavg or subsample")
        return None, None
    if kind == "bold-hrf" and _whole(BOLD_INTERIM_PERIOD, dt) is None:
        raise UsageError(
            "--dt",
            f"--monitor bold-hrf averages the neural signal over TVB's {BOLD_INTERIM_PERIOD:g} ms interim windows, "
            f"so --dt must divide {BOLD_INTERIM_PERIOD:g} ms; {dt:g} ms does not (use e.g. 0.01, 0.05 or 0.1 ms)",
        )
    default = DEFAULT_PERIODS.get(kind, DEFAULT_PERIOD)
    period = _positive("--period", default if args.period is None else args.period, "ms")
    q = _whole(period, dt)
    if q is None:
        q = max(round(period / dt), 1)
        raise UsageError("--period", f"{period:g} ms is not a whole multiple of --dt={dt:g} ms; use e.g. {q * dt:g} ms")
    if q > n_steps:
        hint = f" (--monitor {kind} needs a long run: leave --duration out for {DEFAULT_DURATIONS[kind]:g} ms)"
        raise UsageError(
            "--period",
            f"{period:g} ms is longer than --duration={duration:g} ms{hint if kind in BOLD_MONITORS else ''}",
        )
    dt_hemo = None
    if kind == "bold":
        dt_hemo = _hemo_step(dt)
        if _whole(period, dt_hemo) is None:
            m = max(round(period / dt_hemo), 1)
            raise UsageError(
                "--period",
                f"the TR of --monitor bold must be a whole multiple of the hemodynamic step dt_hemo={dt_hemo:g} ms "
                f"(the Balloon-Windkessel equations advance once per dt_hemo); {period:g} ms is not: use e.g. "
                f"{m * dt_hemo:g} ms",
            )
    return period, dt_hemo


def _build_monitor(args, period, dt_hemo, conn, source: str, labels: list[str], model_cls):
    """The monitor of --monitor: ``(monitor, channel_labels, info)``; ``info`` goes to the npz/metadata."""
    import vbtjax as vbt

    kind = args.monitor
    first = model_cls.state_variables[0]
    if kind == "raw":
        return vbt.monitors.Raw(), labels, {}
    if kind == "tavg":
        return vbt.monitors.TemporalAverage(period=period), labels, {}
    if kind == "subsample":
        return vbt.monitors.SubSample(period=period), labels, {}
    if kind == "bold":
        mon = vbt.monitors.BalloonWindkessel(period=period, dt_hemo=dt_hemo, variables_of_interest=(0,))
        info = {
            "description": f"Balloon-Windkessel BOLD (Friston et al. 2000, vbtjax defaults) driven by {first}, "
            f"hemodynamic RK4 step {dt_hemo:g} ms, sampled at the end of each TR of {period:g} ms",
            "dt_hemo_ms": dt_hemo,
        }
        return mon, labels, info
    if kind == "bold-hrf":
        mon = vbt.monitors.Bold(period=period, variables_of_interest=(0,))
        info = {
            "description": f"TVB's Bold monitor: {first} averaged over {mon.interim_period:g} ms, convolved with the "
            f"FirstOrderVolterra HRF kernel ({mon.hrf_length:g} ms), sampled every {period:g} ms",
            "hrf_length_ms": mon.hrf_length,
        }
        return mon, labels, info
    if kind in ("eeg", "meg"):
        _require_tvb76(conn, source, kind)
        cls = vbt.monitors.EEG if kind == "eeg" else vbt.monitors.MEG
        try:
            mon = cls.from_tvb(usable_only=True, period=period)
        except (ImportError, FileNotFoundError) as e:
            raise UsageError("--monitor", str(e)) from None
        sensors = mon.sensors
        name = {"eeg": "eeg_brainstorm_65", "meg": "meg_brainstorm_276"}[kind]
        info = {
            "description": f"{kind.upper()}: every state variable projected through tvb-data's {name} lead field "
            "(region gain = sum of the vertex columns of each region, as TVB), non-brain channels dropped",
            "sensors_file": name,
            "gain": np.asarray(mon.gain),
            "sensor_positions": np.asarray(sensors.positions),
        }
        return mon, list(sensors.labels), info
    # seeg
    try:
        contacts = vbt.sensors.tvb_sensors("seeg", SEEG_SENSORS)
    except (ImportError, FileNotFoundError) as e:
        raise UsageError("--monitor", str(e)) from None
    if conn.centres is None:
        raise UsageError(
            "--connectome",
            f"{source} has no region centres, which --monitor seeg needs (the gain is 1/distance^2 from each contact "
            "to each region centre); use --connectome 76 or a connectome with centres",
        )
    centres = np.asarray(conn.centres, dtype=float)
    _check_seeg_frame(np.asarray(contacts.positions, dtype=float), centres, source)
    mon = vbt.monitors.SEEG.from_contacts(contacts.positions, centres, period=period, sensors=contacts)
    info = {
        "description": f"SEEG: every state variable projected on tvb-data's seeg_{SEEG_SENSORS} contacts with the "
        "inverse-square point-source gain 1/max(d, 1 mm)^2 (mm^-2) from the region centres",
        "sensors_file": f"seeg_{SEEG_SENSORS}",
        "gain": np.asarray(mon.gain),
        "sensor_positions": np.asarray(contacts.positions),
    }
    return mon, list(contacts.labels), info


def _require_tvb76(conn, source: str, kind: str) -> None:
    """EEG/MEG lead fields of tvb-data exist for the 76 regions of TVB's connectome only."""
    import vbtjax as vbt

    why = (
        f"--monitor {kind} uses tvb-data's {kind.upper()} lead field, which is defined on the 76 regions of TVB's "
        "connectome; use --connectome 76"
    )
    if conn.n_regions != 76:
        raise UsageError("--connectome", f"{why} ({source} has {conn.n_regions} regions)")
    if source == "TVB connectivity_76":
        return
    try:
        ref = vbt.datasets.tvb_connectome(76)
    except (ImportError, FileNotFoundError) as e:
        raise UsageError("--connectome", f"{why} ({e})") from None
    if conn.labels is None or list(conn.labels) != list(ref.labels):
        raise UsageError("--connectome", f"{why} ({source} has 76 regions, but not TVB's region labels in TVB's order)")


def _check_seeg_frame(contacts: np.ndarray, centres: np.ndarray, source: str) -> None:
    """The SEEG contacts are in the frame of TVB's 76-region connectome: refuse centres that do not surround them."""
    lo, hi = centres.min(axis=0) - 15.0, centres.max(axis=0) + 15.0
    inside = float(np.mean(np.all((contacts >= lo) & (contacts <= hi), axis=1)))
    if inside < 0.8:
        raise UsageError(
            "--connectome",
            f"the SEEG contacts of tvb-data's seeg_{SEEG_SENSORS} are in the coordinate frame of TVB's 76- and "
            f"192-region connectomes, but only {100 * inside:.0f} % of them lie within 15 mm of the bounding box of "
            f"the region centres of {source} (another frame?); use --connectome 76 or 192",
        )


def _simulate(setup: dict[str, Any], progress: bool):
    import jax

    import vbtjax as vbt

    t0 = time.perf_counter()
    sol = vbt.simulate(
        setup["network"],
        t1=setup["duration"],
        dt=setup["dt"],
        solver=setup["solver"],
        monitors={"mon": setup["monitor"]},
        key=jax.random.key(setup["seed"]),
        progress=progress,
        check="off",  # a diverged run is reported by run_simulate, in one line, with the options that help
    )
    sol = jax.block_until_ready(sol)
    return sol, time.perf_counter() - t0


def _describe(setup: dict[str, Any]) -> str:
    a = setup["args"]
    net = setup["network"]
    mon = a.monitor if setup["period"] is None else f"{a.monitor} every {setup['period']:g} ms"
    if a.monitor in SENSOR_MONITORS:
        mon += f" on {len(setup['channels'])} sensors"
    noise = "no noise" if net.noise is None else f"noise nsig={fmt_list(setup['nsig'])}"
    strength = "" if setup["coupling_strength"] is None else f" a={setup['coupling_strength']:g}"
    return (
        f"vbtjax simulate: {a.model} on {net.n_regions} regions ({setup['connectome_source']}, "
        f"normalise={a.normalise}), "
        f"{a.coupling}{strength}, speed {setup['speed']:g} mm/ms, {noise}; {setup['duration']:g} ms = "
        f"{setup['n_steps']} {a.solver} steps of {setup['dt']:g} ms, {mon}, {setup['dtype']}"
    )


def _concrete_classes(module, base) -> list[str]:
    out = []
    for name in getattr(module, "__all__", dir(module)):
        obj = getattr(module, name, None)
        if inspect.isclass(obj) and issubclass(obj, base) and not inspect.isabstract(obj) and obj is not base:
            out.append(name)
    return sorted(set(out))


def _model_names() -> list[str]:
    from vbtjax import models

    names = [n for n in dir(models) if not n.startswith("_")]
    return sorted(
        n
        for n in names
        if inspect.isclass(getattr(models, n))
        and issubclass(getattr(models, n), models.AbstractNeuralMass)
        and not inspect.isabstract(getattr(models, n))
    )


def _coupling_names() -> list[str]:
    from vbtjax import coupling

    return _concrete_classes(coupling, coupling.AbstractCoupling)


def _resolve_class(option: str, name: str, module, choices: list[str]):
    if name in choices:
        return getattr(module, name)
    hint = [c for c in choices if c.lower() == name.lower()]
    did_you_mean = f" (names are case-sensitive: did you mean {hint[0]}?)" if hint else ""
    raise UsageError(option, f"unknown name {name!r}{did_you_mean}; choose from: {', '.join(choices)}")


def _field_names(cls) -> list[str]:
    import dataclasses

    return [f.name for f in dataclasses.fields(cls)]


def _positive(option: str, value: float, unit: str) -> float:
    if not (math.isfinite(value) and value > 0):
        raise UsageError(option, f"must be a positive, finite number of {unit}, got {value:g}")
    return float(value)


def _parse_floats(option: str, text: str, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(option, f"{what}: expected a number or comma-separated numbers, got {text!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise UsageError(option, f"{what}: values must be finite, got {text!r}")
    return values


def _parse_params(items: list[str], model_cls, n_regions: int) -> dict[str, Any]:
    names = model_cls.parameter_names()
    out: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name or not value.strip():
            raise UsageError("--param", f"expected NAME=VALUE (e.g. eta=-4.6), got {item!r}")
        if name not in names:
            raise UsageError(
                "--param", f"{model_cls.__name__} has no parameter {name!r}; valid parameters: {', '.join(names)}"
            )
        values = _parse_floats("--param", value, name)
        if len(values) == 1:
            out[name] = values[0]
        elif len(values) == n_regions:
            out[name] = np.asarray(values)
        else:
            raise UsageError(
                "--param",
                f"{name}: give one value or {n_regions} comma-separated values (one per region), got {len(values)}",
            )
    return out


def _parse_noise(text: str | None, default, state_variables: tuple[str, ...], model: str) -> Any:
    if text is None:
        return default if np.ndim(default) == 0 else tuple(float(v) for v in default)
    values = _parse_floats("--noise", text, "nsig")
    if any(v < 0 for v in values):
        raise UsageError("--noise", f"nsig must be >= 0 (a variance per ms), got {text!r}")
    if len(values) == 1:
        return values[0]
    if len(values) != len(state_variables):
        raise UsageError(
            "--noise",
            f"give one nsig or one per state variable of {model} ({len(state_variables)}: "
            f"{', '.join(state_variables)}), got {len(values)}",
        )
    return tuple(values)


def _load_connectome(args):
    import vbtjax as vbt

    spec = str(args.connectome).strip()
    if spec.isdigit() and not Path(spec).exists():
        size = int(spec)
        if size not in CONNECTOME_SIZES:
            raise UsageError(
                "--connectome",
                f"{spec} is not a TVB connectome size; choose from {', '.join(map(str, CONNECTOME_SIZES))} "
                "or give a path",
            )
        if args.lengths is not None:
            raise UsageError("--lengths", "only used with a --connectome weights file, not with a TVB connectome size")
        try:
            return vbt.datasets.tvb_connectome(size), f"TVB connectivity_{size}"
        except (ImportError, FileNotFoundError) as e:
            raise UsageError("--connectome", str(e)) from None
    path = Path(spec).expanduser()
    if not path.exists():
        raise UsageError(
            "--connectome",
            f"{spec!r} is neither a TVB connectome size ({', '.join(map(str, CONNECTOME_SIZES))}) nor an existing path",
        )
    if args.lengths is not None and not Path(args.lengths).expanduser().exists():
        raise UsageError("--lengths", f"{args.lengths!r} does not exist")
    try:
        lengths = None if args.lengths is None else Path(args.lengths).expanduser()
        conn = vbt.Connectome.from_file(path, lengths=lengths)
    except FileNotFoundError as e:
        raise UsageError("--lengths" if args.lengths else "--connectome", str(e)) from None
    except FileReadError as e:  # a damaged or hostile file
        raise UsageError("--connectome", str(e)) from None
    except ValueError as e:
        hint = " Give the tract lengths with --lengths PATH." if "lengths" in str(e) and args.lengths is None else ""
        raise UsageError("--connectome", f"{e}{hint}") from None
    return conn, str(path)
