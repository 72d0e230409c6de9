"""fer_stream against a real peer, the `fer` package (PyPI), on the same clips and the same frames.

The peer runs in its own virtual environment (``bash bench/peer/setup_fer_venv.sh``, default
/tmp/fer_peer_venv) as a subprocess: ``bench/peer/fer_peer.py`` runs fer's ``Video.analyze`` with its
Haar cascade and its FER2013 model on frames 0, N, 2N, ... (fer's ``frequency=N``) and writes each
frame's boxes and emotion scores. fer_stream analyses the same frames (``sample_fps = fps / N``) in
this process with the job's defaults (MTCNN with ``min_face_px`` 20, full detection every 2 s and
refinement between, 68 landmarks, alignment, tracking; ``EmotionClassifier("default")`` in batches of
64 on 2 threads). Per clip and peer model, medians over --repeat interleaved runs:
  ms/frame      wall time per sampled frame, decoding included, model loading excluded (both);
  decode        fer_stream.video.iter_frames alone at the same rate: the floor;
  faces         found by each; "both" = pairs matched one-to-one by IoU >= --iou on the same frame;
  agreement     share of "both" pairs whose top emotion is the same (fer and fer_stream both use the
                7 FER2013 classes), and Cohen's kappa of the two labellings.

    bash bench/peer/setup_fer_venv.sh
    nice -n 10 python bench/peer.py --repeat 3 --json bench/results/peer.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from bench.pipeline import decode_only, demo_clip, machine  # noqa: E402
from fer_stream.faces.detections import iou_matrix  # noqa: E402
from fer_stream.labels import FER2013_LABELS, canonical  # noqa: E402
from fer_stream.video import iter_frames, probe  # noqa: E402

VIDEOS = ROOT.parent / "shared" / "data" / "videos"
DEFAULT_CLIPS = (
    f"{VIDEOS / 'WolfgangLanger_Pexels.mp4'}@1",  # every frame: 472 frames of one moving person
    f"{VIDEOS / 'WolfgangLanger_Pexels.mp4'}@11",  # fer's frequency for ~2 fps of a 23.976 fps clip
    f"{VIDEOS / 'single_face.mp4'}@1",
    "demo@12",  # the 60 s 720p demo class (17 faces) at 25/12 = 2.08 fps
)


def match_faces(
    a_xyxy: np.ndarray, b_xyxy: np.ndarray, min_iou: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one pairs of boxes of one frame with the largest total IoU, each pair's IoU >= ``min_iou``.

    Returns index arrays ``(ia, ib)`` into ``a_xyxy (N,4)`` and ``b_xyxy (M,4)``, of equal length.
    """
    iou = iou_matrix(a_xyxy, b_xyxy)
    if not iou.size:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    ia, ib = linear_sum_assignment(-iou)
    keep = iou[ia, ib] >= min_iou
    return ia[keep].astype(np.int64), ib[keep].astype(np.int64)


def xywh_to_xyxy(boxes) -> np.ndarray:
    """``(N, 4)`` (x, y, width, height) -> (x1, y1, x2, y2), float64."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], 1)


def agreement(labels_a: list[str], labels_b: list[str]) -> dict:
    """Share of equal labels and Cohen's kappa (agreement beyond what the label frequencies give)."""
    n = len(labels_a)
    if n == 0:
        return {"pairs": 0, "agree": 0, "agreement": None, "kappa": None}
    agree = sum(a == b for a, b in zip(labels_a, labels_b))
    ca, cb = Counter(labels_a), Counter(labels_b)
    chance = sum(ca[k] * cb[k] for k in ca) / n**2
    p = agree / n
    kappa = (p - chance) / (1 - chance) if chance < 1 else None
    return {"pairs": n, "agree": agree, "agreement": p, "kappa": kappa}


def run_peer(python: str, clip: Path, every: int, model: str, log: Path) -> dict:
    """fer on ``clip`` in its own environment; its JSON (per-frame faces, timing) plus the process's wall."""
    with tempfile.TemporaryDirectory(prefix="fer_peer_") as tmp:
        out = Path(tmp) / "peer.json"
        cmd = [python, str(ROOT / "bench" / "peer" / "fer_peer.py"), str(clip), "--every", str(every)]
        cmd += ["--model", model, "--json", str(out)]
        t0 = time.perf_counter()
        with open(log, "ab") as f:
            done = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
        wall = time.perf_counter() - t0
        if done.returncode:
            raise SystemExit(f"{shlex.join(cmd)} exited {done.returncode}; its output is in {log}")
        return json.loads(out.read_text()) | {"process_s": wall}


