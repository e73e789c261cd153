"""Bounded readers for the input files of connectomes, sensors, tractograms and resting-state data.

Every reader here turns a damaged or hostile file into one :class:`~vbtjax.files.FileReadError` (a ``ValueError``)
whose message starts with `what` (the caller and the file, e.g. ``"Connectome.from_file: /data/c.zip"``) and says
what is wrong, and never holds more than a stated number of bytes in memory:

- :class:`FolderFiles` reads the files of a folder with the interface of :class:`vbtjax.files.ZipArchive` (which,
  with :func:`~vbtjax.files.bunzip` and :func:`~vbtjax.files.read_file`, is re-exported here);
- :func:`read_npy` checks an ``.npy`` header (no pickles; declared size within the limit and within the file)
  before reading the array;
- :func:`read_variables` gives the arrays of an ``.npz`` or MATLAB ``.mat`` file as a mapping that reads each one
  only when it is used;
- :func:`parse_matrix` and :func:`read_matrix_file` read one numeric matrix from text (``.csv``, ``.txt``, ...,
  optionally ``.bz2``) or ``.npy``; :func:`real_array` refuses complex and non-numeric values instead of dropping
  the imaginary part.
"""

from __future__ import annotations

import io
import math
import os
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..files import MAX_BYTES, TEXT_MAX_BYTES, FileReadError, ZipArchive, bunzip, npy_header, read_file, read_npz

__all__ = [
    "TEXT_MAX_BYTES",
    "FolderFiles",
    "ZipArchive",
    "bunzip",
    "is_matrix_file",
    "parse_matrix",
    "read_file",
    "read_matrix_file",
    "read_npy",
    "read_variables",
    "real_array",
]

MATRIX_SUFFIXES = (".csv", ".txt", ".tsv", ".dat", ".npy")


# ---------------------------------------------------------------------------------------------------- containers


class FolderFiles:
    """The files of a folder (and, with ``depth=2``, of its subfolders), read with :class:`ZipArchive`'s interface.
    `names` are relative POSIX paths."""

    def __init__(self, path: str | os.PathLike, what: str, depth: int = 1):
        self.path, self.what = Path(path), what
        found = list(self.path.glob("*")) + (list(self.path.glob("*/*")) if depth > 1 else [])
        self._files = {p.relative_to(self.path).as_posix(): p for p in found if p.is_file()}
        self.names = sorted(self._files)

    def __enter__(self) -> FolderFiles:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def close(self) -> None:
        pass

    def size(self, name: str) -> int:
        return int(self._files[name].stat().st_size)

    def read(self, name: str, max_bytes: int | None = None) -> bytes:
        return read_file(self._files[name], f"{self.what}: file {name!r}", max_bytes)


# ---------------------------------------------------------------------------------------------------- arrays


def real_array(value: Any, what: str) -> np.ndarray:
    """`value` as a float64 NumPy array, refusing complex values (whose imaginary part would be lost) and
    non-numeric ones with a :class:`FileReadError` naming `what`."""
    try:
        arr = np.asarray(value)
    except ValueError:
        raise FileReadError(f"{what} is not a rectangular numeric array.") from None
    if arr.dtype.kind == "c":
        raise FileReadError(f"{what} holds complex numbers ({arr.dtype}); give real values.")
    if arr.dtype.kind not in "biuf":
        raise FileReadError(f"{what} is not numeric (its values are of type {arr.dtype}).")
    return arr.astype(np.float64)


def read_npy(path: str | os.PathLike, what: str, max_bytes: int = MAX_BYTES) -> np.ndarray:
    """The array of an ``.npy`` file. Its header is read first: Python objects (pickles) are refused, and so are
    arrays declaring more than `max_bytes` or more data than the file holds, before anything is allocated."""
    try:
        with open(path, "rb") as f:
            shape, fortran, dtype, nbytes = npy_header(f, what, max_bytes)
            count = math.prod(shape)
            left = os.fstat(f.fileno()).st_size - f.tell()
            if nbytes > left:
                raise FileReadError(
                    f"{what} declares shape {shape} ({nbytes} bytes) but holds {left} bytes of data: truncated."
                )
            flat = np.fromfile(f, dtype=dtype, count=count) if count else np.zeros(0, dtype)
    except FileReadError:
        raise
    except (OSError, ValueError, EOFError) as e:
        raise FileReadError(f"{what} is not a readable .npy array ({type(e).__name__}: {e}).") from None
    return flat.reshape(shape, order="F" if fortran else "C")


