"""What-if scenarios: the interventions clinicians ask about, as pure transformations of a :class:`~vbtjax.Network`.

A scenario is an Equinox module called on a network, ``new_net = scenario(net)``: it returns a new network and
changes nothing in place. Every scenario is built from ``eqx.tree_at`` and ``jnp`` arithmetic on the network's leaves,
so it works on networks whose leaves are traced: inside ``jax.jit``, ``jax.grad`` and ``jax.vmap`` over posterior
samples (``jax.vmap(lambda a: simulate(scenario(eqx.tree_at(lambda n: n.coupling.a, net, a)), ...))``).

| scenario | what changes |
|---|---|
| :class:`Resect` | the regions receive and send nothing (rows and columns of ``weights`` zeroed; ``N`` kept) |
| :class:`Lesion` | the weights of tracts, or of all tracts of regions, multiplied by ``factor`` in [0, 1] |
| :class:`SlowConduction` | delays times ``factor >= 1``: ``speed / factor``, or the tracts' ``lengths * factor`` |
| :class:`AddStimulus` | a :class:`~vbtjax.stimulus.Stimulus` appended to the network's stimuli |
| :class:`Age` | global coupling ``coupling.a`` and conduction ``speed`` moved along an ageing trajectory |
| :class:`SetParameter` | a parameter (``"model.x0"``, ``"coupling.a"``, ``"speed"``, ...) set, at all or some regions |
| :class:`Compose` | several scenarios applied in order; also ``first >> second`` |

Regions are given as indices ``0 <= i < N`` or as labels of ``net.connectome.labels``; they are resolved when the
scenario is applied (static: no arrays involved). A tract is a pair ``(source, target)``; by default both directions
are affected (``directed=False``).

Numeric arguments (factors, years, rates, values) are array leaves of the scenario, checked when the scenario is
built; region and tract lists, paths and options are static.

**Delays under transformations.** A simulation of a network with traced lengths or speed lays out its delay buffer
from the delays recorded when the network was built (``net.edges``, for speeds within ``net.speed_range``). The
scenarios that change delays (:class:`SlowConduction`, :class:`Age`, :class:`SetParameter` of ``"speed"``) update
that record (and ``speed_range``) with their own, concrete, factors, so that e.g. ``SlowConduction(2.0)`` applied
inside ``jax.vmap`` over speeds simulates correctly. When a scenario's own factor is traced (vmapping over the
scenario), the record cannot follow, and the simulation checks at run time that the delays still fit.

**Outcomes of resections.** A resected region stays in the network (so shapes do not change under ``vmap``) and still
has its own dynamics, but is disconnected: whatever it does is not part of the brain any more. Outcome measures
should ignore it: :meth:`AbstractScenario.removed` gives the boolean ``(N,)`` mask of removed regions of any scenario.

**Files and command lines.** :meth:`AbstractScenario.to_dict` gives a JSON-able dict (with a ``"type"`` key) that
:func:`scenario_from_dict` reads back; stimuli are written through their fields (temporal pattern type and
parameters, regions, weight, variables). :func:`parse_scenario` reads the short text form used on the command line
(``"resect:3,17+slow:2.0"``); its grammar is in :data:`GRAMMAR`.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import re
from collections.abc import Sequence
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .. import stimulus as _stimulus
from .._params import as_float_array, is_concrete
from ..network import Network
from ..simulation.delays import EdgePattern
from ..stimulus import Stimulus

__all__ = [
    "AbstractScenario",
    "Resect",
    "Lesion",
    "SlowConduction",
    "AddStimulus",
    "Age",
    "SetParameter",
    "Compose",
    "scenario_from_dict",
    "parse_scenario",
    "GRAMMAR",
    "AGE_COUPLING_RATE",
    "AGE_SPEED_RATE",
]

AGE_COUPLING_RATE = -0.003
"""Default relative change of the global coupling ``coupling.a`` per year of ageing (-0.3 % a year)."""

AGE_SPEED_RATE = -0.005
"""Default relative change of the conduction speed per year of ageing (-0.5 % a year)."""


# ------------------------------------------------------------------------------------------------------------ helpers
def _concrete(x: Any) -> np.ndarray | None:
    """``x`` as a NumPy array when its values are known now, else None (traced)."""
    return np.asarray(x) if is_concrete(x) else None


def _number(owner: str, name: str, value: Any, fix: str) -> jax.Array:
    """A scalar float array; ValueError naming the argument unless it is a finite scalar."""
    try:
        x = as_float_array(value)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: {name} must be a number, got {value!r}; {fix}.") from None
    if x.ndim != 0:
        raise ValueError(f"{owner}: {name} must be a scalar, got shape {x.shape}; {fix}.")
    if is_concrete(x) and not math.isfinite(float(x)):
        raise ValueError(f"{owner}: {name} must be finite, got {float(x)}; {fix}.")
    return x


def _region_list(owner: str, name: str, regions: Any, *, allow_none: bool = False) -> tuple[int | str, ...] | None:
    """Regions as a static tuple of ints (>= 0) and labels; checked against a network when applied."""
    if regions is None:
        if allow_none:
            return None
        raise ValueError(f"{owner}: give {name}, region indices or labels, e.g. {name}=[3, 17] or {name}=['lAMYG'].")
    if isinstance(regions, str | int | np.integer):
        regions = (regions,)
    elif isinstance(regions, np.ndarray | jax.Array):
        regions = np.asarray(regions).ravel().tolist()
    out = []
    for r in regions:
        if isinstance(r, str):
            if not r:
                raise ValueError(f"{owner}: {name} holds an empty label.")
            out.append(r)
        elif isinstance(r, int | np.integer) and not isinstance(r, bool):
            if int(r) < 0:
                raise ValueError(f"{owner}: {name} holds the negative index {int(r)}; give indices 0..N-1.")
            out.append(int(r))
        else:
            raise ValueError(
                f"{owner}: {name} must hold region indices (int) or labels (str), got {r!r} ({type(r).__name__})."
            )
    if not out:
        raise ValueError(f"{owner}: {name} is empty; give at least one region.")
    return tuple(out)


def _tract_list(owner: str, tracts: Any) -> tuple[tuple[int | str, int | str], ...] | None:
    if tracts is None:
        return None
    if isinstance(tracts, np.ndarray | jax.Array):
        tracts = np.asarray(tracts).tolist()
    out = []
    for k, t in enumerate(tracts):
        if isinstance(t, str) or not isinstance(t, Sequence | np.ndarray) or len(t) != 2:
            raise ValueError(
                f"{owner}: tracts[{k}] must be a pair (source, target) of regions, got {t!r}; e.g. tracts=[(3, 17)]."
            )
        pair = _region_list(owner, f"tracts[{k}]", list(t))
        out.append((pair[0], pair[1]))
    if not out:
        raise ValueError(f"{owner}: tracts is empty; give at least one (source, target) pair, or tracts=None.")
    return tuple(out)


def _json_number(x: Any) -> Any:
    """A concrete array as a JSON number or nested list; non-finite numbers as the strings "inf", "-inf", "nan"."""
    a = _concrete(x)
    if a is None:
        raise ValueError("to_dict: the scenario holds traced values (inside jit/vmap); serialise it outside.")

    def one(v: float) -> float | str:
        return float(v) if math.isfinite(v) else str(float(v))

    if a.ndim == 0:
        return one(float(a))
    return jax.tree.map(one, a.astype(float).tolist())


def _from_json_number(x: Any) -> Any:
    if isinstance(x, list):
        return [_from_json_number(v) for v in x]
    return float(x)  # float("inf"), float("nan") read the strings back


def _lists(x: Any) -> Any:
    """Tuples to lists, recursively (JSON)."""
    if isinstance(x, tuple | list):
        return [_lists(v) for v in x]
    return x


def _replace_static(net: Network, **fields: Any) -> Network:
    """``net`` with its static delay layout (``edges``, ``speed_range``) replaced (``eqx.tree_at`` only reaches the
    leaves)."""
    return net.with_layout(**fields)


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


def _rescale_delays(net: Network, delay_factor: Any, speed_factor: Any = None) -> Network:
    """``net`` with its recorded delays (``edges``) multiplied by ``delay_factor`` (scalar or ``(N, N)``) and its
    ``speed_range`` by ``speed_factor``, when those factors are concrete; see the module docstring."""
    df = None if delay_factor is None else _concrete(delay_factor)
    sf = None if speed_factor is None else _concrete(speed_factor)
    changes: dict[str, Any] = {}
    if net.edges is not None and df is not None:
        e = net.edges
        widen = 1e-9  # relative: rounding the traced delays must not fall outside the layout
        changes["edges"] = EdgePattern(
            mask=e.mask,
            delays_ms=_frozen(e.delays_ms * df),
            shortest_ms=_frozen(e.shortest_ms * df * (1 - widen)),
            longest_ms=_frozen(e.longest_ms * df * (1 + widen)),
        )
    if net.speed_range is not None and sf is not None:
        lo, hi = net.speed_range
        changes["speed_range"] = (float(lo * sf), float(hi * sf))
    return _replace_static(net, **changes) if changes else net


# ------------------------------------------------------------------------------------------------------------ base
class AbstractScenario(eqx.Module):
    """A what-if intervention: a pure function from a :class:`~vbtjax.Network` to a new one.

    ``scenario(net)`` works on traced networks (inside ``jit``/``vmap``/``grad``). ``first >> second`` is
    ``Compose(first, second)``: `first` is applied, then `second` (``>>`` rather than ``+``, because the order
    matters; ``+`` raises a ``TypeError`` saying so).
    """

    _registry: ClassVar[dict[str, type[AbstractScenario]]] = {}

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        if cls.__module__ == __name__ and not cls.__name__.startswith("Abstract"):  # scenario_from_dict reads these
            AbstractScenario._registry[cls.__name__] = cls

    @abc.abstractmethod
    def __call__(self, net: Network) -> Network:
        """The network after the intervention."""

    def removed(self, net: Network) -> np.ndarray:
        """The boolean ``(N,)`` NumPy mask of the regions this scenario removes from ``net`` (resected): outcome
        measures should ignore them. All False except for :class:`Resect` (and compositions holding one)."""
        return np.zeros(net.n_regions, dtype=bool)

    def kept(self, net: Network) -> np.ndarray:
        """``~removed(net)``: the regions whose outcomes are meaningful after the intervention."""
        return ~self.removed(net)

    @abc.abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict with a ``"type"`` key; :func:`scenario_from_dict` reads it back."""

    def __rshift__(self, other: AbstractScenario) -> Compose:
        if not isinstance(other, AbstractScenario):
            return NotImplemented
        return Compose(self, other)

    def __add__(self, other: Any):
        raise TypeError(
            "scenarios compose with >> (order matters: first >> second applies first, then second), not +; "
            "or use Compose(first, second)."
        )


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
        self.regions = _region_list("Resect", "regions", regions)

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
        self.tracts = _tract_list("Lesion", tracts)
        self.regions = _region_list("Lesion", "regions", regions, allow_none=True)
        if self.tracts is None and self.regions is None:
            raise ValueError("Lesion: give tracts=[(source, target), ...] and/or regions=[...] to lesion.")
        fix = "give the fraction of the weights left, 0 (cut) to 1 (intact)"
        self.factor = _number("Lesion", "factor", factor, fix)
        f = _concrete(self.factor)
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
            "tracts": _lists(self.tracts),
            "regions": _lists(self.regions),
            "factor": _json_number(self.factor),
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
        self.factor = _number("SlowConduction", "factor", factor, fix)
        f = _concrete(self.factor)
        if f is not None and not float(f) >= 1.0:
            raise ValueError(f"SlowConduction: factor must be >= 1, got {float(f)}; {fix}.")
        self.tracts = _tract_list("SlowConduction", tracts)
        self.regions = _region_list("SlowConduction", "regions", regions, allow_none=True)
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
            return _rescale_delays(new, self.factor, 1.0 / self.factor)
        mask = self.mask(net)
        ln = net.connectome.lengths
        ln = ln * jnp.where(mask, self.factor.astype(ln.dtype), jnp.ones((), ln.dtype))
        new = eqx.tree_at(lambda n: n.connectome.lengths, net, ln)
        f = _concrete(self.factor)
        return _rescale_delays(new, None if f is None else np.where(mask, f, 1.0))

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "SlowConduction",
            "factor": _json_number(self.factor),
            "tracts": _lists(self.tracts),
            "regions": _lists(self.regions),
            "directed": self.directed,
        }


