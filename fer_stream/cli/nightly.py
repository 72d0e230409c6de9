"""`fer-stream nightly`: thin glue over ``fer_stream.nightly``; flag defaults are
``nightly.NightlyOptions``'s.

Exit codes (``fer_stream.cli.exits``): 0 it ran (a night with failed videos too: the run record
lists them, and the next nights retry them); 1 it could not proceed (no inbox, unwritable output,
unusable weights, Ray unreachable); 2 bad arguments; 75 another run holds ``OUTPUT/nightly.lock``
(nothing was done; try again later). docs/NIGHTLY.md has the details.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fer_stream.cli import exits
from fer_stream.cli.options import add_analysis_args, config_from_args, field_defaults


def _nightly(a) -> int:
    from fer_stream import nightly
    from fer_stream.config import describe_signals
    from fer_stream.ops.lock import LockHeld
    from fer_stream.ops.runlog import RunStatus

    try:  # bad values (--max-attempts 0, --sample-fps 0) are bad arguments
        options = nightly.NightlyOptions(
            settle_s=a.settle_s,
            max_attempts=a.max_attempts,
            backoff_h=a.backoff_h,
            reprocess_on_model_change=a.reprocess_on_model_change,
            retention_days=a.retention_days,
            quarantine_dir=Path(a.quarantine).resolve() if a.quarantine else None,
            reports=not a.no_reports,
        )
        config = config_from_args(a)
    except ValueError as e:
        print(f"fer-stream nightly: {e}", file=sys.stderr)
        return exits.USAGE
    print(describe_signals(config.signals), flush=True)  # before any work (docs/COMPLIANCE.md)
    try:
        record = nightly.run_night(
            a.inbox, a.output, config, options, address=a.address, num_cpus=a.num_cpus, progress=not a.quiet
        )
    except LockHeld as e:
        print(f"fer-stream nightly: {e}; exiting ({exits.LOCKED})", file=sys.stderr)
        return exits.LOCKED
    except nightly.NightlyError as e:
        print(f"fer-stream nightly: {e}", file=sys.stderr)
        return exits.ERROR
    print(nightly.describe(record), flush=True)
    return exits.OK if record["status"] == RunStatus.FINISHED else exits.ERROR


def _pipeline_args(p) -> None:
    g = p.add_argument_group("analysis (as jobs/analyze_lectures.py)")
    add_analysis_args(g)


def register(subparsers) -> None:
    from fer_stream.nightly import NightlyOptions

    d = field_defaults(NightlyOptions)
    p = subparsers.add_parser(
        "nightly",
        help="analyse the inbox's new and changed videos, retry failures, refresh reports (cron/systemd)",
        description="One unattended night: lock OUTPUT, find new and changed videos in INBOX by content "
        "hash (files still being copied wait), analyse them, retry failures with backoff and quarantine "
        "them after --max-attempts, refresh the touched courses' reports into OUTPUT/reports/<date>/, "
        "write OUTPUT/runs/<run_id>.json. A night with failed videos exits 0 (they are in the record). "
        "See docs/NIGHTLY.md.",
        epilog=exits.EPILOG,
    )
    p.add_argument("--inbox", required=True, help="folder the lecture videos are copied into")
    p.add_argument("--output", required=True, help="records folder (faces/, frames/, videos/, runs/, ...)")
    p.add_argument(
        "--settle-s",
        type=float,
        default=d["settle_s"],
        help="a file unchanged (size, mtime, ctime) for this long is complete (default %(default)g)",
    )
    p.add_argument(
        "--max-attempts",
        type=int,
        default=d["max_attempts"],
        help="failures before quarantine (default %(default)s)",
    )
    p.add_argument(
        "--backoff-h",
        type=float,
        default=d["backoff_h"],
        help="the k-th failure waits backoff_h * 2^(k-1) hours (default %(default)g: next night, then 2 "
        "nights)",
    )
    p.add_argument(
        "--reprocess-on-model-change",
        action="store_true",
        default=d["reprocess_on_model_change"],
        help="re-analyse inbox videos whose records came from other emotion weights",
    )
    p.add_argument(
        "--retention-days",
        type=int,
        default=d["retention_days"],
        help="then delete lectures older than this",
    )
    p.add_argument("--quarantine", default=None, help="folder for quarantined files (OUTPUT/quarantine)")
    p.add_argument("--no-reports", action="store_true", help="do not render the touched courses' reports")
    p.add_argument("--quiet", action="store_true", help="no progress output, only the summary")
    _pipeline_args(p)
    p.set_defaults(func=_nightly)
