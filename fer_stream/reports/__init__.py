"""Reports: DuckDB runs ``sql/*.sql`` over the Parquet records with bound parameters; CSV/JSON/HTML out.

One report per SQL file (``sql/<name>.sql``, a chain of CTEs ending in ``select * from final``);
definitions are commented where they are computed and listed in ``docs/REPORTS.md``. A report's
parameters are the ``$name`` placeholders in its file, bound by :func:`run_report` through DuckDB's
prepared statements, never pasted into the SQL::

    con = connect("output/")                      # views faces, frames, videos, lectures
    table = run_report(con, "student_attention", course="ML101", min_visible_s=60)
    write(table, "csv", "attention.csv")

:func:`write_course_reports` writes the HTML pages and CSVs of a course (nightly runs).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from fer_stream import records
from fer_stream.labels import FER2013_LABELS

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
FORMATS = ("table", "csv", "json", "parquet", "html")


class ReportError(ValueError):
    """A report cannot run: no records, unknown report or parameter, a bad parameter value."""


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
    "falls": Param(_positive(int), 3, "flag students whose attention fell this many lectures in a row"),
}

_PLACEHOLDER = re.compile(r"\$([a-z_][a-z0-9_]*)")


# --------------------------------------------------------------------------------------------------
# The SQL files


def _sql_path(name: str) -> Path:
    """``sql/<name>.sql`` of a report (not of the shared ``_`` views)."""
    _check_sql_dir()
    path = SQL_DIR / f"{name}.sql"
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or not path.is_file():
        raise ReportError(f"unknown report {name!r}; reports: {', '.join(report_names())}")
    return path


def report_names() -> list[str]:
    """The reports, one per ``sql/<name>.sql`` (files starting with ``_`` are shared views)."""
    _check_sql_dir()
    return sorted(p.stem for p in SQL_DIR.glob("*.sql") if not p.stem.startswith("_"))


def _check_sql_dir() -> None:
    # sql/ sits beside the package in the repository (house layout): a checkout or editable install
    if not (SQL_DIR / "_lectures.sql").is_file():
        raise ReportError(f"the report SQL files are not at {SQL_DIR}: run from a checkout of fer_stream")


def _code(sql: str) -> str:
    """The SQL without its ``--`` comments (placeholders named in comments are not parameters)."""
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines())


def report_params(name: str) -> list[str]:
    """Parameters report ``name`` takes: the ``$name`` placeholders of its SQL, in order of appearance."""
    found = dict.fromkeys(_PLACEHOLDER.findall(_code(_sql_path(name).read_text())))
    unknown = [p for p in found if p not in PARAMS]
    if unknown:  # a programming error in sql/, not a user's
        raise RuntimeError(f"sql/{name}.sql uses undeclared parameters {unknown}; add them to PARAMS")
    return list(found)


def describe(name: str) -> str:
    """The first comment paragraph of ``sql/<name>.sql``, without the report's name."""
    lines = []
    for line in _sql_path(name).read_text().splitlines():
        if not line.startswith("--") or line.strip() == "--":
            break
        lines.append(line[2:].strip())
    return " ".join(lines).removeprefix(f"{name}:").strip()


# --------------------------------------------------------------------------------------------------
# The dataset


def _parquet_files(folder: Path) -> list[str]:
    # Hidden files ('.x.tmp' of a writer at work) and '_' files are not records, as for pyarrow.
    return sorted(
        str(p) for p in folder.glob("*/*/*.parquet") if not p.name.startswith((".", "_")) and p.is_file()
    )


def connect(data_dir: str | os.PathLike) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with views over the records under ``data_dir``.

    Views: ``videos`` (the run log, every run), ``lectures`` (one row per video from its latest
    done run: ``sql/_lectures.sql``), ``faces`` and ``frames`` (the records of that run). Course and
    lecture date come back from the hive folder names.

    Raises:
        ReportError: ``data_dir`` does not exist or holds no records at all.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise ReportError(f"no records folder {root}: give the output folder of an analysis run")
    files = {name: _parquet_files(root / name) for name in records.SCHEMAS}
    if not files["videos"]:
        raise ReportError(
            f"no records under {root}: expected Parquet files in {root}/videos/ (and faces/, frames/), "
            "as written by `python jobs/analyze_lectures.py --output DIR`"
        )
    con = duckdb.connect()
    _register(con, "videos", files["videos"])
    con.execute((SQL_DIR / "_lectures.sql").read_text())
    # Only the record files of each video's latest done run: <video_id>_<config_hash>.parquet
    current = {
        f"{v}_{h}.parquet" for v, h in con.sql("select video_id, config_hash from lectures").fetchall()
    }
    for name in ("faces", "frames"):
        _register(con, name, [f for f in files[name] if Path(f).name in current])
    con.execute((SQL_DIR / "_student_lectures.sql").read_text())
    return con


