"""The ``vbtjax`` command line.

``vbtjax simulate`` runs one region-level simulation and writes ``simulation.npz`` (+ ``simulation.png``).
Further subcommands (fit, vep, connectome, sbi, whatif) plug into :func:`build_parser` with :func:`_add_simulate`
as the pattern: a function that adds a subparser and sets ``func`` to a ``run(args) -> int``.

Units everywhere: time in ms, lengths in mm, conduction speed in mm/ms (= m/s).
Exit codes: 0 success, 1 the simulation itself failed (e.g. diverged), 2 bad command-line input.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main", "build_parser", "PRESETS"]

PROG = "vbtjax"
CONNECTOME_SIZES = (66, 68, 76, 96, 192)  # as vbtjax.datasets.TVB_CONNECTOME_SIZES (not imported: keeps --help light)
NORMALISE_CHOICES = ("none", "max", "region", "sum", "rows")
MONITOR_CHOICES = ("raw", "tavg", "subsample")
SOLVER_CHOICES = ("heun", "euler", "rk4")
DEFAULT_MODEL = "MontbrioPazoRoxin"
DEFAULT_COUPLING = "Linear"
DEFAULT_DURATION = 4000.0  # ms
DEFAULT_DT = 0.01  # ms (TVB's default is 0.0122 ms; MPR with tau = 1 ms needs it, see PRESETS)
DEFAULT_SPEED = 3.0  # mm/ms (TVB's)
DEFAULT_PERIOD = 1.0  # ms
DEFAULT_NORMALISE = "max"
TRANSIENT_MAX_MS = 1000.0  # FC discards min(this, TRANSIENT_FRACTION * duration) at the start
TRANSIENT_FRACTION = 0.25
PROGRESS_MIN_MS = 1000.0

PRESETS: dict[str, dict[str, Any]] = {
    "MontbrioPazoRoxin": {
        # Rabuffo et al. 2021 (J Neurosci / eNeuro "neuronal cascades") working point for a single region: bistable
        # between a down state (r ~ 0.06, V ~ -1.95) and an up state (r ~ 1, V ~ -0.1).
        "params": {"tau": 1.0, "eta": -4.6, "J": 14.5, "Delta": 0.7},
        # Linear coupling on max-normalised TVB-76 weights (mean in-strength ~13): at a = 0.1 the network sits at the
        # edge of its bistable regime (0.095 collapses to the down state within a few s, 0.105 locks ~75 % of the
        # regions up): regions hop between down and up states and recruit their neighbours.
        "coupling_strength": 0.1,
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

outputs (in --out DIR):
  simulation.npz  time (T,) ms; data (T, n_state_variables, N); state_variables; labels; weights (as simulated,
                  i.e. after --normalise); lengths (mm); dt (ms); speed (mm/ms); fc (N, N) Pearson correlation of
                  the first state variable after the transient; meta_json (options, parameters, versions)
  simulation.png  first state variable of every region over time, and the functional connectivity matrix
                  (the first min(1000 ms, 25 %) of the run is discarded as transient)

examples:
  vbtjax simulate
  vbtjax simulate --duration 10000 --coupling-strength 0.105 --seed 3 --out run2
  vbtjax simulate --model Generic2dOscillator --coupling-strength 0.02 --noise 1e-4 --dt 0.05
  vbtjax simulate --connectome my_conn.zip --speed 5 --monitor raw --duration 500
  vbtjax simulate --connectome weights.csv --lengths tract_lengths.csv --normalise region
"""


# ---------------------------------------------------------------------------------------------------- errors


class UsageError(Exception):
    """A bad command-line value: reported as ``vbtjax CMD: error: OPTION: message`` with exit code 2."""

    def __init__(self, option: str | None, message: str):
        super().__init__(f"{option}: {message}" if option else message)


class _ArgumentParser(argparse.ArgumentParser):
    """argparse, but errors raise (one line, no usage block, no SystemExit) so that ``main`` returns 2."""

    def error(self, message: str):  # noqa: D102
        raise UsageError(None, message)


