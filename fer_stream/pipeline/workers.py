"""The Ray tasks and actors of a run: inspect a file, analyse a segment, classify crops, count.

Each is a thin shell: the work itself is plain library code (``fer_stream.video.probe``,
``fer_stream.lecture.run_segment``, ``fer_stream.classify.EmotionClassifier``). This module decides
their CPUs, GPUs and retries.
"""

from __future__ import annotations

import dataclasses
import os
import time
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import ray

from fer_stream.config import PipelineConfig
from fer_stream.inputs import content_hash
from fer_stream.lecture import FaceStage, SegmentResult, make_face_stage, run_segment
from fer_stream.pipeline.placement import PlacementError, classifier_plan, device_problem

if TYPE_CHECKING:
    from fer_stream.classify import EmotionClassifier


@ray.remote(num_cpus=1)
def inspect_file(path: str, video_id: str | None = None) -> dict:
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
        self.clf: EmotionClassifier | None = None

    def _load(self, weights: list) -> None:
        import tempfile

        from fer_stream.classify import EmotionClassifier  # torch: in the actor only

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
        assert self.clf is not None
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
class Progress:
    """Counters the segment workers add to and the driver polls (fire-and-forget updates)."""

    def __init__(self):
        self.frames = 0
        self.faces = 0

    def add(self, frames: int, faces: int) -> None:
        self.frames += frames
        self.faces += faces

    def get(self) -> tuple[int, int]:
        return self.frames, self.faces


def make_classifiers(config: PipelineConfig) -> list:
    """The classifier actor pool: ``num_gpus=1`` each when the cluster has GPUs, else CPU actors.

    Each actor restarts if its process dies (``max_restarts``), and calls in flight are retried on
    the restarted actor (``max_task_retries``).
    """
    n, device, opts, _ = classifier_plan(config)
    actor = ray.remote(ClassifierActor).options(**opts)
    return [actor.remote(device, config.backend) for _ in range(n)]


@lru_cache(maxsize=2)
def _face_stage(config: PipelineConfig, crop_size: int) -> FaceStage:
    """One FaceStage per worker process and configuration: Ray reuses worker processes, and the
    models load once. (``run_segment`` resets the stage's state for each segment.)"""
    return make_face_stage(config, crop_size)


@ray.remote(num_cpus=1, scheduling_strategy="SPREAD")  # a lecture's segments over the nodes
def analyze_segment(
    path: str,
    k: int,
    start_s: float,
    end_s: float | None,
    config: PipelineConfig,
    crop_size: int,
    classifiers: list | None,
    weights: list | None,
    progress,
) -> SegmentResult:
    """``lecture.run_segment`` on a worker: the crops go to the classifier actors, batch ``i`` of
    segment ``k`` to actor ``(k + i) % len(classifiers)``, so a video's segments share the pool.
    ``classifiers`` is ``None`` when emotion is not inferred: nothing is classified."""
    sent = 0
    pool = classifiers or []
    refs: dict = {}  # future -> its ObjectRef

    def classify(crops: np.ndarray):
        nonlocal sent
        actor = pool[(k + sent) % len(pool)]
        sent += 1
        ref = actor.predict.remote(weights, crops)
        future = ref.future()
        refs[future] = ref
        return future

    def wait(futures, every: bool) -> None:
        # Blocked in ray.wait, this task lends its CPU back to Ray: a classifier actor restarting on
        # this node (its own node lost) can take it. Blocked on a plain future it would hold the CPU,
        # and with every CPU held by segments waiting for that actor, nothing would move again.
        pending = [refs[f] for f in futures if not f.done()]
        if pending and (every or len(pending) == len(futures)):
            ray.wait(pending, num_returns=len(pending) if every else 1)

    def on_progress(frames: int, faces: int) -> None:
        progress.add.remote(frames, faces)  # fire and forget

    part = run_segment(
        path,
        config,
        _face_stage(config, crop_size),
        classify if pool else None,
        k=k,
        start_s=start_s,
        end_s=end_s,
        decode_threads=1,  # one segment per CPU: FFmpeg's own threads would only compete
        on_progress=on_progress if progress is not None else None,
        wait=wait,
    )
    return dataclasses.replace(part, node_id=ray.get_runtime_context().get_node_id())
