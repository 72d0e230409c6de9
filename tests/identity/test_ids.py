"""Student ids people give (roster rows, seat maps) are checked where they enter the store: path
pieces, spreadsheet formulas, spaces and control characters are refused (issue 24, item 3)."""

from __future__ import annotations

import pytest

from fer_stream.cli import exits, main
from fer_stream.identity import StudentIdError, check_student_id, enroll_roster, read_roster, store
from fer_stream.identity.matching import SeatMap

BAD = [
    "../../etc/x",
    "a/b",
    '=HYPERLINK("http://evil.example","x")',
    "+1",
    "-1",
    "@SUM(A1)",
    "x\ty",
    ".hidden",
    "two words",
    "x;y",
    "x" * 65,
    "",
    "é",
]
GOOD = ["st-0412", "alex", "A.B_c-1", "0", "x" * 64, "1a2b3c4d-p0007", "unknown-1a2b3c4d-1"]


@pytest.mark.parametrize("sid", BAD)
def test_bad_ids_are_refused(sid):
    with pytest.raises(StudentIdError, match="must be 1-64 letters, digits"):
        check_student_id(sid)


def test_good_ids_pass_and_are_stripped():
    assert [check_student_id(s) for s in GOOD] == GOOD
    assert check_student_id("  st-1 ") == "st-1"


def test_roster_and_seat_map_refuse_bad_ids_before_writing(tmp_path):
    (tmp_path / "r.csv").write_text("student_id,photo\nst-1,a.jpg\n../../etc/x,b.jpg\n")
    with pytest.raises(StudentIdError, match=r"r\.csv:3: student id '\.\./\.\./etc/x'"):
        read_roster(tmp_path / "r.csv")
    with pytest.raises(StudentIdError, match="HYPERLINK"):  # before any model is loaded or file written
        enroll_roster(tmp_path, "C1", {'=HYPERLINK("x")': ["a.jpg"]})
    with pytest.raises(StudentIdError, match="seat map"):
        store.save_seat_map(tmp_path, "C1", SeatMap(("=1+1",), [[0, 0, 1, 1]]))
    assert not (tmp_path / "identity").exists()


def test_enroll_cli_bad_id_is_usage_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    (tmp_path / "roster.csv").write_text('alex,a.jpg\n=HYPERLINK("http://x"),b.jpg\n')
    (tmp_path / "seats.json").write_text('{"seats": [{"student_id": "@SUM(A1)", "rect": [0, 0, 1, 1]}]}')
    roster = ["enroll", "--course", "C1", "--output", str(out), "--roster", str(tmp_path / "roster.csv")]
    assert main(roster) == exits.USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "roster.csv:2" in err and "letters, digits" in err
    assert main(
        ["enroll", "--course", "C1", "--output", str(out), "--seats", str(tmp_path / "seats.json")]
    ) == (exits.USAGE)
    assert "@SUM(A1)" in capsys.readouterr().err
    assert not out.exists()
