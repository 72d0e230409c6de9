"""Lecture videos -> Parquet records, on an embedded Ray or a Ray cluster.

    python jobs/analyze_lectures.py --input lectures/ --output records/           # embedded Ray
    python jobs/analyze_lectures.py --demo --output demo_records/                  # the demo lecture
    ray job submit --address http://HEAD:8265 --working-dir . -- \\
        python jobs/analyze_lectures.py --input /shared/lectures --output /shared/records

Exit status: 0 every video done or skipped; 3 finished, some videos failed (recorded in videos/);
1 aborted by --strict at the first failure, or a bad run (no such input, unusable weights);
2 bad arguments. docs/PIPELINE.md describes the records and the cluster setup.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

# Runs as a script from a checkout (`ray job submit --working-dir .` ships one) without an install.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fer_stream import pipeline, records  # noqa: E402
from fer_stream.options import add_analysis_args, config_from_args  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", nargs="+", default=[], help="video files, folders (recursive) or globs")
    ap.add_argument("--output", required=True, help="records folder (faces/, frames/, videos/)")
    add_analysis_args(ap)
    ap.add_argument("--force", action="store_true", help="redo videos already done with this config")
    ap.add_argument("--strict", action="store_true", help="abort at the first failed video (exit 1)")
    ap.add_argument("--demo", action="store_true", help="make the demo lecture in OUTPUT and analyse it")
    ap.add_argument("--quiet", action="store_true", help="no progress output, only the summary")
    a = ap.parse_args(argv)
    if not a.input and not a.demo:
        ap.error("--input is required (or --demo)")
    return a


def demo_input(output: Path) -> Path:
    """The demo lecture at OUTPUT/demo_input/demo/<today>_lecture.mp4 (course 'demo' by the path rule)."""
    from fer_stream.demo import make_demo_clip

    clip = output / "demo_input" / "demo" / f"{date.today().isoformat()}_lecture.mp4"
    return clip if clip.exists() else make_demo_clip(clip)


def print_students(output: Path, video: str) -> None:
    """The per-student summary of one analysed video, read back from the records."""
    import pyarrow.compute as pc

    row = records.read(output, "videos", filter=(pc.field("path") == video) & (pc.field("status") == "done"))
    if not row.num_rows:
        return
    vid = row.column("video_id")[0].as_py()
    faces = records.read(output, "faces", filter=pc.field("video_id") == vid)
    n_frames = records.read(output, "frames", filter=pc.field("video_id") == vid).num_rows
    print(f"\n{video}: {n_frames} sampled frames, model {row.column('model_version')[0].as_py()}")
    print(f"{'student':16} {'visible':>7} {'absent':>6} {'attentive':>9}  emotion")
    for s in records.student_summary(faces, n_frames):
        print(
            f"{s['student_id']:16} {s['frames_visible']:7d} {s['frames_absent']:6d} "
            f"{s['attentive_share']:9.2f}  {s['dominant_emotion']} ({s['p_dominant']:.2f})"
        )


def main(argv=None) -> int:
    a = parse_args(argv)
    output = Path(a.output).resolve()
    inputs = list(a.input)
    if a.demo:
        inputs.append(str(demo_input(output)))
    config = config_from_args(a)
    started = pipeline.connect(a.address, a.num_cpus)
    try:
        summary = pipeline.run(inputs, output, config, force=a.force, strict=a.strict, progress=not a.quiet)
    except (FileNotFoundError, ValueError) as e:  # no such input, unusable weights: the run is wrong
        print(f"analyze_lectures: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        if started:
            pipeline.disconnect()
    print(summary.describe())
    if a.demo:
        print_students(output, inputs[-1])
    return summary.exit_code


if __name__ == "__main__":
    sys.exit(main())
