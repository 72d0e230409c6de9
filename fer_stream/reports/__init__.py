"""Reports: SQL over the Parquet records (:mod:`.query`) and HTML pages from a template (:mod:`.html`).

``from fer_stream import reports`` gives the public API of both; definitions: ``docs/REPORTS.md``::

    con = reports.connect("output/")  # views faces, frames, videos, lectures
    table = reports.run_report(con, "student_attention", course="ML101", min_visible_s=60)
    reports.write(table, "csv", "attention.csv")
    reports.write_course_reports("output/", "ML101", "site/")  # pages + CSVs of a course
"""

from fer_stream.reports.html import html_page, page_bucket_s, write_course_reports
from fer_stream.reports.query import (
    FORMATS,
    PARAMS,
    SQL_DIR,
    NoRecordsError,
    Param,
    ReadError,
    RefusedError,
    ReportError,
    bind,
    connect,
    describe,
    format_cell,
    format_table,
    parse_params,
    report,
    report_names,
    report_params,
    run_report,
    run_sql,
    write,
)

__all__ = [
    "FORMATS",
    "PARAMS",
    "SQL_DIR",
    "NoRecordsError",
    "Param",
    "ReadError",
    "RefusedError",
    "ReportError",
    "bind",
    "connect",
    "describe",
    "format_cell",
    "format_table",
    "html_page",
    "page_bucket_s",
    "parse_params",
    "report",
    "report_names",
    "report_params",
    "run_report",
    "run_sql",
    "write",
    "write_course_reports",
]