class AddStimulus(AbstractScenario):
    """Stimulation (e.g. a stimulation protocol through implanted electrodes, TMS): a stimulus is added.

    **Arguments:**
    - `stimulus`: a :class:`~vbtjax.stimulus.Stimulus`; its regions are indices.

    The stimulus is appended to ``net.stimulus`` (``None`` becomes a tuple of one); the stimuli's effects add up. It
    is checked against the network's model and number of regions when applied. Serialised through its fields (see
    :meth:`to_dict`).
    """

    stimulus: Stimulus

    def __init__(self, stimulus: Stimulus):
        if not isinstance(stimulus, Stimulus):
            raise TypeError(
                f"AddStimulus: stimulus must be a vbtjax.stimulus.Stimulus, got {type(stimulus).__name__}; e.g. "
                "Stimulus(PulseTrain(period=100.0, width=5.0, amplitude=2.0), regions=[3])."
            )
        self.stimulus = stimulus

    def __call__(self, net: Network) -> Network:
        try:
            self.stimulus.check(net.model, net.n_regions)
        except ValueError as e:
            raise ValueError(f"AddStimulus: the stimulus does not fit the network: {e}") from None
        stimuli = (*(net.stimulus or ()), self.stimulus)
        return eqx.tree_at(lambda n: n.stimulus, net, stimuli, is_leaf=lambda x: x is None)

    def to_dict(self) -> dict[str, Any]:
        """``{"type": "AddStimulus", "stimulus": {"temporal": {"type": NAME, PARAM: value, ...}, "regions": ...,
        "weight": ..., "variables": ...}}``; ``NAME`` a temporal pattern of :mod:`vbtjax.stimulus`."""
        s = self.stimulus
        temporal = {"type": type(s.temporal).__name__}
        for f in dataclasses.fields(s.temporal):
            temporal[f.name] = _json_number(getattr(s.temporal, f.name))
        return {
            "type": "AddStimulus",
            "stimulus": {
                "temporal": temporal,
                "regions": _lists(s.regions),
                "weight": _json_number(s.weight),
                "variables": _lists(s.variables),
            },
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
        self.years = _number("Age", "years", years, "give the years of ageing, e.g. Age(10)")
        fix = "give a relative change per year, e.g. -0.005 for -0.5 % a year"
        self.coupling_rate = _number("Age", "coupling_rate", coupling_rate, fix)
        self.speed_rate = _number("Age", "speed_rate", speed_rate, fix)
        for name in ("coupling_rate", "speed_rate"):
            rate, y = _concrete(getattr(self, name)), _concrete(self.years)
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
        return _rescale_delays(new, 1.0 / sf, sf)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "Age",
            "years": _json_number(self.years),
            "coupling_rate": _json_number(self.coupling_rate),
            "speed_rate": _json_number(self.speed_rate),
            "trajectory": self.trajectory,
        }


