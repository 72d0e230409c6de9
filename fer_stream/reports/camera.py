"""What a camera can give, before a school commits: faces per frame, their sizes, the share readable
for each signal (from the gates, docs/VALIDITY.md), pictures found, and the zoom each signal needs.

One summary for two uses: ``fer-stream check VIDEO...`` (the face path on the first minutes of a
video, no emotion model) and the head of every HTML report (from the records). Pure numpy.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fer_stream.validity import Gates

# Face-width bins of the histogram, pixels (lower edge included): classroom cameras see 10-40 px.
SIZE_EDGES = (0, 10, 15, 20, 30, 40, 60, 100)
# "Most students": the zoom that brings this share of the students' typical faces to a gate.
MOST = 0.8
SIGNALS = {"emotion": "emotion_min_px", "head state": "head_min_px", "head pose": "pose_min_px"}


@dataclass(frozen=True, kw_only=True)
class CameraCheck:
    """The summary (sizes: detector box widths, frame pixels).

    Attributes:
        frames: sampled frames looked at.
        faces: faces found in them (pictures included); faces_per_frame = faces / frames.
        students: distinct students (tracks long enough to be one, pictures excluded).
        static_faces: faces of tracks judged pictures (posters, photos, frozen screens).
        size_histogram: ``{bin label: faces}`` of the live faces.
        median_face_px: median width of the live faces (None without any).
        readable: ``{signal: share of live faces at least its gate wide}`` (None without faces); for
            emotion, where the faces' ``emotion_readable`` flags are given, the share of live faces
            big enough **and** turned to the camera (``validity.turned_to_camera``).
        zoom_for_most: ``{signal: zoom}``: the optical zoom (or resolution gain) after which
            ``MOST`` of the students' median faces reach the gate; 1.0 where they do already; None
            where no size reads it (an infinite gate) or no student was seen.
        gates_px: ``{signal: gate}`` the widths compared (``validity.Gates`` of the analysis).
    """

    frames: int
    faces: int
    faces_per_frame: float
    students: int
    static_faces: int
    size_histogram: dict[str, int]
    median_face_px: float | None
    readable: dict[str, float | None]
    zoom_for_most: dict[str, float | None]
    gates_px: dict[str, float]

    def as_json(self) -> dict:
        return dataclasses.asdict(self)

    def lines(self) -> list[str]:
        """The summary as short sentences, for a terminal and the HTML page."""
        out = [
            f"{self.frames} sampled frames, {self.faces_per_frame:.1f} faces per frame, "
            f"{self.students} students, {self.static_faces} faces of pictures (posters, photos, screens)",
            "face widths (px): "
            + ", ".join(f"{k}: {v}" for k, v in self.size_histogram.items() if v)
            + (f"; median {self.median_face_px:.0f} px" if self.median_face_px is not None else ""),
        ]
        for signal, share in self.readable.items():
            zoom = self.zoom_for_most[signal]
            if share is None:
                continue
            need = (
                "never readable at any measured size"
                if zoom is None and math.isinf(self.gates_px[signal])
                else "no students to judge"
                if zoom is None
                else "readable for most students already"
                if zoom <= 1.0
                else f"needs {zoom:.1f}x zoom or resolution for {MOST:.0%} of students"
            )
            out.append(f"{signal}: {share:.0%} of faces readable; {need}")
        return out


def size_labels(edges: Sequence[float] = SIZE_EDGES) -> list[str]:
    """``['<10', '10-15', ..., '>=100']`` for the histogram bins."""
    return (
        [f"<{edges[1]:g}"] + [f"{a:g}-{b:g}" for a, b in zip(edges[1:-1], edges[2:])] + [f">={edges[-1]:g}"]
    )


def camera_check(
    face_px: np.ndarray,
    *,
    frames: int,
    student_id: Sequence[str | None],
    static: np.ndarray | None = None,
    gates: Gates | None = None,
    emotion_readable: np.ndarray | None = None,
) -> CameraCheck:
    """Summarise ``(N,)`` face widths of ``frames`` sampled frames.

    Args:
        face_px: every face's box width, pixels.
        frames: the number of sampled frames they come from.
        student_id: each face's student (None: no student, a stray or a picture).
        static: ``(N,) bool`` faces of pictures (default: none).
        gates: the analysis' gates (default: ``Gates()``).
        emotion_readable: ``(N,) bool`` the stage's flags (size and orientation); default: size only.
    """
    gates = gates or Gates()
    px = np.asarray(face_px, np.float64)
    static = np.zeros(len(px), bool) if static is None else np.asarray(static, bool)
    live = px[~static]
    idx = np.searchsorted(SIZE_EDGES, live, side="right") - 1
    hist = {label: int((idx == i).sum()) for i, label in enumerate(size_labels())}
    students = np.asarray([s if s is not None else "" for s in student_id], object)
    keys = sorted({s for s, st in zip(students, static) if s and not st})  # a student seen live
    typical = np.array([np.median(px[(students == s) & ~static]) for s in keys]) if keys else np.zeros(0)
    readable: dict[str, float | None] = {}
    zoom: dict[str, float | None] = {}
    gate_of = {signal: float(getattr(gates, name)) for signal, name in SIGNALS.items()}
    for signal, gate in gate_of.items():
        readable[signal] = float((live >= gate).mean()) if len(live) else None
        if signal == "emotion" and emotion_readable is not None and len(live):
            readable[signal] = float(np.asarray(emotion_readable, bool)[~static].mean())
        if not len(typical) or math.isinf(gate):
            zoom[signal] = None
        else:
            # the face size that MOST of the students reach or pass: the (1 - MOST) quantile
            reach = float(np.quantile(typical, 1 - MOST))
            zoom[signal] = max(1.0, gate / reach) if reach > 0 else None
    return CameraCheck(
        frames=int(frames),
        faces=len(px),
        faces_per_frame=len(px) / frames if frames else 0.0,
        students=len(keys),
        static_faces=int(static.sum()),
        size_histogram=hist,
        median_face_px=float(np.median(live)) if len(live) else None,
        readable=readable,
        zoom_for_most=zoom,
        gates_px=gate_of,
    )
