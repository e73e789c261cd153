"""Parameter sweeps: many simulations of one network in one call, vmapped, chunked to a memory budget, and sharded over
devices and processes.

:func:`sweep` replaces selected leaves of a network (``where=lambda net: net.coupling.a``, a tuple of leaves, or a
:class:`~vbtjax.inference.Selection`) by each row of ``values`` and simulates every variant with
:func:`~vbtjax.simulate`. The batch is cut into chunks of ``batch_size`` simulations (from a memory budget unless
given); the last chunk is padded, so all chunks run one compiled program. Each chunk's batch axis is sharded over the
devices of a mesh (by default all devices, ``jax.devices()``, which under ``jax.distributed.initialize()`` are those of
every process): every device simulates its own slice, and the results are gathered to the host after each chunk.
Simulation ``b`` uses the key ``fold_in(key, b)``, so results do not depend on the batch size, chunking, or the number
of devices or processes.

:func:`sweep_grid` builds a cartesian grid of values and :func:`sweep_random` draws them at random (uniform in bounds,
from NumPyro distributions, or from the priors of a :class:`~vbtjax.inference.Posterior`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jaxtyping import Array, ArrayLike, PyTree

from .._params import get_leaf, leaf_path
from ..files import FileReadError, read_json, read_npz, write_npz
from ..network import Network
from ..observation.monitors import AbstractMonitor, Raw
from . import distributed
from .batch import CPU_BUDGET as CPU_BUDGET  # the batch sizing, named here as before
from .batch import CPU_CACHE as CPU_CACHE
from .batch import CPU_MAX_BATCH as CPU_MAX_BATCH
from .batch import BatchRunner, batch_width, host_memory, memory_per_device, nbytes, widened
from .simulate import CHUNK_STEPS, Solution, is_monitor, simulate

__all__ = ["sweep", "SweepResult", "sweep_grid", "sweep_random"]

UNITS = {"speed": "mm/ms", "connectome.lengths": "mm", "connectome.weights": "1"}
"""Units of the network leaves that have fixed ones; model and coupling parameters: see each model's docstring."""


