"""Landmarks (dlib 68-point) and alignment: shapes, empty frames, NaN fallback, rotation invariance.

Real-image tests use ../shared/data/faces/single_face.jpg (one frontal adult face, ~190 px); the
geometry tests run anywhere.
"""

import cv2
import dlib
import numpy as np
import pytest

from fer_stream.faces import align as A
from fer_stream.faces.align import align_faces, face_transforms
from fer_stream.faces.landmarks import LandmarkModelError, LandmarkPredictor, five_from_68, model_path
from tests.helpers import shared


def _corr(a, b) -> float:
    return float(np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1])


def _apply(mats, pts):
    """Map ``(N, K, 2)`` image points through ``(N, 2, 3)`` affine matrices."""
    return np.einsum("nij,nkj->nki", mats[:, :, :2], pts) + mats[:, None, :, 2]


@pytest.fixture(scope="module")
def predictor():
    return LandmarkPredictor()  # the model ships in face-recognition-models, a dependency


@pytest.fixture(scope="module")
def face():
    """RGB single_face.jpg, its HOG box (1, 4) and a detector for rotated copies."""
    rgb = cv2.cvtColor(cv2.imread(str(shared("faces/single_face.jpg"))), cv2.COLOR_BGR2RGB)
    detector = dlib.get_frontal_face_detector()

    def detect(img):
        return np.array(
            [[r.left(), r.top(), r.right(), r.bottom()] for r in detector(img, 0)], np.float32
        ).reshape(-1, 4)

    boxes = detect(rgb)
    assert len(boxes) == 1, "single_face.jpg should hold exactly one HOG-detectable face"
    return rgb, boxes, detect


def _rotate(rgb, centre, deg):
    """Rotate the image ``deg`` degrees counter-clockwise on screen about ``centre`` (cv2 convention)."""
    m = cv2.getRotationMatrix2D(tuple(float(v) for v in centre), deg, 1.0)
    return cv2.warpAffine(rgb, m, rgb.shape[1::-1], borderMode=cv2.BORDER_REPLICATE), m


# ---------------------------------------------------------------- landmarks


def test_model_is_found_in_the_installed_package_and_missing_one_is_typed(tmp_path):
    assert model_path("68").name == "shape_predictor_68_face_landmarks.dat"
    with pytest.raises(LandmarkModelError):
        LandmarkPredictor(str(tmp_path / "nope.dat"))
    bad = tmp_path / "bad.dat"
    bad.write_bytes(b"not a model")
    with pytest.raises(LandmarkModelError):
        LandmarkPredictor(str(bad))


def test_landmarks_lie_on_the_face(predictor, face):
    rgb, boxes, _ = face
    lm = predictor(rgb, boxes)
    assert lm.shape == (1, 68, 2) and lm.dtype == np.float32 and np.isfinite(lm).all()
    x1, y1, x2, y2 = boxes[0]
    pad = 0.25 * (x2 - x1)  # the jaw line may leave dlib's tight HOG box a little
    assert (lm[0, :, 0] > x1 - pad).all() and (lm[0, :, 0] < x2 + pad).all()
    assert (lm[0, :, 1] > y1 - pad).all() and (lm[0, :, 1] < y2 + pad).all()
    five = five_from_68(lm)[0]
    left_eye, right_eye, nose, mouth_l, mouth_r = five
    assert left_eye[0] < right_eye[0] and mouth_l[0] < mouth_r[0]  # Detections order: image-left first
    assert (
        max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_l[1], mouth_r[1])
    )  # eyes above nose above mouth


def test_landmarks_gray_matches_rgb_and_edge_cases(predictor, face):
    rgb, boxes, _ = face
    lm = predictor(rgb, boxes)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    # dlib's own RGB->gray differs slightly from OpenCV's: a few pixels on a ~190 px face
    assert np.abs(predictor(gray, boxes) - lm).max() <= 4
    assert predictor(rgb, np.zeros((0, 4))).shape == (0, 68, 2)
    two = predictor(rgb, np.vstack([boxes, np.full((1, 4), np.nan)]))
    assert np.isfinite(two[0]).all() and np.isnan(two[1]).all()  # a NaN box gets NaN landmarks
    with pytest.raises(ValueError):
        predictor(rgb.astype(np.float32), boxes)


