"""Readability gates (issue 13): below its gate a signal is not reported, whatever the model says."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_stream import attention as att
from fer_stream.config import ModelInfo, PipelineConfig, config_hash
from fer_stream.faces.detect import make_detector
from fer_stream.lecture import FaceStage, columns
from fer_stream.validity import Gates, face_px, readable
from tests.helpers import ROOT, shared


def test_readable_compares_box_width_with_each_gate():
    g = Gates(emotion_min_px=24, pose_min_px=20, eyes_min_px=32)
    px = face_px(np.array([[0, 0, 10, 10], [0, 0, 20, 30], [5, 0, 29, 9], [0, 0, 40, 40]], float))
    assert px.tolist() == [10, 20, 24, 40]
    ok = readable(px, g)
    assert ok["pose"].tolist() == [False, True, True, True]
    assert ok["emotion"].tolist() == [False, False, True, True]
    assert ok["eyes"].tolist() == [False, False, False, True]
    # eyes need the pose: a huge eyes gate below the pose gate still requires the pose gate
    ok = readable(px, Gates(emotion_min_px=0, pose_min_px=30, eyes_min_px=5))
    assert ok["eyes"].tolist() == [False, False, False, True]
    with pytest.raises(ValueError):
        Gates(pose_min_px=-1)


def _frontal_landmarks(n: int, wh=(640, 480)) -> np.ndarray:
    """68 points of a frontal face with open eyes (EAR 0.3): the generic head projected (as in
    tests/test_attention.py), eye lids added between the projected eye corners."""
    w, h = wh
    cam = att.camera_matrix(wh)
    tvec = np.linalg.solve(cam, [(w - 1) / 2, (h - 1) / 2, 1.0]) * 80.0 - att.MODEL_3D.mean(0)
    img = cv2.projectPoints(att.MODEL_3D, np.zeros(3), tvec, cam, None)[0][:, 0]
    lm = np.full((n, 68, 2), np.nan)
    lm[:, att.MODEL_INDEX] = img
    for p1, p4 in ((36, 39), (42, 45)):  # p2, p3 above and p6, p5 below the corner line
        left, right = lm[0, p1], lm[0, p4]
        v = right - left
        lid = np.array([-v[1], v[0]]) * 0.15  # (|p2-p6| + |p3-p5|) / (2 |p1-p4|) = 0.3
        lm[:, p1 + 1], lm[:, p1 + 2] = left + v / 3 - lid, left + 2 * v / 3 - lid
        lm[:, p1 + 5], lm[:, p1 + 4] = left + v / 3 + lid, left + 2 * v / 3 + lid
    return lm


def test_signals_below_the_pose_gate_are_unmeasured_and_below_the_eyes_gate_rest_on_pose():
    lm = _frontal_landmarks(3)
    base = att.signals(lm, (640, 480))
    assert np.isfinite(base["yaw"]).all() and np.isfinite(base["ear"]).all() and base["attentive"].all()
    s = att.signals(lm, (640, 480), pose_readable=np.array([True, True, False]),
                    eyes_readable=np.array([True, False, True]))  # fmt: skip
    # face 0: everything read; face 1: pose only; face 2: unmeasured (eyes need the pose)
    assert np.isfinite(s["ear"][0]) and np.isnan(s["ear"][1]) and np.isnan(s["ear"][2])
    assert np.isfinite(s["yaw"][:2]).all() and np.isnan([s["yaw"][2], s["pitch"][2], s["roll"][2]]).all()
    assert np.isfinite(s["score"][:2]).all() and np.isnan(s["score"][2])
    assert s["attentive"].tolist() == [True, True, False]
    # closed eyes: inattentive when the eyes are read, attentive by pose alone when they are not
    closed = lm.copy()
    for a, b in ((37, 41), (38, 40), (43, 47), (44, 46)):
        mid = (closed[:, a] + closed[:, b]) / 2
        closed[:, a], closed[:, b] = mid, mid
    s = att.signals(closed, (640, 480), eyes_readable=np.array([True, False, True]))
    assert s["attentive"].tolist() == [False, True, False]


@pytest.fixture(scope="module")
def photo():
    bgr = cv2.imread(str(shared("faces/single_face.jpg")), cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def test_a_face_below_each_gate_gives_null_emotion_and_unmeasured_attention(photo):
    det = make_detector("mtcnn", min_face_px=20)
    (big,) = FaceStage(det, gates=Gates(0, 0, 0))([(0, 0.0, photo)])
    assert (
        len(big) == 1 and big.emotion_readable.all() and big.pose_readable.all() and big.eyes_readable.all()
    )
    assert np.isfinite([big.yaw[0], big.ear[0], big.attention[0]]).all()
    w = float(big.face_px[0])
    # the same face, gates just above its size: nothing is read
    (small,) = FaceStage(det, gates=Gates(w + 1, w + 1, w + 1))([(0, 0.0, photo)])
    assert (
        not small.emotion_readable.any() and not small.pose_readable.any() and not small.eyes_readable.any()
    )
    assert np.isnan([small.yaw[0], small.pitch[0], small.roll[0], small.ear[0], small.attention[0]]).all()
    assert not small.attentive.any()
    # pose read, eyes not: EAR null, attention from the head pose
    (mid,) = FaceStage(det, gates=Gates(0, 0, w + 1))([(0, 0.0, photo)])
    assert np.isnan(mid.ear[0]) and np.isfinite(mid.attention[0]) and mid.pose_readable.all()

    cols = columns.FaceColumns()
    cols.add(big)
    cols.add(small)
    probs = np.tile(np.eye(7, dtype=np.float32)[4], (2, 1))  # the model says "sad" for both
    t = columns.faces_table(cols.arrays(), probs, ["s1", "s1"], video_id="ab" * 32, course="ML101",
                            lecture_date=date(2024, 3, 5), model_version="m")  # fmt: skip
    assert t.column("emotion").to_pylist() == ["sad", None]
    assert t.column("emotion_readable").to_pylist() == [True, False]
    assert t.column("attention").null_count == 1 and t.column("yaw").to_pylist()[1] is None


def test_gate_values_come_from_the_config_and_its_hash():
    cfg = PipelineConfig()
    model = ModelInfo.load("default")
    analysis = cfg.analysis(model)
    assert analysis["gates"] == dataclasses.asdict(Gates()) == dataclasses.asdict(cfg.gates)
    other = PipelineConfig(gates=Gates(emotion_min_px=cfg.gates.emotion_min_px + 8))
    assert config_hash(other.analysis(model)) != config_hash(analysis)


def test_default_gates_are_the_ones_the_measured_curves_give():
    """The shipped defaults are the stricter of the crop curves (bench/validity.py) and the real-video
    curves (bench/validity_video.py), full runs, committed JSON."""
    crop = json.loads((ROOT / "bench" / "results" / "validity.json").read_text())["derived_gates"]
    real = json.loads((ROOT / "bench" / "results" / "validity_video.json").read_text())["derived"]
    g = Gates()
    never = float("inf")  # null in the JSON: no measured size meets the rule, the signal is never read
    assert g.eyes_min_px == (never if crop["eyes_min_px"] is None else crop["eyes_min_px"])
    assert real["crop_curve_gates"] == {k: crop[k] for k in ("emotion_min_px", "pose_min_px")}

    def gate(v):
        return never if v is None else v

    assert g.pose_min_px == real["pose_min_px"] == max(crop["pose_min_px"], gate(real["pose_min_px_real"]))
    per_group = [gate(v) for v in real["emotion_min_px_real"].values()]
    assert g.emotion_min_px == real["emotion_min_px"] == max([crop["emotion_min_px"], *per_group])


def test_validity_quick_runs_and_small_faces_read_worse(tmp_path):
    import importlib.util

    shared("fer2013/val.parquet")
    spec = importlib.util.spec_from_file_location("validity_bench", ROOT / "bench" / "validity.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    res = bench.main(["--quick", "--json", str(tmp_path / "v.json"), "--plots", str(tmp_path / "png")])
    curves = next(iter(res["emotion"].values()))["size"]
    assert curves[10]["accuracy"] < curves[48]["accuracy"]  # the premise of every gate
    assert curves[10]["share_tv"] > curves[48]["share_tv"]
    assert res["pose"]["faces"] >= 3 and res["pose"]["size"][48]["n"] >= 1
    assert sorted(p.name for p in Path(tmp_path / "png").iterdir()) == [
        "emotion_vs_blur_jpeg.png",
        "emotion_vs_size.png",
        "pose_vs_size.png",
    ]
    assert set(res["derived_gates"]) >= {"emotion_min_px", "pose_min_px", "eyes_min_px", "rules"}


class _CountingLandmarks:
    """The real 68-point predictor, counting the faces it is asked for."""

    def __init__(self):
        from fer_stream.faces.landmarks import LandmarkPredictor

        self.inner, self.faces = LandmarkPredictor(), 0

    def __call__(self, gray, boxes):
        self.faces += len(boxes)
        return self.inner(gray, boxes)


def test_landmarks_run_only_where_the_pose_is_read(photo):
    det = make_detector("mtcnn", min_face_px=20)
    counting = _CountingLandmarks()
    (full,) = FaceStage(det, counting, gates=Gates(0, 0, 0))([(0, 0.0, photo)])
    assert counting.faces == 1 and np.isfinite(full.landmarks68).all()
    w = float(full.face_px[0])
    counting.faces = 0
    # pose read, eyes not: the 68-point model runs (head pose needs it), EAR stays null
    (mid,) = FaceStage(det, counting, gates=Gates(0, 0, w + 1))([(0, 0.0, photo)])
    assert counting.faces == 1 and np.isfinite(mid.yaw).all() and np.isnan(mid.ear).all()
    counting.faces = 0
    # pose not read: no 68-point model; the crop is aligned on the detector's 5 points
    (small,) = FaceStage(det, counting, gates=Gates(0, w + 1, w + 1))([(0, 0.0, photo)])
    assert counting.faces == 0
    assert np.isnan(small.landmarks68).all() and np.isnan(small.yaw).all() and np.isnan(small.attention).all()
    assert small.crops.shape == full.crops.shape
    assert np.abs(small.crops.astype(int) - full.crops).mean() < 20  # 5 vs 68 points: nearly the same crop
    # identity asks for 68 points on the faces it describes, pose or not
    stage = FaceStage(det, counting, gates=Gates(0, w + 1, w + 1), landmarks_min_px=w - 1)
    (ident,) = stage([(0, 0.0, photo)])
    assert counting.faces == 1 and np.isfinite(ident.landmarks68).all()


def test_five_point_pose_is_close_on_a_frontal_face(photo):
    """head_pose5 (measured, not used by the pipeline: docs/VALIDITY.md) on the real photo."""
    det = make_detector("mtcnn", min_face_px=20)
    (ff,) = FaceStage(det, gates=Gates(0, 0, 0))([(0, 0.0, photo)])
    h, w = photo.shape[:2]
    p5 = att.head_pose5(ff.det.landmarks, (w, h))
    assert abs(p5[0, 0] - ff.yaw[0]) < 10 and abs(p5[0, 1] - ff.pitch[0]) < 15
    with pytest.raises(ValueError):
        att.head_pose5(np.zeros((1, 4, 2)), (w, h))


# --------------------------------------------------------------------------------------------------
# Orientation (issue 23): an emotion is read only from a face turned to the camera


def test_turned_to_camera_reads_pose_where_read_and_head_state_where_read():
    from fer_stream.validity import turned_to_camera

    g = Gates()
    nan = np.nan
    yaw = np.array([0, 0, g.emotion_max_abs_yaw + 5, 0, 0, nan, nan, nan, 0])
    pitch = np.array([0, g.emotion_pitch_min - 5, 0, g.emotion_pitch_max + 5, 0, nan, nan, nan, 0])
    head = ["up", "up", "up", "up", "down", "up", "down", None, None]
    ok = turned_to_camera(yaw, pitch, head, g)
    # frontal; bowed past the pitch limit; turned past the yaw limit; tilted up; a read pose decides
    # over the head state; no pose but "up"; no pose and "down"; nothing measured; pose only
    assert ok.tolist() == [True, False, False, False, True, True, False, False, True]
    # a camera whose heads are measured otherwise can allow bowed heads explicitly
    assert turned_to_camera(yaw, pitch, head, dataclasses.replace(g, emotion_when_down=True))[6]
    with pytest.raises(ValueError):
        Gates(emotion_pitch_min=10, emotion_pitch_max=0)
    assert turned_to_camera(np.zeros(0), np.zeros(0), [], g).shape == (0,)


class _FixedHeadState:
    """A head-state model that sees every face as ``state`` (the stage's ``predict(rgb, xyxy)``)."""

    def __init__(self, state: str):
        from fer_stream.head_state import HEAD_STATES

        self.row = np.eye(4, dtype=np.float32)[HEAD_STATES.index(state)]

    def predict(self, rgb, xyxy):
        return np.tile(self.row, (len(xyxy), 1))


def test_a_bowed_head_gets_no_emotion(photo):
    """The same real face, big enough for every gate: read as bowed, it has no emotion; read as
    facing the front, it has one; the size gates are unchanged by orientation."""
    det = make_detector("mtcnn", min_face_px=20)
    gates = Gates(emotion_min_px=0, pose_min_px=10_000, eyes_min_px=float("inf"), head_min_px=0)
    (down,) = FaceStage(det, gates=gates, head_state=_FixedHeadState("down"))([(0, 0.0, photo)])
    (up,) = FaceStage(det, gates=gates, head_state=_FixedHeadState("up"))([(0, 0.0, photo)])
    assert len(down) == len(up) == 1
    assert down.head_state.tolist() == ["down"] and not down.emotion_readable.any()
    assert up.head_state.tolist() == ["up"] and up.emotion_readable.all()
    # and in the records: a bowed head's emotion is null
    cols = columns.FaceColumns()
    cols.add(down)
    t = columns.faces_table(cols.arrays(), np.full((1, 7), 1 / 7, np.float32), ["s1"], video_id="ab" * 32,
                            course="ML101", lecture_date=date(2024, 3, 5), model_version="m")  # fmt: skip
    assert t.column("emotion").to_pylist() == [None]


def test_a_face_turned_past_the_yaw_limit_gets_no_emotion(photo):
    """Where the pose is read, a limit just below the face's own |yaw| takes its emotion away."""
    det = make_detector("mtcnn", min_face_px=20)
    gates = Gates(emotion_min_px=0, pose_min_px=0, eyes_min_px=float("inf"))
    (ff,) = FaceStage(det, gates=gates)([(0, 0.0, photo)])
    assert ff.emotion_readable.all() and np.isfinite(ff.yaw).all()
    tight = dataclasses.replace(gates, emotion_max_abs_yaw=max(0.0, float(abs(ff.yaw[0])) - 0.5))
    (turned,) = FaceStage(det, gates=tight)([(0, 0.0, photo)])
    assert not turned.emotion_readable.any()


def test_default_orientation_limits_are_the_ones_the_real_video_curves_give():
    res = json.loads((ROOT / "bench" / "results" / "validity_video.json").read_text())
    g = Gates()
    assert res["derived"]["orientation"] == {
        "emotion_max_abs_yaw": g.emotion_max_abs_yaw,
        "emotion_pitch_min": g.emotion_pitch_min,
        "emotion_pitch_max": g.emotion_pitch_max,
        "emotion_when_down": g.emotion_when_down,
    }
    # every reported face agrees with its full-size reading at the bar, in every group
    for group, rep in res["reported"].items():
        assert rep["overall"]["agreement"] >= 0.75, group
        assert abs(rep["overall"]["sad_shift"]) <= 0.10, group


def test_real_video_validity_quick_runs_and_small_faces_agree_less(tmp_path):
    import importlib.util

    shared("videos/single_face.mp4")
    shared("daisee/val.parquet")
    shared("classroom_heads")
    spec = importlib.util.spec_from_file_location("validity_video", ROOT / "bench" / "validity_video.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    res = bench.main(["--quick", "--json", str(tmp_path / "vv.json"), "--pairs", str(tmp_path / "p.npz")])
    curve = {int(k): v for k, v in res["all"].items() if v["n"] >= 5}
    small, big = min(curve), max(curve)
    assert small < big and curve[small]["agreement"] <= curve[big]["agreement"]
    assert set(res["derived"]) >= {"emotion_min_px", "pose_min_px", "orientation", "rules"}
    cls = res["classroom_bowed_heads"]
    down_before = cls["size_gate_only_14px"]["down"]["with_emotion"]
    assert cls["gates"]["down"]["with_emotion"] <= down_before


def test_orientation_limits_are_set_from_the_command_line_and_change_the_config_hash():
    import argparse

    from fer_stream.cli.options import add_analysis_args, config_from_args

    def config(*argv):
        p = argparse.ArgumentParser()
        add_analysis_args(p)
        return config_from_args(p.parse_args(list(argv)))

    assert config().gates == Gates()  # the command line's defaults are the measured ones
    cfg = config("--emotion-max-yaw", "20", "--emotion-when-down", "--emotion-min-px", "20")
    assert cfg.gates == dataclasses.replace(
        Gates(), emotion_max_abs_yaw=20.0, emotion_when_down=True, emotion_min_px=20.0
    )
    model = ModelInfo.load("default")
    assert config_hash(cfg.analysis(model)) != config_hash(config().analysis(model))
