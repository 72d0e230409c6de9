"""Identity through the Ray pipeline: the real identity photos as 2 s clips, three courses in one run:

* ``ROS`` (roster: Obama and Biden enrolled, Alex Lacamoire not): lecture 1 Obama + Biden (+ a child),
  lecture 2 Obama + Alex;
* ``PSE`` (no roster, no seat map): the same two lectures -> pseudonyms stable across them;
* ``SEAT`` (seat map): lecture 1 only.

Then: ids per lecture, grouping by student_id across lectures (DuckDB over the records), no descriptor
anywhere but the owner-only store.
"""

import os
import re
import stat
from pathlib import Path

import av
import cv2
import duckdb
import numpy as np
import pytest

from fer_stream import pipeline, records, reports
from fer_stream.cli import main as cli
from fer_stream.config import IdentityConfig, ModelInfo, PipelineConfig, config_hash
from fer_stream.identity import store
from fer_stream.labels import FER2013_LABELS
from fer_stream.models import build, checkpoint
from tests.helpers import shared

SEATS = """{"room": "test", "units": "normalized", "seats": [
  {"student_id": "seat-left", "rect": [0.30, 0.10, 0.52, 0.60]},
  {"student_id": "seat-right", "rect": [0.52, 0.10, 0.75, 0.60]}]}"""


