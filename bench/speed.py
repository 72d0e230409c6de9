"""Stage costs before and after issue 14, interleaved in one run (so load changes hit both alike).

    python bench/speed.py --threads 2 --json bench/results/speed.json

* emotion classifier, faces/s at batch 64 and 256: torch eager vs ONNX Runtime;
* MTCNN on a 720p frame of the demo class (18 faces): full detection and refinement, ms;
* one sampled frame through ``FaceStage`` (refinement, landmarks, pose, alignment; the full
  detection of the stream is excluded), "before" = 68 points on every face (gates 0), "after" =
  68 points only on faces whose head pose is read (the default gates), with the profile.

Medians of ``--repeat`` rounds; each round runs every variant once, in alternating order.
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
from fer_stream.classify import EmotionClassifier  # noqa: E402
from fer_stream.faces.mtcnn import MTCNN  # noqa: E402
from fer_stream.lecture import FaceStage  # noqa: E402
from fer_stream.validity import Gates  # noqa: E402
from fer_stream.video import iter_frames  # noqa: E402


def timed(fn, n: int = 1) -> float:
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--frames", type=int, default=8, help="sampled frames of the demo class per round")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    import cv2

    cv2.setNumThreads(a.threads)
    frames = [img for _, _, img in iter_frames(demo_clip(60.0), 0.5)][: a.frames]
    res: dict = {
        "threads": a.threads,
        "machine": platform.processor() or platform.machine(),
        "frames": len(frames),
    }

    # ---- classifier
    crops = np.random.default_rng(0).integers(0, 256, (1024, 48, 48), dtype=np.uint8)
    clfs = {
        b: EmotionClassifier("default", device="cpu", threads=a.threads, backend=b) for b in ("torch", "onnx")
    }
    for clf in clfs.values():
        clf.predict(crops[:256])  # warm-up
    cls: dict = {f"{b}_b{bs}": [] for b in clfs for bs in (64, 256)}
    for r in range(a.repeat):
        for b in sorted(clfs, reverse=r % 2 == 1):
            for bs in (64, 256):
                cls[f"{b}_b{bs}"].append(
                    len(crops) / timed(lambda b=b, bs=bs: clfs[b].predict(crops, batch_size=bs))
                )
    res["classifier_faces_per_s"] = {k: round(statistics.median(v)) for k, v in cls.items()}

    # ---- MTCNN on 720p frames
    dets = {b: MTCNN(min_face_px=20, backend=b, threads=a.threads) for b in ("torch", "onnx")}
    seeds = [dets["torch"].detect(f).xyxy for f in frames]
    res["faces_per_frame"] = round(float(np.mean([len(s) for s in seeds])), 1)
    mt: dict = {f"{b}_{k}": [] for b in dets for k in ("detect_ms", "refine_ms")}
    for r in range(a.repeat):
        for b in sorted(dets, reverse=r % 2 == 1):
            mt[f"{b}_detect_ms"].append(
                1000 * timed(lambda b=b: [dets[b].detect(f) for f in frames]) / len(frames)
            )
            mt[f"{b}_refine_ms"].append(
                1000 * timed(lambda b=b: [dets[b].refine(f, s) for f, s in zip(frames, seeds)]) / len(frames)
            )
    res["mtcnn_ms_per_720p_frame"] = {k: round(statistics.median(v), 1) for k, v in mt.items()}

    # ---- one sampled frame through the face stage (refinement frames: the common case)
    stages = {
        "before": FaceStage(dets["torch"], gates=Gates(0, 0, 0), detect_every=10**6),
        "after": FaceStage(dets["torch"], gates=Gates(), detect_every=10**6),
    }
    px = []
    for s in stages.values():
        s([(0, 0.0, frames[0])])  # the full detection of the stream; later frames refine
    per: dict = {k: [] for k in stages}
    for r in range(a.repeat):
        for k in sorted(stages, reverse=r % 2 == 1):
            st = stages[k]
            per[k].append(
                1000
                * timed(lambda st=st: [st([(i, 0.0, f)]) for i, f in enumerate(frames[1:], 1)])
                / (len(frames) - 1)
            )
    for ff in stages["after"]([(99, 0.0, frames[-1])]):
        px = ff.face_px.tolist()
    res["face_stage_ms_per_frame"] = {k: round(statistics.median(v), 1) for k, v in per.items()}
    res["face_px_demo_class"] = {"median": round(float(np.median(px)), 1), "min": min(px), "max": max(px)}

    # ---- profile of the "after" stage
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    for i, f in enumerate(frames[1:], 1):
        stages["after"]([(i, 0.0, f)])
    prof.disable()
    stats = pstats.Stats(prof)
    top = sorted(stats.stats.items(), key=lambda kv: -kv[1][3])[:12]  # cumulative time
    res["after_profile_cum_ms_per_frame"] = {
        f"{Path(k[0]).name}:{k[2]}": round(1000 * v[3] / (len(frames) - 1), 2) for k, v in top
    }
    text = json.dumps(res, indent=1)
    print(text)
    if a.json:
        a.json.write_text(text + "\n")
    return res


if __name__ == "__main__":
    main()
