"""The one atomic writer: the whole new file or the old one, the umask's mode or the one given."""

from __future__ import annotations

import json
import os
import stat

import pytest

from fer_stream.ops.atomic import write_atomic, write_json_atomic


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_replaces_the_file_whole_with_the_umask_or_the_given_mode(tmp_path):
    old = os.umask(0o027)  # deploy/'s service umask: the team reads, others do not
    try:
        path = write_atomic(tmp_path / "sub" / "a.bin", lambda f: f.write(b"one"))
        assert path.read_bytes() == b"one" and _mode(path) == 0o640  # as open() would give
        write_atomic(path, lambda f: f.write(b"two"), mode=0o600)
        assert path.read_bytes() == b"two" and _mode(path) == 0o600
    finally:
        os.umask(old)
    assert [p.name for p in path.parent.iterdir()] == ["a.bin"]  # no temporary left


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = write_json_atomic(tmp_path / "state.json", {"n": 1})

    def broken(f):
        f.write(b'{"n": 2, half')
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, broken)
    assert json.loads(path.read_text()) == {"n": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_json_is_indented_and_writes_other_values_as_strings(tmp_path):
    from datetime import date

    path = write_json_atomic(tmp_path / "r.json", {"day": date(2024, 3, 5)})
    assert path.read_text() == '{\n "day": "2024-03-05"\n}'
