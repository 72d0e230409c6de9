"""Nightly runs over an inbox folder: new and changed videos through the pipeline, unattended.

One night (``run_night``, ``fer-stream nightly``)::

    lock OUTPUT/nightly.lock (fer_stream.ops.lock; a lock whose holder died is taken over)
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
         max_attempts-th failure moves the file to quarantine/ with a .quarantine.json reason;
         a file this user may not read (VideoUnreadableError) is tried every night, never quarantined
      -> records a changed file replaced and records of other configurations of re-analysed
         videos are removed; erasures in forgotten.json are applied again to what was written
      -> retention (--retention-days); reports of every course touched, OUTPUT/reports/<date>/
      -> the run record OUTPUT/runs/<run_id>.json (written at the start, rewritten at the end)

The lock, the run record and the recovery around the work are :func:`locked_run`, which
``fer-stream forget`` runs under too. What is done comes from the records (``videos/`` rows with
status ``done``), never from the state file: ``OUTPUT/nightly/state.json`` only caches hashes and
counts failures, so losing it costs a rehash and resets retry counts, nothing else. Output folder
and file names: ``fer_stream.ops.layout``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from fer_stream import inputs, records, reports, retention
from fer_stream.config import ModelInfo, PipelineConfig, config_hash
from fer_stream.inbox import Action, FileStatus, InboxFile, scan_inbox
from fer_stream.ops import atomic, layout, runlog
from fer_stream.ops.lock import OutputLock

_KEEP_ERRORS = 5  # failures kept per video in the state file
# Failures that are the permissions' fault, not the file's (``video.VideoUnreadableError``; hashing an
# unreadable file raises PermissionError): retried every night, never counted towards quarantine.
UNREADABLE_ERRORS = frozenset({"VideoUnreadableError", "PermissionError"})


# --------------------------------------------------------------------------------------------------
# Options; the lock, run record and recovery around a run


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


def locked_run(output: Path, record: dict, work: Callable[[], object]) -> dict:
    """``work()`` as the run ``record`` describes (``ops.runlog.new_record``), holding the lock::

        lock OUTPUT (LockHeld if another run has it; nothing is written then)
          -> a run that died holding the lock: ``lock.took_over``, its record marked killed
          -> the record saved as ``running``; SIGTERM raises SystemExit from here on
          -> an interrupted erasure finished (``recovered_erasure``), killed writers' temporary
             files removed: before anything else writes
          -> work()
          -> ``finished``; ``error`` (an exception: recorded in ``errors``, not raised);
             ``interrupted`` (SystemExit, KeyboardInterrupt: recorded and raised)
          -> the record saved with ``finished_at``, the lock released

    Returns:
        ``record``; ``record["status"]`` says how it ended.
    """
    lock = OutputLock(output, record["kind"], record["run_id"])
    stale = lock.acquire()
    try:
        with runlog.sigterm_as_exit():
            if stale:
                record["lock"]["took_over"] = stale
                runlog.mark_killed(output, stale, record["run_id"])
            runlog.save(output, record)
            try:
                recovered = retention.recover(output)
                if recovered:
                    record["recovered_erasure"] = recovered
                records.remove_stale_temp_files(output)
                work()
                record["status"] = runlog.RunStatus.FINISHED
            except (SystemExit, KeyboardInterrupt) as e:
                record["status"] = runlog.RunStatus.INTERRUPTED
                record["errors"].append({"error": f"interrupted ({type(e).__name__} {e})"})
                raise
            except Exception as e:  # the run itself failed (weights, Ray, a bad request): recorded
                record["status"] = runlog.RunStatus.ERROR
                record["errors"].append({"error_type": type(e).__name__, "error_message": str(e)[:2000]})
    finally:
        record["finished_at"] = runlog.iso()
        runlog.save(output, record)
        lock.release()
    return record


def reports_for(output: Path, courses: Iterable[str], day: date, record: dict) -> None:
    """Render the reports of ``courses`` into ``OUTPUT/reports/<day>/``; paths and errors go into
    ``record["reports"]``. A course without records left (erased, past retention) has nothing to
    show and is skipped; a report that cannot render is recorded and must not lose the run's work.
    """
    out = layout.reports_dir(output, day)
    record["reports"]["dir"] = str(out)
    left = set(records.read(output, "videos", columns=["course"]).column("course").to_pylist())
    for course in sorted(set(courses) & left):
        try:
            paths = reports.write_course_reports(output, course, out)
            record["reports"]["courses"][course] = [str(p) for p in paths]
        except Exception as e:
            error = {"course": course, "error_type": type(e).__name__, "error": str(e)[:2000]}
            record["reports"]["errors"].append(error)


# --------------------------------------------------------------------------------------------------
# The night


def load_state(output: Path) -> dict:
    path = output / layout.STATE_FILE
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
        fer_stream.ops.lock.LockHeld: another run holds the output's lock.
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
    return locked_run(output, night.record, lambda: night.run(address, num_cpus, progress))


class _Night:
    def __init__(self, inbox: Path, output: Path, config, options: NightlyOptions, now: float | None):
        self.inbox, self.output, self.options = inbox, output, options
        self.config = config or PipelineConfig()
        self.now = now if now is not None else time.time()
        self.run_id = runlog.new_run_id(self.now)
        self.quarantine = Path(options.quarantine_dir or output / layout.QUARANTINE_DIR).resolve()
        self.record = runlog.new_record(runlog.RunKind.NIGHTLY, output, self.run_id)
        self.record.update(
            inbox=str(inbox),
            options={
                "settle_s": options.settle_s,
                "max_attempts": options.max_attempts,
                "backoff_h": options.backoff_h,
                "reprocess_on_model_change": options.reprocess_on_model_change,
                "retention_days": options.retention_days,
                "quarantine_dir": str(self.quarantine),
            },
            counts={},
            videos=[],
            signals=sorted(s.value for s in self.config.signals),  # what this night infers (COMPLIANCE.md)
        )

    def save(self) -> Path:
        return runlog.save(self.output, self.record)

    def run(self, address, num_cpus, progress: bool) -> None:
        """The night's work, under :func:`locked_run` (which has already recovered the output)."""
        from fer_stream import pipeline  # imports Ray: only when a night runs

        model = ModelInfo.of(self.config)  # None: emotion not inferred, no weights read
        self.chash = config_hash(self.config.analysis(model))
        self.record.update(
            config_hash=self.chash,
            model_version=model.version if model is not None else None,
        )
        state = load_state(self.output)
        files = scan_inbox(self.inbox, state, self.options.settle_s, self.now, exclude=self.quarantine)
        self._plan(files, state, model)
        todo = [f for f in files if f.action in InboxFile.TODO]
        self.record["videos"] = [f.as_json() for f in files if f.action != Action.DONE_BEFORE]
        self._count(files)
        self.save()  # what the night is about to do, in case it dies
        atomic.write_json_atomic(self.output / layout.STATE_FILE, state)
        done: list[InboxFile] = []
        if todo:
            started = pipeline.connect(address, num_cpus)
            try:
                # The lectures as resolved here (video id, course, date): the pipeline hashes nothing again.
                lectures = [f.lecture for f in todo if f.lecture is not None]  # _plan resolved each
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
                f.status, f.error_type, f.error_message = FileStatus(r.status), r.error_type, r.error_message
                if f.status == FileStatus.SKIPPED:
                    f.reason = r.reason
                elif f.status == FileStatus.DONE:
                    state["videos"].pop(f.video_id, None)
                    done.append(f)
                else:
                    self._failed(f, state)
            atomic.write_json_atomic(self.output / layout.STATE_FILE, state)
        touched = self._courses_of(done)
        touched |= self._after_done(done, files)
        if self.options.retention_days is not None:
            removal = retention.forget_older_than(
                self.output, self.options.retention_days, today=date.fromtimestamp(self.now)
            )
            self._removed(removal, "retention")
            touched |= set(removal.courses)
        self.record["videos"] = [f.as_json() for f in files if f.action != Action.DONE_BEFORE]
        self._count(files)
        if self.options.reports and touched:
            reports_for(self.output, touched, date.fromtimestamp(self.now), self.record)

    def _plan(self, files: list[InboxFile], state: dict, model) -> None:
        """Set each settled file's action: work for tonight, or why not."""
        import pyarrow.compute as pc

        videos = records.read(
            self.output,
            "videos",
            columns=["video_id", "path", "config_hash", "model_version", "config_json"],
            filter=pc.field("status") == records.VideoStatus.DONE.value,
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
            if f.action == Action.COPYING:
                continue
            vid = f.video_id
            assert vid is not None, f"{f.path}: a settled file is hashed (scan_inbox)"
            entry = state["videos"].get(vid, {})
            if vid in forgotten:
                f.action = Action.FORGOTTEN
                f.reason = f"forgotten ({forgotten[vid].get('reason')}); remove the file from the inbox"
            elif vid in first:
                f.action, f.reason = Action.DUPLICATE, f"same content as {first[vid]}"
            elif any(r["config_hash"] == self.chash for r in done.get(vid, [])):
                other = sorted({r["path"] for r in done[vid]} - {str(f.path)})
                f.action = Action.DONE_BEFORE if not other else Action.DUPLICATE
                f.reason = f"done with config {self.chash}" + (f" as {other[0]}" if other else "")
            elif vid in done and not (
                self.options.reprocess_on_model_change and _other_model(done[vid], model)
            ):
                f.action = Action.DONE_BEFORE
                f.reason = f"done with other settings (model {done[vid][-1]['model_version']})"
                if _other_model(done[vid], model):
                    f.reason += "; --reprocess-on-model-change re-analyses it"
            elif entry.get("quarantined") and not entry["quarantined"].get("moved_to"):
                f.action, f.reason = Action.QUARANTINED, entry["quarantined"]["reason"]  # could not be moved
            elif entry.get("quarantined"):  # moved out, and back into the inbox by hand: a fresh start
                state["videos"].pop(vid)
                f.action, f.attempt, f.reason = Action.RETRY, 1, "back from quarantine"
            elif entry.get("next_try_at", 0) > self.now:
                f.action = Action.DEFERRED
                f.reason = f"failed {entry['attempts']}x, next try after {runlog.iso(entry['next_try_at'])}"
            elif entry:
                f.action, f.attempt = Action.RETRY, entry["attempts"] + 1
            elif vid in done:
                f.action, f.reason = (
                    Action.REPROCESS,
                    f"done by model {done[vid][-1]['model_version']} before",
                )
            elif f.old_video_id and f.old_video_id not in present:
                f.action, f.reason = Action.CHANGED, f"the file held {f.old_video_id[:12]} before"
            else:
                f.action = Action.NEW
            if f.action in InboxFile.TODO:
                # Course and date once, for the retention check here and for the pipeline. The inbox
                # is the root of the sidecar lookup (a videos.csv at its top applies to videos in
                # subfolders, as for `analyze_lectures --input INBOX`).
                f.lecture = lecture = inputs.lecture(f.path, self.inbox, vid)
                if cutoff is not None:
                    day = None if lecture.meta_error else lecture.meta.lecture_date  # pipeline records errors
                    if day is not None and day < cutoff:
                        f.action, f.reason = Action.EXPIRED, f"lecture {day} is older than the retention"
            if f.action in InboxFile.TODO:
                f.attempt = f.attempt or 1
                f.status = FileStatus.PENDING  # until the pipeline says done or failed
            first.setdefault(vid, f.path)

    def _failed(self, f: InboxFile, state: dict) -> None:
        """Count the failure; back off, or quarantine at the last attempt."""
        assert f.video_id is not None, f"{f.path}: an analysed file is hashed"
        entry = state["videos"].setdefault(f.video_id, {"attempts": 0, "errors": []})
        entry["path"] = str(f.path)
        error = {
            "at": runlog.iso(self.now),
            "run_id": self.run_id,
            "type": f.error_type,
            "message": f.error_message,
        }
        entry["errors"] = [*entry["errors"], error][-_KEEP_ERRORS:]
        if f.error_type in UNREADABLE_ERRORS:  # the file may be fine: its permissions are not
            entry.pop("next_try_at", None)
            f.attempt = entry["attempts"]
            f.reason = (
                "cannot be read with this user's permissions: not counted towards quarantine, "
                "tried again every night; fix the file's (or its folder's) permissions"
            )
            return
        entry["attempts"] += 1
        f.attempt = entry["attempts"]
        if entry["attempts"] < self.options.max_attempts:
            entry["next_try_at"] = self.now + self.options.backoff_h * 3600 * 2 ** (entry["attempts"] - 1)
            f.reason = f"attempt {entry['attempts']}/{self.options.max_attempts}; next try after "
            f.reason += runlog.iso(entry["next_try_at"])
            return
        reason = f"failed {entry['attempts']} times; last: {f.error_type}: {f.error_message}"
        moved_to, move_error = None, None
        try:
            moved_to = str(self._move_to_quarantine(f, entry, reason))
        except OSError as e:  # a read-only inbox: the file stays, and is skipped from now on
            move_error = f"{type(e).__name__}: {e}"
        entry["quarantined"] = {"at": runlog.iso(self.now), "reason": reason, "moved_to": moved_to}
        if move_error:
            entry["quarantined"]["move_error"] = move_error
        entry.pop("next_try_at", None)
        f.action, f.reason = Action.QUARANTINE, reason + (f" (not moved: {move_error})" if move_error else "")

    def _move_to_quarantine(self, f: InboxFile, entry: dict, reason: str) -> Path:
        assert f.video_id is not None, f"{f.path}: an analysed file is hashed"
        rel = f.path.relative_to(self.inbox)
        dest = self.quarantine / rel
        if dest.exists():
            dest = dest.with_name(f"{dest.stem}.{f.video_id[:12]}{dest.suffix}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(f.path, dest)
        for side in (f.path.with_name(f.path.name + ".json"), f.path.with_suffix(".json")):
            if side.is_file():  # its course/date sidecar goes along
                shutil.move(side, dest.with_name(dest.name + ".json"))
        atomic.write_json_atomic(
            dest.with_name(dest.name + ".quarantine.json"),
            {
                "video_id": f.video_id,
                "inbox_path": str(f.path),
                "quarantined_at": runlog.iso(self.now),
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
        ids = [f.video_id for f in done if f.video_id is not None]  # all of them: analysed files are hashed
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

    def _count(self, files: list[InboxFile]) -> None:
        counts: dict[str, int] = {"seen": len(files)}
        for f in files:
            if f.action is not None:
                counts[f.action] = counts.get(f.action, 0) + 1
        for status in (FileStatus.DONE, FileStatus.FAILED):
            counts[status] = sum(f.status == status for f in files)
        counts[FileStatus.SKIPPED] = len(files) - counts[FileStatus.DONE] - counts[FileStatus.FAILED]
        self.record["counts"] = counts


def _other_model(rows: list[dict], model) -> bool:
    """Were all of a video's done rows written by other weights than ``model``? (``None``, emotion
    not inferred: the records need no weights, so no)"""
    if model is None:
        return False
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
        Action.DONE_BEFORE,
        Action.DUPLICATE,
        Action.COPYING,
        Action.DEFERRED,
        Action.QUARANTINED,
        Action.FORGOTTEN,
        Action.EXPIRED,
    ]
    skip = ", ".join(f"{c[k]} {k.replace('_', ' ')}" for k in skipped if c.get(k))
    lines = [
        f"nightly {record['run_id']} ({record['status']}): {c.get('seen', 0)} inbox files; "
        f"to analyse: {work or 'none'} -> {c.get('done', 0)} done, {c.get('failed', 0)} failed"
        + (f", {c[Action.QUARANTINE]} quarantined" if c.get(Action.QUARANTINE) else ""),
        f"  skipped: {skip or 'none'}",
        f"  record: {layout.run_record(record['output'], record['run_id'])}",
    ]
    rep = record.get("reports", {})
    if rep.get("courses") or rep.get("errors"):
        lines.append(f"  reports: {rep['dir']}: {len(rep['courses'])} courses, {len(rep['errors'])} errors")
    for v in record.get("videos", []):
        if v["status"] == FileStatus.FAILED:
            lines.append(f"  FAILED {v['path']}: {v.get('error_type')}: {v.get('error_message')}")
    for r in record.get("removed", []):
        lines.append(f"  removed ({r['why']}): {r['what']}: {r['rows']}")
    for e in record.get("errors", []):
        lines.append(f"  ERROR {e}")
    return "\n".join(lines)
