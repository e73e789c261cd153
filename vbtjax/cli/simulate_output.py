"""The outputs of ``vbtjax simulate`` (:mod:`vbtjax._cli_simulate`): the functional connectivity or the sensors'
spectra of the recorded series, ``simulation.npz`` with its metadata, and the figure ``simulation.png``; every file
written atomically (:mod:`vbtjax.files`)."""

from __future__ import annotations

import json
import math
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .. import files
from .common import fc_panel, jsonable, save_figure

BOLD_MONITORS = ("bold", "bold-hrf")
SENSOR_MONITORS = ("eeg", "meg", "seeg")
BOLD_TRANSIENT_MAX_MS = 20000.0  # BOLD FC discards min(this, BOLD_TRANSIENT_FRACTION * duration) at the start
BOLD_TRANSIENT_FRACTION = 1.0 / 3.0
TRANSIENT_MAX_MS = 1000.0  # FC discards min(this, TRANSIENT_FRACTION * duration) at the start
TRANSIENT_FRACTION = 0.25
SENSOR_TRACES = 16  # sensor traces drawn in simulation.png
PSD_SEGMENT_MS = 1000.0  # Welch segment (1 Hz resolution)


def write_outputs(args, setup: dict[str, Any], sol, wall: float) -> list[Path]:
    """Analyse the recorded series (FC, or the spectra of sensors) and write ``simulation.npz`` and (unless
    ``--no-plot``) ``simulation.png`` to ``--out``, each atomically. Returns the paths written."""
    ts = np.asarray(sol.ts["mon"])
    ys = np.asarray(sol.ys["mon"])
    out = setup["out"]
    kind = args.monitor
    t_discard = transient(setup["duration"], kind)
    net, conn = setup["network"], setup["connectome"]
    analysis: dict[str, Any] = {}
    if kind in SENSOR_MONITORS:
        freqs, psd, t_discard = spectrum(ts, ys, t_discard, setup["period"])
        analysis.update(psd_freqs=freqs, psd=psd)
    else:
        fc, t_discard = functional_connectivity(ts, ys[:, 0, :], t_discard)
        analysis.update(fc=fc)
        if kind in BOLD_MONITORS:
            analysis.update(sc_fc_r=np.float64(sc_fc_correlation(np.asarray(conn.weights), fc)))
    meta = metadata(args, setup, sol, wall, t_discard, analysis)
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
    if not args.no_plot:
        png = out / "simulation.png"
        if kind in SENSOR_MONITORS:
            plot_sensors(png, ts, ys, analysis["psd_freqs"], analysis["psd"], t_discard, setup)
        elif kind in BOLD_MONITORS:
            plot_bold(png, ts, ys, analysis["fc"], float(analysis["sc_fc_r"]), t_discard, setup)
        else:
            plot_regions(png, ts, ys, analysis["fc"], t_discard, setup)
        written.append(png)
    return written


def transient(duration: float, kind: str) -> float:
    """Start of the run (ms) left out of FC and spectra: the network's transient, and for BOLD the hemodynamic one."""
    if kind in BOLD_MONITORS:
        return min(BOLD_TRANSIENT_MAX_MS, BOLD_TRANSIENT_FRACTION * duration)
    return min(TRANSIENT_MAX_MS, TRANSIENT_FRACTION * duration)


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
    svar = setup["network"].model.state_variables[0]
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


def plot_regions(path: Path, ts, ys, fc, t_discard, setup) -> None:
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

    fc_panel(fig, ax_fc, fc, f"functional connectivity of {svar}\n(t > {t_discard:g} ms, diagonal omitted)")
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


def metadata(args, setup, sol, wall, t_discard, analysis) -> dict[str, Any]:
    import jax

    import vbtjax

    net = setup["network"]
    options = {k: v for k, v in vars(args).items() if k not in ("func", "argv")}
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
                "preset": setup.get("preset"),
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
                "initial_state": "uniform random in the model's state_variable_range (TVB), from --seed",
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
