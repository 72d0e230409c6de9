"""Erasure and retention: remove a student's, a video's or old lectures' rows from every table.

Every change to the record files is one :class:`_Change`, made in two phases::

    1. rewrite: each affected Parquet file is written again without the removed rows, to a hidden
       temporary file beside it (readers skip names starting with '.')
    2. swap: a journal listing every (temporary -> final) rename and every deletion is written
       atomically, then applied, then removed

A crash in phase 1 leaves the old files untouched (the temporaries are deleted by :func:`recover`);
a crash in phase 2 leaves the journal, and :func:`recover` (run first by every ``nightly`` and
``forget``) finishes the swap. Either way the dataset ends as all-old or all-new.

What is removed, per operation:

* ``forget_student(ID, course)``: the student's rows of ``faces/``; ``frames.n_faces`` and the
  ``videos/`` counts (``faces``, ``students``) of the lectures they were in are lowered to match, so
  the counts do not reveal them either; their descriptors in the identity store; report files of
  the courses concerned (the caller renders them again).
* ``forget_video(ID)``: every file of the video in ``faces/``, ``frames/`` and ``videos/`` (all
  configurations and runs), and reports of its course.
* ``forget_older_than(DAYS)``: every partition whose ``lecture_date`` is older than DAYS before
  today, run records (``runs/``) and dated report folders (``reports/<date>/``) older than that.

``OUTPUT/forgotten.json`` (0600) keeps what was forgotten, never data, so that a nightly run does
not analyse a forgotten video again (its video_id), nor bring back a forgotten student when it
re-analyses a lecture (``nightly`` applies the student erasures to what it writes). A student is
kept as the salted hash of their id (:class:`ErasedStudent`, the salt in the identity store), not
the id: the file must recognise the student's rows again, not name them.
"""

from __future__ import annotations

import enum
import json
import os
import re
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, unquote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fer_stream import records
from fer_stream.ops import atomic, layout, runlog
from fer_stream.ops.forgotten import ErasedStudent, add_tombstones, digest, rows_of, salt_of
from fer_stream.ops.forgotten import load_tombstones as load_tombstones  # nightly reads it here
from fer_stream.ops.layout import JOURNAL, TOMBSTONES

# Phase-1 files (renamed by the journal, so not atomic.write_atomic's own temporaries); the name
# ends in .tmp, so records.remove_stale_temp_files clears an old one too, and starts with '.', so
# readers skip it.
_TMP_SUFFIX = ".retention.tmp"
_DATE_DIR_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
VIDEO_ID_RE = re.compile(r"[0-9a-f]{64}")  # a sha256 hex digest: inputs.content_hash


class UnknownStudentError(LookupError):
    """``forget_student`` of an id that neither the face records (of the course asked) nor the
    identity store hold: nothing is done, nothing remembered (``fer-stream forget`` exits 4)."""


class JournalOp(enum.StrEnum):
    """The first item of each ``[op, path, ...]`` entry of the journal (``retention.journal.json``)."""

    REPLACE = "replace"  # [replace, temporary, final]: rename the rewritten file over the record file
    DELETE = "delete"  # [delete, file]


class Recovery(enum.StrEnum):
    """What :func:`recover` did with an interrupted change (``recovered_erasure`` of a run record)."""

    COMPLETED = "completed"  # a journal was there: its swap was finished
    DISCARDED = "discarded"  # no journal: the rewritten temporaries were deleted, the old files stay


@dataclass(frozen=True, kw_only=True)
class Removal:
    """What one erasure or retention pass removed (goes into the run record as JSON).

    Attributes:
        what: the request, e.g. ``student s1 in ML101``.
        rows: rows removed per table (``faces``, ``frames``, ``videos``).
        files_rewritten, files_deleted: record files swapped for a rewritten copy / deleted.
        courses: courses whose records changed (their reports are stale).
        video_ids: videos whose records changed.
        identity_entries: descriptor rows and seat entries removed from the identity store
            (a student erasure: their descriptors and seats; a lecture erasure or retention: the
            pseudonym descriptors kept from those lectures).
        other_files_deleted: run records and report files removed.
    """

    what: str
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(records.SCHEMAS, 0))
    files_rewritten: int = 0
    files_deleted: int = 0
    courses: list[str] = field(default_factory=list)
    video_ids: list[str] = field(default_factory=list)
    identity_entries: int | None = None
    other_files_deleted: int = 0

    def as_json(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        rows = ", ".join(f"{n} {t}" for t, n in self.rows.items())
        text = f"{self.what}: removed rows {rows}; {self.files_rewritten} files rewritten, "
        text += f"{self.files_deleted} deleted; courses {', '.join(self.courses) or '-'}"
        if self.identity_entries is not None:
            text += f"; {self.identity_entries} identity store entries"
        return text


# --------------------------------------------------------------------------------------------------
# The two-phase change and its recovery


def _tmp_beside(path: Path) -> Path:
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex}{_TMP_SUFFIX}")


