"""Decode-only versus fer_stream end to end, over sample rate x resolution x faces per frame; 1 versus 2
video workers; and the projected videos per hour of a cluster node, with the arithmetic printed.

Clips (built by code from the demo class of fer_stream.demo, cached in /tmp):
  class 720p   the demo class itself: 18 students + a teacher close-up, 1280x720, 25 fps (17 faces found);
  class 1080p  the same frames scaled to 1920x1080 (faces 1.5x larger, 2.25x the pixels);
  1 face       only the teacher close-up (256 px at 720p, jittered a few px per frame), the rest of
               the room blanked; at 720p and scaled to 1080p.
All four are H.264 (libx264 defaults, as make_demo_clip writes) of the same length.

Matrix: for each clip and --fps rate, the median over --repeat runs of
  decode s    fer_stream.video.iter_frames at that rate alone (RGB, FFmpeg threads): the floor;
  pipeline s  the job's own wall time (jobs/analyze_lectures.py as a subprocess, records written),
              without Python/Ray start-up; job s with it (both from bench/pipeline.py's run_job);
the ratio pipeline s / decode s and x realtime = video seconds / seconds. The job runs with
--num-cpus WORKERS+1 (the CPU classifier actor holds 1 logical CPU; --workers, default 1).
Scaling: the 720p class (--scaling-seconds >= 60, so that the pipeline cuts it into 2 segments of
>= 30 s) with 1 video worker (--num-cpus 2) and with 2 (--num-cpus 3), runs interleaved.
Projection: from the 1-worker run's CPU seconds per video second, worker (decode, detect, align)
and classifier, a node of --node-cores cores and --lecture-min minute lectures, printed step by step.

    # full (~20 min on 2 idle cores)
    nice -n 10 python bench/matrix.py --seconds 60 --repeat 3 --json bench/results/matrix.json
    # quick (~3 min): 10 s clips, 1 run each, scaling on 60 s
    nice -n 10 python bench/matrix.py --quick
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from bench.pipeline import decode_only, demo_clip, machine, medians, resolve_weights, run_job  # noqa: E402
from fer_stream.video import iter_frames, probe  # noqa: E402

CLOSEUP = (slice(440, 696), slice(1010, 1266))  # the teacher close-up in fer_stream.demo's 1280x720 frame
BOARD_ROWS = slice(0, 40)  # the board strip at the top of the demo frame
HEIGHTS = {720: (1280, 720), 1080: (1920, 1080)}


def one_face(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The demo frame with only the teacher close-up left (shifted by up to 3 px), the room blanked."""
    out = np.full_like(frame, 200)  # the demo's wall colour
    out[BOARD_ROWS] = frame[BOARD_ROWS]
    dy, dx = (int(v) for v in rng.integers(-3, 4, 2))
    ys, xs = CLOSEUP
    out[ys.start + dy : ys.stop + dy, xs.start + dx : xs.stop + dx] = frame[ys, xs]
    return out


