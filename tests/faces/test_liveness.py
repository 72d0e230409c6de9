"""Static faces (issue 22): synthetic pictures and faces through ``MotionMeter``/``static_tracks``, and
real clips with a photo composited in (``bench/static_faces.py`` measured the thresholds)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_stream.faces.liveness import (
    CHANGE_EDGES,
    N_BINS,
    MotionMeter,
    StillnessConfig,
    TrackMotion,
    appearance_change,
    face_window,
    static_tracks,
)
from tests.helpers import shared

S = 48  # crop side, as the pipeline's classifier takes


def face(
    turn: float = 0.0, nod: float = 0.0, eyes: float = 1.0, mouth: float = 0.3, seed: int = 0
) -> np.ndarray:
    """A 48 px aligned gray face: skin with a fixed texture, brows, eyes, nose and mouth. ``turn`` and
    ``nod`` move the inner features against the outline (pixels), as a turning head does; ``eyes``
    (0 closed .. 1 open) and ``mouth`` (openness) change the expression."""
    rng = np.random.default_rng(seed)
    img = np.full((S, S), 60.0)
    cv2.ellipse(img, (24, 26), (17, 22), 0, 0, 360, 170, -1)
    img += cv2.GaussianBlur(rng.normal(0, 12, (S, S)), (0, 0), 1.5)  # skin texture: the same every frame
    cx, cy = 24 + turn, 24 + nod
    for side in (-1, 1):
        x = int(round(cx + side * 8))
        cv2.line(img, (x - 4, int(cy - 7)), (x + 4, int(cy - 7)), 70, 2)  # brow
        cv2.ellipse(img, (x, int(cy - 3)), (4, max(1, int(round(2.5 * eyes)))), 0, 0, 360, 40, -1)
    cv2.line(img, (int(cx), int(cy)), (int(cx + 1), int(cy + 7)), 120, 2)  # nose
    cv2.ellipse(img, (int(cx), int(cy + 12)), (6, max(1, int(round(4 * mouth)))), 0, 0, 360, 50, -1)
    return img.clip(0, 255).astype(np.uint8)


def filmed(img: np.ndarray, rng: np.random.Generator, gain: float = 1.0, keyframe: bool = True) -> np.ndarray:
    """``img`` as a camera and H.264 deliver it: brightness ``gain``, sensor noise, JPEG-like
    compression at low quality, and the alignment's jitter (a shift of up to a pixel)."""
    out = img.astype(np.float64) * gain + (rng.normal(0, 3, img.shape) if keyframe else 0)
    ok, enc = cv2.imencode(".jpg", out.clip(0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 35])
    out = cv2.imdecode(enc, cv2.IMREAD_GRAYSCALE)
    dy, dx = rng.integers(-1, 2, 2)
    return np.roll(out, (int(dy), int(dx)), (0, 1))


def run(
    frames, meter: MotionMeter | None = None, fps: float = 2.0, track_id: int = 1, box=(100, 100, 148, 148)
):
    """Feed one track's crops (a box that may move: ``box`` or a list of boxes) at ``fps``."""
    meter = meter or MotionMeter()
    for i, crop in enumerate(frames):
        b = box[i] if isinstance(box, list) else box
        meter.update(np.array([track_id]), i / fps, np.array([b], np.float32), crop[None])
    return meter


def test_a_filmed_picture_is_static():
    """A fixed photo, through noise, compression, brightness drift and alignment jitter: static."""
    rng = np.random.default_rng(1)
    photo = face()
    frames = [filmed(photo, rng, gain=1 + 0.1 * np.sin(i / 3), keyframe=i % 2 == 0) for i in range(30)]
    box = [
        (100 + rng.normal(0, 0.4), 100 + rng.normal(0, 0.4), 148, 148) for _ in range(30)
    ]  # detector jitter
    s = run(frames, box=box).summary()
    assert static_tracks(s).tolist() == [1]
    assert s.change(0.75)[0] < StillnessConfig().max_change


def test_a_face_that_changes_is_not_static():
    """Same photo noise, but the face turns, nods, blinks and talks a little: not static."""
    rng = np.random.default_rng(2)
    frames = []
    for i in range(30):
        live = face(turn=2.5 * np.sin(i / 2.3), nod=1.5 * np.sin(i / 3.1), eyes=0.0 if i % 7 == 3 else 1.0,
                    mouth=0.3 + 0.3 * (i % 5 == 0))  # fmt: skip
        frames.append(filmed(live, rng))
    s = run(frames).summary()
    assert static_tracks(s).size == 0
    assert s.change(0.75)[0] > StillnessConfig().max_change


