"""`fer-stream sql` and the reports are read-only over the records: each attack of issue 24 is refused
by DuckDB (locked connection) or by the statement check, with exit 2 and a one-line reason, and the
records, the views and the files around them are untouched."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from fer_stream import reports
from fer_stream.cli import exits


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


@pytest.fixture
def fresh(data):
    """A connection of its own (an attack that got through must not spoil the module's ``con``)."""
    return reports.connect(data)


def _attacks(data: Path, outside: Path) -> list[str]:
    faces_file = next((data / "faces").rglob("*.parquet"))
    return [
        f"copy (select * from faces where false) to '{faces_file}'",  # wipes a lecture's rows today
        f"copy (select * from faces where false) to '{faces_file}' (format parquet)",
        f"copy faces to '{outside / 'faces.csv'}'",
        f"attach '{outside / 'new.duckdb'}' as x",
        f"export database '{outside / 'dump'}'",
        "select * from read_text('/etc/passwd')",
        "select * from read_csv('/etc/passwd')",
        f"select * from read_text('{outside / 'secret.txt'}')",
        f"select * from read_text('{data / 'notes.txt'}')",  # inside --data but no record file
        "select * from glob('/etc/*')",
        "select * from 'https://example.com/x.parquet'",
        "install httpfs",
        "load httpfs",
        "create table t as select 1 as a",
        "create view mine as select 1 as a",
        "insert into faces select * from faces",
        "drop view faces",
        "set enable_external_access = true",
        "reset lock_configuration",
        "select 1; drop view faces",
        f"select 1; copy (select 1) to '{outside / 'smuggled.csv'}'",
        "pragma table_info('faces')",
        "call checkpoint()",
        f"explain analyze copy (select 1) to '{outside / 'e.csv'}'",
        "",
    ]


def test_every_attack_is_refused_and_changes_nothing(data, fresh, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret\n")
    (data / "notes.txt").write_text("not a record\n")
    before, around = _digest(data), _digest(outside)
    counts = {v: fresh.sql(f"select count(*) from {v}").fetchall() for v in ("faces", "frames", "videos")}
    for query in _attacks(data, outside):
        with pytest.raises(reports.RefusedError) as e:
            reports.run_sql(fresh, query)
        assert "\n" not in str(e.value), query
    assert _digest(data) == before and _digest(outside) == around  # nothing written, nothing created
    assert {v: fresh.sql(f"select count(*) from {v}").fetchall() for v in counts} == counts
    assert reports.run_report(fresh, "student_attention", course="ML101").num_rows == 7


def test_queries_still_run(fresh, data):
    faces_file = next((data / "faces").rglob("*.parquet"))
    ok = {
        "select count(*) from faces": [(23,)],
        "with n as (select count(*) as k from frames) select k from n": [(17,)],
        "from lectures select count(*)": [(5,)],
        "select count(*) from lectures_in('ML101', null, null, null)": [(4,)],
        "values (1)": [(1,)],
        # a record file by its path: the records are readable however they are named
        f"select count(*) > 0 from read_parquet('{faces_file.absolute()}')": [(True,)],
    }
    for query, want in ok.items():
        assert reports.run_sql(fresh, query).to_pylist() == [
            dict(zip(reports.run_sql(fresh, query).column_names, w)) for w in want
        ], query
    assert "student_id" in reports.run_sql(fresh, "describe faces").column("column_name").to_pylist()
    assert reports.run_sql(fresh, "summarize frames").num_rows > 0
    for name in reports.report_names():  # every shipped report on the locked connection
        reports.run_report(fresh, name)


def test_cli_sql_refuses_with_usage_and_one_line(fer_stream, data, tmp_path, capsys):
    faces_file = next((data / "faces").rglob("*.parquet"))
    before = faces_file.read_bytes()
    query = f"copy (select * from faces where false) to '{faces_file}'"
    assert fer_stream("sql", "--data", data, query) == exits.USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "read-only" in err and "COPY" in err
    assert faces_file.read_bytes() == before
    assert fer_stream("sql", "--data", data, "select * from read_text('/etc/passwd')") == exits.USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "only the records under --data can be read" in err
    assert fer_stream("sql", "--data", data, "select count(*) from faces", "--format", "csv") == exits.OK
    assert capsys.readouterr().out.splitlines()[1] == "23"
