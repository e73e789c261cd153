"""Tractograms: streamlines in world mm (RAS+), read from ``.tck``, ``.trk`` and ``.trx`` files or taken from memory.

:func:`load_streamlines` reads or converts a tractogram into :class:`Streamlines`: one array of all points plus the
offset and point count of each streamline. ``.tck`` files are read in blocks with NumPy (their header by nibabel),
``.trk`` files with nibabel, ``.trx`` (zip or folder) with a small reader of its own that checks ``header.json``
(types and counts) against the sizes of the arrays before reading them, and decompresses nothing else.
:mod:`vbtjax.structural` builds connectomes from them (and re-exports these names), with a :class:`TractogramReport`
of what happened to every streamline.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..files import MAX_BYTES, FileReadError, read_json
from ._readers import FolderFiles, ZipArchive

__all__ = ["Streamlines", "TractogramReport", "load_streamlines", "apply_affine", "TRACTOGRAM_SUFFIXES"]

TRACTOGRAM_SUFFIXES = (".tck", ".trk", ".trx")
"""File suffixes of the tractograms read through nibabel (MRtrix TCK, TrackVis TRK, TRX)."""

_CHUNK_POINTS = 1 << 20  # points per block when computing lengths (float64 temporaries of ~25 MB)
_CHUNK_TCK_ROWS = 1 << 21  # rows (points and delimiters) of a .tck per block read (24 MB of float32)


# ---------------------------------------------------------------------------------------------------- streamlines


@dataclasses.dataclass(frozen=True, eq=False)
class Streamlines:
    """Streamlines in world coordinates (mm, RAS+), packed: all points in one array.

    **Arguments:**

    - `points`: `(P, 3)` float array, mm; streamline `k` is ``points[offsets[k] : offsets[k] + counts[k]]``.
    - `offsets`: `(S,)` int64, index of each streamline's first point; the streamlines follow each other
      (``offsets[k + 1] == offsets[k] + counts[k]``).
    - `counts`: `(S,)` int64, number of points of each streamline (0 and 1 are allowed; they have no length).
    - `source`: where they came from (a path or a description), for reports.
    """

    points: np.ndarray
    offsets: np.ndarray
    counts: np.ndarray
    source: str = "streamlines in memory"

    def __post_init__(self):
        p, o, c = self.points, self.offsets, self.counts
        if p.ndim != 2 or p.shape[1] != 3:
            raise ValueError(f"Streamlines: points has shape {p.shape}; expected (P, 3) coordinates in mm.")
        if o.ndim != 1 or c.shape != o.shape:
            raise ValueError(
                f"Streamlines: offsets {o.shape} and counts {c.shape} must be 1-D arrays of the same length."
            )
        if c.size:
            ends = o + c
            if o[0] != 0 or np.any(c < 0) or np.any(o[1:] != ends[:-1]) or ends[-1] != p.shape[0]:
                raise ValueError(
                    "Streamlines: offsets and counts must describe consecutive streamlines covering all the points "
                    "(offsets[0] == 0, offsets[k+1] == offsets[k] + counts[k], sum(counts) == len(points))."
                )
        elif p.shape[0]:
            raise ValueError("Streamlines: there are points but no streamlines (offsets and counts are empty).")

    @classmethod
    def from_arrays(cls, points: Any, counts: Any, source: str = "streamlines in memory") -> Streamlines:
        """Streamlines from all points ``(P, 3)`` (mm) and the number of points of each streamline."""
        points = np.asarray(points)
        if not np.issubdtype(points.dtype, np.floating):
            points = points.astype(np.float64)
        counts = np.asarray(counts, dtype=np.int64).ravel()
        offsets = np.zeros(counts.size, dtype=np.int64)
        if counts.size:
            np.cumsum(counts[:-1], out=offsets[1:])
        return cls(points, offsets, counts, source)

    @property
    def n_streamlines(self) -> int:
        return int(self.counts.size)

    def endpoints(self) -> tuple[np.ndarray, np.ndarray]:
        """First and last point of every streamline, two `(S, 3)` float64 arrays in mm (NaN rows for streamlines
        without points)."""
        s = np.full((self.n_streamlines, 3), np.nan)
        e = np.full((self.n_streamlines, 3), np.nan)
        has = self.counts > 0
        s[has] = self.points[self.offsets[has]]
        e[has] = self.points[self.offsets[has] + self.counts[has] - 1]
        return s, e

    def lengths(self) -> np.ndarray:
        """Length of every streamline in mm, `(S,)` float64: the sum of the norms of its segments (0 for fewer
        than two points). Computed in float64 over blocks of points, without a loop over streamlines."""
        s, p = self.n_streamlines, self.points.shape[0]
        out = np.zeros(s)
        if s == 0 or p < 2:
            return out
        ends = self.offsets + self.counts
        cuts = np.searchsorted(ends, np.arange(_CHUNK_POINTS, p, _CHUNK_POINTS), side="left") + 1
        bounds = np.unique(np.concatenate([[0], np.minimum(cuts, s), [s]]))
        for s0, s1 in zip(bounds[:-1], bounds[1:], strict=True):
            a, b = int(self.offsets[s0]), int(ends[s1 - 1])
            if b - a < 2:
                continue
            pts = self.points[a:b]
            d = np.subtract(pts[1:], pts[:-1], dtype=np.float64)  # in float64, as from float64 copies
            seg = np.zeros(b - a)
            seg[:-1] = np.sqrt(np.einsum("ij,ij->i", d, d))
            has = np.flatnonzero(self.counts[s0:s1] > 0) + s0
            seg[ends[has] - 1 - a] = 0.0  # the step from one streamline's last point to the next one's first
            out[has] = np.add.reduceat(seg, self.offsets[has] - a)
        out[self.counts < 2] = 0.0
        return out

    def check_finite(self, name: str = "tractogram") -> None:
        """Raise ``ValueError`` naming the first streamline with a NaN or infinite coordinate."""
        # One pass first: a sum over all coordinates is finite only when every coordinate is (NaN and inf
        # propagate); only when it is not are the points checked one by one (which also clears an overflow).
        if self.points.size == 0 or np.isfinite(np.sum(self.points)):
            return
        finite = np.isfinite(self.points).all(axis=1)
        if finite.all():
            return
        bad = int(np.argmin(finite))
        k = int(np.searchsorted(self.offsets, bad, side="right") - 1)
        while self.counts[k] == 0:  # empty streamlines share the offset of the next one
            k += 1
        raise ValueError(
            f"{name}: streamline {k} (0-based) of {self.source} has a NaN or infinite coordinate (its point "
            f"{bad - int(self.offsets[k])}); {int((~finite).sum())} such points in all. Remove or repair those "
            "streamlines before building the connectome."
        )


def load_streamlines(tractogram: Any) -> Streamlines:
    """Read or convert ``tractogram`` to :class:`Streamlines` in world mm (RAS+).

    Accepted:

    - a path to a ``.tck`` (MRtrix: points stored in world mm) or ``.trk`` (TrackVis: points stored in "voxmm",
      voxel coordinates times voxel size, converted to world mm by nibabel with the header's ``vox_to_ras``), read
      with ``nibabel.streamlines.load`` (a well-formed ``.tck`` is read here, to the same points, faster); or a
      ``.trx`` file or folder (positions stored in world mm), read here;
    - a nibabel ``TractogramFile`` (what ``nibabel.streamlines.load`` returns), ``Tractogram`` (its
      ``affine_to_rasmm`` is applied, so its streamlines need not be in world mm yet) or ``ArraySequence``;
    - a :class:`Streamlines`;
    - a sequence of `(n_i, 3)` arrays in world mm, or one `(S, n, 3)` array of equally long streamlines.
    """
    if isinstance(tractogram, Streamlines):
        return tractogram
    if isinstance(tractogram, str | os.PathLike):
        return _read_tractogram_file(Path(tractogram))
    from nibabel.streamlines import ArraySequence, Tractogram
    from nibabel.streamlines.tractogram_file import TractogramFile

    if isinstance(tractogram, TractogramFile):
        return _from_nibabel_tractogram(tractogram.tractogram, "a nibabel TractogramFile")
    if isinstance(tractogram, Tractogram):
        return _from_nibabel_tractogram(tractogram, "a nibabel Tractogram")
    if isinstance(tractogram, ArraySequence):
        return _from_array_sequence(tractogram, "a nibabel ArraySequence")
    if isinstance(tractogram, np.ndarray):
        if tractogram.ndim == 3 and tractogram.shape[2] == 3:
            s, n, _ = tractogram.shape
            return Streamlines.from_arrays(tractogram.reshape(s * n, 3), np.full(s, n), "an (S, n, 3) array")
        raise ValueError(
            f"tractogram: an array of shape {tractogram.shape} is not a tractogram; give a list of (n_i, 3) arrays "
            "(one per streamline, mm), an (S, n, 3) array, a nibabel Tractogram or a .tck/.trk/.trx path."
        )
    if isinstance(tractogram, Sequence) and not isinstance(tractogram, str | bytes):
        return _from_list(tractogram)
    raise TypeError(
        f"tractogram: cannot read a {type(tractogram).__name__}; give a .tck/.trk/.trx path, a nibabel Tractogram "
        "or TractogramFile, a vbtjax Streamlines or a list of (n_i, 3) arrays in world mm."
    )


def _from_list(seq: Sequence[Any]) -> Streamlines:
    arrays = [np.asarray(s) for s in seq]
    if not arrays:
        return Streamlines(np.zeros((0, 3)), np.zeros(0, np.int64), np.zeros(0, np.int64), "an empty list")
    for k, a in enumerate(arrays):
        if a.ndim != 2 or a.shape[1] != 3:
            raise ValueError(
                f"tractogram: streamline {k} (0-based) has shape {a.shape}; every streamline must be an (n_i, 3) "
                "array of points in world mm."
            )
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            raise ValueError(f"tractogram: streamline {k} (0-based) is not numeric (dtype {a.dtype}).")
    counts = np.fromiter((a.shape[0] for a in arrays), dtype=np.int64, count=len(arrays))
    dtype = np.result_type(*{a.dtype for a in arrays}, np.float32)
    points = np.concatenate(arrays, axis=0).astype(dtype, copy=False)
    return Streamlines.from_arrays(points, counts, f"a list of {len(arrays)} streamlines")


def _from_array_sequence(seq: Any, source: str) -> Streamlines:
    if len(seq) == 0:
        return Streamlines(np.zeros((0, 3)), np.zeros(0, np.int64), np.zeros(0, np.int64), source)
    if tuple(seq.common_shape) != (3,):
        raise ValueError(f"tractogram: {source} holds points of shape {seq.common_shape}; expected 3-D points (mm).")
    # ArraySequence keeps its packed buffer in _data/_offsets/_lengths; a view or a re-ordered sequence is compacted
    # first (copy()), so that the streamlines follow each other.
    counts = np.asarray(seq._lengths, dtype=np.int64)
    offsets = np.asarray(seq._offsets, dtype=np.int64)
    expected = np.concatenate([[0], np.cumsum(counts)[:-1]])
    if not np.array_equal(offsets, expected) or seq._data.shape[0] != counts.sum():
        seq = seq.copy()
        counts = np.asarray(seq._lengths, dtype=np.int64)
    return Streamlines.from_arrays(np.asarray(seq._data), counts, source)


def _from_nibabel_tractogram(tg: Any, source: str) -> Streamlines:
    affine = tg.affine_to_rasmm
    if affine is None:
        raise ValueError(
            f"tractogram: {source} has affine_to_rasmm=None (its space is unknown); set it to the affine that maps "
            "its points to world mm (RAS+), e.g. np.eye(4) when they already are."
        )
    out = _from_array_sequence(tg.streamlines, source)
    affine = np.asarray(affine, dtype=np.float64)
    if not np.array_equal(affine, np.eye(4)):
        pts = apply_affine(affine, out.points)
        out = Streamlines(pts, out.offsets, out.counts, source)
    return out


def apply_affine(affine: np.ndarray, points: Any) -> np.ndarray:
    """``points @ affine[:3, :3].T + affine[:3, 3]`` in float64 for `(M, 3)` points. With ``einsum``, not a BLAS
    matrix product: for millions of 3-vectors a (M, 3) x (3, 3) GEMM was 10x slower (OpenBLAS threads, measured on
    2 shared cores)."""
    p = np.asarray(points)
    return np.einsum("ij,kj->ik", p, affine[:3, :3], dtype=np.float64) + affine[:3, 3]


def _read_tractogram_file(path: Path) -> Streamlines:
    if not path.exists():
        raise FileNotFoundError(f"tractogram: {path} does not exist.")
    name = path.name.lower()
    if name.endswith(".trx"):
        return _read_trx(path)
    if not name.endswith((".tck", ".trk", ".trk.gz")):
        raise ValueError(
            f"tractogram: cannot tell the format of {path}; expected a .tck (MRtrix), .trk (TrackVis) or .trx file."
        )
    if name.endswith(".tck"):
        fast = _read_tck(path)
        if fast is not None:
            return fast
    import nibabel as nib

    try:
        tf = nib.streamlines.load(str(path))
    except Exception as e:  # nibabel raises several types for corrupt files
        raise ValueError(f"tractogram: could not read {path} with nibabel: {e}") from None
    # nibabel returns the streamlines in world mm (RAS+): a .trk's voxmm points are mapped with its vox_to_ras.
    return _from_nibabel_tractogram(tf.tractogram, str(path))


def _read_tck(path: Path) -> Streamlines | None:
    """A ``.tck`` read without a loop over streamlines: the header by nibabel, the data in blocks of rows, each
    block's rows of NaN (MRtrix's streamline delimiter) found and the other rows copied into one array allocated
    once (3-5x faster than nibabel for 10^6 streamlines). The same points as ``nibabel.streamlines.load``: float32
    (little-endian), empty streamlines skipped, the data ending with a delimiter and one row of inf. Returns None
    for anything else (unreadable header, a size that is not whole points, no end-of-file marker): nibabel then
    reads it or reports the problem."""
    from nibabel.streamlines.tck import TckFile

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            header = TckFile._read_header(str(path))
            dtype, offset = np.dtype(header["_dtype"]), int(header["_offset_data"])
        except Exception:  # nibabel's own reader gives the error, or reads what this one does not
            return None
    row_bytes = 3 * dtype.itemsize
    n_bytes = path.stat().st_size - offset
    if offset < 0 or n_bytes < row_bytes or n_bytes % row_bytes:
        return None
    n_rows = n_bytes // row_bytes
    # Blocks stay below glibc's mmap threshold (32 MB), so their memory is reused from block to block; fresh
    # pages from the kernel were what made whole-file temporaries slow.
    block = np.empty((min(n_rows, _CHUNK_TCK_ROWS), 3), dtype)
    out = np.empty((n_rows, 3), np.float32)
    out_rows = out.view(np.dtype((np.void, 12))).ravel()
    delims, pos, row = [], 0, 0
    with open(path, "rb") as fh:
        fh.seek(offset)
        while row < n_rows:
            m = min(block.shape[0], n_rows - row)
            if fh.readinto(memoryview(block[:m]).cast("B")) != m * row_bytes:
                return None
            c = block[:m].astype("<f4", copy=False)
            maybe = np.flatnonzero(np.isnan(c[:, 0]))
            d = maybe[np.isnan(c[maybe]).all(axis=1)]
            keep = np.ones(m, dtype=bool)
            keep[d] = False
            kept = np.ascontiguousarray(c).view(np.dtype((np.void, 12))).ravel()[keep]
            out_rows[pos : pos + kept.size] = kept
            pos += kept.size
            delims.append(d + row)
            row += m
    delims = np.concatenate(delims)
    if pos == 0 or not np.isinf(out[pos - 1]).all() or delims.size == 0 or delims[-1] != n_rows - 2:
        return None  # the data must end with a delimiter and one row of inf
    starts = np.concatenate([[0], delims[:-1] + 1])
    counts = (delims - starts).astype(np.int64)
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return Streamlines.from_arrays(out[: pos - 1], counts[counts > 0], str(path))


_TRX_DTYPES = ("float16", "float32", "float64", "uint32", "uint64", "int32", "int64")
_TRX_COUNTS = ("NB_VERTICES", "NB_STREAMLINES")


def _read_trx(path: Path) -> Streamlines:
    """A TRX tractogram (zip or folder): ``header.json``, ``positions.3.<float>`` in world mm, ``offsets.<uint>``
    (with or without the final sentinel ``NB_VERTICES``). Groups and per-point/per-streamline data are ignored (and
    not decompressed). The header's counts are checked against the sizes the arrays declare before they are read."""
    what = f"tractogram: {path}"
    with FolderFiles(path, what) if path.is_dir() else ZipArchive(path, what) as src:
        members = [n for n in src.names if "/" not in n]
        if "header.json" not in members:
            raise FileReadError(f"{what} is not a TRX tractogram (no header.json at its top level).")
        n_v, n_s = _trx_header(read_json(src.read("header.json"), what=f"{what}: header.json"), what)
        pos_name, pos_dtype = _trx_member(members, "positions", "3", what)
        off_name, off_dtype = _trx_member(members, "offsets", "", what)
        pos_size, off_size = src.size(pos_name), src.size(off_name)
        if pos_size != n_v * 3 * pos_dtype.itemsize:
            raise FileReadError(
                f"{what}: header.json says NB_VERTICES={n_v}, but {pos_name} holds {pos_size} bytes, not "
                f"{n_v} x 3 x {pos_dtype.itemsize}."
            )
        if off_size not in (n_s * off_dtype.itemsize, (n_s + 1) * off_dtype.itemsize):
            raise FileReadError(
                f"{what}: header.json says NB_STREAMLINES={n_s}, but {off_name} holds {off_size} bytes, not "
                f"{n_s} (or {n_s + 1}) x {off_dtype.itemsize}."
            )
        points = np.frombuffer(src.read(pos_name, MAX_BYTES), dtype=pos_dtype).reshape(-1, 3)
        offsets = np.frombuffer(src.read(off_name, MAX_BYTES), dtype=off_dtype).astype(np.int64)
    if points.dtype == np.float16:
        points = points.astype(np.float32)
    if offsets.size == n_s:
        offsets = np.append(offsets, n_v)
    if n_s and (offsets[0] != 0 or offsets[-1] != n_v or np.any(np.diff(offsets) < 0)):
        raise FileReadError(f"{what} has inconsistent offsets for NB_STREAMLINES={n_s}, NB_VERTICES={n_v}.")
    try:
        return Streamlines.from_arrays(points, np.diff(offsets), str(path))
    except ValueError as e:
        raise FileReadError(f"{what}: {e}") from None


