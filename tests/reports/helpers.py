"""The reports tests' hand-made records (answers worked out by hand in the tests) and a check of a
rendered page in a real headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from fer_stream import records
from fer_stream.labels import FER2013_LABELS

# --------------------------------------------------------------------------------------------------
# The hand-made dataset. All attention scores and probabilities are exact in float32 (k/16), so the
# averages below are exact fractions.

VA, VB, VC, VD, VE, VF = ("a" * 64, "b" * 64, "c" * 64, "d" * 64, "e" * 64, "f" * 64)
HASH = "0123456789abcdef"
A, N, U = "A", "N", "U"  # attentive, not attentive (inattentive), unmeasured (no score)


def probs(label: str) -> dict[str, float]:
    """The face's label gets 10/16, each other label 1/16."""
    return {f"p_{k}": (0.625 if k == label else 0.0625) for k in FER2013_LABELS}


def lecture(
    root, vid, course, day, fps, n_frames, faces, config_hash=HASH, finished=1, write_videos=True, speech=None
):
    """Write one lecture: ``faces`` = [(frame 1-based, student_id|None, state, attention, emotion)
    [+ (head_state,) or (head_state, static)]]; head_state default None (not read), static False."""
    frame_index = [25 * k for k in range(n_frames)]  # not 0, 1, 2: the reports number frames themselves
    pts = [k / fps for k in range(n_frames)]
    where = {"video_id": vid, "course": course, "lecture_date": day}
    n = len(faces)
    cols = {
        **where,
        "frame_index": [frame_index[f - 1] for f, *_ in faces],
        "pts_s": [pts[f - 1] for f, *_ in faces],
        "track_id": list(range(1, n + 1)),
        "student_id": [s for _, s, *_ in faces],
        **{k: np.full(n, v, np.float32) for k, v in dict(x1=0, y1=0, x2=10, y2=10, det_score=0.9).items()},
        "face_px": np.full(n, 48, np.float32),  # readable: this fixture tests the reports' arithmetic
        **{k: np.ones(n, bool) for k in ("pose_readable", "eyes_readable", "emotion_readable")},
        **{k: np.zeros(n, np.float32) for k in ("yaw", "pitch", "roll")},
        "ear": np.full(n, 0.3, np.float32),
        "attentive": [None if f[3] is None else f[2] == A for f in faces],
        "attention": [np.nan if f[3] is None else f[3] for f in faces],
        "head_state": [f[5] if len(f) > 5 else None for f in faces],
        "head_readable": [len(f) > 5 and f[5] is not None for f in faces],
        "static": [len(f) > 6 and bool(f[6]) for f in faces],
        **{k: [probs(f[4])[k] for f in faces] for k in probs("happy")},
        "emotion": [f[4] for f in faces],
        "model_version": "test",
    }
    stem = f"{vid}_{config_hash}"
    records.write_partition(root, "faces", records.make_table("faces", cols), course, day, stem)
    n_faces = [sum(1 for f, *_ in faces if f == k + 1) for k in range(n_frames)]
    frames = {**where, "frame_index": frame_index, "pts_s": pts, "n_faces": n_faces}
    records.write_partition(root, "frames", records.make_table("frames", frames), course, day, stem)
    if speech is not None:  # [(start_s, end_s)]: the audio analysed, these its stretches of speech
        rows = {**where, "start_s": [a for a, _ in speech], "end_s": [b for _, b in speech]}
        rows["p_speech"] = [0.875] * len(speech)
        records.write_partition(root, "speech", records.make_table("speech", rows), course, day, stem)
    if write_videos:
        run(
            root,
            vid,
            course,
            day,
            "done",
            fps,
            config_hash,
            finished,
            speech=None if speech is None else "done",
        )


