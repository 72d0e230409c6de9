"""The SQL runner: DuckDB runs ``sql/*.sql`` over the Parquet records with bound parameters.

One report per SQL file (``sql/<name>.sql``, a chain of CTEs ending in ``select * from final``), package
data of ``fer_stream.reports`` read with :mod:`importlib.resources` (a checkout, a wheel, a zip alike);
definitions are commented where they are computed and listed in ``docs/REPORTS.md``. A report's
parameters are the ``$name`` placeholders in its file, bound by :func:`run_report` through DuckDB's
prepared statements, never pasted into the SQL::

    con = connect("output/")                      # views faces, frames, videos, lectures
    table = run_report(con, "student_attention", course="ML101", min_visible_s=60)
    write(table, "csv", "attention.csv")

The connection is read-only over the records: :func:`connect` creates its views, then DuckDB itself
is locked (no file but the record files can be read, nothing can be written, no extension installed
or loaded, no setting changed), and every statement run is checked to be one query (``SELECT``,
``WITH ... SELECT``, ``DESCRIBE``, ``SUMMARIZE``, ``SHOW``, ``VALUES``).

Errors are :class:`ReportError` (a bad request; :class:`RefusedError` a statement the read-only
connection refuses) or one of its two kinds that are not the caller's mistake:
:class:`NoRecordsError` (nothing to report on) and :class:`ReadError` (a file the reports need is
missing or unreadable). HTML pages: :mod:`fer_stream.reports.html`.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from fer_stream import records

# The report SQL, package data: a Traversable (a folder of the installed package, or inside a zip), so
# read it with .read_text() / .iterdir(), never as a filesystem path.
SQL_DIR = resources.files("fer_stream.reports") / "sql"
FORMATS = ("table", "csv", "json", "parquet", "html")


class ReportError(ValueError):
    """A bad request: an unknown report, format or parameter, a value that does not parse, bad SQL.

    The subclasses are the errors that are not the request's fault.
    """


class NoRecordsError(ReportError):
    """The records folder exists but holds no records: nothing to report on."""


class ReadError(ReportError):
    """A file the reports need is missing or unreadable: the records folder, a Parquet file, the SQL."""


class RefusedError(ReportError):
    """A statement the read-only connection refuses: not one query, or it reaches outside the records
    (a write, a file other than the record files, an extension, a setting)."""


@dataclass(frozen=True)
class Param:
    """A report parameter: how a command-line string becomes its value, its default, its meaning."""

    parse: Callable[[str], object]
    default: object
    help: str


def _positive(kind: type) -> Callable[[str], object]:
    def parse(text: str):
        value = kind(text)
        if not value > 0 or (isinstance(value, float) and not math.isfinite(value)):
            raise ValueError(f"must be > 0, got {text}")
        return value

    return parse


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0 or not math.isfinite(value):
        raise ValueError(f"must be >= 0, got {text}")
    return value


# Every parameter any report takes. A report takes the ones its SQL names ($course, ...).
PARAMS: dict[str, Param] = {
    "course": Param(str, None, "course code, exactly as in the records; default: every course"),
    "date_from": Param(date.fromisoformat, None, "first lecture date, YYYY-MM-DD, inclusive"),
    "date_to": Param(date.fromisoformat, None, "last lecture date, YYYY-MM-DD, inclusive"),
    "video": Param(str, None, "a lecture: its video_id or a prefix (e.g. the 8 characters in student ids)"),
    "student": Param(str, None, "one student_id"),
    "min_visible_s": Param(_non_negative, 0.0, "seconds; students seen less in a lecture are left out"),
    "bucket_s": Param(_positive(float), 60.0, "seconds per time bucket of the timelines (60: minutes)"),
    "moments": Param(_positive(int), 3, "lowest-attention buckets listed per lecture"),
    "silence_s": Param(_positive(float), 5.0, "seconds; a pause in speech at least this long is a silence"),
    "falls": Param(_positive(int), 3, "flag students whose attention fell this many lectures in a row"),
}

_PLACEHOLDER = re.compile(r"\$([a-z_][a-z0-9_]*)")


# --------------------------------------------------------------------------------------------------
# The SQL files


def _sql_file(name: str) -> str:
    """The text of ``sql/<name>.sql``: a report, or a shared view when ``name`` starts with ``_``."""
    try:
        return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")
    except (OSError, KeyError) as e:  # a broken install (a zip raises KeyError for a missing member)
        raise ReadError(
            f"the report SQL file {name}.sql is missing from the installed fer_stream ({SQL_DIR}): "
            f"reinstall fer_stream ({type(e).__name__}: {e})"
        ) from e


def _report_sql(name: str) -> str:
    """The SQL of report ``name`` (not of the shared ``_`` views)."""
    # The name is checked before it touches a path: no '../', no '_' views, no file of another kind.
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or name not in report_names():
        raise ReportError(f"unknown report {name!r}; reports: {', '.join(report_names())}")
    return _sql_file(name)


def report_names() -> list[str]:
    """The reports, one per ``sql/<name>.sql`` (files starting with ``_`` are shared views)."""
    try:
        files = [p.name for p in SQL_DIR.iterdir() if p.is_file()]
    except (OSError, ValueError):  # no such folder (zipfile.Path raises ValueError)
        files = []
    names = sorted(f.removesuffix(".sql") for f in files if f.endswith(".sql") and not f.startswith("_"))
    if not names:  # the package data did not ship: say so, not "unknown report; reports: <nothing>"
        raise ReadError(f"no report SQL files in the installed fer_stream ({SQL_DIR}): reinstall fer_stream")
    return names


def _code(sql: str) -> str:
    """The SQL without its ``--`` comments (placeholders named in comments are not parameters)."""
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines())


def report_params(name: str) -> list[str]:
    """Parameters report ``name`` takes: the ``$name`` placeholders of its SQL, in order of appearance."""
    found = dict.fromkeys(_PLACEHOLDER.findall(_code(_report_sql(name))))
    unknown = [p for p in found if p not in PARAMS]
    if unknown:  # a programming error in sql/, not a user's
        raise RuntimeError(f"sql/{name}.sql uses undeclared parameters {unknown}; add them to PARAMS")
    return list(found)


def describe(name: str) -> str:
    """The first comment paragraph of ``sql/<name>.sql``, without the report's name."""
    lines = []
    for line in _report_sql(name).splitlines():
        if not line.startswith("--") or line.strip() == "--":
            break
        lines.append(line[2:].strip())
    return " ".join(lines).removeprefix(f"{name}:").strip()


