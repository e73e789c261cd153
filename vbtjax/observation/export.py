"""Results that plug into the ecosystem: what each output of a simulation holds, and its exports.

:func:`~vbtjax.simulate` records, for every monitor, an :class:`OutputInfo` (static, hashable: it rides along in
:class:`~vbtjax.Solution` under ``jax.jit``, ``jax.vmap`` and ``jax.grad``): the names of the recorded state
variables, the region labels (the connectome's) or channel labels (the sensors'), the sampling period, units where they
are known, and the monitor's kind. From it:

- :func:`to_xarray`: an ``xarray.DataArray`` with dims ``("time", "variable", "region" | "channel")`` and their
  coordinates (time in ms), or an ``xarray.Dataset`` of every output;
- :func:`to_mne`: an ``mne.io.RawArray`` of an EEG, MEG or SEEG output, with channel types, sampling frequency and
  sensor positions (MNE-Python is optional: ``pip install "vbtjax[io]"``);
- :func:`plot`: a matplotlib figure of chosen regions or channels.

``Solution.to_xarray()``, ``Solution.to_mne()`` and ``Solution.plot()`` call these. xarray, MNE and matplotlib are
imported only when used.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from .._params import is_concrete
from .monitors import AbstractMonitor, Raw, SubSample, TemporalAverage
from .monitors.projection import EEG, MEG, SEEG, AbstractProjection

__all__ = ["OutputInfo", "describe_outputs", "to_xarray", "to_mne", "plot", "MNE_SCALE", "PLOT_MAX_TRACES"]

SENSOR_TYPES: dict[type, str] = {EEG: "eeg", MEG: "meg", SEEG: "seeg"}
"""The ``channel_type`` of each sensor monitor."""

STATE_MONITORS = (Raw, SubSample, TemporalAverage)
"""Monitors whose outputs are the model's state variables themselves (so in the model's units)."""

MNE_SCALE: dict[str, float] = {"eeg": 1e-6, "seeg": 1e-6, "meg": 1e-15}
"""Default factor of :func:`to_mne` from a sensor output to MNE's units (volts for EEG and SEEG, tesla for MEG).

