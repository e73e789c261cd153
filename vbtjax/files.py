"""Safe files: atomic writes that never lose the old result, and bounded reads that refuse hostile files clearly.

Writing. :func:`write_bytes`, :func:`write_text`, :func:`write_json` and :func:`write_npz` write to a temporary name
in the target's folder and rename it over the target (``os.replace``, atomic on POSIX and Windows), so a reader or a
process killed at any moment sees the old file or the new one, never a part. Folders cannot be renamed over each
other atomically; :func:`replace_dir` swaps a finished folder in through two renames, and :func:`recover` (called
by the readers) completes or undoes a swap that a kill interrupted, so the old or the new folder is always found.

Reading. :func:`read_json`, :func:`read_npz`, :func:`read_file`, :func:`bunzip` and :class:`ZipArchive` turn every
way a damaged or hostile file can fail (bad UTF-8, truncated or corrupt deflate/bz2/lzma data, empty archives, JSON
nested 200 000 deep, arrays declaring 1e5 x 1e5 shapes, decompression bombs, members that forge their size) into one
:class:`FileReadError` that names the file and what is wrong, before any large allocation. Only the members asked
for are decompressed, and never past the size they declare.
"""

from __future__ import annotations

import bz2
import contextlib
import io
import json
import math
import os
import shutil
import struct
import uuid
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

__all__ = [
    "MAX_BYTES",
    "TEXT_MAX_BYTES",
    "FileReadError",
    "ZipArchive",
    "bunzip",
    "npy_header",
    "read_file",
    "read_json",
    "read_npz",
    "recover",
    "replace_dir",
    "replacing",
    "staging_dir",
    "write_bytes",
    "write_json",
    "write_npz",
    "write_text",
]

MAX_BYTES = 8 * 2**30
"""Default limit (bytes) on one decompressed array or JSON text: 8 GiB. Pass ``max_bytes=`` to change it."""

TEXT_MAX_BYTES = 256 * 2**20
"""Default limit (bytes) on one text file or archive member once decompressed: 256 MiB (a 1 000-region connectome's
``weights.txt`` is about 20 MB)."""

_OLD, _NEW, _TMP = ".old-", ".new-", ".tmp-"
_LOCAL_HEADER = 30  # bytes of a zip local file header before its name and extra field
_ERRORS = (zipfile.BadZipFile, EOFError, OSError, ValueError, RuntimeError, NotImplementedError, zlib.error)


class FileReadError(ValueError):
    """A file that cannot be read: missing, truncated, corrupt, of the wrong kind, or over a size limit. The message
    names the file and the reason."""


# ------------------------------------------------------------------------------------------------------- writing
def _tmp_name(path: Path, tag: str) -> Path:
    return path.with_name(f".{path.name}{tag}{os.getpid()}-{uuid.uuid4().hex[:12]}")


def _writer_alive(p: Path, tag: str) -> bool:
    """Whether the process that made the temporary `p` (its pid is in the name) still runs: its files are its own."""
    pid = p.name.rsplit(tag, 1)[-1].split("-", 1)[0]
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True  # another user's process, or a pid this platform cannot probe: leave its files alone
    return True


@contextlib.contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """``with replacing(path) as tmp: writer(tmp)``, for writers that take a path (netCDF, ``savefig``): `tmp` is a
    temporary name in the same folder with `path`'s suffix; it is flushed to disk and renamed over `path` when the
    block ends, and removed when it fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path, _TMP)
    tmp = tmp.with_name(tmp.name + path.suffix)  # writers such as np.savez and savefig go by the suffix
    try:
        yield tmp
        with open(tmp, "rb") as f:  # on disk before the rename: a crash cannot leave an empty file behind
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically (temporary file in the same folder, flushed, then renamed). Returns `path`."""
    with replacing(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 1) -> Path:
    """Write `obj` as JSON (UTF-8, NaN refused, newline at the end) to `path` atomically."""
    return write_text(path, json.dumps(obj, indent=indent, allow_nan=False) + "\n")


def write_npz(path: str | os.PathLike, arrays: Mapping[str, Any], compressed: bool = False) -> Path:
    """Write `arrays` as an ``.npz`` archive to `path` atomically (``np.savez``, or ``np.savez_compressed``)."""
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return write_bytes(path, buf.getvalue())


