"""Placement of batched work on devices and processes (used by :func:`vbtjax.sweep`).

One mesh axis per batch: the batch axis is sharded over every device of the mesh, so each device (and, under JAX's
multi-controller runtime, each process) computes its own slice and nothing is communicated until the results are
gathered to the host.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

BATCH_AXIS = "batch"


def batch_mesh(devices: Sequence[jax.Device] | None = None, mesh: Mesh | None = None, *, owner: str = "sweep") -> Mesh:
    """The mesh whose devices share the batch: ``mesh`` as given, a 1-D mesh over ``devices``, or over all
    (global) devices ``jax.devices()``."""
    if mesh is not None and devices is not None:
        raise ValueError(f"{owner}: give devices= or mesh=, not both.")
    if mesh is not None:
        if not isinstance(mesh, Mesh):
            raise TypeError(f"{owner}: mesh must be a jax.sharding.Mesh, got {type(mesh).__name__}.")
        return mesh
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError(f"{owner}: devices is empty; give a list of jax devices, e.g. jax.devices().")
    for d in devices:
        if not isinstance(d, jax.Device):
            raise TypeError(f"{owner}: devices must be jax devices (e.g. jax.devices()[:4]), got {type(d).__name__}.")
    if len({d.id for d in devices}) != len(devices):
        raise ValueError(f"{owner}: devices lists a device twice.")
    return Mesh(np.asarray(devices, dtype=object), (BATCH_AXIS,))


def batch_spec(mesh: Mesh) -> PartitionSpec:
    """Leading axis sharded over all axes of ``mesh`` (their product is the number of devices)."""
    return PartitionSpec(tuple(mesh.axis_names))


def batch_map(f: Callable, mesh: Mesh, replicated: Sequence[bool] | None = None) -> Callable:
    """``f`` (already vmapped over a leading batch axis) run on each device's slice of every argument and output:
    ``jax.shard_map`` with the batch spec, without replication checks (nothing is communicated). With
    `replicated` (one flag per argument), the flagged arguments are not batched: every device gets them whole
    (e.g. a network's arrays, a key)."""
    spec = batch_spec(mesh)
    in_specs = spec if replicated is None else tuple(PartitionSpec() if r else spec for r in replicated)
    if hasattr(jax, "shard_map"):
        return jax.shard_map(f, mesh=mesh, in_specs=in_specs, out_specs=spec, check_vma=False)
    from jax.experimental.shard_map import shard_map  # JAX < 0.7

    return shard_map(f, mesh=mesh, in_specs=in_specs, out_specs=spec, check_rep=False)


def n_processes(mesh: Mesh) -> int:
    """Number of processes that own devices of ``mesh``."""
    return len({d.process_index for d in mesh.devices.flat})


def to_global(x: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A global array from a host array that every process holds in full; each process places only the shards of
    its own devices."""
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


def to_host(tree: Any) -> Any:
    """NumPy copies of the arrays of ``tree`` on every process (an all-gather across processes when needed)."""
    leaves, treedef = jax.tree.flatten(tree)
    if all(x.is_fully_addressable for x in leaves):
        return jax.tree.unflatten(treedef, [np.asarray(x) for x in leaves])
    from jax.experimental import multihost_utils

    return jax.tree.unflatten(treedef, [np.asarray(x) for x in multihost_utils.process_allgather(leaves, tiled=True)])


def copy_rows(leaves: Sequence[jax.Array], store: Sequence[np.ndarray], lo: int, S: int) -> None:
    """Copy each array of `leaves` (a chunk, batch axis first) into rows ``lo ..`` of its host array in `store`,
    dropping the rows at `S` and beyond (padding). Shard by shard where this process holds every shard (one copy,
    no gathered intermediate), else through :func:`to_host`."""
    if not all(x.is_fully_addressable for x in leaves):
        leaves = to_host(list(leaves))
    for src, dst in zip(leaves, store, strict=True):
        if isinstance(src, np.ndarray):
            m = min(src.shape[0], S - lo)
            dst[lo : lo + m] = src[:m]
            continue
        for shard in src.addressable_shards:
            if shard.replica_id != 0:
                continue
            start, stop, _ = shard.index[0].indices(src.shape[0]) if shard.index else (0, src.shape[0], 1)
            stop = min(stop, S - lo)
            if stop > start:
                dst[lo + start : lo + stop] = np.asarray(shard.data)[: stop - start]
