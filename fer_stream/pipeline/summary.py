"""What a run reports: each video's outcome, the run's outcome, and the progress display.

Plain data (the ``videos/`` table is the durable record; this is the run's answer to its caller).
Exit codes are the command line's business: ``fer_stream.cli.exits.of_run(summary.outcome)``.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
import time
from dataclasses import dataclass, field

import ray

from fer_stream.records import VideoStatus


class RunOutcome(enum.StrEnum):
    """How a run ended."""

    OK = "ok"  # every video done or skipped
    PARTIAL = "partial"  # finished, but some videos failed (recorded)
    ABORTED = "aborted"  # stopped early: --strict at the first failure, or ``error`` (a lost node)


@dataclass(frozen=True, kw_only=True)
class VideoResult:
    """The outcome of one input in one run."""

    path: str
    status: VideoStatus
    video_id: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    sampled_frames: int = 0
    faces: int = 0
    students: int = 0
    wall_s: float = 0.0
    reason: str = ""  # why it was skipped
    incomplete: bool = False  # done, but decoding lost or damaged part of it (videos.incomplete)
    warnings: list[str] = field(default_factory=list)  # decode damage, fallback course/date: why
    segment_nodes: list[str] = field(default_factory=list)  # Ray node id that ran each segment


@dataclass(frozen=True, kw_only=True)
class RunSummary:
    """A run's outcome (:attr:`outcome`). An aborted run keeps the videos done so far."""

    run_id: str
    output: str
    config_hash: str
    model_version: str | None  # None: emotion not inferred
    inputs: int
    results: list[VideoResult]
    wall_s: float
    aborted: bool = False
    error: str | None = None  # why the run stopped early ("PlacementError: ...")
    # Ray node id of each classifier actor; "" while its ready probe has not answered
    classifier_nodes: list[str] = field(default_factory=list)
    signals: list[str] = field(default_factory=list)  # what was inferred (config.Signal values)

    @property
    def outcome(self) -> RunOutcome:
        if self.aborted:
            return RunOutcome.ABORTED
        return RunOutcome.PARTIAL if self.count(VideoStatus.FAILED) else RunOutcome.OK

    def as_json(self) -> dict:
        """The summary as plain JSON data (``--summary-json``)."""
        return dataclasses.asdict(self) | {"outcome": self.outcome.value}

    def count(self, status: VideoStatus | str) -> int:
        return sum(r.status == status for r in self.results)

    def describe(self) -> str:
        frames = sum(r.sampled_frames for r in self.results)
        faces = sum(r.faces for r in self.results)
        not_run = self.inputs - len(self.results)
        incomplete = sum(r.incomplete for r in self.results)
        lines = [
            f"run {self.run_id}: {self.inputs} videos: {self.count('done')} done"
            + (f" ({incomplete} incomplete)" if incomplete else "")
            + ", "
            f"{self.count('skipped')} skipped, {self.count('failed')} failed"
            + (f", {not_run} not analysed (aborted by --strict)" if self.aborted and not self.error else "")
            + (f", {not_run} not analysed (stopped)" if self.error else "")
            + f"; {frames} frames, {faces} faces in {self.wall_s:.1f} s",
            f"records: {self.output} (config {self.config_hash}, model {self.model_version or 'none'})",
            f"signals inferred: {', '.join(self.signals)}",
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
        lines += [f"  WARNING {r.path}: {w}" for r in self.results for w in r.warnings]
        return "\n".join(lines)


def error_of(e: BaseException) -> tuple[str, str]:
    """``(type name, message)`` of an error; the original one when Ray wrapped it in RayTaskError."""
    if isinstance(e, ray.exceptions.RayTaskError) and getattr(e, "cause", None) is not None:
        e = e.cause
    return type(e).__name__, str(e).strip()[:2000]


class Display:
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
