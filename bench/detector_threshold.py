"""CenterFace's threshold and smallest face for the pipeline, chosen on early frames, read on late ones.

    python bench/detector_threshold.py [--data ../shared/data/classroom_heads] [--split 55]

One CenterFace run per labelled classroom frame (fer_stream.faces.centerface, native size), decoded
at each threshold and minimum width; heads matched as in bench/detectors.py (a face counts for a head
when its centre lies inside the head box or IoU >= 0.3, one-to-one by score). Prints recall, recall of
bowed heads and the false share of detections, for the earliest --split frames and the rest.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import detectors as B  # noqa: E402

from fer_stream.faces.centerface import model_path  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "classroom_heads")
    ap.add_argument("--split", type=int, default=55, help="frames (in order) of the choice part")
    a = ap.parse_args()
    if not a.data.is_dir():
        print(f"skipped: no {a.data}")
        return
    cf = B.CenterFace(model_path(), threads=2)  # the network runs once a frame, decoded at each setting
    maps = [(*cf.maps(rgb), rgb.shape[:2], cls, heads) for _, rgb, cls, heads in B.classroom_frames(a.data)]
    for thr in (0.15, 0.2, 0.25, 0.3, 0.35):
        for min_px in (0, 8, 12, 16, 20):
            row = []
            for part in (maps[: a.split], maps[a.split :]):
                found = heads_n = dets = down = down_found = 0
                for out, scale, hw, cls, heads in part:
                    det = cf.decode(out, scale, hw, thr)
                    det = det[det.wh[:, 0] >= min_px]
                    m = B.match_faces_to_heads(det.xyxy, det.score, heads)
                    found += int((m >= 0).sum())
                    heads_n, dets = heads_n + len(heads), dets + len(det)
                    down += int((cls == 0).sum())
                    down_found += int(((m >= 0) & (cls == 0)).sum())
                row.append(
                    f"recall {found / heads_n:.3f} bowed {down_found / down:.3f} "
                    f"false {(dets - found) / max(dets, 1):.3f}"
                )
            print(f"threshold {thr:.2f} min {min_px:2d} px | early: {row[0]} | late: {row[1]}", flush=True)


if __name__ == "__main__":
    main()
