"""The faces table from the frames' faces: one code path for the pipeline, ``fer_stream.analyze``
and ``fer-stream detect``. A frame's faces (``FrameFaces``) -> its measured columns
(:func:`frame_columns`), accumulated over a segment (:class:`FaceColumns`), then one video's
``faces`` table with its emotion and students (:func:`faces_table`, schema in ``fer_stream.records``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import numpy as np
import pyarrow as pa

from fer_stream.labels import FER2013_LABELS
from fer_stream.records import RecordsError, make_table

# Per-face columns measured before classification, in FACES_SCHEMA order.
MEASURED_COLUMNS: tuple[str, ...] = (
    *("frame_index", "pts_s", "track_id", "x1", "y1", "x2", "y2", "det_score", "face_px"),
    *("pose_readable", "eyes_readable", "yaw", "pitch", "roll", "ear", "attentive", "attention"),
    *("head_readable", "head_state", "emotion_readable"),
)
_BOOL = ("pose_readable", "eyes_readable", "head_readable", "emotion_readable")
_MEASURED_DTYPES: dict[str, np.dtype] = {
    "frame_index": np.dtype(np.int64),
    "pts_s": np.dtype(np.float64),
    "track_id": np.dtype(np.int64),
    **{c: np.dtype(np.bool_) for c in _BOOL},
    "attentive": np.dtype(object),  # True, False or None (null where attention is)
    "head_state": np.dtype(object),  # a label or None
}


def frame_columns(ff) -> dict[str, np.ndarray]:
    """The measured columns of one frame's faces (a ``lecture.FrameFaces``): ``{name: (N,)}``."""
    n, xyxy = len(ff), ff.det.xyxy
    return {
        "frame_index": np.full(n, ff.frame_index, np.int64),
        "pts_s": np.full(n, ff.pts_s, np.float64),
        "track_id": np.asarray(ff.track_id, np.int64),
        "x1": xyxy[:, 0],
        "y1": xyxy[:, 1],
        "x2": xyxy[:, 2],
        "y2": xyxy[:, 3],
        "det_score": ff.det.score,
        "face_px": ff.face_px,
        "pose_readable": np.asarray(ff.pose_readable, bool),
        "eyes_readable": np.asarray(ff.eyes_readable, bool),
        "yaw": ff.yaw,
        "pitch": ff.pitch,
        "roll": ff.roll,
        "ear": ff.ear,
        "attentive": nullable_flag(ff.attentive, ff.attention),
        "attention": ff.attention,
        "head_readable": np.asarray(ff.head_readable, bool),
        "head_state": np.asarray(ff.head_state, object),
        "emotion_readable": np.asarray(ff.emotion_readable, bool),
    }


def nullable_flag(flag, value) -> np.ndarray:
    """``(N,) object``: ``flag`` as Python bools, ``None`` where ``value`` is NaN: a flag derived from a
    value is null wherever the value is (``attentive`` where ``attention`` was not measured)."""
    out = np.array([None if f is None else bool(f) for f in np.asarray(flag, object)], dtype=object)
    out[~np.isfinite(np.asarray(value, np.float64))] = None
    return out


class FaceColumns:
    """Accumulates :func:`frame_columns` of a stream of frames; :meth:`arrays` concatenates them."""

    def __init__(self):
        self._parts: dict[str, list[np.ndarray]] = {c: [] for c in MEASURED_COLUMNS}
        self.n = 0

    def add(self, ff) -> None:
        if len(ff):
            for c, v in frame_columns(ff).items():
                self._parts[c].append(np.asarray(v))
            self.n += len(ff)

    def arrays(self) -> dict[str, np.ndarray]:
        """``{column: (n,) array}``; typed empty arrays when no face was seen."""
        return {
            c: np.concatenate(v) if v else np.zeros(0, _MEASURED_DTYPES.get(c, np.dtype(np.float32)))
            for c, v in self._parts.items()
        }


def faces_table(
    measured: Mapping[str, np.ndarray],
    probs: np.ndarray | None,
    student_id: Sequence[str | None],
    *,
    video_id: str,
    course: str,
    lecture_date: date,
    model_version: str | None,
    static: np.ndarray | None = None,
) -> pa.Table:
    """The ``faces`` table of one video.

    Args:
        measured: :meth:`FaceColumns.arrays` (several segments concatenated, in frame order).
        probs: ``(N, 7) float32`` in ``FER2013_LABELS`` order (rows sum to 1); ``None`` when emotion
            is not inferred: the ``p_*``, ``emotion`` and ``model_version`` are null and
            ``emotion_readable`` is false (nothing about an expression is stored).
        student_id: ``(N,)`` the student of each face (None: a stray track that is no student).
        static: ``(N,) bool`` faces of tracks judged pictures, not people (default: none). Their
            emotion, attention, attentive and head state become null; they must have no student.

    ``emotion`` is the arg-max label where ``measured["emotion_readable"]``, else null.
    """
    n = len(measured["track_id"])
    measured = dict(measured)
    if probs is None:  # emotion not inferred: no expression value of any kind
        probs = np.full((n, len(FER2013_LABELS)), np.nan, np.float32)
        measured["emotion_readable"] = np.zeros(n, bool)
        model_version = None
    static = np.zeros(n, bool) if static is None else np.asarray(static, bool)
    if any(s is not None for s, st in zip(student_id, static) if st):
        raise RecordsError("faces: a static face (a picture) cannot belong to a student")
    label = np.asarray(FER2013_LABELS, dtype=object)[probs.argmax(1)] if n else np.zeros(0, object)
    none = np.full(n, None, object)  # np.where with a bare None: numpy accepts it, its stubs do not
    label = np.where(np.asarray(measured["emotion_readable"], bool) & ~static, label, none)
    if static.any():  # a picture carries no emotion, attention or head state
        measured["attention"] = np.where(static, np.nan, measured["attention"]).astype(np.float32)
        for c in ("attentive", "head_state"):
            measured[c] = np.where(static, none, np.asarray(measured[c], object))
    cols = {
        "video_id": video_id,
        "course": course,
        "lecture_date": lecture_date,
        **measured,
        "student_id": list(student_id),
        "static": static,
        **{f"p_{label}": probs[:, j] for j, label in enumerate(FER2013_LABELS)},
        "emotion": label,
        "model_version": model_version,
    }
    return make_table("faces", cols)
