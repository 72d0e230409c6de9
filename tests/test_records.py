"""Records: THE schemas, the atomic Parquet writer, reading back with hive partitions (no Ray)."""

import os
import time
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from fer_stream import records
from fer_stream.labels import FER2013_LABELS
from fer_stream.lecture import columns

FACES = (
    "video_id course lecture_date frame_index pts_s track_id student_id static x1 y1 x2 y2 det_score face_px "
    "pose_readable eyes_readable yaw pitch roll ear attentive attention head_readable head_state "
    "emotion_readable p_angry p_disgust "
    "p_fear p_happy p_sad p_surprise p_neutral emotion model_version"
).split()
FRAMES = "video_id course lecture_date frame_index pts_s n_faces".split()
VID = "ab" * 32


def test_faces_schema_has_exactly_the_issue_columns_with_types():
    assert records.FACES_SCHEMA.names == FACES
    s = records.FACES_SCHEMA
    assert s.field("lecture_date").type == pa.date32()
    assert s.field("frame_index").type == pa.int64() and s.field("track_id").type == pa.int64()
    assert s.field("pts_s").type == pa.float64()
    for name in ["x1", "y1", "x2", "y2", "det_score", "face_px", "yaw", "pitch", "roll", "ear", "attention"]:
        assert s.field(name).type == pa.float32(), name
    for name in [
        "static",
        "attentive",
        "pose_readable",
        "eyes_readable",
        "head_readable",
        "emotion_readable",
    ]:
        assert s.field(name).type == pa.bool_(), name
    assert [n for n in FACES if n.startswith("p_")] == [f"p_{x}" for x in FER2013_LABELS]
    # nullable exactly where "not measurable"/"unreadable"/"no student" is a legitimate value
    nullable = {f.name for f in s if f.nullable}
    # ... and "emotion not inferred" (config.signals without emotion): the p_* and model_version
    assert nullable == {
        "student_id", "yaw", "pitch", "roll", "ear", "attention", "attentive", "head_state", "emotion",
        *(f"p_{x}" for x in FER2013_LABELS), "model_version",
    }  # fmt: skip


def test_frames_and_videos_schemas():
    assert records.FRAMES_SCHEMA.names == FRAMES
    v = records.VIDEOS_SCHEMA.names
    for name in [
        "video_id", "course", "lecture_date", "path", "status", "error_type", "error_message",
        "duration_s", "sampled_frames", "faces", "model_version", "pipeline_version", "config_hash",
        "run_id", "started_at", "finished_at", "wall_s",
    ]:  # fmt: skip
        assert name in v, name
    assert records.VIDEOS_SCHEMA.field("finished_at").type == pa.timestamp("ms", tz="UTC")


@pytest.mark.parametrize("name", ["faces", "frames", "videos"])
def test_every_field_says_its_unit_and_meaning(name):
    schema = records.SCHEMAS[name]
    assert schema.metadata[b"fer_stream.table"] == name.encode()
    for f in schema:
        assert set(f.metadata) == {b"unit", b"description"}, f.name
        assert len(f.metadata[b"description"]) > 5, f.name
    assert records.FACES_SCHEMA.field("pts_s").metadata[b"unit"] == b"s"
    assert records.FACES_SCHEMA.field("yaw").metadata[b"unit"] == b"deg"


def _frames(n=3, course="ML101", day=date(2024, 3, 5), vid=VID):
    return records.make_table(
        "frames",
        {
            "video_id": vid,
            "course": course,
            "lecture_date": day,
            "frame_index": np.arange(n) * 15,
            "pts_s": np.arange(n) / 2,
            "n_faces": np.arange(n),
        },
    )


def test_make_table_checks_columns_and_nulls():
    t = _frames()
    assert t.schema.equals(records.FRAMES_SCHEMA) and t.num_rows == 3
    assert _frames(0).num_rows == 0  # scalars broadcast to no rows
    cols = {"video_id": VID, "course": "c", "lecture_date": date(2024, 1, 1), "frame_index": [0]}
    with pytest.raises(records.RecordsError, match="missing"):
        records.make_table("frames", cols)
    with pytest.raises(records.RecordsError, match="unknown"):
        records.make_table("frames", {**cols, "pts_s": [0.0], "n_faces": [0], "face_png": [b""]})
    with pytest.raises(records.RecordsError, match="nulls"):
        records.make_table("frames", {**cols, "pts_s": [np.nan], "n_faces": [0]})