# ---------------------------------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The ``vbtjax`` parser; each subcommand sets ``func``."""
    parser = _ArgumentParser(
        prog=PROG,
        description="Differentiable Virtual Brain Twins on JAX. Units: ms, mm, mm/ms.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_ArgumentParser)
    _add_simulate(sub)
    return parser


def _add_simulate(sub) -> None:
    p = sub.add_parser(
        "simulate",
        help="simulate a brain network model on a connectome (writes .npz and .png)",
        description="Simulate a neural mass model on every region of a connectome, coupled through delayed "
        "connections (TVB semantics), and write the monitored time series and a figure.",
        epilog=SIMULATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
        "variables). Default: 0.1 [MPR preset] with Linear, else the coupling's TVB default",
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

    g = p.add_argument_group("integration and recording")
    g.add_argument(
        "--duration",
        metavar="MS",
        type=float,
        default=DEFAULT_DURATION,
        help=f"simulated time in ms, a whole number of steps (default: {DEFAULT_DURATION:g} ms)",
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
        help="what is recorded: raw = every step; tavg = temporal average over --period; subsample = the state every "
        "--period (default: tavg)",
    )
    g.add_argument(
        "--period",
        metavar="MS",
        type=float,
        help=f"sampling period of tavg/subsample in ms, a multiple of --dt (default: {DEFAULT_PERIOD:g} ms)",
    )
    g.add_argument("--x64", action="store_true", help="simulate in float64 (default: float32)")

    g = p.add_argument_group("output")
    g.add_argument("--out", metavar="DIR", default="vbtjax-out", help="output folder (default: vbtjax-out)")
    g.add_argument("--no-plot", action="store_true", help="do not write simulation.png")
    g.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    p.set_defaults(func=run_simulate)


# ---------------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """Run the ``vbtjax`` command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    try:
        args = parser.parse_args(argv)
    except UsageError as e:
        _error(command, str(e))
        return 2
    except SystemExit as e:  # --help, --version
        return e.code if isinstance(e.code, int) else 0
    args.argv = argv
    if getattr(args, "func", None) is None:
        _error(None, f"a command is required: {', '.join(_commands(parser))} (see vbtjax --help)")
        return 2
    try:
        return int(args.func(args))
    except UsageError as e:
        _error(args.command, str(e))
        return 2
    except KeyboardInterrupt:
        _error(args.command, "interrupted")
        return 130


def _error(command: str | None, message: str) -> None:
    prefix = f"{PROG} {command}" if command else PROG
    print(f"{prefix}: error: {message}", file=sys.stderr)


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


# ---------------------------------------------------------------------------------------------------- simulate


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
        _error(
            "simulate",
            f"the simulation diverged (NaN/inf from t = {t_bad:g} ms); use a smaller --dt (e.g. "
            f"{setup['dt'] / 10:g} ms), a smaller --coupling-strength or less --noise. Nothing was written.",
        )
        return 1
    out = setup["out"]
    out.mkdir(parents=True, exist_ok=True)
    fc, t_discard = _functional_connectivity(ts, ys[:, 0, :], setup["duration"])
    meta = _meta(args, setup, sol, wall, t_discard)
    npz = out / "simulation.npz"
    conn, net = setup["connectome"], setup["network"]
    with open(npz, "wb") as f:
        np.savez(
            f,
            time=ts,
            data=ys,
            state_variables=np.array(net.model.state_variables, dtype=str),
            labels=np.array(setup["labels"], dtype=str),
            weights=np.asarray(conn.weights),
            lengths=np.asarray(conn.lengths),
            dt=np.float64(setup["dt"]),
            speed=np.float64(setup["speed"]),
            fc=fc,
            meta_json=np.array(json.dumps(meta, indent=1)),
        )
    written = [npz]
    if not args.no_plot:
        png = out / "simulation.png"
        _plot(png, ts, ys, fc, t_discard, setup)
        written.append(png)
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
    duration = _positive("--duration", args.duration, "ms")
    dt = _positive("--dt", DEFAULT_DT if args.dt is None else args.dt, "ms")
    n_steps = round(duration / dt)
    if n_steps < 1 or abs(n_steps * dt - duration) > 1e-6 * max(duration, dt):
        raise UsageError(
            "--duration",
            f"{duration:g} ms is not a whole number of --dt={dt:g} ms steps; use e.g. {max(n_steps, 1) * dt:g} ms",
        )
    speed = args.speed
    if not (speed > 0):  # also rejects NaN; inf (no delays) is allowed
        raise UsageError("--speed", f"must be a positive conduction speed in mm/ms (e.g. 3.0), got {speed:g}")
    if args.seed < 0:
        raise UsageError("--seed", f"must be a non-negative integer, got {args.seed}")

    # -- monitor
    if args.monitor == "raw":
        if args.period is not None:
            raise UsageError("--period", "the raw monitor records every step; use --monitor tavg or subsample")
        period = None
        monitor = vbt.monitors.Raw()
    else:
        period = _positive("--period", DEFAULT_PERIOD if args.period is None else args.period, "ms")
        q = round(period / dt)
        if q < 1 or abs(q * dt - period) > 1e-6 * max(period, dt):
            raise UsageError(
                "--period", f"{period:g} ms is not a whole multiple of --dt={dt:g} ms; use e.g. {max(q, 1) * dt:g} ms"
            )
        if q > n_steps:
            raise UsageError("--period", f"{period:g} ms is longer than --duration={duration:g} ms")
        cls = vbt.monitors.TemporalAverage if args.monitor == "tavg" else vbt.monitors.SubSample
        monitor = cls(period=period)

    # -- connectome
    conn, source = _load_connectome(args)
    if args.normalise != "none":
        conn = conn.normalised(args.normalise)
    n = conn.n_regions
    labels = list(conn.labels) if conn.labels is not None else [f"region {i}" for i in range(n)]

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
        period=period,
        solver=solver,
        seed=args.seed,
        out=out,
        args=args,
        dtype="float64" if args.x64 else "float32",
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
    )
    sol = jax.block_until_ready(sol)
    return sol, time.perf_counter() - t0


def _describe(setup: dict[str, Any]) -> str:
    a = setup["args"]
    net = setup["network"]
    mon = a.monitor if setup["period"] is None else f"{a.monitor} every {setup['period']:g} ms"
    noise = "no noise" if net.noise is None else f"noise nsig={_fmt_list(setup['nsig'])}"
    strength = "" if setup["coupling_strength"] is None else f" a={setup['coupling_strength']:g}"
    return (
        f"vbtjax simulate: {a.model} on {net.n_regions} regions ({setup['connectome_source']}, "
        f"normalise={a.normalise}), "
        f"{a.coupling}{strength}, speed {setup['speed']:g} mm/ms, {noise}; {setup['duration']:g} ms = "
        f"{setup['n_steps']} {a.solver} steps of {setup['dt']:g} ms, {mon}, {setup['dtype']}"
    )


# ---------------------------------------------------------------------------------------------------- helpers


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("vbtjax")
    except Exception:  # pragma: no cover - not installed
        return "unknown"


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
    except ValueError as e:
        hint = " Give the tract lengths with --lengths PATH." if "lengths" in str(e) and args.lengths is None else ""
        raise UsageError("--connectome", f"{e}{hint}") from None
    return conn, str(path)


def _functional_connectivity(ts: np.ndarray, x: np.ndarray, duration: float) -> tuple[np.ndarray, float]:
    """Pearson correlation across regions of ``x`` (T, N) after the transient; regions with zero variance get NaN."""
    t_discard = min(TRANSIENT_MAX_MS, TRANSIENT_FRACTION * duration)
    keep = ts > t_discard
    if keep.sum() < 3:  # too short to discard anything
        keep = np.ones_like(keep)
        t_discard = 0.0
    x = np.asarray(x[keep], dtype=np.float64)
    x = x - x.mean(axis=0)
    sd = np.sqrt((x * x).mean(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = x / np.where(sd > 0, sd, np.nan)
        fc = (z.T @ z) / x.shape[0]
    return np.clip(fc, -1.0, 1.0), t_discard


def _plot(path: Path, ts, ys, fc, t_discard, setup) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    net = setup["network"]
    a = setup["args"]
    svar = net.model.state_variables[0]
    n = net.n_regions
    stride = max(1, len(ts) // 20000)  # plotting every sample of a long raw run is slow and invisible
    fig = Figure(figsize=(14, 5), layout="constrained")
    FigureCanvasAgg(fig)
    ax_ts, ax_fc = fig.subplots(1, 2, width_ratios=[1.8, 1])
    ax_ts.plot(ts[::stride], ys[::stride, 0, :], lw=0.4, alpha=0.7)
    if t_discard > 0:
        ax_ts.axvspan(ts[0], t_discard, color="0.85", zorder=-1, label="transient (not in FC)")
        ax_ts.legend(loc="upper right", fontsize="small")
    monitor = "raw" if setup["period"] is None else f"{a.monitor}, {setup['period']:g} ms"
    ax_ts.set_title(f"{a.model} on {n} regions: {svar} of every region ({monitor})")
    ax_ts.set_xlabel("time (ms)")
    ax_ts.set_ylabel(f"{svar} (model units)")
    ax_ts.set_xlim(0, setup["duration"])

    off = fc.copy()
    np.fill_diagonal(off, np.nan)
    finite = np.isfinite(off)
    vmax = float(np.nanpercentile(np.abs(off[finite]), 99.5)) if finite.any() else 1.0
    vmax = min(1.0, vmax) if vmax > 0 else 1.0
    im = ax_fc.imshow(off, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
    ax_fc.set_title(f"functional connectivity of {svar}\n(t > {t_discard:g} ms, diagonal omitted)")
    ax_fc.set_xlabel("region index")
    ax_fc.set_ylabel("region index")
    cbar = fig.colorbar(im, ax=ax_fc, shrink=0.85)
    cbar.set_label("Pearson correlation (dimensionless)")
    fig.suptitle(
        f"{setup['connectome_source']}, {a.coupling} a={_fmt(setup['coupling_strength'])}, "
        f"speed {setup['speed']:g} mm/ms, noise nsig={_fmt_list(setup['nsig'])}, dt={setup['dt']:g} ms, "
        f"seed {setup['seed']}",
        fontsize="medium",
    )
    fig.savefig(path, dpi=110)


def _fmt(x) -> str:
    return "default" if x is None else f"{x:g}"


def _fmt_list(x) -> str:
    return ",".join(f"{v:g}" for v in np.atleast_1d(x))


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "tolist"):
        a = np.asarray(x)
        if a.dtype == np.float32:  # shortest float32 repr (0.7, not 0.699999988079071)
            flat = [float(str(v)) for v in a.ravel()]
            return _jsonable(flat[0] if a.ndim == 0 else np.asarray(flat).reshape(a.shape).tolist())
        return _jsonable(a.tolist())
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)  # JSON has no inf/nan
    return x


def _meta(args, setup, sol, wall, t_discard) -> dict[str, Any]:
    import jax

    import vbtjax

    net = setup["network"]
    options = {k: v for k, v in vars(args).items() if k not in ("func", "argv")}
    try:
        import jaxlib

        jaxlib_version = jaxlib.__version__
    except Exception:  # pragma: no cover
        jaxlib_version = None
    return _jsonable(
        {
            "command": "vbtjax simulate",
            "argv": ["vbtjax", *getattr(args, "argv", [])],
            "options": options,
            "resolved": {
                "model": args.model,
                "model_parameters": net.model.parameters(),
                "preset": args.model if args.model in PRESETS else None,
                "coupling": args.coupling,
                "coupling_parameters": net.coupling.parameters(),
                "connectome": setup["connectome_source"],
                "normalise": args.normalise,
                "n_regions": net.n_regions,
                "speed_mm_per_ms": setup["speed"],
                "noise_nsig": setup["nsig"] if net.noise is not None else 0.0,
                "duration_ms": setup["duration"],
                "dt_ms": setup["dt"],
                "n_steps": setup["n_steps"],
                "solver": args.solver,
                "monitor": args.monitor,
                "period_ms": setup["period"],
                "seed": setup["seed"],
                "dtype": setup["dtype"],
                "delay_horizon_steps": sol.horizon,
                "fc_transient_ms": t_discard,
                "initial_state": "uniform random in the model's state_variable_range (TVB), from --seed",
            },
            "units": {"time": "ms", "lengths": "mm", "speed": "mm/ms", "dt": "ms", "noise_nsig": "state^2/ms"},
            "data_layout": "data[t, state_variable, region]",
            "wall_time_s": wall,
            "versions": {
                "vbtjax": vbtjax.__version__,
                "jax": jax.__version__,
                "jaxlib": jaxlib_version,
                "numpy": np.__version__,
                "python": platform.python_version(),
            },
            "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
