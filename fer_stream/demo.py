"""A demo lecture made only from faces a registry package ships, analysed end to end.

scikit-image ships ``lfw_subset`` (100 Labeled-Faces-in-the-Wild faces, 25x25 gray) and the
``astronaut`` photo. The demo seats 18 of those faces as a class on a 720p "classroom" frame,
with the astronaut as the teacher-side close-up, then animates it: small head jitter, two
students heads-down (face not visible) for a few seconds, one student leaving for good. The clip
is encoded with PyAV (H.264) and analysed by the same stages the pipeline runs: decode ->
MTCNN -> landmarks -> alignment -> attention -> tracking -> student keys -> emotion classifier.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import av
import cv2
import numpy as np

W, H, ROWS, COLS, TILE = 1280, 720, 3, 6, 112


def _faces() -> tuple[np.ndarray, np.ndarray]:
    try:
        import skimage.data as skd
    except ImportError as e:  # the demo extra: pip install 'fer_stream[demo]'
        raise SystemExit("the demo needs scikit-image: pip install -e '.[demo]'") from e
    lfw = (skd.lfw_subset()[:100] * 255).astype(np.uint8)  # the first 100 are faces
    return lfw, skd.astronaut()


def _frame(t: float, lfw: np.ndarray, astronaut: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    img = np.full((H, W, 3), 200, np.uint8)
    cv2.rectangle(img, (0, 0), (W, 40), (90, 110, 90), -1)  # the board
    for k in range(ROWS * COLS):
        r, c = divmod(k, COLS)
        if k == 4 and t > 4.0:  # this student leaves the room
            continue
        if k in (7, 13) and 2.0 <= t < 5.0:  # heads down over a worksheet: face not visible
            continue
        face = cv2.resize(lfw[k * 5], (72, 72), interpolation=cv2.INTER_CUBIC)
        tile = cv2.copyMakeBorder(face, 20, 20, 20, 20, cv2.BORDER_REPLICATE)
        y = 80 + r * 200 + int(rng.integers(-2, 3))
        x = 60 + c * 200 + int(rng.integers(-2, 3))
        if x + TILE > 1000 and r == 0:
            x -= 20
        img[y : y + TILE, x : x + TILE] = tile[..., None]
    img[440:696, 1010:1266] = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    return img


def make_demo_clip(path: str | Path, seconds: float = 8.0, fps: int = 10, seed: int = 0) -> Path:
    """Write the demo lecture (H.264 in mp4, 1280x720) to ``path``; returns the path."""
    lfw, astronaut = _faces()
    rng = np.random.default_rng(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for i in range(int(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(_frame(i / fps, lfw, astronaut, rng), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def run_demo(workdir: str | Path = "demo_output", sample_fps: float = 2.0) -> list[dict]:
    """Make the clip, analyse it, print and return one summary row per student."""
    from fer_stream.classify import EmotionClassifier, default_threads
    from fer_stream.faces.detect import make_detector
    from fer_stream.faces.track import FaceTracker
    from fer_stream.lecture import FaceStage, analyze_video, student_keys

    clip = make_demo_clip(Path(workdir) / "demo_lecture.mp4")
    clf = EmotionClassifier("default", threads=default_threads())
    stage = FaceStage(make_detector("mtcnn", min_face_px=20), crop_size=clf.input_size)
    tracker = FaceTracker()
    per_track: dict[int, list] = defaultdict(list)
    n_frames = 0
    for ff in analyze_video(clip, stage, tracker, sample_fps=sample_fps):
        n_frames += 1
        probs = clf.predict(ff.crops)
        for i, tid in enumerate(ff.track_id):
            per_track[int(tid)].append((ff.pts_s, bool(ff.attentive[i]), float(ff.attention[i]), probs[i]))
    keys = student_keys(tracker)
    by_student: dict[str, list] = defaultdict(list)
    for tid, rows in per_track.items():
        if tid in keys:
            by_student[keys[tid]].extend(rows)
    summary = []
    for sid in sorted(by_student):
        rows = by_student[sid]
        p = np.mean([r[3] for r in rows], 0)
        summary.append(
            {
                "student": sid,
                "frames_visible": len(rows),
                "frames_not_visible": n_frames - len(rows),
                "attentive_share": round(float(np.mean([r[1] for r in rows])), 2),
                "dominant_emotion": clf.labels[int(p.argmax())],
                "p_dominant": round(float(p.max()), 2),
            }
        )
    print(f"demo lecture: {clip} ({n_frames} sampled frames at {sample_fps} fps, model {clf.version})")
    print(f"{'student':8} {'visible':>7} {'absent':>6} {'attentive':>9}  emotion")
    for s in summary:
        print(
            f"{s['student']:8} {s['frames_visible']:7d} {s['frames_not_visible']:6d} "
            f"{s['attentive_share']:9.2f}  {s['dominant_emotion']} ({s['p_dominant']:.2f})"
        )
    return summary