def matrix_clip(seconds: float, height: int = 720, faces: str = "class") -> Path:
    """The demo class (``"class"``) or its teacher alone (``"1"``), 720 or 1080 lines; cached in /tmp."""
    base = demo_clip(seconds)
    if (height, faces) == (720, "class"):
        return base
    path = Path(tempfile.gettempdir()) / f"fer_stream_bench_{faces}face_{height}p_{seconds:g}s_25fps.mp4"
    if path.exists():
        return path
    t0 = time.perf_counter()
    width, height = HEIGHTS[height]
    rng = np.random.default_rng(0)
    tmp = path.with_name(".part_" + path.name)  # renamed when complete: a killed build is no cache
    with av.open(str(tmp), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=25)  # libx264 defaults, as make_demo_clip encodes
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for _, _, image in iter_frames(base, 25.0):  # every frame of the 720p class
            image = one_face(image, rng) if faces == "1" else image
            if image.shape[0] != height:
                image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())
    tmp.replace(path)
    print(f"built {path} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return path


def node_projection(
    worker_s: float, classify_s: float, cores: int, lecture_min: float, classifiers: int | None = None
) -> dict:
    """Videos per hour of one node, from CPU seconds spent per second of video.

    Args:
        worker_s: video-worker seconds (decode, detect, landmarks, align) per second of video.
        classify_s: classifier seconds per second of video (one CPU per classifier actor).
        cores: CPUs of the node; each runs one video worker or one classifier actor.
        lecture_min: minutes of one lecture video.
        classifiers: classifier actors; ``None``: the count that balances both stages.

    Returns ``classifiers``, ``workers``, ``x_realtime`` (video seconds per wall second of the node,
    the slower of both stages), ``videos_per_hour``, and ``steps``: the arithmetic as text lines.
    Assumes every core busy (lectures queue up) and work that scales linearly with cores.
    """
    if classifiers is None:  # workers / worker_s = classifiers / classify_s at the balance point
        ideal = cores * classify_s / (worker_s + classify_s)
        options = {min(max(1, k), cores - 1) for k in (math.floor(ideal), math.ceil(ideal))}
        classifiers = max(options, key=lambda k: min((cores - k) / worker_s, k / classify_s))
    workers = cores - classifiers
    if workers < 1 or classifiers < 1:
        raise ValueError(f"{cores} cores cannot hold {classifiers} classifier(s) and a video worker")
    by_workers, by_classifiers = workers / worker_s, classifiers / classify_s
    x_rt = min(by_workers, by_classifiers)
    per_hour = 3600 * x_rt / (60 * lecture_min)
    steps = [
        f"per second of video: {worker_s:.3f} worker CPU-s + {classify_s:.3f} classifier CPU-s "
        f"= {worker_s + classify_s:.3f} CPU-s",
        f"{cores} cores = {workers} video workers + {classifiers} classifier actor(s)",
        f"workers: {workers} / {worker_s:.3f} = {by_workers:.1f} video-s per s; "
        f"classifiers: {classifiers} / {classify_s:.3f} = {by_classifiers:.1f} video-s per s",
        f"node: min = {x_rt:.1f}x realtime "
        f"({'classifier' if by_classifiers < by_workers else 'worker'}-bound)",
        f"{lecture_min:g}-min lecture = {60 * lecture_min:g} video-s: "
        f"3600 x {x_rt:.1f} / {60 * lecture_min:g} = {per_hour:.1f} videos per hour per node",
    ]
    return {
        "cores": cores,
        "lecture_min": lecture_min,
        "classifiers": classifiers,
        "workers": workers,
        "x_realtime": x_rt,
        "videos_per_hour": per_hour,
        "steps": steps,
    }


def cell(clip: Path, fps: float, weights: str, job_args: list[str], repeat: int) -> dict:
    """Decode-only and job runs on one clip at one rate, interleaved; medians and ratios."""
    info = probe(clip)
    decodes, jobs = [], []
    for _ in range(repeat):
        decodes.append(decode_only(clip, fps)[0])
        jobs.append(run_job(clip, fps, weights, job_args))
    row = {"clip": clip.name, "width": info.width, "height": info.height, "duration_s": info.duration_s}
    row |= {"sample_fps": fps, "job_args": job_args, "decode_s": statistics.median(decodes)}
    row |= medians(jobs)
    row["pipeline_over_decode"] = row["pipeline_s"] / row["decode_s"]
    row["x_realtime_decode"] = info.duration_s / row["decode_s"]
    row["x_realtime_pipeline"] = info.duration_s / row["pipeline_s"]
    row["x_realtime_job"] = info.duration_s / row["job_s"]
    return row


def print_rows(rows: list[dict], first: str) -> None:
    print(
        f"| {first} | sample fps | frames | faces/frame | segments | decode s | pipeline s | job s "
        "| pipeline/decode | x realtime decode | x realtime pipeline | x realtime job | peak RSS MiB |"
    )
    print("|---|" + "---:|" * 12)
    for r in rows:
        print(
            f"| {r['label']} | {r['sample_fps']:g} | {r['frames']:.0f} | {r['faces_per_frame']:.1f} "
            f"| {r['segments']:.0f} | {r['decode_s']:.2f} | {r['pipeline_s']:.1f} | {r['job_s']:.1f} "
            f"| {r['pipeline_over_decode']:.1f} | {r['x_realtime_decode']:.1f} "
            f"| {r['x_realtime_pipeline']:.2f} | {r['x_realtime_job']:.2f} | {r['peak_rss_mib']:.0f} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the matrix clips")
    ap.add_argument("--fps", default="1,2,5", help="sample rates, comma-separated")
    ap.add_argument("--heights", default="720,1080", help="720 and/or 1080")
    ap.add_argument("--faces", default="1,class", help="'1' (teacher alone) and/or 'class' (17 faces)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per cell; medians are reported")
    ap.add_argument("--workers", type=int, default=1, help="video workers in the matrix (--num-cpus W+1)")
    ap.add_argument("--scaling-seconds", type=float, default=60.0, help="clip for 1 vs 2 workers (>= 60)")
    ap.add_argument("--scaling-fps", type=float, default=2.0)
    ap.add_argument("--scaling-repeat", type=int, default=None, help="default: --repeat")
    ap.add_argument("--node-cores", type=int, default=16, help="cores of the projected cluster node")
    ap.add_argument("--lecture-min", type=float, default=60.0, help="minutes of a projected lecture")
    ap.add_argument("--weights", default="default", help="built-in name, weights file, or untrained:PRESET")
    ap.add_argument("--quick", action="store_true", help="10 s clips, 1 run each (scaling: 60 s, 1 run)")
    ap.add_argument("--json", type=Path, help="write every result here")
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.repeat = 10.0, 1
    scaling_repeat = args.scaling_repeat or args.repeat
    rates = [float(x) for x in args.fps.split(",")]
    cases = [(int(h), f) for f in args.faces.split(",") for h in args.heights.split(",")]
    matrix_args = ["--num-cpus", str(args.workers + 1)]

    host = machine()  # before the runs: the load average says what else the machine was doing
    t_start = time.perf_counter()
    clips = {case: matrix_clip(args.seconds, *case) for case in cases}
    scaling_clip = demo_clip(args.scaling_seconds)
    with tempfile.TemporaryDirectory() as tmp:
        weights = resolve_weights(args.weights, Path(tmp))
        rows = []
        for (height, faces), clip in clips.items():
            for fps in rates:
                row = cell(clip, fps, weights, matrix_args, args.repeat)
                row["label"] = f"{'1 face' if faces == '1' else 'class'} {height}p"
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "runs"}), file=sys.stderr, flush=True)
        runs: dict[int, list] = {1: [], 2: []}
        for _ in range(scaling_repeat):  # interleaved, so that load changes hit both alike
            for w in runs:
                runs[w].append(run_job(scaling_clip, args.scaling_fps, weights, ["--num-cpus", str(w + 1)]))
    info = probe(scaling_clip)
    scaling = []
    for w, rs in runs.items():
        row = {"label": f"{w} worker{'s' if w > 1 else ''}", "sample_fps": args.scaling_fps, **medians(rs)}
        row["decode_s"] = statistics.median(decode_only(scaling_clip, args.scaling_fps)[0] for _ in range(3))
        row["pipeline_over_decode"] = row["pipeline_s"] / row["decode_s"]
        row["x_realtime_decode"] = info.duration_s / row["decode_s"]
        row["x_realtime_pipeline"] = info.duration_s / row["pipeline_s"]
        row["x_realtime_job"] = info.duration_s / row["job_s"]
        scaling.append(row)
    one, two = scaling
    speedup = one["pipeline_s"] / two["pipeline_s"]
    # CPU seconds per video second, from the 1-worker runs (worker and classifier on their own core)
    worker_s, classify_s = one["analyze_s"] / info.duration_s, one["classify_s"] / info.duration_s
    node = node_projection(worker_s, classify_s, args.node_cores, args.lecture_min)
    default_node = node_projection(worker_s, classify_s, args.node_cores, args.lecture_min, classifiers=1)
    here = 2 / (worker_s + classify_s)  # both cores busy, the classifier sharing them (--num-cpus 3)

    print(f"\n`{shlex.join(['python', *sys.argv])}`\n")
    load = host["load_avg_1m_at_start"]
    print(f"{host['cpu']}, {host['cores']} cores, {host['memory_gib']} GiB, load average {load:.1f} at start")
    print(f"clips {args.seconds:g} s, 25 fps; job {shlex.join(matrix_args)}; median of {args.repeat}\n")
    print_rows(rows, "clip")
    print(
        f"\nScaling: {scaling_clip.name} ({info.width}x{info.height}, {info.duration_s:.0f} s) at "
        f"{args.scaling_fps:g} fps, median of {scaling_repeat}\n"
    )
    print_rows(scaling, "video workers")
    print(
        f"\n2 workers / 1 worker: {speedup:.2f}x faster "
        f"(pipeline s {one['pipeline_s']:.1f} -> {two['pipeline_s']:.1f})"
    )
    print(
        f"\nProjection, {args.node_cores}-core node, {args.lecture_min:g}-min lectures at "
        f"{args.scaling_fps:g} fps, 720p, 17 faces (CPU seconds from the 1-worker run):"
    )
    for line in node["steps"]:
        print(f"  {line}")
    print(f"with the default single classifier actor: {default_node['videos_per_hour']:.1f} videos per hour")
    for line in default_node["steps"][1:4]:
        print(f"  {line}")
    print(
        f"check on this machine: 2 cores / {worker_s + classify_s:.3f} CPU-s = {here:.2f}x realtime "
        f"if both cores were busy all along; measured with 2 workers: {two['x_realtime_pipeline']:.2f}x"
    )
    wall = time.perf_counter() - t_start
    print(f"\nbenchmark wall time {wall / 60:.1f} min", file=sys.stderr)
    if args.json:
        meta = {"command": sys.argv, "machine": host, "wall_s": wall, "weights": args.weights}
        meta |= {"clips": {f"{f} {h}p": str(c) for (h, f), c in clips.items()}}
        meta["scaling_clip"] = str(scaling_clip)
        out = {"meta": meta, "matrix": rows, "scaling": scaling, "speedup_2_workers": speedup}
        out |= {"projection": node, "projection_default_classifier": default_node, "budget_here": here}
        args.json.write_text(json.dumps(out, indent=2))
        print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
