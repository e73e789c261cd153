"""Structural mapping: a person's connectome from a parcellation image and a tractogram.

The path from imaging outputs to a :class:`~vbtjax.connectome.Connectome`:

1. :class:`Parcellation` reads an integer label image (NIfTI, MGH, any image nibabel reads) and, optionally, a
   lookup table of region names (:func:`read_lut`). It knows each region's voxels, volume (mm^3) and centroid
   (world mm), and assigns points given in world mm (RAS+) to regions through the image affine.
2. :func:`load_streamlines` reads a tractogram (``.tck`` in blocks with NumPy, its header by nibabel; ``.trk``
   with nibabel; ``.trx`` with a small reader of its own) or takes streamlines in memory, always as world mm
   (RAS+), into :class:`Streamlines`: one array of all points plus the offset and point count of each streamline.
3. :func:`build_connectome` assigns the two end points of every streamline to regions, counts the streamlines
   between each pair (the weights) and averages their lengths (the tract lengths, mm), and returns the connectome
   with a :class:`TractogramReport` that counts every streamline that was left out, and why.

Everything is vectorised with NumPy over streamlines: only the end points are looked up, and lengths come from the
norms of the segments of the concatenated points summed per streamline with ``np.add.reduceat``.

Convention of the weights: ``weights[i, j]`` is from source region ``j`` to target region ``i``. With
``directed=True`` the source of a streamline is the region of its first point and the target that of its last;
by default the matrix is symmetric (a streamline counts for both directions, once).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .connectome import Connectome

__all__ = [
    "Parcellation",
    "Streamlines",
    "TractogramReport",
    "build_connectome",
    "load_streamlines",
    "read_lut",
    "NORMALISE_CHOICES",
    "LENGTH_CHOICES",
    "SELF_CONNECTION_CHOICES",
    "DEFAULT_RADIUS",
]

NORMALISE_CHOICES = ("none", "volume", "count")
LENGTH_CHOICES = ("mean", "median")
SELF_CONNECTION_CHOICES = ("drop", "keep")
DEFAULT_RADIUS = 2.0
"""mm: end points in unlabelled voxels go to the nearest labelled voxel within this distance (MRtrix's
``tck2connectome`` radial search uses 4 mm by default)."""

TRACTOGRAM_SUFFIXES = (".tck", ".trk", ".trx")

# What happened to each end point (Parcellation.assign).
IN_REGION, BY_SEARCH, UNLABELLED, OUTSIDE = 0, 1, 2, 3

_CHUNK_POINTS = 1 << 20  # points per block when computing lengths (float64 temporaries of ~25 MB)
_CHUNK_ASSIGN = 1 << 18  # points per block of Parcellation.assign
_CHUNK_SEARCH = 1 << 22  # point x candidate-voxel pairs per block of the radius search
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
        pts = _apply_affine(affine, out.points)
        out = Streamlines(pts, out.offsets, out.counts, source)
    return out


def _apply_affine(affine: np.ndarray, points: Any) -> np.ndarray:
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


def _read_trx(path: Path) -> Streamlines:
    """A TRX tractogram (zip or folder): ``header.json``, ``positions.3.<float>`` in world mm, ``offsets.<uint>``
    (with or without the final sentinel ``NB_VERTICES``). Groups and per-point/per-streamline data are ignored."""
    if path.is_dir():
        names = {p.name: p for p in path.iterdir() if p.is_file()}
        read = lambda n: names[n].read_bytes()
        members = list(names)
    else:
        try:
            zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as e:
            raise ValueError(f"tractogram: could not open {path} as a TRX zip archive: {e}") from None
        members = [n for n in zf.namelist() if "/" not in n.rstrip("/")]
        read = zf.read
    try:
        if "header.json" not in members:
            raise ValueError(f"tractogram: {path} is not a TRX tractogram (no header.json at its top level).")
        header = json.loads(read("header.json").decode("utf-8"))

        def member(stem: str, ncomp: str) -> tuple[str, str]:
            for n in members:
                parts = n.split(".")
                if parts[0] == stem and parts[-1] in _TRX_DTYPES and parts[1:-1] in ([ncomp], []):
                    return n, parts[-1]
            raise ValueError(
                f"tractogram: {path} has no {stem} array (e.g. {stem}.{ncomp + '.' if ncomp else ''}"
                "float32); found: " + ", ".join(sorted(members))
            )

        pos_name, pos_dtype = member("positions", "3")
        off_name, off_dtype = member("offsets", "")
        points = np.frombuffer(read(pos_name), dtype=np.dtype(pos_dtype).newbyteorder("<")).reshape(-1, 3)
        offsets = np.frombuffer(read(off_name), dtype=np.dtype(off_dtype).newbyteorder("<")).astype(np.int64)
    finally:
        if not path.is_dir():
            zf.close()
    if points.dtype == np.float16:
        points = points.astype(np.float32)
    n_s = int(header.get("NB_STREAMLINES", offsets.size))
    n_v = int(header.get("NB_VERTICES", points.shape[0]))
    if n_v != points.shape[0]:
        raise ValueError(f"tractogram: {path} header says NB_VERTICES={n_v} but holds {points.shape[0]} positions.")
    if offsets.size == n_s:
        offsets = np.append(offsets, n_v)
    if offsets.size != n_s + 1 or (n_s and (offsets[0] != 0 or offsets[-1] != n_v or np.any(np.diff(offsets) < 0))):
        raise ValueError(f"tractogram: {path} has inconsistent offsets for NB_STREAMLINES={n_s}, NB_VERTICES={n_v}.")
    return Streamlines.from_arrays(points, np.diff(offsets), str(path))


# ---------------------------------------------------------------------------------------------------- parcellation


def read_lut(path: str | os.PathLike) -> dict[int, str]:
    """Region names from a lookup table: ``{label value: name}``.

    Two layouts are read:

    - FreeSurfer's ``LUT.txt`` (``FreeSurferColorLUT.txt``): whitespace-separated rows ``index name R G B A``;
      ``#`` starts a comment;
    - a TSV (tab-separated) table with the index in the first column and the name in the second (the rest is
      ignored), or with a header row naming the columns ``index`` and ``name`` (BIDS ``dseg.tsv``). In a TSV,
      names may contain spaces.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"lut: {path} does not exist.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"lut: {path} is not a text file.") from None
    tabbed = "\t" in text
    rows: list[tuple[int, list[str]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0] if not tabbed else line
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in line.split("\t")] if tabbed else line.split()
        rows.append((number, fields))
    if not rows:
        raise ValueError(f"lut: {path} has no rows; expected 'index name ...' per line.")
    col_index, col_name = 0, 1
    first = rows[0][1]
    if not _is_int(first[0]):
        lower = [f.lower() for f in first]
        if "index" in lower and "name" in lower:
            col_index, col_name = lower.index("index"), lower.index("name")
        rows = rows[1:]  # a header row
    names: dict[int, str] = {}
    for number, fields in rows:
        if len(fields) <= max(col_index, col_name) or not _is_int(fields[col_index]):
            raise ValueError(
                f"lut: line {number} of {path} is not 'index name ...' (an integer label and a name): {fields!r}."
            )
        value = int(fields[col_index])
        if value in names:
            raise ValueError(f"lut: label {value} appears twice in {path} (again on line {number}).")
        names[value] = fields[col_name]
    return names


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


