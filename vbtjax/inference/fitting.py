"""Gradient-based fitting of selected network parameters with Optax, with progress, early stopping and checkpoints."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array

from ..files import read_npz, write_npz
from .params import Selection

__all__ = ["fit", "FitResult", "Resumed", "ResumeError", "check_resume"]

CHECKPOINT_NAME = "checkpoint.npz"
FORWARD_MAX = 2
"""``fit(mode="auto")`` uses forward mode up to this many fitted scalars (benchmarks/gradient.py measures both)."""


class Resumed(NamedTuple):
    """One resume of a checkpointed run: the step it continued from and the allowed settings that changed then, as
    ``(name, old, new)`` triples (e.g. ``("steps", 40, 60)``)."""

    at_step: int
    changed: tuple[tuple[str, Any, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """``{"at_step": 40, "steps": [40, 60]}``: JSON-able."""
        return {"at_step": self.at_step, **{name: [old, new] for name, old, new in self.changed}}


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
    - `resumed`: one :class:`Resumed` record per resume from a checkpoint (empty for a run that was never resumed).
    """

    net: Any
    params: dict[str, Array]
    u: tuple[Array, ...]
    losses: Array
    history: dict[str, Array]
    steps_done: int = eqx.field(static=True)
    stopped_early: bool = eqx.field(static=True)
    resumed: tuple[Resumed, ...] = eqx.field(static=True, default=())


# ------------------------------------------------------------------------------------------------ resume checks
class ResumeError(ValueError):
    """A checkpoint that the settings given cannot continue without mixing two runs. The one-line message names every
    setting that differs, with the checkpoint's value and the new one (``seed 0 -> 1``)."""


_UNSET = "(unset)"


