"""One segment of one video -> records, in plain Python: the only assembly path.

    stage.py     frames -> faces: detect, landmarks, pose/eyes, align, track (``FaceStage``)
    columns.py   faces -> the faces table's columns (``FaceColumns``, ``faces_table``)
    segment.py   a segment's frames -> measured columns + classified crops (``run_segment``: batching,
                 backpressure, a ``classify`` callback: in this process, or Ray's actor pool)
    assemble.py  a video's segments -> its ``faces`` and ``frames`` tables (``assemble``)

``fer_stream.analyze`` (:func:`analyze_file`) runs them in this process; ``fer_stream.pipeline``
schedules the same functions on Ray, so the two cannot drift apart.
"""

from fer_stream.lecture.assemble import LectureRecords, analyze_file, assemble, label_order
from fer_stream.lecture.segment import SEGMENT_ID_STRIDE, ClassifyFn, SegmentResult, in_process, run_segment
from fer_stream.lecture.stage import (
    FaceStage,
    FrameFaces,
    analyze_video,
    make_face_stage,
    student_keys,
)

__all__ = [
    "SEGMENT_ID_STRIDE",
    "ClassifyFn",
    "FaceStage",
    "FrameFaces",
    "LectureRecords",
    "SegmentResult",
    "analyze_file",
    "analyze_video",
    "assemble",
    "in_process",
    "label_order",
    "make_face_stage",
    "run_segment",
    "student_keys",
]
