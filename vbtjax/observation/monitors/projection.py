"""Projection monitors (TVB's ``EEG``, ``MEG``, ``iEEG``): sensor signals through a region-level gain matrix.

Each sample is the gain applied to the temporal average of the recorded variables over one period:
``y[k, v] = gain @ mean_{steps of window k} x[v]``, for each recorded variable ``v``. TVB accumulates
``gain @ x`` every step and divides by the steps per period, which is the same linear map; vbtjax averages first
(one matrix product per sample instead of per step), reusing :class:`~vbtjax.monitors.TemporalAverage`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..._params import as_float_array, is_concrete
from ...data.sensors import Sensors, region_gain_from_surface, seeg_gain_point_source, tvb_projection
from ._base import AbstractMonitor, TemporalAverage, as_tuple

__all__ = ["AbstractProjection", "EEG", "MEG", "SEEG", "TVB_PROJECTION_PERIOD"]

TVB_PROJECTION_PERIOD = 1e3 / 1024.0
"""TVB's default sampling period of monitors (ms): 0.9765625 ms, i.e. 1024 Hz."""


class AbstractProjection(AbstractMonitor):
    """Base class of the projection monitors.

    **Arguments:**

    - `gain`: ``(n_sensors, N)`` gain (lead-field) matrix, row = sensor, column = region; differentiable. Its
      column count must equal the network's number of regions (checked when the monitor meets the network).
    - `period`: sampling period in ms, a whole multiple of ``dt`` (default TVB's ``1e3 / 1024`` ms = 1024 Hz,
      which needs e.g. ``dt = period / 8 = 0.1220703125``; with ``dt = 0.1`` pick e.g. ``period=1.0``).
    - `variables_of_interest`: state variables to project, names or indices (default: all of them). Each is
      projected separately, like TVB's projection monitors do with the model's variables of interest.
    - `sensors`: optional :class:`~vbtjax.sensors.Sensors`, one per gain row (labels/positions, not used in the
      computation).

    Output ``ys`` has shape ``(T, n_voi, n_sensors)``; sample ``k`` averages steps ``k q + 1 .. (k + 1) q``
    (``q = period / dt``) and is stamped ``((k + 1) q - q / 2) dt``, as TVB and ``TemporalAverage`` do (TVB's
    windows coincide when its history length ``H = 1 (mod q)``: see :class:`~vbtjax.monitors.TemporalAverage`).
    TVB's EEG ``reference`` and observation noise (``obsnoise``) are not implemented: sensor signals are
    reference-free and noiseless (TVB adds ``obsnoise`` by default: compare with TVB runs made with
    ``obsnoise=None``). TVB indexes its monitors' ``variables_of_interest`` among the model's variables of interest;
    here they index the state variables.
    """

    gain: Float[Array, "n_sensors N"]
    sensors: Sensors | None
    _tvb_kind: ClassVar[str | None] = None

    def __init__(
        self,
        gain: Any,
        period: float = TVB_PROJECTION_PERIOD,
        variables_of_interest: Any = None,
        sensors: Sensors | None = None,
    ):
        self.gain = as_float_array(gain)
        self.period = period
        self.variables_of_interest = as_tuple(variables_of_interest)
        self.sensors = sensors

    def __check_init__(self):
        name = type(self).__name__
        g = self.gain
        if g.ndim != 2 or g.shape[0] == 0 or g.shape[1] == 0:
            raise ValueError(f"{name}: gain has shape {g.shape}; expected a (n_sensors, N) matrix (sensors x regions).")
        if is_concrete(g) and not bool(jnp.all(jnp.isfinite(g))):
            raise ValueError(
                f"{name}: gain contains NaN or inf; zero or drop those sensors (tvb-data marks non-brain channels "
                "with NaN; vbtjax.sensors.tvb_projection zeroes them as TVB does)."
            )
        if self.sensors is not None:
            if not isinstance(self.sensors, Sensors):
                raise TypeError(f"{name}: sensors must be a vbtjax.sensors.Sensors or None.")
            if self.sensors.n_sensors != g.shape[0]:
                raise ValueError(
                    f"{name}: gain has shape {g.shape} ({g.shape[0]} sensors) but sensors has "
                    f"{self.sensors.n_sensors}; give one gain row per sensor."
                )

    @property
    def n_sensors(self) -> int:
        """Number of sensors (rows of ``gain``)."""
        return self.gain.shape[0]

    def _average(self) -> TemporalAverage:
        return TemporalAverage(period=self.period, variables_of_interest=self.variables_of_interest)

    def _check_regions(self, n: int) -> None:
        if self.gain.shape[1] != n:
            hint = " (it looks transposed: pass gain.T)" if self.gain.shape[0] == n else ""
            raise ValueError(
                f"{type(self).__name__}: gain has shape {tuple(self.gain.shape)} but the network has N = {n} "
                f"regions; the gain must be (n_sensors, {n}) (sensors x regions){hint}."
            )

    def init(self, x, dt):
        self._check_regions(x.shape[-1])
        return self._average().init(x, dt)

    def chunk(self, mstate, xs, n_start, dt):
        self._check_regions(xs.shape[-1])
        mstate, means = self._average().chunk(mstate, xs, n_start, dt)  # (S, n_voi, N)
        gain = self.gain.astype(means.dtype)
        samples = jnp.einsum("kn,svn->svk", gain, means, precision=jax.lax.Precision.HIGHEST)
        return mstate, samples

    def sample_shape(self, n_voi, n_regions):
        return (n_voi, self.n_sensors)

    def sample_times(self, n_samples, dt):
        return self._average().sample_times(n_samples, dt)

    @classmethod
    def from_tvb(
        cls,
        n: int | None = None,
        *,
        reduce: str = "sum",
        usable_only: bool = False,
        period: float = TVB_PROJECTION_PERIOD,
        variables_of_interest: Any = None,
    ):
        """The monitor with a region gain built from ``tvb-data``'s projection matrix for the 76-region connectome
        (:func:`vbtjax.datasets.tvb_connectome` ``(76)``): :func:`vbtjax.sensors.tvb_projection` reduced by
        :func:`vbtjax.sensors.region_gain_from_surface` (``reduce="sum"`` is TVB's region-level gain).

        - `n`: number of sensors (EEG: 65 default, or 62; MEG: 276).
        - `usable_only`: drop the non-brain channels whose gain is NaN in the file (TVB keeps them with zero gain).
        """
        if cls._tvb_kind is None:
            raise ValueError(
                f"{cls.__name__}.from_tvb: tvb-data ships no {cls.__name__} projection matrix; build a region gain "
                "with vbtjax.sensors.seeg_gain_point_source(contacts, centres) and pass it as gain=."
            )
        proj = tvb_projection(cls._tvb_kind, n)
        gain = region_gain_from_surface(proj.projection, proj.region_mapping, 76, reduce=reduce)
        sensors = proj.sensors
        if usable_only:
            keep = np.flatnonzero(proj.usable)
            gain, sensors = gain[keep], sensors.subset(keep)
        return cls(gain, period=period, variables_of_interest=variables_of_interest, sensors=sensors)