@dataclasses.dataclass(frozen=True, eq=False)
class Parcellation:
    """Regions of an integer label image, in world mm.

    Build with :meth:`load`. Region ``r`` (0-based, the order of the connectome) has label value
    ``label_values[r]`` in the image and name ``names[r]``; 0 (and every value not in ``label_values``) is
    background.

    **Fields:**

    - `label_values`: `(N,)` int64 label values.
    - `names`: `N` region names (from the lookup table, else the label value as text).
    - `affine`: `(4, 4)` voxel-to-world affine (mm, RAS+); voxel centres at integer voxel coordinates.
    - `shape`: the image's 3-D shape.
    - `n_voxels`: `(N,)` voxels per region; `volumes`: `(N,)` mm^3; `centres`: `(N, 3)` centroids of the voxel
      centres, world mm.
    - `index`: the image as region indices (int32, -1 for background).
    - `source`: where it came from, for reports.
    """

    label_values: np.ndarray
    names: tuple[str, ...]
    affine: np.ndarray
    shape: tuple[int, int, int]
    n_voxels: np.ndarray
    volumes: np.ndarray
    centres: np.ndarray
    index: np.ndarray = dataclasses.field(repr=False)
    source: str = "an image in memory"
    _padded: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @property
    def n_regions(self) -> int:
        return int(self.label_values.size)

    @property
    def voxel_volume(self) -> float:
        """mm^3 per voxel, ``|det(affine[:3, :3])|``."""
        return float(abs(np.linalg.det(self.affine[:3, :3])))

    @property
    def voxel_sizes(self) -> np.ndarray:
        """mm along each voxel axis (the norms of the affine's columns)."""
        return np.linalg.norm(self.affine[:3, :3], axis=0)

    @classmethod
    def load(
        cls,
        image: Any,
        lut: str | os.PathLike | Mapping[int, str] | None = None,
        *,
        regions: Sequence[int] | None = None,
    ) -> Parcellation:
        """Read a parcellation.

        **Arguments:**

        - `image`: a path nibabel reads (``.nii``, ``.nii.gz``, ``.mgz``, ...) or a nibabel image (anything with
          ``.affine`` and ``.dataobj``), 3-D (or 4-D with one volume), integer labels (a float image whose values
          are all whole numbers is accepted); 0 is background, negative labels are refused.
        - `lut`: region names: a path to a FreeSurfer ``LUT.txt`` or a two-column TSV (:func:`read_lut`), or a
          mapping ``{label value: name}``. Labels missing from it are named by their value.
        - `regions`: the label values that are regions, in the order wanted (e.g. to leave out FreeSurfer's white
          matter and ventricles, or to fix one order across subjects). Default: every non-zero label present, in
          increasing order. Voxels of other labels count as background.
        """
        if isinstance(image, Parcellation):
            if lut is not None or regions is not None:
                raise ValueError("Parcellation.load: got a Parcellation with lut/regions; load from the image instead.")
            return image
        data, affine, source = _read_image(image)
        names_lut = _lut_mapping(lut)
        if data.size == 0:
            raise ValueError(f"parcellation: {source} is empty (shape {data.shape}).")
        if np.issubdtype(data.dtype, np.bool_):
            data = data.astype(np.uint8)
        if not np.issubdtype(data.dtype, np.integer):
            if not np.issubdtype(data.dtype, np.floating):
                raise ValueError(f"parcellation: {source} has values of type {data.dtype}; expected integer labels.")
            if not np.isfinite(data).all():
                raise ValueError(f"parcellation: {source} contains NaN or inf; expected integer labels.")
            rounded = np.rint(data)
            if not np.array_equal(rounded, data):
                frac = data[rounded != data]
                raise ValueError(
                    f"parcellation: {source} holds non-integer values (e.g. {float(frac.ravel()[0]):g}; "
                    f"{frac.size} voxels): it is not a label image, or it was resampled with linear interpolation. "
                    "Give integer labels (resample parcellations with nearest-neighbour interpolation)."
                )
            data = rounded.astype(np.int64)
        if data.min() < 0:
            raise ValueError(
                f"parcellation: {source} has negative labels (min {int(data.min())}); expected 0 for background and "
                "positive integer labels for regions."
            )
        index, label_values, n_voxels = _region_index(data, regions, source)
        a3 = affine[:3, :3]
        coords = np.nonzero(index >= 0)
        reg = index[coords]
        mean_ijk = np.stack([np.bincount(reg, weights=c, minlength=label_values.size) for c in coords], axis=1)
        mean_ijk /= n_voxels[:, None]
        centres = mean_ijk @ a3.T + affine[:3, 3]
        voxel_volume = float(abs(np.linalg.det(a3)))
        names = tuple(names_lut.get(int(v), str(int(v))) for v in label_values)
        if names_lut:
            missing = [int(v) for v in label_values if int(v) not in names_lut]
            if missing:
                warnings.warn(
                    f"parcellation: {len(missing)} labels of {source} are not in the lookup table and are named by "
                    f"their value: {', '.join(map(str, missing[:10]))}{' ...' if len(missing) > 10 else ''}.",
                    stacklevel=2,
                )
        return cls(
            label_values=label_values,
            names=names,
            affine=affine,
            shape=tuple(int(s) for s in index.shape),
            n_voxels=n_voxels,
            volumes=n_voxels * voxel_volume,
            centres=centres,
            index=index,
            source=source,
        )

    def world_bounding_box(self) -> np.ndarray:
        """`(2, 3)`: the lowest and highest world coordinates (mm) of the image's voxel grid, voxel edges included."""
        corners = np.array(np.meshgrid(*[(-0.5, s - 0.5) for s in self.shape], indexing="ij")).reshape(3, -1).T
        world = corners @ self.affine[:3, :3].T + self.affine[:3, 3]
        return np.stack([world.min(axis=0), world.max(axis=0)])

    def voxel_coordinates(self, points: Any) -> np.ndarray:
        """Continuous voxel coordinates `(M, 3)` of world points `(M, 3)` mm (inverse affine)."""
        return _apply_affine(np.linalg.inv(self.affine), points)

    def assign(self, points: Any, radius: float = DEFAULT_RADIUS) -> tuple[np.ndarray, np.ndarray]:
        """Regions of world points.

        Each point ``(M, 3)`` (mm, RAS+) is mapped to voxel coordinates with the inverse affine and rounded to the
        nearest voxel centre. A point in a labelled voxel gets that region; a point in a background voxel gets the
        region of the nearest labelled voxel centre within ``radius`` mm of the point itself (ties go to the first
        voxel in a fixed order of offsets); a point outside the image gets none.

        **Returns:** ``(region, status)``: region indices `(M,)` int64 (-1 for none) and `(M,)` int8 codes
        ``IN_REGION`` (0), ``BY_SEARCH`` (1), ``UNLABELLED`` (2: background, nothing within the radius),
        ``OUTSIDE`` (3: outside the voxel grid).
        """
        radius = _non_negative("radius", radius)
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        shape = np.array(self.shape)
        order = "F" if self.index.flags.f_contiguous and not self.index.flags.c_contiguous else "C"
        index = self.index.ravel(order=order)  # a view, not a copy, when the image is stored in Fortran order
        region = np.full(p.shape[0], -1, dtype=np.int64)
        status = np.full(p.shape[0], OUTSIDE, dtype=np.int8)
        # in blocks, so that the temporaries are reused rather than fresh memory for every array (faster for 10^6
        # points); every point is treated on its own, so the blocks do not change the result
        for a in range(0, p.shape[0], _CHUNK_ASSIGN):
            b = min(a + _CHUNK_ASSIGN, p.shape[0])
            ijk = self.voxel_coordinates(p[a:b])
            vox = np.floor(ijk + 0.5).astype(np.int64)
            inside = np.all((vox >= 0) & (vox < shape), axis=1)
            flat = np.ravel_multi_index(tuple(vox[inside].T), self.shape, order=order)
            r = index[flat]
            reg, st = region[a:b], status[a:b]  # views
            reg[inside] = r
            st[inside] = np.where(r >= 0, IN_REGION, UNLABELLED)
            todo = np.flatnonzero(st == UNLABELLED)
            if radius > 0 and todo.size:
                found, ok = self._search(ijk[todo], vox[todo], radius)
                reg[todo[ok]] = found[ok]
                st[todo[ok]] = BY_SEARCH
        return region, status

    def _search(self, ijk: np.ndarray, vox: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
        """Nearest labelled voxel centre within ``radius`` mm of each point (all of them in background voxels)."""
        a3 = self.affine[:3, :3]
        signs = np.array(np.meshgrid(*[(-0.5, 0.5)] * 3, indexing="ij")).reshape(3, -1).T
        half_diagonal = float(np.max(np.linalg.norm(signs @ a3.T, axis=1)))
        reach = radius + half_diagonal  # a voxel within the radius of the point is this close to its voxel's centre
        n = int(math.ceil(reach / float(np.linalg.svd(a3, compute_uv=False).min())))
        grid = np.array(np.meshgrid(*[np.arange(-n, n + 1)] * 3, indexing="ij")).reshape(3, -1).T
        w = grid @ a3.T
        dist = np.linalg.norm(w, axis=1)
        keep = np.flatnonzero(dist <= reach * (1 + 1e-12))
        keep = keep[np.argsort(dist[keep], kind="stable")]
        grid, w = grid[keep], w[keep]
        padded = self._padded.get(n)
        if padded is None:
            # C order, so that ravel() below is a view (a NIfTI's data, and so the index, is often in Fortran order)
            padded = np.ascontiguousarray(np.pad(self.index, n, mode="constant", constant_values=-1))
            self._padded.clear()
            self._padded[n] = padded
        strides = np.array([padded.shape[1] * padded.shape[2], padded.shape[2], 1], dtype=np.int64)
        off_flat = grid @ strides
        base = (vox + n) @ strides
        e = np.einsum("ij,kj->ik", vox - ijk, a3)  # world vector from each point to the centre of its own voxel
        ww = np.einsum("ij,ij->i", w, w)
        flat_index = padded.ravel()
        r2 = radius * radius * (1 + 1e-12)
        found = np.full(vox.shape[0], -1, dtype=np.int64)
        ok = np.zeros(vox.shape[0], dtype=bool)
        step = max(1, _CHUNK_SEARCH // grid.shape[0])
        for a in range(0, vox.shape[0], step):
            b = min(a + step, vox.shape[0])
            labels = flat_index[base[a:b, None] + off_flat[None, :]]
            ea = e[a:b]
            d2 = ww[None, :] + 2.0 * (ea @ w.T) + np.einsum("ij,ij->i", ea, ea)[:, None]
            d2[(labels < 0) | (d2 > r2)] = np.inf
            best = np.argmin(d2, axis=1)
            rows = np.arange(b - a)
            hit = np.isfinite(d2[rows, best])
            ok[a:b] = hit
            found[a:b] = np.where(hit, labels[rows, best], -1)
        return found, ok

    def to_connectome(self, lengths: str = "zero") -> Connectome:
        """A connectome of these regions without connections: zero weights, centres (mm) and names as labels.

        `lengths`: ``"zero"`` (default) or ``"euclidean"``, the straight-line distance between region centres
        (mm), a common stand-in for tract lengths when no tractogram is at hand."""
        n = self.n_regions
        if lengths == "zero":
            ln = np.zeros((n, n))
        elif lengths == "euclidean":
            ln = np.linalg.norm(self.centres[:, None, :] - self.centres[None, :, :], axis=-1)
        else:
            raise ValueError(f"Parcellation.to_connectome: lengths={lengths!r}; use 'zero' or 'euclidean'.")
        return Connectome(weights=np.zeros((n, n)), lengths=ln, centres=self.centres, labels=self.names)

    def table(self) -> str:
        """The regions as a TSV: ``index label name n_voxels volume_mm3 x_mm y_mm z_mm`` (index 0-based)."""
        lines = ["index\tlabel\tname\tn_voxels\tvolume_mm3\tx_mm\ty_mm\tz_mm"]
        for r in range(self.n_regions):
            x, y, z = (repr(float(v)) for v in self.centres[r])
            lines.append(
                f"{r}\t{int(self.label_values[r])}\t{self.names[r]}\t{int(self.n_voxels[r])}\t"
                f"{float(self.volumes[r])!r}\t{x}\t{y}\t{z}"
            )
        return "\n".join(lines) + "\n"


def _read_image(image: Any) -> tuple[np.ndarray, np.ndarray, str]:
    if isinstance(image, str | os.PathLike):
        path = Path(image)
        if not path.exists():
            raise FileNotFoundError(f"parcellation: {path} does not exist.")
        import nibabel as nib

        try:
            image = nib.load(str(path))
        except Exception as e:  # nibabel raises several types
            raise ValueError(f"parcellation: could not read {path} with nibabel: {e}") from None
        source = str(path)
    elif hasattr(image, "affine") and hasattr(image, "dataobj"):
        source = f"a {type(image).__name__}"
    else:
        raise TypeError(
            f"parcellation: cannot read a {type(image).__name__}; give a NIfTI path or a nibabel image "
            "(e.g. nibabel.Nifti1Image(labels, affine))."
        )
    if image.affine is None:
        raise ValueError(f"parcellation: {source} has no affine; give an image with its voxel-to-world affine.")
    affine = np.asarray(image.affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise ValueError(f"parcellation: {source} has an unusable affine (singular or not finite):\n{affine}")
    data = np.asanyarray(image.dataobj)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f"parcellation: {source} has shape {data.shape}; expected a 3-D label image (one volume).")
    return np.asarray(data), affine, source


def _lut_mapping(lut: Any) -> dict[int, str]:
    if lut is None:
        return {}
    if isinstance(lut, str | os.PathLike):
        return read_lut(lut)
    if isinstance(lut, Mapping):
        try:
            return {int(k): str(v) for k, v in lut.items()}
        except (TypeError, ValueError):
            raise ValueError("lut: a mapping must be {integer label: name}.") from None
    raise TypeError(f"lut: cannot use a {type(lut).__name__}; give a LUT.txt/TSV path or a {{label: name}} mapping.")


def _region_index(data: np.ndarray, regions: Any, source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Region-index volume (int32, -1 background), label values (N,) and voxel counts (N,)."""
    top = int(data.max())
    if top < (1 << 24):
        counts = np.bincount(data.ravel().astype(np.int64, copy=False), minlength=top + 1)
        present = np.flatnonzero(counts)
    else:
        present, counts_u = np.unique(data, return_counts=True)
        counts = dict(zip(present.tolist(), counts_u.tolist(), strict=True))
    present = present[present != 0]
    if regions is None:
        label_values = present.astype(np.int64)
    else:
        label_values = np.asarray(list(regions), dtype=np.int64).ravel()
        if label_values.size == 0:
            raise ValueError("regions: empty; give the label values that are regions, or None for all.")
        if np.unique(label_values).size != label_values.size:
            raise ValueError("regions: contains repeated labels; give each label value once.")
        missing = np.setdiff1d(label_values, present)
        if missing.size:
            raise ValueError(
                f"regions: labels {', '.join(map(str, missing[:10].tolist()))} are not in {source} (it has "
                f"{present.size} labels, {int(present.min()) if present.size else '-'}..."
                f"{int(present.max()) if present.size else '-'}); give labels present in the image."
            )
        if np.any(label_values == 0):
            raise ValueError("regions: 0 is the background label and cannot be a region.")
    if label_values.size == 0:
        raise ValueError(f"parcellation: {source} has no labelled voxels (all 0); give a label image with regions > 0.")
    if isinstance(counts, dict):
        n_voxels = np.array([counts[int(v)] for v in label_values], dtype=np.int64)
        order = np.argsort(label_values)
        pos = np.searchsorted(label_values[order], data)
        pos = np.minimum(pos, label_values.size - 1)
        hit = label_values[order][pos] == data
        index = np.where(hit, order[pos], -1).astype(np.int32)
    else:
        n_voxels = counts[label_values].astype(np.int64)
        lookup = np.full(top + 1, -1, dtype=np.int32)
        lookup[label_values] = np.arange(label_values.size, dtype=np.int32)
        index = lookup[data]
    return index, label_values, n_voxels


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


# ---------------------------------------------------------------------------------------------------- building


def build_connectome(
    tractogram: Any,
    parcellation: Any,
    *,
    lut: str | os.PathLike | Mapping[int, str] | None = None,
    regions: Sequence[int] | None = None,
    radius: float = DEFAULT_RADIUS,
    min_length: float = 0.0,
    normalise: str = "none",
    lengths: str = "mean",
    directed: bool = False,
    self_connections: str = "drop",
) -> tuple[Connectome, TractogramReport]:
    """Build a connectome from a tractogram and a parcellation.

    **Arguments:**

    - `tractogram`: streamlines in world mm (RAS+): a ``.tck``/``.trk``/``.trx`` path, a nibabel ``Tractogram``
      or ``TractogramFile``, :class:`Streamlines`, or a list of `(n_i, 3)` arrays (:func:`load_streamlines`).
    - `parcellation`: an integer label image (path or nibabel image) or a :class:`Parcellation`.
    - `lut`, `regions`: region names and the labels that are regions (:meth:`Parcellation.load`).
    - `radius`: mm; an end point in a background voxel goes to the nearest labelled voxel within this distance
      (0: no search).
    - `min_length`: mm; shorter streamlines are left out (and counted).
    - `normalise`: ``"none"`` (streamline counts), ``"volume"`` (counts divided by the sum of the two regions'
      volumes, mm^3: ``W[i, j] / (V_i + V_j)``) or ``"count"`` (counts divided by the number of streamlines in
      the tractogram, so a weight is a fraction of all streamlines).
    - `lengths`: tract length of a pair: ``"mean"`` or ``"median"`` length (mm) of its streamlines; 0 where no
      streamline connects the pair.
    - `directed`: keep the direction: ``weights[i, j]`` counts streamlines from region ``j`` (first point) to
      region ``i`` (last point). Default: symmetric, each streamline counted once in ``W[i, j]`` and ``W[j, i]``.
    - `self_connections`: ``"drop"`` (default; counted in the report) or ``"keep"`` (on the diagonal).

    **Returns:** ``(connectome, report)``: the :class:`~vbtjax.connectome.Connectome` with weights, tract lengths
    (mm), region centres (centroids, world mm) and labels (names from the lookup table, else the label values),
    and the :class:`TractogramReport`.

    Raises ``ValueError`` for bad input (NaN points, a label image that is not integer, an empty parcellation or
    tractogram) and when the tractogram's bounding box does not overlap the image's (different spaces).
    """
    if normalise not in NORMALISE_CHOICES:
        raise ValueError(f"normalise={normalise!r}; use one of {', '.join(NORMALISE_CHOICES)}.")
    if lengths not in LENGTH_CHOICES:
        raise ValueError(f"lengths={lengths!r}; use one of {', '.join(LENGTH_CHOICES)}.")
    if self_connections not in SELF_CONNECTION_CHOICES:
        raise ValueError(f"self_connections={self_connections!r}; use one of {', '.join(SELF_CONNECTION_CHOICES)}.")
    radius = _non_negative("radius", radius)
    min_length = _non_negative("min_length", min_length)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    sl = load_streamlines(tractogram)
    timings["load tractogram"] = time.perf_counter() - t
    t = time.perf_counter()
    parc = Parcellation.load(parcellation, lut, regions=regions)
    timings["load parcellation"] = time.perf_counter() - t
    if sl.n_streamlines == 0:
        raise ValueError(f"tractogram: {sl.source} has no streamlines.")

    t = time.perf_counter()
    sl.check_finite("tractogram")
    start, end = sl.endpoints()
    has = sl.counts > 0
    if not has.any():
        raise ValueError(f"tractogram: {sl.source} has {sl.n_streamlines} streamlines but no points.")
    both = np.concatenate([start[has], end[has]])
    t_box = np.stack([both.min(axis=0), both.max(axis=0)])
    i_box = parc.world_bounding_box()
    _check_overlap(t_box, i_box, sl, parc)
    timings["endpoints"] = time.perf_counter() - t

    t = time.perf_counter()
    s = sl.n_streamlines
    reg = np.full(2 * s, -1, dtype=np.int64)
    stat = np.full(2 * s, OUTSIDE, dtype=np.int8)
    idx = np.concatenate([np.flatnonzero(has), s + np.flatnonzero(has)])
    reg[idx], stat[idx] = parc.assign(both, radius)
    r_start, r_end = reg[:s], reg[s:]
    st_start, st_end = stat[:s], stat[s:]
    timings["assignment"] = time.perf_counter() - t

    t = time.perf_counter()
    length = sl.lengths()
    timings["lengths"] = time.perf_counter() - t

    t = time.perf_counter()
    short = (sl.counts < 2) | (length < min_length)
    outside = ~short & ((st_start == OUTSIDE) | (st_end == OUTSIDE))
    unassigned = ~short & ~outside & ((r_start < 0) | (r_end < 0))
    valid = ~short & ~outside & ~unassigned
    self_conn = valid & (r_start == r_end)
    keep_self = self_connections == "keep"
    used = valid if keep_self else valid & ~self_conn
    by_search = int(np.sum(valid & (st_start == BY_SEARCH)) + np.sum(valid & (st_end == BY_SEARCH)))

    n = parc.n_regions
    src, tgt, ln = r_start[used], r_end[used], length[used]
    if directed:
        row, col = tgt, src
    else:
        row, col = np.minimum(src, tgt), np.maximum(src, tgt)
    key = row * n + col
    counts = np.bincount(key, minlength=n * n).astype(np.float64).reshape(n, n)
    tract = np.zeros(n * n)
    if key.size:
        if lengths == "mean":
            sums = np.bincount(key, weights=ln, minlength=n * n)
            nz = counts.ravel() > 0
            tract[nz] = sums[nz] / counts.ravel()[nz]
        else:
            order = np.lexsort((ln, key))
            ks, ls = key[order], ln[order]
            first = np.flatnonzero(np.concatenate([[True], ks[1:] != ks[:-1]]))
            size = np.diff(np.append(first, ks.size))
            tract[ks[first]] = 0.5 * (ls[first + (size - 1) // 2] + ls[first + size // 2])
    tract = tract.reshape(n, n)
    if not directed:
        counts = counts + counts.T - np.diag(np.diag(counts))
        tract = tract + tract.T - np.diag(np.diag(tract))
    weights = counts
    if normalise == "volume":
        weights = counts / (parc.volumes[:, None] + parc.volumes[None, :])
    elif normalise == "count":
        weights = counts / s
    strength = counts.sum(axis=0) + counts.sum(axis=1)
    empty = tuple(parc.names[i] for i in np.flatnonzero(strength == 0))
    n_conn = int(np.count_nonzero(counts if directed else np.triu(counts)))
    timings["matrices"] = time.perf_counter() - t
    timings["total"] = sum(timings.values())

    notes = []
    n_out = int(outside.sum())
    if n_out > 0.1 * s:
        notes.append(
            f"{100.0 * n_out / s:.0f} % of the streamlines end outside the image: are the tractogram and the "
            "parcellation in the same space?"
        )
    if not used.any():
        notes.append("no streamline connects two regions: all weights are zero.")
    for text in notes:
        warnings.warn(f"build_connectome: {text}", stacklevel=2)
    stats = {}
    if used.any():
        stats = {
            "min": float(ln.min()),
            "median": float(np.median(ln)),
            "mean": float(ln.mean()),
            "max": float(ln.max()),
        }
    report = TractogramReport(
        n_streamlines=s,
        n_connecting=int(used.sum()),
        too_short=int(short.sum()),
        outside=n_out,
        unassigned=int(unassigned.sum()),
        self_connections=int(self_conn.sum()),
        self_connections_kept=keep_self,
        endpoints_by_search=by_search,
        n_regions=n,
        n_connections=n_conn,
        regions_without_streamlines=empty,
        min_length=min_length,
        radius=radius,
        normalise=normalise,
        lengths=lengths,
        directed=bool(directed),
        length_mm=stats,
        tractogram_box=_box_tuple(t_box),
        image_box=_box_tuple(i_box),
        tractogram_source=sl.source,
        parcellation_source=parc.source,
        timings=timings,
        notes=tuple(notes),
    )
    conn = Connectome(weights=weights, lengths=tract, centres=parc.centres, labels=parc.names)
    return conn, report


def _box_tuple(box: np.ndarray) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    return tuple(float(v) for v in box[0]), tuple(float(v) for v in box[1])


def _fmt_box(box: np.ndarray) -> str:
    return "[" + ", ".join(f"{lo:.1f}..{hi:.1f}" for lo, hi in zip(box[0], box[1], strict=True)) + "] mm"


def _check_overlap(t_box: np.ndarray, i_box: np.ndarray, sl: Streamlines, parc: Parcellation) -> None:
    if np.all(t_box[0] <= i_box[1]) and np.all(t_box[1] >= i_box[0]):
        return
    extent = np.array(parc.shape) * parc.voxel_sizes
    if np.all(t_box[0] >= -1.0) and np.all(t_box[1] <= extent + parc.voxel_sizes):
        cause = (
            "the streamlines lie within [0, image size in mm]: they look like voxel or 'voxmm' coordinates (e.g. "
            "a .trk read without its header's vox_to_ras, or points saved by a tool in voxel space), not world mm. "
            "Map them to world mm with the image affine (nibabel.affines.apply_affine)"
        )
    else:
        cause = (
            "the tractogram and the parcellation are in different spaces (e.g. native diffusion space vs a "
            "template such as MNI, or the parcellation of another subject), or the points are in voxel "
            "coordinates. Register/resample one to the other, or map the points to world mm (RAS+)"
        )
    raise ValueError(
        f"tractogram and parcellation do not overlap: the end points of {sl.source} span {_fmt_box(t_box)} "
        f"(x, y, z) but the image {parc.source} covers {_fmt_box(i_box)} in world coordinates. Likely cause: "
        f"{cause}."
    )


def _non_negative(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of mm, got {value!r}.") from None
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{name} must be a finite number of mm >= 0, got {value!r}.")
    return v
