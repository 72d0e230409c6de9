"""Student identity across lectures: face descriptors, the enrolment store, matching, seat maps.

Within a lecture, tracks are merged into seat-based student keys (``s001``, ... by
``fer_stream.faces.track.assign_students``). This module links those keys across lectures::

    tracked frames --DescriptorCollector (on_frame hook)--> <= K descriptors per track
      -> student_descriptors: element-wise median per student key              (128,) each
      -> resolve_students, by course, first that applies:
           roster   (OUTPUT/identity/<course>/roster.npz):  match enrolled photos, else unknown
           seat map (OUTPUT/identity/<course>/seats.json):   key's mean position in a seat, else unknown
           neither  (OUTPUT/identity/<course>/pseudonyms.npz): match the course's pseudonym centroids,
                                                              else a new pseudonym; no names anywhere

Descriptors are dlib's 128-d face embeddings (ResNet ``dlib_face_recognition_resnet_model_v1``,
shipped in ``face_recognition_models``): two faces of one person are usually within Euclidean
distance 0.6 (dlib's documented threshold, 99.38% on LFW), which :class:`IdentityConfig` keeps as
the default. Every assignment is one-to-one (Hungarian), so two keys of one lecture never get the
same id.

Ids in ``student_id``:
  * roster: the id of the roster row (whatever the course uses, e.g. a student number);
  * seat map: the ``student_id`` of the seat;
  * pseudonymous: ``<course hash>-p0007`` (8 hex digits of sha256(course), a number per course that is
    never reused, even after :func:`forget_student`);
  * not identified (no match, or no good frame to describe): ``unknown-<video_id[:8]>-<n>``, valid
    within one lecture only (no descriptor of a person who did not enrol is kept in roster or
    seat-map courses, so they cannot be followed across lectures).

Descriptors are biometric data. They live only in ``OUTPUT/identity/`` (directories 0700, files 0600,
written atomically), never in the face records or reports; see docs/PRIVACY.md.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from fer_stream.config import IdentityConfig  # noqa: F401  (re-exported: the store's settings)
from fer_stream.faces.landmarks import model_path

DESCRIPTOR_MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"
DIM = 128  # descriptor length
STORE_DIR = "identity"  # under the output folder
ROSTER_FILE, PSEUDONYM_FILE, SEATS_FILE = "roster.npz", "pseudonyms.npz", "seats.json"
_COURSE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # as fer_stream.pipeline (folder-safe)
_INFEASIBLE = 1e6


class IdentityStoreError(OSError):
    """A store file or a seat map/roster that cannot be read or holds bad values.

    An ``OSError`` so that the pipeline records it as the video's typed failure, like other I/O errors.
    """


# --------------------------------------------------------------------------------------------------
# Descriptors


def descriptor_model_path() -> Path:
    """Path of dlib's face descriptor ResNet, beside the 68-point model in ``face_recognition_models``."""
    path = model_path("68").parent / DESCRIPTOR_MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"face descriptor model missing: {path} (reinstall face_recognition_models)")
    return path


