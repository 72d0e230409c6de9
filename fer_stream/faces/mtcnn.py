"""MTCNN face detector (Zhang et al. 2016) in PyTorch, on the weights shipped in the ``mtcnn`` wheel.

Three cascaded networks, each a table row for row (``PNET``, ``RNET``, ``ONET`` below)::

    P-Net  fully convolutional 12x12 window, stride 2, over an image pyramid -> face prob + box offsets
    R-Net  24x24 crops of the P-Net proposals                               -> face prob + box offsets
    O-Net  48x48 crops of the R-Net survivors                               -> prob + offsets + 5 points

After each stage: keep boxes above that stage's threshold, non-maximum suppression, calibrate the
box with the predicted offsets (``x1 += dx1 * w`` ...), and square it before cropping for the next
stage.

The ``mtcnn`` wheel (TensorFlow code, not imported here; only its ``assets/weights/*.lz4`` are read)
stores each network as a joblib list of numpy arrays in Keras layout. Facts about that layout that
this port depends on, each checked against the recall on ``../shared/data/faces``:

* input is RGB ``(x - 127.5) / 128`` in (height, width) order, no transpose;
* conv kernels are HWIO (-> torch OIHW), dense weights are (in, out) (-> torch (out, in));
* R-Net/O-Net flatten through ``Permute((2, 1, 3))``: dense input rows are ordered (W, H, C), so
  they are reordered once here to torch's (C, H, W) flatten order;
* Keras 'same' 2x2 / 3x3 stride-2 pooling pads only at the end = torch ``ceil_mode=True``;
* PReLU slopes are per channel and some are negative (kept as they are);
* box offsets are ``(dx1, dy1, dx2, dy2)`` in units of the box size; O-Net points are
  ``(x1..x5, y1..y5)`` in units of the box size.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fer_stream.faces.detections import Detections

# Preprocessing the shipped weights were trained with: RGB uint8 -> roughly [-1, 1].
PIXEL_MEAN = 127.5
PIXEL_SCALE = 1 / 128
PNET_CELL = 12  # P-Net sees 12x12 windows ...
PNET_STRIDE = 2  # ... every 2 pixels of a pyramid level
NMS = {  # IoU thresholds (mode) of the reference implementation, per step
    "pnet_scale": (0.5, "union"),  # within one pyramid level
    "pnet": (0.7, "union"),  # across levels
    "rnet": (0.7, "union"),
    "onet": (0.7, "min"),  # 'min': a small box inside a bigger face box is suppressed too
}


@dataclass(frozen=True)
class Conv:
    """One conv -> PReLU (-> 2x2/3x3 stride-2 max-pool) row of a network table."""

    out: int
    kernel: int
    pool: int = 0  # max-pool window after the PReLU; 0 = none
    pool_same: bool = True  # Keras 'same' pooling (pads at the end) vs 'valid'


@dataclass(frozen=True)
class NetSpec:
    """A whole MTCNN stage; ``heads`` are listed in the order the weight file stores them."""

    name: str
    input_size: int | None  # None: fully convolutional (P-Net)
    convs: tuple[Conv, ...]
    dense: int | None  # width of the hidden dense layer; None: 1x1 conv heads
    heads: tuple[tuple[str, int], ...]


PNET = NetSpec("pnet", None, (Conv(10, 3, pool=2), Conv(16, 3), Conv(32, 3)), None, (("box", 4), ("prob", 2)))
RNET = NetSpec(
    "rnet",
    24,
    (Conv(28, 3, pool=3), Conv(48, 3, pool=3, pool_same=False), Conv(64, 2)),
    128,
    (("box", 4), ("prob", 2)),
)
ONET = NetSpec(
    "onet",
    48,
    (Conv(32, 3, pool=3), Conv(64, 3, pool=3, pool_same=False), Conv(64, 3, pool=2), Conv(128, 2)),
    256,
    (("box", 4), ("points", 10), ("prob", 2)),
)


class StageNet(nn.Module):
    """P-, R- or O-Net built from its ``NetSpec``.

    Input ``(N, 3, H, W)`` float, already normalised. Output: dict of heads; ``prob`` is the face
    probability ``(N,)`` (P-Net: ``(N, h, w)``), ``box`` the offsets ``(N, 4)`` (P-Net ``(N, 4, h, w)``),
    O-Net's ``points`` ``(N, 10)``.
    """

    def __init__(self, spec: NetSpec):
        super().__init__()
        self.spec = spec
        layers: list[nn.Module] = []
        c = 3
        size = spec.input_size
        for row in spec.convs:
            layers += [nn.Conv2d(c, row.out, row.kernel), nn.PReLU(row.out)]
            c = row.out
            if size is not None:
                size = size - row.kernel + 1
            if row.pool:
                layers.append(nn.MaxPool2d(row.pool, 2, ceil_mode=row.pool_same))
                if size is not None:
                    size = (math.ceil if row.pool_same else math.floor)((size - row.pool) / 2) + 1
        self.body = nn.Sequential(*layers)
        if spec.dense is None:
            self.hidden = None
            self.heads = nn.ModuleDict({k: nn.Conv2d(c, n, 1) for k, n in spec.heads})
        else:
            assert size is not None, f"{spec.name}: a dense head needs a fixed input size"
            self.feature_hw = size  # spatial size before the flatten (R-Net 3, O-Net 3)
            self.hidden = nn.Sequential(
                nn.Flatten(), nn.Linear(c * size * size, spec.dense), nn.PReLU(spec.dense)
            )
            self.heads = nn.ModuleDict({k: nn.Linear(spec.dense, n) for k, n in spec.heads})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.body(x)
        if self.hidden is not None:
            x = self.hidden(x)
        out = {k: head(x) for k, head in self.heads.items()}
        out["prob"] = out["prob"].softmax(1)[:, 1]  # channel 1 = "face"
        return out


class _OrtStage:
    """A ``StageNet`` run by ONNX Runtime, called like the module: tensor in, dict of tensors out."""

    def __init__(self, net: StageNet, threads: int):
        from fer_stream.models import onnx

        self.spec = net.spec
        names = [k for k, _ in net.spec.heads]  # the module's dict outputs, in insertion order
        size = net.spec.input_size or PNET_CELL
        dynamic = {"x": {0: "n"} | ({2: "h", 3: "w"} if net.spec.input_size is None else {})}
        dynamic |= {k: {0: "n"} for k in names}

        def export() -> bytes:
            return onnx.to_onnx_bytes(net, torch.zeros(2, 3, size, size), "x", names, dynamic)

        self.run = onnx.OrtNet(onnx.cached_export(net, f"mtcnn-{net.spec.name}", export), threads)

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.run(x.cpu().numpy())
        return {k: torch.from_numpy(v) for k, v in out.items()}


def weights_dir() -> Path:
    """``<site-packages>/mtcnn/assets/weights`` of the installed ``mtcnn`` wheel."""
    spec = importlib.util.find_spec("mtcnn")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the 'mtcnn' wheel (for its weights) is not installed")
    return Path(spec.submodule_search_locations[0]) / "assets" / "weights"


def load_keras_arrays(net: StageNet, arrays: Sequence[np.ndarray]) -> list[tuple[str, tuple[int, ...]]]:
    """Copy Keras-layout arrays (the wheel's build order) into ``net``.

    Raises ValueError on any count or shape mismatch. Returns ``(parameter name, shape)`` per array.
    """
    params = _keras_order(net)
    if len(params) != len(arrays):
        raise ValueError(f"{net.spec.name}: {len(arrays)} arrays for {len(params)} parameters")
    loaded = []
    for (name, p), a in zip(params, arrays, strict=True):
        a = np.asarray(a, np.float32)
        if a.ndim == 4:  # conv kernel HWIO -> OIHW
            a = a.transpose(3, 2, 0, 1)
        elif a.ndim == 3:  # PReLU slopes (1, 1, C) shared over H, W -> (C,)
            a = a.reshape(-1)
        elif a.ndim == 2:  # dense (in, out) -> (out, in)
            if name == "hidden.1.weight":
                # Keras flattened (W, H, C) after Permute((2, 1, 3)); torch flattens (C, H, W).
                s = net.feature_hw
                a = a.reshape(s, s, -1, a.shape[1]).transpose(2, 1, 0, 3).reshape(a.shape)
            a = a.T
        if tuple(a.shape) != tuple(p.shape):
            raise ValueError(
                f"{net.spec.name}.{name}: weight file has {a.shape}, module wants {tuple(p.shape)}"
            )
        with torch.no_grad():
            p.copy_(torch.from_numpy(np.ascontiguousarray(a)))
        loaded.append((name, tuple(p.shape)))
    return loaded


def _keras_order(net: StageNet) -> list[tuple[str, torch.Tensor]]:
    """Parameters in the order Keras built them: body, hidden dense + PReLU, then heads."""
    named = dict(net.named_parameters())
    order = [n for n in named if n.startswith("body.") or n.startswith("hidden.")]
    for head, _ in net.spec.heads:
        order += [f"heads.{head}.weight", f"heads.{head}.bias"]
    return [(n, named[n]) for n in order]


def load_net(spec: NetSpec, directory: Path | None = None) -> StageNet:
    """Build ``spec`` and load ``<directory>/<name>.lz4`` (default: the installed wheel's)."""
    import joblib  # only needed here; joblib understands the .lz4 compression by extension

    net = StageNet(spec)
    load_keras_arrays(net, joblib.load((directory or weights_dir()) / f"{spec.name}.lz4"))
    return net.eval()


class MTCNN:
    """Batched MTCNN face detector; construct once, call ``detect``/``detect_batch`` per frame(s).

    Args:
        min_face_px: smallest face side (pixels) searched for, >= 12 (P-Net's window). Classroom
            faces at the back are 20-40 px; a larger value skips the costliest pyramid levels.
        thresholds: face-probability cut-offs of P-, R- and O-Net.
        scale_factor: ratio between consecutive pyramid levels.
        device: torch device for the three networks and the crops ('cpu', 'cuda', ...).
        backend: ``auto`` (torch: measured faster for these nets here), ``onnx`` or ``torch``:
            with ``onnx`` the three networks run as ONNX graphs exported from these torch modules
            (``fer_stream.models.onnx``); pyramid, crops and NMS are the same code either way.
        threads: ONNX Runtime intra-op threads (default: torch's thread count).
    """

    def __init__(
        self,
        min_face_px: float = 20,
        thresholds: tuple[float, float, float] = (0.6, 0.6, 0.7),
        scale_factor: float = 0.709,
        device: str | torch.device = "cpu",
        backend: str = "auto",
        threads: int | None = None,
    ):
        if min_face_px < PNET_CELL:
            raise ValueError(f"min_face_px must be >= {PNET_CELL} (P-Net's window), got {min_face_px}")
        if not 0 < scale_factor < 1:
            raise ValueError(f"scale_factor must be in (0, 1), got {scale_factor}")
        if len(thresholds) != 3 or not all(0 <= t <= 1 for t in thresholds):
            raise ValueError(f"thresholds must be 3 probabilities, got {thresholds}")
        self.min_face_px = float(min_face_px)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.scale_factor = float(scale_factor)
        self.device = torch.device(device)
        memory_format = torch.channels_last  # faster convs with 3-32 channels on CPU and GPU
        # Module.to takes memory_format at run time; torch's stubs do not list it
        self.pnet, self.rnet, self.onet = (
            load_net(s).to(self.device, memory_format=memory_format)  # type: ignore[call-overload]
            for s in (PNET, RNET, ONET)
        )

        if backend not in ("auto", "onnx", "torch"):
            raise ValueError(f"backend must be auto, onnx or torch, got {backend!r}")
        if backend == "auto":
            # Measured (bench/speed.py, docs/BENCHMARKS.md): ONNX Runtime runs these three small
            # PReLU nets 2.7-3.9x slower than torch here (P-Net's input size changes with every
            # pyramid level and frame, R/O-Net batches are small), so auto keeps torch.
            backend = "torch"
        self.backend = backend
        if backend == "onnx":
            n = threads or torch.get_num_threads()
            self.pnet, self.rnet, self.onet = (_OrtStage(net, n) for net in (self.pnet, self.rnet, self.onet))

    def scales(self, height: int, width: int) -> list[float]:
        """Pyramid scales: level ``k`` maps a ``min_face_px * f**-k`` face onto P-Net's 12 px window."""
        s = PNET_CELL / self.min_face_px
        out = []
        while min(height, width) * s >= PNET_CELL:
            out.append(s)
            s *= self.scale_factor
        return out

    def detect(self, image_rgb: np.ndarray) -> Detections:
        """Faces in one ``uint8 (H, W, 3)`` RGB image, best score first."""
        return self.detect_batch([image_rgb])[0]

    @torch.inference_mode()
    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Faces in each of same-size ``uint8 (H, W, 3)`` RGB frames: one ``Detections`` per frame,
        best score first, boxes clipped to the frame, landmarks not (a point may lie just outside).

        P-Net runs once per pyramid level on all frames; R- and O-Net on the crops of all frames.
        """
        if len(images) == 0:
            return []
        checked = [_check_rgb(im) for im in images]
        if len({f.shape for f in checked}) > 1:
            raise ValueError(f"detect_batch needs same-size frames, got {sorted({f.shape for f in checked})}")
        frames = np.stack(checked)
        b, h, w, _ = frames.shape
        if min(h, w) < PNET_CELL:
            return [Detections.empty() for _ in range(b)]
        # frame index, box xyxy (float64: pixel coordinates of the input), score
        idx, boxes, score = self._pnet(frames)
        if len(idx):
            # R/O-Net crops are sampled from the full resolution (grid_sample is fastest on NCHW)
            full = self._to_tensor(frames).contiguous()
            idx, boxes, score = self._rnet(full, idx, boxes)
        if len(idx):
            idx, boxes, score, points = self._onet(full, idx, boxes)
        else:
            points = np.zeros((0, 5, 2))
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        # NMS returned boxes best-first; a stable selection per frame keeps that order
        return [Detections(boxes[idx == i], score[idx == i], points[idx == i]) for i in range(b)]

    @torch.inference_mode()
    def refine(self, image_rgb: np.ndarray, boxes: np.ndarray) -> Detections:
        """Faces near ``boxes`` (``(M, 4)`` xyxy, e.g. the previous sampled frame's faces) in one
        RGB image: R- and O-Net only, no pyramid, so it costs a few ms instead of a full detection.

        Each previous box seeds candidate windows (the box squared, shifted a quarter of its side
        four ways, and 1.3x larger: a student who leaned or moved) that R-Net re-scores and
        re-regresses and O-Net confirms, with the thresholds and NMS of :meth:`detect_batch`. A face
        that turned away or left fails O-Net and is dropped (it is then not visible, as in a full
        detection); a face that was not in ``boxes`` is not found: run :meth:`detect_batch` on some
        frames (``FaceStage(detect_every=N)`` does).
        """
        frame = _check_rgb(image_rgb)
        h, w = frame.shape[:2]
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        if len(boxes) == 0 or min(h, w) < PNET_CELL:
            return Detections.empty()
        # one seed per face: the same face given twice (previous frame and last full detection)
        # would only double the work
        boxes = boxes[nms(boxes, -np.arange(len(boxes), dtype=np.float64), 0.5)]
        sq = square(boxes)
        q = (sq[:, 2:3] - sq[:, 0:1]) / 4
        zero = np.zeros_like(q)
        shifts = [(zero, zero), (-q, zero), (q, zero), (zero, -q), (zero, q)]
        windows = [sq + np.concatenate([dx, dy, dx, dy], 1) for dx, dy in shifts]
        c = (sq[:, :2] + sq[:, 2:]) / 2
        windows.append(np.concatenate([c - 2.6 * q, c + 2.6 * q], 1))  # 1.3x the side
        cands = np.concatenate(windows)
        fi = np.zeros(len(cands), int)
        full = self._to_tensor(frame[None]).contiguous()
        fi, cands, prob = self._rnet(full, fi, cands)
        # R-Net's windows of one face agree after regression: keep the best, so O-Net (the costly
        # stage here) sees about one window per face. Neighbouring students overlap far less.
        keep = nms(cands, prob, 0.5)
        fi, cands = fi[keep], cands[keep]
        if len(fi) == 0:
            return Detections.empty()
        fi, out, score, points = self._onet(full, fi, cands)
        out[:, 0::2] = out[:, 0::2].clip(0, w)
        out[:, 1::2] = out[:, 1::2].clip(0, h)
        return Detections(out, score, points)

    # ---- stages --------------------------------------------------------------------------------------

    def _pnet(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        b, h, w, _ = frames.shape
        found = []
        level = frames
        for s in self.scales(h, w):
            hs, ws = math.ceil(h * s), math.ceil(w * s)
            # Area-resize each level from the previous one (cost shrinks with the level). cv2 on uint8
            # is faster than torch on CPU, and a level costs little to upload to a GPU.
            level = np.stack([cv2.resize(f, (ws, hs), interpolation=cv2.INTER_AREA) for f in level])
            out = self.pnet(self._to_tensor(level))
            cells = torch.nonzero(out["prob"] > self.thresholds[0], as_tuple=True)  # frame, y, x
            if len(cells[0]) == 0:
                continue
            prob = out["prob"][cells].cpu().numpy()
            offsets = out["box"].permute(0, 2, 3, 1)[cells].cpu().numpy().astype(np.float64)
            fi, yi, xi = (t.cpu().numpy() for t in cells)
            # the 12x12 window of each output cell, back in input pixels
            x1, y1 = xi * PNET_STRIDE / s, yi * PNET_STRIDE / s
            win = np.stack([x1, y1, x1 + PNET_CELL / s, y1 + PNET_CELL / s], 1)
            keep = nms(win, prob, *NMS["pnet_scale"], groups=fi)
            found.append((fi[keep], win[keep], prob[keep], offsets[keep]))
        if not found:
            return np.zeros(0, int), np.zeros((0, 4)), np.zeros(0)
        fi, win, prob, offsets = (np.concatenate(a) for a in zip(*found, strict=True))
        keep = nms(win, prob, *NMS["pnet"], groups=fi)
        return fi[keep], square(calibrate(win[keep], offsets[keep])), prob[keep]

    def _rnet(self, full: torch.Tensor, fi: np.ndarray, boxes: np.ndarray):
        out = self._run_crops(self.rnet, full, fi, boxes)
        ok = out["prob"] > self.thresholds[1]
        fi, boxes, prob, offsets = fi[ok], boxes[ok], out["prob"][ok], out["box"][ok]
        keep = nms(boxes, prob, *NMS["rnet"], groups=fi)
        return fi[keep], square(calibrate(boxes[keep], offsets[keep])), prob[keep]

    def _onet(self, full: torch.Tensor, fi: np.ndarray, boxes: np.ndarray):
        out = self._run_crops(self.onet, full, fi, boxes)
        ok = out["prob"] > self.thresholds[2]
        fi, boxes, prob, offsets, rel = fi[ok], boxes[ok], out["prob"][ok], out["box"][ok], out["points"][ok]
        # points are fractions of the (square) box O-Net saw: x = x1 + fx * w, y = y1 + fy * h
        wh = boxes[:, 2:] - boxes[:, :2]
        points = boxes[:, None, :2] + np.stack([rel[:, :5], rel[:, 5:]], 2) * wh[:, None, :]
        boxes = calibrate(boxes, offsets)
        keep = nms(boxes, prob, *NMS["onet"], groups=fi)
        return fi[keep], boxes[keep], prob[keep], points[keep]

    def _run_crops(
        self, net: StageNet | _OrtStage, full, fi, boxes, chunk: int = 4096
    ) -> dict[str, np.ndarray]:
        """Run R- or O-Net on crops of ``boxes`` at its input size (in chunks to bound memory)."""
        size = net.spec.input_size
        assert size is not None, f"{net.spec.name} takes fixed-size crops"
        fi_t = torch.from_numpy(fi).to(self.device)
        boxes_t = torch.from_numpy(boxes).to(self.device, torch.float32)
        parts = []
        for i in range(0, len(fi), chunk):
            crops = crop_resize(full, fi_t[i : i + chunk], boxes_t[i : i + chunk], size)
            parts.append(net(crops.contiguous(memory_format=torch.channels_last)))
        return {k: torch.cat([p[k] for p in parts]).cpu().numpy().astype(np.float64) for k in parts[0]}

    def _to_tensor(self, frames: np.ndarray) -> torch.Tensor:
        """``uint8 (B, H, W, 3)`` -> normalised float ``(B, 3, H, W)`` on the device (channels-last)."""
        x = torch.from_numpy(frames).to(self.device).permute(0, 3, 1, 2)  # a view: memory stays NHWC
        return (x.float() - PIXEL_MEAN) * PIXEL_SCALE


# ---- box helpers (pure numpy / torch, shared by the three stages) -----------------------------------------


def nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    mode: str = "union",
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """Greedy non-maximum suppression.

    Args:
        boxes: ``(N, 4)`` xyxy.
        scores: ``(N,)``.
        threshold: drop a box whose overlap with a better kept box is above this.
        mode: 'union' (IoU) or 'min' (intersection over the smaller box's area).
        groups: ``(N,)`` ints; boxes of different groups (frames) never suppress each other.

    Returns:
        Indices of the kept boxes, best score first. One vectorised overlap row per kept box.
    """
    if mode not in ("union", "min"):
        raise ValueError(f"mode must be 'union' or 'min', got {mode!r}")
    boxes = np.asarray(boxes, np.float64)
    if len(boxes) == 0:
        return np.zeros(0, int)
    if groups is not None and len(np.unique(groups)) > 1:
        # shift each group far to the right so that boxes of different groups cannot overlap
        span = boxes[:, 2].max() - boxes[:, 0].min() + 1
        boxes = boxes + (np.asarray(groups, np.float64) * span)[:, None] * np.array([1, 0, 1, 0])
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1).clip(0) * (y2 - y1).clip(0)
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep = []
    while len(order):
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0)
        ih = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0)
        inter = iw * ih
        denom = area[i] + area[rest] - inter if mode == "union" else np.minimum(area[i], area[rest])
        order = rest[inter <= threshold * np.maximum(denom, 1e-12)]
    return np.asarray(keep, int)


def calibrate(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Bounding-box regression: ``(x1, y1, x2, y2) += (dx1, dy1, dx2, dy2) * (w, h, w, h)``."""
    wh = boxes[:, 2:] - boxes[:, :2]
    return boxes + offsets * np.concatenate([wh, wh], 1)


def square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square of side ``max(w, h)`` about the same centre (the next stage's crop)."""
    c = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]).max(1, keepdims=True) / 2
    return np.concatenate([c - half, c + half], 1)


def crop_resize(
    frames: torch.Tensor, frame_idx: torch.Tensor, boxes: torch.Tensor, size: int
) -> torch.Tensor:
    """Bilinear ``size x size`` crops of ``boxes`` (pixels xyxy) from ``frames (B, C, H, W)``.

    One ``grid_sample`` per frame over all of that frame's crops (much faster on CPU than gathering
    pixels by index). Samples outside the image read 0 (mid-grey after normalisation), as the
    reference implementation pads. Returns ``(N, C, size, size)``.
    """
    b, c, h, w = frames.shape
    t = (torch.arange(size, device=frames.device, dtype=torch.float32) + 0.5) / size
    # a size x size grid of sample points over each box, as [-1, 1] image coordinates (align_corners=False)
    gx = (boxes[:, 0:1] + t * (boxes[:, 2:3] - boxes[:, 0:1])) / w * 2 - 1  # (N, S)
    gy = (boxes[:, 1:2] + t * (boxes[:, 3:4] - boxes[:, 1:2])) / h * 2 - 1
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), -1)  # (N, S, S, 2) x, y
    out = frames.new_empty((len(boxes), c, size, size))
    for i in range(b):
        sel = (frame_idx == i).nonzero().squeeze(1)
        if len(sel):
            src = frames[i : i + 1].expand(len(sel), -1, -1, -1)  # a view, no copy
            out[sel] = F.grid_sample(
                src, grid[sel], mode="bilinear", padding_mode="zeros", align_corners=False
            )
    return out


def _check_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 (H, W, 3) RGB image, got {image.dtype} {image.shape}")
    return image
