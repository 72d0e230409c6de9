"""Voice activity detectors compared: agreement with known speech labels, and ms per minute of audio.

Builds ``--seconds`` of espeak-ng speech between non-speech gaps (silence, room noise, music, claps,
chair scrapes: bench/speech.py), clean and with room noise added, and scores each detector's
segments (the same hysteresis, ``fer_stream.audio.speech_segments``) against the labels at 10 ms:
accuracy, speech precision / recall / F1, and the share of gap seconds of each kind called speech.
Speed: median of ``--repeat`` runs over the clean track, one thread.

    nice -n 5 python bench/vad.py --seconds 600 --json bench/results/vad.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

os.environ.setdefault("OMP_NUM_THREADS", "1")

from bench.speech import GAPS, RATE, have_espeak, label_frames, speech_track  # noqa: E402
from fer_stream.audio import FRAME_S, SileroVad, WebrtcVad, speech_segments  # noqa: E402

STEP_S = 0.01


def predicted(segs, seconds: float) -> np.ndarray:
    return label_frames(list(zip(segs.start_s.tolist(), segs.end_s.tolist())), seconds, STEP_S)


def score(pred: np.ndarray, truth: np.ndarray) -> dict:
    n = min(len(pred), len(truth))
    p, t = pred[:n], truth[:n]
    tp, fp, fn = int((p & t).sum()), int((p & ~t).sum()), int((~p & t).sum())
    prec, rec = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    return {
        "accuracy": round(float((p == t).mean()), 4),
        "precision": round(prec, 4),
        "recall": round(rec, 4),
        "f1": round(2 * prec * rec / max(prec + rec, 1e-9), 4),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if not have_espeak():
        print("espeak-ng is not installed (apt-get install -y espeak-ng)", file=sys.stderr)
        return 2
    clean, labels = speech_track(args.seconds, seed=0)
    noisy = clean + 0.01 * np.random.default_rng(1).standard_normal(len(clean)).astype(np.float32)
    truth = label_frames(labels, args.seconds, STEP_S)
    detectors = {
        "silero_onnx": (SileroVad(), FRAME_S),
        "silero_onnx_sequential": (SileroVad(window_s=1e9), FRAME_S),
        **{f"webrtcvad_mode{m}": (WebrtcVad(m), WebrtcVad.frame / RATE) for m in (1, 2, 3)},
    }
    rows = {}
    for name, (vad, frame_s) in detectors.items():
        row: dict = {}
        for track_name, x in (("clean", clean), ("room_noise", noisy)):
            p = vad.probabilities(x)
            pred = predicted(speech_segments(p, 0.0, frame_s=frame_s), args.seconds)
            row[track_name] = score(pred, truth)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            vad.probabilities(clean)
            times.append(time.perf_counter() - t0)
        row["ms_per_audio_min"] = round(1000 * statistics.median(times) / (args.seconds / 60), 1)
        rows[name] = row
        print(name, json.dumps(row), flush=True)
    # which non-speech sounds each detector calls speech (clean track): share of gap time per kind
    result = {
        "command": "python bench/vad.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "audio_s": args.seconds,
        "speech_share_truth": round(float(truth.mean()), 4),
        "utterances": len(labels),
        "gap_kinds": list(GAPS),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "detectors": rows,
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
