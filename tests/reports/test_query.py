"""The SQL runner (fer_stream.reports.query): each report on hand-made records whose answers are worked
out by hand, hostile parameters, clear errors, `fer-stream report` / `sql`, and the reports on real
pipeline output against an independent numpy computation."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from fractions import Fraction as F
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from fer_stream import records, reports
from fer_stream.cli import exits
from fer_stream.labels import FER2013_LABELS
from tests.helpers import ROOT, shared
from tests.reports.helpers import (
    D1,
    D2,
    HASH,
    VA,
    VB,
    VC,
    VD,
    VE,
    VF,
    A,
    check_page,
    lecture,
    rows,
    run,
)

# --------------------------------------------------------------------------------------------------
# Each report's numbers, worked out by hand


def test_views_hold_the_latest_done_analysis_only(con):
    lectures = con.sql("select video_id, config_hash, frame_s, course from lectures order by 1").fetchall()
    assert lectures == [
        (VA, HASH, 0.5, "ML101"),
        (VB, HASH, 1.0, "ML101"),
        (VC, HASH, 1.0, "ML101"),
        (VD, HASH, 1.0, "ML101"),
        (VF, HASH, 0.5, "BIO 2/x"),
    ]  # E failed: no lecture
    # 12 faces of A + 4 + 4 + 2 + 1; the older analysis of A (3 faces) is left out
    assert con.sql("select count(*) from faces").fetchall() == [(23,)]
    assert con.sql("select count(*) from frames").fetchall() == [(10 + 2 + 2 + 2 + 1,)]
    assert con.sql("select count(*) from videos").fetchall() == [(9,)]
    assert reports.run_report(con, "lecture_summary", course="OLD").num_rows == 0  # D is in ML101 now


def test_student_attention(con):
    t = reports.run_report(con, "student_attention", video=VA[:8])
    r = rows(t)
    assert list(r) == ["stu-1", "stu-2"]  # the stray face is no student
    s1, s2 = r["stu-1"], r["stu-2"]
    assert (s1["frames_sampled"], s1["frames_visible"], s1["frames_attentive"]) == (10, 7, 2)
    assert (s1["frames_inattentive"], s1["frames_unmeasured"]) == (4, 1)
    assert s1["minutes_visible"] == pytest.approx(7 * 0.5 / 60, rel=1e-12)
    assert s1["presence"] == pytest.approx(0.7, rel=1e-12)
    assert s1["unmeasured_share"] == pytest.approx(1 / 7, rel=1e-12)
    assert s1["attention_rate"] == pytest.approx(1 / 3, rel=1e-12)  # 2 / (2 + 4): absence not counted
    assert s1["mean_attention"] == float(F(7, 8) + F(1, 4) + F(3, 8) + F(1, 8) + F(3, 4) + F(7, 16)) / 6
    # inattentive runs: frames 2-3 (frame 4 not visible ends it), 5, 7 -> longest 2 frames x 0.5 s
    assert s1["longest_inattentive_s"] == 1.0
    # measured sequence A I I . I A I: drops at 1->2 and 6->7
    assert s1["attention_drops"] == 2
    assert (s2["frames_visible"], s2["presence"], s2["attention_rate"]) == (4, 0.4, 0.5)
    assert s2["mean_attention"] == (0.625 + 0.75 + 0.25 + 0.125) / 4
    assert (s2["longest_inattentive_s"], s2["attention_drops"]) == (1.0, 1)
    # min_visible_s: stu-1 is seen 3.5 s, stu-2 2.0 s
    assert list(rows(reports.run_report(con, "student_attention", video=VA, min_visible_s=2.5))) == ["stu-1"]
    assert len(reports.run_report(con, "student_attention", video=VA, min_visible_s=2.0)) == 2
    # student and course filters; course names with '/' and spaces come back from the folder names
    only = reports.run_report(con, "student_attention", student="stu-2").to_pylist()
    assert [(r["student_id"], r["video_id"]) for r in only] == [("stu-2", VA), ("stu-2", VB), ("stu-2", VC)]
    bio = reports.run_report(con, "student_attention", course="BIO 2/x").to_pylist()
    assert [(b["student_id"], b["attention_rate"], b["minutes_visible"]) for b in bio] == [
        ("stu-9", 1.0, 0.5 / 60)
    ]
    # the whole table: 4 + 1 lectures' students
    assert len(reports.run_report(con, "student_attention")) == 2 + 2 + 2 + 1 + 1


def test_student_emotions(con):
    r = rows(reports.run_report(con, "student_emotions", video=VA))
    s1, s2 = r["stu-1"], r["stu-2"]
    # stu-1: happy 3, neutral 3, sad 1 of 7: a tie goes to the earlier label, happy
    assert (s1["dominant_emotion"], s1["dominant_share"]) == ("happy", 3 / 7)
    assert [s1[f"share_{k}"] for k in FER2013_LABELS] == [0, 0, 0, 3 / 7, 1 / 7, 0, 3 / 7]
    assert s1["p_happy"] == pytest.approx((3 * 0.625 + 4 * 0.0625) / 7, rel=1e-12)
    assert s1["p_sad"] == pytest.approx((0.625 + 6 * 0.0625) / 7, rel=1e-12)
    assert s1["p_angry"] == pytest.approx(0.0625, rel=1e-12)
    assert sum(s1[f"p_{k}"] for k in FER2013_LABELS) == pytest.approx(1.0, abs=1e-12)
    assert (s2["dominant_emotion"], s2["dominant_share"], s2["share_angry"], s2["share_surprise"]) == (
        "sad",
        0.5,
        0.25,
        0.25,
    )
    assert s2["minutes_visible"] == pytest.approx(2 / 60, rel=1e-12)


def test_lecture_timeline(con):
    t = reports.run_report(con, "lecture_timeline", video=VA, bucket_s=2).to_pylist()
    assert [r["bucket"] for r in t] == [0, 1, 2]  # frames 1-4 (0-1.5 s), 5-8 (2-3.5 s), 9-10 (4-4.5 s)
    b0, b1, b2 = t
    assert (b0["start_s"], b0["end_s"], b0["frames_sampled"], b0["frames_no_faces"]) == (0, 2, 4, 0)
    assert b0["faces_per_frame"] == (2 + 3 + 2 + 1) / 4  # the stray face counts as a face
    assert (b0["students_visible"], b0["faces_measured"]) == (2, 7)
    assert b0["mean_attention"] == pytest.approx((0.875 + 0.25 + 0.375 + 0.625 + 0.75 + 0.25 + 0.125) / 7)
    assert b0["attention_rate"] == pytest.approx(3 / 7)
    assert [b0[f"share_{k}"] for k in FER2013_LABELS] == pytest.approx(
        [1 / 7, 0, 0, 2 / 7, 2 / 7, 1 / 7, 1 / 7]
    )
    assert (b1["students_visible"], b1["faces_measured"], b1["faces_per_frame"]) == (1, 3, 1.0)
    assert b1["mean_attention"] == (0.125 + 0.75 + 0.4375) / 3 and b1["attention_rate"] == 1 / 3
    assert (b1["share_sad"], b1["share_happy"], b1["share_neutral"]) == (0.25, 0.25, 0.5)
    assert (b2["frames_no_faces"], b2["faces_per_frame"], b2["students_visible"]) == (2, 0, 0)
    assert b2["mean_attention"] is None and b2["share_happy"] is None
    assert [r["low_rank"] for r in t] == [2, 1, None]  # 0.4375 < 0.464
    # default buckets are minutes: all of A in minute 0
    (m0,) = reports.run_report(con, "lecture_timeline", video=VA).to_pylist()
    assert (m0["bucket"], m0["end_s"], m0["frames_sampled"], m0["faces_measured"]) == (0, 60, 10, 10)
    assert m0["attention_rate"] == 4 / 10


def test_student_timeline(con):
    t = reports.run_report(con, "student_timeline", video=VA, bucket_s=2).to_pylist()
    got = {(r["student_id"], r["bucket"]): (r["frames_visible"], r["mean_attention"]) for r in t}
    assert got == {
        ("stu-1", 0): (3, (0.875 + 0.25 + 0.375) / 3),
        ("stu-1", 1): (4, (0.125 + 0.75 + 0.4375) / 3),  # frame 8 seen but unmeasured
        ("stu-2", 0): (4, (0.625 + 0.75 + 0.25 + 0.125) / 4),
    }  # no row where a student is not seen


def test_student_trend_and_falling_streaks(con):
    t = reports.run_report(con, "student_trend", course="ML101").to_pylist()
    s1 = [r for r in t if r["student_id"] == "stu-1"]
    s2 = [r for r in t if r["student_id"] == "stu-2"]
    means1 = [F(45, 96), F(3, 8), F(1, 4), F(1, 8)]  # A: (7/8+1/4+3/8+1/8+3/4+7/16)/6 = 45/96
    assert [r["video_id"] for r in s1] == [VA, VB, VC, VD] and [r["lecture_no"] for r in s1] == [1, 2, 3, 4]
    assert [r["mean_attention"] for r in s1] == [float(m) for m in means1]
    usual1 = sum(means1) / 4
    assert all(r["usual_attention"] == pytest.approx(float(usual1)) for r in s1)
    assert [r["attention_change"] for r in s1] == pytest.approx([float(m - usual1) for m in means1])
    assert [r["fell"] for r in s1] == [False, True, True, True]
    assert [r["fall_streak"] for r in s1] == [0, 1, 2, 3]
    assert [r["falling"] for r in s1] == [False, False, False, True]  # falls = 3 by default
    assert all(r["student_falling"] for r in s1)
    # stu-2: A 0.4375, B 0.5 (rose), C 0.25 (fell once), not in D (not seen: not a fall)
    assert [r["mean_attention"] for r in s2] == [0.4375, 0.5, 0.25]
    assert [r["fall_streak"] for r in s2] == [0, 0, 1] and not any(r["student_falling"] for r in s2)
    # emotion per lecture against the student's own average: stu-1 neutral 3/7 in A, then all neutral
    p_neutral = [(3 * F(10, 16) + 4 * F(1, 16)) / 7, F(10, 16), F(10, 16), F(10, 16)]
    assert [r["p_neutral_change"] for r in s1] == pytest.approx(
        [float(p - sum(p_neutral) / 4) for p in p_neutral]
    )
    assert [r["dominant_emotion"] for r in s1] == ["happy", "neutral", "neutral", "neutral"]
    # a date range and a shorter streak
    late = reports.run_report(
        con, "student_trend", course="ML101", date_from="2024-03-12", falls=2
    ).to_pylist()
    late1 = [r for r in late if r["student_id"] == "stu-1"]
    assert [r["fall_streak"] for r in late1] == [0, 1, 2] and [r["falling"] for r in late1] == [
        False,
        False,
        True,
    ]
    assert len(reports.run_report(con, "student_trend", course="ML101", date_to=D1)) == 2


def test_lecture_summary(con):
    t = rows(reports.run_report(con, "lecture_summary", course="ML101", bucket_s=2), key="video_id")
    assert list(t) == [VA, VB, VC, VD, VE]  # by date; E failed on D4
    a, e = t[VA], t[VE]
    assert (a["status"], a["failed_runs"], a["frames_sampled"], a["frames_no_faces"]) == ("done", 0, 10, 2)
    assert a["minutes_analysed"] == pytest.approx(10 * 0.5 / 60) and a["no_face_share"] == 0.2
    assert (a["students"], a["stray_faces"]) == (2, 1)
    b0, b1 = F(13, 28), F(7, 16)  # bucket means: 3.25/7 and 1.3125/3
    assert a["engagement_index"] == pytest.approx(float(100 * (b0 + b1) / 2))
    assert a["attention_rate"] == 4 / 10 and a["unmeasured_share"] == pytest.approx(1 / 11)
    assert a["review_moments"] == "00:00:02-00:00:04 (0.44); 00:00:00-00:00:02 (0.46)"
    assert (e["status"], e["error_type"], e["failed_runs"]) == ("failed", "NotAVideoError", 2)
    assert e["error_message"] == "e.mp4: not a video"
    assert e["frames_sampled"] is None and e["engagement_index"] is None and e["students"] is None
    assert t[VD]["students"] == 1 and t[VD]["engagement_index"] == 12.5
    one = reports.run_report(con, "lecture_summary", video=VA, bucket_s=2, moments=1, min_visible_s=2.5)
    assert one.column("review_moments").to_pylist() == ["00:00:02-00:00:04 (0.44)"]
    assert one.column("students").to_pylist() == [1]


def test_summary_engagement_is_the_mean_of_the_timeline(con):
    """Two SQL files compute class attention per bucket: they agree."""
    for vid in (VA, VB, VC, VD):
        tl = reports.run_report(con, "lecture_timeline", video=vid, bucket_s=2).column("mean_attention")
        (s,) = reports.run_report(con, "lecture_summary", video=vid, bucket_s=2).to_pylist()
        assert s["engagement_index"] == pytest.approx(
            100 * np.mean([v for v in tl.to_pylist() if v is not None])
        )


# --------------------------------------------------------------------------------------------------
# Parameters: bound as data, checked


HOSTILE = ["ML101'; drop table faces; --", "x' or '1'='1", 'ML101"; select 1; --', "$course", "%", "ML101\\"]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_parameter_values_are_data(con, value):
    before = con.sql("select count(*) from faces").fetchall()
    assert reports.run_report(con, "student_attention", course=value).num_rows == 0
    assert reports.run_report(con, "lecture_summary", course=value).num_rows == 0
    assert reports.run_report(con, "student_trend", student=value).num_rows == 0
    assert reports.run_report(con, "student_emotions", video=value).num_rows == 0
    # no effect: the views and their rows are all there
    assert con.sql("select count(*) from faces").fetchall() == before
    assert reports.run_report(con, "student_attention", course="ML101").num_rows == 7


def test_unknown_report_and_parameters_fail_clearly(con):
    with pytest.raises(reports.ReportError, match="unknown report 'nope'.*student_attention"):
        reports.run_report(con, "nope")
    with pytest.raises(reports.ReportError, match="unknown report"):
        reports.run_report(con, "../sql/student_attention")
    with pytest.raises(reports.ReportError, match="takes no parameter 'colour'; it takes: course"):
        reports.run_report(con, "student_attention", colour="red")
    with pytest.raises(reports.ReportError, match="takes no parameter 'falls'"):
        reports.run_report(con, "student_attention", falls=2)
    with pytest.raises(reports.ReportError, match="date_from='March'.*YYYY-MM-DD"):
        reports.run_report(con, "student_trend", date_from="March")
    with pytest.raises(reports.ReportError, match="bucket_s='0'.*> 0"):
        reports.run_report(con, "lecture_timeline", bucket_s="0")


def test_missing_or_empty_dataset_fails_clearly(tmp_path):
    with pytest.raises(reports.ReadError, match="no records folder"):
        reports.connect(tmp_path / "nope")
    with pytest.raises(reports.NoRecordsError, match="no records under"):
        reports.connect(tmp_path)
    (tmp_path / "faces").mkdir()
    with pytest.raises(reports.NoRecordsError, match="no records under"):
        reports.connect(tmp_path)


def test_a_broken_parquet_file_is_a_clear_error(tmp_path):
    lecture(tmp_path, VB, "ML101", D2, 1.0, 2, [(1, "stu-1", A, 0.75, "happy")])
    (path,) = (tmp_path / "faces").rglob("*.parquet")
    path.write_bytes(b"this is no parquet file")
    with pytest.raises(reports.ReadError, match="cannot read the faces/ records: .*Exception"):
        reports.connect(tmp_path)


def test_only_failed_videos_give_empty_reports(tmp_path):
    run(tmp_path, VE, "ML101", D1, "failed", error=("NotAVideoError", "bad"))
    con = reports.connect(tmp_path)
    for name in reports.report_names():
        assert reports.run_report(con, name).num_rows == (1 if name == "lecture_summary" else 0), name


def test_every_report_declares_documented_parameters():
    names = reports.report_names()
    assert names == [
        "lecture_summary",
        "lecture_timeline",
        "speech_attention",
        "student_attention",
        "student_emotions",
        "student_timeline",
        "student_trend",
    ]
    doc = (ROOT / "docs" / "REPORTS.md").read_text()
    for name in names:
        assert f"`{name}`" in doc, name
        for p in reports.report_params(name):
            assert f"${p}" in (reports.SQL_DIR / f"{name}.sql").read_text().split("\nwith\n")[0], (name, p)
    for p in reports.PARAMS:
        assert f"`{p}`" in doc, p


# --------------------------------------------------------------------------------------------------
# CLI


def test_cli_list(fer_stream, capsys):
    assert fer_stream("report", "--list") == 0
    out = capsys.readouterr().out
    for name in reports.report_names():
        assert f"\n{name}\n" in f"\n{out}"
    assert "--param min_visible_s=..." in out and "(default 60.0)" in out


def test_cli_report_csv_json_parquet_table(fer_stream, data, tmp_path, capsys):
    args = ("report", "student_attention", "--data", data, "--param", f"video={VA[:8]}")
    assert fer_stream(*args, "--format", "csv", "--out", tmp_path / "a.csv") == 0
    csv = pacsv.read_csv(tmp_path / "a.csv").to_pylist()
    assert [(r["student_id"], r["attention_drops"], r["attention_rate"]) for r in csv] == [
        ("stu-1", 2, pytest.approx(1 / 3)),
        ("stu-2", 1, 0.5),
    ]
    assert fer_stream(*args, "--format", "json", "--param", "min_visible_s=2.5") == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["student_id"], row["lecture_date"], row["longest_inattentive_s"]) == (
        "stu-1",
        "2024-03-05",
        1.0,
    )
    assert fer_stream(*args, "--format", "parquet", "--out", tmp_path / "a.parquet") == 0
    assert pq.read_table(tmp_path / "a.parquet").column("frames_visible").to_pylist() == [7, 4]
    assert fer_stream(*args) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:4] == ["course", "lecture_date", "video_id", "student_id"]
    assert "(2 rows)" in out


def test_cli_sql(fer_stream, data, capsys):
    q = "select student_id, count(*) as n from faces where course = $c group by 1 order by 1"
    assert fer_stream("sql", "--data", data, q, "--param", "c=ML101", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out) == [
        {"student_id": "stu-1", "n": 7 + 2 + 2 + 2},
        {"student_id": "stu-2", "n": 4 + 2 + 2},
        {"student_id": None, "n": 1},
    ]
    assert fer_stream("sql", "--data", data, "select * from nowhere") == 2
    assert "nowhere" in capsys.readouterr().err


def test_cli_errors(fer_stream, data, tmp_path, capsys):
    """Exit codes (fer_stream.cli.exits): a bad request 2, no records 4, a missing or unreadable input 1."""
    assert fer_stream("report", "nope", "--data", data) == exits.USAGE
    assert "unknown report 'nope'" in capsys.readouterr().err
    assert fer_stream("report", "student_attention", "--data", data, "--param", "colour=red") == exits.USAGE
    assert "takes no parameter 'colour'" in capsys.readouterr().err
    assert fer_stream("report", "student_attention", "--data", data, "--param", "course") == exits.USAGE
    assert "KEY=VALUE" in capsys.readouterr().err
    assert fer_stream("report", "student_attention", "--data", tmp_path / "none") == exits.ERROR
    assert "no records folder" in capsys.readouterr().err
    assert fer_stream("report", "student_attention", "--data", tmp_path) == exits.NO_DATA
    assert "no records under" in capsys.readouterr().err
    assert fer_stream("report", "student_attention", "--data", data, "--format", "parquet") == exits.USAGE
    assert "needs --out" in capsys.readouterr().err
    assert fer_stream("sql", "--data", tmp_path, "select 1") == exits.NO_DATA
    assert "no records under" in capsys.readouterr().err
    out = tmp_path / "no" / "such" / "folder" / "a.csv"
    assert (
        fer_stream("report", "student_attention", "--data", data, "--format", "csv", "--out", out)
        == exits.ERROR
    )
    assert "No such file or directory" in capsys.readouterr().err
    broken = tmp_path / "broken"
    lecture(broken, VB, "ML101", D2, 1.0, 2, [(1, "stu-1", A, 0.75, "happy")])
    next((broken / "faces").rglob("*.parquet")).write_bytes(b"this is no parquet file")
    assert fer_stream("report", "student_attention", "--data", broken) == exits.ERROR
    assert "cannot read the faces/ records" in capsys.readouterr().err


def test_cli_as_a_process(data):
    """The real entry point (`python -m fer_stream.cli` = `fer-stream`), all registered modules."""
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "fer_stream.cli",
            "report",
            "lecture_summary",
            "--data",
            str(data),
            "--param",
            "course=BIO 2/x",
            "--format",
            "csv",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 2 and '"BIO 2/x"' in lines[1] and VF in lines[1]


# --------------------------------------------------------------------------------------------------
# Real pipeline output


@pytest.fixture(scope="module")
def real(tmp_path_factory, local_ray) -> Path:
    """WolfgangLanger_Pexels.mp4 (19.7 s, one woman, some looking away) at 2 fps, and a file that is no
    video, analysed by the Ray pipeline with the default weights."""
    from fer_stream import config, pipeline
    from fer_stream.validity import Gates

    clip = shared("videos/WolfgangLanger_Pexels.mp4")
    tmp = tmp_path_factory.mktemp("real")
    inp = tmp / "in" / "ML101"
    inp.mkdir(parents=True)
    shutil.copy(clip, inp / "2024-03-05_lecture.mp4")
    (inp / "2024-03-06_notes.mp4").write_text("not a video\n")
    # Eyes read at every size (the default gates never read EAR, docs/VALIDITY.md): her closed or
    # lowered eyes then make inattentive frames, so the reports are checked on both states.
    cfg = config.PipelineConfig(sample_fps=2.0, gates=Gates(eyes_min_px=0))
    s = pipeline.run([tmp / "in"], tmp / "out", cfg, progress=False)
    assert [r.status for r in s.results] == ["done", "failed"], s.describe()
    return tmp / "out"


def test_reports_on_real_pipeline_output(real, tmp_path):
    """The SQL against an independent numpy computation from the records (pyarrow reader)."""
    faces = records.read(real, "faces").sort_by("frame_index")
    frames = records.read(real, "frames").sort_by("frame_index")
    con = reports.connect(real)
    att = reports.run_report(con, "student_attention").to_pylist()
    students = sorted(set(faces.column("student_id").drop_null().to_pylist()))
    assert [r["student_id"] for r in att] == students and len(students) >= 1
    n_frames = frames.num_rows
    assert n_frames == 40  # 19.7 s at 2 fps
    for r in att:
        mine = faces.filter(np.array([s == r["student_id"] for s in faces.column("student_id").to_pylist()]))
        score = mine.column("attention").to_numpy(zero_copy_only=False).astype(float)
        flag = np.array(mine.column("attentive").to_pylist())
        measured = ~np.isnan(score)
        assert r["frames_visible"] == mine.num_rows and r["frames_sampled"] == n_frames
        assert r["attention_rate"] == pytest.approx(flag[measured].mean())
        assert r["mean_attention"] == pytest.approx(np.nanmean(score), rel=1e-6)
        # longest run of consecutive sampled frames seen and inattentive, in frames
        frame_no = {f: k for k, f in enumerate(frames.column("frame_index").to_pylist())}
        state = {
            frame_no[f]: ("U" if np.isnan(s) else "A" if a else "I")
            for f, s, a in zip(mine.column("frame_index").to_pylist(), score, flag)
        }
        longest = run_ = 0
        for k in range(n_frames):
            run_ = run_ + 1 if state.get(k) == "I" else 0
            longest = max(longest, run_)
        assert r["longest_inattentive_s"] == longest * 0.5
        seq = [state[k] for k in sorted(state) if state[k] != "U"]
        assert r["attention_drops"] == sum(a == "A" and b == "I" for a, b in zip(seq, seq[1:]))
    # the clip has the woman looking away at the start: both states occur
    assert att[0]["frames_attentive"] > 0 and att[0]["frames_inattentive"] > 0

    summary = rows(reports.run_report(con, "lecture_summary", bucket_s=5), key="status")
    assert summary["failed"]["error_type"] == "NotAVideoError"
    done = summary["done"]
    assert done["frames_sampled"] == n_frames
    assert done["frames_no_faces"] == sum(n == 0 for n in frames.column("n_faces").to_pylist())
    timeline = reports.run_report(con, "lecture_timeline", bucket_s=5).to_pylist()
    assert [t["frames_sampled"] for t in timeline] == [10, 10, 10, 10]
    pts = faces.column("pts_s").to_numpy()
    score = faces.column("attention").to_numpy(zero_copy_only=False).astype(float)
    for t in timeline:
        m = (pts // 5 == t["bucket"]) & ~np.isnan(score)
        assert t["mean_attention"] == pytest.approx(score[m].mean(), rel=1e-6)
    means = [t["mean_attention"] for t in timeline]
    assert done["engagement_index"] == pytest.approx(100 * np.mean(means))
    assert done["review_moments"].startswith(f"00:00:{5 * int(np.argmin(means)):02d}")
    emo = reports.run_report(con, "student_emotions").to_pylist()
    labels = [v for v in faces.column("emotion").to_pylist() if v is not None]  # shares: readable faces
    assert 0 < len(labels) and emo[0]["share_happy"] == pytest.approx(labels.count("happy") / len(labels))
    assert sum(emo[0][f"share_{k}"] for k in FER2013_LABELS) == pytest.approx(1.0)
    # and the page renders
    written = reports.write_course_reports(real, "ML101", tmp_path)
    check_page(next(p for p in written if p.name.startswith("ML101_2024-03-05")), tmp_path, n_students=1)
