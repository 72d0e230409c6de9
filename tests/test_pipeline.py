"""The Ray pipeline: inputs and course/date metadata (plain Python), then whole runs on an embedded
Ray (records, failures, idempotency, segments, actor restarts) and through `ray job submit`."""

import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import av
import numpy as np
import pyarrow.compute as pc
import pytest
import ray

from fer_stream import inputs, pipeline, records
from fer_stream.cli import analyze as job  # jobs/analyze_lectures.py is its shim
from fer_stream.config import ModelInfo, PipelineConfig, config_hash
from fer_stream.labels import FER2013_LABELS
from fer_stream.models import build, checkpoint
from tests.helpers import ROOT, ray_head, shared

# --------------------------------------------------------------------------------------------------
# Helpers and fixtures


def write_clip(path: Path, seconds: float = 1.0, fps: int = 10, size=(160, 120)) -> Path:
    """A tiny H.264 clip of a moving gradient (no faces)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(int(seconds * fps)):
            img = np.zeros((h, w, 3), np.uint8)
            img[..., 0] = (np.arange(w)[None, :] + 7 * i) % 256
            img[..., 1] = np.arange(h)[:, None] % 256
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def smoke_weights(tmp_path_factory) -> Path:
    """Untrained 'smoke' network weights: the tests check records, not accuracy."""
    path = tmp_path_factory.mktemp("weights") / "smoke.pt"
    meta = checkpoint.make_meta(FER2013_LABELS, 0.5, 0.25, version="test-smoke")
    return checkpoint.save(path, build("smoke").eval(), meta)


@pytest.fixture
def config(smoke_weights) -> PipelineConfig:
    return PipelineConfig(weights=str(smoke_weights), sample_fps=2.0)


def files_of(output: Path) -> dict[str, tuple[int, int]]:
    """Every file under output: relative path -> (inode, mtime_ns), to tell rewrites apart."""
    return {
        str(p.relative_to(output)): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in output.rglob("*")
        if p.is_file() and "demo_input" not in p.parts
    }


def video_rows(output: Path) -> list[dict]:
    return records.read(output, "videos").to_pylist()


# --------------------------------------------------------------------------------------------------
# Inputs and metadata (no Ray)


def test_discover_videos_folders_globs_and_files(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ["a/x.mp4", "a/b/y.MOV", "a/notes.txt", "a/.hidden.mp4", "a/b/videos.csv"]:
        (tmp_path / name).write_bytes(b"")
    root = (tmp_path / "a").resolve()
    found = inputs.discover_videos([tmp_path / "a"])
    assert [p.relative_to(root).as_posix() for p, _ in found] == ["b/y.MOV", "x.mp4"]
    assert all(r == root for _, r in found)
    # a glob, a named file of any extension, duplicates collapse
    found = inputs.discover_videos(
        [str(tmp_path / "a" / "*.mp4"), tmp_path / "a" / "notes.txt", root / "x.mp4"]
    )
    assert [p.name for p, _ in found] == ["notes.txt", "x.mp4"]
    with pytest.raises(FileNotFoundError):
        inputs.discover_videos([tmp_path / "missing.mp4"])
    with pytest.raises(FileNotFoundError):
        inputs.discover_videos([str(tmp_path / "*.mkv")])


def test_course_and_date_from_sidecars_path_or_fallback(tmp_path):
    v = tmp_path / "in" / "ML101" / "2024-03-05_intro.mp4"
    v.parent.mkdir(parents=True)
    v.write_bytes(b"")
    root = tmp_path / "in"
    assert inputs.lecture_metadata(v, root) == inputs.LectureMeta("ML101", date(2024, 3, 5), "path")
    assert inputs.lecture_metadata(v, root).warning == ""  # no fallback, nothing to say
    # videos.csv in a parent folder up to the root; paths relative to the csv
    (root / "videos.csv").write_text(
        "path,course,lecture_date\nML101/2024-03-05_intro.mp4,BIO-2,2024-04-01\n"
    )
    assert inputs.lecture_metadata(v, root) == inputs.LectureMeta("BIO-2", date(2024, 4, 1), "csv")
    # <video>.json next to the video wins; a missing key falls through to the next source
    v.with_suffix(".json").write_text(json.dumps({"course": "CHEM1"}))
    assert inputs.lecture_metadata(v, root) == inputs.LectureMeta("CHEM1", date(2024, 4, 1), "json+csv")
    Path(str(v) + ".json").write_text(json.dumps({"lecture_date": "2023-12-24x"}))
    with pytest.raises(inputs.MetadataError, match="YYYY-MM-DD"):
        inputs.lecture_metadata(v, root)
    # no convention: course unknown, date of the file's mtime
    w = tmp_path / "in" / "Some Folder" / "talk.mp4"
    w.parent.mkdir()
    w.write_bytes(b"")
    os.utime(w, (1_700_000_000, 1_700_000_000))
    meta = inputs.lecture_metadata(w, root)
    assert (meta.course, meta.lecture_date, meta.source) == (
        "unknown",
        date.fromtimestamp(1_700_000_000),
        "fallback",
    )
    # a dated name in a folder that is no valid course name: only the date is taken
    assert meta.warning.startswith("course 'unknown' and the file's modification date: no sidecar")
    x = w.with_name("2024-05-06.mp4")
    x.write_bytes(b"")
    meta = inputs.lecture_metadata(x, root)
    assert (meta.course, meta.lecture_date, meta.source) == ("unknown", date(2024, 5, 6), "path+fallback")
    assert (
        meta.warning
        == "course 'unknown': its folder 'Some Folder' is no valid course name (1-64 of A-Z a-z 0-9 . _ -)"
    )


def test_segments_cover_the_video():
    assert pipeline.plan_segments(0.0, 600) == [(0.0, None)]
    assert pipeline.plan_segments(5.0, 600) == [(0.0, None)]
    assert pipeline.plan_segments(19.7, 10) == [(0.0, 9.85), (9.85, None)]
    segs = pipeline.plan_segments(7200.0, 600)
    assert len(segs) == 12 and segs[-1][1] is None and all(a[1] == b[0] for a, b in zip(segs, segs[1:]))
    # idle workers: a lone lecture is cut for all of them, while each piece stays >= 30 s
    assert pipeline.plan_segments(60.0, 600, min_parts=2) == [(0.0, 30.0), (30.0, None)]
    assert len(pipeline.plan_segments(3000.0, 600, min_parts=16)) == 16
    assert len(pipeline.plan_segments(100.0, 600, min_parts=16)) == 3  # 33 s each, not 16 x 6 s
    assert pipeline.plan_segments(59.0, 600, min_parts=2) == [(0.0, None)]
    assert len(pipeline.plan_segments(7200.0, 600, min_parts=4)) == 12  # segment_s still caps the length


def test_config_hash_covers_what_changes_records_only(smoke_weights):
    model = ModelInfo.load(str(smoke_weights))
    h = lambda **kw: config_hash(PipelineConfig(**kw).analysis(model))
    assert h() == h(batch_size=64, segment_s=30, classifiers=3)  # how, not what
    assert h() != h(sample_fps=1.0) and h() != h(min_face_px=40) and h() != h(detect_every_s=0)
    assert h(detect_every_s=2.0) == h(detect_every_s=2.2)  # both: one full detection in 4 frames at 2 fps
    assert len(h()) == 16


def test_weights_must_have_the_fer2013_labels(tmp_path):
    meta = checkpoint.make_meta(("a", "b", "c", "d", "e", "f", "g"), 0.5, 0.25, version="x")
    path = checkpoint.save(tmp_path / "w.pt", build("smoke", num_classes=7).eval(), meta)
    with pytest.raises(ValueError, match="FER2013"):
        ModelInfo.load(str(path))


# --------------------------------------------------------------------------------------------------
# Runs on an embedded Ray


def test_demo_clip_records_then_rerun_is_a_no_op_and_force_rewrites(local_ray, config, tmp_path):
    from fer_stream.demo import make_demo_clip

    clip = make_demo_clip(tmp_path / "in" / "demo" / "2024-03-05_lecture.mp4", seconds=2.0, fps=10)
    out = tmp_path / "out"
    s = pipeline.run([clip], out, config, progress=False)
    assert s.outcome == "ok" and [r.status for r in s.results] == ["done"], s.describe()

    (row,) = video_rows(out)
    vid = row["video_id"]
    assert row["status"] == "done" and row["course"] == "demo" and row["lecture_date"] == date(2024, 3, 5)
    assert len(vid) == 64 and vid == inputs.content_hash(clip)
    frames = records.read(out, "frames")
    faces = records.read(out, "faces")
    # 2 s at 2 fps: t = 0, 0.5, 1, 1.5
    assert frames.num_rows == row["sampled_frames"] == 4
    assert frames.column("pts_s").to_pylist() == [0.0, 0.5, 1.0, 1.5]
    assert faces.num_rows == row["faces"] == sum(frames.column("n_faces").to_pylist())
    probs = np.stack([faces.column(f"p_{x}").to_numpy() for x in FER2013_LABELS], 1)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-4)
    readable = faces.column("emotion_readable").to_pylist()  # big enough and turned to the camera
    assert any(readable) and faces.column("emotion").to_pylist() == [
        FER2013_LABELS[i] if ok else None for i, ok in zip(probs.argmax(1), readable)
    ]
    sids = set(faces.column("student_id").drop_null().to_pylist())
    assert 14 <= len(sids) == row["students"] <= 19  # 18 seated + the astronaut; tiny faces may be missed
    assert all(re.fullmatch(rf"{vid[:8]}-s\d{{3}}", s) for s in sids)
    assert set(faces.column("model_version").to_pylist()) == {"test-smoke"}
    assert json.loads(row["config_json"])["sample_fps"] == 2.0
    before = files_of(out)
    assert sorted(Path(p).parts[0] for p in before) == ["faces", "frames", "videos"]

    # rerun: nothing analysed, nothing written
    s = pipeline.run([clip], out, config, progress=False)
    assert [r.status for r in s.results] == ["skipped"] and s.outcome == "ok"
    assert files_of(out) == before

    # --force: the same two record files, rewritten; one more videos/ row (this run's)
    s = pipeline.run([clip], out, config, force=True, progress=False)
    assert [r.status for r in s.results] == ["done"]
    after = files_of(out)
    for name in before:
        if name.startswith(("faces", "frames")):
            assert after[name] != before[name], name  # a new file (atomic replace) under the same name
    assert len(after) == len(before) + 1
    assert records.read(out, "faces").num_rows == faces.num_rows  # no duplicates
    assert [r["status"] for r in video_rows(out)] == ["done", "done"]


def test_records_do_not_depend_on_batching(local_ray, config, tmp_path):
    """Tiny batches, one in flight: every probability row still belongs to its face row."""
    from fer_stream.demo import make_demo_clip

    clip = make_demo_clip(tmp_path / "demo.mp4", seconds=1.0, fps=10)
    small = dataclasses.replace(config, batch_size=5, batches_in_flight=1)
    for name, cfg in (("big", config), ("small", small)):
        assert pipeline.run([clip], tmp_path / name, cfg, progress=False).outcome == "ok"
    big, small = records.read(tmp_path / "big", "faces"), records.read(tmp_path / "small", "faces")
    assert big.num_rows == small.num_rows > 10
    p = lambda t: np.stack([t.column(f"p_{x}").to_numpy() for x in FER2013_LABELS], 1)
    np.testing.assert_allclose(p(big), p(small), atol=1e-5)


def test_single_face_clip_is_one_student(local_ray, config, tmp_path):
    s = pipeline.run([shared("videos/single_face.mp4")], tmp_path, config, progress=False)
    assert s.outcome == "ok", s.describe()
    faces, frames = records.read(tmp_path, "faces"), records.read(tmp_path, "frames")
    assert frames.num_rows == 5  # 2.4 s at 2 fps
    assert len(set(faces.column("student_id").to_pylist())) == 1  # one key, never null
    n = np.array(frames.column("n_faces").to_pylist())
    assert (n > 0).mean() >= 0.6 and n.max() == 1


def test_no_face_clip_is_done_with_zero_faces(local_ray, config, tmp_path):
    s = pipeline.run([shared("videos/no_face.mp4")], tmp_path, config, progress=False)
    (row,) = video_rows(tmp_path)
    assert s.outcome == "ok" and row["status"] == "done" and row["faces"] == 0 and row["students"] == 0
    assert records.read(tmp_path, "faces").num_rows == 0  # an empty file: "no faces" is recorded
    assert records.read(tmp_path, "frames").num_rows == row["sampled_frames"] >= 7


def test_bad_file_fails_typed_the_batch_goes_on_and_the_exit_code_says_so(
    local_ray, smoke_weights, tmp_path, capsys
):
    inp = tmp_path / "in"
    write_clip(inp / "ML101" / "2024-03-05_a.mp4")
    (inp / "notes.mp4").write_text("this is a text file, not a video\n")
    write_clip(inp / "b.mp4", seconds=0.5)
    (inp / "b.json").write_text('{"lecture_date": "March 5th"}')  # a bad sidecar fails its video only
    args = ["--input", str(inp), "--weights", str(smoke_weights), "--quiet"]
    assert job.main([*args, "--output", str(tmp_path / "out")]) == 3
    assert "1 done, 0 skipped, 2 failed" in capsys.readouterr().out
    rows = {Path(r["path"]).name: r for r in video_rows(tmp_path / "out")}
    assert rows["2024-03-05_a.mp4"]["status"] == "done"
    bad = rows["notes.mp4"]
    assert (bad["status"], bad["error_type"]) == ("failed", "NotAVideoError")
    assert "notes.mp4" in bad["error_message"] and bad["video_id"] == inputs.content_hash(inp / "notes.mp4")
    assert (rows["b.mp4"]["error_type"], rows["b.mp4"]["course"]) == ("MetadataError", "unknown")
    assert "March 5th" in rows["b.mp4"]["error_message"]
    # the failures are not "done": a rerun tries them again, and skips the good one
    assert job.main([*args, "--output", str(tmp_path / "out")]) == 3
    assert "0 done, 1 skipped, 2 failed" in capsys.readouterr().out
    # --strict: the first failure aborts the run, exit 1
    assert job.main([*args, "--output", str(tmp_path / "strict"), "--strict"]) == 1
    assert "aborted" in capsys.readouterr().out
    # whichever bad file's inspection came back first (they run in parallel) is the recorded failure
    assert {r["error_type"] for r in video_rows(tmp_path / "strict")} & {"NotAVideoError", "MetadataError"}
    # a bad run (no such weights) is an error before any video
    assert job.main([*args[:2], "--output", str(tmp_path / "x"), "--weights", str(tmp_path / "no.pt")]) == 1


def _unwritable_outputs(tmp_path: Path) -> list[Path]:
    """Output folders this process cannot write: under a regular file (even root cannot), and a
    0o500 folder when not running as root (root passes permission checks)."""
    (tmp_path / "a_file").write_text("not a folder\n")
    cases = [tmp_path / "a_file" / "records"]
    if os.geteuid() != 0:
        ro = tmp_path / "read_only"
        ro.mkdir(mode=0o500)
        cases.append(ro)
    return cases


def test_unwritable_output_is_one_line_and_exit_1_before_ray_starts(
    smoke_weights, tmp_path, capsys, monkeypatch
):
    def no_ray(*a, **kw):
        raise AssertionError("Ray must not start for an output that cannot be written")

    monkeypatch.setattr(pipeline, "connect", no_ray)  # what the command calls
    monkeypatch.setitem(pipeline.run.__globals__, "connect", no_ray)  # what pipeline.run calls
    clip = write_clip(tmp_path / "in" / "a.mp4")
    for out in _unwritable_outputs(tmp_path):
        args = ["--input", str(clip), "--output", str(out), "--weights", str(smoke_weights), "--quiet"]
        assert job.main(args) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(out) in err and "Traceback" not in err
        with pytest.raises(OSError, match="cannot write into the output folder") as e:
            pipeline.run([str(clip)], out)  # the library says the same, also before Ray
        assert type(e.value).__name__ == "NotWritableError"


def test_damaged_video_is_done_but_incomplete_and_odd_course_folders_are_warned(
    local_ray, smoke_weights, tmp_path, capsys
):
    from tests.test_video import damage_bitstream, encode

    inp = tmp_path / "in"
    for folder in ("ML101", "ML'101\"x", "..ML"):
        (inp / folder).mkdir(parents=True)
    damaged = damage_bitstream(encode(inp / "ML101" / "2024-03-05_damaged.mkv", n=150, gop=25))
    encode(inp / "ML101" / "2024-03-05_intact.mkv", n=150, gop=25)
    write_clip(inp / "ML'101\"x" / "2024-03-06_a.mp4")
    write_clip(inp / "..ML" / "2024-03-07_b.mp4", seconds=0.5)
    args = [
        "--input",
        str(inp),
        "--weights",
        str(smoke_weights),
        "--quiet",
        "--output",
        str(tmp_path / "out"),
    ]
    assert job.main(args) == 0  # damaged and warned videos are done: warnings, not failures
    out = capsys.readouterr().out
    assert "4 done (1 incomplete), 0 skipped, 0 failed" in out
    assert re.search(rf"WARNING {re.escape(str(damaged))}: incomplete: .*frames missing", out)
    rows = {Path(r["path"]).name: r for r in video_rows(tmp_path / "out")}
    bad, good = rows["2024-03-05_damaged.mkv"], rows["2024-03-05_intact.mkv"]
    assert bad["status"] == "done" and bad["incomplete"] is True and bad["lost_s"] == 0.0
    assert bad["missing_frames"] > 0 and bad["damaged_frames"] > 0 and "incomplete" in bad["warnings"]
    assert good["incomplete"] is False and good["warnings"] is None
    assert (good["missing_frames"], good["damaged_frames"], good["decode_errors"]) == (0, 0, 0)
    # A course folder that is no valid course name: filed under 'unknown', dated by the file name,
    # and said so in the summary and in videos.warnings (not silently).
    for name, folder, day in (
        ("2024-03-06_a.mp4", "ML'101\"x", date(2024, 3, 6)),
        ("2024-03-07_b.mp4", "..ML", date(2024, 3, 7)),
    ):
        row = rows[name]
        assert (row["course"], row["lecture_date"], row["meta_source"]) == ("unknown", day, "path+fallback")
        assert repr(folder) in row["warnings"] and "no valid course name" in row["warnings"]
        assert f"WARNING {inp / folder / name}: filed under unknown {day}" in out


def test_two_segments_give_the_same_frames_and_students_as_one(local_ray, config, tmp_path):
    clip = shared("videos/WolfgangLanger_Pexels.mp4")  # 19.7 s
    one = PipelineConfig(weights=config.weights, sample_fps=1.0, segment_s=600)
    two = PipelineConfig(weights=config.weights, sample_fps=1.0, segment_s=10)
    assert pipeline.run([clip], tmp_path / "one", one, progress=False).outcome == "ok"
    assert pipeline.run([clip], tmp_path / "two", two, progress=False).outcome == "ok"
    (r1,), (r2,) = video_rows(tmp_path / "one"), video_rows(tmp_path / "two")
    assert (r1["segments"], r2["segments"]) == (1, 2)
    assert r1["config_hash"] == r2["config_hash"]  # segmenting is how, not what
    f1, f2 = records.read(tmp_path / "one", "frames"), records.read(tmp_path / "two", "frames")
    assert f1.column("frame_index").to_pylist() == f2.column("frame_index").to_pylist()  # seam-free
    assert r1["faces"] == r2["faces"] and r1["students"] == r2["students"] == 1
    tracks = records.read(tmp_path / "two", "faces").column("track_id").to_numpy()
    assert tracks.min() < pipeline.SEGMENT_ID_STRIDE < tracks.max()  # both segments found her
    assert len(set(records.read(tmp_path / "two", "faces").column("student_id").to_pylist())) == 1


def test_a_run_killed_mid_batch_then_rerun_leaves_each_record_once(local_ray, smoke_weights, tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    shutil.copy(shared("videos/single_face.mp4"), inp / "a.mp4")
    shutil.copy(shared("videos/WolfgangLanger_Pexels.mp4"), inp / "b.mp4")  # 19.7 s: still running
    # 8 fps: b's 158 frames keep it running well after a's 20 are written, even on an idle machine
    # (at the default rate both could finish between two polls: seen once in CI)
    args = ["--input", str(inp), "--output", str(out), "--weights", str(smoke_weights), "--quiet"]
    args += ["--sample-fps", "8"]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    # its own embedded Ray, in its own process group: SIGKILL takes the driver and its Ray down
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "jobs" / "analyze_lectures.py"), *args, "--num-cpus", "2"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while not list((out / "videos").rglob("*.parquet")):  # the first video is done
            assert proc.poll() is None and time.monotonic() < deadline, "the run ended before the kill"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    killed = [r["path"] for r in video_rows(out)]
    assert job.main(args) == 0  # the rerun (on this test's Ray) finishes the batch
    rows = video_rows(out)
    assert sorted(r["path"] for r in rows if r["status"] == "done") == sorted(str(p) for p in inp.iterdir())
    assert len(rows) == 2 and len(killed) == 1  # one row per video: the killed run's, then the rerun's
    frames, faces = records.read(out, "frames"), records.read(out, "faces")
    keys = list(zip(frames.column("video_id").to_pylist(), frames.column("frame_index").to_pylist()))
    assert len(keys) == len(set(keys))  # no duplicates
    for r in rows:  # no loss: each video's records are all there
        assert frames.filter(pc.field("video_id") == r["video_id"]).num_rows == r["sampled_frames"] > 0
        assert faces.filter(pc.field("video_id") == r["video_id"]).num_rows == r["faces"]
    visible = [p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")]
    tables = sorted({p.relative_to(out).parts[0] for p in visible})
    assert tables == ["faces", "frames", "speech", "videos"] and len(visible) == 2 * 4  # 1 per video each


def _segment_workers() -> list:
    """Ray worker processes of this test's embedded Ray that are running a segment task now."""
    try:
        import psutil
    except ImportError:  # Ray ships its own copy
        sys.path.append(str(Path(ray.__file__).parent / "thirdparty_files"))
        import psutil
    found = []
    for p in psutil.Process().children(recursive=True):  # never another session's Ray
        try:
            if p.cmdline()[:1] == ["ray::analyze_segment"]:  # Ray's process title for the task
                found.append(p)
        except psutil.Error:
            pass
    return found


