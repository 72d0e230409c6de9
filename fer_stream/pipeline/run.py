"""The run loop, on the driver: inspect tasks, segment tasks as slots free up, and each video's
records once its segments are back. Everything that touches the output folder happens here.

Idempotency: files are named by video_id + config hash, so a rerun overwrites them whole; the
videos/ row is written last, so a video killed half-way is simply redone. Failures are typed and
recorded (``error_type = type(e).__name__``) and never stop the batch unless ``strict``.
"""

from __future__ import annotations

import enum
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from fer_stream import inputs as inputs_
from fer_stream import records
from fer_stream.config import (
    CROP_SIZE_WITHOUT_EMOTION,
    PIPELINE_VERSION,
    ModelInfo,
    PipelineConfig,
    config_hash,
)
from fer_stream.inputs import Lecture
from fer_stream.lecture import SegmentResult, assemble
from fer_stream.ops import claims as claims_
from fer_stream.ops import runlog
from fer_stream.ops.atomic import ensure_writable_dir
from fer_stream.pipeline.cluster import check_inputs_reachable, connect
from fer_stream.pipeline.placement import (
    PLACEMENT_WAIT_S,
    PlacementError,
    actor_needs,
    alive_nodes,
    classifier_plan,
    placement_problem,
    plan_segments,
)
from fer_stream.pipeline.summary import Display, RunSummary, VideoResult, VideoStatus, error_of
from fer_stream.pipeline.videos import RunVideo, video_row, warnings_of
from fer_stream.pipeline.workers import Progress, analyze_segment, inspect_file, make_classifiers
from fer_stream.video import DecodeDamage


class _Task(enum.StrEnum):
    """What a pending ObjectRef of the run loop is."""

    INSPECT = "inspect"
    SEGMENT = "segment"


def _cancel(ref) -> None:
    """Stop a task by ending its worker process (Ray starts a fresh one). A plain ``ray.cancel``
    raises KeyboardInterrupt inside the task, and one that lands in the middle of a first ``import``
    (PyAV, torch) leaves that module half-initialised in a worker Ray then reuses: every later task
    there failed with "module 'av' has no attribute 'stream'"."""
    ray.cancel(ref, force=True)