class FerStream:
    """fer_stream's stages as the job builds them (models loaded once, outside the timing)."""

    def __init__(self):
        from fer_stream.classify import EmotionClassifier, default_threads
        from fer_stream.config import PipelineConfig
        from fer_stream.faces.detect import make_detector

        self.config = PipelineConfig()
        self.clf = EmotionClassifier(self.config.weights, device="cpu", threads=default_threads())
        self.detector = make_detector(self.config.detector, min_face_px=self.config.min_face_px)

    def run(self, clip: Path, sample_fps: float) -> dict:
        """Per-frame boxes and top emotions, and the seconds spent (decode + faces, classifier)."""
        import dataclasses

        from fer_stream.faces.track import FaceTracker
        from fer_stream.lecture import FaceStage, analyze_video

        config = dataclasses.replace(self.config, sample_fps=sample_fps)
        stage = FaceStage(self.detector, crop_size=self.clf.input_size, detect_every=config.detect_every)
        # Warm-up on the first frame, untimed (first calls allocate), as fer_peer.py does for fer
        (ff,) = stage([next(iter_frames(clip, sample_fps))])
        self.clf.predict(ff.crops)
        frames, crops = [], []
        t0 = time.perf_counter()
        for ff in analyze_video(clip, stage, FaceTracker(config.tracker), sample_fps=sample_fps):
            frames.append((ff.frame_index, ff.det.xyxy))
            crops.append(ff.crops)
        t1 = time.perf_counter()
        probs = self.clf.predict(np.concatenate(crops)) if crops else np.zeros((0, 7), np.float32)
        t2 = time.perf_counter()
        top = [canonical(self.clf.labels[i]) for i in probs.argmax(1)]
        out, k = [], 0
        for index, boxes in frames:
            out.append({"frame_index": int(index), "xyxy": boxes, "top": top[k : k + len(boxes)]})
            k += len(boxes)
        return {"frames": out, "analyze_s": t1 - t0, "classify_s": t2 - t1, "total_s": t2 - t0}


def peer_frames(peer: dict) -> dict[int, tuple[np.ndarray, list[str]]]:
    """fer's frames as ``{frame_index: (xyxy boxes, top emotions)}``."""
    out = {}
    for f in peer["frames"]:
        tops = [canonical(max(FER2013_LABELS, key=lambda k: face["emotions"][k])) for face in f["faces"]]
        out[f["frame_index"]] = (xywh_to_xyxy([face["box"] for face in f["faces"]]), tops)
    return out


