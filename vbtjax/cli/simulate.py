"""``vbtjax simulate``: one region-level simulation of a neural mass model on a connectome, written to
``simulation.npz`` (+ ``simulation.png``) by :mod:`vbtjax.cli.simulate_output`.

Every model runs at its working point by default (:data:`vbtjax.models.PRESETS`: parameters, coupling, speed,
noise, dt, sampling, transient, initial state); any option overrides one setting, ``--preset none`` gives TVB's
defaults. The result is checked (:func:`vbtjax.simulation.health.assess`) before the figure is drawn.

Units everywhere: time in ms (a time option also takes a unit: ``2s``, ``500ms``, ``1min``), lengths in mm,
conduction speed in mm/ms (= m/s).
Exit codes: 0 success; 1 the simulation itself failed (it diverged: nothing written); 2 bad command-line input;
3 degenerate dynamics (fixed point, flat channels, collapse, saturation, lockstep): ``simulation.npz`` is written,
the figure is not, and one line says what to change (``--no-check`` writes the figure and exits 0).
"""

from __future__ import annotations

import argparse
import inspect
import math
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..files import FileReadError
from ..models.presets import PRESETS
from .common import UsageError, print_error, time_arg
from .simulate_output import (
    BOLD_MONITORS,
    DEFAULT_DURATIONS,
    DEFAULT_PERIOD,
    DEFAULT_PERIODS,
    DEGENERATE_EXIT,
    DT_HEMO,
    SENSOR_MONITORS,
    build_monitor,
    fmt_list,
    monitor_timing,
    positive,
    write_outputs,
)

__all__ = ["add_simulate", "run_simulate", "PRESETS", "CONNECTOME_SIZES", "DEFAULT_DURATIONS", "DEFAULT_PERIODS"]

CONNECTOME_SIZES = (66, 68, 76, 96, 192)  # as vbtjax.datasets.TVB_CONNECTOME_SIZES (not imported: keeps --help light)
NORMALISE_CHOICES = ("none", "max", "region", "sum", "rows")
MONITOR_CHOICES = ("raw", "tavg", "subsample", "bold", "bold-hrf", "eeg", "meg", "seeg")
SOLVER_CHOICES = ("heun", "euler", "rk4")
DEFAULT_MODEL = "MontbrioPazoRoxin"
DEFAULT_COUPLING = "Linear"  # without a preset (--preset none)
DEFAULT_DURATION = 4000.0  # ms, without a preset
DEFAULT_DT = 0.01  # ms, without a preset (TVB's default is 0.0122 ms)
DEFAULT_SPEED = 3.0  # mm/ms (TVB's), without a preset
DEFAULT_NORMALISE = "max"
PROGRESS_MIN_MS = 1000.0
MAX_STEPS = 2**31 - 1  # simulate's int32 step counter
TIME_HELP = "(ms, or with a unit: 2s)"


def _presets_epilog() -> str:
    """One line per preset: the working points ``--model NAME`` runs by default."""
    lines = []
    for name in sorted(PRESETS):
        p = PRESETS[name]
        params = ", ".join(f"{k}={v:.4g}" for k, v in p.params.items()) or "TVB defaults"
        extra = f", signal {p.signal}" if p.signal else (", FC of sin(theta)" if p.transform == "sin" else "")
        extra += ", narrowed initial state" if p.initial_range else ""
        text = (
            f"{name}: {params}; {p.coupling} a={p.strength:g}; {p.speed:g} mm/ms; nsig="
            f"{','.join(f'{v:g}' for v in p.noise)}; dt={p.dt:g} ms; {p.duration:g} ms every {p.period:g} ms{extra}"
            f" [SC-FC r {p.measured.get('sc_fc_r', float('nan')):.2f}]"
        )
        lines.append(textwrap.fill(text, width=116, initial_indent="  ", subsequent_indent="      "))
    return "\n".join(lines)