def test_a_killed_video_worker_is_retried_and_the_records_equal_a_clean_run(local_ray, config, tmp_path):
    clip = shared("videos/WolfgangLanger_Pexels.mp4")
    cfg = dataclasses.replace(config, sample_fps=4.0, detect_every_s=0)  # ~80 frames: time to kill it
    assert pipeline.run([clip], tmp_path / "clean", cfg, progress=False).outcome == "ok"
    killed: list[int] = []

    def kill_the_first_segment_worker():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for p in _segment_workers():
                time.sleep(0.5)  # mid-segment: it has decoded and sent crops by now
                if p.cmdline()[:1] == ["ray::analyze_segment"]:
                    p.kill()
                    killed.append(p.pid)
                    return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_the_first_segment_worker)
    killer.start()
    summary = pipeline.run([clip], tmp_path / "killed", cfg, progress=False)
    killer.join()
    assert killed, "no segment worker was seen running"
    assert summary.outcome == "ok" and summary.results[0].status == "done"  # Ray re-ran the segment
    assert len(video_rows(tmp_path / "killed")) == 1
    for table in ("frames", "faces"):
        a, b = (records.read(tmp_path / d, table) for d in ("clean", "killed"))
        assert a.num_rows == b.num_rows > 0
        key = [("frame_index", "ascending")] + ([("track_id", "ascending")] if table == "faces" else [])
        a, b = a.sort_by(key), b.sort_by(key)
        for name in a.column_names:
            x, y = (t.column(name).to_numpy(zero_copy_only=False) for t in (a, b))
            if x.dtype.kind == "f":
                assert np.allclose(x, y, atol=1e-4, equal_nan=True), name
            else:
                assert (x == y).all(), name


