"""Matching precision/recall of roster enrolment on real photos, and the cost of face descriptors.

    nice -n 10 python -m bench.identity --json bench/results/identity.json

Photos: ``../shared/data/identity/`` (ageitgey/face_recognition examples): enrolment photos in
``<person>/`` (obama 2, biden 2, alex_lacamoire 1), faces to match in ``test/``. Faces are found,
landmarked and described exactly as in enrolment (``fer_stream.identity.Enroller``: MTCNN,
dlib 68 points, dlib ResNet descriptor). The test faces' true identities were labelled by hand,
by face centre (table ``TRUTH`` below); ``obama_and_biden.jpg`` also shows a child who is never
enrolled, so she must stay unknown.

Scenarios: everyone enrolled, then each person left out in turn (their test faces must then come out
unknown). Each test photo is matched as one lecture: ``matching.match`` (one-to-one) of all its faces
against the roster. Per face: TP = the right enrolled id; FP = an enrolled id that is wrong
(including any id for someone not enrolled); FN = an enrolled person not given their id.
Precision = TP / (TP + FP), recall = TP / (TP + FN), pooled over scenarios, per threshold.

Cost: milliseconds per face of the descriptor network (one batched call per image, one thread,
median of ``--repeats``), and the share of ``analyze_video`` time spent in the
``DescriptorCollector`` hook on ``videos/WolfgangLanger_Pexels.mp4`` (one face, 19.7 s) and on the
demo lecture (``fer_stream.demo``, 1280x720, 18 seated faces + one, ``--demo-s`` seconds), both at
2 fps with a full detection every 2 s as the pipeline's default ``detect_every_s``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import cv2
import numpy as np

from fer_stream import identity
from fer_stream.faces import descriptors
from fer_stream.identity import matching

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PEOPLE = ("obama", "biden", "alex_lacamoire")
# Hand-labelled test faces: (file in identity/test, person or None = never enrolled, face centre x, y px).
TRUTH = [
    ("alex_lacamoire1.jpg", "alex_lacamoire", 785, 321),
    ("obama1.jpg", "obama", 721, 368),
    ("obama_and_biden.jpg", "biden", 847, 522),
    ("obama_and_biden.jpg", "obama", 1239, 482),
    ("obama_and_biden.jpg", None, 1701, 1144),  # a child in the foreground, not enrolled
]


def faces_of(enroller: identity.Enroller, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every face of an image: ``(N, 4)`` boxes, ``(N, 128)`` descriptors, the RGB image."""
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    det = enroller.detector.detect(rgb)
    lm = enroller.landmarks(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), det.xyxy)
    return det.xyxy, enroller.describe(rgb, det.xyxy, lm), rgb


def label_faces(boxes: np.ndarray, truth: list[tuple]) -> list:
    """True person of each detected box: the hand-labelled centre inside it (``KeyError`` if none)."""
    out = []
    for x1, y1, x2, y2 in boxes:
        hit = [t for t in truth if x1 <= t[2] <= x2 and y1 <= t[3] <= y2]
        if len(hit) != 1:
            raise KeyError(f"detected face {[x1, y1, x2, y2]} matches {len(hit)} labelled faces")
        out.append(hit[0][1])
    return out


def evaluate(enrolled: dict, tests: list, thresholds: list[float]) -> dict:
    """Precision/recall per threshold over the scenarios (all enrolled, each one left out)."""
    scenarios = [("all", PEOPLE)] + [(f"without {p}", tuple(q for q in PEOPLE if q != p)) for p in PEOPLE]
    result = {}
    for thr in thresholds:
        tp = fp = fn = tn = 0
        errors = []
        for name, people in scenarios:
            ids = [p for p in people for _ in enrolled[p]]
            gallery = np.concatenate([enrolled[p] for p in people])
            for image, desc, truth in tests:
                pred = matching.match(desc, gallery, ids, thr)
                for p, t in zip(pred, truth):
                    t = t if t in people else None  # not enrolled in this scenario: must be unknown
                    if p is not None and p == t:
                        tp += 1
                    elif p is not None:
                        fp += 1
                        errors.append(f"{name}: {image}: {t} matched as {p}")
                    if t is not None and p != t:
                        fn += 1
                        if p is None:
                            errors.append(f"{name}: {image}: {t} left unknown")
                    if t is None and p is None:
                        tn += 1
        result[f"{thr:.2f}"] = {
            "precision": tp / (tp + fp) if tp + fp else None,
            "recall": tp / (tp + fn) if tp + fn else None,
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "unknown_kept_unknown": tn,
            "errors": errors,
        }
    return result