SIMULATE_EPILOG = f"""\
units: time in ms (a time option takes a bare number in ms or a unit: 720ms, 0.72s, 2min), tract lengths in mm,
conduction speed in mm/ms (= m/s); noise nsig in (state units)^2/ms.

presets (every model runs at its working point unless --preset none; any option overrides one setting):
  the model parameters, coupling function and strength, conduction speed, noise, dt, run length, sampling period,
  FC transient and, where TVB's random initial ranges start a runaway or a stiff transient, a narrower initial
  state, all tuned on TVB's 76-region connectome (max-normalised) so that the dynamics are bounded, not at a fixed
  point and their functional connectivity (FC) follows the structure (SC-FC r, measured with seed 0, float32;
  vbtjax.models.PRESETS documents each, docs/gallery.md shows them). On another connectome the coupling strength
  may need adjusting (the health check says so).
{_presets_epilog()}

default run (`vbtjax simulate` with no options): the MontbrioPazoRoxin preset on TVB's 76-region connectome
  (tvb-data), weights normalised by their maximum (--normalise max): tau=1 ms, eta=-4.6, J=14.5, Delta=0.7
  (Montbrio, Pazo & Roxin 2015, Phys Rev X 5:021028; working point of Rabuffo et al. 2021, eNeuro
  8:ENEURO.0283-21.2021), Linear coupling a=0.1 through r, delays from tract lengths at 3 mm/ms, additive noise
  nsig=0.01 on r and 0.04 on V, stochastic Heun at dt=0.01 ms for 4000 ms, temporal average monitor at 1 ms,
  float32, random TVB-style initial state (--seed 0). Each region is bistable (down state r~0.06, up state r~1);
  noise on r kicks regions up, noise on V knocks them down, and a=0.1 puts the network at the edge of its bistable
  regime (a=0.095 falls to the all-down state within seconds, a=0.105 locks ~3/4 of the regions up), so regions
  switch states and recruit their neighbours. dt=0.01 ms because tau=1 ms: at dt=0.1 ms Heun does not resolve the
  up-state transients.

health check: after the run the recorded signal (the preset's signal variable; the first one otherwise) is checked
  after the transient: NaN/inf (exit 1, nothing written), blow-up, a fixed point, constant channels (NaN rows of
  the FC), a collapse to a quiet state, saturation at a bound, every region in lockstep. A degenerate run writes
  simulation.npz (its meta_json holds the verdict), no figure, prints one line saying what to change and exits 3;
  --no-check draws the figure anyway and exits 0. Runs with fewer than 10 samples after the transient pass.

monitors (--monitor; --period in ms):
  raw, tavg, subsample  every state variable of every region (tavg/subsample every --period, default the
            preset's, else 1 ms).
  bold      BOLD from the Balloon-Windkessel hemodynamic model (Friston et al. 2000; vbtjax.monitors.
            BalloonWindkessel) driven by the preset's signal variable (r for MontbrioPazoRoxin), advanced by RK4
            every dt_hemo = {DT_HEMO:g} ms (--dt itself when it does not divide it), sampled at the end of each TR =
            --period (default {DEFAULT_PERIODS["bold"]:g} ms, HCP's TR; a multiple of dt_hemo). Default --duration
            {DEFAULT_DURATIONS["bold"]:g} ms: 83 TRs, of which the first 20 s are discarded before FC (the hemodynamics
            start at rest and take ~10-20 s to settle), leaving 56 TRs; ~30 s on 2 CPU cores for the default model.
            Shorter runs discard the first third instead of 20 s. [MPR preset] with bold and bold-hrf the coupling
            strength is a=0.115: at a=0.1 the network falls to the all-down state after ~10-20 s and its BOLD is
            then flat, at a=0.105 it did so in 1 of 6 noise realisations, at a=0.11-0.115 in none of 6; BOLD SC-FC
            r ~0.33-0.47.
  bold-hrf  TVB's Bold monitor (vbtjax.monitors.Bold): the signal averaged over 4 ms and convolved with TVB's
            FirstOrderVolterra HRF kernel (20 s long), sampled every --period (default
            {DEFAULT_PERIODS["bold-hrf"]:g} ms). Default --duration {DEFAULT_DURATIONS["bold-hrf"]:g} ms (60 TRs, 50
            after the 20 s transient). --dt must divide 4 ms.
  eeg, meg  every state variable projected through tvb-data's lead field (eeg_brainstorm_65: 63 EEG channels;
            meg_brainstorm_276: 248 MEG channels; non-brain channels dropped); region gain = sum over each
            region's cortical vertices (as TVB). Only for the 76 regions of TVB's connectome. Default --period 1 ms.
  seeg      every state variable projected on the 588 contacts of tvb-data's seeg_588 with the inverse-square
            point-source gain 1/max(d, 1 mm)^2 (mm^-2) from each region centre (vbtjax.monitors.SEEG.
            from_contacts); needs a --connectome with centres in the frame of TVB's 76/192-region connectomes.

outputs (in --out DIR):
  simulation.npz  time (T,) ms (for bold: the end of each TR); data (T, n_voi, n_channels) with channel = region,
                  or sensor for eeg/meg/seeg; monitor; period (ms); variables_of_interest; channel_labels;
                  state_variables; labels (regions); weights (as simulated, i.e. after --normalise); lengths (mm);
                  dt (ms); speed (mm/ms); transient (ms, left out of the FC or spectrum); meta_json (options,
                  resolved settings and preset, health check, versions). raw/tavg/subsample/bold/bold-hrf: fc (N, N)
                  Pearson correlation of the signal after the transient and sc_fc_r, the correlation of the upper
                  triangles of FC and the (symmetrised) weights. eeg/meg/seeg: psd_freqs (F,) Hz, psd
                  (F, n_voi, n_channels) Welch spectra (units^2/Hz, 1 s Hann segments, 50 % overlap) after the
                  transient, gain (n_channels, N), sensor_positions (mm).
  simulation.png  raw/tavg/subsample: the signal of every region over time, and the FC with its SC-FC r.
                  bold/bold-hrf: BOLD of every region (time in s) and the BOLD FC. eeg/meg/seeg: 16 sensor traces
                  and the power spectrum averaged over all sensors (log-log, Hz).

examples:
  vbtjax simulate
  vbtjax simulate --model JansenRit                     # its preset: SigmoidalJansenRit a=3, ~9 Hz, 10 mm/ms
  vbtjax simulate --duration 10s --coupling-strength 0.105 --seed 3 --out run2
  vbtjax simulate --model Generic2dOscillator --preset none --coupling-strength 0.02 --noise 1e-4 --dt 0.05
  vbtjax simulate --connectome my_conn.zip --speed 5 --monitor raw --duration 500
  vbtjax simulate --connectome weights.csv --lengths tract_lengths.csv --normalise region
  vbtjax simulate --monitor bold                        # 60 s, BOLD + BOLD FC, ~30 s
  vbtjax simulate --monitor bold --period 2s --duration 5min --out bold5min
  vbtjax simulate --monitor eeg --duration 10s
"""