Projected model outputs are in arbitrary units (the model's units times the gain's); by default :func:`to_mne` reads
them as microvolts (EEG, SEEG) and femtotesla (MEG), the orders of magnitude of real recordings, so that MNE's plots
and scalings look right. Pass ``scale=`` for another reading (``scale=1.0``: the values as they are)."""

MNE_TYPES: dict[str, tuple[str, ...]] = {"eeg": ("eeg",), "seeg": ("seeg", "ecog", "dbs"), "meg": ("mag", "grad")}
"""MNE channel types :func:`to_mne` accepts for each sensor output (the first is the default: tvb-data's MEG sensors,
CTF axial gradiometers, are ``"mag"`` channels in MNE, as MNE reads CTF files)."""

PLOT_MAX_TRACES = 10
"""Traces per panel that :func:`plot` draws when no regions or channels are chosen (evenly spread over them)."""


@dataclasses.dataclass(frozen=True, repr=False)
class OutputInfo:
    """What one output of :func:`~vbtjax.simulate` holds (axis 1 of its ``ys``: variables; axis 2: regions or
    channels). Frozen and hashable: :class:`~vbtjax.Solution` keeps one per monitor as a static field.

    **Fields:**
    - `name`: the output's name: its key in ``monitors`` (a dict key, or a list index as a string; joined with ``.``
      when nested), or the monitor's class name in lower case when ``monitors`` is a single monitor.
    - `monitor`: the monitor's class name (``"Raw"``, ``"TemporalAverage"``, ``"BalloonWindkessel"``, ``"EEG"``, ...).
    - `model`: the neural mass model's class name.
    - `variables`: names of the recorded state variables, in the order of axis 1.
    - `space`: ``"region"`` (axis 2 are the network's regions) or ``"channel"`` (a projection monitor's sensors).
    - `labels`: the region labels (the connectome's) or channel labels (the monitor's ``sensors``); ``None`` when the
      connectome or the monitor has none.
    - `channel_type`: ``"eeg"``, ``"meg"`` or ``"seeg"`` for sensor outputs, else ``None``.
    - `period`: ms between samples (``dt`` for ``Raw``).
    - `units`: one unit string (or ``None``) per variable where known: a model that states
      ``state_variable_units`` (a dict name -> unit) gives them to the state monitors (Raw, SubSample,
      TemporalAverage); ``None`` otherwise (TVB's models are in their own, mostly dimensionless, units; BOLD and
      projections are in arbitrary units).
    - `time_units`: ``"ms"``: the unit of ``Solution.ts``.
    - `positions`, `orientations`: the sensors' ``(x, y, z)`` per channel, as :class:`~vbtjax.sensors.Sensors` holds
      them (mm), or ``None`` (region outputs, no sensors, or sensors traced under a transformation).
    """

    name: str
    monitor: str
    model: str
    variables: tuple[str, ...]
    space: str = "region"
    labels: tuple[str, ...] | None = None
    channel_type: str | None = None
    period: float | None = None
    units: tuple[str | None, ...] | None = None
    time_units: str = "ms"
    positions: tuple[tuple[float, float, float], ...] | None = None
    orientations: tuple[tuple[float, float, float], ...] | None = None

    def __repr__(self) -> str:
        def many(x, n=4):
            if x is None:
                return "None"
            head = ", ".join(repr(v) for v in x[:n])
            return f"{len(x)} ({head}{', ...' if len(x) > n else ''})"

        parts = [f"name={self.name!r}", f"monitor={self.monitor!r}", f"model={self.model!r}"]
        parts += [f"variables={self.variables!r}", f"space={self.space!r}", f"labels={many(self.labels)}"]
        if self.channel_type is not None:
            parts.append(f"channel_type={self.channel_type!r}")
        parts += [f"period={self.period!r}", f"units={self.units!r}", f"time_units={self.time_units!r}"]
        if self.positions is not None:
            parts.append(f"positions={len(self.positions)} x 3 mm")
        return f"OutputInfo({', '.join(parts)})"

    def __pdoc__(self, **kwargs):
        """The short :meth:`__repr__` in Equinox's pretty printing (``print(sol)``), not every label and position."""
        try:
            import wadler_lindig
        except ImportError:  # pragma: no cover - Equinox's printer, absent: repr() is used
            return None
        return wadler_lindig.TextDoc(repr(self))

    def axis_labels(self, n: int) -> list:
        """The ``n`` labels of axis 2: ``labels``, else the indices ``0 .. n-1``."""
        return list(self.labels) if self.labels is not None else list(range(n))


# ------------------------------------------------------------------------------------------------ metadata


def describe_outputs(net: Any, monitors: Any, dt: float) -> tuple[OutputInfo, ...]:
    """One :class:`OutputInfo` per monitor of `monitors` (a monitor or a dict/list/tuple of them), in the order of
    ``jax.tree.leaves`` (that of ``Solution.ys``), for a simulation of `net` with step `dt` ms."""
    with_paths, _ = jax.tree_util.tree_flatten_with_path(monitors, is_leaf=lambda x: isinstance(x, AbstractMonitor))
    return tuple(describe_monitor(net, mon, dt, path_name(path, mon)) for path, mon in with_paths)


def path_name(path: Sequence, monitor: AbstractMonitor) -> str:
    """A monitor's output name from its path in ``monitors``: dict keys and list indices joined by ``.``."""
    parts = []
    for p in path:
        for attr in ("key", "idx", "name"):
            if hasattr(p, attr):
                parts.append(str(getattr(p, attr)))
                break
    return ".".join(parts) if parts else type(monitor).__name__.lower()


