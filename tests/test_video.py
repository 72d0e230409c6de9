"""fer_stream.video on tiny clips synthesised with PyAV (no media in the repo), plus the real clips.

Every synthetic frame carries its own index in two flat grey blocks (``index % 25`` and ``index // 25``
in steps of 8 grey levels, far above H.264's error at these sizes), so a test can tell *which* frame
was yielded, not only how many.
"""

from __future__ import annotations

import errno
import os
import pickle
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from fer_stream.video import (
    SEEK_MIN_SAMPLE_PERIOD_KEYFRAMES,
    DecodeDamage,
    DecodeStats,
    EmptyFileError,
    NotAVideoError,
    NoVideoStreamError,
    TruncatedVideoError,
    UnsupportedCodecError,
    VideoError,
    VideoNotFoundError,
    VideoUnreadableError,
    check_decoded,
    iter_frames,
    probe,
)
from tests.helpers import shared

W, H = 160, 120  # big enough that the noise half dominates the file size (truncation tests cut bytes)


# --------------------------------------------------------------------------------------------------
# Synthetic clips


def code_image(index: int, w: int = W, h: int = H, seed: int = 0) -> np.ndarray:
    """RGB frame: top half = two grey blocks coding ``index``; bottom half = noise (bitrate)."""
    img = np.random.default_rng(seed + index).integers(0, 256, (h, w, 3), dtype=np.uint8)
    img[: h // 2, : w // 2] = 16 + 8 * (index % 25)
    img[: h // 2, w // 2 :] = 16 + 8 * (index // 25)
    return img


def read_code(image: np.ndarray) -> int:
    """Inverse of :func:`code_image` for an upright RGB ``(H, W, 3)`` or gray ``(H, W)`` image."""
    g = image if image.ndim == 2 else image[..., 1]
    h, w = g.shape
    lo = g[h // 8 : h // 2 - h // 8, w // 8 : w // 2 - w // 8].mean()
    hi = g[h // 8 : h // 2 - h // 8, w // 2 + w // 8 : w - w // 8].mean()
    return int(round((hi - 16) / 8)) * 25 + int(round((lo - 16) / 8))


def encode(
    path: Path,
    n: int = 100,
    fps: int = 25,
    *,
    codec: str = "libx264",
    size: tuple[int, int] = (W, H),
    gop: int | None = None,
    pts_ms: list[int] | None = None,
    rotation: int | None = None,
    audio: bool = False,
    fmt: str | None = None,
    options: dict | None = None,
) -> Path:
    """Encode ``n`` coded frames to ``path``; ``pts_ms`` gives a variable frame rate (time base 1 ms)."""
    w, h = size
    codec_options = {"preset": "veryfast"}  # keeps B-frames, so pts != dts order is exercised
    if codec == "libx265":
        codec_options["x265-params"] = "log-level=error"
    target = str(path) if isinstance(path, Path) else path  # or a file object
    with av.open(target, "w", format=fmt, options=options or {}) as container:
        stream = container.add_stream(codec, rate=fps, options=codec_options)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if gop:
            stream.codec_context.gop_size = gop
        if pts_ms is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if rotation is not None:
            stream.set_display_rotation(rotation)  # counter-clockwise, FFmpeg's display matrix sense
        astream = container.add_stream("aac", rate=16000) if audio else None
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(code_image(i, w, h), format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
        if astream is not None:
            _mux_silence(container, astream, seconds=n / fps)
    return path


def _mux_silence(container, astream, seconds: float) -> None:
    for k in range(int(seconds * 16000 / 1024)):
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16000, k * 1024
        container.mux(astream.encode(frame))
    container.mux(astream.encode())


def collect(path, sample_fps, **kw) -> list[tuple[int, float, int]]:
    """``(frame_index, pts_s rounded to 0.1 ms, code read from the image)`` of every yielded frame."""
    return [(i, round(t, 4), read_code(img)) for i, t, img in iter_frames(path, sample_fps, **kw)]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """4 s, 25 fps, 100 frames in each container; ``gop5`` has a keyframe every 0.2 s."""
    d = tmp_path_factory.mktemp("clips")
    return {
        "mp4": encode(d / "c.mp4", gop=12, audio=True),
        "mkv": encode(d / "c.mkv", gop=12),
        "ts": encode(d / "c.ts", gop=12),
        "gop5": encode(d / "gop5.mp4", gop=5),
    }


# --------------------------------------------------------------------------------------------------
# probe


def test_probe_mp4(clips):
    info = probe(clips["mp4"])
    assert (info.width, info.height, info.codec, info.rotation) == (W, H, "h264", 0)
    assert info.avg_fps == pytest.approx(25)
    assert info.duration_s == pytest.approx(4.0, abs=0.05)
    assert info.frame_count == 100
    assert info.has_audio
    assert info.frame_shape == (H, W)
    assert 0 < info.keyframe_interval_s <= 12 / 25 + 1e-6  # x264 may add scene-cut keyframes
    assert not probe(clips["gop5"]).has_audio


@pytest.mark.parametrize("kind", ["mkv", "ts"])
def test_probe_without_frame_count(clips, kind):
    with av.open(str(clips[kind])) as c:
        assert c.streams.video[0].frames == 0  # the premise: these containers do not count frames
    info = probe(clips[kind])
    assert info.frame_count is None
    assert info.duration_s == pytest.approx(4.0, abs=0.05)
    assert info.avg_fps == pytest.approx(25)


def test_probe_measures_duration_when_no_header_says(tmp_path):
    class Pipe:  # write-only, unseekable: the mkv muxer can write neither duration nor cues
        def __init__(self, f):
            self.write = f.write

    path = tmp_path / "live.mkv"
    with open(path, "wb") as f:
        encode(Pipe(f), n=75, fmt="matroska")
    with av.open(str(path)) as c:
        assert c.duration is None and c.streams.video[0].duration is None
    assert probe(path).duration_s == pytest.approx(3.0, abs=0.05)


# --------------------------------------------------------------------------------------------------
# Sampling


@pytest.mark.parametrize("kind", ["mp4", "mkv", "ts"])
def test_sample_2fps_from_25fps(clips, kind):
    stats = DecodeStats()
    got = collect(clips[kind], 2.0, stats=stats)
    assert len(got) == 8  # 4 s * 2 fps
    for k, (index, pts, code) in enumerate(got):
        assert code == index  # frame_index names the frame whose picture we got
        assert pts == pytest.approx(index / 25, abs=1e-3)
        assert 0 <= pts - k * 0.5 < 1 / 25  # the first frame at or after each target
    assert np.diff([t for _, t, _ in got]) == pytest.approx(0.5, abs=0.05)
    assert stats.finished and stats.frames_yielded == 8 and stats.frames_decoded <= 100
    assert stats.lost_s == pytest.approx(0, abs=1e-6) and not stats.truncated
    check_decoded(stats)


@pytest.mark.parametrize("sample_fps", [25.0, 30.0, 1000.0])
def test_sample_at_or_above_source_rate_yields_every_frame(clips, sample_fps):
    got = collect(clips["mp4"], sample_fps)
    assert [c for _, _, c in got] == list(range(100))
    assert [i for i, _, _ in got] == list(range(100))


def test_variable_frame_rate_sampled_by_time(tmp_path):
    rng = np.random.default_rng(1)
    gaps = rng.choice([20, 33, 40, 100], size=79).tolist()
    gaps[30] = 700  # a stall: several targets fall inside it and must yield the next frame once
    pts_ms = np.concatenate([[0], np.cumsum(gaps)]).tolist()
    path = encode(tmp_path / "vfr.mp4", n=80, pts_ms=pts_ms, gop=10)
    pts = np.array(pts_ms) / 1000
    for sample_fps in (5.0, 3.0):
        targets = np.arange(0, pts[-1], 1 / sample_fps)
        firsts = sorted({int(np.searchsorted(pts, t - 1e-9)) for t in targets if t <= pts[-1]})
        expected = [(i, round(pts[i], 4), i) for i in firsts]
        assert collect(path, sample_fps, mode="decode") == expected
        # Seek mode and a segment starting mid-stream land after seeks: their frame indices come from
        # the mp4 index, and still name the right frames.
        assert collect(path, sample_fps, mode="seek") == expected
        split = float(pts[40])  # a segment boundary exactly on a frame
        assert collect(path, sample_fps, end_s=split) + collect(path, sample_fps, start_s=split) == expected


@pytest.mark.parametrize("kind", ["mp4", "mkv", "ts"])
@pytest.mark.parametrize("sample_fps", [2.0, 25.0])
@pytest.mark.parametrize("split", [1.0, 1.3])  # on the sampling grid, and off it
def test_segments_concatenate_to_the_whole(clips, kind, sample_fps, split):
    whole = collect(clips[kind], sample_fps, end_s=3.0)
    parts = collect(clips[kind], sample_fps, end_s=split) + collect(
        clips[kind], sample_fps, start_s=split, end_s=3.0
    )
    assert parts == whole
    assert all(t < 3.0 for _, t, _ in whole) and all(i == c for i, _, c in whole)
    first_of_second = collect(clips[kind], sample_fps, start_s=split, end_s=3.0)[0]
    assert first_of_second[1] >= split  # half-open: nothing before start_s


@pytest.mark.parametrize("sample_fps", [0.5, 1.0, 3.0, 25.0])
def test_seek_mode_yields_the_same_frames_as_decode_mode(clips, sample_fps):
    decoded, sought = DecodeStats(), DecodeStats()
    expected = collect(clips["gop5"], sample_fps, mode="decode", stats=decoded)
    assert collect(clips["gop5"], sample_fps, mode="seek", stats=sought) == expected
    assert decoded.seeks == 0
    if sample_fps <= 1:
        assert sought.seeks > 0 and sought.frames_decoded < decoded.frames_decoded


def test_auto_mode_seeks_only_when_samples_are_keyframe_intervals_apart(clips):
    kf = probe(clips["mp4"]).keyframe_interval_s  # <= 0.48 s (gop 12 at 25 fps, plus scene cuts)
    low, high, no_index = DecodeStats(), DecodeStats(), DecodeStats()
    assert collect(clips["mp4"], 0.5, stats=low) == collect(clips["mp4"], 0.5, mode="decode")
    collect(clips["mp4"], 25.0, stats=high)
    collect(clips["mkv"], 0.5, stats=no_index)  # mkv does not index every frame: keyframes unknown
    assert 1 / 0.5 >= SEEK_MIN_SAMPLE_PERIOD_KEYFRAMES * kf > 1 / 25.0
    assert (low.mode, high.mode, no_index.mode) == ("seek", "decode", "decode")
    assert low.seeks > 0 and high.seeks == 0 and no_index.seeks == 0


def test_end_s_past_the_end_and_empty_range(clips):
    assert len(collect(clips["mp4"], 1.0, start_s=2.0, end_s=99.0)) == 2
    assert collect(clips["mp4"], 1.0, start_s=2.0, end_s=2.0) == []
    assert collect(clips["mp4"], 1.0, start_s=50.0) == []


def test_bad_arguments_fail_at_call_time(clips):
    bad = [
        {"sample_fps": 0},
        {"sample_fps": 1, "start_s": -1},
        {"sample_fps": 1, "start_s": 2, "end_s": 1},
        {"sample_fps": 1, "mode": "fast"},
    ]
    for kwargs in bad:
        with pytest.raises(ValueError):
            iter_frames(clips["mp4"], **kwargs)


# --------------------------------------------------------------------------------------------------
# Rotation, gray, HEVC


@pytest.mark.parametrize(("ccw", "cw"), [(-90, 90), (90, 270), (180, 180)])
def test_rotation_from_display_matrix_makes_frames_upright(tmp_path, ccw, cw):
    img = np.zeros((48, 64, 3), np.uint8)
    img[:16, :16] = 255  # a marker in the coded picture's top-left corner
    path = tmp_path / "rot.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.set_display_rotation(ccw)
        for _ in range(3):
            c.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        c.mux(s.encode())
    info = probe(path)
    assert info.rotation == cw
    expected = np.rot90(img, k=-cw // 90)  # what a player shows: the picture turned clockwise by cw
    for gray in (False, True):
        (_, _, out), *_ = iter_frames(path, 1.0, gray=gray)
        assert out.shape[:2] == info.frame_shape == expected.shape[:2]
        assert out.flags.c_contiguous
        ys, xs = np.nonzero((out if gray else out[..., 0]) > 128)
        ye, xe = np.nonzero(expected[..., 0] > 128)
        assert (ys.mean(), xs.mean()) == pytest.approx((ye.mean(), xe.mean()), abs=1.5)


def test_rotation_from_legacy_rotate_tag(tmp_path):
    path = tmp_path / "tag.mkv"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.metadata["rotate"] = "90"  # FFmpeg 8's mp4 muxer ignores this tag; mkv keeps it as a tag
        c.mux(s.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")))
        c.mux(s.encode())
    assert probe(path).rotation == 90
    (_, _, out), *_ = iter_frames(path, 1.0)
    assert out.shape == (64, 48, 3)


def test_gray_is_the_y_plane(tmp_path):
    # 100 px wide: FFmpeg pads rows (line_size > width), which the Y-plane shortcut must drop.
    path = encode(tmp_path / "g.mp4", n=10, size=(100, 60))
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
        assert frame.planes[0].line_size > frame.width
        reference = frame.to_ndarray(format="gray")  # swscale: Y stretched to full range
    (_, _, y), *_ = iter_frames(path, 1.0, gray=True)
    (_, _, rgb), *_ = iter_frames(path, 1.0)
    assert y.shape == (60, 100) and y.dtype == np.uint8 and y.flags.c_contiguous
    # swscale rounds its range stretch in fixed point: equal within 1 grey level.
    assert np.abs(y.astype(int) - reference.astype(int)).max() <= 1
    assert read_code(y) == read_code(rgb) == 0


def test_hevc_decodes(tmp_path):
    path = encode(tmp_path / "h.mp4", n=40, codec="libx265", gop=10)
    info = probe(path)
    assert info.codec == "hevc" and info.frame_count == 40
    got = collect(path, 100.0)
    assert [c for _, _, c in got] == list(range(40)) == [i for i, _, _ in got]
    # x265 uses open GOPs: after a seek the leading frames before each keyframe must not be missed.
    times = [t for _, t, _ in collect(path, 7.0)]
    assert [t for _, t, _ in collect(path, 7.0, mode="seek")] == times
    assert [t for _, t, _ in collect(path, 7.0, end_s=0.9) + collect(path, 7.0, start_s=0.9)] == times


# --------------------------------------------------------------------------------------------------
# Bad input


def _assert_error(exc_info, path):
    err = exc_info.value
    assert isinstance(err, VideoError) and err.path == str(path) and str(path) in str(err)
    again = pickle.loads(pickle.dumps(err))  # errors travel between processes (Ray) intact
    assert type(again) is type(err) and str(again) == str(err)


@pytest.fixture
def audio_only(tmp_path) -> Path:
    path = tmp_path / "speech.m4a"
    with av.open(str(path), "w", format="mp4") as c:
        _mux_silence(c, c.add_stream("aac", rate=16000), seconds=1.0)
    return path


@pytest.fixture
def unknown_codec(clips, tmp_path) -> Path:
    # A real file whose codec no decoder handles: rename the sample entry fourcc 'avc1' in the mp4
    # header to an unregistered one (the 'avc1' brand in the ftyp box, before it, stays).
    data = bytearray(clips["gop5"].read_bytes())
    i = data.index(b"avc1", data.index(b"stsd"))
    data[i : i + 4] = b"zzzz"
    path = tmp_path / "unknown_codec.mp4"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("empty", EmptyFileError),
        ("text", NotAVideoError),
        ("audio_only", NoVideoStreamError),
        ("unknown_codec", UnsupportedCodecError),
        ("missing", VideoNotFoundError),
    ],
)
def test_bad_input_raises_typed_error(request, tmp_path, case, error):
    if case == "empty":
        path = tmp_path / "empty.mp4"
        path.touch()
    elif case == "text":
        path = tmp_path / "notes.mp4"
        path.write_text("These are lecture notes, not a video.\n" * 20)
    elif case == "missing":
        path = tmp_path / "missing.mp4"
    else:
        path = request.getfixturevalue(case)
    with pytest.raises(error) as exc_info:
        probe(path)
    _assert_error(exc_info, path)
    frames = iter_frames(path, 1.0)  # opening is lazy: the error comes with the first frame
    with pytest.raises(error) as exc_info:
        next(frames)
    _assert_error(exc_info, path)
    assert issubclass(VideoNotFoundError, FileNotFoundError)


def test_a_video_without_read_permission_is_unreadable_not_a_non_video(clips, tmp_path, monkeypatch):
    # A good clip this process may not read. Not root: chmod 0o000 gives a real EACCES from the
    # kernel. Root reads any file whatever its mode, so there av.open is patched to raise what it
    # raises on EACCES (av.error.PermissionError, errno 13) for this file only.
    path = tmp_path / "lecture.mp4"
    path.write_bytes(clips["mp4"].read_bytes())
    path.chmod(0o000)
    if os.geteuid() == 0:
        import fer_stream.video.container as container

        real_open = container.av.open

        def open_as_nobody(file, *a, **kw):
            if str(file) == str(path):
                raise av.error.PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
            return real_open(file, *a, **kw)

        monkeypatch.setattr(container.av, "open", open_as_nobody)
    for read in (lambda: probe(path), lambda: next(iter_frames(path, 1.0))):
        with pytest.raises(VideoUnreadableError) as exc_info:
            read()
        _assert_error(exc_info, path)
        assert isinstance(exc_info.value, PermissionError) and not isinstance(exc_info.value, NotAVideoError)
        assert "permission" in str(exc_info.value)
    path.chmod(0o644)
    monkeypatch.undo()
    assert probe(path).codec == "h264"  # the file itself was fine all along


@pytest.mark.parametrize("kind", ["mkv", "faststart.mp4"])
def test_truncated_file_yields_the_first_part_and_reports_the_loss(tmp_path, kind):
    # mkv and mp4 with the index first (faststart) declare the duration up front, so the loss is
    # measurable; an mp4 with its index at the end is unreadable when cut (-> NotAVideoError), and a
    # cut MPEG-TS just looks shorter (its duration is estimated from the last timestamps).
    options = {"movflags": "faststart"} if kind.endswith("mp4") else {}
    full = encode(tmp_path / f"full.{kind}", gop=12, options=options)
    data = full.read_bytes()
    cut = tmp_path / f"cut.{kind}"
    cut.write_bytes(data[: len(data) // 2])
    stats = DecodeStats()
    got = collect(cut, 100.0, stats=stats)
    assert 10 < len(got) < 90
    assert [c for _, _, c in got] == list(range(len(got)))  # the first part, in order, nothing skipped
    assert stats.finished and stats.truncated
    assert stats.expected_duration_s == pytest.approx(4.0, abs=0.05)
    assert stats.lost_s == pytest.approx(4.0 - len(got) / 25, abs=0.1)
    with pytest.raises(TruncatedVideoError) as exc_info:
        check_decoded(stats)
    _assert_error(exc_info, cut)
    # Seek mode and segments see the same first part, and the same loss.
    assert collect(cut, 2.0, mode="seek") == collect(cut, 2.0, mode="decode")
    tail = DecodeStats()
    collect(cut, 2.0, start_s=2.0, stats=tail)
    assert tail.finished and tail.truncated


def test_corrupt_packets_mid_stream_are_skipped(tmp_path):
    path = encode(tmp_path / "c.ts", n=150, gop=12)
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    # ~4 frames of garbage: breaks MPEG-TS packet sync and H.264 slices alike.
    data[mid : mid + 20000] = np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    stats = DecodeStats()
    got = collect(path, 100.0, stats=stats)
    assert stats.finished
    assert stats.corrupt_packets + stats.decode_errors > 0 or len(got) < 150
    indices, times, codes = zip(*got, strict=True)
    assert np.all(np.diff(indices) > 0) and np.all(np.diff(times) > 0)  # no frame twice, order kept
    # Decoding went on past the damage to the end, and frame indices, re-derived from pts after the
    # loss, still name the right frames (a concealed damaged frame may show garbage, so only after).
    assert codes[-30:] == indices[-30:] == tuple(range(120, 150))


def damage_bitstream(path: Path, n_bytes: int = 10_000, seed: int = 0) -> Path:
    """Overwrite ``n_bytes`` in the middle of the file with random bytes (a damaged copy or disk)."""
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + n_bytes] = (
        np.random.default_rng(seed).integers(0, 256, n_bytes, dtype=np.uint8).tobytes()
    )
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("kind", ["mp4", "mkv", "ts"])
@pytest.mark.parametrize("mode", ["decode", "seek"])
def test_bitstream_damage_is_counted_not_silent(tmp_path, kind, mode):
    # 10 kB of random bytes in the middle of a 6 s clip: FFmpeg conceals or drops the damage and only
    # logs it (mkv: no error at all, ~20 frames just vanish). The counts must show it; intact: zeros.
    intact = encode(tmp_path / f"intact.{kind}", n=150, gop=25)
    damaged = damage_bitstream(encode(tmp_path / f"damaged.{kind}", n=150, gop=25))
    for path, hurt in ((intact, False), (damaged, True)):
        stats = DecodeStats()
        got = collect(path, 2.0, mode=mode, stats=stats)
        damage = DecodeDamage.of(stats)
        assert stats.finished and len(got) >= 10
        if not hurt:
            assert damage == DecodeDamage() and not damage.incomplete and damage.describe() == ""
            continue
        assert damage.incomplete and damage.damaged_frames > 0, damage
        assert damage.lost_s == 0.0  # nothing at the end is lost: only counting tells
        if mode == "decode":  # every frame decoded: the frames that vanished are counted too
            assert damage.missing_frames > 0
            assert stats.frames_decoded + damage.missing_frames == 150
        assert "frames damaged" in damage.describe()
    assert (DecodeDamage(missing_frames=2) + DecodeDamage(decode_errors=1)).describe() == (
        "2 frames missing, 1 decode errors"
    )


def test_stopping_early_closes_the_file(clips):
    def open_fds(path: Path) -> int:
        fds = Path("/proc/self/fd")
        return sum(1 for fd in fds.iterdir() if os.path.realpath(fd) == str(path.resolve()))

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to count open file descriptors")
    stats = DecodeStats()
    frames = iter_frames(clips["mp4"], 25.0, stats=stats)
    for n, _ in enumerate(frames):
        if n == 0:
            assert open_fds(clips["mp4"]) == 1
        if n == 3:
            break
    frames.close()  # what a for-loop's break leaves to garbage collection, made explicit
    assert open_fds(clips["mp4"]) == 0
    assert stats.frames_yielded == 4 and not stats.finished and not stats.truncated
    with pytest.raises(ValueError):
        check_decoded(stats)


# --------------------------------------------------------------------------------------------------
# Real clips (../shared/data/videos)


def test_real_h264_clip():
    path = shared("videos/WolfgangLanger_Pexels.mp4")
    info = probe(path)
    assert (info.width, info.height, info.codec) == (640, 360, "h264")
    assert info.avg_fps == pytest.approx(23.976, abs=0.01)
    assert info.duration_s == pytest.approx(19.7, abs=0.1)
    assert info.has_audio
    stats = DecodeStats()
    got = [(i, t, img.shape) for i, t, img in iter_frames(path, 2.0, stats=stats)]
    assert len(got) == pytest.approx(info.duration_s * 2, abs=1)
    assert {s for _, _, s in got} == {(360, 640, 3)}
    assert np.diff([t for _, t, _ in got]) == pytest.approx(0.5, abs=1 / info.avg_fps)
    assert not stats.truncated and stats.corrupt_packets == 0


def test_real_clip_with_edit_list_counts_shown_frames():
    path = shared("videos/no_face.mp4")
    info = probe(path)
    # The mp4 holds 98 samples, but its edit list hides the first 3: 95 frames are shown.
    every = [(i, round(t, 4)) for i, t, _ in iter_frames(path, 1000.0, gray=True)]
    assert info.frame_count == len(every) == 95
    assert [i for i, _ in every] == list(range(95))
    assert [(i, round(t, 4)) for i, t, _ in iter_frames(path, 0.5, mode="seek", gray=True)] == every[::48]


def test_real_hevc_clip_with_variable_frame_rate():
    path = shared("videos/face_noface.mov")
    info = probe(path)
    assert (info.width, info.height, info.codec) == (960, 540, "hevc")
    assert info.duration_s == pytest.approx(6.4, abs=0.1)
    whole = [(i, round(t, 4)) for i, t, _ in iter_frames(path, 3.0, gray=True)]
    assert len(whole) == pytest.approx(info.duration_s * 3, abs=2)
    # Phone video: frame spacing alternates 1/30 and 1/24 s; seeks and segments still agree exactly.
    assert [(i, round(t, 4)) for i, t, _ in iter_frames(path, 3.0, mode="seek", gray=True)] == whole
    parts = [
        (i, round(t, 4))
        for s, e in ((0, 2.5), (2.5, None))
        for i, t, _ in iter_frames(path, 3.0, s, e, gray=True)
    ]
    assert parts == whole
