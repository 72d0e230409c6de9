"""Head state per detected face: up / down / around / phone, readable on 15-40 px faces (issue 22).

A fixed, high classroom camera sees most students bowed over desks, turned to a neighbour or on a
phone; head pose from landmarks needs faces of 24 px and more and ranks "facing the front" at
chance on real CCTV frames. This module reads the head state from the pixels around the face
instead, with a small CNN (``fer_stream.models.headnet``):

* ``up``: facing the front (the board, the teacher, the screen; which of them it cannot tell).
* ``down``: head bowed: reading, writing, sleeping.
* ``around``: turned to a neighbour or away from the front.
* ``phone``: looking at a phone (rare in the training data: treat its probability as weak).

What it cannot see: eyes closed while facing the front, or attention behind a bowed head (taking
notes on the lecture reads as ``down``). ``P(up)`` is the per-face attention signal.

The model reads a square region around each FACE box from a face detector (CenterFace at run
time), not around the head: :func:`head_crop_boxes` gives that region; its factor travels in the
weights' meta and the classifier uses the meta's value.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from fer_stream.models.headnet import HeadWeights, load_weights

HEAD_STATES: tuple[str, ...] = ("up", "down", "around", "phone")

# Side of the square the model reads, in units of the face box's longer side, centred on the face
# box. CenterFace's face box is about half the labelled head box's width and height (measured on
# the classroom frames: training/train_headstate.py prints it), so 2.2 face sides cover the whole
# head, hair included when it is bowed, plus the hands and desk just below the chin (a phone).
CROP_FACTOR = 2.2


def head_crop_boxes(face_xyxy: np.ndarray, factor: float = CROP_FACTOR) -> np.ndarray:
    """The square region the model reads around each face box.

    Args:
        face_xyxy: ``(N, 4)`` face boxes ``x1, y1, x2, y2`` in frame pixels (a face detector's).
        factor: square side / the face box's longer side (:data:`CROP_FACTOR`).

    Returns:
        ``(N, 4) float32`` square boxes in frame pixels, centred on the face boxes (they may reach
        outside the frame; :func:`extract_crops` pads those parts).
    """
    f = np.asarray(face_xyxy, np.float32).reshape(-1, 4)
    c = (f[:, :2] + f[:, 2:]) / 2
    half = np.maximum(f[:, 2] - f[:, 0], f[:, 3] - f[:, 1]) * (factor / 2)
    return np.concatenate([c - half[:, None], c + half[:, None]], 1).astype(np.float32)


def extract_crops(rgb: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """``(N, size, size, 3) uint8`` crops of ``boxes (N, 4)`` (frame pixels) from ``rgb (H, W, 3)``.

    Each box is rounded to whole pixels, parts outside the frame repeat the edge pixels, and the
    region is resized to ``size`` (area averaging when shrinking, bilinear when enlarging).
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    out = np.empty((len(boxes), size, size, 3), np.uint8)
    h, w = rgb.shape[:2]
    for i, (x1, y1, x2, y2) in enumerate(np.round(boxes).astype(np.int64)):
        x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)
        region = rgb[max(y1, 0) : max(min(y2, h), 0), max(x1, 0) : max(min(x2, w), 0)]
        if region.size == 0:  # wholly outside the frame
            out[i] = 0
            continue
        pad = (max(0, -y1), max(0, y2 - h), max(0, -x1), max(0, x2 - w))
        if any(pad):
            region = cv2.copyMakeBorder(region, *pad, cv2.BORDER_REPLICATE)
        shrink = region.shape[0] > size
        out[i] = cv2.resize(
            region, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        )
    return out


class HeadStateClassifier:
    """Batched head-state probabilities for the faces of one frame (CPU torch).

    Args:
        weights: a shipped model name (``default``) or a checkpoint path
            (``training/train_headstate.py`` writes them).
        threads: torch CPU threads (process-wide in torch); ``None`` leaves the setting alone.
    """

    def __init__(self, weights: str | Path = "default", threads: int | None = None):
        if threads:
            torch.set_num_threads(int(threads))
        self.weights: HeadWeights = load_weights(weights)
        meta = self.weights.meta
        labels = tuple(meta["labels"])
        if sorted(labels) != sorted(HEAD_STATES):
            raise ValueError(f"weights label {labels}, expected the head states {HEAD_STATES}")
        self.order = [labels.index(s) for s in HEAD_STATES]  # logits -> HEAD_STATES order
        self.input_size = int(meta["input_size"])
        self.crop_factor = float(meta["crop"]["factor"])
        norm = meta["normalize"]
        self.mean = torch.tensor(norm["mean"], dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(norm["std"], dtype=torch.float32).view(1, -1, 1, 1)
        self.model = self.weights.build()

    @property
    def version(self) -> str:
        return self.weights.version

    def crops(self, rgb: np.ndarray, face_xyxy: np.ndarray) -> np.ndarray:
        """``(N, S, S, 3) uint8`` model inputs for ``face_xyxy (N, 4)`` in ``rgb (H, W, 3) uint8``."""
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected a uint8 (H, W, 3) RGB frame, got {rgb.dtype} {rgb.shape}")
        boxes = head_crop_boxes(face_xyxy, self.crop_factor)
        return extract_crops(rgb, boxes, self.input_size)

    @torch.inference_mode()
    def predict_crops(self, crops: np.ndarray) -> np.ndarray:
        """``crops (N, S, S, 3) uint8`` -> ``(N, 4) float32`` probabilities in ``HEAD_STATES`` order."""
        crops = np.asarray(crops, np.uint8).reshape(-1, self.input_size, self.input_size, 3)
        if len(crops) == 0:
            return np.zeros((0, len(HEAD_STATES)), np.float32)
        x = torch.from_numpy(crops).permute(0, 3, 1, 2).float().div_(255)
        logits = self.model((x - self.mean) / self.std)
        return torch.softmax(logits, 1)[:, self.order].numpy().astype(np.float32)

    def predict(self, rgb: np.ndarray, face_xyxy: np.ndarray) -> np.ndarray:
        """Head-state probabilities of each face.

        Args:
            rgb: ``(H, W, 3) uint8`` RGB frame.
            face_xyxy: ``(N, 4)`` face boxes in frame pixels, from a face detector.

        Returns:
            ``(N, 4) float32`` probabilities in :data:`HEAD_STATES` order, rows sum to 1;
            ``(0, 4)`` for no faces.
        """
        return self.predict_crops(self.crops(rgb, face_xyxy))


__all__ = ["CROP_FACTOR", "HEAD_STATES", "HeadStateClassifier", "extract_crops", "head_crop_boxes"]