def describe_monitor(net: Any, mon: AbstractMonitor, dt: float, name: str) -> OutputInfo:
    """The :class:`OutputInfo` of the output of `mon` in a simulation of `net` (step `dt` ms), named `name`."""
    model = net.model
    svars = tuple(model.state_variables)
    variables = tuple(svars[i] for i in mon.voi_indices(svars))
    units = None
    stated = getattr(model, "state_variable_units", None)
    if isinstance(stated, dict) and isinstance(mon, STATE_MONITORS):
        units = tuple(None if stated.get(v) is None else str(stated[v]) for v in variables)
    common = dict(name=name, monitor=type(mon).__name__, model=type(model).__name__, variables=variables)
    common.update(period=float(mon.istep(dt) * dt), units=units)
    if not isinstance(mon, AbstractProjection):
        return OutputInfo(space="region", labels=net.connectome.labels, **common)
    sensors = mon.sensors
    kind = next((k for cls, k in SENSOR_TYPES.items() if isinstance(mon, cls)), None)
    if sensors is None:
        return OutputInfo(space="channel", channel_type=kind, **common)
    return OutputInfo(
        space="channel",
        labels=tuple(sensors.labels),
        channel_type=kind,
        positions=_rows(sensors.positions),
        orientations=_rows(sensors.orientations),
        **common,
    )


def _rows(x) -> tuple[tuple[float, ...], ...] | None:
    """A concrete ``(n, 3)`` array as a tuple of float triples (hashable); ``None`` for None or a traced array."""
    if x is None or not is_concrete(x):
        return None
    return tuple(tuple(float(v) for v in row) for row in np.asarray(x, dtype=np.float64))


# ------------------------------------------------------------------------------------------------ selection


def output_of(sol: Any, which: Any = None, caller: str = "Solution") -> tuple[OutputInfo, np.ndarray, np.ndarray]:
    """``(info, ts, ys)`` of one output of `sol` as NumPy arrays: `which` is its name (a key of ``monitors``, a list
    index) or ``None`` when there is only one."""
    infos = tuple(getattr(sol, "outputs", ()) or ())
    ts_leaves, ys_leaves = jax.tree.leaves(sol.ts), jax.tree.leaves(sol.ys)
    if not infos or len(infos) != len(ys_leaves):
        raise ValueError(
            f"{caller}: this Solution carries no description of its outputs (labels, variables); only those returned "
            "by vbtjax.simulate do."
        )
    names = [i.name for i in infos]
    if which is None:
        if len(infos) > 1:
            raise ValueError(f"{caller}: the Solution has {len(infos)} outputs {names}; choose one with which=NAME.")
        k = 0
    elif str(which) in names:
        k = names.index(str(which))
    else:
        raise ValueError(f"{caller}: no output named {which!r}; the Solution has {names}.")
    info, ts, ys = infos[k], np.asarray(ts_leaves[k]), np.asarray(ys_leaves[k])
    if ys.ndim != 3 or ts.shape != ys.shape[:1]:
        raise ValueError(
            f"{caller}: output {info.name!r} has shape {ys.shape} (times {ts.shape}); expected (T, variables, "
            f"{info.space}s). A batched Solution (from jax.vmap or a sweep) holds many simulations: take one first, "
            "e.g. jax.tree.map(lambda x: x[0], sol)."
        )
    return info, ts, ys


def _variable_indices(info: OutputInfo, variable: Any, caller: str) -> list[int]:
    """Indices into ``info.variables`` of `variable`: a name or index, a sequence of them, or ``None`` (all)."""
    if variable is None:
        return list(range(len(info.variables)))
    items = [variable] if isinstance(variable, str | int | np.integer) else list(variable)
    out = []
    for v in items:
        if isinstance(v, str):
            if v not in info.variables:
                raise ValueError(f"{caller}: output {info.name!r} records {info.variables}, not {v!r}.")
            out.append(info.variables.index(v))
        elif (
            isinstance(v, int | np.integer)
            and not isinstance(v, bool)
            and -len(info.variables) <= v < len(info.variables)
        ):
            out.append(int(v) % len(info.variables))
        else:
            raise ValueError(f"{caller}: variable {v!r} is not one of {info.variables} (names or indices).")
    return out


def _require(module: str, extra: str, caller: str):
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"{caller} needs the optional dependency {module!r}, which is not installed: pip install {extra}"
        ) from err


# ------------------------------------------------------------------------------------------------ xarray