# --------------------------------------------------------------------------------------------------
# The dataset


def _parquet_files(folder: Path) -> list[str]:
    # Hidden files ('.x.tmp' of a writer at work) and '_' files are not records, as for pyarrow.
    # Absolute: these exact strings are the only paths the locked connection may read (_lock).
    return sorted(
        str(p.absolute())
        for p in folder.glob("*/*/*.parquet")
        if not p.name.startswith((".", "_")) and p.is_file()
    )


def connect(data_dir: str | os.PathLike) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with views over the records under ``data_dir``.

    Views: ``videos`` (the run log, every run), ``lectures`` (one row per video from its latest
    done run: ``sql/_lectures.sql``), ``faces`` and ``frames`` (the records of that run). Course and
    lecture date come back from the hive folder names.

    Raises:
        ReadError: ``data_dir`` is not a folder, or a record file cannot be read.
        NoRecordsError: ``data_dir`` holds no records at all.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise ReadError(f"no records folder {root}: give the output folder of an analysis run")
    files = {name: _parquet_files(root / name) for name in records.SCHEMAS}
    if not files["videos"]:
        raise NoRecordsError(
            f"no records under {root}: expected Parquet files in {root}/videos/ (and faces/, frames/), "
            "as written by `python jobs/analyze_lectures.py --output DIR`"
        )
    con = duckdb.connect()
    _register(con, "videos", files["videos"])
    con.execute(_sql_file("_lectures"))
    # Only the record files of each video's latest done run: <video_id>_<config_hash>.parquet
    current = {
        f"{v}_{h}.parquet" for v, h in con.sql("select video_id, config_hash from lectures").fetchall()
    }
    for name in ("faces", "frames", "speech"):
        files[name] = [f for f in files[name] if Path(f).name in current]
        _register(con, name, files[name])
    con.execute(_sql_file("_student_lectures"))
    con.execute(_sql_file("_head_up"))
    con.execute(_sql_file("_speech"))
    _lock(con, [f for name in records.SCHEMAS for f in files[name]])
    return con


