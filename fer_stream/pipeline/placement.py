"""Where the work goes: a video's segments, the classifier pool's size and device, and whether the
alive nodes can hold it. Placement maths over Ray's resource dictionaries; no tasks are started here.
"""

from __future__ import annotations

import math

import ray

from fer_stream.config import PipelineConfig

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
