"""`fer-stream enroll`: a course's roster photos (and/or seat map) into the identity store.

Thin glue over ``fer_stream.identity``; listed in ``fer_stream.cli.COMMANDS``.
"""

from __future__ import annotations

import json
import sys

from fer_stream.cli import exits


def _enroll(a) -> int:
    from fer_stream import identity
    from fer_stream.inputs import check_course

    try:
        course = check_course(a.course)
        out: dict = {"course": course}
        seats = identity.load_seat_map(a.seats) if a.seats else None  # checked before any writing
        if seats is not None:
            identity.check_student_ids(seats.student_ids, a.seats)
        roster = identity.read_roster(a.roster) if a.roster else None
        if roster is not None:
            enroller = identity.Enroller(a.detector, num_jitters=a.jitters)
            out["roster"] = identity.enroll_roster(a.output, course, roster, enroller)
        if seats is not None:
            path = identity.save_seat_map(a.output, course, seats)
            out["seats"] = {"seats": len(seats.student_ids), "store": str(path)}
    except OSError as e:  # an unreadable roster or seat map, an unwritable store
        print(f"fer-stream enroll: {e}", file=sys.stderr)
        return exits.ERROR
    except ValueError as e:  # a bad course code or student id, a bad roster row, a photo without a face
        print(f"fer-stream enroll: {e}", file=sys.stderr)
        return exits.USAGE
    print(json.dumps(out))
    return exits.OK


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "enroll",
        help="enrol a course's students: roster photos -> face descriptors, or a seat map",
        description="Store a course's roster (face descriptors of each student's photos; no photos are "
        "kept) or seat map under OUTPUT/identity/<course>/ (owner-only). A new roster replaces the "
        "course's earlier one. See docs/PRIVACY.md.",
        epilog=exits.EPILOG,
    )
    p.add_argument("--course", required=True, help="course code, as in the records' course column")
    p.add_argument("--output", required=True, help="records folder of the analysis (holds identity/)")
    p.add_argument("--roster", help="CSV rows: student_id,photo[,photo...] (paths relative to the CSV)")
    p.add_argument("--seats", help="seats.json of the course's room (used when the course has no roster)")
    p.add_argument("--detector", default="mtcnn", choices=["mtcnn", "hog"], help="face detector for photos")
    p.add_argument("--jitters", type=int, default=0, help="dlib re-crops averaged per photo (slower)")

    def run(a) -> int:
        if not a.roster and not a.seats:
            p.error("give --roster and/or --seats")
        return _enroll(a)

    p.set_defaults(func=run)
