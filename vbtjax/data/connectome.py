"""Structural connectomes: coupling weights, tract lengths, region centres and labels.

Convention: ``weights[i, j]`` is the connection **from source region j to target region i** (row = target,
column = source), as in TVB's coupling sum ``c_i = sum_j W[i, j] x_j``. Tract lengths are in mm, centres in mm.
Weights are used as given; normalisation is the explicit transform :meth:`Connectome.normalised`.
"""

from __future__ import annotations

import io
import os
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .. import files
from .._params import as_float_array, is_concrete
from ..files import FileReadError
from ._readers import (
    FolderFiles,
    ZipArchive,
    bunzip,
    decode_utf8,
    is_matrix_file,
    parse_matrix,
    read_matrix_file,
    read_variables,
    real_array,
)
from .parcellation import DEFAULT_RADIUS, LabelImage, map_tractogram
from .tvb_objects import connectivity_arrays, tvb_connectivity

__all__ = ["Connectome"]

# Variable names recognised in .mat and .npz files, compared case-insensitively, in order of preference.
_WEIGHT_NAMES = ("weights", "sc", "w", "cmat", "connectivity", "conn")
_LENGTH_NAMES = ("tract_lengths", "lengths", "len", "tract_length", "length", "dmat", "l")
_CENTRE_NAMES = ("centres", "centers")
_LABEL_NAMES = ("labels", "region_labels")


def _real(name: str, optional: bool = False) -> Callable[[Any], Any]:
    """The converter of the float field `name`: refuses complex values (whose imaginary part a cast to float would
    drop), non-numeric ones and ragged nested lists, and says so when finite values overflow the float type."""

    def convert(value: Any) -> Any:
        if value is None:
            if optional:
                return None
            raise ValueError(f"Connectome: {name} is None; give an (N, N) array.")
        dtype = getattr(value, "dtype", None)
        if not isinstance(dtype, np.dtype):
            try:
                value = np.asarray(value)
            except (TypeError, ValueError):
                raise ValueError(
                    f"Connectome: {name} is not a rectangular array (rows of different lengths?)."
                ) from None
            dtype = value.dtype
        if jnp.issubdtype(dtype, jnp.complexfloating):
            raise ValueError(
                f"Connectome: {name} is complex ({dtype}); give real values (a cast to float would drop the "
                "imaginary part)."
            )
        if dtype.kind == "O":
            try:
                value = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError, OverflowError):
                raise ValueError(f"Connectome: {name} holds values that are not numbers.") from None
        elif not (jnp.issubdtype(dtype, jnp.number) or jnp.issubdtype(dtype, jnp.bool_)):
            raise ValueError(f"Connectome: {name} is not numeric (its values are of type {dtype}); give numbers.")
        out = as_float_array(value)
        if out is not value and is_concrete(out) and not isinstance(value, jax.Array):
            if not np.all(np.isfinite(np.asarray(out))) and np.all(np.isfinite(np.asarray(value))):
                raise ValueError(
                    f"Connectome: {name} has finite values too large for {out.dtype} (max "
                    f"{float(jnp.finfo(out.dtype).max):.3g}); rescale them or enable jax_enable_x64."
                )
        return out

    return convert


def _as_labels(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str | bytes):
        raise ValueError("Connectome: labels must be a sequence of N strings (one per region), not a single string.")
    arr = np.asarray(value, dtype=object)
    if arr.ndim != 1:
        got = f"a {type(value).__name__}" if arr.ndim == 0 else f"an array of shape {arr.shape}"
        raise ValueError(f"Connectome: labels must be a flat sequence of N region names (strings); got {got}.")
    out = []
    for k, v in enumerate(arr.tolist()):
        if v is None:
            raise ValueError(f"Connectome: labels[{k}] is None; every region needs a name (or give labels=None).")
        out.append(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v))
    return tuple(out)


