"""Lecture videos -> Parquet records on Ray: the orchestration, and the only module that imports ray.

Data flow of one run (``run(inputs, output, config)``)::

    driver: list videos, course/date from sidecars or paths     (discover_videos, lecture_metadata)
      -> _inspect task per video: sha256 (video_id) + probe      (CPU, parallel)
      -> skip what videos/ says is done for this video_id + config hash
      -> _analyze_segment task per time segment:                 (CPU, 1 core each)
             decode -> detect -> landmarks -> pose/eyes -> align -> track (fer_stream.lecture)
             crops, ``batch_size`` at a time -> ClassifierActor pool  (GPU if any, else CPU)
             at most ``batches_in_flight`` batches outstanding per segment (flat memory)
      -> driver, once every segment of a video is back: stitch tracks (assign_students over
         the union of the segments' tracks), write faces/ and frames/ (one file each, atomic),
         then the videos/ row that marks the video done.

Idempotency: files are named by video_id + config hash, so a rerun overwrites them whole; the
videos/ row is written last, so a video killed half-way is simply redone. Failures are typed and
recorded (``error_type = type(e).__name__``) and never stop the batch unless ``strict``.

Stages (``FaceStage``, ``EmotionClassifier``) never import ray; this module decides CPUs, GPUs,
batch sizes and concurrency. Layout and units of the records: ``fer_stream.records`` and
docs/PIPELINE.md.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import numpy as np
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from fer_stream import inputs as inputs_
from fer_stream import records
from fer_stream.attention import AttentionConfig
from fer_stream.config import PIPELINE_VERSION, ModelInfo, PipelineConfig, config_hash
from fer_stream.faces.track import FaceTracker, TrackSummary, assign_students
from fer_stream.inputs import Lecture, content_hash
from fer_stream.labels import FER2013_LABELS
from fer_stream.ops import claims as claims_
from fer_stream.ops import runlog

SEGMENT_ID_STRIDE = 1_000_000  # segment k's tracks get ids k * stride + 1, ...: unique across segments


def plan_segments(
    duration_s: float, segment_s: float, min_parts: int = 1, min_segment_s: float = 30.0
) -> list[tuple[float, float | None]]:
    """Cut ``[0, duration)`` into equal ``(start_s, end_s)`` segments of at most ~``segment_s``,
    and into at least ``min_parts`` (the idle video workers) while each stays ``min_segment_s`` long:
    a single lecture then uses every worker, and a short clip is not cut into pieces whose start-up
    (seek, first full detection) would cost more than it saves.

    The last segment is open-ended (``end_s=None``): frames past the declared duration are kept.
    ``iter_frames`` makes the cut exact (every sampled frame in exactly one segment).
    """
    if duration_s <= 0:
        return [(0.0, None)]
    n = max(1, math.ceil(duration_s / segment_s), min(min_parts, int(duration_s // min_segment_s)))
    edges = [round(i * duration_s / n, 6) for i in range(n)]
    return [(edges[i], edges[i + 1] if i + 1 < n else None) for i in range(n)]


# --------------------------------------------------------------------------------------------------
# Ray workers


@ray.remote(num_cpus=1)
def _inspect(path: str, video_id: str | None = None) -> dict:
    """Probe one file, and hash it unless its ``video_id`` is known (``nightly`` hashed it already).
    Errors are returned, typed, so a bad file still gets its video_id."""
    from fer_stream.video import probe

    t0 = time.perf_counter()
    out: dict = {"video_id": None, "error": None, "info": None, "file_size": None, "file_mtime": None}
    try:
        out["info"] = probe(path)
    except Exception as e:  # NotAVideoError etc.: recorded as the video's failure
        out["error"] = (type(e).__name__, str(e))
    try:
        st = os.stat(path)
        out["file_size"], out["file_mtime"] = st.st_size, st.st_mtime
        out["video_id"] = video_id or content_hash(path)
    except OSError as e:
        out["error"] = out["error"] or (type(e).__name__, str(e))
    out["hash_s"] = time.perf_counter() - t0
    return out


class ClassifierActor:
    """Holds one :class:`EmotionClassifier`; ``predict`` classifies one batch of crops.

    The weights travel as bytes through the object store, so a weights path on the submitting
    machine works on every node. Every call carries them as ``[ObjectRef]`` (nested, so Ray does
    not resolve it per call) and the first call loads the model: after a restart, the retried
    call brings the weights with it (constructor arguments in the object store are not kept for
    restarts, ray-project/ray#53727). On CPU, torch runs as many threads as the actor holds CPUs
    (Ray sets ``OMP_NUM_THREADS=1`` in workers); on CUDA the classifier uses AMP and channels_last.
    """

    def __init__(self, device: str, backend: str = "auto"):
        self.device, self.backend = device, backend
        self.clf = None

    def _load(self, weights: list) -> None:
        import tempfile

        from fer_stream.classify import EmotionClassifier

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "weights.pt"
            path.write_bytes(ray.get(weights[0]))
            backend = self.backend if self.device == "cpu" else "torch"  # ONNX Runtime here is CPU only
            self.clf = EmotionClassifier(
                str(path), device=self.device, threads=max(1, int(cpus)), backend=backend
            )

    def predict(self, weights: list, crops: np.ndarray) -> tuple[np.ndarray, float]:
        """``(N, S, S) uint8`` -> ``(N, 7) float32`` probabilities (the weights' label order), seconds."""
        if self.clf is None:
            self._load(weights)
        t0 = time.perf_counter()
        probs = self.clf.predict(np.array(crops))  # a writable copy of the read-only shared array
        return probs, time.perf_counter() - t0

    def ready(self) -> dict:
        """The actor is placed and can use its device: ``{node_id, device, pid}``. Raises
        :class:`PlacementError` on a node that offers Ray a GPU its torch cannot use."""
        problem = device_problem(self.device)
        node = ray.get_runtime_context().get_node_id()
        if problem:
            raise PlacementError(f"classifier actor on node {node[:8]}: {problem}")
        return {"node_id": node, "device": self.device, "pid": os.getpid()}

    def info(self) -> dict:
        """Device, process id, torch threads, model loaded: for tests and debugging."""
        import torch

        return {
            "device": self.device,
            "pid": os.getpid(),
            "threads": torch.get_num_threads(),
            "loaded": self.clf is not None,
        }


@ray.remote(num_cpus=0)
class _Progress:
    """Counters the segment workers add to and the driver polls (fire-and-forget updates)."""

    def __init__(self):
        self.frames = 0
        self.faces = 0

    def add(self, frames: int, faces: int) -> None:
        self.frames += frames
        self.faces += faces

    def get(self) -> tuple[int, int]:
        return self.frames, self.faces


# Share of a CPU-only cluster's CPUs that classifier actors get when their number is not given.
CPU_CLASSIFIER_SHARE = 0.35
# A custom resource that places the classifier actors on CPU-only clusters: nodes started with
# `ray start --resources '{"classifier": N}'` host up to N of them, and no other node hosts any.
CLASSIFIER_RESOURCE = "classifier"
# Seconds a run waits for a node that could host the classifier pool, once the alive nodes cannot
# (a GPU or classifier node was lost), before it stops with PlacementError.
PLACEMENT_WAIT_S = 60.0


class PlacementError(ValueError):
    """The classifier actors or the video workers cannot be placed on this cluster's nodes."""


def classifier_plan(config: PipelineConfig) -> tuple[int, str, dict, int]:
    """How many classifier actors, on which device, with which Ray options, and how many video
    workers (1-CPU segment tasks) the cluster's CPUs then leave room for.

    The actors follow the hardware: one per GPU (``num_gpus=1``) on a cluster with GPUs; else on
    the nodes that offer the ``classifier`` resource, one per unit; else a share of the CPUs. Raises
    :class:`PlacementError` for a request the cluster's totals cannot hold (``placement_problem``
    checks it node by node).
    """
    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), resources.get("CPU", 0)
    units = int(resources.get(CLASSIFIER_RESOURCE, 0))
    # SPREAD: a pool of several actors lands on several nodes, so losing one node loses one actor.
    # max_task_retries=-1: a call is retried until the actor is back (bounded by max_restarts), not
    # 3 times: calls to an actor whose node just died fail fast ("actor unavailable") until the
    # cluster has noticed and restarted it elsewhere, and 3 such retries were used up before that.
    opts: dict = {"max_restarts": 3, "max_task_retries": -1, "scheduling_strategy": "SPREAD"}
    if gpus:
        n, device = config.classifiers or gpus, "cuda"
        if n > gpus:
            raise PlacementError(
                f"--classifiers {n}: each classifier actor needs a GPU of its own, the cluster has {gpus}"
            )
        opts.update(num_gpus=1, num_cpus=1)
    elif units:
        n, device = config.classifiers or units, "cpu"
        if n > units:
            raise PlacementError(
                f"--classifiers {n}: the nodes offer the {CLASSIFIER_RESOURCE!r} resource for {units} "
                "classifier actor(s)"
            )
        opts.update(num_cpus=config.classifier_cpus, resources={CLASSIFIER_RESOURCE: 1})
    else:
        # Without GPUs the classifier needs about a third of the CPU time (bench/matrix.py: 0.065
        # CPU-s of classifier per 0.122 CPU-s of video work per second of lecture): one actor per
        # ~3 CPUs, so a 16-core node is not held up by a single classifier.
        auto = max(1, round(cpus * CPU_CLASSIFIER_SHARE / config.classifier_cpus))
        n, device = config.classifiers or auto, "cpu"
        opts.update(num_cpus=config.classifier_cpus)
    if cpus - n * opts["num_cpus"] < 1:
        raise PlacementError(
            f"{n} classifier(s) x {opts['num_cpus']:g} CPUs leave no CPU for the video "
            f"workers of a {cpus:g}-CPU cluster"
        )
    return n, device, opts, max(1, int(cpus - n * opts["num_cpus"]))


def actor_needs(opts: dict) -> dict[str, float]:
    """The resources one classifier actor holds, from its Ray options."""
    need = {"CPU": float(opts.get("num_cpus", 1)), "GPU": float(opts.get("num_gpus", 0))}
    need.update(opts.get("resources", {}))
    return {k: v for k, v in need.items() if v > 0}


def placement_problem(n: int, need: dict[str, float], nodes: list[dict]) -> str | None:
    """Why ``n`` actors holding ``need`` each, plus one 1-CPU video worker, cannot all be placed on
    ``nodes`` (``{"name": ..., "resources": {...}}``, their total resources), or ``None``.

    Each actor must fit on one node; actors are packed greedily, the roomiest node first. This
    looks at totals, not at what other jobs hold now: a busy cluster makes a run wait, an
    impossible request makes it fail.
    """
    left = [dict(node["resources"]) for node in nodes]  # what each node has once actors are placed
    placed = 0
    for res in sorted(left, key=lambda r: -min(r.get(k, 0) / q for k, q in need.items())):
        while placed < n and all(res.get(k, 0) >= q - 1e-9 for k, q in need.items()):
            for k, q in need.items():
                res[k] -= q
            placed += 1
    shape = ", ".join(f"{k} {q:g}" for k, q in need.items())
    keys = sorted(set(need) | {"CPU"})
    have = "; ".join(
        node["name"] + ": " + ", ".join(f"{k} {node['resources'].get(k, 0):g}" for k in keys)
        for node in nodes
    )
    if placed < n:
        return f"{n} classifier actor(s) need {shape} each; the alive nodes can hold {placed} ({have})"
    if not any(res.get("CPU", 0) >= 1 for res in left):
        return f"{n} classifier actor(s) ({shape} each) leave no node a CPU for a video worker ({have})"
    return None


def alive_nodes() -> list[dict]:
    """The cluster's alive nodes: ``{"id", "name": "<ip> (<id[:8]>)", "resources": totals}``."""
    return [
        {
            "id": n["NodeID"],
            "name": f"{n['NodeManagerAddress']} ({n['NodeID'][:8]})",
            "resources": n["Resources"],
        }
        for n in ray.nodes()
        if n["Alive"]
    ]


def device_problem(device: str) -> str | None:
    """Why this process cannot run the classifier on ``device``, or ``None``: a node that offers Ray
    GPUs (``ray start --num-gpus``) must have a CUDA build of torch that sees one."""
    if device != "cuda":
        return None
    import torch

    if not torch.cuda.is_available():
        return (
            f"Ray gave it a GPU but torch {torch.__version__} here sees none (CPU build, or no driver): "
            "install a CUDA build of torch on GPU nodes, or start this node without --num-gpus"
        )
    return None


def make_classifiers(config: PipelineConfig) -> list:
    """The classifier actor pool: ``num_gpus=1`` each when the cluster has GPUs, else CPU actors.

    Each actor restarts if its process dies (``max_restarts``), and calls in flight are retried on
    the restarted actor (``max_task_retries``).
    """
    n, device, opts, _ = classifier_plan(config)
    actor = ray.remote(ClassifierActor).options(**opts)
    return [actor.remote(device, config.backend) for _ in range(n)]


@dataclass
class SegmentResult:
    """What one segment worker returns: per-face and per-frame columns, tracks, decode stats."""

    faces: dict[str, np.ndarray]
    frames: dict[str, np.ndarray]
    tracks: TrackSummary
    frame_wh: tuple[int, int] | None
    lost_s: float
    corrupt_packets: int
    analyze_s: float
    classify_s: float
    # {track_id: (k, 128) float32} face descriptors (identity on); they go to the identity store only
    descriptors: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    descriptor_s: float = 0.0  # part of analyze_s spent computing them
    node_id: str = ""  # the Ray node that ran the segment (the last attempt, after a retry)


@lru_cache(maxsize=2)
def _face_stage(
    detector: str,
    min_face_px: float,
    crop_size: int,
    attention: AttentionConfig,
    detect_every: int,
    gates,
    landmarks_min_px: float,
    backend: str,
):
    """One FaceStage per worker process and configuration (Ray reuses worker processes)."""
    from fer_stream.lecture import make_face_stage

    return make_face_stage(
        detector, min_face_px, crop_size, attention, detect_every, gates, landmarks_min_px, backend
    )


@ray.remote(num_cpus=1, scheduling_strategy="SPREAD")  # a lecture's segments over the nodes
def _analyze_segment(
    path: str,
    k: int,
    start_s: float,
    end_s: float | None,
    config: PipelineConfig,
    crop_size: int,
    classifiers: list,
    weights: list,
    progress,
) -> SegmentResult:
    """Decode ``[start_s, end_s)``, find, track and align faces, classify the crops on the pool."""
    from fer_stream.lecture import analyze_video
    from fer_stream.video import DecodeStats

    t0 = time.perf_counter()
    stage = _face_stage(
        config.detector,
        config.min_face_px,
        crop_size,
        config.attention,
        config.detect_every,
        config.gates,
        # identity descriptors need 68 points on every face they describe
        config.identity.min_face_px if config.identity is not None else float("inf"),
        config.backend,
    )
    tracker = FaceTracker(config.tracker, first_id=k * SEGMENT_ID_STRIDE + 1)
    collector = None
    if config.identity is not None:  # a few descriptors per track, from the frames' pixels
        from fer_stream.faces.descriptors import DescriptorCollector, shared_descriptor

        collector = DescriptorCollector(shared_descriptor(config.identity.num_jitters), config.identity)
    stats = DecodeStats()
    cols = records.FaceColumns()
    frame_rows: dict[str, list] = {"frame_index": [], "pts_s": [], "n_faces": []}
    crops: list[np.ndarray] = []  # not yet sent
    n_crops = 0
    refs: list = []  # classifier calls, in crop order
    inflight: list = []  # those not known to be finished
    frame_wh = None
    pending_frames = pending_faces = 0
    last_report = time.monotonic()

    def send(final: bool) -> None:
        nonlocal crops, n_crops, inflight
        while n_crops >= config.batch_size or (final and n_crops):
            batch = np.concatenate(crops)
            head, rest = batch[: config.batch_size], batch[config.batch_size :]
            # Backpressure: decoding pauses while batches_in_flight calls are outstanding, so the
            # crops in memory and in the object store stay bounded however fast decoding is.
            if len(inflight) >= config.batches_in_flight:
                _, inflight = ray.wait(inflight, num_returns=len(inflight) - config.batches_in_flight + 1)
            ref = classifiers[(k + len(refs)) % len(classifiers)].predict.remote(weights, head)
            refs.append(ref)
            inflight.append(ref)
            crops, n_crops = ([rest] if len(rest) else []), len(rest)

    for ff in analyze_video(
        path,
        stage,
        tracker,
        config.sample_fps,
        start_s,
        end_s,
        stats=stats,
        decode_threads=1,
        on_frame=collector,
    ):
        n = len(ff)
        frame_wh = ff.frame_wh
        frame_rows["frame_index"].append(ff.frame_index)
        frame_rows["pts_s"].append(ff.pts_s)
        frame_rows["n_faces"].append(n)
        if n:
            cols.add(ff)
            crops.append(ff.crops)
            n_crops += n
            send(final=False)
        pending_frames, pending_faces = pending_frames + 1, pending_faces + n
        if progress is not None and time.monotonic() - last_report > 1.0:
            progress.add.remote(pending_frames, pending_faces)
            pending_frames = pending_faces = 0
            last_report = time.monotonic()
    send(final=True)
    if progress is not None and (pending_frames or pending_faces):
        progress.add.remote(pending_frames, pending_faces)

    outs = ray.get(refs)
    classify_s = float(sum(s for _, s in outs))
    probs = np.concatenate([p for p, _ in outs]) if outs else np.zeros((0, len(FER2013_LABELS)), np.float32)
    faces = cols.arrays()
    faces["probs"] = probs
    frames = {
        "frame_index": np.asarray(frame_rows["frame_index"], np.int64),
        "pts_s": np.asarray(frame_rows["pts_s"], np.float64),
        "n_faces": np.asarray(frame_rows["n_faces"], np.int32),
    }
    return SegmentResult(
        faces,
        frames,
        tracker.tracks,
        frame_wh,
        stats.lost_s if stats.finished else 0.0,
        stats.corrupt_packets,
        time.perf_counter() - t0 - classify_s,
        classify_s,
        collector.descriptors() if collector is not None else {},
        collector.seconds if collector is not None else 0.0,
        ray.get_runtime_context().get_node_id(),
    )


# --------------------------------------------------------------------------------------------------
# Inputs every node can read


class InputsNotShared(FileNotFoundError):
    """A worker node cannot read input videos at the paths the driver sees."""


@ray.remote(num_cpus=0, max_retries=0)
def _unreadable(paths: list[str]) -> list[str]:
    """The ``paths`` this node cannot open for reading."""
    return [p for p in paths if not os.access(p, os.R_OK)]


def check_inputs_reachable(paths: Sequence[str], timeout_s: float = 120.0) -> None:
    """Raise :class:`InputsNotShared`, before any work, when a node that runs video work (one CPU or
    more) cannot read some of ``paths``: workers open the videos by the driver's path, so a folder on
    the submitting machine's disk fails every video there. One small task per node, pinned to it;
    nothing to do on a single machine (the driver's own node read the inputs already)."""
    here = ray.get_runtime_context().get_node_id()
    nodes = [n for n in alive_nodes() if n["id"] != here and n["resources"].get("CPU", 0) >= 1]
    if not nodes or not paths:
        return
    paths = list(paths)
    refs = {}
    for n in nodes:
        pinned = NodeAffinitySchedulingStrategy(n["id"], soft=False)
        refs[_unreadable.options(scheduling_strategy=pinned).remote(paths)] = n
    ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=timeout_s)
    problems = []
    for ref in ready:
        try:
            bad = ray.get(ref)
        except ray.exceptions.RayError:  # the node went away meanwhile: it will run nothing either
            continue
        if bad:
            problems.append(
                f"node {refs[ref]['name']} cannot read {len(bad)} of the {len(paths)} inputs, e.g. {bad[0]}"
            )
    if problems:
        raise InputsNotShared(
            "; ".join(problems) + ". Every node opens the videos at the path the driver sees: put them on "
            "storage that the head and every worker mount at the same path (an NFS or SMB share, "
            "docs/PIPELINE.md, 'Shared storage') and give --input on that mount. Nothing was analysed."
        )