def test_a_face_that_only_sways_is_not_static():
    """Identical crops, but the box drifts by a sixth of a face width: the centre spread shows it."""
    rng = np.random.default_rng(3)
    photo = face()
    frames = [filmed(photo, rng) for _ in range(30)]
    box = [(100 + 8 * np.sin(i / 3), 100, 148 + 8 * np.sin(i / 3), 148) for i in range(30)]
    s = run(frames, box=box).summary()
    assert s.centre_spread[0] > StillnessConfig().max_centre_spread
    assert static_tracks(s).size == 0
    # the same crops without the sway are a picture: the sway alone made the difference
    assert static_tracks(run(frames).summary()).tolist() == [1]


def test_too_little_evidence_is_undecided():
    rng = np.random.default_rng(4)
    photo = face()
    cfg = StillnessConfig()
    few = run([filmed(photo, rng) for _ in range(cfg.min_samples - 1)]).summary()
    assert static_tracks(few).size == 0  # too few samples
    fast = run([filmed(photo, rng) for _ in range(20)], fps=10.0).summary()  # 20 samples over 1.9 s
    assert fast.last_pts_s[0] - fast.first_pts_s[0] < cfg.min_seconds
    assert static_tracks(fast).size == 0  # too short a time
    enough = run([filmed(photo, rng) for _ in range(cfg.min_samples)]).summary()
    assert static_tracks(enough).tolist() == [1]


def test_empty_frames_and_empty_summaries():
    meter = MotionMeter()
    for t in range(5):
        meter.update(np.zeros(0, np.int64), float(t), np.zeros((0, 4)), np.zeros((0, S, S), np.uint8))
    s = meter.summary()
    assert len(s) == 0 and s.change_hist.shape == (0, N_BINS)
    assert static_tracks(s).dtype == np.int64 and static_tracks(s).size == 0
    assert len(TrackMotion.concat([])) == 0 and len(TrackMotion.concat([s, TrackMotion.empty()])) == 0
    # a frame with faces after empty ones, and faces absent for a while: the track goes on
    meter.update(np.array([7]), 6.0, np.array([[0, 0, 40, 40]]), face()[None])
    meter.update(np.zeros(0, np.int64), 6.5, np.zeros((0, 4)), np.zeros((0, S, S), np.uint8))
    meter.update(np.array([7]), 7.0, np.array([[0, 0, 40, 40]]), face()[None])
    s = meter.summary()
    assert s.track_id.tolist() == [7] and s.samples.tolist() == [2] and s.change_hist.sum() == 1


def test_a_class_of_pictures_in_one_frame():
    """40 faces per frame (a class), each its own track: every one judged, none mixed up."""
    rng = np.random.default_rng(6)
    photos = [face(seed=k) for k in range(40)]
    m = MotionMeter()
    for i in range(10):
        boxes = np.array([[60 * k, 0, 60 * k + 48, 48] for k in range(40)], np.float32)
        m.update(np.arange(1, 41), i / 2, boxes, np.stack([filmed(p, rng) for p in photos]))
    s = m.summary()
    assert s.samples.tolist() == [10] * 40 and static_tracks(s).tolist() == list(range(1, 41))


def test_segments_merge():
    """Two segments analysed apart (disjoint ids): the concatenated evidence judges each track as
    its own segment did; a poster seen in both is two static tracks."""
    rng = np.random.default_rng(5)
    photo = face(seed=1)
    seg = []
    for k in (0, 1):
        m = MotionMeter()
        for i in range(20):
            t = 60.0 * k + i / 2
            live = face(
                turn=2.5 * np.sin(i / 2), eyes=0.0 if i % 6 == 2 else 1.0, mouth=0.3 + 0.3 * (i % 4 == 0)
            )
            crops = np.stack([filmed(photo, rng), filmed(live, rng)])
            ids = np.array([k * 1_000_000 + 1, k * 1_000_000 + 2])
            m.update(ids, t, np.array([[10, 10, 58, 58], [200, 10, 248, 58]], np.float32), crops)
        seg.append(m.summary())
    both = TrackMotion.concat(seg)
    assert both.track_id.tolist() == [1, 2, 1_000_001, 1_000_002]
    assert static_tracks(both).tolist() == [1, 1_000_001]
    assert np.array_equal(np.concatenate([static_tracks(p) for p in seg]), static_tracks(both))
    with pytest.raises(ValueError, match="unique"):
        TrackMotion.concat([seg[0], seg[0]])


