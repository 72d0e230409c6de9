"""`fer-stream check VIDEO...`: what this camera can give, before a school commits.

The face path of the analysis (detector, tracker, gates, picture detection; no emotion model) on the
first minutes of each video, summarised by ``fer_stream.reports.camera``: faces per frame, the
face-size histogram, the share of faces readable for each signal, pictures found, and the zoom or
resolution each signal needs for most students. The same summary heads every HTML report.
"""

from __future__ import annotations

import argparse
import json
import sys

from fer_stream.cli import exits


def check_video(path: str, config, minutes: float):
    """The ``CameraCheck`` of the first ``minutes`` of ``path`` under ``config``."""
    import numpy as np

    from fer_stream.faces.track import assign_students
    from fer_stream.lecture import make_face_stage, run_segment
    from fer_stream.lecture.assemble import picture_tracks
    from fer_stream.reports.camera import camera_check

    stage = make_face_stage(config, crop_size=48)  # crops are not classified here: any size does
    part = run_segment(path, config, stage, None, end_s=minutes * 60.0)
    keys = assign_students(part.tracks, part.frame_wh, config.students)
    static = np.isin(part.faces["track_id"], picture_tracks([part], config))
    track = part.faces["track_id"].tolist()
    student = [keys.get(t) if not s else None for t, s in zip(track, static)]
    return camera_check(
        np.asarray(part.faces["face_px"]),
        frames=len(part.frames["frame_index"]),
        student_id=student,
        static=static,
        gates=config.gates,
        emotion_readable=np.asarray(part.faces["emotion_readable"], bool),
    )


def _check(a: argparse.Namespace) -> int:
    from fer_stream.cli.options import signals_from_args
    from fer_stream.config import PipelineConfig, describe_signals
    from fer_stream.video import VideoError

    try:
        config = PipelineConfig(detector=a.detector, sample_fps=a.sample_fps, signals=signals_from_args(a))
    except ValueError as e:
        print(f"fer-stream check: {e}", file=sys.stderr)
        return exits.USAGE
    # Before any work: what an analysis with these flags would infer (the check itself infers no
    # emotion and no identity whatever they say).
    signals = sorted(s.value for s in config.signals)
    if not a.json:
        print(f"an analysis with these flags: {describe_signals(config.signals)} (docs/COMPLIANCE.md)")
    failed = 0
    for path in a.videos:
        try:
            result = check_video(path, config, a.minutes)
        except (VideoError, OSError, ValueError) as e:  # one bad file never stops the others
            print(f"fer-stream check: {path}: {type(e).__name__}: {e}", file=sys.stderr)
            failed += 1
            continue
        if a.json:
            print(json.dumps({"path": path, "signals": signals, **result.as_json()}))
        else:
            print(f"{path} (first {a.minutes:g} min at {a.sample_fps:g} fps, detector {a.detector}):")
            for line in result.lines():
                print(f"  {line}")
    if failed == len(a.videos):
        return exits.ERROR
    return exits.PARTIAL if failed else exits.OK


def register(sub) -> None:
    from fer_stream.config import PipelineConfig
    from fer_stream.faces.detect import DETECTORS

    p = sub.add_parser(
        "check",
        help="what a camera can give: faces per frame, sizes, readable shares, pictures, zoom needed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=exits.EPILOG,
    )
    p.add_argument("videos", nargs="+", help="video files from the camera")
    p.add_argument(
        "--minutes", type=float, default=5.0, help="minutes looked at from the start of each video"
    )
    p.add_argument("--sample-fps", type=float, default=1.0, help="frames looked at per second")
    p.add_argument("--detector", default=PipelineConfig.detector, choices=DETECTORS)
    p.add_argument("--json", action="store_true", help="one JSON object per video")
    from fer_stream.cli.options import add_signals_args

    add_signals_args(p)
    p.add_argument("--identity", action="store_true", help="say that the analysis would also use --identity")
    p.set_defaults(func=_check)
