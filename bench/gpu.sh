#!/usr/bin/env bash
# Issue 15 on one GPU (H100/H200 class), inside 9 minutes, in one prepared run:
#   1. train the `paper` preset on FER2013 (AMP + channels_last, time-limited),
#   2. Table 1 on CK+ with every model (paper, lite, paper-se, xception, inception-v4), from scratch
#      and fine-tuned from FER2013 where a model of that architecture exists (lite: `default`;
#      paper: the model of step 1), with the fold/epoch counts below and a time budget,
#   3. classifier faces/s at batch 256 and 1024 with AMP (bench/classifier.py) for every preset.
# Results (at most 8 files, the device tool's limit): $OUT (the device tool's output folder) when
# set, else bench/results/gpu/:
#   summary.json        steps, exit codes, seconds, the FER2013 training summary
#   machine.json        GPU, torch, CUDA
#   paper-fer2013.pt    the FER2013 `paper` weights (float16, self-describing)
#   table1.jsonl table1.md   Table 1 (training.table1: one JSON line per model/init/fold done)
#   classifier.json     bench/classifier.py rows (faces/s per preset and batch)
#   gpu.log             everything printed
#
#   bash bench/gpu.sh            # on the GPU machine
#   bash bench/gpu.sh --smoke    # the same steps at toy sizes on CPU, a minute (tests/training/test_gpu_sh.py)
#
# The data is not in the repository and ../shared does not travel to the device machine: copy
# ../shared/data/fer2013 and ../shared/data/ckplus into a git-ignored folder of the checkout, carry
# it, and point DATA at it (63 MB with the checkout, under the tool's 64 MiB):
#   mkdir -p .gpu_data && cp -r ../shared/data/fer2013 ../shared/data/ckplus .gpu_data/ \
#     && echo /.gpu_data/ >> .git/info/exclude
#   device run: command "DATA=.gpu_data bash bench/gpu.sh", carry [".gpu_data"], timeout_s 600
#
# Knobs (environment): DATA (folder holding fer2013/ and ckplus/; ../shared/data), PY (python3),
# FER_EPOCHS (25) and FER_S (180: the FER2013 step is stopped after this many seconds; its best
# epoch so far is then kept), T1_EPOCHS (20), T1_FOLDS (10), T1_BUDGET_S (170: Table 1 starts no
# fold after this), WORK (runs/gpu). Budget: ~30 s of start-up, 180 + 170 (+ the fold in flight)
# + ~60 s of classifier timing: about 8 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
SMOKE=0
if [ "${1:-}" = "--smoke" ]; then SMOKE=1; fi
PY=${PY:-python3}
DATA=${DATA:-../shared/data}
OUT_DIR=${OUT:-bench/results/gpu}
WORK=${WORK:-runs/gpu}
mkdir -p "$OUT_DIR" "$WORK"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # bench/classifier.py imports fer_stream
export PYTHONUNBUFFERED=1
LOG="$OUT_DIR/gpu.log"
: >"$LOG"
T0=$(date +%s)

if [ "$SMOKE" = 1 ]; then
    DEVICE=cpu
    FER_ARGS=(--smoke --preset smoke --limit 128 --threads 1)
    FER_S=${FER_S:-300}
    T1_ARGS=(--smoke --models smoke,inception-v4-smoke --device cpu --threads 1)
    T1_BUDGET_S=${T1_BUDGET_S:-0}
    CLF_ARGS=(--devices cpu --batches 8,16 --presets smoke,inception-v4-smoke --repeat 1 --threads 1)
    FER_PRESET=smoke
    T1_MODEL=smoke
else
    DEVICE=cuda
    FER_ARGS=(--preset paper --device cuda --epochs "${FER_EPOCHS:-25}" --batch-size 256 --lr 3e-3
        --threads 8)
    FER_S=${FER_S:-180}
    T1_ARGS=(--models paper,lite,paper-se,xception,inception-v4 --device cuda --threads 8
        --epochs "${T1_EPOCHS:-20}" --folds "${T1_FOLDS:-10}" --order fold --no-epoch-resume)
    T1_BUDGET_S=${T1_BUDGET_S:-170}
    CLF_ARGS=(--devices cuda --batches 256,1024 --presets lite,paper,paper-se,xception,inception-v4
        --repeat 5 --threads 8)
    FER_PRESET=paper
    T1_MODEL=paper
fi

step() {  # step NAME SECONDS CMD...: run, log, record exit code and seconds; never stop the script
    local name=$1 limit=$2
    shift 2
    local t rc=0
    t=$(date +%s)
    echo "== $name ($(date -u +%H:%M:%S), limit ${limit}s): $*" | tee -a "$LOG"
    timeout --signal=TERM --kill-after=10 "$limit" "$@" >>"$LOG" 2>&1 || rc=$?
    echo "{\"step\": \"$name\", \"rc\": $rc, \"seconds\": $(($(date +%s) - t))}" >>"$WORK/steps.jsonl"
    echo "== $name: rc $rc" | tee -a "$LOG"
    return 0
}
: >"$WORK/steps.jsonl"

