"""Scenarios that change the brain's structure: :class:`Resect`, :class:`Lesion`, :class:`SlowConduction` and
:class:`Age` (coupling and conduction along an ageing trajectory)."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ...network import Network
from ._base import (
    AbstractScenario,
    as_lists,
    checked_number,
    concrete_array,
    json_number,
    region_list,
    rescale_delays,
    tract_list,
)

AGE_COUPLING_RATE = -0.003
"""Default relative change of the global coupling ``coupling.a`` per year of ageing (-0.3 % a year)."""

AGE_SPEED_RATE = -0.005
"""Default relative change of the conduction speed per year of ageing (-0.5 % a year)."""


# ------------------------------------------------------------------------------------------------------- scenarios
class Resect(AbstractScenario):
    """Surgical resection: the regions are removed from the network.

    **Arguments:**
    - `regions`: a region or a sequence of them, indices ``0 <= i < N`` or labels of ``net.connectome.labels``.

    Their incoming and outgoing weights (rows and columns of ``weights``, self-connections included) are set to 0; the
    number of regions ``N`` is kept so that shapes stay the same (under ``vmap``, in monitors and features). The
    resected regions still run their own dynamics, disconnected: outcome measures should ignore them, using
    :meth:`removed` (the boolean ``(N,)`` mask of resected regions) or :meth:`kept`. Stimuli, noise and sensor gains
    on those regions are left as they are (they reach no other region).
    """

    regions: tuple[int | str, ...] = eqx.field(static=True)

    def __init__(self, regions: Any):
        self.regions = region_list("Resect", "regions", regions)

    def __call__(self, net: Network) -> Network:
        conn = net.connectome.resected(net.connectome.region_indices(self.regions, owner="Resect"))
        return eqx.tree_at(lambda n: n.connectome.weights, net, conn.weights)

    def removed(self, net: Network) -> np.ndarray:
        mask = np.zeros(net.n_regions, dtype=bool)
        mask[list(net.connectome.region_indices(self.regions, owner="Resect"))] = True
        return mask

    def to_dict(self) -> dict[str, Any]:
        return {"type": "Resect", "regions": list(self.regions)}


class Lesion(AbstractScenario):
    """White-matter lesion: the weights of tracts multiplied by `factor`.

    **Arguments:**
    - `tracts`: pairs ``(source, target)`` of regions (indices or labels), or None.
    - `regions`: regions whose every tract (incoming and outgoing) is lesioned, or None.
    - `factor`: what is left of the weights, in [0, 1]: 0 cuts the tracts (default), 0.5 halves them. Differentiable.
    - `directed`: False (default): a tract ``(a, b)`` is lesioned in both directions, ``weights[b, a]`` and
      ``weights[a, b]``; True: only the connection from `a` to `b`, ``weights[b, a]`` (row = target).

    Give `tracts`, `regions`, or both (their union is lesioned, each weight multiplied once). Lengths are unchanged.
    """

    factor: Float[Array, ""]
    tracts: tuple[tuple[int | str, int | str], ...] | None = eqx.field(static=True)
    regions: tuple[int | str, ...] | None = eqx.field(static=True)
    directed: bool = eqx.field(static=True)

    def __init__(self, tracts: Any = None, regions: Any = None, factor: Any = 0.0, *, directed: bool = False):
        self.tracts = tract_list("Lesion", tracts)
        self.regions = region_list("Lesion", "regions", regions, allow_none=True)
        if self.tracts is None and self.regions is None:
            raise ValueError("Lesion: give tracts=[(source, target), ...] and/or regions=[...] to lesion.")
        fix = "give the fraction of the weights left, 0 (cut) to 1 (intact)"
        self.factor = checked_number("Lesion", "factor", factor, fix)
        f = concrete_array(self.factor)
        if f is not None and not 0.0 <= float(f) <= 1.0:
            raise ValueError(f"Lesion: factor must lie in [0, 1], got {float(f)}; {fix}.")
        self.directed = bool(directed)

    def mask(self, net: Network) -> np.ndarray:
        """The ``(N, N)`` boolean mask of the lesioned entries of ``weights``."""
        return net.connectome.tract_mask(self.tracts, self.regions, directed=self.directed, owner="Lesion")

    def __call__(self, net: Network) -> Network:
        w = net.connectome.weights
        w = w * jnp.where(self.mask(net), self.factor.astype(w.dtype), jnp.ones((), w.dtype))
        return eqx.tree_at(lambda n: n.connectome.weights, net, w)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "Lesion",
            "tracts": as_lists(self.tracts),
            "regions": as_lists(self.regions),
            "factor": json_number(self.factor),
            "directed": self.directed,
        }


class SlowConduction(AbstractScenario):
    """Slowed conduction (demyelination): conduction delays multiplied by `factor`.

    **Arguments:**
    - `factor`: how many times slower, ``>= 1`` (2.0: delays doubled, half the speed). Differentiable (with
      ``delay_mode="interpolate"``).
    - `tracts`: pairs ``(source, target)`` (indices or labels); None (default) with no `regions`: every tract.
    - `regions`: regions whose every tract (incoming and outgoing) is slowed.
    - `directed`: as in :class:`Lesion`.

    Globally (no `tracts`, no `regions`) the conduction speed becomes ``speed / factor`` (mm/ms). Per tract, the
    network has a single speed, so the tracts' delays ``lengths / speed`` are multiplied by `factor` by scaling
    their **lengths** (mm): ``lengths[mask] * factor``; the lengths then are effective lengths, not anatomy. With
    TVB's ``delay_mode="round"`` the delays are rounded to whole steps, as always.
    """

    factor: Float[Array, ""]
    tracts: tuple[tuple[int | str, int | str], ...] | None = eqx.field(static=True)
    regions: tuple[int | str, ...] | None = eqx.field(static=True)
    directed: bool = eqx.field(static=True)

    def __init__(self, factor: Any, tracts: Any = None, regions: Any = None, *, directed: bool = False):
        fix = "factor is how many times slower conduction becomes (delays x factor): for half the speed give 2.0"
        self.factor = checked_number("SlowConduction", "factor", factor, fix)
        f = concrete_array(self.factor)
        if f is not None and not float(f) >= 1.0:
            raise ValueError(f"SlowConduction: factor must be >= 1, got {float(f)}; {fix}.")
        self.tracts = tract_list("SlowConduction", tracts)
        self.regions = region_list("SlowConduction", "regions", regions, allow_none=True)
        self.directed = bool(directed)

    @property
    def is_global(self) -> bool:
        """True when every tract is slowed (the speed changes)."""
        return self.tracts is None and self.regions is None

    def mask(self, net: Network) -> np.ndarray:
        """The ``(N, N)`` boolean mask of the slowed tracts (all True when global)."""
        if self.is_global:
            return np.ones((net.n_regions,) * 2, dtype=bool)
        return net.connectome.tract_mask(self.tracts, self.regions, directed=self.directed, owner="SlowConduction")

    def __call__(self, net: Network) -> Network:
        if self.is_global:
            new = eqx.tree_at(lambda n: n.speed, net, net.speed / self.factor.astype(net.speed.dtype))
            return rescale_delays(new, self.factor, 1.0 / self.factor)
        mask = self.mask(net)
        ln = net.connectome.lengths
        ln = ln * jnp.where(mask, self.factor.astype(ln.dtype), jnp.ones((), ln.dtype))
        new = eqx.tree_at(lambda n: n.connectome.lengths, net, ln)
        f = concrete_array(self.factor)
        return rescale_delays(new, None if f is None else np.where(mask, f, 1.0))

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "SlowConduction",
            "factor": json_number(self.factor),
            "tracts": as_lists(self.tracts),
            "regions": as_lists(self.regions),
            "directed": self.directed,
        }


_TRAJECTORIES = ("exponential", "linear")


class Age(AbstractScenario):
    """Ageing by `years`: global coupling and conduction speed moved along a trajectory.

    **Arguments:**
    - `years`: years of ageing (negative: younger). Differentiable.
    - `coupling_rate`: relative change of the global coupling ``coupling.a`` per year, default
      :data:`AGE_COUPLING_RATE` (-0.003: -0.3 % a year).
    - `speed_rate`: relative change of the conduction speed (mm/ms) per year, default :data:`AGE_SPEED_RATE`
      (-0.005: -0.5 % a year).
    - `trajectory`: ``"exponential"`` (default): each quantity multiplied by ``(1 + rate) ** years`` (a constant
      relative change each year, never crossing zero); ``"linear"``: by ``1 + rate * years``.

    The defaults are orders of magnitude, not fitted values: myelin and white-matter integrity decline with age
    (Peters 2002, *J Neurocytol* 31:581; Bennett & Madden 2014, *Neuroscience* 276:187), slowing conduction, and
    structural connectivity weakens, in particular between hemispheres (Lavanga et al. 2023, *NeuroImage* 283:120403,
    "The virtual aging brain"). Set the rates from your own cohort or posterior; combine with :class:`Lesion` for
    region-specific decline. Exponential: 10 years at the defaults give ``a x 0.970`` and ``speed x 0.951``.
    """

    years: Float[Array, ""]
    coupling_rate: Float[Array, ""]
    speed_rate: Float[Array, ""]
    trajectory: str = eqx.field(static=True)

    def __init__(
        self,
        years: Any,
        coupling_rate: Any = AGE_COUPLING_RATE,
        speed_rate: Any = AGE_SPEED_RATE,
        trajectory: str = "exponential",
    ):
        if trajectory not in _TRAJECTORIES:
            raise ValueError(f"Age: trajectory must be 'exponential' or 'linear', got {trajectory!r}.")
        self.trajectory = trajectory
        self.years = checked_number("Age", "years", years, "give the years of ageing, e.g. Age(10)")
        fix = "give a relative change per year, e.g. -0.005 for -0.5 % a year"
        self.coupling_rate = checked_number("Age", "coupling_rate", coupling_rate, fix)
        self.speed_rate = checked_number("Age", "speed_rate", speed_rate, fix)
        for name in ("coupling_rate", "speed_rate"):
            rate, y = concrete_array(getattr(self, name)), concrete_array(self.years)
            if rate is None:
                continue
            if trajectory == "exponential" and not float(rate) > -1:
                raise ValueError(f"Age: {name} must be > -1 (a relative change per year), got {float(rate)}; {fix}.")
            if trajectory == "linear" and y is not None and not 1 + float(rate) * float(y) > 0:
                raise ValueError(
                    f"Age: {name}={float(rate)} over {float(y)} years gives a factor 1 + rate * years = "
                    f"{1 + float(rate) * float(y):.4g} <= 0 on the linear trajectory; use fewer years, a smaller rate "
                    "or trajectory='exponential'."
                )

    def factor(self, rate: Any) -> jax.Array:
        """The multiplier of a quantity changing by `rate` per year after ``years``."""
        if self.trajectory == "linear":
            return 1.0 + rate * self.years
        return (1.0 + rate) ** self.years

    @property
    def coupling_factor(self) -> jax.Array:
        """The multiplier of ``coupling.a``."""
        return self.factor(self.coupling_rate)

    @property
    def speed_factor(self) -> jax.Array:
        """The multiplier of ``speed``."""
        return self.factor(self.speed_rate)

    def __call__(self, net: Network) -> Network:
        a = net.coupling.a
        sf = self.speed_factor
        new = eqx.tree_at(
            lambda n: (n.coupling.a, n.speed),
            net,
            (a * self.coupling_factor.astype(a.dtype), net.speed * sf.astype(net.speed.dtype)),
        )
        return rescale_delays(new, 1.0 / sf, sf)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "Age",
            "years": json_number(self.years),
            "coupling_rate": json_number(self.coupling_rate),
            "speed_rate": json_number(self.speed_rate),
            "trajectory": self.trajectory,
        }
