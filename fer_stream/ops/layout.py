"""Every folder and file name of an output folder, written once.

```
OUTPUT/
  faces/ frames/ speech/ videos/   the records (fer_stream.records: hive partitions course=/lecture_date=)
  reports/<YYYY-MM-DD>/            HTML and CSV reports rendered by nightly/forget (names below)
  runs/<run_id>.json               one record per nightly/forget run (fer_stream.ops.runlog)
  nightly/state.json               nightly's memory: inbox file hashes, failures, backoff
  nightly.lock                     one writer at a time (fer_stream.ops.lock)
  claims/<video_id>_<config>.claim the run analysing that video now, while runs work (ops.claims)
  quarantine/                      inbox files that failed too often (default place)
  identity/<course hash>/          owner-only identity store (fer_stream.identity)
  retention.journal.json           an erasure in progress (fer_stream.retention)
  forgotten.json                   tombstones: erased videos and students stay erased
```
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path

TABLES = ("faces", "frames", "speech", "videos")
REPORTS_DIR = "reports"
RUNS_DIR = "runs"
STATE_FILE = Path("nightly") / "state.json"
LOCK_FILE = "nightly.lock"
CLAIMS_DIR = "claims"
QUARANTINE_DIR = "quarantine"
IDENTITY_DIR = "identity"
JOURNAL = "retention.journal.json"
TOMBSTONES = "forgotten.json"


def reports_dir(output: str | os.PathLike, day: date) -> Path:
    """``OUTPUT/reports/<day>/``: the reports a run on ``day`` rendered."""
    return Path(output) / REPORTS_DIR / day.isoformat()


def run_record(output: str | os.PathLike, run_id: str) -> Path:
    return Path(output) / RUNS_DIR / f"{run_id}.json"


def claim_file(output: str | os.PathLike, video_id: str, config_hash: str) -> Path:
    """``OUTPUT/claims/<video_id>_<config_hash>.claim``: held by the run analysing that video now."""
    return Path(output) / CLAIMS_DIR / f"{video_id}_{config_hash}.claim"


# --------------------------------------------------------------------------------------------------
# Report file names of a course (written by reports.write_course_reports, removed by retention)


def slug(text: str) -> str:
    """A course code made file-name safe."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "course"


def course_page(course: str) -> str:
    return f"{slug(course)}.html"


def course_csv(course: str, report: str) -> str:
    return f"{slug(course)}_{report}.csv"


def lecture_page(course: str, lecture_date: date | str, video_id: str) -> str:
    return f"{slug(course)}_{lecture_date}_{video_id[:8]}.html"


def course_report_files(output: str | os.PathLike, course: str, reports: list[str]) -> list[Path]:
    """The files :func:`course_page`, :func:`course_csv` (for each of ``reports``) and
    :func:`lecture_page` name for ``course``, in every ``OUTPUT/reports/<date>/``."""
    stem = re.escape(slug(course))
    names = "|".join(re.escape(n) for n in reports)
    pattern = re.compile(rf"^{stem}(\.html|_({names})\.csv|_\d{{4}}-\d{{2}}-\d{{2}}_[0-9a-f]{{8}}\.html)$")
    root = Path(output) / REPORTS_DIR
    return sorted(p for p in root.glob("*/*") if p.is_file() and pattern.match(p.name))
