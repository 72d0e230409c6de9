"""Video in -> frames: probe a file and yield time-sampled frames lazily (PyAV).

``probe(path) -> VideoInfo`` reads what the container and the first decoded frame say about a video.
``iter_frames(path, sample_fps, ...)`` yields ``(frame_index, pts_s, image)`` for frames picked by
presentation time, one at a time, so a 2-hour lecture needs the memory of a few frames.

Sampling rule (both modes, any frame rate, constant or variable): targets lie on the absolute grid
``k / sample_fps`` seconds from the start of the stream; for each target the first frame whose
presentation time is ``>= target`` is yielded, once (a frame that satisfies several targets is yielded
once and the targets it covered are skipped). Because the grid is absolute and the rule only looks at a
frame and its predecessor, splitting ``[0, b)`` into ``[0, a)`` and ``[a, b)`` yields exactly the
frames of ``[0, b)``, for any ``a``; that is what lets one long video be processed in parallel segments.

Bad input raises a subclass of :class:`VideoError` carrying the path. A truncated or partly corrupt
file is not an error while decoding: whatever decodes is yielded and a :class:`DecodeStats` records
what was lost; :func:`check_decoded` turns too large a loss into :class:`TruncatedVideoError`.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Literal, NamedTuple

import av
import av.error
import cv2
import numpy as np

log = logging.getLogger(__name__)

# Auto mode seeks when samples are at least this many keyframe intervals apart (and the container
# indexes every frame, so keyframes are known). Seek mode only seeks when the keyframe before the next
# target lies ahead of the decoder, so it never decodes more frames than decode mode; measured by
# bench/decode.py (720p H.264, 2 s keyframe interval, 2 shared cores): seek vs decode 2.04 vs 2.25 s
# at 2 fps, 1.51 vs 2.17 s at 1 fps, 0.53 vs 2.18 s at 0.2 fps, a tie (2.34 vs 2.36 s) at 5 fps.
SEEK_MIN_SAMPLE_PERIOD_KEYFRAMES = 0.25
# Seconds of declared duration that may go undecoded before a file counts as truncated: container
# durations include audio and rounding, which can overhang the last video frame by a few frames.
TRUNCATION_TOLERANCE_S = 0.5
# Tolerance when comparing a time with the sampling grid, in sample periods: float seconds computed
# from integer pts are off by ~1e-12, and a frame sitting exactly on a target must count as reaching it.
_GRID_EPS = 1e-6
# Pixel formats whose first plane is 8-bit luma: the cheap grayscale is that plane as is.
_Y8_FORMATS = frozenset(
    "yuv420p yuvj420p yuv422p yuvj422p yuv444p yuvj444p yuv440p yuvj440p yuv411p yuvj411p yuv410p "
    "yuva420p yuva422p yuva444p nv12 nv21 nv16 nv24 nv42 gray".split()
)

# Limited-range luma (16..235) to full range (0..255): what swscale's gray conversion gives, and
# what grayscale face datasets (FER2013 etc.) look like.
_LIMITED_TO_FULL = np.clip(np.round((np.arange(256) - 16) * 255 / 219), 0, 255).astype(np.uint8)

Mode = Literal["auto", "decode", "seek"]


# --------------------------------------------------------------------------------------------------
# Errors


class VideoError(Exception):
    """A video file that cannot be read as asked. ``path`` says which file; ``str()`` says why."""

    def __init__(self, path: str | os.PathLike, message: str):
        self.path = str(path)
        self.message = message
        super().__init__(f"{self.path}: {message}")

    def __reduce__(self):
        # Exceptions cross process boundaries (Ray, multiprocessing) by pickling; the default
        # reduction would call cls(str(self)) and fail on the two-argument __init__.
        return (type(self), (self.path, self.message))


class VideoNotFoundError(VideoError, FileNotFoundError):
    """The path does not exist (also a ``FileNotFoundError``)."""


class EmptyFileError(VideoError):
    """The file has 0 bytes (an upload or copy that never wrote anything)."""


class NotAVideoError(VideoError):
    """FFmpeg cannot parse the file as any media container (e.g. a text file renamed ``.mp4``)."""


class NoVideoStreamError(VideoError):
    """The container parses but has no video stream (audio-only; cover art does not count)."""


class UnsupportedCodecError(VideoError):
    """The video stream's codec has no decoder in this FFmpeg build."""


