"""One input video on the driver during a run: its state (:class:`RunVideo`), what the user should
know about it (:func:`warnings_of`) and its ``videos/`` row (:func:`video_row`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from fer_stream import inputs as inputs_
from fer_stream.inputs import Lecture
from fer_stream.lecture import SegmentResult
from fer_stream.pipeline.summary import VideoStatus
from fer_stream.video import DecodeDamage


def _utc(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc)


@dataclass
class RunVideo:
    """Driver-side state of one input video during a run."""

    lecture: Lecture
    inspect: dict = field(default_factory=dict)
    segments: list[tuple[float, float | None]] = field(default_factory=list)
    parts: dict[int, SegmentResult] = field(default_factory=dict)
    started: float = 0.0

    @property
    def path(self) -> str:
        return self.lecture.path

    @property
    def meta(self):
        return self.lecture.meta

    @property
    def meta_error(self) -> tuple[str, str] | None:
        return self.lecture.meta_error

    @property
    def video_id(self) -> str:
        # A file that cannot be read at all gets an id from its path, so its failure has a row.
        return self.inspect.get("video_id") or self.lecture.video_id or inputs_.path_id(self.path)


def warnings_of(v: RunVideo, damage: DecodeDamage | None) -> list[str]:
    """What the user should know about a video that the status does not say: decode damage (the
    records miss or misread that part), course or date from the fallback, and why."""
    out = []
    if damage is not None and damage.incomplete:
        out.append(f"incomplete: {damage.describe()}")
    if v.meta.warning:
        out.append(f"filed under {v.meta.course} {v.meta.lecture_date}: {v.meta.warning}")
    return out


def video_row(
    v: RunVideo,
    status: VideoStatus,
    err: tuple[str, str] | None,
    run_columns: dict,
    damage: DecodeDamage | None = None,
    **counts,
) -> dict:
    """The videos/ row of ``v``: ``run_columns`` are the run's own (sample rate, model and pipeline
    versions, config hash and JSON, run id), a done video's decode damage is in ``damage``, its
    counts and timings in ``counts``."""
    ins, info, now = v.inspect, v.inspect.get("info"), time.time()
    return {
        "video_id": v.video_id,
        "course": v.meta.course,
        "lecture_date": v.meta.lecture_date,
        "path": v.path,
        "file_size": ins.get("file_size"),
        "file_mtime": _utc(ins.get("file_mtime")),
        "meta_source": v.meta.source,
        "status": status.value,
        "error_type": err[0] if err else None,
        "error_message": err[1] if err else None,
        "duration_s": info.duration_s if info else None,
        "width": info.frame_shape[1] if info else None,
        "height": info.frame_shape[0] if info else None,
        "sampled_frames": None,
        "faces": None,
        "students": None,
        "segments": len(v.segments) or None,
        **(damage.columns() if damage else dict.fromkeys(DecodeDamage().columns())),
        "warnings": "; ".join(warnings_of(v, damage)) or None,
        **run_columns,
        "started_at": _utc(v.started),
        "finished_at": _utc(now),
        "wall_s": now - v.started,
        "hash_s": ins.get("hash_s"),
        "analyze_s": None,
        "classify_s": None,
        "audio_s": None,
        "speech": None,
        "speech_error": None,
        **counts,
    }