def test_five_from_68_order():
    lm = np.zeros((1, 68, 2), np.float32)
    lm[0, 36:42], lm[0, 42:48] = (10, 20), (30, 20)
    lm[0, 30], lm[0, 48], lm[0, 54] = (20, 30), (12, 40), (28, 40)
    np.testing.assert_array_equal(five_from_68(lm)[0], [[10, 20], [30, 20], [20, 30], [12, 40], [28, 40]])
    assert five_from_68(np.zeros((0, 68, 2))).shape == (0, 5, 2)


# ---------------------------------------------------------------- alignment geometry (no data needed)


def test_transform_puts_eyes_on_the_template_and_levels_them():
    rng = np.random.default_rng(0)
    n = 6
    mid = rng.uniform(100, 400, (n, 2))
    deg = rng.uniform(-40, 40, n)
    dist = rng.uniform(20, 120, n)
    u = np.stack([np.cos(np.radians(deg)), np.sin(np.radians(deg))], 1)
    eyes = np.stack([mid - u * dist[:, None] / 2, mid + u * dist[:, None] / 2], 1)  # (N, 2, 2)
    boxes = np.zeros((n, 4))  # unused when eyes are given
    for size in (48, 64):
        out = _apply(face_transforms(eyes, boxes, size), eyes)
        np.testing.assert_allclose(out[:, 0, 1], out[:, 1, 1], atol=1e-9)  # level eye line
        np.testing.assert_allclose(out[:, :, 1], A.EYE_Y * size - 0.5, atol=1e-9)  # template height
        np.testing.assert_allclose(out.mean(1)[:, 0], (size - 1) / 2, atol=1e-9)  # centred
        assert (out[:, 0, 0] < out[:, 1, 0]).all()  # not flipped
        # eyes only: size from the eye distance
        np.testing.assert_allclose(out[:, 1, 0] - out[:, 0, 0], A.EYE_DIST * size, rtol=1e-9)
    # a larger margin zooms out about the same centre
    wide = _apply(face_transforms(eyes, boxes, 48, margin=0.4), eyes)
    assert ((wide[:, 1, 0] - wide[:, 0, 0]) < (out[:, 1, 0] - out[:, 0, 0]) * 48 / 64).all()


def test_nan_landmarks_fall_back_to_an_unrotated_box_crop():
    img = np.random.default_rng(1).integers(0, 255, (200, 300), np.uint8)
    boxes = np.array([[50, 40, 150, 140], [160, 60, 240, 140]], np.float32)
    lm = np.full((2, 5, 2), np.nan, np.float32)  # HOG detections carry no landmarks
    mats = face_transforms(lm, boxes, 48)
    np.testing.assert_allclose(mats[:, 0, 1], 0, atol=1e-12)  # no rotation
    np.testing.assert_allclose(mats[:, 1, 0], 0, atol=1e-12)
    box_side = np.array([100, 80])
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2 + np.outer(A.BOX_DY * box_side, [0, 1])
    np.testing.assert_allclose(_apply(mats, centre[:, None])[:, 0], 23.5, atol=1e-6)
    crops = align_faces(img, lm, boxes, 48)
    assert crops.shape == (2, 48, 48) and crops.dtype == np.uint8
    # mixed frame: a face with landmarks and one without
    lm[0] = [[80, 80], [120, 80], [100, 100], [85, 120], [115, 120]]
    assert align_faces(img, lm, boxes, 48).shape == (2, 48, 48)
    with pytest.raises(ValueError):  # neither landmarks nor a box
        align_faces(img, np.full((1, 5, 2), np.nan), np.full((1, 4), np.nan))