def add_simulate(sub) -> None:
    """Add the ``simulate`` subcommand to the subparsers ``sub``."""
    p = sub.add_parser(
        "simulate",
        help="simulate a brain network model on a connectome (writes .npz and .png)",
        description="Simulate a neural mass model on every region of a connectome, coupled through delayed "
        "connections (TVB semantics), at the model's working point (its preset) unless told otherwise, check that "
        "the dynamics are not degenerate, and write the monitored time series and a figure.",
        epilog=SIMULATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_network_options(p)
    _add_recording_options(p)
    g = p.add_argument_group("output")
    g.add_argument("--out", metavar="DIR", default="vbtjax-out", help="output folder (default: vbtjax-out)")
    g.add_argument("--no-plot", action="store_true", help="do not write simulation.png")
    g.add_argument(
        "--no-check",
        action="store_true",
        help="write the figure and exit 0 even when the health check finds degenerate dynamics (see below)",
    )
    g.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    p.set_defaults(func=run_simulate)


def _add_network_options(p) -> None:
    g = p.add_argument_group("model and network")
    g.add_argument(
        "--model",
        metavar="NAME",
        help="neural mass model, a class of vbtjax.models with TVB's name (case-sensitive): "
        f"{', '.join(_model_names())} (default: {DEFAULT_MODEL}, or the model of --preset)",
    )
    g.add_argument(
        "--preset",
        metavar="NAME",
        help="the working point to start from: a model name (sets --model; see 'presets' below) or 'none' for TVB's "
        "defaults (the coupling's TVB strength, 3 mm/ms, no noise, dt 0.01 ms). Default: the preset of --model",
    )
    g.add_argument(
        "--param",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        help="set a model parameter (TVB names, e.g. eta=-4.6); VALUE is a number or N comma-separated numbers "
        "(one per region); repeatable. Time constants in ms. Overrides the preset's value",
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
        help="weight normalisation (Connectome.normalised): none = as stored; max = W/max|W| (TVB's 'tract'); "
        "region = W/max row sum; sum = W/sum|W|; rows = each row by its own sum. Default: the preset's (max for "
        "every preset), so that the strongest connection is 1 and the coupling strength means the same for any "
        "connectome scale",
    )
    g.add_argument(
        "--coupling",
        metavar="NAME",
        help=f"coupling function, a class of vbtjax.coupling: {', '.join(_coupling_names())} (default: the "
        f"preset's, else {DEFAULT_COUPLING}); another function than the preset's starts from its TVB defaults",
    )
    g.add_argument(
        "--coupling-strength",
        metavar="A",
        type=float,
        help="the coupling's global strength `a` (dimensionless; scales the weighted sum of the coupling "
        "variables). Default: the preset's (MontbrioPazoRoxin: 0.1, 0.115 with --monitor bold or bold-hrf), else "
        "the coupling's TVB default",
    )
    g.add_argument(
        "--speed",
        metavar="V",
        type=float,
        help="conduction speed in mm/ms (= m/s); delays = tract length (mm) / speed; 'inf' for no delays "
        f"(default: the preset's, else {DEFAULT_SPEED:g} mm/ms)",
    )
    g.add_argument(
        "--noise",
        metavar="NSIG",
        help="additive noise intensity nsig (TVB: each step adds sqrt(2 nsig dt) N(0,1)), one value for all "
        "state variables or one per state variable, comma-separated; 0 = deterministic. "
        "Default: the preset's (MontbrioPazoRoxin: 0.01,0.04 on r, V), else 0",
    )
    g.add_argument(
        "--seed", metavar="S", type=int, default=0, help="random seed for noise and initial state (default: 0)"
    )


def _add_recording_options(p) -> None:
    g = p.add_argument_group("integration and recording")
    g.add_argument(
        "--duration",
        metavar="TIME",
        type=time_arg("--duration"),
        help=f"simulated time {TIME_HELP}, a whole number of steps (default: the preset's, e.g. "
        f"{DEFAULT_DURATION:g} ms; {DEFAULT_DURATIONS['bold']:g} ms with --monitor bold, "
        f"{DEFAULT_DURATIONS['bold-hrf']:g} ms with bold-hrf: see 'monitors' below)",
    )
    g.add_argument(
        "--dt",
        metavar="TIME",
        type=time_arg("--dt"),
        help=f"integration step {TIME_HELP} (default: the preset's, else {DEFAULT_DT:g} ms)",
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
        "--period; subsample = the state every --period; bold = BOLD signal of the signal variable from the "
        "Balloon-Windkessel hemodynamic model, one sample per TR = --period; bold-hrf = TVB's Bold monitor (HRF "
        "kernel convolution); eeg, meg = every state variable projected through tvb-data's lead field (needs "
        "--connectome 76); seeg = every state variable projected on tvb-data's SEEG contacts (inverse-square "
        "gain from the region centres). See 'monitors' below (default: tavg)",
    )
    g.add_argument(
        "--period",
        metavar="TIME",
        type=time_arg("--period"),
        help=f"sampling period {TIME_HELP}, a multiple of --dt (not with raw). Default: the preset's (e.g. "
        f"{DEFAULT_PERIOD:g} ms) for tavg and subsample, {DEFAULT_PERIOD:g} ms for eeg, meg, seeg; the TR "
        f"{DEFAULT_PERIODS['bold']:g} ms for bold (a multiple of the {DT_HEMO:g} ms hemodynamic step) and "
        f"{DEFAULT_PERIODS['bold-hrf']:g} ms for bold-hrf",
    )
    g.add_argument(
        "--transient",
        metavar="TIME",
        type=time_arg("--transient"),
        help=f"start of the run left out of the FC, the spectra and the health check {TIME_HELP}. Default: the "
        "preset's when it leaves at least half of the run, else min(1000 ms, a quarter of the run); for bold and "
        "bold-hrf min(20 s, a third of the run)",
    )
    g.add_argument("--x64", action="store_true", help="simulate in float64 (default: float32)")


def run_simulate(args: argparse.Namespace) -> int:
    """``vbtjax simulate``: validate, build the network, simulate, check, save, plot. Returns the exit code."""
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
            f"{setup['dt'] / 10:g} ms), a smaller --coupling-strength or less --noise{_preset_hint(setup)}. "
            "Nothing was written.",
        )
        return 1
    written, health = write_outputs(args, setup, sol, wall)
    if not health.ok and not args.no_check:
        print_error(
            "simulate",
            f"degenerate dynamics: {health.problems[0]} To fix it: {health.suggestion}{_preset_hint(setup)}. "
            f"Wrote {written[0]} (its meta_json has the check), no figure; --no-check draws it anyway.",
        )
        return DEGENERATE_EXIT
    if not args.quiet:
        print(
            f"simulated {setup['n_steps']} steps in {wall:.2f} s (total {time.perf_counter() - t_start:.2f} s "
            f"with set-up and output)"
        )
        if not health.ok:
            print(f"warning (--no-check): {health.message()}")
        for path in written:
            print(f"wrote {path}")
    return 0


