"""The paper's Table 1, side by side: one CK+ protocol for every model, from scratch and from FER2013.

    python -m training.table1 --models paper --threads 2          # the paper's network first
    python -m training.table1 --threads 2                         # then every CPU model
    python -m training.table1 --table-only                        # the docs table from the results
    python -m training.table1 --speed-only --models paper,lite,paper-se,xception,inception-v4
    python -m training.table1 --smoke                             # seconds, synthetic faces (CI)

The protocol (``protocol()`` below; every result line carries it, and only lines of the current
protocol are resumed from or published):

* **Data**: CK+48 (``../shared/data/ckplus/ckplus48.parquet``), CK+'s seven labels. The paper's
  seven include neutral, which CK+48 has no frames of; here contempt takes its place (45 images,
  the rarest class), so the 7-way tasks are not the same (docs/RESULTS.md says more).
* **Folds**: ``training.ckplus_cv.folds_of`` (10 folds, seed 0): the folds of the shipped ``ckplus``
  model's 10-fold estimate, whole subjects per fold.
* **Inside fold f**: test on fold f, **early-stop on fold f+1** (whole subjects too: the test fold
  never steers training, and the stopping epoch is picked on people not trained on), train on the
  other eight. The state of the best validation epoch is tested.
* **Training** (``training.train.fit``, the same for every model): the project's augmentation,
  AdamW, one warm-up epoch then cosine over at most 40 epochs, label smoothing 0.1, loss weights
  (1/frequency)^0.5, batch 32, stop after 10 epochs without a validation gain.
  *scratch* (the paper's setting): lr 3e-3, weight decay 0.05 (train.py's from-scratch recipe),
  pixels normalised by the fold's training images. *fer2013*: lr 1e-3, weight decay 0.01
  (ckplus_cv's fine-tuning recipe), starting from a FER2013 model of the same architecture
  (``--fer2013 MODEL=WEIGHTS``; today only ``lite`` has one, the shipped ``default``) with its
  normalisation; its classifier rows of the six shared labels are kept, contempt starts fresh.

Resumable: each finished (model, init, fold) appends one JSON line to ``--results``; a rerun skips
what is there. Parallel: a fold in progress is claimed with an exclusive ``flock`` on
``--work/<protocol>/<model>-<init>-fold<f>.claim``, so the same command started once per core
(``--threads 1`` each) shares the folds out; the kernel drops a dead worker's claim.
Precision is how the steps ran, not part of the protocol: float32 on CPU by default, bfloat16
autocast with ``--precision bf16`` (1.6-1.9x per step on the 800 M multiply-add presets on AMX CPUs), float16
autocast on CUDA. Each fold line records it and the table shows it per row.
Inside a fold, ``fit`` saves ``last.pt`` under ``--work`` after every epoch, so a
killed run continues from its last epoch. Each model's CPU speed (faces/s, torch eager, batch 64,
``--speed-threads``) is measured once and stored the same way. The Markdown table (mean ± std
over folds, pooled accuracy, per-class recall, params, multiply-adds, faces/s, folds done) is
written between ``<!-- table1:begin -->`` and ``<!-- table1:end -->`` of ``--docs``; partial
tables say how many folds each row has.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import math
import os
import shutil
import sys
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import torch

from fer_stream.labels import CKPLUS_LABELS, FER2013_LABELS
from fer_stream.models import checkpoint, registry
from fer_stream.models.sepres import count_macs, count_parameters
from training import data as D
from training.ckplus_cv import folds_of, load_ckplus
from training.train import Hyper, fit, pick_device, predict, to_tensor, transfer

MODELS = ("paper", "lite", "paper-se", "xception", "inception-v4")
CPU_MODELS = ("paper", "lite", "paper-se", "xception")  # inception-v4: 2.1 G multiply-adds, GPU
BEGIN, END = "<!-- table1:begin -->", "<!-- table1:end -->"
# The paper's Table 1 (CK+, 7 classes with neutral, split not stated), for the reference rows.
REPORTED = {"xception": "87.24", "inception-v4": "89.92", "paper": "95.1"}


# ---------------------------------------------------------------------------- protocol
def hypers(a) -> dict[str, Hyper]:
    """One schedule for every model; the two inits differ in peak lr and weight decay only."""
    common = dict(
        epochs=a.epochs,
        batch_size=a.batch_size,
        label_smoothing=0.1,
        warmup_epochs=1.0,
        patience=a.patience,
        class_weight_power=0.5,
        seed=a.seed,
    )
    return {
        "scratch": Hyper(lr=3e-3, weight_decay=0.05, **common),
        "fer2013": Hyper(lr=1e-3, weight_decay=0.01, **common),
    }


def protocol(a, n_images: int) -> dict:
    return {
        "data": Path(a.data).name if not a.smoke else "synthetic",
        "n_images": int(n_images),
        "labels": list(CKPLUS_LABELS),
        "folds": a.folds,
        "fold_seed": a.seed,
        "validation": "fold f+1 (whole subjects), early stopping",
        "hyper": {k: asdict(v) for k, v in hypers(a).items()},
        "augment": "training.train.augment",
    } | ({"split": "image (NOT subject-independent)"} if a.split == "image" else {})


def image_folds(n: int, k: int, seed: int) -> np.ndarray:
    """Fold per image, images dealt at random: the same person's near-identical frames (CK+48 keeps
    the last 3 of each sequence) land in train and test. What a protocol that does not say its split
    may have done; ``--split image`` measures how much it inflates accuracy. Never the default."""
    return np.random.default_rng(seed).permutation(np.arange(n) % k)


def protocol_id(p: dict) -> str:
    return hashlib.sha1(json.dumps(p, sort_keys=True).encode()).hexdigest()[:10]


# ---------------------------------------------------------------------------- results file
def read_results(path: Path) -> list[dict]:
    """Every JSON line of the results file; a torn last line (a kill mid-write) is ignored."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def append_result(path: Path, rec: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:  # one line per write: a kill leaves at most one torn line
        f.write(json.dumps(rec) + "\n")
        f.flush()
        os.fsync(f.fileno())


