"""Simulation budgets for simulation-based inference: parameters drawn from the prior, simulated, reduced to
features, stored on disk in chunks.

The prior is a :class:`~vbtjax.inference.Posterior` built without a likelihood (``log_likelihood=None``): the same
network, :class:`~vbtjax.inference.Selection` (with its constraints) and NumPyro priors that fitting and NUTS use,
so the routes can be compared on one problem.

:func:`simulate_budget` writes ``DIR/budget.json`` (the parameter names and shapes, the feature size, the chunking,
the base key and the provenance) and one ``DIR/chunk_NNNNN.npz`` per chunk (``u`` ``(B, d)`` unconstrained and
``theta`` ``(B, d)`` constrained draws, ``x`` ``(B, F)`` features, ``finite`` ``(B,)``). Chunk ``c`` uses the keys
``fold_in(key, c)`` only, and each file is written under a temporary name and renamed when complete, so a build
killed at any point and started again with the same arguments skips the finished chunks and ends with the same
budget as an uninterrupted one. A finished budget is reused by :meth:`Budget.load`.
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._params import leaf_path, set_leaves
from .._serialise import provenance
from ..files import read_json, read_npz, write_json, write_npz
from ..simulation.batch import BatchRunner, widened

__all__ = ["Budget", "simulate_budget", "prior_paths", "FORMAT"]

FORMAT = "vbtjax-sbi-budget"
"""The ``format`` field of a saved simulation budget."""


def prior_paths(prior: Any) -> tuple[str, ...]:
    """Leaf paths (``"coupling.a"``) of the prior's selected parameters, in the selection's order."""
    paths = []
    for p in prior.selection.params:
        path = leaf_path(prior.net, p.where(prior.net))
        if path is None:
            raise ValueError("simulate_budget: every selected parameter must be a whole leaf of the network.")
        paths.append(path)
    return tuple(paths)


def _check_prior(prior: Any) -> None:
    from ..inference.posterior import Posterior

    if not isinstance(prior, Posterior):
        raise TypeError(
            "simulate_budget: prior must be a vbtjax.inference.Posterior built with log_likelihood=None, e.g. "
            "Posterior(net, selection, {'coupling.a': dist.Uniform(0, 0.1)}, None)."
        )
    if prior.latents:
        raise ValueError(
            f"simulate_budget: the prior has latents {sorted(prior.latents)}; simulation-based inference samples "
            "network parameters only (put observation noise into the simulator)."
        )


def _key_data(key: jax.Array) -> list[int]:
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return np.asarray(data).astype(np.uint64).ravel().tolist()


@eqx.filter_jit
def _flat_theta_jit(prior: Any, u: jax.Array) -> jax.Array:
    return jax.vmap(lambda ui: jnp.concatenate([v.reshape(-1) for v in prior.constrained(ui).values()]))(u)


def _flat_theta(prior: Any, u: np.ndarray) -> np.ndarray:
    return np.asarray(_flat_theta_jit(prior, jnp.asarray(u)))


class Budget:
    """A simulation budget in memory: ``u`` ``(n, d)`` unconstrained and ``theta`` ``(n, d)`` constrained draws,
    ``x`` ``(n, F)`` features, with the parameter ``names`` and ``shapes`` (flattened in order into ``d``)."""

    def __init__(self, u, theta, x, names, shapes, info: dict[str, Any] | None = None, finite=None):
        self.u = np.asarray(u)
        self.theta = np.asarray(theta)
        self.x = np.asarray(x)
        self.names = tuple(names)
        self.shapes = tuple(tuple(int(v) for v in s) for s in shapes)
        self.info = dict(info or {})
        self.finite = np.all(np.isfinite(self.x), axis=1) if finite is None else np.asarray(finite, bool)
        n = self.u.shape[0]
        if self.theta.shape[0] != n or self.x.shape[0] != n or self.u.ndim != 2 or self.x.ndim != 2:
            raise ValueError(
                f"Budget: u {self.u.shape}, theta {self.theta.shape} and x {self.x.shape} must be (n, d), (n, d) and "
                "(n, F) with the same n."
            )
        d = sum(int(np.prod(s)) for s in self.shapes)
        if self.u.shape[1] != d:
            shapes = dict(zip(self.names, self.shapes, strict=True))
            raise ValueError(f"Budget: parameters {shapes} give d = {d}, u has {self.u.shape[1]}.")

    def __len__(self) -> int:
        return int(self.u.shape[0])

    @property
    def dim(self) -> int:
        return int(self.u.shape[1])

    @property
    def n_features(self) -> int:
        return int(self.x.shape[1])

    def finite_only(self) -> Budget:
        """The simulations whose features are all finite."""
        k = self.finite
        return Budget(self.u[k], self.theta[k], self.x[k], self.names, self.shapes, self.info, self.finite[k])

    def split(self, n_test: int) -> tuple[Budget, Budget]:
        """``(train, test)``: the last `n_test` simulations are held out (the draws are i.i.d., so no shuffle)."""
        if not 0 < int(n_test) < len(self):
            raise ValueError(f"Budget.split: n_test must lie in 1..{len(self) - 1}, got {n_test}.")
        m = len(self) - int(n_test)
        parts = []
        for sl in (slice(0, m), slice(m, None)):
            parts.append(
                Budget(self.u[sl], self.theta[sl], self.x[sl], self.names, self.shapes, self.info, self.finite[sl])
            )
        return parts[0], parts[1]

    def scalar_names(self) -> list[str]:
        """One name per element of ``d``: ``coupling.a``, ``model.x0[0]``, ..."""
        out = []
        for name, shape in zip(self.names, self.shapes, strict=True):
            if shape == ():
                out.append(name)
            else:
                out.extend(f"{name}[{', '.join(map(str, i))}]" for i in np.ndindex(*shape))
        return out

    @classmethod
    def load(cls, path: str | os.PathLike) -> Budget:
        """The finished chunks of a budget folder written by :func:`simulate_budget`."""
        path = Path(path)
        meta_path = path / "budget.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"Budget.load: {path} has no budget.json; build it with simulate_budget.")
        meta = read_json(meta_path, what=f"Budget.load: {meta_path}")
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"Budget.load: {meta_path} is not a vbtjax simulation budget.")
        parts = {"u": [], "theta": [], "x": [], "finite": []}
        done = 0
        for c in range(int(meta["n_chunks"])):
            f = path / f"chunk_{c:05d}.npz"
            if not f.is_file():
                continue
            z = read_npz(f, keys=parts, what=f"Budget.load: {f}", required=parts)
            for k in parts:
                parts[k].append(z[k])
            done += 1
        if not done:
            raise ValueError(f"Budget.load: {path} has no finished chunk yet.")
        meta["chunks_done"] = done
        return cls(
            np.concatenate(parts["u"]),
            np.concatenate(parts["theta"]),
            np.concatenate(parts["x"]),
            meta["names"],
            meta["shapes"],
            meta,
            np.concatenate(parts["finite"]),
        )


def simulate_budget(
    prior: Any,
    n: int,
    out: str | os.PathLike | None = None,
    *,
    features: Callable[[Any], Any] | None = None,
    run: Callable[[Any, jax.Array | None], Any] | None = None,
    t1: float | None = None,
    dt: float | None = None,
    solver: Any = None,
    monitors: Any = None,
    history: Any = None,
    key: jax.Array,
    chunk_size: int = 1024,
    batch_size: int | None = None,
    devices: Sequence[jax.Device] | None = None,
    progress: bool = True,
    description: dict[str, Any] | None = None,
) -> Budget:
    """Draw `n` parameter sets from `prior`, simulate each and keep its features.

    **Arguments:**
    - `prior`: a :class:`~vbtjax.inference.Posterior` with ``log_likelihood=None`` (network, selection, priors).
    - `n`: number of simulations.
    - `out`: folder for the chunks (``None``: in memory only). Existing finished chunks of the same budget are
      reused (resume); a folder holding a different budget (other parameters, key, chunk size, simulation settings
      or description) is refused with :class:`~vbtjax.inference.fitting.ResumeError` naming what differs. `n` may grow
      when the budget so far is a whole number of chunks (recorded in ``budget.json`` under ``resumed``).
    - `features`: ``features(solution) -> array`` (flattened to ``(F,)``), with `t1`, `dt` (ms), `solver`,
      `monitors`, `history` as for :func:`~vbtjax.simulate`; or
    - `run`: ``run(network, key) -> array``, a whole simulator (e.g. the VEP's envelopes with observation noise).
    - `key`: base key; chunk ``c`` draws its parameters with ``fold_in(fold_in(key, 0), c)`` and simulation ``b``
      of the chunk gets ``fold_in(fold_in(fold_in(key, 1), c), b)``.
    - `chunk_size`: simulations per file; `batch_size`: per vmapped call (see :meth:`vbtjax.Twin.predict`).
    - `description`: JSON-able notes stored in ``budget.json`` (what the features are).

    **Returns:** the :class:`Budget` (all chunks).
    """
    run = _simulator(prior, n, chunk_size, features, run, t1, dt, solver, monitors, history, key)
    n, chunk_size = int(n), int(chunk_size)
    n_chunks = -(-n // chunk_size)
    paths = prior_paths(prior)
    meta = {
        "format": FORMAT,
        "names": list(prior.names),
        "paths": list(paths),
        "shapes": [list(s) for s in prior.shapes],
        "dim": prior.dim,
        "n": n,
        "chunk_size": chunk_size,
        "n_chunks": n_chunks,
        "key": _key_data(key),
        "dt": dt,
        "t1": t1,
        "description": description or {},
    }
    folder = Path(out) if out is not None else None
    if folder is not None:
        meta = _open_folder(folder, meta, provenance)
    k_draw, k_sim = jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)
    files = [folder / f"chunk_{c:05d}.npz" if folder is not None else None for c in range(n_chunks)]
    sizes = [min(chunk_size, n - c * chunk_size) for c in range(n_chunks)]
    todo = [c for c in range(n_chunks) if files[c] is None or not files[c].is_file()]
    draws, values = _draws(prior, k_draw, todo, sizes)
    runner = None
    if todo:
        all_vals = tuple(np.concatenate([values[c][i] for c in todo]) for i in range(len(prior.names)))
        build = _SetLeaves(paths)
        wide = widened(prior.net, build, all_vals, sum(sizes[c] for c in todo), dt, owner="simulate_budget")
        # a prior that leaves weights, lengths and speed alone: they are constants of the program (static delays)
        closed = wide is prior.net
        runner = BatchRunner(
            wide, build, _Flat(run), has_key=True, devices=devices, owner="simulate_budget", closed=closed
        )
    t_start = time.perf_counter()
    batching = (batch_size, dt)
    parts, simulated = _simulate_chunks(prior, runner, draws, values, files, sizes, k_sim, batching, progress, n)
    seconds = time.perf_counter() - t_start
    info = dict(meta, simulated_now=simulated, seconds=seconds)
    if folder is not None and simulated:
        meta["last_run"] = {
            "simulated": simulated,
            "seconds": round(seconds, 3),
            "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
        write_json(folder / "budget.json", meta)
    return Budget(
        np.concatenate(parts["u"]),
        np.concatenate(parts["theta"]),
        np.concatenate(parts["x"]),
        prior.names,
        prior.shapes,
        info,
        np.concatenate(parts["finite"]),
    )


def _simulator(prior, n, chunk_size, features, run, t1, dt, solver, monitors, history, key) -> Callable:
    """Check the arguments of :func:`simulate_budget`; ``run(network, key)``, the simulator."""
    _check_prior(prior)
    if isinstance(n, bool) or int(n) < 1:
        raise ValueError(f"simulate_budget: n must be a positive number of simulations, got {n!r}.")
    if isinstance(chunk_size, bool) or int(chunk_size) < 1:
        raise ValueError(f"simulate_budget: chunk_size must be a positive integer, got {chunk_size!r}.")
    if (features is None) == (run is None):
        raise ValueError("simulate_budget: give features= (with t1= and dt=) or run=, exactly one.")
    if run is None:
        if t1 is None or dt is None:
            raise ValueError("simulate_budget: features= needs the simulation settings t1= and dt= (ms).")
        run = _Features(features, history, solver, monitors, float(t1), float(dt))

    if prior.net.noise is not None and key is None:
        raise ValueError("simulate_budget: a key is required.")
    return run


def _draws(prior, k_draw, todo, sizes) -> tuple[dict[int, np.ndarray], dict[int, tuple]]:
    """The unconstrained draws ``u`` of every chunk still to simulate, and the leaf values they set (cheap), so that
    one delay layout and one compiled program serve them all (a prior over speeds or lengths widens the layout once,
    not per chunk)."""
    draw = jax.jit(lambda k, m: prior.sample_prior(k, m), static_argnums=1)
    draws = {c: np.asarray(draw(jax.random.fold_in(k_draw, c), sizes[c])) for c in todo}
    constrained = jax.jit(jax.vmap(prior.constrained))
    # by name: a dict returned from jit comes back with its keys sorted, not in the selection's order
    values = {c: _by_name(constrained(jnp.asarray(u)), prior.names) for c, u in draws.items()}
    return draws, {c: _leaf_values(prior, v) for c, v in values.items()}


def _simulate_chunks(prior, runner, draws, values, files, sizes, k_sim, batching, progress, n):
    """Read the finished chunks, simulate and write the others (`batching`: ``(batch_size, dt)``); ``(parts, number
    simulated now)``."""
    batch_size, dt = batching
    parts = {"u": [], "theta": [], "x": [], "finite": []}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc="simulation budget", unit="sim", dynamic_ncols=True)
    simulated = 0
    for c, (m, f) in enumerate(zip(sizes, files, strict=True)):
        if c not in draws:
            chunk = read_npz(f, keys=parts, what=f"simulate_budget: {f}", required=parts)
            if chunk["u"].shape[0] != m:
                raise ValueError(f"simulate_budget: {f} holds {chunk['u'].shape[0]} simulations, expected {m}.")
        else:
            u = draws.pop(c)
            bs = runner.batch(batch_size, m)
            out = runner(values.pop(c), m, jax.random.fold_in(k_sim, c), bs, width=runner.width_for(dt))
            x = np.asarray(out).reshape(m, -1)
            chunk = {"u": u, "theta": _flat_theta(prior, u), "x": x, "finite": np.all(np.isfinite(x), axis=1)}
            simulated += m
            if f is not None:
                write_npz(f, chunk)
        for k in parts:
            parts[k].append(chunk[k])
        if bar is not None:
            bar.update(m)
    if bar is not None:
        bar.close()
    return parts, simulated


class _SetLeaves(eqx.Module):
    """``build(net, values_b)``: the network of one draw (a module: equal paths share one compiled program)."""

    paths: tuple[str, ...] = eqx.field(static=True)

    def __call__(self, net, vs):
        return set_leaves(net, dict(zip(self.paths, vs, strict=True)))


_SAME = ("names", "paths", "shapes", "dim", "chunk_size", "key", "dt", "t1", "description")


def _open_folder(folder: Path, meta: dict[str, Any], provenance) -> dict[str, Any]:
    """Start the budget folder (its ``budget.json``), or check that the folder holds this budget: the same prior,
    key, chunking, simulation settings and description; `n` may grow when the budget so far is a whole number of
    chunks (its chunks keep their draws), and the growth is recorded under ``resumed``."""
    from ..inference.fitting import ResumeError, check_resume

    folder.mkdir(parents=True, exist_ok=True)
    meta_path = folder / "budget.json"
    if not meta_path.exists():
        meta["provenance"] = provenance(())
        write_json(meta_path, meta)
        return meta
    old = read_json(meta_path, what=f"simulate_budget: {meta_path}")
    if not isinstance(old, dict) or old.get("format") != FORMAT:
        raise ResumeError(f"simulate_budget: {meta_path} is not a vbtjax simulation budget; use another folder.")
    where = f"simulate_budget: {folder} holds another budget"
    hint = "use another folder or delete it (n may grow by whole chunks)"
    saved = {k: old.get(k) for k in (*_SAME, "n")}
    changes = check_resume(saved, {k: meta[k] for k in saved}, where=where, allowed=("n",), hint=hint)
    if changes and not (meta["n"] > old["n"] and old["n"] % old["chunk_size"] == 0):
        raise ResumeError(f"{where}: n {old['n']} -> {meta['n']}; {hint}.")
    meta["provenance"] = old.get("provenance")
    meta["resumed"] = old.get("resumed", []) + ([{"n": [old["n"], meta["n"]]}] if changes else [])
    if changes:
        write_json(meta_path, meta)
    return meta


def _leaf_values(prior: Any, values: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """Per-parameter draws ``(m, *shape)`` -> the values of their leaves (a parameter map's ``basis @ c``)."""
    return tuple(np.asarray(p.to_leaf(v)) for p, v in zip(prior.selection.params, values, strict=True))


def _by_name(values, names):
    return tuple(np.asarray(values[name]) for name in names)


class _Flat(eqx.Module):
    """The simulator's output flattened to one vector (a module: the same simulator shares one compiled program)."""

    run: Callable = eqx.field(static=True)

    def __call__(self, net, k):
        leaves = jax.tree.leaves(self.run(net, k))
        if not leaves:
            raise ValueError("simulate_budget: the features are empty.")
        return jnp.concatenate([jnp.ravel(jnp.asarray(v, jnp.result_type(float))) for v in leaves])


class _Features(eqx.Module):
    """``features(simulate(net, t1, dt, history, solver, monitors, key))``: the simulator of ``features=`` (a module,
    hashable by its settings)."""

    features: Callable = eqx.field(static=True)
    history: Any
    solver: Any
    monitors: Any
    t1: float = eqx.field(static=True)
    dt: float = eqx.field(static=True)

    def __call__(self, net, k):
        from ..simulation.simulate import simulate

        return self.features(simulate(net, self.t1, self.dt, self.history, self.solver, self.monitors, k))
