"""Forgetting: a student's roster rows, pseudonym rows and seats; the pseudonym rows of lectures."""

from datetime import date

import numpy as np
import pytest

from fer_stream.identity import store
from fer_stream.identity.forget import forget_lectures, forget_student
from fer_stream.identity.matching import Gallery, SeatMap
from fer_stream.identity.resolve import resolve_students
from tests.faces.synthetic import mode, near, person, summary


def test_forget_student_covers_roster_and_seats_in_every_course(tmp_path):
    assert forget_student(tmp_path, "alice") == 0  # no store at all
    alice, bob = person(2)
    g = Gallery(["alice", "alice", "bob"], np.stack([alice, near(alice), bob]), [""] * 3, [""] * 3)
    for course in ("ML1", "ML2"):
        store.save_gallery(store.course_dir(tmp_path, course) / store.ROSTER_FILE, g)
    seats = SeatMap(("alice", "bob"), [[0, 0, 0.5, 1], [0.5, 0, 1, 1]])
    store.save_seat_map(tmp_path, "ML3", seats)
    assert forget_student(tmp_path, "alice", "ML1") == 2
    assert forget_student(tmp_path, "alice") == 2 + 1  # ML2's photos, ML3's seat
    for course in ("ML1", "ML2"):
        left, _ = store.load_gallery(store.course_dir(tmp_path, course) / store.ROSTER_FILE)
        assert left.ids.tolist() == ["bob"]
    assert store.stored_seat_map(tmp_path, "ML3").student_ids == ("bob",)
    assert mode(store.course_dir(tmp_path, "ML3") / store.SEATS_FILE) == 0o600


def test_forget_lectures_by_video_or_date(tmp_path):
    a, b = person(2)
    keys = {1: "s001", 2: "s002"}
    for vid, day in (("1" * 64, date(2024, 1, 10)), ("2" * 64, date(2024, 3, 5))):
        desc = {1: near(a)[None], 2: near(b)[None]}
        resolve_students(tmp_path, "ML1", vid, day, keys, summary([(0, 0)] * 2), None, desc)
    path = tmp_path / "identity" / "ML1" / store.PSEUDONYM_FILE
    assert forget_lectures(tmp_path, before=date(2024, 2, 1)) == 2
    assert store.load_gallery(path)[0].video_id.tolist() == ["2" * 64] * 2
    assert forget_lectures(tmp_path, video_id="2" * 64, course="ML1") == 2
    assert len(store.load_gallery(path)[0]) == 0 and store.load_gallery(path)[1] == 3
    with pytest.raises(ValueError):
        forget_lectures(tmp_path)
