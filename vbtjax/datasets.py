"""Named data sets: TVB's region connectomes from the ``tvb-data`` package (GPL-3, installed separately)."""

from __future__ import annotations

import importlib.resources

from .connectome import Connectome

__all__ = ["tvb_connectome", "TVB_CONNECTOME_SIZES"]

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
