"""``OUTPUT/claims/<video_id>_<config_hash>.claim``: one run analyses a video at a time.

Two analyses started together on one output folder (a manual ``analyze`` while ``nightly`` runs,
two ``ray job submit`` of the same batch) would otherwise both analyse every video: the records
would stay right (same file names, replaced whole) but the work would be done twice. Before it
analyses a video, a run claims it; a video another run holds is put aside and taken up when that
claim goes away: done by the other run meanwhile, it is skipped; not done (the holder failed or
died), it is analysed.

A claim is :class:`fer_stream.ops.lock.OutputLock` on another file: an exclusive ``flock`` that the
kernel drops when its holder dies (kill -9, OOM, a reboot), so a dead run's claims never block
anyone, with the holder's ``{pid, host, kind, run_id, started_at, argv}`` in the file for the
waiting run to report. The holder removes the file on release. On NFS, claims of runs on different
hosts exclude each other only where the share is mounted with locking (ops/lock.py says more).
"""

from __future__ import annotations

import os
from pathlib import Path

from fer_stream.ops import layout, runlog
from fer_stream.ops.lock import LockHeld, OutputLock


class _Claim(OutputLock):
    """The lock of one video and configuration: :func:`layout.claim_file`."""

    def __init__(self, output: Path, video_id: str, config_hash: str, run_id: str):
        super().__init__(output, runlog.RunKind.ANALYZE, run_id)
        self.path = layout.claim_file(output, video_id, config_hash)


class Claims:
    """The claims one run holds on ``OUTPUT``, for videos analysed with ``config_hash``.

    Not thread-safe: one driver loop calls it.
    """

    def __init__(self, output: str | os.PathLike, config_hash: str, run_id: str):
        self.output, self.config_hash, self.run_id = Path(output), config_hash, run_id
        self.held: dict[str, _Claim] = {}
        self.took_over: dict[str, dict] = {}  # video_id -> owner of a dead run's claim taken over

    def claim(self, video_id: str) -> dict | None:
        """Claim ``video_id``. Returns ``None`` once this run holds it (also when it did already),
        else what the live holder's claim file says (``pid, host, run_id, started_at, ...``)."""
        if video_id in self.held:
            return None
        claim = _Claim(self.output, video_id, self.config_hash, self.run_id)
        while True:
            claim.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                stale = claim.acquire()
                break
            except LockHeld as held:
                return held.owner or {"pid": None, "host": "?", "run_id": "?"}
            except FileNotFoundError:  # another run removed the empty folder as it finished: again
                continue
        if stale:
            self.took_over[video_id] = stale
        self.held[video_id] = claim
        return None

    def release(self, video_id: str) -> None:
        """Release ``video_id``'s claim (a no-op if this run does not hold it)."""
        claim = self.held.pop(video_id, None)
        if claim is not None:
            claim.release()

    def release_all(self) -> None:
        """Release every claim, and remove the claims folder if no run holds one any more (an
        output folder keeps only its records between runs)."""
        for video_id in list(self.held):
            self.release(video_id)
        try:
            (self.output / layout.CLAIMS_DIR).rmdir()
        except OSError:  # another run's claims are in it, or it was never made
            pass

    def remove_stale(self) -> int:
        """Remove claim files no live run holds (a run killed after its last video's row): each is
        locked, then removed as a release would. Returns how many were removed."""
        removed = 0
        for path in sorted((self.output / layout.CLAIMS_DIR).glob("*.claim")):
            video_id, _, chash = path.stem.rpartition("_")
            if not video_id or video_id in self.held:
                continue
            claim = _Claim(self.output, video_id, chash, self.run_id)
            try:
                claim.acquire()
            except (LockHeld, FileNotFoundError):
                continue  # live, or its folder went away
            claim.release()
            removed += 1
        return removed


def describe_owner(owner: dict) -> str:
    """``run R (pid P on host H, since T)`` from a claim file's contents."""
    return (
        f"run {owner.get('run_id', '?')} (pid {owner.get('pid', '?')} on host {owner.get('host', '?')}, "
        f"since {owner.get('started_at', '?')})"
    )


def done_runs(output: Path, chash: str) -> dict[str, set[str]]:
    """``{video_id: run_ids}`` of the ``done`` rows for config hash ``chash`` in ``output/videos``."""
    import pyarrow.compute as pc

    from fer_stream import records

    done = (pc.field("config_hash") == chash) & (pc.field("status") == records.VideoStatus.DONE.value)
    rows = records.read(output, "videos", columns=["video_id", "run_id"], filter=done)
    out: dict[str, set[str]] = {}
    for vid, run_id in zip(rows.column("video_id").to_pylist(), rows.column("run_id").to_pylist()):
        out.setdefault(vid, set()).add(run_id)
    return out