# ------------------------------------------------------------------------------------------------------------- result
class SweepResult(eqx.Module):
    """The result of :func:`sweep`: host (NumPy) arrays with a leading batch axis ``B``.

    **Fields:**
    - `values`: the simulated values, one ``(B, *leaf_shape)`` array, or a tuple of them when ``where`` selected
      several leaves (or is a Selection).
    - `names`: the leaves' paths in the network (``"coupling.a"``) or the Selection's names.
    - `ts`: sample times in ms, one ``(T,)`` array per monitor (same structure as ``monitors``), the same for every
      simulation.
    - `ys`: monitor outputs, same structure, each ``(B, T, ...)`` (``ys["raw"]``: ``(B, T, n_svar, N)``); ``None``
      when ``features`` was given.
    - `features`: the output of ``features(solution)`` per simulation, each leaf ``(B, ...)``; else ``None``.
    - `finite`: ``(B,)`` bool, True where every output of the simulation is finite (False flags blow-ups).
    - `dt`, `t1`, `n_steps`: step (ms), duration (ms), steps per simulation.
    - `batch_size`, `n_devices`, `n_processes`: how the sweep ran (simulations per chunk, devices, processes).
    - `units`: unit of each value (``"mm/ms"`` for speed, ``""`` where the network does not state one).
    """

    values: Any
    ts: PyTree
    ys: PyTree | None
    features: PyTree | None
    finite: np.ndarray
    names: tuple[str, ...] = eqx.field(static=True)
    units: tuple[str, ...] = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    t1: float = eqx.field(static=True)
    n_steps: int = eqx.field(static=True)
    batch_size: int = eqx.field(static=True)
    n_devices: int = eqx.field(static=True)
    n_processes: int = eqx.field(static=True)

    def __len__(self) -> int:
        return int(self.finite.shape[0])

    @property
    def params(self) -> dict[str, np.ndarray]:
        """The swept values by name."""
        vals = (self.values,) if len(self.names) == 1 and not isinstance(self.values, tuple) else self.values
        return dict(zip(self.names, vals, strict=True))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the result to an ``.npz`` file (arrays, plus JSON metadata with names, units and times in ms),
        atomically (a reader or a kill mid-write finds the old file or the new one); read it back with :meth:`load`.
        Returns the path."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(path.suffix + ".npz")
        arrays: dict[str, np.ndarray] = {"finite": np.asarray(self.finite)}
        vals = self.values if isinstance(self.values, tuple) else (self.values,)
        for i, v in enumerate(vals):
            arrays[f"values_{i}"] = np.asarray(v)
        trees = {}
        for field in ("ts", "ys", "features"):
            tree = getattr(self, field)
            if tree is None:
                trees[field] = None
                continue
            flat, _ = jax.tree_util.tree_flatten_with_path(tree)
            trees[field] = [_encode_path(p) for p, _ in flat]
            for j, (_, leaf) in enumerate(flat):
                arrays[f"{field}_{j}"] = np.asarray(leaf)
        from .. import __version__

        meta = {
            "format": "vbtjax.SweepResult",
            "version": __version__,
            "names": list(self.names),
            "units": list(self.units),
            "values_tuple": isinstance(self.values, tuple),
            "n_values": len(vals),
            "trees": trees,
            "time_unit": "ms",
            "dt": self.dt,
            "t1": self.t1,
            "n_steps": self.n_steps,
            "batch_size": self.batch_size,
            "n_devices": self.n_devices,
            "n_processes": self.n_processes,
        }
        arrays["meta"] = np.asarray(json.dumps(meta))
        return write_npz(path, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> SweepResult:
        """Read a result written by :meth:`save` (no pickle, no code execution). A damaged, truncated or foreign
        file, or one whose metadata does not describe its arrays, raises :class:`vbtjax.files.FileReadError` naming
        the file; arrays are checked against the size limits before they are allocated."""
        what = f"SweepResult.load: {path}"
        head = read_npz(path, keys=["meta"], what=what, required=["meta"])["meta"]
        if head.dtype.kind != "U" or head.size != 1:
            raise FileReadError(f"{what}: its 'meta' is not one JSON string; not a file written by SweepResult.save.")
        meta = read_json(str(head.reshape(())).encode("utf-8"), what=f"{what}: meta")
        if not isinstance(meta, dict) or meta.get("format") != "vbtjax.SweepResult":
            raise FileReadError(f"{what} is not a file written by SweepResult.save.")
        try:
            return cls._from_meta(meta, path, what)
        except FileReadError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, RecursionError) as e:
            raise FileReadError(
                f"{what}: its metadata does not describe its arrays ({type(e).__name__}: {e}); damaged or edited."
            ) from None

    @classmethod
    def _from_meta(cls, meta: dict, path: Any, what: str) -> SweepResult:
        n_values = int(meta["n_values"])
        if n_values != len(meta["names"]) or n_values < 1:
            raise FileReadError(f"{what}: its metadata has n_values={n_values} for the names {meta['names']!r}.")
        keys = ["finite"] + [f"values_{i}" for i in range(n_values)]
        trees = meta["trees"]
        if not isinstance(trees, dict) or set(trees) != {"ts", "ys", "features"}:
            raise FileReadError(f"{what}: its metadata lists trees {trees!r}; expected ts, ys and features.")
        for field, paths in trees.items():
            keys += [] if paths is None else [f"{field}_{j}" for j in range(len(paths))]
        data = read_npz(path, keys=keys, what=what, required=keys)
        vals = tuple(data[f"values_{i}"] for i in range(n_values))
        decoded = {}
        for field, paths in trees.items():
            decoded[field] = (
                None if paths is None else _decode_tree(paths, [data[f"{field}_{j}"] for j in range(len(paths))])
            )
        return cls(
            values=vals if meta["values_tuple"] else vals[0],
            ts=decoded["ts"],
            ys=decoded["ys"],
            features=decoded["features"],
            finite=data["finite"],
            names=tuple(str(n) for n in meta["names"]),
            units=tuple(str(u) for u in meta["units"]),
            dt=float(meta["dt"]),
            t1=float(meta["t1"]),
            n_steps=int(meta["n_steps"]),
            batch_size=int(meta["batch_size"]),
            n_devices=int(meta["n_devices"]),
            n_processes=int(meta["n_processes"]),
        )


def _encode_path(path) -> list:
    out = []
    for k in path:
        if isinstance(k, jax.tree_util.DictKey):
            out.append(["dict", k.key])
        elif isinstance(k, jax.tree_util.SequenceKey):
            out.append(["seq", k.idx])
        elif isinstance(k, jax.tree_util.GetAttrKey):
            out.append(["dict", k.name])
        else:
            out.append(["seq", int(getattr(k, "key", 0))])
    return out


def _decode_tree(paths: list, leaves: list):
    if len(paths) == 1 and not paths[0]:
        return leaves[0]
    groups: dict = {}
    kinds = set()
    for p, leaf in zip(paths, leaves, strict=True):
        (kind, k), rest = p[0], p[1:]
        kinds.add(kind)
        groups.setdefault(k, ([], []))
        groups[k][0].append(rest)
        groups[k][1].append(leaf)
    children = {k: _decode_tree(*v) for k, v in groups.items()}
    if kinds == {"seq"}:
        return tuple(children[k] for k in sorted(children))
    return children


