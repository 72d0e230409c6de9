"""The Ray connection: join a cluster or start an embedded Ray, and check that every node that
will run video work can read the inputs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from fer_stream.pipeline.placement import alive_nodes


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