class TruncatedVideoError(VideoError):
    """Decoding stopped well before the declared duration (raised by :func:`check_decoded` only)."""


# --------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class VideoInfo:
    """What a video file declares, checked against its first decoded frame.

    Attributes:
        path: the file.
        container: FFmpeg demuxer name, e.g. ``"mov,mp4,m4a,3gp,3g2,mj2"``, ``"matroska,webm"``.
        codec: decoder name of the video stream, e.g. ``"h264"``, ``"hevc"``.
        width, height: coded frame size in pixels, before rotation.
        avg_fps: average frames per second (frames / duration for variable frame rate).
        duration_s: seconds of video from the first frame: stream duration, else container duration,
            else measured by demuxing every packet (never from a frame count).
        rotation: degrees, one of 0/90/180/270, to rotate the coded frame *clockwise* to display it
            upright (display matrix of the stream, else the legacy ``rotate`` tag). Phones filming in
            portrait write 90. :func:`iter_frames` applies it.
        has_audio: the container also has an audio stream.
        frame_count: number of frames shown, when the container indexes every frame (mp4/mov; samples
            an edit list discards are not counted), else ``None`` (mkv and MPEG-TS report 0; a count
            estimated from duration is not offered).
        keyframe_interval_s: mean seconds between keyframes, when the container indexes every frame;
            ``None`` when unknown.
    """

    path: str
    container: str
    codec: str
    width: int
    height: int
    avg_fps: float
    duration_s: float
    rotation: int
    has_audio: bool
    frame_count: int | None
    keyframe_interval_s: float | None

    @property
    def frame_shape(self) -> tuple[int, int]:
        """``(H, W)`` of the upright images :func:`iter_frames` yields."""
        if self.rotation in (90, 270):
            return self.width, self.height
        return self.height, self.width


class SampledFrame(NamedTuple):
    """One yielded frame; unpacks as ``frame_index, pts_s, image``.

    Attributes:
        frame_index: 0-based index of the frame in the stream, counting from the stream start. At
            constant frame rate ``round(pts_s * avg_fps)``, exact across seeks and lost data. At
            variable rate frames are counted: exact from the stream start; after a seek (start_s > 0,
            seek mode) or lost data re-derived from the mp4/mov index of every frame (exact at
            keyframes of closed GOPs), elsewhere estimated from pts.
        pts_s: presentation time in seconds from the start of the stream (the stream's start_time
            subtracted, so the first frame is at 0.0).
        image: ``uint8`` upright image, ``(H, W, 3)`` RGB or, with ``gray=True``, ``(H, W)`` full-range
            luma (the same as ``frame.to_ndarray(format="gray")``, computed more cheaply).
    """

    frame_index: int
    pts_s: float
    image: np.ndarray