def test_nan_in_a_measurement_becomes_null():
    n = 2
    cols = {name: np.zeros(n, np.float32) for name in FACES}
    cols.update(
        video_id=VID, course="c", lecture_date=date(2024, 1, 1), frame_index=np.arange(n),
        track_id=np.arange(n), student_id=[f"{VID[:8]}-s001", None], attentive=np.zeros(n, bool),
        emotion=["happy", "sad"], model_version="m", yaw=np.array([1.5, np.nan], np.float32),
        head_state=["up", None], static=np.zeros(n, bool), head_readable=np.zeros(n, bool),
    )  # fmt: skip
    t = records.make_table("faces", cols)
    assert t.column("yaw").to_pylist() == [1.5, None]
    assert t.column("student_id").null_count == 1


def test_attentive_is_null_wherever_attention_is_and_sql_averages_measured_faces_only():
    """The schema trap of issue 21: an unmeasured face (attention null) must not count as inattentive
    in ``avg(attentive::int)``. Built the way every path builds it (``FaceColumns`` from frames)."""
    import duckdb

    from fer_stream.faces.detections import Detections
    from fer_stream.lecture import FrameFaces

    n = 4
    attention = np.array([0.9, 0.2, np.nan, np.nan], np.float32)
    det = Detections(
        xyxy=np.tile(np.array([[0, 0, 30, 30]], np.float32), (n, 1)),
        score=np.full(n, 0.9, np.float32),
        landmarks=np.zeros((n, 5, 2), np.float32),
    )
    nan = np.full(n, np.nan, np.float32)
    ff = FrameFaces(
        frame_index=0, pts_s=0.0, frame_wh=(64, 64), det=det, landmarks68=np.zeros((n, 68, 2), np.float32),
        yaw=nan, pitch=nan, roll=nan, ear=nan, attention=attention,
        attentive=np.array([True, False, False, False]),  # a bare bool flag: False where unmeasured
        crops=np.zeros((n, 48, 48), np.uint8), track_id=np.arange(n), face_px=np.full(n, 30, np.float32),
        emotion_readable=np.ones(n, bool), pose_readable=np.ones(n, bool), eyes_readable=np.ones(n, bool),
        head_readable=np.zeros(n, bool), head_state=np.full(n, None, object),
        head_probs=np.full((n, 4), np.nan, np.float32),
    )  # fmt: skip
    cols = columns.FaceColumns()
    cols.add(ff)
    probs = np.full((n, 7), 1 / 7, np.float32)
    t = columns.faces_table(
        cols.arrays(), probs, [None] * n, video_id=VID, course="c", lecture_date=date(2024, 1, 1),
        model_version="m",
    )  # fmt: skip
    assert t.column("attentive").to_pylist() == [True, False, None, None]
    assert duckdb.sql("select avg(attentive::int) as rate from t").fetchall() == [(0.5,)]
    # a video without faces still gets a typed, empty column
    none = columns.faces_table(
        columns.FaceColumns().arrays(), np.zeros((0, 7), np.float32), [], video_id=VID, course="c",
        lecture_date=date(2024, 1, 1), model_version="m",
    )  # fmt: skip
    assert none.num_rows == 0 and none.schema.field("attentive").type == pa.bool_()


def test_a_static_face_carries_no_emotion_attention_or_head_state_and_no_student():
    n = 2
    measured = {c: np.zeros(n, columns._MEASURED_DTYPES.get(c, np.float32)) for c in columns.MEASURED_COLUMNS}
    measured.update(
        attention=np.array([0.8, 0.8], np.float32), attentive=np.array([True, True], object),
        head_state=np.array(["up", "up"], object), emotion_readable=np.ones(n, bool),
    )  # fmt: skip
    probs = np.tile(np.eye(7, dtype=np.float32)[3], (n, 1))  # happy
    where = dict(video_id=VID, course="c", lecture_date=date(2024, 1, 1), model_version="m")
    t = columns.faces_table(measured, probs, ["s", None], static=np.array([False, True]), **where)
    assert t.column("static").to_pylist() == [False, True]
    for c, live in (
        ("emotion", "happy"),
        ("attention", pytest.approx(0.8)),
        ("attentive", True),
        ("head_state", "up"),
    ):
        assert t.column(c).to_pylist() == [live, None], c
    with pytest.raises(records.RecordsError, match="static"):
        columns.faces_table(measured, probs, ["s", "s"], static=np.array([False, True]), **where)


