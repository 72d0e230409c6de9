"""`fer-stream forget`: erase a student, a video, or lectures past retention (``fer_stream.retention``)."""

from __future__ import annotations

import sys
import time
from pathlib import Path


def _forget(a) -> int:
    from fer_stream import nightly, retention

    output = Path(a.output).resolve()
    if not (output / "videos").is_dir():
        print(f"fer-stream forget: {output} holds no records (no videos/ folder)", file=sys.stderr)
        return nightly.EXIT_ERROR
    run_id = nightly.new_run_id()
    lock = nightly.OutputLock(output, "forget", run_id)
    try:
        stale = lock.acquire()
    except nightly.LockHeld as e:
        print(f"fer-stream forget: {e}; exiting ({nightly.EXIT_LOCKED})", file=sys.stderr)
        return nightly.EXIT_LOCKED
    record = {
        "run_id": run_id,
        "kind": "forget",
        "status": "running",
        "started_at": nightly._iso(time.time()),
        "argv": sys.argv,
        "output": str(output),
        "lock": {"took_over": stale},
        "removed": [],
        "reports": {"dir": None, "courses": {}, "errors": []},
        "errors": [],
    }
    try:
        with nightly.sigterm_as_exit():
            if stale:
                nightly._mark_killed(output, stale, run_id)
            recovered = retention.recover(output)
            if recovered:
                record["recovered_erasure"] = recovered
            if a.student:
                removal = retention.forget_student(output, a.student, a.course)
            elif a.video:
                removal = retention.forget_video(output, _video_id(output, a.video))
            else:
                removal = retention.forget_older_than(output, a.older_than)
            record["removed"].append({"why": "forget", **removal.as_json()})
            if removal.courses and not a.no_reports:
                _rerender(output, removal.courses, record)
            record["status"] = "finished"
    except (OSError, ValueError) as e:
        record["status"] = "error"
        record["errors"].append({"error_type": type(e).__name__, "error_message": str(e)})
    finally:
        record["finished_at"] = nightly._iso(time.time())
        path = nightly.save_run_record(output, record)
        lock.release()
    if record["status"] != "finished":
        print(f"fer-stream forget: {record['errors'][-1]}", file=sys.stderr)
        return nightly.EXIT_ERROR
    print(removal.describe())
    print(f"record: {path}")
    return nightly.EXIT_OK


def _video_id(output: Path, prefix: str) -> str:
    """The one video_id of the records that starts with ``prefix`` (8+ hex digits, e.g. from a report)."""
    import pyarrow.compute as pc

    from fer_stream import records

    if len(prefix) == 64:
        return prefix
    if len(prefix) < 8:
        raise ValueError(f"--video {prefix!r}: give the video_id, or at least its first 8 hex digits")
    ids = records.read(output, "videos", columns=["video_id"]).column("video_id")
    found = sorted(set(ids.filter(pc.starts_with(ids, prefix)).to_pylist()))
    if len(found) != 1:
        raise ValueError(f"--video {prefix}: {len(found)} videos of the records start with it, need 1")
    return found[0]


def _rerender(output: Path, courses: list[str], record: dict) -> None:
    """The changed courses' reports, again, from what is left (their old files are gone)."""
    from datetime import date

    from fer_stream import records

    out = output / "reports" / date.today().isoformat()
    record["reports"]["dir"] = str(out)
    left = set(records.read(output, "videos", columns=["course"]).column("course").to_pylist())
    try:
        from fer_stream.reports import write_course_reports
    except ImportError as e:
        error = {"course": None, "error_type": "ImportError", "error": str(e)}
        record["reports"]["errors"].append(error)
        return
    for course in courses:
        if course not in left:
            continue  # nothing of the course is left to report
        try:
            paths = write_course_reports(output, course, out)
            record["reports"]["courses"][course] = [str(p) for p in paths]
        except Exception as e:  # recorded; the erasure itself is done
            error = {"course": course, "error_type": type(e).__name__, "error": str(e)[:2000]}
            record["reports"]["errors"].append(error)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "forget",
        help="erase a student's or a video's records, or lectures older than N days (retention)",
        description="Remove rows from every table and partition, atomically (rewrite, then swap; an "
        "interrupted erasure is finished by the next forget or nightly). The run record in "
        "OUTPUT/runs/ says what was removed. Exit codes as `nightly`. See docs/NIGHTLY.md.",
    )
    p.add_argument("--output", required=True, help="records folder")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--student", help="student_id to erase (faces rows, counts, identity store)")
    what.add_argument("--video", help="video_id (sha256) whose records to erase")
    what.add_argument("--older-than", type=int, metavar="DAYS", help="erase lectures older than DAYS days")
    p.add_argument("--course", default=None, help="with --student: only in this course")
    p.add_argument("--no-reports", action="store_true", help="do not render the changed courses' reports")

    def forget(a) -> int:
        if a.course is not None and not a.student:
            p.error("--course goes with --student")
        if a.older_than is not None and a.older_than < 0:
            p.error("--older-than must be >= 0")
        return _forget(a)

    p.set_defaults(func=forget)
