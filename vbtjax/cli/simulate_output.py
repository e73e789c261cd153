"""The monitor and the outputs of ``vbtjax simulate`` (:mod:`vbtjax.cli.simulate`): the monitor of ``--monitor``
and its timing, the functional connectivity or the sensors' spectra of the recorded series, the health check of the
dynamics (:func:`vbtjax.simulation.health.assess`), ``simulation.npz`` with its metadata, and the figure
``simulation.png``; every file written atomically (:mod:`vbtjax.files`). Units: ms, mm, mm/ms."""

from __future__ import annotations

import json
import math
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .. import files
from .common import UsageError, fc_panel, jsonable, save_figure

BOLD_MONITORS = ("bold", "bold-hrf")
SENSOR_MONITORS = ("eeg", "meg", "seeg")
BOLD_TRANSIENT_MAX_MS = 20000.0  # BOLD FC discards min(this, BOLD_TRANSIENT_FRACTION * duration) at the start
BOLD_TRANSIENT_FRACTION = 1.0 / 3.0
TRANSIENT_MAX_MS = 1000.0  # FC discards min(this, TRANSIENT_FRACTION * duration) at the start
TRANSIENT_FRACTION = 0.25
SENSOR_TRACES = 16  # sensor traces drawn in simulation.png
PSD_SEGMENT_MS = 1000.0  # Welch segment (1 Hz resolution)
DEFAULT_PERIOD = 1.0  # ms
DEFAULT_PERIODS = {"bold": 720.0, "bold-hrf": 2000.0}  # ms (the TR); every other monitor: DEFAULT_PERIOD
DEFAULT_DURATIONS = {"bold": 59760.0, "bold-hrf": 120000.0}  # ms, 83 and 60 whole TRs; others: the preset's
DT_HEMO = 1.0  # ms, Balloon-Windkessel step (BalloonWindkessel's default); dt itself when dt does not divide it
BOLD_INTERIM_PERIOD = 4.0  # ms, TVB's Bold monitor interim averages (vbtjax.monitors.Bold's default)
SEEG_SENSORS = 588  # tvb-data's seeg_588.txt: contacts in the frame of the 76- (and 192-) region connectome
DEGENERATE_EXIT = 3  # exit code of a run whose dynamics are degenerate (simulation.npz written, no figure)


def positive(option: str, value: float, unit: str) -> float:
    """`value` as a float, or a UsageError naming `option` unless it is positive and finite."""
    if not (math.isfinite(value) and value > 0):
        raise UsageError(option, f"must be a positive, finite number of {unit}, got {value:g}")
    return float(value)


def _whole(value: float, unit: float) -> int | None:
    """``value / unit`` when it is a whole number >= 1, else None."""
    q = round(value / unit)
    return q if q >= 1 and abs(q * unit - value) <= 1e-6 * max(value, unit) else None


def _hemo_step(dt: float) -> float:
    """The Balloon-Windkessel step: DT_HEMO when it is a whole number of --dt steps, else --dt itself."""
    return DT_HEMO if _whole(DT_HEMO, dt) is not None else dt


def monitor_timing(
    args, dt: float, duration: float, n_steps: int, default_period: float = DEFAULT_PERIOD
) -> tuple[float | None, float | None]:
    """Validate --period for --monitor: returns ``(period, dt_hemo)`` in ms (None where they do not apply);
    `default_period` (ms) is the period of tavg/subsample/eeg/meg/seeg without --period (a preset's)."""
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
    default = DEFAULT_PERIODS.get(kind, default_period)
    period = positive("--period", default if args.period is None else args.period, "ms")
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


def build_monitor(args, period, dt_hemo, conn, source: str, labels: list[str], model_cls, signal: int = 0):
    """The monitor of --monitor: ``(monitor, channel_labels, info)``; ``info`` goes to the npz/metadata. BOLD is
    driven by the state variable ``signal`` (index; a preset's, else the first)."""
    import vbtjax as vbt

    kind = args.monitor
    first = model_cls.state_variables[signal]
    if kind == "raw":
        return vbt.monitors.Raw(), labels, {}
    if kind == "tavg":
        return vbt.monitors.TemporalAverage(period=period), labels, {}
    if kind == "subsample":
        return vbt.monitors.SubSample(period=period), labels, {}
    if kind == "bold":
        mon = vbt.monitors.BalloonWindkessel(period=period, dt_hemo=dt_hemo, variables_of_interest=(signal,))
        info = {
            "description": f"Balloon-Windkessel BOLD (Friston et al. 2000, vbtjax defaults) driven by {first}, "
            f"hemodynamic RK4 step {dt_hemo:g} ms, sampled at the end of each TR of {period:g} ms",
            "dt_hemo_ms": dt_hemo,
        }
        return mon, labels, info
    if kind == "bold-hrf":
        mon = vbt.monitors.Bold(period=period, variables_of_interest=(signal,))
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