def test_atomic_write_twice_gives_one_file_and_no_temp_files(tmp_path):
    p1 = records.write_partition(tmp_path, "frames", _frames(3), "ML101", date(2024, 3, 5), "x_cfg")
    p2 = records.write_partition(tmp_path, "frames", _frames(5), "ML101", date(2024, 3, 5), "x_cfg")
    assert p1 == p2 == tmp_path / "frames" / "course=ML101" / "lecture_date=2024-03-05" / "x_cfg.parquet"
    files = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert files == [p1.relative_to(tmp_path)]  # no temporary file left behind
    assert records.read(tmp_path, "frames").num_rows == 5  # the second write replaced the first
    # partition keys live in the path, not in the file
    assert pq.read_schema(p1).names == ["video_id", "frame_index", "pts_s", "n_faces"]
    assert pq.read_schema(p1).field("pts_s").metadata[b"unit"] == b"s"


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = records.write_partition(tmp_path, "frames", _frames(3), "ML101", date(2024, 3, 5), "x")

    def broken(table, where, **kw):  # where: the temporary file, open for writing
        where.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(records.pq, "write_table", broken)
    with pytest.raises(OSError, match="disk full"):
        records.write_partition(tmp_path, "frames", _frames(5), "ML101", date(2024, 3, 5), "x")
    assert [p.name for p in path.parent.iterdir()] == ["x.parquet"]
    assert records.read(tmp_path, "frames").num_rows == 3


def test_moving_a_video_to_another_partition_removes_the_old_file(tmp_path):
    records.write_partition(tmp_path, "frames", _frames(3, "unknown"), "unknown", date(2024, 3, 5), "x")
    records.write_partition(tmp_path, "frames", _frames(2, "ML101"), "ML101", date(2024, 3, 5), "x")
    t = records.read(tmp_path, "frames")
    assert t.num_rows == 2 and set(t.column("course").to_pylist()) == {"ML101"}


def test_rows_must_match_the_partition(tmp_path):
    with pytest.raises(records.RecordsError, match="another course"):
        records.write_partition(tmp_path, "frames", _frames(2, "A"), "B", date(2024, 3, 5), "x")
    with pytest.raises(records.RecordsError, match="schema"):
        records.write_partition(tmp_path, "faces", _frames(2), "A", date(2024, 3, 5), "x")


def test_read_back_with_plain_pyarrow_hive_partitioning(tmp_path):
    records.write_partition(tmp_path, "frames", _frames(3, "ML101"), "ML101", date(2024, 3, 5), "a")
    records.write_partition(
        tmp_path, "frames", _frames(2, "BIO-2", date(2024, 3, 6), "cd" * 32), "BIO-2", date(2024, 3, 6), "b"
    )
    # what any reader does: hive partitions, inferred types
    t = ds.dataset(tmp_path / "frames", format="parquet", partitioning="hive").to_table()
    assert t.num_rows == 5 and set(t.column("course").to_pylist()) == {"ML101", "BIO-2"}
    # records.read gives THE schema (dates as dates) and filters on partitions
    t = records.read(tmp_path, "frames", filter=ds.field("lecture_date") == date(2024, 3, 6))
    assert t.schema.equals(records.FRAMES_SCHEMA)
    assert t.num_rows == 2 and t.column("lecture_date")[0].as_py() == date(2024, 3, 6)
    assert records.read(tmp_path / "nothing", "faces").schema.equals(records.FACES_SCHEMA)


def test_stale_temp_files_of_a_killed_writer_are_cleaned_up(tmp_path):
    path = records.write_partition(tmp_path, "frames", _frames(3), "ML101", date(2024, 3, 5), "x")
    old, new = path.parent / ".x.dead.tmp", path.parent / ".y.live.tmp"
    old.write_bytes(b"half")
    new.write_bytes(b"half")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert records.read(tmp_path, "frames").num_rows == 3  # readers skip hidden files
    assert records.remove_stale_temp_files(tmp_path) == 1
    assert not old.exists() and new.exists()
