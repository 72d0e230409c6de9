"""A lecture's student keys -> course-wide ids: seat map, roster, pseudonyms stable across lectures."""

import re
from datetime import date

import numpy as np

from fer_stream.identity import forget, store
from fer_stream.identity.matching import Gallery, SeatMap
from fer_stream.identity.resolve import resolve_students
from tests.faces.synthetic import SEATS, mode, near, person, summary


def test_resolve_with_a_seat_map(tmp_path):
    store.save_seat_map(tmp_path, "ML1", SeatMap.from_json(SEATS))
    tracks = summary([(100, 200), (500, 60), (600, 300)])
    keys = {1: "s001", 2: "s002", 3: "s003"}
    r = resolve_students(tmp_path, "ML1", "ab" * 32, date(2024, 3, 5), keys, tracks, (640, 360), {})
    assert r.mode == "seats" and (r.matched, r.unknown) == (2, 1)
    assert r.student_ids == {"s001": "st-1", "s002": "st-2", "s003": "unknown-abababab-1"}
    assert not (tmp_path / "identity" / "ML1" / store.PSEUDONYM_FILE).exists()  # nothing biometric


def test_roster_mode_matches_enrolled_and_numbers_the_unknown(tmp_path):
    alice, bob, carol = person(3)
    g = Gallery(["alice", "bob"], np.stack([alice, bob]), ["", ""], ["", ""])
    store.save_gallery(store.course_dir(tmp_path, "ML1") / store.ROSTER_FILE, g)
    keys = {1: "s001", 2: "s002", 3: "s003", 4: "s004"}
    desc = {1: np.stack([near(bob), near(bob)]), 2: near(carol)[None], 3: near(alice)[None]}  # 4: none
    vid = "0123456789" + "f" * 54
    r = resolve_students(tmp_path, "ML1", vid, date(2024, 3, 5), keys, summary([(0, 0)] * 4), None, desc)
    assert r.mode == "roster"
    assert r.student_ids == {
        "s001": "bob",
        "s002": "unknown-01234567-1",
        "s003": "alice",
        "s004": "unknown-01234567-2",
    }
    assert (r.matched, r.unknown) == (2, 2)
    assert not (tmp_path / "identity" / "ML1" / store.PSEUDONYM_FILE).exists()  # carol is not kept


def test_pseudonyms_are_stable_across_lectures_never_reused_and_forgettable(tmp_path):
    a, b, c = person(3)
    when = date(2024, 3, 5)
    keys2 = {1: "s001", 2: "s002"}
    r1 = resolve_students(
        tmp_path,
        "ML1",
        "1" * 64,
        when,
        keys2,
        summary([(0, 0)] * 2),
        None,
        {1: near(a)[None], 2: near(b)[None]},
    )
    h = store.course_hash("ML1")
    assert r1.mode == "pseudonym" and r1.new == 2
    assert r1.student_ids == {"s001": f"{h}-p0001", "s002": f"{h}-p0002"}
    # next lecture: the same two in other seats, and a newcomer
    keys3 = {1: "s001", 2: "s002", 3: "s003"}
    desc = {1: near(b)[None], 2: near(c)[None], 3: near(a)[None]}
    r2 = resolve_students(tmp_path, "ML1", "2" * 64, when, keys3, summary([(0, 0)] * 3), None, desc)
    assert r2.student_ids == {"s001": f"{h}-p0002", "s002": f"{h}-p0003", "s003": f"{h}-p0001"}
    assert (r2.matched, r2.new) == (2, 1)
    assert all(re.fullmatch(r"[0-9a-f]{8}-p\d{4}", s) for s in r2.student_ids.values())
    path = tmp_path / "identity" / "ML1" / store.PSEUDONYM_FILE
    assert mode(path) == 0o600 and len(store.load_gallery(path)[0]) == 5
    # re-analysing lecture 2 gives the same ids and replaces its rows instead of adding more
    again = resolve_students(tmp_path, "ML1", "2" * 64, when, keys3, summary([(0, 0)] * 3), None, desc)
    assert again.student_ids == r2.student_ids and again.new == 0
    assert len(store.load_gallery(path)[0]) == 5
    # another course: other ids for the same faces
    r3 = resolve_students(tmp_path, "ML2", "3" * 64, when, keys2, summary([(0, 0)] * 2), None, {1: a[None]})
    assert r3.student_ids["s001"] == f"{store.course_hash('ML2')}-p0001" and r3.unknown == 1

    # forget p0001 in ML1: its two rows go; a later lecture gives the face a new number
    assert forget.forget_student(tmp_path, f"{h}-p0001", "ML1") == 2
    assert forget.forget_student(tmp_path, f"{h}-p0001", "ML1") == 0
    g, nxt = store.load_gallery(path)
    assert f"{h}-p0001" not in g.ids.tolist() and len(g) == 3 and nxt == 4
    r4 = resolve_students(tmp_path, "ML1", "4" * 64, when, {1: "s001"}, summary([(0, 0)]), None, {1: a[None]})
    assert r4.student_ids == {"s001": f"{h}-p0004"}
