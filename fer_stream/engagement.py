"""The per-face attention score: head state, head pose and face size -> "this student is attending"
(issue 23).

Two measured signals, each valid in its own range of face sizes, blended by face width:

* **Classroom-sized faces** (up to ``blend_px[0]``, 40 px): the head state's P(up) itself, as since
  issue 22. The head-state model was trained on faces shrunk to 10-40 px from one CCTV classroom
  (``training/train_headstate.py``) and ranks "facing the front" there with AUC 0.92.
* **Close-up faces** (from ``blend_px[1]``, 60 px: webcams, front rows of a close camera): a small
  logistic model over head state and head pose fitted by ``training/train_engagement.py`` to human
  engagement labels of webcam frames (DAiSEE, engaged 2-3 vs not 0-1). There P(up) alone ranks
  engagement at chance (the head-state model never saw faces this large).
* In between, the log-odds are blended linearly in the face width, so the score has no step.

Every input is a run-time signal of the face stage, never the emotion model, so the score is the
same with and without ``--attention-only`` (docs/COMPLIANCE.md). A face without a head state (below
the head gate, or no head-state model) has no score (NaN): unmeasured, never inattentive. The
coefficients ship as package data (``fer_stream/models/weights/engagement.json``) with what they were
fitted to and measured on; docs/ATTENTION.md, "The attention score", says where the score is valid.
Pure numpy.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import numpy as np

# Inputs of the close-up model (:func:`features`).
FEATURES: tuple[str, ...] = (
    *("logit_up", "log_down_around", "log_phone_around"),
    *("abs_yaw", "pitch", "abs_roll"),
)
EPS = 1e-4  # probabilities are clipped to [EPS, 1 - EPS] before logs: a saturated softmax stays finite
POSE_UNIT_DEG = 30.0
WEIGHTS_FILE = "engagement.json"


def features(head_probs: np.ndarray, yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """The close-up model's inputs, :data:`FEATURES` order.

    * ``logit_up``: logit of P(up);
    * ``log_down_around``, ``log_phone_around``: how the rest of the head-state probability splits
      (log ratios: unchanged when only P(up) changes and the rest keeps its proportions);
    * ``abs_yaw``, ``pitch``, ``abs_roll``: head pose in units of 30 degrees; NaN where not readable
      (:meth:`EngagementModel.logit` then uses the training mean: no evidence either way).

    Args:
        head_probs: ``(N, 4)`` head-state probabilities in ``HEAD_STATES`` order (up, down, around,
            phone); NaN rows where the head state was not read.
        yaw, pitch, roll: ``(N,)`` degrees (``fer_stream.attention``), NaN where not readable.

    Returns:
        ``(N, F) float64``.
    """
    p = np.clip(np.asarray(head_probs, np.float64).reshape(-1, 4), EPS, 1 - EPS)
    yaw, pitch, roll = (np.asarray(a, np.float64).reshape(-1) for a in (yaw, pitch, roll))
    if not len(p) == len(yaw) == len(pitch) == len(roll):
        raise ValueError(f"head_probs {p.shape} and pose ({len(yaw)}, {len(pitch)}, {len(roll)}) differ")
    return np.stack(
        [
            np.log(p[:, 0] / (1 - p[:, 0])),
            np.log(p[:, 1] / p[:, 2]),
            np.log(p[:, 3] / p[:, 2]),
            np.abs(yaw) / POSE_UNIT_DEG,
            pitch / POSE_UNIT_DEG,
            np.abs(roll) / POSE_UNIT_DEG,
        ],
        1,
    )


@dataclass(frozen=True, eq=False)  # numpy fields: compare to_dict() instead
class EngagementModel:
    """The attention score's coefficients and what they were fitted to.

    Attributes:
        features: names, :data:`FEATURES` (checked on load).
        mean, scale: per-feature standardisation of the close-up model, ``(x - mean) / scale``.
        coef, intercept: its logistic weights on the standardised features.
        blend_px: ``(from, to)`` face widths (px): P(up) alone up to ``from``, the close-up model
            alone from ``to``, log-odds blended linearly in between.
        version: a short name carried into the configuration hash of every record.
        meta: training data, licences, metrics (free-form JSON).
    """

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    blend_px: tuple[float, float]
    version: str
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        if tuple(self.features) != FEATURES:
            raise ValueError(f"engagement weights for features {self.features}, expected {FEATURES}")
        for name in ("mean", "scale", "coef"):
            a = np.asarray(getattr(self, name), np.float64)
            if a.shape != (len(FEATURES),) or not np.isfinite(a).all():
                raise ValueError(f"engagement {name} must be {len(FEATURES)} finite numbers, got {a}")
            object.__setattr__(self, name, a)
        if not (self.scale > 0).all():
            raise ValueError("engagement scale must be > 0")
        if not self.coef[0] > 0:
            raise ValueError("engagement coefficient of logit_up must be > 0 (the score rises with P(up))")
        lo, hi = (float(v) for v in self.blend_px)
        if not 0 <= lo < hi:
            raise ValueError(f"engagement blend_px must be 0 <= from < to, got {self.blend_px}")
        object.__setattr__(self, "blend_px", (lo, hi))

    @classmethod
    def from_dict(cls, d: dict) -> EngagementModel:
        return cls(
            features=tuple(d["features"]),
            mean=np.asarray(d["mean"]),
            scale=np.asarray(d["scale"]),
            coef=np.asarray(d["coef"]),
            intercept=float(d["intercept"]),
            blend_px=tuple(d["blend_px"]),
            version=str(d["version"]),
            meta=dict(d.get("meta", {})),
        )

    def to_dict(self) -> dict:
        return {
            "features": list(self.features),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
            "blend_px": list(self.blend_px),
            "version": self.version,
            "meta": self.meta,
        }

    def closeup_logit(self, x: np.ndarray) -> np.ndarray:
        """``(N, F)`` features -> ``(N,)`` log-odds of the close-up model; a NaN feature (pose not
        readable) counts as the training mean."""
        z = (np.asarray(x, np.float64) - self.mean) / self.scale
        return np.nan_to_num(z, nan=0.0) @ self.coef + self.intercept

    def closeup_weight(self, face_px: np.ndarray) -> np.ndarray:
        """``(N,)`` share of the close-up model in the log-odds: 0 up to ``blend_px[0]``, 1 from
        ``blend_px[1]``, linear in between."""
        lo, hi = self.blend_px
        return np.clip((np.asarray(face_px, np.float64) - lo) / (hi - lo), 0.0, 1.0)

    def score(
        self,
        head_probs: np.ndarray,
        yaw: np.ndarray,
        pitch: np.ndarray,
        roll: np.ndarray,
        face_px: np.ndarray,
    ) -> np.ndarray:
        """``(N,) float32`` attention scores in [0, 1]; NaN where the head state was not read.

        Arguments as :func:`features`, plus ``face_px (N,)`` the face box widths (pixels). On faces
        up to ``blend_px[0]`` wide the score is P(up) (clipped to [EPS, 1 - EPS]). ``score >= 0.5`` is
        the ``attentive`` flag (``fer_stream.attention.ATTENTIVE_SCORE``): docs/ATTENTION.md says what
        0.5 means in each range.
        """
        x = features(head_probs, yaw, pitch, roll)
        lam = self.closeup_weight(np.asarray(face_px, np.float64).reshape(-1))
        if len(lam) != len(x):
            raise ValueError(f"face_px has {len(lam)} values for {len(x)} faces")
        z = (1 - lam) * x[:, 0] + lam * self.closeup_logit(x)
        z = np.where(np.isfinite(x[:, 0]), z, np.nan)  # no head state: no score
        with np.errstate(over="ignore"):
            return (1 / (1 + np.exp(-z))).astype(np.float32)


@cache
def shipped_bytes() -> bytes:
    """The shipped coefficients file (package data)."""
    return resources.files("fer_stream.models").joinpath("weights", WEIGHTS_FILE).read_bytes()


@cache
def load() -> EngagementModel:
    """The shipped model (``fer_stream/models/weights/engagement.json``)."""
    return EngagementModel.from_dict(json.loads(shipped_bytes()))


def fingerprint() -> dict[str, str]:
    """``{"version", "sha256"}`` of the shipped coefficients, for the configuration hash."""
    return {"version": load().version, "sha256": hashlib.sha256(shipped_bytes()).hexdigest()}


__all__ = ["FEATURES", "EngagementModel", "features", "fingerprint", "load"]
