"""``OUTPUT/forgotten.json``: what was erased, so that it stays erased; never data, never a student id.

Videos are kept by ``video_id`` (a nightly run does not analyse a forgotten file again); students as
:class:`ErasedStudent`, the HMAC of their id under the identity store's salt
(``identity.store.erasure_salt``), so that a nightly run re-analysing a lecture can remove their
rows again (:func:`rows_of`) without the file naming them. The file is written 0600, atomically.
``fer_stream.retention`` writes it (:func:`add_tombstones`); ``nightly`` reads it through
``retention.load_tombstones``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from fer_stream.ops import atomic, runlog
from fer_stream.ops.layout import TOMBSTONES


@dataclass(frozen=True)
class ErasedStudent:
    """A forgotten student as ``forgotten.json`` keeps them: ``digest`` is
    ``identity.store.student_digest`` of the id under the store's salt, never the id itself.

    ``forget_student`` takes one in place of an id: it removes the rows whose id has this digest
    (a nightly run re-applying an erasure). Its text form is the digest, so records name it so.
    """

    digest: str

    def __str__(self) -> str:
        return self.digest


def salt_of(output: Path) -> bytes:
    """The identity store's erasure salt (made on first use). Imported here, not at the top: the
    identity package imports ``ops``."""
    from fer_stream.identity import store

    return store.erasure_salt(output)


def digest(student_id: str, salt: bytes) -> str:
    """``hmac-sha256:<hex>`` of ``student_id`` under ``salt`` (``identity.store.student_digest``)."""
    from fer_stream.identity import store

    return store.student_digest(student_id, salt)


def _stones_on_disk(output: Path) -> dict:
    path = output / TOMBSTONES
    if not path.is_file():
        return {"videos": {}, "students": []}
    obj = json.loads(path.read_text(encoding="utf-8"))
    return {"videos": obj.get("videos", {}), "students": obj.get("students", [])}


def _hashed(output: Path, students: list[dict]) -> list[dict]:
    """File entries ``{"student": digest, "course", "at"}``; an entry of an older file that kept the
    id in clear (``"student_id"``) is hashed (and written so by the next erasure)."""
    out = []
    for s in students:
        if "student" not in s:
            s = {
                "student": digest(s["student_id"], salt_of(output)),
                "course": s.get("course"),
                "at": s.get("at"),
            }
        out.append(s)
    return out


def load_tombstones(output: str | os.PathLike) -> dict:
    """``{"videos": {video_id: {"at", "reason"}}, "students": [{"student_id", "course", "at"}]}``;
    each student's ``student_id`` is an :class:`ErasedStudent` (a digest: the file holds no id),
    which ``forget_student`` takes in place of an id."""
    output = Path(output)
    stones = _stones_on_disk(output)
    students = [
        {"student_id": ErasedStudent(s["student"]), "course": s.get("course"), "at": s.get("at")}
        for s in _hashed(output, stones["students"])
    ]
    return {"videos": stones["videos"], "students": students}


def add_tombstones(
    output: Path,
    videos: Iterable[str] = (),
    reason: str = "",
    student: ErasedStudent | None = None,
    course: str | None = None,
):
    """Remember erased videos (by video_id) or a student (by digest) in ``forgotten.json``, 0600."""
    stones = _stones_on_disk(output)
    stones["students"] = _hashed(output, stones["students"])
    for vid in videos:
        stones["videos"][vid] = {"at": runlog.iso(), "reason": reason}
    if student is not None and not any(
        s["student"] == student.digest and s.get("course") == course for s in stones["students"]
    ):
        stones["students"].append({"student": student.digest, "course": course, "at": runlog.iso()})
    atomic.write_json_atomic(output / TOMBSTONES, stones, mode=0o600)


def rows_of(sid: pa.ChunkedArray, erased: ErasedStudent, salt: bytes) -> pa.ChunkedArray:
    """Which rows of a ``student_id`` column belong to the student (ids compared by digest)."""
    ids = [s for s in pc.unique(sid).to_pylist() if s is not None]
    theirs = [s for s in ids if digest(s, salt) == erased.digest]
    return pc.fill_null(pc.is_in(sid, value_set=pa.array(theirs, pa.string())), False)