class _Run:
    """One run's event loop: inspect tasks, then segment tasks as slots free up, records as videos
    complete. Everything that touches the output folder happens here, on the driver."""

    def __init__(
        self,
        output: Path,
        config: PipelineConfig,
        force: bool,
        strict: bool,
        progress: bool,
        placement_wait_s: float = PLACEMENT_WAIT_S,
    ):
        self.output, self.config, self.force, self.strict = output, config, force, strict
        self.progress, self.placement_wait_s = progress, placement_wait_s
        # None when emotion is not inferred: no weights read, no classifier actor started
        self.model = ModelInfo.of(config)
        analysis = config.analysis(self.model)
        self.chash = config_hash(analysis)
        self.config_json = json.dumps(analysis, sort_keys=True)
        self.run_id = runlog.new_run_id()
        self.run_columns = {  # the run's own columns of every videos/ row it writes
            "sample_fps": config.sample_fps,
            "model_version": self.model.version if self.model is not None else None,
            "pipeline_version": PIPELINE_VERSION,
            "config_hash": self.chash,
            "config_json": self.config_json,
            "run_id": self.run_id,
        }
        self.pending: dict = {}  # ObjectRef -> (kind, video, segment index)
        self.queue: list[tuple[RunVideo, int]] = []  # segments waiting for a slot, in video order
        self.results: dict[str, VideoResult] = {}
        self.claimed: dict[str, str] = {}  # video_id -> path analysed in this run
        self.classifiers: list | None = None
        self.to_inspect: list[RunVideo] = []  # videos not yet handed to an inspect task
        self.aborted = False
        self.error: str | None = None  # why the run stopped early
        # Files hashed and probed at once (inspect tasks finish on their own, so they may queue).
        self.max_segments = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
        opts: dict = {}  # the Ray options of a classifier actor (none when emotion is off)
        if self.model is None:  # emotion off: every CPU is a video worker
            self.worker_slots = max(1, int(ray.cluster_resources().get("CPU", 1)))
            n = 0
        else:
            n, _, opts, self.worker_slots = classifier_plan(config)
        self.pool = (n, actor_needs(opts))  # what the classifier actors need, for the checks
        problem = placement_problem(*self.pool, alive_nodes()) if n else None
        if problem:  # before any work: Ray would wait for such actors forever
            raise PlacementError(f"the classifier actors cannot be placed: {problem}")
        # Claims: another run on this output analysing a video makes this one wait for it.
        self.claims = claims_.Claims(output, self.chash, self.run_id)
        # Inspected videos to analyse are claimed one at a time, when the cluster has room for their
        # segments: two runs on one output then share the batch instead of one holding it all.
        self.ready: list[RunVideo] = []  # inspected, to analyse, not claimed yet
        self.waiting: list[RunVideo] = []  # another live run holds their claim
        self.last_try = 0.0  # when the waiting videos' claims were last tried
        self.probes: dict = {}  # ObjectRef of ClassifierActor.ready -> actor index
        self.classifier_nodes: list[str] = []
        self.unplaceable_since: float | None = None
        self.next_check = 0.0

    def execute(self, videos: list[RunVideo]) -> RunSummary:
        t0 = time.time()
        records.remove_stale_temp_files(self.output)
        self.claims.remove_stale()
        self.done_runs = claims_.done_runs(self.output, self.chash)  # video_id -> runs that did it
        done_before = set() if self.force else set(self.done_runs)
        self.display = Display(len(videos), self.progress)
        # On the driver's node: a lost worker node must not take the run's progress counter with it
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        self.counter = Progress.options(scheduling_strategy=here).remote()  # type: ignore[attr-defined]
        try:
            self.to_inspect = list(videos)
            self._submit()
            while (self.pending or self.ready or self.waiting) and not self.aborted:
                if self.pending:
                    ready, _ = ray.wait(list(self.pending), num_returns=1, timeout=0.5)
                else:  # only videos other runs hold: look again in a moment
                    ready = []
                    time.sleep(0.5)
                for ref in ready:
                    if self.aborted or ref not in self.pending:
                        continue  # cancelled meanwhile by its video's failure
                    kind, v, k = self.pending.pop(ref)
                    try:
                        value = ray.get(ref)
                    except Exception as e:  # the video's failure, typed (RayTaskError unwrapped)
                        self._fail(v, error_of(e))
                        continue
                    if kind == _Task.INSPECT:
                        self._inspected(v, value, done_before)
                    else:
                        self._segment_done(v, k, value)
                self._watch_classifiers()
                self._submit()
                frames, faces = ray.get(self.counter.get.remote())
                self.display.update(len(self.results), frames, faces)
        finally:
            for ref in self.pending:
                _cancel(ref)
            self.claims.release_all()
            self.display.close()
            for actor in self.classifiers or []:
                ray.kill(actor)  # frees their CPUs/GPUs for the next run on a shared cluster
            ray.kill(self.counter)
        return RunSummary(
            run_id=self.run_id,
            output=str(self.output),
            config_hash=self.chash,
            model_version=self.model.version if self.model is not None else None,
            signals=sorted(s.value for s in self.config.signals),
            inputs=len(videos),
            results=[self.results[v.path] for v in videos if v.path in self.results],
            wall_s=time.time() - t0,
            aborted=self.aborted,
            error=self.error,
            classifier_nodes=self.classifier_nodes,
        )

    def _inspected(self, v: RunVideo, value: dict, done_before: set[str]) -> None:
        v.inspect = value
        vid = value["video_id"]
        if v.meta_error or value["error"]:
            self._fail(v, v.meta_error or value["error"])
        elif vid in self.claimed:
            self._skip(v, f"same file as {self.claimed[vid]}")
        elif vid in done_before:
            self._skip(v, f"done before with config {self.chash} (--force redoes it)")
        else:
            self.ready.append(v)

    def _start_next(self) -> bool:
        """Queue the segments of the next video this run can claim; ``False`` if there is none now.
        Videos other runs hold are tried again at most once a second (their claims are released
        when those runs finish them, or die)."""
        candidates = list(self.ready)
        if self.waiting and time.monotonic() - self.last_try > 1.0:
            self.last_try = time.monotonic()
            candidates += self.waiting
        for v in candidates:
            if self._start(v):
                return True
        return False

    def _start(self, v: RunVideo) -> bool:
        """Claim ``v`` and queue its segments (``True``); or wait while another run holds its claim;
        or skip it: a copy of a file this run took up, or done by another run since this one began."""
        vid = v.video_id
        if vid in self.claimed:  # a copy of a file taken up meanwhile
            self._unlist(v)
            self._skip(v, f"same file as {self.claimed[vid]}")
            return False
        owner = self.claims.claim(vid)
        if owner is not None:
            if v not in self.waiting:
                self._unlist(v)
                self.waiting.append(v)
                self.display.line(f"waiting {v.path}: {claims_.describe_owner(owner)} is analysing it")
            return False
        self._unlist(v)
        other = self._done_meanwhile(v)
        if other:
            self.claims.release(vid)
            self._skip(v, f"done meanwhile by run {other} (same config {self.chash})")
            return False
        self.claimed[vid] = v.path
        # Cut into as many segments as there are free video workers (a lone lecture uses them all)
        idle = max(1, self.worker_slots - len(self.queue) - self._running_segments())
        v.segments = plan_segments(v.inspect["info"].duration_s, self.config.segment_s, min_parts=idle)
        self.queue.extend((v, k) for k in range(len(v.segments)))
        return True

    def _unlist(self, v: RunVideo) -> None:
        for waiting in (self.ready, self.waiting):
            if v in waiting:
                waiting.remove(v)

    def _done_meanwhile(self, v: RunVideo) -> str | None:
        """The run that wrote a ``done`` row of ``v`` for this config since this run started (while
        it held the claim), or ``None``. Reads only the video's own row files."""
        import pyarrow.parquet as pq

        prefix = f"{v.video_id}_{self.chash}_"  # videos/ files: <video_id>_<config_hash>_<run_id>
        folder = records.partition_dir(self.output, "videos", v.meta.course, v.meta.lecture_date)
        known = self.done_runs.get(v.video_id, set()) | {self.run_id}
        for path in sorted(folder.glob(f"{prefix}*.parquet")):
            run_id = path.stem[len(prefix) :]
            if run_id in known:
                continue
            if VideoStatus.DONE in pq.read_table(path, columns=["status"]).column("status").to_pylist():
                return run_id
        return None

    def _watch_classifiers(self) -> None:
        """Stop the run with a clear error, instead of waiting forever, when the classifier actors
        cannot run: an actor's node offers a GPU its torch cannot use, or the alive nodes can no
        longer hold the pool (a GPU or ``classifier`` node was lost) for ``placement_wait_s``."""
        if self.classifiers is None:
            return
        if self.probes:
            ready, _ = ray.wait(list(self.probes), num_returns=len(self.probes), timeout=0)
            for ref in ready:
                i = self.probes.pop(ref)
                try:
                    self.classifier_nodes[i] = ray.get(ref)["node_id"]
                except Exception as e:  # PlacementError (no usable GPU), the actor died for good
                    self._stop(": ".join(error_of(e)))
                    return
        now = time.monotonic()
        if now < self.next_check:
            return
        self.next_check = now + 2.0
        problem = placement_problem(*self.pool, alive_nodes())
        if problem is None:
            self.unplaceable_since = None
        elif self.unplaceable_since is None:
            self.unplaceable_since = now
            self.display.line(
                f"classifier actors cannot be placed now: {problem}; waiting up to "
                f"{self.placement_wait_s:g} s for a node"
            )
        elif now - self.unplaceable_since > self.placement_wait_s:
            self._stop(
                f"PlacementError: the classifier actors could not be placed for {self.placement_wait_s:g} "
                f"s: {problem}. A node was lost? The videos done so far are kept; run the same "
                "command again: it sizes the classifier pool to the nodes it finds and analyses only "
                "the videos not done."
            )

    def _stop(self, error: str) -> None:
        self.error, self.aborted = error, True
        self.display.line(f"STOPPED: {error}")

    def _running_segments(self) -> int:
        return sum(kind == _Task.SEGMENT for kind, _, _ in self.pending.values())

    def _submit(self) -> None:
        """Top up the tasks in flight: hashing a thousand files first would delay every analysis."""
        inspecting = sum(kind == _Task.INSPECT for kind, _, _ in self.pending.values())
        while self.to_inspect and inspecting < self.max_segments and not self.aborted:
            v = self.to_inspect.pop(0)
            v.started = time.time()
            self.pending[inspect_file.remote(v.path, v.lecture.video_id)] = (_Task.INSPECT, v, 0)
            inspecting += 1
        # Segments in flight never exceed the video worker slots, so they leave the classifier
        # actors' CPUs free (the actors are placed lazily, and again after a restart). A segment
        # that waits for a classifier lends its CPU to Ray (ray.wait, workers.analyze_segment):
        # the second guard, for the node-loss case where retried segments outnumber the CPUs left.
        busy = self._running_segments()
        while busy < self.worker_slots and not self.aborted and (self.queue or self._start_next()):
            v, k = self.queue.pop(0)
            if self.classifiers is None and self.model is not None:  # only once there is work: a
                # rerun that skips all starts none; emotion off starts none at all
                self.weights = [ray.put(self.model.blob)]  # nested: passed along unresolved
                self.classifiers = make_classifiers(self.config)
                self.classifier_nodes = [""] * len(self.classifiers)
                empty = np.zeros((0, self.model.input_size, self.model.input_size), np.uint8)
                for i, actor in enumerate(self.classifiers):  # load the model while segments decode
                    self.probes[actor.ready.remote()] = i  # placed, and its device usable?
                    actor.predict.remote(self.weights, empty)
            start_s, end_s = v.segments[k]
            ref = analyze_segment.remote(
                v.path,
                k,
                start_s,
                end_s,
                self.config,
                self.model.input_size if self.model is not None else CROP_SIZE_WITHOUT_EMOTION,
                self.classifiers,
                self.weights if self.model is not None else None,
                self.counter,
            )
            self.pending[ref] = (_Task.SEGMENT, v, k)
            busy += 1

    def _segment_done(self, v: RunVideo, k: int, part: SegmentResult) -> None:
        v.parts[k] = part
        if len(v.parts) == len(v.segments):
            try:
                self._complete(v)
            except (records.RecordsError, OSError) as e:
                self._fail(v, error_of(e))

    def _complete(self, v: RunVideo) -> None:
        """Assemble a video's segments (``lecture.assemble``), write faces/, frames/, then videos/."""
        cfg, vid, meta = self.config, v.video_id, v.meta
        parts = [v.parts[k] for k in range(len(v.segments))]
        resolve = None
        if cfg.identity is not None:  # course-wide ids; descriptors go to OUTPUT/identity/ only
            from fer_stream.identity import resolve_students

            def resolve(keys, tracks, frame_wh, descriptors):
                return resolve_students(
                    self.output,
                    meta.course,
                    vid,
                    meta.lecture_date,
                    keys,
                    tracks,
                    frame_wh,
                    descriptors,
                    cfg.identity,
                ).student_ids

        lec = assemble(
            parts,
            video_id=vid,
            course=meta.course,
            lecture_date=meta.lecture_date,
            model=self.model,
            config=cfg,
            resolve=resolve,
        )
        stem = f"{vid}_{self.chash}"
        # faces/, frames/ and speech/ first, the videos/ row last: a run killed in between leaves the
        # video not done, and the rerun overwrites these same files. Speech that is null (no audio,
        # a broken track, the signal off) has no file; a stale one of this config is removed.
        tables = [("faces", lec.faces), ("frames", lec.frames)]
        for name, table in (*tables, ("speech", lec.speech)):
            if table is not None:
                records.write_partition(self.output, name, table, meta.course, meta.lecture_date, stem)
            else:
                for old in (self.output / name).glob(f"*/*/{stem}.parquet"):
                    old.unlink(missing_ok=True)
        counts = {
            "sampled_frames": lec.frames.num_rows,
            "faces": lec.faces.num_rows,
            "students": lec.students,
        }
        damage = sum((p.damage for p in parts), DecodeDamage())
        row = video_row(
            v,
            VideoStatus.DONE,
            None,
            self.run_columns,
            damage,
            **counts,
            analyze_s=float(sum(p.analyze_s for p in parts)),
            classify_s=float(sum(p.classify_s for p in parts)),
            audio_s=lec.hearing.seconds if cfg.hears else None,
            speech=lec.hearing.status.value,
            speech_error=lec.hearing.error,
        )
        result = VideoResult(
            path=v.path,
            status=VideoStatus.DONE,
            video_id=vid,
            wall_s=row["wall_s"],
            segment_nodes=[p.node_id for p in parts],
            incomplete=damage.incomplete,
            warnings=warnings_of(v, damage),
            **counts,
        )
        self._finish(v, result, row)

    def _fail(self, v: RunVideo, err: tuple[str, str]) -> None:
        for ref, (_, other, _) in list(self.pending.items()):
            if other is v:  # the video's other segments: their work is wasted now
                _cancel(ref)
                del self.pending[ref]
        self.queue = [(o, k) for o, k in self.queue if o is not v]
        row = video_row(v, VideoStatus.FAILED, err, self.run_columns)
        result = VideoResult(
            path=v.path,
            status=VideoStatus.FAILED,
            video_id=v.video_id,
            error_type=err[0],
            error_message=err[1],
            wall_s=row["wall_s"],
            warnings=warnings_of(v, None),
        )
        self._finish(v, result, row)
        self.aborted = self.strict

    def _skip(self, v: RunVideo, reason: str) -> None:
        self._finish(
            v, VideoResult(path=v.path, status=VideoStatus.SKIPPED, video_id=v.video_id, reason=reason)
        )

    def _finish(self, v: RunVideo, result: VideoResult, row: dict | None = None) -> None:
        if row is not None:
            table = records.make_table("videos", row)
            stem = f"{row['video_id']}_{self.chash}_{self.run_id}"
            records.write_partition(self.output, "videos", table, v.meta.course, v.meta.lecture_date, stem)
        self.results[v.path] = result
        if result.video_id and self.claimed.get(result.video_id) == v.path:
            self.claims.release(result.video_id)  # after its videos/ row: others see it done
        v.parts = {}  # free the segment results
        if result.status == VideoStatus.FAILED:
            self.display.line(f"FAILED  {v.path}: {result.error_type}: {result.error_message}")
        elif result.status == VideoStatus.SKIPPED:
            self.display.line(f"skipped {v.path}: {result.reason}")
        else:
            self.display.line(
                f"done    {v.path}: {result.sampled_frames} frames, {result.faces} faces, "
                f"{result.students} students, {result.wall_s:.1f} s"
            )
        for w in result.warnings:
            self.display.line(f"WARNING {v.path}: {w}")


