"""A demo lecture made only from faces a registry package ships, analysed end to end.

scikit-image ships ``lfw_subset`` (100 Labeled-Faces-in-the-Wild faces, 25x25 gray) and the
``astronaut`` photo. The demo seats 18 of those faces as a class on a 720p "classroom" frame,
with the astronaut as the teacher-side close-up, then animates it: small head jitter, two
students heads-down (face not visible) for a few seconds, one student leaving for good. The clip
is encoded with PyAV (H.264) and analysed by the same stages the pipeline runs: decode ->
MTCNN -> landmarks -> alignment -> attention -> tracking -> student keys -> emotion classifier.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

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
    return lfw, skd.astronaut()


def _frame(t: float, lfw: np.ndarray, astronaut: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    img = np.full((H, W, 3), 200, np.uint8)
    cv2.rectangle(img, (0, 0), (W, 40), (90, 110, 90), -1)  # the board
    for k in range(ROWS * COLS):
        r, c = divmod(k, COLS)
        if k == 4 and t > 4.0:  # this student leaves the room
            continue
        if k in (7, 13) and 2.0 <= t < 5.0:  # heads down over a worksheet: face not visible
            continue
        face = cv2.resize(lfw[k * 5], (72, 72), interpolation=cv2.INTER_CUBIC)
        tile = cv2.copyMakeBorder(face, 20, 20, 20, 20, cv2.BORDER_REPLICATE)
        y = 80 + r * 200 + int(rng.integers(-2, 3))
        x = 60 + c * 200 + int(rng.integers(-2, 3))
        if x + TILE > 1000 and r == 0:
            x -= 20
        img[y : y + TILE, x : x + TILE] = tile[..., None]
    img[440:696, 1010:1266] = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    return img


def make_demo_clip(path: str | Path, seconds: float = 8.0, fps: int = 10, seed: int = 0) -> Path:
    """Write the demo lecture (H.264 in mp4, 1280x720) to ``path``; returns the path.

    Raises:
        DemoError: scikit-image (the demo extra) is not installed.
    """
    lfw, astronaut = _faces()
    rng = np.random.default_rng(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for i in range(int(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(_frame(i / fps, lfw, astronaut, rng), format="rgb24")
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
    n = row.column("sampled_frames")[0].as_py()
    print(f"\n{video_path}: {n} sampled frames, model {row.column('model_version')[0].as_py()}")
    # "readable": the share of the student's frames each number rests on (docs/VALIDITY.md)
    print(
        f"{'student':16} {'min seen':>8} {'present':>7} {'attentive':>9} {'readable':>8} "
        f"{'longest off s':>13}  emotion (share, readable)"
    )
    for r in rows:
        rate = "-" if r["attention_rate"] is None else f"{r['attention_rate']:.2f}"
        if r["dominant_emotion"] is None:
            emotion = "unreadable (face too small)"
        else:
            emotion = f"{r['dominant_emotion']} ({r['dominant_share']:.2f}, {r['emotion_readable']:.2f})"
        print(
            f"{r['student_id']:16} {r['minutes_visible']:8.2f} {r['presence']:7.2f} {rate:>9} "
            f"{r['attention_readable']:8.2f} {r['longest_inattentive_s']:13.1f}  {emotion}"
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