class Connectome(eqx.Module):
    """A region-level structural connectome.

    **Arguments:**

    - `weights`: `(N, N)` coupling weights (arbitrary units); `weights[i, j]` is from source `j` to target `i`.
      Any finite values (negative ones too). Differentiable.
    - `lengths`: `(N, N)` tract lengths, mm, finite and non-negative. Differentiable.
    - `centres`: optional `(N, 3)` region centres, mm.
    - `labels`: optional tuple of `N` distinct region names (static).

    Real numbers only: complex values are refused (not cast). Value checks (finite, non-negative lengths) are
    skipped when the arrays are traced (under `jit`/`vmap`); shape checks and the label checks always run.
    """

    weights: Float[Array, "N N"] = eqx.field(converter=_real("weights"))
    lengths: Float[Array, "N N"] = eqx.field(converter=_real("lengths"))
    centres: Float[Array, "N 3"] | None = eqx.field(default=None, converter=_real("centres", optional=True))
    labels: tuple[str, ...] | None = eqx.field(default=None, static=True, converter=_as_labels)

    def __check_init__(self):
        w = self.weights
        if w.ndim != 2 or w.shape[0] != w.shape[1] or w.shape[0] == 0:
            raise ValueError(
                f"Connectome: weights has shape {w.shape}; expected a square (N, N) matrix with N >= 1 "
                "(row = target region, column = source region)."
            )
        n = w.shape[0]
        if self.lengths.shape != w.shape:
            raise ValueError(
                f"Connectome: lengths has shape {self.lengths.shape} but weights has shape {w.shape}; give tract "
                f"lengths (mm) of shape ({n}, {n})."
            )
        if self.centres is not None and self.centres.shape != (n, 3):
            raise ValueError(
                f"Connectome: centres has shape {self.centres.shape}; expected ({n}, 3) region centres in mm, or None."
            )
        if self.labels is not None and len(self.labels) != n:
            raise ValueError(
                f"Connectome: labels has {len(self.labels)} entries but there are {n} regions; give {n} labels or None."
            )
        if self.labels is not None:
            dup = sorted(label for label, k in Counter(self.labels).items() if k > 1)
            if dup:
                raise ValueError(
                    f"Connectome: the region labels {_preview(dup)} occur more than once; labels must be unique "
                    "(a region named by its label must be one region), or give labels=None."
                )
        for name in ("weights", "lengths", "centres"):
            value = getattr(self, name)
            if value is not None and is_concrete(value) and not bool(np.all(np.isfinite(np.asarray(value)))):
                raise ValueError(f"Connectome: {name} contains NaN or inf; give finite values.")
        if is_concrete(self.lengths) and bool(np.any(np.asarray(self.lengths) < 0)):
            raise ValueError("Connectome: lengths contains negative values; tract lengths (mm) must be >= 0.")

    @property
    def n_regions(self) -> int:
        """Number of regions ``N``."""
        return self.weights.shape[0]

    # ------------------------------------------------------------------ transforms (pure; return a new Connectome)

    def normalised(self, mode: str = "max") -> Connectome:
        """Return a copy with scaled weights; lengths, centres and labels unchanged.

        - `"max"` (TVB's `scaled_weights("tract")`; alias `"tract"`): `W / max_ij |W_ij|`, so the strongest single
          connection has magnitude 1.
        - `"region"` (TVB's `scaled_weights("region")`): `W / max_i |sum_j W_ij|`, so the largest total input to any
          region has magnitude 1 (one global factor).
        - `"sum"`: `W / sum_ij |W_ij|`, so the absolute weights sum to 1.
        - `"rows"`: each row divided by its own absolute sum, `W_ij / sum_k |W_ik|`, so every region's total
          absolute input is 1 (in-strength normalisation; changes the relative strength of regions).

        A zero factor (all-zero matrix or row) leaves the weights unchanged instead of dividing by zero.
        """
        w = self.weights
        a = jnp.abs(w)
        if mode in ("max", "tract"):
            factor = jnp.max(a)
        elif mode == "region":
            factor = jnp.max(jnp.abs(jnp.sum(w, axis=1)))
        elif mode == "sum":
            factor = jnp.sum(a)
        elif mode == "rows":
            factor = jnp.sum(a, axis=1, keepdims=True)
        else:
            raise ValueError(
                f"Connectome.normalised: unknown mode {mode!r}; use 'max' (alias 'tract'), 'region', 'sum' or 'rows'."
            )
        factor = jnp.where(factor == 0, 1.0, factor)
        return eqx.tree_at(lambda c: c.weights, self, w / factor)

    def without_self_connections(self) -> Connectome:
        """Return a copy whose weights have a zero diagonal (no region couples to itself)."""
        w = self.weights * (1.0 - jnp.eye(self.n_regions, dtype=self.weights.dtype))
        return eqx.tree_at(lambda c: c.weights, self, w)

    def delays(self, speed: Any) -> Float[Array, "N N"]:
        """Conduction delays ``lengths / speed`` in ms, shape ``(N, N)``; ``speed`` in mm/ms (scalar or broadcastable
        to ``(N, N)``), positive."""
        speed = as_float_array(speed)
        if is_concrete(speed) and not bool(np.all(np.asarray(speed) > 0)):
            raise ValueError(f"Connectome.delays: speed must be positive (mm/ms); got {np.asarray(speed)}.")
        return self.lengths / speed

    # ------------------------------------------------------------------ regions, tracts, lesions

    def region_indices(self, regions: Any, *, argument: str = "regions", owner: str = "Connectome") -> tuple[int, ...]:
        """The indices of `regions`: a region or a sequence of them, each an index ``0 <= i < N`` or a label of
        ``labels``. Static (no arrays): works the same inside ``jit``/``vmap``.

        Raises ``ValueError`` naming `argument` for an index out of range, and for an unknown label with the labels
        that are close to it (or when the connectome has no labels).
        """
        if isinstance(regions, str | int | np.integer):
            regions = (regions,)
        return tuple(self._region_index(r, argument, owner) for r in regions)

    def _region_index(self, region: Any, argument: str, owner: str) -> int:
        n = self.n_regions
        if isinstance(region, str):
            if self.labels is None:
                raise ValueError(
                    f"{owner}: {argument} names the region {region!r}, but the connectome has no labels; give region "
                    f"indices 0..{n - 1} instead."
                )
            if region in self.labels:
                return self.labels.index(region)
            import difflib

            lower = {lab.lower(): lab for lab in self.labels}
            close = [lower[region.lower()]] if region.lower() in lower else []
            close += [c for c in difflib.get_close_matches(region, self.labels, n=5, cutoff=0.6) if c not in close]
            hint = f"close matches: {', '.join(map(repr, close))}" if close else f"labels: {_preview(self.labels)}"
            raise ValueError(f"{owner}: {argument} names an unknown region {region!r}; {hint}.")
        if isinstance(region, bool) or not isinstance(region, int | np.integer):
            raise ValueError(
                f"{owner}: {argument} must hold region indices (int) or labels (str), got {region!r} "
                f"({type(region).__name__})."
            )
        if not 0 <= int(region) < n:
            raise ValueError(
                f"{owner}: {argument} holds the region index {int(region)}, out of range for a connectome of {n} "
                f"regions (valid: 0..{n - 1})."
            )
        return int(region)

    def tract_mask(
        self,
        tracts: Sequence[tuple[Any, Any]] | None = None,
        regions: Any = None,
        *,
        directed: bool = False,
        owner: str = "Connectome",
    ) -> np.ndarray:
        """The ``(N, N)`` boolean NumPy mask of the entries of ``weights``/``lengths`` that hold the given tracts.

        - `tracts`: pairs ``(source, target)`` (indices or labels). With ``directed=False`` (default) both directions,
          ``[target, source]`` and ``[source, target]``; with ``directed=True`` only the connection from `source` to
          `target`, the entry ``[target, source]`` (row = target, column = source).
        - `regions`: every tract of these regions, incoming and outgoing (their rows and columns, the diagonal
          included).
        """
        n = self.n_regions
        mask = np.zeros((n, n), dtype=bool)
        for k, tract in enumerate(() if tracts is None else tracts):
            if isinstance(tract, str) or len(tract) != 2:
                raise ValueError(f"{owner}: tracts[{k}] must be a pair (source, target) of regions, got {tract!r}.")
            src, tgt = self.region_indices(tuple(tract), argument=f"tracts[{k}]", owner=owner)
            mask[tgt, src] = True
            if not directed:
                mask[src, tgt] = True
        if regions is not None:
            idx = list(self.region_indices(regions, argument="regions", owner=owner))
            mask[idx, :] = True
            mask[:, idx] = True
        return mask

    def lesioned(
        self,
        tracts: Sequence[tuple[Any, Any]] | None = None,
        regions: Any = None,
        factor: Any = 0.0,
        *,
        directed: bool = False,
    ) -> Connectome:
        """Return a copy whose weights on the given tracts (see :meth:`tract_mask`) are multiplied by `factor`
        (0: cut, 0.5: halved; may be traced); lengths, centres and labels unchanged."""
        mask = self.tract_mask(tracts, regions, directed=directed, owner="Connectome.lesioned")
        w = self.weights * jnp.where(mask, jnp.asarray(factor, self.weights.dtype), 1.0)
        return eqx.tree_at(lambda c: c.weights, self, w)

    def subset(self, regions: Any) -> Connectome:
        """The connectome of `regions` alone (indices or labels, in the order given): their weights, lengths,
        centres and labels; ``N`` becomes ``len(regions)``."""
        idx = np.asarray(self.region_indices(regions, owner="Connectome.subset"), int)
        if len(set(idx.tolist())) != idx.size:
            raise ValueError(f"Connectome.subset: regions must be distinct, got {idx.tolist()}.")
        return Connectome(
            weights=self.weights[np.ix_(idx, idx)],
            lengths=self.lengths[np.ix_(idx, idx)],
            centres=None if self.centres is None else self.centres[idx],
            labels=None if self.labels is None else [self.labels[i] for i in idx],
        )

    def nearest(self, regions: Any, k: int) -> np.ndarray:
        """Indices (sorted) of the `k` regions whose centres lie nearest to any of `regions` (those included)."""
        if self.centres is None:
            raise ValueError("Connectome.nearest: the connectome has no region centres (mm).")
        if isinstance(k, bool) or not 1 <= int(k) <= self.n_regions:
            raise ValueError(f"Connectome.nearest: k must lie in 1..{self.n_regions}, got {k!r}.")
        idx = np.asarray(self.region_indices(regions, owner="Connectome.nearest"), int)
        centres = np.asarray(self.centres)
        d = np.linalg.norm(centres[:, None] - centres[idx][None], axis=-1).min(axis=1)
        return np.sort(np.argsort(d, kind="stable")[: int(k)])

    def resected(self, regions: Any) -> Connectome:
        """Return a copy in which `regions` (indices or labels) neither receive nor send anything: their rows and
        columns of ``weights`` are zero. ``N`` is unchanged (the regions stay, disconnected), so shapes are kept."""
        keep = ~self.tract_mask(regions=regions, owner="Connectome.resected")
        return eqx.tree_at(lambda c: c.weights, self, jnp.where(keep, self.weights, 0.0))

    # ------------------------------------------------------------------ files

    def save_npz(self, path: str | os.PathLike) -> Path:
        """Write ``weights``, ``lengths`` and, when present, ``centres`` and ``labels`` to ``path`` (exactly that
        name) as an uncompressed ``.npz`` that :meth:`from_file` reads back unchanged, atomically (a reader or a kill
        mid-write finds the old file or the new one). Returns the path."""
        path = Path(path)
        arrays = {"weights": np.asarray(self.weights), "lengths": np.asarray(self.lengths)}
        if self.centres is not None:
            arrays["centres"] = np.asarray(self.centres)
        if self.labels is not None:
            arrays["labels"] = np.array(self.labels, dtype=str)
        return files.write_npz(path, arrays)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the connectome to ``path``, the format chosen by its suffix, so that :meth:`from_file` reads it back
        exactly (same values, same labels):

        - ``.npz``: :meth:`save_npz`;
        - ``.zip``: a TVB connectivity zip (``weights.txt``, ``tract_lengths.txt``, ``centres.txt``), as the
          ``connectivity_*.zip`` files of ``tvb-data``: :meth:`save_tvb`;
        - no suffix (or an existing folder): the same TVB text files in that folder.

        Returns the path.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".npz":
            return self.save_npz(path)
        if suffix == ".zip" or suffix == "" or path.is_dir():
            return self.save_tvb(path)
        raise ValueError(
            f"Connectome.save: cannot tell the format from {path}; use a .npz or .zip path, or a folder (no suffix) "
            "for TVB text files."
        )

    def save_tvb(self, path: str | os.PathLike) -> Path:
        """Write TVB's connectivity format: a ``.zip`` at ``path``, or text files in the folder ``path``.

        ``weights.txt`` and ``tract_lengths.txt`` hold the matrices, one row per line, as stored (row = target,
        column = source); ``centres.txt`` one line ``label x y z`` per region (mm) when there are centres (without
        labels: ``x y z``). Numbers are written as the shortest decimal that reads back to the same float, so
        :meth:`from_file` returns identical arrays. TVB keeps labels only in ``centres.txt``: labels without centres
        are not written (a warning says so); whitespace inside a label is replaced by ``_`` (TVB's rows are split
        on whitespace), also with a warning. Each file is written atomically (a zip as a whole). Returns the path.
        """
        import warnings

        path = Path(path)
        texts = {
            "weights.txt": _matrix_text(np.asarray(self.weights)),
            "tract_lengths.txt": _matrix_text(np.asarray(self.lengths)),
        }
        labels = self.labels
        if labels is not None:
            clean = tuple("_".join(s.split()) or "_" for s in labels)
            if clean != labels:
                warnings.warn(
                    "Connectome.save_tvb: whitespace in region labels replaced by '_' (TVB's centres.txt is split "
                    "on whitespace).",
                    stacklevel=2,
                )
            labels = clean
        if self.centres is not None:
            xyz = np.asarray(self.centres, dtype=np.float64)
            rows = [" ".join(repr(float(v)) for v in row) for row in xyz]
            if labels is not None:
                rows = [f"{lab} {r}" for lab, r in zip(labels, rows, strict=True)]
            texts["centres.txt"] = "\n".join(rows) + "\n"
        elif labels is not None:
            warnings.warn(
                "Connectome.save_tvb: the labels are not written: TVB's format keeps them in centres.txt, and this "
                "connectome has no centres; use .npz to keep them.",
                stacklevel=2,
            )
        if path.suffix.lower() == ".zip":
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for name, text in texts.items():
                    zf.writestr(name, text)
            return files.write_bytes(path, buf.getvalue())
        if path.exists() and not path.is_dir():
            raise ValueError(f"Connectome.save_tvb: {path} exists and is not a folder.")
        for name, text in texts.items():
            files.write_text(path / name, text)
        return path

    @classmethod
    def from_parcellation(
        cls,
        parcellation: Any,
        lut: Any = None,
        *,
        regions: Sequence[int] | None = None,
        lengths: str = "zero",
    ) -> Connectome:
        """The regions of a parcellation without connections: zero weights, region centres (centroids, world mm)
        and labels (names from ``lut``, else the integer labels).

        `parcellation` is an integer label image (path or nibabel image); `lut` a FreeSurfer ``LUT.txt``, a
        two-column TSV or a ``{label: name}`` mapping; `regions` the labels that are regions, in order; `lengths`
        ``"zero"`` or ``"euclidean"`` (distances between centres, mm). Region volumes (mm^3) and voxel counts are
        on :class:`vbtjax.structural.Parcellation` (``Parcellation.load(parcellation, lut).volumes``).
        """
        parc = LabelImage.load(parcellation, lut, regions=regions)
        n = parc.n_regions
        if lengths == "zero":
            ln = np.zeros((n, n))
        elif lengths == "euclidean":
            ln = np.linalg.norm(parc.centres[:, None, :] - parc.centres[None, :, :], axis=-1)
        else:
            raise ValueError(f"Parcellation.to_connectome: lengths={lengths!r}; use 'zero' or 'euclidean'.")
        return cls(weights=np.zeros((n, n)), lengths=ln, centres=parc.centres, labels=parc.names)

    @classmethod
    def from_tractogram(
        cls,
        tractogram: Any,
        parcellation: Any,
        *,
        lut: Any = None,
        regions: Sequence[int] | None = None,
        radius: float | None = None,
        min_length: float = 0.0,
        normalise: str = "none",
        lengths: str = "mean",
        directed: bool = False,
        self_connections: str = "drop",
        return_report: bool = False,
    ) -> Connectome | tuple[Connectome, Any]:
        """A person's connectome from a tractogram and a parcellation: weights = streamline counts between regions,
        tract lengths = their mean (or median) length in mm, centres and labels from the parcellation.

        The arguments are those of :func:`vbtjax.structural.build_connectome` (`radius` in mm defaults to
        :data:`vbtjax.structural.DEFAULT_RADIUS`). With ``return_report=True`` returns ``(connectome, report)``,
        the :class:`~vbtjax.structural.TractogramReport` counting the streamlines left out (too short, outside the
        image, unassigned end points, self-connections); without it, a warning gives the counts whenever
        streamlines were left out.
        """
        m = map_tractogram(
            tractogram,
            parcellation,
            lut=lut,
            regions=regions,
            radius=DEFAULT_RADIUS if radius is None else radius,
            min_length=min_length,
            normalise=normalise,
            lengths=lengths,
            directed=directed,
            self_connections=self_connections,
        )
        conn = cls(weights=m.weights, lengths=m.lengths, centres=m.parcellation.centres, labels=m.parcellation.names)
        if return_report:
            return conn, m.report
        if m.report.n_dropped:
            warnings.warn(
                f"Connectome.from_tractogram: {m.report.summary()}. Pass return_report=True for the report.",
                stacklevel=2,
            )
        return conn

    @classmethod
    def from_tvb(cls, connectivity: Any) -> Connectome:
        """From a TVB ``Connectivity`` object (weights, tract lengths in mm, centres, labels; TVB need not be
        installed to read one); unset or mis-shaped centres and labels are left out. A TVB connectivity's ``speed``
        (mm/ms) belongs to the simulation: pass it to :class:`~vbtjax.Network`."""
        return cls(**connectivity_arrays(connectivity))

    def to_tvb(self, speed: float | None = None) -> Any:
        """A configured TVB ``Connectivity`` (needs ``tvb-library``), with `speed` in mm/ms if given."""
        return tvb_connectivity(self.weights, self.lengths, self.centres, self.labels, speed)

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike,
        *,
        lengths: str | os.PathLike | None = None,
        weights_key: str | None = None,
        lengths_key: str | None = None,
    ) -> Connectome:
        """Read a connectome from ``path``.

        Supported (chosen by what ``path`` is):

        - a TVB connectivity **zip** or **folder** holding ``weights.txt``, ``tract_lengths.txt`` and optionally
          ``centres.txt`` (rows ``label x y z``); members may be ``.bz2``-compressed and may sit in one subfolder;
        - **.npz** with ``weights`` and ``lengths`` (or ``tract_lengths``), optional ``centres``, ``labels``;
        - MATLAB **.mat** (read with ``scipy.io.loadmat``) with weights under ``weights``/``sc``/``SC``/``W``/... and
          lengths under ``tract_lengths``/``lengths``/``len``/... (names matched case-insensitively);
        - a plain matrix file (**.csv**, **.txt**, **.tsv**, **.dat**, optionally ``.bz2``; or **.npy**) of weights,
          with comma or whitespace delimiters; its lengths must be given with ``lengths=``.

        **Arguments:**

        - `lengths`: a separate file with the tract lengths (mm): a matrix file as above, a ``.npy``, or a ``.mat``
          /``.npz`` (a known name, or its only variable). Overrides lengths found in ``path``.
        - `weights_key`, `lengths_key`: variable names to use in ``.mat``/``.npz`` files instead of the known ones.

        Raises ``FileNotFoundError`` for a missing path, and :class:`vbtjax.files.FileReadError` (a ``ValueError``)
        naming the file for anything else: an unreadable, corrupt or truncated file, a member or array over the size
        limits (checked before decompressing), missing variables, and values the constructor refuses. Only the
        members and variables used are decompressed.
        """
        path = Path(path)
        _require_exists(path)
        where = f"Connectome.from_file: {path}"
        centres = labels = None
        if path.is_dir() or path.suffix.lower() == ".zip":
            with _TvbFiles(path) as tvb:
                w = tvb.matrix("weights")
                ln = tvb.matrix("tract_lengths") if lengths is None else None
                centres, labels = tvb.centres()
        elif path.suffix.lower() in (".npz", ".mat"):
            variables = read_variables(path, where)
            single = lengths is not None
            w = _pick(variables, path, "weights", weights_key, _WEIGHT_NAMES, single_ok=single)
            ln = None
            if lengths is None:
                ln = _pick(variables, path, "lengths", lengths_key, _LENGTH_NAMES, single_ok=False, hint=True)
            c = _find(variables, _CENTRE_NAMES)
            centres = None if c is None else real_array(variables[c], f"{where}: centres {c!r}")
            lab = _find(variables, _LABEL_NAMES)
            labels = None if lab is None else _labels_from(variables[lab], strip=path.suffix.lower() == ".mat")
        elif is_matrix_file(path):
            if lengths is None:
                raise ValueError(
                    f"Connectome.from_file: {path} holds one matrix (the weights); give the tract lengths with "
                    f"lengths=PATH, e.g. Connectome.from_file({str(path)!r}, lengths='lengths{path.suffix}')."
                )
            w = read_matrix_file(path, where)
            ln = None
        else:
            raise ValueError(
                f"Connectome.from_file: cannot tell the format of {path}; expected a TVB .zip or folder, .npz, .mat, "
                "or a matrix file (.csv, .txt, .tsv, .dat, .npy) with lengths=PATH."
            )
        if lengths is not None:
            ln = _read_lengths_file(Path(lengths), lengths_key)
            where += f" (lengths: {lengths})"
        try:
            return cls(weights=w, lengths=ln, centres=centres, labels=labels)
        except ValueError as e:
            raise FileReadError(f"{where}: {e}") from None


