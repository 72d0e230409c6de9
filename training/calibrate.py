"""Temperature scaling (Guo et al., 2017) of an emotion checkpoint, with expected calibration error
before and after.

    python -m training.calibrate runs/lite-degrade/best.pt --out runs/lite-degrade/calibrated.pt

Why: the reports average probabilities and a teacher reads "70 % happy" as a frequency; a network
trained with label smoothing and heavy augmentation is mis-calibrated. One scalar T divides the
logits (``p = softmax(z / T)``): accuracy is unchanged (the arg-max is the same), only confidence.

Protocol: FER2013 val split in two halves by a fixed permutation; T is fitted (NLL, LBFGS on log T)
on half A and ECE (15 equal-width confidence bins) is reported on half B, so the number is not
measured on the data that set it. Both halves are taken at the face sizes the pipeline reports
(readable faces: full size and shrunk to 32 and 24 px, training/degrade.py). T goes into the
checkpoint's meta (``temperature``), which ``EmotionClassifier`` applies; the ECE numbers go into
``meta["metrics"]``. The last line printed is a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from fer_stream.labels import canonical
from fer_stream.models import checkpoint
from training import data as D
from training import degrade

SIZES = (48, 32, 24)


def ece(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error: the confidence-weighted gap between confidence and accuracy."""
    conf, pred = probs.max(1), probs.argmax(1)
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            total += m.mean() * abs(conf[m].mean() - (pred[m] == y[m]).mean())
    return float(total)


@torch.no_grad()
def logits_of(w: checkpoint.Weights, images: np.ndarray) -> torch.Tensor:
    model = w.build()
    mean, std = w.meta["normalize"]["mean"], w.meta["normalize"]["std"]
    x = (torch.from_numpy(images).float() / 255.0 - mean) / std
    return torch.cat([model(x[i : i + 512].unsqueeze(1)) for i in range(0, len(x), 512)])


def fit_temperature(z: torch.Tensor, y: torch.Tensor) -> float:
    log_t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.exp())


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", help="checkpoint (name or path)")
    ap.add_argument("--data", default="../shared/data/fer2013/val.parquet")
    ap.add_argument("--out", required=True, help="calibrated checkpoint to write")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    w = checkpoint.load(a.weights)
    labels = tuple(canonical(x) for x in w.labels)
    val = D.load(a.data, "val")
    keep = np.array([lab in labels for lab in val.labels])
    images, y = val.images[keep], np.array([labels.index(v) for v in val.labels[keep]])
    half = np.random.default_rng(0).permutation(len(y)) < len(y) // 2  # A: fit, ~A: report
    xs = np.concatenate([degrade.shrink(images, s) for s in SIZES])
    ys = np.concatenate([y] * len(SIZES))
    sel = np.concatenate([half] * len(SIZES))
    z = logits_of(w, xs)
    # Start from the raw network (a checkpoint calibrated before is fitted again from T = 1).
    t = fit_temperature(z[torch.from_numpy(sel)], torch.from_numpy(ys[sel]).long())
    p_before = z[torch.from_numpy(~sel)].softmax(1).numpy()
    p_after = (z[torch.from_numpy(~sel)] / t).softmax(1).numpy()
    yb = ys[~sel]
    summary = {
        "temperature": round(t, 4),
        "ece_before": round(ece(p_before, yb), 4),
        "ece_after": round(ece(p_after, yb), 4),
        "nll_before": round(float(-np.log(p_before[np.arange(len(yb)), yb] + 1e-12).mean()), 4),
        "nll_after": round(float(-np.log(p_after[np.arange(len(yb)), yb] + 1e-12).mean()), 4),
        "accuracy_held_out_half": round(float((p_after.argmax(1) == yb).mean()), 4),
        "n_fit": int(sel.sum()),
        "n_report": int((~sel).sum()),
        "sizes_px": list(SIZES),
    }
    meta = dict(w.meta)
    meta["temperature"] = summary["temperature"]
    meta["metrics"] = {**meta.get("metrics", {}), "calibration": summary}
    checkpoint.save(Path(a.out), w.build(), meta)
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
