"""TVB objects in and out, as plain arrays: what :meth:`vbtjax.Connectome.from_tvb` and
:meth:`~vbtjax.Connectome.to_tvb` use.

TVB is not a dependency. :func:`connectivity_arrays` reads the attributes of any object shaped like TVB's
``tvb.datatypes.connectivity.Connectivity`` (``weights``, ``tract_lengths``, ``centres``, ``region_labels``), so a
configured TVB connectivity converts without importing TVB; :func:`tvb_connectivity` needs ``tvb-library``
installed (``pip install tvb-library``). Both keep TVB's orientation, which is vbtjax's: ``weights[i, j]`` is from
source ``j`` to target ``i``; tract lengths and centres in mm.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["connectivity_arrays", "tvb_connectivity"]

_REQUIRED = ("weights", "tract_lengths")


def connectivity_arrays(connectivity: Any) -> dict[str, Any]:
    """The arguments of a :class:`~vbtjax.Connectome` (``weights``, ``lengths``, ``centres``, ``labels``) from a
    TVB ``Connectivity`` (or any object with its attributes).

    Reads ``weights`` ``(N, N)``, ``tract_lengths`` ``(N, N)`` (mm), and where present and of the right shape
    ``centres`` ``(N, 3)`` (mm) and ``region_labels`` ``(N,)`` (else None). The weights are used as given (TVB's
    ``Connectivity.configure()`` does not normalise them either). A TVB connectivity's ``speed`` (mm/ms) belongs to
    the simulation: pass it to :class:`~vbtjax.Network` (``speed=float(conn.speed[0])``)."""
    missing = [a for a in _REQUIRED if getattr(connectivity, a, None) is None]
    if missing:
        raise TypeError(
            f"Connectome.from_tvb: connectivity has no {', '.join(missing)}; expected a TVB "
            "tvb.datatypes.connectivity.Connectivity (loaded, e.g. Connectivity.from_file()) or an object with its "
            "attributes weights (N, N) and tract_lengths (N, N) in mm."
        )
    weights = np.asarray(connectivity.weights, dtype=float)
    lengths = np.asarray(connectivity.tract_lengths, dtype=float)
    n = weights.shape[0] if weights.ndim == 2 else None
    centres = getattr(connectivity, "centres", None)
    centres = np.asarray(centres, dtype=float) if centres is not None and np.size(centres) else None
    if centres is not None and centres.shape != (n, 3):
        centres = None  # TVB leaves unset arrays empty or of another shape: not region centres
    labels = getattr(connectivity, "region_labels", None)
    labels = [str(s) for s in np.asarray(labels).reshape(-1)] if labels is not None and np.size(labels) else None
    if labels is not None and len(labels) != n:
        labels = None
    return dict(weights=weights, lengths=lengths, centres=centres, labels=labels)


def tvb_connectivity(weights: Any, lengths: Any, centres: Any = None, labels: Any = None, speed: float | None = None):
    """A configured TVB ``Connectivity`` with these weights ``(N, N)``, tract lengths ``(N, N)`` (mm), centres
    ``(N, 3)`` (mm; the origin when None) and labels (``"r0", "r1", ...`` when None), and `speed` (mm/ms) when
    given. Needs ``tvb-library``."""
    try:
        from tvb.datatypes.connectivity import Connectivity
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Connectome.to_tvb needs TVB: pip install tvb-library (vbtjax does not depend on it)."
        ) from None
    n = np.shape(weights)[0]
    labels = tuple(labels) if labels is not None else tuple(f"r{i}" for i in range(n))
    centres = np.zeros((n, 3)) if centres is None else np.asarray(centres, dtype=float)
    kwargs: dict[str, Any] = {}
    if speed is not None:
        speed = float(speed)
        if not (np.isfinite(speed) and speed > 0):
            raise ValueError(f"Connectome.to_tvb: speed must be a positive number of mm/ms, got {speed}.")
        kwargs["speed"] = np.array([speed])
    conn = Connectivity(
        weights=np.array(weights, dtype=float),
        tract_lengths=np.array(lengths, dtype=float),
        centres=centres,
        region_labels=np.array(labels),
        **kwargs,
    )
    conn.configure()
    return conn
