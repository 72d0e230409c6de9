"""End-to-end speed and memory of the lecture pipeline (jobs/analyze_lectures.py) against decoding alone.

On a 720p 25 fps class (fer_stream.demo: 18 students, a close-up; or --input), at each --fps rate:
  decode s     iter_frames at that rate, RGB, nothing else: the floor;
  job s        `python jobs/analyze_lectures.py --input CLIP --output TMP --sample-fps R --force --quiet`
               as a subprocess on an embedded Ray: Python start, imports, Ray start and shutdown included;
  pipeline s   the run's own videos.wall_s (inspect submitted -> records written): Ray worker start,
               hashing, analysis, writing; without Ray's own start-up, which is job s - pipeline s;
  analyze s, classify s   worker time over all segments / classifier time over all batches (videos/);
the ratio pipeline s / decode s and "x realtime" = video seconds / processing seconds.
Memory: peak RSS of the job's process tree (driver, raylet, GCS, Ray workers, sampled every 0.2 s and
summed; shared pages such as torch's libraries and the object store count once per process, so this
overstates the true total) on a short and a long demo clip, at the first --fps: it should stay flat.
Each number is the median of --repeat runs. Demo clips are cached in /tmp (a 600 s one takes a while).

    nice -n 10 python bench/pipeline.py --seconds 60 --fps 1,2,5 --memory-seconds 10,600 --repeat 3 \\
        --json bench/results/pipeline.json

--weights untrained:lite (or :paper) times a random-initialised network of that architecture, which
costs what a trained one does, for use before fer_stream/models/weights/default.pt exists.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from fer_stream import records  # noqa: E402
from fer_stream.demo import make_demo_clip  # noqa: E402
from fer_stream.video import iter_frames, probe  # noqa: E402

try:
    import psutil
except ImportError:  # Ray depends on psutil and ships its own copy in ray/thirdparty_files
    import ray

    sys.path.append(str(Path(ray.__file__).parent / "thirdparty_files"))
    import psutil

MIB = 1 << 20


def demo_clip(seconds: float) -> Path:
    """The demo class (18 faces, 1280x720, 25 fps) of this length, built once and cached in /tmp."""
    path = Path(tempfile.gettempdir()) / f"fer_stream_bench_class_{seconds:g}s_25fps.mp4"
    if not path.exists():
        t0 = time.perf_counter()
        tmp = path.with_name(".part_" + path.name)  # renamed when complete: a killed build is no cache
        make_demo_clip(tmp, seconds=seconds, fps=25).replace(path)
        print(f"built {path} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return path


def resolve_weights(spec: str, tmp: Path) -> str:
    """``untrained:PRESET``: random weights of that architecture written to ``tmp``; else ``spec`` as is."""
    if not spec.startswith("untrained:"):
        return spec
    from fer_stream.labels import FER2013_LABELS
    from fer_stream.models import build, checkpoint

    model = build(spec.split(":", 1)[1]).eval()
    meta = checkpoint.make_meta(
        FER2013_LABELS, 0.5, 0.25, model.config.input_size, version=spec.replace(":", "-")
    )
    return str(checkpoint.save(tmp / "untrained.pt", model, meta))


def decode_only(clip: Path, fps: float) -> tuple[float, int]:
    """Seconds to yield every sampled frame as RGB (as the segment workers decode), and how many."""
    t0 = time.perf_counter()
    n = sum(1 for _ in iter_frames(clip, fps))
    return time.perf_counter() - t0, n


def tree_rss(proc: psutil.Process) -> tuple[int, int]:
    """Summed RSS in bytes of a process and all its descendants, and how many processes."""
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:  # exited meanwhile
        return 0, 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total, len(procs)


def run_job(clip: Path, fps: float, weights: str, extra: list[str] = ()) -> dict:
    """One job run on ``clip``: wall time, peak tree RSS, and the run's own numbers from its records."""
    with tempfile.TemporaryDirectory(prefix="fer_stream_bench_") as out:
        cmd = [sys.executable, str(ROOT / "jobs" / "analyze_lectures.py"), "--input", str(clip)]
        cmd += ["--output", out, "--sample-fps", f"{fps:g}", "--weights", weights, "--force", "--quiet"]
        cmd += extra
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # always an embedded Ray
        log = Path(out) / "job.log"
        peak = procs = 0
        with open(log, "wb") as f:
            t0 = time.perf_counter()
            job = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)
            ps = psutil.Process(job.pid)
            while True:
                rss, n = tree_rss(ps)
                peak, procs = max(peak, rss), max(procs, n)
                try:
                    job.wait(timeout=0.2)
                    break
                except subprocess.TimeoutExpired:
                    pass
            job_s = time.perf_counter() - t0
        if job.returncode != 0:
            tail = log.read_text(errors="replace")[-3000:]
            raise SystemExit(f"{shlex.join(cmd)} exited {job.returncode}:\n{tail}")
        video = records.read(out, "videos").to_pylist()[0]
        n_faces = records.read(out, "frames", columns=["n_faces"]).column("n_faces").to_numpy()
    return {
        "job_s": job_s,
        "pipeline_s": video["wall_s"],
        "startup_s": job_s - video["wall_s"],
        "hash_s": video["hash_s"],
        "analyze_s": video["analyze_s"],
        "classify_s": video["classify_s"],
        "audio_s": video["audio_s"] or 0.0,  # decoding the audio + detecting speech (0: not analysed)
        "speech": video["speech"],
        "frames": video["sampled_frames"],
        "segments": video["segments"],
        "faces": video["faces"],
        "faces_per_frame": float(n_faces.mean()) if len(n_faces) else 0.0,
        "peak_rss_mib": peak / MIB,
        "processes": procs,
    }


