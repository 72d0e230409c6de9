"""Erasure and retention (fer_stream.retention, `fer-stream forget`) on small hand-made record sets:
the removed rows leave no trace in any table, the counts follow, a crash halfway is all-or-nothing."""

import json
from datetime import date, timedelta
from pathlib import Path

import pyarrow.compute as pc
import pytest

from fer_stream import cli, records, retention
from fer_stream.cli import exits
from fer_stream.identity import store
from fer_stream.labels import FER2013_LABELS
from fer_stream.ops import layout, runlog
from fer_stream.ops.lock import OutputLock

CHASH = "c0ffee0000000000"
TODAY = date(2026, 11, 28)


def vid(n: int) -> str:
    return f"{n:02d}" * 32  # 64 hex digits, like a sha256


def add_video(out: Path, video_id: str, course: str, day: date, students: dict[str, list[int]], n_frames=4):
    """One done video: ``students`` maps student_id -> the frames it is seen in (None: a stray face)."""
    rows = [(sid, f) for sid, frames in students.items() for f in frames]
    where = {"video_id": video_id, "course": course, "lecture_date": day}
    faces = {
        **where,
        "frame_index": [f for _, f in rows],
        "pts_s": [f * 0.5 for _, f in rows],
        "track_id": [i + 1 for i, _ in enumerate(rows)],
        "student_id": [sid for sid, _ in rows],
        **dict.fromkeys(["x1", "y1"], 10.0),
        **dict.fromkeys(["x2", "y2"], 60.0),
        "det_score": 0.99,
        "face_px": 50.0,
        **dict.fromkeys(["pose_readable", "eyes_readable", "emotion_readable"], True),
        **dict.fromkeys(["yaw", "pitch", "roll"], 0.0),
        "ear": 0.3,
        "attentive": True,
        "attention": 0.9,
        "head_state": [None] * len(rows),  # schema 3's head state and static columns: not read here
        "head_readable": False,
        "static": False,
        **{f"p_{x}": 1 / 7 for x in FER2013_LABELS},
        "emotion": "neutral",
        "model_version": "m1",
    }
    per_frame = [sum(f == i for _, f in rows) for i in range(n_frames)]
    frames = {**where, "frame_index": list(range(n_frames)), "pts_s": [i * 0.5 for i in range(n_frames)]}
    frames["n_faces"] = per_frame
    video = {f.name: None for f in records.VIDEOS_SCHEMA}
    video.update(
        where,
        path=f"/inbox/{course}/{day}_{video_id[:4]}.mp4",
        meta_source="path",
        status="done",
        sample_fps=2.0,
        sampled_frames=n_frames,
        faces=len(rows),
        students=len({s for s, _ in rows if s is not None}),
        model_version="m1",
        pipeline_version="0.1.0",
        config_hash=CHASH,
        config_json="{}",
        run_id="r1",
    )
    speech = {**where, "start_s": [0.0, 1.0], "end_s": [0.4, 1.5], "p_speech": [0.9, 0.8]}  # 2 stretches
    for name, cols, stem in (
        ("faces", faces, f"{video_id}_{CHASH}"),
        ("frames", frames, f"{video_id}_{CHASH}"),
        ("speech", speech, f"{video_id}_{CHASH}"),
        ("videos", video, f"{video_id}_{CHASH}_r1"),
    ):
        records.write_partition(out, name, records.make_table(name, cols), course, day, stem)


@pytest.fixture
def dataset(tmp_path) -> Path:
    out = tmp_path / "out"
    add_video(out, vid(1), "ML101", TODAY - timedelta(days=3), {"alice": [0, 1, 2], "bob": [1, 3], None: [2]})
    add_video(out, vid(2), "ML101", TODAY - timedelta(days=400), {"alice": [0], "carol": [0, 1]})
    add_video(out, vid(3), "BIO-2", TODAY - timedelta(days=3), {"alice": [1, 2], "dave": [3]})
    return out


def tables(out: Path) -> dict[str, list[dict]]:
    """Every table, rows sorted: the whole dataset as plain data."""
    key = lambda r: tuple(str(r.get(k)) for k in ("video_id", "frame_index", "track_id", "run_id"))
    return {name: sorted(records.read(out, name).to_pylist(), key=key) for name in records.SCHEMAS}


def hidden_files(out: Path) -> list[Path]:
    return [p for p in out.rglob(".*") if p.is_file()]


def check_counts_match(out: Path) -> None:
    """frames.n_faces and videos.faces/students agree with the faces rows."""
    faces = records.read(out, "faces").to_pylist()
    for fr in records.read(out, "frames").to_pylist():
        n = sum(f["video_id"] == fr["video_id"] and f["frame_index"] == fr["frame_index"] for f in faces)
        assert fr["n_faces"] == n, fr
    for v in records.read(out, "videos").to_pylist():
        mine = [f for f in faces if f["video_id"] == v["video_id"]]
        assert v["faces"] == len(mine)
        assert v["students"] == len({f["student_id"] for f in mine if f["student_id"] is not None})


