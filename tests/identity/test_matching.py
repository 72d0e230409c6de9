"""The maths of identity: one-to-one matching, the median per student, seat-map geometry."""

import numpy as np
import pytest

from fer_stream.identity import matching
from tests.faces.synthetic import RNG, SEATS, near, person, unit

# --------------------------------------------------------------------------------------------------
# Matching


def test_match_is_one_to_one_within_threshold_and_uses_the_closest_photo():
    a, b = person(2)
    gallery = np.stack([a, near(a, 0.9), b])  # a has a second, poor photo
    ids = ["alice", "alice", "bob"]
    # two queries close to alice: only the closer gets her; the other is left unmatched, never bob
    q = np.stack([near(a, 0.3), near(a, 0.1), near(b, 0.2), unit(RNG.normal(size=128))])
    assert matching.match(q, gallery, ids, 0.6) == [None, "alice", "bob", None]
    assert matching.match(q, gallery, ids, 0.05) == [None] * 4  # nobody within a tight threshold
    assert matching.match(np.zeros((0, 128)), gallery, ids) == []
    assert matching.match(q, np.zeros((0, 128)), []) == [None] * 4
    with pytest.raises(ValueError, match="ids"):
        matching.match(q, gallery, ids[:2])


def test_student_descriptor_is_the_median_over_tracks_and_ignores_an_outlier():
    a = person(1)[0]
    far = unit(RNG.normal(size=128))
    tracks = {1: np.stack([near(a, 0.05), near(a, 0.05)]), 2: np.stack([far, near(a, 0.05)]), 9: far[None]}
    got = matching.student_descriptors(tracks, {1: "s001", 2: "s001", 3: "s002"})
    assert list(got) == ["s001"]  # track 9 is no student's; s002 has no descriptor
    assert got["s001"].shape == (128,) and got["s001"].dtype == np.float32
    assert (
        np.linalg.norm(got["s001"] - a)
        < 0.2
        < np.linalg.norm(np.mean(np.concatenate([*tracks.values()]), 0) - a)
    )


# --------------------------------------------------------------------------------------------------
# Seat maps


def test_seat_map_units_and_validation():
    norm = matching.SeatMap.from_json(SEATS)
    px = matching.SeatMap.from_json(
        {
            "units": "pixels",
            "frame_size": [640, 360],
            "seats": [
                {"student_id": "st-1", "rect": [0, 0, 320, 360]},
                {"student_id": "st-2", "rect": [320, 0, 640, 180]},
            ],
        }
    )
    np.testing.assert_allclose(norm.rects, px.rects)
    back = matching.SeatMap.from_json(norm.to_json())  # what the store writes reads back the same
    assert back.student_ids == ("st-1", "st-2") and back.room == "B-204"
    np.testing.assert_allclose(back.rects, norm.rects)
    for bad in (
        {"seats": [{"student_id": "a", "rect": [0.5, 0, 0.2, 1]}]},  # x2 < x1
        {"seats": [{"student_id": "a", "rect": [0, 0, 1.5, 1]}]},  # outside the frame
        {"seats": [{"student_id": "a", "rect": [0, 0, 1, 1]}, {"student_id": "a", "rect": [0, 0, 1, 1]}]},
        {"units": "pixels", "seats": [{"student_id": "a", "rect": [0, 0, 1, 1]}]},  # no frame_size
        {"seats": [{"rect": [0, 0, 1, 1]}]},
    ):
        with pytest.raises(ValueError):
            matching.SeatMap.from_json(bad)


def test_seat_assignment_is_one_student_per_seat():
    seats = matching.SeatMap.from_json(SEATS)
    # two students in st-1's seat: the one nearer its centre gets it; one in no seat (bottom right)
    got = seats.assign(np.array([[0.25, 0.5], [0.1, 0.9], [0.75, 0.25], [0.9, 0.9]]))
    assert got == ["st-1", None, "st-2", None]
