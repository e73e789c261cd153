"""Real SEEG recordings: reading clinical files, bad channels, montages, and the gain of a recording's channels.

:class:`SEEGRecording` holds SEEG signals (contacts x samples, in the unit of the file they come from) with their
sampling rate, channel names, channels marked bad and, optionally, contact positions (mm).
:func:`read_seeg` reads one from vbtjax's ``.npz`` or, through MNE-Python (``pip install "vbtjax[io]"``), from EDF,
BDF, BrainVision and FIF files; inside a BIDS-iEEG dataset it also reads the ``channels.tsv`` (types, bad channels)
and ``electrodes.tsv`` (positions) sidecars (:func:`read_bids_ieeg` finds the file from its BIDS entities).

Montages: :func:`bipolar` turns monopolar contacts into bipolar channels ``"A1-A2"`` (consecutive contacts of one
electrode); :func:`channel_gain` gives the point-source gain of monopolar or bipolar channels (a bipolar channel's
row is the difference of its two contacts' rows), so that a bipolar channel of independent region sources has power
``sum_i (G_Xi - G_Yi)^2 P_i``. :func:`detect_bad_channels` flags flat, non-finite and outlying channels.

Electrode names: a contact label is an electrode name followed by the contact number (``"TB'12"``: electrode
``"TB'"``, contact 12; ``"a01"``: electrode ``"a"``, contact 1). Electrode names are compared exactly (case and
primes included: ``"A'"`` is the left-hemisphere twin of ``"A"``).
"""

from __future__ import annotations

import copy
import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..files import FileReadError, read_json, read_npz, write_npz
from .sensors import Sensors, seeg_gain_point_source

__all__ = [
    "SEEGRecording",
    "read_seeg",
    "read_bids_ieeg",
    "sensors_from_recording",
    "split_contact",
    "split_bipolar",
    "is_bipolar",
    "bipolar",
    "channel_gain",
    "detect_bad_channels",
    "READERS",
    "SIGNAL_TYPES",
]

READERS: dict[str, str] = {
    ".npz": "npz",
    ".edf": "EDF",
    ".bdf": "BDF",
    ".vhdr": "BrainVision",
    ".fif": "FIF",
    ".fif.gz": "FIF",
}
"""File extensions :func:`read_seeg` reads, and the format each is read as."""

SIGNAL_TYPES: tuple[str, ...] = ("seeg", "ecog", "eeg")
"""MNE channel types kept as brain signals by :func:`read_seeg`; other channels (stim, ECG, EMG, misc ...) are
dropped. Files without channel types (EDF/BDF without a type prefix in the labels, BrainVision) read every voltage
channel as EEG: name the contacts with ``channels=`` to leave out an ECG recorded in volts."""

_INSTALL = 'pip install "vbtjax[io]"'
_FLAT_RATIO = 1e-6  # a channel whose sd is below this fraction of the median sd is flat
_UNIT_TO_MM = {"mm": 1.0, "cm": 10.0, "m": 1000.0}
_VOLTS = {"V", "mV", "uV", "µV", "μV", "nV"}


# ---------------------------------------------------------------------------------------------------- recording


def _names(value: Any, what: str) -> list[str]:
    if isinstance(value, str | bytes):
        raise ValueError(f"{what}: give a list of channel names, not the single string {value!r}.")
    return [str(v) for v in value]


def _sfreq(value: Any) -> float:
    """The sampling rate as a positive finite float; a number (or a one-element real array), nothing else."""
    arr = np.asarray(value) if not isinstance(value, str | bytes) else None
    if arr is None or arr.size != 1 or arr.dtype.kind not in "iuf":
        raise ValueError(
            f"SEEGRecording: sfreq must be one positive number of Hz, got {value!r} ({type(value).__name__})."
        )
    sfreq = float(arr.reshape(()))
    if not (np.isfinite(sfreq) and sfreq > 0):
        raise ValueError(f"SEEGRecording: sfreq must be a positive number of Hz, got {sfreq}.")
    return sfreq


def _signal(value: Any) -> np.ndarray:
    """`data` as float32, refusing complex values (a cast would drop the imaginary part) and non-numbers."""
    try:
        arr = np.asarray(value)
    except ValueError:
        raise ValueError("SEEGRecording: data must be a rectangular (contacts, samples) array.") from None
    if arr.dtype.kind == "c":
        raise ValueError(f"SEEGRecording: data is complex ({arr.dtype}); give real signals (e.g. np.real or np.abs).")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"SEEGRecording: data is not numeric (its values are of type {arr.dtype}).")
    return arr.astype(np.float32, copy=False)