# --------------------------------------------------------------------------------------------------
# Driver


@dataclass
class VideoResult:
    """The outcome of one input in one run: ``done``, ``failed`` or ``skipped`` (with ``reason``)."""

    path: str
    status: str
    video_id: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    sampled_frames: int = 0
    faces: int = 0
    students: int = 0
    wall_s: float = 0.0
    reason: str = ""
    segment_nodes: list[str] = field(default_factory=list)  # Ray node id that ran each segment


@dataclass
class RunSummary:
    """A run's outcome. ``exit_code``: 0 every video done or skipped, 3 the run finished but some
    videos failed, 1 aborted: by the first failure (``strict``), or stopped by ``error`` (the
    classifier actors could no longer be placed: a node was lost); the videos done so far are kept.
    """

    run_id: str
    output: str
    config_hash: str
    model_version: str
    inputs: int
    results: list[VideoResult]
    wall_s: float
    aborted: bool = False
    error: str | None = None  # why the run stopped early ("PlacementError: ...")
    # Ray node id of each classifier actor; "" while its ready probe has not answered
    classifier_nodes: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        """The summary as plain JSON data (``--summary-json``)."""
        import dataclasses

        return dataclasses.asdict(self) | {"exit_code": self.exit_code}

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def exit_code(self) -> int:
        if self.aborted:
            return 1
        return 3 if self.count("failed") else 0

    def describe(self) -> str:
        frames = sum(r.sampled_frames for r in self.results)
        faces = sum(r.faces for r in self.results)
        not_run = self.inputs - len(self.results)
        lines = [
            f"run {self.run_id}: {self.inputs} videos: {self.count('done')} done, "
            f"{self.count('skipped')} skipped, {self.count('failed')} failed"
            + (f", {not_run} not analysed (aborted by --strict)" if self.aborted and not self.error else "")
            + (f", {not_run} not analysed (stopped)" if self.error else "")
            + f"; {frames} frames, {faces} faces in {self.wall_s:.1f} s",
            f"records: {self.output} (config {self.config_hash}, model {self.model_version})",
        ]
        nodes = [n for r in self.results for n in r.segment_nodes]
        if len(set(nodes) | set(self.classifier_nodes)) > 1:  # a cluster: where the work ran
            per_node = ", ".join(f"{n[:8]} {nodes.count(n)}" for n in sorted(set(nodes)))
            actors = ", ".join(n[:8] or "(not placed yet)" for n in self.classifier_nodes)
            lines.append(f"nodes: segments per node {per_node}; classifier actors on {actors}")
        if self.error:
            lines.append(f"STOPPED: {self.error}")
        lines += [
            f"  FAILED {r.path}: {r.error_type}: {r.error_message}" for r in self.results if r.error_type
        ]
        return "\n".join(lines)


