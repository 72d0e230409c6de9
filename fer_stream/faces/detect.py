"""Face detectors behind one interface, and the box matching used to score them.

Every detector has ``detect(image_rgb) -> Detections`` and ``detect_batch(frames) -> list[Detections]``
for ``uint8 (H, W, 3)`` RGB images:

* ``mtcnn`` (default): :class:`fer_stream.faces.mtcnn.MTCNN`, boxes + 5 landmarks, batched on CPU/GPU.
* ``hog``: dlib's HOG + linear SVM frontal detector; CPU only, no landmarks, misses faces under
  ~80 px unless upsampled (each upsampling doubles the image side and ~4x the time).
* ``centerface``: :class:`fer_stream.faces.centerface.CenterFace` (ONNX Runtime), boxes + 5
  landmarks; finds small and bowed classroom faces MTCNN misses (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fer_stream.faces.detections import Detections, iou_matrix

DETECTORS = ("mtcnn", "hog", "centerface")


class HOGDetector:
    """dlib's frontal-face HOG detector.

    Args:
        upsample: times the image is doubled before detection (dlib's scan window is 80x80 px,
            so 1 finds faces down to ~40 px).
    """

    def __init__(self, upsample: int = 1):
        import dlib  # optional dependency, imported only when this detector is used

        if upsample < 0:
            raise ValueError(f"upsample must be >= 0, got {upsample}")
        self.upsample = int(upsample)
        self._detector = dlib.get_frontal_face_detector()

    def detect(self, image_rgb: np.ndarray) -> Detections:
        """Faces in one RGB image, best score first.

        ``score`` is ``sigmoid(SVM margin)``: 0.5 at dlib's default decision threshold (margin 0).
        """
        image = np.ascontiguousarray(image_rgb)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected a uint8 (H, W, 3) RGB image, got {image.dtype} {image.shape}")
        rects, margins, _ = self._detector.run(image, self.upsample, 0.0)
        if len(rects) == 0:
            return Detections.empty()
        h, w = image.shape[:2]
        # dlib rectangles are inclusive (right/bottom are the last pixel); xyxy edges are exclusive
        xyxy = np.array([[r.left(), r.top(), r.right() + 1, r.bottom() + 1] for r in rects], np.float32)
        xyxy[:, 0::2] = xyxy[:, 0::2].clip(0, w)
        xyxy[:, 1::2] = xyxy[:, 1::2].clip(0, h)
        score = 1 / (1 + np.exp(-np.asarray(margins, np.float64)))
        order = np.argsort(-score, kind="stable")
        landmarks = np.full((len(rects), 5, 2), np.nan, np.float32)  # HOG gives no landmarks
        return Detections(xyxy[order], score[order], landmarks)

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """One ``Detections`` per image (dlib has no batched mode: a loop)."""
        return [self.detect(im) for im in images]


def make_detector(name: str = "mtcnn", **kwargs):
    """Build a detector by name: 'mtcnn' (kwargs of ``MTCNN``), 'hog' (of ``HOGDetector``) or
    'centerface' (of ``CenterFace``)."""
    if name == "mtcnn":
        from fer_stream.faces.mtcnn import MTCNN  # torch is imported only when needed

        return MTCNN(**kwargs)
    if name == "hog":
        return HOGDetector(**kwargs)
    if name == "centerface":
        from fer_stream.faces.centerface import CenterFace

        return CenterFace(**kwargs)
    raise ValueError(f"unknown face detector {name!r}; choose one of {DETECTORS}")


def match_boxes(pred_xyxy: np.ndarray, true_xyxy: np.ndarray, iou: float = 0.4) -> tuple[int, int, int]:
    """One-to-one greedy matching of predicted to true boxes, highest IoU pair first.

    A pair counts when its IoU is >= ``iou``. Returns ``(true positives, false positives,
    false negatives)``: matched pairs, unmatched predictions, unmatched true boxes.
    """
    m = iou_matrix(pred_xyxy, true_xyxy)
    n_pred, n_true = m.shape
    pi, ti = np.nonzero(m >= iou)
    used_p, used_t = set(), set()
    for k in np.argsort(-m[pi, ti], kind="stable"):
        if pi[k] not in used_p and ti[k] not in used_t:
            used_p.add(pi[k])
            used_t.add(ti[k])
    tp = len(used_p)
    return tp, n_pred - tp, n_true - tp


def load_imglab_boxes(xml_path: str | Path) -> dict[str, np.ndarray]:
    """Ground-truth boxes of a dlib imglab XML file (``<image file=..><box top left width height/>``).

    Returns ``{image file name: (N, 4) float32 xyxy}`` in the file's order; ignored boxes are dropped.
    """
    out: dict[str, np.ndarray] = {}
    for image in ET.parse(xml_path).getroot().iter("image"):
        rows = [
            [float(b.attrib[k]) for k in ("left", "top", "width", "height")]
            for b in image.iter("box")
            if b.get("ignore", "0") != "1"
        ]
        ltwh = np.array(rows, np.float32).reshape(-1, 4)
        out[image.attrib["file"]] = np.concatenate([ltwh[:, :2], ltwh[:, :2] + ltwh[:, 2:]], 1)
    return out
