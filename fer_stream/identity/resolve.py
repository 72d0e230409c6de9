"""Course-wide student ids for one lecture's student keys, by the first mode that applies::

    roster   (OUTPUT/identity/<course>/roster.npz):      match enrolled photos, else unknown
    seat map (OUTPUT/identity/<course>/seats.json):      key's mean position in a seat, else unknown
    neither  (OUTPUT/identity/<course>/pseudonyms.npz):  match the course's pseudonym centroids,
                                                         else a new pseudonym; no names anywhere

Ids in ``student_id``:
  * roster: the id of the roster row (whatever the course uses, e.g. a student number);
  * seat map: the ``student_id`` of the seat;
  * pseudonymous: ``<course hash>-p0007`` (8 hex digits of sha256(course), a number per course that is
    never reused, even after ``forget_student``);
  * not identified (no match, or no good frame to describe): ``unknown-<video_id[:8]>-<n>``, valid
    within one lecture only (no descriptor of a person who did not enrol is kept in roster or
    seat-map courses, so they cannot be followed across lectures).
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np

from fer_stream.config import IdentityConfig
from fer_stream.faces.descriptors import DIM
from fer_stream.identity.matching import Gallery, key_centres, match, student_descriptors
from fer_stream.identity.store import (
    PSEUDONYM_FILE,
    ROSTER_FILE,
    course_dir,
    course_hash,
    load_gallery,
    save_gallery,
    stored_seat_map,
)
from fer_stream.inputs import check_course


class IdentityMode(enum.StrEnum):
    """How a course's lectures get their student ids: the first that applies (module docstring)."""

    ROSTER = "roster"  # match enrolled photos (roster.npz)
    SEATS = "seats"  # the seat of the key's mean face position (seats.json)
    PSEUDONYM = "pseudonym"  # match the course's pseudonym centroids, else a new pseudonym


@dataclass(frozen=True, kw_only=True)
class Resolution:
    """Student ids of one lecture's keys, and how they were found.

    Attributes:
        student_ids: ``{key: student_id}`` for every key.
        mode: roster, seats or pseudonym.
        matched: keys that got a roster id, a seat or an existing pseudonym.
        new: keys that got a new pseudonym (pseudonym mode).
        unknown: keys left ``unknown-...``.
    """

    student_ids: dict[str, str]
    mode: IdentityMode
    matched: int
    new: int
    unknown: int


def resolve_students(
    output_dir: str | os.PathLike,
    course: str,
    video_id: str,
    lecture_date: date,
    keys: Mapping[int, str],
    tracks,
    frame_wh: tuple[int, int] | None,
    track_descriptors: Mapping[int, np.ndarray],
    config: IdentityConfig | None = None,
) -> Resolution:
    """Course-wide student ids for one lecture's student keys (see the module docstring for modes).

    In pseudonym mode the course's store gains this lecture's student descriptors (one median per
    key that has one), replacing rows of an earlier analysis of the same ``video_id``, so a rerun
    does not count a lecture twice.

    Args:
        keys: ``{track_id: key}`` from ``assign_students``.
        tracks: the lecture's ``TrackSummary`` (seat positions).
        frame_wh: frame size in pixels (needed for seat maps).
        track_descriptors: ``{track_id: (k, 128)}`` from ``DescriptorCollector`` (all segments).
    """
    cfg = config or IdentityConfig()
    course = check_course(course)
    folder = course_dir(output_dir, course)
    names = sorted(set(keys.values()))
    desc = student_descriptors(track_descriptors, keys)
    found: dict[str, str] = {}
    new = 0
    roster, _ = load_gallery(folder / ROSTER_FILE)
    seats = stored_seat_map(output_dir, course)
    if len(roster):
        mode = IdentityMode.ROSTER
        with_desc = [k for k in names if k in desc]
        q = np.stack([desc[k] for k in with_desc]) if with_desc else np.zeros((0, DIM))
        for k, sid in zip(with_desc, match(q, roster.descriptors, roster.ids, cfg.threshold)):
            if sid is not None:
                found[k] = sid
        matched = len(found)
    elif seats is not None:
        mode = IdentityMode.SEATS
        if frame_wh is not None and names:
            centres = key_centres(tracks, keys, frame_wh)
            for k, sid in zip(names, seats.assign(np.stack([centres[k] for k in names]))):
                if sid is not None:
                    found[k] = sid
        matched = len(found)
    else:
        mode = IdentityMode.PSEUDONYM
        path = folder / PSEUDONYM_FILE
        loaded, next_number = load_gallery(path)
        # Centroids over every row, an earlier analysis of this video included (so a rerun gives its
        # people the ids they had); that analysis's rows are then replaced by this one's.
        pids = sorted(set(loaded.ids.tolist()))
        centroids = np.stack([loaded.descriptors[loaded.ids == p].mean(0) for p in pids]) if pids else None
        store = loaded.take(loaded.video_id != video_id)
        with_desc = [k for k in names if k in desc]
        q = np.stack([desc[k] for k in with_desc]) if with_desc else np.zeros((0, DIM))
        hits = match(q, centroids if centroids is not None else np.zeros((0, DIM)), pids, cfg.threshold)
        prefix = course_hash(course)
        for k, pid in zip(with_desc, hits):
            if pid is None:
                pid, next_number, new = f"{prefix}-p{next_number:04d}", next_number + 1, new + 1
            found[k] = pid
        matched = len(found) - new
        if with_desc:
            rows = Gallery(
                np.asarray([found[k] for k in with_desc], str),
                q,
                np.full(len(with_desc), video_id),
                np.full(len(with_desc), lecture_date.isoformat()),
            )
            store = store.plus(rows)
        if with_desc or len(store) != len(loaded):
            save_gallery(path, store, next_number)
    unknown = [k for k in names if k not in found]
    for n, k in enumerate(unknown, 1):
        found[k] = f"unknown-{video_id[:8]}-{n}"
    return Resolution(
        student_ids={k: found[k] for k in names}, mode=mode, matched=matched, new=new, unknown=len(unknown)
    )
