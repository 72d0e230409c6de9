"""The `fer` package's video analysis on one clip: per-frame boxes and emotions as JSON, and its timing.

Runs in the peer's own virtual environment (bench/peer/setup_fer_venv.sh), never in fer_stream's:

    /tmp/fer_peer_venv/bin/python bench/peer/fer_peer.py CLIP --every 12 --model keras --json out.json

It is fer's own pipeline, as its README shows it: ``Video(clip).analyze(FER(), frequency=N)``, with
fer's Haar-cascade detector (OpenCV's ``haarcascade_frontalface_default``, minimum face 50 px) and
its FER2013 model: ``--model keras`` the Keras mini-Xception (``emotion_model.hdf5``), ``--model
tflite`` the quantized copy that fer >= 25 uses by default. With ``frequency=N`` fer seeks to every
Nth frame (0, N, 2N, ...) with ``cv2.VideoCapture``. Writing frames, video and zip is switched off,
so the time is decoding + detection + classification. ``FER.detect_emotions`` is wrapped to record
each sampled frame's result and time; nothing else of fer is changed. One untimed call on the
first frame warms the models up first (fer_stream gets the same in bench/peer.py).
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import sys
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter

t_import = time.perf_counter()
import cv2  # noqa: E402
from fer.classes import Video  # noqa: E402
from fer.fer import FER  # noqa: E402

IMPORT_S = time.perf_counter() - t_import
# Keras 3 warns on every call that fer passes a bare array where the model names its input 'input_1'
warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")


class RecordingFER(FER):
    """fer's FER, recording what ``detect_emotions`` returns for each frame and how long it took."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls: list[dict] = []

    def detect_emotions(self, img, face_rectangles=None) -> list:
        t0 = time.perf_counter()
        faces = super().detect_emotions(img, face_rectangles)
        self.calls.append({"detect_s": time.perf_counter() - t0, "faces": faces})
        return faces


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clip")
    ap.add_argument("--every", type=int, default=1, help="analyse frames 0, N, 2N, ... (fer's frequency)")
    ap.add_argument("--model", choices=("keras", "tflite"), default="keras")
    ap.add_argument("--json", required=True)
    a = ap.parse_args()

    t0 = time.perf_counter()
    detector = RecordingFER(use_tflite=a.model == "tflite")  # Haar cascade (mtcnn=False), fer's defaults
    load_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="fer_peer_") as outdir:
        video = Video(a.clip, outdir=outdir)
        fps = video.cap.get(cv2.CAP_PROP_FPS)
        ok, first = video.cap.read()  # warm-up on the first frame, untimed and not recorded
        if ok:
            detector.detect_emotions(first)
            detector.calls.clear()
        t0 = time.perf_counter()
        video.analyze(
            detector,
            frequency=a.every,
            output="pandas",
            save_frames=False,
            save_video=False,
            annotate_frames=False,
            zip_images=False,
        )
        analyze_s = time.perf_counter() - t0
    frames = [
        {
            "frame_index": k * a.every,
            "detect_s": c["detect_s"],
            # fer's boxes are (x, y, w, h) in pixels; emotions its 7 FER2013 scores, rounded to 0.01
            "faces": [{"box": [int(v) for v in f["box"]], "emotions": f["emotions"]} for f in c["faces"]],
        }
        for k, c in enumerate(detector.calls)
    ]
    out = {
        "clip": a.clip,
        "model": a.model,
        "every": a.every,
        "fps": fps,
        "versions": {p: md.version(p) for p in ("fer", "tensorflow-cpu", "keras", "opencv-contrib-python")},
        "python": sys.version.split()[0],
        "import_s": IMPORT_S,
        "load_s": load_s,
        "analyze_s": analyze_s,
        "frames": frames,
    }
    with open(a.json, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
