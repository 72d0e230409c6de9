"""Every `fer-stream` command exits with a code of the one table, ``fer_stream.cli.exits``."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest

from fer_stream import cli
from fer_stream.cli import exits, main

CLI_DIR = Path(cli.__file__).parent


def _literal_exits(path: Path) -> list[str]:
    """``file:line`` of each ``return <int>``, ``sys.exit(<int or str>)`` and ``SystemExit(...)``
    with a literal in a cli module (``sys.exit(main())`` passes a code on and is fine)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        value = None
        if isinstance(node, ast.Return):
            value = node.value
        elif isinstance(node, ast.Call) and node.args:
            name = ast.unparse(node.func)
            if name in ("sys.exit", "exit", "SystemExit"):
                value = node.args[0]
        if isinstance(value, ast.Constant) and isinstance(value.value, (int, str)):
            found.append(f"{path.name}:{node.lineno}")
    return found


def test_no_cli_module_exits_with_a_bare_number_or_message():
    modules = sorted(CLI_DIR.glob("*.py"))
    assert len(modules) > 10  # every command module was read
    assert [hit for path in modules for hit in _literal_exits(path)] == []


def test_every_code_of_the_table_is_distinct_and_described():
    codes = [exits.OK, exits.ERROR, exits.USAGE, exits.PARTIAL, exits.NO_DATA, exits.LOCKED]
    assert len(set(codes)) == len(codes) and set(exits.TABLE) == set(codes)
    assert exits.USAGE == 2  # what argparse exits with on a bad argument, so both mean the same


def test_models_lists_every_builtin_and_exits_ok(capsys):
    from fer_stream.models import BUILTIN

    assert main(["models"]) == exits.OK
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["name"] for r in rows] == list(BUILTIN)


def test_enroll_bad_course_is_usage_and_unreadable_seat_map_is_error(tmp_path, capsys):
    seats = tmp_path / "seats.json"
    seats.write_text('{"seats": [{"student_id": "alex", "rect": [0, 0, 1, 1]}]}')
    out = tmp_path / "out"
    assert main(["enroll", "--course", "../C1", "--output", str(out), "--seats", str(seats)]) == exits.USAGE
    assert "course" in capsys.readouterr().err
    missing = str(tmp_path / "missing.json")
    assert main(["enroll", "--course", "C1", "--output", str(out), "--seats", missing]) == exits.ERROR
    assert "missing.json" in capsys.readouterr().err
    assert main(["enroll", "--course", "C1", "--output", str(out), "--seats", str(seats)]) == exits.OK
    assert json.loads(capsys.readouterr().out)["seats"]["seats"] == 1
    with pytest.raises(SystemExit) as e:  # neither --roster nor --seats: argparse's usage error
        main(["enroll", "--course", "C1", "--output", str(out)])
    assert e.value.code == exits.USAGE


def test_demo_without_its_extra_is_an_error_with_the_reason(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "skimage.data", None)  # `import skimage.data` raises ImportError
    assert main(["demo", "--workdir", str(tmp_path)]) == exits.ERROR
    err = capsys.readouterr().err
    assert err.startswith("fer-stream demo: ") and "scikit-image" in err and "Traceback" not in err
