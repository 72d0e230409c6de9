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

from fer_stream.video.container import (
    TRUNCATION_TOLERANCE_S,
    DecodeDamage,
    DecodeStats,
    EmptyFileError,
    NotAVideoError,
    NoVideoStreamError,
    SampledFrame,
    TruncatedVideoError,
    UnsupportedCodecError,
    VideoError,
    VideoInfo,
    VideoNotFoundError,
    VideoUnreadableError,
    check_decoded,
    probe,
)
from fer_stream.video.decode import SEEK_MIN_SAMPLE_PERIOD_KEYFRAMES, iter_frames

__all__ = [
    "SEEK_MIN_SAMPLE_PERIOD_KEYFRAMES",
    "TRUNCATION_TOLERANCE_S",
    "DecodeDamage",
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
    "VideoUnreadableError",
    "check_decoded",
    "iter_frames",
    "probe",
]
