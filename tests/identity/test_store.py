"""The owner-only store: folder names checked, files 0600 in 0700 folders written atomically,
unreadable files as ``IdentityStoreError``."""

import os

import numpy as np
import pytest

from fer_stream.identity import store
from fer_stream.identity.matching import Gallery
from tests.faces.synthetic import mode, person


def test_course_names_a_folder_and_is_checked():
    with pytest.raises(ValueError, match="course"):
        store.course_dir("/tmp", "../etc")
    assert store.course_dir("/out", "ML1").as_posix() == "/out/identity/ML1"
    assert store.course_hash("ML1") != store.course_hash("ML2") and len(store.course_hash("ML1")) == 8


def test_store_is_owner_only_and_written_atomically(tmp_path):
    old = os.umask(0o022)  # a permissive umask must not leak into the store
    try:
        g = Gallery(["a", "b"], np.stack(person(2)), ["", ""], ["", ""])
        path = store.course_dir(tmp_path, "ML1") / store.ROSTER_FILE
        store.save_gallery(path, g)
        store.save_gallery(path, g)  # overwrite in place
    finally:
        os.umask(old)
    assert mode(tmp_path / "identity") == 0o700 and mode(path.parent) == 0o700 and mode(path) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["roster.npz"]  # no temp files left
    back, nxt = store.load_gallery(path)
    assert back.ids.tolist() == ["a", "b"] and nxt == 1
    np.testing.assert_array_equal(back.descriptors, g.descriptors)
    path.write_bytes(b"garbage")
    with pytest.raises(store.IdentityStoreError):
        store.load_gallery(path)


def test_an_unreadable_seat_map_is_a_store_error(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(store.IdentityStoreError, match="bad.json"):
        store.load_seat_map(tmp_path / "bad.json")
    (tmp_path / "bad.json").write_text('{"seats": [{"student_id": "a", "rect": [0, 0, 1.5, 1]}]}')
    with pytest.raises(store.IdentityStoreError, match="within the frame"):
        store.load_seat_map(tmp_path / "bad.json")
