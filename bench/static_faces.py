"""Static faces (issue 22): pictures are not people. Measures ``fer_stream.faces.liveness`` on real data.

Real people (every track that is not in a pasted picture):

* ``woman``: WolfgangLanger_Pexels.mp4 (19.7 s, varied expressions, looks away);
* ``man``: single_face.mp4, a man sitting still facing the camera, 2.4 s: shorter than the evidence
  a judgement needs, so his track stays undecided; ``man_bounce20s`` plays it forward, backward,
  forward ... to 20 s so it can be judged (looping adds no pose he did not take: if anything it
  makes him look stiller than a real 20 s would);
* ``man_then_cartoon``: face_noface.mov (the same man, then an animation);
* ``classroom0..4``: runs of consecutive real classroom CCTV frames (classroom_heads; students at
  20-60 px, most sitting still over a desk). The frames are 5 s apart and are played at 2 fps, one
  real frame per sample: a track of 20 samples spans 100 s of the real lesson.

The video bases are also shrunk (``x0.5``, ``x0.25``, on a grey canvas) so the same people are seen
at 37-110 px. Pictures, composited into those real clips at run time (nothing composited is stored):

* ``poster20..80``: a face of a real photo (faces/, identity/), cut out with its head and shoulders,
  pasted at a fixed place, face 20-80 px wide (each condition uses the next photo);
* ``photo_*``: a whole real group photo (multi_face.jpg, obama_and_biden.jpg) shrunk to 250 px wide;
* ``screen120``, ``screen240``: one whole frame of another real clip shrunk to that width and pasted
  unchanged into every frame (a frozen video on a screen).

Each clip is written as H.264 either without loss (``lossless``: the picture's pixels identical in
every frame), at CRF 35 with a keyframe every second (``crf35``: heavy compression noise renewed at
every keyframe), or at CRF 35 after adding camera-like noise (Gaussian, sigma 3 grey levels, new in
every frame) and a slow +-8 % brightness drift (``crf35_noisy``). The project's face path runs on it
(``make_face_stage(PipelineConfig(), 48)``, ``FaceTracker``, 2 fps), every sampled frame goes to a
``MotionMeter`` and ``static_tracks`` judges the tracks. A track is a picture's when its mean box
centre lies in a pasted picture.

Reported: rows (faces per sampled frame) and tracks of real people flagged static (target: at most
2 % of rows) and of pictures (target: all), rows of pictures that would still get a student once
static tracks are left out of ``assign_students``, per condition and in total; the evidence of every
track (so thresholds can be re-derived from the JSON), the same with tracks cut to their first k
samples (why ``min_samples``), two kinds of evidence measured and not used (landmark shape jitter,
box size jitter), and the demo lecture (``fer_stream.demo``) with and without a pasted still face.

    nice -n 5 python bench/static_faces.py --json bench/results/static_faces.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from fer_stream.config import PipelineConfig  # noqa: E402
from fer_stream.faces.liveness import MotionMeter, StillnessConfig, TrackMotion, static_tracks  # noqa: E402
from fer_stream.faces.track import FaceTracker, TrackSummary, assign_students  # noqa: E402
from fer_stream.lecture import analyze_video, make_face_stage  # noqa: E402
from fer_stream.video import iter_frames  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
SAMPLE_FPS = 2.0  # the pipeline's default (PipelineConfig.sample_fps)
FACE_SIZES = (20, 28, 40, 56, 80)  # pasted faces' widths, pixels: the back row to the front row
ENCODINGS = ("lossless", "crf35", "crf35_noisy")
PREFIXES = (4, 6, 8, 10)  # tracks also judged on their first k samples only


# --------------------------------------------------------------------------------------------------
# Real clips


@dataclass(frozen=True)
class Base:
    """A real clip: its frames per second, RGB frames on demand, and where pictures may go
    (``free``: x from, x to, in pixels: no real face there)."""

    name: str
    fps: float
    frames: Callable[[], Iterator[np.ndarray]] = field(repr=False)
    free: tuple[int, int]


def video_base(name: str, path: Path, free: tuple[int, int], bounce_to_s: float = 0.0) -> Base:
    """A video; ``bounce_to_s > 0``: played forward, backward, forward ... to that length."""
    with av.open(str(path)) as c:
        fps = float(c.streams.video[0].average_rate)

    def frames() -> Iterator[np.ndarray]:
        if not bounce_to_s:
            yield from (img for _, _, img in iter_frames(path, fps))
            return
        clip = [img for _, _, img in iter_frames(path, fps)]
        cycle = clip + clip[-2:0:-1]  # no frame twice at the turns
        for i in range(int(bounce_to_s * fps)):
            yield cycle[i % len(cycle)]

    return Base(name, fps, frames, free)


def classroom_runs(min_frames: int = 8) -> list[list[Path]]:
    """Runs of consecutive classroom CCTV frames (5 s apart) without a cut or an exposure jump
    (mean absolute grey difference to the previous frame under 15 levels; within a run it is 4-12)."""
    files = sorted((SHARED / "classroom_heads" / "images").glob("frame_*.jpg"))
    runs: list[list[Path]] = [[]]
    prev = None
    for f in files:
        small = cv2.resize(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE), (350, 225)).astype(np.float32)
        if prev is not None and np.abs(small - prev).mean() >= 15:
            runs.append([])
        runs[-1].append(f)
        prev = small
    return [r for r in runs if len(r) >= min_frames]


def classroom_base(k: int, run: list[Path]) -> Base:
    """One run of classroom frames played at the sampling rate: one real frame per sample. Pictures go
    on the curtain and window at the top left, above every labelled head (x < 270, y < 240 px)."""

    def frames() -> Iterator[np.ndarray]:
        for f in run:
            yield cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB)

    return Base(f"classroom{k}", SAMPLE_FPS, frames, (8, 270))


def bases() -> dict[str, Base]:
    v = SHARED / "videos"
    out = [
        video_base("woman", v / "WolfgangLanger_Pexels.mp4", (8, 296)),  # her face: x >= 306
        video_base("man", v / "single_face.mp4", (380, 632)),  # his face: x 214-370
        video_base("man_bounce20s", v / "single_face.mp4", (380, 632), bounce_to_s=20.0),
        video_base("man_then_cartoon", v / "face_noface.mov", (8, 310)),  # his face: x >= 319
    ]
    out += [classroom_base(k, run) for k, run in enumerate(classroom_runs())]
    return {b.name: b for b in out}


# --------------------------------------------------------------------------------------------------
# Pictures: fixed RGB patches


def still_faces() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, RGB photo, face box xyxy)``: the largest face (>= 40 px) of every real photo, found
    by the project's detector."""
    from fer_stream.faces.mtcnn import MTCNN

    detector = MTCNN(min_face_px=40)
    out = []
    files = sorted((SHARED / "faces").glob("*.jpg")) + sorted((SHARED / "identity").glob("*/*.jpg"))
    for f in files:
        rgb = cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB)
        det = detector.detect(rgb)
        if len(det):
            k = int(np.argmax(det.wh[:, 0]))
            out.append((f"{f.parent.name}/{f.name}", rgb, det.xyxy[k]))
    return out


