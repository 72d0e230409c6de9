"""Fixtures of the reports tests: the hand-made records (``helpers.build``) and the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from fer_stream import cli, reports
from fer_stream.cli import report
from tests.reports.helpers import build


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("records"))


@pytest.fixture(scope="module")
def con(data):
    return reports.connect(data)


@pytest.fixture
def fer_stream(monkeypatch):
    """`fer-stream ...` in-process, with this module's commands only (others are tested elsewhere)."""
    assert report in cli.COMMANDS
    monkeypatch.setattr(cli, "COMMANDS", (report,))
    return lambda *argv: cli.main([str(a) for a in argv])
