"""What an analysis computes: the configuration dataclass, its hash, and the emotion weights' facts.

Plain Python (no Ray): ``fer_stream.analyze`` (one video in this process), the Ray pipeline and
the command line all take a :class:`PipelineConfig`; the CLI builds its flags from these fields'
defaults (``fer_stream.cli.options``), so a default is written once, here.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import fer_stream
from fer_stream import engagement, records
from fer_stream.attention import AttentionConfig
from fer_stream.audio import SILERO_VERSION, SpeechConfig
from fer_stream.faces.liveness import StillnessConfig
from fer_stream.faces.track import StudentConfig, TrackerConfig
from fer_stream.labels import FER2013_LABELS, canonical
from fer_stream.validity import Gates

PIPELINE_VERSION = fer_stream.__version__


class Signal(enum.StrEnum):
    """What an analysis infers about the people in a video (docs/COMPLIANCE.md: the law of each).

    ``attention``: presence and head state (up / down / around / phone), the head-up rate and the
    attention score, from face boxes, head pose and eyes. ``emotion``: the expression model's 7
    probabilities and label. ``identity``: face descriptors matched to enrolled students or seats
    (biometric data). ``speech``: when someone in the room is speaking, from the audio track (a voice
    activity detector, ``fer_stream.audio``); no words, voices or sound are kept.
    """

    ATTENTION = "attention"
    EMOTION = "emotion"
    IDENTITY = "identity"
    SPEECH = "speech"


# The product's default: what it inferred before signals could be chosen (identity stays opt-in).
DEFAULT_SIGNALS: frozenset[Signal] = frozenset({Signal.ATTENTION, Signal.EMOTION, Signal.SPEECH})
# Side of the aligned crops when no emotion model sets it (picture detection reads their motion;
# its thresholds were measured on the default model's 48 px crops, docs/VALIDITY.md).
CROP_SIZE_WITHOUT_EMOTION = 48


def parse_signals(text: str) -> frozenset[Signal]:
    """``"attention,emotion"`` -> the set of :class:`Signal`; ``ValueError`` names an unknown one."""
    names = [x.strip().lower() for x in text.split(",") if x.strip()]
    unknown = [x for x in names if x not in Signal._value2member_map_]
    if unknown or not names:
        raise ValueError(f"--signals: unknown {unknown or 'empty list'}; choose from {', '.join(Signal)}")
    return frozenset(Signal(x) for x in names)


def describe_signals(signals: frozenset[Signal]) -> str:
    """One line for people: what will be inferred and what will not (``check``, run start, reports)."""
    on = [s.value for s in Signal if s in signals]
    off = [s.value for s in Signal if s not in signals]
    return f"signals inferred: {', '.join(on)}" + (f" (not inferred: {', '.join(off)})" if off else "")


@dataclass(frozen=True)
class IdentityConfig:
    """Matching threshold and which frames are good enough to describe a face.

    Attributes:
        threshold: largest Euclidean distance between descriptors of one person (dlib: 0.6).
        max_per_track: descriptors kept per track: bounds the cost (per face: docs/PRIVACY.md,
            ``bench/identity.py``) whatever the lecture's length.
        min_gap_s: seconds between the first two descriptors of a track; the gap doubles after each
            one (1, 2, 4, 8 s...), so a long track is sampled over minutes, a short one still gets some.
        min_face_px: smallest box width described, pixels (dlib resamples the face to 150 px).
        max_abs_yaw, max_abs_pitch: head pose limits, degrees (frontal faces match best).
        min_sharpness: smallest variance of the Laplacian of the face resized to 64x64 gray
            (motion blur, defocus); sharp photo faces score several hundred.
        num_jitters: dlib's random re-crops averaged per descriptor (0: one pass, the cheapest).
        min_seen: a track is described from its ``min_seen``-th frame on: a track seen once is
            mostly a false detection, which never becomes a student.
    """

    threshold: float = 0.6
    max_per_track: int = 5
    min_gap_s: float = 1.0
    min_face_px: float = 40.0
    max_abs_yaw: float = 30.0
    max_abs_pitch: float = 30.0
    min_sharpness: float = 20.0
    num_jitters: int = 0
    min_seen: int = 2

    def __post_init__(self):
        if not self.threshold > 0 or self.max_per_track < 1 or self.min_gap_s < 0 or self.num_jitters < 0:
            raise ValueError("need threshold > 0, max_per_track >= 1, min_gap_s >= 0, num_jitters >= 0")
        if self.min_seen < 1:
            raise ValueError("min_seen must be >= 1")


@dataclass(frozen=True)
class PipelineConfig:
    """What to compute (hashed into ``config_hash``) and how to spread it (not hashed).

    Attributes:
        sample_fps: frames analysed per second of video.
        weights: emotion model, a built-in name (``default``) or a weights file path.
        detector, min_face_px: face detector (``fer_stream.faces.detect.make_detector``) and the
            smallest face it looks for, pixels.
        detect_every_s: seconds between full detections; the sampled frames between re-find the
            faces near the previous ones (``FaceStage(detect_every=...)``; cost: docs/BENCHMARKS.md).
            0: full detection on every sampled frame (needed for the ``hog`` detector).
        tracker, students, attention: parameters of tracking, student keys and attention.
        gates: smallest face widths at which emotion, head pose and eyes are reported
            (``fer_stream.validity``; derived from measured curves, docs/VALIDITY.md).
        batch_size: crops per classifier call.
        batches_in_flight: classifier calls a segment may have outstanding; bounds memory.
        segment_s: videos longer than this are cut into segments of about this many seconds,
            analysed in parallel.
        classifiers: classifier actors; ``None``: one per GPU, or without GPUs one CPU actor per
            ~3 CPUs (``CPU_CLASSIFIER_SHARE``; 1 on a 2-core machine).
        classifier_cpus: CPUs of each CPU classifier actor (its torch threads).
        backend: CPU inference of the networks: ``auto`` (ONNX Runtime when installed), ``onnx`` or
            ``torch`` (``fer_stream.models.onnx``). Not hashed: both give the same records within
            the tolerance the tests state (probabilities 1e-4, boxes 0.5 px).
        identity: ``None`` (default): ``student_id`` is the per-lecture ``<video_id[:8]>-s001``. An
            ``IdentityConfig``: up to ``max_per_track`` face descriptors per track are computed, and
            student keys get course-wide ids from ``OUTPUT/identity/<course>/`` (roster, else seat
            map, else pseudonyms; ``fer_stream.identity``). Descriptors stay in that store.
        signals: what is inferred (:class:`Signal`; docs/COMPLIANCE.md). ``attention`` is always on
            (presence and head state are what every record is about). Without ``emotion`` the
            emotion model is never read or run: the ``p_*``, ``emotion`` and ``model_version``
            columns are null and ``emotion_readable`` false. ``identity`` and ``identity`` above
            go together: either one turns the other on (``IdentityConfig()`` defaults). Without
            ``speech`` the audio is never decoded: ``videos.speech`` is ``off``, no speech/ rows.
        speech: how the detector's probabilities become speech segments (``audio.SpeechConfig``).
    """

    sample_fps: float = 2.0
    weights: str = "default"
    # CenterFace: on real CCTV classroom frames it finds 0.84-0.86 of the heads (bowed ones 0.76-0.80)
    # where MTCNN finds 0.44 (0.27), docs/BENCHMARKS.md "Classroom face detectors". 12 px: below it
    # its boxes there were false detections only (and the head-state gate is 12 px).
    detector: str = "centerface"
    min_face_px: float = 12.0
    detect_every_s: float = 2.0
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    students: StudentConfig = field(default_factory=StudentConfig)
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    gates: Gates = field(default_factory=Gates)
    # Head state per face (fer_stream.head_state; docs/ATTENTION.md): the attention score becomes
    # P(up), which ranks "facing the front" on real classroom frames with AUC 0.92 where head pose
    # ranked it at chance. None: no head state, attention from head pose (faces >= pose gate).
    head_state: str | None = "default"
    # When a track is a picture, not a person (fer_stream.faces.liveness; docs/VALIDITY.md).
    stillness: StillnessConfig = field(default_factory=StillnessConfig)
    batch_size: int = 256
    batches_in_flight: int = 2
    segment_s: float = 600.0
    classifiers: int | None = None
    classifier_cpus: float = 1.0
    backend: str = "auto"
    identity: IdentityConfig | None = None
    signals: frozenset[Signal] = DEFAULT_SIGNALS
    speech: SpeechConfig = field(default_factory=SpeechConfig)

    def __post_init__(self):
        signals = frozenset(Signal(s) for s in self.signals)  # also accepts plain strings
        if Signal.ATTENTION not in signals:
            raise ValueError(
                "signals must include attention (presence and head state are every record's base)"
            )
        if self.identity is not None:
            signals |= {Signal.IDENTITY}
        elif Signal.IDENTITY in signals:
            object.__setattr__(self, "identity", IdentityConfig())
        object.__setattr__(self, "signals", signals)
        if not self.sample_fps > 0 or not self.segment_s > 0:
            raise ValueError("sample_fps and segment_s must be > 0")
        if self.batch_size < 1 or self.batches_in_flight < 1:
            raise ValueError("batch_size and batches_in_flight must be >= 1")
        if self.classifiers is not None and self.classifiers < 1:
            raise ValueError("classifiers must be >= 1 (or None for automatic)")
        if not self.classifier_cpus > 0:
            raise ValueError("classifier_cpus must be > 0")
        if self.backend not in ("auto", "onnx", "torch"):
            raise ValueError(f"backend must be auto, onnx or torch, got {self.backend!r}")
        if not self.detect_every_s >= 0:
            raise ValueError("detect_every_s must be >= 0")
        if self.identity is not None:
            if not isinstance(self.identity, IdentityConfig):
                raise TypeError(f"identity must be an IdentityConfig, not {type(self.identity).__name__}")

    @property
    def emotion(self) -> bool:
        """Whether the emotion model runs (``Signal.EMOTION`` in :attr:`signals`)."""
        return Signal.EMOTION in self.signals

    @property
    def hears(self) -> bool:
        """Whether the audio is analysed for speech (``Signal.SPEECH`` in :attr:`signals`)."""
        return Signal.SPEECH in self.signals

    @property
    def detect_every(self) -> int:
        """Sampled frames per full detection (1: every frame)."""
        return max(1, round(self.detect_every_s * self.sample_fps))

    def analysis(self, model: ModelInfo | None) -> dict:
        """Everything that changes the records, as plain JSON-able data (hashed into config_hash).

        ``model``: the emotion weights; ``None`` exactly when emotion is not inferred.
        """
        if (model is None) == self.emotion:
            raise ValueError("analysis: pass the emotion model exactly when emotion is inferred")
        return (
            {
                "schema_version": records.SCHEMA_VERSION,
                "signals": sorted(s.value for s in self.signals),
                "sample_fps": self.sample_fps,
                "detector": self.detector,
                "min_face_px": self.min_face_px,
                "detect_every": self.detect_every,
                "crop_size": model.input_size if model is not None else CROP_SIZE_WITHOUT_EMOTION,
                "model_version": model.version if model is not None else None,
                "weights_sha256": model.sha256 if model is not None else None,
                "tracker": dataclasses.asdict(self.tracker),
                "students": dataclasses.asdict(self.students),
                "attention": dataclasses.asdict(self.attention),
                "gates": dataclasses.asdict(self.gates),
                "head_state": self.head_state,
                "head_state_sha256": _weights_sha256(self.head_state),
                # the attention score's coefficients (fer_stream.engagement): refitted ones re-analyse
                "attention_score": engagement.fingerprint() if self.head_state is not None else None,
                "stillness": dataclasses.asdict(self.stillness),
            }
            | ({"identity": dataclasses.asdict(self.identity)} if self.identity is not None else {})
            | (
                {"speech": dataclasses.asdict(self.speech), "vad": f"silero-vad {SILERO_VERSION}"}
                if self.hears
                else {}
            )
        )


def _weights_sha256(name_or_path: str | None) -> str | None:
    """sha256 of the head-state weights (a built-in name or a path): retrained weights re-analyse."""
    if name_or_path is None:
        return None
    from fer_stream.models.headnet import BUILTIN, builtin_path  # torch: only when hashing

    path = builtin_path(name_or_path) if name_or_path in BUILTIN else Path(name_or_path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def config_hash(analysis: dict) -> str:
    """16 hex digits of the sha256 of the canonical JSON of :meth:`PipelineConfig.analysis`."""
    return hashlib.sha256(json.dumps(analysis, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ModelInfo:
    """The emotion weights, read once by the driver and shipped to every classifier actor."""

    blob: bytes = field(repr=False)
    version: str
    labels: tuple[str, ...]
    input_size: int
    sha256: str

    @classmethod
    def load(cls, name_or_path: str) -> ModelInfo:
        """Read and check a weights file; raises ``WeightsError`` or ``ValueError`` (wrong labels)."""
        from fer_stream.models import checkpoint  # torch: only when weights are read (--help stays fast)

        w = checkpoint.load(name_or_path)  # validates the file
        path = checkpoint.builtin_path(name_or_path) if name_or_path in checkpoint.BUILTIN else name_or_path
        blob = Path(path).read_bytes()
        labels = tuple(canonical(x) for x in w.labels)
        if sorted(labels) != sorted(FER2013_LABELS):
            raise ValueError(
                f"weights {name_or_path} predict {labels}; the records need FER2013's {FER2013_LABELS}"
            )
        return cls(blob, w.version, labels, int(w.meta["input_size"]), hashlib.sha256(blob).hexdigest())

    @classmethod
    def of(cls, config: PipelineConfig) -> ModelInfo | None:
        """The emotion weights of ``config``, or ``None`` when it infers no emotion (nothing is read)."""
        return cls.load(config.weights) if config.emotion else None
