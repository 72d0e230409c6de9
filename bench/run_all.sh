#!/usr/bin/env bash
# Every benchmark in docs/BENCHMARKS.md, in one run on one machine (results in bench/results/).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
lscpu | grep -E "Model name|^CPU\(s\)" | tee bench/results/machine.txt
python bench/decode.py --seconds 30 --repeat 3 --json bench/results/decode.json
python bench/detect.py --threads 2 --json bench/results/detect.json
python -m bench.landmarks --json bench/results/landmarks.json
python bench/classifier.py --threads 2 --repeat 5 --json bench/results/classifier.json
python bench/pipeline.py --seconds 60 --fps 2 --memory-seconds 10,120 --repeat 1 --json bench/results/pipeline.json
python bench/matrix.py --seconds 60 --repeat 3 --json bench/results/matrix.json
bash bench/peer/setup_fer_venv.sh  # the peer's own virtual environment, /tmp/fer_peer_venv
python bench/peer.py --repeat 3 --json bench/results/peer.json