def staging_dir(path: str | os.PathLike) -> Path:
    """A new empty folder beside `path` in which to build the folder's next version; hand it to :func:`replace_dir`
    when complete (an unfinished one is removed by :func:`recover`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path, _TMP)
    tmp.mkdir()
    return tmp


def replace_dir(staged: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Make the complete folder `staged` (from :func:`staging_dir`) the folder `path`, replacing any old one.

    The steps are: rename `staged` to ``.NAME.new-*`` (marks it complete), the old folder to ``.NAME.old-*``, the new
    one to `path`, then delete the old. A kill between any two leaves the old or the new folder complete, and
    :func:`recover` puts it back at `path`."""
    staged, path = Path(staged), Path(path)
    new = _tmp_name(path, _NEW)
    os.replace(staged, new)
    old = None
    if path.exists() or path.is_symlink():
        old = _tmp_name(path, _OLD)
        os.replace(path, old)
    os.replace(new, path)
    if old is not None:
        shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
    return path


def _siblings(path: Path, tag: str) -> list[Path]:
    """Temporaries of `path` with `tag` left by writers that no longer run, oldest first."""
    if not path.parent.is_dir():
        return []
    prefix = f".{path.name}{tag}"
    found = [p for p in path.parent.iterdir() if p.name.startswith(prefix) and not _writer_alive(p, tag)]
    return sorted(found, key=lambda p: p.lstat().st_mtime)


def recover(path: str | os.PathLike) -> Path:
    """Finish or undo a :func:`replace_dir` or write that a kill interrupted, so that `path` holds a complete version.

    When `path` is missing, a complete new version (``.NAME.new-*``) is moved in, else the old one (``.NAME.old-*``).
    Leftover temporary, old and new versions are then removed. Only the leftovers of writers that no longer run are
    touched (their process id is in the name), so a save in progress in another process is never disturbed. Returns
    `path` (which may still not exist, when nothing was ever written)."""
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        for tag in (_NEW, _OLD):
            found = _siblings(path, tag)
            if found:
                os.replace(found[-1], path)
                break
    for tag in (_NEW, _OLD, _TMP):
        for p in _siblings(path, tag):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    return path


# ------------------------------------------------------------------------------------------------------- reading
def _name(source: Any, what: str | None) -> str:
    return what or (str(source) if isinstance(source, (str, os.PathLike)) else "the data")