def _preview(labels: Sequence[str], k: int = 8) -> str:
    """The first `k` labels, quoted, for error messages."""
    shown = ", ".join(map(repr, labels[:k]))
    return shown + (f", ... ({len(labels)} in all)" if len(labels) > k else "")


# ---------------------------------------------------------------------- writers


def _matrix_text(m: np.ndarray) -> str:
    """Rows of shortest round-trip decimals (``repr`` of float64), space separated."""
    m = np.asarray(m, dtype=np.float64)
    return "\n".join(" ".join(repr(v) for v in row) for row in m.tolist()) + "\n"


# ---------------------------------------------------------------------- readers (numpy, outside of any trace)


def _require_exists(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"Connectome.from_file: {path} does not exist.")


def _read_lengths_file(path: Path, key: str | None) -> np.ndarray:
    _require_exists(path)
    if path.suffix.lower() in (".mat", ".npz"):
        variables = read_variables(path, f"Connectome.from_file: {path}")
        return _pick(variables, path, "lengths", key, _LENGTH_NAMES, single_ok=True)
    if is_matrix_file(path):
        return read_matrix_file(path, f"Connectome.from_file: {path}")
    raise ValueError(
        f"Connectome.from_file: cannot tell the format of lengths file {path}; expected .csv, .txt, .tsv, .dat, "
        ".npy, .mat or .npz."
    )


