"""Scenarios from files and command lines: :func:`scenario_from_dict` (what ``to_dict`` wrote) and
:func:`parse_scenario` (the short text form, :data:`GRAMMAR`)."""

from __future__ import annotations

import re
from typing import Any

from ... import stimulus as _stimulus
from ...stimulus import Stimulus
from ._base import (
    AbstractScenario,
    Compose,
    from_json_number,
)
from ._dynamical import AddStimulus, SetParameter
from ._structural import Age, Lesion, Resect, SlowConduction


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
    temporal = cls(**{k: from_json_number(v) for k, v in t.items()})
    return Stimulus(
        temporal,
        regions=d.get("regions"),
        weight=from_json_number(d.get("weight", 1.0)),
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
                kw[k] = from_json_number(kw[k])
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
