"""Forgetting: a student's entries, or the pseudonym descriptors of lectures, out of the store.

Face records are not touched here; ``fer_stream.retention`` removes those and calls these.
"""

from __future__ import annotations

import os
from datetime import date

import numpy as np

from fer_stream.identity.matching import SeatMap
from fer_stream.identity.store import (
    PSEUDONYM_FILE,
    ROSTER_FILE,
    SEATS_FILE,
    course_folders,
    load_gallery,
    load_seat_map,
    save_gallery,
    save_seat_map,
)


def holds_student(output_dir: str | os.PathLike, student_id: str, course: str | None = None) -> bool:
    """Does the store hold ``student_id`` (enrolment or pseudonym descriptors, a seat), in ``course``
    or any course? Nothing is changed."""
    for folder in course_folders(output_dir, course):
        for name in (ROSTER_FILE, PSEUDONYM_FILE):
            if (folder / name).is_file() and (load_gallery(folder / name)[0].ids == student_id).any():
                return True
        if (folder / SEATS_FILE).is_file() and student_id in load_seat_map(folder / SEATS_FILE).student_ids:
            return True
    return False


def forget_student(output_dir: str | os.PathLike, student_id: str, course: str | None = None) -> int:
    """Remove everything the identity store holds about ``student_id``.

    Deletes the student's enrolment descriptors (roster), pseudonym descriptors and seat-map
    entries, in ``course`` or, if ``None``, in every course of the store. Files are rewritten
    atomically; a pseudonym number is never handed out again. Face records are not touched (the
    caller, ``fer-stream forget``, removes those).

    Returns:
        entries removed: descriptor rows plus seat-map entries (0 if the store holds nothing of them).
    """
    removed = 0
    for folder in course_folders(output_dir, course):
        for name in (ROSTER_FILE, PSEUDONYM_FILE):
            path = folder / name
            if not path.is_file():
                continue
            g, next_number = load_gallery(path)
            hit = g.ids == student_id
            if hit.any():
                save_gallery(path, g.take(~hit), next_number)
                removed += int(hit.sum())
        seats_path = folder / SEATS_FILE
        if seats_path.is_file():
            seats = load_seat_map(seats_path)
            keep = [i for i, s in enumerate(seats.student_ids) if s != student_id]
            if len(keep) < len(seats.student_ids):
                ids = tuple(seats.student_ids[i] for i in keep)
                save_seat_map(output_dir, folder.name, SeatMap(ids, seats.rects[keep], seats.room))
                removed += len(seats.student_ids) - len(keep)
    return removed


def forget_lectures(
    output_dir: str | os.PathLike,
    *,
    video_id: str | None = None,
    before: date | None = None,
    course: str | None = None,
) -> int:
    """Remove pseudonym descriptors that came from one lecture (``video_id``) or from lectures
    dated before ``before`` (retention), in ``course`` or every course. Enrolment photos' descriptors
    are kept (they have no lecture); a pseudonym whose rows all go is matched no more.

    Returns:
        descriptor rows removed.
    """
    if (video_id is None) == (before is None):
        raise ValueError("give exactly one of video_id and before")
    removed = 0
    for folder in course_folders(output_dir, course):
        path = folder / PSEUDONYM_FILE
        if not path.is_file():
            continue
        g, next_number = load_gallery(path)
        if video_id is not None:
            hit = g.video_id == video_id
        else:
            assert before is not None  # exactly one of video_id and before (checked above)
            # rows without a lecture (enrolment photos) are never "before" anything
            hit = np.asarray([d != "" and d < before.isoformat() for d in g.lecture_date.tolist()], bool)
            hit = hit.reshape(-1)
        if hit.any():
            save_gallery(path, g.take(~hit), next_number)
            removed += int(hit.sum())
    return removed
