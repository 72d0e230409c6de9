"""Parallel-array face detections of one image."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Detections:
    """Faces found in one image, as parallel arrays (N faces).

    Attributes:
        xyxy: ``(N, 4) float32`` boxes ``x1, y1, x2, y2`` in pixels of the input image.
        score: ``(N,) float32`` detector confidence in [0, 1] (HOG: a squashed SVM margin).
        landmarks: ``(N, 5, 2) float32`` (x, y) of left eye, right eye, nose, left mouth corner,
            right mouth corner, in image pixels ("left" = the subject's right side as seen on the
            image's left); NaN where the detector gives none (HOG).
    """

    xyxy: np.ndarray
    score: np.ndarray
    landmarks: np.ndarray

    def __post_init__(self):
        xyxy = np.asarray(self.xyxy, np.float32).reshape(-1, 4)
        n = len(xyxy)
        score = np.asarray(self.score, np.float32).reshape(n)
        lm = np.asarray(self.landmarks, np.float32)
        if lm.size == 0 and n == 0:
            lm = lm.reshape(0, 5, 2)
        if lm.shape != (n, 5, 2):
            raise ValueError(f"landmarks must be ({n}, 5, 2), got {lm.shape}")
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "score", score)
        object.__setattr__(self, "landmarks", lm)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, idx) -> Detections:
        idx = np.atleast_1d(np.arange(len(self))[idx])
        return Detections(self.xyxy[idx], self.score[idx], self.landmarks[idx])

    @property
    def wh(self) -> np.ndarray:
        """``(N, 2)`` box width and height in pixels."""
        return self.xyxy[:, 2:] - self.xyxy[:, :2]


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``a (N, 4)`` with every box in ``b (M, 4)`` (xyxy).

    Returns ``(N, M)`` float64 in [0, 1]; empty boxes have IoU 0 with everything.
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clip(0).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
