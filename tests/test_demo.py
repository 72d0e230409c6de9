"""The README's first command: the demo lecture, end to end."""

import pytest

pytest.importorskip("skimage", reason="the demo extra (scikit-image) is not installed")

from fer_stream import cli  # noqa: E402
from fer_stream.demo import make_demo_clip  # noqa: E402
from fer_stream.labels import FER2013_LABELS  # noqa: E402
from fer_stream.video import probe  # noqa: E402


def test_demo_clip_is_a_real_720p_video(tmp_path):
    info = probe(make_demo_clip(tmp_path / "d.mp4", seconds=2.0, fps=5))
    assert (info.width, info.height, info.codec) == (1280, 720, "h264")
    assert abs(info.duration_s - 2.0) < 0.3


def test_demo_run_finds_the_class(tmp_path, capsys):
    assert cli.main(["demo", "--workdir", str(tmp_path)]) == 0
    from fer_stream.demo import run_demo

    rows = run_demo(tmp_path, sample_fps=2.0)
    # 18 seated faces + the astronaut; a few tiny LFW faces may be missed by MTCNN.
    assert 14 <= len(rows) <= 19, rows
    assert len({r["student"] for r in rows}) == len(rows)
    assert all(r["dominant_emotion"] in FER2013_LABELS for r in rows)
    # the students who put their heads down or left are visible in fewer frames than the rest
    visible = sorted(r["frames_visible"] for r in rows)
    assert visible[0] < visible[-1]
    assert "demo lecture" in capsys.readouterr().out
