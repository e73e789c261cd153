"""Parcellations and the mapping of a tractogram onto them: the arrays a connectome is built from.

:class:`LabelImage` reads an integer label image (NIfTI, MGH, any image nibabel reads) and, optionally, a lookup
table of region names (:func:`read_lut`); it knows each region's voxels, volume (mm^3) and centroid (world mm), and
assigns points given in world mm (RAS+) to regions through the image affine. :func:`map_tractogram` assigns the two
end points of every streamline to regions and counts the streamlines between each pair (the weights) and their
lengths (the tract lengths, mm), with a :class:`TractogramReport` of every streamline left out.

This module knows nothing of :class:`~vbtjax.connectome.Connectome`: ``Connectome.from_parcellation`` and
``Connectome.from_tractogram`` build on it, and :mod:`vbtjax.structural` (the public home of these names, with
:class:`~vbtjax.structural.Parcellation` and :func:`~vbtjax.structural.build_connectome`) builds on both.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..files import MAX_BYTES
from .tractogram import Streamlines, TractogramReport, apply_affine, load_streamlines

__all__ = [
    "LabelImage",
    "TractogramMap",
    "map_tractogram",
    "read_lut",
    "NORMALISE_CHOICES",
    "LENGTH_CHOICES",
    "SELF_CONNECTION_CHOICES",
    "DEFAULT_RADIUS",
]

NORMALISE_CHOICES = ("none", "volume", "count")
"""Weight normalisations of a tractogram-built connectome: raw streamline counts, per unit of the two regions' volume,
or as a fraction of all counted streamlines."""
LENGTH_CHOICES = ("mean", "median")
"""How the tract length of an edge is summarised over its streamlines (mm)."""
SELF_CONNECTION_CHOICES = ("drop", "keep")
"""Whether streamlines starting and ending in the same region are dropped or kept on the diagonal."""
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
class LabelImage:
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
    ) -> LabelImage:
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
        if isinstance(image, LabelImage):
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


# ---------------------------------------------------------------------------------------------------- mapping


class TractogramMap(NamedTuple):
    """What :func:`map_tractogram` returns: ``weights`` and tract ``lengths`` `(N, N)` (mm; ``[i, j]`` from region
    ``j`` to region ``i``), the :class:`LabelImage` whose regions they connect and the :class:`TractogramReport`."""

    weights: np.ndarray
    lengths: np.ndarray
    parcellation: LabelImage
    report: TractogramReport


class _Fates(NamedTuple):
    """Per streamline: why it is left out, or that it is used."""

    short: np.ndarray
    outside: np.ndarray
    unassigned: np.ndarray
    self_conn: np.ndarray
    used: np.ndarray
    by_search: int


def map_tractogram(
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
) -> TractogramMap:
    """The weights and tract lengths of a tractogram on a parcellation, as arrays: the work of
    :func:`vbtjax.structural.build_connectome` (see it for the arguments), which wraps them in a
    :class:`~vbtjax.connectome.Connectome`.

    The steps: check the options; load the tractogram and the parcellation; assign the end points to regions
    (:func:`_endpoint_regions`); sort every streamline into used or left out (:func:`_fates`); count and average
    the used ones per pair of regions (:func:`_pair_matrices`); report (:func:`_report`).
    """
    radius, min_length = _check_options(normalise, lengths, self_connections, radius, min_length)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    sl = load_streamlines(tractogram)
    timings["load tractogram"] = time.perf_counter() - t
    t = time.perf_counter()
    parc = LabelImage.load(parcellation, lut, regions=regions)
    timings["load parcellation"] = time.perf_counter() - t
    if sl.n_streamlines == 0:
        raise ValueError(f"tractogram: {sl.source} has no streamlines.")
    reg, stat, boxes = _endpoint_regions(sl, parc, radius, timings)
    t = time.perf_counter()
    length = sl.lengths()
    timings["lengths"] = time.perf_counter() - t
    t = time.perf_counter()
    fates = _fates(sl, length, reg, stat, min_length, self_connections == "keep")
    s, n = sl.n_streamlines, parc.n_regions
    counts, tract = _pair_matrices(reg[0][fates.used], reg[1][fates.used], length[fates.used], n, lengths, directed)
    weights = counts
    if normalise == "volume":
        weights = counts / (parc.volumes[:, None] + parc.volumes[None, :])
    elif normalise == "count":
        weights = counts / s
    timings["matrices"] = time.perf_counter() - t
    timings["total"] = sum(timings.values())
    options = {
        "min_length": min_length,
        "radius": radius,
        "normalise": normalise,
        "lengths": lengths,
        "directed": bool(directed),
        "self_connections_kept": self_connections == "keep",
    }
    report = _report(sl, parc, fates, counts, length[fates.used], boxes, timings, options)
    return TractogramMap(weights, tract, parc, report)


def _check_options(
    normalise: str, lengths: str, self_connections: str, radius: Any, min_length: Any
) -> tuple[float, float]:
    if normalise not in NORMALISE_CHOICES:
        raise ValueError(f"normalise={normalise!r}; use one of {', '.join(NORMALISE_CHOICES)}.")
    if lengths not in LENGTH_CHOICES:
        raise ValueError(f"lengths={lengths!r}; use one of {', '.join(LENGTH_CHOICES)}.")
    if self_connections not in SELF_CONNECTION_CHOICES:
        raise ValueError(f"self_connections={self_connections!r}; use one of {', '.join(SELF_CONNECTION_CHOICES)}.")
    return _non_negative("radius", radius), _non_negative("min_length", min_length)


def _endpoint_regions(
    sl: Streamlines, parc: LabelImage, radius: float, timings: dict[str, float]
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Regions ``(start, end)`` (-1: none) and statuses ``(start, end)`` (:data:`IN_REGION`, ...) of the end points
    of every streamline, and the bounding boxes ``(tractogram, image)``; refuses a tractogram outside the image."""
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
    timings["assignment"] = time.perf_counter() - t
    return (reg[:s], reg[s:]), (stat[:s], stat[s:]), (t_box, i_box)