def _register(con: duckdb.DuckDBPyConnection, name: str, files: list[str]) -> None:
    """View ``name`` over ``files`` (or an empty one with the schema), columns in THE schema's order."""
    schema = records.SCHEMAS[name]
    try:
        if files:
            # The file list is a bound parameter too; hive_types: course '007' stays a string.
            rel = con.sql(
                "select * from read_parquet($files, hive_partitioning = true, union_by_name = true,"
                " hive_types = {'course': 'VARCHAR', 'lecture_date': 'DATE'})",
                params={"files": files},
            )
        else:
            rel = con.from_arrow(schema.empty_table())
        # hive columns come last out of read_parquet: put them where records.py has them
        rel.select(*[duckdb.ColumnExpression(c) for c in schema.names]).create_view(name)
    except duckdb.Error as e:  # a file that is no Parquet, or lacks columns of the schema
        raise ReportError(f"cannot read the {name}/ records: {type(e).__name__}: {e}") from e


# --------------------------------------------------------------------------------------------------
# Running reports


def parse_params(params: Mapping[str, object] | None) -> dict[str, object]:
    """``params`` with string values parsed (``"2024-03-05"`` -> a date, ``"60"`` -> 60.0).

    Raises:
        ReportError: a name that is no parameter of any report, or a value that does not parse.
    """
    out = {}
    for key, value in (params or {}).items():
        if key not in PARAMS:
            raise ReportError(f"unknown parameter {key!r}; parameters: {', '.join(PARAMS)}")
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
    """
    values = bind(name, {**(params or {}), **kwargs})
    try:
        return con.sql(_sql_path(name).read_text(), params=values).to_arrow_table()
    except duckdb.Error as e:  # e.g. a Parquet file that is not one: say which report met it
        raise ReportError(f"report {name}: {type(e).__name__}: {e}") from e


def run_sql(
    con: duckdb.DuckDBPyConnection, query: str, params: Mapping[str, object] | None = None
) -> pa.Table:
    """Ad-hoc SQL over the views of :func:`connect`; ``$name`` placeholders bound from ``params``."""
    try:
        return con.sql(query, params=dict(params) if params else None).to_arrow_table()
    except duckdb.Error as e:
        raise ReportError(f"sql: {e}") from e


def report(data_dir: str | os.PathLike, name: str, **params) -> pa.Table:
    """Shortcut: :func:`connect` then :func:`run_report`."""
    return run_report(connect(data_dir), name, params)


# --------------------------------------------------------------------------------------------------
# Output


def _cell(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def format_table(table: pa.Table, max_width: int = 40) -> str:
    """A fixed-width text table (floats to 3 decimals, long values cut) for a terminal."""
    cols = table.column_names
    rows = [[_cell(v) for v in row.values()] for row in table.to_pylist()]
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


def write(table: pa.Table, fmt: str, out: str | os.PathLike | None = None) -> None:
    """Write ``table`` as ``table`` (text), ``csv``, ``json`` (an array of objects) or ``parquet``.

    ``out=None`` writes to stdout (parquet needs a file). HTML pages: :func:`html_page`.
    """
    if fmt == "parquet":
        if out is None:
            raise ReportError("--format parquet needs --out FILE")
        pq.write_table(table, out)
        return
    if fmt == "csv":
        buf = io.BytesIO()
        pacsv.write_csv(table, buf)
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


# --------------------------------------------------------------------------------------------------
# HTML: one self-contained page per lecture or course, charts drawn by matplotlib (PNG, inlined)


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def _no_data(text: str) -> str:
    return f'<p class="empty">{html.escape(text)}</p>'


def _chart(b64: str, alt: str) -> str:
    return f'<img class="chart" alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def _label(row: dict) -> str:
    return f"{row['lecture_date']} {row['video_id'][:8]}"


def _class_attention_chart(timeline: pa.Table, summary: pa.Table, one_lecture: bool, bucket_s: float) -> str:
    """A lecture: class mean attention per bucket; a course: engagement index per lecture."""
    if one_lecture:
        rows = [r for r in timeline.to_pylist() if r["mean_attention"] is not None]
        if not rows:
            return _no_data("No measured faces: no attention to draw.")
        fig, ax = _figure(9, 3)
        unit, per = ("minutes", 60) if bucket_s >= 60 else ("seconds", 1)
        x = [r["start_s"] / per for r in rows]
        ax.plot(x, [r["mean_attention"] for r in rows], marker="o", color="tab:blue", label="mean attention")
        ax.plot(
            x,
            [r["attention_rate"] for r in rows],
            marker=".",
            ls="--",
            color="tab:green",
            label="attention rate",
        )
        ax.set(
            xlabel=f"{unit} from the start (bucket start, buckets of {bucket_s:g} s)",
            ylabel="class attention",
        )
        ax.set_ylim(-0.02, 1.02)
    else:
        rows = [r for r in summary.to_pylist() if r["engagement_index"] is not None]
        if not rows:
            return _no_data("No measured faces: no attention to draw.")
        fig, ax = _figure(9, 3)
        x = range(len(rows))
        ax.plot(x, [r["engagement_index"] / 100 for r in rows], marker="o", label="engagement index / 100")
        ax.plot(x, [r["attention_rate"] for r in rows], marker=".", ls="--", label="attention rate")
        ax.set_xticks(list(x), [_label(r) for r in rows], rotation=30, ha="right", fontsize=8)
        ax.set(xlabel="lecture", ylabel="class attention", ylim=(-0.02, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    return _chart(_png(fig), "class attention over time")


def _heatmap(cells: dict[tuple[str, object], float], students: list[str], columns: list, col_labels, xlabel):
    """Students x columns of mean attention; grey = not seen (absent is not inattentive)."""
    import matplotlib

    grid = np.full((len(students), len(columns)), np.nan)
    si = {s: i for i, s in enumerate(students)}
    ci = {c: j for j, c in enumerate(columns)}
    for (s, c), v in cells.items():
        if v is not None:
            grid[si[s], ci[c]] = v
    fig, ax = _figure(9, 0.8 + 0.28 * len(students))
    cmap = matplotlib.colormaps["RdYlGn"].with_extremes(bad="#d0d0d0")
    im = ax.imshow(
        np.ma.masked_invalid(grid), aspect="auto", cmap=cmap, vmin=0, vmax=1, interpolation="nearest"
    )
    ax.set_yticks(range(len(students)), students, fontsize=7)
    step = max(1, len(columns) // 20)
    ax.set_xticks(
        range(0, len(columns), step), [col_labels[j] for j in range(0, len(columns), step)], fontsize=7
    )
    ax.set_xlabel(xlabel)
    fig.colorbar(im, ax=ax, label="mean attention (grey: not seen)")
    return _chart(_png(fig), "attention heatmap per student")


def _student_heatmap(
    student_timeline: pa.Table, timeline: pa.Table, attention: pa.Table, one_lecture: bool, bucket_s: float
) -> str:
    if one_lecture:
        rows = student_timeline.to_pylist()
        if not rows:
            return _no_data("No students seen.")
        # every bucket of the lecture, so that a student not seen at the start or end shows grey there
        span = [r["bucket"] for r in rows] + timeline["bucket"].to_pylist()
        buckets = list(range(min(span), max(span) + 1))
        labels = [f"{int(b * bucket_s // 60)}:{int(b * bucket_s % 60):02d}" for b in buckets]
        cells = {(r["student_id"], r["bucket"]): r["mean_attention"] for r in rows}
        students = sorted({r["student_id"] for r in rows})
        return _heatmap(
            cells,
            students,
            buckets,
            labels,
            f"time from the start of the video (m:ss), buckets of {bucket_s:g} s",
        )
    rows = attention.to_pylist()
    if not rows:
        return _no_data("No students seen.")
    lectures = sorted({(r["lecture_date"], r["video_id"]) for r in rows})
    cells = {(r["student_id"], (r["lecture_date"], r["video_id"])): r["mean_attention"] for r in rows}
    students = sorted({r["student_id"] for r in rows})
    labels = [f"{d} {v[:8]}" for d, v in lectures]
    return _heatmap(cells, students, lectures, labels, "lecture")


def _emotion_chart(emotions: pa.Table) -> str:
    """Stacked bars of each student's emotion shares (over all lectures in scope, frame-weighted)."""
    rows = emotions.to_pylist()
    if not rows:
        return _no_data("No students seen.")
    students = sorted({r["student_id"] for r in rows})
    shares = np.zeros((len(students), len(FER2013_LABELS)))
    frames = np.zeros(len(students))
    for r in rows:
        i = students.index(r["student_id"])
        frames[i] += r["frames_visible"]
        shares[i] += [r[f"share_{lab}"] * r["frames_visible"] for lab in FER2013_LABELS]
    shares /= frames[:, None]
    fig, ax = _figure(9, 0.8 + 0.28 * len(students))
    left = np.zeros(len(students))
    colors = ["#d62728", "#8c564b", "#9467bd", "#2ca02c", "#1f77b4", "#ff7f0e", "#7f7f7f"]
    for j, lab in enumerate(FER2013_LABELS):
        ax.barh(range(len(students)), shares[:, j], left=left, color=colors[j], label=lab)
        left += shares[:, j]
    ax.set_yticks(range(len(students)), students, fontsize=7)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1), xlabel="share of the frames the student is seen")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _chart(_png(fig), "emotion mix per student")


