"""Saving vbtjax objects (networks, scenarios' networks) as JSON + arrays, with no pickle and no code run on load.

An Equinox module of a vbtjax class is written as ``{"__module__": CLASS, "fields": {...}}`` with each array leaf
moved into a separate table of arrays (``{"__array__": KEY}``). Loading looks the class up by name among the
modules of ``vbtjax`` (or of packages the caller explicitly trusts), refuses a name that is not the class's own
(``vbtjax.x:eqx.Module`` reaches Equinox's class through vbtjax's namespace) and abstract classes, and rebuilds
the instance through the class's own constructor with the saved fields, so every check that constructing runs
(finite weights, non-negative lengths and noise, positive speed, matching shapes, the types of a network's parts)
runs on load too and a failure is a :class:`SerialisationError` naming the field. No field can name a function,
and nothing but the lookup of a class and its constructor runs. Derived static fields (the delay layout of a
:class:`~vbtjax.Network`) are recomputed by the constructor.

:func:`content_hash` (SHA-256) catches accidents: anyone can recompute it after an edit. :func:`content_hmac`
(HMAC-SHA256 with a secret key, over the same bytes) proves to holders of the key that the content is theirs.
:func:`provenance` is the record of versions, platform, date and input-file hashes that saved files carry.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import hmac
import importlib
import inspect
import json
import math
import platform
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "encode",
    "decode",
    "content_hash",
    "content_hmac",
    "provenance",
    "SerialisationError",
    "TwinFileError",
]

_TRUSTED = ("vbtjax",)


class SerialisationError(ValueError):
    """A value cannot be saved, or a saved file cannot be read back (tampered, truncated, unknown class)."""


class TwinFileError(SerialisationError):
    """A twin file cannot be read: missing, truncated, damaged, modified after saving, unsigned or wrongly signed
    when a signature is asked for, holding values its classes refuse, or from an unknown format. The message names
    the file and the problem. (Also raised for saved estimators, :func:`vbtjax.sbi.load_npe`.)"""


def _is_array(x: Any) -> bool:
    return isinstance(x, jax.Array | np.ndarray | np.generic)


def _float(x: float) -> Any:
    if math.isfinite(x):
        return x
    return {"__float__": repr(x)}


def encode(obj: Any, arrays: dict[str, np.ndarray], path: str = "") -> Any:
    """JSON-able description of ``obj``; its arrays are added to `arrays` under keys derived from `path`."""
    where = path or "<root>"
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int | np.integer) and not isinstance(obj, bool):
        return int(obj)
    if isinstance(obj, float):
        return _float(obj)
    if _is_array(obj):
        if isinstance(obj, jax.core.Tracer):
            raise SerialisationError(f"{where}: cannot save a traced value (save outside jit/vmap/grad).")
        a = np.asarray(obj)
        if a.dtype == object or a.dtype.kind not in "biufc":
            raise SerialisationError(f"{where}: arrays of dtype {a.dtype} cannot be saved (numbers only).")
        key = path.lstrip(".") or "value"
        if key in arrays:
            raise SerialisationError(f"{where}: two arrays would be saved under the key {key!r}.")
        arrays[key] = np.array(a, order="C")
        return {"__array__": key, "kind": "jax" if isinstance(obj, jax.Array) else "numpy"}
    if isinstance(obj, tuple | list):
        items = [encode(v, arrays, f"{path}.{i}") for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise SerialisationError(f"{where}: only dicts with string keys can be saved.")
        return {"__dict__": {k: encode(v, arrays, f"{path}.{k}") for k, v in obj.items()}}
    if isinstance(obj, eqx.Module):
        cls = type(obj)
        top = cls.__module__.split(".")[0]
        fields = {}
        from .network import Network

        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if isinstance(obj, Network) and f.name == "edges":
                fields[f.name] = {"__derived__": "edges"}
                continue
            fields[f.name] = encode(value, arrays, f"{path}.{f.name}")
        return {"__module__": f"{cls.__module__}:{cls.__qualname__}", "package": top, "fields": fields}
    if callable(obj):
        raise SerialisationError(
            f"{where}: holds a Python function ({getattr(obj, '__qualname__', obj)!r}); a twin stores only numbers, "
            "arrays and vbtjax objects. Replace the function with a vbtjax class (e.g. a stimulus temporal pattern)."
        )
    raise SerialisationError(f"{where}: values of type {type(obj).__name__} cannot be saved.")


def _lookup(name: Any, trusted: Iterable[str], where: str) -> type:
    if not isinstance(name, str) or name.count(":") != 1:
        raise SerialisationError(f"{where}: {name!r} is not a class name of the form 'module:Class'.")
    module, _, qualname = name.partition(":")
    allowed = tuple(_TRUSTED) + tuple(trusted)
    if module.split(".")[0] not in allowed:
        raise SerialisationError(
            f"{where}: the file names the class {name!r} from outside vbtjax; load refuses it unless you trust that "
            f"package: load(..., trust=({module.split('.')[0]!r},))."
        )
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError, TypeError) as e:
        raise SerialisationError(f"{where}: class {name!r} not found ({e}); was it saved by another version?") from e
    if not (isinstance(obj, type) and issubclass(obj, eqx.Module)):
        raise SerialisationError(f"{where}: {name!r} is not an Equinox module class.")
    own = f"{obj.__module__}:{obj.__qualname__}"
    # a class is named by its own module, or by its earlier path (vbtjax.connectome for vbtjax.data.connectome)
    same_module = sys.modules.get(obj.__module__) is sys.modules.get(module) and obj.__qualname__ == qualname
    if own != name and not same_module:
        raise SerialisationError(
            f"{where}: the file names {name!r}, which is the class {own!r}, from outside vbtjax; load refuses it "
            "(a saved class is named by its own module)."
        )
    if inspect.isabstract(obj):
        raise SerialisationError(f"{where}: {name!r} is an abstract class; a saved object is of a concrete class.")
    return obj


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    """An instance of `cls` with the field `values`, made by its own constructor so that its checks run; a class
    whose constructor does not take its fields by name is filled in field by field, then its ``__check_init__``
    methods run (as Equinox runs them after a constructor)."""
    params = inspect.signature(cls.__init__).parameters.values()
    named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    try:
        if all(f.init for f in dataclasses.fields(cls)) and set(values) <= named:
            return cls(**values)
        obj = object.__new__(cls)
        for name, value in values.items():
            object.__setattr__(obj, name, value)
        for klass in reversed(cls.__mro__):
            check = klass.__dict__.get("__check_init__")
            if check is not None:
                check(obj)
        return obj
    except Exception as e:  # noqa: BLE001 - whatever a class's checks raise, the file holds an invalid object
        raise SerialisationError(f"{where}: {e}") from None


def decode(desc: Any, arrays: dict[str, np.ndarray], trust: Iterable[str] = (), path: str = "") -> Any:
    """Inverse of :func:`encode`: every object is rebuilt through its class's constructor (see the module's
    description). Raises :class:`SerialisationError` naming the entry for anything :func:`encode` cannot have
    written or a constructor refuses."""
    where = path or "<root>"
    if desc is None or isinstance(desc, bool | int | float | str):
        return desc
    if isinstance(desc, list):
        return [decode(v, arrays, trust, f"{path}.{i}") for i, v in enumerate(desc)]
    if not isinstance(desc, dict):
        raise SerialisationError(f"{where}: unexpected entry {desc!r}.")
    if "__float__" in desc:
        if desc["__float__"] not in ("inf", "-inf", "nan"):
            raise SerialisationError(f"{where}: {desc['__float__']!r} is not a saved non-finite number.")
        return float(desc["__float__"])
    if "__array__" in desc:
        key = desc["__array__"]
        if not isinstance(key, str) or key not in arrays:
            raise SerialisationError(f"{where}: the array {key!r} is missing from the file.")
        a = arrays[key]
        if a.dtype.kind not in "biufc":
            raise SerialisationError(f"{where}: the array {key!r} has dtype {a.dtype}; only numbers are saved.")
        return jnp.asarray(a) if desc.get("kind") == "jax" else np.array(a)
    if "__tuple__" in desc:
        if not isinstance(desc["__tuple__"], list):
            raise SerialisationError(f"{where}: a saved tuple is a list, got {type(desc['__tuple__']).__name__}.")
        return tuple(decode(v, arrays, trust, f"{path}.{i}") for i, v in enumerate(desc["__tuple__"]))
    if "__dict__" in desc:
        if not isinstance(desc["__dict__"], dict):
            raise SerialisationError(f"{where}: a saved dict is a JSON object, got {type(desc['__dict__']).__name__}.")
        return {k: decode(v, arrays, trust, f"{path}.{k}") for k, v in desc["__dict__"].items()}
    if "__module__" in desc:
        cls = _lookup(desc["__module__"], trust, where)
        saved = desc.get("fields", {})
        names = [f.name for f in dataclasses.fields(cls)]
        if not isinstance(saved, dict) or sorted(names) != sorted(saved):
            have = sorted(saved) if isinstance(saved, dict) else saved
            raise SerialisationError(
                f"{where}: {cls.__name__} has fields {sorted(names)} but the file holds {have}; it was "
                "saved by another version of its class."
            )
        values, derived = {}, []
        for name in names:
            d = saved[name]
            if isinstance(d, dict) and "__derived__" in d:
                derived.append(name)
            else:
                values[name] = decode(d, arrays, trust, f"{path}.{name}")
        if derived:
            from .network import Network

            if not (issubclass(cls, Network) and derived == ["edges"]):
                raise SerialisationError(f"{where}: unknown derived fields {derived}.")
        return _build(cls, values, where)  # a Network's constructor lays out its edges again
    raise SerialisationError(f"{where}: unexpected entry {sorted(desc)}.")


def canonical_json(meta: Any) -> bytes:
    return json.dumps(meta, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _feed(h: Any, meta: Any, arrays: dict[str, np.ndarray]) -> Any:
    h.update(canonical_json(meta))
    for key in sorted(arrays):
        a = np.array(arrays[key], order="C")
        h.update(key.encode() + b"\0" + a.dtype.str.encode() + b"\0" + repr(a.shape).encode() + b"\0")
        h.update(a.tobytes())
    return h


def content_hash(meta: Any, arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over the canonical JSON and every array's key, dtype, shape and bytes. It catches accidents
    (truncation, a flipped bit, a partial write); anyone who edits the content can recompute it."""
    return _feed(hashlib.sha256(), meta, arrays).hexdigest()


