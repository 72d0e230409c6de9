"""Full detection on every sampled frame versus one in N with refinement in between.

``FaceStage(detect_every=N)`` runs MTCNN's pyramid on one sampled frame in N and, on the others,
re-finds the faces near the previous ones with R- and O-Net only (``MTCNN.refine``). For each clip
and N this prints the detector's median milliseconds per sampled frame and its agreement with full
detection on every frame (the reference): recall = reference faces also found (IoU >= 0.5),
extra = faces found that the reference does not have.

    nice -n 10 python bench/keyframes.py --threads 2 --json bench/results/keyframes.json

Clips: the real videos in ../shared/data/videos (one person moving, leaving) and the 60 s demo
class (1280x720, 17 faces, two heads-down spells and one student leaving), at 2 fps.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.pipeline import demo_clip  # noqa: E402
from fer_stream.faces.detections import iou_matrix  # noqa: E402
from fer_stream.faces.mtcnn import MTCNN  # noqa: E402
from fer_stream.lecture import FaceStage  # noqa: E402
from fer_stream.video import iter_frames  # noqa: E402


def detections(frames: list[np.ndarray], stage: FaceStage) -> tuple[list[np.ndarray], list[float]]:
    """Boxes per frame and seconds per frame of ``stage``'s detection step alone."""
    stage.reset()
    boxes, times = [], []
    for image in frames:
        t0 = time.perf_counter()
        (det,) = stage._detect([image])
        times.append(time.perf_counter() - t0)
        boxes.append(det.xyxy)
    return boxes, times


def agreement(ref: list[np.ndarray], got: list[np.ndarray]) -> tuple[int, int, int]:
    """(reference faces, of them found, found faces not in the reference) at IoU >= 0.5."""
    n_ref = found = extra = 0
    for r, g in zip(ref, got):
        n_ref += len(r)
        if len(r) and len(g):
            m = iou_matrix(r, g) >= 0.5
            found += int(m.any(1).sum())
            extra += int((~m.any(0)).sum())
        else:
            extra += len(g)
    return n_ref, found, extra


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--every", default="1,2,4,8")
    ap.add_argument("--fps", type=float, default=2.0)
    ap.add_argument("--demo-seconds", type=float, default=60)
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    clips = sorted((ROOT.parent / "shared/data/videos").glob("*.*"))
    clips.append(demo_clip(a.demo_seconds))
    detector = MTCNN()
    rows = []
    for clip in clips:
        frames = [img for _, _, img in iter_frames(clip, a.fps)]
        ref = None
        for n in (int(v) for v in a.every.split(",")):
            stage = FaceStage(detector, landmarks=object(), detect_every=n)
            boxes, times = detections(frames, stage)
            if ref is None:
                ref = boxes
            n_ref, found, extra = agreement(ref, boxes)
            row = {
                "clip": clip.name,
                "size": f"{frames[0].shape[1]}x{frames[0].shape[0]}" if frames else "",
                "frames": len(frames),
                "detect_every": n,
                "ms_per_frame": round(1e3 * statistics.median(times), 1) if times else None,
                "mean_ms_per_frame": round(1e3 * statistics.fmean(times), 1) if times else None,
                "ref_faces": n_ref,
                "recall": round(found / n_ref, 4) if n_ref else None,
                "extra": extra,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    if a.json:
        out = {
            "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
            "torch": torch.__version__,
            "fps": a.fps,
            "rows": rows,
        }
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