def test_a_killed_classifier_restarts_and_its_batch_is_retried(local_ray, config):
    model = ModelInfo.load(config.weights)
    weights = [ray.put(model.blob)]
    (actor,) = pipeline.make_classifiers(config)
    try:
        crops = np.random.default_rng(0).integers(0, 256, (3000, 48, 48), dtype=np.uint8)
        ray.get(actor.predict.remote(weights, crops[:1]))
        before = ray.get(actor.info.remote())
        assert before["threads"] == 1 and before["device"] == "cpu"  # torch threads = CPUs held
        call = actor.predict.remote(weights, crops)
        ray.kill(actor, no_restart=False)  # the process dies with the call in flight or queued
        probs, _ = ray.get(call, timeout=120)
        assert probs.shape == (3000, 7) and np.allclose(probs.sum(1), 1, atol=1e-4)
        assert ray.get(actor.info.remote())["pid"] != before["pid"]
    finally:
        ray.kill(actor)


@ray.remote(num_cpus=1)
class _HoldACpu:
    def ready(self) -> bool:
        return True


@ray.remote(num_cpus=0, max_concurrency=2)
class _Gate:
    """``wait()`` returns ``value`` once ``open()`` was called (two calls at once: max_concurrency)."""

    def __init__(self, value):
        self.value, self.opened = value, threading.Event()

    def open(self) -> None:
        self.opened.set()

    def wait(self):
        self.opened.wait()
        return self.value


