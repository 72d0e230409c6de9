"""THE Arrow schemas of every output table and the Parquet partition writer (through
``ops.atomic``, the one atomic writer); the faces table is built from the frames' faces in
``fer_stream.lecture.columns``.

Four tables under one output folder, hive-partitioned by course and lecture date::

    OUTPUT/faces/course=ML101/lecture_date=2024-03-05/<video_id>_<config_hash>.parquet
    OUTPUT/frames/course=ML101/lecture_date=2024-03-05/<video_id>_<config_hash>.parquet
    OUTPUT/speech/course=ML101/lecture_date=2024-03-05/<video_id>_<config_hash>.parquet
    OUTPUT/videos/course=ML101/lecture_date=2024-03-05/<video_id>_<config_hash>_<run_id>.parquet

* ``faces``: one row per face per sampled frame.
* ``frames``: one row per sampled frame, faces or not, so that absence is visible.
* ``speech``: one row per stretch of speech in the video's audio (when, not what: no audio, words or
  voices are stored); written only when the audio was analysed (``videos.speech`` = ``done``).
* ``videos``: one row per video per run that analysed it (``done`` or ``failed``), the run log.

The partition keys ``course`` and ``lecture_date`` are part of every schema below but live in the
folder names, not inside the files (``pyarrow.dataset``, DuckDB's ``hive_partitioning`` and Spark
put them back as columns). Units and meanings are in each field's metadata (``unit``,
``description``), and so travel inside every Parquet file. Read a table with :func:`read`.

No face images, landmarks or embeddings are stored: a face is its box, pose, eye openness,
attention and emotion probabilities, under a pseudonymous ``student_id`` (per lecture by default;
course-wide with identity on, whose face descriptors stay in ``OUTPUT/identity/``, docs/PRIVACY.md).
"""

from __future__ import annotations

import enum
import os
import time
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from fer_stream.labels import FER2013_LABELS
from fer_stream.ops.atomic import write_atomic

# Bump when a column is added, removed or changes meaning; it is part of every run's config hash,
# so a new schema re-analyses videos instead of mixing old and new files.
# 2: face_px and the *_readable gates (issue 13); 3: attentive null when attention is; 4: videos/
# decode_errors, missing_frames, damaged_frames, incomplete, warnings (issue 24); 5: speech/ and
# videos/ speech, speech_error, audio_s (issue 25)
SCHEMA_VERSION = "5"
PARTITION_KEYS = ("course", "lecture_date")
COMPRESSION = "zstd"


def _field(name: str, type_: pa.DataType, unit: str, description: str, nullable: bool = False) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={"unit": unit, "description": description})


def _schema(table: str, fields: list[pa.Field]) -> pa.Schema:
    return pa.schema(
        fields, metadata={"fer_stream.table": table, "fer_stream.schema_version": SCHEMA_VERSION}
    )


_VIDEO_ID = _field(
    "video_id", pa.string(), "sha256 hex", "content hash of the video file: sha256 of all its bytes"
)
_COURSE = _field(
    "course", pa.string(), "", "course code, from a sidecar or the COURSE/ folder; 'unknown' if none"
)
_DATE = _field(
    "lecture_date",
    pa.date32(),
    "date",
    "day of the lecture, from a sidecar or the YYYY-MM-DD file name prefix; else the file's mtime (local)",
)
_FRAME_INDEX = _field("frame_index", pa.int64(), "frame", "0-based index of the frame in the video stream")
_PTS = _field("pts_s", pa.float64(), "s", "presentation time, seconds from the start of the stream")


def _box(name: str, what: str) -> pa.Field:
    return _field(name, pa.float32(), "px", f"{what} of the face box, pixels of the upright frame")


def _prob(label: str) -> pa.Field:
    return _field(
        f"p_{label}",
        pa.float32(),
        "probability",
        f"probability of '{label}'; the 7 p_* of a row sum to 1; null when emotion is not inferred "
        "(the run's signals, docs/COMPLIANCE.md)",
        nullable=True,
    )