def compare(peer: dict, ours: dict, min_iou: float) -> dict:
    """Faces found by each on the frames both analysed, matched pairs and top-emotion agreement."""
    theirs = peer_frames(peer)
    common = [f for f in ours["frames"] if f["frame_index"] in theirs]
    n_peer = n_ours = 0
    la, lb = [], []
    for f in common:
        boxes, tops = theirs[f["frame_index"]]
        n_peer, n_ours = n_peer + len(boxes), n_ours + len(f["xyxy"])
        ia, ib = match_faces(boxes, f["xyxy"], min_iou)
        la += [tops[i] for i in ia]
        lb += [f["top"][j] for j in ib]
    return {
        "frames_compared": len(common),
        "frames_peer_only": len(theirs) - len(common),
        "faces_peer": n_peer,
        "faces_fer_stream": n_ours,
        "faces_both": len(la),
        "top_peer": dict(Counter(la).most_common()),
        "top_fer_stream": dict(Counter(lb).most_common()),
        **agreement(la, lb),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--clip",
        action="append",
        help="CLIP@N: analyse frames 0, N, 2N, ... of CLIP ('demo': the 60 s demo class); repeatable",
    )
    ap.add_argument("--models", default="keras,tflite", help="fer's emotion models to run")
    ap.add_argument("--venv", type=Path, default=Path("/tmp/fer_peer_venv"))
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each; medians are reported")
    ap.add_argument("--iou", type=float, default=0.3, help="IoU for a face found by both")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    python = str(args.venv / "bin" / "python")
    if not Path(python).exists():
        raise SystemExit(f"no {python}: run bash bench/peer/setup_fer_venv.sh {args.venv}")
    models = args.models.split(",")
    host = machine()
    ours = FerStream()
    log = Path(tempfile.gettempdir()) / "fer_peer_runs.log"
    log.write_text("")
    rows = []
    for spec in args.clip or DEFAULT_CLIPS:
        name, every = spec.rsplit("@", 1)
        clip, every = (demo_clip(60) if name == "demo" else Path(name)), int(every)
        info = probe(clip)
        rate = info.avg_fps / every
        peer_runs: dict[str, list] = {m: [] for m in models}
        our_runs, decodes = [], []
        for _ in range(args.repeat):  # interleaved, so that load changes hit every tool alike
            for m in models:
                peer_runs[m].append(run_peer(python, clip, every, m, log))
            our_runs.append(ours.run(clip, rate))
            decodes.append(decode_only(clip, rate)[0])
        n_ours = len(our_runs[0]["frames"])
        base = {"clip": clip.name, "width": info.width, "height": info.height, "fps": info.avg_fps}
        base |= {"duration_s": info.duration_s, "every": every, "sample_fps": rate}
        base["decode_ms_per_frame"] = 1e3 * statistics.median(decodes) / n_ours
        base["fer_stream_ms_per_frame"] = 1e3 * statistics.median(r["total_s"] for r in our_runs) / n_ours
        base["fer_stream_classify_ms_per_frame"] = (
            1e3 * statistics.median(r["classify_s"] for r in our_runs) / n_ours
        )
        base["fer_stream_frames"] = n_ours
        for m in models:
            runs = peer_runs[m]
            n_peer = len(runs[0]["frames"])
            row = dict(base, peer_model=m, peer_frames=n_peer)
            row["peer_ms_per_frame"] = 1e3 * statistics.median(r["analyze_s"] for r in runs) / n_peer
            row["peer_detect_ms_per_frame"] = (
                1e3 * statistics.median(sum(f["detect_s"] for f in r["frames"]) for r in runs) / n_peer
            )
            row["peer_startup_s"] = statistics.median(r["import_s"] + r["load_s"] for r in runs)
            row["peer_over_fer_stream"] = row["peer_ms_per_frame"] / row["fer_stream_ms_per_frame"]
            row["peer_versions"] = runs[0]["versions"]
            row |= compare(runs[0], our_runs[0], args.iou)
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if not isinstance(v, dict)}), file=sys.stderr)

    print(f"\n`{shlex.join(['python', *sys.argv])}`\n")
    load = host["load_avg_1m_at_start"]
    print(f"{host['cpu']}, {host['cores']} cores, {host['memory_gib']} GiB, load average {load:.1f} at start")
    print(f"fer {rows[0]['peer_versions']}; median of {args.repeat}\n")
    print(
        "| clip | frames | fer model | ms/frame fer | ms/frame fer_stream | fer / fer_stream "
        "| ms/frame decode | faces fer | faces fer_stream | both (IoU>=0.3) | top emotion agrees | kappa |"
    )
    print("|---|---:|---|" + "---:|" * 9)
    for r in rows:
        agree = f"{r['agreement']:.1%} ({r['agree']}/{r['pairs']})" if r["pairs"] else "-"
        kappa = f"{r['kappa']:.2f}" if r["kappa"] is not None else "-"
        print(
            f"| {r['clip']} @{r['sample_fps']:.3g} fps | {r['frames_compared']} | {r['peer_model']} "
            f"| {r['peer_ms_per_frame']:.0f} | {r['fer_stream_ms_per_frame']:.0f} "
            f"| {r['peer_over_fer_stream']:.2f} | {r['decode_ms_per_frame']:.1f} | {r['faces_peer']} "
            f"| {r['faces_fer_stream']} | {r['faces_both']} | {agree} | {kappa} |"
        )
    if args.json:
        meta = {"command": sys.argv, "machine": host, "repeat": args.repeat, "iou": args.iou}
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
        print(f"\nwrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