@dataclass
class SEEGRecording:
    """SEEG signals.

    - `data`: ``(contacts, samples)`` float32, in the unit of the source (volts for files read through MNE; see
      ``meta["unit"]``).
    - `sfreq`: sampling rate, Hz (> 0).
    - `ch_names`: one name per row of `data`.
    - `meta`: JSON-serialisable provenance (source file, format, unit, ...).
    - `bads`: names of channels marked bad (a subset of `ch_names`; kept in the data, see :meth:`drop_bads`).
    - `positions`: optional ``(contacts, 3)`` contact positions, mm (NaN where unknown), e.g. from a BIDS
      ``electrodes.tsv``.

    Stored as an ``.npz`` (no pickle) with keys ``data``, ``sfreq``, ``ch_names``, ``meta_json`` and, optionally,
    ``bads`` and ``positions`` (files without them load with no bads and no positions).
    """

    data: np.ndarray
    sfreq: float
    ch_names: list[str]
    meta: dict[str, Any] = field(default_factory=dict)
    bads: list[str] = field(default_factory=list)
    positions: np.ndarray | None = None

    def __post_init__(self):
        self.data = _signal(self.data)
        self.ch_names = _names(self.ch_names, "SEEGRecording: ch_names")
        if self.data.ndim != 2:
            raise ValueError(f"SEEGRecording: data has shape {self.data.shape}; expected (contacts, samples).")
        if len(self.ch_names) != self.data.shape[0]:
            raise ValueError(
                f"SEEGRecording: {len(self.ch_names)} ch_names for {self.data.shape[0]} contacts (rows of data)."
            )
        self.sfreq = _sfreq(self.sfreq)
        dup = sorted({c for c in self.ch_names if self.ch_names.count(c) > 1})
        if dup:
            raise ValueError(f"SEEGRecording: channel names {dup} occur more than once; give unique ch_names.")
        self.bads = list(dict.fromkeys(_names(self.bads, "SEEGRecording: bads")))
        unknown = [b for b in self.bads if b not in set(self.ch_names)]
        if unknown:
            raise ValueError(f"SEEGRecording: bads {unknown} are not in ch_names; mark only channels of the data.")
        if self.positions is not None:
            pos = np.asarray(self.positions)
            if pos.dtype.kind not in "iuf":
                raise ValueError(f"SEEGRecording: positions must be real numbers (mm), got values of type {pos.dtype}.")
            self.positions = pos.astype(float)
            if self.positions.shape != (len(self.ch_names), 3):
                raise ValueError(
                    f"SEEGRecording: positions has shape {self.positions.shape}; expected ({len(self.ch_names)}, 3) "
                    "(x, y, z in mm per channel, NaN where unknown) or None."
                )

    # ------------------------------------------------------------------ properties

    @property
    def n_samples(self) -> int:
        """Number of samples per channel."""
        return self.data.shape[1]

    @property
    def duration(self) -> float:
        """Length of the recording, s (``samples / sfreq``)."""
        return self.n_samples / self.sfreq

    # ------------------------------------------------------------------ selections

    def _replace(self, rows: list[int], data: np.ndarray | None = None, **meta: Any) -> SEEGRecording:
        names = [self.ch_names[i] for i in rows]
        return SEEGRecording(
            self.data[rows] if data is None else data,
            self.sfreq,
            names,
            {**copy.deepcopy(self.meta), **meta},
            [b for b in self.bads if b in set(names)],
            None if self.positions is None else self.positions[rows],
        )

    def pick(self, names: Any) -> SEEGRecording:
        """A new recording with the channels `names` (a list of channel names), in that order."""
        names = _names(names, "SEEGRecording.pick")
        unknown = [n for n in names if n not in set(self.ch_names)]
        if unknown:
            raise ValueError(
                f"SEEGRecording.pick: channels {unknown} are not in the recording ({self.ch_names[:8]}...)."
            )
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"SEEGRecording.pick: channels {dup} are named more than once; name each once.")
        index = {c: i for i, c in enumerate(self.ch_names)}
        return self._replace([index[n] for n in names])

    def drop_bads(self) -> SEEGRecording:
        """A new recording without the channels in :attr:`bads`."""
        return self.pick([c for c in self.ch_names if c not in set(self.bads)])

    def crop(self, tmin_s: float = 0.0, tmax_s: float | None = None) -> SEEGRecording:
        """A new recording of the samples at times ``tmin_s <= t < tmax_s`` (s from the first sample; `tmax_s`
        ``None``: to the end). ``meta["t0_s"]`` accumulates the start time in the original recording."""
        end = self.duration if tmax_s is None else float(tmax_s)
        tol = 1e-6 / self.sfreq
        if not (0.0 <= tmin_s < end <= self.duration + tol):
            raise ValueError(
                f"SEEGRecording.crop: need 0 <= tmin_s < tmax_s <= duration ({self.duration:g} s), got tmin_s={tmin_s}"
                f", tmax_s={tmax_s}."
            )
        start = math.ceil(tmin_s * self.sfreq - 1e-6)
        stop = min(math.ceil(end * self.sfreq - 1e-6), self.n_samples)
        if stop <= start:
            raise ValueError(
                f"SEEGRecording.crop: [{tmin_s}, {end}) s holds no sample at {self.sfreq:g} Hz; widen the window."
            )
        rows = list(range(len(self.ch_names)))
        t0 = float(self.meta.get("t0_s", 0.0)) + start / self.sfreq
        return self._replace(rows, self.data[:, start:stop], t0_s=t0)

    # ------------------------------------------------------------------ files

    @classmethod
    def load(cls, path: str | Path) -> SEEGRecording:
        """Read the ``.npz`` written by :meth:`save`. A damaged or hostile file (corrupt or truncated data, arrays
        declaring more than fits, pickles, ``sfreq`` that is not one number, complex data, a ``meta_json`` that is
        not a JSON object) raises :class:`vbtjax.files.FileReadError` naming the file and the reason."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"SEEGRecording.load: {path} does not exist.")
        what = f"SEEGRecording.load: {path}"
        z = read_npz(path, keys=_NPZ_KEYS, what=what)
        missing = [k for k in ("data", "sfreq", "ch_names") if k not in z]
        if missing:
            raise FileReadError(f"{what}: missing keys {missing}; an SEEG file holds data, sfreq and ch_names.")
        meta: Any = {}
        if "meta_json" in z:
            text = z["meta_json"]
            if text.dtype.kind != "U" or text.size != 1:
                raise FileReadError(f"{what}: meta_json must be one string of JSON, got {text.dtype} {text.shape}.")
            meta = read_json(str(text.reshape(())).encode("utf-8"), what=f"{what}: meta_json")
            if not isinstance(meta, dict):
                raise FileReadError(f"{what}: meta_json holds a {type(meta).__name__}, not a JSON object.")
        names = {k: _strings(z[k], f"{what}: {k}") for k in ("ch_names", "bads") if k in z}
        try:
            return cls(z["data"], z["sfreq"], names["ch_names"], meta, names.get("bads", []), z.get("positions"))
        except ValueError as e:
            raise FileReadError(f"{what}: {e}") from None

    def save(self, path: str | Path) -> Path:
        """Write the recording as a compressed ``.npz`` (see the class docstring), atomically: a reader or a kill
        mid-write finds the old file or the new one. A `path` without the ``.npz`` suffix gets it (as NumPy does).
        Returns the path written."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        extra = {} if self.positions is None else {"positions": self.positions}
        arrays = {
            "data": self.data,
            "sfreq": np.asarray(self.sfreq),
            "ch_names": np.asarray(self.ch_names, dtype=str),
            "meta_json": np.asarray(json.dumps(self.meta)),
            "bads": np.asarray(self.bads, dtype=str),
            **extra,
        }
        return write_npz(path, arrays, compressed=True)