# ------------------------------------------------------------------------------------------------------------ helpers
def sweep_grid(*axes: ArrayLike) -> tuple[np.ndarray, ...]:
    """The cartesian product of the given axes, flattened for :func:`sweep`.

    **Arguments:**
    - `axes`: one array per swept leaf, ``(n_i,)`` for a scalar leaf or ``(n_i, *leaf_shape)``.

    **Returns:** a tuple of arrays ``(n_1 * ... * n_k, *leaf_shape_i)`` in C order (the last axis varies fastest,
    like ``np.meshgrid(..., indexing="ij")``), so that a result reshapes to the grid:
    ``res.ys["raw"].reshape(n_1, ..., n_k, *res.ys["raw"].shape[1:])``.

    ``a, b = sweep_grid(jnp.linspace(0, 0.02, 8), jnp.linspace(2, 10, 5))`` then
    ``sweep(net, where=lambda n: (n.coupling.a, n.speed), values=(a, b), ...)`` runs 40 simulations.
    """
    if not axes:
        raise ValueError("sweep_grid: give at least one axis of values.")
    arrays = [np.asarray(a) for a in axes]
    for i, a in enumerate(arrays):
        if a.ndim == 0 or a.shape[0] == 0:
            raise ValueError(f"sweep_grid: axis {i} must be a non-empty array (n, *leaf_shape), got shape {a.shape}.")
    sizes = [a.shape[0] for a in arrays]
    index = np.indices(sizes).reshape(len(sizes), -1)
    return tuple(a[ix] for a, ix in zip(arrays, index, strict=True))


# The parameter classes of vbtjax.inference, recognised by what they offer (this layer does not import inference).
def _is_distribution(x: Any) -> bool:
    return hasattr(x, "sample") and hasattr(x, "log_prob") and hasattr(x, "batch_shape")


def _is_posterior(x: Any) -> bool:
    """A :class:`~vbtjax.inference.Posterior`: priors to draw from (``sample_prior``, ``constrained``)."""
    return all(hasattr(x, a) for a in ("sample_prior", "constrained", "selection", "n_params", "names"))


def _is_selection(x: Any) -> bool:
    """A :class:`~vbtjax.inference.Selection`: parameters and their names in a network."""
    return isinstance(getattr(x, "params", None), tuple) and callable(getattr(x, "names", None))


def _is_parameter(x: Any) -> bool:
    """A :class:`~vbtjax.inference.Parameter`: a leaf (``where``) with a constraint."""
    return callable(getattr(x, "where", None)) and hasattr(x, "constraint") and hasattr(x, "to_leaf")


def _is_interval(x: Any) -> bool:
    """An :class:`~vbtjax.inference.Interval` constraint: bounds ``lo < x < hi``."""
    return hasattr(x, "lo") and hasattr(x, "hi") and callable(getattr(x, "forward", None))