def write_outputs(args, setup: dict[str, Any], sol, wall: float) -> tuple[list[Path], Any]:
    """Analyse the recorded series (FC, or the spectra of sensors), check the dynamics (:func:`check_health`) and
    write ``simulation.npz`` and (unless ``--no-plot``) ``simulation.png`` to ``--out``, each atomically. Returns
    ``(paths written, health)``; with degenerate dynamics no figure is written (unless ``--no-check``)."""
    ts = np.asarray(sol.ts["mon"])
    ys = np.asarray(sol.ys["mon"])
    out = setup["out"]
    kind = args.monitor
    t_discard = transient(setup["duration"], kind, setup.get("transient"))
    net, conn = setup["network"], setup["connectome"]
    x = signal_of(ys, setup)
    analysis: dict[str, Any] = {}
    if kind in SENSOR_MONITORS:
        freqs, psd, t_discard = spectrum(ts, ys, t_discard, setup["period"])
        analysis.update(psd_freqs=freqs, psd=psd)
    else:
        fc, t_discard = functional_connectivity(ts, x, t_discard)
        analysis.update(fc=fc, sc_fc_r=np.float64(sc_fc_correlation(np.asarray(conn.weights), fc)))
    health = check_health(ts, x, t_discard, setup)
    meta = metadata(args, setup, sol, wall, t_discard, analysis, health)
    info = setup["monitor_info"]
    voi = setup["monitor"].voi_indices(net.model.state_variables)
    npz = out / "simulation.npz"
    arrays = dict(
        time=ts,
        data=ys,
        monitor=np.array(kind),
        period=np.float64(setup["dt"] if setup["period"] is None else setup["period"]),
        variables_of_interest=np.array([net.model.state_variables[i] for i in voi], dtype=str),
        channel_labels=np.array(setup["channels"], dtype=str),
        state_variables=np.array(net.model.state_variables, dtype=str),
        labels=np.array(setup["labels"], dtype=str),
        weights=np.asarray(conn.weights),
        lengths=np.asarray(conn.lengths),
        dt=np.float64(setup["dt"]),
        speed=np.float64(setup["speed"]),
        transient=np.float64(t_discard),
        **analysis,
        **{k: info[k] for k in ("gain", "sensor_positions") if k in info},
        meta_json=np.array(json.dumps(meta, indent=1)),
    )
    files.write_npz(npz, arrays)
    written = [npz]
    if not args.no_plot and (health.ok or args.no_check):
        png = out / "simulation.png"
        if kind in SENSOR_MONITORS:
            plot_sensors(png, ts, ys, analysis["psd_freqs"], analysis["psd"], t_discard, setup)
        elif kind in BOLD_MONITORS:
            plot_bold(png, ts, ys, analysis["fc"], float(analysis["sc_fc_r"]), t_discard, setup)
        else:
            plot_regions(png, ts, x, analysis["fc"], t_discard, setup)
        written.append(png)
    return written, health


def transient(duration: float, kind: str, chosen: float | None = None) -> float:
    """Start of the run (ms) left out of FC and spectra: `chosen` (--transient, or a preset's when it leaves at least
    half of the run), else the network's transient, and for BOLD the hemodynamic one."""
    if chosen is not None:
        return float(chosen)
    if kind in BOLD_MONITORS:
        return min(BOLD_TRANSIENT_MAX_MS, BOLD_TRANSIENT_FRACTION * duration)
    return min(TRANSIENT_MAX_MS, TRANSIENT_FRACTION * duration)


def signal_name(setup: dict[str, Any]) -> str:
    """The name of the series of the FC and the figure: the preset's signal (default: the first state variable),
    ``sin(theta)`` for a phase."""
    name = setup["network"].model.state_variables[setup.get("signal", 0)]
    return f"sin({name})" if setup.get("transform") == "sin" and setup["args"].monitor not in BOLD_MONITORS else name