@dataclass
class DecodeStats:
    """Counters :func:`iter_frames` fills in while it decodes; read them after the loop.

    Pass a fresh instance per call. Times are seconds from the start of the stream.

    Attributes:
        path: the file decoded.
        frames_decoded: frames the decoder produced (including frames decoded only to reach a sample).
        frames_yielded: frames handed to the caller.
        corrupt_packets: packets the demuxer flagged corrupt or the decoder rejected.
        corrupt_frames: frames the decoder flagged corrupt (concealed errors); still yielded.
        decode_errors: errors raised by the demuxer or decoder that were skipped.
        mode: ``"decode"`` or ``"seek"``, as chosen (``"auto"`` resolves to one of them).
        seeks: container seeks made.
        expected_duration_s: duration the file declares (``VideoInfo.duration_s``); ``None`` if unknown.
        requested_end_s: the ``end_s`` asked for, ``None`` for "to the end".
        decoded_until_s: end time (pts + frame duration) of the last frame decoded.
        finished: the generator ran to the end of the requested range; ``False`` when the consumer
            stopped early or an error escaped, in which case ``lost_s`` means nothing.
    """

    path: str = ""
    frames_decoded: int = 0
    frames_yielded: int = 0
    corrupt_packets: int = 0
    corrupt_frames: int = 0
    decode_errors: int = 0
    mode: str = ""
    seeks: int = 0
    expected_duration_s: float | None = None
    requested_end_s: float | None = None
    decoded_until_s: float = 0.0
    finished: bool = False

    @property
    def lost_s(self) -> float:
        """Seconds of the requested range, up to the declared duration, that never decoded (>= 0)."""
        if self.expected_duration_s is None:
            return 0.0
        end = self.expected_duration_s
        if self.requested_end_s is not None:
            end = min(end, self.requested_end_s)
        return max(0.0, end - self.decoded_until_s)

    @property
    def truncated(self) -> bool:
        """The range decoded to the end, yet more than TRUNCATION_TOLERANCE_S seconds were lost."""
        return self.finished and self.lost_s > TRUNCATION_TOLERANCE_S


def check_decoded(stats: DecodeStats, tolerance_s: float = TRUNCATION_TOLERANCE_S) -> DecodeStats:
    """Raise :class:`TruncatedVideoError` if decoding lost more than ``tolerance_s`` seconds.

    For callers that prefer an error to partial output; call it after the ``iter_frames`` loop.
    Returns ``stats`` unchanged otherwise.
    """
    if not stats.finished:
        raise ValueError("check_decoded() needs stats of an iter_frames() loop that ran to its end")
    if stats.lost_s > tolerance_s:
        raise TruncatedVideoError(
            stats.path,
            f"decoded only up to {stats.decoded_until_s:.2f} s of {stats.expected_duration_s:.2f} s "
            f"({stats.lost_s:.2f} s lost; {stats.corrupt_packets} corrupt packets, "
            f"{stats.decode_errors} decode errors)",
        )
    return stats


# --------------------------------------------------------------------------------------------------
# Opening


@contextmanager
def _open(path: str | os.PathLike) -> Iterator[tuple[av.container.InputContainer, av.VideoStream]]:
    """Open ``path`` and pick its video stream, mapping every failure to a VideoError."""
    p = Path(path)
    if not p.exists():
        raise VideoNotFoundError(p, "no such file")
    if not p.is_file():
        raise NotAVideoError(p, "not a regular file")
    if p.stat().st_size == 0:
        raise EmptyFileError(p, "file is empty (0 bytes)")
    try:
        # metadata_errors="replace": a tag in a legacy encoding must not make a good video unreadable.
        container = av.open(str(p), metadata_errors="replace")
    except av.error.FileNotFoundError as e:
        raise VideoNotFoundError(p, "no such file") from e
    except (av.FFmpegError, UnicodeDecodeError) as e:
        raise NotAVideoError(p, f"not a media container FFmpeg can parse ({e})") from e
    with container:
        yield container, _video_stream(container, p)


def _video_stream(container: av.container.InputContainer, path: Path) -> av.VideoStream:
    # Cover art in audio files is a one-picture "video" stream flagged attached_pic: not a video.
    streams = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not streams:
        found = (
            ", ".join(
                f"{s.type} {s.codec_context.name if s.codec_context else '?'}" for s in container.streams
            )
            or "no streams"
        )
        raise NoVideoStreamError(path, f"no video stream (found: {found})")
    stream = streams[0]
    if stream.codec_context is None:
        raise UnsupportedCodecError(path, "no decoder in this FFmpeg build for the video codec")
    return stream


