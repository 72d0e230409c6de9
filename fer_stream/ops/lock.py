"""``OUTPUT/nightly.lock``: one writer (``nightly`` or ``forget``) per output folder at a time.

Why ``flock``: the kernel drops the lock when its holder dies (kill -9, OOM, a reboot), so whether
a lock is live needs no pid, boot id or host checks of ours. On NFS, Linux turns ``flock`` into an
NFS byte-range lock (v3: the lockd/NLM service; v4: part of the protocol), so runs on different
hosts exclude each other too, unless the share is mounted ``nolock`` or ``local_lock=flock|all``
(then each host only sees its own locks: run nightly from one host).

The file also says who holds it, for people and for the next run: JSON ``{pid, host, kind, run_id,
started_at, argv}``. The holder removes it on release; a file that is still there when the flock
is free names a run that died, which the next run reports as taken over (its run record is then
marked ``killed``, ``fer_stream.ops.runlog.mark_killed``).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
from pathlib import Path

from fer_stream.ops import layout, runlog


class LockHeld(RuntimeError):
    """Another process holds the output's lock; ``owner`` is what its lock file says."""

    def __init__(self, path: Path, owner: dict | None):
        self.path, self.owner = path, owner or {}
        o = self.owner
        who = f"pid {o.get('pid', '?')} on host {o.get('host', '?')} ({o.get('kind', '?')}"
        who += f", run {o.get('run_id', '?')}, since {o.get('started_at', '?')})"
        super().__init__(f"another fer-stream run holds {path}: {who}; it is running now")


class OutputLock:
    """An exclusive ``flock`` on ``OUTPUT/nightly.lock`` from :meth:`acquire` to :meth:`release`.

    The lock belongs to the open file, not to the process: a second ``OutputLock`` on the same
    folder is refused in this process as in any other. The descriptor is close-on-exec, so
    programs this process starts (Ray's workers) do not keep the lock alive after it dies.
    """

    def __init__(self, output: str | os.PathLike, kind: runlog.RunKind, run_id: str):
        self.path = Path(output) / layout.LOCK_FILE
        self.kind, self.run_id = kind, run_id
        self.fd: int | None = None

    def acquire(self) -> dict | None:
        """Take the lock or raise :class:`LockHeld`.

        Returns:
            the owner the file still named (a run that died holding it, now taken over), or ``None``.
        """
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = _read_owner(fd)
                os.close(fd)
                raise LockHeld(self.path, owner) from None
            try:  # the holder may have removed the file between our open and flock: start again
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        stale = _read_owner(fd)
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "kind": self.kind,
            "run_id": self.run_id,
            "started_at": runlog.iso(),
            "argv": sys.argv,
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        os.fsync(fd)
        self.fd = fd
        return stale

    def release(self) -> None:
        if self.fd is None:
            return
        self.path.unlink(missing_ok=True)  # before the flock goes: no one locks a removed file
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _read_owner(fd: int) -> dict | None:
    data = os.pread(fd, 1 << 16, 0)
    if not data.strip():
        return None
    try:
        return json.loads(data)
    except ValueError:
        return {"pid": None, "host": "?", "unreadable": data[:200].decode(errors="replace")}
