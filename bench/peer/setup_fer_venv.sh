#!/usr/bin/env bash
# A separate virtual environment with the `fer` package (PyPI) as a peer for bench/peer.py.
#
#     bash bench/peer/setup_fer_venv.sh [VENV]        # default /tmp/fer_peer_venv
#
# fer 25.10.3 declares facenet-pytorch (pulls torch, only for its optional MTCNN detector), moviepy
# and ffmpeg-python (only for re-muxing audio into an annotated video) and matplotlib (unused by the
# code paths here). It is installed with --no-deps plus what its Haar cascade + Keras model path
# imports: TensorFlow (the CPU wheel of `tensorflow`), the OpenCV it declares (opencv-contrib-python,
# < 5, the 4.x line whose wheels carry the Haar cascades in cv2.data; not the headless build:
# Video.analyze calls cv2.waitKey on every frame, which headless builds refuse; it needs the
# system's libGL.so.1),
# pandas, tqdm, requests, Pillow, and setuptools < 81 for `pkg_resources` (fer finds its model files
# with it). Nothing is installed into the interpreter that runs fer_stream.
set -euo pipefail
VENV=${1:-/tmp/fer_peer_venv}
PY=${PYTHON:-python3.11}
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade "pip<27"
"$VENV/bin/python" -m pip install --quiet \
    "tensorflow-cpu>=2.16,<2.22" "opencv-contrib-python>=4.8,<5" \
    pandas tqdm requests Pillow "setuptools<81"
"$VENV/bin/python" -m pip install --quiet --no-deps "fer==25.10.3"
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
import cv2
import tensorflow as tf
from fer.classes import Video  # noqa: F401
from fer.fer import FER  # noqa: F401

print("fer", md.version("fer"), "| tensorflow", tf.__version__, "| keras", md.version("keras"),
      "| opencv", cv2.__version__, "| haar", cv2.data.haarcascades)
PY
