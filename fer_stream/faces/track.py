"""Face tracks across sampled frames, and per-lecture student keys for a fixed camera.

Two stages, each a small unit:

1. :class:`FaceTracker` links the detections of successive sampled frames (~1-5 fps, so frames
   are 0.2-1 s apart, possibly irregular) into tracks. Each frame: predict every track's box
   (last box, moved by a damped constant velocity for at most ``velocity_horizon_s``), score
   every (track, detection) pair with ``cost = (1 - IoU) + centre distance / face width``, gate
   the pairs, solve the assignment with the Hungarian algorithm
   (:func:`scipy.optimize.linear_sum_assignment`), then update, age, kill and give birth.
   A lost track can be re-associated for ``max_age_s`` (a student looking down for a few
   seconds keeps their id). IoU alone is brittle for the 20-40 px faces at the back of a room
   (a 3 px shift of a 24 px box already costs ~25 % IoU), hence the centre-distance gate in
   face widths.
2. :func:`assign_students` merges the tracks of one lecture into student keys ``s001, s002, ...``
   by seat: tracks whose mean centres lie within ``seat_radius`` face widths and whose time spans
   never overlap (two tracks seen in the same frame are two people) are merged, closest pair
   first. One student keeps one key for the whole lecture even when the tracker split them
   (absence longer than ``max_age_s``, occlusion, a segment boundary).

Segments of a long video tracked in parallel need no separate stitching step: give each
segment's tracker its own id range (``FaceTracker(config, first_id=k * 1_000_000 + 1)``), keep
``pts_s`` on the whole stream's clock, and run :func:`assign_students` on
``TrackSummary.concat(per_segment_summaries)``. The tracks either side of a seam do not overlap
in time, so a student cut at the seam is merged by seat like any other split track.

Units: pixels of the (fixed-size) sampled frames; ``pts_s`` in seconds from the start of the
stream; "face widths" are the mean box widths of the tracks being compared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from fer_stream.faces.detections import Detections, iou_matrix

_INFEASIBLE = 1e6  # cost of a gated-out pair; far above any feasible cost (< 1 + centre_gate)


@dataclass(frozen=True)
class TrackerConfig:
    """Parameters of :class:`FaceTracker`.

    Attributes:
        iou_gate: a (track, detection) pair whose IoU (predicted box vs detection) is at least
            this is feasible whatever its centre distance (large front-row faces moving fast).
        centre_gate: otherwise a pair is feasible when the centre distance is at most this many
            face widths (mean width of the two boxes): small faces at the back.
        max_size_ratio: a pair is infeasible when the widths differ by more than this factor.
        max_age_s: seconds after its last hit during which a confirmed track can still be
            re-associated; after that it is dead and a returning face gets a new id.
        min_hits: hits (matched detections, the birth included) that confirm a track. An
            unconfirmed track dies at the first frame it is not matched in, so a spurious
            detection never lingers to capture a real face later.
        velocity_smoothing: weight of the newest observed velocity (px/s) in the track's
            exponentially smoothed velocity, in (0, 1].
        velocity_horizon_s: the velocity moves the prediction for at most this many seconds, and
            a hit after a longer gap resets the velocity to 0 (students return to their seat;
            they do not keep drifting while unseen).
    """

    iou_gate: float = 0.3
    centre_gate: float = 1.0
    max_size_ratio: float = 1.6
    max_age_s: float = 10.0
    min_hits: int = 2
    velocity_smoothing: float = 0.5
    velocity_horizon_s: float = 1.0

    def __post_init__(self):
        if not 0.0 < self.iou_gate <= 1.0:
            raise ValueError(f"iou_gate must be in (0, 1], got {self.iou_gate}")
        if self.centre_gate <= 0 or self.max_size_ratio < 1 or self.max_age_s < 0:
            raise ValueError("centre_gate must be > 0, max_size_ratio >= 1 and max_age_s >= 0")
        if self.min_hits < 1:
            raise ValueError(f"min_hits must be >= 1, got {self.min_hits}")
        if not 0.0 < self.velocity_smoothing <= 1.0 or self.velocity_horizon_s < 0:
            raise ValueError("velocity_smoothing must be in (0, 1] and velocity_horizon_s >= 0")


@dataclass(frozen=True)
class TrackSummary:
    """Per-track statistics of one tracker (or of several, see :meth:`concat`), T tracks.

    Attributes:
        track_id: ``(T,) int64`` track ids, unique.
        first_pts_s: ``(T,) float64`` seconds of the track's first hit.
        last_pts_s: ``(T,) float64`` seconds of the track's last hit.
        hits: ``(T,) int64`` number of detections assigned to the track (>= 1).
        mean_cxcywh: ``(T, 4) float32`` mean box over the hits: centre x, centre y, width,
            height, in pixels.
    """

    track_id: np.ndarray
    first_pts_s: np.ndarray
    last_pts_s: np.ndarray
    hits: np.ndarray
    mean_cxcywh: np.ndarray

    def __post_init__(self):
        tid = np.asarray(self.track_id, np.int64).reshape(-1)
        n = len(tid)
        first = np.asarray(self.first_pts_s, np.float64).reshape(n)
        last = np.asarray(self.last_pts_s, np.float64).reshape(n)
        hits = np.asarray(self.hits, np.int64).reshape(n)
        box = np.asarray(self.mean_cxcywh, np.float32).reshape(n, 4)
        if len(np.unique(tid)) != n:
            raise ValueError("track ids must be unique (offset each segment's ids with first_id)")
        if np.any(last < first) or np.any(hits < 1):
            raise ValueError("need last_pts_s >= first_pts_s and hits >= 1")
        for name, value in [
            ("track_id", tid),
            ("first_pts_s", first),
            ("last_pts_s", last),
            ("hits", hits),
            ("mean_cxcywh", box),
        ]:
            object.__setattr__(self, name, value)

    @classmethod
    def empty(cls) -> TrackSummary:
        return cls(
            np.zeros(0, np.int64),
            np.zeros(0),
            np.zeros(0),
            np.zeros(0, np.int64),
            np.zeros((0, 4), np.float32),
        )

    @classmethod
    def concat(cls, parts: Sequence[TrackSummary]) -> TrackSummary:
        """The union of several summaries, e.g. of segments tracked in parallel.

        Raises ``ValueError`` if two parts share a track id.
        """
        if not parts:
            return cls.empty()
        return cls(
            *(
                np.concatenate([getattr(p, f) for p in parts])
                for f in ("track_id", "first_pts_s", "last_pts_s", "hits", "mean_cxcywh")
            )
        )

    def __len__(self) -> int:
        return len(self.track_id)


def _cxcywh(xyxy: np.ndarray) -> np.ndarray:
    """``(N, 4)`` x1, y1, x2, y2 -> ``(N, 4) float64`` centre x, centre y, width, height."""
    xyxy = np.asarray(xyxy, np.float64)
    return np.concatenate([(xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]], axis=1)


def _xyxy(cxcywh: np.ndarray) -> np.ndarray:
    """``(N, 4)`` centre x, centre y, width, height -> x1, y1, x2, y2."""
    return np.concatenate([cxcywh[:, :2] - cxcywh[:, 2:] / 2, cxcywh[:, :2] + cxcywh[:, 2:] / 2], axis=1)


def association_cost(pred: np.ndarray, det: np.ndarray, config: TrackerConfig) -> np.ndarray:
    """Gated cost of assigning detections to predicted track boxes.

    Args:
        pred: ``(T, 4)`` predicted track boxes, centre x, centre y, width, height (px).
        det: ``(N, 4)`` detection boxes, same layout.
    Returns:
        ``(T, N) float64``: ``(1 - IoU) + centre distance / mean width`` where the pair passes
        the gates (IoU >= ``iou_gate`` or distance <= ``centre_gate`` face widths, and widths
        within ``max_size_ratio``), else ``_INFEASIBLE``.
    """
    iou = iou_matrix(_xyxy(pred), _xyxy(det))
    width = (pred[:, None, 2] + det[None, :, 2]) / 2
    dist = np.linalg.norm(pred[:, None, :2] - det[None, :, :2], axis=-1) / np.maximum(width, 1e-9)
    ratio = np.maximum(pred[:, None, 2], det[None, :, 2]) / np.maximum(
        np.minimum(pred[:, None, 2], det[None, :, 2]), 1e-9
    )
    feasible = ((iou >= config.iou_gate) | (dist <= config.centre_gate)) & (ratio <= config.max_size_ratio)
    return np.where(feasible, (1.0 - iou) + dist, _INFEASIBLE)


class FaceTracker:
    """Multi-face tracker over the sampled frames of one stream (or one segment of it).

    Live tracks are parallel arrays (``_id``, ``_box``, ``_vel``, ``_last``, ``_hits``); per-track
    statistics of every track ever born are kept for :attr:`tracks`.

    Args:
        config: gates and lifetimes, see :class:`TrackerConfig`.
        first_id: id of the first track; ids increase by one per birth and are never reused.
            Give segments tracked in parallel disjoint ranges (e.g. ``k * 1_000_000 + 1``).
    """

    def __init__(self, config: TrackerConfig | None = None, first_id: int = 1):
        self.config = config or TrackerConfig()
        self._first_id = int(first_id)
        self._next_id = int(first_id)
        self._pts: float | None = None
        # live tracks
        self._id = np.zeros(0, np.int64)
        self._box = np.zeros((0, 4))  # last hit's box, centre x, centre y, width, height (px)
        self._vel = np.zeros((0, 2))  # smoothed centre velocity (px/s)
        self._last = np.zeros(0)  # pts_s of the last hit
        self._hits = np.zeros(0, np.int64)
        # statistics of every track, indexed by id - first_id
        self._stat_first: list[float] = []
        self._stat_last: list[float] = []
        self._stat_hits: list[int] = []
        self._stat_sum: list[np.ndarray] = []  # sum of the hits' cxcywh

    @property
    def active_ids(self) -> np.ndarray:
        """``(T,) int64`` ids of the tracks that can still be matched (confirmed or not)."""
        return self._id.copy()

    def predict(self, pts_s: float) -> np.ndarray:
        """``(T, 4)`` boxes of the live tracks predicted at ``pts_s`` (centre x, y, width, height)."""
        dt = np.clip(pts_s - self._last, 0.0, self.config.velocity_horizon_s)
        pred = self._box.copy()
        pred[:, :2] += self._vel * dt[:, None]
        return pred

    def update(self, pts_s: float, det: Detections) -> np.ndarray:
        """Assign the detections of one sampled frame to tracks.

        Args:
            pts_s: seconds from the start of the stream; non-decreasing across calls.
            det: the frame's detections (N may be 0: every track ages).
        Returns:
            ``(N,) int64`` track id of each detection, in the detections' order (>= ``first_id``),
            unconfirmed tracks included (their ``hits`` in :attr:`tracks` tell them apart).
        """
        cfg = self.config
        pts_s = float(pts_s)
        if not np.isfinite(pts_s) or (self._pts is not None and pts_s < self._pts):
            raise ValueError(f"pts_s must be finite and non-decreasing, got {pts_s} after {self._pts}")
        self._pts = pts_s
        self._keep(pts_s - self._last <= cfg.max_age_s)  # dead tracks cannot be matched

        boxes = _cxcywh(det.xyxy)
        n = len(boxes)
        out = np.zeros(n, np.int64)
        matched_t = np.zeros(len(self._id), bool)
        matched_d = np.zeros(n, bool)
        if len(self._id) and n:
            cost = association_cost(self.predict(pts_s), boxes, cfg)
            rows, cols = linear_sum_assignment(cost)
            ok = cost[rows, cols] < _INFEASIBLE
            rows, cols = rows[ok], cols[ok]
            self._hit(rows, pts_s, boxes[cols])
            out[cols] = self._id[rows]
            matched_t[rows] = True
            matched_d[cols] = True

        # an unconfirmed track that missed this frame was most likely a false detection
        self._keep(matched_t | (self._hits >= cfg.min_hits))
        for j in np.flatnonzero(~matched_d):
            out[j] = self._birth(pts_s, boxes[j])
        return out

    @property
    def tracks(self) -> TrackSummary:
        """Statistics of every track born so far, live or dead, ordered by id."""
        n = len(self._stat_hits)
        hits = np.asarray(self._stat_hits, np.int64)
        sums = np.asarray(self._stat_sum, np.float64).reshape(n, 4)
        return TrackSummary(
            np.arange(self._first_id, self._first_id + n, dtype=np.int64),
            np.asarray(self._stat_first),
            np.asarray(self._stat_last),
            hits,
            sums / np.maximum(hits, 1)[:, None],
        )

    def _keep(self, mask: np.ndarray) -> None:
        self._id, self._box, self._vel = self._id[mask], self._box[mask], self._vel[mask]
        self._last, self._hits = self._last[mask], self._hits[mask]

    def _hit(self, rows: np.ndarray, pts_s: float, boxes: np.ndarray) -> None:
        """Update live tracks ``rows`` with their matched ``(len(rows), 4)`` cxcywh boxes."""
        cfg = self.config
        dt = pts_s - self._last[rows]
        moving = (dt > 0) & (dt <= cfg.velocity_horizon_s)
        v_obs = (boxes[:, :2] - self._box[rows, :2]) / np.where(moving, dt, 1.0)[:, None]
        # a newborn track has no velocity yet: take the first observation as it is
        a = np.where(self._hits[rows] == 1, 1.0, cfg.velocity_smoothing)[:, None]
        vel = np.where(moving[:, None], a * v_obs + (1 - a) * self._vel[rows], 0.0)
        self._vel[rows] = np.where((dt == 0)[:, None], self._vel[rows], vel)
        self._box[rows] = boxes
        self._last[rows] = pts_s
        self._hits[rows] += 1
        for tid, box in zip(self._id[rows], boxes, strict=True):
            k = int(tid) - self._first_id
            self._stat_last[k] = pts_s
            self._stat_hits[k] += 1
            self._stat_sum[k] += box

    def _birth(self, pts_s: float, box: np.ndarray) -> int:
        tid = self._next_id
        self._next_id += 1
        self._id = np.append(self._id, tid)
        self._box = np.vstack([self._box, box[None]])
        self._vel = np.vstack([self._vel, np.zeros((1, 2))])
        self._last = np.append(self._last, pts_s)
        self._hits = np.append(self._hits, 1)
        self._stat_first.append(pts_s)
        self._stat_last.append(pts_s)
        self._stat_hits.append(1)
        self._stat_sum.append(box.astype(np.float64).copy())
        return tid


@dataclass(frozen=True)
class StudentConfig:
    """Parameters of :func:`assign_students`.

    Attributes:
        seat_radius: tracks (or groups of tracks) whose hit-weighted mean centres are at most this
            many face widths apart may be the same student (fixed camera: same seat).
        min_track_hits: tracks with fewer hits do not found a student of their own; they join
            the nearest compatible student within ``seat_radius``, or are left out of the
            mapping (a stray false detection is not a student).
        row_tolerance: students whose centres differ by at most this many face widths in y
            (chained, top to bottom) are one row when numbering keys.
    """

    seat_radius: float = 1.25
    min_track_hits: int = 3
    row_tolerance: float = 0.5

    def __post_init__(self):
        if self.seat_radius < 0 or self.min_track_hits < 1 or self.row_tolerance < 0:
            raise ValueError("need seat_radius >= 0, min_track_hits >= 1 and row_tolerance >= 0")


def _overlap(tracks: TrackSummary) -> np.ndarray:
    """``(T, T) bool``: the time spans [first, last] of two tracks share an instant.

    Spans are a conservative stand-in for "seen in the same frame": the tracker gives a returning
    face to its live (possibly lost) track first, so one person's tracks follow one another.
    """
    f, la = tracks.first_pts_s, tracks.last_pts_s
    return (f[:, None] <= la[None, :]) & (f[None, :] <= la[:, None])


def _seat_distance(c: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``(K, 2)`` centres, ``(K,)`` widths -> ``(K, K)`` centre distance in mean face widths."""
    return np.linalg.norm(c[:, None] - c[None, :], axis=-1) / np.maximum((w[:, None] + w[None, :]) / 2, 1e-9)


