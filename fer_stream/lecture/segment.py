"""One segment of one video -> its measured columns, classified: the runner both paths share.

``fer_stream.analyze`` runs a whole video as one segment with the classifier in this process; the
Ray pipeline runs each segment in a task and sends the crops to its classifier actors. Both call
:func:`run_segment` with a ``classify`` callback, which is all that differs::

    part = run_segment(path, config, stage, classify=in_process(classifier))   # no Ray
    part = run_segment(path, config, stage, classify=send_to_actor_pool, k=3,  # a Ray task
                       start_s=1800.0, end_s=2400.0)

The runner owns batching (``config.batch_size`` crops per call) and backpressure (at most
``config.batches_in_flight`` calls outstanding: decoding pauses until one returns, so memory stays
flat however fast decoding is).
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from fer_stream.audio import SpeechResult, detect_speech
from fer_stream.config import PipelineConfig
from fer_stream.faces.liveness import MotionMeter, TrackMotion
from fer_stream.faces.track import FaceTracker, TrackSummary
from fer_stream.labels import FER2013_LABELS
from fer_stream.lecture import columns
from fer_stream.lecture.stage import FaceStage, analyze_video
from fer_stream.video import DecodeDamage, DecodeStats

# Segment k's tracks get ids k * stride + 1, ...: unique across the segments of one video.
SEGMENT_ID_STRIDE = 1_000_000

# ``classify(crops)``: ``(n, S, S) uint8`` aligned faces -> a future of ``((n, 7) float32
# probabilities in the weights' label order, seconds the classifier spent)``. A future, so that a
# caller may classify elsewhere (Ray actors) while this segment decodes on.
Classified = tuple[np.ndarray, float]
ClassifyFn = Callable[[np.ndarray], "cf.Future[Classified]"]
# ``wait(futures, every)``: block until one (``every=False``) or every one of ``futures`` (from
# ``classify``) is done. The runner calls it before each blocking ``concurrent.futures.wait``. A Ray
# task passes one that waits in ``ray.wait``: Ray lends the task's CPU back while it is blocked there
# (never while it blocks on a plain future), so a classifier actor that restarts after its node was
# lost can take that CPU instead of waiting for it forever.
WaitFn = Callable[[Sequence["cf.Future[Classified]"], bool], None]


@dataclass(frozen=True, kw_only=True)
class SegmentResult:
    """What one segment gives: per-face and per-frame columns, its tracks, decode and time counts.

    Attributes:
        faces: ``columns.MEASURED_COLUMNS`` as ``(n,)`` arrays, plus ``probs``: ``(n, 7) float32`` in
            the weights' label order (``assemble`` puts them in ``FER2013_LABELS`` order).
        frames: ``frame_index``, ``pts_s``, ``n_faces``: one entry per sampled frame, faces or not.
        tracks: the segment's tracks (ids from ``k * SEGMENT_ID_STRIDE + 1``).
        frame_wh: ``(width, height)`` of the frames, pixels; ``None`` if no frame decoded.
        damage: what decoding lost or damaged (``video.DecodeDamage``: seconds not decoded, corrupt
            packets, decode errors, missing and damaged frames); ``damage.incomplete`` if any.
        analyze_s: seconds decoding, detecting, tracking, aligning (the classifier's time excluded).
        classify_s: seconds the classifier spent on this segment's crops.
        descriptors: ``{track_id: (k, 128) float32}`` face descriptors, identity on only (they go to
            the identity store, never to the records).
        descriptor_s: part of ``analyze_s`` spent computing them.
        node_id: the Ray node that ran the segment (the pipeline sets it; empty in-process).
        motion: per-track motion evidence (``faces.liveness``): which tracks are pictures.
        speech: the segment's speech (``audio.SpeechResult``: its own time in ``speech.seconds``, not
            in ``analyze_s``); status ``off`` when the speech signal is not asked for.
    """

    faces: dict[str, np.ndarray]
    frames: dict[str, np.ndarray]
    tracks: TrackSummary
    frame_wh: tuple[int, int] | None
    damage: DecodeDamage
    analyze_s: float
    classify_s: float
    descriptors: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    descriptor_s: float = 0.0
    node_id: str = ""
    motion: TrackMotion = field(default_factory=TrackMotion.empty, repr=False)
    speech: SpeechResult = field(default_factory=SpeechResult.off, repr=False)


def in_process(classifier) -> ClassifyFn:
    """A ``classify`` callback that runs ``classifier.predict`` here, at once (a done future)."""

    def classify(crops: np.ndarray) -> cf.Future[Classified]:
        future: cf.Future[Classified] = cf.Future()
        t0 = time.perf_counter()
        try:
            future.set_result((classifier.predict(crops), time.perf_counter() - t0))
        except Exception as e:  # raised where the runner reads it, as a remote call's error would be
            future.set_exception(e)
        return future

    return classify


def run_segment(
    path: str | os.PathLike,
    config: PipelineConfig,
    stage: FaceStage,
    classify: ClassifyFn | None,
    *,
    k: int = 0,
    start_s: float = 0.0,
    end_s: float | None = None,
    decode_threads: int = 0,
    on_progress: Callable[[int, int], None] | None = None,
    wait: WaitFn | None = None,
) -> SegmentResult:
    """Decode ``[start_s, end_s)`` of ``path``, find, track and align faces, classify the crops.

    Args:
        path: the video.
        config: sampling, tracker, batching, identity (``config.identity``: descriptors per track).
        stage: ``make_face_stage(config, crop_size)`` (reused across segments: it is reset here).
        classify: sends one batch of crops to the classifier (:data:`ClassifyFn`); None: measure
            only (``fer-stream check``): no ``probs`` in the result's faces.
        k: the segment's index in its video: its track ids start at ``k * SEGMENT_ID_STRIDE + 1``.
        start_s, end_s: the segment, seconds of the stream (``end_s=None``: to the end).
        decode_threads: FFmpeg threads (0: one per core; 1 when many segments share a node).
        on_progress: ``(frames, faces)`` added since the last call, at most about once a second.
        wait: how to block on ``classify``'s futures (:data:`WaitFn`); None: plain futures.

    Raises:
        ``fer_stream.video.VideoError`` for a file that does not decode; whatever ``classify``'s
        futures raise.
    """
    t0 = time.perf_counter()
    tracker = FaceTracker(config.tracker, first_id=k * SEGMENT_ID_STRIDE + 1)
    collector = None
    if config.identity is not None:  # a few descriptors per track, from the frames' pixels
        from fer_stream.faces.descriptors import DescriptorCollector, shared_descriptor

        collector = DescriptorCollector(shared_descriptor(config.identity.num_jitters), config.identity)
    stats = DecodeStats()
    meter = MotionMeter()  # is each track a living face or a picture?
    cols = columns.FaceColumns()
    frame_rows: dict[str, list] = {"frame_index": [], "pts_s": [], "n_faces": []}
    batcher = _Batcher(classify, config.batch_size, config.batches_in_flight, wait) if classify else None
    frame_wh = None
    pending_frames = pending_faces = 0
    last_report = time.monotonic()

    for ff in analyze_video(
        path,
        stage,
        tracker,
        config.sample_fps,
        start_s,
        end_s,
        stats=stats,
        decode_threads=decode_threads,
        on_frame=collector,
    ):
        n = len(ff)
        frame_wh = ff.frame_wh
        frame_rows["frame_index"].append(ff.frame_index)
        frame_rows["pts_s"].append(ff.pts_s)
        frame_rows["n_faces"].append(n)
        tracked = ff.track_id > 0
        meter.update(ff.track_id[tracked], ff.pts_s, ff.det.xyxy[tracked], ff.crops[tracked])
        if n:
            cols.add(ff)
            if batcher is not None:
                batcher.add(ff.crops)
        pending_frames, pending_faces = pending_frames + 1, pending_faces + n
        if on_progress is not None and time.monotonic() - last_report > 1.0:
            on_progress(pending_frames, pending_faces)
            pending_frames = pending_faces = 0
            last_report = time.monotonic()
    probs, classify_s = batcher.finish() if batcher is not None else (None, 0.0)
    if on_progress is not None and (pending_frames or pending_faces):
        on_progress(pending_frames, pending_faces)

    video_s = time.perf_counter() - t0
    # The audio: a separate pass over the audio stream alone, after the video's (it never slows
    # decoding the frames, and a broken or absent track is a status, never this segment's failure).
    speech = detect_speech(path, start_s, end_s, config=config.speech) if config.hears else SpeechResult.off()
    faces = cols.arrays()
    if probs is not None:
        faces["probs"] = probs
    frames: dict[str, np.ndarray] = {
        "frame_index": np.asarray(frame_rows["frame_index"], np.int64),
        "pts_s": np.asarray(frame_rows["pts_s"], np.float64),
        "n_faces": np.asarray(frame_rows["n_faces"], np.int32),
    }
    return SegmentResult(
        faces=faces,
        frames=frames,
        tracks=tracker.tracks,
        frame_wh=frame_wh,
        damage=DecodeDamage.of(stats),
        analyze_s=video_s - classify_s,
        classify_s=classify_s,
        descriptors=collector.descriptors() if collector is not None else {},
        descriptor_s=collector.seconds if collector is not None else 0.0,
        motion=meter.summary(),
        speech=speech,
    )


class _Batcher:
    """Crops in, ``batch_size`` at a time out to ``classify``; at most ``in_flight`` calls outstanding."""

    def __init__(self, classify: ClassifyFn, batch_size: int, in_flight: int, wait: WaitFn | None = None):
        self.classify, self.batch_size, self.in_flight, self.wait = classify, batch_size, in_flight, wait
        self.crops: list[np.ndarray] = []  # not yet sent
        self.n = 0
        self.futures: list[cf.Future[Classified]] = []  # every call, in crop order
        self.outstanding: set[cf.Future[Classified]] = set()

    def add(self, crops: np.ndarray) -> None:
        self.crops.append(crops)
        self.n += len(crops)
        self._send(final=False)

    def finish(self) -> tuple[np.ndarray, float]:
        """``((n, 7) float32, classifier seconds)`` of every crop added, in order."""
        self._send(final=True)
        self._block(self.futures, every=True)
        outs = [f.result() for f in self.futures]
        if not outs:
            return np.zeros((0, len(FER2013_LABELS)), np.float32), 0.0
        return np.concatenate([p for p, _ in outs]), float(sum(s for _, s in outs))

    def _block(self, futures, every: bool):
        """``concurrent.futures.wait`` on ``futures`` (one or all), through ``self.wait`` first."""
        futures = list(futures)
        if self.wait is not None and futures:
            self.wait(futures, every)
        return cf.wait(futures, return_when=cf.ALL_COMPLETED if every else cf.FIRST_COMPLETED)

    def _send(self, final: bool) -> None:
        while self.n >= self.batch_size or (final and self.n):
            batch = np.concatenate(self.crops)
            head, rest = batch[: self.batch_size], batch[self.batch_size :]
            # Backpressure: decoding pauses while in_flight calls are outstanding, so the crops in
            # memory (and in Ray's object store) stay bounded however fast decoding is.
            while len(self.outstanding) >= self.in_flight:
                done, self.outstanding = self._block(self.outstanding, every=False)
                for f in done:
                    f.result()  # a failed call fails the segment now, not after the whole segment
            future = self.classify(head)
            self.futures.append(future)
            self.outstanding.add(future)
            self.crops, self.n = ([rest] if len(rest) else []), len(rest)
