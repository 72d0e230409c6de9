"""fer_stream: classroom lecture videos -> per-student emotion and attention records.

For notebooks and scripts, one call analyses one video in this process (no Ray)::

    import fer_stream
    faces = fer_stream.analyze("lecture.mp4")        # pyarrow.Table, the schema of OUTPUT/faces/
    faces.to_pandas().groupby("student_id").emotion.value_counts()

Many videos, a cluster or nightly runs: ``fer_stream.pipeline.run`` / ``fer-stream analyze``.
"""

__version__ = "0.1.0"


def analyze(path, config=None, **kwargs):
    """One video -> its ``faces`` table (``pyarrow.Table``, ``records.FACES_SCHEMA``), without Ray.

    ``config``: a ``fer_stream.config.PipelineConfig``; keyword arguments as
    ``fer_stream.lecture.analyze_file`` (``course``, ``lecture_date``, ``threads``).
    """
    from fer_stream.lecture import analyze_file

    return analyze_file(path, config, **kwargs)
