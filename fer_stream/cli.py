"""`fer-stream` command line: thin wrappers over the library."""

from __future__ import annotations

import argparse
import json
import sys

import cv2
import numpy as np


def _models(a) -> int:
    from fer_stream.models import BUILTIN, checkpoint

    for name in BUILTIN:
        w = checkpoint.load(name)
        m = w.meta
        print(
            json.dumps(
                {
                    "name": name,
                    "version": w.version,
                    "preset": w.arch.name,
                    "labels": list(w.labels),
                    "input_size": m["input_size"],
                    "metrics": m.get("metrics", {}),
                    "file": str(checkpoint.builtin_path(name)),
                }
            )
        )
    return 0


def _classify(a) -> int:
    """Classify already-cropped face images (one face per file)."""
    from fer_stream.classify import EmotionClassifier

    clf = EmotionClassifier(a.weights, device=a.device, tta=a.tta)
    crops, names, bad = [], [], 0
    for path in a.images:
        img = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        if img is None:
            print(f"fer-stream: cannot read image {path}", file=sys.stderr)
            bad += 1
            continue
        crops.append(cv2.resize(img, (clf.input_size,) * 2, interpolation=cv2.INTER_AREA))
        names.append(path)
    probs = clf.predict(np.stack(crops) if crops else np.zeros((0, clf.input_size, clf.input_size), np.uint8))
    for name, p in zip(names, probs):
        row = {
            "file": name,
            "emotion": clf.labels[int(p.argmax())],
            **{f"p_{lab}": round(float(v), 4) for lab, v in zip(clf.labels, p)},
        }
        print(json.dumps(row))
    return 1 if bad else 0


IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def _face_rows(ff, with_track: bool) -> list[dict]:
    def num(v, nd=2):
        v = float(v)
        return None if not np.isfinite(v) else round(v, nd)

    rows = []
    for i in range(len(ff)):
        row = {
            "frame_index": ff.frame_index,
            "pts_s": round(ff.pts_s, 3),
            "box": [round(float(v), 1) for v in ff.det.xyxy[i]],
            "score": num(ff.det.score[i], 4),
            "landmarks": [[num(x, 1), num(y, 1)] for x, y in ff.det.landmarks[i]],
            "yaw": num(ff.yaw[i]),
            "pitch": num(ff.pitch[i]),
            "roll": num(ff.roll[i]),
            "ear": num(ff.ear[i], 3),
            "attention": num(ff.attention[i], 3),
            "attentive": bool(ff.attentive[i]),
        }
        if with_track:
            row["track_id"] = int(ff.track_id[i])
        rows.append(row)
    return rows


def _detect(a) -> int:
    """Faces in an image or a video: box, score, landmarks, head pose, eye openness."""
    from pathlib import Path

    from fer_stream.faces.detect import make_detector
    from fer_stream.faces.track import FaceTracker
    from fer_stream.lecture import FaceStage, analyze_video, student_keys
    from fer_stream.video import VideoError

    kwargs = {"min_face_px": a.min_face_px} if a.detector == "mtcnn" else {}
    stage = FaceStage(make_detector(a.detector, **kwargs))
    path = Path(a.path)
    if path.suffix.lower() in IMAGE_EXTS:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            print(f"fer-stream: cannot read image {path}", file=sys.stderr)
            return 2
        frames = stage([(0, 0.0, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))])
        tracker = None
    else:
        tracker = FaceTracker()
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
        return 2
    if tracker is not None and not a.json:
        keys = student_keys(tracker)
        print(f"students: {len(set(keys.values()))} ({', '.join(sorted(set(keys.values())))})")
    return 0


def _demo(a) -> int:
    from fer_stream.demo import run_demo

    rows = run_demo(a.workdir, sample_fps=a.sample_fps)
    return 0 if rows else 1


# Subcommands that live beside their library code: each module has ``register(subparsers)``,
# which adds its parser(s) and sets ``func`` (taking the parsed args, returning the exit code).
# Keep heavy imports inside ``func`` so that ``fer-stream --help`` stays fast.
COMMAND_MODULES: tuple[str, ...] = (
    "fer_stream.identity_cli",
    "fer_stream.nightly_cli",
    "fer_stream.report_cli",
)


def main(argv=None) -> int:
    import importlib

    ap = argparse.ArgumentParser(prog="fer-stream", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    p = sub.add_parser("models", help="list the built-in emotion models and their metrics")
    p.set_defaults(func=_models)
    p = sub.add_parser("classify", help="classify face crops (image files), one JSON line each")
    p.add_argument("images", nargs="+")
    p.add_argument("--weights", default="default", help="built-in name or checkpoint path")
    p.add_argument("--device", default="auto")
    p.add_argument("--tta", action="store_true", help="average with the mirrored face")
    p.set_defaults(func=_classify)
    p = sub.add_parser("detect", help="faces in an image or video: box, score, landmarks, pose, eyes")
    p.add_argument("path")
    p.add_argument("--json", action="store_true", help="one JSON list of face objects per frame")
    p.add_argument("--detector", default="mtcnn", choices=["mtcnn", "hog"])
    p.add_argument("--min-face-px", type=int, default=20, help="smallest face (MTCNN), pixels")
    p.add_argument("--sample-fps", type=float, default=2.0, help="video frames sampled per second")
    p.set_defaults(func=_detect)
    p = sub.add_parser("demo", help="make a demo lecture from registry-shipped faces and analyse it")
    p.add_argument("--workdir", default="demo_output")
    p.add_argument("--sample-fps", type=float, default=2.0)
    p.set_defaults(func=_demo)
    a = ap.parse_args(argv)
    return a.func(a)


if __name__ == "__main__":
    sys.exit(main())