def sweep_random(key: jax.Array, n: int, *specs: Any) -> Array | tuple[Array, ...]:
    """Random values for :func:`sweep`: ``n`` draws per spec.

    **Arguments:**
    - `key`: a ``jax.random`` key.
    - `n`: number of draws (simulations).
    - `specs`: one per swept leaf, each
      - a pair ``(lo, hi)`` (scalars or per-region ``(N,)`` arrays): uniform draws, shape ``(n, *broadcast(lo, hi))``;
      - an :class:`~vbtjax.inference.Interval` constraint: uniform in its bounds;
      - a NumPyro distribution: ``dist.sample(key, (n,))``, shape ``(n, *batch_shape, *event_shape)``;
      - a :class:`~vbtjax.inference.Selection` whose parameters all have ``Interval`` constraints: uniform in each;
      - a :class:`~vbtjax.inference.Posterior`: draws of its selection's parameters from their priors (a prior
        predictive sweep).

    **Returns:** one array when a single pair, Interval or distribution is given, else a tuple in order (a Selection
    or Posterior contributes one array per parameter), ready for ``values=`` (with ``where=`` the same Selection).
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"sweep_random: n must be a positive number of draws, got {n!r}.")
    if not specs:
        raise ValueError(
            "sweep_random: give one spec per swept leaf: (lo, hi), a NumPyro distribution, or a Selection."
        )
    keys = jax.random.split(key, len(specs))
    out: list[Array] = []
    single = len(specs) == 1
    dtype = jnp.result_type(float)

    def uniform(k, lo, hi, what):
        lo, hi = np.asarray(lo, dtype), np.asarray(hi, dtype)
        if not np.all(np.isfinite(lo) & np.isfinite(hi) & (lo < hi)):
            raise ValueError(f"sweep_random: {what} needs finite bounds with lo < hi, got ({lo}, {hi}).")
        return _uniform(k, lo, hi, int(n))

    for i, (k, spec) in enumerate(zip(keys, specs, strict=True)):
        if _is_posterior(spec):
            single = False
            x = _prior_draws(k, spec, int(n))
            out.extend(jnp.asarray(x[name]) for name in spec.names[: spec.n_params])
        elif _is_selection(spec) or _is_parameter(spec):
            single = False
            params = spec.params if _is_selection(spec) else (spec,)
            for j, (kj, p) in enumerate(zip(jax.random.split(k, len(params)), params, strict=True)):
                if not _is_interval(p.constraint):
                    raise ValueError(
                        f"sweep_random: parameter {j} ({p.name or 'unnamed'}) of the Selection has a "
                        f"{type(p.constraint).__name__} constraint, so it has no bounds to draw from; give it an "
                        "Interval(lo, hi), or pass (lo, hi) pairs or NumPyro distributions instead."
                    )
                out.append(uniform(kj, p.constraint.lo, p.constraint.hi, f"parameter {j}"))
        elif _is_interval(spec):
            out.append(uniform(k, spec.lo, spec.hi, f"spec {i}"))
        elif _is_distribution(spec):
            out.append(_sample(k, spec, int(n)))
        elif isinstance(spec, tuple | list) and len(spec) == 2:
            out.append(uniform(k, spec[0], spec[1], f"spec {i}"))
        else:
            raise TypeError(
                f"sweep_random: spec {i} must be a pair (lo, hi), an Interval, a NumPyro distribution, a Selection or "
                f"a Posterior, got {type(spec).__name__}."
            )
    return out[0] if single else tuple(out)


@eqx.filter_jit
def _uniform(key, lo, hi, n):
    shape = jnp.broadcast_shapes(lo.shape, hi.shape)
    return lo + (hi - lo) * jax.random.uniform(key, (n, *shape), lo.dtype)


@eqx.filter_jit
def _sample(key, distribution, n):
    return jnp.asarray(distribution.sample(key, (n,)))


@eqx.filter_jit
def _prior_draws(key, posterior, n):
    return jax.vmap(posterior.constrained)(posterior.sample_prior(key, n))


# ---------------------------------------------------------------------------------------------------------- selection
@dataclasses.dataclass(frozen=True)
class _Target:
    """What a sweep replaces: a function selecting the leaves as a tuple, their names, current values, constraints."""

    get: Callable[[Any], tuple]
    names: tuple[str, ...]
    leaves: tuple[Array, ...]
    constraints: tuple[Any, ...]  # a Parameter's constraint (with .check) or None
    single: bool


def _resolve_where(net: Network, where: Any) -> _Target:
    if _is_parameter(where):
        return _resolve_parameter(net, where)
    if _is_selection(where):
        sel = where
        names = sel.names(net)  # validates: floating array leaves of net, distinct
        maps = [nm for nm, p in zip(names, sel.params, strict=True) if p.basis is not None]
        if maps:
            raise ValueError(
                f"sweep: the parameters {maps} are parameter maps (Parameter(basis=...)); a sweep sets whole leaves: "
                "sweep their leaves (where=lambda n: n.model.a) with values basis @ c, or build a simulation budget "
                "(vbtjax.sbi.simulate_budget), which maps the coefficients itself."
            )
        leaves = tuple(p.where(net) for p in sel.params)
        return _Target(
            get=lambda n: tuple(p.where(n) for p in sel.params),
            names=names,
            leaves=leaves,
            constraints=tuple(p.constraint for p in sel.params),
            single=False,
        )
    if not callable(where):
        raise TypeError(
            "sweep: where must be a function selecting leaves of the network, e.g. where=lambda n: n.coupling.a or "
            f"lambda n: (n.coupling.a, n.speed), or a vbtjax.inference.Selection; got {type(where).__name__}."
        )
    try:
        out = where(net)
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"sweep: where(net) failed: {e!r}; where must select leaves such as n.coupling.a.") from e
    single = not isinstance(out, tuple | list)
    leaves = (out,) if single else tuple(out)
    if not leaves:
        raise ValueError("sweep: where(net) selected no leaves.")
    names = []
    for i, x in enumerate(leaves):
        what = "where(net)" if single else f"where(net)[{i}]"
        if not eqx.is_array(x):
            raise ValueError(
                f"sweep: {what} is a {type(x).__name__}, not an array leaf of the network; select numeric parameters "
                "such as n.coupling.a, n.model.eta, n.speed or n.noise.nsig."
            )
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise ValueError(
                f"sweep: {what} has dtype {x.dtype}; only floating-point leaves (model, coupling, noise parameters, "
                "weights, lengths, speed) can be swept."
            )
        path = leaf_path(net, x)
        if path is None:
            raise ValueError(
                f"sweep: {what} is not a leaf of the network (a computed value such as n.model.eta[0] or "
                "n.coupling.a * 2?); select a whole leaf, e.g. lambda n: n.model.eta."
            )
        names.append(path)
    if len({id(x) for x in leaves}) != len(leaves):
        raise ValueError(f"sweep: where selects the same leaf twice ({names}).")
    return _Target(
        get=(lambda n: (where(n),)) if single else (lambda n: tuple(where(n))),
        names=tuple(names),
        leaves=leaves,
        constraints=(None,) * len(leaves),
        single=single,
    )


def _resolve_parameter(net: Network, p: Any) -> _Target:
    """One :class:`~vbtjax.inference.Parameter`: its leaf, named by its name or path, checked against its
    constraint."""
    if p.basis is not None:
        raise ValueError(
            f"sweep: the parameter {p.name or 'unnamed'} is a parameter map (Parameter(basis=...)); a sweep sets whole "
            "leaves: sweep its leaf (where=lambda n: n.model.a) with values basis @ c."
        )
    leaf = _resolve_where(net, p.where)
    return dataclasses.replace(
        leaf,
        names=(p.name or leaf.names[0],),
        constraints=(p.constraint,),
        single=False,
        get=lambda n: (p.where(n),),
    )


def _ids(tree) -> set[int]:
    return {id(x) for x in jax.tree.leaves(tree)}


def _normalise_values(net: Network, target: _Target, values: Any) -> tuple[tuple[np.ndarray, ...], int]:
    """Values as a tuple of host arrays ``(B, *shape)``, one per leaf, cast to the leaf's dtype and checked."""
    k = len(target.leaves)
    if values is None:
        raise ValueError("sweep: values is required: an array (B, *leaf_shape) per selected leaf.")
    if target.single or (k == 1 and not isinstance(values, tuple | list)) or (k == 1 and _is_number_list(values)):
        vals = (values,)
    elif isinstance(values, tuple | list):
        vals = tuple(values)
    else:
        raise ValueError(
            f"sweep: where selects {k} leaves {list(target.names)}, so values must be a tuple of {k} arrays with the "
            "same leading batch size (sweep_grid(...) builds one for a grid)."
        )
    if len(vals) != k:
        raise ValueError(
            f"sweep: where selects {k} leaves {list(target.names)} but values has {len(vals)} arrays; give one "
            "(B, *leaf_shape) array per leaf."
        )
    n = net.n_regions
    model_ids = _ids(net.model) | _ids(net.coupling)
    out = []
    sizes = []
    for name, leaf, con, v in zip(target.names, target.leaves, target.constraints, vals, strict=True):
        what = f"values for {name!r}" if k > 1 else "values"
        if isinstance(v, jax.core.Tracer):
            raise TypeError(
                "sweep: values are traced (sweep was called inside jit/vmap/grad); sweep runs its own vmapped, "
                "jitted loop, so call it outside transformations (use vbtjax.simulate under jax.vmap instead)."
            )
        arr = np.asarray(v)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise ValueError(f"sweep: {what} must be a numeric array, got dtype {arr.dtype}.")
        if np.iscomplexobj(arr):
            raise ValueError(f"sweep: {what} must be real, got dtype {arr.dtype}.")
        arr = arr.astype(np.dtype(leaf.dtype))
        lshape = tuple(leaf.shape)
        expected = f"({'B, ' if lshape else 'B,'}{', '.join(map(str, lshape))})"
        if arr.ndim == 0:
            raise ValueError(
                f"sweep: {what} is a single number; give a leading batch axis, shape {expected}, e.g. "
                "jnp.linspace(0.0, 0.02, 64)."
            )
        per_region = id(leaf) in model_ids
        if arr.shape[1:] == lshape:
            pass
        elif lshape == () and arr.shape[1:] == (n,) and per_region:
            pass  # one value per region for a scalar model/coupling parameter
        elif lshape == (n,) and arr.ndim == 1:
            arr = np.broadcast_to(arr[:, None], (arr.shape[0], n)).copy()  # one value for all regions
        else:
            hint = f" or (B, {n}) for one value per region" if lshape == () and per_region else ""
            raise ValueError(
                f"sweep: {what} has shape {arr.shape} but the leaf {name!r} has shape {lshape}; expected "
                f"{expected}{hint} (a leading batch axis, then the leaf's shape)."
            )
        if arr.shape[0] == 0:
            raise ValueError(f"sweep: {what} is empty (batch size 0); give at least one value.")
        bad = ~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1)
        if bad.any():
            raise ValueError(
                f"sweep: {what} contains NaN or inf (first at batch index {int(np.argmax(bad))}); give finite values."
            )
        if id(leaf) == id(net.speed) and not np.all(arr > 0):
            raise ValueError(f"sweep: {what}: conduction speeds must be > 0 mm/ms, got min {arr.min()}.")
        if id(leaf) == id(net.connectome.lengths) and not np.all(arr >= 0):
            raise ValueError(f"sweep: {what}: tract lengths must be >= 0 mm.")
        if con is not None:
            con.check(arr, f"sweep: values for {name!r}")
        out.append(arr)
        sizes.append(arr.shape[0])
    if len(set(sizes)) != 1:
        detail = ", ".join(f"{nm}: {s}" for nm, s in zip(target.names, sizes, strict=True))
        raise ValueError(
            f"sweep: the value arrays have different batch sizes ({detail}); every array needs the same leading size "
            "B (use sweep_grid(...) for a cartesian grid)."
        )
    return tuple(out), sizes[0]


