"""Safe files: atomic writes that never lose the old result, and bounded reads that refuse hostile files clearly.

Writing. :func:`write_bytes`, :func:`write_text`, :func:`write_json` and :func:`write_npz` write to a temporary name
in the target's folder and rename it over the target (``os.replace``, atomic on POSIX and Windows), so a reader or a
process killed at any moment sees the old file or the new one, never a part. Folders cannot be renamed over each
other atomically; :func:`replace_dir` swaps a finished folder in through two renames, and :func:`recover` (called
by the readers) completes or undoes a swap that a kill interrupted, so the old or the new folder is always found.

Reading. :func:`read_json` and :func:`read_npz` turn every way a damaged or hostile file can fail (bad UTF-8,
truncated or corrupt deflate/bz2/lzma data, empty archives, JSON nested 200 000 deep, arrays declaring 1e5 x 1e5
shapes, decompression bombs) into one :class:`FileReadError` that names the file and what is wrong, before any large
allocation. Only the members asked for are decompressed.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import uuid
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

__all__ = [
    "MAX_BYTES",
    "FileReadError",
    "read_json",
    "read_npz",
    "recover",
    "replace_dir",
    "staging_dir",
    "write_bytes",
    "write_json",
    "write_npz",
    "write_text",
]

MAX_BYTES = 8 * 2**30
"""Default limit (bytes) on one decompressed array or JSON text: 8 GiB. Pass ``max_bytes=`` to change it."""

_OLD, _NEW, _TMP = ".old-", ".new-", ".tmp-"


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


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically (temporary file in the same folder, flushed, then renamed). Returns `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path, _TMP)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


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


def _open_zip(source: Any, name: str) -> zipfile.ZipFile:
    """A zip archive from a path, bytes or an open binary file."""
    try:
        src = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
        return zipfile.ZipFile(src)
    except FileNotFoundError:
        raise FileReadError(f"{name} does not exist.") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise FileReadError(f"{name} is not a readable .npz/zip archive (truncated or another format: {e}).") from None


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, max_bytes: int) -> np.ndarray:
    where = f"{name}: array {info.filename[:-4]!r}"
    if info.file_size > max_bytes + 4096:
        raise FileReadError(f"{where} is {info.file_size} bytes decompressed, over the limit of {max_bytes} bytes.")
    try:
        with zf.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            if dtype.hasobject:
                raise FileReadError(f"{where} holds Python objects; refusing to unpickle them.")
            nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if nbytes > max_bytes:
                raise FileReadError(f"{where} declares shape {shape} ({nbytes} bytes), over the limit of {max_bytes}.")
            if nbytes > info.file_size:
                raise FileReadError(
                    f"{where} declares shape {shape}, more than the archive holds: truncated or forged."
                )
            buf = f.read(nbytes + 1)
    except FileReadError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, RuntimeError, NotImplementedError) as e:
        raise FileReadError(f"{where} cannot be read (corrupt or truncated data: {type(e).__name__}: {e}).") from None
    except Exception as e:  # noqa: BLE001 - zlib.error, bz2/lzma errors: the decompressors raise their own types
        raise FileReadError(f"{where} cannot be decompressed ({type(e).__name__}: {e}).") from None
    if len(buf) != nbytes:
        raise FileReadError(f"{where} holds {len(buf)} bytes of data where its header declares {nbytes}: damaged.")
    order = "F" if fortran else "C"
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order).copy()


def read_npz(
    source: str | os.PathLike | bytes | BinaryIO,
    keys: Iterable[str] | None = None,
    what: str | None = None,
    max_bytes: int = MAX_BYTES,
    required: Iterable[str] = (),
) -> dict[str, np.ndarray]:
    """Read arrays from an ``.npz`` file (a path, bytes, or an open binary file) without pickles, decompressing only
    `keys` (default all).

    Each array's declared shape is checked against `max_bytes` and against the archive before anything is allocated.
    Missing `required` keys, an empty archive, corrupt or truncated data all raise :class:`FileReadError` naming
    `what` (default: the path). Returns ``{key: array}``."""
    name = _name(source, what)
    with _open_zip(source, name) as zf:
        members = {i.filename[:-4]: i for i in zf.infolist() if i.filename.endswith(".npy")}
        if not members:
            raise FileReadError(f"{name} holds no arrays (an empty or non-NumPy archive).")
        missing = [k for k in required if k not in members]
        if missing:
            raise FileReadError(f"{name} lacks the arrays {missing}; it holds {sorted(members)}.")
        wanted = list(members) if keys is None else [k for k in keys if k in members]
        return {k: _read_member(zf, members[k], name, max_bytes) for k in wanted}