def _labels_from(value: Any, strip: bool) -> list[str]:
    """Region names from an .npz string array (kept exactly) or a MATLAB char/cell array (padding stripped)."""
    out = []
    for v in np.asarray(value, dtype=object).ravel():
        while isinstance(v, np.ndarray) and v.size == 1:  # MATLAB cells hold 1-element arrays
            v = v.ravel()[0]
        v = v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
        out.append(v.strip() if strip else v)
    return out


def _find(variables: Mapping[str, Any], names: Sequence[str]) -> str | None:
    """The name of the first variable matching one of `names` (case-insensitive), or None."""
    lower = {k.lower(): k for k in variables}
    return next((lower[name] for name in names if name in lower), None)


def _pick(
    variables: Mapping[str, Any],
    path: Path,
    role: str,
    key: str | None,
    names: Sequence[str],
    *,
    single_ok: bool,
    hint: bool = False,
) -> np.ndarray:
    """The ``role`` matrix: ``variables[key]``, else the first known name, else the only variable when allowed."""
    found = ", ".join(sorted(variables)) or "none"
    if key is not None:
        if key not in variables:
            raise FileReadError(f"Connectome.from_file: {path} has no variable {key!r} for the {role}; found: {found}.")
    else:
        key = _find(variables, names)
        if key is None and single_ok and len(variables) == 1:
            key = next(iter(variables))
        if key is None:
            extra = " or give the lengths file with lengths=PATH" if hint else ""
            raise FileReadError(
                f"Connectome.from_file: {path} has no {role}; looked for variables {', '.join(names)} "
                f"(any case), found: {found}. Name it with {role}_key='NAME'{extra}."
            )
    return real_array(variables[key], f"Connectome.from_file: {path}: the {role} ({key!r})")


