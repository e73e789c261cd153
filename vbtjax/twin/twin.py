"""The Virtual Brain Twin: a person's network with its fitted parameters or posterior, saved and reloaded exactly, and
what-if predictions propagated through the posterior.

A :class:`Twin` holds a :class:`~vbtjax.Network` (connectome, model, coupling, noise, stimuli, with the fitted
values), optional posterior draws (leaf path -> ``(draws..., *leaf_shape)``, e.g. ``"coupling.a"`` or
``"model.x0"``), a fit or sampling history, the simulation settings that produced the data (duration, step,
solver, monitors, initial history), free metadata, and provenance (versions, date, SHA-256 of the input files).

``twin.save(path)`` writes a folder (or, for ``*.zip``, one zip file) holding ``twin.json`` and ``arrays.npz``: no
pickle, and loading runs no code from the file. Saving is atomic: a save killed at any moment leaves the old twin or
the new one, and :meth:`Twin.load` completes a folder swap that a kill interrupted. Loading rebuilds every object
through its class's constructor, so a twin that could not be constructed (NaN weights, a negative noise, a speed
<= 0, mismatched shapes, a class from outside vbtjax) cannot be loaded either. A content hash over the JSON and every
array is stored and checked, so a truncated or partly written twin is refused with a clear error; the hash catches
accidents, not edits (anyone can recompute it). ``save(..., key=)`` adds an HMAC-SHA256 with a secret key, which
``load(..., verify=key)`` checks: that proves to holders of the key that one of them saved this content. Arrays keep
their dtypes, so a loaded twin simulates bit for bit like the saved one.

``twin.predict(scenario, outcome)`` applies a scenario (:mod:`vbtjax.scenarios`) to the network of every posterior
draw, simulates each (vmapped, sharded over devices), and returns a :class:`Prediction`: the distribution of the
outcome with and without the intervention, simulated with the same noise (common random numbers).
"""

from __future__ import annotations

import hmac
import io
import json
import math
import os
import shutil
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import numpy as np

from .. import files
from .._params import get_leaf, leaf_path, leaf_paths, set_leaves
from .._serialise import (
    SerialisationError,
    TwinFileError,
    canonical_json,
    content_hash,
    content_hmac,
    decode,
    encode,
    provenance,
)
from ..network import Network
from ..simulation.batch import BatchRunner, widened
from ..simulation.simulate import Solution, simulate

__all__ = ["Twin", "Prediction", "TwinFileError", "get_leaf", "set_leaves", "leaf_paths"]

FORMAT = "vbtjax-twin"
FORMAT_VERSION = 1
_JSON_LIMIT = 256 * 2**20  # bytes of twin.json read at most (files.read_json's default)


# TwinFileError, the leaf paths (get_leaf, leaf_paths, set_leaves) and provenance live in the core modules
# (vbtjax._serialise, vbtjax._params) and are named here as before (the Twin's `provenance` argument shadows the
# function's name inside the class).
_provenance = provenance


def _host_tree(tree: Any, what: str) -> dict[str, np.ndarray] | None:
    if tree is None:
        return None
    if not isinstance(tree, Mapping):
        raise TypeError(f"Twin: {what} must be a dict name -> array, got {type(tree).__name__}.")
    out = {}
    for k, v in tree.items():
        if not isinstance(k, str):
            raise TypeError(f"Twin: {what} keys must be strings, got {k!r}.")
        a = np.asarray(v)
        if a.dtype.kind not in "biuf":
            raise TypeError(f"Twin: {what}[{k!r}] must be numeric, got dtype {a.dtype}.")
        out[k] = a
    return out