def portrait(rgb: np.ndarray, box: np.ndarray, face_px: int) -> np.ndarray:
    """The face in ``box`` with its head and shoulders (a square 2.2 face widths wide, centred a
    little below the face), scaled so the face is ``face_px`` wide: a printed portrait."""
    w = box[2] - box[0]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2 + 0.2 * w
    half, scale = 1.1 * w, face_px / w
    m = np.array([[scale, 0, (half - cx) * scale], [0, scale, (half - cy) * scale]], np.float32)
    side = int(round(2 * half * scale))
    return cv2.warpAffine(rgb, m, (side, side), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def shrunk(rgb: np.ndarray, width: int) -> np.ndarray:
    """A whole image shrunk to ``width`` pixels, aspect kept."""
    h = int(round(rgb.shape[0] * width / rgb.shape[1]))
    return cv2.resize(rgb, (width, h), interpolation=cv2.INTER_AREA)


# --------------------------------------------------------------------------------------------------
# Composited clips


@dataclass(frozen=True)
class Condition:
    """One clip: a real base, its frames scaled by ``scale`` (people smaller, centred on a grey
    canvas of the original size), pictures ``(x, y, RGB patch)`` pasted at fixed places, an encoding."""

    name: str
    base: str
    encoding: str
    scale: float = 1.0
    pictures: tuple = ()

    def rects(self) -> list[tuple[int, int, int, int]]:
        return [(x, y, x + p.shape[1], y + p.shape[0]) for x, y, p in self.pictures]


def composite(frame: np.ndarray, cond: Condition, i: int, fps: float, rng: np.random.Generator) -> np.ndarray:
    """Frame ``i`` of ``cond``: scaled base, pictures pasted, camera noise for ``crf35_noisy``."""
    h, w = frame.shape[:2]
    if cond.scale != 1.0:
        small = cv2.resize(frame, None, fx=cond.scale, fy=cond.scale, interpolation=cv2.INTER_AREA)
        frame = np.full_like(frame, 128)
        y0, x0 = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
        frame[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small
    else:
        frame = frame.copy()
    for x, y, patch in cond.pictures:
        frame[y : y + patch.shape[0], x : x + patch.shape[1]] = patch
    if cond.encoding == "crf35_noisy":
        gain = 1.0 + 0.08 * np.sin(2 * np.pi * i / (6.0 * fps))  # lights or auto-exposure, 6 s period
        frame = (frame.astype(np.float32) * gain + rng.normal(0, 3.0, frame.shape)).clip(0, 255)
    return frame.astype(np.uint8)


def write_clip(path: Path, cond: Condition, base: Base) -> None:
    """Encode ``cond`` to ``path`` (H.264 in mp4)."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=Fraction(base.fps).limit_denominator(1001))
        if cond.encoding == "lossless":
            stream.options = {"qp": "0", "preset": "ultrafast"}
        elif cond.encoding == "default":  # libx264's defaults, as fer_stream.demo encodes
            pass
        else:  # heavy compression, and a keyframe every second renews its noise
            stream.options = {"crf": "35", "g": str(max(1, round(base.fps)))}
        stream.pix_fmt = "yuv420p"
        for i, frame in enumerate(base.frames()):
            frame = composite(frame, cond, i, base.fps, rng)
            h, w = frame.shape[0] // 2 * 2, frame.shape[1] // 2 * 2  # yuv420p: even sides
            if i == 0:
                stream.width, stream.height = w, h
            image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:h, :w]), format="rgb24")
            out.mux(stream.encode(image))
        out.mux(stream.encode())


def first_frame_at(path: Path, t: float) -> np.ndarray:
    """The first sampled frame (at 2 fps) at or after ``t`` seconds."""
    return next(img for _, pts, img in iter_frames(path, SAMPLE_FPS) if pts >= t)


def conditions(bases: dict[str, Base]) -> list[Condition]:
    """Every clip measured: each real base with each kind of picture, size and encoding."""
    stills = still_faces()
    photos = [
        (Path(n).stem, rgb)
        for n, rgb, _ in stills
        if n in ("faces/multi_face.jpg", "test/obama_and_biden.jpg")
    ]
    # a frozen screen shows one real frame: the woman at 6 s (over the other clips), the man at 1 s
    screens = {
        "woman": first_frame_at(SHARED / "videos" / "WolfgangLanger_Pexels.mp4", 6.0),
        "man": first_frame_at(SHARED / "videos" / "single_face.mp4", 1.0),
    }
    out: list[Condition] = []
    k = 0  # the next still photo for a poster
    for base in bases.values():

        def at(patch: np.ndarray, free: tuple[int, int] = base.free) -> tuple[int, int, np.ndarray]:
            return (free[0] + (free[1] - free[0] - patch.shape[1]) // 2, 8, patch)  # centred, at the top

        video = not base.name.startswith("classroom")
        for enc in ENCODINGS:
            for scale in (1.0, 0.5, 0.25) if video and base.name != "man" else (1.0,):
                out.append(Condition(f"{base.name}/x{scale:g}/none/{enc}", base.name, enc, scale))
                for size in FACE_SIZES if scale == 1.0 else (28, 56):
                    name, rgb, box = stills[k % len(stills)]
                    k += 1
                    pic = (at(portrait(rgb, box, size)),)
                    out.append(
                        Condition(f"{base.name}/x{scale:g}/poster{size}/{enc}", base.name, enc, scale, pic)
                    )
            for name, rgb in photos:
                pic = (at(shrunk(rgb, 250)),)
                out.append(Condition(f"{base.name}/x1/photo_{name}/{enc}", base.name, enc, 1.0, pic))
            shown = screens["man" if base.name == "woman" else "woman"]
            for width in (120, 240):
                pic = (at(shrunk(shown, width)),)
                out.append(Condition(f"{base.name}/x1/screen{width}/{enc}", base.name, enc, 1.0, pic))
    return out


# --------------------------------------------------------------------------------------------------
# Measurement


def landmark_jitter(lm: np.ndarray) -> float:
    """Median over samples of the 5 detector points' distance from the track's mean shape after the
    best similarity fit (rotation, scale, shift), in shape radii: evidence measured, not used."""
    if len(lm) < 2 or not np.isfinite(lm).all():
        return float("nan")
    shapes = lm - lm.mean(1, keepdims=True)
    ref = shapes.mean(0)
    res = []
    for p in shapes:
        u, _, vt = np.linalg.svd(p.T @ ref)
        r = u @ vt
        s = np.sqrt((ref**2).sum() / max((p**2).sum(), 1e-9))
        res.append(np.sqrt(((s * p @ r - ref) ** 2).sum(1).mean() / (ref**2).sum(1).mean()))
    return float(np.median(res))


@dataclass
class Run:
    """One clip through the face path: the meters' evidence, the tracker's tracks, rows per track."""

    motion: TrackMotion
    prefix: dict[int, TrackMotion]
    tracks: TrackSummary
    frame_wh: tuple[int, int]
    rows: dict[int, int]
    centre: dict[int, np.ndarray]  # mean box centre
    lm_jitter: dict[int, float]
    size_spread: dict[int, float]  # std of log box width


def measure(path: Path, stage) -> Run:
    """The face path on ``path`` at 2 fps, a MotionMeter fed every sampled frame (and one per
    prefix length, fed each track's first k samples only)."""
    tracker, meter = FaceTracker(), MotionMeter()
    prefix = {k: MotionMeter() for k in PREFIXES}
    seen: dict[int, int] = {}
    boxes: dict[int, list] = {}
    points: dict[int, list] = {}
    frame_wh = (0, 0)
    for ff in analyze_video(path, stage, tracker, sample_fps=SAMPLE_FPS):
        frame_wh = ff.frame_wh
        meter.update(ff.track_id, ff.pts_s, ff.det.xyxy, ff.crops, ff.det.landmarks)
        for k, m in prefix.items():
            keep = np.array([seen.get(t, 0) < k for t in ff.track_id.tolist()], bool)
            m.update(ff.track_id[keep], ff.pts_s, ff.det.xyxy[keep], ff.crops[keep], ff.det.landmarks[keep])
        for i, t in enumerate(ff.track_id.tolist()):
            seen[t] = seen.get(t, 0) + 1
            boxes.setdefault(t, []).append(ff.det.xyxy[i])
            points.setdefault(t, []).append(ff.det.landmarks[i])
    box = {t: np.array(b, np.float64) for t, b in boxes.items()}
    return Run(
        motion=meter.summary(),
        prefix={k: m.summary() for k, m in prefix.items()},
        tracks=tracker.tracks,
        frame_wh=frame_wh,
        rows=seen,
        centre={t: ((b[:, :2] + b[:, 2:]) / 2).mean(0) for t, b in box.items()},
        lm_jitter={t: landmark_jitter(np.array(p, np.float64)) for t, p in points.items()},
        size_spread={t: float(np.log(b[:, 2] - b[:, 0]).std()) for t, b in box.items()},
    )


def is_picture(centre: np.ndarray, rects: list[tuple[int, int, int, int]]) -> bool:
    return any(x0 <= centre[0] <= x1 and y0 <= centre[1] <= y1 for x0, y0, x1, y1 in rects)


def judge(run: Run, rects: list, config: StillnessConfig) -> tuple[list[dict], dict]:
    """Per-track evidence and decision, and the condition's counts."""
    static = set(static_tracks(run.motion, config).tolist())
    m = run.motion
    enough = (m.samples >= config.min_samples) & (m.last_pts_s - m.first_pts_s >= config.min_seconds)
    change = m.change(config.change_quantile)
    # students once static tracks are left out (the integration issue 22 asks for)
    keep = ~np.isin(run.tracks.track_id, list(static))
    t = run.tracks
    kept = TrackSummary(
        t.track_id[keep], t.first_pts_s[keep], t.last_pts_s[keep], t.hits[keep], t.mean_cxcywh[keep]
    )
    student = assign_students(kept, run.frame_wh)
    cut = {k: dict(zip(pm.track_id.tolist(), pm.samples.tolist())) for k, pm in run.prefix.items()}
    cut_static = {k: set(static_tracks(pm, _no_minimum(config)).tolist()) for k, pm in run.prefix.items()}
    tracks = []
    for i, tid in enumerate(m.track_id.tolist()):
        kind = "picture" if is_picture(run.centre[tid], rects) else "person"
        # judged on its first k samples, where it has more than k
        prefix = {k: tid in cut_static[k] for k in run.prefix if cut[k][tid] == k and m.samples[i] > k}
        tracks.append(
            {
                "track_id": tid,
                "kind": kind,
                "rows": run.rows[tid],
                "seconds": round(float(m.last_pts_s[i] - m.first_pts_s[i]), 2),
                "width_px": round(float(m.mean_width[i]), 1),
                "centre_spread": round(float(m.centre_spread[i]), 4),
                "change_q": None if np.isnan(change[i]) else round(float(change[i]), 4),
                "landmark_jitter": None if np.isnan(run.lm_jitter[tid]) else round(run.lm_jitter[tid], 4),
                "size_spread": round(run.size_spread[tid], 4),
                "decision": "static" if tid in static else ("live" if enough[i] else "undecided"),
                "student": tid in student,
                "prefix": prefix,
            }
        )
    counts = {}
    for kind in ("person", "picture"):
        mine = [r for r in tracks if r["kind"] == kind]
        counts[kind] = {
            "tracks": len(mine),
            "rows": sum(r["rows"] for r in mine),
            "tracks_static": sum(r["decision"] == "static" for r in mine),
            "rows_static": sum(r["rows"] for r in mine if r["decision"] == "static"),
            "rows_undecided": sum(r["rows"] for r in mine if r["decision"] == "undecided"),
            "rows_with_student": sum(r["rows"] for r in mine if r["student"]),
        }
    return tracks, counts


def _no_minimum(config: StillnessConfig) -> StillnessConfig:
    """``config`` without the minimum evidence: how tracks cut short would be judged."""
    return StillnessConfig(2, 0.0, config.change_quantile, config.max_change, config.max_centre_spread)


def demo_conditions(tmp: Path, seconds: float) -> list[tuple[Condition, Base]]:
    """The demo lecture (seeds 0-2) as made, and seed 0 with one LFW face the demo does not seat
    (indices 90-99) pasted unanimated in the free top-right corner: a student photo on the wall."""
    from fer_stream import demo

    lfw, _ = demo._faces()
    out = []
    for seed in (0, 1, 2):
        clip = demo.make_demo_clip(tmp / f"demo{seed}.mp4", seconds=seconds, fps=10, seed=seed)
        base = video_base(f"demo_seed{seed}", clip, (1160, 1272))
        out.append((Condition(f"demo_seed{seed}/x1/none/default", base.name, "default"), base))
        for k in range(90, 100) if seed == 0 else ():
            face = cv2.resize(lfw[k], (demo.FACE, demo.FACE), interpolation=cv2.INTER_CUBIC)
            tile = np.repeat(cv2.copyMakeBorder(face, 20, 20, 20, 20, cv2.BORDER_REPLICATE)[..., None], 3, 2)
            pic = ((1160, 80, tile),)
            out.append(
                (Condition(f"demo_seed0/x1/still_lfw{k}/default", base.name, "default", 1.0, pic), base)
            )
    return out


# --------------------------------------------------------------------------------------------------
# Report


def totals(results: list[dict], key: Callable[[dict], str]) -> dict[str, dict]:
    """Counts summed over the conditions grouped by ``key(result)``."""
    out: dict[str, dict] = {}
    for r in results:
        g = out.setdefault(key(r), {"person": {}, "picture": {}})
        for kind in ("person", "picture"):
            for c, v in r["counts"][kind].items():
                g[kind][c] = g[kind].get(c, 0) + v
    for g in out.values():
        p, q = g["person"], g["picture"]
        g["person_rows_static_share"] = round(p["rows_static"] / p["rows"], 4) if p.get("rows") else None
        g["picture_rows_static_share"] = round(q["rows_static"] / q["rows"], 4) if q.get("rows") else None
    return out


def separation(tracks: list[dict], field_: str, decided_only: bool = True) -> dict:
    """Largest value among picture tracks and smallest among people's, over judged tracks."""
    sel = [t for t in tracks if t[field_] is not None and (t["decision"] != "undecided" or not decided_only)]
    pic = [t[field_] for t in sel if t["kind"] == "picture"]
    per = [t[field_] for t in sel if t["kind"] == "person"]
    return {
        "picture_max": max(pic) if pic else None,
        "picture_p99": float(np.quantile(pic, 0.99)) if pic else None,
        "person_min": min(per) if per else None,
        "person_p01": float(np.quantile(per, 0.01)) if per else None,
        "tracks": [len(pic), len(per)],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", default="", help="run only conditions whose name contains this")
    ap.add_argument("--demo-seconds", type=float, default=20.0)
    ap.add_argument("--json")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    config = StillnessConfig()
    stage = make_face_stage(PipelineConfig(), crop_size=48)
    all_bases = bases()
    t_start = time.perf_counter()
    results, all_tracks = [], []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        todo = [(c, all_bases[c.base]) for c in conditions(all_bases)] + demo_conditions(tmp, a.demo_seconds)
        for cond, base in todo:
            if a.only not in cond.name:
                continue
            clip = tmp / "clip.mp4"
            write_clip(clip, cond, base)
            run = measure(clip, stage)
            tracks, counts = judge(run, cond.rects(), config)
            base_name, scale, picture, enc = cond.name.split("/")
            names = {
                "condition": cond.name,
                "base": base_name,
                "scale": scale,
                "picture": picture,
                "encoding": enc,
            }
            results.append({**names, "counts": counts, "tracks": tracks})
            all_tracks += [{**t, "condition": cond.name} for t in tracks]
            p, q = counts["person"], counts["picture"]
            print(
                f"{cond.name:48} person rows static {p['rows_static']:3}/{p['rows']:4}  "
                f"picture rows static {q['rows_static']:3}/{q['rows']:4} (undecided {q['rows_undecided']}, "
                f"with a student {q['rows_with_student']})",
                flush=True,
            )
    demo = [r for r in results if r["base"].startswith("demo")]
    real = [r for r in results if not r["base"].startswith("demo")]
    real_tracks = [t for t in all_tracks if not t["condition"].startswith("demo")]
    prefix = {}
    for k in PREFIXES:
        cut = [t for t in real_tracks if k in t["prefix"]]
        prefix[k] = {
            "person_tracks": sum(t["kind"] == "person" for t in cut),
            "person_tracks_static": sum(t["kind"] == "person" and t["prefix"][k] for t in cut),
            "picture_tracks": sum(t["kind"] == "picture" for t in cut),
            "picture_tracks_static": sum(t["kind"] == "picture" and t["prefix"][k] for t in cut),
        }
    out = {
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "command": "nice -n 5 python bench/static_faces.py --json bench/results/static_faces.json",
        "seconds": round(time.perf_counter() - t_start),
        "config": {k: getattr(config, k) for k in config.__dataclass_fields__},
        "sample_fps": SAMPLE_FPS,
        "total": totals(real, lambda r: "all"),
        "by_base": totals(real, lambda r: r["base"]),
        "by_picture": totals(real, lambda r: r["picture"]),
        "by_encoding": totals(real, lambda r: r["encoding"]),
        "by_scale": totals(real, lambda r: r["scale"]),
        "separation": {
            f: separation(real_tracks, f)
            for f in ("change_q", "centre_spread", "landmark_jitter", "size_spread")
        },
        "prefix": prefix,
        "demo": totals(demo, lambda r: "still" if r["picture"].startswith("still") else r["picture"]),
        "demo_stills": {
            r["picture"]: [
                {k: t[k] for k in ("rows", "centre_spread", "change_q", "decision", "student")}
                for t in r["tracks"]
                if t["kind"] == "picture"
            ]
            for r in demo
            if r["picture"].startswith("still")
        },  # fmt: skip
        "conditions": results,
    }
    print(
        json.dumps(
            {k: out[k] for k in ("total", "by_picture", "by_base", "separation", "prefix", "demo")}, indent=1
        )
    )
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
