"""Reports count only readable faces (issue 13): unreadable emotion is shown as such, never as 'sad'."""

from __future__ import annotations

import pytest

from fer_stream import reports
from tests.reports.helpers import D1, A, N, lecture, run  # noqa: F401

VID = "9" * 64


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    root = tmp_path_factory.mktemp("readable")
    # s-near: 2 readable happy faces and 2 unreadable ones (the model said "sad" for them: the
    #   records keep the probabilities but null the emotion below the gate).
    # s-back: 3 faces, none readable: the model's "sad" must not become the student's mood.
    faces = [
        (1, "s-near", A, 0.75, "happy"),
        (2, "s-near", A, 0.75, "happy"),
        (3, "s-near", A, 0.75, None),
        (4, "s-near", A, 0.75, None),
        (1, "s-back", N, None, None),
        (2, "s-back", N, None, None),
        (3, "s-back", N, None, None),
    ]
    lecture(root, VID, "ML101", D1, 2.0, 4, faces)
    return reports.connect(root)


def _rows(con, name, **params):
    return {r["student_id"]: r for r in reports.run_report(con, name, params).to_pylist()}


def test_unreadable_faces_count_in_no_emotion_share(con):
    near = _rows(con, "student_emotions", min_visible_s=0)["s-near"]
    assert near["frames_visible"] == 4 and near["frames_emotion_readable"] == 2
    assert near["readable_share"] == pytest.approx(0.5)
    assert near["share_happy"] == pytest.approx(1.0) and near["share_sad"] == 0
    assert near["dominant_emotion"] == "happy" and near["dominant_share"] == pytest.approx(1.0)
    assert near["p_happy"] == pytest.approx(0.625)  # mean over the readable faces only


def test_a_student_with_only_unreadable_faces_has_no_dominant_emotion(con):
    back = _rows(con, "student_emotions", min_visible_s=0)["s-back"]
    assert back["frames_visible"] == 3 and back["frames_emotion_readable"] == 0
    assert back["readable_share"] == 0
    assert back["dominant_emotion"] is None and back["dominant_share"] is None
    assert all(back[f"share_{e}"] is None for e in ("angry", "sad", "neutral"))
    assert back["p_sad"] is None


def test_lecture_and_timeline_reports_show_the_readable_shares(con):
    (summary,) = reports.run_report(con, "lecture_summary", {}).to_pylist()
    assert summary["emotion_readable_share"] == pytest.approx(2 / 7)
    assert summary["attention_readable_share"] == pytest.approx(4 / 7)
    assert summary["unmeasured_share"] == pytest.approx(3 / 7)
    att = _rows(con, "student_attention", min_visible_s=0)
    assert att["s-back"]["readable_share"] == 0 and att["s-near"]["readable_share"] == 1
    timeline = reports.run_report(con, "lecture_timeline", {"bucket_s": 60}).to_pylist()
    assert len(timeline) == 1 and timeline[0]["emotion_readable_share"] == pytest.approx(2 / 7)
    assert timeline[0]["share_happy"] == pytest.approx(1.0)


def test_the_page_draws_unreadable_as_its_own_band_and_says_why(con):
    page = reports.html_page(con, {})
    assert "too small for the emotion model to read" in page
    assert "readable_share" in page