def read_json(source: str | os.PathLike | bytes, what: str | None = None, max_bytes: int = 256 * 2**20) -> Any:
    """Parse JSON from a file path or from bytes, refusing non-UTF-8 text, more than `max_bytes`, nesting too deep for
    the parser and invalid JSON with a :class:`FileReadError` naming `what` (default: the path)."""
    name = _name(source, what)
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        try:
            size = os.path.getsize(source)
            if size > max_bytes:
                raise FileReadError(f"{name}: {size} bytes of JSON is over the limit of {max_bytes} bytes.")
            data = Path(source).read_bytes()
        except OSError as e:
            raise FileReadError(f"{name} cannot be read: {e.strerror or e}.") from None
    if len(data) > max_bytes:
        raise FileReadError(f"{name}: {len(data)} bytes of JSON is over the limit of {max_bytes} bytes.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FileReadError(f"{name} is not UTF-8 text (byte {e.start}); is it the right file?") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise FileReadError(f"{name}: JSON nested too deep to parse; not a file this library wrote.") from None
    except json.JSONDecodeError as e:
        raise FileReadError(f"{name} is not valid JSON (truncated or edited?): {e}.") from None


# ------------------------------------------------------------------------------------------ bounded bytes
def _limit(max_bytes: int | None) -> int:
    return TEXT_MAX_BYTES if max_bytes is None else int(max_bytes)


def read_file(path: str | os.PathLike, what: str, max_bytes: int | None = None) -> bytes:
    """The bytes of the file `path`, refused when it holds more than `max_bytes` (default
    :data:`TEXT_MAX_BYTES`)."""
    max_bytes = _limit(max_bytes)
    try:
        size = os.path.getsize(path)
        if size > max_bytes:
            raise FileReadError(f"{what} is {size} bytes, over the limit of {max_bytes} bytes.")
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise FileReadError(f"{what} cannot be read: {e.strerror or e}.") from None
    if len(data) > max_bytes:
        raise FileReadError(f"{what} grew past the limit of {max_bytes} bytes while being read.")
    return data


def bunzip(data: bytes, what: str, max_bytes: int | None = None) -> bytes:
    """Decompress bzip2 `data` (one or more streams), refusing corrupt or truncated data and output over
    `max_bytes` (default :data:`TEXT_MAX_BYTES`; decompression stops at the limit: a few kB that would expand to
    gigabytes are refused early)."""
    max_bytes = _limit(max_bytes)
    out: list[bytes] = []
    total, rest = 0, data
    while True:
        d = bz2.BZ2Decompressor()
        try:
            chunk = d.decompress(rest, max_length=max_bytes + 1 - total)
        except (OSError, ValueError, EOFError) as e:
            raise FileReadError(f"{what} is not valid bzip2 data ({e}).") from None
        total += len(chunk)
        out.append(chunk)
        if total > max_bytes:
            raise FileReadError(f"{what} expands past the limit of {max_bytes} bytes; refusing to decompress it.")
        if not d.eof:
            raise FileReadError(f"{what} is truncated bzip2 data (the stream does not end).")
        rest = d.unused_data
        if not rest:
            return b"".join(out)


class ZipArchive:
    """A zip file (path, bytes or open binary file) opened for bounded reading of single members (use as a context
    manager).

    - `names`: the files in the archive (folders left out), sorted.
    - :meth:`size`: a member's declared decompressed size; :meth:`read`: its bytes, refused over `max_bytes`
      before decompression, and checked against the declared size and CRC after.
    """

    def __init__(self, source: str | os.PathLike | bytes | BinaryIO, what: str):
        self.what = what
        if isinstance(source, (bytes, bytearray)):
            self._fh: Any = io.BytesIO(source)
        elif isinstance(source, (str, os.PathLike)):
            try:
                self._fh = open(source, "rb")
            except FileNotFoundError:
                raise FileReadError(f"{what} does not exist.") from None
            except OSError as e:
                raise FileReadError(f"{what} cannot be read: {e.strerror or e}.") from None
        else:
            self._fh = source
        try:
            self._zf = zipfile.ZipFile(self._fh)
        except _ERRORS as e:
            self._fh.close()
            raise FileReadError(
                f"{what} is not a readable zip archive (truncated or another format: {type(e).__name__}: {e})."
            ) from None
        self.infos = {i.filename: i for i in self._zf.infolist() if not i.is_dir()}
        self.names = sorted(self.infos)

    def __enter__(self) -> ZipArchive:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._zf.close()
        self._fh.close()

    def size(self, name: str) -> int:
        return int(self.infos[name].file_size)

    def read(self, name: str, max_bytes: int | None = None, where: str | None = None) -> bytes:
        """The decompressed bytes of the member `name` (at most `max_bytes`, default :data:`TEXT_MAX_BYTES`); errors
        name `where` (default: the archive and the member)."""
        max_bytes = _limit(max_bytes)
        info = self.infos[name]
        where = where or f"{self.what}: member {name!r}"
        if info.file_size > max_bytes:
            raise FileReadError(
                f"{where} declares {info.file_size} bytes decompressed, over the limit of {max_bytes} bytes; "
                "refusing to decompress it."
            )
        if info.flag_bits & 0x1:
            raise FileReadError(f"{where} is encrypted; give an archive without a password.")
        try:
            if info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2):
                data = self._decompress(info, self._raw(info, where), max_bytes, where)
            else:  # LZMA and others: zipfile's reader, after the declared-size check above
                with self._zf.open(info) as f:
                    data = f.read(max_bytes + 1)
        except FileReadError:
            raise
        except _ERRORS as e:
            raise FileReadError(f"{where} cannot be read (corrupt or truncated: {type(e).__name__}: {e}).") from None
        if len(data) != info.file_size:
            raise FileReadError(
                f"{where} holds {len(data)} bytes where the archive declares {info.file_size}: damaged or forged."
            )
        if zlib.crc32(data) & 0xFFFFFFFF != info.CRC:
            raise FileReadError(f"{where} is damaged (its CRC-32 does not match).")
        return data

    def _raw(self, info: zipfile.ZipInfo, where: str) -> bytes:
        """The member's compressed bytes, located through its local header."""
        self._fh.seek(info.header_offset)
        head = self._fh.read(_LOCAL_HEADER)
        if len(head) != _LOCAL_HEADER or head[:4] != b"PK\x03\x04":
            raise FileReadError(f"{where} has no valid local header: the archive is damaged.")
        n_name, n_extra = struct.unpack("<HH", head[26:30])
        self._fh.seek(info.header_offset + _LOCAL_HEADER + n_name + n_extra)
        raw = self._fh.read(info.compress_size)
        if len(raw) != info.compress_size:
            raise FileReadError(f"{where} is truncated ({len(raw)} of {info.compress_size} compressed bytes).")
        return raw

    @staticmethod
    def _decompress(info: zipfile.ZipInfo, raw: bytes, max_bytes: int, where: str) -> bytes:
        """Stored, deflate or bzip2 data, decompressed to at most one byte more than the member declares (itself
        within `max_bytes`): a member whose declared size is forged cannot expand further."""
        if info.compress_type == zipfile.ZIP_STORED:
            return raw
        cap = min(max_bytes, info.file_size) + 1
        if info.compress_type == zipfile.ZIP_DEFLATED:
            d: Any = zlib.decompressobj(-15)
            out = d.decompress(raw, cap)
        else:
            d = bz2.BZ2Decompressor()
            out = d.decompress(raw, max_length=cap)
        if len(out) == cap:
            raise FileReadError(
                f"{where} expands past the {info.file_size} bytes it declares; damaged or forged, not decompressed "
                "further."
            )
        if not d.eof:
            raise FileReadError(f"{where} is truncated (its compressed stream does not end).")
        return out