_NOT_SETTABLE = ("connectome", "edges", "delay_mode", "speed_range")


class SetParameter(AbstractScenario):
    """A parameter changed (a drug, a modelled pathology, a hypothesis): one leaf of the network set to `value`.

    **Arguments:**
    - `path`: the dotted path of an array leaf of the network: ``"model.x0"``, ``"model.eta"``, ``"coupling.a"``,
      ``"speed"`` (mm/ms), ``"noise.nsig"``, ``"stimulus.0.weight"`` (tuple elements by index). The connectome is
      changed with :class:`Resect`, :class:`Lesion` and :class:`SlowConduction` instead.
    - `value`: a scalar, or ``(N,)`` one value per region; with `regions`, a scalar or one value per listed region.
      Differentiable.
    - `regions`: None (default): the whole leaf becomes `value` (a scalar leaf given ``(N,)`` values becomes
      per-region; a per-region leaf given a scalar is filled with it); else only those regions (indices or labels)
      change, and the leaf becomes per-region ``(N,)``.

    The units are those of the parameter (see the model's docstring). ``"speed"`` takes a scalar only, no regions.
    """

    value: Float[Array, "*n"]
    path: str = eqx.field(static=True)
    regions: tuple[int | str, ...] | None = eqx.field(static=True)

    def __init__(self, path: str, value: Any, regions: Any = None):
        if not isinstance(path, str) or not re.fullmatch(r"[A-Za-z_]\w*(\.\w+)*", path):
            raise ValueError(
                f"SetParameter: path must be a dotted leaf path such as 'model.x0', 'coupling.a' or 'speed', got "
                f"{path!r}."
            )
        if path.split(".")[0] in _NOT_SETTABLE:
            raise ValueError(
                f"SetParameter: path {path!r} is not a parameter; change the connectome with Resect, Lesion or "
                "SlowConduction, and the speed with path='speed'."
            )
        self.path = path
        try:
            self.value = as_float_array(value)
        except (TypeError, ValueError):
            raise ValueError(f"SetParameter: value must be a number or an array of numbers, got {value!r}.") from None
        if self.value.ndim > 1:
            raise ValueError(
                f"SetParameter: value has shape {self.value.shape}; give a scalar or one value per region, (N,)."
            )
        v = _concrete(self.value)
        if v is not None and not np.all(np.isfinite(v)):
            raise ValueError(f"SetParameter: value for {path!r} contains NaN or inf; give finite values.")
        self.regions = _region_list("SetParameter", "regions", regions, allow_none=True)
        if self.regions is not None and self.value.ndim == 1 and self.value.shape[0] != len(self.regions):
            raise ValueError(
                f"SetParameter: value has {self.value.shape[0]} entries for {len(self.regions)} regions; give a "
                "scalar or one value per listed region."
            )
        if path == "speed":
            if self.value.ndim != 0 or self.regions is not None:
                raise ValueError("SetParameter: 'speed' is one conduction speed (mm/ms): give a scalar, no regions.")
            if v is not None and not float(v) > 0:
                raise ValueError(f"SetParameter: speed must be positive (mm/ms), got {float(v)}.")

    def _where(self, net: Network):
        """The ``tree_at`` selector of the leaf, after checking that the path leads to an array leaf."""
        parts = self.path.split(".")
        obj: Any = net
        for depth, part in enumerate(parts):
            where = ".".join(parts[:depth]) or "the network"
            if isinstance(obj, tuple):
                if not part.isdigit() or int(part) >= len(obj):
                    raise ValueError(
                        f"SetParameter: path {self.path!r}: {where} is a tuple of {len(obj)}; {part!r} is not an "
                        f"index 0..{len(obj) - 1}."
                    )
                obj = obj[int(part)]
                continue
            names = [f.name for f in dataclasses.fields(obj)] if dataclasses.is_dataclass(obj) else []
            if part not in names:
                arrays = [n for n in names if isinstance(getattr(obj, n), jax.Array)]
                raise ValueError(
                    f"SetParameter: path {self.path!r}: {where} ({type(obj).__name__}) has no field {part!r}; its "
                    f"parameters are: {', '.join(arrays) or 'none'}."
                )
            obj = getattr(obj, part)
        if not isinstance(obj, jax.Array):
            raise ValueError(
                f"SetParameter: path {self.path!r} leads to a {type(obj).__name__}, not a parameter array; give the "
                "path of an array leaf, e.g. 'model.x0'."
            )

        def where(n):
            for part in parts:
                n = n[int(part)] if isinstance(n, tuple) else getattr(n, part)
            return n

        return where, obj

    def __call__(self, net: Network) -> Network:
        where, old = self._where(net)
        n = net.n_regions
        value = self.value.astype(old.dtype)
        if self.regions is None:
            if value.ndim == 1 and value.shape[0] != n:
                raise ValueError(
                    f"SetParameter: value for {self.path!r} has {value.shape[0]} entries but the network has {n} "
                    f"regions; give a scalar or ({n},)."
                )
            try:
                shape = jnp.broadcast_shapes(old.shape, value.shape)
            except ValueError:
                raise ValueError(
                    f"SetParameter: value of shape {value.shape} does not fit {self.path!r} of shape {old.shape}."
                ) from None
            new_leaf = jnp.broadcast_to(value, shape)
        else:
            if old.ndim > 1 or (old.ndim == 1 and old.shape[0] != n):
                raise ValueError(
                    f"SetParameter: {self.path!r} has shape {old.shape}, not a per-region parameter; give regions=None."
                )
            idx = np.asarray(net.connectome.region_indices(self.regions, owner="SetParameter"))
            new_leaf = jnp.broadcast_to(old, (n,)).at[idx].set(value)
        new = eqx.tree_at(where, net, new_leaf)
        if self.path == "speed":
            return _speed_layout(new, old, value)
        return new

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "SetParameter",
            "path": self.path,
            "value": _json_number(self.value),
            "regions": _lists(self.regions),
        }