# 0. The machine.
step machine 60 "$PY" -c "
import json, platform, torch
d = {'torch': torch.__version__, 'cuda': torch.version.cuda, 'python': platform.python_version(),
     'gpu': torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
     'cpu_threads': torch.get_num_threads()}
open('$OUT_DIR/machine.json', 'w').write(json.dumps(d, indent=1))
print(d)"

# 1. FER2013: the paper preset (AMP and channels_last switch on by themselves on CUDA).
rm -rf "$WORK/fer2013"
step fer2013 "$FER_S" "$PY" -m training.train "${FER_ARGS[@]}" --data "$DATA/fer2013" \
    --out "$WORK/fer2013" --version "$FER_PRESET-fer2013-gpu"
# Stopped by its time limit: keep the best epoch so far (train.py writes best.pt only at its end,
# last.pt after every epoch). The smoke run does it too, into another file, to test this path.
SALVAGE_TO="$WORK/fer2013/best.pt"
if [ "$SMOKE" = 1 ]; then SALVAGE_TO="$WORK/fer2013/salvaged.pt"; fi
if [ ! -f "$WORK/fer2013/best.pt" ] || [ "$SMOKE" = 1 ]; then
    step salvage 120 "$PY" - "$WORK/fer2013" "$DATA/fer2013" "$FER_PRESET" "$SALVAGE_TO" <<'EOF'
import sys
from pathlib import Path

import torch

from fer_stream.models import checkpoint, registry
from training import data as D

run, data, preset, dest = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ck = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
train = D.load(data, "train")
labels = D.label_order(train.labels)
model = registry.build(preset, num_classes=len(labels))
model.load_state_dict(ck["best_state"] if ck["best_state"] is not None else ck["model"])
hist = ck["hist"]
meta = checkpoint.make_meta(
    labels,
    float(train.images.mean() / 255),  # as train.py: the training split's pixel statistics
    float(train.images.std() / 255),
    model.config.input_size,
    version=f"{preset}-fer2013-gpu",
    training={"data": data, "n_train": len(train), "salvaged_from": "last.pt",
              "epochs_run": len(hist["epochs"]), "best_epoch": hist["best_epoch"]},
    metrics={"val_accuracy": hist["best_val_acc"]},
)
checkpoint.save(dest, model, meta)
print({"salvaged": dest, "epochs_run": len(hist["epochs"]), "val_accuracy": hist["best_val_acc"]})
EOF
fi
FER_INIT="lite=default"
if [ -f "$WORK/fer2013/best.pt" ]; then
    FER_INIT="$FER_INIT,$T1_MODEL=$WORK/fer2013/best.pt"
    step ship 60 "$PY" -c "
from fer_stream.models import checkpoint
w = checkpoint.load('$WORK/fer2013/best.pt')
checkpoint.save('$OUT_DIR/$FER_PRESET-fer2013.pt', w.build(), w.meta, half=True)"
fi
if [ "$SMOKE" = 1 ]; then FER_INIT="$T1_MODEL=$WORK/fer2013/best.pt"; fi

# 2. Table 1 on CK+ (fold-major, so every model has the same folds done when the budget ends).
rm -f "$OUT_DIR/table1.jsonl"
step table1 $((T1_BUDGET_S + 240)) "$PY" -m training.table1 "${T1_ARGS[@]}" --data "$DATA/ckplus/ckplus48.parquet" \
    --fer2013 "$FER_INIT" --budget-s "$T1_BUDGET_S" --speed-seconds 0 --work "$WORK/table1" \
    --results "$OUT_DIR/table1.jsonl" --docs "$OUT_DIR/table1.md"

# 3. Classifier faces/s with AMP (EmotionClassifier autocasts to float16 on CUDA).
step classifier 120 "$PY" bench/classifier.py "${CLF_ARGS[@]}" --json "$OUT_DIR/classifier.json"

# The summary: every step's exit code and seconds, and the FER2013 training's own summary line.
"$PY" - "$WORK/steps.jsonl" "$LOG" "$OUT_DIR/summary.json" "$SMOKE" "$(($(date +%s) - T0))" <<'EOF'
import json
import sys

steps = [json.loads(x) for x in open(sys.argv[1]) if x.strip()]
train = None
in_fer = False
for line in open(sys.argv[2], errors="replace"):  # train.py's last stdout line is its JSON summary
    if line.startswith("== fer2013 ("):
        in_fer = True
    elif line.startswith("== fer2013: rc"):
        in_fer = False
    elif in_fer and line.startswith('{"preset"'):
        train = json.loads(line)
out = {"smoke": sys.argv[4] == "1", "seconds": int(sys.argv[5]), "steps": steps, "fer2013_train": train}
open(sys.argv[3], "w").write(json.dumps(out, indent=1))
print(json.dumps(out))
EOF
echo "== done in $(($(date +%s) - T0)) s; results in $OUT_DIR" | tee -a "$LOG"
