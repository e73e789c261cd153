"""A subject's resting-state data: structural connectome and functional connectivity (FC), from files or embedded.

:class:`RestingStateData` holds what a resting-state personalisation needs: the connectome (structural weights as
given, tract lengths in mm), the empirical FC (Pearson correlation of the region BOLD series), the repetition time
(ms) and the number of volumes behind the FC. It is read from the files people have
(:meth:`RestingStateData.from_files`: ``.mat``, ``.npy``, ``.npz``, ``.csv``/``.txt``) or loaded from the subject
embedded in the package (:func:`vbtjax.datasets.hcp_subject`).
"""

from __future__ import annotations

import os
from pathlib import Path

import equinox as eqx
import numpy as np
from jaxtyping import Array, Float

from .._params import as_float_array
from ..files import FileReadError
from ._readers import is_matrix_file, read_matrix_file, read_variables, real_array
from .connectome import Connectome

__all__ = ["RestingStateData", "read_matrix"]

_BOLD_NAMES = ("tc", "bold", "ts", "timeseries", "time_series", "data")
_FC_NAMES = ("fc", "fc_matrix", "corr", "correlation")


def read_matrix(path: str | os.PathLike, names: tuple[str, ...] = (), what: str = "matrix") -> np.ndarray:
    """One 2-D float array from ``path``: ``.npy``, a delimited text file (``.csv``, ``.txt``, ``.tsv``, ``.dat``,
    optionally ``.bz2``), or a ``.mat``/``.npz`` holding it under one of ``names`` (case-insensitive) or as its only
    variable. ``what`` names the array in error messages. Damaged, hostile or non-numeric (complex too) files raise
    :class:`vbtjax.files.FileReadError` naming the file; only the variable used is decompressed."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what}: {path} does not exist.")
    if path.suffix.lower() in (".mat", ".npz"):
        variables = read_variables(path, f"{what}: {path}")
        lower = {k.lower(): k for k in variables}
        key = next((lower[n] for n in names if n in lower), None)
        if key is None and len(variables) == 1:
            key = next(iter(variables))
        if key is None:
            raise FileReadError(
                f"{what}: {path} holds {sorted(variables)}; expected one variable or one named "
                f"{', '.join(names) or 'anything'}."
            )
        m = real_array(variables[key], f"{what}: {path}: variable {key!r}")
    elif is_matrix_file(path):
        m = read_matrix_file(path, f"{what}: {path}")
    else:
        raise ValueError(f"{what}: cannot tell the format of {path}; expected .mat, .npz, .npy, .csv, .txt or .tsv.")
    if m.ndim != 2:
        raise FileReadError(f"{what}: {path} holds an array of shape {m.shape}; expected a 2-D matrix.")
    return m


def _pearson_fc(bold: np.ndarray) -> np.ndarray:
    """FC of ``(N, T)`` region series: Pearson correlation between regions."""
    x = bold - bold.mean(axis=1, keepdims=True)
    sd = np.sqrt(np.sum(x * x, axis=1))
    return (x @ x.T) / np.outer(sd, sd)


class RestingStateData(eqx.Module):
    """A subject's structural connectome and resting-state functional connectivity.

    **Fields:**
    - `connectome`: :class:`~vbtjax.Connectome` with the structural weights as given (e.g. streamline counts;
      ``weights[i, j]`` from region ``j`` to ``i``) and tract lengths in mm.
    - `fc`: ``(N, N)`` empirical FC, the Pearson correlation of the region BOLD series.
    - `tr`: repetition time of the BOLD series, ms.
    - `n_samples`: number of BOLD volumes behind `fc`.
    - `bold`: the ``(N, T)`` BOLD series (region x time) when known, else None.
    - `name`: a label for reports (subject id or file name).
    """

    connectome: Connectome
    fc: Float[Array, "N N"] = eqx.field(converter=as_float_array)
    tr: float = eqx.field(static=True)
    n_samples: int = eqx.field(static=True)
    bold: Float[Array, "N T"] | None = None
    name: str = eqx.field(default="subject", static=True)

    def __check_init__(self):
        n = self.connectome.n_regions
        if self.fc.shape != (n, n):
            raise ValueError(
                f"RestingStateData: fc has shape {self.fc.shape} but the connectome has {n} regions; expected "
                f"({n}, {n}) (the same regions in the same order)."
            )
        fc = np.asarray(self.fc)
        if not np.all(np.isfinite(fc)):
            raise ValueError(
                "RestingStateData: fc contains NaN or inf (a constant BOLD series gives an undefined correlation); "
                "remove or fix the region."
            )
        if not (np.isfinite(self.tr) and self.tr > 0):
            raise ValueError(f"RestingStateData: tr must be a positive repetition time in ms, got {self.tr!r}.")
        if int(self.n_samples) < 3:
            raise ValueError(f"RestingStateData: n_samples must be >= 3 BOLD volumes, got {self.n_samples!r}.")

    @property
    def n_regions(self) -> int:
        """Number of regions ``N``."""
        return self.connectome.n_regions

    def sc_fc_correlation(self) -> float:
        """The structural baseline: Pearson correlation between the upper triangles of ``log1p(weights)`` and the FC.
        A fitted model should beat it."""
        iu = np.triu_indices(self.n_regions, 1)
        w = np.log1p(np.abs(np.asarray(self.connectome.weights)))
        return float(np.corrcoef(w[iu], np.asarray(self.fc)[iu])[0, 1])

    @classmethod
    def from_bold(cls, connectome: Connectome, bold: np.ndarray, tr: float, name: str = "subject") -> RestingStateData:
        """From a connectome and an ``(N, T)`` BOLD series (region x time) with repetition time ``tr`` in ms."""
        bold = np.asarray(bold, dtype=float)
        n = connectome.n_regions
        if bold.ndim != 2:
            raise ValueError(f"RestingStateData: bold has shape {bold.shape}; expected (regions, time) = ({n}, T).")
        if bold.shape[0] != n:
            if bold.shape[1] == n:
                raise ValueError(
                    f"RestingStateData: bold has shape {bold.shape}; expected (regions, time) = ({n}, T): it looks "
                    "like (time, regions), transpose it."
                )
            raise ValueError(
                f"RestingStateData: bold has {bold.shape[0]} rows but the connectome has {n} regions; expected "
                f"(regions, time) = ({n}, T)."
            )
        if not np.all(np.isfinite(bold)):
            raise ValueError("RestingStateData: bold contains NaN or inf; clean the series first.")
        flat = np.flatnonzero(np.std(bold, axis=1) == 0)
        if flat.size:
            raise ValueError(
                f"RestingStateData: the BOLD series of regions {flat.tolist()} are constant, so their FC is undefined."
            )
        return cls(connectome, _pearson_fc(bold), float(tr), int(bold.shape[1]), bold=bold, name=name)

    @classmethod
    def from_files(
        cls,
        sc: str | os.PathLike,
        lengths: str | os.PathLike,
        *,
        bold: str | os.PathLike | None = None,
        fc: str | os.PathLike | None = None,
        tr: float | None = None,
        n_samples: int | None = None,
        name: str | None = None,
    ) -> RestingStateData:
        """Read a subject from files.

        **Arguments:**
        - `sc`: structural weights (``.mat`` e.g. HCP's ``DTI_CM.mat`` with ``sc``, ``.npy``, ``.csv``/``.txt``,
          ``.npz``), ``(N, N)``.
        - `lengths`: tract lengths in mm, same formats (e.g. ``DTI_LEN.mat`` with ``len``).
        - `bold`: BOLD series, region x time ``(N, T)`` (e.g. HCP's ``TC_rsfMRI_REST1_LR.mat`` with ``tc``); or
        - `fc`: an empirical FC matrix ``(N, N)`` instead, with `n_samples` the number of volumes behind it.
        - `tr`: repetition time in **ms** (e.g. 720.0).
        """
        if (bold is None) == (fc is None):
            raise ValueError("RestingStateData.from_files: give exactly one of bold= (region x time) or fc= (N x N).")
        if tr is None:
            raise ValueError("RestingStateData.from_files: give the repetition time tr (ms), e.g. tr=720.0.")
        sc = Path(sc)
        conn = Connectome.from_file(sc, lengths=lengths)
        label = name or sc.stem
        if bold is not None:
            series = read_matrix(bold, _BOLD_NAMES, "bold")
            return cls.from_bold(conn, series, tr, name=label)
        m = read_matrix(fc, _FC_NAMES, "fc")
        if n_samples is None:
            raise ValueError("RestingStateData.from_files: with fc=, also give n_samples (BOLD volumes behind it).")
        return cls(conn, m, float(tr), int(n_samples), name=label)