def to_xarray(sol: Any, which: Any = None):
    """The outputs of a :class:`~vbtjax.Solution` as xarray objects.

    - One output (or `which` naming one): an ``xarray.DataArray`` named after it, dims ``("time", "variable",
      "region")`` or ``("time", "variable", "channel")``; coordinates ``time`` (ms after t0, ``attrs["units"] =
      "ms"``), ``variable`` (the state-variable names; a ``units`` coordinate along it where the model states units),
      ``region``/``channel`` (the labels, else indices ``0 .. n-1``), and for sensors ``x``, ``y``, ``z`` (mm) and
      ``channel_type``; attrs ``dt`` and ``period`` (ms), ``model``, ``monitor``, ``space``, ``time_units``.
    - Several outputs and ``which=None``: an ``xarray.Dataset`` with one data variable per output; each has its own
      ``time_NAME``, ``variable_NAME`` and ``channel_NAME`` dims (sampling and variables differ between monitors),
      while ``region`` is shared.

    ``da.sel(region="rA1", variable="r")`` then selects by label. Attributes are strings and numbers only, so the
    result writes to netCDF (``to_netcdf``).
    """
    xr = _require("xarray", "xarray", "to_xarray")
    infos = tuple(getattr(sol, "outputs", ()) or ())
    if which is None and len(infos) > 1:
        arrays = {info.name: _data_array(xr, sol, info, info.name, suffix=True) for info in infos}
        attrs = {"dt": float(sol.dt), "n_steps": int(sol.n_steps), "model": infos[0].model, "time_units": "ms"}
        return xr.Dataset(arrays, attrs=attrs)
    info, _, _ = output_of(sol, which, "to_xarray")
    return _data_array(xr, sol, info, info.name, suffix=False)


def _data_array(xr, sol: Any, info: OutputInfo, which: str, suffix: bool):
    _, ts, ys = output_of(sol, which, "to_xarray")
    dim = lambda d: f"{d}_{info.name}" if suffix and d != "region" else d
    t, v, s = dim("time"), dim("variable"), dim(info.space)
    coords: dict[str, Any] = {
        t: (t, ts, {"units": info.time_units, "long_name": "time after t0"}),
        v: (v, list(info.variables), {"long_name": "state variable"}),
        s: (s, info.axis_labels(ys.shape[2]), {"long_name": f"{info.space} label"}),
    }
    if info.units is not None:
        coords[f"units_{info.name}" if suffix else "units"] = (v, ["" if u is None else u for u in info.units])
    if info.positions is not None:
        pos = np.asarray(info.positions)
        for k, axis in enumerate("xyz"):
            name = f"{axis}_{info.name}" if suffix else axis
            coords[name] = (s, pos[:, k], {"units": "mm", "long_name": f"sensor position, {axis}"})
    attrs = {"dt": float(sol.dt), "period": info.period, "model": info.model, "monitor": info.monitor}
    attrs.update(space=info.space, time_units=info.time_units, channel_type=info.channel_type)
    attrs = {k: val for k, val in attrs.items() if val is not None}
    return xr.DataArray(ys, dims=(t, v, s), coords=coords, name=info.name, attrs=attrs)


# ------------------------------------------------------------------------------------------------ MNE