_NPZ_KEYS = ("data", "sfreq", "ch_names", "meta_json", "bads", "positions")


def _strings(arr: np.ndarray, what: str) -> list[str]:
    """Channel names from a 1-D string array of an ``.npz`` (an empty array of any type: no names)."""
    if arr.size == 0:
        return []
    if arr.ndim != 1 or arr.dtype.kind not in "US":
        raise FileReadError(f"{what} must be a 1-D array of strings, got {arr.dtype} of shape {arr.shape}.")
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in arr.tolist()]


# ---------------------------------------------------------------------------------------------------- reading


def _format(path: Path) -> tuple[str, str]:
    name = path.name.lower()
    for ext in sorted(READERS, key=len, reverse=True):
        if name.endswith(ext):
            return ext, READERS[ext]
    hint = " (BrainVision: give the .vhdr header file)" if name.endswith((".vmrk", ".eeg")) else ""
    raise ValueError(
        f"read_seeg: cannot read {path.name!r}{hint}; supported extensions are {', '.join(READERS)}. Convert the file "
        "(e.g. with MNE-Python) to one of these."
    )


def _mne():
    try:
        import mne
    except ImportError as e:
        raise ImportError(f"read_seeg: reading EDF/BDF/BrainVision/FIF files needs MNE-Python: {_INSTALL}") from e
    return mne


