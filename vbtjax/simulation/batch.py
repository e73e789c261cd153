"""Batched simulations: one network, many parameter values, in one compiled program.

The one batched runner of vbtjax, used by :func:`vbtjax.sweep`, :meth:`vbtjax.Twin.predict` and
:func:`vbtjax.sbi.simulate_budget`:

- :func:`widened` gives the network a delay layout that serves every network of the batch (the union of their
  edges, the range of their delays), so that weights, lengths and speeds may vary across the batch;
- :class:`BatchRunner` runs ``run(build(net, values_b), key_b)`` for every row ``b`` of the values, vmapped, sharded
  over the devices of a mesh (:mod:`vbtjax.simulation.distributed`) and cut into chunks of one size (the last one
  padded), so that every chunk runs the same compiled program; row ``b`` gets the key ``fold_in(key, b)``, so
  results do not depend on the chunking or on the number of devices or processes;
- :func:`memory_per_device` sizes the chunks to a memory budget (:func:`default_budget`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding

from ..network import Network
from . import distributed

__all__ = ["BatchRunner", "widened", "memory_per_device", "default_budget", "nbytes", "CPU_BUDGET", "CPU_CACHE"]

CPU_BUDGET = 2 << 30
"""Default memory budget per CPU device, bytes (also capped at a quarter of the machine's memory per device)."""

CPU_CACHE = 4 << 20
"""On CPU, by default, the per-device batch keeps the loop's working set within this many bytes."""

CPU_MAX_BATCH = 64
"""Largest default per-device batch on CPU."""

Build = Callable[[Network, tuple], Network]
"""``build(net, values_b) -> network`` for one row of the values (traced under ``jax.vmap``)."""


# ------------------------------------------------------------------------------------------------------ delay layout
def widened(
    net: Network, build: Build, vals: Sequence[np.ndarray], S: int, dt: float | None, *, owner: str, force: bool = False
) -> Network:
    """``net`` with a delay layout serving the weights, lengths and speeds of every built network
    ``build(net, values_b)``, ``b < S``; ``net`` itself when `dt` is None, or when they are all those of ``net`` and
    not `force`."""
    if dt is None:
        return net

    def structure(vs):
        n = build(net, vs)
        return n.connectome.weights, n.connectome.lengths, n.speed

    if vals:
        f = jax.jit(jax.vmap(structure))
        batches = [f(tuple(x[lo : lo + 64] for x in vals)) for lo in range(0, S, 64)]
    else:
        batches = [jax.jit(structure)(())]
    batches = [tuple(np.asarray(x, np.float64) for x in b) for b in batches]
    ref = tuple(np.asarray(x, np.float64) for x in (net.connectome.weights, net.connectome.lengths, net.speed))
    same = all(np.array_equal(a, np.broadcast_to(r, a.shape)) for b in batches for a, r in zip(b, ref, strict=True))
    if same and not force:
        return net
    return net.widened(batches, dt, owner=owner)


# ------------------------------------------------------------------------------------------------------------ memory
def nbytes(tree: Any) -> int:
    """Bytes of the arrays (or shape structs) of ``tree``."""
    return sum(math.prod(x.shape) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


def default_budget(mesh: Mesh) -> int:
    """Bytes per device: half of the free accelerator memory, or on CPU min(CPU_BUDGET, RAM / 4 / local devices)."""
    local = [d for d in mesh.devices.flat if d.process_index == jax.process_index()]
    dev = local[0] if local else None
    stats = None
    try:
        stats = dev.memory_stats() if dev is not None else None
    except Exception:  # noqa: BLE001 (not every backend reports memory)
        stats = None
    if stats and stats.get("bytes_limit"):
        return int(0.5 * (stats["bytes_limit"] - stats.get("bytes_in_use", 0)))
    ram = host_memory()
    return CPU_BUDGET if ram is None else int(min(CPU_BUDGET, ram // 4 // max(1, len(local))))


def host_memory() -> int | None:
    """Bytes of memory of this machine, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def memory_per_device(
    net: Network, sol_shape: Any, out_shape: Any, mesh: Mesh, *, chunk_steps: int, max_memory: int | None, kept: bool
) -> int:
    """Simulations per device that fit `max_memory` bytes (default :func:`default_budget`): monitor outputs, kept
    outputs (`kept`: `out_shape` is kept besides the monitors'), delay buffer and loop temporaries, estimated from
    the shapes of one :class:`~vbtjax.Solution` (`sol_shape`, from ``jax.eval_shape``). On CPU and without
    `max_memory`, also at most what keeps the loop's working set within :data:`CPU_CACHE` (at most
    :data:`CPU_MAX_BATCH`): a CPU gains little from wide batches, an accelerator a lot."""
    budget = default_budget(mesh) if max_memory is None else int(max_memory)
    itemsize = np.dtype(sol_shape.final_state.dtype).itemsize
    n_svar, n_reg = sol_shape.final_state.shape
    n_cvar = net.model.n_cvar
    H, K = sol_shape.horizon, sol_shape.block
    steps = min(chunk_steps, sol_shape.n_steps)
    ring = n_cvar * n_reg * (H + steps + 2 * K) * itemsize  # the chunk's delay buffer (vbtjax.simulate)
    chunk = steps * n_svar * n_reg * itemsize
    per_sim = 2 * nbytes(sol_shape.ys) + (nbytes(out_shape) if kept else 0) + ring + 3 * chunk
    per_device = max(1, budget // max(per_sim, 1))
    if max_memory is None and all(d.platform == "cpu" for d in mesh.devices.flat):
        # CPU: one simulation is already vectorised over regions and edges; wider batches only add cache misses
        # (measured: 76 regions run fastest at 1-16 per device, 5 regions at ~64). Keep the loop's working set
        # (delay buffer, one block of gathered delays, one chunk of states) within CPU_CACHE.
        n_edges = int(np.count_nonzero(np.asarray(net.connectome.weights)))
        if net.edges is not None:
            n_edges = max(n_edges, int(net.edges.mask.sum()))
        working = ring + n_cvar * n_edges * (K + 1) * itemsize + chunk
        per_device = min(per_device, max(1, min(CPU_MAX_BATCH, CPU_CACHE // working)))
    return per_device


# ------------------------------------------------------------------------------------------------------------ runner
class BatchRunner:
    """``run(build(net, values_b), key_b)`` for batches of values, vmapped and sharded over devices, compiled once:
    the network's arrays and the base key are arguments of the compiled program (not constants), so calls with other
    values, other keys or other chunks of the same size reuse it.

    **Arguments:**
    - `net`: the network (with a delay layout serving the batch: :func:`widened`).
    - `build`: ``build(net, values_b) -> network``, one row of the values (a tuple, one array per swept leaf).
    - `run`: ``run(network, key) -> pytree of arrays``.
    - `has_key`: whether ``run`` gets ``fold_in(key, b)`` (else ``None``).
    - `devices`, `mesh`: the devices sharing the batch (default all), as for :func:`vbtjax.sweep`.
    - `owner`: the name in error messages.
    - `closed`: the network's arrays are constants of the compiled program instead of arguments: its delays stay
      concrete, so a batch that does not build other weights, lengths or speeds uses the static delay layout (as
      :func:`vbtjax.simulate` of the network does), at the price of one compilation per network.
    """

    def __init__(
        self,
        net: Network,
        build: Build,
        run: Callable[[Network, Any], Any],
        *,
        has_key: bool,
        devices: Sequence[jax.Device] | None = None,
        mesh: Mesh | None = None,
        owner: str = "batch",
        closed: bool = False,
    ):
        self.mesh = distributed.batch_mesh(devices, mesh, owner=owner)
        self.n_devices = int(self.mesh.devices.size)
        self.n_processes = distributed.n_processes(self.mesh)
        self.sharding = NamedSharding(self.mesh, distributed.batch_spec(self.mesh))
        self.net = net
        dynamic, static = eqx.partition(net, eqx.is_array)
        # closed: the network's arrays are constants of the program, so the delays of a network whose weights, lengths
        # and speed are not built per row stay concrete (the static delay layout); else they are arguments
        self.dynamic = () if closed else dynamic

        def one(dyn, key, vs, index):
            n = net if closed else eqx.combine(dyn, static)
            k = jax.random.fold_in(key, index) if has_key else None
            return run(build(n, vs), k)

        vmapped = jax.vmap(one, in_axes=(None, None, 0, 0))
        mapped = distributed.batch_map(vmapped, self.mesh, replicated=(True, True, False, False))
        self.batched = jax.jit(mapped)

    @property
    def on_cpu(self) -> bool:
        return all(d.platform == "cpu" for d in self.mesh.devices.flat)

    def chunk_size(self, S: int, per_device: int, *, balance: bool = False) -> int:
        """Simulations per chunk for `S` simulations, `per_device` at most on each device: a multiple of the number
        of devices, the same on every process (the smallest choice wins); with `balance`, the same number of chunks
        with the least padding."""
        per_device = min(int(per_device), -(-S // self.n_devices))
        if self.n_processes > 1:
            from jax.experimental import multihost_utils

            per_device = int(np.min(multihost_utils.process_allgather(np.asarray(per_device, np.int64))))
        if balance:
            per_sweep = -(-S // self.n_devices)
            per_device = -(-per_sweep // -(-per_sweep // per_device))
        return per_device * self.n_devices

    def batch(self, batch_size: int | None, S: int) -> int:
        """Simulations per chunk for a requested `batch_size` (rounded up to a multiple of the number of devices;
        default 8 per CPU device, 256 per accelerator)."""
        if batch_size is None:
            batch_size = (8 if self.on_cpu else 256) * self.n_devices
        if isinstance(batch_size, bool) or int(batch_size) < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        return self.chunk_size(S, -(-int(batch_size) // self.n_devices))

    def __call__(
        self, vals: Sequence[np.ndarray], S: int, key: jax.Array | None, bs: int, *, progress: str | None = None
    ) -> Any:
        """The outputs of the `S` rows of `vals` (host arrays ``(S, ...)``), in chunks of `bs` (from :meth:`batch`
        or :meth:`chunk_size`). Each chunk is dispatched before the previous one is copied to the host. `progress`:
        the description of a progress bar (on process 0, when there are several chunks)."""
        n_chunks = -(-S // bs)
        Sp = n_chunks * bs
        padded = tuple(np.concatenate([v, np.repeat(v[-1:], Sp - S, axis=0)]) if Sp > S else v for v in vals)
        indices = np.arange(Sp, dtype=np.uint32)
        key = jax.random.key(0) if key is None else key
        store: list[np.ndarray] = []
        treedef = None
        bar = None
        if progress and jax.process_index() == 0 and n_chunks > 1:
            from tqdm.auto import tqdm

            bar = tqdm(total=S, desc=progress, unit="sim", dynamic_ncols=True)

        def collect(c, result):
            nonlocal treedef
            leaves, treedef = jax.tree.flatten(distributed.to_host(result))
            if not store:
                store.extend(np.empty((S, *x.shape[1:]), x.dtype) for x in leaves)
            lo = c * bs
            m = min(bs, S - lo)
            for dst, src in zip(store, leaves, strict=True):
                dst[lo : lo + m] = src[:m]
            if bar is not None:
                bar.update(m)

        try:
            pending = None
            for c in range(n_chunks):
                sl = slice(c * bs, (c + 1) * bs)
                vs = tuple(distributed.to_global(v[sl], self.sharding) for v in padded)
                idx = distributed.to_global(indices[sl], self.sharding)
                result = self.batched(self.dynamic, key, vs, idx)  # asynchronous: meanwhile the last chunk is copied
                if pending is not None:
                    collect(*pending)
                pending = (c, result)
            collect(*pending)
        finally:
            if bar is not None:
                bar.close()
        return jax.tree.unflatten(treedef, store)