def run(
    root,
    vid,
    course,
    day,
    status,
    fps=2.0,
    config_hash=HASH,
    finished=1,
    error=None,
    config_json="{}",
    speech=None,
):
    """A videos/ row: one run of one video (``config_json``: its analysis, ``{}``: a legacy one;
    ``speech``: the audio's outcome, None as in records from before speech was analysed)."""
    t = datetime(2024, 4, 1, 0, 0, finished, tzinfo=timezone.utc)
    row = {
        "video_id": vid,
        "course": course,
        "lecture_date": day,
        "path": f"/in/{course}/{day}_{vid[:4]}.mp4",
        "file_size": 1000,
        "file_mtime": t,
        "meta_source": "path",
        "status": status,
        "error_type": error and error[0],
        "error_message": error and error[1],
        "duration_s": 10.0,
        "width": 640,
        "height": 360,
        "sample_fps": fps,
        "sampled_frames": None,
        "faces": None,
        "students": None,
        "segments": 1,
        "lost_s": 0.0 if status == "done" else None,
        "corrupt_packets": 0 if status == "done" else None,
        "decode_errors": 0 if status == "done" else None,
        "missing_frames": 0 if status == "done" else None,
        "damaged_frames": 0 if status == "done" else None,
        "incomplete": False if status == "done" else None,
        "warnings": None,
        "model_version": "test",
        "pipeline_version": "0.1.0",
        "config_hash": config_hash,
        "config_json": config_json,
        "run_id": f"run{finished}",
        "started_at": t,
        "finished_at": t,
        "wall_s": 1.0,
        "hash_s": 0.1,
        "analyze_s": 0.5,
        "classify_s": 0.1,
        "audio_s": None if speech is None else 0.01,
        "speech": speech,
        "speech_error": "no audio stream" if speech == "no_audio" else None,
    }
    stem = f"{vid}_{config_hash}_run{finished}"
    records.write_partition(root, "videos", records.make_table("videos", row), course, day, stem)


D1, D2, D3, D4 = date(2024, 3, 5), date(2024, 3, 12), date(2024, 3, 19), date(2024, 3, 26)

# Lecture A (ML101, 2024-03-05, 2 fps: 0.5 s per frame), 10 sampled frames:
#   frame:  1     2     3     4   5     6     7       8  9  10
#   stu-1:  A7/8  I1/4  I3/8  -   I1/8  A3/4  I7/16   U  -  -
#   stu-2:  A5/8  A3/4  I1/4  I1/8 -    -     -       -  -  -
#   stray:  -     I0    -     -   -     -     -       -  -  -     (a face of no student)
LECTURE_A = [
    (1, "stu-1", A, 0.875, "happy"),
    (2, "stu-1", N, 0.25, "happy"),
    (3, "stu-1", N, 0.375, "neutral"),
    (5, "stu-1", N, 0.125, "sad"),
    (6, "stu-1", A, 0.75, "happy"),
    (7, "stu-1", N, 0.4375, "neutral"),
    (8, "stu-1", U, None, "neutral"),
    (1, "stu-2", A, 0.625, "sad"),
    (2, "stu-2", A, 0.75, "sad"),
    (3, "stu-2", N, 0.25, "angry"),
    (4, "stu-2", N, 0.125, "surprise"),
    (2, None, N, 0.0, "angry"),
]


def build(root: Path) -> Path:
    """Lectures A-D of ML101, a failed video E and a lecture F of course ``BIO 2/x`` under ``root``."""
    lecture(root, VA, "ML101", D1, 2.0, 10, LECTURE_A, finished=5)
    # An older analysis of A with another config: its files must be ignored (not its latest done run)
    lecture(root, VA, "ML101", D1, 1.0, 3, [(1, "stu-1", A, 1.0, "fear")] * 3, config_hash="9999", finished=1)
    # Lectures B, C, D (1 fps), 2 frames each: stu-1's attention falls 3 times in a row
    neutral = lambda f, s, st, att: (f, s, st, att, "neutral")
    lecture(
        root,
        VB,
        "ML101",
        D2,
        1.0,
        2,
        [
            neutral(1, "stu-1", N, 0.375),
            neutral(2, "stu-1", N, 0.375),
            neutral(1, "stu-2", A, 0.75),
            neutral(2, "stu-2", N, 0.25),
        ],
    )
    lecture(
        root,
        VC,
        "ML101",
        D3,
        1.0,
        2,
        [
            neutral(1, "stu-1", N, 0.25),
            neutral(2, "stu-1", N, 0.25),
            neutral(1, "stu-2", N, 0.25),
            neutral(2, "stu-2", N, 0.25),
        ],
    )
    lecture(root, VD, "ML101", D4, 1.0, 2, [neutral(1, "stu-1", N, 0.125), neutral(2, "stu-1", N, 0.125)])
    # D was filed under another course by an older run (its course was corrected since)
    run(root, VD, "OLD", D4, "done", 1.0, finished=0)
    # E failed twice (no records); F is another course whose name needs quoting in folder names
    run(root, VE, "ML101", D4, "failed", error=("NotAVideoError", "e.mp4: not a video"), finished=2)
    run(root, VE, "ML101", D4, "failed", error=("NotAVideoError", "e.mp4: not a video"), finished=3)
    lecture(root, VF, "BIO 2/x", D1, 2.0, 1, [(1, "stu-9", A, 1.0, "happy")])
    # A writer at work: hidden temp files are no records
    (records.partition_dir(root, "faces", "ML101", D1) / f".{VA}_{HASH}.123.tmp").write_bytes(b"junk")
    return root


