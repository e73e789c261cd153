"""Gradient-based fitting of selected network parameters with Optax, with progress, early stopping and checkpoints."""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array

from .params import Selection

__all__ = ["fit", "FitResult"]

CHECKPOINT_NAME = "checkpoint.npz"
FORWARD_MAX = 2
"""``fit(mode="auto")`` uses forward mode up to this many fitted scalars (benchmarks/gradient.py measures both)."""


class FitResult(eqx.Module):
    """The result of :func:`fit`.

    **Fields:**
    - `net`: the network with the fitted parameters (the values after the last optimiser update).
    - `params`: the fitted constrained values, by name.
    - `u`: the fitted unconstrained values (tuple, one array per parameter).
    - `losses`: ``(steps_done,)`` loss at each step, evaluated at the parameters *before* that step's update.
    - `history`: name -> ``(steps_done, ...)`` constrained values at which each loss was evaluated.
    - `steps_done`: number of optimiser steps taken (in total, across resumed runs).
    - `stopped_early`: True when early stopping (or a non-finite loss) ended the fit.
    """

    net: Any
    params: dict[str, Array]
    u: tuple[Array, ...]
    losses: Array
    history: dict[str, Array]
    steps_done: int = eqx.field(static=True)
    stopped_early: bool = eqx.field(static=True)


def _key_data(key) -> tuple[np.ndarray, bool]:
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return np.asarray(jax.random.key_data(key)), True
    return np.asarray(key), False


