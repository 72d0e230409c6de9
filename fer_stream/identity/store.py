"""The identity store: ``OUTPUT/identity/<course>/{roster.npz, pseudonyms.npz, seats.json}``.

Descriptors are biometric data. They live only here (folders 0700, files 0600, written atomically
by ``fer_stream.ops.atomic.write_atomic``), never in the face records or reports; see docs/PRIVACY.md.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import secrets
from pathlib import Path

import numpy as np

from fer_stream.identity.ids import check_student_ids
from fer_stream.identity.matching import Gallery, SeatMap
from fer_stream.inputs import check_course
from fer_stream.ops.atomic import write_atomic
from fer_stream.ops.layout import IDENTITY_DIR

ROSTER_FILE, PSEUDONYM_FILE, SEATS_FILE = "roster.npz", "pseudonyms.npz", "seats.json"
SALT_FILE = "erasure.salt"  # OUTPUT/identity/erasure.salt: the key of student_digest
DIGEST_PREFIX = "hmac-sha256:"


class IdentityStoreError(OSError):
    """A store file or a seat map/roster that cannot be read or holds bad values.

    An ``OSError`` so that the pipeline records it as the video's typed failure, like other I/O errors.
    """


def course_hash(course: str) -> str:
    """8 hex digits naming a course in pseudonyms (ids from different courses never collide)."""
    return hashlib.sha256(check_course(course).encode()).hexdigest()[:8]


def store_root(output_dir: str | os.PathLike) -> Path:
    """``OUTPUT/identity``: the only place descriptors are kept."""
    return Path(output_dir) / IDENTITY_DIR


def course_dir(output_dir: str | os.PathLike, course: str) -> Path:
    """``OUTPUT/identity/<course>``; ``course`` is checked (``inputs.check_course``: a ``ValueError``)."""
    return store_root(output_dir) / check_course(course)


def course_folders(output_dir: str | os.PathLike, course: str | None) -> list[Path]:
    """The store folder of ``course``, or of every course."""
    if course is not None:
        return [course_dir(output_dir, course)]
    root = store_root(output_dir)
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def _private_dir(folder: Path) -> Path:
    """Create ``OUTPUT/identity/<course>`` and make it and ``OUTPUT/identity`` owner-only (0700)."""
    folder.mkdir(parents=True, exist_ok=True)
    for p in (folder.parent, folder):
        os.chmod(p, 0o700)  # explicit: mkdir's mode is filtered by the umask
    return folder


def _write_private(path: Path, data: bytes) -> None:
    """``data`` as an owner-only (0600) file in an owner-only folder, written atomically."""
    _private_dir(path.parent)
    write_atomic(path, lambda f: f.write(data), mode=0o600)


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


def load_seat_map(path: str | os.PathLike) -> SeatMap:
    """Read a ``seats.json`` (format: :meth:`fer_stream.identity.matching.SeatMap.from_json`).

    Raises:
        IdentityStoreError: unreadable file or bad values.
    """
    try:
        return SeatMap.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError) as e:
        raise IdentityStoreError(f"seat map {path}: {e}") from e


def save_seat_map(output_dir: str | os.PathLike, course: str, seats: SeatMap) -> Path:
    """Store ``seats`` as the course's seat map (its student ids checked first: ``StudentIdError``)."""
    check_student_ids(seats.student_ids, "seat map")
    path = course_dir(output_dir, course) / SEATS_FILE
    _write_private(path, (json.dumps(seats.to_json(), indent=1) + "\n").encode())
    return path


def stored_seat_map(output_dir: str | os.PathLike, course: str) -> SeatMap | None:
    path = course_dir(output_dir, course) / SEATS_FILE
    return load_seat_map(path) if path.is_file() else None


def erasure_salt(output_dir: str | os.PathLike) -> bytes:
    """The store's secret salt (32 random bytes, ``OUTPUT/identity/erasure.salt``, 0600 in the 0700
    ``identity/``), made on first use.

    ``forgotten.json`` and run records name an erased student by :func:`student_digest`, never by
    id: without this file nobody can tell which id a digest stands for (ids are short and
    guessable, so a plain hash would not hide them). Deleting it makes the erasures of
    ``forgotten.json`` unmatchable, so a forgotten student could come back when a lecture is
    analysed again: keep it with the store.

    Raises:
        IdentityStoreError: the salt file exists but is not 32 bytes, or cannot be read or written.
    """
    root = store_root(output_dir)
    path = root / SALT_FILE
    try:
        if not path.is_file():
            root.mkdir(parents=True, exist_ok=True)
            os.chmod(root, 0o700)  # explicit: mkdir's mode is filtered by the umask
            tmp = root / f".{SALT_FILE}.{secrets.token_hex(4)}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(secrets.token_bytes(32))
                    f.flush()
                    os.fsync(f.fileno())
                os.link(tmp, path)  # publish whole, and only if no other process made one first
            except FileExistsError:
                pass  # another process's salt won: use that one
            finally:
                tmp.unlink(missing_ok=True)
        salt = path.read_bytes()
    except OSError as e:
        raise IdentityStoreError(f"erasure salt {path}: {e}") from e
    if len(salt) != 32:
        raise IdentityStoreError(f"erasure salt {path}: {len(salt)} bytes, expected 32")
    return salt


def student_digest(student_id: str, salt: bytes) -> str:
    """``hmac-sha256:<64 hex>`` of ``student_id`` keyed by ``salt`` (:func:`erasure_salt`)."""
    return DIGEST_PREFIX + hmac.new(salt, student_id.encode("utf-8"), hashlib.sha256).hexdigest()
