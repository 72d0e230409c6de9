"""Decode speed of fer_stream.video.iter_frames: every frame vs sampled frames, decode vs seek, gray vs RGB.

Builds a 720p 25 fps H.264 clip with PyAV (or takes --input), then reports the median wall time over
--repeat runs of each case, and "x realtime" = seconds of video per second of wall time. The numbers
behind SEEK_MIN_SAMPLE_PERIOD_KEYFRAMES in fer_stream/video/decode.py come from here. The machine it ran on
(cores, other load) changes the numbers: compare rows of one run, not runs of different machines.

    nice -n 10 python bench/decode.py --seconds 30 --repeat 3 --json /tmp/decode_bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from fer_stream.video import DecodeStats, iter_frames, probe  # noqa: E402


def make_clip(path: Path, seconds: float, fps: int = 25, gop: int = 50, size=(1280, 720)) -> Path:
    """A lecture-like clip: a static textured 'room' with a slowly moving bright block and a bit of noise.

    ``gop``: frames between keyframes (50 = 2 s, common for cameras and streaming encoders).
    """
    w, h = size
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    room = np.stack([(xx * 255 // w), (yy * 255 // h), ((xx + yy) * 127 // (w + h) + 64)], -1).astype(
        np.uint8
    )
    room = np.clip(room.astype(np.int16) + rng.integers(-12, 12, room.shape), 0, 255).astype(np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "veryfast", "crf": "23"})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.gop_size = gop
        for i in range(int(seconds * fps)):
            img = room.copy()
            x = int((i * 4) % (w - 200))
            img[200:400, x : x + 200] = (230, 200, 180)  # the "lecturer"
            img[600:640, :] = rng.integers(0, 255, (40, w, 3), dtype=np.uint8)  # changing detail
            container.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        container.mux(stream.encode())
    return path


def raw_decode(path: Path) -> int:
    """Reference: PyAV decode loop with FFmpeg-default threading, no conversion, no sampling logic."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(1 for _ in container.decode(stream))


def run_case(path: Path, sample_fps: float, mode: str, gray: bool, threads: int) -> DecodeStats:
    stats = DecodeStats()
    for _ in iter_frames(path, sample_fps, gray=gray, mode=mode, stats=stats, threads=threads):
        pass
    return stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", type=Path, help="video to measure (default: build a synthetic 720p clip)")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the synthetic clip")
    ap.add_argument("--gop", type=int, default=50, help="keyframe interval of the synthetic clip, frames")
    ap.add_argument("--repeat", type=int, default=3, help="runs per case; the median is reported")
    ap.add_argument("--threads", type=int, default=0, help="decoder threads (0: FFmpeg picks, one per core)")
    ap.add_argument("--json", type=Path, help="write the results here as JSON")
    args = ap.parse_args()

    path = args.input
    if path is None:
        path = Path(f"/tmp/fer_stream_bench_720p25_{args.seconds:g}s_gop{args.gop}.mp4")
        if not path.exists():
            t0 = time.perf_counter()
            make_clip(path, args.seconds, gop=args.gop)
            print(f"built {path} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    info = probe(path)

    # (label, sample_fps, mode, gray); sample_fps 1000 = every frame.
    cases = [
        ("decode all, RGB every frame", 1000.0, "decode", False),
        ("decode all, gray every frame", 1000.0, "decode", True),
        ("decode all, RGB at 5 fps", 5.0, "decode", False),
        ("decode all, RGB at 2 fps", 2.0, "decode", False),
        ("decode all, gray at 2 fps", 2.0, "decode", True),
        ("decode all, RGB at 1 fps", 1.0, "decode", False),
        ("decode all, RGB at 0.2 fps", 0.2, "decode", False),
        ("seek, RGB at 5 fps", 5.0, "seek", False),
        ("seek, RGB at 2 fps", 2.0, "seek", False),
        ("seek, RGB at 1 fps", 1.0, "seek", False),
        ("seek, RGB at 0.2 fps", 0.2, "seek", False),
    ]
    rows = []
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        n = raw_decode(path)
        times.append(time.perf_counter() - t0)
    rows.append(
        {
            "case": "PyAV decode loop, no conversion (reference)",
            "sample_fps": None,
            "mode": "-",
            "gray": False,
            "frames_yielded": 0,
            "frames_decoded": n,
            "seeks": 0,
            "times_s": times,
        }
    )
    for label, sample_fps, mode, gray in cases:
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            stats = run_case(path, sample_fps, mode, gray, args.threads)
            times.append(time.perf_counter() - t0)
        rows.append(
            {
                "case": label,
                "sample_fps": sample_fps,
                "mode": mode,
                "gray": gray,
                "frames_yielded": stats.frames_yielded,
                "frames_decoded": stats.frames_decoded,
                "seeks": stats.seeks,
                "times_s": times,
            }
        )
    for row in rows:
        row["median_s"] = statistics.median(row["times_s"])
        row["x_realtime"] = info.duration_s / row["median_s"]

    kf = info.keyframe_interval_s or float("nan")
    print(
        f"\n{path.name}: {info.width}x{info.height} {info.codec} {info.avg_fps:g} fps, "
        f"{info.duration_s:.1f} s, keyframe every {kf:.2f} s; {os.cpu_count()} CPUs, "
        f"threads={args.threads}, median of {args.repeat}\n"
    )
    print("| case | yielded | decoded | seeks | median s | x realtime |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['case']} | {r['frames_yielded']} | {r['frames_decoded']} | {r['seeks']} | "
            f"{r['median_s']:.2f} | {r['x_realtime']:.1f} |"
        )
    if args.json:
        meta = {
            "input": str(path),
            "width": info.width,
            "height": info.height,
            "codec": info.codec,
            "fps": info.avg_fps,
            "duration_s": info.duration_s,
            "keyframe_interval_s": info.keyframe_interval_s,
            "repeat": args.repeat,
            "threads": args.threads,
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "python": platform.python_version(),
            "av": av.__version__,
        }
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
        print(f"\nwrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
