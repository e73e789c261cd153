"""A subject's resting-state data: structural connectome and functional connectivity (FC), from files or embedded.

:class:`RestingStateData` holds what a resting-state personalisation needs: the connectome (structural weights as
given, tract lengths in mm), the empirical FC (Pearson correlation of the region BOLD series), the repetition time
(ms) and the number of volumes behind the FC. It is read from the files people have
(:meth:`RestingStateData.from_files`: ``.mat``, ``.npy``, ``.npz``, ``.csv``/``.tsv``/``.txt``, or a 4-D NIfTI
with a parcellation through nilearn) or loaded from the subject embedded in the package
(:func:`vbtjax.datasets.hcp_subject`). :func:`read_bold` reads a region series of any region count and layout;
:func:`file_tr` finds the repetition time a file states (NIfTI header, BIDS sidecar); :meth:`RestingStateData.split`
cuts a recording in two for held-out scoring.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

import equinox as eqx
import numpy as np
from jaxtyping import Array, Float

from .._params import as_float_array
from ..files import FileReadError
from ._readers import (
    decode_utf8,
    is_matrix_file,
    parse_matrix,
    read_file,
    read_matrix_file,
    read_variables,
    real_array,
)
from .connectome import Connectome

__all__ = ["BOLD_LAYOUTS", "RestingStateData", "file_tr", "orient_bold", "read_bold", "read_matrix"]

BOLD_LAYOUTS = ("auto", "regions-time", "time-regions")
"""How a BOLD matrix is laid out: ``"regions-time"`` (``(N, T)``, e.g. HCP's ``tc``), ``"time-regions"`` (``(T, N)``,
e.g. nilearn's and fMRIPrep's tables) or ``"auto"``: told apart by the connectome's region count ``N``."""

NIFTI_SUFFIXES = (".nii", ".nii.gz")

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


def _numeric_line(line: str) -> bool:
    try:
        [float(t) for t in line.replace(",", " ").split()]
    except ValueError:
        return False
    return True


def _read_table(path: Path, what: str) -> np.ndarray:
    """A matrix from a delimited text file whose first line may be a header (region names, as nilearn and fMRIPrep
    write); ``.npy``, ``.mat``, ``.npz`` and ``.bz2`` text go through :func:`read_matrix`."""
    if not path.name.lower().endswith((".csv", ".tsv", ".txt", ".dat")):
        return read_matrix(path, _BOLD_NAMES, what)
    text = decode_utf8(read_file(path, f"{what}: {path}"), f"{what}: {path}")
    first, _, rest = text.lstrip().partition("\n")
    if first.strip() and not _numeric_line(first):
        text = rest  # a header row
    m = parse_matrix(text, f"{what}: {path}")
    if m.ndim != 2 or m.size == 0:
        raise FileReadError(f"{what}: {path} holds no numeric matrix.")
    return m


def orient_bold(series: np.ndarray, n_regions: int, layout: str = "auto", what: str = "bold") -> np.ndarray:
    """A BOLD matrix as ``(N, T)`` (region x time) for a connectome of ``n_regions`` regions.

    `layout` is one of :data:`BOLD_LAYOUTS`. With ``"auto"`` the axis of length ``n_regions`` is the regions: a
    ``(N, T)`` matrix is kept, a ``(T, N)`` one transposed; a square ``(N, N)`` series (as many volumes as regions)
    is ambiguous and raises, asking for the layout. ``what`` names the argument in errors."""
    m = np.asarray(series, dtype=float)
    n = int(n_regions)
    if layout not in BOLD_LAYOUTS:
        raise ValueError(f"{what}: layout {layout!r} is not one of {', '.join(BOLD_LAYOUTS)}.")
    if m.ndim != 2:
        raise ValueError(f"{what}: the series has shape {m.shape}; expected a 2-D matrix (regions x time).")
    if layout == "auto":
        rows, cols = m.shape[0] == n, m.shape[1] == n
        if rows and cols:
            raise ValueError(
                f"{what}: the series is {n} x {n}, as many volumes as regions, so its layout cannot be told from the "
                "connectome's region count; state it: layout='regions-time' or 'time-regions' (--bold-layout)."
            )
        if not (rows or cols):
            raise ValueError(
                f"{what}: the series has shape {m.shape} but the connectome has {n} regions; expected ({n}, T) or "
                f"(T, {n}) (the same regions, in the same order, as the structural matrices)."
            )
        layout = "regions-time" if rows else "time-regions"
    m = m if layout == "regions-time" else m.T
    if m.shape[0] != n:
        raise ValueError(
            f"{what}: read as {layout}, the series has {m.shape[0]} regions but the connectome has {n}; check the "
            "layout (--bold-layout) and that the files are of the same parcellation."
        )
    return m