def _trx_header(header: Any, what: str) -> tuple[int, int]:
    """``(NB_VERTICES, NB_STREAMLINES)`` of a parsed ``header.json``, refusing missing keys and wrong types."""
    if not isinstance(header, dict):
        raise FileReadError(f"{what}: header.json holds a {type(header).__name__}, not a JSON object.")
    missing = [k for k in _TRX_COUNTS if k not in header]
    if missing:
        raise FileReadError(f"{what}: header.json lacks {', '.join(missing)}; a TRX header states both counts.")
    counts = []
    for key in _TRX_COUNTS:
        value = header[key]
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise FileReadError(f"{what}: header.json has {key}={value!r}; expected a non-negative integer count.")
        counts.append(value)
    return counts[0], counts[1]


def _trx_member(members: list[str], stem: str, ncomp: str, what: str) -> tuple[str, np.dtype]:
    """The member ``stem[.ncomp].<dtype>`` and its little-endian dtype."""
    for n in members:
        parts = n.split(".")
        if parts[0] == stem and parts[-1] in _TRX_DTYPES and parts[1:-1] in ([ncomp], []):
            return n, np.dtype(parts[-1]).newbyteorder("<")
    raise FileReadError(
        f"{what} has no {stem} array (e.g. {stem}.{ncomp + '.' if ncomp else ''}float32); found: "
        + ", ".join(sorted(members))
    )