def signal_of(ys: np.ndarray, setup: dict[str, Any]) -> np.ndarray:
    """The ``(T, channels)`` series of the FC, the health check and the figure: the preset's signal variable of
    raw/tavg/subsample (BOLD records only it; sensors: their first variable), ``sin`` of a phase."""
    kind = setup["args"].monitor
    k = setup.get("signal", 0) if kind in ("raw", "tavg", "subsample") else 0
    x = np.asarray(ys[:, k, :], dtype=np.float64)
    return np.sin(x) if setup.get("transform") == "sin" and kind not in BOLD_MONITORS else x


def check_health(ts: np.ndarray, x: np.ndarray, t_discard: float, setup: dict[str, Any]):
    """:func:`vbtjax.simulation.health.assess` of the series ``x`` after `t_discard` ms (the bounds of the signal
    variable for the saturation check; no FC check for sensors, which share their sources)."""
    from ..simulation.health import assess

    kind = setup["args"].monitor
    model = setup["network"].model
    bounds = None
    if kind in ("raw", "tavg", "subsample"):
        bounds = model.state_variable_boundaries.get(model.state_variables[setup.get("signal", 0)])
    return assess(x[:, None, :], ts, transient=t_discard, bounds=bounds, check_fc=kind not in SENSOR_MONITORS)