def _td(key: str, v) -> str:
    if key == "video_id" and isinstance(v, str):  # 64 hex digits: the first 8 name it on a page
        return f'<td title="{html.escape(v)}">{html.escape(v[:8])}</td>'
    num = isinstance(v, (int, float)) and not isinstance(v, bool)
    return f'<td class="{"num" if num else ""}">{html.escape(_cell(v))}</td>'


def html_table(table: pa.Table, table_id: str = "", max_rows: int = 500) -> str:
    """``table`` as an HTML table, every value escaped; floats to 3 decimals, at most ``max_rows`` rows."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.column_names)
    body = []
    for row in table.slice(0, max_rows).to_pylist():
        cells = "".join(_td(k, v) for k, v in row.items())
        body.append(f"<tr>{cells}</tr>")
    more = (
        f"<p>{table.num_rows - max_rows} more rows: use --format csv.</p>"
        if table.num_rows > max_rows
        else ""
    )
    ident = f' id="{html.escape(table_id)}"' if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:1.6em}
table{border-collapse:collapse;font-size:12px;margin:.5em 0 1em}td,th{border:1px solid #ddd;padding:2px 6px}
th{background:#f2f2f2;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
.chart{max-width:100%}.empty{color:#777;font-style:italic}.defs{font-size:13px;color:#444}
.tablewrap{overflow-x:auto}
"""


