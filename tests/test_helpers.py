"""The test helpers themselves: missing real data skips a test run by hand and fails it under CI; the
embedded Ray fixture comes back for a test after another one shut it down."""

import pytest

from tests import helpers


@pytest.fixture
def no_data(monkeypatch, tmp_path):
    monkeypatch.setattr(helpers, "SHARED", tmp_path / "missing")


@pytest.mark.parametrize("ci", [None, "", "false", "0"])
def test_missing_data_skips_a_run_by_hand(no_data, monkeypatch, ci):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match="real data not available: .*missing/faces/x.jpg"):
        helpers.shared("faces/x.jpg")


@pytest.mark.parametrize("ci", ["true", "True", "1"])
def test_missing_data_fails_under_ci(no_data, monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match="CI must run with ../shared/data"):
        helpers.shared("faces/x.jpg")


def test_present_data_is_returned(monkeypatch, tmp_path):
    (tmp_path / "faces").mkdir()
    (tmp_path / "faces" / "x.jpg").write_bytes(b"")
    monkeypatch.setattr(helpers, "SHARED", tmp_path)
    monkeypatch.setenv("CI", "true")
    assert helpers.shared("faces/x.jpg") == tmp_path / "faces" / "x.jpg"


def test_local_ray_is_up(local_ray):
    assert local_ray.is_initialized() and local_ray.cluster_resources()["CPU"] == 2
    local_ray.shutdown()  # a test that shuts Ray down ...


def test_local_ray_is_back_for_the_next_test(local_ray):
    assert local_ray.is_initialized()  # ... does not leave the next one without it
    assert local_ray.get(local_ray.put(7)) == 7