def _lock(con: duckdb.DuckDBPyConnection, readable: list[str]) -> None:
    """Make ``con`` read-only over the record files ``readable``, enforced by DuckDB, not by parsing.

    With external access off, DuckDB opens no file (``COPY ... TO``, ``ATTACH``, ``EXPORT``,
    ``read_text``, ``read_csv``, ``glob``, URLs, extension installs) except the ``allowed_paths``: the
    record files the views read. Extensions are neither installed nor loaded on demand, and
    ``lock_configuration`` stops a statement from turning any of this back (``SET``/``RESET`` fail).
    """
    con.execute("set allowed_paths = $paths", {"paths": readable})
    con.execute("set enable_external_access = false")
    con.execute("set autoinstall_known_extensions = false")
    con.execute("set autoload_known_extensions = false")
    con.execute("set lock_configuration = true")


# Columns added to a table after records without them were written; those records still report,
# with the columns null (their speech was not analysed: unknown, not silence).
LATER_COLUMNS: dict[str, tuple[str, ...]] = {"videos": ("speech", "speech_error", "audio_s")}


def _register(con: duckdb.DuckDBPyConnection, name: str, files: list[str]) -> None:
    """View ``name`` over ``files`` (or an empty one with the schema), columns in THE schema's order."""
    schema = records.SCHEMAS[name]
    try:
        empty = con.from_arrow(schema.empty_table())
        if files:
            # The file list is a bound parameter too; hive_types: course '007' stays a string.
            rel = con.sql(
                "select * from read_parquet($files, hive_partitioning = true, union_by_name = true,"
                " hive_types = {'course': 'VARCHAR', 'lecture_date': 'DATE'})",
                params={"files": files},
            )
            # Columns added to the schema since older files were written (videos/ speech) are
            # null there, typed as THE schema has them; any other column missing is a broken file.
            have = set(rel.columns) | (set(schema.names) - set(LATER_COLUMNS.get(name, ())))
            types = dict(zip(empty.columns, empty.types))
            rel = rel.select(
                *[
                    duckdb.ColumnExpression(c)
                    if c in have
                    else duckdb.ConstantExpression(None).cast(types[c]).alias(c)
                    for c in schema.names
                ]
            )
        else:
            rel = empty
        # hive columns come last out of read_parquet: put them where records.py has them
        rel.select(*[duckdb.ColumnExpression(c) for c in schema.names]).create_view(name)
    except duckdb.Error as e:  # a file that is no Parquet, or lacks columns of the schema
        raise ReadError(f"cannot read the {name}/ records: {type(e).__name__}: {e}") from e


# --------------------------------------------------------------------------------------------------
# Running reports