def descriptor_speed(enroller: identity.Enroller, path: Path, repeats: int) -> dict:
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    det = enroller.detector.detect(rgb)
    lm = enroller.landmarks(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), det.xyxy)
    enroller.describe(rgb, det.xyxy, lm)  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        enroller.describe(rgb, det.xyxy, lm)
        times.append(time.perf_counter() - t)
    return {"image": path.name, "faces": len(det), "ms_per_face": float(np.median(times) * 1e3 / len(det))}


def collector_overhead(video: Path, sample_fps: float) -> dict:
    """Time in the on_frame hook vs the whole analysis of one video (MTCNN, landmarks, tracking)."""
    from fer_stream.faces.detect import make_detector
    from fer_stream.faces.track import FaceTracker
    from fer_stream.lecture import FaceStage, analyze_video

    # as the pipeline's default: a full detection every 2 s, refined in between
    stage = FaceStage(make_detector("mtcnn"), detect_every=max(1, round(2.0 * sample_fps)))
    collector = descriptors.DescriptorCollector(descriptors.shared_descriptor())
    t = time.perf_counter()
    faces = sum(len(ff) for ff in analyze_video(video, stage, FaceTracker(), sample_fps, on_frame=collector))
    total = time.perf_counter() - t
    kept = collector.descriptors()
    return {
        "video": video.name,
        "sample_fps": sample_fps,
        "frames": collector.frames,
        "faces": faces,
        "tracks_described": len(kept),
        "descriptors_kept": int(sum(len(v) for v in kept.values())),
        "faces_described": collector.described,
        "analyze_s": round(total, 2),
        "hook_s": round(collector.seconds, 3),
        "hook_share": round(collector.seconds / total, 4),
        "hook_ms_per_frame": round(1e3 * collector.seconds / max(collector.frames, 1), 2),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.5, 0.55, 0.6, 0.65, 0.7])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip-video", action="store_true", help="no overhead measurement on the videos")
    ap.add_argument("--demo-s", type=float, default=120.0, help="length of the demo lecture (18 faces), s")
    a = ap.parse_args(argv)
    cv2.setNumThreads(1)
    root = DATA / "identity"
    if not root.is_dir():
        raise SystemExit(f"real data not available: {root} (see ../shared/data/README.md)")
    enroller = identity.Enroller("mtcnn")
    enrolled = {p: np.stack([enroller.photo(f) for f in sorted((root / p).glob("*.jpg"))]) for p in PEOPLE}
    tests = []
    for image in sorted({t[0] for t in TRUTH}):
        boxes, desc, _ = faces_of(enroller, root / "test" / image)
        tests.append((image, desc, label_faces(boxes, [t for t in TRUTH if t[0] == image])))
    out = {
        "machine": platform.machine(),
        "command": "nice -n 10 python -m bench.identity --json bench/results/identity.json",
        "enrolment_photos": {p: len(v) for p, v in enrolled.items()},
        "test_faces": sum(len(t[2]) for t in tests),
        "by_threshold": evaluate(enrolled, tests, a.thresholds),
        "descriptor": descriptor_speed(enroller, root / "test" / "obama_and_biden.jpg", a.repeats),
    }
    video = DATA / "videos" / "WolfgangLanger_Pexels.mp4"
    if not a.skip_video and video.is_file():
        out["collector"] = collector_overhead(video, 2.0)
    if not a.skip_video:
        try:
            from fer_stream.demo import make_demo_clip
        except ImportError:  # the demo needs scikit-image
            make_demo_clip = None
        if make_demo_clip is not None:
            import tempfile

            with tempfile.TemporaryDirectory() as d:
                clip = make_demo_clip(Path(d) / "demo.mp4", seconds=a.demo_s, fps=10)
                out["collector_demo"] = collector_overhead(clip, 2.0)
    print("| threshold | precision | recall | TP | FP | FN | unknown kept unknown |")
    print("|---|---|---|---|---|---|---|")
    for thr, r in out["by_threshold"].items():
        p = "-" if r["precision"] is None else f"{r['precision']:.3f}"
        counts = f"{r['tp']} | {r['fp']} | {r['fn']} | {r['unknown_kept_unknown']}"
        print(f"| {thr} | {p} | {r['recall']:.3f} | {counts} |")
    print(f"descriptor: {out['descriptor']['ms_per_face']:.1f} ms per face (one thread)")
    for c in (out[k] for k in ("collector", "collector_demo") if k in out):
        print(
            f"collector on {c['video']}: {c['hook_s']} s of {c['analyze_s']} s "
            f"({100 * c['hook_share']:.1f}%), "
            f"{c['descriptors_kept']} descriptors kept for {c['tracks_described']} tracks"
        )
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
