"""Inputs of an analysis: which video files, which course and lecture date, which video id.

Plain Python, no Ray: the pipeline, ``nightly`` and ``fer_stream.analyze`` resolve their inputs
here once (:func:`resolve`) and hand the resolved :class:`Lecture` on; the content hash (the
``video_id``) is computed once per file, by whoever needs it first.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

VIDEO_EXTS = frozenset(".mp4 .mov .m4v .mkv .webm .avi .mts .m2ts .ts .mpg .mpeg .wmv .flv".split())


class MetadataError(ValueError):
    """A sidecar (``videos.csv``, ``<video>.json``) that cannot be read or holds bad values."""


class NoVideosError(FileNotFoundError):
    """The inputs hold no video to analyse: an empty folder, a glob that matches nothing.

    Nothing to work on (``fer-stream analyze`` exits 4, ``exits.NO_DATA``), unlike a path that does
    not exist (a plain ``FileNotFoundError``, exit 1). A ``FileNotFoundError`` for callers that
    catch that.
    """


@dataclass(frozen=True)
class LectureMeta:
    """Course and lecture date of one video; ``source`` says where they came from: ``json``, ``csv``,
    ``path``, ``fallback``, or two joined by ``+`` when course and date came from different places.
    ``warning``: why a fallback was used (``""`` when none was), for the run summary and ``videos/``."""

    course: str
    lecture_date: date
    source: str
    warning: str = ""


_COURSE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_DATED_NAME_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})")


def discover_videos(inputs: Sequence[str | os.PathLike]) -> list[tuple[Path, Path]]:
    """Expand files, folders (recursively, by video extension) and globs into videos.

    Returns:
        ``(video, root)`` pairs, sorted and without duplicates: ``root`` is the folder given (for a
        folder input) or the video's own folder; sidecar ``videos.csv`` files are looked up from the
        video's folder up to ``root``. A named file is taken whatever its extension (and fails
        later if it is no video); a pattern that matches nothing or a missing path is an error.
    """
    found: dict[Path, Path] = {}
    for item in inputs:
        s = os.fspath(item)
        if glob.has_magic(s):
            matches = sorted(glob.glob(s, recursive=True))
            if not matches:
                raise NoVideosError(f"no file matches {s}")
            paths = [Path(m) for m in matches if Path(m).is_file()]
            for p in paths:
                found.setdefault(p.resolve(), p.resolve().parent)
        elif Path(s).is_dir():
            root = Path(s).resolve()
            for p in sorted(root.rglob("*")):
                if p.is_file() and p.suffix.lower() in VIDEO_EXTS and not p.name.startswith("."):
                    found.setdefault(p.resolve(), root)
        elif Path(s).exists():
            p = Path(s).resolve()
            found.setdefault(p, p.parent)
        else:
            raise FileNotFoundError(f"no such file or folder: {s}")
    return sorted(found.items())


def require_videos(inputs: Sequence[str | os.PathLike]) -> list[tuple[Path, Path]]:
    """:func:`discover_videos`, for an analysis: finding no video at all is an error.

    Raises:
        NoVideosError: the inputs are empty folders (no file with a video extension) or globs that
            match nothing.
        FileNotFoundError: an input path that does not exist.
    """
    found = discover_videos(inputs)
    if not found:
        where = ", ".join(str(os.fspath(i)) for i in inputs) or "(no inputs)"
        raise NoVideosError(f"no video files in {where} (extensions: {' '.join(sorted(VIDEO_EXTS))})")
    return found


def _parse_date(value: str, where: str) -> date:
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError as e:
        raise MetadataError(f"{where}: lecture_date {value!r} is not YYYY-MM-DD") from e


def check_course(value: str, where: str = "course") -> str:
    """The course code, checked: it names a partition folder and an identity-store folder."""
    course = str(value).strip()
    if not _COURSE_RE.match(course):
        raise MetadataError(
            f"{where}: course {course!r} must be 1-64 letters, digits, '.', '_' or '-' "
            "(it names a partition folder)"
        )
    return course


@lru_cache(maxsize=256)
def _csv_rows(csv_path: Path, mtime_ns: int) -> dict[Path, dict]:
    """``videos.csv`` -> ``{resolved video path: {"course":..., "lecture_date":...}}`` (cached)."""
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or "path" not in reader.fieldnames:
            raise MetadataError(f"{csv_path}: needs a header with columns path,course,lecture_date")
        rows = {}
        for row in reader:
            p = Path(row["path"].strip())
            p = (p if p.is_absolute() else csv_path.parent / p).resolve()
            rows[p] = {k: (row.get(k) or "").strip() for k in ("course", "lecture_date")}
    return rows


def lecture_metadata(video: str | os.PathLike, root: str | os.PathLike | None = None) -> LectureMeta:
    """Course and lecture date of a video, first match wins:

    1. ``<video file name>.json`` or ``<video stem>.json`` next to it: ``{"course": ..., "lecture_date":
       "YYYY-MM-DD"}`` (either key may be absent);
    2. a ``videos.csv`` (columns ``path,course,lecture_date``; paths relative to the csv) in the
       video's folder or a parent up to ``root``, the nearest one that lists the video;
    3. the path convention ``.../COURSE/YYYY-MM-DD*.ext``;
    4. course ``unknown``, date of the file's modification time (local time).

    Each of course and date is taken from the first source that has it (``source`` then reads e.g.
    ``json+csv``). Raises
    :class:`MetadataError` for an unreadable sidecar or bad values in it.
    """
    video = Path(video).resolve()
    root = Path(root).resolve() if root is not None else video.parent
    course: str | None = None
    day: date | None = None
    sources: list[str] = []

    def take(c, d, where: str, name: str) -> None:
        nonlocal course, day
        if c and course is None:
            course = check_course(c, where)
            sources.append(name)
        if d and day is None:
            day = _parse_date(d, where)
            sources.append(name)

    for js in (video.with_name(video.name + ".json"), video.with_suffix(".json")):
        if js.is_file():
            try:
                obj = json.loads(js.read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                raise MetadataError(f"{js}: {e}") from e
            if not isinstance(obj, dict):
                raise MetadataError(f"{js}: expected a JSON object")
            take(obj.get("course"), obj.get("lecture_date"), str(js), "json")
            break
    folder = video.parent
    while course is None or day is None:
        sidecar = folder / "videos.csv"
        if sidecar.is_file():
            try:
                rows = _csv_rows(sidecar, sidecar.stat().st_mtime_ns)
            except (OSError, UnicodeDecodeError, csv.Error) as e:
                raise MetadataError(f"{sidecar}: {e}") from e
            if video in rows:
                take(rows[video]["course"], rows[video]["lecture_date"], str(sidecar), "csv")
        if folder == root or folder.parent == folder or root not in folder.parents:
            break
        folder = folder.parent
    m = _DATED_NAME_RE.match(video.name)
    folder_is_course = bool(_COURSE_RE.match(video.parent.name))
    if m and (course is None or day is None):
        try:  # a dated name in a folder that is no valid course name still gives the date
            take(video.parent.name if folder_is_course else None, m.group(1), str(video), "path")
        except MetadataError:
            pass  # e.g. 2024-13-45_x.mp4 is not a date: the convention does not apply
    warning = ""
    if course is None or day is None:
        sources.append("fallback")
        used = [("course 'unknown'", course is None), ("the file's modification date", day is None)]
        why = "no sidecar gives it and the path is not COURSE/YYYY-MM-DD*"
        if m and not folder_is_course:
            why = f"its folder {video.parent.name!r} is no valid course name (1-64 of A-Z a-z 0-9 . _ -)"
        warning = " and ".join(what for what, missing in used if missing) + f": {why}"
        course = course or "unknown"
        if day is None:
            try:
                day = date.fromtimestamp(video.stat().st_mtime)
            except OSError:
                day = date.today()
    return LectureMeta(course, day, "+".join(dict.fromkeys(sources)), warning)


def content_hash(path: str | os.PathLike) -> str:
    """sha256 hex of the file's bytes: the video_id (``hashlib.file_digest``; cost in docs/BENCHMARKS.md)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def path_id(path: str | os.PathLike) -> str:
    """The id of a file that cannot be read (so not hashed): from its path, so its failure has a row."""
    return hashlib.sha256(f"path:{path}".encode()).hexdigest()