class _TvbFiles:
    """The files of a TVB connectivity zip or folder, found by base name (``weights.txt`` or ``weights.txt.bz2``)
    at the top level or, failing that, in a subfolder. Only the files used are read (and decompressed), each within
    the text size limit."""

    def __init__(self, path: Path):
        self.path = path
        what = f"Connectome.from_file: {path}"
        self.files = FolderFiles(path, what, depth=2) if path.is_dir() else ZipArchive(path, what)
        self.names = self.files.names

    def __enter__(self) -> _TvbFiles:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.files.close()

    def _text(self, stem: str) -> str | None:
        for base in (f"{stem}.txt", f"{stem}.txt.bz2"):
            matches = [n for n in self.names if n.rsplit("/", 1)[-1].lower() == base]
            if not matches:
                continue
            depth = min(n.count("/") for n in matches)
            matches = [n for n in matches if n.count("/") == depth]
            if len(matches) > 1:
                raise FileReadError(
                    f"Connectome.from_file: {self.path} holds several {base} files ({', '.join(matches)}); "
                    "point from_file at the folder of the one you want."
                )
            source = f"Connectome.from_file: {matches[0]} in {self.path}"
            data = self.files.read(matches[0])
            if base.endswith(".bz2"):
                data = bunzip(data, source)
            return decode_utf8(data, source)
        return None

    def matrix(self, stem: str) -> np.ndarray:
        text = self._text(stem)
        if text is None:
            raise FileReadError(
                f"Connectome.from_file: {self.path} has no {stem}.txt (or {stem}.txt.bz2); a TVB connectivity needs "
                f"weights.txt and tract_lengths.txt. Found: {', '.join(self.names) or 'nothing'}."
            )
        return parse_matrix(text, f"Connectome.from_file: {stem}.txt in {self.path}")

    def centres(self) -> tuple[np.ndarray | None, list[str] | None]:
        """Centres ``(N, 3)`` mm and labels from rows ``label x y z [ignored ...]`` (or ``x y z``); else Nones."""
        text = self._text("centres")
        if text is None:
            text = self._text("centers")
        if text is None:
            return None, None
        rows = [line.split() for line in text.splitlines() if line.strip()]
        labelled = all(len(r) >= 4 for r in rows)
        try:
            xyz = np.array([[float(v) for v in (r[1:4] if labelled else r[:3])] for r in rows])
        except (ValueError, IndexError):
            raise FileReadError(
                f"Connectome.from_file: could not read centres.txt in {self.path}; expected rows 'label x y z'."
            ) from None
        return xyz, ([r[0] for r in rows] if labelled else None)
