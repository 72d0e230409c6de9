"""Student ids given by people (roster rows, seat maps): checked once, where they enter the store.

An id names a student in every record and report: it goes into CSV cells that spreadsheets open and
into messages and file listings. So it is a short token of plain characters: letters, digits, ``.``,
``_`` and ``-``, 1-64 of them, starting with a letter or a digit. That refuses path pieces
(``../../etc/x``), spreadsheet formulas (``=HYPERLINK(...)``, ``+1``, ``-1``, ``@SUM``), spaces,
control characters and quotes. The ids the package makes itself (``<8 hex>-p0007``,
``unknown-<8 hex>-1``, ``<8 hex>-s001``) are of the same form.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

STUDENT_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
STUDENT_ID_RULE = "1-64 letters, digits, '.', '_' or '-', starting with a letter or a digit"


class StudentIdError(ValueError):
    """A student id outside :data:`STUDENT_ID_RE` (``fer-stream enroll`` exits 2 on it)."""


def check_student_id(value: object, where: str = "student id") -> str:
    """``value`` as a student id (surrounding spaces dropped), checked.

    Raises:
        StudentIdError: not 1-64 of letters, digits, ``.``, ``_``, ``-`` starting with a letter or digit.
    """
    sid = str(value).strip()
    if not STUDENT_ID_RE.fullmatch(sid):
        shown = sid if len(sid) <= 80 else sid[:77] + "..."
        raise StudentIdError(f"{where}: student id {shown!r} must be {STUDENT_ID_RULE}")
    return sid


def check_student_ids(values: Iterable[object], where: str = "student id") -> list[str]:
    """:func:`check_student_id` of each value, in order."""
    return [check_student_id(v, where) for v in values]