def to_mne(
    sol: Any,
    which: Any = None,
    *,
    variable: Any = None,
    scale: float | None = None,
    ch_type: str | None = None,
    coord_frame: str = "head",
    position_unit: float = 1e-3,
):
    """An EEG, MEG or SEEG output of a :class:`~vbtjax.Solution` as an ``mne.io.RawArray``.

    **Arguments:**
    - `which`: the output's name (a key of ``monitors``); ``None`` when there is only one.
    - `variable`: the projected state variable (name or index), needed when the monitor recorded several (a Raw is
      one signal per channel).
    - `scale`: factor from the output to MNE's units, volts (EEG, SEEG) or tesla (MEG). Simulated sensor signals are
      in arbitrary units (model units times the gain's); the default :data:`MNE_SCALE` reads them as microvolts
      (EEG, SEEG) or femtotesla (MEG). ``scale=1.0`` keeps the values.
    - `ch_type`: MNE channel type; default ``"eeg"``, ``"seeg"``, or ``"mag"`` for MEG (``"grad"`` for planar
      gradiometers; SEEG also takes ``"ecog"`` or ``"dbs"``).
    - `coord_frame`: MNE coordinate frame of the sensor positions (``"head"``: they are taken as head coordinates as
      they are, no transformation; ``"mri"`` for positions in the MRI's frame).
    - `position_unit`: metres per unit of the sensors' positions (``1e-3``: vbtjax's sensors are in mm; e.g. 0.09 for
      the unit vectors of ``eeg_unitvector_62``).

    The Raw's ``info["sfreq"]`` is ``1000 / period`` Hz; its channels are named after the sensors' labels (else
    ``"EEG 001"``, ...). EEG and SEEG positions go to a montage (``mne.channels.make_dig_montage``, in metres);
    MEG positions and orientations (coil normals) to each channel's ``loc`` in the device frame, with an identity
    device-to-head transform. MNE's times start at 0: ``raw.times[k]`` is ``ts[k] - ts[0]``, and ``ts[0]`` (a
    projection's samples are stamped at the middle of their window) is written in ``info["description"]``.
    Raises ``ValueError`` for a region-level output (record through a sensor monitor).
    """
    info, ts, ys = output_of(sol, which, "to_mne")
    kind = info.channel_type
    if info.space != "channel" or kind not in MNE_SCALE:
        raise ValueError(
            f"to_mne: output {info.name!r} ({info.monitor} monitor) holds {info.space}-level signals, not EEG/MEG/SEEG "
            "sensors; record through a sensor monitor, e.g. simulate(..., monitors={'eeg': "
            "vbt.monitors.EEG.from_tvb()}) or vbt.monitors.EEG(gain, sensors=vbt.sensors.tvb_sensors('eeg')), and "
            "export that output; region-level series go to to_xarray() or plot()."
        )
    ks = _variable_indices(info, variable, "to_mne")
    if len(ks) != 1:
        raise ValueError(
            f"to_mne: output {info.name!r} holds {len(info.variables)} projected variables {info.variables}; choose "
            f"one: to_mne(variable={info.variables[0]!r}) (or record one: variables_of_interest=(...,))."
        )
    ch_type = ch_type or MNE_TYPES[kind][0]
    if ch_type not in MNE_TYPES[kind]:
        raise ValueError(f"to_mne: a {kind} output takes ch_type in {MNE_TYPES[kind]}, got {ch_type!r}.")
    mne = _require("mne", '"vbtjax[io]" (or: pip install mne)', "to_mne")
    scale = MNE_SCALE[kind] if scale is None else float(scale)
    n = ys.shape[2]
    names = list(info.labels) if info.labels is not None else [f"{kind.upper()} {i + 1:03d}" for i in range(n)]
    data = np.asarray(ys[:, ks[0], :], dtype=np.float64).T * scale
    raw = mne.io.RawArray(data, mne.create_info(names, 1000.0 / info.period, ch_type), verbose=False)
    if info.positions is not None:
        pos = np.asarray(info.positions, dtype=np.float64) * position_unit
        if kind == "meg":
            _meg_locations(mne, raw, pos, info.orientations)
        else:
            montage = mne.channels.make_dig_montage(ch_pos=dict(zip(names, pos, strict=True)), coord_frame=coord_frame)
            raw.set_montage(montage, verbose=False)
    unit = "T" if kind == "meg" else "V"
    raw.info["description"] = (
        f"vbtjax simulation: {info.model}, {info.monitor} output {info.name!r}, variable {info.variables[ks[0]]!r}; "
        f"sample k at {ts[0]:g} + k * {info.period:g} ms after t0; values = output * {scale:g} {unit}"
    )
    return raw