def _speed_layout(net: Network, old: jax.Array, new: jax.Array) -> Network:
    """After the speed changed from `old` to `new` (mm/ms): the recorded delays and speed range follow."""
    v = _concrete(new)
    if v is None:
        return net
    v = float(v)
    changes: dict[str, Any] = {}
    speed_range = net.speed_range
    if speed_range is not None and not speed_range[0] <= v <= speed_range[1]:
        speed_range = (min(speed_range[0], v), max(speed_range[1], v))
        changes["speed_range"] = speed_range
    conn = net.connectome
    if _concrete(conn.weights) is not None and _concrete(conn.lengths) is not None:
        changes["edges"] = EdgePattern.from_arrays(np.asarray(conn.weights), np.asarray(conn.lengths), v, speed_range)
    elif net.edges is not None and _concrete(old) is not None:
        net = _rescale_delays(_replace_static(net, **changes), float(old) / v)
        return net
    return _replace_static(net, **changes) if changes else net


class Compose(AbstractScenario):
    """Several scenarios applied in order: ``Compose(a, b)(net) == b(a(net))``; also written ``a >> b``.

    **Arguments:**
    - `*scenarios`: the scenarios, first applied first; nested compositions are flattened.

    Order matters where scenarios touch the same leaves (``SetParameter("coupling.a", 0.02) >> Age(10)`` ages the new
    coupling; the other order overwrites the aged one). Removed regions (:meth:`removed`) are those of any part.
    """

    scenarios: tuple[AbstractScenario, ...]

    def __init__(self, *scenarios: AbstractScenario):
        flat: list[AbstractScenario] = []
        for k, s in enumerate(scenarios):
            if isinstance(s, Compose):
                flat.extend(s.scenarios)
            elif isinstance(s, AbstractScenario):
                flat.append(s)
            else:
                raise TypeError(
                    f"Compose: scenarios[{k}] is a {type(s).__name__}, not a scenario of vbtjax.scenarios "
                    "(Resect, Lesion, SlowConduction, AddStimulus, Age, SetParameter)."
                )
        if not flat:
            raise ValueError("Compose: give at least one scenario.")
        self.scenarios = tuple(flat)

    def __call__(self, net: Network) -> Network:
        for s in self.scenarios:
            net = s(net)
        return net

    def removed(self, net: Network) -> np.ndarray:
        out = np.zeros(net.n_regions, dtype=bool)
        for s in self.scenarios:
            out |= s.removed(net)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"type": "Compose", "scenarios": [s.to_dict() for s in self.scenarios]}


