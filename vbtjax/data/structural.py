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

The parts without a :class:`~vbtjax.connectome.Connectome` (the label image and the mapping of a tractogram onto
it, as arrays) live in :mod:`vbtjax.data.parcellation`, so that ``Connectome.from_parcellation`` and
``Connectome.from_tractogram`` build on them without importing this module; this module builds on both.

Everything is vectorised with NumPy over streamlines: only the end points are looked up, and lengths come from the
norms of the segments of the concatenated points summed per streamline with ``np.add.reduceat``.

Convention of the weights: ``weights[i, j]`` is from source region ``j`` to target region ``i``. With
``directed=True`` the source of a streamline is the region of its first point and the target that of its last;
by default the matrix is symmetric (a streamline counts for both directions, once).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from .connectome import Connectome
from .parcellation import (  # noqa: F401 (re-exported)
    BY_SEARCH,
    DEFAULT_RADIUS,
    IN_REGION,
    LENGTH_CHOICES,
    NORMALISE_CHOICES,
    OUTSIDE,
    SELF_CONNECTION_CHOICES,
    UNLABELLED,
    LabelImage,
    map_tractogram,
    read_lut,
)
from .tractogram import (  # noqa: F401 (re-exported)
    TRACTOGRAM_SUFFIXES,
    Streamlines,
    TractogramReport,
    apply_affine,
    load_streamlines,
)

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


class Parcellation(LabelImage):
    """Regions of an integer label image, in world mm, and the connectome of those regions.

    Everything of :class:`vbtjax.data.parcellation.LabelImage` (build with :meth:`load`; fields `label_values`,
    `names`, `affine`, `shape`, `n_voxels`, `volumes`, `centres`, `index`, `source`; :meth:`assign`,
    :meth:`table`), plus :meth:`to_connectome`.
    """

    def to_connectome(self, lengths: str = "zero") -> Connectome:
        """A connectome of these regions without connections: zero weights, centres (mm) and names as labels.

        `lengths`: ``"zero"`` (default) or ``"euclidean"``, the straight-line distance between region centres
        (mm), a common stand-in for tract lengths when no tractogram is at hand."""
        return Connectome.from_parcellation(self, lengths=lengths)


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
    m = map_tractogram(
        tractogram,
        parcellation,
        lut=lut,
        regions=regions,
        radius=radius,
        min_length=min_length,
        normalise=normalise,
        lengths=lengths,
        directed=directed,
        self_connections=self_connections,
    )
    conn = Connectome(weights=m.weights, lengths=m.lengths, centres=m.parcellation.centres, labels=m.parcellation.names)
    return conn, m.report