def test_brightness_contrast_and_alignment_do_not_count():
    """A picture's crops differ by brightness, contrast and the similarity transform the alignment
    puts in: none of that is change. Moving the nose and mouth against the outline is."""

    def blurred(img: np.ndarray) -> np.ndarray:  # as the meter blurs crops before comparing
        return cv2.GaussianBlur(img.astype(np.float64), (0, 0), 1.0)[None]

    a = blurred(face())
    ref = face_window(a)
    assert appearance_change(ref, a * 0.6 + 40)[0][0] < 0.01
    assert appearance_change(ref, np.roll(a, 2, axis=2))[0][0] < 0.05  # a shift
    m = cv2.getRotationMatrix2D((23.5, 23.5), 7.0, 1.06)  # the alignment rotated 7 degrees, 6 % larger
    turned = blurred(
        cv2.warpAffine(face(), m, (S, S), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    )
    assert appearance_change(ref, turned)[0][0] < 0.06
    assert appearance_change(ref, blurred(face(turn=3, mouth=0.9)))[0][0] > 0.3
    change, registered = appearance_change(ref, turned)
    assert registered.shape == ref.shape and np.abs(registered.mean()) < 1e-6


def test_change_quantile_reads_the_histogram():
    hist = np.zeros((2, N_BINS), np.int32)
    hist[0, 10] = 3
    hist[0, 50] = 1  # 3 small changes and a large one: the median is small, the maximum large
    m = TrackMotion([1, 2], [5, 1], [0, 0], [2, 0], [40, 40], [0, 0], hist)
    assert m.change(0.5)[0] == pytest.approx(CHANGE_EDGES[10])
    assert m.change(1.0)[0] == pytest.approx(CHANGE_EDGES[50])
    assert np.isnan(m.change(0.5)[1])  # one sample: no change measured


def test_bad_inputs_raise():
    m = MotionMeter()
    with pytest.raises(ValueError, match="crops"):
        m.update(np.array([1]), 0.0, np.zeros((1, 4)), np.zeros((2, S, S), np.uint8))
    with pytest.raises(ValueError, match="twice"):
        m.update(np.array([1, 1]), 0.0, np.zeros((2, 4)), np.zeros((2, S, S), np.uint8))
    with pytest.raises(ValueError, match="landmarks"):
        m.update(np.array([1]), 0.0, np.zeros((1, 4)), np.zeros((1, S, S), np.uint8), np.zeros((1, 68, 2)))
    with pytest.raises(ValueError):
        StillnessConfig(change_quantile=0.0)


# --- real clips --------------------------------------------------------------------------------------


def composited(tmp_path: Path, base, picture: np.ndarray, encoding: str = "crf35"):
    """``base`` with ``picture`` pasted in its free region, encoded, run through the face path: the
    bench's judgement per track (kind person/picture, rows, decision)."""
    from bench import static_faces as bench
    from fer_stream.config import PipelineConfig
    from fer_stream.lecture import make_face_stage

    x = base.free[0] + (base.free[1] - base.free[0] - picture.shape[1]) // 2
    cond = bench.Condition("test", base.name, encoding, 1.0, ((x, 8, picture),))
    clip = tmp_path / "clip.mp4"
    bench.write_clip(clip, cond, base)
    run = bench.measure(clip, make_face_stage(PipelineConfig(), crop_size=S))
    tracks, counts = bench.judge(run, cond.rects(), StillnessConfig())
    return tracks, counts


def test_real_still_person_and_a_photo_on_the_wall(tmp_path):
    """A real man sitting still (single_face.mp4, played back and forth to 20 s) with a real photo
    (obama.jpg, face 40 px) pasted beside him, in CRF 35 video: the photo is static, he is not."""
    from bench import static_faces as bench
    from fer_stream.faces.mtcnn import MTCNN

    video, photo_path = shared("videos/single_face.mp4"), shared("identity/obama/obama.jpg")
    photo = cv2.cvtColor(cv2.imread(str(photo_path)), cv2.COLOR_BGR2RGB)
    det = MTCNN(min_face_px=40).detect(photo)
    box = det.xyxy[int(np.argmax(det.wh[:, 0]))]
    base = bench.video_base("man_bounce20s", video, (380, 632), bounce_to_s=20.0)
    tracks, counts = composited(tmp_path, base, bench.portrait(photo, box, 40))
    pic, person = counts["picture"], counts["person"]
    assert pic["rows"] >= 30 and pic["rows_static"] == pic["rows"], tracks
    assert pic["rows_with_student"] == 0
    assert person["rows"] >= 30 and person["rows_static"] <= 0.02 * person["rows"], tracks


def test_demo_lecture_has_no_static_student_but_a_pasted_still_is(tmp_path):
    """The demo's seated faces move as people do (fer_stream.demo): none is static. The same kind of
    face pasted unanimated on the wall is."""
    from bench import static_faces as bench
    from fer_stream import demo

    clip = demo.make_demo_clip(tmp_path / "demo.mp4", seconds=10.0, fps=10, seed=0)
    lfw, _ = demo._faces()
    still = cv2.copyMakeBorder(cv2.resize(lfw[0], (demo.FACE, demo.FACE), interpolation=cv2.INTER_CUBIC),
                               20, 20, 20, 20, cv2.BORDER_REPLICATE)  # fmt: skip
    base = bench.video_base("demo", clip, (1160, 1272))
    tracks, counts = composited(tmp_path, base, np.repeat(still[..., None], 3, 2), encoding="default")
    assert counts["person"]["rows"] > 100 and counts["person"]["rows_static"] == 0, tracks
    assert (
        counts["picture"]["rows"] >= 15 and counts["picture"]["rows_static"] == counts["picture"]["rows"]
    ), tracks