def _is_nifti(path: Path) -> bool:
    return path.name.lower().endswith(NIFTI_SUFFIXES)


def _sidecar(path: Path) -> Path:
    """The BIDS sidecar of ``path``: the same name with ``.json`` for its extension(s)."""
    name = path.name
    for suffix in (".nii.gz", ".nii", ".tsv.gz", ".tsv", ".csv", ".npy", ".mat", ".txt"):
        if name.lower().endswith(suffix):
            return path.with_name(name[: -len(suffix)] + ".json")
    return path.with_suffix(".json")


_TIME_UNITS_MS = {"sec": 1000.0, "msec": 1.0, "usec": 1e-3}


def file_tr(path: str | os.PathLike) -> tuple[float | None, str]:
    """The repetition time (ms) that a BOLD file states, and where it was found.

    Looked up, in order: the BIDS sidecar beside the file (``X_bold.json`` for ``X_bold.nii.gz``, ``X.json`` for
    ``X.tsv``): ``RepetitionTime`` in s, or ``SamplingFrequency`` in Hz; then, for a NIfTI, the header's
    ``pixdim[4]`` in the time unit of ``xyzt_units`` (s, ms or us; a header with no time unit states nothing).
    Returns ``(None, reason)`` when no TR is stated."""
    path = Path(path)
    side = _sidecar(path)
    if side.is_file():
        meta = json.loads(decode_utf8(read_file(side, f"bold sidecar: {side}"), f"bold sidecar: {side}"))
        if isinstance(meta, dict):
            if isinstance(meta.get("RepetitionTime"), int | float) and meta["RepetitionTime"] > 0:
                return 1000.0 * float(meta["RepetitionTime"]), f"RepetitionTime in {side.name}"
            if isinstance(meta.get("SamplingFrequency"), int | float) and meta["SamplingFrequency"] > 0:
                return 1000.0 / float(meta["SamplingFrequency"]), f"SamplingFrequency in {side.name}"
    if not _is_nifti(path):
        return None, f"no sidecar {side.name} with RepetitionTime"
    import nibabel

    try:
        header = nibabel.load(path).header
        zooms, units = header.get_zooms(), header.get_xyzt_units()[1]
    except Exception as e:  # nibabel raises its own ImageFileError and others for damaged files
        raise FileReadError(f"bold: {path} is not a readable NIfTI image: {e}") from None
    if len(zooms) < 4:
        raise FileReadError(f"bold: {path} is a {len(zooms)}-D image; expected a 4-D BOLD series (x, y, z, time).")
    scale = _TIME_UNITS_MS.get(units)
    if scale is None or not (math.isfinite(zooms[3]) and zooms[3] > 0):
        return None, f"the header of {path.name} has pixdim[4] = {zooms[3]:g} with time unit {units!r}"
    return float(zooms[3]) * scale, f"the NIfTI header of {path.name} (pixdim[4] = {zooms[3]:g} {units})"


def _read_confounds(path: Path, columns: tuple[str, ...] | None) -> np.ndarray:
    """Confound regressors ``(T, K)`` from a table with a header row (e.g. fMRIPrep's ``*_desc-confounds_timeseries
    .tsv``; ``n/a`` read as 0, as in the first row of derivatives) or an ``.npy``."""
    if path.suffix.lower() == ".npy":
        if columns:
            raise ValueError(f"confound_columns: {path} is an .npy without column names; leave out confound_columns.")
        m = read_matrix(path, (), "confounds")
    else:
        import pandas

        try:
            table = pandas.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",", na_values=["n/a"])
        except (ValueError, OSError) as e:
            raise FileReadError(f"confounds: {path} is not a table with a header row: {e}") from None
        if columns:
            missing = [c for c in columns if c not in table.columns]
            if missing:
                raise ValueError(
                    f"confound_columns: {missing} not in {path.name}; it has {', '.join(map(str, table.columns[:20]))}"
                    + (" ..." if len(table.columns) > 20 else "")
                )
            table = table[list(columns)]
        m = table.fillna(0.0).to_numpy(dtype=float)
    return m if m.ndim == 2 else m[:, None]


