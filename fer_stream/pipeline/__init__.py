"""Lecture videos -> Parquet records on Ray: the only package that imports ray.

Data flow of one run (``run(inputs, output, config)``)::

    driver: list videos, course/date from sidecars or paths     (fer_stream.inputs)
      -> inspect task per video: sha256 (video_id) + probe       (workers.py; CPU, parallel)
      -> skip what videos/ says is done for this video_id + config hash
      -> analyze_segment task per time segment                   (workers.py; 1 CPU each)
             fer_stream.lecture.run_segment: decode -> detect -> landmarks -> pose/eyes -> align
             -> track; crops, ``batch_size`` at a time, to the ClassifierActor pool (GPU if any)
      -> driver, once every segment of a video is back: fer_stream.lecture.assemble (students over
         the union of the segments' tracks), write faces/ and frames/ (one file each, atomic),
         then the videos/ row that marks the video done                         (run.py)

Modules by concern: ``placement`` (segments, the classifier pool, whether nodes can hold it),
``workers`` (Ray tasks and actors), ``cluster`` (connecting; inputs every node can read), ``run``
(the driver's event loop), ``summary`` (results, outcome, progress display). The stages never
import ray; this package decides CPUs, GPUs, batch sizes and concurrency. Records:
``fer_stream.records`` and docs/PIPELINE.md.
"""

import ray  # noqa: F401  (``pipeline.ray``: tests patch the cluster's resources through it)

from fer_stream.lecture import SEGMENT_ID_STRIDE
from fer_stream.pipeline.cluster import (
    InputsNotShared,
    check_inputs_reachable,
    connect,
    disconnect,
    embedded_cpus,
)
from fer_stream.pipeline.placement import (
    CLASSIFIER_RESOURCE,
    CPU_CLASSIFIER_SHARE,
    PLACEMENT_WAIT_S,
    PlacementError,
    actor_needs,
    alive_nodes,
    classifier_plan,
    device_problem,
    placement_problem,
    plan_segments,
)
from fer_stream.pipeline.run import run
from fer_stream.pipeline.summary import RunOutcome, RunSummary, VideoResult, VideoStatus
from fer_stream.pipeline.workers import ClassifierActor, make_classifiers

__all__ = [
    "CLASSIFIER_RESOURCE",
    "CPU_CLASSIFIER_SHARE",
    "PLACEMENT_WAIT_S",
    "SEGMENT_ID_STRIDE",
    "ClassifierActor",
    "InputsNotShared",
    "PlacementError",
    "RunOutcome",
    "RunSummary",
    "VideoResult",
    "VideoStatus",
    "actor_needs",
    "alive_nodes",
    "check_inputs_reachable",
    "classifier_plan",
    "connect",
    "device_problem",
    "disconnect",
    "embedded_cpus",
    "make_classifiers",
    "placement_problem",
    "plan_segments",
    "run",
]