class FaceDescriptor:
    """dlib's 128-d face descriptor of faces given by box and 68 landmarks (a stateful stage).

    dlib aligns each face from its landmarks to a 150x150 chip (25% padding) and runs its ResNet;
    all faces of an image go through one batched call.

    Args:
        num_jitters: random re-crops averaged per face (0 or 1: a single pass).
    """

    def __init__(self, num_jitters: int = 0):
        import dlib  # here, so that importing this module does not need dlib

        self._dlib = dlib
        self.num_jitters = int(num_jitters)
        self._net = dlib.face_recognition_model_v1(str(descriptor_model_path()))

    def __call__(self, image_rgb: np.ndarray, boxes: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
        """Descriptors of every face.

        Args:
            image_rgb: ``(H, W, 3) uint8`` RGB image.
            boxes: ``(N, 4)`` x1, y1, x2, y2 pixels.
            landmarks68: ``(N, 68, 2)`` (x, y) pixels, iBUG order (``LandmarkPredictor``).

        Returns:
            ``(N, 128) float32``; a row is NaN where the box or a landmark is not finite.
        """
        image = np.asarray(image_rgb)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {image.dtype} {image.shape}")
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        lm = np.asarray(landmarks68, np.float64).reshape(-1, 68, 2)
        if len(lm) != len(boxes):
            raise ValueError(f"{len(boxes)} boxes but {len(lm)} landmark sets")
        out = np.full((len(boxes), DIM), np.nan, np.float32)
        ok = np.isfinite(boxes).all(1) & np.isfinite(lm).all((1, 2))
        if not ok.any():
            return out
        d = self._dlib
        shapes = d.full_object_detections()
        for b, pts in zip(np.round(boxes[ok]).astype(int), np.round(lm[ok]).astype(int)):
            rect = d.rectangle(*(int(v) for v in b))
            shapes.append(d.full_object_detection(rect, [d.point(int(x), int(y)) for x, y in pts]))
        vecs = self._net.compute_face_descriptor(np.ascontiguousarray(image), shapes, self.num_jitters)
        out[ok] = np.asarray([np.asarray(v) for v in vecs], np.float32)
        return out


@lru_cache(maxsize=2)
def shared_descriptor(num_jitters: int = 0) -> FaceDescriptor:
    """One :class:`FaceDescriptor` per process (Ray reuses worker processes; the model loads once)."""
    return FaceDescriptor(num_jitters)


def sharpness(gray_face: np.ndarray) -> float:
    """Variance of the Laplacian of a gray face resized to 64x64 (higher: sharper)."""
    if gray_face.size == 0:
        return 0.0
    face = cv2.resize(gray_face, (64, 64), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(face, cv2.CV_32F).var())


class DescriptorCollector:
    """The ``on_frame(ff, rgb)`` hook of ``analyze_video``: a few good descriptors per track.

    A face is described only if its track still needs one now (fewer than ``max_per_track``, and
    the doubling gap since its last one has passed) and the face is good: frontal, wide enough,
    sharp. Cheap tests (pose, size, time) come first, the sharpness of the few left next, and the
    descriptor network runs once per frame on the faces that pass, so a frame whose tracks are all
    full costs a few array comparisons.

    Args:
        describe: ``(rgb, boxes, landmarks68) -> (N, 128)``, e.g. :class:`FaceDescriptor`.
        config: see :class:`IdentityConfig`.
    """

    def __init__(self, describe, config: IdentityConfig | None = None):
        self.describe = describe
        self.config = config or IdentityConfig()
        self._desc: dict[int, list[np.ndarray]] = {}
        self._last: dict[int, float] = {}  # pts_s of the track's last descriptor
        self._seen: dict[int, int] = {}  # frames each track was in, up to min_seen
        self.frames = 0
        self.described = 0  # faces sent to the network
        self.seconds = 0.0  # time spent in this hook (overhead of identity)

    def __call__(self, ff, rgb: np.ndarray) -> None:
        t0 = time.perf_counter()
        self.frames += 1
        cfg = self.config
        n = len(ff.track_id)
        if n == 0:
            self.seconds += time.perf_counter() - t0
            return
        xyxy = np.asarray(ff.det.xyxy, np.float64)
        with np.errstate(invalid="ignore"):
            good = (
                (xyxy[:, 2] - xyxy[:, 0] >= cfg.min_face_px)
                & (np.abs(ff.yaw) <= cfg.max_abs_yaw)
                & (np.abs(ff.pitch) <= cfg.max_abs_pitch)
                & np.isfinite(ff.landmarks68).all((1, 2))
            )
        for tid in ff.track_id.tolist():
            if self._seen.get(tid, 0) < cfg.min_seen:
                self._seen[tid] = self._seen.get(tid, 0) + 1
        picks = []
        for i in np.flatnonzero(good):
            tid = int(ff.track_id[i])
            if self._seen[tid] < cfg.min_seen:
                continue
            k = len(self._desc.get(tid, ()))
            if k >= cfg.max_per_track:
                continue
            if k and ff.pts_s - self._last[tid] < cfg.min_gap_s * 2 ** (k - 1):
                continue
            h, w = rgb.shape[:2]
            x1, y1, x2, y2 = np.clip(np.round(xyxy[i]).astype(int), 0, [w, h, w, h])
            gray = cv2.cvtColor(np.ascontiguousarray(rgb[y1:y2, x1:x2]), cv2.COLOR_RGB2GRAY)
            if sharpness(gray) >= cfg.min_sharpness:
                picks.append(i)
        if picks:
            vecs = self.describe(rgb, xyxy[picks], ff.landmarks68[picks])
            self.described += len(picks)
            for i, v in zip(picks, vecs):
                if np.isfinite(v).all():
                    tid = int(ff.track_id[i])
                    self._desc.setdefault(tid, []).append(np.asarray(v, np.float32))
                    self._last[tid] = float(ff.pts_s)
        self.seconds += time.perf_counter() - t0

    def descriptors(self) -> dict[int, np.ndarray]:
        """``{track_id: (k, 128) float32}``, 1 <= k <= ``max_per_track``; tracks with none are absent."""
        return {t: np.stack(v) for t, v in self._desc.items()}


def student_descriptors(
    track_descriptors: Mapping[int, np.ndarray], keys: Mapping[int, str]
) -> dict[str, np.ndarray]:
    """One descriptor per student key: the element-wise median over all its tracks' descriptors.

    The median keeps one bad frame (blur, a hand before the face) from pulling the student's
    descriptor away. Keys whose tracks have no descriptor are absent.

    Returns:
        ``{key: (128,) float32}``.
    """
    pooled: dict[str, list[np.ndarray]] = {}
    for tid, d in track_descriptors.items():
        if int(tid) in keys and len(d):
            pooled.setdefault(keys[int(tid)], []).append(np.asarray(d, np.float32).reshape(-1, DIM))
    return {k: np.median(np.concatenate(v), axis=0).astype(np.float32) for k, v in sorted(pooled.items())}


# --------------------------------------------------------------------------------------------------
# Matching


def match(
    queries: np.ndarray, gallery: np.ndarray, gallery_ids: Sequence[str], threshold: float = 0.6
) -> list[str | None]:
    """One-to-one assignment of query descriptors to gallery identities.

    The distance of a query to an identity is the smallest Euclidean distance to any of its gallery
    rows (several enrolment photos). The assignment minimises the summed distance (Hungarian) over
    pairs within ``threshold``, so two queries never get the same identity, and a query whose
    best identity went to a closer query is left unmatched rather than given its second best
    beyond the threshold.

    Args:
        queries: ``(K, 128)`` descriptors (e.g. one per student key).
        gallery: ``(M, 128)`` descriptors.
        gallery_ids: ``(M,)`` identity of each gallery row (repeats allowed).

    Returns:
        For each query, its identity or ``None`` (no identity within ``threshold``).
    """
    queries = np.asarray(queries, np.float64).reshape(-1, DIM)
    gallery = np.asarray(gallery, np.float64).reshape(-1, DIM)
    ids = np.asarray(gallery_ids, dtype=object)
    if len(ids) != len(gallery):
        raise ValueError(f"{len(gallery)} gallery rows but {len(ids)} ids")
    out: list[str | None] = [None] * len(queries)
    if not len(queries) or not len(gallery):
        return out
    names = sorted(set(ids.tolist()))
    row_dist = np.linalg.norm(queries[:, None] - gallery[None], axis=-1)  # (K, M)
    dist = np.stack([row_dist[:, ids == name].min(1) for name in names], 1)  # (K, identities)
    cost = np.where(dist <= threshold, dist, _INFEASIBLE)
    for r, c in zip(*linear_sum_assignment(cost)):
        if cost[r, c] < _INFEASIBLE:
            out[r] = names[c]
    return out


# --------------------------------------------------------------------------------------------------
# Seat maps


@dataclass(frozen=True)
class SeatMap:
    """Seats of one room's fixed camera: a rectangle of the image per student id.

    Attributes:
        student_ids: ``(S,)`` id of each seat, all different.
        rects: ``(S, 4) float64`` x1, y1, x2, y2 as fractions of the frame's width and height, [0, 1].
        room: free text, for people (not used in matching).
    """

    student_ids: tuple[str, ...]
    rects: np.ndarray
    room: str = ""

    def __post_init__(self):
        rects = np.asarray(self.rects, np.float64).reshape(-1, 4)
        ids = tuple(str(s) for s in self.student_ids)
        if len(ids) != len(rects):
            raise ValueError(f"{len(ids)} student ids but {len(rects)} rectangles")
        if len(set(ids)) != len(ids) or any(not s.strip() for s in ids):
            raise ValueError("seat student ids must be non-empty and all different")
        if not np.isfinite(rects).all() or (rects < 0).any() or (rects > 1).any():
            raise ValueError("seat rectangles must lie within the frame (fractions in [0, 1])")
        if ((rects[:, 2:] - rects[:, :2]) <= 0).any():
            raise ValueError("seat rectangles need x2 > x1 and y2 > y1")
        object.__setattr__(self, "student_ids", ids)
        object.__setattr__(self, "rects", rects)

    @classmethod
    def from_json(cls, obj: dict) -> SeatMap:
        """Parse the ``seats.json`` object (format in docs/PRIVACY.md and :func:`load_seat_map`)."""
        if not isinstance(obj, dict) or not isinstance(obj.get("seats"), list):
            raise ValueError('a seat map is an object with a "seats" list')
        units = obj.get("units", "normalized")
        seats = obj["seats"]
        try:
            ids = [str(s["student_id"]) for s in seats]
            rects = np.asarray([[float(v) for v in s["rect"]] for s in seats], np.float64).reshape(-1, 4)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f'every seat needs "student_id" and "rect": [x1, y1, x2, y2] ({e})') from e
        if units == "pixels":
            size = obj.get("frame_size")
            if not (isinstance(size, list) and len(size) == 2 and all(float(v) > 0 for v in size)):
                raise ValueError('"units": "pixels" needs "frame_size": [width, height] of the camera image')
            rects = rects / np.asarray([size[0], size[1], size[0], size[1]], np.float64)
        elif units != "normalized":
            raise ValueError(f'"units" must be "normalized" or "pixels", got {units!r}')
        return cls(tuple(ids), rects, str(obj.get("room", "")))

    def to_json(self) -> dict:
        return {
            "room": self.room,
            "units": "normalized",
            "seats": [
                {"student_id": s, "rect": [round(float(v), 6) for v in r]}
                for s, r in zip(self.student_ids, self.rects)
            ],
        }

    def assign(self, centres: np.ndarray) -> list[str | None]:
        """Seat of each student: the rectangle holding its mean face centre, one student per seat.

        Args:
            centres: ``(K, 2)`` face centres as fractions of the frame's width and height.

        Returns:
            For each centre, a seat's student id or ``None`` (in no seat, or its seat went to a
            student closer to the seat's centre). Overlapping seats are shared out by distance.
        """
        c = np.asarray(centres, np.float64).reshape(-1, 2)
        out: list[str | None] = [None] * len(c)
        if not len(c) or not len(self.rects):
            return out
        r = self.rects
        inside = (c[:, None, 0] >= r[None, :, 0]) & (c[:, None, 0] <= r[None, :, 2])
        inside &= (c[:, None, 1] >= r[None, :, 1]) & (c[:, None, 1] <= r[None, :, 3])
        mid = (r[:, :2] + r[:, 2:]) / 2
        dist = np.linalg.norm(c[:, None] - mid[None], axis=-1)
        cost = np.where(inside, dist, _INFEASIBLE)
        for i, j in zip(*linear_sum_assignment(cost)):
            if cost[i, j] < _INFEASIBLE:
                out[i] = self.student_ids[j]
        return out


