"""Which signals the records in a report's scope were inferred with (``config.Signal``).

Every report states them: the HTML page at its top, the other formats as a ``signals`` column (a
regular column keeps a CSV machine-readable: a ``#`` comment line would break ``read_csv`` in
DuckDB, pandas and spreadsheets unless each reader is told to skip it). A report over lectures
analysed without emotion leaves emotion out instead of drawing empty charts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

import duckdb
import pyarrow as pa

from fer_stream.labels import FER2013_LABELS
from fer_stream.reports.query import report_params, run_report

# Records written before signals could be chosen have no "signals" in their config: they were
# analysed with what the product then always inferred (identity when the config has it).
_LEGACY = ("attention", "emotion")
EMOTION_REPORTS = ("student_emotions",)  # reports that are about emotion alone
# Columns of the other reports that hold an emotion value (p_happy, usual_p_sad, p_fear_change,
# share_angry, dominant_emotion, emotion_readable_share...)
_LABELS = "|".join(FER2013_LABELS)
EMOTION_COLUMN = re.compile(rf"emotion|(^|_)p_({_LABELS})(_|$)|^share_({_LABELS})$")


def analysis_config(config_json: str | None) -> dict:
    """A lecture's ``videos.config_json`` as a dict; ``{}`` when it is missing or not a JSON object
    (records another tool wrote)."""
    try:
        config = json.loads(config_json) if config_json else {}
    except json.JSONDecodeError:
        return {}
    return config if isinstance(config, dict) else {}


def lecture_signals(config_json: str | None) -> list[str]:
    """The signals of one analysed lecture, from its ``videos.config_json``. A config that is not a
    JSON object (records made by other tools) counts as legacy: it says no less than was inferred."""
    config = analysis_config(config_json)
    if "signals" in config:
        return sorted(config["signals"])
    return sorted({*_LEGACY, *(["identity"] if config.get("identity") else [])})


def scope_signals(con: duckdb.DuckDBPyConnection, params: Mapping[str, object] | None = None) -> list[str]:
    """The union of the signals of the analysed lectures that ``params`` select (course, dates,
    video), sorted; empty when none is in scope."""
    scope = {k: v for k, v in (params or {}).items() if k in report_params("lecture_summary")}
    summary = run_report(con, "lecture_summary", scope)
    done = [r["video_id"] for r in summary.to_pylist() if r["frames_sampled"] is not None]
    if not done:
        return []
    rows = con.sql(
        "select distinct config_json from lectures join videos using (video_id, config_hash) "
        "where list_contains($v, video_id) and status = 'done'",
        params={"v": done},
    ).fetchall()
    return sorted({s for (c,) in rows for s in lecture_signals(c)})


def describe(signals: list[str]) -> str:
    """``"attention, emotion"``, or what an empty scope says."""
    return ", ".join(signals) if signals else "none (no analysed lecture in scope)"


def without_emotion(table: pa.Table) -> pa.Table:
    """``table`` without its emotion columns (:data:`EMOTION_COLUMN`): for records that infer none."""
    return table.select([c for c in table.column_names if not EMOTION_COLUMN.search(c)])


def for_signals(table: pa.Table, signals: list[str]) -> pa.Table:
    """A report's table as it is shown for records of ``signals``: emotion columns left out when no
    lecture in scope inferred emotion, and the ``signals`` column added (:func:`with_signals`)."""
    if signals and "emotion" not in signals:
        table = without_emotion(table)
    return with_signals(table, signals)


def with_signals(table: pa.Table, signals: list[str]) -> pa.Table:
    """``table`` with a last column ``signals`` (``"attention,emotion"``) on every row: last, so that
    the report's own columns keep their positions."""
    value = ",".join(signals)
    return table.append_column("signals", pa.array([value] * table.num_rows, pa.string()))
