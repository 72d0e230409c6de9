"""Train the separable-residual expression network.

    python -m training.train --preset lite --data ../shared/data/fer2013 --out runs/lite
    python -m training.train --smoke                      # seconds; CI asserts the loss falls

Reads one train split and one val split (see training/data.py for the formats), trains with
face-appropriate augmentation, selects on val only, and writes a self-describing weights file
``OUT/best.pt`` plus a resumable ``OUT/last.pt``. The last line printed is a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from fer_stream.models import checkpoint
from fer_stream.models.sepres import PRESETS, SepResNet, build, count_macs, count_parameters
from training import data as D


@dataclass
class Hyper:
    epochs: int = 60
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    warmup_epochs: float = 1.0
    patience: int = 12  # epochs without a val improvement before stopping
    class_weight_power: float = 0.5  # loss weight per class = (1/frequency)^power; 0 = none
    seed: int = 0


# ---------------------------------------------------------------------------- augmentation
def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Batched, on-device augmentation of normalised faces ``(N, 1, S, S)``.

    Faces from a detector are roughly centred and upright, so the perturbations are small:
    horizontal flip (expressions are near-symmetric), rotation +-10 deg, scale 0.9-1.1,
    shift +-8 % (detector box jitter), brightness/contrast +-20 % (classroom lighting), and a
    random erased patch (occlusion by hands, hair, a neighbour's head).
    """
    n, dev = x.shape[0], x.device

    def u(lo, hi, shape=(n,)):
        return torch.rand(shape, generator=g).to(dev) * (hi - lo) + lo

    angle = u(-10, 10) * math.pi / 180
    scale = u(0.9, 1.1)
    flip = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0).to(dev)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos * flip, -sin, u(-0.16, 0.16)], 1),
            torch.stack([sin * flip, cos, u(-0.16, 0.16)], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    x = x * u(0.8, 1.2, (n, 1, 1, 1)) + u(-0.4, 0.4, (n, 1, 1, 1))  # contrast, brightness (in std units)
    # Random erasing: one rectangle of 5-20 % of the face, on half of the images.
    s = x.shape[-1]
    area = u(0.05, 0.2) * s * s
    h = torch.sqrt(area * u(0.5, 2.0)).clamp(4, s).long()
    w = (area / h).clamp(4, s).long()
    y0 = (torch.rand(n, generator=g).to(dev) * (s - h + 1)).long()
    x0 = (torch.rand(n, generator=g).to(dev) * (s - w + 1)).long()
    ys = torch.arange(s, device=dev).view(1, s, 1)
    xs = torch.arange(s, device=dev).view(1, 1, s)
    box = (
        (ys >= y0.view(-1, 1, 1))
        & (ys < (y0 + h).view(-1, 1, 1))
        & (xs >= x0.view(-1, 1, 1))
        & (xs < (x0 + w).view(-1, 1, 1))
    )
    box &= (torch.rand(n, generator=g) < 0.5).to(dev).view(-1, 1, 1)
    return x.masked_fill(box.unsqueeze(1), 0.0)


# ---------------------------------------------------------------------------- helpers
def to_tensor(images: np.ndarray, mean: float, std: float) -> torch.Tensor:
    """uint8 (N,S,S) -> float32 (N,1,S,S), normalised exactly as the checkpoint's meta says."""
    return (torch.from_numpy(images).float().div_(255.0).sub_(mean).div_(std)).unsqueeze(1)


@torch.no_grad()
def predict(
    model: SepResNet, x: torch.Tensor, device: str, batch: int = 512, tta: bool = False
) -> np.ndarray:
    """Softmax probabilities ``(N, K)``; ``tta`` averages with the mirrored face."""
    model.eval()
    out = []
    for i in range(0, len(x), batch):
        xb = x[i : i + batch].to(device)
        with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=device.startswith("cuda")):
            p = model(xb).float().softmax(1)
            if tta:
                p = (p + model(xb.flip(-1)).float().softmax(1)) / 2
        out.append(p.cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, model.config.num_classes), np.float32)


def per_class_accuracy(pred: np.ndarray, y: np.ndarray, labels) -> dict[str, float]:
    return {name: float((pred[y == k] == k).mean()) for k, name in enumerate(labels) if (y == k).any()}