def test_a_segment_waiting_for_its_classifier_lends_its_cpu_to_it(local_ray, config):
    # Every CPU is held (one by the segment) when the classifier actor needs one, as after the
    # actor's node was lost and Ray restarts it on a node whose CPUs the segments hold: waiting
    # in ray.wait the segment lends its CPU back, and the actor starts (seen in CI: a plain future
    # kept the CPU, and the job waited forever).
    from fer_stream.pipeline.workers import ClassifierActor, analyze_segment

    model = ModelInfo.load(config.weights)
    cpus = ray.cluster_resources()["CPU"]
    deadline = time.monotonic() + 120
    while ray.available_resources().get("CPU", 0) < cpus:  # earlier tests' actors are gone (killed
        assert time.monotonic() < deadline, f"CPUs still held: {ray.available_resources()}"  # async)
        time.sleep(0.05)
    holders = [_HoldACpu.remote() for _ in range(int(cpus) - 1)]
    ray.get([h.ready.remote() for h in holders])  # every CPU but one taken
    gate = _Gate.remote("cpu")
    # the actor cannot be placed before its argument exists: the gate decides when it asks for a CPU
    actor = (
        ray.remote(ClassifierActor)
        .options(num_cpus=1, max_restarts=0)
        .remote(gate.wait.remote(), config.backend)
    )
    cfg = dataclasses.replace(config, sample_fps=4.0, detect_every_s=0, batch_size=8, batches_in_flight=1)
    clip = shared("videos/WolfgangLanger_Pexels.mp4")
    ref = analyze_segment.remote(
        str(clip), 0, 0.0, 6.0, cfg, model.input_size, [actor], [ray.put(model.blob)], None
    )
    try:
        deadline = time.monotonic() + 120
        while not _segment_workers():  # the segment runs: it holds the last CPU
            assert time.monotonic() < deadline, f"the segment never started: {ray.available_resources()}"
            time.sleep(0.05)
        gate.open.remote()  # now the actor asks for a CPU
        try:
            part = ray.get(ref, timeout=300)
        except ray.exceptions.GetTimeoutError:
            pytest.fail("deadlock: the segment kept its CPU while its classifier actor waited for one")
        assert len(part.faces["probs"]) == len(part.faces["track_id"]) > 0
        assert np.allclose(part.faces["probs"].sum(1), 1, atol=1e-4)
    finally:
        ray.cancel(ref, force=True)
        for a in (*holders, gate, actor):
            ray.kill(a)


