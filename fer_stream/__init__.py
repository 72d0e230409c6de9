"""fer_stream: classroom lecture videos -> per-student emotion and attention records.

For notebooks and scripts, one call analyses one video in this process (no Ray)::

    import fer_stream
    faces = fer_stream.analyze("lecture.mp4")        # pyarrow.Table, the schema of OUTPUT/faces/
    faces.to_pandas().groupby("student_id").emotion.value_counts()

Many videos, a cluster or nightly runs: ``fer_stream.pipeline.run`` / ``fer-stream analyze``.
"""

from __future__ import annotations

import os
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

    from fer_stream.config import PipelineConfig

__version__ = "0.1.0"


def analyze(
    path: str | os.PathLike,
    config: PipelineConfig | None = None,
    *,
    course: str | None = None,
    lecture_date: date | None = None,
    threads: int | None = None,
) -> pa.Table:
    """One video -> its ``faces`` table (``pyarrow.Table``, ``records.FACES_SCHEMA``), without Ray.

    ``config``: a ``fer_stream.config.PipelineConfig``; ``course``/``lecture_date`` override what the
    sidecars or the path say; ``threads``: classifier threads. The same code path as the Ray
    pipeline (``fer_stream.lecture``): ``fer_stream.lecture.analyze_file``.
    """
    from fer_stream.lecture import analyze_file

    return analyze_file(path, config, course=course, lecture_date=lecture_date, threads=threads)