def _read_raw(path: Path, fmt: str):
    mne = _mne()
    kw = {"preload": True, "verbose": "warning"}
    try:
        if fmt == "EDF":
            return mne.io.read_raw_edf(path, infer_types=True, **kw)
        if fmt == "BDF":
            return mne.io.read_raw_bdf(path, infer_types=True, **kw)
        if fmt == "BrainVision":
            return mne.io.read_raw_brainvision(path, **kw)
        return mne.io.read_raw_fif(path, **kw)
    except (ImportError, FileNotFoundError):
        raise
    except Exception as e:  # noqa: BLE001 - MNE raises many types for damaged files
        raise FileReadError(f"read_seeg: {path} cannot be read as {fmt} ({type(e).__name__}: {e}).") from None


def read_seeg(path: str | Path, *, bads: list[str] | None = None, channels: list[str] | None = None) -> SEEGRecording:
    """Read an SEEG recording; the format follows the extension (:data:`READERS`).

    - ``.npz``: vbtjax's own format (:meth:`SEEGRecording.load`).
    - ``.edf``/``.bdf`` (EDF+/BDF+; a type prefix in a label, ``"SEEG A1"``, ``"ECG EKG"``, gives the channel's type
      and is removed from its name), ``.vhdr`` (BrainVision), ``.fif``/``.fif.gz``: read through MNE-Python
      (preloaded), data in volts (MNE's unit for voltage channels, whatever the file's unit: ``meta["unit"]`` is
      ``"V"``, ``meta["file_units"]`` the units in the file when MNE reports them). Channels whose type is not in
      :data:`SIGNAL_TYPES` are dropped (listed in ``meta["dropped"]``), and so are untyped channels without a voltage
      unit (a trigger) in a file whose other channels have one; the file's bad channels (FIF) are kept in ``.bads``.
    - A BIDS-iEEG file (``sub-<label>[_ses-...]..._ieeg.<ext>``) also reads its sidecars: ``*_channels.tsv`` (types
      override the file's; status ``bad`` adds to ``.bads``) and ``*_electrodes.tsv`` (positions, converted to mm
      from the unit of ``*_coordsystem.json``; ``n/a`` -> NaN).

    **Arguments:**

    - `bads`: channel names to mark bad in addition to the file's.
    - `channels`: read exactly these channels, in this order, whatever their type (default: every SEEG/ECoG/EEG
      channel).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"read_seeg: {path} does not exist.")
    if path.is_dir():
        raise ValueError(f"read_seeg: {path} is a folder; give the recording file (or use read_bids_ieeg).")
    _, fmt = _format(path)
    if fmt == "npz":
        rec = SEEGRecording.load(path)
        types = dict.fromkeys(rec.ch_names, "seeg")
    else:
        rec, types = _from_raw(_trim_padding(_read_raw(path, fmt)), path, fmt)
        bids = _bids_entities(path.name)
        if bids is not None and bids["suffix"] == "ieeg":
            rec, types = _apply_bids(rec, types, path, bids)
    return _select(rec, types, bads, channels, path)


def _trim_padding(raw: Any) -> Any:
    """The MNE ``raw`` without a trailing segment annotated ``BAD_ACQ_SKIP`` (how MNE marks the padding that EDF and
    BDF writers add to fill the last data record); the samples dropped are noted in ``raw.info["description"]``."""
    end = raw.n_times
    for ann in raw.annotations:
        if str(ann["description"]).upper().startswith("BAD_ACQ_SKIP"):
            start = int(round((ann["onset"] - raw.first_time) * raw.info["sfreq"]))
            stop = start + int(round(ann["duration"] * raw.info["sfreq"]))
            if 0 < start < end and stop >= raw.n_times - 1:
                end = start
    if end < raw.n_times:
        raw = raw.copy().crop(tmax=(end - 1) / raw.info["sfreq"], include_tmax=True)
        raw.info["description"] = f"{raw.info['description'] or ''} [vbtjax: trailing padding dropped]".strip()
    return raw


def _from_raw(raw: Any, path: Path, fmt: str) -> tuple[SEEGRecording, dict[str, str]]:
    names = list(raw.ch_names)
    types = dict(zip(names, raw.get_channel_types(), strict=True))
    orig = getattr(raw, "_orig_units", None)  # units in EDF/BrainVision headers, when MNE keeps them
    meta: dict[str, Any] = {"source": str(path), "format": fmt, "unit": "V"}
    if isinstance(orig, dict) and orig:
        units = meta["file_units"] = {str(k): str(v) for k, v in orig.items()}
        if any(u in _VOLTS for u in units.values()):  # a file that marks voltages: a channel without one is no signal
            types.update({c: "no voltage unit" for c, u in units.items() if u not in _VOLTS and types.get(c) == "eeg"})
    for key, name in (("highpass", "highpass_hz"), ("lowpass", "lowpass_hz")):
        value = raw.info.get(key)
        if value is not None and np.isfinite(value):
            meta[name] = float(value)
    bads = [b for b in raw.info["bads"] if b in set(names)]
    rec = SEEGRecording(raw.get_data(), raw.info["sfreq"], names, meta, bads)
    return rec, types


def _select(rec: SEEGRecording, types: dict[str, str], bads: Any, channels: Any, path: Path) -> SEEGRecording:
    extra = [] if bads is None else _names(bads, "read_seeg: bads")
    unknown = [b for b in extra if b not in set(rec.ch_names)]
    if unknown:
        raise ValueError(f"read_seeg: bads {unknown} are not channels of {path.name} ({rec.ch_names[:8]}...).")
    if channels is None:
        keep = [c for c in rec.ch_names if types.get(c, "eeg") in SIGNAL_TYPES]
        if not keep:
            raise ValueError(
                f"read_seeg: {path.name} holds no SEEG/ECoG/EEG channel (types: {sorted(set(types.values()))}); "
                "name the channels to read with channels=."
            )
    else:
        keep = _names(channels, "read_seeg: channels")
        missing = [c for c in keep if c not in set(rec.ch_names)]
        if missing:
            raise ValueError(f"read_seeg: channels {missing} are not in {path.name} ({rec.ch_names[:8]}...).")
    dropped = {c: types.get(c, "?") for c in rec.ch_names if c not in set(keep)}
    out = rec.pick(keep)
    if dropped and rec.meta.get("format") != "npz":
        out.meta["dropped"] = dropped
    out.bads = list(dict.fromkeys([*out.bads, *(b for b in extra if b in set(keep))]))
    return out


# ---------------------------------------------------------------------------------------------------- BIDS

_BIDS_NAME = re.compile(
    r"^(?P<entities>sub-[A-Za-z0-9]+(?:_[a-z]+-[A-Za-z0-9]+)*)_(?P<suffix>[A-Za-z0-9]+)(?P<ext>\..+)$"
)


def _bids_entities(name: str) -> dict[str, Any] | None:
    """``{"entities": {key: value}, "suffix": ..., "ext": ...}`` of a BIDS file name, or None."""
    m = _BIDS_NAME.match(name)
    if m is None:
        return None
    entities = dict(part.split("-", 1) for part in m.group("entities").split("_"))
    return {"entities": entities, "suffix": m.group("suffix"), "ext": m.group("ext").lower()}


def _same(a: str, b: str) -> bool:
    return a == b or (a.isdigit() and b.isdigit() and int(a) == int(b))


def _sidecar(data: Path, entities: dict[str, str], suffix: str, ext: str) -> Path | None:
    """The BIDS sidecar ``*_<suffix><ext>`` that applies to a file with `entities`: the nearest folder (the file's,
    then its parents up to the dataset root) holding candidates, whose entities all match (a ``space`` the file
    itself lacks is allowed), the most specific one."""
    folder = data.parent
    for _ in range(4):
        found = []
        for p in sorted(folder.glob(f"sub-*_{suffix}{ext}")):
            info = _bids_entities(p.name)
            if info is None or info["suffix"] != suffix:
                continue
            e = info["entities"]
            if all(_same(v, entities[k]) if k in entities else k == "space" for k, v in e.items()):
                found.append((sum(k in entities for k in e), p))
        if found:
            best = max(n for n, _ in found)
            top = [p for n, p in found if n == best]
            if len(top) > 1:
                raise ValueError(
                    f"read_seeg: several {suffix}{ext} files apply to {data.name}: {[p.name for p in top]}; keep one "
                    "(e.g. one coordinate space) in the BIDS folder."
                )
            return top[0]
        if (folder / "dataset_description.json").exists() or folder.parent == folder:
            return None
        folder = folder.parent
    return None


def _read_tsv(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
    except (UnicodeDecodeError, csv.Error, OSError) as e:
        raise FileReadError(f"read_seeg: {path} is not a readable UTF-8 TSV table ({type(e).__name__}: {e}).") from None
    header = set(rows[0]) if rows else set()
    missing = [c for c in columns if rows and c not in header]
    if missing:
        raise ValueError(f"read_seeg: {path.name} lacks the columns {missing}; a BIDS file has {list(columns)}.")
    return rows


def _apply_bids(
    rec: SEEGRecording, types: dict[str, str], path: Path, bids: dict[str, Any]
) -> tuple[SEEGRecording, dict[str, str]]:
    entities = bids["entities"]
    rec.meta["bids"] = dict(entities)
    channels_tsv = _sidecar(path, entities, "channels", ".tsv")
    if channels_tsv is not None:
        rec.meta["channels_tsv"] = channels_tsv.name
        types = dict(types)
        bads = list(rec.bads)
        for row in _read_tsv(channels_tsv, ("name", "type")):
            name = row["name"]
            if name not in types:
                continue
            types[name] = row["type"].strip().lower()
            if (row.get("status") or "").strip().lower() == "bad":
                bads.append(name)
        rec.bads = list(dict.fromkeys(bads))
    electrodes_tsv = _sidecar(path, entities, "electrodes", ".tsv")
    if electrodes_tsv is not None:
        rec.positions, note = _read_electrodes(electrodes_tsv, rec.ch_names)
        rec.meta.update(note)
    return rec, types


def _read_electrodes(path: Path, names: list[str]) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Positions (mm, NaN where unknown) of `names` from a BIDS ``electrodes.tsv`` and its ``coordsystem.json``."""
    note: dict[str, Any] = {"electrodes_tsv": path.name}
    coordsystem = _sidecar(path, _bids_entities(path.name)["entities"], "coordsystem", ".json")
    unit = None
    if coordsystem is not None:
        cs = read_json(coordsystem, what=f"read_seeg: {coordsystem}")
        if not isinstance(cs, dict):
            raise FileReadError(f"read_seeg: {coordsystem} holds a {type(cs).__name__}, not a JSON object.")
        unit = cs.get("iEEGCoordinateUnits")
        system = cs.get("iEEGCoordinateSystem")
        if system:
            note["coordinate_system"] = str(system)
    if unit in (None, "n/a"):
        unit = "mm"
        note["positions_unit_assumed"] = "mm (no iEEGCoordinateUnits in a coordsystem.json)"
    if unit not in _UNIT_TO_MM:
        note["positions_skipped"] = f"electrode coordinates in {unit!r}, not a length unit"
        return None, note
    if unit != "mm":
        note["positions_converted_from"] = unit
    note["positions_unit"] = "mm"
    table = {}
    for row in _read_tsv(path, ("name", "x", "y", "z")):
        try:
            xyz = [float("nan") if row[k].strip() in ("n/a", "") else float(row[k]) for k in "xyz"]
        except ValueError:
            raise ValueError(f"read_seeg: {path.name}, electrode {row['name']!r}: non-numeric x/y/z.") from None
        table[row["name"]] = xyz
    pos = np.array([table.get(n, [np.nan] * 3) for n in names], dtype=float) * _UNIT_TO_MM[unit]
    return pos, note