def _fates(
    sl: Streamlines,
    length: np.ndarray,
    reg: tuple[np.ndarray, np.ndarray],
    stat: tuple[np.ndarray, np.ndarray],
    min_length: float,
    keep_self: bool,
) -> _Fates:
    (r_start, r_end), (st_start, st_end) = reg, stat
    short = (sl.counts < 2) | (length < min_length)
    outside = ~short & ((st_start == OUTSIDE) | (st_end == OUTSIDE))
    unassigned = ~short & ~outside & ((r_start < 0) | (r_end < 0))
    valid = ~short & ~outside & ~unassigned
    self_conn = valid & (r_start == r_end)
    used = valid if keep_self else valid & ~self_conn
    by_search = int(np.sum(valid & (st_start == BY_SEARCH)) + np.sum(valid & (st_end == BY_SEARCH)))
    return _Fates(short, outside, unassigned, self_conn, used, by_search)


def _pair_matrices(
    src: np.ndarray, tgt: np.ndarray, ln: np.ndarray, n: int, lengths: str, directed: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Streamline counts and tract lengths (mean or median, mm; 0 where none) `(n, n)` of streamlines from region
    `src` to region `tgt` of lengths `ln`; symmetric unless `directed`."""
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
    return counts, tract


def _report(
    sl: Streamlines,
    parc: LabelImage,
    fates: _Fates,
    counts: np.ndarray,
    ln: np.ndarray,
    boxes: tuple[np.ndarray, np.ndarray],
    timings: dict[str, float],
    options: dict[str, Any],
) -> TractogramReport:
    """The :class:`TractogramReport`; warns (as ``build_connectome``) when most streamlines end outside the image or
    none connects two regions."""
    s = sl.n_streamlines
    notes = []
    n_out = int(fates.outside.sum())
    if n_out > 0.1 * s:
        notes.append(
            f"{100.0 * n_out / s:.0f} % of the streamlines end outside the image: are the tractogram and the "
            "parcellation in the same space?"
        )
    if not fates.used.any():
        notes.append("no streamline connects two regions: all weights are zero.")
    for text in notes:
        warnings.warn(f"build_connectome: {text}", stacklevel=4)
    stats = {}
    if fates.used.any():
        stats = {
            "min": float(ln.min()),
            "median": float(np.median(ln)),
            "mean": float(ln.mean()),
            "max": float(ln.max()),
        }
    strength = counts.sum(axis=0) + counts.sum(axis=1)
    return TractogramReport(
        n_streamlines=s,
        n_connecting=int(fates.used.sum()),
        too_short=int(fates.short.sum()),
        outside=n_out,
        unassigned=int(fates.unassigned.sum()),
        self_connections=int(fates.self_conn.sum()),
        endpoints_by_search=fates.by_search,
        n_regions=parc.n_regions,
        n_connections=int(np.count_nonzero(counts if options["directed"] else np.triu(counts))),
        regions_without_streamlines=tuple(parc.names[i] for i in np.flatnonzero(strength == 0)),
        length_mm=stats,
        tractogram_box=_box_tuple(boxes[0]),
        image_box=_box_tuple(boxes[1]),
        tractogram_source=sl.source,
        parcellation_source=parc.source,
        timings=timings,
        notes=tuple(notes),
        **options,
    )


def _box_tuple(box: np.ndarray) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    return tuple(float(v) for v in box[0]), tuple(float(v) for v in box[1])


def _fmt_box(box: np.ndarray) -> str:
    return "[" + ", ".join(f"{lo:.1f}..{hi:.1f}" for lo, hi in zip(box[0], box[1], strict=True)) + "] mm"


def _check_overlap(t_box: np.ndarray, i_box: np.ndarray, sl: Streamlines, parc: LabelImage) -> None:
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
