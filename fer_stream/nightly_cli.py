"""`fer-stream nightly` and `fer-stream forget`: thin glue over ``fer_stream.nightly`` and
``fer_stream.retention``; registered through ``fer_stream.cli.COMMAND_MODULES``.

Exit codes (both commands): 0 it ran (a night with failed videos too: the run record lists them);
1 it could not proceed (no inbox, unwritable output, unusable weights, Ray unreachable); 2 bad
arguments; 75 another run holds ``OUTPUT/nightly.lock`` (nothing was done; try again later).
docs/NIGHTLY.md has the details.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from fer_stream.options import add_analysis_args, config_from_args


def _nightly(a) -> int:
    from fer_stream import nightly

    try:
        options = nightly.NightlyOptions(
            settle_s=a.settle_s,
            max_attempts=a.max_attempts,
            backoff_h=a.backoff_h,
            reprocess_on_model_change=a.reprocess_on_model_change,
            retention_days=a.retention_days,
            quarantine_dir=Path(a.quarantine).resolve() if a.quarantine else None,
            reports=not a.no_reports,
        )
        record = nightly.run_night(
            a.inbox,
            a.output,
            config_from_args(a),
            options,
            address=a.address,
            num_cpus=a.num_cpus,
            progress=not a.quiet,
        )
    except nightly.LockHeld as e:
        print(f"fer-stream nightly: {e}; exiting ({nightly.EXIT_LOCKED})", file=sys.stderr)
        return nightly.EXIT_LOCKED
    except (nightly.NightlyError, ValueError) as e:
        print(f"fer-stream nightly: {e}", file=sys.stderr)
        return nightly.EXIT_ERROR
    print(nightly.describe(record), flush=True)
    return nightly.EXIT_OK if record["status"] == "finished" else nightly.EXIT_ERROR


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


def _pipeline_args(p) -> None:
    g = p.add_argument_group("analysis (as jobs/analyze_lectures.py)")
    add_analysis_args(g)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "nightly",
        help="analyse the inbox's new and changed videos, retry failures, refresh reports (cron/systemd)",
        description="One unattended night: lock OUTPUT, find new and changed videos in INBOX by content "
        "hash (files still being copied wait), analyse them, retry failures with backoff and quarantine "
        "them after --max-attempts, refresh the touched courses' reports into OUTPUT/reports/<date>/, "
        "write OUTPUT/runs/<run_id>.json. Exit: 0 ran (failed videos are in the record), 1 could not "
        "run, 2 bad arguments, 75 another run holds the lock. See docs/NIGHTLY.md.",
    )
    p.add_argument("--inbox", required=True, help="folder the lecture videos are copied into")
    p.add_argument("--output", required=True, help="records folder (faces/, frames/, videos/, runs/, ...)")
    p.add_argument(
        "--settle-s",
        type=float,
        default=600.0,
        help="a file unchanged (size, mtime, ctime) for this long is complete (default 600)",
    )
    p.add_argument("--max-attempts", type=int, default=3, help="failures before quarantine (default 3)")
    p.add_argument(
        "--backoff-h",
        type=float,
        default=20.0,
        help="the k-th failure waits backoff_h * 2^(k-1) hours (default 20: next night, then 2 nights)",
    )
    p.add_argument(
        "--reprocess-on-model-change",
        action="store_true",
        help="re-analyse inbox videos whose records came from other emotion weights",
    )
    p.add_argument("--retention-days", type=int, default=None, help="then delete lectures older than this")
    p.add_argument("--quarantine", default=None, help="folder for quarantined files (OUTPUT/quarantine)")
    p.add_argument("--no-reports", action="store_true", help="do not render the touched courses' reports")
    p.add_argument("--quiet", action="store_true", help="no progress output, only the summary")
    _pipeline_args(p)
    p.set_defaults(func=_nightly)

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


def main(argv=None) -> int:
    """``python -m fer_stream.nightly_cli nightly ...``: the two subcommands without the others."""
    import argparse

    ap = argparse.ArgumentParser(prog="fer-stream")
    register(ap.add_subparsers(dest="cmd", required=True))
    a = ap.parse_args(argv)
    return a.func(a)


if __name__ == "__main__":
    sys.exit(main())
