"""A video's segments -> its ``faces`` and ``frames`` tables: the one assembly into rows.

The Ray pipeline (``pipeline.run``) and ``fer_stream.analyze`` both end here, so a column, a label
order or a student key is defined once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa

from fer_stream import records
from fer_stream.audio import SpeechResult, SpeechStatus
from fer_stream.config import CROP_SIZE_WITHOUT_EMOTION, ModelInfo, PipelineConfig
from fer_stream.faces.track import TrackSummary, assign_students
from fer_stream.labels import FER2013_LABELS
from fer_stream.lecture import columns
from fer_stream.lecture.segment import SegmentResult

# ``resolve(keys, tracks, frame_wh, descriptors) -> {student key: student_id}``: course-wide ids
# (identity on: ``fer_stream.identity.resolve_students``). Default: the per-lecture pseudonym.
ResolveFn = Callable[
    [Mapping[int, str], TrackSummary, "tuple[int, int] | None", Mapping[int, np.ndarray]], Mapping[str, str]
]


@dataclass(frozen=True, kw_only=True)
class LectureRecords:
    """One video's rows: ``faces`` (``records.FACES_SCHEMA``), ``frames`` (``FRAMES_SCHEMA``), how
    many distinct students its faces belong to, and its speech: ``speech`` (``SPEECH_SCHEMA``) when
    the audio was analysed, else ``None`` (null, not "no speech": ``hearing.status`` says why)."""

    faces: pa.Table
    frames: pa.Table
    students: int
    hearing: SpeechResult
    speech: pa.Table | None


def label_order(model: ModelInfo) -> np.ndarray:
    """Column ``j`` of the records' ``p_*`` (``FER2013_LABELS`` order) is column ``order[j]`` of the
    weights' output."""
    return np.argsort([FER2013_LABELS.index(x) for x in model.labels])


def assemble(
    parts: Sequence[SegmentResult],
    *,
    video_id: str,
    course: str,
    lecture_date: date,
    model: ModelInfo | None,
    config: PipelineConfig,
    resolve: ResolveFn | None = None,
) -> LectureRecords:
    """Stitch a video's segments (in time order) into its tables.

    Segments have disjoint track ids; student keys are assigned by seat over the union of their
    tracks, so a student cut at a segment seam keeps one key. ``student_id`` is
    ``<video_id[:8]>-<key>`` (per lecture, pseudonymous) unless ``resolve`` maps keys to other ids;
    a face on a track too short to be a student gets null. ``model`` is ``None`` when emotion is
    not inferred (``config.signals``): the segments then carry no ``probs`` and no expression value
    is stored.
    """
    tracks = TrackSummary.concat([p.tracks for p in parts])
    frame_wh = next((p.frame_wh for p in parts if p.frame_wh), None)
    faces = {c: np.concatenate([p.faces[c] for p in parts]) for c in parts[0].faces}
    pictures = picture_tracks(parts, config)
    static = np.isin(faces["track_id"], pictures)
    # a picture is nobody: its tracks take no student key
    nobody = set(pictures.tolist())
    keys = {t: k for t, k in assign_students(tracks, frame_wh, config.students).items() if t not in nobody}
    if resolve is None:
        sid: Mapping[str, str] = {key: f"{video_id[:8]}-{key}" for key in set(keys.values())}
    else:
        descriptors = {t: d for p in parts for t, d in p.descriptors.items()}
        sid = resolve(keys, tracks, frame_wh, descriptors)
    probs = faces.pop("probs", None)
    if model is None or probs is None:
        if model is not None or probs is not None:
            raise ValueError("assemble: emotion probabilities without a model, or a model without them")
    elif len(probs):
        probs = probs[:, label_order(model)]
    else:
        probs = np.zeros((0, len(FER2013_LABELS)), np.float32)
    student_of_face = [sid[keys[t]] if t in keys else None for t in faces["track_id"].tolist()]
    face_table = columns.faces_table(
        faces,
        probs,
        student_of_face,
        video_id=video_id,
        course=course,
        lecture_date=lecture_date,
        model_version=model.version if model is not None else None,
        static=static,
    )
    where = {"video_id": video_id, "course": course, "lecture_date": lecture_date}
    frame_cols = {c: np.concatenate([p.frames[c] for p in parts]) for c in parts[0].frames}
    # a sentence cut by a segment seam is one stretch of speech again
    hearing = SpeechResult.combine([p.speech for p in parts], join_gap_s=config.speech.min_silence_s)
    speech = None
    if hearing.status == SpeechStatus.DONE:
        seg = hearing.segments
        speech = records.make_table(
            "speech", {**where, "start_s": seg.start_s, "end_s": seg.end_s, "p_speech": seg.p_mean}
        )
    return LectureRecords(
        faces=face_table,
        frames=records.make_table("frames", {**where, **frame_cols}),
        students=len(set(keys.values())),
        hearing=hearing,
        speech=speech,
    )


def picture_tracks(parts: Sequence[SegmentResult], config: PipelineConfig) -> np.ndarray:
    """``(K,) int64`` ids of the tracks judged pictures, not people (``faces.liveness.static_tracks``
    on the segments' motion evidence; untracked faces, id 0, have none)."""
    from fer_stream.faces.liveness import TrackMotion, static_tracks

    return static_tracks(TrackMotion.concat([p.motion for p in parts]), config.stillness)


def analyze_file(
    path: str | os.PathLike,
    config: PipelineConfig | None = None,
    *,
    course: str | None = None,
    lecture_date: date | None = None,
    threads: int | None = None,
) -> pa.Table:
    """One video analysed in this process (no Ray): the ``faces`` table, as the pipeline writes it.

    The same runner (:func:`run_segment`) and assembly (:func:`assemble`) as the Ray pipeline, with
    the whole video as one segment and the classifier in this process. Identity
    (``config.identity``) needs the output folder's store and is the pipeline's job: refused here.

    Args:
        path: a video file.
        config: a ``config.PipelineConfig`` (default: the pipeline's defaults).
        course, lecture_date: override what ``inputs.lecture_metadata`` finds (sidecars, path).
        threads: classifier threads (default: the CPUs this process may use).

    Returns:
        ``pyarrow.Table`` with ``records.FACES_SCHEMA``: one row per face per sampled frame.
    """
    from fer_stream import inputs
    from fer_stream.classify import EmotionClassifier, default_threads
    from fer_stream.lecture.segment import in_process, run_segment
    from fer_stream.lecture.stage import make_face_stage

    config = config or PipelineConfig()
    if config.identity is not None:
        raise ValueError("identity needs an output folder's store: use pipeline.run (or fer-stream analyze)")
    lec = inputs.lecture(path)
    if lec.meta_error:
        raise inputs.MetadataError(lec.meta_error[1])
    model = ModelInfo.of(config)  # checks the labels, as the pipeline does; None: emotion off
    if config.hears:  # the voice model is there, as the pipeline checks before any work
        from fer_stream.audio import silero_model_path

        silero_model_path()
    classify = None
    if model is not None:  # emotion off: the emotion weights are never read, the model never built
        classify = in_process(
            EmotionClassifier(
                config.weights, device="cpu", threads=threads or default_threads(), backend=config.backend
            )
        )
    stage = make_face_stage(config, model.input_size if model is not None else CROP_SIZE_WITHOUT_EMOTION)
    part = run_segment(path, config, stage, classify)
    return assemble(
        [part],
        video_id=inputs.content_hash(path),
        course=course or lec.meta.course,
        lecture_date=lecture_date or lec.meta.lecture_date,
        model=model,
        config=config,
    ).faces
