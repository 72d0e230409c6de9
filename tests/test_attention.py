"""Attention signals: head-pose sign conventions on synthetic projections, EAR, score, PERCLOS, presence."""

import dataclasses

import cv2
import numpy as np
import pytest

from fer_stream import attention as A
from fer_stream.attention import AttentionConfig

W, H = 1280, 720
CAM = A.camera_matrix((W, H))


def _basis(forward, down):
    """Head rotation (columns = head x, y, z axes in camera coordinates) from where the nose points
    (``forward``, the head's -z) and the head's down direction; built without ``matrix_from_euler``."""
    z = -np.asarray(forward, float) / np.linalg.norm(forward)
    y = np.asarray(down, float) - np.dot(down, z) * z
    y /= np.linalg.norm(y)
    return np.column_stack([np.cross(y, z), y, z])


def _project(rot, centre_px=None, depth=80.0, noise_px=0.0, seed=0, cam=CAM):
    """(1, 68, 2) landmarks of the generic head with rotation ``rot`` whose centre projects to ``centre_px``
    (default: the image centre) at ``depth`` model units (~cm; the face spans ~150 px); other points NaN."""
    centre_px = ((W - 1) / 2, (H - 1) / 2) if centre_px is None else centre_px
    ray = np.linalg.solve(cam, [*centre_px, 1.0])
    tvec = ray * depth - rot @ A.MODEL_3D.mean(0)
    img = cv2.projectPoints(A.MODEL_3D, cv2.Rodrigues(rot)[0], tvec, cam, None)[0][:, 0]
    img += np.random.default_rng(seed).normal(0, noise_px, img.shape)
    lm = np.full((1, 68, 2), np.nan)
    lm[0, A.MODEL_INDEX] = img
    return lm


def _pt(lm, i):
    return lm[0, i]


# ---------------------------------------------------------------- head pose


def test_frontal_face_is_zero():
    lm = _project(np.eye(3))
    for rel in ("line_of_sight", "camera_axes"):
        pose = A.head_pose(lm, (W, H), relative_to=rel)
        assert pose.shape == (1, 3) and pose.dtype == np.float32
        np.testing.assert_allclose(pose, 0, atol=0.5)


@pytest.mark.parametrize("deg", [30, -30, 15])
def test_yaw_positive_when_the_subject_turns_to_their_left(deg):
    a = np.radians(deg)
    # nose towards image right for a > 0
    lm = _project(_basis(forward=[np.sin(a), 0, -np.cos(a)], down=[0, 1, 0]))
    # physically: the protruding nose moves towards image right relative to the eyes' corners
    nose_x = (_pt(lm, 31)[0] + _pt(lm, 35)[0]) / 2
    eyes_x = (_pt(lm, 39)[0] + _pt(lm, 42)[0]) / 2
    assert np.sign(nose_x - eyes_x) == np.sign(deg)
    yaw, pitch, roll = A.head_pose(lm, (W, H))[0]
    assert yaw == pytest.approx(deg, abs=2) and abs(pitch) < 2 and abs(roll) < 2


@pytest.mark.parametrize("deg", [20, -20])
def test_pitch_positive_when_looking_up(deg):
    b = np.radians(deg)
    lm = _project(_basis(forward=[0, -np.sin(b), -np.cos(b)], down=[0, 1, 0]))  # nose up (image -y) for b > 0
    frontal = _project(np.eye(3))
    # vertical gap from the inner eye corners down to the nostril wings
    gap = lambda m: (_pt(m, 31)[1] + _pt(m, 35)[1]) / 2 - (_pt(m, 39)[1] + _pt(m, 42)[1]) / 2
    assert np.sign(gap(frontal) - gap(lm)) == np.sign(deg)  # looking up: the nose rises towards the eyes
    yaw, pitch, roll = A.head_pose(lm, (W, H))[0]
    assert pitch == pytest.approx(deg, abs=2) and abs(yaw) < 2 and abs(roll) < 2