def parse_params(params: Mapping[str, object] | None) -> dict[str, object]:
    """``params`` with string values parsed (``"2024-03-05"`` -> a date, ``"60"`` -> 60.0).

    An empty string (or only spaces) is refused for every parameter rather than read as "not
    given": ``video=$VID`` with ``$VID`` unset would otherwise report on every lecture (a prefix
    match of ``''``) while ``course=`` selected none. Leave a parameter out to mean "all".

    Raises:
        ReportError: a name that is no parameter of any report, an empty value, or a value that does
            not parse.
    """
    out = {}
    for key, value in (params or {}).items():
        if key not in PARAMS:
            raise ReportError(f"unknown parameter {key!r}; parameters: {', '.join(PARAMS)}")
        if isinstance(value, str) and not value.strip():
            raise ReportError(
                f"parameter {key}={value!r} is empty: leave it out to mean all ({PARAMS[key].help})"
            )
        if isinstance(value, str):
            try:
                value = PARAMS[key].parse(value)
            except ValueError as e:
                raise ReportError(f"parameter {key}={value!r}: {e} ({PARAMS[key].help})") from e
        out[key] = value
    return out


def bind(name: str, params: Mapping[str, object] | None = None) -> dict[str, object]:
    """Values for every parameter of report ``name``: ``params`` (strings are parsed) over the defaults.

    Raises:
        ReportError: a parameter the report does not take, or a value that does not parse.
    """
    takes = report_params(name)
    extra = [k for k in (params or {}) if k not in takes]
    if extra:
        raise ReportError(
            f"report {name!r} takes no parameter {', '.join(map(repr, extra))}; it takes: {', '.join(takes)}"
        )
    given = parse_params(params)
    return {key: given.get(key, PARAMS[key].default) for key in takes}


def run_report(
    con: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, object] | None = None, **kwargs
) -> pa.Table:
    """Report ``name`` on connection ``con`` (:func:`connect`) as an Arrow table.

    Parameters come from ``params`` and ``kwargs`` (strings such as ``"2024-03-05"`` are parsed);
    values are bound as data by DuckDB, so no value can change the query.

    Raises:
        ReportError: an unknown report or parameter, a value that does not parse.
        ReadError: DuckDB failed on the records (the SQL files are the project's, the values checked).
    """
    values = bind(name, {**(params or {}), **kwargs})
    sql = _report_sql(name)
    _check_query(con, sql, f"report {name}")
    try:
        return con.sql(sql, params=values).to_arrow_table()
    except duckdb.Error as e:  # e.g. a Parquet file that is not one: say which report met it
        raise ReadError(f"report {name}: {type(e).__name__}: {e}") from e


# Statement types that only read: DESCRIBE, SUMMARIZE, SHOW, VALUES and FROM-first queries parse as
# SELECT too. EXPLAIN, PRAGMA and CALL are left out (EXPLAIN ANALYZE runs its statement; PRAGMA and
# CALL run procedures such as checkpoint).
_QUERY_TYPES = frozenset({duckdb.StatementType.SELECT})


def _check_query(con: duckdb.DuckDBPyConnection, sql: str, who: str) -> None:
    """Refuse ``sql`` unless it is exactly one query (DuckDB's parser says which statements it holds).

    Raises:
        RefusedError: several statements, or one that is not a query.
        ReportError: ``sql`` does not parse.
    """
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as e:
        raise ReportError(f"{who}: {_one_line(e)}") from e
    if len(statements) != 1:
        raise RefusedError(f"{who}: give one query, got {len(statements)} statements (sql is read-only)")
    kind = statements[0].type
    if kind not in _QUERY_TYPES:
        raise RefusedError(
            f"{who}: refused {kind.name} statement: sql is read-only, only a query (SELECT, WITH ... "
            "SELECT, DESCRIBE, SUMMARIZE) runs"
        )


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())