def rows(table, key="student_id"):
    return {r[key]: r for r in table.to_pylist()}


# --------------------------------------------------------------------------------------------------
# A page in a real headless Chromium


SECTIONS = ["summary", "class-attention", "student-heatmap", "emotion-mix", "review-moments", "tables"]
CHARTS = ["class-attention", "student-heatmap", "emotion-mix"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.skip(
        "no headless Chromium on this machine (Debian: apt-get install chromium; .ci/run installs it)"
    )


def render(page: Path, tmp: Path) -> tuple[str, np.ndarray]:
    """Chromium's DOM after load and a full-height screenshot (RGB) of ``page``."""
    exe = chromium()
    flags = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={tmp / 'profile'}",
        "--window-size=1200,4000",
        "--force-device-scale-factor=1",
    ]
    url = page.resolve().as_uri()
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0 and "<body" in dom.stdout, dom.stderr[-2000:]
    shot = tmp / f"{page.stem}.png"
    p = subprocess.run([*flags, f"--screenshot={shot}", url], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and shot.exists(), p.stderr[-2000:]
    import matplotlib.image

    return dom.stdout, (matplotlib.image.imread(shot)[..., :3] * 255).astype(np.uint8)


def chart_boxes(dom_html: str) -> dict[str, list[int]]:
    """Each chart's rendered box from Chromium's layout, via a data attribute set by a script."""
    found = re.findall(r'data-box="(\w[\w-]*):(\d+),(\d+),(\d+),(\d+)"', dom_html)
    return {k: [int(v) for v in vals] for k, *vals in found}


BOX_SCRIPT = """<script>
addEventListener('load', () => { for (const s of document.querySelectorAll('section')) {
  const img = s.querySelector('img.chart'); if (!img) continue;
  const r = img.getBoundingClientRect();
  const box = [r.left, r.top + scrollY, r.width, r.height].map(Math.round);
  s.setAttribute('data-box', s.id + ':' + box.join(','));
}});
</script>"""


def check_page(page: Path, tmp: Path, n_students: int) -> np.ndarray:
    # the page itself is untouched; a copy gets a script that reports where the charts were laid out
    probe = tmp / f"probe_{page.name}"
    probe.write_text(page.read_text().replace("</body>", BOX_SCRIPT + "</body>"))
    dom, img = render(probe, tmp)
    for sid in SECTIONS:
        assert f'<section id="{sid}"' in dom, sid
    boxes = chart_boxes(dom)
    assert sorted(boxes) == sorted(CHARTS), boxes
    for name, (x, y, w, h) in boxes.items():
        assert w > 300 and h > 100, (name, w, h)  # decoded and laid out (a broken image is ~16 px)
        crop = img[y : y + h, x : x + w].reshape(-1, 3)
        assert crop.size, name
        not_white = (crop < 240).any(1).mean()
        colours = len(np.unique(crop // 16, axis=0))
        assert not_white > 0.02 and colours > 8, (name, not_white, colours)  # drawn, not blank
    assert dom.count("<tr>") > n_students
    return img