def npy_header(f: BinaryIO, where: str, max_bytes: int) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """``(shape, fortran_order, dtype, nbytes)`` from the header of the ``.npy`` stream `f` (left at the data),
    refusing pickled objects and declared sizes over `max_bytes` before anything is allocated."""
    try:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
    except (ValueError, EOFError, OSError) as e:
        raise FileReadError(f"{where} is not a readable .npy array ({e}).") from None
    if dtype.hasobject:
        raise FileReadError(f"{where} holds Python objects; refusing to unpickle them.")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > max_bytes:
        raise FileReadError(f"{where} declares shape {shape} ({nbytes} bytes), over the limit of {max_bytes}.")
    return shape, fortran, dtype, nbytes


def _npy(data: bytes, where: str, max_bytes: int) -> np.ndarray:
    """The array of the ``.npy`` bytes `data`, its declared size checked against the data."""
    f = io.BytesIO(data)
    shape, fortran, dtype, nbytes = npy_header(f, where, max_bytes)
    if nbytes != len(data) - f.tell():
        raise FileReadError(
            f"{where} declares shape {shape} ({nbytes} bytes) but holds {len(data) - f.tell()}: truncated or forged."
        )
    return np.frombuffer(data, dtype=dtype, offset=f.tell()).reshape(shape, order="F" if fortran else "C").copy()


def read_npz(
    source: str | os.PathLike | bytes | BinaryIO,
    keys: Iterable[str] | None = None,
    what: str | None = None,
    max_bytes: int = MAX_BYTES,
    required: Iterable[str] = (),
) -> dict[str, np.ndarray]:
    """Read arrays from an ``.npz`` file (a path, bytes, or an open binary file) without pickles, decompressing only
    `keys` (default all).

    Each array's declared size is checked against `max_bytes` before it is decompressed, and decompression stops at
    the size the archive declares, so a forged member cannot expand further. Missing `required` keys, an empty
    archive, corrupt or truncated data all raise :class:`FileReadError` naming `what` (default: the path). Returns
    ``{key: array}``."""
    name = _name(source, what)
    with ZipArchive(source, name) as zf:
        members = {n[:-4]: n for n in zf.names if n.endswith(".npy")}
        if not members:
            raise FileReadError(f"{name} holds no arrays (an empty or non-NumPy archive).")
        missing = [k for k in required if k not in members]
        if missing:
            raise FileReadError(f"{name} lacks the arrays {missing}; it holds {sorted(members)}.")
        wanted = list(members) if keys is None else [k for k in keys if k in members]
        out = {}
        for k in wanted:
            where = f"{name}: array {k!r}"
            if zf.size(members[k]) > max_bytes + 4096:  # an .npy header is at most a few kB
                raise FileReadError(f"{where} is {zf.size(members[k])} bytes, over the limit of {max_bytes} bytes.")
            out[k] = _npy(zf.read(members[k], max_bytes + 4096, where=where), where, max_bytes)
        return out