@dataclass(frozen=True)
class Lecture:
    """One resolved input: the file, its course and date, and (when already known) its video id.

    ``meta_error``: ``(type name, message)`` of a sidecar that could not be read; the lecture then
    carries fallback metadata and the pipeline records it as failed. ``video_id`` ``None``: the
    pipeline hashes the file (in parallel, on the workers) when it inspects it.
    """

    path: str
    meta: LectureMeta
    video_id: str | None = None
    meta_error: tuple[str, str] | None = None


def resolve(
    inputs: Sequence[str | os.PathLike], sidecar_root: str | os.PathLike | None = None
) -> list[Lecture]:
    """Files, folders and globs -> :class:`Lecture` s with their course and date (no hashing).

    ``sidecar_root``: look ``videos.csv`` sidecars up from each video's folder to this folder (for
    videos under it), as for a folder input; for chosen files of an inbox (``nightly``).
    """
    top = Path(sidecar_root).resolve() if sidecar_root is not None else None
    out = []
    for path, root in discover_videos(inputs):
        if top is not None and path.is_relative_to(top):
            root = top
        out.append(lecture(path, root))
    return out


def lecture(
    path: str | os.PathLike, root: str | os.PathLike | None = None, video_id: str | None = None
) -> Lecture:
    """The :class:`Lecture` of one file; a bad sidecar becomes ``meta_error`` (not an exception)."""
    path = Path(path).resolve()
    try:
        return Lecture(str(path), lecture_metadata(path, root), video_id)
    except MetadataError as e:
        try:
            day = date.fromtimestamp(path.stat().st_mtime)
        except OSError:
            day = date.today()
        fallback = LectureMeta("unknown", day, "fallback")
        return Lecture(str(path), fallback, video_id, (type(e).__name__, str(e).strip()))
