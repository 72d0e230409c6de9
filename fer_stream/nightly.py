"""Nightly runs over an inbox folder: new and changed videos through the pipeline, unattended.

One night (``run_night``, ``fer-stream nightly``)::

    lock OUTPUT/nightly.lock (pid + host; a dead holder's stale lock on this host is taken over)
      -> finish an interrupted erasure (retention.recover)
      -> scan the inbox: files whose size and mtime/ctime have not moved for settle_s are stable;
         the others are still being copied and wait for the next night
      -> content hash of each stable file (cached by size, mtime, ctime, inode in the state file)
      -> decide per file: new / changed / retry (its backoff has passed) / reprocess (older model)
         or skip: done before, duplicate (same hash as another file), copying, deferred (backoff),
         quarantined, forgotten, expired (older than the retention)
      -> the pipeline on what is left (embedded Ray, or --address; or the whole night as a Ray
         job, deploy/ray-nightly-submit.sh)
      -> failed videos: attempt + 1, next try after backoff_h * 2^(attempt-1) hours; the
         max_attempts-th failure moves the file to quarantine/ with a .quarantine.json reason
      -> records a changed file replaced and records of other configurations of re-analysed
         videos are removed; erasures in forgotten.json are applied again to what was written
      -> retention (--retention-days); reports of every course touched, OUTPUT/reports/<date>/
      -> the run record OUTPUT/runs/<run_id>.json (written at the start, rewritten at the end)

What is done comes from the records (``videos/`` rows with status ``done``), never from the state
file: ``OUTPUT/nightly/state.json`` only caches hashes and counts failures, so losing it costs a
rehash and resets retry counts, nothing else. Exit codes: :data:`EXIT_OK` etc. below.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

from fer_stream import inputs, records, retention
from fer_stream.config import ModelInfo, PipelineConfig, config_hash
from fer_stream.inputs import Lecture, content_hash, discover_videos
from fer_stream.retention import write_json_atomic

EXIT_OK = 0  # the night ran (failed videos are listed in the run record)
EXIT_ERROR = 1  # the night could not proceed: bad inbox/output, unusable weights, Ray unreachable
EXIT_USAGE = 2  # bad arguments (argparse)
EXIT_LOCKED = 75  # another run holds the output's lock (sysexits EX_TEMPFAIL: try again later)

LOCK_FILE = "nightly.lock"
STATE_FILE = Path("nightly") / "state.json"
RUNS_DIR = "runs"
REPORTS_DIR = "reports"
QUARANTINE_DIR = "quarantine"
_KEEP_ERRORS = 5  # failures kept per video in the state file


# --------------------------------------------------------------------------------------------------
# The lock


class LockHeld(RuntimeError):
    """Another process holds (or may hold) the output's lock; ``owner`` is what its lock file says."""

    def __init__(self, path: Path, owner: dict | None, why: str):
        self.path, self.owner = path, owner or {}
        o = self.owner
        who = f"pid {o.get('pid', '?')} on host {o.get('host', '?')} ({o.get('purpose', '?')}"
        who += f", run {o.get('run_id', '?')}, since {o.get('started_at', '?')})"
        super().__init__(f"another fer-stream run holds {path}: {who}; {why}")


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _proc_start(pid: int) -> str | None:
    """Start time of process ``pid`` in clock ticks since boot (tells a reused pid apart)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22; the name in () may hold spaces


def _alive(owner: dict) -> bool:
    """Is the lock's owner, a process of this host, still running?"""
    boot = _boot_id()
    if owner.get("boot_id") and boot and owner["boot_id"] != boot:
        return False  # the machine rebooted since
    try:
        pid = int(owner["pid"])
        os.kill(pid, 0)
    except (KeyError, ValueError, TypeError, ProcessLookupError):
        return False
    except PermissionError:
        pass  # exists, another user's
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return True  # no /proc: trust kill(pid, 0)
    if fields[0] == "Z":
        return False  # a zombie: dead, not yet reaped by its parent
    return not (owner.get("pid_start") and fields[19] != owner["pid_start"])


