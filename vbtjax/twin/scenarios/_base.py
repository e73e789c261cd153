"""The base of the scenarios: :class:`AbstractScenario`, :class:`Compose`, and the checks and conversions the
scenarios share (regions, tracts, numbers, JSON, delay records). Public names are re-exported by
:mod:`vbtjax.twin.scenarios`."""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import equinox as eqx
import jax
import numpy as np

from ..._params import as_float_array, is_concrete
from ...network import Network
from ...simulation.delays import EdgePattern

_PACKAGE = __name__.rpartition(".")[0]


# ------------------------------------------------------------------------------------------------------------ helpers
def concrete_array(x: Any) -> np.ndarray | None:
    """``x`` as a NumPy array when its values are known now, else None (traced)."""
    return np.asarray(x) if is_concrete(x) else None


def checked_number(owner: str, name: str, value: Any, fix: str) -> jax.Array:
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


def region_list(owner: str, name: str, regions: Any, *, allow_none: bool = False) -> tuple[int | str, ...] | None:
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


def tract_list(owner: str, tracts: Any) -> tuple[tuple[int | str, int | str], ...] | None:
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
        pair = region_list(owner, f"tracts[{k}]", list(t))
        out.append((pair[0], pair[1]))
    if not out:
        raise ValueError(f"{owner}: tracts is empty; give at least one (source, target) pair, or tracts=None.")
    return tuple(out)


def json_number(x: Any) -> Any:
    """A concrete array as a JSON number or nested list; non-finite numbers as the strings "inf", "-inf", "nan"."""
    a = concrete_array(x)
    if a is None:
        raise ValueError("to_dict: the scenario holds traced values (inside jit/vmap); serialise it outside.")

    def one(v: float) -> float | str:
        return float(v) if math.isfinite(v) else str(float(v))

    if a.ndim == 0:
        return one(float(a))
    return jax.tree.map(one, a.astype(float).tolist())


def from_json_number(x: Any) -> Any:
    if isinstance(x, list):
        return [from_json_number(v) for v in x]
    return float(x)  # float("inf"), float("nan") read the strings back


def as_lists(x: Any) -> Any:
    """Tuples to lists, recursively (JSON)."""
    if isinstance(x, tuple | list):
        return [as_lists(v) for v in x]
    return x


def replace_static(net: Network, **fields: Any) -> Network:
    """``net`` with its static delay layout (``edges``, ``speed_range``) replaced (``eqx.tree_at`` only reaches the
    leaves)."""
    return net.with_layout(**fields)


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


def rescale_delays(net: Network, delay_factor: Any, speed_factor: Any = None) -> Network:
    """``net`` with its recorded delays (``edges``) multiplied by ``delay_factor`` (scalar or ``(N, N)``) and its
    ``speed_range`` by ``speed_factor``, when those factors are concrete; see the module docstring."""
    df = None if delay_factor is None else concrete_array(delay_factor)
    sf = None if speed_factor is None else concrete_array(speed_factor)
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
    return replace_static(net, **changes) if changes else net


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
        # scenario_from_dict reads the scenarios of this package
        if cls.__module__.startswith(_PACKAGE + ".") and not cls.__name__.startswith("Abstract"):
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
