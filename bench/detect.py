"""Face detectors compared: recall/precision and milliseconds per 720p frame.

    python bench/detect.py --threads 2 --json runs/bench_detect.json

Accuracy: ``dlib_training_boxes.xml`` of ``--data`` (18 faces, 37-90 px, in 4 PASCAL VOC photos),
a detection counts when it matches a true box one-to-one at IoU >= ``--iou``. Measured twice: on
the photos at their own size, and on 1280x720 mosaics of the 4 photos (each letterboxed into a
640x360 quarter, faces 35-87 px; the 4 mosaics place the photos in rotated order).

Speed: median wall time of ``detect`` per mosaic frame over ``--repeats`` passes, and of
``detect_batch`` on the 4 mosaics (per frame), with ``--threads`` torch/OpenCV threads. Note
that dlib's HOG detector is single-threaded and that ``dlib_training_boxes.xml`` is the set
dlib's HOG model was trained on, so its accuracy here is optimistic.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a plain script from anywhere

from fer_stream.faces.detect import load_imglab_boxes, make_detector, match_boxes  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FRAME_W, FRAME_H = 1280, 720


def letterbox(image: np.ndarray, boxes: np.ndarray, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Resize ``image`` to fit ``w x h`` (aspect kept), pad with black at the right/bottom."""
    s = min(w / image.shape[1], h / image.shape[0])
    small = cv2.resize(
        image, (round(image.shape[1] * s), round(image.shape[0] * s)), interpolation=cv2.INTER_AREA
    )
    out = np.zeros((h, w, 3), np.uint8)
    out[: small.shape[0], : small.shape[1]] = small
    return out, boxes * s


def mosaics(images: list[np.ndarray], boxes: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """1280x720 frames of 4 photos in 2x2 quarters; frame k starts with photo k (rotated order)."""
    cw, ch = FRAME_W // 2, FRAME_H // 2
    out = []
    for k in range(len(images)):
        frame = np.zeros((FRAME_H, FRAME_W, 3), np.uint8)
        frame_boxes = []
        for q in range(4):
            i = (k + q) % len(images)
            cell, b = letterbox(images[i], boxes[i], cw, ch)
            x0, y0 = (q % 2) * cw, (q // 2) * ch
            frame[y0 : y0 + ch, x0 : x0 + cw] = cell
            frame_boxes.append(b + [x0, y0, x0, y0])
        out.append((frame, np.concatenate(frame_boxes)))
    return out


def score(detector, pairs: list[tuple[np.ndarray, np.ndarray]], iou: float) -> dict:
    tp = fp = fn = 0
    for image, truth in pairs:
        t, f, n = match_boxes(detector.detect(image).xyxy, truth, iou=iou)
        tp, fp, fn = tp + t, fp + f, fn + n
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "recall": tp / max(tp + fn, 1),
        "precision": tp / max(tp + fp, 1),
    }


def time_ms(fn, inputs: list, repeats: int) -> float:
    """Median wall time in ms of ``fn(x)`` over ``repeats`` passes of ``inputs``, after a warm-up pass."""
    for x in inputs:
        fn(x)
    times = []
    for _ in range(repeats):
        for x in inputs:
            t = time.perf_counter()
            fn(x)
            times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def bench(name: str, kwargs: dict, native: list, frames: list, iou: float, repeats: int) -> dict:
    det = make_detector(name, **kwargs)
    batch = [f for f, _ in frames]
    return {
        "detector": name,
        "kwargs": kwargs,
        "native": score(det, native, iou),
        "720p": score(det, frames, iou),
        "ms_per_frame": time_ms(det.detect, batch, repeats),
        "ms_per_frame_batch4": time_ms(det.detect_batch, [batch], repeats) / len(batch),
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "faces")
    ap.add_argument("--detectors", default="mtcnn,hog", help="comma-separated names for make_detector")
    ap.add_argument("--threads", type=int, default=2, help="torch and OpenCV intra-op threads")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--iou", type=float, default=0.4)
    ap.add_argument("--device", default="cpu", help="MTCNN's torch device")
    ap.add_argument("--hog-upsample", type=int, default=1)
    ap.add_argument("--json", type=Path, help="also write the results here")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    cv2.setNumThreads(a.threads)

    truth = load_imglab_boxes(a.data / "dlib_training_boxes.xml")
    images = [cv2.cvtColor(cv2.imread(str(a.data / name)), cv2.COLOR_BGR2RGB) for name in truth]
    native = list(zip(images, truth.values(), strict=True))
    frames = mosaics(images, list(truth.values()))

    rows = []
    for name in a.detectors.split(","):
        kwargs = {"device": a.device} if name == "mtcnn" else {"upsample": a.hog_upsample}
        rows.append(bench(name, kwargs, native, frames, a.iou, a.repeats))

    result = {
        "rows": rows,
        "faces": int(sum(len(b) for b in truth.values())),
        "images": len(truth),
        "iou": a.iou,
        "threads": a.threads,
        "repeats": a.repeats,
        "frame": f"{FRAME_W}x{FRAME_H}",
        "torch": torch.__version__,
        "opencv": cv2.__version__,
        "cpu": platform.processor() or platform.machine(),
        "command": " ".join(["python", "bench/detect.py", *(argv if argv is not None else sys.argv[1:])]),
    }
    print(f"{result['faces']} faces in {result['images']} images, IoU >= {a.iou}, {a.threads} threads\n")
    print(
        "| detector | recall (native) | precision (native) | recall (720p) | precision (720p) "
        "| ms / 720p frame | ms / frame, batch of 4 |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        n, m = r["native"], r["720p"]
        print(
            f"| {r['detector']} {r['kwargs']} | {n['recall']:.3f} ({n['tp']}/{n['tp'] + n['fn']}) "
            f"| {n['precision']:.3f} ({n['fp']} FP) | {m['recall']:.3f} ({m['tp']}/{m['tp'] + m['fn']}) "
            f"| {m['precision']:.3f} ({m['fp']} FP) "
            f"| {r['ms_per_frame']:.0f} | {r['ms_per_frame_batch4']:.0f} |"
        )
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