def _reading_order(c: np.ndarray, w: np.ndarray, row_tolerance: float) -> np.ndarray:
    """Order of ``(K, 2)`` seat centres: rows top to bottom, then left to right in a row."""
    by_y = np.argsort(c[:, 1], kind="stable")
    gap = np.diff(c[by_y, 1]) > row_tolerance * (w[by_y][1:] + w[by_y][:-1]) / 2
    row = np.empty(len(c), np.int64)
    row[by_y] = np.concatenate([[0], np.cumsum(gap)])
    return np.lexsort((c[:, 0], row))


def assign_students(
    tracks: TrackSummary, frame_wh: tuple[int, int] | None = None, config: StudentConfig | None = None
) -> dict[int, str]:
    """Merge the tracks of one lecture (fixed camera) into student keys by seat.

    Agglomerative, closest pair first: every track with ``min_track_hits`` hits starts as a group;
    the two groups whose hit-weighted mean centres are closest (in mean face widths) are merged
    while that distance is within ``seat_radius`` and no track of one overlaps in time any track
    of the other (cannot-link: people seen together are different people). Shorter tracks then
    join the nearest compatible group within ``seat_radius``, or stay unassigned.

    Keys ``s001, s002, ...`` number the students by seat in reading order (rows top to bottom,
    then left to right), so they depend only on where students sit, not on track ids, on the
    order of the tracks, or on how the lecture was cut into segments.

    Args:
        tracks: summaries of all the lecture's tracks (the union of all its segments).
        frame_wh: (width, height) of the sampled frames in pixels; if given, mean centres must lie
            within the frame (within one face width), which catches summaries of a different
            resolution mixed in.
        config: see :class:`StudentConfig`.
    Returns:
        ``{track_id: student_key}`` for every track except short ones that fit no student.
    """
    cfg = config or StudentConfig()
    if len(tracks) == 0:
        return {}
    box = tracks.mean_cxcywh.astype(np.float64)
    if frame_wh is not None:
        lo, hi = -box[:, 2:3], np.asarray(frame_wh, np.float64)[None] + box[:, 2:3]
        if np.any((box[:, :2] < lo) | (box[:, :2] > hi)):
            raise ValueError(f"track centres outside the {frame_wh} frame: mixed resolutions?")
    hits = tracks.hits.astype(np.float64)
    overlap = _overlap(tracks)
    core = np.flatnonzero(tracks.hits >= cfg.min_track_hits)

    # group statistics as hit-weighted sums, indexed like `core`
    weight = hits[core].copy()
    sums = box[core, :3] * weight[:, None]  # cx, cy, width
    conflict = overlap[np.ix_(core, core)].copy()
    dist = _seat_distance(box[core, :2], box[core, 2])
    dist[conflict] = np.inf
    np.fill_diagonal(dist, np.inf)
    group = np.arange(len(core))  # group index of each core track
    alive = np.ones(len(core), bool)
    while len(core) > 1:
        i, j = sorted(np.unravel_index(np.argmin(dist), dist.shape))
        if not dist[i, j] <= cfg.seat_radius:
            break
        weight[i] += weight[j]
        sums[i] += sums[j]
        conflict[i] |= conflict[j]
        conflict[:, i] = conflict[i]
        group[group == j] = i
        alive[j] = False
        dist[j, :] = dist[:, j] = np.inf
        mean = sums / weight[:, None]
        row = np.linalg.norm(mean[:, :2] - mean[i, :2], axis=-1) / ((mean[:, 2] + mean[i, 2]) / 2)
        row[~alive | conflict[i]] = np.inf
        row[i] = np.inf
        dist[i, :] = dist[:, i] = row

    label = np.full(len(tracks), -1, np.int64)
    label[core] = group
    groups = np.unique(group)
    if not len(groups):
        return {}
    mean = sums[groups] / weight[groups, None]

    # short tracks join the nearest compatible group, in summary order (deterministic)
    for t in np.flatnonzero(tracks.hits < cfg.min_track_hits):
        d = np.linalg.norm(mean[:, :2] - box[t, :2], axis=-1) / ((mean[:, 2] + box[t, 2]) / 2)
        members = np.flatnonzero(overlap[t] & (label >= 0))
        d[np.isin(groups, label[members])] = np.inf
        k = int(np.argmin(d))
        if d[k] <= cfg.seat_radius:
            label[t] = groups[k]

    order = _reading_order(mean[:, :2], mean[:, 2], cfg.row_tolerance)
    key = {int(groups[k]): f"s{n + 1:03d}" for n, k in enumerate(order)}
    return {int(tracks.track_id[t]): key[int(label[t])] for t in np.flatnonzero(label >= 0)}
