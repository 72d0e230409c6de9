"""`fer-stream detect`: faces in an image or a video: box, score, landmarks, pose, eyes."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable

import cv2
import numpy as np

from fer_stream.cli import exits

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def _face_rows(ff, with_track: bool) -> list[dict]:
    """JSON rows of one frame's faces: the faces table's measured columns (``lecture.columns.frame_columns``,
    the code the pipeline and ``fer_stream.analyze`` use) plus the detector's five landmarks."""
    from fer_stream.lecture import columns

    def num(v, nd=2):
        v = float(v)
        return None if not np.isfinite(v) else round(v, nd)

    cols = columns.frame_columns(ff)
    rows = []
    for i in range(len(ff)):
        row = {
            "frame_index": int(cols["frame_index"][i]),
            "pts_s": round(float(cols["pts_s"][i]), 3),
            "box": [round(float(cols[c][i]), 1) for c in ("x1", "y1", "x2", "y2")],
            "score": num(cols["det_score"][i], 4),
            "landmarks": [[num(x, 1), num(y, 1)] for x, y in ff.det.landmarks[i]],
            "yaw": num(cols["yaw"][i]),
            "pitch": num(cols["pitch"][i]),
            "roll": num(cols["roll"][i]),
            "ear": num(cols["ear"][i], 3),
            "attention": num(cols["attention"][i], 3),
            "attentive": cols["attentive"][i],  # null where attention is (not measured)
        }
        if with_track:
            row["track_id"] = int(cols["track_id"][i])
        rows.append(row)
    return rows


def _detect(a) -> int:
    """Faces in an image or a video: box, score, landmarks, head pose, eye openness."""
    from pathlib import Path

    from fer_stream.config import PipelineConfig
    from fer_stream.faces.track import FaceTracker
    from fer_stream.lecture import FrameFaces, analyze_video, make_face_stage, student_keys
    from fer_stream.video import VideoError

    # The analysis' own stage, with a full detection on every frame (a still image has no keyframes)
    config = PipelineConfig(detector=a.detector, min_face_px=a.min_face_px, detect_every_s=0)
    stage = make_face_stage(config, crop_size=48)
    path = Path(a.path)
    if path.suffix.lower() in IMAGE_EXTS:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            print(f"fer-stream: cannot read image {path}", file=sys.stderr)
            return exits.ERROR
        frames: Iterable[FrameFaces] = stage([(0, 0.0, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))])
        tracker = None
    else:
        tracker = FaceTracker(config.tracker)
        frames = analyze_video(path, stage, tracker, sample_fps=a.sample_fps)
    try:
        for ff in frames:
            rows = _face_rows(ff, tracker is not None)
            if a.json:
                print(json.dumps(rows), flush=True)
                continue
            print(f"frame {ff.frame_index} t={ff.pts_s:.2f}s: {len(rows)} face(s)")
            for r in rows:
                print(
                    f"  box={r['box']} score={r['score']} yaw={r['yaw']} pitch={r['pitch']} "
                    f"roll={r['roll']} ear={r['ear']} attentive={r['attentive']}"
                    + (f" track={r['track_id']}" if "track_id" in r else "")
                )
    except VideoError as e:
        print(f"fer-stream: {type(e).__name__}: {e}", file=sys.stderr)
        return exits.ERROR
    if tracker is not None and not a.json:
        keys = student_keys(tracker)
        print(f"students: {len(set(keys.values()))} ({', '.join(sorted(set(keys.values())))})")
    return exits.OK


def register(sub) -> None:
    p = sub.add_parser("detect", help="faces in an image or video: box, score, landmarks, pose, eyes")
    p.add_argument("path")
    p.add_argument("--json", action="store_true", help="one JSON list of face objects per frame")
    from fer_stream.config import PipelineConfig
    from fer_stream.faces.detect import DETECTORS

    p.add_argument("--detector", default=PipelineConfig.detector, choices=DETECTORS)
    p.add_argument("--min-face-px", type=int, default=20, help="smallest face (MTCNN), pixels")
    p.add_argument("--sample-fps", type=float, default=2.0, help="video frames sampled per second")
    p.set_defaults(func=_detect)
