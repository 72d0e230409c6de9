"""Nightly runs (fer_stream.nightly, `fer-stream nightly`) and deploy/: the lock and the run record
around every run (nightly and forget), the inbox scan, a scripted inbox over two nights, retries
and quarantine, a model change, kill -9 and a rerun, two runs at once, and the systemd service's
command line run as written."""

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import av
import cv2
import pyarrow.compute as pc
import pytest

from fer_stream import cli, inputs, nightly, records
from fer_stream.cli import exits
from fer_stream.cli import nightly as nightly_cmd
from fer_stream.config import PipelineConfig
from fer_stream.labels import FER2013_LABELS
from fer_stream.models import build, checkpoint
from fer_stream.ops import layout, runlog
from fer_stream.ops.lock import LockHeld, OutputLock
from tests.helpers import ROOT, ray_head, shared, systemd_words

DEPLOY = ROOT / "deploy"
SETTLE_S = 1.0  # tests wait this long for a file to count as copied


# --------------------------------------------------------------------------------------------------
# Helpers and fixtures


def cut_clip(src: Path, dst: Path, start_s: float, seconds: float, width: int = 320, fps: int = 10) -> Path:
    """A short, small H.264 clip of ``src`` from ``start_s``: different starts, different content."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        written, next_t = 0, start_s
        for frame in inp.decode(video=0):
            if frame.time is None or frame.time + 1e-6 < next_t:
                continue
            img = frame.to_ndarray(format="rgb24")
            h = round(img.shape[0] * width / img.shape[1] / 2) * 2
            if not written:
                stream.width, stream.height, stream.pix_fmt = width, h, "yuv420p"
            small = cv2.resize(img, (width, h), interpolation=cv2.INTER_AREA)
            for packet in stream.encode(av.VideoFrame.from_ndarray(small, format="rgb24")):
                out.mux(packet)
            written, next_t = written + 1, next_t + 1 / fps
            if written >= seconds * fps:
                break
        for packet in stream.encode():
            out.mux(packet)
    return dst


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Five 1.5 s face clips (3 sampled frames each at 2 fps) and a longer one, 320 px wide."""
    d = tmp_path_factory.mktemp("clips")
    face = shared("videos/single_face.mp4")
    out = {k: cut_clip(face, d / f"{k}.mp4", start, 1.5) for k, start in zip("abcd", (0.0, 0.3, 0.6, 0.9))}
    out["long"] = cut_clip(shared("videos/WolfgangLanger_Pexels.mp4"), d / "long.mp4", 0.0, 5.0)
    out["e"] = cut_clip(shared("videos/WolfgangLanger_Pexels.mp4"), d / "e.mp4", 0.0, 1.5)
    return out


def _weights(path: Path, version: str) -> Path:
    meta = checkpoint.make_meta(FER2013_LABELS, 0.5, 0.25, version=version)
    return checkpoint.save(path, build("smoke").eval(), meta)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, Path]:
    """Untrained 'smoke' weights in two versions: the tests check bookkeeping, not accuracy."""
    d = tmp_path_factory.mktemp("weights")
    return {"v1": _weights(d / "v1.pt", "test-smoke-1"), "v2": _weights(d / "v2.pt", "test-smoke-2")}


def config(w: Path) -> PipelineConfig:
    return PipelineConfig(weights=str(w), sample_fps=2.0)


def night(inbox, out, w, now=None, **options) -> dict:
    options.setdefault("settle_s", SETTLE_S)
    return nightly.run_night(
        inbox, out, config(w), nightly.NightlyOptions(**options), progress=False, now=now
    )


def by_name(record: dict) -> dict[str, dict]:
    return {Path(v["path"]).name: v for v in record["videos"]}


def sorted_rows(out: Path, name: str) -> list[dict]:
    key = lambda r: (r["video_id"], r["frame_index"], r.get("track_id", 0))
    return sorted(records.read(out, name).to_pylist(), key=key)


def files_of(out: Path, name: str) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(out)): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in (out / name).rglob("*.parquet")
    }


# --------------------------------------------------------------------------------------------------
# The lock and the run record around a run (no Ray)

# A process that takes the lock, says so, and waits to be killed.
HOLDER = """
import sys, time
from fer_stream.ops.lock import OutputLock
OutputLock(sys.argv[1], "nightly", sys.argv[2]).acquire()
print("locked", flush=True)
time.sleep(600)
"""


