"""Per-face run-time signals on the two labelled sets the attention score is fitted to (issue 23):
shared by ``train_engagement.py`` and ``evaluate_engagement.py``.

* DAiSEE (``../shared/data/daisee/{train,val}.parquet``): one 90x120 webcam face frame per 10 s
  clip with the clip's human engagement label 0-3; "engaged" = 2-3.
* classroom_heads (``../shared/data/classroom_heads``): CCTV frames with every head labelled
  up / down / around / phone; "attending" = up (the head-state meaning of the score).

Every signal comes from the pipeline's own per-face path, :func:`fer_stream.lecture.stage.make_face_stage`
with the default :class:`~fer_stream.config.PipelineConfig` (CenterFace, dlib landmarks where the pose
gate allows, head state), one full detection per frame. A DAiSEE frame is passed as it is: CenterFace
finds the face that fills it (all 1,429 val and 5,358 train frames), and the head-state crop, 2.2 face sides,
reaches outside the frame, where ``extract_crops`` repeats the edge pixels exactly as the pipeline
does for a face at the border of a classroom frame. Padding the frame with grey instead was tried
on a sample and is not used: it changes the crop the head-state model sees (mean P(up) 0.16 against
0.31 unpadded) into something no camera produces. The largest face of a frame is the student's.

Signals are cached in ``runs/engagement/*.npz`` (all four sets: about 70 s on one busy core).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np

from fer_stream.head_state import HEAD_STATES
from training import headstate_data as D

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "runs" / "engagement"
UP = HEAD_STATES.index("up")

# The per-face signals kept for each face (all from FrameFaces): ``found`` (a face was detected),
# ``face_px``, ``head_probs (N, 4)``, ``yaw``/``pitch``/``roll`` (NaN where the pose gate says
# unreadable), ``ear_ungated`` (EAR from the 68 points even where the eyes gate is closed: explored,
# not used at run time) and ``label`` (1 attending / engaged, 0 not) and ``level`` (DAiSEE 0-3, or
# the head state index for classroom faces).
SIGNALS = (
    *("found", "face_px", "head_probs", "yaw", "pitch", "roll", "ear_ungated", "lm68_box", "label", "level"),
)


def make_stage():
    """The pipeline's face stage with the default configuration, a full detection on every frame
    (the frames here are independent pictures, not a stream)."""
    from fer_stream.config import PipelineConfig
    from fer_stream.lecture.stage import make_face_stage

    cfg = dataclasses.replace(PipelineConfig(), detect_every_s=0)
    return make_face_stage(cfg, crop_size=48)


def _face_signals(ff, i: int) -> dict:
    from fer_stream.attention import eye_aspect_ratio

    lm = ff.landmarks68[i : i + 1]
    ear = float(eye_aspect_ratio(lm).mean()) if np.isfinite(lm).all() else np.nan
    return {
        "found": True,
        "face_px": float(ff.face_px[i]),
        "head_probs": ff.head_probs[i].astype(np.float32),
        "yaw": float(ff.yaw[i]),
        "pitch": float(ff.pitch[i]),
        "roll": float(ff.roll[i]),
        "ear_ungated": ear,
        # the 68 points in units of the face box (x - x1) / w, (y - y1) / w: explored, see train_engagement
        "lm68_box": ((ff.landmarks68[i] - ff.det.xyxy[i, :2]) / max(float(ff.face_px[i]), 1.0)).astype(
            np.float32
        ),
    }


MISSING = {
    "found": False,
    "face_px": np.nan,
    "head_probs": np.full(4, np.nan, np.float32),
    "yaw": np.nan,
    "pitch": np.nan,
    "roll": np.nan,
    "ear_ungated": np.nan,
    "lm68_box": np.full((68, 2), np.nan, np.float32),
}


def _stack(rows: list[dict]) -> dict[str, np.ndarray]:
    return {k: np.stack([np.asarray(r[k]) for r in rows]) for k in SIGNALS}


def daisee_images(path: Path) -> tuple[list[bytes], np.ndarray]:
    """JPEG bytes and engagement levels (0-3) of a DAiSEE parquet file, in file order."""
    import pyarrow.parquet as pq

    t = pq.read_table(path, columns=["image", "engagement"])
    return t.column("image").to_pylist(), np.asarray(t.column("engagement").to_pylist(), np.int64)


def decode(jpeg: bytes) -> np.ndarray:
    bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("undecodable JPEG")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def daisee_signals(path: Path, stage=None, limit: int | None = None) -> dict[str, np.ndarray]:
    """One row per frame (the largest detected face; ``found`` False where none): :data:`SIGNALS`."""
    images, levels = daisee_images(path)
    if limit is not None:
        images, levels = images[:limit], levels[:limit]
    stage = stage or make_stage()
    rows = []
    for jpeg, level in zip(images, levels):
        stage.reset()
        ff = stage([(0, 0.0, decode(jpeg))])[0]
        row = _face_signals(ff, int(np.argmax(ff.face_px))) if len(ff) else dict(MISSING)
        rows.append(row | {"label": int(level >= 2), "level": int(level)})
    return _stack(rows)


def classroom_signals(frames: list[D.Frame], stage=None) -> dict[str, np.ndarray]:
    """One row per LABELLED head (a missed head: ``found`` False), label = the head is ``up``;
    plus ``frame`` (frame number) and, per frame, every detection's P(up) for head-up rates
    (``det_frame``, ``det_p_up``... returned under the keys ``det_*``: one row per detected face,
    matched or not, as the pipeline sees them)."""
    stage = stage or make_stage()
    rows, frame_of, det_rows, det_frame = [], [], [], []
    for f in frames:
        stage.reset()
        ff = stage([(0, 0.0, f.rgb())])[0]
        owner = D.match(ff.det.xyxy, ff.det.score, f.heads)
        for h in range(len(f.state)):
            i = np.flatnonzero(owner == h)
            row = _face_signals(ff, int(i[0])) if len(i) else dict(MISSING)
            rows.append(row | {"label": int(f.state[h] == UP), "level": int(f.state[h])})
            frame_of.append(f.number)
        for i in range(len(ff)):
            det_rows.append(_face_signals(ff, i) | {"label": -1, "level": -1})
            det_frame.append(f.number)
    out = _stack(rows) | {"frame": np.asarray(frame_of, np.int64)}
    det = _stack(det_rows) if det_rows else {k: np.zeros(0) for k in SIGNALS}
    out |= {f"det_{k}": v for k, v in det.items()} | {"det_frame": np.asarray(det_frame, np.int64)}
    # the labelled head-up rate of each frame, for the rate MAE
    out["frame_numbers"] = np.asarray([f.number for f in frames], np.int64)
    out["frame_true_rate"] = np.asarray([np.mean(f.state == UP) for f in frames], np.float64)
    return out


def cached(name: str, compute) -> dict[str, np.ndarray]:
    """``runs/engagement/<name>.npz`` if it exists, else ``compute()`` saved there."""
    path = CACHE / f"{name}.npz"
    if path.is_file():
        with np.load(path) as z:
            return dict(z)
    out = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **out)
    return out


def load_all(data: Path, classroom: Path) -> dict[str, dict[str, np.ndarray]]:
    """Signals of DAiSEE train and val and of classroom_heads train and test (cached)."""
    stage = make_stage()
    split = D.time_split(D.load_frames(classroom))
    return {
        "daisee_train": cached("daisee_train", lambda: daisee_signals(data / "train.parquet", stage)),
        "daisee_val": cached("daisee_val", lambda: daisee_signals(data / "val.parquet", stage)),
        "classroom_train": cached("classroom_train", lambda: classroom_signals(split["train"], stage)),
        "classroom_test": cached("classroom_test", lambda: classroom_signals(split["test"], stage)),
    }