def _rate(stream: av.VideoStream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return float(rate)
    return 0.0


def _declared_duration_s(container: av.container.InputContainer, stream: av.VideoStream) -> float | None:
    """Seconds from the stream or, failing that, the container header; None if neither says."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return None


def _demuxed_duration_s(container: av.container.InputContainer, stream: av.VideoStream) -> float | None:
    """Seconds spanned by the video packets: reads the whole file, but decodes nothing."""
    tb, start = stream.time_base, stream.start_time or 0
    end = None
    for packet in container.demux(stream):
        if packet.pts is not None:
            stop = packet.pts + (packet.duration or 0)
            end = stop if end is None else max(end, stop)
    return None if end is None else float((end - start) * tb)


def _frame_count(stream: av.VideoStream) -> int | None:
    """Frames shown, when the container counts them (mp4/mov); None where it reports 0 (mkv, TS)."""
    if not stream.frames:
        return None
    entries = stream.index_entries
    if len(entries) == stream.frames:
        # An edit list can cut samples from the start (phone videos often do): those are not shown.
        return sum(1 for e in entries if not e.is_discard)
    return stream.frames


def _keyframe_interval_s(stream: av.VideoStream, duration_s: float | None) -> float | None:
    entries = stream.index_entries
    # Only an index of every frame (mp4/mov sample tables) tells the keyframe spacing; mkv cues
    # list one entry per cluster and MPEG-TS has no index.
    if not duration_s or not stream.frames or len(entries) < stream.frames:
        return None
    n_key = sum(1 for e in entries if e.is_keyframe)
    return duration_s / n_key if n_key else None


def _rotation_cw(frame: av.VideoFrame | None, stream: av.VideoStream) -> int:
    """Clockwise degrees (0/90/180/270) that make the frame upright."""
    # frame.rotation is the display matrix angle, counter-clockwise (0 without a matrix); FFmpeg's own
    # autorotate turns the picture clockwise by its negation.
    degrees = -float(frame.rotation) if frame is not None else 0.0
    if degrees == 0.0:
        # Legacy tag, clockwise already (old FFmpeg mp4 muxers, some cameras; mkv tags read "ROTATE").
        tags = {k.lower(): v for k, v in stream.metadata.items()}
        try:
            degrees = float(tags.get("rotate", 0))
        except ValueError:
            degrees = 0.0
    if math.isnan(degrees):
        return 0
    return int(round(degrees / 90.0)) % 4 * 90


def probe(path: str | os.PathLike) -> VideoInfo:
    """Describe a video file without decoding more than its first frame.

    Frame counts in headers are not trusted (mkv and MPEG-TS report 0): the duration comes from
    the stream or container duration, else from demuxing every packet. The first frame is decoded to
    read the rotation (display matrix side data) and to prove that a decoder exists.

    Raises:
        VideoNotFoundError, EmptyFileError, NotAVideoError, NoVideoStreamError, UnsupportedCodecError.
    """
    with _open(path) as (container, stream):
        stats = DecodeStats(path=str(path))
        first = next(_decoded_frames(container, stream, stats, Path(path), max_packets=500), None)
        duration = _declared_duration_s(container, stream)
        if duration is None:
            container.seek(0)  # the decode above moved the read position
            duration = _demuxed_duration_s(container, stream) or 0.0
        fps = _rate(stream)
        if not fps and stream.frames and duration:
            fps = stream.frames / duration
        return VideoInfo(
            path=str(path),
            container=container.format.name,
            codec=stream.codec_context.name,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            avg_fps=fps,
            duration_s=duration,
            rotation=_rotation_cw(first, stream),
            has_audio=len(container.streams.audio) > 0,
            frame_count=_frame_count(stream),
            keyframe_interval_s=_keyframe_interval_s(stream, duration),
        )


# --------------------------------------------------------------------------------------------------
# Decoding


def _packets(container, stream, stats: DecodeStats) -> Iterator[av.Packet]:
    """Packets of ``stream`` from the current read position; demuxer errors are counted and skipped."""
    failures_in_a_row = 0
    while True:
        try:
            for packet in container.demux(stream):
                failures_in_a_row = 0
                yield packet
            return
        except av.FFmpegError as e:
            if isinstance(e, MemoryError):
                raise
            # A read error ends PyAV's demux generator, but av_read_frame resumes after the bad
            # bytes, so a fresh demux() continues; give up only if it keeps failing in place.
            stats.decode_errors += 1
            failures_in_a_row += 1
            if failures_in_a_row >= 16:
                log.warning(
                    "%s: demuxing failed %d times in a row, stopping: %s", stats.path, failures_in_a_row, e
                )
                return


def _decoded_frames(
    container, stream, stats: DecodeStats, path: Path, max_packets: int | None = None
) -> Iterator[av.VideoFrame]:
    """Decoded frames in presentation order from the current read position, skipping corrupt packets."""
    for n, packet in enumerate(_packets(container, stream, stats)):
        if max_packets is not None and n >= max_packets:
            return
        if packet.is_corrupt:
            stats.corrupt_packets += 1
        try:
            frames = stream.decode(packet)
        except av.error.DecoderNotFoundError as e:
            raise UnsupportedCodecError(path, f"no decoder for codec {stream.codec_context.name!r}") from e
        except av.FFmpegError as e:
            if isinstance(e, MemoryError):
                raise
            # Corrupt data mid-stream: drop this packet, keep going; the decoder resynchronises at
            # the next keyframe at the latest.
            stats.decode_errors += 1
            if not packet.is_corrupt:
                stats.corrupt_packets += 1
            continue
        for frame in frames:
            stats.frames_decoded += 1
            if frame.is_corrupt:
                stats.corrupt_frames += 1
            yield frame


def _to_image(frame: av.VideoFrame, gray: bool, rotation_cw: int) -> np.ndarray:
    """``(H, W, 3)`` RGB or ``(H, W)`` gray uint8, rotated upright, C-contiguous, owning its memory."""
    if gray and frame.format.name in _Y8_FORMATS:
        # The Y plane is the grayscale image already: no colour conversion, just drop the row padding
        # (line_size can exceed width for alignment).
        plane = frame.planes[0]
        h, w, stride = frame.height, frame.width, plane.line_size
        image = np.frombuffer(plane, np.uint8, count=h * stride).reshape(h, stride)[:, :w]
        if _full_range(frame):
            image = image.copy()  # detach from the decoder's frame buffer
        else:
            image = cv2.LUT(image, _LIMITED_TO_FULL)  # a new array; 16..235 -> 0..255 like swscale's gray
    else:
        # swscale; for gray on e.g. 10-bit HEVC it also scales to 8 bits.
        image = frame.to_ndarray(format="gray" if gray else "rgb24")
    if rotation_cw:
        # np.rot90 turns counter-clockwise for k > 0 and returns a strided view: copy it compact.
        image = np.ascontiguousarray(np.rot90(image, k=-rotation_cw // 90))
    return image


def _full_range(frame: av.VideoFrame) -> bool:
    # Most video is "limited" (MPEG) range, Y in 16..235; yuvj* formats and JPEG-range tags are full.
    return frame.format.name.startswith(("yuvj", "gray")) or int(frame.color_range) == 2


def _rate_kind(stream: av.VideoStream, fps: float) -> tuple[float | None, bool]:
    """(frame rate if constant else None, can a keyframe's index be read off the container index?)"""
    entries, n = stream.index_entries, stream.frames
    if n > 1 and len(entries) == n:  # mp4/mov sample tables: every frame, in decode order
        shown = [e.timestamp for e in entries if not e.is_discard]  # edit lists hide some samples
        steps = np.diff(shown)
        positions_valid = len(shown) == n
        # Decode timestamps step evenly at constant rate; a coarse time base alternates e.g. 33/34 ms.
        if len(steps) and steps.max() - steps.min() <= 2:
            return float(1 / (steps.mean() * stream.time_base)), positions_valid
        return None, positions_valid
    # Elsewhere trust FFmpeg's rates: the average equals the finest common rate only when constant.
    return (fps if fps and stream.average_rate == stream.base_rate else None), False


class _Cursor:
    """Decoded frames of one stream with their pts in seconds and frame indices, across seeks."""

    def __init__(self, container, stream: av.VideoStream, stats: DecodeStats, path: Path, fps: float):
        self.container, self.stream, self.stats, self.path = container, stream, stats, path
        self.tb = stream.time_base
        self.start_pts = stream.start_time or 0
        self.fps = fps
        self.frames: Iterator[av.VideoFrame] | None = None
        self.pts_s = -math.inf  # of the last frame taken
        self.index = -1  # of the last frame taken
        # After a seek or lost data, counting frames no longer gives the index: re-derive it.
        self._reanchor = False
        self._errors_seen = 0
        self.constant_rate, self.full_index = _rate_kind(stream, fps)  # frame rate or None, bool

    def _frame_pts_s(self, frame: av.VideoFrame) -> float:
        if frame.pts is None:  # some broken streams: assume one frame period after the last one
            return self.pts_s + (1.0 / self.fps if self.fps else 0.0)
        return float((frame.pts - self.start_pts) * self.tb)

    def from_start(self) -> None:
        """Decode from the current position, which must be the stream start (nothing read yet)."""
        self.frames = _decoded_frames(self.container, self.stream, self.stats, self.path)
        self.index, self._reanchor = -1, False

    def _seek(self, t_s: float | None) -> None:
        """Seek to the keyframe at or before ``t_s`` seconds, or to byte 0 for ``t_s=None``."""
        self.stats.seeks += 1
        if t_s is None:
            self.container.seek(0, unsupported_byte_offset=True)
        else:
            ts = self.start_pts + max(0, math.floor(t_s / self.tb))
            self.container.seek(ts, stream=self.stream, backward=True)

    def _land(self, t_s: float | None, before_s: float) -> bool:
        """Seek; keep the decoded frames if the first one is at or before ``before_s``."""
        try:
            self._seek(t_s)
        except av.FFmpegError:  # e.g. a byte seek where the demuxer allows none
            return False
        frames = _decoded_frames(self.container, self.stream, self.stats, self.path)
        first = next(frames, None)
        if first is None or self._frame_pts_s(first) > before_s:
            return False
        self.frames, self._reanchor = chain([first], frames), True
        return True

    def _keyframe_position(self, frame: av.VideoFrame) -> int | None:
        """Index of a keyframe of a variable frame rate mp4/mov, from its index of every frame.

        Samples are indexed in decode order, and everything decoded before a keyframe of a closed
        GOP is also shown before it, so its decode position is its frame index. (Open GOPs, x265's
        default, show a few leading frames of the next GOP first: off by those.) None if not known.
        """
        if not (self.full_index and frame.key_frame and frame.pts is not None):
            return None
        j = self.stream.index_entries.search_timestamp(frame.pts, backward=True)
        return j if j >= 0 else None

    def seek_at_or_before(self, t_s: float, tol_s: float) -> None:
        """Position so the next frame has pts <= ``t_s + tol_s`` or is the stream's first.

        A backward seek lands on a keyframe whose *decode* time is <= the target, but with B-frames
        its presentation time can be later, and MPEG-TS seeks by searching timestamps in the byte
        stream and can land later still; then we seek further back until the landing frame is early
        enough, so that no frame between the landing and ``t_s`` is missed.
        """
        if self.frames is None and t_s <= tol_s:  # nothing read yet: already at the start
            self.from_start()
            return
        margin = 0.0
        while t_s - margin > 0:
            if self._land(t_s - margin, t_s + tol_s):
                return
            margin = max(1.0, 2 * margin)
        # Back to the start: by timestamp, else by byte offset (MPEG-TS can miss the first keyframe).
        if self._land(0.0, t_s + tol_s) or self._land(None, t_s + tol_s):
            return
        log.warning("%s: cannot seek back to %.3f s; continuing from where the seek landed", self.path, t_s)
        self._seek(0.0)
        self.frames = _decoded_frames(self.container, self.stream, self.stats, self.path)
        self._reanchor = True

    def next(self) -> av.VideoFrame | None:
        """The next frame (``self.pts_s``/``self.index`` updated), or None at the end of the stream."""
        frame = next(self.frames, None)
        if frame is None:
            return None
        pts_s = self._frame_pts_s(frame)
        errors = self.stats.corrupt_packets + self.stats.decode_errors
        if self.constant_rate:
            # Robust to seeks and to frames lost in damaged data, which counting is not.
            self.index = round(pts_s * self.constant_rate)
        elif self._reanchor or errors != self._errors_seen:
            j = self._keyframe_position(frame)
            self.index = j if j is not None else (round(pts_s * self.fps) if self.fps else self.index + 1)
            self._reanchor, self._errors_seen = False, errors
        else:
            self.index += 1
        self.pts_s = pts_s
        if frame.duration:
            duration = float(frame.duration * self.tb)
        else:
            duration = 1.0 / self.fps if self.fps else 0.0
        self.stats.decoded_until_s = max(self.stats.decoded_until_s, pts_s + duration)
        return frame

    def keyframe_ahead(self, t_s: float) -> bool:
        """Whether a seek to ``t_s`` would land past the current position (skipping decode work).

        Uses the container index (mp4/mov: every frame; mkv: cues plus keyframes seen so far). With no
        index (MPEG-TS) we cannot tell, and say yes.
        """
        entries = self.stream.index_entries
        if self.frames is None or not len(entries):
            return True
        i = entries.search_timestamp(self.start_pts + math.floor(t_s / self.tb), backward=True)
        if i < 0:
            return False
        return float((entries[i].timestamp - self.start_pts) * self.tb) > self.pts_s


def iter_frames(
    path: str | os.PathLike,
    sample_fps: float,
    start_s: float = 0.0,
    end_s: float | None = None,
    *,
    gray: bool = False,
    mode: Mode = "auto",
    stats: DecodeStats | None = None,
    threads: int = 0,
) -> Iterator[SampledFrame]:
    """Yield frames sampled by presentation time, lazily: ``(frame_index, pts_s, image)``.

    Args:
        path: video file.
        sample_fps: samples per second of video. Targets are ``k / sample_fps`` s (k = 0, 1, ...), and
            each yields the first frame with pts >= target, never the same frame twice; so a rate at or
            above the source frame rate yields every frame, and variable frame rate is handled.
        start_s, end_s: half-open range ``[start_s, end_s)`` of presentation times in seconds from the
            stream start (``end_s=None``: to the end). Frames outside it are decoded only as needed
            and never yielded; ``[0, a)`` and ``[a, b)`` together yield exactly the frames of ``[0, b)``.
            With ``start_s > 0`` the decoder seeks to a keyframe before ``start_s``.
        gray: yield ``(H, W)`` gray instead of RGB: the decoder's Y plane with no colour conversion,
            only stretched from limited (16..235) to full range (0..255) by a lookup table.
        mode: ``"decode"`` decodes every frame and converts only the sampled ones; ``"seek"`` seeks to
            the keyframe before each target when that keyframe lies ahead of the decoder (skipping the
            frames between); ``"auto"`` seeks when the container indexes every frame (mp4/mov) and
            the sample period is at least SEEK_MIN_SAMPLE_PERIOD_KEYFRAMES keyframe intervals. All
            modes yield the same frames.
        stats: a fresh :class:`DecodeStats` to fill in (truncation, corrupt packets); read it after the
            loop, or pass it to :func:`check_decoded`.
        threads: decoder threads; 0 lets FFmpeg use one per core, 1 suits many decoders in parallel.

    Yields:
        :class:`SampledFrame` ``(frame_index, pts_s, image)``: ``pts_s`` seconds from the start of the
        stream, increasing; ``image`` uint8 ``(H, W, 3)`` RGB or ``(H, W)`` gray, rotated upright
        (``VideoInfo.rotation``).

    Raises:
        ValueError for bad arguments (at call time); on the first ``next()``: VideoNotFoundError,
        EmptyFileError, NotAVideoError, NoVideoStreamError, UnsupportedCodecError. Truncation and
        corrupt packets do not raise: they are counted in ``stats``.
    """
    if not sample_fps > 0:
        raise ValueError(f"sample_fps must be > 0, got {sample_fps}")
    if not start_s >= 0:
        raise ValueError(f"start_s must be >= 0, got {start_s}")
    if end_s is not None and not end_s >= start_s:
        raise ValueError(f"end_s must be >= start_s ({start_s}), got {end_s}")
    if mode not in ("auto", "decode", "seek"):
        raise ValueError(f"mode must be 'auto', 'decode' or 'seek', got {mode!r}")
    # Checked here so that mistakes surface at the call; the file is opened on the first next().
    return _iter_frames(
        Path(path),
        float(sample_fps),
        float(start_s),
        end_s,
        gray,
        mode,
        stats if stats is not None else DecodeStats(),
        threads,
    )


def _bucket(t_s: float, sample_fps: float) -> int:
    """Index of the last grid target at or before ``t_s`` (within _GRID_EPS)."""
    return math.floor(t_s * sample_fps + _GRID_EPS)


def _iter_frames(
    path: Path,
    sample_fps: float,
    start_s: float,
    end_s: float | None,
    gray: bool,
    mode: Mode,
    stats: DecodeStats,
    threads: int,
) -> Iterator[SampledFrame]:
    stats.path, stats.requested_end_s, stats.finished = str(path), end_s, False
    try:
        with _open(path) as (container, stream):
            stream.thread_type = "AUTO"  # frame threads: FFmpeg's CLI default, several times faster
            stream.thread_count = threads
            # Audio and other streams: let the demuxer skip their packets.
            for other in container.streams:
                if other.index != stream.index:
                    other.discard = av.stream.Discard.all
            fps = _rate(stream)
            stats.expected_duration_s = _declared_duration_s(container, stream)
            if mode == "auto":
                kf = _keyframe_interval_s(stream, stats.expected_duration_s)
                far_apart = kf is not None and 1.0 / sample_fps >= SEEK_MIN_SAMPLE_PERIOD_KEYFRAMES * kf
                mode = "seek" if far_apart else "decode"
            stats.mode = mode

            cursor = _Cursor(container, stream, stats, path, fps)
            tol_s = _GRID_EPS / sample_fps  # a frame this close after a target counts as on it
            next_k = _bucket(start_s, sample_fps)  # the grid target <= start_s comes first
            if next_k > 0:
                # The first target may be reached by a frame before start_s (then it belongs to the
                # previous segment and is skipped), so land at or before it.
                cursor.seek_at_or_before(next_k / sample_fps, tol_s)
            elif mode == "decode":
                cursor.from_start()
            rotation = None
            while True:
                target_s = next_k / sample_fps
                if mode == "seek" and cursor.keyframe_ahead(target_s):
                    cursor.seek_at_or_before(target_s, tol_s)
                # Decode forward to the first frame reaching the target; frames before it are decoded
                # (needed as references) but never converted.
                while (frame := cursor.next()) is not None and _bucket(cursor.pts_s, sample_fps) < next_k:
                    if end_s is not None and cursor.pts_s >= end_s:
                        break
                if frame is None or (end_s is not None and cursor.pts_s >= end_s):
                    break
                next_k = _bucket(cursor.pts_s, sample_fps) + 1
                if cursor.pts_s < start_s:
                    continue
                if rotation is None:
                    rotation = _rotation_cw(frame, stream)
                image = _to_image(frame, gray, rotation)
                stats.frames_yielded += 1
                yield SampledFrame(cursor.index, cursor.pts_s, image)
            stats.finished = True
    finally:
        if stats.corrupt_packets or stats.decode_errors:
            log.warning(
                "%s: skipped %d corrupt packets (%d decode errors)",
                path,
                stats.corrupt_packets,
                stats.decode_errors,
            )


__all__ = [
    "SEEK_MIN_SAMPLE_PERIOD_KEYFRAMES",
    "TRUNCATION_TOLERANCE_S",
    "DecodeStats",
    "EmptyFileError",
    "NoVideoStreamError",
    "NotAVideoError",
    "SampledFrame",
    "TruncatedVideoError",
    "UnsupportedCodecError",
    "VideoError",
    "VideoInfo",
    "VideoNotFoundError",
    "check_decoded",
    "iter_frames",
    "probe",
]
