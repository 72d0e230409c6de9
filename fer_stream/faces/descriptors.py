"""Face descriptors: dlib's 128-d embedding of a face, and a few good ones per track of a lecture::

    tracked frames --DescriptorCollector (on_frame hook)--> <= K descriptors per track

Descriptors are dlib's 128-d face embeddings (ResNet ``dlib_face_recognition_resnet_model_v1``,
shipped in ``face_recognition_models``): two faces of one person are usually within Euclidean
distance 0.6 (dlib's documented threshold; accuracy: docs/PRIVACY.md).

Maths only, no files and no identities: matching descriptors to students is
``fer_stream.identity.matching``, keeping them is ``fer_stream.identity.store``.
"""

from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from fer_stream.faces.landmarks import model_path

if TYPE_CHECKING:
    from fer_stream.config import IdentityConfig

DESCRIPTOR_MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"
DIM = 128  # descriptor length


def descriptor_model_path() -> Path:
    """Path of dlib's face descriptor ResNet, beside the 68-point model in ``face_recognition_models``."""
    path = model_path("68").parent / DESCRIPTOR_MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"face descriptor model missing: {path} (reinstall face_recognition_models)")
    return path


class FaceDescriptor:
    """dlib's 128-d face descriptor of faces given by box and 68 landmarks (a stateful stage).

    dlib aligns each face from its landmarks to a 150x150 chip (25% padding) and runs its ResNet;
    all faces of an image go through one batched call.

    Args:
        num_jitters: random re-crops averaged per face (0 or 1: a single pass).
    """

    def __init__(self, num_jitters: int = 0):
        import dlib  # here, so that importing this module does not need dlib

        self._dlib = dlib
        self.num_jitters = int(num_jitters)
        self._net = dlib.face_recognition_model_v1(str(descriptor_model_path()))

    def __call__(self, image_rgb: np.ndarray, boxes: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
        """Descriptors of every face.

        Args:
            image_rgb: ``(H, W, 3) uint8`` RGB image.
            boxes: ``(N, 4)`` x1, y1, x2, y2 pixels.
            landmarks68: ``(N, 68, 2)`` (x, y) pixels, iBUG order (``LandmarkPredictor``).

        Returns:
            ``(N, 128) float32``; a row is NaN where the box or a landmark is not finite.
        """
        image = np.asarray(image_rgb)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {image.dtype} {image.shape}")
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        lm = np.asarray(landmarks68, np.float64).reshape(-1, 68, 2)
        if len(lm) != len(boxes):
            raise ValueError(f"{len(boxes)} boxes but {len(lm)} landmark sets")
        out = np.full((len(boxes), DIM), np.nan, np.float32)
        ok = np.isfinite(boxes).all(1) & np.isfinite(lm).all((1, 2))
        if not ok.any():
            return out
        d = self._dlib
        shapes = d.full_object_detections()
        for b, pts in zip(np.round(boxes[ok]).astype(int), np.round(lm[ok]).astype(int)):
            rect = d.rectangle(*(int(v) for v in b))
            shapes.append(d.full_object_detection(rect, [d.point(int(x), int(y)) for x, y in pts]))
        vecs = self._net.compute_face_descriptor(np.ascontiguousarray(image), shapes, self.num_jitters)
        out[ok] = np.asarray([np.asarray(v) for v in vecs], np.float32)
        return out


@lru_cache(maxsize=2)
def shared_descriptor(num_jitters: int = 0) -> FaceDescriptor:
    """One :class:`FaceDescriptor` per process (Ray reuses worker processes; the model loads once)."""
    return FaceDescriptor(num_jitters)


def sharpness(gray_face: np.ndarray) -> float:
    """Variance of the Laplacian of a gray face resized to 64x64 (higher: sharper)."""
    if gray_face.size == 0:
        return 0.0
    face = cv2.resize(gray_face, (64, 64), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(face, cv2.CV_32F).var())


class DescriptorCollector:
    """The ``on_frame(ff, rgb)`` hook of ``analyze_video``: a few good descriptors per track.

    A face is described only if its track still needs one now (fewer than ``max_per_track``, and
    the doubling gap since its last one has passed) and the face is good: frontal, wide enough,
    sharp. Cheap tests (pose, size, time) come first, the sharpness of the few left next, and the
    descriptor network runs once per frame on the faces that pass, so a frame whose tracks are all
    full costs a few array comparisons.

    Args:
        describe: ``(rgb, boxes, landmarks68) -> (N, 128)``, e.g. :class:`FaceDescriptor`.
        config: see :class:`fer_stream.config.IdentityConfig` (its defaults if ``None``).
    """

    def __init__(self, describe, config: IdentityConfig | None = None):
        if config is None:
            # imported here: fer_stream.config sits above the stages (it imports faces.track)
            from fer_stream.config import IdentityConfig

            config = IdentityConfig()
        self.describe = describe
        self.config = config
        self._desc: dict[int, list[np.ndarray]] = {}
        self._last: dict[int, float] = {}  # pts_s of the track's last descriptor
        self._seen: dict[int, int] = {}  # frames each track was in, up to min_seen
        self.frames = 0
        self.described = 0  # faces sent to the network
        self.seconds = 0.0  # time spent in this hook (overhead of identity)

    def __call__(self, ff, rgb: np.ndarray) -> None:
        t0 = time.perf_counter()
        self.frames += 1
        cfg = self.config
        n = len(ff.track_id)
        if n == 0:
            self.seconds += time.perf_counter() - t0
            return
        xyxy = np.asarray(ff.det.xyxy, np.float64)
        with np.errstate(invalid="ignore"):
            good = (
                (xyxy[:, 2] - xyxy[:, 0] >= cfg.min_face_px)
                & (np.abs(ff.yaw) <= cfg.max_abs_yaw)
                & (np.abs(ff.pitch) <= cfg.max_abs_pitch)
                & np.isfinite(ff.landmarks68).all((1, 2))
            )
        for tid in ff.track_id.tolist():
            if self._seen.get(tid, 0) < cfg.min_seen:
                self._seen[tid] = self._seen.get(tid, 0) + 1
        picks = []
        for i in np.flatnonzero(good):
            tid = int(ff.track_id[i])
            if self._seen[tid] < cfg.min_seen:
                continue
            k = len(self._desc.get(tid, ()))
            if k >= cfg.max_per_track:
                continue
            if k and ff.pts_s - self._last[tid] < cfg.min_gap_s * 2 ** (k - 1):
                continue
            h, w = rgb.shape[:2]
            x1, y1, x2, y2 = np.clip(np.round(xyxy[i]).astype(int), 0, [w, h, w, h])
            gray = cv2.cvtColor(np.ascontiguousarray(rgb[y1:y2, x1:x2]), cv2.COLOR_RGB2GRAY)
            if sharpness(gray) >= cfg.min_sharpness:
                picks.append(i)
        if picks:
            vecs = self.describe(rgb, xyxy[picks], ff.landmarks68[picks])
            self.described += len(picks)
            for i, v in zip(picks, vecs):
                if np.isfinite(v).all():
                    tid = int(ff.track_id[i])
                    self._desc.setdefault(tid, []).append(np.asarray(v, np.float32))
                    self._last[tid] = float(ff.pts_s)
        self.seconds += time.perf_counter() - t0

    def descriptors(self) -> dict[int, np.ndarray]:
        """``{track_id: (k, 128) float32}``, 1 <= k <= ``max_per_track``; tracks with none are absent."""
        return {t: np.stack(v) for t, v in self._desc.items()}