def _apply(output: Path, op: list[str]) -> None:
    """One journal entry; idempotent, so that a recovery may apply it twice."""
    if op[0] == JournalOp.REPLACE:
        tmp, final = output / op[1], output / op[2]
        if tmp.exists():
            os.replace(tmp, final)
    else:
        (output / op[1]).unlink(missing_ok=True)


class _Change:
    """Rewritten and deleted record files, swapped in together by :meth:`commit`."""

    def __init__(self, output: Path, what: str):
        self.output, self.what = output, what
        self.ops: list[list[str]] = []

    def replace(self, path: Path, table: pa.Table) -> None:
        """Phase 1: ``table`` (a file's columns, without the partition keys) to a temporary file,
        on disk (fsynced) before the journal can name it."""
        tmp = _tmp_beside(path)
        self.ops.append(
            [JournalOp.REPLACE, str(tmp.relative_to(self.output)), str(path.relative_to(self.output))]
        )
        atomic.write_atomic(tmp, lambda f: pq.write_table(table, f, compression=records.COMPRESSION))

    def delete(self, path: Path) -> None:
        self.ops.append([JournalOp.DELETE, str(path.relative_to(self.output))])

    def discard(self) -> None:
        for op in self.ops:
            if op[0] == JournalOp.REPLACE:
                (self.output / op[1]).unlink(missing_ok=True)
        self.ops = []

    def commit(self) -> None:
        """Phase 2: journal, swap, forget the journal."""
        if not self.ops:
            return
        journal = self.output / JOURNAL
        atomic.write_json_atomic(journal, {"what": self.what, "created_at": runlog.iso(), "ops": self.ops})
        for op in self.ops:
            _apply(self.output, op)
        journal.unlink()
        self.ops = []


def recover(output: str | os.PathLike) -> Recovery | None:
    """Finish an interrupted change: replay a journal (``completed``), or delete the temporary files
    of a change that never reached its journal (``discarded``). ``None`` if nothing was pending.

    Call it holding the output's lock (``fer_stream.ops.lock.OutputLock``), before anything else
    writes. The temporary files of a journal or ``forgotten.json`` whose writing was cut short
    (``atomic.write_atomic``'s, beside them) go too.
    """
    output = Path(output)
    for name in (JOURNAL, TOMBSTONES):
        for tmp in output.glob(f".{name}.*.tmp"):
            tmp.unlink(missing_ok=True)  # never renamed: the journal or tombstones stayed as they were
    journal = output / JOURNAL
    if journal.is_file():
        for op in json.loads(journal.read_text(encoding="utf-8"))["ops"]:
            _apply(output, op)
        journal.unlink()
        return Recovery.COMPLETED
    leftovers = [p for name in records.SCHEMAS for p in (output / name).glob(f"*/*/.*{_TMP_SUFFIX}")]
    for p in leftovers:
        p.unlink(missing_ok=True)
    return Recovery.DISCARDED if leftovers else None


# --------------------------------------------------------------------------------------------------
# Helpers over the record files


def _record_files(output: Path, table: str, course: str | None = None) -> list[Path]:
    course_glob = f"course={quote(course, safe='')}" if course is not None else "course=*"
    found = (output / table).glob(f"{course_glob}/lecture_date=*/*.parquet")
    return sorted(p for p in found if not p.name.startswith("."))


def _partition(path: Path) -> tuple[str, str]:
    """``(course, lecture_date)`` of a record file from its folder names."""
    return unquote(path.parent.parent.name.split("=", 1)[1]), path.parent.name.split("=", 1)[1]


