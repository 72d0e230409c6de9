"""The face stage: sampled frames -> faces with boxes, landmarks, head pose, eye openness,
attention, track ids and aligned crops; per-lecture student keys from the tracks.

Plain library code (no Ray). The stages are built separately and composed (no god object)::

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
from typing import TYPE_CHECKING

import cv2
import numpy as np

from fer_stream import attention as att
from fer_stream import engagement
from fer_stream.faces.align import align_faces
from fer_stream.faces.detections import Detections
from fer_stream.faces.landmarks import LandmarkPredictor, five_from_68
from fer_stream.faces.track import FaceTracker, StudentConfig, assign_students
from fer_stream.head_state import HEAD_STATES
from fer_stream.lecture.columns import nullable_flag
from fer_stream.validity import Gates, face_px, readable, turned_to_camera
from fer_stream.video import DecodeStats, iter_frames

if TYPE_CHECKING:
    from fer_stream.config import PipelineConfig


@dataclass(frozen=True, kw_only=True)
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
        attentive: ``(N,) object``: True (attention >= 0.5), False, or None where ``attention`` is NaN
            (a flag is null wherever the value it derives from is: unmeasured is not inattentive).
        crops: ``(N, S, S) uint8`` aligned gray faces for the classifier (S from its checkpoint).
        track_id: ``(N,) int64`` tracker ids (0 until tracked).
        face_px: ``(N,) float32`` box width, pixels: the size the readability gates compare.
        emotion_readable, pose_readable, eyes_readable, head_readable: ``(N,) bool`` which signals
            the face is big enough to read (``fer_stream.validity``); unreadable ones are NaN/None.
        head_state: ``(N,) object`` ``up``/``down``/``around``/``phone`` (``fer_stream.head_state``), None
            where not read (below the head gate, or no head-state model in the stage).
        head_probs: ``(N, 4) float32`` the head-state probabilities (``HEAD_STATES`` order); NaN rows
            where not read.
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
    face_px: np.ndarray
    emotion_readable: np.ndarray
    pose_readable: np.ndarray
    eyes_readable: np.ndarray
    head_readable: np.ndarray
    head_state: np.ndarray
    head_probs: np.ndarray

    def __len__(self) -> int:
        return len(self.det)


class FaceStage:
    """Stateful stage: models load in ``__init__``; ``__call__`` turns a batch of frames into faces.

    Args:
        detector: anything with ``detect_batch(list of RGB frames) -> list[Detections]``.
        landmarks: a :class:`LandmarkPredictor` (68 points).
        crop_size: side of the aligned crops: pass the classifier's ``input_size``.
        attention_cfg: thresholds of the attention score.
        detect_every: run the full detector on one sampled frame in this many; on the others,
            re-find the faces near those of the previous frame and of the last full detection
            (``detector.refine``: MTCNN's R- and O-Net on a few windows per face, far cheaper than
            its pyramid). Classroom cameras are fixed and students mostly stay in their seats, so
            this loses little: a face that turns away is dropped at once as in a full detection, and
            a face that appears (or comes back after longer than one frame) is found at the next full
            detection, at most ``detect_every - 1`` sampled frames late. ``bench/keyframes.py``
            measures the agreement. 1: full detection on every frame, batched over frames.
            Consecutive calls are consecutive frames of one stream: :meth:`reset` between streams.
        gates: smallest face sizes at which emotion, pose and eyes are read (``validity.Gates``).
        landmarks_min_px: faces at least this wide get 68-point landmarks even below the eyes gate
            (identity descriptors need them; default: only faces whose eyes are read).
        head_state: a head-state model (``fer_stream.head_state.HeadStateClassifier``: ``predict(rgb,
            face_xyxy) -> (N, 4)``) or None. With one, a face at least ``gates.head_min_px`` wide gets
            a head state, and its attention score is ``fer_stream.engagement`` over head state, pose and
            size (docs/ATTENTION.md); without, attention is the head-pose score of faces at least
            ``gates.pose_min_px`` wide.
    """

    def __init__(
        self,
        detector,
        landmarks: LandmarkPredictor | None = None,
        crop_size: int = 48,
        attention_cfg: att.AttentionConfig | None = None,
        detect_every: int = 1,
        gates: Gates | None = None,
        landmarks_min_px: float = float("inf"),
        head_state=None,
    ):
        if detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {detect_every}")
        if detect_every > 1 and not hasattr(detector, "refine"):
            raise ValueError(f"{type(detector).__name__} cannot refine boxes: use detect_every=1")
        self.detector = detector
        self.landmarks = landmarks or LandmarkPredictor()
        self.crop_size = crop_size
        self.attention_cfg = attention_cfg or att.AttentionConfig()
        self.detect_every = int(detect_every)
        self.gates = gates or Gates()
        self.landmarks_min_px = float(landmarks_min_px)
        self.head_state = head_state
        self.reset()

    def reset(self) -> None:
        """Forget earlier frames' faces: the next frame gets a full detection."""
        self._since_full: int | None = None  # frames since the last full detection
        self._key_boxes = self._prev_boxes = np.zeros((0, 4))

    def __call__(self, frames: Sequence[tuple[int, float, np.ndarray]]) -> list[FrameFaces]:
        """``frames``: ``(frame_index, pts_s, RGB uint8 (H,W,3))`` of equal size, in stream order."""
        if not frames:
            return []
        dets = self._detect([f[2] for f in frames])
        return [self._one(fi, pts, img, det) for (fi, pts, img), det in zip(frames, dets)]

    def _detect(self, images: list[np.ndarray]) -> list[Detections]:
        if self.detect_every == 1:
            return self.detector.detect_batch(images)
        out = []
        for image in images:
            if self._since_full is None or self._since_full >= self.detect_every - 1:
                det = self.detector.detect(image)
                self._key_boxes, self._since_full = det.xyxy, 0
            else:
                seeds = np.concatenate([self._prev_boxes, self._key_boxes])
                det = self.detector.refine(image, seeds)
                self._since_full += 1
            self._prev_boxes = det.xyxy
            out.append(det)
        return out

    def _one(self, frame_index: int, pts_s: float, rgb: np.ndarray, det: Detections) -> FrameFaces:
        h, w = rgb.shape[:2]
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)  # the one conversion: landmarks and crops share it
        px = face_px(det.xyxy)
        ok = readable(px, self.gates)
        five = np.asarray(det.landmarks, np.float64)
        # The 68-point model runs only where its output is read: faces big enough for head pose
        # (the pose gate), faces described for identity, and faces without the detector's 5 points
        # (HOG: alignment needs landmarks). Smaller faces are aligned on MTCNN's 5 points (the same
        # crop geometry: align_faces reduces 68 points to these 5 anyway) and stay "unmeasured".
        # Head pose from the 5 points alone was measured and is not used: its pitch disagrees with
        # the 68-point pitch by more than the pose rule allows at every size (docs/VALIDITY.md).
        need68 = ok["pose"] | (px >= self.landmarks_min_px) | ~np.isfinite(five).all((1, 2))
        lm68 = np.full((len(det), 68, 2), np.nan, np.float32)
        if need68.any():
            lm68[need68] = self.landmarks(gray, det.xyxy[need68])
        sig = att.signals(
            lm68, (w, h), self.attention_cfg, pose_readable=ok["pose"], eyes_readable=ok["eyes"]
        )
        attention = sig["score"]
        head_ok = ok["head"] & (self.head_state is not None)
        head_probs = np.full((len(det), 4), np.nan, np.float32)
        head_state = np.full(len(det), None, object)
        if head_ok.any():
            head_probs[head_ok] = self.head_state.predict(rgb, det.xyxy[head_ok])
            head_state[head_ok] = np.asarray(HEAD_STATES, object)[head_probs[head_ok].argmax(1)]
        if self.head_state is not None:
            # The measured score (docs/ATTENTION.md "The attention score"): P(up) on classroom-sized
            # faces, a head-pose model fitted to human engagement labels on close-up ones; NaN where
            # no head state was read.
            attention = engagement.load().score(head_probs, sig["yaw"], sig["pitch"], sig["roll"], px)
        align_pts = np.where(need68[:, None, None], five_from_68(lm68), five) if len(det) else five
        crops = align_faces(gray, align_pts, det.xyxy, size=self.crop_size)
        return FrameFaces(
            frame_index=frame_index,
            pts_s=float(pts_s),
            frame_wh=(w, h),
            det=det,
            landmarks68=lm68,
            yaw=sig["yaw"],
            pitch=sig["pitch"],
            roll=sig["roll"],
            ear=sig["ear"],
            attention=attention,
            attentive=nullable_flag(attention >= att.ATTENTIVE_SCORE, attention),
            crops=crops,
            track_id=np.zeros(len(det), np.int64),
            face_px=px,
            # An expression is read only from a face big enough and measured turned to the camera:
            # a bowed or turned head has no emotion (docs/VALIDITY.md, "Orientation").
            emotion_readable=ok["emotion"]
            & turned_to_camera(sig["yaw"], sig["pitch"], head_state, self.gates),
            pose_readable=ok["pose"],
            eyes_readable=ok["eyes"],
            head_readable=head_ok,
            head_state=head_state,
            head_probs=head_probs,
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
    stage.reset()  # a new stream: no faces carried over from another video or segment

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


def make_face_stage(config: PipelineConfig, crop_size: int) -> FaceStage:
    """The :class:`FaceStage` of an analysis configuration.

    Args:
        config: detector, smallest face, attention thresholds, keyframe interval and gates; with
            identity on, every face at least ``config.identity.min_face_px`` wide gets 68 points
            (its descriptor needs them).
        crop_size: side of the aligned crops: the classifier's ``input_size``.
    """
    from fer_stream.faces.detect import make_detector

    per_detector: dict[str, dict[str, object]] = {
        "mtcnn": {"min_face_px": config.min_face_px, "backend": config.backend},
        "centerface": {"min_face_px": config.min_face_px},
    }
    head = None
    if config.head_state is not None:
        from fer_stream.head_state import HeadStateClassifier

        head = HeadStateClassifier(config.head_state)  # threads: the process's (Ray: the task's CPUs)
    return FaceStage(
        make_detector(config.detector, **per_detector.get(config.detector, {})),
        head_state=head,
        crop_size=crop_size,
        attention_cfg=config.attention,
        detect_every=config.detect_every,
        gates=config.gates,
        landmarks_min_px=config.identity.min_face_px if config.identity is not None else float("inf"),
    )