@pytest.mark.parametrize("deg", [15, -25])
def test_roll_positive_when_the_image_right_eye_is_lower(deg):
    g = np.radians(deg)
    lm = _project(_basis(forward=[0, 0, -1], down=[-np.sin(g), np.cos(g), 0]))
    d = _pt(lm, 45) - _pt(lm, 36)  # image-left outer eye corner -> image-right outer eye corner
    assert np.degrees(np.arctan2(d[1], d[0])) == pytest.approx(deg, abs=0.5)
    yaw, pitch, roll = A.head_pose(lm, (W, H))[0]
    assert roll == pytest.approx(deg, abs=2) and abs(yaw) < 2 and abs(pitch) < 2


@pytest.mark.parametrize("ypr", [(25, -15, 10), (-40, 10, -20), (10, 25, 5), (50, 0, 0)])
def test_combined_angles_are_recovered_even_with_landmark_noise(ypr):
    rot = A.matrix_from_euler(np.array([ypr]))[0]
    np.testing.assert_allclose(A.euler_from_matrix(rot[None])[0], ypr, atol=1e-9)  # decomposition round-trip
    np.testing.assert_allclose(A.head_pose(_project(rot), (W, H))[0], ypr, atol=1.0)
    # ~1 px of landmark noise on a ~150 px face (dlib's typical jitter): within a few degrees
    np.testing.assert_allclose(A.head_pose(_project(rot, noise_px=1.0), (W, H))[0], ypr, atol=5.0)


def test_line_of_sight_vs_camera_axes_for_an_off_centre_face():
    centre = (1200.0, 100.0)  # image top-right
    ray = np.linalg.solve(CAM, [*centre, 1.0])
    side_deg = np.degrees(np.arctan2(ray[0], ray[2]))
    # a face parallel to the image plane, up and to the right: turned right/up of the camera's direction
    parallel = _project(np.eye(3), centre)
    yaw, pitch, _ = A.head_pose(parallel, (W, H), relative_to="line_of_sight")[0]
    assert yaw == pytest.approx(side_deg, abs=1.5) and pitch > 5
    np.testing.assert_allclose(A.head_pose(parallel, (W, H), relative_to="camera_axes")[0], 0, atol=1)
    # the same face looking straight at the camera
    facing = _project(_basis(forward=-ray, down=[0, 1, 0]), centre)
    np.testing.assert_allclose(A.head_pose(facing, (W, H))[0, :2], 0, atol=1)
    with pytest.raises(ValueError):
        A.head_pose(facing, (W, H), relative_to="world")


def test_known_focal_length_of_a_wide_angle_camera():
    focal = W / 2 / np.tan(np.radians(100) / 2)  # 100-degree horizontal field of view
    cam = A.camera_matrix((W, H), focal)
    centre = (100.0, 600.0)  # bottom-left, ~40 degrees off axis
    ray = np.linalg.solve(cam, [*centre, 1.0])
    facing = _project(_basis(forward=-ray, down=[0, 1, 0]), centre, depth=50, cam=cam)
    np.testing.assert_allclose(A.head_pose(facing, (W, H), focal_px=focal)[0, :2], 0, atol=1)
    # assuming the default focal length (image width) misjudges where the camera is seen from
    assert np.abs(A.head_pose(facing, (W, H))[0, :2]).max() > 5


def test_pose_nan_and_empty_rows():
    lm = np.concatenate([_project(np.eye(3)), np.full((1, 68, 2), np.nan)])
    pose = A.head_pose(lm, (W, H))
    assert np.isfinite(pose[0]).all() and np.isnan(pose[1]).all()
    assert A.head_pose(np.zeros((0, 68, 2)), (W, H)).shape == (0, 3)
    with pytest.raises(ValueError):
        A.head_pose(np.zeros((1, 5, 2)), (W, H))