def _sibling(output: Path, table: str, faces_file: Path) -> Path:
    """The file of another table in the same partition with the same ``<video_id>_<config_hash>`` stem."""
    return output / table / faces_file.parent.parent.name / faces_file.parent.name / faces_file.name


def _video_files(output: Path, stem: str, table: str, like: Path) -> list[Path]:
    folder = output / table / like.parent.parent.name / like.parent.name
    return sorted(p for p in folder.glob(f"{stem}_*.parquet") if not p.name.startswith("."))


def _num_rows(path: Path) -> int:
    return pq.ParquetFile(path).metadata.num_rows


# --------------------------------------------------------------------------------------------------
# Reports of changed courses are stale: their files go (the caller renders them again)


def course_report_files(output: str | os.PathLike, course: str) -> list[Path]:
    """Files ``reports.write_course_reports`` wrote for ``course`` in any ``OUTPUT/reports/<date>/``."""
    from fer_stream import reports

    return layout.course_report_files(output, course, reports.report_names())


def _remove_reports(output: Path, courses: Iterable[str]) -> int:
    n = 0
    for course in courses:
        for p in course_report_files(output, course):
            p.unlink(missing_ok=True)
            n += 1
    return n


# --------------------------------------------------------------------------------------------------
# The operations


def forget_student(
    output: str | os.PathLike,
    student_id: str | ErasedStudent,
    course: str | None = None,
    *,
    video_ids: Iterable[str] | None = None,
    remember: bool = True,
) -> Removal:
    """Remove ``student_id``'s rows from ``faces/`` (of ``course``, or every course) and lower the
    counts that included them (``frames.n_faces``, ``videos.faces``/``students`` of done rows).

    Args:
        student_id: the id, or an :class:`ErasedStudent` of ``forgotten.json`` (the rows whose id
            has that digest; only with ``remember=False``).
        video_ids: only these videos' files (a nightly run re-applying an erasure to what it wrote).
        remember: add the student to ``forgotten.json`` (as a salted digest) and remove them from
            the identity store.

    Returns:
        a :class:`Removal`; its ``what`` names the student by digest. Hold the output's lock while
        calling this.

    Raises:
        UnknownStudentError: with ``remember``, neither the face records (of ``course``) nor the
            identity store hold the id; nothing was changed or remembered.
    """
    output = Path(output)
    if isinstance(student_id, ErasedStudent) and remember:
        raise ValueError("an ErasedStudent is forgotten already: remember=False re-applies it")
    salt = salt_of(output)
    erased = student_id if isinstance(student_id, ErasedStudent) else ErasedStudent(digest(student_id, salt))
    where = f" in {course}" if course is not None else ""
    what = f"student {erased}{where}"
    only = set(video_ids) if video_ids is not None else None
    change = _Change(output, what)
    rows = dict.fromkeys(records.SCHEMAS, 0)
    courses: set[str] = set()
    vids: set[str] = set()
    try:
        for path in _record_files(output, "faces", course):
            vid = path.stem.split("_", 1)[0]
            if only is not None and vid not in only:
                continue
            sid = pq.read_table(path, columns=["student_id"]).column("student_id")
            hit = rows_of(sid, erased, salt)
            n_hit = pc.sum(hit).as_py() or 0
            if not n_hit:
                continue
            faces = pq.read_table(path)
            removed_frames = faces.filter(hit).column("frame_index").to_numpy()
            change.replace(path, faces.filter(pc.invert(hit)))
            rows["faces"] += n_hit
            _lower_frame_counts(change, _sibling(output, "frames", path), removed_frames)
            for vpath in _video_files(output, path.stem, "videos", path):
                _lower_video_counts(change, vpath, n_hit)
            courses.add(_partition(path)[0])
            vids.add(vid)
    except BaseException:
        change.discard()
        raise
    rewritten = len(change.ops)
    identity_entries, other_files_deleted = None, 0
    if remember:
        assert isinstance(student_id, str)  # an ErasedStudent with remember raised above
        if not rows["faces"] and not _in_identity_store(output, student_id, course):
            change.discard()  # nothing of the student: no change, nothing remembered
            raise UnknownStudentError(
                f"no student {student_id!r}{where}: no face records and no identity-store entry hold it"
            )
    change.commit()
    if remember:
        assert isinstance(student_id, str)
        add_tombstones(output, student=erased, course=course)
        identity_entries = _forget_identity(output, student_id, course)
        other_files_deleted = _remove_reports(output, sorted(courses))
    return Removal(
        what=what,
        rows=rows,
        files_rewritten=rewritten,
        courses=sorted(courses),
        video_ids=sorted(vids),
        identity_entries=identity_entries,
        other_files_deleted=other_files_deleted,
    )