def load_seat_map(path: str | os.PathLike) -> SeatMap:
    """Read a ``seats.json``::

        {"room": "B-204", "units": "normalized",
         "seats": [{"student_id": "st-0412", "rect": [0.10, 0.30, 0.22, 0.55]}, ...]}

    ``rect`` is x1, y1, x2, y2: with ``"units": "normalized"`` (the default) as fractions of the
    frame's width and height, so one map fits every resolution of the same camera view; with
    ``"units": "pixels"`` in pixels of an image of ``"frame_size": [width, height]``.

    Raises:
        IdentityStoreError: unreadable file or bad values.
    """
    try:
        return SeatMap.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError) as e:
        raise IdentityStoreError(f"seat map {path}: {e}") from e


def key_centres(tracks, keys: Mapping[int, str], frame_wh: tuple[int, int]) -> dict[str, np.ndarray]:
    """Hit-weighted mean face centre of each student key, as fractions of the frame size.

    Args:
        tracks: a ``TrackSummary`` (``track_id``, ``hits``, ``mean_cxcywh`` in pixels).
        keys: ``{track_id: key}`` from ``assign_students``.
        frame_wh: (width, height) of the frames, pixels.

    Returns:
        ``{key: (2,) float64}``.
    """
    sums: dict[str, np.ndarray] = {}
    for tid, hits, box in zip(tracks.track_id.tolist(), tracks.hits.tolist(), tracks.mean_cxcywh):
        if tid in keys:
            acc = sums.setdefault(keys[tid], np.zeros(3))
            acc += (hits * box[0], hits * box[1], hits)
    wh = np.asarray(frame_wh, np.float64)
    return {k: v[:2] / v[2] / wh for k, v in sorted(sums.items())}