def _model_version() -> pa.Field:
    """The ``model_version`` column of faces/ and videos/."""
    return _field(
        "model_version",
        pa.string(),
        "",
        "version of the emotion model's weights; null when emotion is not inferred",
        nullable=True,
    )


FACES_SCHEMA = _schema(
    "faces",
    [
        _VIDEO_ID,
        _COURSE,
        _DATE,
        _FRAME_INDEX,
        _PTS,
        _field(
            "track_id",
            pa.int64(),
            "id",
            "tracker id within the video; segment k of a split video uses ids from k*1_000_000+1",
        ),
        _field(
            "student_id",
            pa.string(),
            "key",
            "student: by default a pseudonymous per-lecture key '<video_id[:8]>-s001' (seats in "
            "reading order); with identity on, the enrolled roster id, the seat map's id, or a course "
            "pseudonym '<course hash>-p0007' stable across lectures ('unknown-<video_id[:8]>-<n>': "
            "matches no enrolled student); null for a short track that is no student (a stray detection)",
            nullable=True,
        ),
        _field(
            "static",
            pa.bool_(),
            "bool",
            "the face's track never moved as a living face does (a poster, a photo, a frozen screen; "
            "docs/VALIDITY.md): no student (student_id null), no emotion, attention or head state; the "
            "row stays for audit and no report counts it",
        ),
        _box("x1", "left edge"),
        _box("y1", "top edge"),
        _box("x2", "right edge (exclusive)"),
        _box("y2", "bottom edge (exclusive)"),
        _field("det_score", pa.float32(), "probability", "face detector confidence in [0, 1]"),
        _field("face_px", pa.float32(), "px", "box width x2 - x1: the size the readability gates compare"),
        _field(
            "pose_readable",
            pa.bool_(),
            "bool",
            "face at least gates.pose_min_px wide: yaw/pitch/roll and attention are reported (else null: "
            "'unmeasured'), docs/VALIDITY.md",
        ),
        _field(
            "eyes_readable",
            pa.bool_(),
            "bool",
            "face at least gates.eyes_min_px wide (and pose readable): ear is reported and the attention "
            "score includes eyes open (else ear null, attention from head pose alone)",
        ),
        _field(
            "yaw",
            pa.float32(),
            "deg",
            "head yaw, + = turned towards the image's right; null if not measurable",
            nullable=True,
        ),
        _field(
            "pitch", pa.float32(), "deg", "head pitch, + = chin up; null if not measurable", nullable=True
        ),
        _field(
            "roll",
            pa.float32(),
            "deg",
            "head roll, + = tilted towards the image's right; null if not measurable",
            nullable=True,
        ),
        _field(
            "ear",
            pa.float32(),
            "ratio",
            "eye aspect ratio, mean of both eyes (~0.3 open, < 0.2 closed); null if not measurable",
            nullable=True,
        ),
        _field(
            "attentive",
            pa.bool_(),
            "bool",
            "facing the front within the yaw/pitch limits with eyes open (attention >= 0.5), "
            "docs/ATTENTION.md; null where attention is null (unmeasured is not inattentive: "
            "avg(attentive::int) averages measured faces only)",
            nullable=True,
        ),
        _field(
            "attention",
            pa.float32(),
            "score",
            "attention score in [0, 1]: with a head-state model, P(up) (how clearly the face is turned "
            "to the front) on faces up to 40 px, a head-pose model fitted to human engagement labels "
            "from 60 px, blended between (fer_stream.engagement, docs/ATTENTION.md); else the "
            "head-pose score; null if not measurable",
            nullable=True,
        ),
        _field(
            "head_readable",
            pa.bool_(),
            "bool",
            "face at least gates.head_min_px wide and a head-state model in the analysis: head_state "
            "(and the attention from it) is reported",
        ),
        _field(
            "head_state",
            pa.string(),
            "label",
            "up (facing the front), down (bowed: reading, writing, sleeping), around (turned to a neighbour "
            "or away), phone: the head-state model's top label (docs/ATTENTION.md); null where not read",
            nullable=True,
        ),
        _field(
            "emotion_readable",
            pa.bool_(),
            "bool",
            "face at least gates.emotion_min_px wide and measured turned to the camera (head pose within "
            "the gates' limits where read, else head state not 'down'): the model's answer is reported as "
            "an emotion (smaller, turned or bowed faces read worse, bowed mostly 'sad': docs/VALIDITY.md)",
        ),
        *[_prob(label) for label in FER2013_LABELS],
        _field(
            "emotion",
            pa.string(),
            "label",
            "the label with the highest probability; null where emotion_readable is false ('unreadable': "
            "the p_* are kept for research, reports never count them)",
            nullable=True,
        ),
        _model_version(),
    ],
)