class EEG(AbstractProjection):
    """Electroencephalography: ``gain`` is an EEG lead field, sensors x regions (see :class:`AbstractProjection`).

    ``EEG.from_tvb()`` uses ``tvb-data``'s ``eeg_brainstorm_65`` lead field for the 76-region connectome.
    """

    _tvb_kind: ClassVar[str | None] = "eeg"


class MEG(AbstractProjection):
    """Magnetoencephalography: ``gain`` is an MEG lead field, sensors x regions (see :class:`AbstractProjection`).

    ``MEG.from_tvb()`` uses ``tvb-data``'s ``meg_brainstorm_276`` lead field for the 76-region connectome.
    """

    _tvb_kind: ClassVar[str | None] = "meg"


class SEEG(AbstractProjection):
    """Stereo-EEG (TVB's ``iEEG``): ``gain`` is contacts x regions (see :class:`AbstractProjection`), e.g. from
    :func:`vbtjax.sensors.seeg_gain_point_source`."""

    @classmethod
    def from_contacts(
        cls,
        contacts: Any,
        centres: Any,
        *,
        min_distance: float = 1.0,
        normalise: str | None = None,
        period: float = TVB_PROJECTION_PERIOD,
        variables_of_interest: Any = None,
        sensors: Sensors | None = None,
    ) -> SEEG:
        """SEEG monitor with the inverse-square point-source gain of
        :func:`vbtjax.sensors.seeg_gain_point_source` (contacts and region centres in mm)."""
        gain = seeg_gain_point_source(contacts, centres, min_distance=min_distance, normalise=normalise)
        return cls(gain, period=period, variables_of_interest=variables_of_interest, sensors=sensors)
