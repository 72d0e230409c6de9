"""Nothing to analyse is exit 4 (exits.NO_DATA) with one line, before Ray starts: an empty input
folder (it exited 0, "0 videos") and a glob that matches nothing (it exited 1). A path that does
not exist stays exit 1 (issue 24, item 2)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fer_stream import inputs
from fer_stream.cli import exits, main
from tests.helpers import ROOT


@pytest.fixture
def no_ray(monkeypatch):
    """Fail the test if the command tries to start or join Ray: it must stop before."""
    from fer_stream import pipeline

    def refuse(*a, **k):
        raise AssertionError("Ray was started for nothing to analyse")

    monkeypatch.setattr(pipeline, "connect", refuse)


def test_empty_folder_and_unmatched_glob_are_no_data(tmp_path, capsys, no_ray):
    empty = tmp_path / "in"
    (empty / "ML101").mkdir(parents=True)
    (empty / "ML101" / "notes.txt").write_text("no video here\n")
    out = tmp_path / "out"
    for given in ([empty], [tmp_path / "in" / "*.mp4"], [empty, tmp_path / "nothing-*.mov"]):
        assert main(["analyze", "--input", *map(str, given), "--output", str(out)]) == exits.NO_DATA, given
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and ("no video files in" in err or "no file matches" in err), err
    assert main(["analyze", "--input", str(tmp_path / "missing"), "--output", str(out)]) == exits.ERROR
    assert "no such file or folder" in capsys.readouterr().err
    assert not out.exists()  # nothing written for nothing to do


def test_require_videos():
    with pytest.raises(inputs.NoVideosError, match="no video files in"):
        inputs.require_videos([ROOT / "docs"])
    with pytest.raises(inputs.NoVideosError, match="no file matches"):
        inputs.require_videos([str(ROOT / "docs" / "*.mp4")])
    assert issubclass(inputs.NoVideosError, FileNotFoundError)  # callers catching that still do


def test_the_job_script_exits_4_on_an_empty_folder(tmp_path):
    (tmp_path / "in").mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run(
        [
            sys.executable,
            "jobs/analyze_lectures.py",
            "--input",
            str(tmp_path / "in"),
            "--output",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert p.returncode == exits.NO_DATA, p.stderr
    assert p.stderr.strip().startswith("analyze_lectures: no video files in")
