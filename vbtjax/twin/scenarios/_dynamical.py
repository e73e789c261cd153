"""Scenarios that change the dynamics and inputs: :class:`AddStimulus` (a stimulation protocol) and
:class:`SetParameter` (a model, coupling or conduction parameter, at all or some regions)."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..._params import as_float_array
from ...network import Network
from ...simulation.delays import EdgePattern
from ...stimulus import Stimulus
from ._base import (
    AbstractScenario,
    as_lists,
    concrete_array,
    json_number,
    region_list,
    replace_static,
    rescale_delays,
)


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
            temporal[f.name] = json_number(getattr(s.temporal, f.name))
        return {
            "type": "AddStimulus",
            "stimulus": {
                "temporal": temporal,
                "regions": as_lists(s.regions),
                "weight": json_number(s.weight),
                "variables": as_lists(s.variables),
            },
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
        v = concrete_array(self.value)
        if v is not None and not np.all(np.isfinite(v)):
            raise ValueError(f"SetParameter: value for {path!r} contains NaN or inf; give finite values.")
        self.regions = region_list("SetParameter", "regions", regions, allow_none=True)
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
            "value": json_number(self.value),
            "regions": as_lists(self.regions),
        }


def _speed_layout(net: Network, old: jax.Array, new: jax.Array) -> Network:
    """After the speed changed from `old` to `new` (mm/ms): the recorded delays and speed range follow."""
    v = concrete_array(new)
    if v is None:
        return net
    v = float(v)
    changes: dict[str, Any] = {}
    speed_range = net.speed_range
    if speed_range is not None and not speed_range[0] <= v <= speed_range[1]:
        speed_range = (min(speed_range[0], v), max(speed_range[1], v))
        changes["speed_range"] = speed_range
    conn = net.connectome
    if concrete_array(conn.weights) is not None and concrete_array(conn.lengths) is not None:
        changes["edges"] = EdgePattern.from_arrays(np.asarray(conn.weights), np.asarray(conn.lengths), v, speed_range)
    elif net.edges is not None and concrete_array(old) is not None:
        net = rescale_delays(replace_static(net, **changes), float(old) / v)
        return net
    return replace_static(net, **changes) if changes else net