def _check_simulation(sim: dict[str, Any], net: Network) -> None:
    for k in ("t1", "dt"):
        v = sim.get(k)
        if v is None:
            continue
        ok = isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)
        if not (ok and math.isfinite(float(v)) and float(v) > 0):
            raise ValueError(f"Twin: simulation[{k!r}] must be a positive number of ms, got {v!r}.")
    h = sim.get("history")
    if h is None:
        return
    a = np.asarray(h)
    n_svar, n = net.model.n_svar, net.n_regions
    if a.dtype.kind not in "biuf" or a.ndim not in (2, 3) or a.shape[-2:] != (n_svar, n):
        raise ValueError(
            f"Twin: simulation['history'] has shape {a.shape} and dtype {a.dtype}; expected numbers shaped "
            f"({n_svar}, {n}) or (H, {n_svar}, {n})."
        )
    if not np.all(np.isfinite(a)):
        raise ValueError("Twin: simulation['history'] contains NaN or inf.")


# ------------------------------------------------------------------------------------------------------------ twin
class Twin:
    """A Virtual Brain Twin: network + fitted parameters and/or posterior draws + history + provenance.

    **Arguments:**
    - `network`: the :class:`~vbtjax.Network` with the fitted (or chosen) values.
    - `posterior`: optional draws, leaf path -> ``(*draws, *leaf_shape)`` (e.g. ``{"coupling.a": (chains, draws),
      "model.x0": (chains, draws, N)}``); names that are not leaf paths of the network (latents, observation noise)
      are kept but not applied by :meth:`predict`.
    - `history`: optional fit or sampling history, name -> array (e.g. ``{"loss": (steps,)}``).
    - `simulation`: optional settings of the simulations that the twin reproduces: ``t1`` and ``dt`` (ms), and
      optionally ``solver`` (a vbtjax solver), ``monitors`` (a dict of monitors) and ``history`` (initial history
      array, as for :func:`~vbtjax.simulate`). :meth:`simulate` and :meth:`predict` use them as defaults.
    - `metadata`: free JSON-able information (subject, notes).
    - `inputs`: paths of the input files (connectome, recordings); their SHA-256 hashes go into the provenance.
    - `provenance`: recorded automatically (vbtjax/jax/numpy/python versions, platform, UTC date, input hashes);
      give it only to keep an existing record.
    """

    def __init__(
        self,
        network: Network,
        posterior: Mapping[str, Any] | None = None,
        history: Mapping[str, Any] | None = None,
        simulation: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        inputs: Sequence[str | os.PathLike] = (),
        provenance: Mapping[str, Any] | None = None,
    ):
        if not isinstance(network, Network):
            raise TypeError(f"Twin: network must be a vbtjax.Network, got {type(network).__name__}.")
        self.network = network
        self.posterior = _host_tree(posterior, "posterior")
        if self.posterior:
            paths = set(leaf_paths(network))
            for name, draws in self.posterior.items():
                if name in paths:
                    shape = tuple(get_leaf(network, name).shape)
                    if draws.ndim < len(shape) + 1 or tuple(draws.shape[draws.ndim - len(shape) :]) != shape:
                        raise ValueError(
                            f"Twin: posterior[{name!r}] has shape {draws.shape}; the leaf has shape {shape}, so the "
                            f"draws must be shaped (draws, {', '.join(map(str, shape))}) or (chains, draws, ...)."
                        )
                    if not np.all(np.isfinite(draws)):
                        raise ValueError(f"Twin: posterior[{name!r}] contains NaN or inf.")
        self.history = _host_tree(history, "history")
        self.simulation = dict(simulation) if simulation is not None else None
        if self.simulation is not None:
            unknown = sorted(set(self.simulation) - {"t1", "dt", "solver", "monitors", "history"})
            if unknown:
                raise ValueError(f"Twin: simulation has unknown keys {unknown}; use t1, dt, solver, monitors, history.")
            _check_simulation(self.simulation, network)
        for name, value in (("metadata", metadata), ("provenance", provenance)):
            if value is not None and not isinstance(value, Mapping):
                raise TypeError(f"Twin: {name} must be a dict, got {type(value).__name__}.")
        self.metadata = dict(metadata or {})
        try:
            canonical_json(self.metadata)
        except (TypeError, ValueError) as e:
            raise TypeError(f"Twin: metadata must be JSON-able (str, numbers, lists, dicts): {e}") from None
        self.provenance = dict(provenance) if provenance is not None else _provenance(inputs)
        self.signature: str | None = None
        """``None`` for a twin built here or loaded from an unsigned file; ``"unverified"`` when :meth:`load` read
        a signed file without ``verify=``; ``"verified"`` when the signature was checked against the key."""

    # ----------------------------------------------------------------------------------------------- constructors
    @classmethod
    def from_fit(cls, result: Any, selection: Any = None, **kwargs: Any) -> Twin:
        """A twin from a :class:`~vbtjax.inference.FitResult`: its network, and the loss and parameter history
        (``history["loss"]``, ``history[path]``). Keyword arguments go to :class:`Twin`."""
        net = result.net
        names = list(result.history)
        paths = _names_to_paths(net, names, selection)
        history = {"loss": np.asarray(result.losses)}
        history.update({paths[n]: _map_to_leaf(v, n, net, selection) for n, v in result.history.items()})
        return cls(net, history=kwargs.pop("history", None) or history, **kwargs)

    @classmethod
    def from_samples(cls, network: Network, samples: Mapping[str, Any], selection: Any = None, **kwargs) -> Twin:
        """A twin whose posterior is `samples` (e.g. ``NutsResult.samples``: name -> ``(chains, draws, *shape)``);
        names given by a :class:`~vbtjax.inference.Selection` are turned into leaf paths."""
        paths = _names_to_paths(network, list(samples), selection)
        posterior = {paths[n]: _map_to_leaf(v, n, network, selection) for n, v in samples.items()}
        return cls(network, posterior=posterior, **kwargs)

    # ------------------------------------------------------------------------------------------------------- use
    @property
    def n_draws(self) -> int:
        """Number of posterior draws applied by :meth:`predict` (0 without a posterior)."""
        draws = self._draws()
        return 0 if not draws else next(iter(draws.values())).shape[0]

    def _draws(self) -> dict[str, np.ndarray]:
        """Posterior draws of the network's leaves, flattened to ``(S, *leaf_shape)``."""
        if not self.posterior:
            return {}
        paths = set(leaf_paths(self.network))
        out = {}
        for name, a in self.posterior.items():
            if name not in paths:
                continue
            k = a.ndim - get_leaf(self.network, name).ndim
            out[name] = a.reshape((-1, *a.shape[k:]))
        sizes = {v.shape[0] for v in out.values()}
        if len(sizes) > 1:
            raise ValueError(f"Twin: the posterior draws have different numbers of draws: {sorted(sizes)}.")
        return out

    def _settings(self, t1, dt, solver, monitors, history) -> dict[str, Any]:
        s = dict(self.simulation or {})
        out = {
            "t1": t1 if t1 is not None else s.get("t1"),
            "dt": dt if dt is not None else s.get("dt"),
            "solver": solver if solver is not None else s.get("solver"),
            "monitors": monitors if monitors is not None else s.get("monitors"),
            "history": history if history is not None else s.get("history"),
        }
        for k in ("t1", "dt"):
            if out[k] is None:
                raise ValueError(f"Twin: give {k}= (ms): the twin has no saved simulation settings for it.")
        return out

    def simulate(self, t1=None, dt=None, *, solver=None, monitors=None, history=None, key=None, **kw) -> Solution:
        """:func:`~vbtjax.simulate` of the twin's network, with its saved simulation settings as defaults."""
        s = self._settings(t1, dt, solver, monitors, history)
        return simulate(self.network, s["t1"], s["dt"], s["history"], s["solver"], s["monitors"], key, **kw)

    def predict(
        self,
        scenario: Callable[[Network], Network] | None,
        outcome: Callable[[Solution], Any] | None = None,
        *,
        run: Callable[[Network, jax.Array | None], Any] | None = None,
        t1: float | None = None,
        dt: float | None = None,
        solver: Any = None,
        monitors: Any = None,
        history: Any = None,
        key: jax.Array | None = None,
        n_samples: int | None = None,
        baseline: bool = True,
        batch_size: int | None = None,
        devices: Sequence[jax.Device] | None = None,
        progress: bool = True,
    ) -> Prediction:
        """The distribution of an outcome under a scenario, over the posterior draws.

        For each draw ``s`` (evenly thinned to `n_samples`), the network gets the draw's values, then the scenario
        (``scenario(net)``, a :mod:`vbtjax.scenarios` object or any pure function of a network), is simulated and
        reduced by ``outcome(solution)``. With `baseline`, the same draws are simulated without the scenario with the
        same noise (key ``fold_in(key, s)`` for both), so :meth:`Prediction.change` isolates the intervention's
        effect. A twin without posterior gives one draw (its network), or `n_samples` noise realisations.

        **Arguments:**
        - `scenario`: the intervention (``None``: the outcome of the twin as it is).
        - `outcome`: ``outcome(solution) -> pytree of arrays`` (e.g. :func:`vbtjax.outcomes.fc`); default: the
          monitors' outputs.
        - `run`: instead of simulate + outcome, ``run(network, key) -> pytree`` (a custom simulator, e.g. the VEP's
          :func:`vbtjax.vep.simulate_x1`).
        - `t1`, `dt`, `solver`, `monitors`, `history`: simulation settings (defaults: the twin's `simulation`).
        - `key`: base key (required when the network has noise).
        - `n_samples`: number of draws used (default all).
        - `batch_size`: simulations per vmapped chunk (default 8 per CPU device, 256 per accelerator).
        - `devices`: devices sharing the batch (default all).

        **Returns:** a :class:`Prediction` with ``outcome`` (and ``baseline``) pytrees of ``(S, ...)`` host arrays.
        """
        if scenario is not None and not callable(scenario):
            raise TypeError("Twin.predict: scenario must be a vbtjax.scenarios scenario (callable on a network).")
        if run is not None and (outcome is not None or not callable(run)):
            raise TypeError("Twin.predict: give either outcome= (with the simulation settings) or run=, not both.")
        if self.network.noise is not None and key is None:
            raise ValueError("Twin.predict: the network has noise, so a key is required: key=jax.random.key(0).")
        draws = self._draws()
        S_all = next(iter(draws.values())).shape[0] if draws else None
        if n_samples is not None and (isinstance(n_samples, bool) or int(n_samples) < 1):
            raise ValueError(f"Twin.predict: n_samples must be a positive integer, got {n_samples!r}.")
        if S_all is None:
            S = int(n_samples or 1)
        else:
            S = S_all if n_samples is None else min(int(n_samples), S_all)
            idx = np.unique(np.round(np.linspace(0, S_all - 1, S)).astype(int))
            draws = {k: v[idx] for k, v in draws.items()}
            S = len(idx)
        if run is None:
            s = self._settings(t1, dt, solver, monitors, history)
            mons = s["monitors"] if s["monitors"] is not None else {"raw": _raw()}
            reduce = outcome if outcome is not None else (lambda sol: sol.ys)

            def run(net, k):  # noqa: F811
                return reduce(simulate(net, s["t1"], s["dt"], s["history"], s["solver"], mons, k))

            step = float(s["dt"])
        else:
            step = float(dt) if dt is not None else (float(self.simulation["dt"]) if self.simulation else None)

        names, vals = tuple(draws), tuple(draws.values())
        common = (self.network, names, vals, S, run, step, key, batch_size, devices, progress)
        out = _run_batched(*common, scenario, "scenario")
        base = None
        if baseline:
            base = _run_batched(*common, None, "baseline")
        spec = None
        if scenario is not None and hasattr(scenario, "to_dict"):
            try:
                spec = scenario.to_dict()
            except Exception:  # noqa: BLE001 - a description is optional
                spec = None
        return Prediction(outcome=out, baseline=base, params=dict(draws), scenario=spec)

    # ------------------------------------------------------------------------------------------------------ files
    def _meta_and_arrays(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        arrays: dict[str, np.ndarray] = {}
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "network": encode(self.network, arrays, "network"),
            "posterior": encode(self.posterior, arrays, "posterior"),
            "history": encode(self.history, arrays, "history"),
            "simulation": encode(self.simulation, arrays, "simulation"),
            "metadata": self.metadata,
            "provenance": self.provenance,
        }
        return meta, arrays

    def save(self, path: str | os.PathLike, overwrite: bool = False, *, key: bytes | str | None = None) -> Path:
        """Write the twin to the folder `path` (``twin.json`` + ``arrays.npz``), or to one zip file when `path` ends
        in ``.zip``. Returns the path.

        The save is atomic: the new twin is written beside `path` and swapped in (:mod:`vbtjax.files`), so a save
        killed at any moment leaves the old twin or the new one, never neither or a mixture. With `key` (bytes, or a
        str taken as UTF-8), an HMAC-SHA256 of the content is stored; ``Twin.load(path, verify=key)`` checks it.
        The content hash saved in any case only catches accidents; the HMAC proves to holders of the key that one
        of them saved this content (keep the key secret, and share it only with the sites that must verify)."""
        path = Path(path)
        files.recover(path)
        if (path.exists() or path.is_symlink()) and not overwrite:
            raise FileExistsError(f"Twin.save: {path} exists; pass overwrite=True to replace it.")
        meta, arrays = self._meta_and_arrays()
        hashed = dict(meta)
        meta["content_hash"] = content_hash(hashed, arrays)
        if key is not None:
            meta["signature"] = {"algorithm": "HMAC-SHA256", "value": content_hmac(hashed, arrays, _key(key, "key"))}
        text = json.dumps(meta, indent=1, sort_keys=True, allow_nan=False).encode()
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        if path.suffix == ".zip":
            out = io.BytesIO()
            with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
                z.writestr("twin.json", text)
                z.writestr("arrays.npz", buf.getvalue())
            if not path.is_dir():
                return files.write_bytes(path, out.getvalue())
        stage = files.staging_dir(path)
        try:
            if path.suffix == ".zip":  # a zip replacing a folder: swapped in as a folder would be
                files.replace_dir(files.write_bytes(stage / path.name, out.getvalue()), path)
                stage.rmdir()
            else:
                files.write_bytes(stage / "twin.json", text)
                files.write_bytes(stage / "arrays.npz", buf.getvalue())
                files.replace_dir(stage, path)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, trust: Sequence[str] = (), *, verify: bytes | str | None = None) -> Twin:
        """Read a twin written by :meth:`save` (folder or ``.zip``), checking its content hash.

        A folder swap that a killed save left half done is completed first (the old or the new twin is found).
        Every object is rebuilt through its class's constructor, so the checks of constructing run on loading;
        classes are looked up by name only among vbtjax's modules and those of the packages in `trust` (for twins
        of user-defined models). With `verify` (the key given to :meth:`save`), an unsigned twin or a signature
        that does not match is refused; without it, a signed twin loads with ``signature == "unverified"``.
        Raises :class:`TwinFileError` naming the file and the problem for a missing, truncated, damaged, modified
        or invalid twin."""
        path = Path(path)
        vkey = None if verify is None else _key(verify, "verify")
        meta, arrays = _read_twin(path)
        stored = meta.pop("content_hash", None)
        signature = meta.pop("signature", None)
        try:
            same = isinstance(stored, str) and content_hash(meta, arrays) == stored
        except (TypeError, ValueError, RecursionError) as e:
            raise TwinFileError(f"Twin.load: {path}: twin.json cannot be hashed ({e}).") from None
        if not same:
            raise TwinFileError(
                f"Twin.load: {path} was modified after it was saved (its content hash does not match); refusing to "
                "load it. Save the twin again from its source."
            )
        if vkey is not None:
            if signature is None:
                raise TwinFileError(f"Twin.load: {path} is not signed, and verify= asks for a signed twin.")
            value = signature.get("value") if isinstance(signature, dict) else None
            good = content_hmac(meta, arrays, vkey)
            if not (isinstance(value, str) and hmac.compare_digest(value.encode(), good.encode())):
                raise TwinFileError(
                    f"Twin.load: {path}: its signature does not match the key given as verify=: it was saved with "
                    "another key, or changed since."
                )
        try:
            twin = cls(
                decode(meta.get("network"), arrays, trust, "network"),
                posterior=decode(meta.get("posterior"), arrays, trust, "posterior"),
                history=decode(meta.get("history"), arrays, trust, "history"),
                simulation=decode(meta.get("simulation"), arrays, trust, "simulation"),
                metadata=meta.get("metadata"),
                provenance=meta.get("provenance"),
            )
        except RecursionError:
            raise TwinFileError(f"Twin.load: {path}: twin.json is nested too deep; not a twin.") from None
        except (SerialisationError, ValueError, TypeError, AttributeError, KeyError, IndexError) as e:
            raise TwinFileError(f"Twin.load: {path} holds an invalid twin: {e}") from None
        twin.signature = None if signature is None else ("verified" if verify is not None else "unverified")
        return twin

    def __repr__(self) -> str:
        n = self.network
        post = f", {self.n_draws} posterior draws of {sorted(self._draws())}" if self.posterior else ""
        return f"Twin({type(n.model).__name__}, {n.n_regions} regions{post})"