def fold_key(rec: dict) -> tuple:
    return rec["model"], rec["init"], rec.get("init_version"), rec["fold"], rec["protocol_id"]


@contextlib.contextmanager
def claim(path: Path):
    """Yield True while this process holds ``path``'s exclusive ``flock``, False (at once) when
    another process holds it. The kernel drops the lock when its holder dies, so a killed worker's
    fold is free for the next one (which resumes its epoch checkpoint)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def precision_of(device: str, precision: str) -> str:
    """How a fold's training steps ran: ``fp16-amp`` (CUDA, always), ``bf16-amp`` or ``fp32`` (CPU).
    Not part of the protocol (autocast changes rounding, not the task, data or schedule); every fold
    line records it and the table shows it, so rows that mix precisions say so."""
    if device.startswith("cuda"):
        return "fp16-amp"
    return "bf16-amp" if precision == "bf16" else "fp32"


# ---------------------------------------------------------------------------- data
def synthetic_ckplus(n_subjects: int = 4, per_class: int = 2, seed: int = 0) -> D.FaceSet:
    """Learnable toy faces for ``--smoke``: each class a bright bar at its own angle, with noise."""
    rng = np.random.default_rng(seed)
    imgs, labs, subs = [], [], []
    for s in range(n_subjects):
        for k, name in enumerate(CKPLUS_LABELS):
            for _ in range(per_class):
                img = rng.normal(110, 20, (48, 48)).clip(0, 255).astype(np.uint8)
                ang = np.pi * k / len(CKPLUS_LABELS)
                c = 24 + rng.normal(0, 1.5, 2)
                d = np.array([np.cos(ang), np.sin(ang)]) * 19
                p1, p2 = (c - d).astype(int), (c + d).astype(int)
                cv2.line(img, (int(p1[0]), int(p1[1])), (int(p2[0]), int(p2[1])), 250, 4)
                imgs.append(img)
                labs.append(name)
                subs.append(f"S{s:03d}")
    return D.FaceSet(np.stack(imgs), np.array(labs, object), np.array(subs, object), "synthetic")


# ---------------------------------------------------------------------------- one fold
def new_model(name: str, init: checkpoint.Weights | None, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)  # the same starting weights for a model on every fold and rerun
    if init is None:
        return registry.build(name, num_classes=len(CKPLUS_LABELS))
    model = registry.from_config(registry.with_classes(init.arch, len(CKPLUS_LABELS)))
    transfer(model, init, CKPLUS_LABELS)
    return model


def run_fold(
    name: str,
    init_name: str,
    init: checkpoint.Weights | None,
    images: np.ndarray,
    y: np.ndarray,
    folds: np.ndarray,
    fold: int,
    hp: Hyper,
    device: str,
    work: Path,
    epoch_resume: bool,
    cpu_bf16: bool = False,
) -> dict:
    """Train ``name`` on the folds other than ``fold`` and ``fold + 1`` (early stopping on the
    latter), test on ``fold``. ``images uint8 (N, 48, 48)``, ``y (N,)`` CK+ class indices, ``folds
    (N,)`` fold per image. ``epoch_resume``: continue from ``work/<name>-<init>-fold<f>/last.pt``."""
    k = int(folds.max()) + 1
    te, va = folds == fold, folds == (fold + 1) % k
    tr = ~(te | va)
    if init is None:  # from scratch: normalise by this fold's training pixels
        mean, std = float(images[tr].mean() / 255), float(images[tr].std() / 255)
    else:  # fine-tuning: exactly as the pretrained network expects
        mean, std = init.meta["normalize"]["mean"], init.meta["normalize"]["std"]
    x = to_tensor(images, mean, std)
    model = new_model(name, init, hp.seed)
    out = None
    if epoch_resume:
        out = work / f"{name}-{init_name}-fold{fold}"
        out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    hist = fit(
        model,
        x[tr],
        y[tr],
        x[va],
        y[va],
        hp,
        device,
        out=out,
        labels=CKPLUS_LABELS,
        resume=epoch_resume,
        quiet=True,
        cpu_bf16=cpu_bf16,
    )
    pred = predict(model, x[te], device).argmax(1)
    conf = np.zeros((len(CKPLUS_LABELS),) * 2, int)
    np.add.at(conf, (y[te], pred), 1)
    if out is not None:
        shutil.rmtree(out, ignore_errors=True)  # the fold is done: its epoch checkpoint is not needed
    return {
        "accuracy": float((pred == y[te]).mean()),
        "confusion": conf.tolist(),
        "n_train": int(tr.sum()),
        "n_val": int(va.sum()),
        "n_test": int(te.sum()),
        "best_val_acc": hist["best_val_acc"],
        "best_epoch": hist["best_epoch"],
        "epochs_run": len(hist["epochs"]),
        "val_curve": [round(e.get("val_acc", float("nan")), 4) for e in hist["epochs"]],
        "seconds": round(time.time() - t0, 1),  # this run's part of the fold (less when resumed)
        # the fold's whole training time across resumes (None: epochs from before it was recorded)
        "train_seconds": (
            round(sum(e["seconds"] for e in hist["epochs"]), 1)
            if all("seconds" in e for e in hist["epochs"])
            else None
        ),
    }


# ---------------------------------------------------------------------------- speed
@torch.inference_mode()
def faces_per_second(model: torch.nn.Module, threads: int, batch: int = 64, seconds: float = 3.0) -> float:
    """CPU inference speed: torch eager, float32, ``threads`` threads, after one warm-up batch."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = model.cpu().eval()
        s = model.config.input_size
        x = torch.randn(batch, model.config.in_channels, s, s)
        model(x)  # warm-up: allocator, oneDNN kernels
        n, t0 = 0, time.perf_counter()
        while n < 2 or time.perf_counter() - t0 < seconds:
            model(x)
            n += 1
        return n * batch / (time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------------------- the table
def summarise(records: list[dict], pid: str, k: int) -> list[dict]:
    """One row per (model, init, init_version) of protocol ``pid``, in first-seen order."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        if r.get("kind") == "fold" and r["protocol_id"] == pid:
            groups.setdefault((r["model"], r["init"], r.get("init_version")), []).append(r)
    speed = {r["model"]: r for r in records if r.get("kind") == "speed"}
    rows = []
    for (model, init, version), rs in groups.items():
        rs = sorted({r["fold"]: r for r in rs}.values(), key=lambda r: r["fold"])  # one per fold
        accs = np.array([r["accuracy"] for r in rs])
        conf = np.sum([np.array(r["confusion"]) for r in rs], axis=0)
        rows.append(
            {
                "model": model,
                "init": init,
                "init_weights": rs[0].get("init_weights"),
                "init_version": version,
                "folds_done": len(rs),
                "folds": k,
                "mean": float(accs.mean()),
                "std": float(accs.std()),  # over folds, ddof 0 (as training.ckplus_cv)
                "pooled": float(np.trace(conf) / conf.sum()),
                "recall": {
                    n: (float(conf[i, i] / conf[i].sum()) if conf[i].sum() else None)
                    for i, n in enumerate(CKPLUS_LABELS)
                },
                "params": rs[0]["params"],
                "macs": rs[0]["macs"],
                "per_fold": {r["fold"]: r["accuracy"] for r in rs},
                "precision": dict(sorted(Counter(_precision(r) for r in rs).items())),
                "faces_per_s": speed.get(model, {}).get("faces_per_s"),
                "speed_threads": speed.get(model, {}).get("threads"),
            }
        )
    return rows


def paired(rows: list[dict], ref_model: str = "paper") -> list[dict]:
    """Every other row against ``ref_model`` from scratch, on the test folds both have done: mean
    difference in points (row minus reference), folds better / equal / worse, and the two-sided exact
    sign-flip p of the mean difference. The folds share training subjects, so the folds are not
    independent samples and the p is optimistic (Nadeau & Bengio 2003): a pointer, not a verdict."""
    ref = next((r for r in rows if r["model"] == ref_model and r["init"] == "scratch"), None)
    if ref is None:
        return []
    out = []
    for r in rows:
        shared = sorted(set(r["per_fold"]) & set(ref["per_fold"]))
        if r is ref or not shared:
            continue
        d = np.array([r["per_fold"][f] - ref["per_fold"][f] for f in shared])
        d = np.where(np.abs(d) < 1e-12, 0.0, d)  # equal accuracies on a fold: a tie, not +-epsilon
        p = None
        if len(d) <= 16:  # every sign assignment: 2^n means
            signs = 1 - 2 * ((np.arange(2 ** len(d))[:, None] >> np.arange(len(d))) & 1)
            p = float(np.mean(np.abs((signs * d).mean(axis=1)) >= abs(d.mean()) - 1e-12))
        out.append(
            {
                "model": r["model"],
                "init": r["init"],
                "against": ref_model,
                "folds": shared,
                "diff": float(d.mean()),
                "better": int((d > 0).sum()),
                "equal": int((d == 0).sum()),
                "worse": int((d < 0).sum()),
                "p": p,
            }
        )
    return out


def _precision(rec: dict) -> str:  # lines from before the field: CPU float32 or CUDA float16 autocast
    return rec.get("precision") or (
        "fp16-amp" if str(rec.get("device", "cpu")).startswith("cuda") else "fp32"
    )


def _precisions(counts: dict[str, int]) -> str:  # "fp32", or "fp32 x2, bf16-amp x8" for a mixed row
    return next(iter(counts)) if len(counts) == 1 else ", ".join(f"{k} x{n}" for k, n in counts.items())


def _pct(v) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}"


def markdown(rows: list[dict], proto: dict, pid: str, results: str) -> str:
    labels = proto["labels"]
    hp = proto["hyper"]["scratch"]
    lines = [
        f"Protocol `{pid}`: CK+48 ({proto['n_images']} images), {proto['folds']}-fold "
        + (
            f"subject-independent (folds of `training.ckplus_cv`, seed {proto['fold_seed']})"
            if "split" not in proto
            else f"RANDOM-IMAGE (not subject-independent) (`image_folds`, seed {proto['fold_seed']})"
        )
        + ", early stopping on fold f+1, "
        f"at most {hp['epochs']} epochs (patience {hp['patience']}), batch {hp['batch_size']}; "
        f"`python -m training.table1`, results in `{results}`. Recall per class is pooled over the "
        "folds done; faces/s: torch eager on CPU, batch 64, on a machine shared with other work "
        "(a lower bound).",
        "",
        "| model | init | folds done | accuracy (mean ± std over folds) | pooled | "
        + " | ".join(labels)
        + " | params | multiply-adds | CPU faces/s | trained in |",
        "|---|---|---:|---:|---:|" + "---:|" * len(labels) + "---:|---:|---:|---|",
    ]
    for name, acc in REPORTED.items():
        lines.append(
            f"| {name} (Yu, reported) | not stated | | {acc} % | |" + " |" * len(labels) + " | | | |"
        )
    for r in rows:
        init = "scratch" if r["init"] == "scratch" else f"FER2013 (`{r['init_weights']}`)"
        partial = "" if r["folds_done"] == r["folds"] else " (partial)"
        speed = "" if r["faces_per_s"] is None else f"{r['faces_per_s']:,.0f} ({r['speed_threads']} thr)"
        lines.append(
            f"| `{r['model']}` | {init} | {r['folds_done']}/{r['folds']}{partial} | "
            f"**{_pct(r['mean'])} ± {_pct(r['std'])} %** | {_pct(r['pooled'])} % | "
            + " | ".join(_pct(r["recall"][n]) for n in labels)
            + f" | {r['params']:,} | {r['macs'] / 1e6:,.1f} M | {speed} | {_precisions(r['precision'])} |"
        )
    if not rows:
        lines.append("\n(no fold finished yet under this protocol)")
        return "\n".join(lines)
    # Per fold, so that partial rows can be compared on the folds they share.
    k = rows[0]["folds"]
    lines += [
        "",
        "Accuracy per test fold (%), the same test faces in each column:",
        "",
        "| model | init | " + " | ".join(str(f) for f in range(k)) + " |",
        "|---|---|" + "---:|" * k,
    ]
    for r in rows:
        init = "scratch" if r["init"] == "scratch" else "FER2013"
        cells = [_pct(r["per_fold"][f]) if f in r["per_fold"] else "" for f in range(k)]
        lines.append(f"| `{r['model']}` | {init} | " + " | ".join(cells) + " |")
    pairs = paired(rows)
    if pairs:
        lines += [
            "",
            "Paired against `paper` from scratch on the folds both have done (row minus `paper`): "
            "mean difference in points, folds better / equal / worse, and the two-sided exact "
            "sign-flip p. The folds share training subjects, so p is optimistic: a pointer, not a test "
            "of significance.",
            "",
            "| model | init | folds shared | mean difference | better / equal / worse | p |",
            "|---|---|---:|---:|---|---:|",
        ]
        for c in pairs:
            init = "scratch" if c["init"] == "scratch" else "FER2013"
            p = "" if c["p"] is None else f"{c['p']:.2f}"
            lines.append(
                f"| `{c['model']}` | {init} | {len(c['folds'])} | {100 * c['diff']:+.1f} | "
                f"{c['better']} / {c['equal']} / {c['worse']} | {p} |"
            )
    return "\n".join(lines)


def write_between_markers(path: Path, text: str) -> None:
    """Replace what lies between the table1 markers of ``path`` (created, or appended to, with the
    markers when it has none); the rest of the file is left as it is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.read_text() if path.is_file() else ""
    block = f"{BEGIN}\n{text}\n{END}"
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        new = head + block + rest.split(END, 1)[1]
    else:
        new = old + ("\n" if old and not old.endswith("\n") else "") + block + "\n"
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(new)
    tmp.replace(path)


# ---------------------------------------------------------------------------- main
def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/ckplus/ckplus48.parquet")
    ap.add_argument("--models", default=",".join(CPU_MODELS), help=f"comma list of {', '.join(MODELS)}")
    ap.add_argument("--inits", default="scratch,fer2013", help="scratch, fer2013 or both")
    ap.add_argument(
        "--fer2013",
        default="lite=default",
        help="FER2013 weights per model for the fer2013 column: MODEL=NAME_OR_PATH,...",
    )
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument(
        "--split",
        choices=("subject", "image"),
        default="subject",
        help="subject: whole subjects per fold (the protocol); image: random images (measures the leak)",
    )
    ap.add_argument("--only-folds", type=int, default=0, help="run just the first N folds")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--patience", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="CPU training steps in float32 or under bfloat16 autocast (AMX: 1.6-1.9x on the big presets)",
    )
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads for training (0: all cores)")
    ap.add_argument("--speed-threads", type=int, default=2)
    ap.add_argument("--speed-seconds", type=float, default=3.0, help="0: do not measure CPU speed")
    ap.add_argument("--results", default="bench/results/table1.jsonl")
    ap.add_argument("--work", default="runs/table1", help="per-epoch checkpoints of the fold in progress")
    ap.add_argument(
        "--epoch-resume",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="save last.pt every epoch so a killed fold continues (off on a GPU: one run, no restarts)",
    )
    ap.add_argument("--docs", default="docs/RESULTS.md", help="Markdown file for the table ('' = none)")
    ap.add_argument("--budget-s", type=float, default=0, help="start no new fold after this many seconds")
    ap.add_argument(
        "--order",
        choices=("model", "fold"),
        default="model",
        help="model: all folds of one model, then the next (CPU); fold: fold 0 of every model first (GPU)",
    )
    ap.add_argument("--table-only", action="store_true", help="only rewrite the table from --results")
    ap.add_argument(
        "--speed-only",
        action="store_true",
        help="measure every --models' CPU faces/s again (one run, so the column compares), no training",
    )
    ap.add_argument("--smoke", action="store_true", help="synthetic faces, tiny models, seconds (CI)")
    a = ap.parse_args(argv)
    if a.smoke:  # the whole code path on 56 synthetic faces of 4 subjects
        a.models = "smoke,inception-v4-smoke" if a.models == ",".join(CPU_MODELS) else a.models
        a.folds, a.only_folds = 4, a.only_folds or 2
        a.epochs, a.patience, a.batch_size = 2, 2, 8
        a.speed_seconds = 0.2 if a.speed_seconds == 3.0 else a.speed_seconds
        a.work = "runs/table1-smoke" if a.work == "runs/table1" else a.work
        a.results = (
            str(Path(a.work) / "table1.jsonl") if a.results == "bench/results/table1.jsonl" else a.results
        )
        a.docs = str(Path(a.work) / "table1.md") if a.docs == "docs/RESULTS.md" else a.docs
    return a