def _is_number_list(v) -> bool:
    return isinstance(v, list) and all(isinstance(x, int | float) for x in v)


# ------------------------------------------------------------------------------------------------------------- delays
class _SetLeaves(eqx.Module):
    """``build(net, values_b)``: the leaves at `paths` set to one row of the values (hashable by its paths, so that
    sweeps of the same leaves share one compiled program)."""

    paths: tuple[str, ...] = eqx.field(static=True)

    def __call__(self, net: Network, vs: tuple) -> Network:
        return eqx.tree_at(lambda n: tuple(get_leaf(n, p) for p in self.paths), net, replace=tuple(vs))


def _builder(net: Network, target: _Target) -> Callable[[Network, tuple], Network]:
    """``build(net, values_b)``: the network of one simulation of the sweep; by leaf paths when every selected leaf
    sits at one path of `net` only, else through `where` itself."""
    ids = [id(x) for x in jax.tree.leaves(net)]
    paths = tuple(leaf_path(net, leaf) for leaf in target.leaves)
    if all(p is not None for p in paths) and all(ids.count(id(leaf)) == 1 for leaf in target.leaves):
        return _SetLeaves(paths)

    def build(n: Network, vs: tuple) -> Network:
        return eqx.tree_at(target.get, n, replace=tuple(vs))

    return build