def _save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` atomically (temporary file in the same folder, fsync, ``os.replace``)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _stop_index(losses: list[float], patience: int | None, min_delta: float) -> bool:
    """Early stopping from the loss history: True when the best loss has not improved by more than ``min_delta``
    during the last ``patience`` steps."""
    if patience is None:
        return False
    best = np.inf
    wait = 0
    for loss in losses:
        if loss < best - min_delta:
            best, wait = loss, 0
        else:
            wait += 1
        if wait >= patience:
            return True
    return False


def fit(
    loss_fn: Callable[[Any, jax.Array], Array],
    net: Any,
    selection: Selection,
    optimizer: optax.GradientTransformation | None = None,
    steps: int = 100,
    *,
    key: jax.Array | None = None,
    n_realisations: int = 1,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 10,
    resume: bool = False,
    patience: int | None = None,
    min_delta: float = 0.0,
    progress: bool = True,
    callback: Callable[[int, float, dict[str, Array]], Any] | None = None,
    mode: str = "auto",
) -> FitResult:
    """Fit the selected parameters of a network by gradient descent on a loss, in unconstrained space.

    Each step evaluates ``loss(u) = mean_r loss_fn(selection.apply(net, u), key_r)`` and its gradient (one jitted
    ``jax.value_and_grad``), where the ``n_realisations`` keys ``key_r`` are ``jax.random.split(fold_in(key, step))``
    and the realisations are vmapped; the optimiser then updates ``u``. Because each step's keys depend only on
    ``key`` and the step number, a fit that is interrupted and resumed from a checkpoint ends exactly where an
    uninterrupted one does.

    **Arguments:**
    - `loss_fn`: ``loss_fn(net, key) -> scalar``: builds the simulation and compares it with data, e.g.
      ``lambda net, key: timeseries_loss(simulate(net, 100.0, 0.1, key=key).ys["raw"][:, 0], data)``. Deterministic
      losses may ignore the key.
    - `net`: the starting network (its selected values are the initial guess; they must satisfy the constraints).
    - `selection`: the :class:`~vbtjax.inference.Selection` of parameters to fit.
    - `optimizer`: an Optax transformation; default ``optax.adam(1e-2)``.
    - `steps`: total number of optimiser steps (including those done before a resume).
    - `key`: base random key (default ``jax.random.key(0)``).
    - `n_realisations`: noise realisations averaged per step.
    - `checkpoint_dir`: folder for ``checkpoint.npz`` (unconstrained parameters, optimiser state, step, key, loss and
      parameter history), written atomically every `checkpoint_every` steps and at the end.
    - `resume`: continue from the checkpoint in `checkpoint_dir` when there is one (its key is used).
      The optimiser, selection and loss must be the same as in the interrupted run.
    - `patience`, `min_delta`: stop when the loss has not decreased by more than `min_delta` for `patience` steps.
    - `progress`: show a tqdm progress bar with the current loss.
    - `callback`: ``callback(steps_done, loss, params)`` called after each step (after any checkpoint is written).
    - `mode`: how the gradient is computed: ``"reverse"`` (``jax.value_and_grad``; memory of the simulation's
      checkpoints), ``"forward"`` (one ``jax.jvp`` per unconstrained scalar, all vmapped in one pass; no
      checkpoints), or ``"auto"`` (default): forward when the selection has at most :data:`FORWARD_MAX` scalars
      (e.g. global coupling and speed), where it is about twice as fast as reverse mode on CPU, else reverse.
      Both give the same gradient to rounding.

    A non-finite loss stops the fit with a warning (``stopped_early=True``); the parameters are those before the
    step that produced it.

    **Returns:** a :class:`FitResult`.
    """
    if not isinstance(selection, Selection):
        raise TypeError(f"fit: selection must be a vbtjax.inference.Selection, got {type(selection).__name__}.")
    if not callable(loss_fn):
        raise TypeError("fit: loss_fn must be a function loss_fn(net, key) -> scalar.")
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 0:
        raise ValueError(f"fit: steps must be a non-negative integer, got {steps!r}.")
    if isinstance(n_realisations, bool) or not isinstance(n_realisations, int | np.integer) or n_realisations < 1:
        raise ValueError(f"fit: n_realisations must be a positive integer, got {n_realisations!r}.")
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int | np.integer) or checkpoint_every < 1:
        raise ValueError(f"fit: checkpoint_every must be a positive integer, got {checkpoint_every!r}.")
    if patience is not None and (
        isinstance(patience, bool) or not isinstance(patience, int | np.integer) or patience < 1
    ):
        raise ValueError(f"fit: patience must be None or a positive integer, got {patience!r}.")
    if not (np.isfinite(min_delta) and min_delta >= 0):
        raise ValueError(f"fit: min_delta must be a non-negative number, got {min_delta!r}.")
    if resume and checkpoint_dir is None:
        raise ValueError("fit: resume=True needs checkpoint_dir (where the checkpoint was written).")
    optimizer = optax.adam(1e-2) if optimizer is None else optimizer
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(f"fit: optimizer must be an Optax GradientTransformation, got {type(optimizer).__name__}.")
    key = jax.random.key(0) if key is None else key

    names = selection.names(net)
    u = selection.init_unconstrained(net)
    opt_state = optimizer.init(u)
    start = 0
    losses: list[float] = []
    history: dict[str, list[np.ndarray]] = {n: [] for n in names}
    stopped = False

    ckpt = None
    if checkpoint_dir is not None:
        ckpt_dir = Path(checkpoint_dir)
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        ckpt = ckpt_dir / CHECKPOINT_NAME
        if resume and ckpt.exists():
            u, opt_state, key, start, losses, history, stopped = _load(ckpt, u, opt_state, key, names)

    def save(step_done: int) -> None:
        kd, typed = _key_data(key)
        arrays = {
            "step": np.asarray(step_done),
            "key_data": kd,
            "key_typed": np.asarray(typed),
            "names": np.asarray(names),
            "losses": np.asarray(losses, dtype=np.float64),
            "stopped_early": np.asarray(stopped),
        }
        arrays.update({f"u_{i}": np.asarray(x) for i, x in enumerate(u)})
        arrays.update({f"opt_{i}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(opt_state))})
        for i, n in enumerate(names):
            arrays[f"hist_{i}"] = np.stack(history[n]) if history[n] else np.zeros((0,) + np.shape(u[i]))
        _save(ckpt, arrays)

    if mode not in ("auto", "forward", "reverse"):
        raise ValueError(f"fit: mode must be 'auto', 'forward' or 'reverse', got {mode!r}.")
    n_scalars = sum(int(np.size(x)) for x in u)
    forward = mode == "forward" or (mode == "auto" and n_scalars <= FORWARD_MAX)
    step_fn = _make_step(loss_fn, selection, optimizer, n_realisations, forward)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=min(start, steps), desc="fit", disable=not progress)
    try:
        i = start
        while i < steps and not stopped:
            loss, values, u_new, opt_new = step_fn(net, u, opt_state, key, jnp.asarray(i))
            loss = float(loss)
            if not np.isfinite(loss):
                warnings.warn(
                    f"fit: the loss is {loss} at step {i}; stopping (parameters before this step kept).", stacklevel=2
                )
                stopped = True
                break
            losses.append(loss)
            for n, v in zip(names, values, strict=True):
                history[n].append(np.asarray(v))
            u, opt_state = u_new, opt_new
            i += 1
            stopped = _stop_index(losses, patience, min_delta)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4g}")
            if ckpt is not None and (i % checkpoint_every == 0 or stopped or i == steps):
                save(i)
            if callback is not None:
                callback(i, loss, dict(zip(names, selection.constrained(u), strict=True)))
    finally:
        if bar is not None:
            bar.close()
    if ckpt is not None and stopped:
        save(len(losses))

    fitted = selection.apply(net, u)
    dtype = jnp.result_type(float)
    hist = {
        n: jnp.asarray(np.stack(history[n])) if history[n] else jnp.zeros((0,) + np.shape(x), dtype)
        for n, x in zip(names, u, strict=True)
    }
    return FitResult(
        net=fitted,
        params=dict(zip(names, selection.constrained(u), strict=True)),
        u=tuple(u),
        losses=jnp.asarray(np.asarray(losses, dtype=np.float64)).astype(dtype),
        history=hist,
        steps_done=len(losses),
        stopped_early=bool(stopped),
    )


def value_and_grad_forward(f: Callable[..., Array]) -> Callable[..., tuple[Array, Any]]:
    """Like ``jax.value_and_grad(f)`` (gradient with respect to the first argument, a pytree of arrays), computed in
    forward mode: one tangent per scalar of that argument, vmapped, so the cost is one pass that carries ``d``
    tangents and no intermediate values are stored. Cheaper than reverse mode through long simulations when ``d``
    is small."""

    def value_and_grad(x, *args):
        flat, unravel = jax.flatten_util.ravel_pytree(x)

        def g(v):
            y = f(unravel(v), *args)
            return y, y

        grad, value = jax.jacfwd(g, has_aux=True)(flat)
        return value, unravel(grad)

    return value_and_grad


def _make_step(loss_fn, selection: Selection, optimizer, n_realisations: int, forward: bool = False):
    def objective(u, net, key):
        fitted = selection.apply(net, u)
        keys = jax.random.split(key, n_realisations)
        vals = jax.vmap(lambda k: loss_fn(fitted, k))(keys)
        return jnp.mean(vals)

    @eqx.filter_jit
    def step(net, u, opt_state, key, i):
        step_key = jax.random.fold_in(key, i)
        loss, grads = (value_and_grad_forward if forward else jax.value_and_grad)(objective)(u, net, step_key)
        updates, opt_state = optimizer.update(grads, opt_state, u)
        u_new = optax.apply_updates(u, updates)
        return loss, selection.constrained(u), u_new, opt_state

    return step


def _restore(saved: np.ndarray, like, what: str) -> jax.Array:
    """A checkpointed array, checked against the shape of ``like`` and cast to its dtype."""
    if saved.shape != np.shape(like):
        raise ValueError(f"fit: checkpoint {what} has shape {saved.shape}, expected {np.shape(like)}.")
    return jnp.asarray(saved, dtype=jnp.asarray(like).dtype)


def _load(path: Path, u, opt_state, key, names):
    with np.load(path, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    saved_names = tuple(str(n) for n in data["names"])
    if saved_names != tuple(names):
        raise ValueError(
            f"fit: the checkpoint {path} was written for parameters {saved_names}, not {tuple(names)}; use another "
            "checkpoint_dir or resume=False."
        )
    u_new = [_restore(data[f"u_{i}"], x, f"parameter {names[i]!r}") for i, x in enumerate(u)]
    leaves, treedef = jax.tree.flatten(opt_state)
    n_opt = sum(1 for k in data if k.startswith("opt_"))
    if n_opt != len(leaves):
        raise ValueError(
            f"fit: the checkpoint's optimiser state has {n_opt} arrays but this optimiser has {len(leaves)}; resume "
            "with the same optimizer."
        )
    new_leaves = [_restore(data[f"opt_{i}"], leaf, f"optimiser state {i}") for i, leaf in enumerate(leaves)]
    opt_state = jax.tree.unflatten(treedef, new_leaves)
    kd = jnp.asarray(data["key_data"])
    key = jax.random.wrap_key_data(kd) if bool(data["key_typed"]) else kd
    losses = [float(v) for v in data["losses"]]
    history = {n: list(data[f"hist_{i}"]) for i, n in enumerate(names)}
    return tuple(u_new), opt_state, key, int(data["step"]), losses, history, bool(data["stopped_early"])