def transfer(model: SepResNet, src: checkpoint.Weights, labels) -> int:
    """Initialise from another checkpoint: every tensor whose shape fits, and the classifier
    rows of the labels both share (so fine-tuning FER2013 -> CK+ keeps 'happy' as 'happy')."""
    own = model.state_dict()
    n = 0
    for k, v in src.state_dict.items():
        if k in own and own[k].shape == v.shape and not k.startswith("head."):
            own[k].copy_(v.float())
            n += 1
    src_idx = {name: i for i, name in enumerate(src.labels)}
    for i, name in enumerate(labels):
        if name in src_idx:
            own["head.weight"][i].copy_(src.state_dict["head.weight"][src_idx[name]].float())
            own["head.bias"][i].copy_(src.state_dict["head.bias"][src_idx[name]].float())
    model.load_state_dict(own)
    return n


def fit(
    model,
    train_x,
    train_y,
    val_x,
    val_y,
    hp: Hyper,
    device: str,
    out: Path | None = None,
    labels=(),
    resume: bool = False,
    quiet: bool = False,
    on_epoch=None,
    batch_fn=None,
    cpu_bf16: bool = False,
) -> dict:
    """Train ``model`` in place; keep the best-on-val state. Returns the history.

    Mixed precision is how a step runs, not what it computes: float16 autocast on CUDA always,
    bfloat16 autocast on CPU when ``cpu_bf16`` (AMX: 1.6-1.9x per step over channels_last float32
    on the 800 M multiply-add presets, bench/train_step.py). Weights, optimiser state, loss and
    validation stay float32.

    ``val_x`` may be None (fixed epochs, keep the last state): used by CK+ cross-validation,
    where the held-out fold must not steer training. ``batch_fn(idx) -> (B, 1, S, S)`` builds a
    batch in place of ``train_x[idx]`` (``--degrade``: the faces degraded before normalising).
    """
    g = torch.Generator().manual_seed(hp.seed)
    torch.manual_seed(hp.seed)
    # channels_last on CPU too: oneDNN's depthwise and pointwise convolutions train 1.26-1.34x
    # faster in it on 1 thread (paper, lite, xception; bench/train_step.py); same maths.
    model = model.to(device).to(memory_format=torch.channels_last)
    k = model.config.num_classes
    counts = np.bincount(train_y, minlength=k).astype(float)
    w = np.where(counts > 0, (counts.sum() / np.maximum(counts, 1) / k) ** hp.class_weight_power, 0.0)
    class_w = torch.tensor(w / (w[counts > 0].mean()), dtype=torch.float32, device=device)
    decay = [p for n_, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n_, p in model.named_parameters() if p.ndim <= 1]  # BN and biases
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": hp.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=hp.lr,
    )
    steps_per_epoch = max(1, len(train_x) // hp.batch_size)  # drop the ragged last batch (BN)
    total = steps_per_epoch * hp.epochs
    warm = int(hp.warmup_epochs * steps_per_epoch)

    def lr_at(step):  # linear warm-up, then cosine to zero: the usual AdamW schedule
        if step < warm:
            return hp.lr * (step + 1) / warm
        return hp.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

    cuda_amp = device.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=cuda_amp)  # bf16 has float32's range: no scaler
    amp_device, amp_dtype = ("cuda", torch.float16) if cuda_amp else ("cpu", torch.bfloat16)
    use_amp = cuda_amp or (cpu_bf16 and device == "cpu")
    hist = {"epochs": [], "best_val_acc": -1.0, "best_epoch": -1}
    best_state, start_epoch = None, 0
    ytr = torch.from_numpy(train_y).long()
    if resume and out and (out / "last.pt").is_file():
        ck = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        g.set_state(ck["gen"])
        hist, best_state, start_epoch = ck["hist"], ck["best_state"], ck["epoch"] + 1
        print(f"resumed from {out / 'last.pt'} at epoch {start_epoch}", file=sys.stderr)
    for epoch in range(start_epoch, hp.epochs):
        t_epoch = time.time()
        model.train()
        perm = torch.randperm(len(train_x), generator=g)
        bar = tqdm(
            range(steps_per_epoch),
            desc=f"epoch {epoch + 1}/{hp.epochs}",
            disable=quiet,
            leave=False,
            file=sys.stderr,
        )
        tot_loss, tot_ok, seen = 0.0, 0, 0
        for s in bar:
            for group in opt.param_groups:
                group["lr"] = lr_at(epoch * steps_per_epoch + s)
            idx = perm[s * hp.batch_size : (s + 1) * hp.batch_size]
            xb = batch_fn(idx) if batch_fn is not None else train_x[idx]
            xb, yb = xb.to(device), ytr[idx].to(device)
            xb = augment(xb, g)
            xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device_type=amp_device, dtype=amp_dtype, enabled=use_amp):
                logits = model(xb)
                loss = F.cross_entropy(logits.float(), yb, weight=class_w, label_smoothing=hp.label_smoothing)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            tot_loss += loss.item() * len(idx)
            tot_ok += (logits.argmax(1) == yb).sum().item()
            seen += len(idx)
            bar.set_postfix(loss=f"{tot_loss / seen:.3f}", acc=f"{tot_ok / seen:.3f}")
        rec = {
            "epoch": epoch + 1,
            "train_loss": tot_loss / seen,
            "train_acc": tot_ok / seen,
            "lr": lr_at((epoch + 1) * steps_per_epoch - 1),
        }
        if val_x is not None:
            pred = predict(model, val_x, device).argmax(1)
            rec["val_acc"] = float((pred == val_y).mean())
            if rec["val_acc"] > hist["best_val_acc"]:
                hist["best_val_acc"], hist["best_epoch"] = rec["val_acc"], epoch + 1
                best_state = {k_: v.detach().cpu().clone() for k_, v in model.state_dict().items()}
                hist["best_per_class"] = per_class_accuracy(pred, val_y, labels)
        rec["seconds"] = round(time.time() - t_epoch, 2)  # this epoch, validation included
        hist["epochs"].append(rec)
        if not quiet:
            print(json.dumps(rec), file=sys.stderr, flush=True)
        if on_epoch:
            on_epoch(rec)
        if out:  # resumable: everything needed to continue exactly here
            tmp = out / "last.pt.tmp"
            torch.save(
                {
                    "model": model.state_dict(),
                    "opt": opt.state_dict(),
                    "gen": g.get_state(),
                    "hist": hist,
                    "best_state": best_state,
                    "epoch": epoch,
                },
                tmp,
            )
            tmp.replace(out / "last.pt")
        if val_x is not None and epoch + 1 - hist["best_epoch"] >= hp.patience:
            print(f"early stop: no val gain for {hp.patience} epochs", file=sys.stderr)
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return hist