def test_the_fixture_is_consistent(dataset):
    check_counts_match(dataset)
    assert records.read(dataset, "faces").num_rows == 6 + 3 + 3


def test_forget_student_everywhere_leaves_no_trace_and_counts_follow(dataset, capsys, monkeypatch):
    from fer_stream import identity

    calls = []
    monkeypatch.setattr(identity, "forget_student", lambda *a: calls.append(a) or 2)  # the store's part
    before = tables(dataset)
    assert cli.main(["forget", "--output", str(dataset), "--student", "alice", "--no-reports"]) == 0
    assert "removed rows 6 faces" in capsys.readouterr().out
    assert calls == [(dataset.resolve(), "alice", None)]
    after = tables(dataset)
    for name, rows in after.items():
        assert all(r.get("student_id") != "alice" for r in rows), name
        assert "alice" not in json.dumps(rows, default=str)
    # everything else is untouched: other students' rows, stray faces, every frame and video row
    assert after["faces"] == [r for r in before["faces"] if r["student_id"] != "alice"]
    assert len(after["frames"]) == len(before["frames"]) and len(after["videos"]) == len(before["videos"])
    check_counts_match(dataset)
    assert hidden_files(dataset) == []  # no temporary file left
    assert not (dataset / retention.JOURNAL).exists() and not (dataset / layout.LOCK_FILE).exists()
    # the run record says what was removed; it has the keys of every run record (as nightly's)
    (rec,) = [json.loads(p.read_text()) for p in (dataset / "runs").glob("*.json")]
    assert rec["kind"] == "forget" and rec["status"] == "finished"
    assert set(rec) >= set(runlog.new_record("forget", dataset)) and runlog.RUN_ID_RE.fullmatch(rec["run_id"])
    # speech has no student in it: nothing of it goes with a student
    assert rec["removed"][0]["rows"] == {"faces": 6, "frames": 0, "speech": 0, "videos": 0}
    assert rec["removed"][0]["courses"] == ["BIO-2", "ML101"] and rec["removed"][0]["identity_entries"] == 2
    # remembered, so that a later night does not bring the student back: by salted digest, not by id
    (stone,) = retention.load_tombstones(dataset)["students"]
    salt = store.erasure_salt(dataset)
    assert stone["student_id"] == retention.ErasedStudent(store.student_digest("alice", salt))
    assert "alice" not in (dataset / layout.TOMBSTONES).read_text()


def test_forget_student_in_one_course_only(dataset):
    assert cli.main(["forget", "--output", str(dataset), "--student", "alice", "--course", "BIO-2"]) == 0
    faces = records.read(dataset, "faces")
    alice = faces.filter(pc.field("student_id") == "alice")
    assert set(alice.column("course").to_pylist()) == {"ML101"} and alice.num_rows == 4
    check_counts_match(dataset)


def test_forget_video_removes_its_files_from_every_table(dataset):
    before = tables(dataset)
    forget = ["forget", "--output", str(dataset), "--no-reports", "--video"]
    assert cli.main([*forget, "0101"]) == exits.ERROR  # too short
    assert cli.main([*forget, "0f" * 5]) == exits.ERROR  # no such video
    assert tables(dataset) == before
    # the first 8+ hex digits do, as reports and student ids show them
    assert cli.main(["forget", "--output", str(dataset), "--video", vid(1)[:8], "--no-reports"]) == 0
    after = tables(dataset)
    for name in records.SCHEMAS:
        assert all(r["video_id"] != vid(1) for r in after[name]), name
        assert after[name] == [r for r in before[name] if r["video_id"] != vid(1)], name
        assert not list((dataset / name).rglob(f"{vid(1)}*")), name
    assert vid(1) in retention.load_tombstones(dataset)["videos"]
    assert hidden_files(dataset) == []


def test_retention_removes_old_lectures_runs_and_reports(dataset):
    old_day = TODAY - timedelta(days=400)
    (dataset / "reports" / str(old_day)).mkdir(parents=True)
    (dataset / "reports" / str(old_day) / "ML101.html").write_text("<html>old</html>")
    (dataset / "reports" / str(TODAY)).mkdir(parents=True)
    keep = dataset / "reports" / str(TODAY) / "BIO-2.html"
    keep.write_text("<html>new</html>")
    r = retention.forget_older_than(dataset, 365, today=TODAY)
    assert r.rows == {"faces": 3, "frames": 4, "speech": 2, "videos": 1} and r.video_ids == [vid(2)]
    after = tables(dataset)
    for name in records.SCHEMAS:
        assert {x["lecture_date"] for x in after[name]} == {TODAY - timedelta(days=3)}, name
        assert not list((dataset / name).glob(f"*/lecture_date={old_day}")), name  # folders too
    assert not (dataset / "reports" / str(old_day)).exists() and keep.exists()
    # ML101's report files anywhere are stale now (a run renders them again); BIO-2's stay
    assert retention.course_report_files(dataset, "ML101") == []
    check_counts_match(dataset)
    again = retention.forget_older_than(dataset, 365, today=TODAY)
    assert again.rows == {"faces": 0, "frames": 0, "speech": 0, "videos": 0}