class OutputLock:
    """``OUTPUT/nightly.lock``: one writer (nightly or forget) per output folder at a time.

    The file holds JSON ``{pid, host, boot_id, pid_start, purpose, run_id, started_at, argv}`` and an
    exclusive ``flock`` while its owner runs. A process that dies loses the flock but leaves the
    file: the next run sees a dead owner on this host (pid gone, reused, or another boot) and takes
    the lock over. An owner on another host cannot be checked from here: the lock then stays until
    someone removes the file. The file is removed on release.
    """

    def __init__(self, output: str | os.PathLike, purpose: str, run_id: str):
        self.path = Path(output) / LOCK_FILE
        self.purpose, self.run_id = purpose, run_id
        self.fd: int | None = None

    def acquire(self) -> dict | None:
        """Take the lock or raise :class:`LockHeld`; returns the stale owner taken over, if any."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = _read_owner(fd)
                os.close(fd)
                raise LockHeld(self.path, owner, "it is running now") from None
            try:  # the holder may have removed the file between our open and flock: start again
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        owner = _read_owner(fd)
        if owner:
            why = None
            if owner.get("host") != socket.gethostname():
                why = "its host cannot be checked from here; remove the file if that run is gone"
            elif _alive(owner):
                why = "its process is alive"
            if why:
                os.close(fd)
                raise LockHeld(self.path, owner, why)
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "boot_id": _boot_id(),
            "pid_start": _proc_start(os.getpid()),
            "purpose": self.purpose,
            "run_id": self.run_id,
            "started_at": _iso(time.time()),
            "argv": sys.argv,
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        os.fsync(fd)
        self.fd = fd
        return owner

    def release(self) -> None:
        if self.fd is None:
            return
        self.path.unlink(missing_ok=True)  # before the flock goes: no one locks a removed file
        os.close(self.fd)
        self.fd = None


def _read_owner(fd: int) -> dict | None:
    data = os.pread(fd, 1 << 16, 0)
    if not data.strip():
        return None
    try:
        return json.loads(data)
    except ValueError:
        return {"pid": None, "host": "?", "unreadable": data[:200].decode(errors="replace")}


# --------------------------------------------------------------------------------------------------
# Options, run records


@dataclass(frozen=True)
class NightlyOptions:
    """How a night treats its inbox.

    Attributes:
        settle_s: a file whose size, mtime and ctime have not changed for this many seconds is
            complete; a younger one is still being copied and waits (ctime: a copy that sets an old
            mtime, ``cp -p`` or ``rsync -t``, still updates ctime).
        max_attempts: failures of a video (over nights) before it is quarantined.
        backoff_h: the k-th failure waits ``backoff_h * 2**(k-1)`` hours before the next try
            (20 h: the next night, then two nights later).
        reprocess_on_model_change: re-analyse inbox videos whose records came from other weights.
        retention_days: delete lectures older than this after the night (``None``: keep all).
        quarantine_dir: where quarantined files go (default ``OUTPUT/quarantine``).
        reports: render the touched courses' reports.
    """

    settle_s: float = 600.0
    max_attempts: int = 3
    backoff_h: float = 20.0
    reprocess_on_model_change: bool = False
    retention_days: int | None = None
    quarantine_dir: Path | None = None
    reports: bool = True

    def __post_init__(self):
        if self.settle_s < 0 or self.backoff_h < 0 or self.max_attempts < 1:
            raise ValueError("settle_s and backoff_h must be >= 0, max_attempts >= 1")
        if self.retention_days is not None and self.retention_days < 0:
            raise ValueError("retention_days must be >= 0")


class NightlyError(RuntimeError):
    """The night cannot start: no inbox, an output folder that cannot be written."""


def new_run_id(now: float | None = None) -> str:
    """UTC start time + random suffix, as the pipeline's run ids."""
    t = datetime.fromtimestamp(now if now is not None else time.time(), timezone.utc)
    return t.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def save_run_record(output: Path, record: dict) -> Path:
    path = output / RUNS_DIR / f"{record['run_id']}.json"
    write_json_atomic(path, record)
    return path


