"""Sensors (EEG, MEG, SEEG) and region-level gain (lead-field) matrices for the projection monitors.

A gain matrix maps region activity to sensor signals: ``signal[k] = sum_j gain[k, j] * x[j]``, shape
``(n_sensors, N)`` (row = sensor, column = region), as used by :class:`vbtjax.monitors.EEG`, ``MEG`` and ``SEEG``.

Sources of gain matrices:

- :func:`tvb_projection` loads a vertex-level projection matrix shipped by ``tvb-data`` (sensors x 16384 cortical
  vertices) and the matching region mapping (vertex -> region of the 76-region connectome);
  :func:`region_gain_from_surface` reduces it to sensors x regions.
- :func:`seeg_gain_point_source` computes an SEEG gain from contact positions and region centres (inverse-square
  point-source model).

Positions are in mm in the frame of the file they come from (``eeg_unitvector_62`` holds unit vectors).
"""

from __future__ import annotations

import importlib.resources
import os
from collections import Counter
from pathlib import Path
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._params import as_float_array, is_concrete
from ..files import FileReadError
from ._readers import ZipArchive, bunzip, read_file, read_npy, read_variables

__all__ = [
    "Sensors",
    "TvbProjection",
    "TVB_SENSOR_FILES",
    "TVB_PROJECTION_FILES",
    "tvb_sensors",
    "tvb_projection",
    "region_gain_from_surface",
    "seeg_gain_point_source",
]

TVB_SENSOR_FILES: dict[str, dict[int, str]] = {
    "eeg": {65: "eeg_brainstorm_65.txt", 62: "eeg_unitvector_62.txt.bz2"},
    "meg": {276: "meg_brainstorm_276.txt", 151: "meg_151.txt.bz2"},
    "seeg": {588: "seeg_588.txt", 39: "seeg_39.txt.bz2"},
}
"""Sensor files of ``tvb-data`` (``tvb_data/sensors/``) by kind and by the number in the file name; the first entry
of each kind is the default (TVB's monitors' defaults). ``seeg_39.txt.bz2`` holds 103 contacts on 10 electrodes
despite its name; ``eeg_unitvector_62`` holds unit vectors, not mm."""

TVB_PROJECTION_FILES: dict[str, dict[int, str]] = {
    "eeg": {65: "projection_eeg_65_surface_16k.npy", 62: "projection_eeg_62_surface_16k.mat"},
    "meg": {276: "projection_meg_276_surface_16k.npy"},
}
"""Projection (gain) matrices of ``tvb-data`` (``tvb_data/projectionMatrix/``), sensors x 16384 vertices of
``cortex_16384``, by kind and sensor count. ``tvb-data`` ships none for SEEG."""

_REGION_MAPPING_FILE = "regionMapping_16k_76.txt"


def _as_labels(value: Any) -> tuple[str, ...]:
    if isinstance(value, str | bytes):
        raise ValueError("Sensors: labels must be a sequence of sensor names (one per sensor), not a single string.")
    return tuple(str(v) for v in np.asarray(value, dtype=object).ravel())


def _real_float_array(value: Any) -> Any:
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        try:
            value = np.asarray(value)
        except ValueError:
            raise ValueError("Sensors: positions and orientations must be rectangular (n, 3) arrays.") from None
        dtype = value.dtype
    if jnp.issubdtype(dtype, jnp.complexfloating):
        raise ValueError(f"Sensors: positions and orientations must be real (mm), got {dtype}.")
    return as_float_array(value)


def _optional_float_array(value: Any) -> Any:
    return None if value is None else _real_float_array(value)