def pick_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--preset", default=None, choices=sorted(PRESETS), help="default: lite (smoke with --smoke)"
    )
    ap.add_argument("--data", default="../shared/data/fer2013", help="dataset dir/file (train split)")
    ap.add_argument("--val", default=None, help="val split file/dir (default: the val split of --data)")
    ap.add_argument("--out", default="runs/train", help="folder for best.pt and last.pt")
    ap.add_argument("--init", default=None, help="start from these weights (name or path)")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    ap.add_argument("--smoke", action="store_true", help="a few hundred images, seconds (CI)")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N train images (shuffled)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: all cores)")
    ap.add_argument(
        "--cpu-bf16",
        action="store_true",
        help="CPU steps under bfloat16 autocast (AMX CPUs: ~1.6x over float32 on the paper preset)",
    )
    ap.add_argument("--version", default=None, help="model_version string stored in the weights")
    ap.add_argument(
        "--degrade",
        type=float,
        default=0.0,
        help="share of training faces shrunk to 10-48 px and back (plus blur/JPEG, training/degrade.py); "
        "selection then uses val at 48, 24 and 16 px",
    )
    for f_ in Hyper.__dataclass_fields__.values():
        ap.add_argument("--" + f_.name.replace("_", "-"), type=type(f_.default), default=f_.default)
    a = ap.parse_args(argv)
    hp = Hyper(**{k: getattr(a, k) for k in Hyper.__dataclass_fields__})
    if a.smoke:  # tiny and fast, but the full code path
        a.preset, a.limit = a.preset or "smoke", a.limit or 384
        hp.epochs, hp.batch_size, hp.lr, hp.patience, hp.warmup_epochs = 6, 32, 3e-3, 100, 0.5
        hp.label_smoothing, hp.weight_decay = 0.0, 0.0
    a.preset = a.preset or "lite"
    torch.set_num_threads(a.threads or os.cpu_count() or 1)
    random.seed(hp.seed)
    np.random.seed(hp.seed)
    device = pick_device(a.device)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.time()
    train = D.load(a.data, "train")
    val = D.load(a.val, "val") if a.val else D.load(a.data, "val")
    labels = D.label_order(train.labels)
    if a.limit:
        rng = np.random.default_rng(hp.seed)
        train = train.take(rng.permutation(len(train))[: a.limit])
        val = val.take(rng.permutation(len(val))[: max(64, a.limit // 4)])
    index = {n: i for i, n in enumerate(labels)}
    val = val.take(np.array([lab in index for lab in val.labels], bool))
    ytr = np.array([index[v] for v in train.labels])
    yva = np.array([index[v] for v in val.labels])
    mean, std = float(train.images.mean() / 255), float(train.images.std() / 255)
    xtr, xva = to_tensor(train.images, mean, std), to_tensor(val.images, mean, std)
    print(
        f"data: {len(train)} train, {len(val)} val, labels {labels}, {time.time() - t0:.1f}s", file=sys.stderr
    )

    batch_fn, sel_x, sel_y = None, xva, yva
    if a.degrade > 0:  # resolution augmentation: small faces in the classroom (issue 13)
        from training import degrade

        drng = np.random.default_rng(hp.seed + 1)
        train_u8 = train.images

        def batch_fn(idx):
            u8 = degrade.random_degrade(train_u8[idx.numpy()], drng, p_shrink=a.degrade)
            return to_tensor(u8, mean, std)

        # Select the epoch that reads faces best across sizes, not at full size only.
        sel_x = torch.cat([xva] + [to_tensor(degrade.shrink(val.images, px), mean, std) for px in (24, 16)])
        sel_y = np.concatenate([yva] * 3)

    model = build(a.preset, num_classes=len(labels))
    if a.init:
        n = transfer(model, checkpoint.load(a.init), labels)
        print(f"initialised {n} tensors from {a.init}", file=sys.stderr)
    hist = fit(
        model,
        xtr,
        ytr,
        sel_x,
        sel_y,
        hp,
        device,
        out,
        labels,
        resume=a.resume,
        batch_fn=batch_fn,
        cpu_bf16=a.cpu_bf16,
    )

    probs = predict(model.float(), xva, device)
    probs_tta = predict(model, xva, device, tta=True)
    val_acc = float((probs.argmax(1) == yva).mean())
    version = a.version or f"{a.preset}-{Path(a.data).stem}-{time.strftime('%Y%m%d')}"
    meta = checkpoint.make_meta(
        labels,
        mean,
        std,
        model.config.input_size,
        version=version,
        training={
            "data": str(a.data),
            "val": str(a.val or a.data),
            "n_train": len(train),
            "n_val": len(val),
            "init": a.init,
            "degrade": a.degrade,
            "hyper": hp.__dict__,
            "device": device,
            "epochs_run": len(hist["epochs"]),
            "best_epoch": hist["best_epoch"],
            "seconds": round(time.time() - t0, 1),
        },
        metrics={
            "val_accuracy": val_acc,
            "val_accuracy_flip_tta": float((probs_tta.argmax(1) == yva).mean()),
            "val_per_class": per_class_accuracy(probs.argmax(1), yva, labels),
        },
    )
    checkpoint.save(out / "best.pt", model.cpu(), meta)
    summary = {
        "preset": a.preset,
        "params": count_parameters(model),
        "macs": count_macs(model),
        "val_accuracy": val_acc,
        "val_accuracy_flip_tta": meta["metrics"]["val_accuracy_flip_tta"],
        "first_loss": hist["epochs"][0]["train_loss"],
        "last_loss": hist["epochs"][-1]["train_loss"],
        "epochs": len(hist["epochs"]),
        "best_epoch": hist["best_epoch"],
        "weights": str(out / "best.pt"),
        "seconds": round(time.time() - t0, 1),
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
