"""Matching a lecture's students to identities: the maths of student identity (no files; the store
is ``fer_stream.identity.store``).

Within a lecture, tracks are merged into seat-based student keys (``s001``, ... by
``fer_stream.faces.track.assign_students``). Across lectures a key is linked to a person by its
face::

    tracked frames --DescriptorCollector (on_frame hook, fer_stream.faces.descriptors)-->
      <= K descriptors per track
      -> student_descriptors: element-wise median per student key              (128,) each
      -> match (one-to-one) against a Gallery (roster photos or pseudonym centroids),
         or SeatMap.assign of key_centres (a seat map: no face needed)

Two faces of one person are usually within Euclidean distance 0.6 of each other (dlib's documented
threshold; accuracy: docs/PRIVACY.md), which :class:`fer_stream.config.IdentityConfig` keeps as the
default. Every assignment is one-to-one (Hungarian), so two keys of one lecture never get the same id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from fer_stream.faces.descriptors import DIM

_INFEASIBLE = 1e6  # cost of a pair beyond the threshold (or outside the seat): never assigned


# --------------------------------------------------------------------------------------------------
# Descriptors per student


def student_descriptors(
    track_descriptors: Mapping[int, np.ndarray], keys: Mapping[int, str]
) -> dict[str, np.ndarray]:
    """One descriptor per student key: the element-wise median over all its tracks' descriptors.

    The median keeps one bad frame (blur, a hand before the face) from pulling the student's
    descriptor away. Keys whose tracks have no descriptor are absent.

    Returns:
        ``{key: (128,) float32}``.
    """
    pooled: dict[str, list[np.ndarray]] = {}
    for tid, d in track_descriptors.items():
        if int(tid) in keys and len(d):
            pooled.setdefault(keys[int(tid)], []).append(np.asarray(d, np.float32).reshape(-1, DIM))
    return {k: np.median(np.concatenate(v), axis=0).astype(np.float32) for k, v in sorted(pooled.items())}


# --------------------------------------------------------------------------------------------------
# Matching


def match(
    queries: np.ndarray, gallery: np.ndarray, gallery_ids: Sequence[str] | np.ndarray, threshold: float = 0.6
) -> list[str | None]:
    """One-to-one assignment of query descriptors to gallery identities.

    The distance of a query to an identity is the smallest Euclidean distance to any of its gallery
    rows (several enrolment photos). The assignment minimises the summed distance (Hungarian) over
    pairs within ``threshold``, so two queries never get the same identity, and a query whose
    best identity went to a closer query is left unmatched rather than given its second best
    beyond the threshold.

    Args:
        queries: ``(K, 128)`` descriptors (e.g. one per student key).
        gallery: ``(M, 128)`` descriptors.
        gallery_ids: ``(M,)`` identity of each gallery row (repeats allowed).

    Returns:
        For each query, its identity or ``None`` (no identity within ``threshold``).
    """
    queries = np.asarray(queries, np.float64).reshape(-1, DIM)
    gallery = np.asarray(gallery, np.float64).reshape(-1, DIM)
    ids = np.asarray(gallery_ids, dtype=object)
    if len(ids) != len(gallery):
        raise ValueError(f"{len(gallery)} gallery rows but {len(ids)} ids")
    out: list[str | None] = [None] * len(queries)
    if not len(queries) or not len(gallery):
        return out
    names = sorted(set(ids.tolist()))
    row_dist = np.linalg.norm(queries[:, None] - gallery[None], axis=-1)  # (K, M)
    dist = np.stack([row_dist[:, ids == name].min(1) for name in names], 1)  # (K, identities)
    cost = np.where(dist <= threshold, dist, _INFEASIBLE)
    for r, c in zip(*linear_sum_assignment(cost)):
        if cost[r, c] < _INFEASIBLE:
            out[r] = names[c]
    return out


# --------------------------------------------------------------------------------------------------
# Seat maps


@dataclass(frozen=True)
class SeatMap:
    """Seats of one room's fixed camera: a rectangle of the image per student id.

    Attributes:
        student_ids: ``(S,)`` id of each seat, all different.
        rects: ``(S, 4) float64`` x1, y1, x2, y2 as fractions of the frame's width and height, [0, 1].
        room: free text, for people (not used in matching).
    """

    student_ids: tuple[str, ...]
    rects: np.ndarray
    room: str = ""

    def __post_init__(self):
        rects = np.asarray(self.rects, np.float64).reshape(-1, 4)
        ids = tuple(str(s) for s in self.student_ids)
        if len(ids) != len(rects):
            raise ValueError(f"{len(ids)} student ids but {len(rects)} rectangles")
        if len(set(ids)) != len(ids) or any(not s.strip() for s in ids):
            raise ValueError("seat student ids must be non-empty and all different")
        if not np.isfinite(rects).all() or (rects < 0).any() or (rects > 1).any():
            raise ValueError("seat rectangles must lie within the frame (fractions in [0, 1])")
        if ((rects[:, 2:] - rects[:, :2]) <= 0).any():
            raise ValueError("seat rectangles need x2 > x1 and y2 > y1")
        object.__setattr__(self, "student_ids", ids)
        object.__setattr__(self, "rects", rects)

    @classmethod
    def from_json(cls, obj: dict) -> SeatMap:
        """Parse the object of a ``seats.json`` (docs/PRIVACY.md)::

            {"room": "B-204", "units": "normalized",
             "seats": [{"student_id": "st-0412", "rect": [0.10, 0.30, 0.22, 0.55]}, ...]}

        ``rect`` is x1, y1, x2, y2: with ``"units": "normalized"`` (the default) as fractions of the
        frame's width and height, so one map fits every resolution of the same camera view; with
        ``"units": "pixels"`` in pixels of an image of ``"frame_size": [width, height]``.

        Raises:
            ValueError: bad values.
        """
        if not isinstance(obj, dict) or not isinstance(obj.get("seats"), list):
            raise ValueError('a seat map is an object with a "seats" list')
        units = obj.get("units", "normalized")
        seats = obj["seats"]
        try:
            ids = [str(s["student_id"]) for s in seats]
            rects = np.asarray([[float(v) for v in s["rect"]] for s in seats], np.float64).reshape(-1, 4)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f'every seat needs "student_id" and "rect": [x1, y1, x2, y2] ({e})') from e
        if units == "pixels":
            size = obj.get("frame_size")
            if not (isinstance(size, list) and len(size) == 2 and all(float(v) > 0 for v in size)):
                raise ValueError('"units": "pixels" needs "frame_size": [width, height] of the camera image')
            rects = rects / np.asarray([size[0], size[1], size[0], size[1]], np.float64)
        elif units != "normalized":
            raise ValueError(f'"units" must be "normalized" or "pixels", got {units!r}')
        return cls(tuple(ids), rects, str(obj.get("room", "")))

    def to_json(self) -> dict:
        return {
            "room": self.room,
            "units": "normalized",
            "seats": [
                {"student_id": s, "rect": [round(float(v), 6) for v in r]}
                for s, r in zip(self.student_ids, self.rects)
            ],
        }

    def assign(self, centres: np.ndarray) -> list[str | None]:
        """Seat of each student: the rectangle holding its mean face centre, one student per seat.

        Args:
            centres: ``(K, 2)`` face centres as fractions of the frame's width and height.

        Returns:
            For each centre, a seat's student id or ``None`` (in no seat, or its seat went to a
            student closer to the seat's centre). Overlapping seats are shared out by distance.
        """
        c = np.asarray(centres, np.float64).reshape(-1, 2)
        out: list[str | None] = [None] * len(c)
        if not len(c) or not len(self.rects):
            return out
        r = self.rects
        inside = (c[:, None, 0] >= r[None, :, 0]) & (c[:, None, 0] <= r[None, :, 2])
        inside &= (c[:, None, 1] >= r[None, :, 1]) & (c[:, None, 1] <= r[None, :, 3])
        mid = (r[:, :2] + r[:, 2:]) / 2
        dist = np.linalg.norm(c[:, None] - mid[None], axis=-1)
        cost = np.where(inside, dist, _INFEASIBLE)
        for i, j in zip(*linear_sum_assignment(cost)):
            if cost[i, j] < _INFEASIBLE:
                out[i] = self.student_ids[j]
        return out


def key_centres(tracks, keys: Mapping[int, str], frame_wh: tuple[int, int]) -> dict[str, np.ndarray]:
    """Hit-weighted mean face centre of each student key, as fractions of the frame size.

    Args:
        tracks: a ``TrackSummary`` (``track_id``, ``hits``, ``mean_cxcywh`` in pixels).
        keys: ``{track_id: key}`` from ``assign_students``.
        frame_wh: (width, height) of the frames, pixels.

    Returns:
        ``{key: (2,) float64}``.
    """
    sums: dict[str, np.ndarray] = {}
    for tid, hits, box in zip(tracks.track_id.tolist(), tracks.hits.tolist(), tracks.mean_cxcywh):
        if tid in keys:
            acc = sums.setdefault(keys[tid], np.zeros(3))
            acc += (hits * box[0], hits * box[1], hits)
    wh = np.asarray(frame_wh, np.float64)
    return {k: v[:2] / v[2] / wh for k, v in sorted(sums.items())}


# --------------------------------------------------------------------------------------------------
# Galleries: stored descriptors (kept on disk by fer_stream.identity.store)


@dataclass(frozen=True)
class Gallery:
    """Stored descriptors as parallel arrays (M rows).

    Attributes:
        ids: ``(M,)`` student id of each row (roster id or pseudonym).
        descriptors: ``(M, 128) float32``.
        video_id: ``(M,)`` the lecture a pseudonym row comes from; ``""`` for enrolment photos.
        lecture_date: ``(M,)`` ISO date of that lecture (for retention); ``""`` for enrolment photos.
    """

    ids: np.ndarray
    descriptors: np.ndarray
    video_id: np.ndarray
    lecture_date: np.ndarray

    def __post_init__(self):
        d = np.asarray(self.descriptors, np.float32).reshape(-1, DIM)
        m = len(d)
        for name in ("ids", "video_id", "lecture_date"):
            a = np.asarray(getattr(self, name), dtype=str).reshape(-1)
            if len(a) != m:
                raise ValueError(f"{name} has {len(a)} rows, descriptors {m}")
            object.__setattr__(self, name, a)
        if not np.isfinite(d).all():
            raise ValueError("descriptors must be finite")
        object.__setattr__(self, "descriptors", d)

    @classmethod
    def empty(cls) -> Gallery:
        return cls(np.zeros(0, str), np.zeros((0, DIM), np.float32), np.zeros(0, str), np.zeros(0, str))

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, mask: np.ndarray) -> Gallery:
        return Gallery(self.ids[mask], self.descriptors[mask], self.video_id[mask], self.lecture_date[mask])

    def plus(self, other: Gallery) -> Gallery:
        return Gallery(
            *(np.concatenate([getattr(self, f), getattr(other, f)]) for f in Gallery.__dataclass_fields__)
        )