def _key(key: Any, what: str) -> bytes:
    if isinstance(key, str):
        key = key.encode("utf-8")
    if not isinstance(key, bytes | bytearray):
        raise TypeError(f"Twin: {what} must be the signing key as bytes or str, got {type(key).__name__}.")
    if not key:
        raise ValueError(f"Twin: {what} is empty; give a secret key (e.g. 32 random bytes).")
    return bytes(key)


def _read_twin(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(meta, arrays)`` of the twin at `path` (folder or zip), read with size limits; every failure is a
    :class:`TwinFileError` naming the file."""
    try:
        files.recover(path)
    except OSError:  # a read-only place: read what is there
        pass
    if not path.exists():
        raise TwinFileError(f"Twin.load: {path} does not exist.")
    try:
        if path.is_dir():
            for name in ("twin.json", "arrays.npz"):
                if not (path / name).is_file():
                    raise TwinFileError(f"Twin.load: {path} is not a complete twin folder ({name} is missing).")
            meta = _checked_meta(files.read_json(path / "twin.json", what=f"{path}: twin.json"), path)
            return meta, files.read_npz(path / "arrays.npz", what=f"{path}: arrays.npz")
        with files.ZipArchive(path, f"Twin.load: {path}") as z:
            for name in ("twin.json", "arrays.npz"):
                if name not in z.infos:
                    raise TwinFileError(f"Twin.load: {path} is not a twin zip ({name} is missing).")
            meta = _checked_meta(files.read_json(z.read("twin.json", _JSON_LIMIT), what=f"{path}: twin.json"), path)
            return meta, files.read_npz(z.read("arrays.npz", files.MAX_BYTES), what=f"{path}: arrays.npz")
    except TwinFileError:
        raise
    except files.FileReadError as e:
        raise TwinFileError(f"Twin.load: {e}") from None
    except Exception as e:  # noqa: BLE001 - zipfile, zlib, bz2 and lzma raise their own types for damaged files
        raise TwinFileError(
            f"Twin.load: {path} is not a readable twin (truncated, damaged or not a twin zip: {type(e).__name__}: {e})."
        ) from None


def _checked_meta(meta: Any, path: Path) -> dict[str, Any]:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise TwinFileError(f"Twin.load: {path} is not a vbtjax twin (no 'format': {FORMAT!r}).")
    version = meta.get("format_version", 0)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise TwinFileError(
            f"Twin.load: {path} has format version {version!r}; this vbtjax reads up to {FORMAT_VERSION}: upgrade "
            "vbtjax."
        )
    return meta


def _raw():
    from ..observation.monitors import Raw

    return Raw()


def _names_to_paths(net: Network, names: Sequence[str], selection: Any) -> dict[str, str]:
    mapping = {n: n for n in names}
    if selection is not None:
        for name, p in zip(selection.names(net), selection.params, strict=True):
            if name in mapping:
                mapping[name] = leaf_path(net, p.where(net)) or name
    return mapping


def _map_to_leaf(values: Any, name: str, net: Network, selection: Any) -> np.ndarray:
    """Values of the parameter `name` ``(..., *shape)``; a parameter map's coefficients ``(..., K)`` become the
    leaf's values ``(..., N)`` (``basis @ c``)."""
    if selection is not None:
        for nm, p in zip(selection.names(net), selection.params, strict=True):
            if nm == name:
                return np.asarray(p.to_leaf(values))
    return np.asarray(values)


# ------------------------------------------------------------------------------------------------- batched runs
def _builder(names: Sequence[str], scenario):
    """``build(net, values_b)``: the network of one draw (its values set, then the scenario applied)."""

    def build(net: Network, vs: Sequence[Any]) -> Network:
        n = set_leaves(net, dict(zip(names, vs, strict=True)))
        return scenario(n) if scenario is not None else n

    return build


def _run_batched(net, names, vals, S, run, dt, key, batch_size, devices, progress, scenario, label):
    build = _builder(tuple(names), scenario)
    wide = widened(net, build, vals, S, dt, owner="Twin.predict")
    runner = BatchRunner(wide, build, run, has_key=key is not None, devices=devices, owner="Twin.predict")
    desc = (f"predict ({label})" if label else "simulations") if progress else None
    return runner(vals, S, key, runner.batch(batch_size, S), progress=desc)


# ------------------------------------------------------------------------------------------------------ prediction
class Prediction(eqx.Module):
    """The outcome distribution of :meth:`Twin.predict`.

    **Fields:**
    - `outcome`: pytree of ``(S, ...)`` arrays, one row per posterior draw, with the scenario.
    - `baseline`: the same without the scenario (same draws, same noise), or None.
    - `params`: leaf path -> ``(S, ...)`` the draws used.
    - `scenario`: the scenario's description (``to_dict()``), or None.
    """

    outcome: Any
    baseline: Any
    params: dict[str, np.ndarray]
    scenario: Any = eqx.field(static=True)

    @property
    def n_samples(self) -> int:
        return int(jax.tree.leaves(self.outcome)[0].shape[0])

    def _which(self, which: str) -> Any:
        if which == "outcome":
            return self.outcome
        if which == "baseline":
            if self.baseline is None:
                raise ValueError("Prediction: no baseline was simulated (predict(..., baseline=True)).")
            return self.baseline
        if which == "change":
            return self.change()
        raise ValueError(f"Prediction: which must be 'outcome', 'baseline' or 'change', got {which!r}.")

    def change(self) -> Any:
        """Outcome minus baseline, per draw (booleans: as 0/1)."""
        base = self._which("baseline")
        return jax.tree.map(lambda a, b: np.asarray(a, float) - np.asarray(b, float), self.outcome, base)

    def mean(self, which: str = "outcome") -> Any:
        """Mean over draws (for a boolean outcome: the probability)."""
        return jax.tree.map(lambda a: np.mean(np.asarray(a, float), axis=0), self._which(which))

    def probability(self, which: str = "outcome") -> Any:
        """Share of draws in which a boolean outcome holds (e.g. P(region seizes))."""
        return jax.tree.map(lambda a: np.mean(np.asarray(a, bool), axis=0), self._which(which))

    def quantiles(self, q: Sequence[float] = (0.05, 0.5, 0.95), which: str = "outcome") -> Any:
        """Quantiles over draws, ``(len(q), ...)``."""
        return jax.tree.map(lambda a: np.quantile(np.asarray(a, float), q, axis=0), self._which(which))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the draws to ``.npz`` (keys ``outcome/...``, ``baseline/...``, ``params/...``) + the scenario as JSON
        in ``scenario``, atomically (the old file or the new one is found after a kill). ``.npz`` is appended to a
        path without it, as NumPy does; returns the path written."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        arrays = {}
        for group, tree in (("outcome", self.outcome), ("baseline", self.baseline)):
            if tree is None:
                continue
            for p, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
                arrays[group + jax.tree_util.keystr(p)] = np.asarray(leaf)
        for k, v in self.params.items():
            arrays[f"params/{k}"] = np.asarray(v)
        arrays["scenario"] = np.asarray(json.dumps(self.scenario))
        return files.write_npz(path, arrays)