def test_a_crash_before_the_swap_leaves_the_old_data(dataset, monkeypatch):
    before = tables(dataset)
    calls = []
    real = retention._Change.replace

    def dies_on_third_file(self, path, table):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt  # "kill": phase 1 is cut short after two rewritten files
        real(self, path, table)

    monkeypatch.setattr(retention._Change, "replace", dies_on_third_file)
    with pytest.raises(KeyboardInterrupt):
        retention.forget_student(dataset, "alice")
    assert tables(dataset) == before
    assert retention.recover(dataset) is None and hidden_files(dataset) == []
    # a real kill leaves the temporaries of phase 1: recover deletes them, the data stays as it was
    folder = next((dataset / "faces").glob("*/*"))
    (folder / f".{vid(1)}_{CHASH}.0123abcd{retention._TMP_SUFFIX}").write_bytes(b"half a parquet")
    # and a journal that was being written (ops.atomic.write_atomic's temporary): never applied
    (dataset / f".{retention.JOURNAL}.k1ll3d.tmp").write_text('{"ops": [["delete", "faces"]')
    assert retention.recover(dataset) == "discarded"
    assert hidden_files(dataset) == [] and tables(dataset) == before


def test_a_crash_during_the_swap_is_finished_by_recover(dataset, tmp_path, monkeypatch):
    import shutil

    clean = tmp_path / "clean"
    shutil.copytree(dataset, clean)
    retention.forget_student(clean, "alice", remember=False)
    real = retention._apply
    applied = []

    def dies_after_two(output, op):
        if len(applied) == 2:
            raise SystemExit(137)  # killed between two renames of phase 2
        applied.append(op)
        real(output, op)

    monkeypatch.setattr(retention, "_apply", dies_after_two)
    with pytest.raises(SystemExit):
        retention.forget_student(dataset, "alice", remember=False)
    assert (dataset / retention.JOURNAL).exists()
    monkeypatch.setattr(retention, "_apply", real)
    # a forget (or nightly) run starts by recovering: the swap is completed
    assert retention.recover(dataset) == "completed"
    assert tables(dataset) == tables(clean)
    assert hidden_files(dataset) == [] and not (dataset / retention.JOURNAL).exists()


def test_forget_waits_for_no_one_while_a_run_holds_the_lock(dataset, capsys):
    lock = OutputLock(dataset, "nightly", "r-test")
    lock.acquire()
    try:
        before = tables(dataset)
        code = cli.main(["forget", "--output", str(dataset), "--student", "alice"])
        assert code == exits.LOCKED == 75
        err = capsys.readouterr().err
        assert "another fer-stream run holds" in err and "r-test" in err
        assert tables(dataset) == before
    finally:
        lock.release()
    assert not (dataset / layout.LOCK_FILE).exists()