def still_clip(path: Path, rgb: np.ndarray, variant: int, seconds: float = 2.0, fps: int = 10) -> Path:
    """A clip of one still image (H.264); ``variant`` marks a corner so each course's file differs."""
    rgb = rgb.copy()
    rgb[:8, :8] = 40 * variant
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = rgb.shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for _ in range(int(seconds * fps)):
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def photo(rel: str, w: int, h: int) -> np.ndarray:
    bgr = cv2.imread(str(shared(f"identity/{rel}")))
    return cv2.cvtColor(cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def run(tmp_path_factory, local_ray):
    """Enrol, then analyse the five clips in one run with identity on. Returns the output folder."""
    tmp = tmp_path_factory.mktemp("identity")
    both = photo("test/obama_and_biden.jpg", 800, 572)  # Biden left, Obama right, a child bottom right
    pair = np.concatenate(
        [photo("test/obama1.jpg", 640, 360), photo("test/alex_lacamoire1.jpg", 544, 360)], 1
    )
    for v, course in enumerate(("ROS", "PSE", "SEAT"), 1):
        still_clip(tmp / "in" / course / "2024-03-05_l1.mp4", both, v)
        if course != "SEAT":
            still_clip(tmp / "in" / course / "2024-03-12_l2.mp4", pair, v)
    out = tmp / "out"
    roster = tmp / "roster.csv"
    root = shared("identity")
    roster.write_text(
        "".join(f"{p},{f}\n" for p in ("obama", "biden") for f in sorted((root / p).glob("*.jpg")))
    )
    (tmp / "seats.json").write_text(SEATS)
    assert cli(["enroll", "--course", "ROS", "--roster", str(roster), "--output", str(out)]) == 0
    assert cli(["enroll", "--course", "SEAT", "--seats", str(tmp / "seats.json"), "--output", str(out)]) == 0

    weights = checkpoint.save(
        tmp / "smoke.pt",
        build("smoke").eval(),
        checkpoint.make_meta(FER2013_LABELS, 0.5, 0.25, version="smoke"),
    )
    config = PipelineConfig(weights=str(weights), sample_fps=2.0, identity=IdentityConfig())
    summary = pipeline.run([tmp / "in"], out, config, progress=False)
    assert summary.outcome == "ok" and summary.count("done") == 5, summary.describe()
    return out


def ids(out: Path, course: str, day: str, x_min: float = -1, x_max: float = 1e9) -> set:
    """student_ids of a lecture's faces whose box starts within [x_min, x_max) pixels."""
    con = duckdb.connect()
    rows = con.execute(
        f"select distinct student_id from read_parquet('{out}/faces/**/*.parquet', hive_partitioning=true) "
        "where course = $c and lecture_date = $d and x1 >= $lo and x1 < $hi and student_id is not null",
        {"c": course, "d": day, "lo": x_min, "hi": x_max},
    ).fetchall()
    return {r[0] for r in rows}


def vid8(out: Path, course: str, day: str) -> str:
    rows = [r for r in records.read(out, "videos").to_pylist() if r["course"] == course]
    return next(r["video_id"][:8] for r in rows if str(r["lecture_date"]) == day)


def test_roster_course_matches_enrolled_and_keeps_others_unknown(run):
    l1, l2 = ids(run, "ROS", "2024-03-05"), ids(run, "ROS", "2024-03-12")
    assert ids(run, "ROS", "2024-03-05", 0, 400) == {"biden"}
    assert ids(run, "ROS", "2024-03-05", 400, 600) == {"obama"}
    assert ids(run, "ROS", "2024-03-12", 0, 640) == {"obama"}
    (alex,) = ids(run, "ROS", "2024-03-12", 640)  # not enrolled
    assert re.fullmatch(rf"unknown-{vid8(run, 'ROS', '2024-03-12')}-\d+", alex)
    assert all(s in {"obama", "biden"} or s.startswith("unknown-") for s in l1 | l2)
    # the roster course keeps no descriptor of anyone it saw: only the enrolment
    assert sorted(p.name for p in (run / "identity" / "ROS").iterdir()) == ["roster.npz"]


def test_two_people_never_share_an_id_in_a_lecture(run):
    for r in records.read(run, "videos").to_pylist():
        faces = records.read(run, "faces").to_pylist()
        sids = {f["student_id"] for f in faces if f["video_id"] == r["video_id"] and f["student_id"]}
        assert len(sids) == r["students"] >= 2, r["path"]  # one id per student key, all different


def test_pseudonyms_are_stable_across_lectures_of_a_course_without_names(run):
    (obama1,) = ids(run, "PSE", "2024-03-05", 400, 600)
    (biden,) = ids(run, "PSE", "2024-03-05", 0, 400)
    (obama2,) = ids(run, "PSE", "2024-03-12", 0, 640)
    (alex,) = ids(run, "PSE", "2024-03-12", 640)
    h = store.course_hash("PSE")
    assert obama1 == obama2
    assert len({obama1, biden, alex}) == 3
    assert all(re.fullmatch(rf"{h}-p\d{{4}}", s) for s in (obama1, biden, alex))
    stored, _ = store.load_gallery(run / "identity" / "PSE" / store.PSEUDONYM_FILE)
    assert set(stored.ids.tolist()) >= {obama1, biden, alex}


def test_seat_map_course_names_students_by_seat(run):
    assert ids(run, "SEAT", "2024-03-05", 0, 400) == {"seat-left"}
    assert ids(run, "SEAT", "2024-03-05", 400, 600) == {"seat-right"}
    assert not (run / "identity" / "SEAT" / store.PSEUDONYM_FILE).exists()


def test_reports_group_by_student_across_lectures(run):
    """Per-student rows over the term: the same student_id gathers both lectures' faces."""
    con = duckdb.connect()
    rows = con.execute(
        f"""
        with faces as (
            select * from read_parquet('{run}/faces/**/*.parquet', hive_partitioning=true)
            where course = 'ROS' and student_id is not null
        ),
        final as (
            select student_id, count(distinct lecture_date) as lectures, count(*) as face_rows,
                   avg(attentive::int) as attentive_share
            from faces group by student_id
        )
        select * from final order by student_id
        """
    ).fetchall()
    by_id = {r[0]: r[1] for r in rows}
    assert by_id["obama"] == 2 and by_id["biden"] == 1
    assert all(n == 1 for s, n in by_id.items() if s.startswith("unknown-"))


def test_descriptors_only_in_the_owner_only_store(run):
    for name in ("faces", "frames", "videos"):  # exactly the documented columns, nothing added
        assert set(records.read(run, name).schema.names) == set(
            getattr(records, f"{name.upper()}_SCHEMA").names
        )
    assert sorted(p.name for p in run.iterdir()) == ["faces", "frames", "identity", "videos"]
    for p in [run / "identity", *(run / "identity").rglob("*")]:
        want = 0o700 if p.is_dir() else 0o600
        assert stat.S_IMODE(os.stat(p).st_mode) == want, p


def test_identity_changes_the_config_hash_only_when_on(tmp_path):
    weights = checkpoint.save(
        tmp_path / "w.pt", build("smoke").eval(), checkpoint.make_meta(FER2013_LABELS, 0.5, 0.25, version="s")
    )
    model = ModelInfo.load(str(weights))
    off = PipelineConfig(weights=str(weights)).analysis(model)
    on = PipelineConfig(weights=str(weights), identity=IdentityConfig()).analysis(model)
    assert "identity" not in off  # hashes of runs without identity stay as they were
    assert on["identity"]["threshold"] == 0.6 and config_hash(on) != config_hash(off)
    with pytest.raises(TypeError):
        PipelineConfig(identity={"threshold": 0.5})


def test_student_trend_report_follows_a_student_across_lectures(run):
    """The same, through the project's report (fer_stream/reports/sql/student_trend.sql): one row per
    student per lecture."""
    rows = reports.report(run, "student_trend", course="ROS", min_visible_s=0).to_pylist()
    lectures = {}
    for r in rows:
        lectures.setdefault(r["student_id"], set()).add(str(r["lecture_date"]))
    assert lectures["obama"] == {"2024-03-05", "2024-03-12"} and lectures["biden"] == {"2024-03-05"}
