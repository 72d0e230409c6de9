"""Run records: ``OUTPUT/runs/<run_id>.json``, one per ``nightly`` or ``forget`` run.

A record is written when the run has its lock (``status: running``), may be rewritten as the run
goes, and is closed at the end (``finished``, ``error`` or ``interrupted``). A run that dies keeps
``running`` until the next run takes its lock over and marks it ``killed``. The keys every kind of
run shares are those of :func:`new_record`; ``nightly`` adds its own (docs/NIGHTLY.md).

``fer_stream.nightly.locked_run`` puts the pieces here together around a run's work.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import re
import secrets
import signal
import socket
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from fer_stream.ops import atomic, layout

RUN_ID_RE = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")  # what new_run_id makes


class RunKind(enum.StrEnum):
    """The command a run record or a lock belongs to (``kind`` in both files)."""

    NIGHTLY = "nightly"
    FORGET = "forget"
    ANALYZE = "analyze"  # a pipeline run's claims on its videos (ops.claims)


class RunStatus(enum.StrEnum):
    """How a run stands (``status`` of its record)."""

    RUNNING = "running"  # it holds the lock, or died holding it and no run has taken it over yet
    FINISHED = "finished"  # its work returned (a night's failed videos are in its record)
    ERROR = "error"  # its work raised: ``errors`` says why
    INTERRUPTED = "interrupted"  # SIGTERM or Ctrl-C: recorded, then raised
    KILLED = "killed"  # it died holding the lock; the next run took the lock over


def new_run_id(now: float | None = None) -> str:
    """UTC start time + random suffix, e.g. ``20261128T023000Z-3f9a1c`` (sorts by start time)."""
    t = datetime.fromtimestamp(now if now is not None else time.time(), timezone.utc)
    return t.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def iso(ts: float | None = None) -> str:
    """``ts`` (seconds since the epoch; default now) as ISO 8601 UTC to the second."""
    return datetime.fromtimestamp(ts if ts is not None else time.time(), timezone.utc).isoformat(
        timespec="seconds"
    )


def new_record(kind: RunKind, output: Path, run_id: str | None = None) -> dict:
    """The keys every run record has, for a run of ``kind`` (``nightly``, ``forget``) starting now."""
    return {
        "run_id": run_id or new_run_id(),
        "kind": kind,
        "status": RunStatus.RUNNING,
        "started_at": iso(),
        "finished_at": None,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "argv": sys.argv,
        "output": str(output),
        "lock": {"file": str(output / layout.LOCK_FILE), "took_over": None},
        "removed": [],
        "reports": {"dir": None, "courses": {}, "errors": []},
        "errors": [],
    }


def save(output: Path, record: dict) -> Path:
    """Write ``record`` to ``OUTPUT/runs/<run_id>.json`` (atomically: ``atomic.write_json_atomic``),
    owner-only (0600, whatever the umask): a record says what was erased, when, on whose command."""
    return atomic.write_json_atomic(layout.run_record(output, record["run_id"]), record, mode=0o600)


def mark_killed(output: Path, stale: dict, by: str) -> None:
    """The record of a run whose lock ``by`` took over (``stale``: its lock file) says it was killed."""
    run_id = stale.get("run_id")
    if not isinstance(run_id, str) or not RUN_ID_RE.fullmatch(run_id):
        return  # a lock file without a usable run id names no record (and no path outside runs/)
    path = layout.run_record(output, run_id)
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if rec.get("status") == RunStatus.RUNNING:
        rec["status"] = RunStatus.KILLED
        rec["errors"] = [*rec.get("errors", []), {"error": f"the process died; lock taken over by run {by}"}]
        save(output, rec)


@contextlib.contextmanager
def sigterm_as_exit():
    """SIGTERM (systemctl stop, a timeout) raises SystemExit, so that records and the lock are closed.

    Once Ray is up in this process its own handler takes over; it raises SystemExit(1) the same way.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
