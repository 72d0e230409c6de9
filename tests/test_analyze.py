"""``fer_stream.analyze``: one video in this process gives the pipeline's faces table."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc

import fer_stream
from fer_stream import records
from fer_stream.config import PipelineConfig
from tests.helpers import shared


def test_analyze_returns_the_faces_schema_and_the_pipelines_rows(tmp_path, local_ray):
    from fer_stream import pipeline

    clip = shared("videos/single_face.mp4")
    config = PipelineConfig(sample_fps=2.0)
    table = fer_stream.analyze(clip, config, course="ML101")
    assert table.schema.equals(records.FACES_SCHEMA)
    assert table.num_rows > 0 and set(table.column("course").to_pylist()) == {"ML101"}
    p = np.stack([table.column(f"p_{x}").to_numpy() for x in ("angry", "happy", "neutral")], 1)
    assert np.all(p >= 0) and np.all(p <= 1)

    # The Ray pipeline runs the same run_segment/assemble; what differs is the classify callback (the
    # actor pool, futures from ObjectRefs): it must keep the crops' order.
    summary = pipeline.run([clip], tmp_path / "out", config, progress=False)
    assert summary.outcome == "ok"
    ray_faces = records.read(tmp_path / "out", "faces").sort_by([("frame_index", "ascending")])
    mine = table.sort_by([("frame_index", "ascending")])
    assert mine.column("frame_index").to_pylist() == ray_faces.column("frame_index").to_pylist()
    assert mine.column("student_id").to_pylist() == ray_faces.column("student_id").to_pylist()
    assert mine.column("emotion").to_pylist() == ray_faces.column("emotion").to_pylist()
    diff = pc.max(pc.abs(pc.subtract(mine.column("p_happy"), ray_faces.column("p_happy")))).as_py()
    assert diff < 1e-4  # same weights and crops; batching may change float rounding only


def test_analyze_refuses_identity():
    import pytest

    from fer_stream.config import IdentityConfig

    with pytest.raises(ValueError, match="identity"):
        fer_stream.analyze("x.mp4", PipelineConfig(identity=IdentityConfig()))