def run_sql(
    con: duckdb.DuckDBPyConnection, query: str, params: Mapping[str, object] | None = None
) -> pa.Table:
    """Ad-hoc SQL over the views of :func:`connect`; ``$name`` placeholders bound from ``params``.

    One query only: anything else (a write, ``COPY``, ``ATTACH``, ``SET``, ``INSTALL``, several
    statements) is refused before it runs, and the connection refuses to open any file but the records.

    Raises:
        RefusedError: not one query, or the query reaches outside the records (a file, an extension).
        ReadError: DuckDB could not read a record file (``duckdb.IOException``).
        ReportError: any other DuckDB error: the query is the caller's.
    """
    _check_query(con, query, "sql")
    try:
        return con.sql(query, params=dict(params) if params else None).to_arrow_table()
    except duckdb.PermissionException as e:
        raise RefusedError(f"sql: refused: only the records under --data can be read ({_one_line(e)})") from e
    except duckdb.IOException as e:
        raise ReadError(f"sql: {e}") from e
    except duckdb.Error as e:
        raise ReportError(f"sql: {e}") from e


def report(data_dir: str | os.PathLike, name: str, **params) -> pa.Table:
    """Shortcut: :func:`connect` then :func:`run_report`."""
    return run_report(connect(data_dir), name, params)


# --------------------------------------------------------------------------------------------------
# Output


def format_cell(v, digits: int = 3) -> str:
    """One value as text: floats to ``digits`` decimals, null and NaN empty."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def format_table(table: pa.Table, max_width: int = 40) -> str:
    """A fixed-width text table (floats to 3 decimals, long values cut) for a terminal."""
    cols = table.column_names
    rows = [[format_cell(v) for v in row.values()] for row in table.to_pylist()]
    rows = [[c if len(c) <= max_width else c[: max_width - 1] + "…" for c in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(cols)]
    numeric = [pa.types.is_integer(t) or pa.types.is_floating(t) for t in table.schema.types]
    pad = lambda c, w, right: c.rjust(w) if right else c.ljust(w)
    line = lambda cells: "  ".join(pad(c, w, r) for c, w, r in zip(cells, widths, numeric)).rstrip()
    out = [line(cols), line(["-" * w for w in widths]), *map(line, rows)]
    out.append(f"({table.num_rows} row{'s' if table.num_rows != 1 else ''})")
    return "\n".join(out) + "\n"


def _json_rows(table: pa.Table) -> list[dict]:
    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, date):
            return v.isoformat()
        return v

    return [{k: clean(v) for k, v in row.items()} for row in table.to_pylist()]


# A text cell a spreadsheet would read as a formula (OWASP "CSV injection"): it starts with one of these.
_FORMULA_START = r"^([=+\-@\t\r])"


def neutralise_formulas(table: pa.Table) -> pa.Table:
    """``table`` with every text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a CR
    prefixed by ``'``, so that a spreadsheet shows it as text instead of running it as a formula
    (OWASP's advice for CSV files). Only text columns: numbers, dates and booleans are untouched."""
    columns = []
    for col in table.columns:
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            col = pc.replace_substring_regex(col, pattern=_FORMULA_START, replacement="'\\1")
        columns.append(col)
    return pa.Table.from_arrays(columns, schema=table.schema)


def write(table: pa.Table, fmt: str, out: str | os.PathLike | None = None) -> None:
    """Write ``table`` as ``table`` (text), ``csv``, ``json`` (an array of objects) or ``parquet``.

    CSV text cells that a spreadsheet would run as a formula are written with a leading ``'``
    (:func:`neutralise_formulas`); the other formats keep values as they are.

    ``out=None`` writes to stdout (parquet needs a file). HTML pages: :mod:`fer_stream.reports.html`.
    """
    if fmt == "parquet":
        if out is None:
            raise ReportError("--format parquet needs --out FILE")
        pq.write_table(table, out)
        return
    if fmt == "csv":
        buf = io.BytesIO()
        pacsv.write_csv(neutralise_formulas(table), buf)
        data = buf.getvalue()
    elif fmt == "json":
        data = (json.dumps(_json_rows(table), indent=1, default=str) + "\n").encode()
    elif fmt == "table":
        data = format_table(table).encode()
    else:
        raise ReportError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        Path(out).write_bytes(data)
