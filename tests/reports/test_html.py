"""HTML pages (fer_stream.reports.html): a course's files, the pages opened in a real headless
Chromium (sections laid out, charts decoded and drawn), escaping, and `fer-stream report --format html`."""

from __future__ import annotations

import pyarrow.csv as pacsv

from fer_stream import reports, retention
from fer_stream.ops import layout
from tests.reports.helpers import D1, D2, D3, D4, VA, VB, VC, VD, VE, A, check_page, lecture


def test_html_pages_in_chromium(data, tmp_path):
    written = reports.write_course_reports(data, "ML101", tmp_path / "out")
    names = sorted(p.name for p in written)
    assert names == sorted(
        [f"ML101_{n}.csv" for n in reports.report_names()]
        + ["ML101.html"]
        + [f"ML101_{d}_{v[:8]}.html" for d, v in [(D1, VA), (D2, VB), (D3, VC), (D4, VD)]]
    )
    # the CSVs are the course's reports
    csv = pacsv.read_csv(tmp_path / "out" / "ML101_lecture_summary.csv").to_pylist()
    assert [r["video_id"] for r in csv] == [VA, VB, VC, VD, VE]
    course_page = tmp_path / "out" / "ML101.html"
    text = course_page.read_text()
    assert "NotAVideoError" in text and "stu-1" in text
    assert "<script" not in text and 'src="http' not in text and "<link" not in text  # self-contained
    img = check_page(course_page, tmp_path, n_students=2)
    lecture_page = tmp_path / "out" / f"ML101_{D1}_{VA[:8]}.html"
    check_page(lecture_page, tmp_path, n_students=2)
    assert img.shape[1] >= 1100


def test_html_date_range_and_escaping(data, tmp_path):
    written = reports.write_course_reports(data, "BIO 2/x", tmp_path, date_from=D1, date_to=D1)
    assert sorted(p.name for p in written)[0] == "BIO_2_x.html"
    con = reports.connect(data)
    page = reports.html_page(con, {"course": "ML101", "student": "stu-1", "falls": "2", "moments": 1})
    assert "stu-1" in page and "stu-2" not in page and page.count('<img class="chart"') == 3
    page = reports.html_page(con, {"course": "<script>alert(1)</script>"})
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert reports.write_course_reports(data, "ML101", tmp_path / "late", date_from=D4)[-1].name.endswith(
        f"{D4}_{VD[:8]}.html"
    )


def test_cli_html(fer_stream, data, tmp_path, capsys):
    args = ("report", "lecture_timeline", "--data", data, "--format", "html", "--param")
    assert fer_stream(*args, f"video={VA}", "--param", "bucket_s=2", "--out", tmp_path / "b.html") == 0
    page = (tmp_path / "b.html").read_text()
    assert "bucket_s=2.0" in page and page.index("<h3>lecture_timeline</h3>") < page.index(
        "<h3>lecture_summary"
    )
    assert fer_stream(*args, "falls=x") == 2  # the page checks the named report's parameters
    assert "takes no parameter 'falls'" in capsys.readouterr().err
    out = tmp_path / "a.html"
    assert (
        fer_stream(
            "report",
            "student_trend",
            "--data",
            data,
            "--param",
            "course=ML101",
            "--format",
            "html",
            "--out",
            out,
        )
        == 0
    )
    page = out.read_text()
    assert page.index("<h3>student_trend</h3>") < page.index("<h3>lecture_summary</h3>")
    assert page.count('<img class="chart"') == 3


HOSTILE_COURSE = "<script>alert(1)</script> \"x\" & 'y'"


def test_the_template_escapes_a_hostile_course_name(tmp_path):
    """A course name is data: in the title, the scope line, the tables and the file names."""
    lecture(tmp_path / "data", VA, HOSTILE_COURSE, D1, 2.0, 2, [(1, "stu-1", A, 0.75, "happy")])
    written = reports.write_course_reports(tmp_path / "data", HOSTILE_COURSE, tmp_path / "out")
    pages = [p for p in written if p.suffix == ".html"]
    assert sorted(p.name for p in pages) == sorted(
        [layout.course_page(HOSTILE_COURSE), layout.lecture_page(HOSTILE_COURSE, D1, VA)]
    )
    assert all(p.parent == tmp_path / "out" for p in written)  # the slug keeps '/' out of names
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt; &#34;x&#34; &amp; &#39;y&#39;"
    for page in pages:
        text = page.read_text()
        assert "<script" not in text and "alert(1)</script>" not in text
        assert f"<title>Lecture {D1} ({escaped}, video {VA[:8]})</title>" in text
        assert f"<h1>Lecture {D1} ({escaped}, video {VA[:8]})</h1>" in text
        assert f'<td class="">{escaped}</td>' in text  # the course column of the tables
    check_page(pages[0], tmp_path, n_students=1)  # and the page still lays out (skips without Chromium)


def test_retention_finds_the_files_a_course_wrote(data, tmp_path):
    """The names come from ops.layout both ways: what write_course_reports writes, retention removes."""
    out = layout.reports_dir(tmp_path, D1)
    written = reports.write_course_reports(data, "BIO 2/x", out)
    reports.write_course_reports(data, "ML101", out)  # another course's files are not the course's
    assert retention.course_report_files(tmp_path, "BIO 2/x") == sorted(written)