def _only(params: Mapping[str, object], name: str) -> dict[str, object]:
    """The entries of ``params`` that report ``name`` takes."""
    return {k: v for k, v in params.items() if k in report_params(name)}


def page_bucket_s(minutes: float) -> float:
    """Time buckets of a page's charts: minutes, or for a lecture shorter than 12 minutes the longest
    of 30, 15, 10, 5, 2, 1 s that still gives 12 buckets (a 20 s clip: 1 s)."""
    for seconds in (60.0, 30.0, 15.0, 10.0, 5.0, 2.0):
        if minutes * 60 / seconds >= 12:
            return seconds
    return 1.0


def html_page(
    con: duckdb.DuckDBPyConnection, params: Mapping[str, object] | None = None, first: str = ""
) -> str:
    """A self-contained HTML page for the lectures the parameters select (a lecture or a course).

    Sections (``id``): ``summary``, ``class-attention``, ``student-heatmap``, ``emotion-mix``,
    ``review-moments``, ``tables``. One lecture in scope: charts over time within it; several: over
    the lectures. ``first``: a report whose table comes first in ``tables``.
    """
    params = parse_params(params)

    def run(name: str) -> pa.Table:
        return run_report(con, name, _only(params, name))

    names = ["lecture_summary", "student_attention", "student_emotions", "student_trend", "lecture_timeline"]
    if params.get("bucket_s") is None:
        minutes = run_report(con, "lecture_summary", _only(params, "lecture_summary"))["minutes_analysed"]
        params["bucket_s"] = page_bucket_s(max([m for m in minutes.to_pylist() if m is not None], default=0))
    tables = {n: run(n) for n in [*names, "student_timeline"]}
    summary = tables["lecture_summary"]
    done = [r for r in summary.to_pylist() if r["frames_sampled"] is not None]
    one_lecture = len(done) == 1
    timeline = tables["lecture_timeline"]
    moments_n = params.get("moments", PARAMS["moments"].default)
    low = timeline.filter(pc.less_equal(timeline["low_rank"], moments_n))
    low = low.sort_by([("video_id", "ascending"), ("low_rank", "ascending")]).select(
        [
            "course",
            "lecture_date",
            "video_id",
            "low_rank",
            "start_s",
            "end_s",
            "mean_attention",
            "attention_rate",
            "students_visible",
            "faces_per_frame",
        ]
    )
    courses = sorted({r["course"] for r in summary.to_pylist()})
    if one_lecture:
        title = f"Lecture {done[0]['lecture_date']} ({done[0]['course']}, video {done[0]['video_id'][:8]})"
    else:
        title = f"Course {', '.join(courses) or '(no lectures)'}: {len(summary)} video(s)"
    scope = ", ".join(f"{k}={v}" for k, v in sorted(params.items()) if v is not None) or "all records"
    failed = [r for r in summary.to_pylist() if r["status"] == "failed"]
    order = ([first] if first in tables else []) + [n for n in names if n != first]
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="defs">Scope: {html.escape(scope)}. Attention as defined in docs/ATTENTION.md: attentive ='
        " facing the front within the yaw/pitch limits with the eyes open; a student not seen in a frame is"
        " <em>not visible</em>, never inattentive. Definitions of every column: docs/REPORTS.md.</p>",
        '<section id="summary"><h2>Summary</h2>',
        f"<p>{len(done)} lecture(s) analysed, {len(failed)} failed video(s), "
        f"{len({r['student_id'] for r in tables['student_attention'].to_pylist()})} student(s).</p>",
        '<div class="tablewrap">',
        html_table(
            summary.select(
                [
                    "course",
                    "lecture_date",
                    "video_id",
                    "status",
                    "error_type",
                    "minutes_analysed",
                    "students",
                    "engagement_index",
                    "attention_rate",
                    "frames_no_faces",
                    "no_face_share",
                    "review_moments",
                ]
            )
        ),
        "</div></section>",
        '<section id="class-attention"><h2>Class attention over time</h2>',
        _class_attention_chart(timeline, summary, one_lecture, params["bucket_s"]),
        "</section>",
        '<section id="student-heatmap"><h2>Attention per student over time</h2>',
        _student_heatmap(
            tables["student_timeline"],
            timeline,
            tables["student_attention"],
            one_lecture,
            params["bucket_s"],
        ),
        "</section>",
        '<section id="emotion-mix"><h2>Emotion mix per student</h2>',
        _emotion_chart(tables["student_emotions"]),
        "</section>",
        '<section id="review-moments"><h2>Moments to review</h2>',
        "<p>The lowest-attention time buckets of each lecture (start_s/end_s: seconds from the start of"
        " the video).</p>",
        html_table(low) if low.num_rows else _no_data("No measured faces."),
        "</section>",
        '<section id="tables"><h2>Tables</h2>',
    ]
    for name in order:
        parts += [
            f'<h3>{name}</h3><p class="defs">{html.escape(describe(name))}</p>',
            f'<div class="tablewrap">{html_table(tables[name], name)}</div>',
        ]
    parts.append("</section>")
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head><body>{''.join(parts)}</body></html>\n"
    )


