"""Compare two output folders' records: the same faces and frames, and how far values moved.

    python bench/compare_records.py BEFORE_OUTPUT AFTER_OUTPUT [--json out.json]

Rows are matched by (video_id, frame_index, x1, y1), boxes rounded to 0.01 px (track ids may differ
between versions, so faces are matched by frame and box). Reports, per table:
row counts, rows only on one side, identical columns, the largest absolute difference of each
float column, emotion agreement, and student-key agreement. Exit 0 when the faces and frames
are the same rows (values may differ within what is printed), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import pyarrow as pa

from fer_stream import records

KEYS = {"faces": ["video_id", "frame_index", "x1", "y1"], "frames": ["video_id", "frame_index"]}


def _key(v):
    return round(v, 2) if isinstance(v, float) else v


def _load(root: str, name: str) -> pa.Table:
    t = records.read(root, name)
    return t.sort_by([(k, "ascending") for k in KEYS[name]])


def compare(before: str, after: str) -> dict:
    out: dict = {}
    for name in ("faces", "frames"):
        a, b = _load(before, name), _load(after, name)
        # boxes match to 0.01 px: another runtime's float rounding is not another face
        ka = [tuple(_key(v) for v in r.values()) for r in a.select(KEYS[name]).to_pylist()]
        kb = [tuple(_key(v) for v in r.values()) for r in b.select(KEYS[name]).to_pylist()]
        res = {"rows_before": a.num_rows, "rows_after": b.num_rows, "same_keys": ka == kb}
        if ka == kb:
            diffs, identical = {}, []
            for col in a.column_names:
                if col not in b.column_names:
                    continue
                x, y = a.column(col), b.column(col)
                if x.equals(y):
                    identical.append(col)
                elif pa.types.is_floating(x.type):
                    xv = x.to_numpy(zero_copy_only=False).astype(float)
                    yv = y.to_numpy(zero_copy_only=False).astype(float)
                    both = np.isfinite(xv) & np.isfinite(yv)
                    diffs[col] = {
                        "max_abs_diff": float(np.abs(xv[both] - yv[both]).max()) if both.any() else 0.0,
                        "null_mismatch": int((np.isfinite(xv) != np.isfinite(yv)).sum()),
                    }
                else:
                    xl, yl = x.to_pylist(), y.to_pylist()
                    diffs[col] = {
                        "agreement": float(np.mean([p == q for p, q in zip(xl, yl)])) if xl else 1.0
                    }
            res["identical_columns"] = identical
            res["differing_columns"] = diffs
        out[name] = res
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--json", help="write the result here too")
    a = ap.parse_args(argv)
    res = compare(a.before, a.after)
    text = json.dumps(res, indent=1)
    print(text)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")
    return 0 if all(r["same_keys"] for r in res.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