def test_default_weights_end_to_end(local_ray, tmp_path):
    s = pipeline.run([shared("videos/single_face.mp4")], tmp_path, PipelineConfig(), progress=False)
    assert s.outcome == "ok", s.describe()
    (row,) = video_rows(tmp_path)
    assert row["model_version"] == checkpoint.load("default").version and row["students"] == 1


# --------------------------------------------------------------------------------------------------
# ray job submit against a real head (its own Ray, token auth as Ray 2.60 enables by default)


@pytest.mark.cluster
def test_job_submit_against_a_real_head(smoke_weights, tmp_path):
    clip = write_clip(tmp_path / "in" / "ML101" / "2024-03-05_a.mp4")
    out = tmp_path / "out"
    with ray_head(tmp_path) as head:
        submit = [
            sys.executable, "-m", "ray.scripts.scripts", "job", "submit", "--address", head.dashboard,
            "--working-dir", str(ROOT),
            "--", "python", "jobs/analyze_lectures.py", "--input", str(tmp_path / "in"), "--output", str(out),
            "--weights", str(smoke_weights), "--quiet",
        ]  # fmt: skip
        r = head.submit(submit)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        assert "1 done, 0 skipped, 0 failed" in r.stdout
        (row,) = video_rows(out)
        assert row["status"] == "done" and row["course"] == "ML101" and row["path"] == str(clip.resolve())
        assert records.read(out, "frames").num_rows == row["sampled_frames"] == 2
    done = (pc.field("status") == "done") & (pc.field("course") == "ML101")
    assert records.read(out, "videos", filter=done).num_rows == 1


