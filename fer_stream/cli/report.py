"""`fer-stream report` and `fer-stream sql`: thin wrappers over :mod:`fer_stream.reports`.

Exit codes (:mod:`fer_stream.cli.exits`): 0 written; 1 could not proceed (no such folder, an
unreadable record file, an unwritable ``--out``); 2 a bad request (unknown report, malformed,
unknown or empty ``--param``, a query DuckDB rejects, or one the read-only connection refuses: not
one SELECT, or it reaches a file outside the records); 4 the folder holds no records.
"""

from __future__ import annotations

import argparse
import sys

from fer_stream.cli import exits

EPILOG = (
    f"exit codes: {exits.OK} written; {exits.ERROR} no such folder, an unreadable record file or --out; "
    f"{exits.USAGE} unknown report, bad --param or query (sql is read-only: one SELECT); "
    f"{exits.NO_DATA} the folder holds no records"
)


def _params(pairs: list[str]) -> dict[str, str]:
    from fer_stream.reports import ReportError

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ReportError(f"--param wants KEY=VALUE, got {pair!r}")
        out[key.strip()] = value
    return out


def _failed(command: str, e: Exception) -> int:
    """Say why on stderr; the exit code of the error's kind."""
    from fer_stream import reports

    print(f"fer-stream {command}: {e}", file=sys.stderr)
    if isinstance(e, reports.NoRecordsError):
        return exits.NO_DATA
    if isinstance(e, (reports.ReadError, OSError)):
        return exits.ERROR
    return exits.USAGE  # any other ReportError: the request


def _list() -> int:
    from fer_stream import reports

    for name in reports.report_names():
        print(f"{name}\n    {reports.describe(name)}")
        for p in reports.report_params(name):
            spec = reports.PARAMS[p]
            default = "" if spec.default is None else f" (default {spec.default})"
            print(f"    --param {p}=...  {spec.help}{default}")
    return exits.OK


def _report(a) -> int:
    from fer_stream import reports

    try:
        if a.list:
            return _list()
        if not a.name or not a.data:
            print("fer-stream report: give NAME and --data DIR, or --list", file=sys.stderr)
            return exits.USAGE
        params = _params(a.param)
        reports.report_params(a.name)  # an unknown name fails before the data is opened
        con = reports.connect(a.data)
        if a.format == "html":
            reports.bind(a.name, params)  # the named report's parameters must make sense
            page = reports.html_page(con, params, first=a.name)
            if a.out:
                with open(a.out, "w", encoding="utf-8") as f:
                    f.write(page)
            else:
                sys.stdout.write(page)
        else:
            from fer_stream.reports.signals import EMOTION_REPORTS, for_signals, scope_signals

            # every report says what its records inferred: a `signals` column (CSV stays CSV)
            signals = scope_signals(con, params)
            if a.name in EMOTION_REPORTS and signals and "emotion" not in signals:
                print(
                    f"fer-stream report: emotion was not inferred for these lectures (signals: "
                    f"{', '.join(signals)}): {a.name} has no values",
                    file=sys.stderr,
                )
            reports.write(for_signals(reports.run_report(con, a.name, params), signals), a.format, a.out)
    except (reports.ReportError, OSError) as e:
        return _failed("report", e)
    return exits.OK


def _sql(a) -> int:
    from fer_stream import reports

    if a.format == "html":
        print("fer-stream sql: --format html is for reports", file=sys.stderr)
        return exits.USAGE
    try:
        con = reports.connect(a.data)
        reports.write(reports.run_sql(con, a.query, _params(a.param)), a.format, a.out)
    except (reports.ReportError, OSError) as e:
        return _failed("sql", e)
    return exits.OK


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``report`` and ``sql`` subcommands (see ``docs/REPORTS.md``)."""
    formats = ["table", "csv", "json", "parquet", "html"]
    p = sub.add_parser(
        "report",
        help="run a report (fer_stream/reports/sql/NAME.sql) over the records: table, CSV, JSON, "
        "Parquet or an HTML page",
        description="Run a report over the records of an analysis run. `--list` shows the reports and "
        "their parameters; definitions are in docs/REPORTS.md.",
        epilog=EPILOG,
    )
    p.add_argument("name", nargs="?", help="report name (see --list)")
    p.add_argument("--list", action="store_true", help="list the reports and their parameters")
    p.add_argument("--data", help="output folder of the analysis (faces/, frames/, videos/)")
    p.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="a report parameter (repeatable)"
    )
    p.add_argument(
        "--format",
        default="table",
        choices=formats,
        help="html: a self-contained page (charts + tables) for the lecture or course selected",
    )
    p.add_argument("--out", help="file to write (default: stdout; parquet needs a file)")
    p.set_defaults(func=_report)

    p = sub.add_parser(
        "sql",
        help="ad-hoc SQL over the records (views faces, frames, videos, lectures)",
        description="Run one query (SELECT, WITH ... SELECT, DESCRIBE, SUMMARIZE) with the views faces, "
        "frames, videos and lectures registered; $name placeholders are bound from --param name=value "
        "(as strings). Read-only: writes, COPY, ATTACH, SET, INSTALL and files other than the records "
        "are refused (exit 2).",
        epilog=EPILOG,
    )
    p.add_argument("query")
    p.add_argument("--data", required=True, help="output folder of the analysis")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--format", default="table", choices=formats[:4])
    p.add_argument("--out", help="file to write (default: stdout)")
    p.set_defaults(func=_sql)