def read_bids_ieeg(
    bids_root: str | Path,
    subject: str,
    session: str | None = None,
    task: str | None = None,
    run: str | int | None = None,
    acquisition: str | None = None,
    *,
    bads: list[str] | None = None,
    channels: list[str] | None = None,
) -> SEEGRecording:
    """:func:`read_seeg` of the iEEG recording of a BIDS dataset at `bids_root` with these entities (``sub-``,
    ``ses-``, ``task-``, ``run-``, ``acq-`` values; None: any). Exactly one recording in a readable format must
    match."""
    root = Path(bids_root)
    if not root.is_dir():
        raise FileNotFoundError(f"read_bids_ieeg: bids_root {root} is not a folder.")
    given = {"sub": subject, "ses": session, "task": task, "run": run, "acq": acquisition}
    wanted = {k: str(v).removeprefix(f"{k}-") for k, v in given.items() if v is not None}
    folder = root / f"sub-{wanted['sub']}"
    if not folder.is_dir():
        raise FileNotFoundError(f"read_bids_ieeg: no subject folder sub-{wanted['sub']} in {root}; check subject=.")
    found = []
    for p in sorted(folder.glob("**/ieeg/*_ieeg.*")):
        info = _bids_entities(p.name)
        if info is None or info["ext"] not in READERS or info["ext"] == ".npz":
            continue
        if all(k in info["entities"] and _same(info["entities"][k], v) for k, v in wanted.items()):
            found.append(p)
    if not found:
        raise FileNotFoundError(
            f"read_bids_ieeg: no iEEG recording ({', '.join(e for e in READERS if e != '.npz')}) of {wanted} in "
            f"{folder}; check the entities."
        )
    if len(found) > 1:
        raise ValueError(
            f"read_bids_ieeg: {len(found)} recordings match {wanted}: {[p.name for p in found]}; give session=, "
            "task=, run= or acquisition= to choose one."
        )
    return read_seeg(found[0], bads=bads, channels=channels)