def functional_connectivity(ts: np.ndarray, x: np.ndarray, t_discard: float) -> tuple[np.ndarray, float]:
    """Pearson correlation across regions of ``x`` (T, N) after ``t_discard`` ms (less if fewer than 3 samples
    would remain); regions with zero variance get NaN, and so does everything with fewer than 2 samples."""
    keep = ts > t_discard
    if keep.sum() < 3:  # too short to discard anything
        keep = np.ones_like(keep)
        t_discard = 0.0
    x = np.asarray(x[keep], dtype=np.float64)
    if x.shape[0] < 2:
        return np.full((x.shape[1], x.shape[1]), np.nan), t_discard
    x = x - x.mean(axis=0)
    sd = np.sqrt((x * x).mean(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = x / np.where(sd > 0, sd, np.nan)
        fc = (z.T @ z) / x.shape[0]
    return np.clip(fc, -1.0, 1.0), t_discard


def sc_fc_correlation(weights: np.ndarray, fc: np.ndarray) -> float:
    """Pearson correlation between the upper triangles of the (symmetrised) weights and the FC (NaN if undefined)."""
    w = 0.5 * (weights + weights.T)
    iu = np.triu_indices(w.shape[0], k=1)
    a, b = w[iu], fc[iu]
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def spectrum(ts: np.ndarray, ys: np.ndarray, t_discard: float, period: float):
    """Welch PSD (one-sided, units^2/Hz) of every channel after ``t_discard`` ms: ``(freqs (F,) Hz, psd (F, n_voi,
    n_channels), t_discard)``; segments of PSD_SEGMENT_MS (shorter when the run is short), Hann, 50 % overlap."""
    from vbtjax.features import sampling_rate, welch_psd

    keep = ts > t_discard
    if keep.sum() < 8:  # too short to discard anything
        keep = np.ones_like(keep)
        t_discard = 0.0
    x = np.asarray(ys[keep])
    if x.shape[0] < 2:
        return np.zeros(1), np.full((1,) + x.shape[1:], np.nan), t_discard
    nperseg = int(min(x.shape[0], max(2, round(PSD_SEGMENT_MS / period))))
    freqs, psd = welch_psd(x, sampling_rate(period), nperseg=nperseg, axis=0)
    return np.asarray(freqs, dtype=np.float64), np.asarray(psd, dtype=np.float64), t_discard


def _suptitle(fig, setup) -> None:
    a = setup["args"]
    fig.suptitle(
        f"{setup['connectome_source']}, {a.model}, {a.coupling} a={fmt(setup['coupling_strength'])}, "
        f"speed {setup['speed']:g} mm/ms, noise nsig={fmt_list(setup['nsig'])}, dt={setup['dt']:g} ms, "
        f"{setup['duration'] / 1000:g} s, seed {setup['seed']}",
        fontsize="medium",
    )


def plot_bold(path: Path, ts, ys, fc, sc_fc_r, t_discard, setup) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    a = setup["args"]
    svar = signal_name(setup)
    n = setup["network"].n_regions
    name = "Balloon-Windkessel" if a.monitor == "bold" else "TVB Bold monitor, HRF kernel"
    t_s = ts / 1000.0
    fig = Figure(figsize=(14, 5), layout="constrained")
    FigureCanvasAgg(fig)
    ax_ts, ax_fc = fig.subplots(1, 2, width_ratios=[1.8, 1])
    ax_ts.plot(t_s, ys[:, 0, :], lw=0.6, alpha=0.7, marker="." if len(ts) < 30 else None, ms=3)
    if t_discard > 0:
        ax_ts.axvspan(0, t_discard / 1000.0, color="0.85", zorder=-1, label="hemodynamic transient (not in FC)")
        ax_ts.legend(loc="upper right", fontsize="small")
    ax_ts.set_title(f"BOLD of every region ({n}), from {svar} ({name}, TR {setup['period']:g} ms)")
    ax_ts.set_xlabel("time (s)")
    ax_ts.set_ylabel("BOLD (fractional signal change)" if a.monitor == "bold" else "BOLD (TVB units)")
    ax_ts.set_xlim(0, setup["duration"] / 1000.0)
    n_used = int(np.sum(ts > t_discard))
    sc = "SC-FC r = n/a" if not math.isfinite(sc_fc_r) else f"SC-FC r = {sc_fc_r:.2f}"
    fc_panel(
        fig,
        ax_fc,
        fc,
        f"BOLD functional connectivity, {sc}\n(first {t_discard / 1000:.3g} s discarded: {n_used} TRs; "
        "diagonal omitted)",
        labels=setup.get("labels"),
    )
    _suptitle(fig, setup)
    save_figure(fig, path, dpi=110)


def plot_sensors(path: Path, ts, ys, freqs, psd, t_discard, setup) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    a = setup["args"]
    svars = setup["network"].model.state_variables
    svar = svars[setup["monitor"].voi_indices(svars)[0]]
    channels = setup["channels"]
    n_ch = len(channels)
    show = np.unique(np.linspace(0, n_ch - 1, min(SENSOR_TRACES, n_ch)).round().astype(int))
    x = np.asarray(ys[:, 0, show], dtype=np.float64)
    x = x - x.mean(axis=0)
    lo, hi = np.percentile(x, [0.5, 99.5], axis=0) if len(x) else (np.zeros(1), np.ones(1))
    spacing = float(np.max(hi - lo)) if np.max(hi - lo) > 0 else 1.0
    stride = max(1, len(ts) // 20000)
    t_s = ts / 1000.0
    fig = Figure(figsize=(14, 6), layout="constrained")
    FigureCanvasAgg(fig)
    ax_ts, ax_psd = fig.subplots(1, 2, width_ratios=[1.8, 1])
    offsets = -spacing * np.arange(len(show))
    ax_ts.plot(t_s[::stride], x[::stride] + offsets, lw=0.5, color="k")
    if t_discard > 0:
        ax_ts.axvspan(0, t_discard / 1000.0, color="0.85", zorder=-1, label="transient (not in the spectrum)")
        ax_ts.legend(loc="upper right", fontsize="small")
    ax_ts.set_yticks(offsets, [channels[i] for i in show], fontsize="small")
    ax_ts.set_xlim(0, setup["duration"] / 1000.0)
    ax_ts.set_xlabel("time (s)")
    ax_ts.set_ylabel(f"sensor (offset {spacing:.3g}, demeaned)")
    ax_ts.set_title(
        f"{a.monitor.upper()}: {len(show)} of {n_ch} sensors, projection of {svar} (every {setup['period']:g} ms)"
    )
    mean_psd = np.nanmean(psd[:, 0, :], axis=-1)
    pos = (freqs > 0) & np.isfinite(mean_psd) & (mean_psd > 0)
    if pos.any():
        ax_psd.loglog(freqs[pos], mean_psd[pos], color="C0")
    ax_psd.set_xlabel("frequency (Hz)")
    ax_psd.set_ylabel(f"power spectral density (({svar} x gain)$^2$/Hz)")
    df = freqs[1] - freqs[0] if len(freqs) > 1 else float("nan")
    ax_psd.set_title(
        f"power spectrum, mean over the {n_ch} sensors\n(Welch, {df:.3g} Hz resolution, t > {t_discard / 1000:g} s)"
    )
    ax_psd.grid(True, which="both", alpha=0.3)
    _suptitle(fig, setup)
    save_figure(fig, path, dpi=110)


def plot_regions(path: Path, ts, x, fc, t_discard, setup) -> None:
    """Every region's signal ``x`` (T, N) over time and the FC."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    net = setup["network"]
    a = setup["args"]
    svar = signal_name(setup)
    n = net.n_regions
    stride = max(1, len(ts) // 20000)  # plotting every sample of a long raw run is slow and invisible
    fig = Figure(figsize=(14, 5), layout="constrained")
    FigureCanvasAgg(fig)
    ax_ts, ax_fc = fig.subplots(1, 2, width_ratios=[1.8, 1])
    ax_ts.plot(ts[::stride], x[::stride], lw=0.4, alpha=0.7)
    if t_discard > 0:
        ax_ts.axvspan(ts[0], t_discard, color="0.85", zorder=-1, label="transient (not in FC)")
        ax_ts.legend(loc="upper right", fontsize="small")
    monitor = "raw" if setup["period"] is None else f"{a.monitor}, {setup['period']:g} ms"
    ax_ts.set_title(f"{a.model} on {n} regions: {svar} of every region ({monitor})")
    ax_ts.set_xlabel("time (ms)")
    ax_ts.set_ylabel(f"{svar} (model units)")
    ax_ts.set_xlim(0, setup["duration"])

    sc = sc_fc_correlation(np.asarray(setup["connectome"].weights), fc)
    fc_panel(
        fig,
        ax_fc,
        fc,
        f"FC of {svar}, SC-FC r = {sc:.2f}\n(t > {t_discard:g} ms, diagonal omitted)",
        labels=setup.get("labels"),
    )
    fig.suptitle(
        f"{setup['connectome_source']}, {a.coupling} a={fmt(setup['coupling_strength'])}, "
        f"speed {setup['speed']:g} mm/ms, noise nsig={fmt_list(setup['nsig'])}, dt={setup['dt']:g} ms, "
        f"seed {setup['seed']}",
        fontsize="medium",
    )
    save_figure(fig, path, dpi=110)


def fmt(x) -> str:
    return "default" if x is None else f"{x:g}"


def fmt_list(x) -> str:
    return ",".join(f"{v:g}" for v in np.atleast_1d(x))


def metadata(args, setup, sol, wall, t_discard, analysis, health=None) -> dict[str, Any]:
    """The run's record (meta_json): the options, what they resolved to (preset included), the health check,
    versions."""
    import jax

    import vbtjax

    net = setup["network"]
    options = {k: v for k, v in vars(args).items() if k not in ("func", "argv")}  # None: left to the preset
    try:
        import jaxlib

        jaxlib_version = jaxlib.__version__
    except Exception:  # pragma: no cover
        jaxlib_version = None
    return jsonable(
        {
            "command": "vbtjax simulate",
            "argv": ["vbtjax", *getattr(args, "argv", [])],
            "options": options,
            "resolved": {
                "model": args.model,
                "model_parameters": net.model.parameters(),
                "preset": None
                if setup.get("preset") is None
                else {
                    "name": setup["preset"].model,
                    "settings": setup["preset"].describe(),
                    "changed_by": setup.get("overrides", []),
                },
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
                "monitor_details": {
                    k: v for k, v in setup["monitor_info"].items() if k not in ("gain", "sensor_positions")
                },
                "n_channels": len(setup["channels"]),
                "transient_ms": t_discard,
                "fc_transient_ms": t_discard if "fc" in analysis else None,
                "sc_fc_r": float(analysis["sc_fc_r"]) if "sc_fc_r" in analysis else None,
                "signal": signal_name(setup),
                "initial_state": "uniform random in the model's state_variable_range (TVB), from --seed"
                + (f", except {setup['initial_range']} (the preset's)" if setup.get("initial_range") else ""),
            },
            "health": None
            if health is None
            else {
                "ok": health.ok,
                "codes": list(health.codes),
                "problems": list(health.problems),
                "suggestion": health.suggestion,
                "notes": list(health.notes),
                "stats": dict(health.stats),
            },
            "units": {"time": "ms", "lengths": "mm", "speed": "mm/ms", "dt": "ms", "noise_nsig": "state^2/ms"},
            "data_layout": "data[t, variable_of_interest, channel] (channel = region, or sensor for eeg/meg/seeg)",
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