def test_lock_is_exclusive_in_this_process_and_others(tmp_path):
    first = OutputLock(tmp_path, "nightly", "run-1")
    assert first.acquire() is None
    owner = json.loads((tmp_path / layout.LOCK_FILE).read_text())
    assert (owner["pid"], owner["host"], owner["kind"], owner["run_id"]) == (
        os.getpid(),
        socket.gethostname(),
        "nightly",
        "run-1",
    )
    assert owner["started_at"] and owner["argv"]
    # the flock belongs to the open file: a second lock of this process is refused as well
    with pytest.raises(LockHeld, match=r"holds .*nightly.lock: pid \d+ on host .*it is running now"):
        OutputLock(tmp_path, "forget", "run-2").acquire()
    other = subprocess.run(  # and one of another process
        [sys.executable, "-c", HOLDER, str(tmp_path), "run-3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert other.returncode != 0 and "LockHeld" in other.stderr and "run-1" in other.stderr
    first.release()
    assert not (tmp_path / layout.LOCK_FILE).exists()
    with OutputLock(tmp_path, "forget", "run-4") as again:  # free again
        assert again.fd is not None
    assert not (tmp_path / layout.LOCK_FILE).exists()


def test_a_killed_holders_lock_is_taken_over_and_its_run_marked_killed(tmp_path):
    killed_run = "20261128T023000Z-0abcde"
    runlog.save(tmp_path, runlog.new_record("nightly", tmp_path, killed_run))  # status: running
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path), killed_run], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(LockHeld, match=f"pid {proc.pid} on host"):
            OutputLock(tmp_path, "forget", "run-2").acquire()
    finally:
        proc.kill()  # SIGKILL: no release; the lock file stays and names the dead run
        proc.wait()
        proc.stdout.close()
    assert json.loads((tmp_path / layout.LOCK_FILE).read_text())["pid"] == proc.pid
    # the kernel dropped its flock: the next run takes the lock over, says whose, marks the record
    record = runlog.new_record("forget", tmp_path)
    assert nightly.locked_run(tmp_path, record, lambda: None) is record
    assert record["status"] == "finished" and record["lock"]["took_over"]["pid"] == proc.pid
    assert record["lock"]["took_over"]["run_id"] == killed_run
    old = json.loads(layout.run_record(tmp_path, killed_run).read_text())
    assert old["status"] == "killed" and record["run_id"] in old["errors"][-1]["error"]
    assert json.loads(layout.run_record(tmp_path, record["run_id"]).read_text()) == record
    assert not (tmp_path / layout.LOCK_FILE).exists()


def test_locked_run_records_a_failure_and_an_interruption(tmp_path):
    def fails():
        raise OSError("disk on fire")

    rec = nightly.locked_run(tmp_path, runlog.new_record("forget", tmp_path), fails)
    assert rec["status"] == "error"
    assert rec["errors"] == [{"error_type": "OSError", "error_message": "disk on fire"}]
    assert rec["finished_at"] and not (tmp_path / layout.LOCK_FILE).exists()

    def stopped():
        raise SystemExit(143)  # what SIGTERM raises under runlog.sigterm_as_exit

    rec = runlog.new_record("nightly", tmp_path)
    with pytest.raises(SystemExit):
        nightly.locked_run(tmp_path, rec, stopped)
    on_disk = json.loads(layout.run_record(tmp_path, rec["run_id"]).read_text())
    assert on_disk["status"] == "interrupted" and not (tmp_path / layout.LOCK_FILE).exists()


# --------------------------------------------------------------------------------------------------
# The inbox scan (no Ray)


def test_scan_waits_for_files_being_copied_and_hashes_each_file_once(tmp_path, monkeypatch):
    inbox = tmp_path / "inbox"
    (inbox / "X").mkdir(parents=True)
    (inbox / "X" / "done.mp4").write_bytes(b"a whole video")
    state: dict = {}
    t = time.time()
    # everything changed just now: nothing is settled
    assert {f.action for f in nightly.scan_inbox(inbox, state, 60, t)} == {"copying"}
    hashed = []
    real = inputs.content_hash
    monkeypatch.setattr(inputs, "content_hash", lambda p: hashed.append(p) or real(p))
    (f,) = nightly.scan_inbox(inbox, state, 60, t + 61)
    assert f.action is None and f.video_id == real(inbox / "X" / "done.mp4") and len(hashed) == 1
    (f,) = nightly.scan_inbox(inbox, state, 60, t + 62)
    assert f.video_id and len(hashed) == 1  # unchanged size/mtime/ctime/inode: the cached hash
    old = f.video_id
    (inbox / "X" / "done.mp4").write_bytes(b"a new version of it")
    (f,) = nightly.scan_inbox(inbox, state, 60, time.time() + 61)
    assert len(hashed) == 2 and f.old_video_id == old != f.video_id  # changed: a new hash
    os.utime(inbox / "X" / "done.mp4", (1e9, 1e9))  # an old mtime (cp -p): the ctime is still new
    assert nightly.scan_inbox(inbox, state, 60, time.time())[0].action == "copying"