# ---------------------------------------------------------------------------------------------------- sensors


def sensors_from_recording(rec: SEEGRecording) -> Sensors:
    """:class:`~vbtjax.sensors.Sensors` of the recording's channels at ``rec.positions`` (mm; midpoints for bipolar
    channels). Every channel needs a finite position: pick those that have one first."""
    if rec.positions is None:
        why = rec.meta.get("positions_skipped", "the recording has no positions")
        raise ValueError(
            f"sensors_from_recording: {why}; read a BIDS-iEEG recording with an electrodes.tsv, or set "
            "rec.positions (channels x 3, mm)."
        )
    unknown = [c for c, p in zip(rec.ch_names, rec.positions, strict=True) if not np.all(np.isfinite(p))]
    if unknown:
        raise ValueError(
            f"sensors_from_recording: channels {unknown} have no position (NaN); drop them first, e.g. "
            "rec.pick([c for c in rec.ch_names if c not in unknown])."
        )
    return Sensors(labels=rec.ch_names, positions=rec.positions)


# ---------------------------------------------------------------------------------------------------- montages

_CONTACT = re.compile(r"^(?P<electrode>.*?)(?P<number>\d+)$")


def split_contact(label: str) -> tuple[str, int] | None:
    """``(electrode, contact number)`` of a contact label (``"TB'12"`` -> ``("TB'", 12)``, ``"a01"`` ->
    ``("a", 1)``), or None when the label is not an electrode name followed by a number."""
    m = _CONTACT.match(str(label).strip())
    if m is None or not m.group("electrode").strip():
        return None
    return m.group("electrode").strip(), int(m.group("number"))


