"""Batched simulations: one network, many parameter values, in one compiled program.

The one batched runner of vbtjax, used by :func:`vbtjax.sweep`, :meth:`vbtjax.Twin.predict` and
:func:`vbtjax.sbi.simulate_budget`:

- :func:`widened` gives the network a delay layout that serves every network of the batch (the union of their
  edges, the range of their delays), so that weights, lengths and speeds may vary across the batch;
- :class:`BatchRunner` runs ``run(build(net, values_b), key_b)`` for every row ``b`` of the values, sharded over the
  devices of a mesh (:mod:`vbtjax.simulation.distributed`), each device running its rows a few at a time
  (``jax.lax.map`` of a ``jax.vmap``), cut into chunks of one size (the last one padded) so that every chunk runs the
  same compiled program, and that program cached across calls with the same static settings and shapes; row ``b``
  gets the key ``fold_in(key, b)``, so results do not depend on the chunking or on the number of devices or
  processes;
- :func:`memory_per_device` sizes the chunks to a memory budget (:func:`default_budget`) and :func:`batch_width`
  chooses how many rows a device runs side by side (on CPU few: :func:`cpu_width`).

On a CPU the devices are the parallelism: one simulation of a region network is already vectorised over regions
and edges, and XLA runs one device's program on one core, so a process with one CPU device uses one core. Give the
process one CPU device per core (``jax.config.update("jax_num_cpu_devices", k)`` or
``XLA_FLAGS=--xla_force_host_platform_device_count=k`` before JAX starts) and the batch is shared over the cores.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding

from ..network import Network
from . import distributed

__all__ = [
    "BatchRunner",
    "widened",
    "memory_per_device",
    "cpu_width",
    "batch_width",
    "default_budget",
    "nbytes",
    "clear_cache",
    "CPU_BUDGET",
    "CPU_CACHE",
]

CPU_BUDGET = 2 << 30
"""Default memory budget per CPU device, bytes (also capped at a quarter of the machine's memory per device)."""

CPU_CACHE = 2 << 20
"""On CPU, by default, the simulations vmapped side by side keep the loop's working set within this many bytes."""

CPU_MAX_BATCH = 64
"""Most simulations vmapped side by side on one CPU device (:func:`cpu_width`)."""

CPU_ROWS = 4
"""Default simulations per CPU device and chunk (run :func:`cpu_width` at a time)."""

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
    """Simulations per device and chunk that fit `max_memory` bytes (default :func:`default_budget`): monitor
    outputs, kept outputs (`kept`: `out_shape` is kept besides the monitors'), delay buffer and loop temporaries,
    estimated from the shapes of one :class:`~vbtjax.Solution` (`sol_shape`, from ``jax.eval_shape``). On CPU and
    without `max_memory`, also at most :data:`CPU_ROWS` (several chunks, so that copying one to the host overlaps
    the next one's run)."""
    budget = default_budget(mesh) if max_memory is None else int(max_memory)
    itemsize = np.dtype(sol_shape.final_state.dtype).itemsize
    n_svar, n_reg = sol_shape.final_state.shape
    H, K = sol_shape.horizon, sol_shape.block
    steps = min(chunk_steps, sol_shape.n_steps)
    ring = net.model.n_cvar * n_reg * (H + steps + 2 * K) * itemsize  # the chunk's delay buffer (vbtjax.simulate)
    chunk = steps * n_svar * n_reg * itemsize
    per_sim = 2 * nbytes(sol_shape.ys) + (nbytes(out_shape) if kept else 0) + ring + 3 * chunk
    per_device = max(1, budget // max(per_sim, 1))
    if max_memory is None and _on_cpu(mesh):
        per_device = min(per_device, CPU_ROWS)
    return per_device


def batch_width(net: Network, sol_shape: Any, mesh: Mesh, chunk_steps: int, per_device: int) -> int:
    """Simulations vmapped side by side on each device, of `per_device` per chunk: all of them on an accelerator;
    on CPU :func:`cpu_width` (the others run one after another: ``jax.lax.map``)."""
    if not _on_cpu(mesh):
        return per_device
    steps = min(chunk_steps, sol_shape.n_steps)
    itemsize = np.dtype(sol_shape.final_state.dtype).itemsize
    return min(per_device, cpu_width(net, itemsize, sol_shape.horizon, sol_shape.block, steps))


def _on_cpu(mesh: Mesh) -> bool:
    return all(d.platform == "cpu" for d in mesh.devices.flat)


# ------------------------------------------------------------------------------------------------------------ runner
class Constant:
    """A host array given to a compiled program as a constant (hashed by content, so that it is part of the cache key):
    the network's weights, lengths and speed in a closed :class:`BatchRunner`, so that its delays stay concrete."""

    def __init__(self, x: Any):
        self.value = np.array(x)
        self.value.setflags(write=False)
        self._key = (self.value.shape, self.value.dtype.str, hashlib.sha1(self.value.tobytes()).digest())
        # made here, outside any trace: inside one, jnp.asarray would give a tracer, not a concrete constant
        self._array = jnp.asarray(self.value)

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other) -> bool:
        return isinstance(other, Constant) and self._key == other._key

    def array(self) -> jax.Array:
        """The value as a concrete JAX array (a constant of the program that closes over it)."""
        return self._array


def _is_constant(x) -> bool:
    return isinstance(x, Constant)


def _freeze(net: Network | None) -> Any:
    """`net` with its weights, lengths and speed as :class:`Constant` objects (not arrays, so not arguments)."""
    if net is None:
        return None
    where = lambda n: (n.connectome.weights, n.connectome.lengths, n.speed)  # noqa: E731
    return eqx.tree_at(where, net, tuple(Constant(x) for x in where(net)))


def _thaw(tree: Any) -> Any:
    return jax.tree.map(lambda x: x.array() if _is_constant(x) else x, tree, is_leaf=_is_constant)


def static_key(*trees: Any) -> Any:
    """A hashable key of the static parts of `trees` (structure and non-array leaves; functions by identity), or
    None when one of them cannot be hashed (the program is then not cached)."""
    leaves, treedef = jax.tree.flatten(trees, is_leaf=_is_constant)
    key = (treedef, tuple(leaves))
    try:
        hash(key)
    except (TypeError, ValueError):  # an unhashable static leaf or field (a list, an array)
        return None
    return key


PROGRAM_CACHE_SIZE = 32
"""Compiled batch programs kept across calls (least recently used dropped first)."""

_PROGRAMS: OrderedDict = OrderedDict()


def _program(key: Any, make: Callable[[], Callable]) -> Callable:
    """The jitted program for `key` from the module's cache (built by `make` on a miss; not cached when `key` is
    None). ``jax.jit`` then compiles once per shapes, dtypes and shardings of the arguments."""
    if key is None:
        return make()
    if key in _PROGRAMS:
        _PROGRAMS.move_to_end(key)
        return _PROGRAMS[key]
    fn = _PROGRAMS[key] = make()
    while len(_PROGRAMS) > PROGRAM_CACHE_SIZE:
        _PROGRAMS.popitem(last=False)
    return fn


def clear_cache() -> None:
    """Drop the cached batch programs (and with them their compiled executables)."""
    _PROGRAMS.clear()


def cpu_width(net: Network | None, itemsize: int, horizon: int, block: int, steps: int) -> int:
    """Simulations vmapped side by side on one CPU device: as many as keep the loop's working set (delay buffer of
    `horizon` + `steps` columns, one block of `block` gathered delays per edge, one chunk of `steps` states) within
    :data:`CPU_CACHE`, at most :data:`CPU_MAX_BATCH`; the others of a device's share run one after another."""
    if net is None:
        return CPU_MAX_BATCH
    n_svar, n_cvar, n_reg = net.model.n_svar, net.model.n_cvar, net.n_regions
    n_edges = int(np.count_nonzero(np.asarray(net.connectome.weights)))
    if net.edges is not None:
        n_edges = max(n_edges, int(net.edges.mask.sum()))
    ring = n_cvar * n_reg * (horizon + steps + 2 * block) * itemsize
    working = ring + n_cvar * n_edges * (block + 1) * itemsize + steps * n_svar * n_reg * itemsize
    return max(1, min(CPU_MAX_BATCH, CPU_CACHE // max(working, 1)))


class BatchRunner:
    """``run(build(net, values_b), key_b)`` for batches of values, sharded over devices, compiled once per shapes:
    the network's arrays (but, when `closed`, its weights, lengths and speed), the array leaves of `run` and the base
    key are arguments of the compiled program, not constants, and the program is cached across runners built from the
    same static parts (the network's structure, `build` and `run` compared by value where they are Equinox modules,
    else by identity), so calls with other values, other keys, other parameter values or other chunks of the same
    size reuse it.

    On each device the rows of its share run ``width`` at a time (``jax.lax.map`` of a ``jax.vmap``): on a CPU a wide
    vmap only adds cache misses to a simulation that is already vectorised over regions and edges (measured,
    ``benchmarks/RESULTS.md``), so there the devices (one per core) give the parallelism and a few rows run side by
    side; on an accelerator the whole share is one vmap.

    **Arguments:**
    - `net`: the network (with a delay layout serving the batch: :func:`widened`).
    - `build`: ``build(net, values_b) -> network``, one row of the values (a tuple, one array per swept leaf).
    - `run`: ``run(network, key) -> pytree of arrays`` (an Equinox module's array leaves become arguments).
    - `has_key`: whether ``run`` gets ``fold_in(key, b)`` (else ``None``).
    - `devices`, `mesh`: the devices sharing the batch (default all), as for :func:`vbtjax.sweep`.
    - `owner`: the name in error messages.
    - `closed`: the network's weights, lengths and speed are constants of the compiled program (part of its cache
      key) instead of arguments: its delays stay concrete, so a batch that does not build other weights, lengths or
      speeds uses the static delay layout (as :func:`vbtjax.simulate` of the network does).
    """

    def __init__(
        self,
        net: Network | None,
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
        self.has_key = bool(has_key)
        self.dynamic, self._static = eqx.partition((_freeze(net) if closed else net, run), eqx.is_array)
        self._build = build
        self._key = static_key(self._static, build, self.has_key, self.mesh)

    @property
    def on_cpu(self) -> bool:
        return all(d.platform == "cpu" for d in self.mesh.devices.flat)

    def width_for(self, dt: float | None, steps: int = 1000) -> int | None:
        """Simulations side by side on each device for a network simulated with step `dt` (ms) in chunks of `steps`:
        on CPU :func:`cpu_width` of the runner's network; None (the whole share) on an accelerator, without a
        network, or without `dt`."""
        if not self.on_cpu or self.net is None or dt is None:
            return None
        plan = self.net.delay_plan(dt)
        return cpu_width(self.net, np.dtype(self.net.dtype).itemsize, plan.horizon, plan.block, steps)

    def program(self, width: int) -> Callable:
        """The jitted program ``(dynamic, key, values, indices) -> outputs`` running `width` rows at a time on each
        device (cached: see the class)."""
        static, build, has_key, mesh = self._static, self._build, self.has_key, self.mesh

        def make():
            def one(dyn, key, vs, index):
                net, run = _thaw(eqx.combine(dyn, static))
                k = jax.random.fold_in(key, index) if has_key else None
                return run(build(net, vs), k)

            def share(dyn, key, vs, index):  # one device's rows
                rows = index.shape[0]
                if width >= rows:
                    return jax.vmap(one, in_axes=(None, None, 0, 0))(dyn, key, vs, index)
                return jax.lax.map(lambda x: one(dyn, key, *x), (vs, index), batch_size=width if width > 1 else None)

            return jax.jit(distributed.batch_map(share, mesh, replicated=(True, True, False, False)))

        return _program(None if self._key is None else (self._key, int(width)), make)

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
        self,
        vals: Sequence[np.ndarray],
        S: int,
        key: jax.Array | None,
        bs: int,
        *,
        progress: str | None = None,
        width: int | None = None,
    ) -> Any:
        """The outputs of the `S` rows of `vals` (host arrays ``(S, ...)``), in chunks of `bs` (from :meth:`batch`
        or :meth:`chunk_size`), `width` rows side by side on each device (default: all of its share). Each chunk is
        dispatched before the previous one is copied to the host. `progress`: the description of a progress bar (on
        process 0, when there are several chunks)."""
        n_chunks = -(-S // bs)
        Sp = n_chunks * bs
        per_device = bs // self.n_devices
        program = self.program(per_device if width is None else max(1, min(int(width), per_device)))
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
            leaves, treedef = jax.tree.flatten(result)
            if not store:
                store.extend(np.empty((S, *x.shape[1:]), x.dtype) for x in leaves)
            distributed.copy_rows(leaves, store, c * bs, S)
            if bar is not None:
                bar.update(min(bs, S - c * bs))

        try:
            pending = None
            for c in range(n_chunks):
                sl = slice(c * bs, (c + 1) * bs)
                vs = tuple(distributed.to_global(v[sl], self.sharding) for v in padded)
                idx = distributed.to_global(indices[sl], self.sharding)
                result = program(self.dynamic, key, vs, idx)  # asynchronous: meanwhile the last chunk is copied
                if pending is not None:
                    collect(*pending)
                pending = (c, result)
            collect(*pending)
        finally:
            if bar is not None:
                bar.close()
        return jax.tree.unflatten(treedef, store)