def _lower_frame_counts(change: _Change, frames_path: Path, removed_frames: np.ndarray) -> None:
    if not frames_path.is_file():
        return
    frames = pq.read_table(frames_path)
    idx, counts = np.unique(removed_frames, return_counts=True)
    minus = dict(zip(idx.tolist(), counts.tolist()))  # frame_index -> faces removed there
    n = [
        max(0, v - minus.get(f, 0))
        for f, v in zip(frames.column("frame_index").to_pylist(), frames.column("n_faces").to_pylist())
    ]
    i = frames.schema.get_field_index("n_faces")
    frames = frames.set_column(i, frames.schema.field(i), pa.array(n, pa.int32()))
    change.replace(frames_path, frames)


def _lower_video_counts(change: _Change, path: Path, faces_removed: int) -> None:
    t = pq.read_table(path)
    done = np.array([s == records.VideoStatus.DONE for s in t.column("status").to_pylist()])
    if not done.any():
        return
    for name, minus in (("faces", faces_removed), ("students", 1)):
        i = t.schema.get_field_index(name)
        old = t.column(name).to_pylist()
        new = [None if v is None else (max(0, v - minus) if d else v) for v, d in zip(old, done)]
        t = t.set_column(i, t.schema.field(i), pa.array(new, t.schema.field(i).type))
    change.replace(path, t)


def _in_identity_store(output: Path, student_id: str, course: str | None) -> bool:
    """Does the identity store (roster, pseudonyms, seat map; of ``course`` or any) hold the id?"""
    from fer_stream import identity

    return identity.holds_student(output, student_id, course)


def _forget_identity(output: Path, student_id: str, course: str | None) -> int:
    """Entries (descriptor rows, seats) the identity store removed for the student."""
    from fer_stream import identity

    return int(identity.forget_student(output, student_id, course))


def _forget_lecture_descriptors(
    output: Path, *, video_id: str | None = None, before: date | None = None
) -> int:
    """Pseudonym descriptors the identity store kept from these lectures (biometric data goes with
    the lectures it came from)."""
    from fer_stream import identity

    return int(identity.forget_lectures(output, video_id=video_id, before=before))


def forget_video(output: str | os.PathLike, video_id: str, *, reason: str = "forget") -> Removal:
    """Delete every record file of ``video_id`` (all tables, configurations and runs)."""
    return forget_videos(output, [video_id], what=f"video {video_id}", reason=reason)


def find_video(output: str | os.PathLike, prefix: str) -> str:
    """The one video_id of the records that starts with ``prefix`` (8+ hex digits, as reports and
    per-lecture student ids show it); a whole video_id is returned as it is.

    Raises:
        ValueError: a prefix too short, or that no video or several start with.
    """
    if VIDEO_ID_RE.fullmatch(prefix):
        return prefix
    if len(prefix) < 8:
        raise ValueError(f"--video {prefix!r}: give the video_id, or at least its first 8 hex digits")
    ids = records.read(output, "videos", columns=["video_id"]).column("video_id")
    found = sorted(set(ids.filter(pc.starts_with(ids, prefix)).to_pylist()))
    if len(found) != 1:
        raise ValueError(f"--video {prefix}: {len(found)} videos of the records start with it, need 1")
    return found[0]