def _delay_network(net: Network, target: _Target, vals: tuple[np.ndarray, ...], dt: float) -> Network:
    """``net`` with a delay layout that serves every swept weight, length and speed.

    When the sweep changes any of them, the simulation sees them traced and lays out its delay buffer from
    ``net.edges``: here the union of the swept non-zero weights and, per edge, the shortest and longest swept delay
    (:func:`vbtjax.simulation.batch.widened`).
    """
    structural = {"weights": net.connectome.weights, "lengths": net.connectome.lengths, "speed": net.speed}
    which = sorted(name for name, x in structural.items() if any(leaf is x for leaf in target.leaves))
    if not which:
        return net
    owner = f"sweep: the swept {'/'.join(which)}"
    return widened(net, _builder(net, target), vals, vals[0].shape[0], dt, owner=owner, force=True)


# -------------------------------------------------------------------------------------------------------------- sweep
def sweep(
    net: Network,
    where: Callable[[Network], Any] | Any,
    values: Any,
    t1: float,
    dt: float,
    history: Any = None,
    solver: diffrax.AbstractSolver | None = None,
    monitors: PyTree[AbstractMonitor] | None = None,
    key: jax.Array | None = None,
    *,
    features: Callable[[Solution], PyTree] | None = None,
    batch_size: int | None = None,
    max_memory: int | None = None,
    devices: Sequence[jax.Device] | None = None,
    mesh: Mesh | None = None,
    chunk_steps: int = CHUNK_STEPS,
    unroll: int = 1,
    progress: bool = True,
) -> SweepResult:
    """Simulate ``net`` once per row of ``values`` (``B`` simulations), batched and sharded over devices, with one
    compiled program per shapes and settings, cached across calls (a second sweep of the same shapes compiles nothing).

    Simulation ``b`` is ``simulate(eqx.tree_at(where, net, values[b]), t1, dt, history, solver, monitors,
    fold_in(key, b))``, and the results equal such a loop (up to floating-point rounding).

    **Arguments:**
    - `net`: the :class:`~vbtjax.Network`.
    - `where`: the swept leaves, as for ``eqx.tree_at``: ``lambda n: n.coupling.a``, a tuple
      ``lambda n: (n.coupling.a, n.speed)``, or a :class:`~vbtjax.inference.Selection` (the same selection that
      :func:`~vbtjax.inference.fit` and NUTS use; `values` are then constrained values, checked against the
      constraints).
    - `values`: one array ``(B, *leaf_shape)`` per leaf (``(B,)`` for a scalar leaf), a tuple of them (same ``B``)
      for several leaves. A scalar model or coupling parameter also takes ``(B, N)``, one value per region; a
      per-region leaf ``(N,)`` also takes ``(B,)``, one value for all regions. See :func:`sweep_grid` and
      :func:`sweep_random`. Speeds (mm/ms), tract lengths (mm) and weights may be swept: the delay buffer is laid out
      for the whole range of swept delays.
    - `t1`, `dt` (ms), `history`, `solver`, `monitors`: as for :func:`~vbtjax.simulate` (one history shared by all
      simulations; default monitors ``{"raw": Raw()}``).
    - `key`: base ``jax.random`` key; simulation ``b`` gets ``jax.random.fold_in(key, b)`` (required when the network
      has noise; with ``history=None`` it also draws each simulation's random initial state, as ``simulate`` does).
    - `features`: optional ``features(solution) -> pytree`` computed per simulation inside the vmapped program; only
      its output is kept (``res.features``; ``res.ys`` is None), e.g. ``lambda s: vbt.features.fc(s.ys["raw"][:, 0])``.
    - `batch_size`: simulations per chunk (rounded up to a multiple of the number of devices). Default: as many as fit
      `max_memory`, on CPU at most :data:`~vbtjax.simulation.batch.CPU_ROWS` per device. An accelerator vmaps a
      device's whole share; a CPU device runs it a few at a time (as many as keep the loop's working set within
      :data:`CPU_CACHE`, at most :data:`CPU_MAX_BATCH`): a wide vmap only adds cache misses there, and the cores are
      used through one CPU device per core (:mod:`vbtjax.simulation.batch`).
    - `max_memory`: memory budget per device in bytes for one chunk (monitor outputs, features, delay buffer and loop
      temporaries, estimated); when given, the batch is sized by it alone. Default: half the free memory of an
      accelerator; on CPU ``min(2 GiB, RAM / 4 / local devices)``.
    - `devices`: the devices sharing the batch (default ``jax.devices()``: all devices of all processes), or `mesh`,
      a ``jax.sharding.Mesh`` whose axes all shard the batch.
    - `chunk_steps`, `unroll`: passed to :func:`~vbtjax.simulate`; `progress`: a bar over chunks (on process 0).

    Multi-host: call ``jax.distributed.initialize()``, then run the same script on every process; each computes the
    shards of its devices and every process receives the full result.

    **Returns:** a :class:`SweepResult` (host arrays).
    """
    _check_arguments(net, features, batch_size, max_memory, key, history)
    target = _resolve_where(net, where)
    vals, B = _normalise_values(net, target, values)
    mesh = distributed.batch_mesh(devices, mesh)
    net_eff = _delay_network(net, target, vals, dt)
    mons = {"raw": Raw()} if monitors is None else monitors
    simulate_one = _Simulate(history, solver, mons, t1, dt, chunk_steps, unroll)
    build = _builder(net, target)
    sol_shape, out_shape = _shapes(net_eff, build, simulate_one, features, vals, key)
    runner = BatchRunner(
        net_eff, build, _Reduced(simulate_one, features), has_key=key is not None, mesh=mesh, owner="sweep", closed=True
    )
    if batch_size is None:
        budget = {"chunk_steps": chunk_steps, "max_memory": max_memory, "kept": features is not None}
        per_device = memory_per_device(net_eff, sol_shape, out_shape, mesh, **budget)
    else:
        per_device = -(-int(batch_size) // runner.n_devices)
    bs = runner.chunk_size(B, per_device, balance=batch_size is None)
    width = batch_width(net_eff, sol_shape, mesh, chunk_steps, bs // runner.n_devices)
    _warn_host_memory(B * nbytes(out_shape))
    outputs, finite = runner(vals, B, key, bs, progress="sweep" if progress else None, width=width)
    return _result(net, target, vals, mons, sol_shape, outputs, finite, features is not None, t1, dt, bs, runner)


def _result(net, target, vals, mons, sol_shape, outputs, finite, reduced, t1, dt, bs, runner) -> SweepResult:
    """The :class:`SweepResult` of a finished sweep, with each monitor's sample times."""
    mon_leaves = jax.tree.leaves(mons, is_leaf=is_monitor)
    ts_leaves, ts_tree = jax.tree.flatten(sol_shape.ts)
    ts = [np.asarray(m.sample_times(s.shape[0], dt), s.dtype) for m, s in zip(mon_leaves, ts_leaves, strict=True)]
    return SweepResult(
        values=vals[0] if target.single else tuple(vals),
        ts=jax.tree.unflatten(ts_tree, ts),
        ys=None if reduced else outputs,
        features=outputs if reduced else None,
        finite=finite,
        names=target.names,
        units=tuple(UNITS.get(leaf_path(net, leaf) or "", "") for leaf in target.leaves),
        dt=float(dt),
        t1=float(t1),
        n_steps=int(sol_shape.n_steps),
        batch_size=bs,
        n_devices=runner.n_devices,
        n_processes=runner.n_processes,
    )


def _check_arguments(net, features, batch_size, max_memory, key, history) -> None:
    if not isinstance(net, Network):
        raise TypeError(f"sweep: net must be a vbtjax.Network, got {type(net).__name__}.")
    if features is not None and not callable(features):
        raise TypeError("sweep: features must be a function features(solution) -> pytree of arrays, or None.")
    if batch_size is not None and max_memory is not None:
        raise ValueError("sweep: give batch_size= or max_memory=, not both.")
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1
    ):
        raise ValueError(f"sweep: batch_size must be a positive integer, got {batch_size!r}.")
    if max_memory is not None and not (isinstance(max_memory, int | float | np.integer) and max_memory > 0):
        raise ValueError(f"sweep: max_memory must be a positive number of bytes, got {max_memory!r}.")
    if net.noise is not None and key is None:
        raise ValueError("sweep: the network has noise, so a key is required: sweep(..., key=jax.random.key(0)).")
    if history is not None and not isinstance(history, jax.core.Tracer):
        h = np.asarray(history)
        if np.issubdtype(h.dtype, np.number) and not np.all(np.isfinite(h)):
            raise ValueError("sweep: history contains NaN or inf.")  # checked here: it is an argument of the program


def _shapes(net, build, simulate_one, features, vals, key) -> tuple[Any, Any]:
    """One abstract evaluation: validates the arguments (simulate's errors) and gives the shapes of one simulation's
    :class:`~vbtjax.Solution` and of what the sweep keeps of it."""

    def one(vs, index):
        k = None if key is None else jax.random.fold_in(key, index)
        return simulate_one(build(net, vs), k)

    vs0 = tuple(jax.ShapeDtypeStruct(v.shape[1:], v.dtype) for v in vals)
    idx0 = jax.ShapeDtypeStruct((), jnp.uint32)
    sol_shape = jax.eval_shape(one, vs0, idx0)
    if features is None:
        return sol_shape, sol_shape.ys
    out_shape = jax.eval_shape(lambda v, i: features(one(v, i)), vs0, idx0)
    if not all(isinstance(x, jax.ShapeDtypeStruct) for x in jax.tree.leaves(out_shape)):
        raise TypeError("sweep: features must return a pytree of arrays.")
    return sol_shape, out_shape


class _Simulate(eqx.Module):
    """``simulate(network, key)`` with the sweep's settings (a module: its history and monitors' arrays are arguments
    of the compiled program, the rest is part of its cache key)."""

    history: Any
    solver: Any
    monitors: Any
    t1: float = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    chunk_steps: int = eqx.field(static=True)
    unroll: int = eqx.field(static=True)

    def __call__(self, n: Network, k: jax.Array | None) -> Solution:
        settings = {"chunk_steps": self.chunk_steps, "unroll": self.unroll}
        return simulate(n, self.t1, self.dt, self.history, self.solver, self.monitors, k, **settings)


class _Reduced(eqx.Module):
    """``run(network, key) -> (kept outputs, all finite)`` for the batch runner."""

    simulate_one: _Simulate
    features: Callable | None = eqx.field(static=True)

    def __call__(self, n: Network, k: jax.Array | None):
        sol = self.simulate_one(n, k)
        out = sol.ys if self.features is None else self.features(sol)
        leaves = jax.tree.leaves(out)
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else jnp.asarray(True)
        return out, finite


def _warn_host_memory(result_bytes: int) -> None:
    ram = host_memory()
    if ram is not None and result_bytes > ram // 2:
        warnings.warn(
            f"sweep: the results take {result_bytes / 2**30:.1f} GiB of host memory (more than half of this "
            "machine's); reduce them with features=, a monitor with a longer period, or fewer variables of interest.",
            stacklevel=3,
        )