# ---------------------------------------------------------------------------------------------------- from a dict
def _pairs(x: Any) -> Any:
    return None if x is None else [tuple(p) for p in x]


def _stimulus_from_dict(d: dict[str, Any]) -> Stimulus:
    try:
        t = dict(d["temporal"])
        name = t.pop("type")
    except (KeyError, TypeError):
        raise ValueError(
            "scenario_from_dict: an AddStimulus needs stimulus={'temporal': {'type': NAME, ...}, ...}."
        ) from None
    cls = getattr(_stimulus, name, None)
    known = [k for k, v in vars(_stimulus).items() if isinstance(v, type) and issubclass(v, _stimulus.AbstractTemporal)]
    if not (isinstance(cls, type) and issubclass(cls, _stimulus.AbstractTemporal)) or name.startswith("Abstract"):
        raise ValueError(
            f"scenario_from_dict: unknown temporal pattern {name!r}; known: "
            f"{', '.join(k for k in known if not k.startswith('Abstract'))}."
        )
    temporal = cls(**{k: _from_json_number(v) for k, v in t.items()})
    return Stimulus(
        temporal,
        regions=d.get("regions"),
        weight=_from_json_number(d.get("weight", 1.0)),
        variables=d.get("variables"),
    )


def scenario_from_dict(d: dict[str, Any]) -> AbstractScenario:
    """The scenario that :meth:`AbstractScenario.to_dict` wrote: ``scenario_from_dict(s.to_dict())`` equals ``s``.

    Only the scenarios of this module are read (no code is imported or run); unknown types or keys raise
    ``ValueError``.
    """
    if not isinstance(d, dict) or "type" not in d:
        raise ValueError(f"scenario_from_dict: expected a dict with a 'type' key, got {d!r}.")
    kind = d["type"]
    registry = AbstractScenario._registry
    if kind not in registry:
        raise ValueError(f"scenario_from_dict: unknown scenario type {kind!r}; known: {', '.join(sorted(registry))}.")
    kw = {k: v for k, v in d.items() if k != "type"}
    try:
        if kind == "Compose":
            return Compose(*(scenario_from_dict(s) for s in kw.pop("scenarios")))
        if kind == "AddStimulus":
            return AddStimulus(_stimulus_from_dict(kw.pop("stimulus")))
        for k in ("factor", "years", "coupling_rate", "speed_rate", "value"):
            if k in kw:
                kw[k] = _from_json_number(kw[k])
        if "tracts" in kw:
            kw["tracts"] = _pairs(kw["tracts"])
        return registry[kind](**kw)
    except (TypeError, KeyError) as e:
        raise ValueError(f"scenario_from_dict: bad fields for {kind}: {e}.") from None


