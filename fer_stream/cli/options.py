"""Command-line options of an analysis, shared by ``jobs/analyze_lectures.py`` and ``fer-stream
nightly`` so that both take the same flags with the same defaults. No ray import here: the CLI's
``--help`` stays fast."""

from __future__ import annotations

import argparse


def add_analysis_args(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """What to compute and how to spread it: the fields of ``config.PipelineConfig``, and Ray."""
    p.add_argument("--sample-fps", type=float, default=2.0, help="frames analysed per second of video")
    p.add_argument(
        "--detect-every-s",
        type=float,
        default=2.0,
        help="seconds between full face detections; frames between re-find known faces (0: every frame)",
    )
    p.add_argument("--min-face-px", type=float, default=20.0, help="smallest face searched for, pixels")
    p.add_argument("--weights", default="default", help="emotion model: built-in name or weights file")
    p.add_argument(
        "--identity",
        action="store_true",
        help="course-wide student ids from OUTPUT/identity/<course>/ (roster, else seat map, else "
        "pseudonyms); default: per-lecture keys. docs/PRIVACY.md says what this stores",
    )
    p.add_argument(
        "--identity-threshold", type=float, default=0.6, help="largest descriptor distance of one person"
    )
    p.add_argument("--batch-size", type=int, default=256, help="face crops per classifier call")
    p.add_argument("--segment-s", type=float, default=600.0, help="split longer videos into segments")
    p.add_argument(
        "--classifiers",
        type=int,
        default=None,
        help="classifier actors (default: 1 per GPU, else 1 per ~3 CPUs)",
    )
    p.add_argument("--address", default=None, help="Ray address; default: RAY_ADDRESS or embedded Ray")
    p.add_argument(
        "--num-cpus", type=int, default=None, help="logical CPUs of an embedded Ray (default: cores + 1)"
    )


def config_from_args(a: argparse.Namespace):
    """The ``config.PipelineConfig`` of parsed :func:`add_analysis_args` options."""
    from fer_stream.config import PipelineConfig

    identity = None
    if a.identity:
        from fer_stream.identity import IdentityConfig

        identity = IdentityConfig(threshold=a.identity_threshold)
    return PipelineConfig(
        sample_fps=a.sample_fps,
        weights=a.weights,
        detect_every_s=a.detect_every_s,
        min_face_px=a.min_face_px,
        identity=identity,
        batch_size=a.batch_size,
        segment_s=a.segment_s,
        classifiers=a.classifiers,
    )