def _preset_hint(setup: dict[str, Any]) -> str:
    """What the preset offers, for the one-line explanation of a failed run."""
    model, preset = setup["args"].model, setup["preset"]
    if preset is None:
        return f"; or use --preset {model}, its working point" if model in PRESETS else ""
    changed = setup["overrides"]
    if changed:
        return f"; or leave out {', '.join(changed)}, which change the {model} preset"
    if setup["connectome_source"] != "TVB connectivity_76":
        return f"; the {model} preset was tuned on TVB's 76-region connectome, so adjust --coupling-strength"
    return ""


def _preset_for(args: argparse.Namespace):
    """``(model name, Preset or None)`` from --model and --preset."""
    name = args.preset
    if name is None:
        model = args.model or DEFAULT_MODEL
        return model, PRESETS.get(model)
    if name == "none":
        return args.model or DEFAULT_MODEL, None
    if name not in PRESETS:
        hint = [c for c in PRESETS if c.lower() == name.lower()]
        did_you_mean = f" (names are case-sensitive: did you mean {hint[0]}?)" if hint else ""
        raise UsageError(
            "--preset", f"unknown preset {name!r}{did_you_mean}; choose from: {', '.join(sorted(PRESETS))}, or none"
        )
    if args.model is not None and args.model != name:
        raise UsageError(
            "--preset",
            f"{name} is the working point of the model {name}, not of --model {args.model}; "
            "give one of the two, or --preset none for TVB's defaults",
        )
    return name, PRESETS[name]