# --------------------------------------------------------------------------------------------------
# A course's files, for nightly runs


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "course"


def write_course_reports(
    data_dir: str | os.PathLike,
    course: str,
    out_dir: str | os.PathLike,
    date_from: date | None = None,
    date_to: date | None = None,
) -> list[Path]:
    """Write a course's reports into ``out_dir``; returns the paths written.

    * ``<course>.html``: the course page (every lecture of the course in the date range);
    * ``<course>_<lecture_date>_<video_id[:8]>.html``: one page per analysed lecture;
    * ``<course>_<report>.csv``: each report for the course and date range.

    ``course`` is the course code as in the records (it is made file-name safe for the names).
    Raises :class:`ReportError` when ``data_dir`` holds no records.
    """
    con = connect(data_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scope = {"course": course, "date_from": date_from, "date_to": date_to}
    stem = _slug(course)
    written = []
    for name in report_names():
        table = run_report(con, name, _only(scope, name))
        path = out / f"{stem}_{name}.csv"
        write(table, "csv", path)
        written.append(path)
    path = out / f"{stem}.html"
    path.write_text(html_page(con, scope), encoding="utf-8")
    written.append(path)
    summary = run_report(con, "lecture_summary", scope)
    for lecture in summary.filter(pc.is_valid(summary["frames_sampled"])).to_pylist():  # analysed ones
        lecture_date, video_id = lecture["lecture_date"], lecture["video_id"]
        path = out / f"{stem}_{lecture_date}_{video_id[:8]}.html"
        path.write_text(html_page(con, {**scope, "video": video_id}), encoding="utf-8")
        written.append(path)
    return written
