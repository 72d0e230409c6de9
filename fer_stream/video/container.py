"""Opening a video: typed errors, what a file declares (:func:`probe`), the decode counters, and
the packets-to-frames loop that skips corrupt packets (shared by probe and decoding).

Bad input raises a subclass of :class:`VideoError` carrying the path.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import av
import av.error
import numpy as np

log = logging.getLogger(__name__)

# Seconds of declared duration that may go undecoded before a file counts as truncated: container
# durations include audio and rounding, which can overhang the last video frame by a few frames.
TRUNCATION_TOLERANCE_S = 0.5

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


class VideoUnreadableError(VideoError, PermissionError):
    """The file exists but this process may not read it (permissions; also a ``PermissionError``).

    The file itself may be a good video: fix its permissions (or the folder's) and run again.
    """


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
        missing_frames: frames absent from the decoded sequence, at a constant frame rate: gaps in
            pts between consecutive decoded frames (damaged data the demuxer or decoder dropped,
            often without any error). Not counted across seeks, nor at variable frame rate.
        damaged_frames: frames decoded from damaged data: from a corrupt packet, decode error,
            corrupt frame or gap up to the next intact keyframe, where the decoder starts afresh
            (in between, pictures are concealed from broken references: smeared faces). Counted
            among the frames decoded (seek mode skips some).
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
    missing_frames: int = 0
    damaged_frames: int = 0
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


@dataclass(frozen=True, kw_only=True)
class DecodeDamage:
    """What decoding lost or damaged in a video (or a segment of it): ``DecodeStats`` counters kept.

    Attributes:
        lost_s: seconds of the declared duration that never decoded (0 unless the stream ended early).
        corrupt_packets, decode_errors, missing_frames, damaged_frames: as in :class:`DecodeStats`.
    """

    lost_s: float = 0.0
    corrupt_packets: int = 0
    decode_errors: int = 0
    missing_frames: int = 0
    damaged_frames: int = 0

    @classmethod
    def of(cls, stats: DecodeStats) -> DecodeDamage:
        """The counters of a finished ``iter_frames`` loop (``lost_s`` 0 if it stopped early)."""
        return cls(
            lost_s=stats.lost_s if stats.finished else 0.0,
            corrupt_packets=stats.corrupt_packets,
            decode_errors=stats.decode_errors,
            missing_frames=stats.missing_frames,
            damaged_frames=stats.damaged_frames,
        )

    def __add__(self, other: DecodeDamage) -> DecodeDamage:
        """The damage of two segments of one video together."""
        return DecodeDamage(
            lost_s=self.lost_s + other.lost_s,
            corrupt_packets=self.corrupt_packets + other.corrupt_packets,
            decode_errors=self.decode_errors + other.decode_errors,
            missing_frames=self.missing_frames + other.missing_frames,
            damaged_frames=self.damaged_frames + other.damaged_frames,
        )

    @property
    def incomplete(self) -> bool:
        """Anything lost or damaged: more than TRUNCATION_TOLERANCE_S lost, or any count above 0."""
        counts = (self.corrupt_packets, self.decode_errors, self.missing_frames, self.damaged_frames)
        return self.lost_s > TRUNCATION_TOLERANCE_S or any(counts)

    def columns(self) -> dict:
        """Its ``videos/`` columns (``fer_stream.records.VIDEOS_SCHEMA``), ``incomplete`` included."""
        names = ("lost_s", "corrupt_packets", "decode_errors", "missing_frames", "damaged_frames")
        return {n: getattr(self, n) for n in names} | {"incomplete": self.incomplete}

    def describe(self) -> str:
        """E.g. ``"21 frames missing, 40 frames damaged, 2 decode errors"``; ``""`` when intact."""
        if not self.incomplete:
            return ""
        parts = [
            f"{self.lost_s:.1f} s not decoded" if self.lost_s > TRUNCATION_TOLERANCE_S else "",
            f"{self.missing_frames} frames missing" if self.missing_frames else "",
            f"{self.damaged_frames} frames damaged" if self.damaged_frames else "",
            f"{self.decode_errors} decode errors" if self.decode_errors else "",
            f"{self.corrupt_packets} corrupt packets" if self.corrupt_packets else "",
        ]
        return ", ".join(p for p in parts if p)


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
    try:
        if not p.exists():
            raise VideoNotFoundError(p, "no such file")
        if not p.is_file():
            raise NotAVideoError(p, "not a regular file")
        if p.stat().st_size == 0:
            raise EmptyFileError(p, "file is empty (0 bytes)")
    except PermissionError as e:  # a folder on the way that this user may not enter
        raise VideoUnreadableError(p, f"no permission to read it ({e.strerror})") from e
    try:
        # metadata_errors="replace": a tag in a legacy encoding must not make a good video unreadable.
        container = av.open(str(p), metadata_errors="replace")
    except av.error.FileNotFoundError as e:
        raise VideoNotFoundError(p, "no such file") from e
    except PermissionError as e:  # EACCES/EPERM (av.error.PermissionError): not the file's fault
        raise VideoUnreadableError(p, f"no permission to read it ({e.strerror or e})") from e
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
    return None if end is None or tb is None else float((end - start) * tb)


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
        VideoNotFoundError, VideoUnreadableError, EmptyFileError, NotAVideoError, NoVideoStreamError,
        UnsupportedCodecError.
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