@pytest.mark.parametrize("k", [2, 5, 68])
def test_empty_frame(k):
    img = np.zeros((10, 10, 3), np.uint8)
    assert align_faces(img, np.zeros((0, k, 2)), np.zeros((0, 4))).shape == (0, 48, 48)
    assert align_faces(img, np.zeros((0, k, 2)), np.zeros((0, 4)), size=64).dtype == np.uint8


def test_bad_inputs_are_value_errors():
    img = np.zeros((10, 10), np.uint8)
    with pytest.raises(ValueError):
        align_faces(img, np.zeros((1, 3, 2)), np.zeros((1, 4)))
    with pytest.raises(ValueError):
        align_faces(img, np.zeros((2, 5, 2)), np.zeros((1, 4)))
    with pytest.raises(ValueError):
        align_faces(img.astype(float), np.zeros((0, 5, 2)), np.zeros((0, 4)))


# ---------------------------------------------------------------- alignment on a real face


def test_crop_shapes_and_landmark_kinds_agree(predictor, face):
    rgb, boxes, _ = face
    lm = predictor(rgb, boxes)
    c68 = align_faces(rgb, lm, boxes, 48)
    assert c68.shape == (1, 48, 48) and c68.dtype == np.uint8
    assert align_faces(rgb, lm, boxes, size=64).shape == (1, 64, 64)
    # the 5-point path frames the face the same way
    assert _corr(align_faces(rgb, five_from_68(lm), boxes), c68) > 0.9
    # the box-only fallback lands close: HOG box sizes step by ~20% between pyramid levels, so compare the
    # crop geometry (side within 25%, centre within 10% of the side) rather than pixels
    m68, mbox = face_transforms(lm, boxes, 48)[0], face_transforms(np.full((1, 5, 2), np.nan), boxes, 48)[0]
    side68, sidebox = 48 / np.hypot(*m68[0, :2]), 48 / np.hypot(*mbox[0, :2])
    centre68, centrebox = (np.linalg.solve(m[:, :2], 23.5 - m[:, 2]) for m in (m68, mbox))
    assert 0.8 < sidebox / side68 < 1.25
    assert np.linalg.norm(centrebox - centre68) < 0.1 * side68


@pytest.mark.parametrize("deg", [20, -20])
def test_rotated_face_aligns_like_the_upright_one(predictor, face, deg):
    rgb, boxes, detect = face
    lm = predictor(rgb, boxes)
    upright = align_faces(rgb, lm, boxes)
    rotated, m = _rotate(rgb, five_from_68(lm)[0, :2].mean(0), deg)
    rboxes = detect(rotated)
    if len(rboxes) != 1:  # HOG may miss a tilted face; the predictor only needs a box around it
        c = m @ np.array([*(boxes[0, :2] + boxes[0, 2:]) / 2, 1])
        half = (boxes[0, 2:] - boxes[0, :2]) / 2
        rboxes = np.array([[*(c - half), *(c + half)]], np.float32)
    rlm = predictor(rotated, rboxes)
    aligned = align_faces(rotated, rlm, rboxes)
    # measured 0.98-0.99; landmark jitter of ~1 px moves a 48 px crop by a fraction of a pixel
    assert _corr(aligned, upright) > 0.9
    # the eye line of the aligned face is level: re-detect landmarks on a large aligned crop
    big = align_faces(rotated, rlm, rboxes, size=192)[0]
    half = 192 / (1 + 2 * A.DEFAULT_MARGIN) / 2
    crop_box = np.array([[96 - half, 96 - half, 96 + half, 96 + half]])
    eyes = five_from_68(predictor(big, crop_box))[0, :2]
    tilt = np.degrees(np.arctan2(*(eyes[1] - eyes[0])[::-1]))
    assert abs(tilt) < 3, f"eye line tilted {tilt:.1f} deg after alignment"