def _mark_killed(output: Path, stale: dict, by: str) -> None:
    """The run record of a run whose stale lock was taken over says it was killed."""
    path = output / RUNS_DIR / f"{stale.get('run_id')}.json"
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if rec.get("status") == "running":
        rec["status"] = "killed"
        rec["errors"] = [*rec.get("errors", []), {"error": f"the process died; lock taken over by run {by}"}]
        save_run_record(output, rec)


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


# --------------------------------------------------------------------------------------------------
# The inbox


@dataclass
class InboxFile:
    """One inbox file in one night: what was decided for it (``action``) and what came of it."""

    path: Path
    size: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0
    ino: int = 0
    video_id: str | None = None
    action: str = ""  # new changed retry reprocess | done_before duplicate copying deferred ...
    reason: str = ""
    attempt: int = 0
    old_video_id: str | None = None  # "changed": the content the path held before
    lecture: Lecture | None = None  # path, video id, course and date, resolved once for the pipeline
    status: str = "skipped"  # pending (to analyse), then done / failed (or skipped by the pipeline)
    error_type: str | None = None
    error_message: str | None = None

    TODO = ("new", "changed", "retry", "reprocess")

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
    ``action="copying"`` while it is not settled. Hashes are reused from ``state["files"]`` while
    size, mtime, ctime and inode match."""
    found = []
    cache = state.setdefault("files", {})
    for path, _ in discover_videos([inbox]):
        if exclude is not None and exclude in path.parents:
            continue  # a quarantine folder inside the inbox
        f = InboxFile(path)
        if not _stat(f):
            continue  # moved away since the listing
        last_change = max(f.mtime_ns, f.ctime_ns) / 1e9
        if now - last_change < settle_s:
            f.action = "copying"
            f.reason = f"changed {now - last_change:.0f} s ago (< settle {settle_s:g} s)"
            found.append(f)
            continue
        known = cache.get(str(path))
        if known and known.get("stat") == f.stat_key():
            f.video_id = known["video_id"]
        else:
            try:
                vid = content_hash(path)
            except OSError as e:  # unreadable: the pipeline records the failure under its path id
                vid = hashlib.sha256(f"path:{path}".encode()).hexdigest()
                f.reason = f"{type(e).__name__}: {e}"
            before = f.stat_key()
            if not _stat(f) or f.stat_key() != before:
                f.action, f.reason = "copying", "changed while being hashed"
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


# --------------------------------------------------------------------------------------------------
# The night


def load_state(output: Path) -> dict:
    path = output / STATE_FILE
    if path.is_file():
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            return {"files": state.get("files", {}), "videos": state.get("videos", {})}
        except ValueError:
            pass  # a cache: start again
    return {"files": {}, "videos": {}}


def run_night(
    inbox: str | os.PathLike,
    output: str | os.PathLike,
    config=None,
    options: NightlyOptions | None = None,
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    progress: bool = True,
    now: float | None = None,
) -> dict:
    """One night over ``inbox`` into the records under ``output`` (module docstring).

    Args:
        config: the pipeline's ``PipelineConfig`` (default one if ``None``).
        address, num_cpus: Ray, as ``pipeline.connect`` (connected only when there is work).
        now: the clock, seconds since the epoch (tests); default ``time.time()``.

    Returns:
        the run record (also in ``OUTPUT/runs/<run_id>.json``); ``record["status"]`` is
        ``finished`` or ``error`` (the night could not run: ``errors`` says why).

    Raises:
        LockHeld: another run holds the output's lock.
        NightlyError: no inbox, or an output folder that cannot be written.
    """
    inbox, output = Path(inbox).resolve(), Path(output).resolve()
    if not inbox.is_dir():
        raise NightlyError(f"no inbox folder {inbox}")
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise NightlyError(f"cannot create the output folder {output}: {e}") from e
    if not os.access(output, os.W_OK | os.X_OK):
        raise NightlyError(f"cannot write into the output folder {output}")
    night = _Night(inbox, output, config, options or NightlyOptions(), now)
    lock = OutputLock(output, "nightly", night.run_id)
    stale = lock.acquire()
    try:
        with sigterm_as_exit():
            return night.run(stale, address, num_cpus, progress)
    finally:
        lock.release()


class _Night:
    def __init__(self, inbox: Path, output: Path, config, options: NightlyOptions, now: float | None):

        self.inbox, self.output, self.options = inbox, output, options
        self.config = config or PipelineConfig()
        self.now = now if now is not None else time.time()
        self.run_id = new_run_id(self.now)
        self.quarantine = Path(options.quarantine_dir or output / QUARANTINE_DIR).resolve()
        self.record: dict = {
            "run_id": self.run_id,
            "kind": "nightly",
            "status": "running",
            "started_at": _iso(time.time()),
            "finished_at": None,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "argv": sys.argv,
            "inbox": str(inbox),
            "output": str(output),
            "options": {
                "settle_s": options.settle_s,
                "max_attempts": options.max_attempts,
                "backoff_h": options.backoff_h,
                "reprocess_on_model_change": options.reprocess_on_model_change,
                "retention_days": options.retention_days,
                "quarantine_dir": str(self.quarantine),
            },
            "lock": {"file": str(output / LOCK_FILE), "took_over": None},
            "counts": {},
            "videos": [],
            "removed": [],
            "reports": {"dir": None, "courses": {}, "errors": []},
            "errors": [],
        }

    def save(self) -> Path:
        return save_run_record(self.output, self.record)

    def run(self, stale: dict | None, address, num_cpus, progress: bool) -> dict:
        if stale:
            self.record["lock"]["took_over"] = stale
            _mark_killed(self.output, stale, self.run_id)
        self.save()
        try:
            self._run(address, num_cpus, progress)
            self.record["status"] = "finished"
        except (SystemExit, KeyboardInterrupt) as e:
            self.record["status"] = "interrupted"
            self.record["errors"].append({"error": f"interrupted ({type(e).__name__} {e})"})
            raise
        except Exception as e:  # the night itself failed (weights, Ray): recorded, exit code 1
            self.record["status"] = "error"
            self.record["errors"].append({"error_type": type(e).__name__, "error_message": str(e)[:2000]})
        finally:
            self.record["finished_at"] = _iso(time.time())
            self.save()
        return self.record

    def _run(self, address, num_cpus, progress: bool) -> None:
        from fer_stream import pipeline

        recovered = retention.recover(self.output)
        if recovered:
            self.record["recovered_erasure"] = recovered
        records.remove_stale_temp_files(self.output)
        model = ModelInfo.load(self.config.weights)
        self.chash = config_hash(self.config.analysis(model))
        self.record.update(config_hash=self.chash, model_version=model.version)
        state = load_state(self.output)
        files = scan_inbox(self.inbox, state, self.options.settle_s, self.now, exclude=self.quarantine)
        self._plan(files, state, model)
        todo = [f for f in files if f.action in InboxFile.TODO]
        self.record["videos"] = [f.as_json() for f in files if f.action != "done_before"]
        self._count(files)
        self.save()  # what the night is about to do, in case it dies
        write_json_atomic(self.output / STATE_FILE, state)
        done: list[InboxFile] = []
        if todo:
            started = pipeline.connect(address, num_cpus)
            try:
                # The lectures as resolved here (video id, course, date): the pipeline hashes nothing again.
                lectures = [f.lecture for f in todo]
                summary = pipeline.run(lectures, self.output, self.config, progress=progress)
            finally:
                if started:
                    pipeline.disconnect()
            self.record["pipeline_run_id"] = summary.run_id
            by_id = {r.video_id: r for r in summary.results}
            for f in todo:
                r = by_id.get(f.video_id)
                if r is None:
                    continue
                f.status, f.error_type, f.error_message = r.status, r.error_type, r.error_message
                if r.status == "skipped":
                    f.reason = r.reason
                elif r.status == "done":
                    state["videos"].pop(f.video_id, None)
                    done.append(f)
                else:
                    self._failed(f, state)
            write_json_atomic(self.output / STATE_FILE, state)
        touched = self._courses_of(done)
        touched |= self._after_done(done, files)
        if self.options.retention_days is not None:
            removal = retention.forget_older_than(
                self.output, self.options.retention_days, today=date.fromtimestamp(self.now)
            )
            self._removed(removal, "retention")
            touched |= set(removal.courses)
        self.record["videos"] = [f.as_json() for f in files if f.action != "done_before"]
        self._count(files)
        if self.options.reports and touched:
            left = set(records.read(self.output, "videos", columns=["course"]).column("course").to_pylist())
            self._reports(sorted(touched & left))  # a course retention emptied has nothing to show

    def _plan(self, files: list[InboxFile], state: dict, model) -> None:
        """Set each settled file's action: work for tonight, or why not."""
        import pyarrow.compute as pc

        videos = records.read(
            self.output,
            "videos",
            columns=["video_id", "path", "config_hash", "model_version", "config_json"],
            filter=pc.field("status") == "done",
        ).to_pylist()
        done: dict[str, list[dict]] = {}
        for row in videos:
            done.setdefault(row["video_id"], []).append(row)
        forgotten = retention.load_tombstones(self.output)["videos"]
        present = {f.video_id for f in files if f.video_id}
        cutoff = None
        if self.options.retention_days is not None:
            cutoff = date.fromordinal(date.fromtimestamp(self.now).toordinal() - self.options.retention_days)
        first: dict[str, Path] = {}
        for f in files:
            if f.action == "copying":
                continue
            vid = f.video_id
            entry = state["videos"].get(vid, {})
            if vid in forgotten:
                f.action = "forgotten"
                f.reason = f"forgotten ({forgotten[vid].get('reason')}); remove the file from the inbox"
            elif vid in first:
                f.action, f.reason = "duplicate", f"same content as {first[vid]}"
            elif any(r["config_hash"] == self.chash for r in done.get(vid, [])):
                other = sorted({r["path"] for r in done[vid]} - {str(f.path)})
                f.action = "done_before" if not other else "duplicate"
                f.reason = f"done with config {self.chash}" + (f" as {other[0]}" if other else "")
            elif vid in done and not (
                self.options.reprocess_on_model_change and _other_model(done[vid], model)
            ):
                f.action = "done_before"
                f.reason = f"done with other settings (model {done[vid][-1]['model_version']})"
                if _other_model(done[vid], model):
                    f.reason += "; --reprocess-on-model-change re-analyses it"
            elif entry.get("quarantined") and not entry["quarantined"].get("moved_to"):
                f.action, f.reason = "quarantined", entry["quarantined"]["reason"]  # could not be moved
            elif entry.get("quarantined"):  # moved out, and back into the inbox by hand: a fresh start
                state["videos"].pop(vid)
                f.action, f.attempt, f.reason = "retry", 1, "back from quarantine"
            elif entry.get("next_try_at", 0) > self.now:
                f.action = "deferred"
                f.reason = f"failed {entry['attempts']}x, next try after {_iso(entry['next_try_at'])}"
            elif entry:
                f.action, f.attempt = "retry", entry["attempts"] + 1
            elif vid in done:
                f.action, f.reason = "reprocess", f"done by model {done[vid][-1]['model_version']} before"
            elif f.old_video_id and f.old_video_id not in present:
                f.action, f.reason = "changed", f"the file held {f.old_video_id[:12]} before"
            else:
                f.action = "new"
            if f.action in InboxFile.TODO:
                # Course and date once, for the retention check here and for the pipeline. The inbox
                # is the root of the sidecar lookup (a videos.csv at its top applies to videos in
                # subfolders, as for `analyze_lectures --input INBOX`).
                f.lecture = inputs.lecture(f.path, self.inbox, f.video_id)
            if cutoff is not None and f.action in InboxFile.TODO:
                day = None if f.lecture.meta_error else f.lecture.meta.lecture_date  # pipeline records errors
                if day is not None and day < cutoff:
                    f.action, f.reason = "expired", f"lecture {day} is older than the retention"
            if f.action in InboxFile.TODO:
                f.attempt = f.attempt or 1
                f.status = "pending"  # until the pipeline says done or failed
            first.setdefault(vid, f.path)

    def _failed(self, f: InboxFile, state: dict) -> None:
        """Count the failure; back off, or quarantine at the last attempt."""
        entry = state["videos"].setdefault(f.video_id, {"attempts": 0, "errors": []})
        entry["attempts"] += 1
        entry["path"] = str(f.path)
        error = {
            "at": _iso(self.now),
            "run_id": self.run_id,
            "type": f.error_type,
            "message": f.error_message,
        }
        entry["errors"] = [*entry["errors"], error][-_KEEP_ERRORS:]
        f.attempt = entry["attempts"]
        if entry["attempts"] < self.options.max_attempts:
            entry["next_try_at"] = self.now + self.options.backoff_h * 3600 * 2 ** (entry["attempts"] - 1)
            f.reason = f"attempt {entry['attempts']}/{self.options.max_attempts}; next try after "
            f.reason += _iso(entry["next_try_at"])
            return
        reason = f"failed {entry['attempts']} times; last: {f.error_type}: {f.error_message}"
        moved_to, move_error = None, None
        try:
            moved_to = str(self._move_to_quarantine(f, entry, reason))
        except OSError as e:  # a read-only inbox: the file stays, and is skipped from now on
            move_error = f"{type(e).__name__}: {e}"
        entry["quarantined"] = {"at": _iso(self.now), "reason": reason, "moved_to": moved_to}
        if move_error:
            entry["quarantined"]["move_error"] = move_error
        entry.pop("next_try_at", None)
        f.action, f.reason = "quarantine", reason + (f" (not moved: {move_error})" if move_error else "")

    def _move_to_quarantine(self, f: InboxFile, entry: dict, reason: str) -> Path:
        rel = f.path.relative_to(self.inbox)
        dest = self.quarantine / rel
        if dest.exists():
            dest = dest.with_name(f"{dest.stem}.{f.video_id[:12]}{dest.suffix}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(f.path, dest)
        for side in (f.path.with_name(f.path.name + ".json"), f.path.with_suffix(".json")):
            if side.is_file():  # its course/date sidecar goes along
                shutil.move(side, dest.with_name(dest.name + ".json"))
        write_json_atomic(
            dest.with_name(dest.name + ".quarantine.json"),
            {
                "video_id": f.video_id,
                "inbox_path": str(f.path),
                "quarantined_at": _iso(self.now),
                "run_id": self.run_id,
                "reason": reason,
                "errors": entry["errors"],
                "to_retry": "move the file back into the inbox (attempts start again)",
            },
        )
        return dest

    def _courses_of(self, done: list[InboxFile]) -> set[str]:
        import pyarrow.compute as pc

        if not done:
            return set()
        ids = [f.video_id for f in done]
        rows = records.read(self.output, "videos", columns=["course"], filter=pc.field("video_id").isin(ids))
        return set(rows.column("course").to_pylist())

    def _after_done(self, done: list[InboxFile], files: list[InboxFile]) -> set[str]:
        """Drop what tonight's records supersede; apply remembered erasures to them."""
        courses: set[str] = set()
        if not done:
            return courses
        ids = [f.video_id for f in done]
        removal = retention.forget_videos(
            self.output,
            ids,
            what="records of other configurations of the videos analysed tonight",
            reason="superseded",
            keep_config_hash=self.chash,
            remember=False,
        )
        self._removed(removal, "superseded")
        present = {f.video_id for f in files}
        replaced = sorted({f.old_video_id for f in done if f.old_video_id and f.old_video_id not in present})
        if replaced:
            removal = retention.forget_videos(
                self.output, replaced, what="records of files replaced by a new version", reason="replaced"
            )
            self._removed(removal, "replaced")
            courses |= set(removal.courses)
        for stone in retention.load_tombstones(self.output)["students"]:
            removal = retention.forget_student(
                self.output, stone["student_id"], stone.get("course"), video_ids=ids, remember=False
            )
            self._removed(removal, "erasure re-applied")
        return courses

    def _removed(self, removal, why: str) -> None:
        if removal.files_rewritten or removal.files_deleted or removal.other_files_deleted:
            self.record["removed"].append({"why": why, **removal.as_json()})

    def _reports(self, courses: list[str]) -> None:
        out = self.output / REPORTS_DIR / date.fromtimestamp(self.now).isoformat()
        self.record["reports"]["dir"] = str(out)
        try:
            from fer_stream.reports import write_course_reports
        except ImportError as e:
            self.record["reports"]["errors"].append(
                {"course": None, "error_type": "ImportError", "error": str(e)}
            )
            return
        for course in courses:
            try:
                paths = write_course_reports(self.output, course, out)
                self.record["reports"]["courses"][course] = [str(p) for p in paths]
            except Exception as e:  # a report that cannot render must not lose the night's records
                error = {"course": course, "error_type": type(e).__name__, "error": str(e)[:2000]}
                self.record["reports"]["errors"].append(error)

    def _count(self, files: list[InboxFile]) -> None:
        counts: dict[str, int] = {"seen": len(files)}
        for f in files:
            counts[f.action] = counts.get(f.action, 0) + 1
        for status in ("done", "failed"):
            counts[status] = sum(f.status == status for f in files)
        counts["skipped"] = len(files) - counts["done"] - counts["failed"]
        self.record["counts"] = counts


def _other_model(rows: list[dict], model) -> bool:
    """Were all of a video's done rows written by other weights than ``model``?"""
    for r in rows:
        try:
            sha = json.loads(r["config_json"]).get("weights_sha256")
        except (TypeError, ValueError):
            sha = None
        if r["model_version"] == model.version and sha in (None, model.sha256):
            return False
    return True


def describe(record: dict) -> str:
    """A few lines for the log: what the night found, did and skipped."""
    c = record.get("counts", {})
    work = ", ".join(f"{c[k]} {k}" for k in InboxFile.TODO if c.get(k))
    skipped = [
        "done_before",
        "duplicate",
        "copying",
        "deferred",
        "quarantined",
        "forgotten",
        "expired",
    ]
    skip = ", ".join(f"{c[k]} {k.replace('_', ' ')}" for k in skipped if c.get(k))
    lines = [
        f"nightly {record['run_id']} ({record['status']}): {c.get('seen', 0)} inbox files; "
        f"to analyse: {work or 'none'} -> {c.get('done', 0)} done, {c.get('failed', 0)} failed"
        + (f", {c['quarantine']} quarantined" if c.get("quarantine") else ""),
        f"  skipped: {skip or 'none'}",
        f"  record: {Path(record['output']) / RUNS_DIR / (record['run_id'] + '.json')}",
    ]
    rep = record.get("reports", {})
    if rep.get("courses") or rep.get("errors"):
        lines.append(f"  reports: {rep['dir']}: {len(rep['courses'])} courses, {len(rep['errors'])} errors")
    for v in record.get("videos", []):
        if v["status"] == "failed":
            lines.append(f"  FAILED {v['path']}: {v.get('error_type')}: {v.get('error_message')}")
    for r in record.get("removed", []):
        lines.append(f"  removed ({r['why']}): {r['what']}: {r['rows']}")
    for e in record.get("errors", []):
        lines.append(f"  ERROR {e}")
    return "\n".join(lines)