class _Variables(Mapping):
    """A read-only mapping over the variable names ``_names`` of a file, each loaded by ``__getitem__`` when used."""

    _names: list[str]

    def __contains__(self, key: object) -> bool:
        return key in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


class _NpzVariables(_Variables):
    """The arrays of an ``.npz``, each read (by :func:`vbtjax.files.read_npz`) when first used."""

    def __init__(self, path: Path, what: str):
        self.path, self.what = path, what
        read_npz(path, keys=(), what=what)  # refuses a damaged, empty or non-zip file
        with zipfile.ZipFile(path) as zf:
            self._names = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
        self._cache: dict[str, np.ndarray] = {}

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._names:
            raise KeyError(key)
        if key not in self._cache:
            self._cache[key] = read_npz(self.path, keys=[key], what=self.what)[key]
        return self._cache[key]


class _MatVariables(_Variables):
    """The variables of a MATLAB ``.mat`` file (v4-v7.2), listed with ``scipy.io.whosmat`` (which reads headers
    only) and each loaded when first used; declared sizes over `max_bytes` are refused before loading."""

    def __init__(self, path: Path, what: str, max_bytes: int = MAX_BYTES):
        import scipy.io

        self.path, self.what = path, what
        try:
            listing = scipy.io.whosmat(path)
        except NotImplementedError:
            raise FileReadError(
                f"{what} is a MATLAB v7.3 (HDF5) file, which scipy cannot read; save it with save(..., '-v7') or "
                "convert it to .npz."
            ) from None
        except Exception as e:  # noqa: BLE001 - scipy raises many types for damaged files
            raise FileReadError(f"{what} is not a readable MATLAB .mat file ({type(e).__name__}: {e}).") from None
        for name, shape, _ in listing:
            nbytes = 8 * math.prod(shape)
            if nbytes > max_bytes:
                raise FileReadError(f"{what}: variable {name!r} declares shape {shape}, over the limit of {max_bytes}.")
        self._names = [name for name, _, _ in listing if not name.startswith("__")]
        self._cache: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key not in self._names:
            raise KeyError(key)
        if key not in self._cache:
            import scipy.io

            try:
                self._cache[key] = scipy.io.loadmat(self.path, variable_names=[key])[key]
            except Exception as e:  # noqa: BLE001 - as above
                raise FileReadError(
                    f"{self.what}: variable {key!r} cannot be read ({type(e).__name__}: {e})."
                ) from None
        return self._cache[key]


def read_variables(path: str | os.PathLike, what: str) -> Mapping[str, Any]:
    """The named arrays of an ``.npz`` or ``.mat`` file (MATLAB's ``__header__`` etc. left out), as a read-only
    mapping that reads each array when it is first used (unused ones are never decompressed)."""
    path = Path(path)
    if path.suffix.lower() == ".npz":
        return _NpzVariables(path, what)
    return _MatVariables(path, what)


# ---------------------------------------------------------------------------------------------------- matrices


def is_matrix_file(path: str | os.PathLike) -> bool:
    """Whether `path` names a one-matrix file: ``.csv``, ``.txt``, ``.tsv``, ``.dat`` (optionally ``.bz2``) or
    ``.npy``."""
    return Path(path).name.lower().removesuffix(".bz2").endswith(MATRIX_SUFFIXES)


def decode_utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FileReadError(f"{what} is not UTF-8 text (byte {e.start}); is it the right file?") from None


def parse_matrix(text: str, what: str) -> np.ndarray:
    """A float matrix from comma- or whitespace-separated text."""
    delimiter = "," if "," in text else None
    try:
        return np.loadtxt(io.StringIO(text), delimiter=delimiter, ndmin=2, dtype=float)
    except ValueError as e:
        raise FileReadError(f"{what} is not a numeric matrix (comma or whitespace separated): {e}") from None


def read_matrix_file(path: str | os.PathLike, what: str) -> np.ndarray:
    """One float matrix from a ``.npy`` or a delimited text file (optionally ``.bz2``)."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        return real_array(read_npy(path, what), what)
    data = read_file(path, what)
    if path.name.lower().endswith(".bz2"):
        data = bunzip(data, what)
    return parse_matrix(decode_utf8(data, what), what)