# --------------------------------------------------------------------------------------------------
# The store: OUTPUT/identity/<course>/{roster.npz, pseudonyms.npz, seats.json}, owner-only


@dataclass(frozen=True)
class Gallery:
    """Stored descriptors as parallel arrays (M rows).

    Attributes:
        ids: ``(M,)`` student id of each row (roster id or pseudonym).
        descriptors: ``(M, 128) float32``.
        video_id: ``(M,)`` the lecture a pseudonym row comes from; ``""`` for enrolment photos.
        lecture_date: ``(M,)`` ISO date of that lecture (for retention); ``""`` for enrolment photos.
    """

    ids: np.ndarray
    descriptors: np.ndarray
    video_id: np.ndarray
    lecture_date: np.ndarray

    def __post_init__(self):
        d = np.asarray(self.descriptors, np.float32).reshape(-1, DIM)
        m = len(d)
        for name in ("ids", "video_id", "lecture_date"):
            a = np.asarray(getattr(self, name), dtype=str).reshape(-1)
            if len(a) != m:
                raise ValueError(f"{name} has {len(a)} rows, descriptors {m}")
            object.__setattr__(self, name, a)
        if not np.isfinite(d).all():
            raise ValueError("descriptors must be finite")
        object.__setattr__(self, "descriptors", d)

    @classmethod
    def empty(cls) -> Gallery:
        return cls(np.zeros(0, str), np.zeros((0, DIM), np.float32), np.zeros(0, str), np.zeros(0, str))

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, mask: np.ndarray) -> Gallery:
        return Gallery(self.ids[mask], self.descriptors[mask], self.video_id[mask], self.lecture_date[mask])

    def plus(self, other: Gallery) -> Gallery:
        return Gallery(
            *(np.concatenate([getattr(self, f), getattr(other, f)]) for f in Gallery.__dataclass_fields__)
        )


