"""One lecture video before classification: sampled frames -> faces with boxes, landmarks,
head pose, eye openness, attention, track ids, per-lecture student keys and aligned crops.

Plain library code (no Ray): ``pipeline.py`` runs these stages on workers. The stages are built
separately and composed (no god object)::

    stage = FaceStage(make_detector("mtcnn", min_face_px=20), LandmarkPredictor(), crop_size=48)
    tracker = FaceTracker()
    for ff in analyze_video("lecture.mp4", stage, tracker, sample_fps=2):
        ...                                    # ff.crops -> EmotionClassifier, ff.track_id ...
    keys = student_keys(tracker)               # {track_id: "s001", ...} for the whole lecture
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from fer_stream import attention as att
from fer_stream.faces.align import align_faces
from fer_stream.faces.detections import Detections
from fer_stream.faces.landmarks import LandmarkPredictor
from fer_stream.faces.track import FaceTracker, StudentConfig, assign_students
from fer_stream.video import DecodeStats, iter_frames


@dataclass(frozen=True)
class FrameFaces:
    """The N faces of one sampled frame, as parallel arrays.

    Attributes:
        frame_index: index of the frame in the stream (0-based).
        pts_s: seconds from the start of the stream.
        frame_wh: ``(width, height)`` of the upright frame in pixels.
        det: boxes ``(N,4)``, scores ``(N,)``, detector landmarks ``(N,5,2)``.
        landmarks68: ``(N, 68, 2) float32`` dlib points, image pixels.
        yaw, pitch, roll: ``(N,) float32`` degrees (conventions in ``fer_stream.attention``).
        ear: ``(N,) float32`` mean eye aspect ratio of both eyes.
        attention: ``(N,) float32`` score in [0, 1] (NaN: not measurable).
        attentive: ``(N,) bool``.
        crops: ``(N, S, S) uint8`` aligned gray faces for the classifier (S from its checkpoint).
        track_id: ``(N,) int64`` tracker ids (0 until tracked).
    """

    frame_index: int
    pts_s: float
    frame_wh: tuple[int, int]
    det: Detections
    landmarks68: np.ndarray
    yaw: np.ndarray
    pitch: np.ndarray
    roll: np.ndarray
    ear: np.ndarray
    attention: np.ndarray
    attentive: np.ndarray
    crops: np.ndarray
    track_id: np.ndarray

    def __len__(self) -> int:
        return len(self.det)


class FaceStage:
    """Stateful stage: models load in ``__init__``; ``__call__`` turns a batch of frames into faces.

    Args:
        detector: anything with ``detect_batch(list of RGB frames) -> list[Detections]``.
        landmarks: a :class:`LandmarkPredictor` (68 points).
        crop_size: side of the aligned crops: pass the classifier's ``input_size``.
        attention_cfg: thresholds of the attention score.
    """

    def __init__(
        self,
        detector,
        landmarks: LandmarkPredictor | None = None,
        crop_size: int = 48,
        attention_cfg: att.AttentionConfig | None = None,
    ):
        self.detector = detector
        self.landmarks = landmarks or LandmarkPredictor()
        self.crop_size = crop_size
        self.attention_cfg = attention_cfg or att.AttentionConfig()

    def __call__(self, frames: Sequence[tuple[int, float, np.ndarray]]) -> list[FrameFaces]:
        """``frames``: ``(frame_index, pts_s, RGB uint8 (H,W,3))`` of equal size."""
        if not frames:
            return []
        dets = self.detector.detect_batch([f[2] for f in frames])
        return [self._one(fi, pts, img, det) for (fi, pts, img), det in zip(frames, dets)]

    def _one(self, frame_index: int, pts_s: float, rgb: np.ndarray, det: Detections) -> FrameFaces:
        h, w = rgb.shape[:2]
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        lm68 = self.landmarks(gray, det.xyxy)
        sig = att.signals(lm68, (w, h), self.attention_cfg)
        crops = align_faces(gray, lm68, det.xyxy, size=self.crop_size)
        return FrameFaces(
            frame_index,
            float(pts_s),
            (w, h),
            det,
            lm68,
            sig["yaw"],
            sig["pitch"],
            sig["roll"],
            sig["ear"],
            sig["score"],
            sig["attentive"],
            crops,
            np.zeros(len(det), np.int64),
        )


def analyze_video(
    path,
    stage: FaceStage,
    tracker: FaceTracker | None = None,
    sample_fps: float = 2.0,
    start_s: float = 0.0,
    end_s: float | None = None,
    batch_frames: int = 4,
    stats: DecodeStats | None = None,
    decode_threads: int = 0,
    on_frame: Callable[[FrameFaces, np.ndarray], None] | None = None,
) -> Iterator[FrameFaces]:
    """Decode ``[start_s, end_s)`` at ``sample_fps``, find faces, track them; lazily, in constant memory.

    Frames go to the detector ``batch_frames`` at a time (MTCNN batches its networks over frames).
    Every sampled frame is yielded, with zero faces too, so absence stays visible.
    Video errors (``fer_stream.video.VideoError``) propagate; ``stats`` reports truncation.
    ``decode_threads``: FFmpeg decoder threads (0: one per core; 1 for many workers on one node).
    ``on_frame(ff, rgb)``: called with each tracked frame and its RGB image before it is yielded
    (for work that needs pixels, such as face descriptors); the image is not kept.
    """
    batch: list[tuple[int, float, np.ndarray]] = []

    def flush() -> Iterator[FrameFaces]:
        for ff, (_, _, image) in zip(stage(batch), batch):
            if tracker is not None:
                ff = dataclasses.replace(ff, track_id=tracker.update(ff.pts_s, ff.det))
            if on_frame is not None:
                on_frame(ff, image)
            yield ff
        batch.clear()

    for frame_index, pts_s, image in iter_frames(
        path, sample_fps, start_s, end_s, stats=stats, threads=decode_threads
    ):
        batch.append((frame_index, pts_s, image))
        if len(batch) >= batch_frames:
            yield from flush()
    if batch:
        yield from flush()


def student_keys(tracker: FaceTracker, config: StudentConfig | None = None) -> dict[int, str]:
    """Per-lecture student keys (``s001``, ...) for the tracker's tracks, merged by seat position.

    Tracks too short to be a student (stray detections) are absent from the mapping.
    """
    return assign_students(tracker.tracks, config=config)
