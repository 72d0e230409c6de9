"""Student identity across lectures: the owner-only store, enrolment, resolution, forgetting.

The face descriptors are ``fer_stream.faces.descriptors`` (maths only); this package matches them
to students and keeps them in ``OUTPUT/identity/<course>/``:

    matching.py  one-to-one matching, seat maps, galleries (maths; no files)
    store.py     folders, file names, galleries and seat maps on disk (0700/0600, atomic writes)
    ids.py       the student ids people give (roster, seat map): checked where they enter
    roster.py    roster.csv -> enrolment descriptors (``fer-stream enroll``)
    resolve.py   a lecture's student keys -> roster ids, seats or pseudonyms (ids: its docstring)
    forget.py    a student or lectures out of the store (``fer-stream forget``, retention)

Descriptors are biometric data: they never leave the store (docs/PRIVACY.md).
"""

from fer_stream.config import IdentityConfig
from fer_stream.faces.descriptors import DIM, DescriptorCollector, FaceDescriptor, shared_descriptor
from fer_stream.identity.forget import forget_lectures, forget_student, holds_student
from fer_stream.identity.ids import STUDENT_ID_RE, StudentIdError, check_student_id, check_student_ids
from fer_stream.identity.matching import Gallery, SeatMap, key_centres, match, student_descriptors
from fer_stream.identity.resolve import IdentityMode, Resolution, resolve_students
from fer_stream.identity.roster import Enroller, enroll_roster, read_roster
from fer_stream.identity.store import (
    PSEUDONYM_FILE,
    ROSTER_FILE,
    SEATS_FILE,
    IdentityStoreError,
    course_dir,
    course_hash,
    load_gallery,
    load_seat_map,
    save_gallery,
    save_seat_map,
    store_root,
    stored_seat_map,
)
from fer_stream.inputs import check_course

__all__ = [
    "DIM",
    "PSEUDONYM_FILE",
    "ROSTER_FILE",
    "SEATS_FILE",
    "STUDENT_ID_RE",
    "DescriptorCollector",
    "Enroller",
    "FaceDescriptor",
    "Gallery",
    "IdentityConfig",
    "IdentityMode",
    "IdentityStoreError",
    "Resolution",
    "SeatMap",
    "StudentIdError",
    "check_course",
    "check_student_id",
    "check_student_ids",
    "course_dir",
    "course_hash",
    "enroll_roster",
    "forget_lectures",
    "forget_student",
    "holds_student",
    "key_centres",
    "load_gallery",
    "load_seat_map",
    "match",
    "read_roster",
    "resolve_students",
    "save_gallery",
    "save_seat_map",
    "shared_descriptor",
    "store_root",
    "stored_seat_map",
    "student_descriptors",
]
