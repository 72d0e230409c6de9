"""The one atomic file writer of the project: a file is replaced whole or not at all.

Used for Parquet partitions (``fer_stream.records``), JSON state and run records (``nightly``,
``ops.runlog``, ``retention``), exported models and the identity store.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | os.PathLike, write, *, mode: int | None = None) -> Path:
    """The one atomic file writer of the project: ``write(f)`` fills a hidden temporary file in the
    same folder (binary), which is flushed, fsynced, given ``mode`` (e.g. ``0o600``; default: 0666
    less the umask, as ``open`` would) and renamed over ``path``; then the folder is fsynced so the
    rename survives a power cut. Readers see the old file or the new one, never half of one; a
    crash leaves only a hidden ``.*.tmp`` that :func:`fer_stream.records.remove_stale_temp_files` clears.

    Used for Parquet partitions, JSON state and run records, and the identity store.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600; without an explicit mode the file gets what open() would give it
        # (0666 less the umask), so a service's UMask (deploy/: 0027, the team reads) still applies.
        os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def write_json_atomic(path: str | os.PathLike, obj, *, mode: int | None = None) -> Path:
    """``obj`` as indented JSON through :func:`write_atomic` (``mode``: as there)."""
    data = json.dumps(obj, indent=1, default=str).encode("utf-8")
    return write_atomic(path, lambda f: f.write(data), mode=mode)


class NotWritableError(OSError):
    """A folder this process must write into cannot be created or written (``str()`` names it)."""


def ensure_writable_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Create ``path`` (and its parents) if needed and prove it writable by creating and removing a
    hidden temporary file in it; returns it resolved.

    A real write, not ``os.access``: root passes every permission check, yet still cannot write
    under a regular file or on a read-only mount.

    Raises:
        NotWritableError: one line naming the folder and the operating system's reason.
    """
    folder = Path(path).resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".write-check.", suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise NotWritableError(f"cannot write into the {what} {folder}: {e.strerror or e}") from e
    return folder
