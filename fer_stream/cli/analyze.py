"""`fer-stream analyze` and ``jobs/analyze_lectures.py``: lecture videos -> Parquet records on Ray.

    python jobs/analyze_lectures.py --input lectures/ --output records/           # embedded Ray
    python jobs/analyze_lectures.py --demo --output demo_records/                  # the demo lecture
    ray job submit --address http://HEAD:8265 --working-dir . -- \\
        python jobs/analyze_lectures.py --input /shared/lectures --output /shared/records

Exit status (``fer_stream.cli.exits``): 0 every video done or skipped; 3 finished, some videos
failed (recorded in videos/); 1 aborted by --strict at the first failure, or a bad run (no such
input, unusable weights, Ray unreachable); 2 bad arguments; 4 no video to analyse (empty folders, a
glob that matches nothing). docs/PIPELINE.md describes the records and the cluster setup.
"""

from __future__ import annotations

import argparse
import sys

from fer_stream.cli import exits
from fer_stream.cli.options import add_analysis_args, config_from_args


def add_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--input", nargs="+", default=[], help="video files, folders (recursive) or globs")
    ap.add_argument("--output", required=True, help="records folder (faces/, frames/, videos/)")
    add_analysis_args(ap)
    ap.add_argument("--force", action="store_true", help="redo videos already done with this config")
    ap.add_argument("--strict", action="store_true", help="abort at the first failed video (exit 1)")
    ap.add_argument("--demo", action="store_true", help="make the demo lecture in OUTPUT and analyse it")
    ap.add_argument("--quiet", action="store_true", help="no progress output, only the summary")
    ap.add_argument(
        "--summary-json",
        metavar="FILE",
        help="also write the run summary as JSON: each video's status, and the Ray node of each "
        "segment and classifier actor",
    )
    ap.add_argument(
        "--placement-wait-s",
        type=float,
        default=None,
        help="on a cluster that lost the nodes the classifier actors need (GPU or 'classifier' "
        "nodes), seconds to wait for one before the run stops, keeping what is done (default: a minute, "
        "pipeline.PLACEMENT_WAIT_S)",
    )


def run(a: argparse.Namespace, prog: str = "analyze_lectures") -> int:
    from fer_stream import inputs as inputs_
    from fer_stream import pipeline
    from fer_stream.config import describe_signals
    from fer_stream.demo import DemoError, demo_input, print_student_report
    from fer_stream.ops.atomic import NotWritableError, ensure_writable_dir

    inputs = list(a.input)

    def no_videos() -> int | None:
        """Nothing to analyse is said at once, before Ray starts (a listing, no hashing)."""
        try:
            inputs_.require_videos(inputs)
        except inputs_.NoVideosError as e:
            print(f"{prog}: {e}", file=sys.stderr)
            return exits.NO_DATA
        except FileNotFoundError as e:
            print(f"{prog}: {type(e).__name__}: {e}", file=sys.stderr)
            return exits.ERROR
        return None

    # Inputs first, so nothing to do creates no output folder; the demo writes its lecture into the
    # output, so there the output comes first.
    if not a.demo and (code := no_videos()) is not None:
        return code
    try:  # before Ray starts: an unwritable output is one line, not a traceback from a worker loop
        output = ensure_writable_dir(a.output)
    except NotWritableError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return exits.ERROR
    if a.demo:
        try:
            inputs.append(str(demo_input(output)))
        except DemoError as e:  # the demo extra (scikit-image) is missing
            print(f"{prog}: {e}", file=sys.stderr)
            return exits.ERROR
        if (code := no_videos()) is not None:
            return code
    try:
        config = config_from_args(a)
        print(describe_signals(config.signals), flush=True)  # before any work (docs/COMPLIANCE.md)
        started = pipeline.connect(a.address, a.num_cpus)
    except (ValueError, ConnectionError) as e:
        print(f"{prog}: {type(e).__name__}: {e}", file=sys.stderr)
        return exits.ERROR
    wait = {} if a.placement_wait_s is None else {"placement_wait_s": a.placement_wait_s}
    try:
        summary = pipeline.run(
            inputs, output, config, force=a.force, strict=a.strict, progress=not a.quiet, **wait
        )
    # no such input or not on every node, unusable weights, a cluster without room for the
    # classifiers: the run is wrong, and nothing was analysed
    except (FileNotFoundError, ValueError) as e:
        print(f"{prog}: {type(e).__name__}: {e}", file=sys.stderr)
        return exits.ERROR
    finally:
        if started:
            pipeline.disconnect()
    print(summary.describe())
    code = exits.of_run(summary.outcome)
    if a.summary_json:
        from fer_stream.ops.atomic import write_json_atomic

        write_json_atomic(a.summary_json, summary.as_json() | {"exit_code": code})
    if a.demo:
        print_student_report(output, inputs[-1])
    return code


def _check(ap: argparse.ArgumentParser, a: argparse.Namespace) -> argparse.Namespace:
    if not a.input and not a.demo:
        ap.error("--input is required (or --demo)")
    return a


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=exits.EPILOG
    )
    add_args(ap)
    return _check(ap, ap.parse_args(argv))


def main(argv=None) -> int:
    return run(parse_args(argv))


def register(sub) -> None:
    p = sub.add_parser(
        "analyze",
        help="analyse lecture videos into records on Ray (as jobs/analyze_lectures.py)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=exits.EPILOG,
    )
    add_args(p)
    p.set_defaults(func=lambda a: run(_check(p, a), prog="fer-stream analyze"))