# ------------------------------------------------------------------------------------------------------- text form
GRAMMAR = """\
Scenario specs (regions: 0-based indices or labels; factors and values: numbers):

  resect:R1,R2,...               Resect the regions
  lesion:A-B,C-D,...[*F]         Lesion the tracts A-B, C-D (both directions; A>B: from A to B only) to F x their
                                 weights (default F = 0, cut)
  lesion:regions=R1,R2,...[*F]   Lesion every tract of the regions
  slow:F                         SlowConduction: every delay x F (speed / F), F >= 1
  slow:A-B,C-D,...*F             SlowConduction of those tracts (their lengths x F)
  slow:regions=R1,R2,...*F       SlowConduction of every tract of the regions
  age:Y[,coupling_rate=R][,speed_rate=R][,trajectory=linear]
                                 Age by Y years
  set:PATH=V[@R1,R2,...]         SetParameter: PATH (model.x0, coupling.a, speed, ...) = V, everywhere or at the
                                 regions; V one number, or comma-separated numbers (one per region)

Join several with '+' or ';' to apply them in order: resect:3,17+slow:2.0
A label may stand for an index where it holds none of , + ; * @ = and, inside tracts, no - or >.
Examples: resect:3,17   lesion:3-17,4-18*0.5   lesion:regions=3,17*0.2   slow:2.0   slow:3-17,4-18*2.0
          age:10   set:model.x0=-2.2@3,17   set:coupling.a=0.02+age:10"""