def medians(runs: list[dict]) -> dict:
    """Median of each number over the runs, and the runs themselves."""
    numbers = {k: statistics.median(r[k] for r in runs) for k, v in runs[0].items() if not isinstance(v, str)}
    return {**runs[0], **numbers, "runs": runs}


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    models = [ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")]
    return {
        "cpu": models[0] if models else platform.processor(),
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / (1 << 30), 1),
        "load_avg_1m_at_start": os.getloadavg()[0],
        "python": platform.python_version(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", type=Path, help="clip for the speed table (default: the demo class)")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the demo clip for speed")
    ap.add_argument("--fps", default="2", help="sample rates, comma-separated, e.g. 1,2,5")
    ap.add_argument("--memory-seconds", default="10,600", help="demo clip lengths for peak memory")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is reported")
    ap.add_argument("--weights", default="default", help="built-in name, weights file, or untrained:PRESET")
    ap.add_argument("--json", type=Path, help="write every result here")
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=ARGS",
        help="extra job arguments to compare, e.g. 'full=--detect-every-s 0' (repeatable; "
        "runs are interleaved so that load changes hit every variant alike)",
    )
    ap.add_argument(
        "--speech",
        action="store_true",
        help="add a synthetic speech track (espeak-ng utterances between non-speech gaps, "
        "bench/speech.py) to the clip: audio_s / job_s is then the cost of the speech signal",
    )
    args = ap.parse_args()
    variants = [(v.split("=", 1)[0], shlex.split(v.split("=", 1)[1])) for v in args.variant] or [
        ("default", [])
    ]
    rates = [float(x) for x in args.fps.split(",")]
    lengths = [float(x) for x in args.memory_seconds.split(",") if x]

    host = machine()  # before the runs: the load average says what else the machine was doing
    clip = args.input or demo_clip(args.seconds)
    if args.speech:
        from bench.speech import add_audio, speech_track

        speech_clip = clip.with_name(f"{clip.stem}_speech.mp4")
        if not speech_clip.exists():
            track, _ = speech_track(probe(clip).duration_s or args.seconds, seed=0)
            add_audio(clip, track, speech_clip)
        clip = speech_clip
    info = probe(clip)
    with tempfile.TemporaryDirectory() as tmp:
        weights = resolve_weights(args.weights, Path(tmp))
        speed = []
        for fps in rates:
            decodes = [decode_only(clip, fps) for _ in range(args.repeat)]
            runs: dict[str, list] = {name: [] for name, _ in variants}
            for _ in range(args.repeat):
                for name, extra in variants:
                    runs[name].append(run_job(clip, fps, weights, extra))
            for name, extra in variants:
                row = {"variant": name, "job_args": extra, "sample_fps": fps}
                row["decode_s"] = statistics.median(t for t, _ in decodes)
                row["decode_frames"] = decodes[0][1]  # equals the job's frames: the same sampling
                row |= medians(runs[name])
                row["pipeline_over_decode"] = row["pipeline_s"] / row["decode_s"]
                row["audio_over_job"] = row["audio_s"] / row["job_s"]  # medians of the same runs
                row["audio_share_per_run"] = [r["audio_s"] / r["job_s"] for r in runs[name]]
                row["x_realtime_pipeline"] = info.duration_s / row["pipeline_s"]
                row["x_realtime_job"] = info.duration_s / row["job_s"]
                row["x_realtime_decode"] = info.duration_s / row["decode_s"]
                speed.append(row)
        memory = []
        for seconds in lengths:
            extra = variants[0][1]
            runs = [run_job(demo_clip(seconds), rates[0], weights, extra) for _ in range(args.repeat)]
            memory.append({"clip_s": seconds, "sample_fps": rates[0], **medians(runs)})

    print(f"\n`{shlex.join(['python', *sys.argv])}`\n")
    load = host["load_avg_1m_at_start"]
    print(f"{host['cpu']}, {host['cores']} cores, {host['memory_gib']} GiB, load average {load:.1f} at start")
    print(
        f"clip {clip.name}: {info.width}x{info.height} {info.avg_fps:g} fps, {info.duration_s:.1f} s; "
        f"weights {args.weights}; median of {args.repeat}\n"
    )
    print(
        "| variant | sample fps | frames | faces/frame | decode s | job s | startup s | pipeline s "
        "| analyze s | classify s | pipeline/decode | x realtime decode | x realtime pipeline "
        "| x realtime job | audio s | audio/job |"
    )
    print("|---|" + "---:|" * 15)
    for r in speed:
        print(
            f"| {r['variant']} | {r['sample_fps']:g} | {r['frames']:.0f} | {r['faces_per_frame']:.1f} "
            f"| {r['decode_s']:.2f} "
            f"| {r['job_s']:.1f} | {r['startup_s']:.1f} | {r['pipeline_s']:.1f} | {r['analyze_s']:.1f} "
            f"| {r['classify_s']:.2f} | {r['pipeline_over_decode']:.1f} | {r['x_realtime_decode']:.1f} "
            f"| {r['x_realtime_pipeline']:.2f} | {r['x_realtime_job']:.2f} | {r['audio_s']:.2f} "
            f"| {r['audio_over_job']:.1%} |"
        )
    if memory:
        print(
            "\n| clip s | sample fps | frames | faces/frame | job s | pipeline s | peak RSS MiB | processes |"
        )
        print("|" + "---:|" * 8)
        for m in memory:
            print(
                f"| {m['clip_s']:g} | {m['sample_fps']:g} | {m['frames']:.0f} | {m['faces_per_frame']:.1f} "
                f"| {m['job_s']:.1f} | {m['pipeline_s']:.1f} | {m['peak_rss_mib']:.0f} "
                f"| {m['processes']:.0f} |"
            )
        print("\npeak RSS: summed over the job's process tree, shared pages counted once per process")
    if args.json:
        meta = {"command": sys.argv, "machine": host, "clip": str(clip), "duration_s": info.duration_s}
        meta |= {"width": info.width, "height": info.height, "fps": info.avg_fps, "weights": args.weights}
        args.json.write_text(json.dumps({"meta": meta, "speed": speed, "memory": memory}, indent=2))
        print(f"\nwrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