def test_roll_follows_a_real_rotated_face():
    """single_face.jpg turned 20 degrees counter-clockwise on screen: roll drops by ~20 (right eye rises)."""
    import dlib

    from fer_stream.faces.landmarks import LandmarkPredictor
    from tests.helpers import shared

    rgb = cv2.cvtColor(cv2.imread(str(shared("faces/single_face.jpg"))), cv2.COLOR_BGR2RGB)
    predictor = LandmarkPredictor()
    r = dlib.get_frontal_face_detector()(rgb, 0)[0]
    box = np.array([[r.left(), r.top(), r.right(), r.bottom()]], np.float32)
    lm = predictor(rgb, box)
    wh = rgb.shape[1::-1]
    before = A.head_pose(lm, wh)[0]
    assert np.abs(before).max() < 20  # a near-frontal portrait
    centre = lm[0, 36:48].mean(0)
    m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), 20, 1.0)
    rotated = cv2.warpAffine(rgb, m, wh, borderMode=cv2.BORDER_REPLICATE)
    after = A.head_pose(predictor(rotated, box), wh)[0]  # the box still covers the face
    assert after[2] - before[2] == pytest.approx(-20, abs=4)
    assert abs(after[0] - before[0]) < 6 and abs(after[1] - before[1]) < 6


# ---------------------------------------------------------------- eye aspect ratio


def _eyes(opening: float, scale: float = 1.0, deg: float = 0.0) -> np.ndarray:
    """(1, 68, 2) landmarks with two synthetic eyes 30 px wide whose lids are ``opening`` px apart."""
    h = opening / 2
    eye = np.array([[0, 0], [10, -h], [20, -h], [30, 0], [20, h], [10, h]], float)  # p1..p6
    lm = np.zeros((1, 68, 2))
    lm[0, 36:42], lm[0, 42:48] = eye, eye + [50, 0]
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return lm @ np.array([[c, s], [-s, c]]) * scale


def test_eye_aspect_ratio_open_vs_closed():
    open_ = A.eye_aspect_ratio(_eyes(9.0))  # (4.5 * 2 + 4.5 * 2) ... = 2 * 9 / 60 = 0.3
    closed = A.eye_aspect_ratio(_eyes(2.0))
    assert open_.shape == (1, 2) and open_.dtype == np.float32
    np.testing.assert_allclose(open_, 0.3, rtol=1e-6)
    np.testing.assert_allclose(closed, 2 * 2 / 60, rtol=1e-6)
    assert (open_ > AttentionConfig().ear_closed).all() and (closed < AttentionConfig().ear_closed).all()
    # invariant to face size and in-plane rotation
    np.testing.assert_allclose(A.eye_aspect_ratio(_eyes(9.0, scale=3.7, deg=25)), open_, rtol=1e-5)
    # column 0 is the image-left eye (points 36-41)
    lm = _eyes(9.0)
    lm[0, 42:48] = _eyes(2.0)[0, 36:42]
    np.testing.assert_allclose(A.eye_aspect_ratio(lm)[0], [0.3, 4 / 60], rtol=1e-6)
    assert np.isnan(A.eye_aspect_ratio(np.full((1, 68, 2), np.nan))).all()
    assert A.eye_aspect_ratio(np.zeros((0, 68, 2))).shape == (0, 2)


# ---------------------------------------------------------------- score and flag


