"""Benchmark the 68-point landmark predictor and face alignment on CPU; check the FER2013 crop template.

    python -m bench.landmarks --json bench/landmarks.json
    python -m bench.landmarks --calibrate 1200    # also measure the crop template of faces/align.py

Prints a markdown table. Faces come from dlib's HOG detector on ``../shared/data/faces/multi_face.jpg``
(upsampled once so small faces count); alignment is timed on 10 faces per frame (the frame's faces
repeated up to 10). Times are medians over ``--repeats`` runs, one thread, wall clock.

``--calibrate N`` measures the numbers behind the constants in ``fer_stream/faces/align.py``:
(1) on the first N FER2013 PublicTest images (upscaled 4x with INTER_CUBIC so dlib's HOG detector finds
them), where FER2013 puts the eyes and mouth, as fractions of the 48-pixel side, and how ``align_faces``
re-crops the upscaled image: scale relative to FER2013's (1.0 = same) and median pixel correlation with
the original (FER2013's own framing varies from face to face, so this stays well below 1);
(2) on the still photos ``../shared/data/faces/*.jpg`` (HOG at upsampling 0, 1 and 2), how the landmark
crop relates to the HOG box (the box-only fallback).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import cv2
import numpy as np

from fer_stream.attention import eye_aspect_ratio, head_pose
from fer_stream.faces.align import DEFAULT_MARGIN, align_faces, face_transforms
from fer_stream.faces.landmarks import LandmarkPredictor, five_from_68

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e3)


def bench_speed(image_path: Path, repeats: int) -> dict:
    import dlib

    cv2.setNumThreads(1)
    rgb = cv2.cvtColor(cv2.imread(str(image_path)), cv2.COLOR_BGR2RGB)
    rects = dlib.get_frontal_face_detector()(rgb, 1)
    boxes = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], np.float32).reshape(-1, 4)
    if not len(boxes):
        raise SystemExit(f"no face found in {image_path}")
    predictor = LandmarkPredictor()
    lm = predictor(rgb, boxes)
    ms_lm = _median_ms(lambda: predictor(rgb, boxes), repeats) / len(boxes)
    wh = (rgb.shape[1], rgb.shape[0])
    ms_pose = _median_ms(lambda: head_pose(lm, wh), repeats) / len(boxes)
    reps = -(-10 // len(boxes))
    lm10, boxes10 = np.tile(lm, (reps, 1, 1))[:10], np.tile(boxes, (reps, 1))[:10]
    five10 = five_from_68(lm10)
    nan10 = np.full_like(five10, np.nan)
    return {
        "image": image_path.name,
        "image_wh": [rgb.shape[1], rgb.shape[0]],
        "faces": len(boxes),
        "box_x1": boxes[:, 0].tolist(),
        "face_px_median": float(np.median(boxes[:, 2] - boxes[:, 0])),
        "landmarks68_ms_per_face": ms_lm,
        "head_pose_ms_per_face": ms_pose,
        "yaw_pitch_roll_deg": head_pose(lm, wh).round(1).tolist(),
        "ear_per_eye": eye_aspect_ratio(lm).round(3).tolist(),
        "align10_ms_per_frame_68pt": _median_ms(lambda: align_faces(rgb, lm10, boxes10, 48), repeats),
        "align10_ms_per_frame_5pt": _median_ms(lambda: align_faces(rgb, five10, boxes10, 48), repeats),
        "align10_ms_per_frame_box_only": _median_ms(lambda: align_faces(rgb, nan10, boxes10, 48), repeats),
        "align10_ms_per_frame_68pt_size64": _median_ms(lambda: align_faces(rgb, lm10, boxes10, 64), repeats),
    }


def fer2013_template(n: int) -> dict:
    import dlib
    import pyarrow.parquet as pq

    up = 4
    table = pq.read_table(DATA / "fer2013" / "val.parquet", columns=["image"]).slice(0, n)
    detector, predictor = dlib.get_frontal_face_detector(), LandmarkPredictor()
    rows, corr = [], []
    for b in table.column("image").to_pylist():
        small = cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_GRAYSCALE)
        big = cv2.resize(small, (48 * up, 48 * up), interpolation=cv2.INTER_CUBIC)
        rects = detector(big, 0)
        if len(rects) != 1:
            continue
        r = rects[0]
        box = np.array([[r.left(), r.top(), r.right(), r.bottom()]], np.float32)
        lm = predictor(big, box)
        # big pixel X is small pixel (X - (up-1)/2) / up; a fraction of the side is (small + 0.5) / 48
        five = (five_from_68(lm)[0] - (up - 1) / 2) / up
        eye_mid, mouth_mid = five[:2].mean(0), five[3:].mean(0)
        bx = (box[0] - (up - 1) / 2) / up
        side = (bx[2] - bx[0] + bx[3] - bx[1]) / 2
        rows.append(
            [
                (eye_mid[1] + 0.5) / 48,
                np.linalg.norm(five[1] - five[0]) / 48,
                (mouth_mid[1] - eye_mid[1]) / 48,
                48 / side,
                (23.5 - (bx[0] + bx[2]) / 2) / side,
                (23.5 - (bx[1] + bx[3]) / 2) / side,
                np.hypot(*face_transforms(lm, box, 48)[0, 0, :2]) * up,
            ]
        )
        crop = align_faces(big, lm, box, 48)[0]
        corr.append(np.corrcoef(crop.ravel().astype(float), small.ravel().astype(float))[0, 1])
    a = np.array(rows)
    med = np.median(a, 0)
    return {
        "images": n,
        "faces_found": len(a),
        "margin": DEFAULT_MARGIN,
        "eye_y": float(med[0]),
        "eye_dist": float(med[1]),
        "eye_mouth": float(med[2]),
        "fer_crop_over_hog_box": float(med[3]),
        "fer_crop_centre_minus_box_centre_x": float(med[4]),
        "fer_crop_centre_minus_box_centre_y": float(med[5]),
        "align_scale_over_fer": float(med[6]),
        "align_corr_median": float(np.median(corr)),
        "align_corr_p10": float(np.percentile(corr, 10)),
    }


def box_relation() -> dict:
    """Landmark crop (margin 0.15) vs dlib HOG box on real photos: side ratio and centre offset, medians."""
    import dlib

    detector, predictor = dlib.get_frontal_face_detector(), LandmarkPredictor()
    rows = []
    for path in sorted((DATA / "faces").glob("*.jpg")):
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        for upsample in (0, 1, 2):
            rects = detector(rgb, upsample)
            boxes = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], float).reshape(
                -1, 4
            )
            if not len(boxes):
                continue
            mats = face_transforms(predictor(rgb, boxes), boxes, 48)
            side = 48 / np.hypot(mats[:, 0, 0], mats[:, 0, 1])
            centre = np.linalg.solve(mats[:, :, :2], (23.5 - mats[:, :, 2])[:, :, None])[:, :, 0]
            box_side = ((boxes[:, 2] - boxes[:, 0]) + (boxes[:, 3] - boxes[:, 1])) / 2
            offset = (centre - (boxes[:, :2] + boxes[:, 2:]) / 2) / box_side[:, None]
            rows += np.column_stack([side / box_side, offset, box_side]).tolist()
    a = np.array(rows)
    med = np.median(a, 0)
    return {
        "detections": len(a),
        "box_px_median": float(med[3]),
        "crop_over_hog_box": float(med[0]),
        "crop_centre_minus_box_centre_x": float(med[1]),
        "crop_centre_minus_box_centre_y": float(med[2]),
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", type=Path, default=DATA / "faces" / "multi_face.jpg")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument(
        "--calibrate",
        type=int,
        default=0,
        metavar="N",
        help="measure the crop template on N FER2013 PublicTest images and the HOG-box relation",
    )
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args(argv)

    res = {"machine": platform.processor() or platform.machine()}
    res["speed"] = bench_speed(args.image, args.repeats)
    s = res["speed"]
    print(
        f"{s['faces']} faces (median {s['face_px_median']:.0f} px) in {s['image']} "
        f"{s['image_wh'][0]}x{s['image_wh'][1]}, median of {args.repeats} runs, 1 thread\n"
    )
    print("| step | ms |\n|---|---|")
    print(f"| 68-point landmarks, per face | {s['landmarks68_ms_per_face']:.2f} |")
    print(f"| head pose (solvePnP, 14 points), per face | {s['head_pose_ms_per_face']:.2f} |")
    print(f"| align 10 faces (68 pt -> 48x48), per frame | {s['align10_ms_per_frame_68pt']:.2f} |")
    print(f"| align 10 faces (5 pt -> 48x48), per frame | {s['align10_ms_per_frame_5pt']:.2f} |")
    print(f"| align 10 faces (box only -> 48x48), per frame | {s['align10_ms_per_frame_box_only']:.2f} |")
    print(f"| align 10 faces (68 pt -> 64x64), per frame | {s['align10_ms_per_frame_68pt_size64']:.2f} |")
    print("\n| face | box x1 | yaw, pitch, roll (deg) | EAR image-left, image-right eye |\n|---|---|---|---|")
    for i, (x1, ypr, ear) in enumerate(
        zip(s["box_x1"], s["yaw_pitch_roll_deg"], s["ear_per_eye"], strict=True)
    ):
        print(
            f"| {i} | {x1:.0f} | {ypr[0]:+.1f}, {ypr[1]:+.1f}, {ypr[2]:+.1f} | {ear[0]:.3f}, {ear[1]:.3f} |"
        )
    if args.calibrate:
        t = res["fer2013_template"] = fer2013_template(args.calibrate)
        print(
            f"\nFER2013 PublicTest template ({t['faces_found']} of {t['images']} images with one HOG "
            "face), medians, fractions of the 48 px side:\n"
        )
        print("| quantity | value |\n|---|---|")
        for k in (
            "eye_y",
            "eye_dist",
            "eye_mouth",
            "align_scale_over_fer",
            "align_corr_median",
            "align_corr_p10",
            "fer_crop_over_hog_box",
            "fer_crop_centre_minus_box_centre_x",
            "fer_crop_centre_minus_box_centre_y",
        ):
            print(f"| {k} | {t[k]:.3f} |")
        b = res["box_relation"] = box_relation()
        print(
            f"\nLandmark crop vs HOG box on real photos ({b['detections']} detections, median box "
            f"{b['box_px_median']:.0f} px), medians, in box sides:\n"
        )
        print("| quantity | value |\n|---|---|")
        for k in ("crop_over_hog_box", "crop_centre_minus_box_centre_x", "crop_centre_minus_box_centre_y"):
            print(f"| {k} | {b[k]:.3f} |")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")
    return res


if __name__ == "__main__":
    main()