def content_hmac(meta: Any, arrays: dict[str, np.ndarray], key: bytes) -> str:
    """HMAC-SHA256 with the secret `key` over the same bytes as :func:`content_hash`: only a holder of the key can
    make it, so a matching one proves that a holder of the key wrote this content."""
    return _feed(hmac.new(key, digestmod=hashlib.sha256), meta, arrays).hexdigest()


def file_sha256(path: Any) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def provenance(inputs: Sequence[Any] = ()) -> dict[str, Any]:
    """The provenance record of a saved file: vbtjax, JAX, Equinox, diffrax, NumPy and Python versions, platform,
    x64 mode, UTC date, and the SHA-256 of each of the `inputs` files (a missing one raises ``FileNotFoundError``)."""
    from . import __version__

    hashes = {}
    for p in inputs:
        path = Path(p)
        if not path.is_file():
            raise FileNotFoundError(f"Twin: inputs: {str(p)!r} is not a file (give the files the twin was made from).")
        hashes[str(path)] = file_sha256(path)
    return {
        "vbtjax": __version__,
        "jax": jax.__version__,
        "jaxlib": getattr(jax.lib, "__version__", None) or _version("jaxlib"),
        "equinox": _version("equinox"),
        "diffrax": _version("diffrax"),
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "x64": bool(jax.config.jax_enable_x64),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "inputs": hashes,
    }


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None