def connect(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Connect to Ray: ``address`` if given (``auto``: the Ray already running on this machine,
    ``ray://host:10001``, ``host:6379``), else ``RAY_ADDRESS`` (which ``ray job submit`` sets for the
    job's driver), else start an embedded Ray inside this process with ``num_cpus`` CPUs.

    The embedded case asks for a new local instance explicitly (``address="local"``): a plain
    ``ray.init()`` would join whatever ``/tmp/ray/ray_current_cluster`` names, and after a head that
    was killed rather than stopped it waits minutes for a GCS that is gone.

    Returns ``True`` if this call connected or started Ray (call :func:`disconnect` when done),
    ``False`` if Ray was already initialised.
    """
    if ray.is_initialized():
        return False
    if address or os.environ.get("RAY_ADDRESS"):
        ray.init(address=address)
    else:
        ray.init(address="local", num_cpus=num_cpus or embedded_cpus(), include_dashboard=False)
    return True


def embedded_cpus() -> int:
    """Logical CPUs of an embedded Ray: the cores, plus one for the CPU classifier actor.

    The classifier waits for crops much of the time, so reserving a whole core for it would leave
    that core idle as often; one more logical CPU lets a video worker run on every core while the
    classifier shares them (measured: docs/BENCHMARKS.md, 1 vs 2 workers).
    """
    from fer_stream.classify import default_threads  # the cores this process may use

    return default_threads() + 1


def disconnect() -> None:
    """Shut down the Ray connection (and an embedded Ray) :func:`connect` made."""
    ray.shutdown()


def _cancel(ref) -> None:
    """Stop a task by ending its worker process (Ray starts a fresh one). A plain ``ray.cancel``
    raises KeyboardInterrupt inside the task, and one that lands in the middle of a first ``import``
    (PyAV, torch) leaves that module half-initialised in a worker Ray then reuses: every later task
    there failed with "module 'av' has no attribute 'stream'"."""
    ray.cancel(ref, force=True)


def _error(e: BaseException) -> tuple[str, str]:
    """``(type name, message)`` of an error; the original one when Ray wrapped it in RayTaskError."""
    if isinstance(e, ray.exceptions.RayTaskError) and getattr(e, "cause", None) is not None:
        e = e.cause
    return type(e).__name__, str(e).strip()[:2000]


def _utc(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc)


class _Display:
    """A tqdm bar on a terminal; plain lines every 10 s elsewhere (``ray job logs`` are no terminal)."""

    def __init__(self, total: int, enabled: bool):
        self.enabled, self.total = enabled, total
        self.t0 = self.last = time.monotonic()
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="video", dynamic_ncols=True)

    def update(self, videos: int, frames: int, faces: int) -> None:
        rate = faces / max(time.monotonic() - self.t0, 1e-9)
        if self.bar is not None:
            self.bar.n = videos
            self.bar.set_postfix(frames=frames, faces_per_s=f"{rate:.1f}", refresh=True)
        elif self.enabled and time.monotonic() - self.last > 10:
            print(f"progress: {videos}/{self.total} videos, {frames} frames, {rate:.1f} faces/s", flush=True)
            self.last = time.monotonic()

    def line(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text)
        elif self.enabled:
            print(text, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@dataclass
class _Video:
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
        self.model = ModelInfo.load(config.weights)
        analysis = config.analysis(self.model)
        self.chash = config_hash(analysis)
        self.config_json = json.dumps(analysis, sort_keys=True)
        # column j of the records' p_* is column inv[j] of the weights' output
        self.inv = np.argsort([FER2013_LABELS.index(x) for x in self.model.labels])
        self.run_id = runlog.new_run_id()
        self.pending: dict = {}  # ObjectRef -> (kind, video, segment index)
        self.queue: list[tuple[_Video, int]] = []  # segments waiting for a slot, in video order
        self.results: dict[str, VideoResult] = {}
        self.claimed: dict[str, str] = {}  # video_id -> path analysed in this run
        self.classifiers: list | None = None
        self.to_inspect: list[_Video] = []  # videos not yet handed to an _inspect task
        self.aborted = False
        self.error: str | None = None  # why the run stopped early
        # Enough segments in flight to keep every CPU busy, few enough that results do not pile up.
        self.max_segments = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
        n, _, opts, self.worker_slots = classifier_plan(config)
        self.pool = (n, actor_needs(opts))  # what the classifier actors need, for the checks
        problem = placement_problem(*self.pool, alive_nodes())
        if problem:  # before any work: Ray would wait for such actors forever
            raise PlacementError(f"the classifier actors cannot be placed: {problem}")
        # Claims: another run on this output analysing a video makes this one wait for it.
        self.claims = claims_.Claims(output, self.chash, self.run_id)
        # Inspected videos to analyse are claimed one at a time, when the cluster has room for their
        # segments: two runs on one output then share the batch instead of one holding it all.
        self.ready: list[_Video] = []  # inspected, to analyse, not claimed yet
        self.waiting: list[_Video] = []  # another live run holds their claim
        self.last_try = 0.0  # when the waiting videos' claims were last tried
        self.probes: dict = {}  # ObjectRef of ClassifierActor.ready -> actor index
        self.classifier_nodes: list[str] = []
        self.unplaceable_since: float | None = None
        self.next_check = 0.0

    def execute(self, videos: list[_Video]) -> RunSummary:
        t0 = time.time()
        records.remove_stale_temp_files(self.output)
        self.claims.remove_stale()
        self.done_runs = _done_runs(self.output, self.chash)  # video_id -> runs that did it
        done_before = set() if self.force else set(self.done_runs)
        self.display = _Display(len(videos), self.progress)
        # On the driver's node: a lost worker node must not take the run's progress counter with it
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        self.counter = _Progress.options(scheduling_strategy=here).remote()
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
                        self._fail(v, _error(e))
                        continue
                    if kind == "inspect":
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
            self.run_id,
            str(self.output),
            self.chash,
            self.model.version,
            len(videos),
            [self.results[v.path] for v in videos if v.path in self.results],
            time.time() - t0,
            self.aborted,
            self.error,
            self.classifier_nodes,
        )

    def _inspected(self, v: _Video, value: dict, done_before: set[str]) -> None:
        v.inspect = value
        vid = value["video_id"]
        if v.meta_error or value["error"]:
            self._fail(v, v.meta_error or value["error"])
        elif vid in self.claimed:
            self._finish(v, VideoResult(v.path, "skipped", vid, reason=f"same file as {self.claimed[vid]}"))
        elif vid in done_before:
            reason = f"done before with config {self.chash} (--force redoes it)"
            self._finish(v, VideoResult(v.path, "skipped", vid, reason=reason))
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

    def _start(self, v: _Video) -> bool:
        """Claim ``v`` and queue its segments (``True``); or wait while another run holds its claim;
        or skip it: a copy of a file this run took up, or done by another run since this one began."""
        vid = v.video_id
        if vid in self.claimed:  # a copy of a file taken up meanwhile
            self._unlist(v)
            self._finish(v, VideoResult(v.path, "skipped", vid, reason=f"same file as {self.claimed[vid]}"))
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
            reason = f"done meanwhile by run {other} (same config {self.chash})"
            self._finish(v, VideoResult(v.path, "skipped", vid, reason=reason))
            return False
        self.claimed[vid] = v.path
        # Cut into as many segments as there are free video workers (a lone lecture uses them all)
        idle = max(1, self.worker_slots - len(self.queue) - self._running_segments())
        v.segments = plan_segments(v.inspect["info"].duration_s, self.config.segment_s, min_parts=idle)
        self.queue.extend((v, k) for k in range(len(v.segments)))
        return True

    def _unlist(self, v: _Video) -> None:
        for waiting in (self.ready, self.waiting):
            if v in waiting:
                waiting.remove(v)

    def _done_meanwhile(self, v: _Video) -> str | None:
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
            if "done" in pq.read_table(path, columns=["status"]).column("status").to_pylist():
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
                    self._stop(": ".join(_error(e)))
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
        return sum(kind == "segment" for kind, _, _ in self.pending.values())

    def _submit(self) -> None:
        """Top up the tasks in flight: hashing a thousand files first would delay every analysis."""
        inspecting = sum(kind == "inspect" for kind, _, _ in self.pending.values())
        while self.to_inspect and inspecting < self.max_segments and not self.aborted:
            v = self.to_inspect.pop(0)
            v.started = time.time()
            self.pending[_inspect.remote(v.path, v.lecture.video_id)] = ("inspect", v, 0)
            inspecting += 1
        busy = self._running_segments()
        while busy < self.max_segments and not self.aborted and (self.queue or self._start_next()):
            v, k = self.queue.pop(0)
            if self.classifiers is None:  # only once there is work: a rerun that skips all starts none
                self.weights = [ray.put(self.model.blob)]  # nested: passed along unresolved
                self.classifiers = make_classifiers(self.config)
                self.classifier_nodes = [""] * len(self.classifiers)
                empty = np.zeros((0, self.model.input_size, self.model.input_size), np.uint8)
                for i, actor in enumerate(self.classifiers):  # load the model while segments decode
                    self.probes[actor.ready.remote()] = i  # placed, and its device usable?
                    actor.predict.remote(self.weights, empty)
            start_s, end_s = v.segments[k]
            ref = _analyze_segment.remote(
                v.path,
                k,
                start_s,
                end_s,
                self.config,
                self.model.input_size,
                self.classifiers,
                self.weights,
                self.counter,
            )
            self.pending[ref] = ("segment", v, k)
            busy += 1

    def _segment_done(self, v: _Video, k: int, part: SegmentResult) -> None:
        v.parts[k] = part
        if len(v.parts) == len(v.segments):
            try:
                self._complete(v)
            except (records.RecordsError, OSError) as e:
                self._fail(v, _error(e))

    def _complete(self, v: _Video) -> None:
        """Stitch the segments of a video, assign students, write faces/, frames/, then videos/."""
        cfg, vid, meta = self.config, v.video_id, v.meta
        parts = [v.parts[k] for k in range(len(v.segments))]
        # Segments have disjoint track ids; students are merged by seat over the union, so a
        # student cut at a seam keeps one key.
        tracks = TrackSummary.concat([p.tracks for p in parts])
        frame_wh = next((p.frame_wh for p in parts if p.frame_wh), None)
        keys = assign_students(tracks, frame_wh, cfg.students)
        sid = {key: f"{vid[:8]}-{key}" for key in set(keys.values())}  # per lecture
        if cfg.identity is not None:  # course-wide ids; descriptors go to OUTPUT/identity/ only
            from fer_stream.identity import resolve_students

            descs = {t: d for p in parts for t, d in p.descriptors.items()}
            sid = resolve_students(
                self.output, meta.course, vid, meta.lecture_date, keys, tracks, frame_wh, descs, cfg.identity
            ).student_ids
        faces = {c: np.concatenate([p.faces[c] for p in parts]) for c in parts[0].faces}
        probs = faces.pop("probs")[:, self.inv]
        n_faces = len(probs)
        where = {"video_id": vid, "course": meta.course, "lecture_date": meta.lecture_date}
        student_of_face = [sid[keys[t]] if t in keys else None for t in faces["track_id"].tolist()]
        face_table = records.faces_table(
            faces, probs, student_of_face, **where, model_version=self.model.version
        )
        frame_cols = {**where, **{c: np.concatenate([p.frames[c] for p in parts]) for c in parts[0].frames}}
        n_frames = len(frame_cols["frame_index"])
        stem = f"{vid}_{self.chash}"
        # faces/ and frames/ first, the videos/ row last: a run killed in between leaves the video
        # not done, and the rerun overwrites these same two files.
        for name, table in (("faces", face_table), ("frames", records.make_table("frames", frame_cols))):
            records.write_partition(self.output, name, table, meta.course, meta.lecture_date, stem)
        students = len(set(keys.values()))
        row = self._row(
            v,
            "done",
            None,
            sampled_frames=n_frames,
            faces=n_faces,
            students=students,
            lost_s=float(sum(p.lost_s for p in parts)),
            corrupt_packets=int(sum(p.corrupt_packets for p in parts)),
            analyze_s=float(sum(p.analyze_s for p in parts)),
            classify_s=float(sum(p.classify_s for p in parts)),
        )
        result = VideoResult(v.path, "done", vid, None, None, n_frames, n_faces, students, row["wall_s"])
        result.segment_nodes = [p.node_id for p in parts]
        self._finish(v, result, row)

    def _fail(self, v: _Video, err: tuple[str, str]) -> None:
        for ref, (_, other, _) in list(self.pending.items()):
            if other is v:  # the video's other segments: their work is wasted now
                _cancel(ref)
                del self.pending[ref]
        self.queue = [(o, k) for o, k in self.queue if o is not v]
        row = self._row(v, "failed", err)
        self._finish(v, VideoResult(v.path, "failed", v.video_id, *err, wall_s=row["wall_s"]), row)
        self.aborted = self.strict

    def _finish(self, v: _Video, result: VideoResult, row: dict | None = None) -> None:
        if row is not None:
            table = records.make_table("videos", row)
            stem = f"{row['video_id']}_{self.chash}_{self.run_id}"
            records.write_partition(self.output, "videos", table, v.meta.course, v.meta.lecture_date, stem)
        self.results[v.path] = result
        if result.video_id and self.claimed.get(result.video_id) == v.path:
            self.claims.release(result.video_id)  # after its videos/ row: others see it done
        v.parts = {}  # free the segment results
        if result.status == "failed":
            self.display.line(f"FAILED  {v.path}: {result.error_type}: {result.error_message}")
        elif result.status == "skipped":
            self.display.line(f"skipped {v.path}: {result.reason}")
        else:
            self.display.line(
                f"done    {v.path}: {result.sampled_frames} frames, {result.faces} faces, "
                f"{result.students} students, {result.wall_s:.1f} s"
            )

    def _row(self, v: _Video, status: str, err: tuple[str, str] | None, **counts) -> dict:
        """The videos/ row of ``v`` (counts and timings of a done video in ``counts``)."""
        ins, info, now = v.inspect, v.inspect.get("info"), time.time()
        return {
            "video_id": v.video_id,
            "course": v.meta.course,
            "lecture_date": v.meta.lecture_date,
            "path": v.path,
            "file_size": ins.get("file_size"),
            "file_mtime": _utc(ins.get("file_mtime")),
            "meta_source": v.meta.source,
            "status": status,
            "error_type": err[0] if err else None,
            "error_message": err[1] if err else None,
            "duration_s": info.duration_s if info else None,
            "width": info.frame_shape[1] if info else None,
            "height": info.frame_shape[0] if info else None,
            "sample_fps": self.config.sample_fps,
            "sampled_frames": None,
            "faces": None,
            "students": None,
            "segments": len(v.segments) or None,
            "lost_s": None,
            "corrupt_packets": None,
            "model_version": self.model.version,
            "pipeline_version": PIPELINE_VERSION,
            "config_hash": self.chash,
            "config_json": self.config_json,
            "run_id": self.run_id,
            "started_at": _utc(v.started),
            "finished_at": _utc(now),
            "wall_s": now - v.started,
            "hash_s": ins.get("hash_s"),
            "analyze_s": None,
            "classify_s": None,
            **counts,
        }


def _done_runs(output: Path, chash: str) -> dict[str, set[str]]:
    """``{video_id: run_ids}`` of the ``done`` rows for config hash ``chash`` in ``output/videos``."""
    import pyarrow.compute as pc

    done = (pc.field("config_hash") == chash) & (pc.field("status") == "done")
    rows = records.read(output, "videos", columns=["video_id", "run_id"], filter=done)
    out: dict[str, set[str]] = {}
    for vid, run_id in zip(rows.column("video_id").to_pylist(), rows.column("run_id").to_pylist()):
        out.setdefault(vid, set()).add(run_id)
    return out


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
        (:class:`InputsNotShared`), unusable weights, classifier actors the cluster cannot place
        (:class:`PlacementError`).
    """
    config = config or PipelineConfig()
    if not ray.is_initialized():
        connect()
    paths = [x for x in inputs if not isinstance(x, Lecture)]
    resolved = {x.path: x for x in inputs if isinstance(x, Lecture)}
    for lec in inputs_.resolve(paths, sidecar_root) if paths else []:
        resolved.setdefault(lec.path, lec)
    videos = [_Video(lec) for lec in resolved.values()]
    job = _Run(Path(output).resolve(), config, force, strict, progress, placement_wait_s)
    check_inputs_reachable([v.path for v in videos])
    return job.execute(videos)