# --------------------------------------------------------------------------------------------------
# Whole nights on an embedded Ray


def test_two_nights_over_a_scripted_inbox(local_ray, clips, weights, tmp_path):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    shutil.copy(clips["a"], (inbox / "ML101").mkdir(parents=True) or inbox / "ML101" / "2024-03-05_a.mp4")
    shutil.copy(clips["b"], inbox / "ML101" / "2024-03-06_b.mp4")
    shutil.copy(clips["b"], inbox / "ML101" / "b_renamed.mp4")  # a duplicate under another name
    (inbox / "broken.mp4").write_text("the camera crashed, this is no video\n")
    time.sleep(SETTLE_S + 0.2)
    half = inbox / "ML101" / "2024-03-07_c.mp4"  # still being copied: half of it, just written
    half.write_bytes(clips["c"].read_bytes()[: clips["c"].stat().st_size // 2])

    rec = night(inbox, out, weights["v1"])
    v = by_name(rec)
    assert rec["status"] == "finished" and rec["counts"]["seen"] == 5
    assert (v["2024-03-05_a.mp4"]["status"], v["2024-03-06_b.mp4"]["status"]) == ("done", "done")
    assert v["b_renamed.mp4"]["action"] == "duplicate" and "2024-03-06_b.mp4" in v["b_renamed.mp4"]["reason"]
    assert v["2024-03-07_c.mp4"]["action"] == "copying" and v["2024-03-07_c.mp4"]["video_id"] is None
    assert (v["broken.mp4"]["status"], v["broken.mp4"]["error_type"]) == ("failed", "NotAVideoError")
    assert {k: rec["counts"][k] for k in ("new", "done", "failed", "duplicate", "copying", "skipped")} == {
        "new": 3,
        "done": 2,
        "failed": 1,
        "duplicate": 1,
        "copying": 1,
        "skipped": 2,
    }
    done = records.read(out, "videos", filter=pc.field("status") == "done")
    assert sorted(Path(p).name for p in done.column("path").to_pylist()) == [
        "2024-03-05_a.mp4",
        "2024-03-06_b.mp4",
    ]
    assert records.read(out, "faces").num_rows > 0  # the clips have a face
    # the run record on disk is what run_night returned; the touched course's reports are there
    assert json.loads((out / "runs" / f"{rec['run_id']}.json").read_text()) == json.loads(json.dumps(rec))
    assert rec["reports"]["errors"] == [] and list(rec["reports"]["courses"]) == ["ML101"]
    report_dir = out / "reports" / date.today().isoformat()
    assert rec["reports"]["dir"] == str(report_dir) and (report_dir / "ML101.html").is_file()
    assert any(p.endswith(".csv") for p in rec["reports"]["courses"]["ML101"])
    assert not (out / layout.LOCK_FILE).exists()

    # the next night: the copy has finished, a new lecture came, and lecture a was replaced by a
    # corrected version (same name, new content); only those three are analysed
    old_a = inputs.content_hash(inbox / "ML101" / "2024-03-05_a.mp4")
    half.write_bytes(clips["c"].read_bytes())
    shutil.copy(clips["d"], inbox / "ML101" / "2024-03-08_d.mp4")
    shutil.copy(clips["e"], inbox / "ML101" / "2024-03-05_a.mp4")
    time.sleep(SETTLE_S + 0.2)
    b_files = {k: x for k, x in files_of(out, "faces").items() if old_a not in k}
    rec2 = night(inbox, out, weights["v1"], reports=False)
    v = by_name(rec2)
    assert {n for n, x in v.items() if x["status"] == "done"} == {
        "2024-03-05_a.mp4",
        "2024-03-07_c.mp4",
        "2024-03-08_d.mp4",
    }
    assert v["2024-03-05_a.mp4"]["action"] == "changed" and v["2024-03-05_a.mp4"]["old_video_id"] == old_a
    assert rec2["counts"]["done_before"] == 1 and "2024-03-06_b.mp4" not in v  # listed as counts only
    assert v["broken.mp4"]["action"] == "deferred"  # its backoff has not passed
    assert v["b_renamed.mp4"]["action"] == "duplicate"
    new_rows = records.read(out, "videos", filter=pc.field("run_id") == rec2["pipeline_run_id"])
    assert new_rows.num_rows == 3  # the pipeline saw nothing else
    assert all(files_of(out, "faces")[k] == ident for k, ident in b_files.items())  # b: untouched
    # the replaced version's records are gone from every table
    (replaced,) = [r for r in rec2["removed"] if r["why"] == "replaced"]
    assert replaced["video_ids"] == [old_a] and replaced["rows"]["videos"] == 1
    for name in records.SCHEMAS:
        assert old_a not in records.read(out, name).column("video_id").to_pylist(), name
    done = records.read(out, "videos", filter=pc.field("status") == "done")
    assert done.num_rows == 4 and len(set(done.column("video_id").to_pylist())) == 4


def test_a_failing_video_backs_off_then_is_quarantined_with_its_reason(local_ray, weights, tmp_path):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    (inbox / "ML101").mkdir(parents=True)
    bad = inbox / "ML101" / "2024-03-05_bad.mp4"
    bad.write_bytes(b"\x00" * 1000)
    (inbox / "ML101" / "2024-03-05_bad.json").write_text('{"course": "ML101"}')
    t0 = time.time() + 10
    h = 3600.0
    attempts = []
    for dt, expect in ((0, "failed"), (1 * h, "deferred"), (21 * h, "failed"), (50 * h, "deferred")):
        (v,) = night(inbox, out, weights["v1"], now=t0 + dt)["videos"]
        attempts.append((v["action"], v["status"], v.get("attempt")))
        assert v["status"] == expect or v["action"] == expect
    assert attempts == [
        ("new", "failed", 1),
        ("deferred", "skipped", None),
        ("retry", "failed", 2),  # backoff 20 h after the first failure, 40 h after the second
        ("deferred", "skipped", None),
    ]
    failed_rows = records.read(out, "videos", filter=pc.field("status") == "failed").num_rows
    assert failed_rows == 2  # deferred nights do not run the pipeline
    rec = night(inbox, out, weights["v1"], now=t0 + 62 * h)  # third failure: quarantine
    (v,) = rec["videos"]
    assert v["action"] == "quarantine" and "failed 3 times" in v["reason"] and "NotAVideoError" in v["reason"]
    assert rec["counts"]["quarantine"] == 1 and not bad.exists()
    moved = out / "quarantine" / "ML101" / "2024-03-05_bad.mp4"
    reason = json.loads(moved.with_name(moved.name + ".quarantine.json").read_text())
    assert moved.is_file() and moved.with_name(moved.name + ".json").is_file()  # its sidecar went along
    assert reason["video_id"] == v["video_id"] and len(reason["errors"]) == 3
    assert {e["type"] for e in reason["errors"]} == {"NotAVideoError"}
    assert night(inbox, out, weights["v1"], now=t0 + 100 * h)["counts"]["seen"] == 0
    # an operator moves it back into the inbox: a fresh start
    shutil.move(moved, bad)
    (v,) = night(inbox, out, weights["v1"], now=t0 + 101 * h)["videos"]
    assert (v["action"], v["attempt"], v["status"]) == ("retry", 1, "failed")


def test_an_unreadable_video_is_retried_every_night_and_never_quarantined(
    local_ray, clips, weights, tmp_path, monkeypatch
):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    (inbox / "ML101").mkdir(parents=True)
    video = inbox / "ML101" / "2024-03-05_a.mp4"
    shutil.copy(clips["a"], video)
    video.chmod(0o000)
    if os.geteuid() == 0:
        # Root reads any file whatever its mode, and Ray's workers are other processes: the night's
        # pipeline call is replaced by one that probes each video here, with av.open raising what it
        # raises on EACCES for this file, and reports what the pipeline reports for a probe error.
        import errno

        import fer_stream.video.container as container
        from fer_stream import pipeline
        from fer_stream.video import VideoError, probe

        real_open = container.av.open

        def av_open(file, *a, **kw):
            if str(file) == str(video):
                raise av.error.PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
            return real_open(file, *a, **kw)

        def run_probing_here(lectures, output, config, progress):
            results = []
            for lec in lectures:
                with pytest.raises(VideoError) as e:
                    probe(lec.path)
                results.append(
                    pipeline.VideoResult(
                        path=lec.path,
                        status=pipeline.VideoStatus.FAILED,
                        video_id=lec.video_id,
                        error_type=type(e.value).__name__,
                        error_message=str(e.value),
                    )
                )
            return pipeline.RunSummary(
                run_id="r", output=str(output), config_hash="c", model_version="m", inputs=1,
                results=results, wall_s=0.0,
            )  # fmt: skip

        monkeypatch.setattr(container.av, "open", av_open)
        monkeypatch.setattr(pipeline, "run", run_probing_here)
    t0 = time.time() + 10
    for n in range(4):  # twice max_attempts nights, no backoff: each night tries it again
        rec = night(inbox, out, weights["v1"], now=t0 + n * 3600, max_attempts=2, backoff_h=0)
        (v,) = rec["videos"]
        assert (v["action"], v["status"], v["error_type"]) == (
            ["new", "retry"][n > 0],
            "failed",
            "VideoUnreadableError",
        )
        assert "permissions" in v["reason"] and "not counted towards quarantine" in v["reason"]
        assert rec["counts"].get("quarantine", 0) == 0 and video.exists()
    assert not (out / layout.QUARANTINE_DIR).exists()
    # Once the permissions are fixed, the same file is analysed (the real pipeline, on Ray).
    video.chmod(0o644)
    monkeypatch.undo()
    (v,) = night(inbox, out, weights["v1"], now=t0 + 5 * 3600)["videos"]
    assert v["status"] == "done"


def test_a_model_change_reprocesses_only_when_asked(local_ray, clips, weights, tmp_path, monkeypatch):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    shutil.copy(clips["a"], (inbox / "ML101").mkdir(parents=True) or inbox / "ML101" / "2024-03-05_a.mp4")
    (inbox / "BIO").mkdir()
    shutil.copy(clips["b"], inbox / "BIO" / "2024-03-05_b.mp4")
    now = time.time() + 10
    assert night(inbox, out, weights["v1"], now=now)["counts"]["done"] == 2
    faces_v1 = sorted_rows(out, "faces")
    assert {r["model_version"] for r in faces_v1} == {"test-smoke-1"}

    rec = night(inbox, out, weights["v2"], now=now)  # new weights, no flag: nothing is redone
    assert rec["counts"]["done_before"] == 2 and rec["counts"]["done"] == 0
    assert sorted_rows(out, "faces") == faces_v1

    from fer_stream import reports

    real = reports.write_course_reports

    def broken(data_dir, course, out_dir, date_from=None, date_to=None):
        if course == "BIO":
            raise RuntimeError("chart backend exploded")
        return real(data_dir, course, out_dir, date_from, date_to)

    monkeypatch.setattr(reports, "write_course_reports", broken)
    rec = night(inbox, out, weights["v2"], now=now, reprocess_on_model_change=True)
    assert rec["status"] == "finished" and rec["counts"]["reprocess"] == 2 and rec["counts"]["done"] == 2
    faces_v2 = sorted_rows(out, "faces")
    assert {r["model_version"] for r in faces_v2} == {"test-smoke-2"} and len(faces_v2) == len(faces_v1)
    # the v1 record files are gone (every table holds one version of each video); the run log stays
    assert rec["removed"][0]["why"] == "superseded" and rec["removed"][0]["files_deleted"] == 4
    assert len(list((out / "faces").rglob("*.parquet"))) == 2
    versions = records.read(out, "videos").column("model_version").to_pylist()
    assert sorted(versions) == ["test-smoke-1"] * 2 + ["test-smoke-2"] * 2
    # a report that cannot render is recorded; the other course's reports are there
    assert rec["reports"]["errors"] == [
        {"course": "BIO", "error_type": "RuntimeError", "error": "chart backend exploded"}
    ]
    assert list(rec["reports"]["courses"]) == ["ML101"]


def _nightly_argv(inbox: Path, out: Path, w: Path) -> list[str]:
    return [
        *("nightly", "--inbox", str(inbox), "--output", str(out), "--weights", str(w)),
        *("--settle-s", "0", "--no-reports"),  # reports are not part of the dataset compared here
    ]


def test_kill_9_then_rerun_gives_the_uninterrupted_dataset_and_a_second_run_is_refused(
    local_ray, clips, weights, tmp_path, capsys
):
    inbox, killed, clean = tmp_path / "inbox", tmp_path / "killed", tmp_path / "clean"
    (inbox / "ML101").mkdir(parents=True)
    for name, clip in (("2024-03-05_a", "a"), ("2024-03-06_b", "b"), ("2024-03-07_long", "long")):
        shutil.copy(clips[clip], inbox / "ML101" / f"{name}.mp4")
    time.sleep(0.1)
    argv = _nightly_argv(inbox, killed, weights["v1"])
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    # its own embedded Ray, in its own process group: SIGKILL takes the driver and its Ray down
    proc = subprocess.Popen(
        ["nice", "-n", "10", sys.executable, "-m", "fer_stream.cli", *argv, "--num-cpus", "2", "--quiet"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    lock = killed / layout.LOCK_FILE
    try:
        deadline = time.monotonic() + 120
        while not (lock.is_file() and lock.read_text().strip()):
            assert proc.poll() is None and time.monotonic() < deadline, "the run did not start"
            time.sleep(0.05)
        # a second run while the first holds the lock: refused at once, distinct exit code
        t = time.monotonic()
        assert cli.main(argv) == exits.LOCKED == 75
        assert time.monotonic() - t < 5
        err = capsys.readouterr().err
        assert f"pid {proc.pid} on host {socket.gethostname()}" in err and "it is running now" in err
        while not list((killed / "videos").rglob("*.parquet")):  # the first video is done
            assert proc.poll() is None and time.monotonic() < deadline, "the run ended before the kill"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert lock.is_file()  # left behind by the killed run
    (killed_record,) = [json.loads(p.read_text()) for p in (killed / "runs").glob("*.json")]
    assert killed_record["status"] == "running"

    rerun = night(inbox, killed, weights["v1"], settle_s=0, reports=False)
    assert rerun["lock"]["took_over"]["pid"] == proc.pid and rerun["status"] == "finished"
    assert json.loads((killed / "runs" / f"{killed_record['run_id']}.json").read_text())["status"] == "killed"
    assert rerun["counts"]["done_before"] >= 1  # what the killed run finished is not redone
    uninterrupted = night(inbox, clean, weights["v1"], settle_s=0, reports=False)
    assert uninterrupted["counts"]["done"] == 3

    for name in ("faces", "frames"):
        assert sorted_rows(killed, name) == sorted_rows(clean, name), name
    keep = ["video_id", "course", "lecture_date", "path", "status", "sampled_frames", "faces", "students"]
    rows = lambda out: sorted(tuple(r[k] for k in keep) for r in records.read(out, "videos").to_pylist())
    assert rows(killed) == rows(clean) and len(rows(clean)) == 3
    assert records.read(clean, "faces").num_rows > 0


# --------------------------------------------------------------------------------------------------
# deploy/


def _unit(path: Path) -> dict[str, list[str]]:
    """``key -> values`` of a systemd unit file (continuation lines are not used in deploy/)."""
    out: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith(("#", ";", "[")):
            k, v = line.split("=", 1)
            out.setdefault(k.strip(), []).append(v.strip())
    return out


INSTALLED = "/opt/fer_stream/.venv/bin/fer-stream"  # where deploy/README.md installs the package


def test_the_systemd_service_command_line_runs_as_written(clips, weights, tmp_path):
    unit = _unit(DEPLOY / "fer-stream-nightly.service")
    timer = _unit(DEPLOY / "fer-stream-nightly.timer")
    assert timer["Unit"] == ["fer-stream-nightly.service"] and timer["Persistent"] == ["true"]
    assert re.fullmatch(r"\*-\*-\* \d\d:\d\d:\d\d", timer["OnCalendar"][0])
    (exec_start,) = unit["ExecStart"]
    env = dict(shlex.split(e)[0].split("=", 1) for e in unit["Environment"])  # the unit's defaults
    assert set(env) == {"FER_STREAM_INBOX", "FER_STREAM_OUTPUT", "FER_STREAM_NIGHTLY_OPTS"}
    if shutil.which("systemd-analyze"):  # the unit files as systemd reads them (bar the install path)
        d = tmp_path / "units"
        d.mkdir()
        real = exec_start.replace(INSTALLED, shutil.which("true"))
        (d / "fer-stream-nightly.service").write_text(
            (DEPLOY / "fer-stream-nightly.service").read_text().replace(exec_start, real)
        )
        shutil.copy(DEPLOY / "fer-stream-nightly.timer", d)
        r = subprocess.run(
            ["systemd-analyze", "verify", *sorted(map(str, d.iterdir()))], capture_output=True, text=True
        )
        assert r.returncode == 0 and not r.stderr.strip(), r.stderr

    inbox, out = tmp_path / "inbox", tmp_path / "records"
    (inbox / "ML101").mkdir(parents=True)
    shutil.copy(clips["a"], inbox / "ML101" / f"{date.today()}_a.mp4")  # within the unit's retention
    shutil.copy(clips["b"], inbox / "ML101" / "2001-09-03_b.mp4")  # long past it: not analysed
    # what /etc/fer-stream/nightly.env would set on a test machine
    env.update(
        FER_STREAM_INBOX=str(inbox),
        FER_STREAM_OUTPUT=str(out),
        FER_STREAM_NIGHTLY_OPTS=f"{env['FER_STREAM_NIGHTLY_OPTS']} --weights {weights['v1']} --settle-s 0 "
        "--num-cpus 2",
    )
    words = systemd_words(exec_start, env)
    assert words[0] == INSTALLED
    command = ["nice", "-n", "10", sys.executable, "-m", "fer_stream.cli", *words[1:]]
    proc_env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    r = subprocess.run(command, cwd=ROOT, env=proc_env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "1 new -> 1 done, 0 failed" in r.stdout and "1 expired" in r.stdout
    (rec,) = [json.loads(p.read_text()) for p in (out / "runs").glob("*.json")]
    assert rec["status"] == "finished" and rec["options"]["retention_days"] == 365
    assert records.read(out, "videos").column("status").to_pylist() == ["done"]


def _nightly_parser():
    import argparse

    ap = argparse.ArgumentParser()
    nightly_cmd.register(ap.add_subparsers(dest="cmd"))
    return ap


def test_crontab_lines_and_the_ray_cluster_submit_script(tmp_path):
    lines = [x.lstrip("# ") for x in (DEPLOY / "crontab").read_text().splitlines()]
    entries = [x for x in lines if re.match(r"^[\d*/,-]+( [\d*/,-]+){4} /", x)]
    assert len(entries) == 2  # the local run, and the Ray cluster variant
    local = shlex.split(entries[0])[5:]
    assert local[0] == INSTALLED
    a = _nightly_parser().parse_args(local[1 : local.index(">>")])
    assert (a.cmd, a.inbox, a.output, a.retention_days) == (
        "nightly",
        "/srv/lectures/inbox",
        "/srv/lectures/records",
        365,
    )
    script = shlex.split(entries[1])[5]
    assert script == "/opt/fer_stream/deploy/ray-nightly-submit.sh"

    # the submit script, with a stand-in `ray` that records its arguments
    fake = tmp_path / "ray"
    fake.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {tmp_path / 'args'}\n")
    fake.chmod(0o755)
    env = {
        "PATH": os.environ["PATH"],
        "RAY": str(fake),
        "FER_STREAM_ENV_FILE": str(tmp_path / "none.env"),
        "FER_STREAM_INBOX": "/shared/in box",
        "FER_STREAM_OUTPUT": "/shared/records",
        "FER_STREAM_NIGHTLY_OPTS": "--retention-days 30 --max-attempts 4",
        "RAY_JOB_ADDRESS": "http://head:8265",
    }
    r = subprocess.run([DEPLOY / "ray-nightly-submit.sh"], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    args = (tmp_path / "args").read_text().splitlines()
    assert args[:6] == ["job", "submit", "--address", "http://head:8265", "--working-dir", str(ROOT)]
    assert re.fullmatch(r"fer-stream-nightly-\d{8}T\d{6}Z", args[args.index("--submission-id") + 1])
    entry = args[args.index("--") + 1 :]
    assert entry[:3] == ["python", "-m", "fer_stream.cli"]
    a = _nightly_parser().parse_args(entry[3:])
    assert (a.inbox, a.output, a.retention_days, a.max_attempts) == (
        "/shared/in box",
        "/shared/records",
        30,
        4,
    )
    # without an inbox it refuses to submit anything
    r = subprocess.run(
        [DEPLOY / "ray-nightly-submit.sh"],
        env={**env, "FER_STREAM_INBOX": ""},
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0 and "FER_STREAM_INBOX" in r.stderr


def test_forgotten_students_and_videos_stay_forgotten_on_later_nights(local_ray, clips, weights, tmp_path):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    (inbox / "ML101").mkdir(parents=True)
    shutil.copy(clips["a"], inbox / "ML101" / "2024-03-05_a.mp4")
    shutil.copy(clips["b"], inbox / "ML101" / "2024-03-06_b.mp4")
    now = time.time() + 10
    assert night(inbox, out, weights["v1"], now=now, reports=False)["counts"]["done"] == 2
    vid_a, vid_b = (
        inputs.content_hash(inbox / "ML101" / n) for n in ("2024-03-05_a.mp4", "2024-03-06_b.mp4")
    )
    sids = records.read(out, "faces", filter=pc.field("video_id") == vid_a).column("student_id").to_pylist()
    (sid,) = {s for s in sids if s is not None}
    assert cli.main(["forget", "--output", str(out), "--student", sid, "--no-reports"]) == 0
    assert cli.main(["forget", "--output", str(out), "--video", vid_b[:10], "--no-reports"]) == 0

    # new weights, everything re-analysed: the student does not come back, the video is not analysed
    rec = night(inbox, out, weights["v2"], now=now, reprocess_on_model_change=True, reports=False)
    v = by_name(rec)
    assert (v["2024-03-05_a.mp4"]["action"], v["2024-03-05_a.mp4"]["status"]) == ("reprocess", "done")
    assert v["2024-03-06_b.mp4"]["action"] == "forgotten"
    assert [r["why"] for r in rec["removed"]] == ["superseded", "erasure re-applied"]
    for name in records.SCHEMAS:
        rows = records.read(out, name).to_pylist()
        assert all(r["video_id"] != vid_b for r in rows), name
        assert sid not in json.dumps(rows, default=str), name
    faces_a = records.read(out, "faces", filter=pc.field("video_id") == vid_a)
    (row,) = records.read(out, "videos", filter=pc.field("run_id") == rec["pipeline_run_id"]).to_pylist()
    assert row["faces"] == faces_a.num_rows and row["students"] == 0  # the counts follow
    assert sum(
        records.read(out, "frames", filter=pc.field("video_id") == vid_a).column("n_faces").to_pylist()
    ) == (faces_a.num_rows)
    assert not [p for p in out.rglob(".*") if p.is_file()]  # no temporary files


def test_a_night_that_cannot_run_exits_1_and_says_why(weights, tmp_path, capsys):
    inbox = tmp_path / "inbox"
    argv = ["nightly", "--inbox", str(inbox), "--output", str(tmp_path / "out"), "--settle-s", "0"]
    assert cli.main(argv) == exits.ERROR
    assert "no inbox folder" in capsys.readouterr().err
    inbox.mkdir()
    (inbox / "x.mp4").write_bytes(b"x")
    assert cli.main([*argv, "--weights", str(tmp_path / "missing.pt")]) == exits.ERROR
    (rec,) = [json.loads(p.read_text()) for p in (tmp_path / "out" / "runs").glob("*.json")]
    assert rec["status"] == "error" and "missing.pt" in rec["errors"][0]["error_message"]
    assert "ERROR" in capsys.readouterr().out and not (tmp_path / "out" / layout.LOCK_FILE).exists()
    # a bad option value is a bad argument (exit 2), and nothing runs
    assert cli.main([*argv, "--max-attempts", "0"]) == exits.USAGE
    assert "max_attempts" in capsys.readouterr().err
    assert len(list((tmp_path / "out" / "runs").glob("*.json"))) == 1


def test_nightly_and_forget_run_under_one_helper_and_write_the_same_record_keys(tmp_path, monkeypatch):
    kinds = []
    real = nightly.locked_run

    def spy(output, record, work):
        kinds.append(record["kind"])
        return real(output, record, work)

    monkeypatch.setattr(nightly, "locked_run", spy)
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    (inbox / "x.mp4").write_bytes(b"x")
    missing = str(tmp_path / "missing.pt")  # the night stops at the weights: no Ray is started
    argv = ["nightly", "--inbox", str(inbox), "--output", str(out), "--settle-s", "0", "--weights", missing]
    assert cli.main(argv) == exits.ERROR
    (out / "videos").mkdir()  # a records folder, without rows
    assert cli.main(["forget", "--output", str(out), "--older-than", "30"]) == exits.OK
    assert kinds == ["nightly", "forget"]
    recs = {r["kind"]: r for r in (json.loads(p.read_text()) for p in (out / "runs").glob("*.json"))}
    common = set(runlog.new_record("any", out))
    assert common <= set(recs["nightly"]) and common <= set(recs["forget"])
    for key in ("lock", "reports"):
        assert set(recs["nightly"][key]) == set(recs["forget"][key]), key
    assert {r["lock"]["file"] for r in recs.values()} == {str(out.resolve() / layout.LOCK_FILE)}


@pytest.mark.cluster
def test_the_ray_cluster_variant_submits_a_night_to_a_real_head(clips, weights, tmp_path):
    """deploy/ray-nightly-submit.sh against `ray start --head` (tests.helpers.ray_head: token auth,
    free ports, its own temp dir and process group)."""
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    (inbox / "ML101").mkdir(parents=True)
    shutil.copy(clips["a"], inbox / "ML101" / "2024-03-05_a.mp4")
    with ray_head(tmp_path) as head:
        # the ray of this Python, as cron's PATH would find the cluster's
        fake_path = tmp_path / "bin"
        fake_path.mkdir()
        (fake_path / "ray").write_text(f'#!/bin/sh\nexec {sys.executable} -m ray.scripts.scripts "$@"\n')
        (fake_path / "ray").chmod(0o755)
        env = dict(head.env)
        env.update(
            PATH=f"{fake_path}:{env['PATH']}",
            FER_STREAM_ENV_FILE=str(tmp_path / "none.env"),
            FER_STREAM_INBOX=str(inbox),
            FER_STREAM_OUTPUT=str(out),
            FER_STREAM_NIGHTLY_OPTS=f"--weights {weights['v1']} --settle-s 0",
            RAY_JOB_ADDRESS=head.dashboard,
        )
        r = head.submit([DEPLOY / "ray-nightly-submit.sh"], env=env)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        assert "1 new -> 1 done, 0 failed" in r.stdout
        (rec,) = [json.loads(p.read_text()) for p in (out / "runs").glob("*.json")]
        assert rec["status"] == "finished" and rec["counts"]["done"] == 1
        assert records.read(out, "videos").column("status").to_pylist() == ["done"]
