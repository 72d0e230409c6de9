"""One table of exit codes for every ``fer-stream`` command and ``jobs/analyze_lectures.py``.

Scripts and schedulers (cron, systemd, ``ray job submit``) branch on these, so every command
means the same thing by the same number.
"""

from __future__ import annotations

OK = 0  # the command did what was asked (a run with failed videos records them: see PARTIAL)
ERROR = 1  # it could not proceed: missing/unreadable input, unwritable output, Ray unreachable
USAGE = 2  # bad arguments or a bad request (unknown report, malformed --param); argparse uses 2 too
PARTIAL = 3  # an analysis finished but some inputs failed (they are recorded in videos/)
NO_DATA = 4  # the request was valid but there was nothing to work on (no records, no faces)
LOCKED = 75  # another run holds the output's lock (sysexits EX_TEMPFAIL: try again later)

TABLE = {
    OK: "ok",
    ERROR: "could not proceed (input, output, weights or Ray)",
    USAGE: "bad arguments",
    PARTIAL: "finished, some videos failed (recorded)",
    NO_DATA: "nothing to work on",
    LOCKED: "another run holds the output lock; try later",
}


def of_run(outcome: str) -> int:
    """The exit code of a pipeline run's outcome (``pipeline.RunOutcome``: ok, partial, aborted)."""
    return {"ok": OK, "partial": PARTIAL, "aborted": ERROR}[outcome]


EPILOG = "exit codes: " + "; ".join(f"{k} {v}" for k, v in TABLE.items())