def _times(args, preset) -> tuple[float, float, int]:
    """``(duration, dt, n_steps)`` in ms from --duration/--dt, the preset or the defaults."""
    dt = positive("--dt", args.dt if args.dt is not None else preset.dt if preset else DEFAULT_DT, "ms")
    default = DEFAULT_DURATIONS.get(args.monitor, preset.duration if preset else DEFAULT_DURATION)
    duration = positive("--duration", default if args.duration is None else args.duration, "ms")
    n_steps = round(duration / dt)
    if n_steps < 1 or abs(n_steps * dt - duration) > 1e-6 * max(duration, dt):
        raise UsageError(
            "--duration",
            f"{duration:g} ms is not a whole number of --dt={dt:g} ms steps; use e.g. {max(n_steps, 1) * dt:g} ms",
        )
    if n_steps > MAX_STEPS:
        raise UsageError("--duration", f"{duration:g} ms is {n_steps} steps of {dt:g} ms, more than {MAX_STEPS}")
    return duration, dt, n_steps


def _transient(args, preset, duration: float) -> float | None:
    """ms left out of the FC: --transient, else the preset's when it leaves half of the run (None: the default)."""
    if args.transient is not None:
        if not (0 <= args.transient < duration):
            raise UsageError("--transient", f"must be >= 0 and shorter than --duration={duration:g} ms")
        return args.transient
    if preset is not None and preset.transient is not None and args.monitor not in BOLD_MONITORS:
        return preset.transient if preset.transient <= 0.5 * duration else None
    return None


def _coupling_for(args, preset, names: list[str]):
    """The coupling function of --coupling/--coupling-strength, from the preset's when it is the same function."""
    import vbtjax as vbt

    name = args.coupling or (preset.coupling if preset else DEFAULT_COUPLING)
    cls = _resolve_class("--coupling", name, vbt.coupling, names)
    kwargs: dict[str, float] = {}
    if preset is not None and name == preset.coupling:
        kwargs = dict(preset.coupling_params)
        if args.monitor in BOLD_MONITORS and preset.bold_coupling is not None:
            kwargs["a"] = preset.bold_coupling
    strength = args.coupling_strength
    if strength is not None:
        if not math.isfinite(strength):
            raise UsageError("--coupling-strength", f"must be a finite number, got {strength}")
        if "a" not in _field_names(cls):
            raise UsageError("--coupling-strength", f"coupling {name} has no strength parameter 'a'")
        kwargs["a"] = strength
    return name, cls(**kwargs), kwargs.get("a")


