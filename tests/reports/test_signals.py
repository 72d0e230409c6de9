"""Reports in every signals mode: a page and the CSVs say which signals their records inferred, and
records without emotion get no emotion section, chart or column (docs/COMPLIANCE.md)."""

from __future__ import annotations

import csv
import json
from datetime import date

import duckdb
import pyarrow.compute as pc

from fer_stream import records, reports
from fer_stream.labels import FER2013_LABELS
from fer_stream.reports.signals import EMOTION_COLUMN, lecture_signals
from tests.reports.helpers import A, N, lecture, run

VS = "5" * 64
SAFE = "SAFE1"  # a course analysed with --attention-only
DAY = date(2024, 5, 2)
ATTENTION_ONLY = json.dumps({"signals": ["attention"]})


def _attention_only_lecture(root):
    """Lecture VS of course SAFE1 as an attention-only run writes it: no expression value at all."""
    faces = [(1, "stu-1", A, 0.75, None), (2, "stu-1", N, 0.25, None), (1, "stu-2", A, 1.0, None)]
    lecture(root, VS, SAFE, DAY, 1.0, 2, [(*f[:4], "neutral") for f in faces], write_videos=False)
    path = records.partition_dir(root, "faces", SAFE, DAY)
    (file,) = path.glob("*.parquet")
    t = records.read(root, "faces", filter=pc.field("video_id") == VS)
    cols = {c: t.column(c).to_pylist() for c in t.column_names}
    n = t.num_rows
    cols |= {f"p_{x}": [None] * n for x in FER2013_LABELS}
    cols |= {"emotion": [None] * n, "model_version": [None] * n, "emotion_readable": [False] * n}
    records.write_partition(root, "faces", records.make_table("faces", cols), SAFE, DAY, file.stem)
    run(root, VS, SAFE, DAY, "done", 1.0, config_json=ATTENTION_ONLY)


def test_lecture_signals_of_new_and_legacy_configs():
    assert lecture_signals(ATTENTION_ONLY) == ["attention"]
    assert lecture_signals("{}") == ["attention", "emotion"]  # before signals could be chosen
    assert lecture_signals(json.dumps({"identity": {"threshold": 0.6}})) == [
        "attention",
        "emotion",
        "identity",
    ]
    # a config another tool wrote (not JSON, or not an object): what the product always inferred
    assert (
        lecture_signals("{bench}")
        == lecture_signals("[1]")
        == lecture_signals("")
        == ["attention", "emotion"]
    )


def test_an_attention_only_page_and_csvs_leave_emotion_out(data, tmp_path):
    _attention_only_lecture(data)
    con = reports.connect(data)

    page = reports.html_page(con, {"course": SAFE})
    assert 'id="signals"' in page and "Signals inferred: attention." in page
    assert 'id="emotion-mix"' not in page and "student_emotions" not in page
    assert "<th>p_happy</th>" not in page and "<th>emotion_readable_share</th>" not in page
    assert 'id="class-attention"' in page and 'id="student-heatmap"' in page  # attention still reported

    # The emotion course's page, over the same folder, keeps its emotion section
    full = reports.html_page(con, {"course": "ML101"})
    assert "Signals inferred: attention, emotion." in full and 'id="emotion-mix"' in full

    written = reports.write_course_reports(data, SAFE, tmp_path / "site")
    names = {p.name for p in written}
    assert not any("student_emotions" in n for n in names)  # no CSV of nulls
    csvs = [p for p in written if p.suffix == ".csv"]
    assert csvs
    for path in csvs:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))  # a plain CSV: no comment line to skip
        header = list(rows[0]) if rows else next(csv.reader(path.open()))
        assert header[-1] == "signals", path.name
        assert all(r["signals"] == "attention" for r in rows), path.name
        assert not [c for c in header if EMOTION_COLUMN.search(c)], path.name
        # and DuckDB reads it as it is
        assert duckdb.sql(f"select count(*) from read_csv('{path}')").fetchall()[0][0] == len(rows)


def test_every_report_of_the_cli_carries_the_signals_column(fer_stream, data, tmp_path, capsys):
    _attention_only_lecture(data)
    out = tmp_path / "emo.csv"
    code = fer_stream(
        "report",
        "student_emotions",
        "--data",
        data,
        "--param",
        f"course={SAFE}",
        "--format",
        "csv",
        "--out",
        out,
    )
    assert code == 0
    assert "emotion was not inferred" in capsys.readouterr().err
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and {r["signals"] for r in rows} == {"attention"}
    assert not [c for c in rows[0] if EMOTION_COLUMN.search(c)]  # nulls are not shown as numbers

    out = tmp_path / "att.csv"
    assert (
        fer_stream(
            "report",
            "student_attention",
            "--data",
            data,
            "--param",
            "course=ML101",
            "--format",
            "csv",
            "--out",
            out,
        )
        == 0
    )
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and {r["signals"] for r in rows} == {"attention,emotion"}


def test_a_lecture_whose_config_is_not_json_still_gets_its_page_and_reports(tmp_path):
    # records another tool wrote (the wheel check's have an empty config_json): not a crash
    root = tmp_path / "records"
    faces = [(1, "stu-1", A, 0.75, "happy"), (2, "stu-1", N, 0.25, "sad")]
    lecture(root, VS, SAFE, DAY, 1.0, 2, faces, write_videos=False)
    run(root, VS, SAFE, DAY, "done", 1.0, config_json="")
    con = reports.connect(root)
    page = reports.html_page(con, {"course": SAFE})
    assert 'id="signals"' in page and "Signals inferred: attention, emotion." in page
