"""Enrolment: roster.csv, descriptors of the real photos in ../shared matched back, and
``fer-stream enroll`` (all or nothing, owner-only)."""

from pathlib import Path

import cv2
import pytest

from fer_stream.identity import roster as rosters
from fer_stream.identity import store
from fer_stream.identity.matching import match
from tests.faces.synthetic import mode
from tests.helpers import shared


def test_read_roster(tmp_path):
    (tmp_path / "r.csv").write_text("student_id,photo\nst-1,a.jpg,b.jpg\n\nst-2,/abs/c.jpg\nst-1,d.jpg\n")
    roster = rosters.read_roster(tmp_path / "r.csv")
    assert roster == {
        "st-1": [tmp_path / "a.jpg", tmp_path / "b.jpg", tmp_path / "d.jpg"],
        "st-2": [Path("/abs/c.jpg")],
    }
    (tmp_path / "bad.csv").write_text("st-1\n")
    with pytest.raises(ValueError, match="photo"):
        rosters.read_roster(tmp_path / "bad.csv")


@pytest.fixture(scope="module")
def enroller():
    return rosters.Enroller("mtcnn")


def test_enrol_two_people_match_the_test_photos_and_the_third_stays_unknown(enroller, tmp_path):
    """Obama and Biden enrolled from identity/<person>/; Alex Lacamoire, and the child in
    obama_and_biden.jpg, are not, and must come out unknown. The distances measured on these photos
    (docs/PRIVACY.md, bench/identity.py) leave margin on both sides of 0.6."""
    root = shared("identity")
    roster = {p: sorted((root / p).glob("*.jpg")) for p in ("obama", "biden")}
    info = rosters.enroll_roster(tmp_path, "POL1", roster, enroller)
    assert info == {"course": "POL1", "students": 2, "photos": 4, "store": info["store"]}
    g, _ = store.load_gallery(store.course_dir(tmp_path, "POL1") / store.ROSTER_FILE)

    def who(name):
        rgb = cv2.cvtColor(cv2.imread(str(root / "test" / name)), cv2.COLOR_BGR2RGB)
        det = enroller.detector.detect(rgb)
        lm = enroller.landmarks(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), det.xyxy)
        names = match(enroller.describe(rgb, det.xyxy, lm), g.descriptors, g.ids, 0.6)
        return [n for _, n in sorted(zip(det.xyxy[:, 0].tolist(), names))]  # left to right

    assert who("obama1.jpg") == ["obama"]
    assert who("obama_and_biden.jpg") == ["biden", "obama", None]  # the child on the right: unknown
    assert who("alex_lacamoire1.jpg") == [None]


def test_enroll_cli_all_or_nothing_and_owner_only(tmp_path, capsys):
    from fer_stream.cli import exits, main

    root = shared("identity")
    out = tmp_path / "out"
    (tmp_path / "roster.csv").write_text(f"student_id,photo\nalex,{root / 'alex_lacamoire' / 'img1.jpg'}\n")
    (tmp_path / "seats.json").write_text('{"seats": [{"student_id": "alex", "rect": [0, 0, 1, 1]}]}')
    (tmp_path / "bad.csv").write_text(f"alex,{root / 'alex_lacamoire' / 'img1.jpg'}\nbob,missing.jpg\n")
    assert (
        main(["enroll", "--course", "C1", "--roster", str(tmp_path / "bad.csv"), "--output", str(out)])
        == exits.USAGE
    )
    assert "missing.jpg" in capsys.readouterr().err and not (out / "identity" / "C1" / "roster.npz").exists()
    args = ["enroll", "--course", "C1", "--output", str(out), "--roster", str(tmp_path / "roster.csv")]
    assert main([*args, "--seats", str(tmp_path / "seats.json")]) == exits.OK
    assert '"students": 1' in capsys.readouterr().out
    folder = out / "identity" / "C1"
    assert {p.name: mode(p) for p in folder.iterdir()} == {"roster.npz": 0o600, "seats.json": 0o600}
    assert mode(folder) == mode(out / "identity") == 0o700
    with pytest.raises(SystemExit):
        main(["enroll", "--course", "C1", "--output", str(out)])  # neither --roster nor --seats
    assert (
        main(["enroll", "--course", "../C1", "--output", str(out), "--seats", str(tmp_path / "seats.json")])
        == exits.USAGE
    )
    assert "course" in capsys.readouterr().err
