"""The report SQL is package data read with importlib.resources: it ships in the wheel and is found
wherever the package is (a checkout, site-packages, a zip), never through the repository's layout.
The installed wheel itself is checked by ``.ci/wheel_check.sh``."""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import pytest

from fer_stream import reports
from tests.helpers import ROOT

VIEWS = ("_lectures", "_student_lectures", "_head_up")  # the shared views every connection runs


def test_every_report_is_a_resource_of_the_package():
    names = reports.report_names()
    assert names, "no reports found"
    sql = resources.files("fer_stream.reports") / "sql"
    for name in [*names, *VIEWS]:
        assert (sql / f"{name}.sql").is_file(), name
    # Inside the package's own folder, not beside it in the repository
    package = Path(reports.__file__).resolve().parent
    assert Path(str(reports.SQL_DIR)).resolve() == package / "sql"
    assert not (ROOT / "sql").exists(), "a second copy of the SQL at the repository's root"


def test_pyproject_ships_every_sql_file_and_template():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    package = Path(reports.__file__).resolve().parent
    files = [p.relative_to(package).as_posix() for p in package.glob("*/*") if p.suffix in {".sql", ".j2"}]
    assert len(files) >= len(reports.report_names()) + len(VIEWS) + 1  # + the page template
    globs = package_data.get("fer_stream.reports", [])
    for f in files:
        assert any(fnmatch.fnmatch(f, g) for g in globs), f"{f} is not in the wheel: package-data {globs}"
    assert "py.typed" in package_data.get("fer_stream", []) and (package.parent / "py.typed").is_file()


# Runs in a fresh interpreter whose fer_stream is the zip: lists, describes and runs a report, and
# finds the HTML page template.
ZIPPED = """
import json, sys
sys.path.insert(0, sys.argv[1])
import fer_stream
from fer_stream import reports
from fer_stream.reports import html
con = reports.connect(sys.argv[2])
print(json.dumps({
    "template": html._ENV.get_template("page.html.j2").filename,
    "file": fer_stream.__file__,
    "names": reports.report_names(),
    "describe": reports.describe("student_attention"),
    "rows": reports.run_report(con, "student_attention").num_rows,
}))
"""


def test_reports_run_from_a_zipped_package(tmp_path, data, con):
    """A zip has no folder on disk: a path built from ``__file__`` finds nothing there."""
    package = Path(reports.__file__).resolve().parents[1]  # .../fer_stream
    archive = tmp_path / "fer_stream.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted(package.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pt":  # weights: not needed
                z.write(p, p.relative_to(package.parent).as_posix())
    run = subprocess.run(
        [sys.executable, "-c", ZIPPED, str(archive), str(data)],
        cwd=tmp_path,  # not the repository: nothing found by accident beside the package
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    assert got["file"].startswith(str(archive)), got["file"]
    assert got["template"].startswith(str(archive)), got["template"]  # the HTML page's template too
    assert got["names"] == reports.report_names()
    assert got["describe"] == reports.describe("student_attention")
    assert got["rows"] == reports.run_report(con, "student_attention").num_rows > 0