"""The text grammar of :func:`parse_scenario` (shown in its error messages)."""

_KINDS = ("resect", "lesion", "slow", "age", "set")


class _SpecError(ValueError):
    pass


def parse_scenario(spec: str) -> AbstractScenario:
    """A scenario from its text form (command lines, config files).

    Grammar (:data:`GRAMMAR`; regions are 0-based indices or labels, ``F``, ``Y``, ``R``, ``V`` numbers):

    ```text
    spec     := scenario (("+" | ";") scenario)*       applied left to right (a Compose)
    scenario := "resect:" regions                      Resect(regions)
              | "lesion:" tracts ["*" F]               Lesion(tracts=..., factor=F), F default 0 (cut)
              | "lesion:regions=" regions ["*" F]      Lesion(regions=..., factor=F)
              | "slow:" F                              SlowConduction(F): speed / F
              | "slow:" tracts "*" F                   SlowConduction(F, tracts=...): their lengths x F
              | "slow:regions=" regions "*" F          SlowConduction(F, regions=...)
              | "age:" Y ["," option]*                 Age(Y, ...); option: coupling_rate=R | speed_rate=R
                                                         | trajectory=exponential|linear
              | "set:" path "=" values ["@" regions]   SetParameter(path, values, regions)
    regions  := region ("," region)*
    region   := index | label
    tracts   := tract ("," tract)*
    tract    := region "-" region                      both directions
              | region ">" region                      from the first region to the second only (directed)
    values   := V ("," V)*                             one number, or one per region (per listed region with @)
    ```

    Examples: ``"resect:3,17"`` is ``Resect([3, 17])``; ``"lesion:3-17,4-18*0.5"`` is
    ``Lesion(tracts=[(3, 17), (4, 18)], factor=0.5)``; ``"lesion:regions=3,17*0.2"``; ``"slow:2.0"``;
    ``"slow:3-17,4-18*2.0"``; ``"age:10"``; ``"set:model.x0=-2.2@3,17"`` is
    ``SetParameter("model.x0", -2.2, regions=[3, 17])``; ``"set:coupling.a=0.02+age:10"`` is their
    :class:`Compose`. Whitespace around tokens and the case of the kind are ignored. A ``+`` joins only where a
    scenario kind and ``:`` follow (so ``1e+3`` stays a number). Labels may stand for indices when they hold none
    of ``, + ; * @ =`` (and, in tracts, no ``-`` or ``>``); they are resolved when the scenario is applied.

    Raises ``ValueError``, with the grammar, for a malformed spec or invalid arguments.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"parse_scenario: expected a non-empty spec string, got {spec!r}.\n\n{GRAMMAR}")
    # '+' joins only when a scenario kind follows ("1e+3" stays a number); ';' always joins
    parts = [p.strip() for p in re.split(r";|\+(?=\s*[A-Za-z_]+\s*:)", spec)]
    out = []
    for part in parts:
        try:
            out.append(_parse_one(part))
        except _SpecError as e:
            raise ValueError(f"parse_scenario: {e} in {part!r} (of {spec!r}).\n\n{GRAMMAR}") from None
        except (ValueError, TypeError) as e:
            raise ValueError(f"parse_scenario: {part!r}: {e}\n\n{GRAMMAR}") from None
    return out[0] if len(out) == 1 else Compose(*out)


def _parse_one(part: str) -> AbstractScenario:
    if not part:
        raise _SpecError("empty scenario (two separators in a row?)")
    kind, colon, body = part.partition(":")
    kind, body = kind.strip().lower(), body.strip()
    if not colon or kind not in _KINDS:
        raise _SpecError(f"unknown scenario kind {kind!r}; expected one of {', '.join(k + ':' for k in _KINDS)}")
    if not body:
        raise _SpecError(f"nothing after '{kind}:'")
    if kind == "resect":
        return Resect(_regions(body))
    if kind == "lesion":
        target, factor = _star(body, default=0.0)
        if target.startswith("regions="):
            return Lesion(regions=_regions(target.removeprefix("regions=")), factor=factor)
        tracts, directed = _tracts(target)
        return Lesion(tracts=tracts, factor=factor, directed=directed)
    if kind == "slow":
        if "*" not in body:
            try:
                return SlowConduction(float(body))
            except ValueError as e:
                if "SlowConduction" in str(e):
                    raise
                raise _SpecError(f"expected slow:F (a number) or slow:TRACTS*F, got {body!r}") from None
        target, factor = _star(body, default=None)
        if target.startswith("regions="):
            return SlowConduction(factor, regions=_regions(target.removeprefix("regions=")))
        tracts, directed = _tracts(target)
        return SlowConduction(factor, tracts=tracts, directed=directed)
    if kind == "age":
        first, *options = (t.strip() for t in body.split(","))
        kw: dict[str, Any] = {}
        for opt in options:
            key, eq, val = (t.strip() for t in opt.partition("="))
            if not eq or key not in ("coupling_rate", "speed_rate", "trajectory"):
                raise _SpecError(f"unknown age option {opt!r}; expected coupling_rate=R, speed_rate=R, trajectory=T")
            kw[key] = val if key == "trajectory" else _float(val, key)
        return Age(_float(first, "the years"), **kw)
    # set
    path, eq, rest = (t.strip() for t in body.partition("="))
    if not eq or not path:
        raise _SpecError("expected set:PATH=VALUE[@REGIONS]")
    value, at, regions = (t.strip() for t in rest.partition("@"))
    values = [_float(v.strip(), "the value") for v in value.split(",")]
    return SetParameter(path, values[0] if len(values) == 1 else values, _regions(regions) if at else None)


def _float(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise _SpecError(f"{what} {text!r} is not a number") from None


def _star(body: str, default: float | None) -> tuple[str, float]:
    target, star, factor = body.rpartition("*")
    if not star:
        if default is None:
            raise _SpecError("expected TRACTS*FACTOR")
        return body.strip(), default
    if not target.strip():
        raise _SpecError("nothing before '*'")
    return target.strip(), _float(factor.strip(), "the factor")


def _region(token: str) -> int | str:
    token = token.strip()
    if not token:
        raise _SpecError("an empty region")
    if re.fullmatch(r"\d+", token):
        return int(token)
    if re.fullmatch(r"[+-]?\d+", token):
        raise _SpecError(f"region index {token!r} must be 0 or more")
    if any(c in token for c in ",+;*@="):
        raise _SpecError(f"region {token!r} holds a reserved character")
    return token


def _regions(text: str) -> list[int | str]:
    if not text.strip():
        raise _SpecError("no regions given")
    return [_region(t) for t in text.split(",")]


def _tracts(text: str) -> tuple[list[tuple[int | str, int | str]], bool]:
    tracts, kinds = [], set()
    for item in text.split(","):
        item = item.strip()
        seps = [c for c in item if c in "->"]
        if len(seps) != 1:
            raise _SpecError(f"tract {item!r} must be A-B (both directions) or A>B (from A to B)")
        a, b = item.split(seps[0])
        tracts.append((_region(a), _region(b)))
        kinds.add(seps[0])
    if len(kinds) > 1:
        raise _SpecError("mix of A-B and A>B tracts; give them as two scenarios joined with '+'")
    return tracts, kinds == {">"}