def run(
    inputs: Sequence[str | os.PathLike | Lecture],
    output: str | os.PathLike,
    config: PipelineConfig | None = None,
    *,
    force: bool = False,
    strict: bool = False,
    progress: bool = True,
    sidecar_root: str | os.PathLike | None = None,
    placement_wait_s: float = PLACEMENT_WAIT_S,
) -> RunSummary:
    """Analyse lecture videos into records under ``output`` on Ray (:func:`connect` first, or an
    embedded Ray is started).

    Args:
        inputs: files, folders and globs (``fer_stream.inputs.resolve``), or lectures resolved
            already (``inputs.Lecture``: ``nightly`` passes the video ids it hashed, so no file is
            hashed twice).
        output: folder of the ``faces/``, ``frames/`` and ``videos/`` tables, written by this process
            (the driver); the videos must be readable at the same paths by every Ray worker.
        config: what to compute and how to spread it.
        force: re-analyse videos already ``done`` for this config hash.
        strict: the first failed video aborts the run (outstanding work is cancelled).
        progress: a progress bar (periodic lines when stderr is no terminal) and a line per video.
        sidecar_root: for path inputs, look ``videos.csv`` sidecars up from each video's folder to
            this folder (``inputs.resolve``).
        placement_wait_s: once the alive nodes cannot hold the classifier actors any more (a GPU
            or ``classifier`` node was lost), how long to wait for a node before stopping the run
            (``RunSummary.error``; the videos done so far are kept, a rerun does the rest).

    Returns:
        a :class:`RunSummary`; its ``results`` are in input order and carry each ``video_id``.
        Failed videos are in it and in ``videos/``; nothing is raised for them. Raises for a bad
        run, before any work: inputs that do not exist or that a worker node cannot read
        (:class:`InputsNotShared`), unusable weights, a voice model that is not installed
        (``audio.VadNotInstalled``), classifier actors the cluster cannot place
        (:class:`PlacementError`); an output folder that cannot be created or written
        (``fer_stream.ops.atomic.NotWritableError``, an ``OSError``; checked before Ray starts).
    """
    config = config or PipelineConfig()
    output = ensure_writable_dir(output)  # before Ray: NotWritableError names the folder
    if config.hears:  # the voice model is installed (audio.VadNotInstalled), before Ray and any work
        from fer_stream.audio import silero_model_path

        silero_model_path()
    if not ray.is_initialized():
        connect()
    paths = [x for x in inputs if not isinstance(x, Lecture)]
    resolved = {x.path: x for x in inputs if isinstance(x, Lecture)}
    for lec in inputs_.resolve(paths, sidecar_root) if paths else []:
        resolved.setdefault(lec.path, lec)
    videos = [RunVideo(lec) for lec in resolved.values()]
    job = _Run(output, config, force, strict, progress, placement_wait_s)
    check_inputs_reachable([v.path for v in videos])
    return job.execute(videos)