def test_job_flags_map_to_the_pipeline_config():
    from fer_stream.cli.options import config_from_args
    from fer_stream.identity import IdentityConfig

    a = job.parse_args(["--input", "x.mp4", "--output", "o", "--detect-every-s", "0", "--min-face-px", "32"])
    cfg = config_from_args(a)
    assert cfg.identity is None and cfg.detect_every == 1 and cfg.min_face_px == 32.0
    a = job.parse_args(["--input", "x.mp4", "--output", "o", "--identity", "--identity-threshold", "0.5"])
    assert config_from_args(a).identity == IdentityConfig(threshold=0.5)
    assert config_from_args(a).detect_every == 4  # 2 s at 2 fps: the defaults


def test_cpu_classifier_actors_scale_with_the_cluster(monkeypatch, smoke_weights):
    cfg = PipelineConfig(weights=str(smoke_weights))
    for cpus, gpus, actors, workers in [
        (3, 0, 1, 2),
        (2, 0, 1, 1),
        (17, 0, 6, 11),
        (64, 0, 22, 42),
        (16, 2, 2, 14),
    ]:
        monkeypatch.setattr(pipeline.ray, "cluster_resources", lambda c=cpus, g=gpus: {"CPU": c, "GPU": g})
        n, device, opts, slots = pipeline.classifier_plan(cfg)
        assert (n, slots, device) == (actors, workers, "cuda" if gpus else "cpu"), cpus
    monkeypatch.setattr(pipeline.ray, "cluster_resources", lambda: {"CPU": 2})
    with pytest.raises(ValueError, match="leave no CPU"):
        pipeline.classifier_plan(dataclasses.replace(cfg, classifiers=2))
