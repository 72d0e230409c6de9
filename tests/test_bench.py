"""The pure helpers of the benchmark scripts: face matching, agreement, the node projection, clip frames."""

import numpy as np
import pytest

from bench.matrix import CLOSEUP, node_projection, one_face
from bench.peer import agreement, match_faces, xywh_to_xyxy


def test_match_faces_pairs_one_to_one_by_total_iou():
    a = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [100, 100, 110, 110]], float)
    b = np.array([[21, 0, 31, 10], [1, 0, 11, 10], [0, 50, 10, 60]], float)
    ia, ib = match_faces(a, b, min_iou=0.3)
    assert sorted(zip(ia.tolist(), ib.tolist())) == [(0, 1), (1, 0)]  # the far boxes stay unmatched


def test_match_faces_threshold_and_empty_frames():
    a = np.array([[0, 0, 10, 10]], float)
    b = np.array([[5, 0, 15, 10]], float)  # IoU 1/3
    assert len(match_faces(a, b, min_iou=0.3)[0]) == 1
    assert len(match_faces(a, b, min_iou=0.4)[0]) == 0
    for x, y in ((np.zeros((0, 4)), b), (a, np.zeros((0, 4))), (np.zeros((0, 4)), np.zeros((0, 4)))):
        ia, ib = match_faces(x, y)
        assert ia.shape == ib.shape == (0,)


def test_match_faces_prefers_the_assignment_with_most_overlap():
    # Greedy (highest IoU first) would pair a0-b0 and leave a1 alone; the best total pairs both.
    a = np.array([[0, 0, 10, 10], [4, 0, 14, 10]], float)
    b = np.array([[2, 0, 12, 10], [-3, 0, 7, 10]], float)
    ia, ib = match_faces(a, b, min_iou=0.3)
    assert sorted(zip(ia.tolist(), ib.tolist())) == [(0, 1), (1, 0)]


def test_xywh_to_xyxy():
    np.testing.assert_array_equal(xywh_to_xyxy([[10, 20, 30, 40]]), [[10, 20, 40, 60]])
    assert xywh_to_xyxy([]).shape == (0, 4)


def test_agreement_share_and_kappa():
    same = agreement(["happy", "sad", "neutral"], ["happy", "sad", "neutral"])
    assert same["agreement"] == 1.0 and same["kappa"] == pytest.approx(1.0)
    # Both always say 'neutral': full agreement, but no better than chance, so kappa is undefined
    assert agreement(["neutral"] * 4, ["neutral"] * 4)["kappa"] is None
    half = agreement(["happy", "happy", "sad", "sad"], ["happy", "sad", "happy", "sad"])
    assert half["agreement"] == 0.5 and half["kappa"] == pytest.approx(0.0)
    assert agreement([], [])["agreement"] is None


def test_node_projection_balances_workers_and_classifiers():
    # 0.5 worker CPU-s + 0.1 classifier CPU-s per video second, 16 cores, 60-min lectures
    p = node_projection(0.5, 0.1, cores=16, lecture_min=60)
    assert (p["workers"], p["classifiers"]) == (13, 3)  # 13/0.5 = 26, 3/0.1 = 30: 26x realtime
    assert p["x_realtime"] == pytest.approx(26.0)
    assert p["videos_per_hour"] == pytest.approx(26.0)  # 26 video-hours per hour of 1-hour lectures
    assert any("3600 x 26.0 / 3600" in s for s in p["steps"])
    one = node_projection(0.5, 0.1, cores=16, lecture_min=60, classifiers=1)
    assert one["x_realtime"] == pytest.approx(10.0)  # the single classifier is the bottleneck
    assert node_projection(0.5, 0.1, cores=16, lecture_min=30)["videos_per_hour"] == pytest.approx(52.0)
    with pytest.raises(ValueError):
        node_projection(0.5, 0.1, cores=1, lecture_min=60)


def test_one_face_keeps_only_the_close_up():
    frame = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    out = one_face(frame, np.random.default_rng(1))
    assert out.shape == frame.shape and out.dtype == np.uint8
    ys, xs = CLOSEUP
    changed = np.argwhere((out != 200).any(-1))  # off the blank wall: the board and the close-up
    below_board = changed[changed[:, 0] >= 40]
    assert below_board[:, 0].min() >= ys.start - 3 and below_board[:, 0].max() < ys.stop + 3
    assert below_board[:, 1].min() >= xs.start - 3 and below_board[:, 1].max() < xs.stop + 3


def test_train_step_bench_times_every_variant_and_writes_its_json(tmp_path):
    from bench import train_step

    out = train_step.main(
        ["--presets", "smoke", "--seconds", "0.05", "--repeat", "2", "--json", str(tmp_path / "t.json")]
    )
    assert set(out["images_per_s"]["smoke"]) == set(train_step.VARIANTS)
    assert all(len(v) == 2 and min(v) > 0 for v in out["runs"]["smoke"].values())
    assert out["speedup_vs_contiguous"]["smoke"]["channels_last"] > 0
    assert (tmp_path / "t.json").is_file()
