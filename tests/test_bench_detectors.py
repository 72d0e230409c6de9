"""The pure parts of bench/detectors.py: face-to-head matching, YOLO labels, CenterFace decoding."""

import numpy as np
import pytest

from bench.detectors import (
    H264,
    bin_names,
    centerface_decode,
    match_faces_to_heads,
    read_yolo_labels,
    size_bin,
)

HEAD = np.array([[0, 0, 10, 10]], float)


def test_a_face_counts_when_its_centre_is_inside_or_iou_reaches_the_bar():
    small_inside = [3, 3, 5, 5]  # IoU 0.04, centre (4, 4) inside
    wide_outside = [0, 0, 22, 10]  # centre (11, 5) outside, IoU 100 / 220 = 0.45
    narrow_outside = [6, 0, 16, 10]  # centre (11, 5) outside, IoU 40 / 160 = 0.25
    for face, counts in ((small_inside, True), (wide_outside, True), (narrow_outside, False)):
        got = match_faces_to_heads(np.array([face], float), [0.9], HEAD)
        assert bool(got[0] == 0) == counts, face
    # the IoU bar is a parameter
    assert match_faces_to_heads(np.array([wide_outside], float), [0.9], HEAD, min_iou=0.5)[0] == -1


def test_matching_is_one_to_one_and_greedy_by_score():
    heads = np.array([[0, 0, 10, 10], [8, 0, 20, 10]], float)
    # face 0 covers head 0 exactly and may count for it alone; face 1's centre (9, 5) lies in both
    # heads, and it overlaps head 0 more (IoU 0.47 vs 0.41)
    faces = np.array([[0, 0, 10, 10], [3, 0, 15, 10]], float)
    # face 1 scores higher: it takes head 0, and face 0 is left with nothing it may count for
    np.testing.assert_array_equal(match_faces_to_heads(faces, [0.5, 0.9], heads), [1, -1])
    # face 0 scores higher: it takes head 0, and face 1 falls back to head 1
    np.testing.assert_array_equal(match_faces_to_heads(faces, [0.9, 0.5], heads), [0, 1])
    # one face never counts for two heads
    np.testing.assert_array_equal(match_faces_to_heads(faces[1:], [0.9], heads), [0, -1])


def test_matching_with_no_faces_or_no_heads():
    assert match_faces_to_heads(np.zeros((0, 4)), np.zeros(0), HEAD).tolist() == [-1]
    assert match_faces_to_heads(HEAD, [0.9], np.zeros((0, 4))).shape == (0,)


def test_yolo_labels_become_pixel_boxes(tmp_path):
    p = tmp_path / "frame_001.txt"
    p.write_text("0 0.5 0.5 0.1 0.2\n3 0.25 0.1 0.05 0.04\n\n")
    classes, xyxy = read_yolo_labels(p, width=1400, height=900)
    assert classes.tolist() == [0, 3]
    np.testing.assert_allclose(xyxy, [[630, 360, 770, 540], [315, 72, 385, 108]], atol=1e-3)
    assert xyxy.dtype == np.float32


def test_empty_and_malformed_yolo_labels(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    classes, xyxy = read_yolo_labels(empty, 1400, 900)
    assert classes.shape == (0,) and xyxy.shape == (0, 4)
    bad = tmp_path / "bad.txt"
    bad.write_text("0 0.5 0.5 0.1\n")
    with pytest.raises(ValueError, match="class cx cy w h"):
        read_yolo_labels(bad, 1400, 900)


def test_size_bins_include_their_lower_edge():
    assert bin_names((0, 30, 40, 50)) == ["<30", "30-40", "40-50", ">=50"]
    assert size_bin([12, 29.9, 30, 45, 50, 200], (0, 30, 40, 50)) == [
        "<30",
        "<30",
        "30-40",
        "40-50",
        ">=50",
        ">=50",
    ]


def _maps(h=16, w=24):
    return np.zeros((h, w), np.float32), np.zeros((2, h, w)), np.zeros((2, h, w)), np.zeros((10, h, w))


def test_centerface_decodes_a_peak_into_box_and_points():
    heat, scale, offset, lms = _maps()
    heat[5, 10] = 0.9
    scale[:, 5, 10] = np.log([32 / 4, 24 / 4])  # (height, width) in units of the 4 px stride
    offset[:, 5, 10] = (0.25, 0.5)  # (dy, dx) in cells
    lms[:, 5, 10] = np.tile([0.5, 0.25], 5)  # every point at (x 1/4, y 1/2) of the box
    det = centerface_decode(heat, scale, offset, lms, threshold=0.35)
    cx, cy = (10 + 0.5 + 0.5) * 4, (5 + 0.25 + 0.5) * 4  # 44, 23
    np.testing.assert_allclose(det.xyxy, [[cx - 12, cy - 16, cx + 12, cy + 16]], atol=1e-4)
    np.testing.assert_allclose(det.score, [0.9])
    np.testing.assert_allclose(det.landmarks[0], np.tile([[cx - 12 + 6, cy - 16 + 16]], (5, 1)), atol=1e-4)


def test_centerface_keeps_the_best_of_overlapping_cells_and_separate_faces():
    heat, scale, offset, lms = _maps()
    scale[:] = np.log(24 / 4)  # every cell predicts a 24x24 box
    heat[5, 10], heat[5, 11], heat[12, 2], heat[0, 0] = 0.6, 0.8, 0.7, 0.3
    det = centerface_decode(heat, scale, offset, lms, threshold=0.35)
    # (5, 11) suppresses its neighbour (5, 10) (IoU 20/28 > 0.3); (12, 2) is another face; (0, 0) is
    # below the threshold
    np.testing.assert_allclose(det.score, [0.8, 0.7])
    np.testing.assert_allclose(det.xyxy[:, :2] + 12, [[46, 22], [10, 50]])
    assert len(centerface_decode(heat, scale, offset, lms, threshold=0.9)) == 0
    assert centerface_decode(heat, scale, offset, lms, threshold=0.9).xyxy.shape == (0, 4)


def test_h264_round_trip_keeps_the_sampled_frames():
    enc = H264(64, 48, crf=35)
    rng = np.random.default_rng(0)
    frames = [
        np.full((48, 64, 3), 40 * i, np.uint8) + rng.integers(0, 8, (48, 64, 3), np.uint8) for i in range(4)
    ]
    for f in frames:
        enc.add(f)
    back = enc.decode({0, 2})
    assert [b.shape for b in back] == [(48, 64, 3)] * 2
    # lossy but close: the flat grey levels survive CRF 35
    assert abs(float(back[1].mean()) - float(frames[2].mean())) < 6
