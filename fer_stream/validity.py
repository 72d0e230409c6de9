"""Which per-face measurements can be read: gates on face size, derived from measured validity curves.

A classroom camera sees the back rows at 10-40 px. Below some size the emotion model mostly
answers "sad" whatever the face shows, and 68 landmarks on a 14 px face put the eyes anywhere.
Such values must not reach a teacher as facts, so each signal has a gate (docs/VALIDITY.md):

* ``emotion``: the face is at least ``emotion_min_px`` wide; else the record's ``emotion`` is null
  ("unreadable") and reports leave the face out of every emotion share;
* ``pose`` (yaw, pitch, roll, and so the attention score): at least ``pose_min_px``; else those
  are null and the face is "unmeasured" (never "inattentive");
* ``eyes`` (EAR and the eyes-open part of the attention score): at least ``eyes_min_px`` and
  the pose readable; else EAR is null and attention rests on head pose alone.

The defaults are the curve points ``bench/validity.py`` derives (``bench/results/validity.json``,
``derived_gates``; a test checks that they agree). Face size is the detector box width in frame
pixels (``x2 - x1``). Pure numpy; no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Gates:
    """Smallest face width, in frame pixels, at which each signal is reported (docs/VALIDITY.md).

    Attributes:
        emotion_min_px: emotion probabilities are read as an emotion from this box width up.
        pose_min_px: head pose (and the attention score built on it) from this width up.
        eyes_min_px: eye aspect ratio (eyes open/closed) from this width up.
        head_min_px: head state (up/down/around/phone) and the attention score from it, this width up.
    """

    emotion_min_px: float = 14.0
    pose_min_px: float = 24.0
    # No measured size meets the eyes rule (EAR p90 error 0.053 even at 128 px): EAR is not reported
    # and attention rests on head pose. A camera that measures better can set --eyes-min-px.
    eyes_min_px: float = math.inf
    # Head state (up/down/around/phone) and the attention score read from it: docs/ATTENTION.md,
    # "Head state". Provisional until the per-size measurement of the head-state model sets it.
    head_min_px: float = 12.0

    def __post_init__(self):
        for name in ("emotion_min_px", "pose_min_px", "eyes_min_px", "head_min_px"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


def face_px(xyxy: np.ndarray) -> np.ndarray:
    """``(N, 4)`` boxes -> ``(N,) float32`` widths in pixels, the size every gate compares."""
    xyxy = np.asarray(xyxy, np.float64).reshape(-1, 4)
    return (xyxy[:, 2] - xyxy[:, 0]).astype(np.float32)


def readable(px: np.ndarray, gates: Gates) -> dict[str, np.ndarray]:
    """``(N,)`` face widths -> ``{"emotion", "pose", "eyes", "head"}`` each ``(N,) bool``.

    Eyes need the pose too: EAR is read on the same landmarks, and a face too small for pose is
    too small for the eye contour.
    """
    px = np.asarray(px, np.float64)
    pose = px >= gates.pose_min_px
    return {
        "emotion": px >= gates.emotion_min_px,
        "pose": pose,
        "eyes": pose & (px >= gates.eyes_min_px),
        "head": px >= gates.head_min_px,
    }
