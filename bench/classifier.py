"""Classifier throughput: faces/s per preset at batch 1, 64 and 256 (CPU; GPU when present).

    python bench/classifier.py --threads 2 --json bench/results/classifier.json

Times ``EmotionClassifier.predict`` (preprocessing included: uint8 crops in, probabilities out)
on random 48x48 crops, median of ``--repeat`` timed runs after a warm-up. Untrained networks of
each preset are timed so the paper preset can be measured without its weights; the built-in
``default`` is timed as shipped.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from fer_stream.classify import EmotionClassifier
from fer_stream.labels import FER2013_LABELS
from fer_stream.models import build, checkpoint
from fer_stream.models.sepres import count_macs, count_parameters


def time_predict(clf: EmotionClassifier, batch: int, repeat: int, min_faces: int = 256) -> float:
    crops = np.random.default_rng(0).integers(0, 255, (batch, 48, 48), dtype=np.uint8)
    calls = max(1, min_faces // batch)  # time several calls for tiny batches
    clf.predict(crops, batch_size=batch)  # warm-up (allocator, cuDNN autotune)
    times = []
    for _ in range(repeat):
        if clf.cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(calls):
            clf.predict(crops, batch_size=batch)
        if clf.cuda:
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t) / (calls * batch))
    return 1.0 / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--batches", default="1,64,256")
    ap.add_argument("--presets", default="lite,paper")
    ap.add_argument("--devices", default="cpu,cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        targets = [("default (shipped)", "default")]
        for p in a.presets.split(","):
            model = build(p).eval()
            meta = checkpoint.make_meta(FER2013_LABELS, 0.5, 0.25, version=f"bench-{p}")
            targets.append((p, str(checkpoint.save(Path(tmp) / f"{p}.pt", model, meta))))
        for device in a.devices.split(","):
            for name, weights in targets:
                clf = EmotionClassifier(weights, device=device)
                row = {
                    "model": name,
                    "preset": clf.weights.arch.name,
                    "device": device,
                    "threads": a.threads if device == "cpu" else None,
                    "params": count_parameters(clf.model),
                    "macs": count_macs(clf.weights.build()),
                }
                for b in map(int, a.batches.split(",")):
                    row[f"faces_s_b{b}"] = round(time_predict(clf, b, a.repeat), 1)
                rows.append(row)
                print(json.dumps(row), flush=True)
    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    bs = a.batches.split(",")
    print(f"\nCPU: {cpu}, torch {torch.__version__}, threads {a.threads}; GPU: {gpu}\n")
    print("| model | device | params | MMACs/face | " + " | ".join(f"faces/s @ batch {b}" for b in bs) + " |")
    print("|---|---|---|---|" + "---|" * len(bs))
    for r in rows:
        print(
            f"| {r['model']} | {r['device']} | {r['params']:,} | {r['macs'] / 1e6:.0f} | "
            + " | ".join(f"{r[f'faces_s_b{b}']:,}" for b in bs)
            + " |"
        )
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(
            json.dumps({"rows": rows, "cpu": cpu, "gpu": gpu, "threads": a.threads}, indent=1)
        )


if __name__ == "__main__":
    main()
