"""Decoding: frames picked by presentation time on an absolute grid, one at a time (PyAV).

The sampling rule is stated in ``fer_stream.video``'s docstring.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from typing import Literal

import av
import av.error
import cv2
import numpy as np

from fer_stream.video.container import (
    DecodeStats,
    SampledFrame,
    _declared_duration_s,
    _decoded_frames,
    _keyframe_interval_s,
    _open,
    _rate,
    _rotation_cw,
)

log = logging.getLogger(__name__)

# Auto mode seeks when samples are at least this many keyframe intervals apart (and the container
# indexes every frame, so keyframes are known). Seek mode only seeks when the keyframe before the next
# target lies ahead of the decoder, so it never decodes more frames than decode mode; measured by
# bench/decode.py (720p H.264, 2 s keyframe interval, 2 shared cores): seek vs decode 2.04 vs 2.25 s
# at 2 fps, 1.51 vs 2.17 s at 1 fps, 0.53 vs 2.18 s at 0.2 fps, a tie (2.34 vs 2.36 s) at 5 fps.
SEEK_MIN_SAMPLE_PERIOD_KEYFRAMES = 0.25
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
# Decoding


def _to_image(frame: av.VideoFrame, gray: bool, rotation_cw: int) -> np.ndarray:
    """``(H, W, 3)`` RGB or ``(H, W)`` gray uint8, rotated upright, C-contiguous, owning its memory."""
    if gray and frame.format.name in _Y8_FORMATS:
        # The Y plane is the grayscale image already: no colour conversion, just drop the row padding
        # (line_size can exceed width for alignment).
        plane = frame.planes[0]
        h, w, stride = frame.height, frame.width, plane.line_size
        # a VideoPlane is a buffer; av's stubs do not say so
        image = np.frombuffer(plane, np.uint8, count=h * stride).reshape(h, stride)[:, :w]  # type: ignore[call-overload]
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
        assert stream.time_base is not None, f"{path}: FFmpeg gives every demuxed stream a time base"
        self.tb = stream.time_base
        self.start_pts = stream.start_time or 0
        self.fps = fps
        self.frames: Iterator[av.VideoFrame] | None = None
        self.pts_s = -math.inf  # of the last frame taken
        self.index = -1  # of the last frame taken
        # After a seek or lost data, counting frames no longer gives the index: re-derive it.
        self._reanchor = False
        self._errors_seen = 0
        # Damage tracking: the error count last seen, and whether the frames now come from damaged
        # data (until the next intact keyframe).
        self._damage_seen = 0
        self._damaged = False
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
        assert self.frames is not None, "from_start() or a seek first"
        frame = next(self.frames, None)
        if frame is None:
            return None
        pts_s = self._frame_pts_s(frame)
        errors = self.stats.corrupt_packets + self.stats.decode_errors
        gap = 0
        if self.constant_rate:
            # Robust to seeks and to frames lost in damaged data, which counting is not.
            index = round(pts_s * self.constant_rate)
            if not self._reanchor and self.index >= 0:  # consecutive frames of one decoding run
                gap = max(0, index - self.index - 1)
            self.index, self._reanchor = index, False
        elif self._reanchor or errors != self._errors_seen:
            j = self._keyframe_position(frame)
            self.index = j if j is not None else (round(pts_s * self.fps) if self.fps else self.index + 1)
            self._reanchor, self._errors_seen = False, errors
        else:
            self.index += 1
        self._count_damage(frame, errors + self.stats.corrupt_frames, gap)
        self.pts_s = pts_s
        if frame.duration:
            duration = float(frame.duration * self.tb)
        else:
            duration = 1.0 / self.fps if self.fps else 0.0
        self.stats.decoded_until_s = max(self.stats.decoded_until_s, pts_s + duration)
        return frame

    def _count_damage(self, frame: av.VideoFrame, errors: int, gap: int) -> None:
        """Count missing frames, and frames decoded from damaged data (``DecodeStats``).

        Damaged data shows as errors (corrupt packets, decode errors, corrupt frames) or as a gap in
        pts; the frames that follow reference broken pictures until the next intact keyframe.
        """
        self.stats.missing_frames += gap
        new_damage = errors != self._damage_seen or gap > 0
        self._damage_seen = errors
        if new_damage or frame.is_corrupt:
            self._damaged = True
        elif frame.key_frame:
            self._damaged = False
        if self._damaged:
            self.stats.damaged_frames += 1

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
        VideoUnreadableError, EmptyFileError, NotAVideoError, NoVideoStreamError,
        UnsupportedCodecError. Truncation, corrupt packets, missing and damaged frames do not raise:
        they are counted in ``stats``.
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
        if stats.corrupt_packets or stats.decode_errors or stats.missing_frames or stats.damaged_frames:
            log.warning(
                "%s: damaged data: %d corrupt packets skipped, %d decode errors, %d frames missing, "
                "%d frames decoded from damaged data",
                path,
                stats.corrupt_packets,
                stats.decode_errors,
                stats.missing_frames,
                stats.damaged_frames,
            )
