"""Structural mapping: a person's connectome from a parcellation image and a tractogram.

The path from imaging outputs to a :class:`~vbtjax.connectome.Connectome`:

1. :class:`Parcellation` reads an integer label image (NIfTI, MGH, any image nibabel reads) and, optionally, a
   lookup table of region names (:func:`read_lut`). It knows each region's voxels, volume (mm^3) and centroid
   (world mm), and assigns points given in world mm (RAS+) to regions through the image affine.
2. :func:`load_streamlines` reads a tractogram (``.tck`` in blocks with NumPy, its header by nibabel; ``.trk``
   with nibabel; ``.trx`` with a small reader of its own) or takes streamlines in memory, always as world mm
   (RAS+), into :class:`Streamlines`: one array of all points plus the offset and point count of each streamline.
   Both live in :mod:`vbtjax.tractogram` and are re-exported here.
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
import math
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..files import MAX_BYTES
from .connectome import Connectome
from .tractogram import TRACTOGRAM_SUFFIXES, Streamlines, apply_affine, load_streamlines  # noqa: F401 (re-exported)

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


# What happened to each end point (Parcellation.assign).
IN_REGION, BY_SEARCH, UNLABELLED, OUTSIDE = 0, 1, 2, 3

_CHUNK_ASSIGN = 1 << 18  # points per block of Parcellation.assign
_CHUNK_SEARCH = 1 << 22  # point x candidate-voxel pairs per block of the radius search


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
        shared = sorted({n for n in names if names.count(n) > 1})
        if shared:
            raise ValueError(
                f"lut: regions of {source} share the names {shared[:8]}; region names become the connectome's "
                "labels and must be unique."
            )
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
        return apply_affine(np.linalg.inv(self.affine), points)

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
    try:
        nbytes = math.prod(image.shape) * np.dtype(image.get_data_dtype()).itemsize
    except (AttributeError, TypeError, ValueError):
        nbytes = 0  # an image without a header's dtype: nothing to check before reading
    if nbytes > MAX_BYTES:
        raise ValueError(
            f"parcellation: {source} declares shape {tuple(image.shape)} ({nbytes} bytes), over the limit of "
            f"{MAX_BYTES} bytes; a damaged header, or not a label image."
        )
    try:
        data = np.asanyarray(image.dataobj)
    except Exception as e:  # noqa: BLE001 - nibabel, gzip and zlib raise several types for damaged data
        raise ValueError(f"parcellation: could not read the voxels of {source} ({type(e).__name__}: {e}).") from None
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
