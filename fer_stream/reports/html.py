"""HTML pages of the reports: one self-contained page per lecture or course.

The numbers are the SQL reports' (:mod:`fer_stream.reports.query`); the layout is the Jinja2 template
``templates/page.html.j2``, autoescaped, so a value from the records (a course named ``<script>``) is
text on the page, never markup. Charts are drawn by matplotlib and inlined as base64 PNGs: a page has
no scripts and fetches nothing, so it opens from a file or an e-mail attachment.

:func:`write_course_reports` writes a course's pages and CSVs (nightly runs), named by
:mod:`fer_stream.ops.layout`.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path

import duckdb
import jinja2
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fer_stream.labels import FER2013_LABELS
from fer_stream.ops import layout
from fer_stream.reports.camera import CameraCheck, camera_check
from fer_stream.reports.query import (
    PARAMS,
    connect,
    describe,
    format_cell,
    parse_params,
    report_names,
    report_params,
    run_report,
    write,
)
from fer_stream.reports.signals import (
    EMOTION_REPORTS,
    analysis_config,
    for_signals,
    scope_signals,
    without_emotion,
)
from fer_stream.reports.signals import describe as describe_signals
from fer_stream.validity import Gates

MAX_ROWS = 500  # rows of a table on a page; the CSVs have them all

# The columns of lecture_summary in the page's summary, and of lecture_timeline in its review moments
SUMMARY_COLUMNS = [
    "course",
    "lecture_date",
    "video_id",
    "status",
    "error_type",
    "minutes_analysed",
    "students",
    "engagement_index",
    "attention_rate",
    "head_up_rate",
    "head_known_share",
    "static_faces",
    "frames_no_faces",
    "no_face_share",
    "speech_share",
    "longest_speech_s",
    "long_silences",
    "review_moments",
]
MOMENT_COLUMNS = [
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


def _first_rows(table: pa.Table, n: int) -> list[dict]:
    return table.slice(0, n).to_pylist()


def _numeric(v) -> bool:
    """Right-aligned in a table (a flag is not a number)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("fer_stream.reports", "templates"),  # package data: wheel or zip
    autoescape=True,  # every value is escaped unless the template says otherwise (it never does)
    undefined=jinja2.StrictUndefined,  # a misspelt name fails the render instead of printing nothing
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters.update(cell=format_cell, first_rows=_first_rows)
_ENV.tests["numeric"] = _numeric
_ENV.globals["MAX_ROWS"] = MAX_ROWS


# --------------------------------------------------------------------------------------------------
# Charts: matplotlib figures as base64 PNGs; None when there is nothing to draw (the page says so)


def _png(fig) -> str:
    """``fig`` as a base64 PNG (closed afterwards: pyplot keeps every open figure)."""
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


def _label(row: dict) -> str:
    return f"{row['lecture_date']} {row['video_id'][:8]}"