def _overrides(args, preset) -> list[str]:
    """The options that change a preset's settings (for the hint of a degenerate run)."""
    if preset is None:
        return []
    given = {
        "--param": bool(args.param),
        "--coupling": args.coupling not in (None, preset.coupling),
        "--coupling-strength": args.coupling_strength is not None,
        "--speed": args.speed is not None and args.speed != preset.speed,
        "--noise": args.noise is not None,
        "--dt": args.dt is not None and args.dt != preset.dt,
        "--normalise": args.normalise not in (None, preset.normalise),
    }
    return [k for k, v in given.items() if v]


def _build(args: argparse.Namespace) -> dict[str, Any]:
    """Validate the options and build the network, solver and monitor (inside the dtype context)."""
    import jax.numpy as jnp

    import vbtjax as vbt

    model_name, preset = _preset_for(args)
    model_cls = _resolve_class("--model", model_name, vbt.models, _model_names())
    duration, dt, n_steps = _times(args, preset)
    speed = args.speed if args.speed is not None else preset.speed if preset else DEFAULT_SPEED
    if not (speed > 0):  # also rejects NaN; inf (no delays) is allowed
        raise UsageError("--speed", f"must be a positive conduction speed in mm/ms (e.g. 3.0), got {speed:g}")
    if args.seed < 0:
        raise UsageError("--seed", f"must be a non-negative integer, got {args.seed}")
    signal = preset.signal_index if preset else 0
    default_period = preset.period if preset and args.monitor in ("tavg", "subsample") else DEFAULT_PERIOD
    period, dt_hemo = monitor_timing(args, dt, duration, n_steps, default_period)
    args.normalise = args.normalise or (preset.normalise if preset else DEFAULT_NORMALISE)
    conn, source = _load_connectome(args)
    if args.normalise != "none":
        conn = conn.normalised(args.normalise)
    n = conn.n_regions
    labels = list(conn.labels) if conn.labels is not None else [f"region {i}" for i in range(n)]
    monitor, channels, monitor_info = build_monitor(args, period, dt_hemo, conn, source, labels, model_cls, signal)
    params = dict(preset.params) if preset else {}
    params.update(_parse_params(args.param, model_cls, n))
    try:
        model = model_cls(**params)
    except (TypeError, ValueError) as e:
        raise UsageError("--param", str(e)) from None
    coupling_name, coupling, strength = _coupling_for(args, preset, _coupling_names())
    nsig = _parse_noise(args.noise, preset.noise if preset else 0.0, model_cls.state_variables, model_name)
    noise = None if not np.any(np.asarray(nsig) > 0) else vbt.noise.Additive(nsig=jnp.asarray(nsig))
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
    args.model, args.coupling = model_name, coupling_name
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
        preset=preset,
        overrides=_overrides(args, preset),
        signal=signal,
        transform=preset.transform if preset else None,
        transient=_transient(args, preset, duration),
        initial_range=dict(preset.initial_range) if preset else {},
    )


def _simulate(setup: dict[str, Any], progress: bool):
    """Run the simulation: the preset's initial state when it narrows TVB's ranges (drawn from the first half of the
    key, as :func:`vbtjax.simulate` draws its own), else the model's random one."""
    import jax

    import vbtjax as vbt

    key = jax.random.key(setup["seed"])
    net, preset = setup["network"], setup["preset"]
    history = None
    if preset is not None and preset.initial_range:
        history = preset.initial_state(jax.random.split(key)[0], net.n_regions, net.dtype)
    t0 = time.perf_counter()
    sol = vbt.simulate(
        net,
        t1=setup["duration"],
        dt=setup["dt"],
        history=history,
        solver=setup["solver"],
        monitors={"mon": setup["monitor"]},
        key=key,
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
    preset = "no preset" if setup["preset"] is None else f"{a.model} preset"
    if setup["overrides"]:
        preset += f" with {', '.join(setup['overrides'])}"
    return (
        f"vbtjax simulate: {a.model} on {net.n_regions} regions ({setup['connectome_source']}, "
        f"normalise={a.normalise}), "
        f"{a.coupling}{strength}, speed {setup['speed']:g} mm/ms, {noise}; {setup['duration']:g} ms = "
        f"{setup['n_steps']} {a.solver} steps of {setup['dt']:g} ms, {mon}, {setup['dtype']} ({preset})"
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
