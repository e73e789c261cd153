"""Neural posterior estimation (NPE): a conditional normalising flow ``q(u | x)`` trained on a simulation budget, so
that the posterior of any new observation is sampled in seconds.

The flow (FlowJAX: a masked autoregressive flow with affine or rational-quadratic spline transformers) models the
*unconstrained* parameters ``u`` of the prior's selection (standardised), conditioned on the features ``x``
(standardised, optionally projected on their first principal components, optionally through an embedding MLP
trained jointly). An estimator may be an equal-weight mixture of several flows trained from different
initialisations and validation folds (an ensemble), which is much less over-confident than one flow. Samples are
mapped back through the selection's constraints, so they always lie in the prior's support. Training maximises
``log q(u | x)`` with Optax (Adam, gradient clipping) on minibatches, stops early on a held-out validation split
and keeps the best parameters.

An estimator is saved as a folder of ``npe.json`` (its configuration, feature standardisation, parameter names,
the prior: network, constraints and NumPyro priors, training history, provenance, content hash) and
``arrays.npz``: no pickle; loading rebuilds the flow from the configuration and sets its arrays.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import paramax
from flowjax.bijections import RationalQuadraticSpline
from flowjax.distributions import Normal
from flowjax.flows import masked_autoregressive_flow

from .. import files
from .._params import get_leaf, is_concrete
from .._serialise import SerialisationError, TwinFileError, content_hash, decode, encode, provenance
from .budget import Budget, prior_paths

__all__ = ["NPE", "train_npe", "load_npe", "FLOWS"]

FORMAT = "vbtjax-npe"
"""The ``format`` field of a saved estimator."""
FLOWS = ("nsf", "maf")
"""Normalising flows of :func:`train_npe`: neural spline flow, masked autoregressive flow (FlowJAX)."""


def _build(cfg: Mapping[str, Any], key: jax.Array, dtype) -> tuple[Any, Any]:
    k_flow, k_emb = jax.random.split(key)
    d = int(cfg["dim"])
    f = int(cfg["pca"]) if cfg.get("pca") else int(cfg["n_features"])  # what the flow or the embedding sees
    cond = int(cfg["embedding"]) if cfg.get("embedding") else f
    transformer = None
    if cfg["flow"] == "nsf":
        transformer = RationalQuadraticSpline(knots=int(cfg["knots"]), interval=float(cfg["interval"]))
    flow = masked_autoregressive_flow(
        k_flow,
        base_dist=Normal(jnp.zeros(d, dtype)),
        transformer=transformer,
        cond_dim=cond,
        flow_layers=int(cfg["layers"]),
        nn_width=int(cfg["width"]),
        nn_depth=int(cfg["depth"]),
    )
    emb = None
    if cfg.get("embedding"):
        emb = eqx.nn.MLP(
            f, cond, int(cfg["embedding_width"]), int(cfg["embedding_depth"]), activation=jax.nn.gelu, key=k_emb
        )
    cast = lambda x: x.astype(dtype) if eqx.is_inexact_array(x) else x  # noqa: E731
    return jax.tree.map(cast, flow), (None if emb is None else jax.tree.map(cast, emb))


class NPE(eqx.Module):
    """A trained conditional density estimator ``q(u | x)`` over a prior's unconstrained parameters: one flow, or an
    equal-weight mixture of ``M`` flows (an *ensemble*, ``train_npe(..., ensemble=M)``).

    Use :func:`train_npe` to make one. **Methods:** :meth:`sample` (posterior draws for one observation),
    :meth:`log_prob`, :meth:`posterior` (draws by parameter name, constrained), :meth:`save`.

    **Fields:** `flow`: tuple of the ``M`` member flows; `embedding`: tuple of their embedding MLPs, or ``None``;
    `x_mean`, `x_std`: the feature standardisation; `x_proj`: ``None`` or the ``(F, K)`` projection of the
    standardised features on their first ``K`` principal components (whitened), fitted on the training features;
    `u_mean`, `u_std`: the parameter standardisation.
    """

    flow: tuple
    embedding: tuple | None
    x_mean: jax.Array
    x_std: jax.Array
    u_mean: jax.Array
    u_std: jax.Array
    config: str = eqx.field(static=True)  # JSON: flow hyper-parameters, names, shapes, paths
    x_proj: jax.Array | None = None

    @property
    def cfg(self) -> dict[str, Any]:
        return json.loads(self.config)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.cfg["names"])

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        return tuple(tuple(s) for s in self.cfg["shapes"])

    @property
    def n_members(self) -> int:
        """Number of flows in the mixture (1 unless trained with ``ensemble=M``)."""
        return len(self.flow)

    def _standardise(self, x: jax.Array) -> jax.Array:
        x = jnp.asarray(x, self.x_mean.dtype)
        if x.shape[-1:] != self.x_mean.shape:
            raise ValueError(
                f"NPE: the observation has {x.shape[-1] if x.ndim else 0} features; the estimator was trained on "
                f"{self.x_mean.shape[0]} (compute them with the same feature function as the budget)."
            )
        c = (x - self.x_mean) / self.x_std
        return c if self.x_proj is None else c @ self.x_proj

    def _embed(self, m: int, c: jax.Array) -> jax.Array:
        if self.embedding is None:
            return c
        emb = paramax.unwrap(self.embedding[m])
        return jax.vmap(emb)(c) if c.ndim == 2 else emb(c)

    def _condition(self, x: jax.Array, m: int = 0) -> jax.Array:
        return self._embed(m, self._standardise(x))

    def log_prob(self, u: jax.Array, x: jax.Array) -> jax.Array:
        """``log q(u | x)``: `u` ``(..., d)`` unconstrained, `x` ``(..., F)`` features (broadcast). For an ensemble,
        ``log((1/M) sum_m q_m(u | x))``."""
        z = (jnp.asarray(u, self.u_mean.dtype) - self.u_mean) / self.u_std
        c = self._standardise(x)
        lps = [paramax.unwrap(f).log_prob(z, self._embed(m, c)) for m, f in enumerate(self.flow)]
        lp = lps[0] if len(lps) == 1 else jax.nn.logsumexp(jnp.stack(lps), axis=0) - math.log(len(lps))
        return lp - jnp.sum(jnp.log(self.u_std))

    def sample(self, key: jax.Array, x: jax.Array, n: int) -> jax.Array:
        """`n` draws ``(n, d)`` of unconstrained ``u`` from ``q(u | x)`` for one observation `x` ``(F,)``. An
        ensemble draws ``n // M`` (or one more) from each member and shuffles them."""
        x = jnp.asarray(x)
        if x.ndim != 1:
            raise ValueError(f"NPE.sample: x must be one observation's features (F,), got shape {x.shape}.")
        if is_concrete(x) and not bool(jnp.all(jnp.isfinite(x))):
            raise ValueError("NPE.sample: the observation's features contain NaN or inf.")
        n, M = int(n), len(self.flow)
        c = self._standardise(x)
        if M == 1:
            z = paramax.unwrap(self.flow[0]).sample(key, (n,), condition=self._embed(0, c))
        else:
            k_perm, k_draw = jax.random.split(key)
            counts = [n // M + (m < n % M) for m in range(M)]
            z = jnp.concatenate(
                [
                    paramax.unwrap(f).sample(jax.random.fold_in(k_draw, m), (counts[m],), condition=self._embed(m, c))
                    for m, f in enumerate(self.flow)
                    if counts[m]
                ]
            )
            z = jax.random.permutation(k_perm, z, axis=0)
        return z * self.u_std + self.u_mean

    def posterior(self, prior: Any, key: jax.Array, x: jax.Array, n: int = 1000) -> dict[str, np.ndarray]:
        """`n` posterior draws for the observation `x`, by parameter name, in the prior's constrained space:
        name -> ``(n, *shape)``."""
        x = jnp.asarray(x)
        if x.ndim != 1 or not bool(jnp.all(jnp.isfinite(x))):
            raise ValueError(f"NPE.posterior: x must be one observation's finite features (F,), got shape {x.shape}.")
        self._condition(x)  # checks the number of features here, outside jit
        u = _sample_jit(self, key, x, int(n))
        return {k: np.asarray(v) for k, v in jax.vmap(prior.constrained)(u).items()}

    def save(
        self,
        path: str | os.PathLike,
        prior: Any = None,
        *,
        history: Mapping[str, Any] | None = None,
        description: Mapping[str, Any] | None = None,
        overwrite: bool = False,
    ) -> Path:
        """Write the estimator (and, to ship it with a twin, its `prior`: network, constraints and NumPyro priors)
        to the folder `path`: ``npe.json`` + ``arrays.npz``. Returns the path."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"NPE.save: {path} exists; pass overwrite=True to replace it.")
        arrays: dict[str, np.ndarray] = {}
        params = eqx.filter(self, eqx.is_array)
        for i, leaf in enumerate(jax.tree.leaves(params)):
            arrays[f"npe.{i:04d}"] = np.asarray(leaf)
        meta = {
            "format": FORMAT,
            "config": self.cfg,
            "n_arrays": len(arrays),
            "prior": None if prior is None else _encode_prior(prior, arrays),
            "history": encode(
                None if history is None else {k: np.asarray(v) for k, v in history.items()}, arrays, "history"
            ),
            "description": dict(description or {}),
            "provenance": provenance(()),
        }
        meta["content_hash"] = content_hash(meta, arrays)
        staged = files.staging_dir(
            path
        )  # built beside `path`, then swapped in: the old or the new folder survives a kill
        try:
            files.write_text(staged / "npe.json", json.dumps(meta, indent=1, sort_keys=True, allow_nan=False))
            files.write_npz(staged / "arrays.npz", arrays)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        return files.replace_dir(staged, path)


@eqx.filter_jit
def _sample_jit(npe: NPE, key, x, n):
    return npe.sample(key, x, n)


# ----------------------------------------------------------------------------------------------------------- priors
def _encode_dist(d: Any, arrays: dict[str, np.ndarray], path: str) -> dict[str, Any]:
    import numpyro.distributions as dist

    name = type(d).__name__
    if getattr(dist, name, None) is not type(d):
        raise SerialisationError(f"{path}: the prior {name} is not a numpyro.distributions class and cannot be saved.")
    if isinstance(d, dist.Independent):
        return {
            "dist": name,
            "base": _encode_dist(d.base_dist, arrays, path + ".base"),
            "reinterpreted_batch_ndims": int(d.reinterpreted_batch_ndims),
        }
    if isinstance(d, dist.ExpandedDistribution):
        return {
            "dist": name,
            "base": _encode_dist(d.base_dist, arrays, path + ".base"),
            "batch_shape": list(d.batch_shape),
        }
    args = list(d.arg_constraints)
    if not args:
        raise SerialisationError(f"{path}: the prior {name} has no parameters numpyro describes; it cannot be saved.")
    return {"dist": name, "args": {a: encode(jnp.asarray(getattr(d, a)), arrays, f"{path}.{a}") for a in args}}


def _decode_dist(desc: Mapping[str, Any], arrays: dict[str, np.ndarray]) -> Any:
    import numpyro.distributions as dist

    cls = getattr(dist, desc["dist"], None)
    if not (isinstance(cls, type) and issubclass(cls, dist.Distribution)):
        raise SerialisationError(f"prior: unknown numpyro distribution {desc['dist']!r}.")
    if "base" in desc:
        base = _decode_dist(desc["base"], arrays)
        if cls is dist.Independent:
            return dist.Independent(base, desc["reinterpreted_batch_ndims"])
        return base.expand(tuple(desc["batch_shape"]))
    return cls(**{k: decode(v, arrays) for k, v in desc["args"].items()})


def _encode_prior(prior: Any, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    return {
        "network": encode(prior.net, arrays, "prior.network"),
        "paths": list(prior_paths(prior)),
        "names": list(prior.names),
        "constraints": [
            encode(p.constraint, arrays, f"prior.constraint.{i}") for i, p in enumerate(prior.selection.params)
        ],
        "priors": {name: _encode_dist(prior.priors[name], arrays, f"prior.dist.{name}") for name in prior.names},
        "bases": [
            None if p.basis is None else encode(p.basis, arrays, f"prior.basis.{i}")
            for i, p in enumerate(prior.selection.params)
        ],
    }


def _decode_prior(desc: Mapping[str, Any], arrays: dict[str, np.ndarray], trust) -> Any:
    from ..inference.params import Parameter, Selection
    from ..inference.posterior import Posterior

    net = decode(desc["network"], arrays, trust, "prior.network")
    params = []
    bases = desc.get("bases") or [None] * len(desc["paths"])  # estimators saved before parameter maps: none
    for path, name, cons, basis in zip(desc["paths"], desc["names"], desc["constraints"], bases, strict=True):
        constraint = decode(cons, arrays, trust, "prior.constraint")
        params.append(
            Parameter(
                where=lambda n, p=path: get_leaf(n, p),
                constraint=constraint,
                name=None if name == path else name,
                basis=None if basis is None else decode(basis, arrays, trust, "prior.basis"),
            )
        )
    priors = {name: _decode_dist(d, arrays) for name, d in desc["priors"].items()}
    return Posterior(net, Selection(params), priors, None)


def _members(cfg: Mapping[str, Any], key: jax.Array, dtype) -> tuple[tuple, tuple | None]:
    built = [_build(cfg, jax.random.fold_in(key, m), dtype) for m in range(int(cfg.get("ensemble", 1)))]
    flows = tuple(b[0] for b in built)
    embs = None if built[0][1] is None else tuple(b[1] for b in built)
    return flows, embs


def _skeleton(cfg: Mapping[str, Any]) -> NPE:
    """An estimator of configuration `cfg` with placeholder arrays (to be filled by :func:`load_npe`). Folders
    written before ensembles and PCA (no ``ensemble`` / ``pca`` in the configuration) are one flow, no PCA."""
    dtype = np.dtype(cfg["dtype"])
    flows, embs = _members(cfg, jax.random.key(0), dtype)
    F = cfg["n_features"]
    return NPE(
        flows,
        embs,
        jnp.zeros(F, dtype),
        jnp.ones(F, dtype),
        jnp.zeros(cfg["dim"], dtype),
        jnp.ones(cfg["dim"], dtype),
        json.dumps(cfg, sort_keys=True),
        None if not cfg.get("pca") else jnp.zeros((F, int(cfg["pca"])), dtype),
    )


def load_npe(path: str | os.PathLike, trust=()) -> tuple[NPE, Any, dict[str, Any]]:
    """Read an estimator written by :meth:`NPE.save`: ``(npe, prior or None, info)`` where `info` holds the history,
    description and provenance. A modified or truncated folder is refused."""
    path = files.recover(Path(path))  # completes or undoes a save that a kill interrupted
    for name in ("npe.json", "arrays.npz"):
        if not (path / name).is_file():
            raise TwinFileError(f"load_npe: {path} is not a saved estimator ({path / name} is missing).")
    try:
        meta = files.read_json(path / "npe.json")
        arrays = files.read_npz(path / "arrays.npz")
    except files.FileReadError as e:
        raise TwinFileError(f"load_npe: {path} cannot be read: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise TwinFileError(f"load_npe: {path} is not a vbtjax neural posterior estimator.")
    stored = meta.pop("content_hash", None)
    if stored is None or content_hash(meta, arrays) != stored:
        raise TwinFileError(f"load_npe: {path} was modified after it was saved (content hash mismatch).")
    cfg = meta["config"]
    skeleton = _skeleton(cfg)
    params, static = eqx.partition(skeleton, eqx.is_array)
    leaves, treedef = jax.tree.flatten(params)
    if len(leaves) != meta["n_arrays"]:
        raise TwinFileError(f"load_npe: {path} holds {meta['n_arrays']} arrays, the estimator needs {len(leaves)}.")
    new = []
    for i, leaf in enumerate(leaves):
        a = arrays[f"npe.{i:04d}"]
        if a.shape != leaf.shape or a.dtype != leaf.dtype:
            raise TwinFileError(f"load_npe: array {i} has {a.shape} {a.dtype}, expected {leaf.shape} {leaf.dtype}.")
        new.append(jnp.asarray(a))
    npe = eqx.combine(jax.tree.unflatten(treedef, new), static)
    prior = None if meta["prior"] is None else _decode_prior(meta["prior"], arrays, trust)
    info = {
        "history": decode(meta["history"], arrays),
        "description": meta["description"],
        "provenance": meta["provenance"],
    }
    return npe, prior, info


# --------------------------------------------------------------------------------------------------------- training
def train_npe(
    budget: Budget,
    *,
    key: jax.Array,
    flow: str = "nsf",
    layers: int = 5,
    width: int = 64,
    depth: int = 1,
    knots: int = 8,
    interval: float = 5.0,
    embedding: int | None = None,
    embedding_width: int = 128,
    embedding_depth: int = 2,
    pca: int | None = None,
    ensemble: int = 1,
    learning_rate: float = 1e-3,
    batch_size: int = 256,
    max_epochs: int = 500,
    patience: int = 20,
    val_fraction: float = 0.1,
    clip: float = 5.0,
    dtype: Any = None,
    progress: bool = True,
) -> tuple[NPE, dict[str, Any]]:
    """Train ``q(u | x)`` on `budget` (a :class:`~vbtjax.sbi.Budget`; simulations with non-finite features are
    left out and counted).

    **Arguments:**
    - `flow`: ``"nsf"`` (masked autoregressive flow with rational-quadratic splines on ``[-interval, interval]``,
      `knots` knots; the default) or ``"maf"`` (affine).
    - `layers`, `width`, `depth`: flow layers and the width/depth of their conditioner networks.
    - `embedding`: size of an embedding MLP (`embedding_width` x `embedding_depth`) between the standardised
      features and the flow, trained jointly; ``None``: the flow sees the standardised features.
    - `pca`: project the standardised features on their first `pca` principal components (fitted on the training
      features, whitened; part of the estimator, so it is given raw features) before the embedding or the flow.
      A fixed linear compression of many redundant features, which cannot over-fit as a trained embedding can.
    - `ensemble`: train `ensemble` flows (different initialisations, and each its own validation fold of
      ``val_fraction``, the others training it) and return their equal-weight mixture. Less over-confident than
      one flow.
    - `learning_rate`, `batch_size`, `clip`: Adam step, minibatch size, gradient-norm clipping.
    - `max_epochs`, `patience`, `val_fraction`: epochs at most; stop when the validation loss has not improved for
      `patience` epochs, and keep the parameters of the best epoch; the last `val_fraction` of the simulations are
      the validation split (of the first member; member ``m`` validates on the fold before member ``m - 1``'s).
    - `dtype`: float type of the estimator (default float32, whatever ``jax_enable_x64`` says: it is faster).

    **Returns:** ``(npe, history)``: ``history`` holds ``train_loss`` and ``val_loss`` per epoch (mean negative
    log-probability; of the first member), ``best_epoch``, ``best_val_loss``, ``seconds``, ``n_train``, ``n_val``,
    ``n_dropped``, and per member ``member_best_epoch``, ``member_best_val_loss``, ``member_epochs``.
    """
    sizes = {"layers": layers, "width": width, "depth": depth, "knots": knots, "batch_size": batch_size,
             "max_epochs": max_epochs, "patience": patience, "ensemble": ensemble}  # fmt: skip
    _check_training(budget, flow, sizes, pca, val_fraction)
    dtype = np.dtype(dtype or np.float32)
    good = budget.finite_only()
    n_dropped = len(budget) - len(good)
    n = len(good)
    n_val = max(1, int(round(val_fraction * n)))
    if n - n_val < 2:
        raise ValueError(f"train_npe: {n} simulations with finite features are too few to train on.")
    M = int(ensemble)
    u = np.asarray(good.u, np.float64)
    x = np.asarray(good.x, np.float64)
    (u_mean, u_std), (x_mean, x_std), proj = _standardisation(u, x, n_val, pca, good.n_features)
    cfg = {
        "flow": flow,
        "layers": int(layers),
        "width": int(width),
        "depth": int(depth),
        "knots": int(knots),
        "interval": float(interval),
        "embedding": None if embedding is None else int(embedding),
        "embedding_width": int(embedding_width),
        "embedding_depth": int(embedding_depth),
        "pca": None if pca is None else int(pca),
        "ensemble": M,
        "dim": good.dim,
        "n_features": good.n_features,
        "dtype": dtype.name,
        "names": list(good.names),
        "shapes": [list(s) for s in good.shapes],
        "paths": list(good.info.get("paths", good.names)),
    }
    k_init, k_train = jax.random.split(key)
    flows, embs = _members(cfg, k_init, dtype)
    npe = NPE(
        flows,
        embs,
        jnp.asarray(x_mean, dtype),
        jnp.asarray(x_std, dtype),
        jnp.asarray(u_mean, dtype),
        jnp.asarray(u_std, dtype),
        json.dumps(cfg, sort_keys=True),
        None if proj is None else jnp.asarray(proj, dtype),
    )
    z = jnp.asarray((u - u_mean) / u_std, dtype)
    c = npe._standardise(jnp.asarray(x, dtype))  # standardised (projected) features, fixed during training
    t0 = time.perf_counter()
    training = (learning_rate, clip, batch_size, max_epochs, patience, progress)
    trained, records = _train_members(flows, embs, z, c, n_val, k_train, training)
    npe = eqx.tree_at(
        lambda e: (e.flow, e.embedding),
        npe,
        (tuple(b[0] for b in trained), None if embs is None else tuple(b[1] for b in trained)),
        is_leaf=lambda v: v is None,
    )
    first = records[0]
    history = {
        "train_loss": first["train_loss"],
        "val_loss": first["val_loss"],
        "best_epoch": first["best_epoch"],
        "best_val_loss": first["best_val_loss"],
        "seconds": time.perf_counter() - t0,
        "n_train": int(n - n_val),
        "n_val": int(n_val),
        "n_dropped": int(n_dropped),
        "member_best_epoch": np.asarray([r["best_epoch"] for r in records]),
        "member_best_val_loss": np.asarray([r["best_val_loss"] for r in records]),
        "member_epochs": np.asarray([len(r["val_loss"]) for r in records]),
    }
    return npe, history


def _check_training(budget: Any, flow: str, sizes: Mapping[str, Any], pca: Any, val_fraction: float) -> None:
    if not isinstance(budget, Budget):
        raise TypeError(f"train_npe: budget must be a vbtjax.sbi.Budget, got {type(budget).__name__}.")
    if flow not in FLOWS:
        raise ValueError(f"train_npe: flow must be one of {FLOWS}, got {flow!r}.")
    for name, v in sizes.items():
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < (0 if name == "depth" else 1):
            raise ValueError(f"train_npe: {name} must be a positive integer, got {v!r}.")
    if pca is not None and (isinstance(pca, bool) or not isinstance(pca, int | np.integer) or pca < 1):
        raise ValueError(f"train_npe: pca must be None or a positive integer, got {pca!r}.")
    if not 0 < val_fraction < 1:
        raise ValueError(f"train_npe: val_fraction must lie in (0, 1), got {val_fraction}.")


def _standardisation(u: np.ndarray, x: np.ndarray, n_val: int, pca: int | None, n_features: int):
    """``((u_mean, u_std), (x_mean, x_std), projection or None)`` on the first member's training split."""
    n = u.shape[0]
    u_mean, u_std = u[:-n_val].mean(0), u[:-n_val].std(0)
    x_mean, x_std = x[:-n_val].mean(0), x[:-n_val].std(0)
    u_std = np.where(u_std > 0, u_std, 1.0)
    x_std = np.where(x_std > 1e-12 * (1 + np.abs(x_mean)), x_std, 1.0)  # constant features: left as they are
    proj = None
    if pca is not None:
        if pca > min(n - n_val, n_features):
            raise ValueError(
                f"train_npe: pca={pca} exceeds the number of features ({n_features}) or of training "
                f"simulations ({n - n_val})."
            )
        xs0 = (x[:-n_val] - x_mean) / x_std
        _, s, vt = np.linalg.svd(xs0, full_matrices=False)
        sd_pc = s[:pca] / np.sqrt(xs0.shape[0])
        proj = vt[:pca].T / np.where(sd_pc > 0, sd_pc, 1.0)  # (F, K): unit-variance components
    return (u_mean, u_std), (x_mean, x_std), proj


def _train_members(flows, embs, z, c, n_val: int, k_train, training: tuple) -> tuple[list, list]:
    """Train every member of the ensemble on its own folds; ``(best parameters, records)`` per member."""
    learning_rate, clip, batch_size, max_epochs, patience, progress = training
    n, M = z.shape[0], len(flows)
    trained, records = [], []
    # the static part of the first member: every member trains with its functions (one compilation, see below)
    like = eqx.partition(
        (flows[0], None if embs is None else embs[0]),
        eqx.is_inexact_array,
        is_leaf=lambda v: isinstance(v, paramax.NonTrainable),
    )[1]
    for m in range(M):
        lo = (n - (m + 1) * n_val) % n  # member m validates on rows lo .. lo + n_val (cyclically)
        val_idx = (lo + np.arange(n_val)) % n
        tr_mask = np.ones(n, bool)
        tr_mask[val_idx] = False
        tr_idx = np.flatnonzero(tr_mask)
        member = (flows[m], None if embs is None else embs[m])
        k_m = k_train if m == 0 else jax.random.fold_in(k_train, 1000 + m)
        desc = "train NPE" if M == 1 else f"train NPE {m + 1}/{M}"
        best, rec = _train_member(
            member, z[tr_idx], c[tr_idx], z[val_idx], c[val_idx], k_m, learning_rate, clip, batch_size, max_epochs,
            patience, progress, desc, like,
        )  # fmt: skip
        trained.append(best)
        records.append(rec)
    return trained, records


def _nll(p, static, zb, cb):
    """Mean negative log density of the standardised parameters `zb` given the conditions `cb`."""
    f, emb = eqx.combine(p, static)
    if emb is not None:
        emb = paramax.unwrap(emb)
        cb = jax.vmap(emb)(cb)
    return -jnp.mean(paramax.unwrap(f).log_prob(zb, cb))


@functools.lru_cache(maxsize=16)
def _optimiser(learning_rate: float, clip: float) -> optax.GradientTransformation:
    """One optimiser object per setting: the jitted epoch below takes it as a static argument (compared by
    identity), so that all members of an ensemble share one compilation."""
    return optax.chain(optax.clip_by_global_norm(clip), optax.adam(learning_rate))


@eqx.filter_jit
def _epoch(p, state, k, static, opt, z_tr, c_tr, bs: int):
    """One pass over the training rows in minibatches of `bs` (a random permutation; the remainder is dropped)."""
    n_tr = z_tr.shape[0]
    n_batches = n_tr // bs
    perm = jax.random.permutation(k, n_tr)[: n_batches * bs].reshape(n_batches, bs)

    def step(carry, idx):
        p, state = carry
        loss, g = eqx.filter_value_and_grad(_nll)(p, static, z_tr[idx], c_tr[idx])
        updates, state = opt.update(g, state, p)
        return (eqx.apply_updates(p, updates), state), loss

    (p, state), losses = jax.lax.scan(step, (p, state), perm)
    return p, state, jnp.mean(losses)


_val_loss = eqx.filter_jit(_nll)


def _train_member(member, z_tr, c_tr, z_va, c_va, key, learning_rate, clip, batch_size, max_epochs, patience,
                  progress, desc, like):  # fmt: skip
    """Adam on minibatches of one flow (and its embedding) with early stopping; ``(best (flow, emb), record)``. The
    data and the flow's structure are arguments of the jitted functions (not constants baked into them), so the
    members of an ensemble share one compilation (`like`: the static part of the first member, whose functions are
    reused)."""
    is_leaf = lambda v: isinstance(v, paramax.NonTrainable)  # noqa: E731
    trainable, static = eqx.partition(member, eqx.is_inexact_array, is_leaf=is_leaf)
    # flowjax gives every flow its own constructor closures (equivalent for flows of one configuration), which would
    # make each member a new static argument and so a new compilation: use the first member's
    static = jax.tree.map(lambda mine, first: first if callable(first) else mine, static, like)
    opt = _optimiser(float(learning_rate), float(clip))
    opt_state = opt.init(trainable)
    bs = min(int(batch_size), z_tr.shape[0])

    def epoch(p, state, k):
        return _epoch(p, state, k, static, opt, z_tr, c_tr, bs)

    def val(p):
        return _val_loss(p, static, z_va, c_va)

    best, best_val, best_epoch = trainable, float(val(trainable)), 0
    train_hist, val_hist = [], []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_epochs, desc=desc, unit="epoch", dynamic_ncols=True)
    for e in range(1, max_epochs + 1):
        trainable, opt_state, tl = epoch(trainable, opt_state, jax.random.fold_in(key, e))
        vl = float(val(trainable))
        train_hist.append(float(tl))
        val_hist.append(vl)
        if math.isfinite(vl) and vl < best_val:
            best, best_val, best_epoch = trainable, vl, e
        if bar is not None:
            bar.update(1)
            bar.set_postfix(train=f"{float(tl):.3f}", val=f"{vl:.3f}", best=best_epoch)
        if e - best_epoch >= patience:
            break
    if bar is not None:
        bar.close()
    record = {
        "train_loss": np.asarray(train_hist),
        "val_loss": np.asarray(val_hist),
        "best_epoch": best_epoch,
        "best_val_loss": best_val,
    }
    return eqx.combine(best, static), record
