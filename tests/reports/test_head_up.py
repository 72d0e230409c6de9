"""The head-up rate (issue 22): students facing the front / students whose head state was read, per
frame; a student present but not seen (or seen too small) is unknown, never up or down; a static face
(a picture) is no student and counts nowhere. Answers worked out by hand below."""

from __future__ import annotations

import pytest

from fer_stream import reports
from tests.reports.helpers import D1, A, N, U, lecture

VID = "7" * 64


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    root = tmp_path_factory.mktemp("head_up")
    # 3 sampled frames at 2 fps (one 60 s bucket), 3 students:
    #   frame 1: s1 up, s2 down, s3 up, and a poster (static, no student) "up"  -> 2 up of 3 read
    #   frame 2: s1 up, s2 seen but too small to read (None), s3 not seen      -> 1 up of 1 read
    #   frame 3: nobody seen                                                     -> no read: null
    faces = [
        (1, "s1", A, 0.9, "happy", "up"),
        (1, "s2", N, 0.1, "sad", "down"),
        (1, "s3", A, 0.8, "neutral", "up"),
        (1, None, U, None, None, None, True),  # the poster: static
        (2, "s1", A, 0.9, "happy", "up"),
        (2, "s2", U, None, None, None),
    ]
    lecture(root, VID, "ML101", D1, 2.0, 3, faces)
    return reports.connect(root)


def test_timeline_pools_the_reads_of_a_bucket(con):
    (row,) = reports.run_report(con, "lecture_timeline", {"bucket_s": 60}).to_pylist()
    assert row["head_up_rate"] == pytest.approx(3 / 4)  # 2 + 1 up of 3 + 1 read
    assert row["head_known_share"] == pytest.approx(4 / 9)  # 4 reads of 3 students x 3 frames


def test_summary_averages_the_frames_and_counts_the_poster_apart(con):
    (row,) = reports.run_report(con, "lecture_summary", {}).to_pylist()
    assert row["head_up_rate"] == pytest.approx((2 / 3 + 1) / 2)  # frame 3 has no read: left out
    assert row["head_known_share"] == pytest.approx(4 / 9)
    assert row["static_faces"] == 1 and row["stray_faces"] == 0 and row["students"] == 3


def test_per_student_head_down_share(con):
    rows = {
        r["student_id"]: r
        for r in reports.run_report(con, "student_attention", {"min_visible_s": 0}).to_pylist()
    }
    assert set(rows) == {"s1", "s2", "s3"}  # the poster is nobody
    assert rows["s2"]["head_down_share"] == 1.0 and rows["s2"]["head_known_share"] == pytest.approx(1 / 3)
    assert rows["s1"]["head_down_share"] == 0.0 and rows["s1"]["head_up_share"] == 1.0
    assert rows["s1"]["head_known_share"] == pytest.approx(2 / 3)


def test_frames_of_the_macro_say_unknown_apart_from_not_up(con):
    frames = con.sql("select * from head_up_frames(null, null, null, null) order by frame_index").fetchall()
    cols = [d[0] for d in con.sql("select * from head_up_frames(null, null, null, null)").description]
    rows = [dict(zip(cols, f)) for f in frames]
    assert [r["students_present"] for r in rows] == [3, 3, 3]
    assert [(r["students_up"], r["students_known"]) for r in rows] == [(2, 3), (1, 1), (0, 0)]
    assert rows[2]["head_up_rate"] is None and rows[2]["head_known_share"] == 0
