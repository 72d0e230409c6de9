"""Face detectors: MTCNN (PyTorch port) and dlib HOG, on synthetic inputs and ../shared/data/faces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from fer_stream.faces import Detections
from fer_stream.faces.detect import HOGDetector, iou_matrix, load_imglab_boxes, make_detector, match_boxes
from fer_stream.faces.mtcnn import MTCNN, ONET, PNET, RNET, StageNet, load_keras_arrays, nms, weights_dir
from tests.helpers import shared


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # The test machines share 2 cores with other jobs; one intra-op thread keeps timings sane.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def mtcnn() -> MTCNN:
    return MTCNN()


def rgb(name: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(shared(f"faces/{name}"))), cv2.COLOR_BGR2RGB)


def assert_empty(d: Detections):
    assert len(d) == 0
    assert d.xyxy.shape == (0, 4) and d.score.shape == (0,) and d.landmarks.shape == (0, 5, 2)


# ---- weights -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [PNET, RNET, ONET], ids=lambda s: s.name)
def test_every_weight_array_fills_one_parameter_of_matching_shape(spec):
    import joblib

    net = StageNet(spec)
    loaded = load_keras_arrays(net, joblib.load(weights_dir() / f"{spec.name}.lz4"))
    params = dict(net.named_parameters())
    assert sorted(name for name, _ in loaded) == sorted(params)  # nothing left at its random init
    for name, shape in loaded:
        assert shape == tuple(params[name].shape)


def test_weight_mismatch_raises():
    import joblib

    arrays = joblib.load(weights_dir() / "rnet.lz4")
    with pytest.raises(ValueError, match="arrays"):
        load_keras_arrays(StageNet(RNET), arrays[:-1])
    with pytest.raises(ValueError, match="module wants"):
        load_keras_arrays(StageNet(RNET), joblib.load(weights_dir() / "onet.lz4")[: len(arrays)])


# ---- MTCNN on real photos ------------------------------------------------------------------------------


def test_mtcnn_recall_and_precision_on_dlib_faces(mtcnn):
    truth = load_imglab_boxes(shared("faces/dlib_training_boxes.xml"))
    assert sum(len(b) for b in truth.values()) == 18
    tp = fp = fn = 0
    for name, true_xyxy in truth.items():
        d = mtcnn.detect(rgb(name))
        t, f, n = match_boxes(d.xyxy, true_xyxy, iou=0.4)
        tp, fp, fn = tp + t, fp + f, fn + n
    recall, precision = tp / (tp + fn), tp / (tp + fp)
    # Measured (torch 2.13 CPU, opencv 4.14): 18/18 found, 1 false positive (a hand), i.e. recall 1.0,
    # precision 0.95. Tolerance: one more miss and one more false positive, for numeric drift across
    # library versions and devices moving a borderline score over a stage threshold.
    assert recall >= 17 / 18, (tp, fp, fn)
    assert precision >= 17 / 19, (tp, fp, fn)


def test_single_face_photo_gives_one_face(mtcnn):
    d = mtcnn.detect(rgb("single_face.jpg"))
    assert len(d) == 1
    assert 0.9 <= d.score[0] <= 1


def test_multi_face_photo_gives_every_face(mtcnn):
    d = mtcnn.detect(rgb("multi_face.jpg"))
    assert len(d) == 5  # five people, all facing the camera
    assert np.all(np.diff(d.score) <= 0)  # best first


@pytest.mark.parametrize("name", ["single_face.jpg", "multi_face.jpg"])
def test_landmarks_lie_in_their_box_in_anatomical_order(mtcnn, name):
    d = mtcnn.detect(rgb(name))
    assert len(d) > 0
    margin = 0.1 * d.wh.max(1, keepdims=True)  # O-Net points may sit just outside the refined box
    x, y = d.landmarks[..., 0], d.landmarks[..., 1]
    assert np.all(x >= d.xyxy[:, :1] - margin) and np.all(x <= d.xyxy[:, 2:3] + margin)
    assert np.all(y >= d.xyxy[:, 1:2] - margin) and np.all(y <= d.xyxy[:, 3:4] + margin)
    # upright faces: left eye/mouth corner (as seen on the image) left of the right ones, eyes above mouth
    left_eye, right_eye, nose, mouth_left, mouth_right = d.landmarks.transpose(1, 0, 2)  # (N, 2) each
    assert np.all(left_eye[:, 0] < right_eye[:, 0]) and np.all(mouth_left[:, 0] < mouth_right[:, 0])
    eyes_y, mouth_y = d.landmarks[:, :2, 1], d.landmarks[:, 3:, 1]
    assert np.all(eyes_y.max(1) < mouth_y.min(1))
    assert np.all((nose[:, 0] > left_eye[:, 0]) & (nose[:, 0] < right_eye[:, 0]))


def test_detect_batch_equals_detect_per_frame(mtcnn):
    frames = [rgb("2007_007763.jpg"), rgb("2008_002079.jpg")]  # both 500x375
    batched = mtcnn.detect_batch(frames)
    assert len(batched) == 2
    for frame, b in zip(frames, batched, strict=True):
        one = mtcnn.detect(frame)
        assert len(one) == len(b) > 0
        # batching only changes float summation order inside the convolutions
        np.testing.assert_allclose(b.xyxy, one.xyxy, atol=1e-2)
        np.testing.assert_allclose(b.score, one.score, atol=1e-4)
        np.testing.assert_allclose(b.landmarks, one.landmarks, atol=1e-2)


def test_min_face_px_sets_the_smallest_face_found(mtcnn):
    # A real face shrunk to a 24 px box (with half a box of context around it), on a grey canvas.
    img = rgb("single_face.jpg")
    x1, y1, x2, y2 = mtcnn.detect(img).xyxy[0]
    side, cx, cy = max(x2 - x1, y2 - y1), (x1 + x2) / 2, (y1 + y2) / 2
    half = 0.75 * side
    crop = img[int(max(cy - half, 0)) : int(cy + half), int(max(cx - half, 0)) : int(cx + half)]
    small = cv2.resize(crop, None, fx=24 / side, fy=24 / side, interpolation=cv2.INTER_AREA)
    canvas = np.full((240, 320, 3), 128, np.uint8)
    top, left = 100, 150
    canvas[top : top + small.shape[0], left : left + small.shape[1]] = small

    found = MTCNN(min_face_px=20).detect(canvas)
    assert len(found) == 1
    centre = (found.xyxy[0, :2] + found.xyxy[0, 2:]) / 2
    assert np.all(np.abs(centre - (left + small.shape[1] / 2, top + small.shape[0] / 2)) < 8)
    assert 12 <= found.wh.max() <= 36
    assert_empty(MTCNN(min_face_px=60).detect(canvas))


# ---- edge cases ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((480, 640, 3), np.uint8),
        np.full((360, 640, 3), 200, np.uint8),
        np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8),
        np.zeros((8, 8, 3), np.uint8),  # smaller than P-Net's 12 px window
        np.zeros((11, 300, 3), np.uint8),
    ],
    ids=["black", "grey", "noise", "8x8", "11x300"],
)
def test_no_face_gives_empty_detections(mtcnn, image):
    assert_empty(mtcnn.detect(image))
    assert [len(d) for d in mtcnn.detect_batch([image, image])] == [0, 0]


def test_bad_input_raises(mtcnn):
    assert mtcnn.detect_batch([]) == []
    with pytest.raises(ValueError):
        mtcnn.detect(np.zeros((64, 64), np.uint8))  # grey, not RGB
    with pytest.raises(ValueError):
        mtcnn.detect(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(ValueError, match="same-size"):
        mtcnn.detect_batch([np.zeros((64, 64, 3), np.uint8), np.zeros((64, 80, 3), np.uint8)])
    with pytest.raises(ValueError):
        MTCNN(min_face_px=8)


def test_nms_modes_and_groups():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [2, 2, 6, 6], [50, 50, 60, 60]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    # IoU(0,1) = 81/119 = 0.68; box 2 lies inside box 0 (IoU 0.16, overlap/min area 1.0)
    assert nms(boxes, scores, 0.5, "union").tolist() == [0, 2, 3]
    assert nms(boxes, scores, 0.5, "min").tolist() == [0, 3]
    assert nms(boxes, scores, 0.5, "union", groups=np.array([0, 1, 0, 0])).tolist() == [0, 1, 2, 3]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


# ---- HOG, factory, matching ----------------------------------------------------------------------------


def test_hog_returns_detections_without_landmarks():
    img = rgb("2008_001322.jpg")
    d = HOGDetector(upsample=1).detect(img)
    assert isinstance(d, Detections) and len(d) >= 1
    assert np.isnan(d.landmarks).all() and d.landmarks.shape == (len(d), 5, 2)
    assert np.all((d.score >= 0) & (d.score <= 1))
    h, w = img.shape[:2]
    assert np.all(d.xyxy >= 0) and np.all(d.xyxy[:, 2] <= w) and np.all(d.xyxy[:, 3] <= h)
    assert_empty(HOGDetector().detect(np.zeros((120, 160, 3), np.uint8)))
    hog0 = HOGDetector(upsample=0)
    assert [len(x) for x in hog0.detect_batch([img, img])] == [len(hog0.detect(img))] * 2


def test_make_detector():
    assert isinstance(make_detector("hog", upsample=0), HOGDetector)
    assert isinstance(make_detector("mtcnn", min_face_px=40), MTCNN)
    with pytest.raises(ValueError, match="unknown face detector"):
        make_detector("retinaface")


def test_iou_matrix_and_greedy_matching():
    pred = np.array([[0, 0, 10, 10], [0, 0, 10, 12], [100, 100, 110, 110]], float)
    true = np.array([[0, 0, 10, 10], [50, 50, 60, 60]], float)
    m = iou_matrix(pred, true)
    assert m.shape == (3, 2)
    np.testing.assert_allclose(m[:, 0], [1, 100 / 120, 0])
    assert match_boxes(pred, true) == (1, 2, 1)  # one-to-one: the two overlapping predictions share 1 truth
    assert match_boxes(np.zeros((0, 4)), true) == (0, 0, 2)
    assert match_boxes(pred, np.zeros((0, 4))) == (0, 3, 0)
    assert iou_matrix(np.zeros((0, 4)), true).shape == (0, 2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(mtcnn):
    frames = [rgb("2007_007763.jpg"), rgb("2008_002079.jpg")]
    gpu = MTCNN(device="cuda").detect_batch(frames)
    for c, g in zip(mtcnn.detect_batch(frames), gpu, strict=True):
        assert len(c) == len(g)
        np.testing.assert_allclose(g.xyxy, c.xyxy, atol=0.5)  # TF32 convs and other kernels
        np.testing.assert_allclose(g.score, c.score, atol=1e-2)


# ---- refinement between full detections (FaceStage(detect_every=N)) ---------------------------------


def test_refine_re_finds_faces_near_their_previous_boxes(mtcnn):
    image = rgb("multi_face.jpg")
    full = mtcnn.detect(image)
    # the previous frame's boxes, as if each student moved a little: shifted by 8% of the side
    side = (full.xyxy[:, 2:3] - full.xyxy[:, 0:1]) * 0.08
    seeds = full.xyxy + np.concatenate([side, -side, side, -side], 1)
    got = mtcnn.refine(image, seeds)
    assert len(got) == len(full) == 5
    assert (iou_matrix(full.xyxy, got.xyxy).max(1) > 0.7).all()  # the same faces, tightly
    assert np.isfinite(got.landmarks).all() and (got.score > mtcnn.thresholds[2]).all()
    # one seed per face however often it is given: no duplicate faces
    twice = mtcnn.refine(image, np.concatenate([seeds, full.xyxy]))
    assert len(twice) == 5


def test_refine_drops_a_face_that_is_gone_and_finds_no_new_ones(mtcnn):
    image = rgb("multi_face.jpg")
    full = mtcnn.detect(image)
    x1, y1, x2, y2 = full.xyxy[0].astype(int)
    gone = image.copy()
    gone[max(0, y1 - 10) : y2 + 10, max(0, x1 - 10) : x2 + 10] = 128  # that student left
    got = mtcnn.refine(gone, full.xyxy)
    assert len(got) == 4 and iou_matrix(full.xyxy[:1], got.xyxy).max() < 0.1
    # seeded with one face only, the others are not searched for
    one = mtcnn.refine(image, full.xyxy[1:2])
    assert len(one) == 1 and iou_matrix(full.xyxy[1:2], one.xyxy)[0, 0] > 0.7
    assert_empty(mtcnn.refine(image, np.zeros((0, 4))))
    assert_empty(mtcnn.refine(np.full((8, 8, 3), 128, np.uint8), full.xyxy))


class _CountingDetector:
    """Returns a fixed face; records which frames got a full detection and which a refinement."""

    def __init__(self):
        self.calls: list[str] = []

    def detect(self, image):
        self.calls.append("full")
        return Detections(np.array([[10, 10, 50, 50]], np.float32), np.ones(1), np.zeros((1, 5, 2)))

    def detect_batch(self, images):
        return [self.detect(im) for im in images]

    def refine(self, image, boxes):
        self.calls.append(f"refine{len(boxes)}")
        return Detections(boxes[:1].astype(np.float32), np.ones(1), np.zeros((1, 5, 2)))


def test_face_stage_detects_fully_every_nth_frame_and_after_reset():
    from fer_stream.lecture import FaceStage

    det = _CountingDetector()
    stage = FaceStage(det, landmarks=object(), detect_every=3)
    frames = [np.zeros((64, 64, 3), np.uint8)] * 7
    for i in range(0, 7, 2):  # batches of 2 frames: the schedule runs over batch edges
        stage._detect(frames[i : i + 2])
    # seeds: the previous frame's faces and the last full detection's
    assert det.calls == ["full", "refine2", "refine2", "full", "refine2", "refine2", "full"]
    stage.reset()
    stage._detect(frames[:1])
    assert det.calls[-1] == "full"
    every = FaceStage(_CountingDetector(), landmarks=object(), detect_every=1)
    every._detect(frames[:3])
    assert every.detector.calls == ["full"] * 3
    with pytest.raises(ValueError, match="cannot refine"):
        FaceStage(HOGDetector(), landmarks=object(), detect_every=2)
    with pytest.raises(ValueError, match=">= 1"):
        FaceStage(det, landmarks=object(), detect_every=0)