def forget_videos(
    output: str | os.PathLike,
    video_ids: Iterable[str],
    *,
    what: str,
    reason: str,
    keep_config_hash: str | None = None,
    remember: bool = True,
) -> Removal:
    """Delete the record files of ``video_ids``.

    Args:
        keep_config_hash: keep the faces/frames files of this configuration and every videos/ row
            (a nightly run dropping what an older model wrote, once the new records are there).
        remember: add the videos to ``forgotten.json`` (a nightly run does not analyse them again).
    """
    output = Path(output)
    ids = sorted(set(video_ids))
    bad = [v for v in ids if not VIDEO_ID_RE.fullmatch(v)]
    if bad:  # also keeps glob characters out of the file patterns below
        raise ValueError(f"not a video_id (64 hex digits): {bad[0]!r}")
    change = _Change(output, what)
    rows = dict.fromkeys(records.SCHEMAS, 0)
    courses: set[str] = set()
    vids: set[str] = set()
    for name in records.SCHEMAS:
        if keep_config_hash is not None and name == "videos":
            continue
        for vid in ids:
            for path in (output / name).glob(f"course=*/lecture_date=*/{vid}_*.parquet"):
                if path.name.startswith(".") or (
                    keep_config_hash is not None and path.stem == f"{vid}_{keep_config_hash}"
                ):
                    continue
                rows[name] += _num_rows(path)
                change.delete(path)
                courses.add(_partition(path)[0])
                vids.add(vid)
    deleted = len(change.ops)
    change.commit()
    identity_entries, other_files_deleted = None, 0
    if remember:
        add_tombstones(output, ids, reason)
        other_files_deleted = _remove_reports(output, sorted(courses))
        identity_entries = sum(_forget_lecture_descriptors(output, video_id=v) for v in ids)
    return Removal(
        what=what,
        rows=rows,
        files_deleted=deleted,
        courses=sorted(courses),
        video_ids=sorted(vids),
        identity_entries=identity_entries,
        other_files_deleted=other_files_deleted,
    )


def forget_older_than(output: str | os.PathLike, days: int, today: date | None = None) -> Removal:
    """Delete every partition with ``lecture_date`` before ``today - days``, and run records and
    report folders older than that (they may name or summarise the removed lectures)."""
    if days < 0:
        raise ValueError("days must be >= 0")
    output = Path(output)
    cutoff = (today or date.today()) - timedelta(days=days)
    what = f"lectures before {cutoff.isoformat()} (older than {days} days)"
    change = _Change(output, what)
    rows = dict.fromkeys(records.SCHEMAS, 0)
    courses: set[str] = set()
    vids: set[str] = set()
    folders = []
    for name in records.SCHEMAS:
        for folder in sorted((output / name).glob("course=*/lecture_date=*")):
            try:
                day = date.fromisoformat(folder.name.split("=", 1)[1])
            except ValueError:
                continue
            if day >= cutoff:
                continue
            folders.append(folder)
            for path in sorted(folder.glob("*.parquet")):
                if path.name.startswith("."):
                    continue
                rows[name] += _num_rows(path)
                change.delete(path)
                vids.add(path.stem.split("_", 1)[0])
            courses.add(unquote(folder.parent.name.split("=", 1)[1]))
    deleted = len(change.ops)
    change.commit()
    for folder in folders:  # a killed writer's hidden leftovers there too, then the empty folders
        for leftover in folder.glob(".*"):
            leftover.unlink(missing_ok=True)
        for f in (folder, folder.parent):
            try:
                f.rmdir()
            except OSError:
                pass  # not empty: other dates of the course
    if vids:
        add_tombstones(output, sorted(vids), f"retention: lecture before {cutoff.isoformat()}")
    other_files_deleted = _remove_reports(output, sorted(courses)) + _prune_dated(output, cutoff)
    return Removal(
        what=what,
        rows=rows,
        files_deleted=deleted,
        courses=sorted(courses),
        video_ids=sorted(vids),
        identity_entries=_forget_lecture_descriptors(output, before=cutoff),
        other_files_deleted=other_files_deleted,
    )


def _prune_dated(output: Path, cutoff: date) -> int:
    """Run records started, and report folders dated, before ``cutoff``."""
    n = 0
    limit = datetime.combine(cutoff, datetime.min.time()).timestamp()
    for rec in (output / layout.RUNS_DIR).glob("*.json"):
        if rec.stat().st_mtime < limit:
            rec.unlink(missing_ok=True)
            n += 1
    for folder in (output / layout.REPORTS_DIR).glob("*"):
        if folder.is_dir() and _DATE_DIR_RE.match(folder.name) and date.fromisoformat(folder.name) < cutoff:
            for p in sorted(folder.rglob("*"), reverse=True):
                if p.is_dir():
                    p.rmdir()
                else:
                    p.unlink()
                    n += 1
            folder.rmdir()
    return n
