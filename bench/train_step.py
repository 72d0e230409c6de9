"""Training speed on CPU: images/s of one optimiser step, by memory format (and bf16 autocast).

    python bench/train_step.py --threads 1 --json bench/results/train_step.json

For each preset (``paper``, ``lite``, ``xception`` by default): a ``training.train``-shaped step
(AdamW, cross-entropy, batch 32 of 48x48 gray faces) timed in three variants, interleaved round by
round so load changes hit every variant alike:

* ``contiguous``: float32, NCHW (what ``fit`` did on CPU before issue 15);
* ``channels_last``: float32, NHWC (what ``fit`` does now: oneDNN's depthwise and pointwise
  convolutions are faster in it; same maths);
* ``bf16``: channels_last under ``torch.autocast("cpu", bfloat16)`` (AMX on Sapphire Rapids and
  later). Not used by Table 1: it would change the numerics of a protocol whose other rows
  were trained in float32; listed so the next protocol can choose it.

Medians of ``--repeat`` rounds of ``--seconds`` each. One thread is the Table 1 setting (one
worker per core).
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

import torch
import torch.nn.functional as F

from fer_stream.models import registry

VARIANTS = ("contiguous", "channels_last", "bf16")


def images_per_second(preset: str, variant: str, seconds: float, batch: int = 32) -> float:
    torch.manual_seed(0)
    model = registry.build(preset, num_classes=7)
    x = torch.randn(batch, 1, 48, 48)
    y = torch.randint(0, 7, (batch,))
    if variant != "contiguous":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant == "bf16"):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up: oneDNN picks its kernels on the first call
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    return batch * n / (time.perf_counter() - t0)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="paper,lite,xception")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default="")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    presets = [p for p in a.presets.split(",") if p]
    runs = {p: {v: [] for v in VARIANTS} for p in presets}
    for r in range(a.repeat):
        for p in presets:
            order = VARIANTS if r % 2 == 0 else VARIANTS[::-1]
            for v in order:
                runs[p][v].append(images_per_second(p, v, a.seconds))
    out = {
        "command": "python bench/train_step.py " + " ".join(argv or sys.argv[1:]),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "threads": a.threads,
        "batch": 32,
        "load_1min_at_end": round(os.getloadavg()[0], 2),
        "images_per_s": {p: {v: round(statistics.median(runs[p][v]), 1) for v in VARIANTS} for p in presets},
        "runs": runs,
    }
    out["speedup_vs_contiguous"] = {
        p: {
            v: round(out["images_per_s"][p][v] / out["images_per_s"][p]["contiguous"], 2)
            for v in VARIANTS[1:]
        }
        for p in presets
    }
    print(json.dumps({k: out[k] for k in ("images_per_s", "speedup_vs_contiguous")}, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main()
