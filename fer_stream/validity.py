"""Which per-face measurements can be read: gates on face size, derived from measured validity curves.

A classroom camera sees the back rows at 10-40 px. Below some size the emotion model mostly
answers "sad" whatever the face shows, and 68 landmarks on a 14 px face put the eyes anywhere.
Such values must not reach a teacher as facts, so each signal has a gate (docs/VALIDITY.md):

* ``emotion``: the face is at least ``emotion_min_px`` wide **and turned to the camera**
  (:func:`turned_to_camera`: head pose within ``emotion_max_abs_yaw`` / ``emotion_pitch_min..max``
  where the pose is read, else head state not ``down`` where that is read; a face with neither
  measured is not known to be turned to the camera); else the record's ``emotion`` is null
  ("unreadable") and reports leave the face out of every emotion share. A bowed head has no
  emotion: seen from above, a face over a desk is read as "sad" whatever it shows;
* ``pose`` (yaw, pitch, roll, and so the attention score): at least ``pose_min_px``; else those
  are null and the face is "unmeasured" (never "inattentive");
* ``eyes`` (EAR and the eyes-open part of the attention score): at least ``eyes_min_px`` and
  the pose readable; else EAR is null and attention rests on head pose alone.

The defaults are the stricter of two measured curves (a test checks that they agree): FER2013
crops shrunk and scaled back (``bench/validity.py``, ``bench/results/validity.json``) and real
frames shrunk whole, H.264-encoded and run through the whole path (``bench/validity_video.py``,
``bench/results/validity_video.json``). Face size is the detector box width in frame
pixels (``x2 - x1``). Pure numpy; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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
        emotion_max_abs_yaw: degrees; a face whose measured |yaw| is larger gets no emotion.
        emotion_pitch_min, emotion_pitch_max: degrees (line of sight, ``fer_stream.attention``); a
            face tilted further down or up gets no emotion.
        emotion_when_down: False (default): a face whose head state is ``down`` gets no emotion.
    """

    emotion_min_px: float = 40.0
    pose_min_px: float = 24.0
    # No measured size meets the eyes rule (EAR p90 error 0.053 even at 128 px): EAR is not reported
    # and attention rests on head pose. A camera that measures better can set --eyes-min-px.
    eyes_min_px: float = math.inf
    # Head state (up/down/around/phone) and the attention score read from it: docs/ATTENTION.md,
    # "Head state". Provisional until the per-size measurement of the head-state model sets it.
    head_min_px: float = 12.0
    # Head orientation for emotion (docs/VALIDITY.md, "Orientation"): real-video agreement and the
    # classroom's bowed heads (bench/validity_video.py).
    emotion_max_abs_yaw: float = 30.0
    emotion_pitch_min: float = -20.0
    emotion_pitch_max: float = 20.0
    emotion_when_down: bool = False

    def __post_init__(self):
        for name in ("emotion_min_px", "pose_min_px", "eyes_min_px", "head_min_px", "emotion_max_abs_yaw"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.emotion_pitch_min <= self.emotion_pitch_max:
            raise ValueError(
                f"emotion_pitch_min ({self.emotion_pitch_min}) must be <= "
                f"emotion_pitch_max ({self.emotion_pitch_max})"
            )


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


def turned_to_camera(
    yaw: np.ndarray, pitch: np.ndarray, head_state: np.ndarray | Sequence[str | None], gates: Gates
) -> np.ndarray:
    """``(N,) bool``: the face is measured turned to the camera enough to read its expression.

    Args:
        yaw, pitch: ``(N,)`` degrees (``fer_stream.attention`` conventions), NaN where the pose is not
            read (below ``gates.pose_min_px``).
        head_state: ``(N,)`` ``up``/``down``/``around``/``phone``, None where not read.

    Where the pose is read it decides: yaw and pitch within the gates' limits. Where it is not (a
    face below ``gates.pose_min_px``), the head state decides: not ``down`` (unless
    ``gates.emotion_when_down``). The pose, where readable, is the finer measure, and the head-state
    model (trained on one high classroom camera) calls many frontal eye-level faces ``down``
    (docs/ATTENTION.md). A face with neither measured is not known to be turned to the camera: False.
    """
    yaw, pitch = np.asarray(yaw, np.float64), np.asarray(pitch, np.float64)
    pose_known = np.isfinite(yaw) & np.isfinite(pitch)
    with np.errstate(invalid="ignore"):
        pose_ok = (
            (np.abs(yaw) <= gates.emotion_max_abs_yaw)
            & (pitch >= gates.emotion_pitch_min)
            & (pitch <= gates.emotion_pitch_max)
        )
    states = list(head_state)
    head_known = np.array([s is not None for s in states], bool).reshape(len(yaw))
    head_ok = np.array([gates.emotion_when_down or s != "down" for s in states], bool).reshape(len(yaw))
    return np.where(pose_known, pose_ok, head_known & head_ok)
