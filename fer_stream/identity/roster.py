"""Enrolment: a course's roster photos -> face descriptors in the store (``roster.npz``).

No photo is kept, only one descriptor per photo (docs/PRIVACY.md).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

from fer_stream.faces.descriptors import FaceDescriptor
from fer_stream.identity.ids import check_student_id, check_student_ids
from fer_stream.identity.matching import Gallery
from fer_stream.identity.store import ROSTER_FILE, course_dir, save_gallery
from fer_stream.inputs import check_course


def read_roster(path: str | os.PathLike) -> dict[str, list[Path]]:
    """``roster.csv`` -> ``{student_id: [photo paths]}``.

    Each row is a student id and one or more photo paths (relative paths are relative to the CSV's
    folder); a student may have several rows. A first row starting with ``student_id`` is a header.

    Raises:
        StudentIdError: a student id outside :data:`fer_stream.identity.ids.STUDENT_ID_RE`.
        ValueError: a row without a photo, or no rows at all.
    """
    path = Path(path)
    roster: dict[str, list[Path]] = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        for n, row in enumerate(csv.reader(f), 1):
            cells = [c.strip() for c in row if c.strip()]
            if not cells or cells[0].startswith("#"):
                continue
            if n == 1 and cells[0].lower() == "student_id":
                continue
            if len(cells) < 2:
                raise ValueError(f"{path}:{n}: a row is a student id and at least one photo path")
            sid = check_student_id(cells[0], f"{path}:{n}")
            photos = [Path(p) if Path(p).is_absolute() else path.parent / p for p in cells[1:]]
            roster.setdefault(sid, []).extend(photos)
    if not roster:
        raise ValueError(f"{path}: no students")
    return roster


class Enroller:
    """Descriptor of the one person in an enrolment photo: detector + landmarks + descriptor network.

    The same detector and landmarks as the analysis, so enrolment and lecture faces are aligned alike.
    A photo may show others in the background: the largest face is the student's.
    """

    def __init__(self, detector: str = "mtcnn", num_jitters: int = 0):
        from fer_stream.faces.detect import make_detector
        from fer_stream.faces.landmarks import LandmarkPredictor

        self.detector = make_detector(detector)
        self.landmarks = LandmarkPredictor()
        self.describe = FaceDescriptor(num_jitters)

    def photo(self, path: str | os.PathLike) -> np.ndarray:
        """``(128,) float32`` descriptor of the largest face in the image file.

        Raises:
            ValueError: unreadable image or no face found.
        """
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"cannot read image {path}")
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        det = self.detector.detect(rgb)
        if not len(det):
            raise ValueError(f"no face found in {path}")
        i = int(np.argmax(np.prod(det.wh, axis=1)))
        lm = self.landmarks(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), det.xyxy[i : i + 1])
        d = self.describe(rgb, det.xyxy[i : i + 1], lm)[0]
        if not np.isfinite(d).all():
            raise ValueError(f"no usable landmarks for the face in {path}")
        return d


def enroll_roster(
    output_dir: str | os.PathLike,
    course: str,
    roster: Mapping[str, Sequence[str | os.PathLike]],
    enroller: Enroller | None = None,
) -> dict:
    """Describe every roster photo and make it the course's roster (replacing any earlier one).

    All or nothing: a bad student id, an unreadable photo or a photo without a face raises before
    anything is written.

    Returns:
        ``{"course", "students", "photos", "store"}``.

    Raises:
        StudentIdError: a student id outside :data:`fer_stream.identity.ids.STUDENT_ID_RE`.
        ValueError: a bad course code, a photo that cannot be read or shows no face.
    """
    course = check_course(course)
    check_student_ids(roster, "roster")
    enroller = enroller or Enroller()
    ids, descs, problems = [], [], []
    for sid, photos in roster.items():
        for p in photos:
            try:
                descs.append(enroller.photo(p))
                ids.append(sid)
            except ValueError as e:
                problems.append(f"{sid}: {e}")
    if problems:
        raise ValueError("enrolment not written:\n  " + "\n  ".join(problems))
    blank = np.full(len(ids), "")
    path = course_dir(output_dir, course) / ROSTER_FILE
    save_gallery(path, Gallery(np.asarray(ids, str), np.stack(descs), blank, blank))
    return {"course": course, "students": len(set(ids)), "photos": len(ids), "store": str(path)}