def _nifti_series(path, parcellation, tr, confounds, confound_columns, high_pass, low_pass) -> np.ndarray:
    """``(T, R)`` region-mean series of a 4-D NIfTI in the label image ``parcellation`` (nilearn)."""
    try:
        from nilearn.maskers import NiftiLabelsMasker
    except ImportError:
        raise ImportError(
            f"bold: reading the NIfTI image {path} needs nilearn, an optional dependency: pip install 'vbtjax[nifti]' "
            "(or pip install nilearn); or give the region series as .npy, .csv/.tsv or .mat."
        ) from None
    if parcellation is None:
        raise ValueError(
            f"parcellation: the 4-D NIfTI {path} needs a parcellation (a label image: 0 background, one integer per "
            "region, the regions in increasing label order as in the structural matrices)."
        )
    if (high_pass or low_pass) and tr is None:
        raise ValueError("tr: band-pass filtering (high_pass, low_pass) needs the repetition time.")
    conf = None if confounds is None else _read_confounds(Path(confounds), confound_columns)
    masker = NiftiLabelsMasker(
        labels_img=str(parcellation),
        t_r=None if tr is None else tr / 1000.0,
        high_pass=high_pass,
        low_pass=low_pass,
        detrend=False,
        standardize=None,  # no standardisation (nilearn >= 0.14; boolean values are deprecated)
    )
    try:
        return np.asarray(masker.fit_transform(str(path), confounds=conf), dtype=float)
    except Exception as e:  # nilearn's and nibabel's errors for images that do not fit together
        msg = f"bold: nilearn could not extract the region series of {path} in {parcellation}: {e}"
        raise FileReadError(msg) from e