def test_forget_bad_arguments_and_missing_records(tmp_path, capsys):
    for bad in (["--video", vid(1), "--course", "X"], ["--student", "s1", "--course", "../x"]):
        with pytest.raises(SystemExit) as e:
            cli.main(["forget", "--output", str(tmp_path), *bad])
        assert e.value.code == exits.USAGE == 2
    assert cli.main(["forget", "--output", str(tmp_path / "none"), "--video", vid(1)]) == exits.ERROR
    assert "no folder" in capsys.readouterr().err
    # a folder without records: nothing to erase, said with its own code; no run, no record
    assert cli.main(["forget", "--output", str(tmp_path), "--video", vid(1)]) == exits.NO_DATA == 4
    assert "holds no records" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_erasing_lectures_also_erases_the_descriptors_kept_from_them(dataset):
    import numpy as np

    from fer_stream import identity

    rng = np.random.default_rng(0)
    path = identity.course_dir(dataset, "ML101") / identity.PSEUDONYM_FILE
    old_day = TODAY - timedelta(days=400)
    rows = [(vid(1), TODAY - timedelta(days=3)), (vid(2), old_day), (vid(2), old_day), ("", "")]
    gallery = identity.Gallery(
        np.array(["p1", "p2", "p3", "enrolled"]),
        rng.normal(size=(4, identity.DIM)).astype(np.float32),
        np.array([v for v, _ in rows]),
        np.array([str(d) for _, d in rows]),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    identity.save_gallery(path, gallery, next_number=4)
    r = retention.forget_older_than(dataset, 365, today=TODAY)
    assert r.identity_entries == 2
    assert identity.load_gallery(path)[0].video_id.tolist() == [vid(1), ""]  # enrolment rows stay
    r = retention.forget_video(dataset, vid(1))
    assert r.identity_entries == 1 and identity.load_gallery(path)[0].ids.tolist() == ["enrolled"]


# --------------------------------------------------------------------------------------------------
# Issue 24 (item 4): an unknown student is not "forgotten"; what remembers an erasure names no one


def test_forget_of_an_unknown_student_exits_4_and_remembers_nothing(dataset, capsys):
    before = tables(dataset)
    for args in (["--student", "nobody"], ["--student", "carol", "--course", "BIO-2"]):  # carol: ML101 only
        assert cli.main(["forget", "--output", str(dataset), "--no-reports", *args]) == exits.NO_DATA
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "no student" in err and "nothing done" in err, err
    assert tables(dataset) == before
    assert not (dataset / layout.TOMBSTONES).exists()
    recs = [json.loads(p.read_text()) for p in (dataset / "runs").glob("*.json")]
    assert len(recs) == 2 and all(r["status"] == "finished" and r["nothing_to_forget"] for r in recs)
    assert all(r["removed"] == [] for r in recs)


def test_a_student_only_in_the_identity_store_is_forgotten(dataset):
    from fer_stream import identity

    seats = identity.SeatMap(("erin", "bob"), [[0, 0, 0.5, 1], [0.5, 0, 1, 1]])
    identity.save_seat_map(dataset, "ML101", seats)
    assert cli.main(["forget", "--output", str(dataset), "--student", "erin", "--no-reports"]) == exits.OK
    assert identity.stored_seat_map(dataset, "ML101").student_ids == ("bob",)
    assert len(retention.load_tombstones(dataset)["students"]) == 1


def test_erasure_files_are_owner_only_and_hold_no_id(dataset, monkeypatch):
    import os
    import stat

    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)
    old_umask = os.umask(0o022)  # a umask that leaves files world-readable unless a mode is set
    try:
        argv = ["fer-stream", "forget", "--output", str(dataset), "--student", "alice", "--no-reports"]
        monkeypatch.setattr("sys.argv", argv)
        assert cli.main(argv[1:]) == exits.OK
        argv = ["fer-stream", "forget", "--output", str(dataset), "--student=bob", "--course", "ML101"]
        monkeypatch.setattr("sys.argv", argv)
        assert cli.main([*argv[1:], "--no-reports"]) == exits.OK
    finally:
        os.umask(old_umask)
    stones = dataset / layout.TOMBSTONES
    run_files = sorted((dataset / "runs").glob("*.json"))
    assert len(run_files) == 2
    assert mode(stones) == 0o600 and all(mode(p) == 0o600 for p in run_files)
    salt_file = dataset / "identity" / store.SALT_FILE
    assert mode(salt_file) == 0o600 and mode(salt_file.parent) == 0o700 and len(salt_file.read_bytes()) == 32
    for path in (stones, *run_files):
        text = path.read_text()
        assert "alice" not in text and "bob" not in text, path
    salt = store.erasure_salt(dataset)
    argvs = [json.loads(p.read_text())["argv"] for p in run_files]
    assert store.student_digest("alice", salt) in argvs[0] + argvs[1]
    assert f"--student={store.student_digest('bob', salt)}" in argvs[0] + argvs[1]
    # the digest still finds the student's rows: a lecture analysed again is cleaned as nightly does
    add_video(dataset, vid(4), "ML101", TODAY, {"alice": [0, 1], "frank": [2]})
    stones_now = retention.load_tombstones(dataset)["students"]
    assert [s["course"] for s in stones_now] == [None, "ML101"]
    for stone in stones_now:
        retention.forget_student(
            dataset, stone["student_id"], stone["course"], video_ids=[vid(4)], remember=False
        )
    left = records.read(dataset, "faces").filter(pc.field("video_id") == vid(4)).column("student_id")
    assert left.to_pylist() == ["frank"]
    check_counts_match(dataset)


def test_an_older_forgotten_json_with_ids_in_clear_is_hashed(dataset):
    stones = dataset / layout.TOMBSTONES
    stones.write_text(
        json.dumps({"videos": {}, "students": [{"student_id": "dave", "course": None, "at": "x"}]})
    )
    (stone,) = retention.load_tombstones(dataset)["students"]
    assert stone["student_id"] == retention.ErasedStudent(
        store.student_digest("dave", store.erasure_salt(dataset))
    )
    assert cli.main(["forget", "--output", str(dataset), "--student", "alice", "--no-reports"]) == exits.OK
    assert "dave" not in stones.read_text() and len(retention.load_tombstones(dataset)["students"]) == 2