def _class_attention_png(
    timeline: pa.Table, summary: pa.Table, one_lecture: bool, bucket_s: float
) -> str | None:
    """A lecture: class mean attention per bucket; a course: engagement index per lecture."""
    if one_lecture:
        rows = [r for r in timeline.to_pylist() if r["mean_attention"] is not None]
        if not rows:
            return None
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
        head = [(xi, r["head_up_rate"]) for xi, r in zip(x, rows) if r["head_up_rate"] is not None]
        if head:  # the smart-classroom measure: students facing the front / students read
            ax.plot(*zip(*head), marker="s", ls=":", color="tab:purple", label="head-up rate")
        ax.set(
            xlabel=f"{unit} from the start (bucket start, buckets of {bucket_s:g} s)",
            ylabel="class attention",
        )
        ax.set_ylim(-0.02, 1.02)
        _speech_strip(ax, timeline.to_pylist(), per, bucket_s)
    else:
        rows = [r for r in summary.to_pylist() if r["engagement_index"] is not None]
        if not rows:
            return None
        fig, ax = _figure(9, 3)
        x = list(range(len(rows)))
        ax.plot(x, [r["engagement_index"] / 100 for r in rows], marker="o", label="engagement index / 100")
        ax.plot(x, [r["attention_rate"] for r in rows], marker=".", ls="--", label="attention rate")
        if any(r["head_up_rate"] is not None for r in rows):
            ax.plot(x, [r["head_up_rate"] for r in rows], marker="s", ls=":", label="head-up rate")
        ax.set_xticks(list(x), [_label(r) for r in rows], rotation=30, ha="right", fontsize=8)
        ax.set(xlabel="lecture", ylabel="class attention", ylim=(-0.02, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    return _png(fig)


def _speech_strip(ax, rows: list[dict], per: float, bucket_s: float) -> None:
    """Under the attention timeline: a strip, dark where the bucket had speech (its share of
    frames during speech), blank where the lecture's audio was not analysed (no strip at all)."""
    heard = [r for r in rows if r.get("speech_share") is not None]
    if not heard:
        return
    strip = ax.inset_axes((0.0, -0.36, 1.0, 0.1), sharex=ax)
    for r in heard:
        strip.axvspan(
            r["start_s"] / per,
            (r["start_s"] + bucket_s) / per,
            color="tab:orange",
            alpha=float(r["speech_share"]),
            lw=0,
        )
    strip.set_yticks([])
    strip.set_ylabel("speech", rotation=0, ha="right", va="center", fontsize=8)
    strip.tick_params(labelbottom=False)


def _heatmap_png(
    cells: dict[tuple[str, object], float], students: list[str], columns: list, col_labels, xlabel
) -> str:
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
    return _png(fig)


def _student_heatmap_png(
    student_timeline: pa.Table, timeline: pa.Table, attention: pa.Table, one_lecture: bool, bucket_s: float
) -> str | None:
    """A lecture: students x time buckets; a course: students x lectures."""
    if one_lecture:
        rows = student_timeline.to_pylist()
        if not rows:
            return None
        # every bucket of the lecture, so that a student not seen at the start or end shows grey there
        span = [r["bucket"] for r in rows] + timeline["bucket"].to_pylist()
        buckets = list(range(min(span), max(span) + 1))
        labels = [f"{int(b * bucket_s // 60)}:{int(b * bucket_s % 60):02d}" for b in buckets]
        cells = {(r["student_id"], r["bucket"]): r["mean_attention"] for r in rows}
        students = sorted({r["student_id"] for r in rows})
        return _heatmap_png(
            cells,
            students,
            buckets,
            labels,
            f"time from the start of the video (m:ss), buckets of {bucket_s:g} s",
        )
    rows = attention.to_pylist()
    if not rows:
        return None
    lectures = sorted({(r["lecture_date"], r["video_id"]) for r in rows})
    cells = {(r["student_id"], (r["lecture_date"], r["video_id"])): r["mean_attention"] for r in rows}
    students = sorted({r["student_id"] for r in rows})
    labels = [f"{d} {v[:8]}" for d, v in lectures]
    return _heatmap_png(cells, students, lectures, labels, "lecture")


def _emotion_mix_png(emotions: pa.Table) -> str | None:
    """Stacked bars of each student's emotion shares over the frames the student is seen (all
    lectures in scope, frame-weighted), with the frames too small to read an emotion from as their
    own grey band: unreadable is shown, never spread over the emotions."""
    rows = emotions.to_pylist()
    if not rows:
        return None
    students = sorted({r["student_id"] for r in rows})
    frames = np.zeros((len(students), len(FER2013_LABELS) + 1))  # the 7 labels, then unreadable
    for r in rows:
        i = students.index(r["student_id"])
        readable = r["frames_emotion_readable"]
        if readable:
            frames[i, :-1] += [r[f"share_{lab}"] * readable for lab in FER2013_LABELS]
        frames[i, -1] += r["frames_visible"] - readable
    shares = frames / frames.sum(1, keepdims=True)
    fig, ax = _figure(9, 0.8 + 0.28 * len(students))
    left = np.zeros(len(students))
    colors = ["#d62728", "#8c564b", "#9467bd", "#2ca02c", "#1f77b4", "#ff7f0e", "#7f7f7f", "#d9d9d9"]
    for j, lab in enumerate([*FER2013_LABELS, "unreadable"]):
        ax.barh(range(len(students)), shares[:, j], left=left, color=colors[j], label=lab)
        left += shares[:, j]
    ax.set_yticks(range(len(students)), students, fontsize=7)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1), xlabel="share of the frames the student is seen")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _png(fig)