def test_score_bounds_monotonic_and_symmetric():
    cfg = AttentionConfig()
    yaw = np.linspace(0, 90, 91)
    score = A.attention_score(yaw, np.zeros_like(yaw), np.full_like(yaw, 0.3), cfg)
    assert score.dtype == np.float32 and ((score >= 0) & (score <= 1)).all()
    assert (np.diff(score) <= 0).all() and score[0] > 0.95 and score[-1] < 0.01
    assert (np.diff(score[20:60]) < 0).all()  # strictly falling around the limit
    np.testing.assert_array_equal(score, A.attention_score(-yaw, 0 * yaw, 0.3 + 0 * yaw, cfg))
    # exactly 0.5 at each limit
    for y, p, e in [
        (cfg.max_abs_yaw, 0, 0.3),
        (0, cfg.pitch_max, 0.3),
        (0, cfg.pitch_min, 0.3),
        (0, 0, cfg.ear_closed),
    ]:
        assert A.attention_score(np.array([y]), np.array([p]), np.array([e]), cfg)[0] == pytest.approx(0.5)
    # more pitch away from the band or more closed eyes never raise the score
    pitch = np.linspace(-60, 60, 121)
    s_p = A.attention_score(0 * pitch, pitch, 0.3 + 0 * pitch, cfg)
    mid = (cfg.pitch_min + cfg.pitch_max) / 2  # the score peaks at the band's centre
    assert (np.diff(s_p[pitch >= mid]) <= 0).all() and (np.diff(s_p[pitch <= mid]) >= 0).all()
    ear = np.linspace(0, 0.4, 41)
    assert (np.diff(A.attention_score(0 * ear, 0 * ear, ear, cfg)) >= 0).all()


def test_attentive_is_all_three_conditions_and_thresholds_matter():
    cfg = AttentionConfig()
    yaw = np.array([0, 29, 35, 0, 0, 0, 0])
    pitch = np.array([0, 0, 0, -24, -30, 21, 0])
    ear = np.array([0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.1])
    np.testing.assert_array_equal(A.attentive(yaw, pitch, ear, cfg), [1, 1, 0, 1, 0, 0, 0])
    conditions = (
        (np.abs(yaw) <= cfg.max_abs_yaw)
        & (pitch >= cfg.pitch_min)
        & (pitch <= cfg.pitch_max)
        & (ear >= cfg.ear_closed)
    )
    np.testing.assert_array_equal(A.attentive(yaw, pitch, ear, cfg), conditions)
    # a wide-angle camera or a lower pitch band (camera mounted high) changes the flag
    wide = AttentionConfig(max_abs_yaw=40, pitch_min=-35, pitch_max=25, ear_closed=0.08)
    assert A.attentive(yaw, pitch, ear, wide).all()
    # per-eye EAR (N, 2) is averaged
    np.testing.assert_array_equal(A.attentive(yaw[:1], pitch[:1], np.array([[0.3, 0.25]])), [True])


def test_unmeasurable_faces_have_nan_score_and_are_not_flagged_attentive():
    score = A.attention_score(np.array([np.nan, 0]), np.array([0, 0]), np.array([0.3, np.nan]))
    assert np.isnan(score).all()
    assert not A.attentive(np.array([np.nan]), np.array([0.0]), np.array([0.3])).any()