FRAMES_SCHEMA = _schema(
    "frames",
    [
        _VIDEO_ID,
        _COURSE,
        _DATE,
        _FRAME_INDEX,
        _PTS,
        _field("n_faces", pa.int32(), "count", "faces found in this sampled frame (0 is a row too)"),
    ],
)


SPEECH_SCHEMA = _schema(
    "speech",
    [
        _VIDEO_ID,
        _COURSE,
        _DATE,
        _field(
            "start_s", pa.float64(), "s", "start of a stretch of speech, seconds from the start of the stream"
        ),
        _field("end_s", pa.float64(), "s", "its end (exclusive), seconds from the start of the stream"),
        _field(
            "p_speech",
            pa.float32(),
            "probability",
            "mean speech probability of the voice activity detector over the stretch's 32 ms frames "
            "(fer_stream.audio; a stretch starts at >= 0.5)",
        ),
    ],
)


def _ts(name: str, description: str) -> pa.Field:
    return _field(name, pa.timestamp("ms", tz="UTC"), "UTC", description, nullable=True)


def _seconds(name: str, description: str) -> pa.Field:
    return _field(name, pa.float64(), "s", description, nullable=True)


VIDEOS_SCHEMA = _schema(
    "videos",
    [
        _VIDEO_ID,
        _COURSE,
        _DATE,
        _field("path", pa.string(), "path", "the file as given to the run (absolute)"),
        _field("file_size", pa.int64(), "bytes", "size of the file", nullable=True),
        _ts("file_mtime", "modification time of the file"),
        _field(
            "meta_source",
            pa.string(),
            "",
            "where course/lecture_date came from: json, csv, path, fallback (unknown/mtime), "
            "or two joined by '+' (e.g. csv+fallback)",
        ),
        _field("status", pa.string(), "", "'done' (records written) or 'failed' (see error_type)"),
        _field(
            "error_type",
            pa.string(),
            "",
            "class name of the error, e.g. NotAVideoError; null when done",
            nullable=True,
        ),
        _field("error_message", pa.string(), "", "the error's message; null when done", nullable=True),
        _seconds("duration_s", "duration the file declares"),
        _field("width", pa.int32(), "px", "upright frame width", nullable=True),
        _field("height", pa.int32(), "px", "upright frame height", nullable=True),
        _field("sample_fps", pa.float64(), "1/s", "frames sampled per second of video"),
        _field("sampled_frames", pa.int64(), "count", "rows written to frames/", nullable=True),
        _field("faces", pa.int64(), "count", "rows written to faces/", nullable=True),
        _field("students", pa.int32(), "count", "distinct student_id values", nullable=True),
        _field("segments", pa.int32(), "count", "time segments analysed in parallel", nullable=True),
        _seconds("lost_s", "seconds of the declared duration that did not decode (truncated/corrupt file)"),
        _field("corrupt_packets", pa.int64(), "count", "packets skipped as corrupt", nullable=True),
        _field("decode_errors", pa.int64(), "count", "demuxer/decoder errors skipped", nullable=True),
        _field(
            "missing_frames",
            pa.int64(),
            "count",
            "frames absent from the decoded stream (gaps in pts at a constant frame rate)",
            nullable=True,
        ),
        _field(
            "damaged_frames",
            pa.int64(),
            "count",
            "frames decoded from damaged data (from an error or gap to the next intact keyframe)",
            nullable=True,
        ),
        _field(
            "incomplete",
            pa.bool_(),
            "",
            "decoding lost or damaged part of the video (lost_s > 0.5 or any of corrupt_packets, "
            "decode_errors, missing_frames, damaged_frames > 0); null when failed",
            nullable=True,
        ),
        _field(
            "warnings",
            pa.string(),
            "",
            "what to know about a done video, '; '-separated: its decode damage, a course folder "
            "that is no valid course name (filed under 'unknown'); null if none",
            nullable=True,
        ),
        _field(
            "speech",
            pa.string(),
            "",
            "the audio's outcome (fer_stream.audio.SpeechStatus): 'done' (speech/ holds every stretch of "
            "speech, maybe none), 'no_audio' (the file has no audio track), 'audio_error' (it does not "
            "decode: speech_error), 'off' (the speech signal was not asked for); null when failed, and "
            "in records written before speech was analysed",
            nullable=True,
        ),
        _field(
            "speech_error", pa.string(), "", "why the audio could not be analysed; else null", nullable=True
        ),
        _model_version(),
        _field("pipeline_version", pa.string(), "", "fer_stream version that wrote the records"),
        _field(
            "config_hash",
            pa.string(),
            "hex",
            "hash of everything that changes the records (sampling, detector, tracker, students, "
            "attention thresholds, model weights, schema version); part of the file names",
        ),
        _field("config_json", pa.string(), "json", "the configuration that config_hash hashes"),
        _field("run_id", pa.string(), "", "the run that wrote this row: UTC start time + random suffix"),
        _ts("started_at", "when the run started work on this video"),
        _ts("finished_at", "when the video's records were written (or it failed)"),
        _seconds("wall_s", "started_at to finished_at"),
        _seconds("hash_s", "time to hash and probe the file"),
        _seconds("analyze_s", "worker time decoding, detecting, tracking, aligning (all segments)"),
        _seconds("classify_s", "classifier time spent on this video's crops (all batches)"),
        _seconds("audio_s", "worker time decoding the audio and detecting speech (all segments)"),
    ],
)

