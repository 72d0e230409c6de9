"""`fer-stream forget`: erase a student, a video, or lectures past retention (``fer_stream.retention``).

It runs as a nightly run does (``nightly.locked_run``: the output's lock, a run record in
``OUTPUT/runs/``, an interrupted erasure finished first), so an erasure never runs in the middle of
a night. Exit codes: ``fer_stream.cli.exits`` (0 done; 1 could not proceed: no OUTPUT folder, an
unknown video, an I/O error; 2 bad arguments; 4 OUTPUT holds no records, or no record and no
identity-store entry holds the ``--student`` id (nothing is done or remembered then); 75 another
run holds the lock).

The run record (0600) and ``forgotten.json`` (0600) name a ``--student`` by its salted digest
(``identity.store.student_digest``), never by id; the record's ``argv`` is written so too.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

from fer_stream import inputs
from fer_stream.cli import exits


def _forget(a) -> int:
    from fer_stream import nightly, retention
    from fer_stream.ops import layout, runlog
    from fer_stream.ops.lock import LockHeld

    output = Path(a.output).resolve()
    if not output.is_dir():
        print(f"fer-stream forget: no folder {output}", file=sys.stderr)
        return exits.ERROR
    if not (output / "videos").is_dir():
        print(f"fer-stream forget: {output} holds no records (no videos/ folder)", file=sys.stderr)
        return exits.NO_DATA
    record = runlog.new_record(runlog.RunKind.FORGET, output)
    if a.student:
        record["argv"] = _without_id(record["argv"], a.student, output)
    removals = []
    unknown: list[retention.UnknownStudentError] = []

    def erase() -> None:
        if a.student:
            try:
                removal = retention.forget_student(output, a.student, a.course)
            except retention.UnknownStudentError as e:  # nothing to do, and nothing to remember
                unknown.append(e)
                record["nothing_to_forget"] = True
                return
        elif a.video:
            removal = retention.forget_video(output, retention.find_video(output, a.video))
        else:
            removal = retention.forget_older_than(output, a.older_than)
        removals.append(removal)
        record["removed"].append({"why": "forget", **removal.as_json()})
        if removal.courses and not a.no_reports:  # their old report files are gone: render again
            nightly.reports_for(output, removal.courses, date.today(), record)

    try:
        nightly.locked_run(output, record, erase)
    except LockHeld as e:
        print(f"fer-stream forget: {e}; exiting ({exits.LOCKED})", file=sys.stderr)
        return exits.LOCKED
    if record["status"] != runlog.RunStatus.FINISHED:
        print(f"fer-stream forget: {record['errors'][-1]}", file=sys.stderr)
        return exits.ERROR
    if unknown:
        print(f"fer-stream forget: {unknown[0]}; nothing done", file=sys.stderr)
        return exits.NO_DATA
    print(removals[0].describe())
    print(f"record: {layout.run_record(output, record['run_id'])}")
    return exits.OK


def _without_id(argv: list[str], student_id: str, output: Path) -> list[str]:
    """``argv`` with the ``--student`` value replaced by its salted digest (a run record never holds
    an erased id)."""
    from fer_stream.identity import store

    digest = store.student_digest(student_id, store.erasure_salt(output))
    out, after_flag = [], False
    for arg in argv:
        if after_flag:
            arg, after_flag = digest, False
        elif arg == "--student":
            after_flag = True
        elif arg.startswith("--student="):
            arg = f"--student={digest}"
        out.append(arg)
    return out


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "forget",
        help="erase a student's or a video's records, or lectures older than N days (retention)",
        description="Remove rows from every table and partition, atomically (rewrite, then swap; an "
        "interrupted erasure is finished by the next forget or nightly). The run record in "
        "OUTPUT/runs/ says what was removed. See docs/NIGHTLY.md.",
        epilog=exits.EPILOG,
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
        if a.course is not None:
            try:
                a.course = inputs.check_course(a.course, "--course")
            except ValueError as e:
                p.error(str(e))
        if a.older_than is not None and a.older_than < 0:
            p.error("--older-than must be >= 0")
        return _forget(a)

    p.set_defaults(func=forget)