class Sensors(eqx.Module):
    """A set of sensors (EEG electrodes, MEG coils, SEEG contacts).

    **Arguments:**

    - `labels`: tuple of ``n`` distinct sensor names (static).
    - `positions`: ``(n, 3)`` positions, mm (in the frame of the head/brain model they belong to).
    - `orientations`: optional ``(n, 3)`` orientations (MEG coils), as given (not normalised).

    Value checks (finite) are skipped when the arrays are traced; shape checks always run.
    """

    labels: tuple[str, ...] = eqx.field(static=True, converter=_as_labels)
    positions: Float[Array, "n 3"] = eqx.field(converter=_real_float_array)
    orientations: Float[Array, "n 3"] | None = eqx.field(default=None, converter=_optional_float_array)

    def __check_init__(self):
        p = self.positions
        if p.ndim != 2 or p.shape[1] != 3 or p.shape[0] == 0:
            raise ValueError(f"Sensors: positions has shape {p.shape}; expected (n, 3) with n >= 1 (x, y, z in mm).")
        n = p.shape[0]
        if len(self.labels) != n:
            raise ValueError(f"Sensors: {len(self.labels)} labels for {n} positions; give one label per sensor.")
        dup = sorted(label for label, k in Counter(self.labels).items() if k > 1)
        if dup:
            raise ValueError(f"Sensors: the labels {dup[:8]} occur more than once; sensor labels must be unique.")
        if self.orientations is not None and self.orientations.shape != (n, 3):
            raise ValueError(f"Sensors: orientations has shape {self.orientations.shape}; expected ({n}, 3) or None.")
        for name in ("positions", "orientations"):
            v = getattr(self, name)
            if v is not None and is_concrete(v) and not bool(np.all(np.isfinite(np.asarray(v)))):
                raise ValueError(f"Sensors: {name} contains NaN or inf; give finite values.")

    @property
    def n_sensors(self) -> int:
        """Number of sensors ``n``."""
        return self.positions.shape[0]

    def index(self, label: str) -> int:
        """Position of the sensor named ``label``."""
        try:
            return self.labels.index(label)
        except ValueError:
            raise ValueError(f"Sensors.index: no sensor named {label!r}.") from None

    def subset(self, which: Any) -> Sensors:
        """The sensors selected by ``which``: indices, a boolean mask of length ``n``, or labels."""
        idx = self._indices(which)
        ori = None if self.orientations is None else self.orientations[idx]
        return Sensors(labels=[self.labels[i] for i in idx], positions=self.positions[idx], orientations=ori)

    def _indices(self, which: Any) -> np.ndarray:
        items = list(which) if not isinstance(which, np.ndarray | jax.Array) else which
        if isinstance(items, list) and items and all(isinstance(w, str) for w in items):
            return np.asarray([self.index(w) for w in items], dtype=np.int64)
        arr = np.asarray(items)
        if arr.dtype == bool:
            if arr.shape != (self.n_sensors,):
                raise ValueError(f"Sensors.subset: boolean mask has shape {arr.shape}; expected ({self.n_sensors},).")
            return np.flatnonzero(arr)
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise ValueError("Sensors.subset: give indices, a boolean mask or sensor labels.")
        arr = arr.astype(np.int64).ravel()
        if arr.size and (arr.min() < -self.n_sensors or arr.max() >= self.n_sensors):
            raise ValueError(f"Sensors.subset: index out of range for {self.n_sensors} sensors.")
        return arr % self.n_sensors

    # ------------------------------------------------------------------ files

    @classmethod
    def from_file(cls, path: str | os.PathLike, *, member: str | None = None) -> Sensors:
        """Read TVB's sensor text format: one sensor a line, ``name x y z`` (EEG, SEEG) or ``name x y z ox oy oz``
        (MEG: position and orientation), separated by spaces or tabs.

        ``path`` may be a plain text file, a ``.bz2``-compressed one, or a ``.zip`` holding one such file (name it
        with ``member`` when the zip holds several; only that member is read). Blank lines and lines starting with
        ``#`` are skipped. Text is read as UTF-8 (falling back to Latin-1). Every line must have the same number of
        values (3 or 6 numbers after the name); a malformed line raises ``ValueError`` naming its line number. A
        damaged file (corrupt zip or bzip2 data, more than 256 MiB of text) raises
        :class:`vbtjax.files.FileReadError` naming it.
        """
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"Sensors.from_file: {path} does not exist.")
        if path.is_dir():
            raise ValueError(f"Sensors.from_file: {path} is a folder; give the sensor file (.txt, .txt.bz2 or .zip).")
        if path.suffix.lower() == ".zip":
            name, data = _zip_member(path, member)
            source = f"{name} in {path}"
        else:
            if member is not None:
                raise ValueError("Sensors.from_file: member= is only used with .zip files.")
            name, source = path.name, str(path)
            data = read_file(path, f"Sensors.from_file: {path}")
        if name.lower().endswith(".bz2"):
            data = bunzip(data, f"Sensors.from_file: {source}")
        return cls._parse(_decode(data, source), source)

    @classmethod
    def _parse(cls, text: str, source: str) -> Sensors:
        labels, values = [], []
        width = None
        first = None
        for lineno, line in enumerate(text.splitlines(), start=1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            tokens = s.split()
            numbers = tokens[1:]
            if len(numbers) not in (3, 6):
                raise ValueError(
                    f"Sensors.from_file: {source}, line {lineno}: expected a name followed by 3 numbers (x y z) or "
                    f"6 numbers (x y z ox oy oz), got {len(tokens)} field(s): {s!r}."
                )
            try:
                row = [float(t) for t in numbers]
            except ValueError:
                raise ValueError(
                    f"Sensors.from_file: {source}, line {lineno}: non-numeric coordinate in {s!r}; expected "
                    "'name x y z' or 'name x y z ox oy oz'."
                ) from None
            if not all(np.isfinite(row)):
                raise ValueError(f"Sensors.from_file: {source}, line {lineno}: NaN or inf in {s!r}.")
            if width is None:
                width, first = len(row), lineno
            elif len(row) != width:
                raise ValueError(
                    f"Sensors.from_file: {source}, line {lineno}: {len(row)} numbers but line {first} has {width}; "
                    "all sensors must give positions only (3) or positions and orientations (6)."
                )
            labels.append(tokens[0])
            values.append(row)
        if not values:
            raise ValueError(f"Sensors.from_file: {source} holds no sensors.")
        arr = np.asarray(values, dtype=float)
        try:
            return cls(labels=labels, positions=arr[:, :3], orientations=arr[:, 3:] if width == 6 else None)
        except ValueError as e:
            raise FileReadError(f"Sensors.from_file: {source}: {e}") from None


def _decode(data: bytes, source: str) -> str:
    if b"\x00" in data:
        raise FileReadError(f"Sensors.from_file: {source} is not a text file (compressed? name it .bz2).")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _zip_member(path: Path, member: str | None) -> tuple[str, bytes]:
    """The name and bytes of the sensor file in the zip `path` (only that member is decompressed)."""
    with ZipArchive(path, f"Sensors.from_file: {path}") as zf:
        names = zf.names
        if member is None:
            candidates = [n for n in names if n.lower().endswith((".txt", ".txt.bz2"))]
            if len(candidates) != 1:
                listing = ", ".join(names) or "nothing"
                raise FileReadError(
                    f"Sensors.from_file: {path} must hold exactly one .txt or .txt.bz2 sensor file, or name one "
                    f"with member=...; it holds {listing}."
                )
            member = candidates[0]
        elif member not in names:
            raise FileReadError(f"Sensors.from_file: {path} has no member {member!r}; it holds {', '.join(names)}.")
        return member, zf.read(member)


# ---------------------------------------------------------------------- tvb-data


def _tvb_resource(folder: str, name: str, caller: str):
    try:
        base = importlib.resources.files("tvb_data")
    except ModuleNotFoundError:
        raise ImportError(
            f"{caller} needs the tvb-data package (TVB's data, GPL-3); install it with: pip install tvb-data"
        ) from None
    resource = base / folder / name
    if not resource.is_file():
        raise FileNotFoundError(
            f"{caller}: the installed tvb-data has no {folder}/{name}; reinstall it with: "
            "pip install --force-reinstall tvb-data"
        )
    return resource


def _pick_file(table: dict[str, dict[int, str]], kind: str, n: int | None, caller: str) -> tuple[int, str]:
    if kind not in TVB_SENSOR_FILES:
        raise ValueError(f"{caller}: unknown kind {kind!r}; use one of {', '.join(map(repr, TVB_SENSOR_FILES))}.")
    if kind not in table:
        raise ValueError(
            f"{caller}: tvb-data ships no {kind.upper()} projection matrix; for a region-level SEEG gain use "
            "vbtjax.sensors.seeg_gain_point_source(contacts, centres)."
        )
    options = table[kind]
    n = next(iter(options)) if n is None else n
    if n not in options:
        raise ValueError(
            f"{caller}: tvb-data has no {kind} file with n={n!r}; available: {', '.join(map(str, options))}."
        )
    return n, options[n]


def tvb_sensors(kind: str = "eeg", n: int | None = None) -> Sensors:
    """Sensors shipped by ``tvb-data`` (``tvb_data/sensors/``), see :data:`TVB_SENSOR_FILES`.

    **Arguments:**

    - `kind`: ``"eeg"``, ``"meg"`` or ``"seeg"``.
    - `n`: the number in the file name: EEG 65 (``eeg_brainstorm_65``, default) or 62 (``eeg_unitvector_62``,
      unit vectors); MEG 276 (``meg_brainstorm_276``, default; 28 of its rows are not brain-facing MEG channels:
      trigger, response, reference coils, EOG, ECG, whose lead-field rows are NaN) or 151; SEEG 588 (default) or 39
      (which holds 103 contacts).
    """
    _, name = _pick_file(TVB_SENSOR_FILES, kind, n, "tvb_sensors")
    with importlib.resources.as_file(_tvb_resource("sensors", name, "tvb_sensors")) as path:
        return Sensors.from_file(path)


class TvbProjection(NamedTuple):
    """A ``tvb-data`` projection matrix with what belongs to it (see :func:`tvb_projection`)."""

    projection: np.ndarray
    """``(n_sensors, 16384)`` gain from the cortical vertices of ``cortex_16384`` to the sensors, NaN rows zeroed."""
    region_mapping: np.ndarray
    """``(16384,)`` integer region (0..75, the 76-region connectome) of each vertex."""
    sensors: Sensors
    """The matching sensors, one per projection row."""
    usable: np.ndarray
    """``(n_sensors,)`` bool: False for rows that are NaN in the file (non-brain channels)."""


def tvb_projection(kind: str = "eeg", n: int | None = None) -> TvbProjection:
    """Load a vertex-level projection (gain) matrix of ``tvb-data`` with its sensors and region mapping.

    **Arguments:**

    - `kind`: ``"eeg"`` or ``"meg"`` (``tvb-data`` has no SEEG projection; use :func:`seeg_gain_point_source`).
    - `n`: number of sensors: EEG 65 (default, ``projection_eeg_65_surface_16k.npy`` with ``eeg_brainstorm_65``)
      or 62 (``projection_eeg_62_surface_16k.mat`` with ``eeg_unitvector_62``); MEG 276
      (``projection_meg_276_surface_16k.npy`` with ``meg_brainstorm_276``).

    **Returns:** a :class:`TvbProjection` ``(projection, region_mapping, sensors, usable)``. The files store
    sensors x vertices (``(n, 16384)``); rows of non-brain channels are NaN there (EEG 65: the EOG channels IO1,
    IO2; MEG 276: 28 trigger, reference-coil and EOG/ECG channels). Like TVB, those entries are set to 0 here and
    flagged in ``usable`` (drop them with ``projection[usable]`` and ``sensors.subset(usable)``). The region mapping is
    ``regionMapping_16k_76.txt`` (vertex -> region of :func:`vbtjax.datasets.tvb_connectome` ``(76)``); reduce to a
    region gain with :func:`region_gain_from_surface`.
    """
    n, name = _pick_file(TVB_PROJECTION_FILES, kind, n, "tvb_projection")
    with importlib.resources.as_file(_tvb_resource("projectionMatrix", name, "tvb_projection")) as path:
        what = f"tvb_projection: {path}"
        if name.endswith(".mat"):
            variables = read_variables(path, what)
            if "ProjectionMatrix" not in variables:
                raise FileReadError(f"{what} has no variable 'ProjectionMatrix'; found: {sorted(variables)}.")
            proj = variables["ProjectionMatrix"]
        else:
            proj = read_npy(path, what)
        if proj.dtype.kind not in "iuf":
            raise FileReadError(f"{what} holds values of type {proj.dtype}; expected a real gain matrix.")
        proj = np.asarray(proj, dtype=float)
    with importlib.resources.as_file(_tvb_resource("regionMapping", _REGION_MAPPING_FILE, "tvb_projection")) as p:
        rmap = np.loadtxt(p).astype(np.int64)
    sensors = tvb_sensors(kind, n)
    if proj.shape != (sensors.n_sensors, rmap.size):
        raise ValueError(
            f"tvb_projection: {name} has shape {proj.shape}; expected ({sensors.n_sensors}, {rmap.size}) "
            "(sensors x vertices). The installed tvb-data may differ from version 3.0."
        )
    finite = np.isfinite(proj)
    usable = finite.all(axis=1)
    proj = np.where(finite, proj, 0.0)
    return TvbProjection(projection=proj, region_mapping=rmap, sensors=sensors, usable=usable)


# ---------------------------------------------------------------------- region gains


def region_gain_from_surface(
    projection: Any, region_mapping: Any, n_regions: int | None = None, reduce: str = "sum"
) -> Float[Array, "n_sensors n_regions"]:
    """Reduce a vertex-level projection ``(n_sensors, n_vertices)`` to a region gain ``(n_sensors, n_regions)``.

    ``gain[:, r]`` is the sum (``reduce="sum"``) or mean (``reduce="mean"``) of the columns of the vertices ``v``
    with ``region_mapping[v] == r``. Regions without vertices get a zero column.

    **TVB:** region-level simulations with TVB's ``EEG``/``MEG``/``iEEG`` monitors **sum** the vertex columns of
    each region (every vertex is a dipole of the region's activity), so ``reduce="sum"`` (the default) reproduces
    TVB's region gain (after TVB zeroes NaN entries). ``"mean"`` makes the gain independent of how finely a region is
    tessellated (one average dipole per region), at a scale ``1 / n_vertices(r)`` smaller.

    **Arguments:**

    - `projection`: ``(n_sensors, n_vertices)``, finite (differentiable; NaN entries of ``tvb-data`` files must be
      zeroed or dropped first, as :func:`tvb_projection` does).
    - `region_mapping`: ``(n_vertices,)`` integer region of each vertex, ``0 <= r < n_regions`` (a concrete array).
    - `n_regions`: number of regions (default ``max(region_mapping) + 1``).
    - `reduce`: ``"sum"`` (TVB) or ``"mean"``.
    """
    if reduce not in ("sum", "mean"):
        raise ValueError(f"region_gain_from_surface: reduce must be 'sum' (TVB) or 'mean', got {reduce!r}.")
    proj = as_float_array(projection)
    rmap_raw = np.asarray(region_mapping)
    if rmap_raw.ndim != 1 or rmap_raw.size == 0:
        raise ValueError(
            f"region_gain_from_surface: region_mapping has shape {rmap_raw.shape}; expected (n_vertices,) integers."
        )
    if not np.issubdtype(rmap_raw.dtype, np.integer):
        if not (
            np.issubdtype(rmap_raw.dtype, np.floating)
            and np.all(np.isfinite(rmap_raw))
            and np.all(rmap_raw == np.round(rmap_raw))
        ):
            raise ValueError("region_gain_from_surface: region_mapping must hold integer region indices.")
    rmap = rmap_raw.astype(np.int64)
    nv = rmap.size
    if proj.ndim != 2:
        raise ValueError(
            f"region_gain_from_surface: projection has shape {proj.shape}; expected (n_sensors, n_vertices)."
        )
    if proj.shape[1] != nv:
        hint = " (it looks transposed: pass projection.T)" if proj.shape[0] == nv else ""
        raise ValueError(
            f"region_gain_from_surface: projection has shape {proj.shape} but region_mapping has {nv} vertices; "
            f"expected (n_sensors, {nv}){hint}."
        )
    if is_concrete(proj) and not bool(jnp.all(jnp.isfinite(proj))):
        raise ValueError(
            "region_gain_from_surface: projection contains NaN or inf (tvb-data marks non-brain channels with NaN); "
            "zero them (TVB does) or drop those rows first, e.g. with vbtjax.sensors.tvb_projection."
        )
    if rmap.min() < 0:
        raise ValueError("region_gain_from_surface: region_mapping has negative region indices.")
    n = int(rmap.max()) + 1 if n_regions is None else int(n_regions)
    if rmap.max() >= n:
        raise ValueError(
            f"region_gain_from_surface: region_mapping refers to region {int(rmap.max())} but n_regions={n}."
        )
    gain = jax.ops.segment_sum(proj.T, jnp.asarray(rmap), num_segments=n).T
    if reduce == "mean":
        counts = np.bincount(rmap, minlength=n)
        gain = gain / jnp.asarray(np.maximum(counts, 1), gain.dtype)
    return gain


def seeg_gain_point_source(
    contacts: Any, centres: Any, *, min_distance: float = 1.0, normalise: str | None = None
) -> Float[Array, "n_contacts N"]:
    """Region-level SEEG gain from contact positions and region centres (inverse-square point-source model).

    ``gain[i, j] = 1 / max(|contacts[i] - centres[j]|, min_distance)^2``, in mm^-2 (the inverse-square law used in
    the Virtual Epileptic Patient literature; the ``1 / (4 pi sigma)`` factor of a monopole in a homogeneous
    conductor is left out, since it only scales the gain). Distances below `min_distance` are clamped, so a contact
    on a region centre gives ``1 / min_distance^2`` instead of infinity; squared distances are used directly (no
    square root), so gradients are finite everywhere (zero with respect to a clamped distance).

    **Arguments:**

    - `contacts`: ``(n_contacts, 3)`` contact positions, mm.
    - `centres`: ``(N, 3)`` region centres, mm (e.g. ``Connectome.centres``), in the same frame.
    - `min_distance`: smallest distance used, mm (> 0).
    - `normalise`: ``None`` (mm^-2), ``"max"`` (divide by the largest entry, so the maximum is 1; dimensionless) or
      ``"rows"`` (each contact's row sums to 1).

    Differentiable with respect to `contacts` and `centres`.
    """
    c = as_float_array(contacts)
    r = as_float_array(centres)
    for name, v in (("contacts", c), ("centres", r)):
        if v.ndim != 2 or v.shape[1] != 3 or v.shape[0] == 0:
            raise ValueError(f"seeg_gain_point_source: {name} has shape {v.shape}; expected (n, 3) positions in mm.")
        if is_concrete(v) and not bool(jnp.all(jnp.isfinite(v))):
            raise ValueError(f"seeg_gain_point_source: {name} contains NaN or inf.")
    if not (isinstance(min_distance, int | float) and np.isfinite(min_distance) and min_distance > 0):
        raise ValueError(f"seeg_gain_point_source: min_distance must be a positive number of mm, got {min_distance!r}.")
    if normalise not in (None, "max", "rows"):
        raise ValueError(f"seeg_gain_point_source: normalise must be None, 'max' or 'rows', got {normalise!r}.")
    d2 = jnp.sum((c[:, None, :] - r[None, :, :]) ** 2, axis=-1)
    gain = 1.0 / jnp.maximum(d2, float(min_distance) ** 2)
    if normalise == "max":
        gain = gain / jnp.max(gain)
    elif normalise == "rows":
        gain = gain / jnp.sum(gain, axis=1, keepdims=True)
    return gain