SCHEMAS: dict[str, pa.Schema] = {
    "faces": FACES_SCHEMA,
    "frames": FRAMES_SCHEMA,
    "speech": SPEECH_SCHEMA,
    "videos": VIDEOS_SCHEMA,
}
PARTITIONING = ds.partitioning(
    pa.schema([FACES_SCHEMA.field("course"), FACES_SCHEMA.field("lecture_date")]), flavor="hive"
)


class VideoStatus(enum.StrEnum):
    """One input's outcome in one run: the ``videos/`` table's ``status`` (``done``, ``failed``); the
    pipeline's run summary also says ``skipped``."""

    DONE = "done"  # records written
    FAILED = "failed"  # a typed error, recorded in videos/
    SKIPPED = "skipped"  # done before with this config, or a copy of a file in this run (``reason``)


class RecordsError(ValueError):
    """Columns that do not fit a table's schema."""


def make_table(name: str, columns: Mapping[str, object]) -> pa.Table:
    """Build table ``name`` from column values (numpy arrays, lists or scalars broadcast to the length).

    Float NaN becomes null ("not measurable"). Raises :class:`RecordsError` for missing or unknown
    columns, values that do not convert, and nulls in non-nullable fields.
    """
    schema = SCHEMAS[name]
    missing = [f.name for f in schema if f.name not in columns]
    extra = [k for k in columns if k not in schema.names]
    if missing or extra:
        raise RecordsError(f"{name}: missing columns {missing}, unknown columns {extra}")
    lengths = {len(v) for v in columns.values() if isinstance(v, (list, tuple, np.ndarray, pa.Array))}
    if len(lengths) > 1:
        raise RecordsError(f"{name}: columns of different lengths {sorted(lengths)}")
    n = lengths.pop() if lengths else 1
    arrays = []
    for f in schema:
        v = columns[f.name]
        if not isinstance(v, (list, tuple, np.ndarray, pa.Array)):
            v = [v] * n
        try:
            arr = pa.array(v, type=f.type, from_pandas=True)  # from_pandas: NaN -> null
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as e:
            raise RecordsError(f"{name}.{f.name}: {e}") from e
        if not f.nullable and arr.null_count:
            raise RecordsError(f"{name}.{f.name}: {arr.null_count} nulls in a non-nullable column")
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=schema)


