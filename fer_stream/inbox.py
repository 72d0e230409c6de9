"""A night's inbox: which files are stable (no longer being copied), their content hashes (cached
in the state file) and what a night decides for each (``Action``), with its outcome (``FileStatus``).

Plain Python over the file system; ``fer_stream.nightly`` runs the night around it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from fer_stream import inputs


class Action(enum.StrEnum):
    """What a night decided for an inbox file (``videos[].action`` and ``counts`` of its record)."""

    # work for tonight (InboxFile.TODO)
    NEW = "new"
    CHANGED = "changed"  # new content under a path that held another video before
    RETRY = "retry"  # failed on an earlier night, its backoff is over
    REPROCESS = "reprocess"  # done by other weights; --reprocess-on-model-change
    # not tonight
    DONE_BEFORE = "done_before"
    DUPLICATE = "duplicate"  # same content as another inbox file, or as done records of another path
    COPYING = "copying"  # still changing: not settled for settle_s
    DEFERRED = "deferred"  # failed before; waiting for its backoff
    QUARANTINED = "quarantined"  # quarantined on an earlier night but could not be moved
    FORGOTTEN = "forgotten"  # erased (forgotten.json): never analysed again
    EXPIRED = "expired"  # its lecture is older than the retention
    # decided after tonight's try
    QUARANTINE = "quarantine"  # failed max_attempts times: moved to the quarantine folder


class FileStatus(enum.StrEnum):
    """What came of an inbox file tonight (``videos[].status`` of the night's record)."""

    PENDING = "pending"  # to analyse, until the pipeline answers
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # not analysed tonight (its action says why), or skipped by the pipeline


@dataclass
class InboxFile:
    """One inbox file in one night: what was decided for it (``action``) and what came of it.

    Mutable, unlike a result record: a night fills it in as it goes (stat, hash, plan, outcome).
    """

    path: Path
    size: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0
    ino: int = 0
    video_id: str | None = None
    action: Action | None = None  # set for every file by scan_inbox (copying) or _plan
    reason: str = ""
    attempt: int = 0
    old_video_id: str | None = None  # "changed": the content the path held before
    lecture: inputs.Lecture | None = None  # path, video id, course and date, resolved once for the pipeline
    status: FileStatus = FileStatus.SKIPPED
    error_type: str | None = None
    error_message: str | None = None

    TODO = (Action.NEW, Action.CHANGED, Action.RETRY, Action.REPROCESS)

    def stat_key(self) -> list[int]:
        return [self.size, self.mtime_ns, self.ctime_ns, self.ino]

    def as_json(self) -> dict:
        out = {
            "path": str(self.path),
            "video_id": self.video_id,
            "action": self.action,
            "status": self.status,
        }
        for k in ("reason", "attempt", "old_video_id", "error_type", "error_message"):
            if getattr(self, k):
                out[k] = getattr(self, k)
        return out


def _stat(f: InboxFile) -> bool:
    try:
        st = f.path.stat()
    except FileNotFoundError:
        return False
    f.size, f.mtime_ns, f.ctime_ns, f.ino = st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino
    return True


def scan_inbox(
    inbox: Path, state: dict, settle_s: float, now: float, exclude: Path | None = None
) -> list[InboxFile]:
    """Every video file of ``inbox`` (not under ``exclude``) with its content hash, or
    ``action=Action.COPYING`` while it is not settled. Hashes are reused from ``state["files"]`` while
    size, mtime, ctime and inode match."""
    found = []
    cache = state.setdefault("files", {})
    for path, _ in inputs.discover_videos([inbox]):
        if exclude is not None and exclude in path.parents:
            continue  # a quarantine folder inside the inbox
        f = InboxFile(path)
        if not _stat(f):
            continue  # moved away since the listing
        last_change = max(f.mtime_ns, f.ctime_ns) / 1e9
        if now - last_change < settle_s:
            f.action = Action.COPYING
            f.reason = f"changed {now - last_change:.0f} s ago (< settle {settle_s:g} s)"
            found.append(f)
            continue
        known = cache.get(str(path))
        if known and known.get("stat") == f.stat_key():
            f.video_id = known["video_id"]
        else:
            try:
                vid = inputs.content_hash(path)
            except OSError as e:  # unreadable: the pipeline records the failure under its path id
                vid = inputs.path_id(path)
                f.reason = f"{type(e).__name__}: {e}"
            before = f.stat_key()
            if not _stat(f) or f.stat_key() != before:
                f.action, f.reason = Action.COPYING, "changed while being hashed"
                found.append(f)
                continue
            if known and known.get("video_id") != vid:
                f.old_video_id = known["video_id"]
            f.video_id = vid
            cache[str(path)] = {"stat": f.stat_key(), "video_id": vid}
        found.append(f)
    for gone in set(cache) - {str(f.path) for f in found}:
        del cache[gone]  # files that left the inbox
    return found