def _meg_locations(mne, raw, pos: np.ndarray, orientations) -> None:
    """MEG coil positions (m) and normals into each channel's ``loc`` (device frame; identity device-to-head)."""
    ori = np.zeros_like(pos) if orientations is None else np.asarray(orientations, dtype=np.float64)
    for ch, p, o in zip(raw.info["chs"], pos, ori, strict=True):
        norm = float(np.linalg.norm(o))
        ez = o / norm if norm > 0 else np.array([0.0, 0.0, 1.0])
        helper = np.array([1.0, 0.0, 0.0]) if abs(ez[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        ex = np.cross(helper, ez)
        ex /= np.linalg.norm(ex)
        ch["loc"][:] = np.concatenate([p, ex, np.cross(ez, ex), ez])
    raw.info["dev_head_t"] = mne.transforms.Transform("meg", "head")


# ------------------------------------------------------------------------------------------------ plotting


def plot(
    sol: Any,
    which: Any = None,
    *,
    select: Any = None,
    variable: Any = None,
    ax: Any = None,
    title: str | None = None,
    max_traces: int = PLOT_MAX_TRACES,
):
    """Time series of one output of a :class:`~vbtjax.Solution`: one panel per recorded variable, one trace per
    chosen region or channel, labelled in a legend; returns the ``matplotlib.figure.Figure``.

    **Arguments:**
    - `which`: the output's name (a key of ``monitors``); ``None`` when there is only one.
    - `select`: the regions or channels to draw: labels or indices (one or a sequence); default: all of them up to
      `max_traces`, else `max_traces` of them evenly spread (the title says how many).
    - `variable`: the variable(s) to draw (names or indices); default all, one panel each.
    - `ax`: a matplotlib ``Axes`` to draw into (one variable only); default: a new figure from ``pyplot``, so it
      shows in Jupyter and with ``plt.show()``. The backend is left as it is (``matplotlib.use`` is never called).
    - `title`: the title (default: the model, the monitor and the output's name).

    The x axis is the time in ms after t0, the y axis the variable (with its unit where known).
    """
    info, ts, ys = output_of(sol, which, "plot")
    ks = _variable_indices(info, variable, "plot")
    n = ys.shape[2]
    labels = info.axis_labels(n)
    cols = _trace_indices(info, labels, select, max_traces)
    if ax is None:
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(
            len(ks), 1, sharex=True, squeeze=False, figsize=(9.0, 1.0 + 2.4 * len(ks)), layout="constrained"
        )
        axes = list(axes[:, 0])
    else:
        if len(ks) != 1:
            raise ValueError(f"plot: ax= takes one variable; output {info.name!r} records {info.variables}.")
        axes, fig = [ax], ax.get_figure()
    name = {"region": "region", "channel": f"{(info.channel_type or '').upper()} channel".strip()}[info.space]
    for a, k in zip(axes, ks, strict=True):
        for c in cols:
            text = str(labels[c]) if info.labels is not None else f"{name} {c}"
            a.plot(ts, ys[:, k, c], lw=0.8, label=text)
        unit = None if info.units is None else info.units[k]
        a.set_ylabel(info.variables[k] + (f" ({unit})" if unit else ""))
    axes[0].legend(title=f"{name}s", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    axes[-1].set_xlabel(f"time ({info.time_units})")
    if title is None:
        shown = f", {len(cols)} of {n} {name}s" if len(cols) < n else ""
        title = f"{info.model}: {info.monitor} output {info.name!r}{shown}"
    axes[0].set_title(title)
    return fig


def _trace_indices(info: OutputInfo, labels: list, select: Any, max_traces: int) -> list[int]:
    """Indices into axis 2 of the traces :func:`plot` draws (see its `select`)."""
    n = len(labels)
    if select is None:
        if n <= max_traces:
            return list(range(n))
        return [int(i) for i in np.unique(np.linspace(0, n - 1, max_traces).round().astype(int))]
    items = [select] if isinstance(select, str | int | np.integer) else list(select)
    out = []
    for s in items:
        if isinstance(s, str) and info.labels is not None and s in info.labels:
            out.append(info.labels.index(s))
        elif isinstance(s, int | np.integer) and not isinstance(s, bool) and -n <= s < n:
            out.append(int(s) % n)
        else:
            known = f"labels such as {list(info.labels[:5])} or " if info.labels is not None else ""
            raise ValueError(f"plot: {s!r} is not one of the {n} {info.space}s of {info.name!r} ({known}indices).")
    return out