def _flatten(x: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(x, Mapping):
        out: dict[str, Any] = {}
        for k, v in x.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out if out or not prefix else {prefix[:-1]: {}}
    return {prefix[:-1]: x}


def _show(value: Any, width: int = 48) -> str:
    text = value if value is _UNSET else json.dumps(value, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 3] + "..."


def settings_changes(saved: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The settings that differ between a checkpoint's record and the current call: ``{name: (saved, current)}``.

    Nested mappings are compared entry by entry under dotted names (``spec.dt``); values are compared as JSON (a tuple
    equals a list, ``1`` equals ``1.0``); a setting missing on one side shows as ``"(unset)"``."""
    a = _flatten(json.loads(json.dumps(saved, default=str)))
    b = _flatten(json.loads(json.dumps(current, default=str)))
    keys = sorted(a.keys() | b.keys())
    return {k: (a.get(k, _UNSET), b.get(k, _UNSET)) for k in keys if a.get(k, _UNSET) != b.get(k, _UNSET)}


def format_changes(changes: Mapping[str, tuple[Any, Any]]) -> str:
    """``"seed 0 -> 1, lr 0.1 -> 0.2"`` (long values shortened)."""
    return ", ".join(f"{k} {_show(old)} -> {_show(new)}" for k, (old, new) in changes.items())


def check_resume(
    saved: Mapping[str, Any],
    current: Mapping[str, Any],
    *,
    where: str,
    allowed: Sequence[str] = (),
    hint: str = "give the same settings to continue it, or start afresh",
) -> dict[str, tuple[Any, Any]]:
    """Compare the settings a checkpoint was written with (`saved`) with those of the call that would continue it.

    Raises :class:`ResumeError` ``"{where}: NAME OLD -> NEW, ...; {hint}"`` when a setting outside `allowed` differs
    (a name in `allowed` also allows its dotted sub-settings). Returns the allowed changes, ``{name: (old, new)}``, for
    the caller to check further and record."""
    changes = settings_changes(saved, current)
    ok = tuple(allowed)
    refused = {k: v for k, v in changes.items() if not any(k == a or k.startswith(a + ".") for a in ok)}
    if refused:
        raise ResumeError(f"{where}: {format_changes(refused)} differ from the checkpoint's; {hint}.")
    return changes


def fingerprint(arrays: Any, max_values: int = 4) -> Any:
    """A short JSON-able identity of a pytree of arrays: the values themselves (9 significant digits) when there are
    at most `max_values` scalars, else ``"sha256:..."`` of their bytes, dtypes and shapes."""
    leaves = [np.asarray(x) for x in jax.tree.leaves(arrays)]
    if sum(x.size for x in leaves) <= max_values:
        return [float(f"{float(v):.9g}") for x in leaves for v in x.ravel()]
    h = hashlib.sha256()
    for x in leaves:
        h.update(f"{x.dtype.str}{x.shape}".encode())
        h.update(np.ascontiguousarray(x).tobytes())
    return "sha256:" + h.hexdigest()[:16]


def key_data(key) -> tuple[np.ndarray, bool]:
    """``(raw key data, typed)`` of a ``jax.random`` key (new-style typed keys and raw uint32 keys alike)."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return np.asarray(jax.random.key_data(key)), True
    return np.asarray(key), False


def _optimizer_probe(optimizer: optax.GradientTransformation, u) -> list[float] | None:
    """The mean of the optimiser's first two updates of a fixed probe gradient (0.5, then 1.5 everywhere): for Adam
    and SGD about ``-learning_rate`` times a constant, so another optimiser or learning rate shows; None when the
    optimiser cannot be probed this way (it needs extra arguments)."""
    n = max(1, sum(int(np.size(x)) for x in u))

    def probe(u):
        state, out = optimizer.init(u), []
        for g in (0.5, 1.5):
            updates, state = optimizer.update(jax.tree.map(lambda x, g=g: jnp.full_like(x, g), u), state, u)
            out.append(sum(jnp.sum(x) for x in jax.tree.leaves(updates)) / n)
        return jnp.stack(out)

    try:
        return [float(f"{float(v):.7g}") for v in jax.jit(probe)(u)]  # jitted: one compilation, not one per op
    except Exception:  # noqa: BLE001 - optimisers that need value=, value_fn=, ... cannot be probed
        return None


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


def _positive_int(name: str, value: Any, lo: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < lo:
        what = "a positive" if lo == 1 else "a non-negative"
        raise ValueError(f"fit: {name} must be {what} integer, got {value!r}.")


def _check_arguments(loss_fn, selection, steps, n_realisations, checkpoint_every, patience, min_delta, mode):
    if not isinstance(selection, Selection):
        raise TypeError(f"fit: selection must be a vbtjax.inference.Selection, got {type(selection).__name__}.")
    if not callable(loss_fn):
        raise TypeError("fit: loss_fn must be a function loss_fn(net, key) -> scalar.")
    _positive_int("steps", steps, 0)
    _positive_int("n_realisations", n_realisations)
    _positive_int("checkpoint_every", checkpoint_every)
    if patience is not None:
        _positive_int("patience", patience)
    if not (np.isfinite(min_delta) and min_delta >= 0):
        raise ValueError(f"fit: min_delta must be a non-negative number, got {min_delta!r}.")
    if mode not in ("auto", "forward", "reverse"):
        raise ValueError(f"fit: mode must be 'auto', 'forward' or 'reverse', got {mode!r}.")


class _State:
    """The fit's mutable state (parameters, optimiser state, history), written to and read from ``checkpoint.npz``."""

    def __init__(self, names, u, opt_state):
        self.names, self.u, self.opt_state = tuple(names), tuple(u), opt_state
        self.start = 0
        self.losses: list[float] = []
        self.history: dict[str, list[np.ndarray]] = {n: [] for n in names}
        self.stopped = False
        self.resumed: tuple[Resumed, ...] = ()

    def save(self, path: Path, settings: dict[str, Any], key) -> None:
        kd, typed = key_data(key)
        arrays = {
            "settings": np.asarray(json.dumps(settings)),
            "resumed": np.asarray(json.dumps([[r.at_step, [list(c) for c in r.changed]] for r in self.resumed])),
            "step": np.asarray(len(self.losses)),
            "key_data": kd,
            "key_typed": np.asarray(typed),
            "names": np.asarray(self.names),
            "losses": np.asarray(self.losses, dtype=np.float64),
            "stopped_early": np.asarray(self.stopped),
        }
        arrays.update({f"u_{i}": np.asarray(x) for i, x in enumerate(self.u)})
        arrays.update({f"opt_{i}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(self.opt_state))})
        for i, (n, x) in enumerate(zip(self.names, self.u, strict=True)):
            arrays[f"hist_{i}"] = np.stack(self.history[n]) if self.history[n] else np.zeros((0,) + np.shape(x))
        write_npz(path, arrays)

    def load(self, path: Path, settings: dict[str, Any]) -> None:
        """Continue from the checkpoint at `path`, refusing (:class:`ResumeError`) one written with other settings;
        more or fewer `steps` are allowed (not fewer than the checkpoint has done)."""
        data = read_npz(path, what=f"fit: the checkpoint {path}", required=("step", "names", "losses"))
        where = f"fit: cannot resume from {path}"
        hint = "give the same settings to continue it, or start afresh with resume=False (or another checkpoint_dir)"
        if "settings" not in data:
            raise ResumeError(f"{where}: it has no record of its settings (written by an older vbtjax); {hint}.")
        changes = check_resume(json.loads(str(data["settings"])), settings, where=where, allowed=("steps",), hint=hint)
        step = int(data["step"])
        if settings["steps"] < step:
            raise ResumeError(f"{where}: steps {settings['steps']} is fewer than the {step} it has done; {hint}.")
        pairs = enumerate(zip(self.names, self.u, strict=True))
        u = [_restore(data, f"u_{i}", x, f"parameter {n!r}", path) for i, (n, x) in pairs]
        leaves, treedef = jax.tree.flatten(self.opt_state)
        if sum(1 for k in data if k.startswith("opt_")) != len(leaves):
            raise ResumeError(f"{where}: its optimiser state does not fit this optimizer; {hint}.")
        new_leaves = [_restore(data, f"opt_{i}", leaf, f"optimiser state {i}", path) for i, leaf in enumerate(leaves)]
        self.u, self.opt_state = tuple(u), jax.tree.unflatten(treedef, new_leaves)
        self.start, self.stopped = step, bool(data["stopped_early"])
        self.losses = [float(v) for v in data["losses"]]
        self.history = {n: list(data[f"hist_{i}"]) for i, n in enumerate(self.names)}
        old = [Resumed(int(s), tuple(tuple(c) for c in ch)) for s, ch in json.loads(str(data.get("resumed", "[]")))]
        self.resumed = (*old, Resumed(step, tuple((k, a, b) for k, (a, b) in changes.items())))


def _check_start(path: Path, state: _State, loss0: float) -> None:
    """The loss at the starting point, recomputed, must be the checkpoint's first loss: else the loss function, its
    data or the starting network changed."""
    old = state.losses[0]
    if not abs(loss0 - old) <= 1e-6 * max(1.0, abs(old)):
        raise ResumeError(
            f"fit: cannot resume from {path}: the loss at the starting point {old:.9g} -> {loss0:.9g} (the loss "
            "function, its data or the starting network differ from the checkpoint's); give the same ones to "
            "continue it, or start afresh with resume=False (or another checkpoint_dir)."
        )


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
      parameter history, and the settings below), written atomically every `checkpoint_every` steps and at the end.
    - `resume`: continue from the checkpoint in `checkpoint_dir` when there is one. Only a run with the same settings
      is continued: the parameters selected and their starting values, `key`, `n_realisations`, the optimiser (its
      kind and learning rate, from its first updates of a probe gradient), the gradient `mode`, `patience`,
      `min_delta` and the float width, and the loss at the starting point (recomputed, one extra step: it catches
      another loss function or data); otherwise :class:`ResumeError` names what differs (``key [0,0] -> [0,1]``).
      `steps` may change (more steps extend the fit; not fewer than the checkpoint has done): the change is recorded
      in :attr:`FitResult.resumed`.
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
    _check_arguments(loss_fn, selection, steps, n_realisations, checkpoint_every, patience, min_delta, mode)
    if resume and checkpoint_dir is None:
        raise ValueError("fit: resume=True needs checkpoint_dir (where the checkpoint was written).")
    optimizer = optax.adam(1e-2) if optimizer is None else optimizer
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(f"fit: optimizer must be an Optax GradientTransformation, got {type(optimizer).__name__}.")
    key = jax.random.key(0) if key is None else key

    names = selection.names(net)
    u0 = tuple(selection.init_unconstrained(net))
    state = _State(names, u0, optimizer.init(u0))
    forward = mode == "forward" or (mode == "auto" and sum(int(np.size(x)) for x in u0) <= FORWARD_MAX)
    step_fn = _make_step(loss_fn, selection, optimizer, n_realisations, forward)
    settings = {
        "parameters": list(names),
        "start": fingerprint(u0),
        "dtype": str(jnp.asarray(u0[0]).dtype) if u0 else None,
        "key": key_data(key)[0].tolist(),
        "n_realisations": int(n_realisations),
        "gradient": "forward" if forward else "reverse",
        "optimizer": _optimizer_probe(optimizer, u0),
        "patience": patience,
        "min_delta": float(min_delta),
        "steps": int(steps),
    }
    ckpt = None
    if checkpoint_dir is not None:
        ckpt = Path(checkpoint_dir) / CHECKPOINT_NAME
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        if resume and ckpt.exists():
            state.load(ckpt, settings)
            if state.losses:
                _check_start(ckpt, state, float(step_fn(net, u0, optimizer.init(u0), key, jnp.asarray(0))[0]))

    _run(
        step_fn,
        net,
        selection,
        state,
        key,
        steps,
        patience,
        min_delta,
        ckpt,
        checkpoint_every,
        settings,
        progress,
        callback,
    )
    return _result(net, selection, state)


def _run(
    step_fn, net, selection, state: _State, key, steps, patience, min_delta, ckpt, every, settings, progress, callback
) -> None:
    """The optimiser steps from ``state.start`` to `steps` (or an early stop), checkpointed every `every` steps."""
    names = state.names
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=min(state.start, steps), desc="fit", disable=not progress)
    try:
        i = state.start
        while i < steps and not state.stopped:
            loss, values, u_new, opt_new = step_fn(net, state.u, state.opt_state, key, jnp.asarray(i))
            loss = float(loss)
            if not np.isfinite(loss):
                warnings.warn(
                    f"fit: the loss is {loss} at step {i}; stopping (parameters before this step kept).", stacklevel=3
                )
                state.stopped = True
                break
            state.losses.append(loss)
            for n, v in zip(names, values, strict=True):
                state.history[n].append(np.asarray(v))
            state.u, state.opt_state = tuple(u_new), opt_new
            i += 1
            state.stopped = _stop_index(state.losses, patience, min_delta)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4g}")
            if ckpt is not None and (i % every == 0 or state.stopped or i == steps):
                state.save(ckpt, settings, key)
            if callback is not None:
                callback(i, loss, dict(zip(names, selection.constrained(state.u), strict=True)))
    finally:
        if bar is not None:
            bar.close()
    if ckpt is not None and state.stopped:
        state.save(ckpt, settings, key)


def _result(net, selection: Selection, state: _State) -> FitResult:
    dtype = jnp.result_type(float)
    hist = {
        n: jnp.asarray(np.stack(state.history[n])) if state.history[n] else jnp.zeros((0,) + np.shape(x), dtype)
        for n, x in zip(state.names, state.u, strict=True)
    }
    return FitResult(
        net=selection.apply(net, state.u),
        params=dict(zip(state.names, selection.constrained(state.u), strict=True)),
        u=tuple(state.u),
        losses=jnp.asarray(np.asarray(state.losses, dtype=np.float64)).astype(dtype),
        history=hist,
        steps_done=len(state.losses),
        stopped_early=bool(state.stopped),
        resumed=state.resumed,
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


def _restore(data: dict[str, np.ndarray], name: str, like, what: str, path: Path) -> jax.Array:
    """A checkpointed array, checked against the shape of ``like`` and cast to its dtype."""
    if name not in data:
        raise ResumeError(f"fit: the checkpoint {path} lacks its {what}; start afresh with resume=False.")
    saved = data[name]
    if saved.shape != np.shape(like):
        raise ResumeError(f"fit: the checkpoint {path} has {what} of shape {saved.shape}, expected {np.shape(like)}.")
    return jnp.asarray(saved, dtype=jnp.asarray(like).dtype)