def split_bipolar(name: str) -> tuple[str, str] | None:
    """``(X, Y)`` of a bipolar channel name ``"X-Y"`` whose two sides are contact labels, or None."""
    parts = str(name).split("-")
    for i in range(1, len(parts)):
        a, b = "-".join(parts[:i]), "-".join(parts[i:])
        if split_contact(a) is not None and split_contact(b) is not None:
            return a, b
    return None


def is_bipolar(rec: SEEGRecording | Any) -> bool:
    """Whether every channel of `rec` (a recording or a list of names) is a bipolar ``"X-Y"`` channel."""
    names = rec.ch_names if isinstance(rec, SEEGRecording) else _names(rec, "is_bipolar")
    return bool(names) and all(split_bipolar(n) is not None for n in names)


def bipolar(rec: SEEGRecording) -> SEEGRecording:
    """The bipolar montage of a monopolar recording: a channel ``"A1-A2"`` = ``A1 - A2`` for every two contacts of
    one electrode with consecutive numbers, both good (pairs with a bad contact, or across a missing number, are
    skipped; so are labels without a number). Channels come electrode by electrode (in order of first appearance),
    contacts ascending; positions are the midpoints; the result has no bads."""
    if is_bipolar(rec):
        raise ValueError("bipolar: the recording already is bipolar (channels 'X-Y'); give the monopolar contacts.")
    bad = set(rec.bads)
    electrodes: dict[str, dict[int, int]] = {}
    for i, name in enumerate(rec.ch_names):
        parsed = split_contact(name)
        if parsed is not None:
            electrodes.setdefault(parsed[0], {})[parsed[1]] = i
    pairs = []
    for contacts in electrodes.values():
        for n in sorted(contacts):
            a, b = contacts[n], contacts.get(n + 1)
            if b is not None and rec.ch_names[a] not in bad and rec.ch_names[b] not in bad:
                pairs.append((a, b))
    if not pairs:
        raise ValueError(
            "bipolar: no two good contacts of one electrode with consecutive numbers (labels like 'A1', 'A2'); "
            "check ch_names and bads."
        )
    ia, ib = (np.asarray(x) for x in zip(*pairs, strict=True))
    data = rec.data[ia].astype(np.float64) - rec.data[ib]
    names = [f"{rec.ch_names[a]}-{rec.ch_names[b]}" for a, b in pairs]
    pos = None if rec.positions is None else (rec.positions[ia] + rec.positions[ib]) / 2
    meta = {**copy.deepcopy(rec.meta), "montage": "bipolar"}
    return SEEGRecording(data, rec.sfreq, names, meta, [], pos)


