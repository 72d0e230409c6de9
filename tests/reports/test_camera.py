"""``fer_stream.reports.camera``: the camera summary of ``fer-stream check`` and of every HTML page."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fer_stream.reports.camera import camera_check, size_labels
from fer_stream.validity import Gates


def test_histogram_readable_shares_and_zoom_worked_by_hand():
    # 5 students of typical widths 8, 10, 12, 20 and 40 px (two faces each), and a poster at 30 px
    px = np.array([8, 8, 10, 10, 12, 12, 20, 20, 40, 40, 30], np.float64)
    student = ["a", "a", "b", "b", "c", "c", "d", "d", "e", "e", None]
    static = np.array([False] * 10 + [True])
    gates = Gates(emotion_min_px=14, pose_min_px=24, eyes_min_px=math.inf, head_min_px=12)
    c = camera_check(px, frames=5, student_id=student, static=static, gates=gates)
    assert (c.frames, c.faces, c.students, c.static_faces) == (5, 11, 5, 1)
    assert c.faces_per_frame == pytest.approx(11 / 5)
    assert c.size_histogram == {"<10": 2, "10-15": 4, "15-20": 0, "20-30": 2, "30-40": 0, "40-60": 2,
                                "60-100": 0, ">=100": 0}  # fmt: skip
    assert c.median_face_px == 12  # of the live faces only
    assert c.readable["emotion"] == pytest.approx(4 / 10)  # 20, 20, 40, 40
    assert c.readable["head state"] == pytest.approx(6 / 10)
    # 80 % of the students reach the 20th percentile of their typical sizes: 9.6 px (8 .. 10)
    reach = np.quantile([8, 10, 12, 20, 40], 0.2)
    assert c.zoom_for_most["emotion"] == pytest.approx(14 / reach)
    assert c.zoom_for_most["head pose"] == pytest.approx(24 / reach)
    lines = "\n".join(c.lines())
    assert "needs 1.5x zoom" in lines and "head pose" in lines


def test_a_camera_that_reads_everything_already_and_one_without_faces():
    big = camera_check(np.full(6, 80.0), frames=3, student_id=["a", "b", "c"] * 2)
    assert all(z == 1.0 for z in big.zoom_for_most.values()) and big.readable["emotion"] == 1.0
    assert "readable for most students already" in "\n".join(big.lines())
    none = camera_check(np.zeros(0), frames=4, student_id=[])
    assert none.faces == 0 and none.median_face_px is None and none.readable["emotion"] is None
    assert none.zoom_for_most["emotion"] is None and len(none.lines()) == 2


def test_emotion_share_counts_only_faces_turned_to_the_camera_when_flags_are_given():
    px = np.array([60, 60, 60, 60, 60], np.float64)
    turned = np.array([True, False, False, True, True])  # two bowed students, one picture (the last)
    static = np.array([False, False, False, False, True])
    c = camera_check(
        px, frames=1, student_id=["a", "b", "c", "d", None], static=static, emotion_readable=turned
    )
    assert c.readable["emotion"] == pytest.approx(2 / 4)  # of the live faces; by size alone: 1.0
    assert (
        camera_check(px, frames=1, student_id=["a", "b", "c", "d", None], static=static).readable["emotion"]
        == 1
    )


def test_size_labels_cover_every_width():
    assert size_labels((0, 10, 20)) == ["<10", "10-20", ">=20"]


def test_the_html_page_opens_with_the_same_summary(tmp_path):
    from fer_stream import reports
    from fer_stream.reports.camera import camera_check as check
    from fer_stream.reports.html import html_page
    from tests.reports.helpers import D1, A, U, lecture

    faces = [
        (1, "s1", A, 0.9, "happy", "up"),
        (2, "s1", A, 0.9, "happy", "up"),
        (1, None, U, None, None, None, True),
    ]
    lecture(tmp_path, "8" * 64, "ML101", D1, 2.0, 2, faces)
    page = html_page(reports.connect(tmp_path), {})
    expected = check(
        np.full(3, 48.0), frames=2, student_id=["s1", "s1", None], static=np.array([0, 0, 1], bool)
    )
    assert '<section id="camera">' in page
    for line in expected.lines():
        assert line in page, line  # under the gates the analysis recorded (here: the defaults)