def partition_dir(root: str | os.PathLike, name: str, course: str, lecture_date: date) -> Path:
    """``root/name/course=<course>/lecture_date=<YYYY-MM-DD>`` (course URI-escaped, as pyarrow reads it)."""
    return Path(root) / name / f"course={quote(course, safe='')}" / f"lecture_date={lecture_date.isoformat()}"


def write_partition(
    root: str | os.PathLike, name: str, table: pa.Table, course: str, lecture_date: date, file_stem: str
) -> Path:
    """Write ``table`` (rows of one course and lecture date) as one Parquet file, atomically.

    The file goes to ``partition_dir(...)/<file_stem>.parquet`` through a hidden temporary file in
    the same folder and a rename, so readers never see half a file and a rerun replaces the file
    whole. A file of the same name in another partition (the video's course or date was corrected
    since) is removed, so a video's rows live in one place. An empty table still writes a file: "no
    rows" is then a recorded fact.

    Returns:
        the path written.
    """
    schema = SCHEMAS[name]
    if not table.schema.equals(schema):
        raise RecordsError(f"{name}: table schema differs from records.{name.upper()}_SCHEMA")
    if "/" in file_stem or file_stem.startswith((".", "_")):
        raise RecordsError(f"bad file stem {file_stem!r}")
    for k, value in (("course", course), ("lecture_date", lecture_date)):
        if set(table.column(k).unique().to_pylist()) - {value}:
            raise RecordsError(f"{name}: rows of another {k} than {value}")
    folder = partition_dir(root, name, course, lecture_date)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{file_stem}.parquet"
    # Hidden temporary name: pyarrow.dataset and DuckDB skip files starting with '.', so a crash
    # leaves nothing a reader would pick up.
    data = table.drop_columns(list(PARTITION_KEYS))
    write_atomic(path, lambda f: pq.write_table(data, f, compression=COMPRESSION))
    for old in (Path(root) / name).glob(f"*/*/{path.name}"):
        if old != path:
            old.unlink(missing_ok=True)
    return path


def remove_stale_temp_files(root: str | os.PathLike, older_than_s: float = 3600.0) -> int:
    """Delete hidden temporary files a killed writer left under ``root`` (readers ignore them anyway).

    Only files older than ``older_than_s`` go, so a run writing into the same folder right now is
    left alone. Returns how many were removed.
    """
    removed = 0
    for name in SCHEMAS:
        for tmp in (Path(root) / name).glob("*/*/.*.tmp"):
            try:
                if time.time() - tmp.stat().st_mtime > older_than_s:
                    tmp.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
    return removed


def dataset(root: str | os.PathLike, name: str) -> ds.Dataset:
    """Table ``name`` under ``root`` as a ``pyarrow.dataset`` (hive partitions, THE schema)."""
    folder = Path(root) / name
    if not folder.is_dir():
        return ds.dataset(pa.Table.from_batches([], schema=SCHEMAS[name]))
    return ds.dataset(folder, schema=SCHEMAS[name], format="parquet", partitioning=PARTITIONING)


def read(root: str | os.PathLike, name: str, columns: list[str] | None = None, filter=None) -> pa.Table:
    """Table ``name`` under ``root`` (empty, with the schema, if nothing was written yet)."""
    return dataset(root, name).to_table(columns=columns, filter=filter)