def test_config_is_validated_and_frozen():
    with pytest.raises(ValueError):
        AttentionConfig(pitch_min=10, pitch_max=-10)
    with pytest.raises(ValueError):
        AttentionConfig(perclos_drowsy=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        AttentionConfig().max_abs_yaw = 10


# ---------------------------------------------------------------- presence


def test_presence_states_keep_not_visible_apart_from_inattentive():
    visible = np.array([True, True, True, False, False])
    score = np.array([0.9, 0.1, np.nan, np.nan, 0.9])
    states = A.presence_states(visible, score)
    assert states.tolist() == [
        A.VISIBLE_ATTENTIVE,
        A.VISIBLE_INATTENTIVE,
        A.VISIBLE_UNMEASURED,
        A.NOT_VISIBLE,
        A.NOT_VISIBLE,
    ]
    assert set(A.STATES) == {A.VISIBLE_ATTENTIVE, A.VISIBLE_INATTENTIVE, A.VISIBLE_UNMEASURED, A.NOT_VISIBLE}
    # attention rate over measured visible samples: the absent and unmeasured ones do not count against it
    measured = np.isin(states, [A.VISIBLE_ATTENTIVE, A.VISIBLE_INATTENTIVE])
    assert (states[measured] == A.VISIBLE_ATTENTIVE).mean() == 0.5
    assert A.presence_states(np.zeros(0, bool), np.zeros(0)).shape == (0,)


# ---------------------------------------------------------------- PERCLOS


def _perclos_reference(ear, t, window, thr):
    out = []
    for ti in t:
        m = (t > ti - window) & (t <= ti) & np.isfinite(ear)
        out.append(np.mean(ear[m] < thr) if m.any() else np.nan)
    return np.array(out)


def test_perclos_on_a_synthetic_series():
    t = np.arange(0, 300, 1.0)  # 1 sample per second, 5 minutes
    ear = np.full(t.shape, 0.3)
    ear[(t >= 100) & (t < 130)] = 0.1  # eyes closed for 30 s
    p = A.perclos(ear, t, window_s=60, ear_closed=0.2)
    assert p.shape == t.shape and p.dtype == np.float32
    assert p[99] == 0 and p[129] == pytest.approx(30 / 60) and p[189] == 0
    assert p[159] == pytest.approx(30 / 60)  # window (99, 159] still holds all 30 closed seconds
    assert p[160] == pytest.approx(29 / 60)
    np.testing.assert_array_equal(A.drowsy(p, AttentionConfig(perclos_drowsy=0.15)), p >= 0.15)


def test_perclos_irregular_times_missing_samples_and_errors():
    rng = np.random.default_rng(0)
    t = np.cumsum(rng.uniform(0.2, 3.0, 400))
    ear = rng.uniform(0.05, 0.35, (400, 2))
    ear[rng.random(400) < 0.2] = np.nan  # face not visible: left out, not counted as closed
    ear[150:200] = np.nan  # a long absence
    p = A.perclos(ear, t, window_s=20, ear_closed=0.2)
    np.testing.assert_allclose(p, _perclos_reference(ear.mean(1), t, 20, 0.2), rtol=1e-6, equal_nan=True)
    assert np.isnan(p[199])  # window entirely unmeasured -> NaN, not 0
    assert not A.drowsy(p[199:200]).any()
    with pytest.raises(ValueError):
        A.perclos(ear[:, 0], t[::-1])
    with pytest.raises(ValueError):
        A.perclos(ear[:10, 0], t[:9])
    assert A.perclos(np.zeros(0), np.zeros(0)).shape == (0,)


# ---------------------------------------------------------------- all signals of a frame


def _with_lids(lm, ear):
    """Put the eyelids (points 37, 38, 40, 41, 43, 44, 46, 47) between the eye corners so EAR = ``ear``."""
    lm = lm.copy()
    for first in (36, 42):
        c1, c4 = lm[:, first], lm[:, first + 3]
        d = c4 - c1
        down = np.stack([-d[:, 1], d[:, 0]], 1) * ear / 2
        lm[:, first + 1], lm[:, first + 2] = c1 + d / 3 - down, c1 + 2 * d / 3 - down
        lm[:, first + 4], lm[:, first + 5] = c1 + 2 * d / 3 + down, c1 + d / 3 + down
    return lm


def test_signals_of_a_frame():
    lm = np.concatenate(
        [
            _project(A.matrix_from_euler(np.array([[40, 0, 0]]))[0]),
            _project(np.eye(3)),
            _project(np.eye(3)),
            np.full((1, 68, 2), np.nan),
        ]
    )
    lm[:3] = np.concatenate([_with_lids(lm[:2], 0.3), _with_lids(lm[2:3], 0.1)])
    np.testing.assert_allclose(A.eye_aspect_ratio(lm[:3]), [[0.3, 0.3], [0.3, 0.3], [0.1, 0.1]], rtol=1e-5)
    s = A.signals(lm, (W, H))
    assert set(s) == {"yaw", "pitch", "roll", "ear", "score", "attentive"}
    assert all(v.shape == (4,) for v in s.values())
    assert s["yaw"][0] == pytest.approx(40, abs=1)
    # turned away, attentive, eyes closed, no landmarks
    assert s["attentive"].tolist() == [False, True, False, False]
    assert np.isnan(s["score"][3])