def read_bold(
    path: str | os.PathLike,
    n_regions: int,
    *,
    layout: str = "auto",
    tr: float | None = None,
    parcellation: str | os.PathLike | None = None,
    confounds: str | os.PathLike | None = None,
    confound_columns: tuple[str, ...] | None = None,
    high_pass: float | None = None,
    low_pass: float | None = None,
) -> np.ndarray:
    """A BOLD series as ``(N, T)`` for a connectome of ``n_regions`` regions.

    **Arguments:**
    - `path`: ``.mat`` (``tc``, ``bold``, ``ts``, ... or its only variable), ``.npy``, ``.npz``, ``.csv``/``.tsv``/
      ``.txt`` (an optional header row of names is skipped), or a 4-D NIfTI (``.nii``, ``.nii.gz``).
    - `layout`: one of :data:`BOLD_LAYOUTS` (default ``"auto"``, see :func:`orient_bold`).
    - For a NIfTI only, through nilearn's ``NiftiLabelsMasker`` (the mean of each label's voxels):
      `parcellation` (label image, 0 background, the regions in increasing label order, resampled to the BOLD
      image), `confounds` (a ``.tsv``/``.csv`` with a header, e.g. fMRIPrep's, or an ``.npy``; ``(T, K)``
      regressed out) with `confound_columns` (names to keep; default all), `high_pass` and `low_pass` (Hz,
      Butterworth band-pass; need `tr`, ms). No detrending or standardisation beyond these.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"bold: {path} does not exist.")
    if _is_nifti(path):
        series = _nifti_series(path, parcellation, tr, confounds, confound_columns, high_pass, low_pass)
        if series.shape[1] != n_regions:
            raise ValueError(
                f"parcellation: {parcellation} gave {series.shape[1]} regions but the connectome has {n_regions}; "
                "use the parcellation of the structural matrices."
            )
        return series.T
    given = [k for k, v in (("parcellation", parcellation), ("confounds", confounds), ("high_pass", high_pass),
                            ("low_pass", low_pass)) if v is not None]  # fmt: skip
    if given:
        raise ValueError(
            f"{given[0]}: applies to a 4-D NIfTI bold only; {path.name} is a region series already (clean it first)."
        )
    return orient_bold(_read_table(path, "bold"), n_regions, layout)


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

    def split(self, fraction: float = 0.5) -> tuple[RestingStateData, RestingStateData]:
        """The recording cut in two in time: the first ``round(fraction T)`` volumes and the rest, each with its own
        FC, for fitting on one part and scoring on the other (``fit_fc(..., holdout="half")``). Needs `bold`."""
        if self.bold is None:
            raise ValueError(
                f"RestingStateData.split: {self.name} has an FC but no BOLD series to split (as the embedded subject); "
                "read the subject with bold= (a region x time series) to hold out part of the recording."
            )
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"RestingStateData.split: fraction must be in (0, 1), got {fraction!r}.")
        bold = np.asarray(self.bold)
        t = bold.shape[1]
        n1 = int(round(fraction * t))
        if min(n1, t - n1) < 3:
            raise ValueError(f"RestingStateData.split: {t} volumes are too few to split at {fraction}: >= 3 per part.")
        first = RestingStateData.from_bold(self.connectome, bold[:, :n1], self.tr, f"{self.name} (volumes 1-{n1})")
        rest = RestingStateData.from_bold(self.connectome, bold[:, n1:], self.tr, f"{self.name} (volumes {n1 + 1}-{t})")
        return first, rest

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
        bold_layout: str = "auto",
        parcellation: str | os.PathLike | None = None,
        confounds: str | os.PathLike | None = None,
        confound_columns: tuple[str, ...] | None = None,
        high_pass: float | None = None,
        low_pass: float | None = None,
    ) -> RestingStateData:
        """Read a subject from files, of any region count ``N``.

        **Arguments:**
        - `sc`: structural weights (``.mat`` e.g. HCP's ``DTI_CM.mat`` with ``sc``, ``.npy``, ``.csv``/``.txt``,
          ``.npz``), ``(N, N)``.
        - `lengths`: tract lengths in mm, same formats (e.g. ``DTI_LEN.mat`` with ``len``).
        - `bold`: BOLD series: ``(N, T)`` or ``(T, N)`` in ``.mat``/``.npy``/``.csv``/``.tsv`` (e.g. HCP's
          ``TC_rsfMRI_REST1_LR.mat`` with ``tc``; layout by `bold_layout`, see :func:`orient_bold`), or a 4-D NIfTI
          with `parcellation`, `confounds`, `confound_columns`, `high_pass`, `low_pass` (see :func:`read_bold`); or
        - `fc`: an empirical FC matrix ``(N, N)`` instead, with `n_samples` the number of volumes behind it.
        - `tr`: repetition time in **ms** (e.g. 720.0). Without it, the TR the bold file states (BIDS sidecar,
          NIfTI header: :func:`file_tr`); a given `tr` that differs from the file's by more than 0.1 % warns and is
          used.
        """
        if (bold is None) == (fc is None):
            raise ValueError("RestingStateData.from_files: give exactly one of bold= (region x time) or fc= (N x N).")
        if bold is not None and Path(bold).exists():
            stated, source = file_tr(bold)
            if tr is None:
                tr = stated
            elif stated is not None and abs(stated - tr) > 1e-3 * stated:
                warnings.warn(
                    f"RestingStateData.from_files: the given tr = {tr:g} ms differs from the {stated:g} ms stated by "
                    f"{source}; using the given {tr:g} ms.",
                    UserWarning,
                    stacklevel=2,
                )
        if tr is None:
            where = f" ({source})" if bold is not None and Path(bold).exists() else ""
            raise ValueError(
                f"RestingStateData.from_files: give the repetition time tr (ms), e.g. tr=720.0; the files state none"
                f"{where}."
            )
        sc = Path(sc)
        conn = Connectome.from_file(sc, lengths=lengths)
        label = name or sc.stem
        if bold is not None:
            series = read_bold(
                bold,
                conn.n_regions,
                layout=bold_layout,
                tr=float(tr),
                parcellation=parcellation,
                confounds=confounds,
                confound_columns=confound_columns,
                high_pass=high_pass,
                low_pass=low_pass,
            )
            return cls.from_bold(conn, series, tr, name=label)
        m = read_matrix(fc, _FC_NAMES, "fc")
        if n_samples is None:
            raise ValueError("RestingStateData.from_files: with fc=, also give n_samples (BOLD volumes behind it).")
        return cls(conn, m, float(tr), int(n_samples), name=label)
