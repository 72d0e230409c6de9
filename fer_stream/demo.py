"""A demo lecture made only from faces a registry package ships, analysed end to end.

scikit-image ships ``lfw_subset`` (100 Labeled-Faces-in-the-Wild faces, 25x25 gray) and the
``astronaut`` photo. The demo seats 18 of those faces as a class on a 720p "classroom" frame,
with the astronaut as the teacher-side close-up, then animates it: two students heads-down (face not
visible) for a few seconds, one student leaving for good, and every face moving as a seated person's
does (:func:`_pose`), because a face that never changes is a picture on the wall and is left out of
the reports (``fer_stream.faces.liveness``). The clip
is encoded with PyAV (H.264) and analysed by the same stages the pipeline runs: decode ->
MTCNN -> landmarks -> alignment -> attention -> tracking -> student keys -> emotion classifier.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

W, H, ROWS, COLS, TILE = 1280, 720, 3, 6, 112


class DemoError(RuntimeError):
    """The demo cannot run here: its extra (scikit-image, the faces it is made of) is not installed.

    ``fer-stream`` says why on stderr and exits ``exits.ERROR``.
    """


def _faces() -> tuple[np.ndarray, np.ndarray]:
    try:
        import skimage.data as skd
    except ImportError as e:  # the demo extra: pip install 'fer_stream[demo]'
        raise DemoError("the demo needs scikit-image: pip install -e '.[demo]'") from e
    lfw = (skd.lfw_subset()[:100] * 255).astype(np.uint8)  # the first 100 are faces
    return lfw, cv2.resize(skd.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)


# A seated person, however still, moves: these are the ranges of the demo's movements, in pixels of
# the 72 px face (1 px ~ 0.2 cm at a 15 cm face). Sway and lean: the head drifts a few pixels;
# breathing: its size changes by ~2 %; a slight roll; turns and nods: the middle of the face (nose,
# mouth) shifts against its outline, which a flat picture cannot do; blinks: the eyes close for 0.2 s
# every few seconds; now and then a smile widens the mouth for a second or two.
SWAY_PX, SCALE_AMP, ROLL_DEG, TURN_PX, NOD_PX = 8.0, 0.02, 3.0, 12.0, 7.0
BLINK_EVERY_S, BLINK_S, SMILE_EVERY_S, SMILE_S, SMILE_PX = 3.5, 0.2, 3.0, 1.5, 4.0
FACE = 72  # side of a seated face, pixels


def _motion(n: int, rng: np.random.Generator, seconds: float) -> dict[str, Any]:
    """How each of ``n`` people moves over ``seconds``: periods (s) and phases of slow sinusoids for
    sway (x, y), breathing, roll, turn and nod, and the start times of their blinks and smiles. Drawn
    once from ``rng``, so the clip is a function of the seed."""

    def periods(lo: float, hi: float) -> np.ndarray:
        return rng.uniform(lo, hi, (n, 1))

    def starts(every_s: float) -> list[np.ndarray]:  # a Poisson process, long enough for the clip
        return [np.cumsum(rng.exponential(every_s, int(seconds / every_s) + 8)) for _ in range(n)]

    # columns: sway x, sway y, breathing, roll, turn, nod
    period = np.hstack(
        [periods(3, 6), periods(4, 8), periods(3, 5), periods(5, 10), periods(2, 5), periods(3, 6)]
    )
    return {
        "period": period,
        "phase": rng.uniform(0, 2 * np.pi, period.shape),
        "blinks": starts(BLINK_EVERY_S),
        "smiles": starts(SMILE_EVERY_S),
    }


def _pose(motion: dict, k: int, t: float) -> dict[str, float]:
    """Person ``k``'s pose at ``t`` seconds: shift ``dx, dy`` (px), ``scale``, ``roll`` (degrees),
    ``turn`` and ``nod`` (px), ``blink`` and ``smile`` (0 or 1)."""
    wave = np.sin(2 * np.pi * t / motion["period"][k] + motion["phase"][k])
    amplitude = np.array([SWAY_PX, SWAY_PX / 2, SCALE_AMP, ROLL_DEG, TURN_PX, NOD_PX])
    dx, dy, breath, roll, turn, nod = (amplitude * wave).tolist()
    blinks, smiles = motion["blinks"][k], motion["smiles"][k]
    return {
        "dx": dx,
        "dy": dy,
        "scale": 1 + breath,
        "roll": roll,
        "turn": turn,
        "nod": nod,
        "blink": float(np.any((t >= blinks) & (t < blinks + BLINK_S))),
        "smile": float(np.any((t >= smiles) & (t < smiles + SMILE_S))),
    }


def _move(face: np.ndarray, pose: dict[str, float], centre: tuple[float, float], size: float) -> np.ndarray:
    """``face`` (H, W[, 3]) in ``pose``: the face of side ``size`` centred at ``centre`` (x, y) turns,
    nods, smiles and blinks (the middle of the face moves against its outline), the whole image
    shifts, scales and rolls about ``centre``."""
    h, w = face.shape[:2]
    cx, cy = centre
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    # output pixel -> source pixel: undo shift, scale and roll about the centre
    a = np.deg2rad(pose["roll"])
    u, v = (xs - cx - pose["dx"]) / pose["scale"], (ys - cy - pose["dy"]) / pose["scale"]
    sx, sy = cx + np.cos(a) * u + np.sin(a) * v, cy - np.sin(a) * u + np.cos(a) * v
    k = size / FACE  # movements are given for a 72 px face
    bump = np.exp(-((sx - cx) ** 2 + (sy - cy) ** 2) / (2 * (0.22 * size) ** 2))  # nose, mouth, eyes
    sx -= k * pose["turn"] * bump
    sy -= k * pose["nod"] * bump
    mouth = np.exp(
        -((sx - cx) ** 2 / (2 * (0.18 * size) ** 2) + (sy - cy - 0.25 * size) ** 2 / (2 * (0.08 * size) ** 2))
    )
    sx -= k * SMILE_PX * pose["smile"] * mouth * np.clip((sx - cx) / (0.15 * size), -1, 1)  # corners out
    sy += k * SMILE_PX * pose["smile"] * mouth * np.abs(np.clip((sx - cx) / (0.15 * size), -1, 1))  # and up
    out = cv2.remap(
        face, sx.astype(np.float32), sy.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    if pose["blink"]:  # closed eyes: the eye band darkens
        eyes = (
            slice(int(cy - 0.22 * size), int(cy - 0.05 * size)),
            slice(int(cx - 0.3 * size), int(cx + 0.3 * size)),
        )
        out[eyes] = (out[eyes] * 0.6).astype(out.dtype)
    return out


def _frame(t: float, lfw: np.ndarray, astronaut: np.ndarray, motion: dict) -> np.ndarray:
    img = np.full((H, W, 3), 200, np.uint8)
    cv2.rectangle(img, (0, 0), (W, 40), (90, 110, 90), -1)  # the board
    for k in range(ROWS * COLS):
        r, c = divmod(k, COLS)
        if k == 4 and t > 4.0:  # this student leaves the room
            continue
        if k in (7, 13) and 2.0 <= t < 5.0:  # heads down over a worksheet: face not visible
            continue
        face = cv2.resize(lfw[k * 5], (FACE, FACE), interpolation=cv2.INTER_CUBIC)
        tile = cv2.copyMakeBorder(face, 20, 20, 20, 20, cv2.BORDER_REPLICATE)
        half = TILE / 2
        tile = _move(tile, _pose(motion, k, t), (half, half + 4), FACE)
        y = 80 + r * 200
        x = 60 + c * 200
        if x + TILE > 1000 and r == 0:
            x -= 20
        img[y : y + TILE, x : x + TILE] = tile[..., None]
    # the close-up, 256 px: the astronaut's face is about 55 px wide at (125, 52)
    img[440:696, 1010:1266] = _move(astronaut, _pose(motion, ROWS * COLS, t), (125.0, 52.0), 55.0)
    return img


def make_demo_clip(path: str | Path, seconds: float = 8.0, fps: int = 10, seed: int = 0) -> Path:
    """Write the demo lecture (H.264 in mp4, 1280x720) to ``path``; returns the path.

    Raises:
        DemoError: scikit-image (the demo extra) is not installed.
    """
    lfw, astronaut = _faces()
    motion = _motion(ROWS * COLS + 1, np.random.default_rng(seed), seconds)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for i in range(int(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(_frame(i / fps, lfw, astronaut, motion), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def demo_input(output: str | Path) -> Path:
    """The demo lecture at ``OUTPUT/demo_input/demo/<today>_lecture.mp4`` (course ``demo``, today's
    date, by the path convention), made once."""
    clip = Path(output) / "demo_input" / "demo" / f"{date.today().isoformat()}_lecture.mp4"
    return clip if clip.exists() else make_demo_clip(clip)


def student_report(output: str | Path, video_id: str) -> list[dict]:
    """One row per student of an analysed video, from the SQL reports ``student_attention`` and
    ``student_emotions`` over the records in ``output``."""
    from fer_stream import reports

    con = reports.connect(output)
    att = reports.run_report(con, "student_attention", video=video_id)
    emo = reports.run_report(con, "student_emotions", video=video_id)
    cols = ["student_id", "minutes_visible", "presence", "attention_rate", "longest_inattentive_s"]
    att = att.select(cols).append_column("attention_readable", att.column("readable_share"))
    emo = emo.select(["student_id", "dominant_emotion", "dominant_share"]).append_column(
        "emotion_readable", emo.column("readable_share")
    )
    table = att.join(emo, "student_id")
    return table.sort_by("student_id").to_pylist()


def print_student_report(output: str | Path, video_path: str | Path) -> list[dict]:
    """Print (and return) :func:`student_report` for the done video at ``video_path``."""
    import pyarrow.compute as pc

    from fer_stream import records

    done = (pc.field("path") == str(video_path)) & (pc.field("status") == "done")
    row = records.read(output, "videos", filter=done)
    if not row.num_rows:
        return []
    vid = row.column("video_id")[0].as_py()
    rows = student_report(output, vid)
    from fer_stream.reports.signals import lecture_signals

    n = row.column("sampled_frames")[0].as_py()
    signals = lecture_signals(row.column("config_json")[0].as_py())
    print(f"\n{video_path}: {n} sampled frames, model {row.column('model_version')[0].as_py() or 'none'}")
    print(f"signals inferred: {', '.join(signals)} (docs/COMPLIANCE.md)")
    emotion_on = "emotion" in signals
    # "readable": the share of the student's frames each number rests on (docs/VALIDITY.md)
    print(
        f"{'student':16} {'min seen':>8} {'present':>7} {'attentive':>9} {'readable':>8} "
        f"{'longest off s':>13}" + ("  emotion (share, readable)" if emotion_on else "")
    )
    for r in rows:
        rate = "-" if r["attention_rate"] is None else f"{r['attention_rate']:.2f}"
        if not emotion_on:
            emotion = ""
        elif r["dominant_emotion"] is None:
            emotion = "unreadable (face too small)"
        else:
            emotion = f"{r['dominant_emotion']} ({r['dominant_share']:.2f}, {r['emotion_readable']:.2f})"
        print(
            f"{r['student_id']:16} {r['minutes_visible']:8.2f} {r['presence']:7.2f} {rate:>9} "
            f"{r['attention_readable']:8.2f} {r['longest_inattentive_s']:13.1f}  {emotion}".rstrip()
        )
    print("(fer-stream report student_attention --data OUTPUT for the full report; docs/REPORTS.md)")
    return rows


def run_demo(workdir: str | Path = "demo_output", sample_fps: float = 2.0) -> list[dict]:
    """Make the demo lecture in ``workdir``, analyse it on an embedded Ray into records there, print
    and return the per-student report (what ``jobs/analyze_lectures.py --demo`` does)."""
    from fer_stream import pipeline
    from fer_stream.config import PipelineConfig

    clip = demo_input(workdir)
    started = pipeline.connect()
    try:
        pipeline.run([clip], workdir, PipelineConfig(sample_fps=sample_fps), progress=False)
    finally:
        if started:
            pipeline.disconnect()
    return print_student_report(workdir, clip.resolve())
