"""The lecture analysis core on real clips and synthetic frames (no Ray)."""

import json

import numpy as np
import pytest

from fer_stream import cli
from fer_stream.faces.detect import iou_matrix, make_detector
from fer_stream.faces.track import FaceTracker
from fer_stream.lecture import FaceStage, analyze_video, student_keys
from fer_stream.video import DecodeStats, NotAVideoError
from tests.helpers import shared


@pytest.fixture(scope="module")
def stage():
    return FaceStage(make_detector("mtcnn", min_face_px=20), crop_size=48)


def _run(path, stage, fps):
    tracker = FaceTracker()
    stats = DecodeStats()
    frames = list(analyze_video(path, stage, tracker, sample_fps=fps, stats=stats))
    return frames, student_keys(tracker), stats


def test_empty_frame_gives_empty_parallel_arrays(stage):
    blank = np.full((120, 160, 3), 128, np.uint8)
    (ff,) = stage([(0, 0.0, blank)])
    assert len(ff) == 0
    assert ff.det.xyxy.shape == (0, 4) and ff.landmarks68.shape == (0, 68, 2)
    assert ff.crops.shape == (0, 48, 48) and ff.yaw.shape == (0,) and ff.track_id.shape == (0,)
    assert stage([]) == []


@pytest.mark.parametrize(
    "clip,fps", [("videos/single_face.mp4", 2.0), ("videos/WolfgangLanger_Pexels.mp4", 1.0)]
)
def test_one_person_clip_yields_exactly_one_student(stage, clip, fps):
    frames, keys, stats = _run(shared(clip), stage, fps)
    assert stats.finished and not stats.truncated
    n_faces = [len(ff) for ff in frames]
    # frames are sampled by time: ~duration * fps of them, every one reported even without faces
    assert abs(len(frames) - stats.expected_duration_s * fps) <= 1.5
    assert sum(n > 0 for n in n_faces) >= 0.6 * len(frames)  # she looks away at times
    assert max(n_faces) == 1
    assert len(set(keys.values())) == 1, keys
    for ff in frames:
        assert ff.crops.shape == (len(ff), 48, 48) and ff.crops.dtype == np.uint8
        assert np.all((ff.det.score >= 0.7) & (ff.det.score <= 1))
        assert set(ff.track_id) <= set(keys) | {t for t in ff.track_id if t not in keys}


def test_no_face_clip_gives_frames_without_faces(stage):
    frames, keys, _ = _run(shared("videos/no_face.mp4"), stage, 2.0)
    assert len(frames) >= 6 and all(len(ff) == 0 for ff in frames)
    assert keys == {}


def test_hevc_clip_face_then_no_face(stage):
    frames, keys, _ = _run(shared("videos/face_noface.mov"), stage, 1.0)
    n = [len(ff) for ff in frames]
    assert n[0] >= 1 and n[-1] == 0, n  # a face first, then the animation without one
    assert len(set(keys.values())) == 1


def test_bad_file_is_a_typed_error(stage, tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video")
    with pytest.raises(NotAVideoError):
        list(analyze_video(bad, stage))


def test_cli_detect_json_on_image(capsys):
    path = shared("faces/multi_face.jpg")
    assert cli.main(["detect", str(path), "--json"]) == 0
    (line,) = capsys.readouterr().out.strip().splitlines()
    faces = json.loads(line)
    assert len(faces) >= 3
    for f in faces:
        assert {"box", "score", "yaw", "pitch", "roll", "ear", "landmarks"} <= set(f)
        x1, y1, x2, y2 = f["box"]
        assert x2 > x1 and y2 > y1 and len(f["landmarks"]) == 5


def test_cli_detect_video_one_line_per_frame(capsys):
    path = shared("videos/single_face.mp4")
    assert cli.main(["detect", str(path), "--json", "--sample-fps", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5  # 2.4 s at 2 fps: t = 0, 0.5, 1, 1.5, 2
    assert all(isinstance(json.loads(x), list) for x in lines)
    assert all(f["track_id"] >= 1 for x in lines for f in json.loads(x))


def test_full_detection_every_nth_frame_finds_the_faces_every_frame_finds():
    clip = shared("videos/WolfgangLanger_Pexels.mp4")  # one person moving about for 19.7 s
    detector = make_detector("mtcnn", min_face_px=20)
    every, _, _ = _run(clip, FaceStage(detector, detect_every=1), 2.0)
    nth, keys, _ = _run(clip, FaceStage(detector, detect_every=4), 2.0)
    assert [f.frame_index for f in every] == [f.frame_index for f in nth]
    assert sum(map(len, every)) == sum(map(len, nth)) == len(every)  # her face in every sampled frame
    for a, b in zip(every, nth):
        assert iou_matrix(a.det.xyxy, b.det.xyxy)[0, 0] > 0.7
    assert len(set(keys.values())) == 1