def channel_gain(ch_names: Any, sensors: Sensors, centres: Any, *, min_distance: float = 1.0) -> jax.Array:
    """Point-source gain ``(channels, regions)`` (mm^-2, :func:`~vbtjax.sensors.seeg_gain_point_source`) of
    monopolar channels (a sensor label: that contact's row) and bipolar channels (``"X-Y"`` with X and Y sensor
    labels: row X minus row Y). `centres`: ``(regions, 3)`` region centres, mm, in the sensors' frame.
    Differentiable with respect to the positions."""
    names = _names(ch_names, "channel_gain: ch_names")
    index = {lb: i for i, lb in enumerate(sensors.labels)}
    plus, minus, unknown = [], [], []
    for name in names:
        pair = _sensor_pair(name, index)
        if pair is None:
            unknown.append(name)
        else:
            plus.append(index[pair[0]])
            minus.append(-1 if pair[1] is None else index[pair[1]])
    if unknown:
        raise ValueError(
            f"channel_gain: channels {unknown[:8]}{' ...' if len(unknown) > 8 else ''} are neither sensors nor pairs "
            "'X-Y' of sensors; name channels by sensor labels."
        )
    if not names:
        raise ValueError("channel_gain: ch_names is empty; give at least one channel.")
    gain = seeg_gain_point_source(sensors.positions, centres, min_distance=min_distance)
    plus, minus = np.asarray(plus), np.asarray(minus)
    ref = jnp.where(jnp.asarray(minus >= 0)[:, None], gain[np.maximum(minus, 0)], 0.0)
    return gain[plus] - ref


def _sensor_pair(name: str, index: dict[str, int]) -> tuple[str, str | None] | None:
    if name in index:
        return name, None
    parts = name.split("-")
    for i in range(1, len(parts)):
        a, b = "-".join(parts[:i]), "-".join(parts[i:])
        if a in index and b in index:
            return a, b
    return None


# ---------------------------------------------------------------------------------------------------- bad channels


def detect_bad_channels(rec: SEEGRecording, *, z: float | None = 5.0) -> list[str]:
    """Names of suspicious channels (`rec` is not modified), in channel order: channels with NaN or inf; flat ones
    (sd zero or below 1e-6 times the median sd); and those whose log variance is a robust outlier, ``|log var -
    median| / (1.4826 MAD) > z``, above or below, among the others (needs at least 3 of them). ``z=None`` skips the
    outlier test (in a seizure recording the channels that see the seizure are outliers by design)."""
    if z is not None and not (np.isfinite(z) and z > 0):
        raise ValueError(f"detect_bad_channels: z must be a positive number of robust sds, got {z}.")
    x = np.asarray(rec.data, dtype=np.float64)
    finite = np.all(np.isfinite(x), axis=1)
    sd = np.zeros(len(x))
    sd[finite] = np.std(x[finite], axis=1)
    ref = np.median(sd[finite]) if finite.any() else 0.0
    flat = finite & (sd <= _FLAT_RATIO * ref)
    bad = ~finite | flat
    ok = ~bad
    if z is not None and ok.sum() >= 3:
        lv = np.log(sd[ok] ** 2)
        med = np.median(lv)
        scale = 1.4826 * np.median(np.abs(lv - med))
        score = np.abs(lv - med) / max(scale, np.finfo(float).tiny)
        bad[np.flatnonzero(ok)[score > z]] = True
    return [c for c, b in zip(rec.ch_names, bad, strict=True) if b]
