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
from pathlib import Path

# Runs as a script from a checkout (`ray job submit --working-dir .` ships one) without an install.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fer_stream import pipeline  # noqa: E402
from fer_stream.demo import demo_input, print_student_report  # noqa: E402
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
        print_student_report(output, inputs[-1])
    return summary.exit_code


if __name__ == "__main__":
    sys.exit(main())