def check_course(course: str) -> str:
    """A course code usable as a folder name (as in the records' partitions), else ``ValueError``."""
    if not _COURSE_RE.match(str(course)):
        raise ValueError(f"course {course!r} must be 1-64 letters, digits, '.', '_' or '-'")
    return str(course)


def course_hash(course: str) -> str:
    """8 hex digits naming a course in pseudonyms (ids from different courses never collide)."""
    return hashlib.sha256(check_course(course).encode()).hexdigest()[:8]


def store_root(output_dir: str | os.PathLike) -> Path:
    """``OUTPUT/identity``: the only place descriptors are kept."""
    return Path(output_dir) / STORE_DIR


def _private_dir(folder: Path) -> Path:
    """Create ``OUTPUT/identity/<course>`` and make it and ``OUTPUT/identity`` owner-only (0700)."""
    folder.mkdir(parents=True, exist_ok=True)
    for p in (folder.parent, folder):
        os.chmod(p, 0o700)  # explicit: mkdir's mode is filtered by the umask
    return folder


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` atomically (temp file + rename) as an owner-only (0600) file."""
    _private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def course_dir(output_dir: str | os.PathLike, course: str) -> Path:
    return store_root(output_dir) / check_course(course)


def save_gallery(path: Path, gallery: Gallery, next_number: int = 1) -> None:
    """``.npz`` of the gallery's arrays (strings as unicode arrays: loads without pickle)."""
    buf = io.BytesIO()
    np.savez(
        buf,
        ids=gallery.ids,
        descriptors=gallery.descriptors,
        video_id=gallery.video_id,
        lecture_date=gallery.lecture_date,
        next_number=np.int64(next_number),
    )
    _write_private(path, buf.getvalue())


def load_gallery(path: Path) -> tuple[Gallery, int]:
    """The gallery at ``path`` and its next pseudonym number; empty (and 1) if there is no file."""
    if not path.is_file():
        return Gallery.empty(), 1
    try:
        with np.load(path, allow_pickle=False) as z:
            g = Gallery(z["ids"], z["descriptors"], z["video_id"], z["lecture_date"])
            return g, int(z["next_number"])
    except (OSError, ValueError, KeyError) as e:
        raise IdentityStoreError(f"identity store {path}: {e}") from e


def save_seat_map(output_dir: str | os.PathLike, course: str, seats: SeatMap) -> Path:
    path = course_dir(output_dir, course) / SEATS_FILE
    _write_private(path, (json.dumps(seats.to_json(), indent=1) + "\n").encode())
    return path


def stored_seat_map(output_dir: str | os.PathLike, course: str) -> SeatMap | None:
    path = course_dir(output_dir, course) / SEATS_FILE
    return load_seat_map(path) if path.is_file() else None


# --------------------------------------------------------------------------------------------------
# Enrolment


def read_roster(path: str | os.PathLike) -> dict[str, list[Path]]:
    """``roster.csv`` -> ``{student_id: [photo paths]}``.

    Each row is a student id and one or more photo paths (relative paths are relative to the CSV's
    folder); a student may have several rows. A first row starting with ``student_id`` is a header.

    Raises:
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
            photos = [Path(p) if Path(p).is_absolute() else path.parent / p for p in cells[1:]]
            roster.setdefault(cells[0], []).extend(photos)
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

    All or nothing: any unreadable photo or photo without a face raises before anything is written.

    Returns:
        ``{"course", "students", "photos", "store"}``.
    """
    course = check_course(course)
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


# --------------------------------------------------------------------------------------------------
# Resolving a lecture's student keys


@dataclass(frozen=True)
class Resolution:
    """Student ids of one lecture's keys, and how they were found.

    Attributes:
        student_ids: ``{key: student_id}`` for every key.
        mode: ``roster``, ``seats`` or ``pseudonym``.
        matched: keys that got a roster id, a seat or an existing pseudonym.
        new: keys that got a new pseudonym (pseudonym mode).
        unknown: keys left ``unknown-...``.
    """

    student_ids: dict[str, str]
    mode: str
    matched: int
    new: int
    unknown: int


def resolve_students(
    output_dir: str | os.PathLike,
    course: str,
    video_id: str,
    lecture_date: date,
    keys: Mapping[int, str],
    tracks,
    frame_wh: tuple[int, int] | None,
    track_descriptors: Mapping[int, np.ndarray],
    config: IdentityConfig | None = None,
) -> Resolution:
    """Course-wide student ids for one lecture's student keys (see the module docstring for modes).

    In pseudonym mode the course's store gains this lecture's student descriptors (one median per
    key that has one), replacing rows of an earlier analysis of the same ``video_id``, so a rerun
    does not count a lecture twice.

    Args:
        keys: ``{track_id: key}`` from ``assign_students``.
        tracks: the lecture's ``TrackSummary`` (seat positions).
        frame_wh: frame size in pixels (needed for seat maps).
        track_descriptors: ``{track_id: (k, 128)}`` from :class:`DescriptorCollector` (all segments).
    """
    cfg = config or IdentityConfig()
    course = check_course(course)
    folder = course_dir(output_dir, course)
    names = sorted(set(keys.values()))
    desc = student_descriptors(track_descriptors, keys)
    found: dict[str, str] = {}
    new = 0
    roster, _ = load_gallery(folder / ROSTER_FILE)
    seats = stored_seat_map(output_dir, course)
    if len(roster):
        mode = "roster"
        with_desc = [k for k in names if k in desc]
        q = np.stack([desc[k] for k in with_desc]) if with_desc else np.zeros((0, DIM))
        for k, sid in zip(with_desc, match(q, roster.descriptors, roster.ids, cfg.threshold)):
            if sid is not None:
                found[k] = sid
        matched = len(found)
    elif seats is not None:
        mode = "seats"
        if frame_wh is not None and names:
            centres = key_centres(tracks, keys, frame_wh)
            for k, sid in zip(names, seats.assign(np.stack([centres[k] for k in names]))):
                if sid is not None:
                    found[k] = sid
        matched = len(found)
    else:
        mode = "pseudonym"
        path = folder / PSEUDONYM_FILE
        loaded, next_number = load_gallery(path)
        # Centroids over every row, an earlier analysis of this video included (so a rerun gives its
        # people the ids they had); that analysis's rows are then replaced by this one's.
        pids = sorted(set(loaded.ids.tolist()))
        centroids = np.stack([loaded.descriptors[loaded.ids == p].mean(0) for p in pids]) if pids else None
        store = loaded.take(loaded.video_id != video_id)
        with_desc = [k for k in names if k in desc]
        q = np.stack([desc[k] for k in with_desc]) if with_desc else np.zeros((0, DIM))
        hits = match(q, centroids if centroids is not None else np.zeros((0, DIM)), pids, cfg.threshold)
        prefix = course_hash(course)
        for k, pid in zip(with_desc, hits):
            if pid is None:
                pid, next_number, new = f"{prefix}-p{next_number:04d}", next_number + 1, new + 1
            found[k] = pid
        matched = len(found) - new
        if with_desc:
            rows = Gallery(
                np.asarray([found[k] for k in with_desc], str),
                q,
                np.full(len(with_desc), video_id),
                np.full(len(with_desc), lecture_date.isoformat()),
            )
            store = store.plus(rows)
        if with_desc or len(store) != len(loaded):
            save_gallery(path, store, next_number)
    unknown = [k for k in names if k not in found]
    for n, k in enumerate(unknown, 1):
        found[k] = f"unknown-{video_id[:8]}-{n}"
    return Resolution({k: found[k] for k in names}, mode, matched, new, len(unknown))


# --------------------------------------------------------------------------------------------------
# Forgetting


def _course_folders(output_dir: str | os.PathLike, course: str | None) -> list[Path]:
    """The store folder of ``course``, or of every course."""
    if course is not None:
        return [course_dir(output_dir, course)]
    root = store_root(output_dir)
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def forget_student(output_dir: str | os.PathLike, student_id: str, course: str | None = None) -> int:
    """Remove everything the identity store holds about ``student_id``.

    Deletes the student's enrolment descriptors (roster), pseudonym descriptors and seat-map
    entries, in ``course`` or, if ``None``, in every course of the store. Files are rewritten
    atomically; a pseudonym number is never handed out again. Face records are not touched (the
    caller, ``fer-stream forget``, removes those).

    Returns:
        entries removed: descriptor rows plus seat-map entries (0 if the store holds nothing of them).
    """
    folders = _course_folders(output_dir, course)
    removed = 0
    for folder in folders:
        for name in (ROSTER_FILE, PSEUDONYM_FILE):
            path = folder / name
            if not path.is_file():
                continue
            g, next_number = load_gallery(path)
            hit = g.ids == student_id
            if hit.any():
                save_gallery(path, g.take(~hit), next_number)
                removed += int(hit.sum())
        seats_path = folder / SEATS_FILE
        if seats_path.is_file():
            seats = load_seat_map(seats_path)
            keep = [i for i, s in enumerate(seats.student_ids) if s != student_id]
            if len(keep) < len(seats.student_ids):
                ids = tuple(seats.student_ids[i] for i in keep)
                save_seat_map(output_dir, folder.name, SeatMap(ids, seats.rects[keep], seats.room))
                removed += len(seats.student_ids) - len(keep)
    return removed


def forget_lectures(
    output_dir: str | os.PathLike,
    *,
    video_id: str | None = None,
    before: date | None = None,
    course: str | None = None,
) -> int:
    """Remove pseudonym descriptors that came from one lecture (``video_id``) or from lectures
    dated before ``before`` (retention), in ``course`` or every course. Enrolment photos' descriptors
    are kept (they have no lecture); a pseudonym whose rows all go is matched no more.

    Returns:
        descriptor rows removed.
    """
    if (video_id is None) == (before is None):
        raise ValueError("give exactly one of video_id and before")
    folders = _course_folders(output_dir, course)
    removed = 0
    for folder in folders:
        path = folder / PSEUDONYM_FILE
        if not path.is_file():
            continue
        g, next_number = load_gallery(path)
        if video_id is not None:
            hit = g.video_id == video_id
        else:
            # rows without a lecture (enrolment photos) are never "before" anything
            hit = np.asarray([d != "" and d < before.isoformat() for d in g.lecture_date.tolist()], bool)
            hit = hit.reshape(-1)
        if hit.any():
            save_gallery(path, g.take(~hit), next_number)
            removed += int(hit.sum())
    return removed
