"""Time of each report (fer_stream/reports/sql/*.sql, run_report) on a synthetic 10-million-row faces table.

The dataset (built once, cached under --dir): --courses courses x --lectures lectures each, 40 students
per lecture (ids stable across a course's lectures), 2 sampled frames/s, every student seen in a random
85% of the frames, 1% stray faces (no student), 5% of faces unmeasured (no attention score), a slowly
drifting attention score per student, Dirichlet emotion probabilities; the faces are split evenly so
the total is exactly --rows. frames/ has every sampled frame (some with no faces), videos/ one done run
per lecture and a failed video per course. Written with fer_stream.records (THE schema, zstd Parquet,
one file per lecture and table, hive partitions).

Each report runs with its default parameters over the whole dataset (every course and lecture), then
scoped to one course; the time is the median of --repeat runs of run_report (SQL on DuckDB to an Arrow
table; the first, cold run is reported apart), on a fresh connection per report. The HTML page of one
lecture and of one course is timed too (all the reports it needs, the charts, the page).

    nice -n 10 python bench/reports.py --rows 10000000 --repeat 3 --json bench/results/reports.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from fer_stream import records, reports  # noqa: E402
from fer_stream.labels import FER2013_LABELS  # noqa: E402

STUDENTS = 40
FPS = 2.0
SEEN = 0.85  # share of (student, frame) slots in which the student's face is found
STRAY = 0.01
UNMEASURED = 0.05


def lecture_tables(rng, vid: str, course: str, day: date, n_faces: int) -> tuple[pa.Table, pa.Table]:
    """faces and frames of one lecture: ``n_faces`` faces, about SEEN of the student-frame slots."""
    n_student_faces = round(n_faces * (1 - STRAY))
    n_frames = int(np.ceil(n_student_faces / STUDENTS / SEEN))
    slot = np.sort(rng.choice(n_frames * STUDENTS, n_student_faces, replace=False))
    frame, student = slot // STUDENTS, slot % STUDENTS
    # strays: faces of no student, in random frames
    stray_frames = rng.integers(0, n_frames, n_faces - n_student_faces)
    frame = np.concatenate([frame, stray_frames])
    sid = np.concatenate([student, np.full(len(stray_frames), -1)])
    order = np.argsort(frame, kind="stable")
    frame, sid = frame[order], sid[order]
    n = len(frame)
    # attention: each student's own level plus a slow random walk along the lecture (per frame)
    level = rng.uniform(0.3, 0.9, STUDENTS)
    walk = np.cumsum(rng.normal(0, 0.02, (n_frames, STUDENTS)), axis=0)
    score = np.clip(level[None, :] + walk, 0, 1)[frame, np.maximum(sid, 0)]
    score = np.where(sid < 0, rng.uniform(0, 1, n), score)
    score[rng.random(n) < UNMEASURED] = np.nan
    probs = rng.dirichlet(np.full(len(FER2013_LABELS), 0.6), n).astype(np.float32)
    names = np.array([f"{course}-s{k + 1:03d}" for k in range(STUDENTS)], dtype=object)
    student_id = np.where(sid < 0, None, names[np.maximum(sid, 0)])
    frame_index = frame * 12  # a 24 fps video sampled at 2 fps
    faces = records.make_table(
        "faces",
        {
            "video_id": vid,
            "course": course,
            "lecture_date": day,
            "frame_index": frame_index,
            "pts_s": frame / FPS,
            "track_id": np.where(sid < 0, 100_000 + np.arange(n), sid + 1),
            "student_id": student_id,
            "x1": rng.uniform(0, 1800, n).astype(np.float32),
            "y1": rng.uniform(0, 1000, n).astype(np.float32),
            "x2": rng.uniform(0, 1900, n).astype(np.float32),
            "y2": rng.uniform(0, 1080, n).astype(np.float32),
            "det_score": rng.uniform(0.9, 1, n).astype(np.float32),
            "face_px": rng.uniform(10, 80, n).astype(np.float32),
            "pose_readable": rng.random(n) < 0.9,
            "eyes_readable": rng.random(n) < 0.7,
            "emotion_readable": rng.random(n) < 0.8,
            "yaw": rng.normal(0, 20, n).astype(np.float32),
            "pitch": rng.normal(-5, 10, n).astype(np.float32),
            "roll": rng.normal(0, 5, n).astype(np.float32),
            "ear": rng.normal(0.28, 0.04, n).astype(np.float32),
            "attentive": np.nan_to_num(score) >= 0.5,
            "attention": score.astype(np.float32),
            **{f"p_{k}": probs[:, j] for j, k in enumerate(FER2013_LABELS)},
            "emotion": np.asarray(FER2013_LABELS, dtype=object)[probs.argmax(1)],
            "model_version": "bench",
        },
    )
    n_per_frame = np.bincount(frame, minlength=n_frames).astype(np.int32)
    frames = records.make_table(
        "frames",
        {
            "video_id": vid,
            "course": course,
            "lecture_date": day,
            "frame_index": np.arange(n_frames) * 12,
            "pts_s": np.arange(n_frames) / FPS,
            "n_faces": n_per_frame,
        },
    )
    return faces, frames


def video_row(vid: str, course: str, day: date, status: str, n_frames=None, n_faces=None) -> pa.Table:
    t = datetime(2024, 9, 1, tzinfo=timezone.utc)
    failed = status == "failed"
    return records.make_table(
        "videos",
        {
            "video_id": vid,
            "course": course,
            "lecture_date": day,
            "path": f"/lectures/{course}/{day}.mp4",
            "file_size": 10**9,
            "file_mtime": t,
            "meta_source": "path",
            "status": status,
            "error_type": "NotAVideoError" if failed else None,
            "error_message": "not a media container" if failed else None,
            "duration_s": None if failed else n_frames / FPS,
            "width": 1920,
            "height": 1080,
            "sample_fps": FPS,
            "sampled_frames": n_frames,
            "faces": n_faces,
            "students": None if failed else STUDENTS,
            "segments": 1,
            "lost_s": None if failed else 0.0,
            "corrupt_packets": None if failed else 0,
            "decode_errors": None if failed else 0,
            "missing_frames": None if failed else 0,
            "damaged_frames": None if failed else 0,
            "incomplete": None if failed else False,
            "warnings": None,
            "model_version": "bench",
            "pipeline_version": "bench",
            "config_hash": "bench000",
            "config_json": "{}",
            "run_id": "bench",
            "started_at": t,
            "finished_at": t,
            "wall_s": 1.0,
            "hash_s": 1.0,
            "analyze_s": 1.0,
            "classify_s": 1.0,
        },
    )


def build(root: Path, rows: int, courses: int, lectures: int, seed: int = 0) -> dict:
    """The dataset under ``root`` (reused when its manifest says it has the same shape)."""
    manifest = root / "manifest.json"
    shape = {"rows": rows, "courses": courses, "lectures": lectures, "seed": seed, "version": 1}
    if manifest.exists() and json.loads(manifest.read_text()).get("shape") == shape:
        return json.loads(manifest.read_text())
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    n_lectures = courses * lectures
    per = np.full(n_lectures, rows // n_lectures)
    per[: rows - per.sum()] += 1
    k = 0
    for c in range(courses):
        course = f"C{c + 1:02d}"
        for j in range(lectures):
            day = date(2024, 9, 2) + timedelta(days=7 * j)
            vid = f"{k:064x}"
            faces, frames = lecture_tables(rng, vid, course, day, int(per[k]))
            stem = f"{vid}_bench000"
            records.write_partition(root, "faces", faces, course, day, stem)
            records.write_partition(root, "frames", frames, course, day, stem)
            row = video_row(vid, course, day, "done", frames.num_rows, faces.num_rows)
            records.write_partition(root, "videos", row, course, day, f"{stem}_bench")
            k += 1
            print(f"\r{k}/{n_lectures} lectures written", end="", file=sys.stderr, flush=True)
        vid = f"f{c:063x}"  # a video that failed: a lecture_summary row with the error
        row = video_row(vid, course, day, "failed")
        records.write_partition(root, "videos", row, course, day, f"{vid}_bench000_bench")
    print(file=sys.stderr)
    size = sum(p.stat().st_size for p in root.rglob("*.parquet"))
    info = {"shape": shape, "build_s": round(time.perf_counter() - t0, 1), "bytes": size}
    manifest.write_text(json.dumps(info))
    return info


def timed(repeat: int, fn, *args) -> dict:
    """``fn(*args)`` run 1 + ``repeat`` times: the first (cold) time, the median of the others, the result."""
    times = []
    for _ in range(repeat + 1):
        t0 = time.perf_counter()
        out = fn(*args)
        times.append(time.perf_counter() - t0)
    return {"cold_s": round(times[0], 3), "median_s": round(statistics.median(times[1:]), 3), "result": out}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000, help="faces rows in all")
    ap.add_argument("--courses", type=int, default=2)
    ap.add_argument("--lectures", type=int, default=25, help="lectures per course")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs after the first (cold) one")
    ap.add_argument("--dir", default="/tmp/fer_stream_bench_reports", help="where the dataset is cached")
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args(argv)

    root = Path(a.dir) / f"rows{a.rows}_c{a.courses}_l{a.lectures}"
    info = build(root, a.rows, a.courses, a.lectures)
    con = reports.connect(root)
    n_faces = con.sql("select count(*) from faces").fetchall()[0][0]
    print(f"dataset {root}: {n_faces:,} faces, {info['bytes'] / 2**20:.0f} MiB, built in {info['build_s']} s")

    t0 = time.perf_counter()
    reports.connect(root)
    connect_s = time.perf_counter() - t0
    results = []
    print(f"{'report':20} {'scope':10} {'rows out':>9} {'cold s':>7} {'median s':>9}")
    for name in reports.report_names():
        for scope, params in (("all", {}), ("one course", {"course": "C01"})):
            if scope != "all" and "course" not in reports.report_params(name):
                continue
            con = reports.connect(root)
            r = timed(a.repeat, reports.run_report, con, name, params)
            r["result"] = r["result"].num_rows
            times = {"cold_s": r["cold_s"], "median_s": r["median_s"]}
            results.append({"report": name, "scope": scope, "rows_out": r["result"], **times})
            print(f"{name:20} {scope:10} {r['result']:>9} {r['cold_s']:>7.2f} {r['median_s']:>9.2f}")
    con = reports.connect(root)
    vid = con.sql("select video_id from lectures order by 1 limit 1").fetchall()[0][0]
    pages = []
    for scope, params in (("one lecture", {"video": vid}), ("one course", {"course": "C01"})):
        r = timed(a.repeat, reports.html_page, con, params)
        r["result"] = len(r["result"])
        pages.append({"page": scope, "cold_s": r["cold_s"], "median_s": r["median_s"], "bytes": r["result"]})
        print(f"{'html page':20} {scope:10} {r['result']:>9} {r['cold_s']:>7.2f} {r['median_s']:>9.2f}")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"connect {connect_s:.3f} s; peak RSS of this process {peak_mib:.0f} MiB")
    if a.json:
        import duckdb

        out = {
            "command": "nice -n 10 python bench/reports.py "
            + " ".join(argv if argv is not None else sys.argv[1:]),
            "machine": {
                "cpus": os.cpu_count(),
                "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                "python": platform.python_version(),
                "duckdb": duckdb.__version__,
                "load_average_1_5_15min_at_end": [round(x, 2) for x in os.getloadavg()],
            },
            "dataset": {"faces_rows": n_faces, "lectures": a.courses * a.lectures, **info},
            "connect_s": round(connect_s, 3),
            "reports": results,
            "html_pages": pages,
            "peak_rss_mib": round(peak_mib),
        }
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