# ---------------------------------------------------------------------------------------------------- report


@dataclasses.dataclass(frozen=True)
class TractogramReport:
    """What happened to every streamline of a tractogram on its way into a connectome.

    Each streamline is counted once, in the first of these that applies: ``too_short`` (shorter than
    ``min_length`` mm, or fewer than 2 points), ``outside`` (an end point outside the parcellation image),
    ``unassigned`` (an end point in background with no labelled voxel within ``radius`` mm), ``self_connections``
    (both ends in one region; kept on the diagonal only with ``self_connections="keep"``), else it connects two
    regions. So ``n_streamlines == n_connecting + too_short + outside + unassigned`` plus ``self_connections``
    when they are dropped (:attr:`n_dropped`).
    """

    n_streamlines: int
    n_connecting: int
    too_short: int
    outside: int
    unassigned: int
    self_connections: int
    self_connections_kept: bool
    endpoints_by_search: int
    n_regions: int
    n_connections: int
    regions_without_streamlines: tuple[str, ...]
    min_length: float
    radius: float
    normalise: str
    lengths: str
    directed: bool
    length_mm: dict[str, float]
    tractogram_box: tuple[tuple[float, float, float], tuple[float, float, float]]
    image_box: tuple[tuple[float, float, float], tuple[float, float, float]]
    tractogram_source: str
    parcellation_source: str
    timings: dict[str, float]
    notes: tuple[str, ...] = ()

    @property
    def n_dropped(self) -> int:
        """Streamlines not in the weights."""
        return self.n_streamlines - self.n_connecting

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``json.dumps(report.to_dict())``)."""
        d = dataclasses.asdict(self)
        d["n_dropped"] = self.n_dropped
        d["units"] = {"min_length": "mm", "radius": "mm", "length_mm": "mm", "boxes": "world mm (RAS+)", "timings": "s"}
        return d

    def summary(self) -> str:
        """One line: how many streamlines were used and why the others were not."""
        return (
            f"{self.n_connecting:,} of {self.n_streamlines:,} streamlines in the connectome; left out: too short "
            f"{self.too_short:,}, outside the image {self.outside:,}, unassigned end point {self.unassigned:,}, "
            f"self-connections {0 if self.self_connections_kept else self.self_connections:,}"
        )

    def __str__(self) -> str:
        n = max(self.n_streamlines, 1)

        def row(label: str, count: int, note: str = "") -> str:
            return f"  {label:<28}{count:>12,}  {100.0 * count / n:5.1f} %{('  ' + note) if note else ''}"

        n_r = self.n_regions
        pairs = n_r * (n_r - 1) if self.directed else n_r * (n_r - 1) // 2
        empty = self.regions_without_streamlines
        empty_text = f" ({', '.join(empty[:8])}{' ...' if len(empty) > 8 else ''})" if empty else ""
        kept = "incl. self-connections" if self.self_connections_kept and self.self_connections else ""
        weights = "streamline counts"
        if self.normalise != "none":
            weights += " / " + _NORMALISE_TEXT[self.normalise]
        direction = "directed (source = first point)" if self.directed else "symmetric"
        ln = self.length_mm
        lines = [
            f"tractogram -> connectome: {self.n_streamlines:,} streamlines ({self.tractogram_source}), "
            f"{n_r} regions ({self.parcellation_source})",
            row("in the connectome", self.n_connecting, kept),
            row("too short", self.too_short, f"< {self.min_length:g} mm or < 2 points"),
            row("end point outside the image", self.outside),
            row("end point unassigned", self.unassigned, f"no labelled voxel within {self.radius:g} mm"),
            row("self-connections", self.self_connections, "kept" if self.self_connections_kept else "dropped"),
            f"  end points assigned by the {self.radius:g} mm search: {self.endpoints_by_search:,}",
            f"  connections: {self.n_connections:,} of {pairs:,} {'directed ' if self.directed else ''}region pairs; "
            f"regions without streamlines: {len(empty)}{empty_text}",
        ]
        if ln:
            lines.append(
                f"  streamline lengths (mm): min {ln['min']:.1f}, median {ln['median']:.1f}, mean {ln['mean']:.1f}, "
                f"max {ln['max']:.1f}"
            )
        lines.append(f"  weights: {weights}; tract lengths: {self.lengths} per pair; {direction}")
        if self.timings:
            lines.append("  time (s): " + ", ".join(f"{k} {v:.2f}" for k, v in self.timings.items()))
        lines += [f"  note: {t}" for t in self.notes]
        return "\n".join(lines)


_NORMALISE_TEXT = {"volume": "(sum of the two region volumes, mm^3)", "count": "(streamlines in the tractogram)"}