def fer2013_inits(a, work: Path) -> dict[str, str]:
    spec = dict(kv.split("=", 1) for kv in a.fer2013.split(",") if kv)
    if a.smoke and spec == {"lite": "default"}:
        # A stand-in FER2013 model of the smoke architecture: exercises the fine-tuning path.
        path = work / "smoke-fer2013.pt"
        if not path.is_file():
            torch.manual_seed(a.seed)
            model = registry.build("smoke", num_classes=len(FER2013_LABELS))
            checkpoint.save(path, model, checkpoint.make_meta(FER2013_LABELS, 0.5, 0.25, version="smoke-fer"))
        spec = {"smoke": str(path)}
    return spec


def main(argv=None) -> dict:
    a = parse(argv)
    t_start = time.time()
    results, work = Path(a.results), Path(a.work)
    torch.set_num_threads(a.threads or os.cpu_count() or 1)
    device = pick_device(a.device)

    ds = synthetic_ckplus() if a.smoke else load_ckplus(a.data)[0]
    y = np.array([CKPLUS_LABELS.index(lab) for lab in ds.labels])
    folds = (
        folds_of(ds.subjects, a.folds, a.seed)
        if a.split == "subject"
        else image_folds(len(y), a.folds, a.seed)
    )
    proto = protocol(a, len(y))
    pid = protocol_id(proto)
    hp = hypers(a)
    models = [m for m in a.models.split(",") if m]
    for m in models:
        if m not in registry.PRESETS:
            raise SystemExit(f"unknown model {m!r}; known: {', '.join(registry.PRESETS)}")
    inits = [i for i in a.inits.split(",") if i]
    fer = fer2013_inits(a, work)

    records = read_results(results)
    done = {fold_key(r) for r in records if r.get("kind") == "fold"}
    stopped = None
    busy: list[str] = []  # folds another worker held when this one came to them
    for name in [] if a.table_only or not a.speed_seconds else models:
        if a.speed_only or not any(r.get("kind") == "speed" and r["model"] == name for r in records):
            model = registry.build(name, num_classes=len(CKPLUS_LABELS))
            rec = {
                "kind": "speed",
                "model": name,
                "faces_per_s": round(faces_per_second(model, a.speed_threads, seconds=a.speed_seconds), 1),
                "threads": a.speed_threads,
                "batch": 64,
                "device": "cpu",
                "shared_machine": True,
                "load_1min": round(os.getloadavg()[0], 2),  # what else ran (the table uses the latest line)
            }
            append_result(results, rec)
            records.append(rec)

    # The jobs: (model, init) pairs that have weights to start from, times folds.
    pairs = []
    for name in [] if a.table_only or a.speed_only else models:
        for init_name in inits:
            init = None
            if init_name == "fer2013":
                if name not in fer:
                    continue  # no FER2013 model of this architecture (yet)
                init = checkpoint.load(fer[name])
                if init.arch.name != registry.PRESETS[name].name:
                    raise SystemExit(f"--fer2013 {name}={fer[name]} is a {init.arch.name!r} network")
            base = registry.build(name, num_classes=len(CKPLUS_LABELS))
            pairs.append((name, init_name, init, count_parameters(base), count_macs(base)))
    n_folds = a.only_folds or a.folds
    jobs = [(p, f) for p in pairs for f in range(n_folds)]  # model-major: one model's folds first
    if a.order == "fold":  # every model gets the same folds done when a budget cuts the run
        jobs = [(p, f) for f in range(n_folds) for p in pairs]

    for (name, init_name, init, params, macs), f in jobs:
        rec = {
            "kind": "fold",
            "model": name,
            "init": init_name,
            "init_weights": fer.get(name) if init is not None else None,
            "init_version": init.version if init is not None else None,
            "fold": f,
            "protocol_id": pid,
        }
        if fold_key(rec) in done:
            continue
        if a.budget_s and time.time() - t_start > a.budget_s:
            stopped = f"time budget of {a.budget_s:.0f} s spent"
            break
        with claim(work / pid / f"{name}-{init_name}-fold{f}.claim") as mine:
            if not mine:  # another worker is on this fold
                busy.append(f"{name}-{init_name}-fold{f}")
                continue
            # Another worker may have finished it since this one read the results.
            if fold_key(rec) in {fold_key(r) for r in read_results(results) if r.get("kind") == "fold"}:
                continue
            res = run_fold(
                name,
                init_name,
                init,
                ds.images,
                y,
                folds,
                f,
                hp[init_name],
                device,
                work / pid,
                a.epoch_resume,
                cpu_bf16=a.precision == "bf16",
            )
            rec.update(res, params=params, macs=macs, device=device, protocol=proto)
            rec["threads"] = torch.get_num_threads() if device == "cpu" else None
            rec["precision"] = precision_of(device, a.precision)
            append_result(results, rec)
        done.add(fold_key(rec))
        print(
            json.dumps({k: rec[k] for k in ("model", "init", "fold", "accuracy", "epochs_run", "seconds")}),
            file=sys.stderr,
            flush=True,
        )

    rows = summarise(read_results(results), pid, a.folds)
    if a.docs:
        write_between_markers(Path(a.docs), markdown(rows, proto, pid, str(results)))
    summary = {
        "protocol_id": pid,
        "rows": rows,
        "paired": paired(rows),
        "results": str(results),
        "stopped": stopped,
        "busy": busy,
        "seconds": round(time.time() - t_start, 1),
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