# --------------------------------------------------------------------------------------------------
# Pages


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

    Sections (``id``): ``signals`` (what the records in scope inferred), ``summary``,
    ``class-attention``, ``student-heatmap``, ``emotion-mix`` (only when emotion was inferred),
    ``review-moments``, ``tables``. One lecture in scope: charts over time within it; several: over
    the lectures. ``first``: a report whose table comes first in ``tables``.

    Raises:
        ReportError: a parameter that no report takes or a value that does not parse.
    """
    params = parse_params(params)

    def run(name: str) -> pa.Table:
        return run_report(con, name, _only(params, name))

    signals = scope_signals(con, params)
    emotion = "emotion" in signals or not signals  # nothing in scope: the page's sections say so
    names = ["lecture_summary", "student_attention", "student_emotions", "student_trend", "lecture_timeline"]
    if not emotion:  # emotion not inferred: left out, not shown as empty charts and null columns
        names = [n for n in names if n not in EMOTION_REPORTS]
    if params.get("bucket_s") is None:
        minutes = run("lecture_summary")["minutes_analysed"]
        params["bucket_s"] = page_bucket_s(max([m for m in minutes.to_pylist() if m is not None], default=0))
    tables = {n: run(n) for n in [*names, "student_timeline"]}
    summary, timeline = tables["lecture_summary"], tables["lecture_timeline"]
    done = [r for r in summary.to_pylist() if r["frames_sampled"] is not None]
    one_lecture = len(done) == 1
    moments_n = params.get("moments", PARAMS["moments"].default)
    moments = timeline.filter(pc.less_equal(timeline["low_rank"], moments_n))
    moments = moments.sort_by([("video_id", "ascending"), ("low_rank", "ascending")]).select(MOMENT_COLUMNS)
    if one_lecture:
        title = f"Lecture {done[0]['lecture_date']} ({done[0]['course']}, video {done[0]['video_id'][:8]})"
    else:
        courses = sorted({r["course"] for r in summary.to_pylist()})
        title = f"Course {', '.join(courses) or '(no lectures)'}: {len(summary)} video(s)"
    camera = _camera(con, [r["video_id"] for r in done])
    bucket_s = float(params["bucket_s"])  # type: ignore[arg-type]  # set just above when absent
    order = ([first] if first in tables else []) + [n for n in names if n != first]
    return _ENV.get_template("page.html.j2").render(
        title=title,
        signals=describe_signals(signals),
        emotion=emotion,
        camera=camera.lines() if camera is not None else [],
        scope=", ".join(f"{k}={v}" for k, v in sorted(params.items()) if v is not None) or "all records",
        lectures=len(done),
        failed=sum(r["status"] == "failed" for r in summary.to_pylist()),
        students=len({r["student_id"] for r in tables["student_attention"].to_pylist()}),
        summary=summary.select(SUMMARY_COLUMNS),  # no emotion column among them
        class_attention=_class_attention_png(timeline, summary, one_lecture, bucket_s),
        student_heatmap=_student_heatmap_png(
            tables["student_timeline"], timeline, tables["student_attention"], one_lecture, bucket_s
        ),
        emotion_mix=_emotion_mix_png(tables["student_emotions"]) if emotion else None,
        moments=moments,
        tables=[
            (name, describe(name), tables[name] if emotion else without_emotion(tables[name]))
            for name in order
        ],
    )


def _camera(con: duckdb.DuckDBPyConnection, video_ids: list[str]) -> CameraCheck | None:
    """The camera summary (``fer-stream check``'s) of the analysed lectures ``video_ids``, from their
    records, under the gates their analysis used."""
    if not video_ids:
        return None
    v = {"v": video_ids}
    faces = con.sql(
        "select face_px, student_id, static from faces where list_contains($v, video_id)", params=v
    ).to_arrow_table()
    frames = con.sql("select count(*) from frames where list_contains($v, video_id)", params=v).fetchall()
    config = con.sql(
        "select config_json from lectures join videos using (video_id, config_hash) "
        "where list_contains($v, video_id) and status = 'done' limit 1",
        params=v,
    ).fetchall()
    gates = analysis_config(config[0][0]).get("gates") if config else None
    return camera_check(
        faces.column("face_px").to_numpy(zero_copy_only=False),
        frames=int(frames[0][0]),
        student_id=faces.column("student_id").to_pylist(),
        static=np.asarray(faces.column("static").to_pylist(), bool),
        gates=Gates(**gates) if gates else None,
    )


# --------------------------------------------------------------------------------------------------
# A course's files, for nightly runs


def write_course_reports(
    data_dir: str | os.PathLike,
    course: str,
    out_dir: str | os.PathLike,
    date_from: date | None = None,
    date_to: date | None = None,
) -> list[Path]:
    """Write a course's reports into ``out_dir``; returns the paths written.

    Names (:mod:`fer_stream.ops.layout`, where retention finds them again):

    * ``<course>.html``: the course page (every lecture of the course in the date range);
    * ``<course>_<lecture_date>_<video_id[:8]>.html``: one page per analysed lecture;
    * ``<course>_<report>.csv``: each report for the course and date range.

    ``course`` is the course code as in the records (:func:`layout.slug` makes it file-name safe).

    Raises:
        NoRecordsError: ``data_dir`` holds no records.
        ReadError: ``data_dir`` is missing or a record file cannot be read.
    """
    con = connect(data_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scope = {"course": course, "date_from": date_from, "date_to": date_to}
    written = []
    signals = scope_signals(con, scope)
    for name in report_names():
        if name in EMOTION_REPORTS and signals and "emotion" not in signals:
            continue  # no emotion inferred: no emotion CSV of nulls
        path = out / layout.course_csv(course, name)
        write(for_signals(run_report(con, name, _only(scope, name)), signals), "csv", path)
        written.append(path)
    path = out / layout.course_page(course)
    path.write_text(html_page(con, scope), encoding="utf-8")
    written.append(path)
    summary = run_report(con, "lecture_summary", scope)
    for lecture in summary.filter(pc.is_valid(summary["frames_sampled"])).to_pylist():  # analysed ones
        path = out / layout.lecture_page(course, lecture["lecture_date"], lecture["video_id"])
        path.write_text(html_page(con, {**scope, "video": lecture["video_id"]}), encoding="utf-8")
        written.append(path)
    return written
