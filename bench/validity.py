"""Validity curves: how well each per-face signal can be read as the face gets smaller, and the
gates derived from them (issue 13; docs/VALIDITY.md).

    python bench/validity.py                       # full: FER2013 val, CK+, every real face; ~10 min
    python bench/validity.py --quick --json /tmp/v.json --plots ''     # CI: a few hundred faces

Emotion (labelled data): FER2013 val (and CK+, the 6 labels it shares with FER2013) shrunk to N px
and scaled back (training/degrade.py: what a small face in a wide shot gives the classifier),
blurred, JPEG-compressed: accuracy, macro-F1, total-variation distance between predicted and
true class shares (0: the report's emotion mix is right; 1: all wrong), predicted "sad" share.

Head pose, eyes, attentive (no labels exist): self-consistency. Every face at least 80 px wide in
the real images and clips of ../shared/data is shrunk to N px in its frame (the whole frame is
resized, INTER_AREA), and the pipeline's own path (MTCNN, dlib 68 points, solvePnP, EAR) runs on
it; its answers are compared with the same path at full size: median and 90th-percentile absolute
yaw/pitch error (degrees), EAR error, agreement of the attentive flag, and detection recall.

Gates (the rules are in GATE_RULES and docs/VALIDITY.md): for each signal, the smallest size on
the grid from which every larger size meets its rule. The emotion curve is in "crop px" (the side
of the face crop in frame pixels); the pipeline gates on box width, so it is divided by the
measured crop side / box width ratio of the aligner on the real faces.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # training/ is a folder of scripts, not part of the package

from training import data as D  # noqa: E402
from training import degrade  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
SIZES = (8, 10, 12, 14, 16, 20, 24, 32, 40, 48)
BLURS = (0.5, 1.0, 1.5, 2.0, 3.0)
JPEGS = (10, 20, 30, 50, 70, 90)
POSE_SIZES = (12, 14, 16, 20, 24, 28, 32, 40, 48, 64, 80, 96, 128)
MIN_REF_PX = 80  # faces at least this wide at full size are the self-consistency references

# A signal is readable at size N when N and every larger size on the grid meet its rule.
GATE_RULES = {
    "emotion": "accuracy within 0.08 of full size and class-share total-variation distance <= 0.10 "
    "(FER2013 val, the shipped model)",
    "pose": "90th-percentile |yaw| and |pitch| error <= 10 deg and attentive-by-pose agreement >= 0.90 "
    "(at least 10 faces), for the 68-point pose the pipeline uses (the 5-point pose is measured alike)",
    "eyes": "90th-percentile |EAR| error <= 0.05 (half the open 0.3 - closed 0.2 gap; at least 10 faces)",
}
CKPLUS_TO_FER = {"anger": "angry", "disgust": "disgust", "fear": "fear", "happy": "happy"}
CKPLUS_TO_FER |= {"sadness": "sad", "surprise": "surprise"}  # contempt has no FER2013 label


# --------------------------------------------------------------------------------------------------
# Emotion


def _metrics(pred: np.ndarray, y: np.ndarray, k: int, labels: tuple[str, ...]) -> dict:
    acc = float((pred == y).mean())
    f1s = []
    for c in np.unique(y):
        tp = np.sum((pred == c) & (y == c))
        prec = tp / max(1, np.sum(pred == c))
        rec = tp / max(1, np.sum(y == c))
        f1s.append(0.0 if tp == 0 else 2 * prec * rec / (prec + rec))
    share_p = np.bincount(pred, minlength=k) / len(pred)
    share_t = np.bincount(y, minlength=k) / len(y)
    return {
        "accuracy": round(acc, 4),
        "macro_f1": round(float(np.mean(f1s)), 4),
        "share_tv": round(float(0.5 * np.abs(share_p - share_t).sum()), 4),
        "sad_share": round(float(share_p[labels.index("sad")]), 4),
        "n": int(len(y)),
    }


def emotion_curves(weights: str, images: np.ndarray, y: np.ndarray, quick: bool, keep: list[int] | None):
    """Metrics of ``weights`` on ``images`` under each degradation; ``keep``: only these label
    indices count (CK+: the labels FER2013 shares), predictions outside are wrong."""
    from fer_stream.classify import EmotionClassifier, default_threads

    clf = EmotionClassifier(weights, device="cpu", threads=default_threads())
    labels = tuple(clf.labels)
    k = len(labels)

    def run(x: np.ndarray) -> dict:
        p = clf.predict(x)
        if keep is not None:  # CK+: restrict the arg-max to the shared labels
            mask = np.full(k, -np.inf)
            mask[keep] = 0
            p = p + mask
        return _metrics(p.argmax(1), y, k, labels)

    sizes = (10, 16, 24, 48) if quick else SIZES
    out = {"size": {}, "blur": {}, "jpeg": {}, "labels": list(labels)}
    for px in sizes:
        out["size"][px] = run(degrade.shrink(images, px))
    for s in (1.0,) if quick else BLURS:
        out["blur"][s] = run(degrade.blur(images, s))
    for q in (30,) if quick else JPEGS:
        out["jpeg"][q] = run(degrade.jpeg(images, q))
    return out


def fer_val(quick: bool) -> tuple[np.ndarray, np.ndarray]:
    from fer_stream.labels import FER2013_LABELS

    val = D.load(SHARED / "fer2013" / "val.parquet", "val")
    y = np.array([FER2013_LABELS.index(v) for v in val.labels])
    if quick:
        idx = np.random.default_rng(0).permutation(len(y))[:300]
        return val.images[idx], y[idx]
    return val.images, y


def ckplus_shared(labels: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    ck = D.load(SHARED / "ckplus" / "ckplus48.parquet")
    keep = np.array([lab in CKPLUS_TO_FER for lab in ck.labels])
    y = np.array([labels.index(CKPLUS_TO_FER[lab]) for lab in ck.labels[keep]])
    return ck.images[keep], y, sorted({labels.index(v) for v in CKPLUS_TO_FER.values()})


# --------------------------------------------------------------------------------------------------
# Pose, eyes, attentive: self-consistency on real faces


def real_frames(quick: bool) -> list[tuple[str, np.ndarray]]:
    """``(name, RGB frame)``: the still images and frames of the real clips (every 0.5 s)."""
    from fer_stream.video import iter_frames

    out = []
    stills = sorted((SHARED / "faces").glob("*.jpg")) + sorted((SHARED / "identity").rglob("*.jpg"))
    for p in stills[:3] if quick else stills:
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if bgr is not None:
            out.append((p.name, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
    clips = ["WolfgangLanger_Pexels.mp4", "single_face.mp4", "face_noface.mov"]
    for name in clips[:1] if quick else clips:
        path = SHARED / "videos" / name
        if path.is_file():
            for i, (_, pts, rgb) in enumerate(iter_frames(path, 2.0)):
                if quick and i >= 6:
                    break
                out.append((f"{name}@{pts:.1f}s", rgb))
    return out


def _read(det, lm, rgb: np.ndarray):
    """Boxes, yaw/pitch/roll (68 points), EAR, 68 points and yaw/pitch/roll from MTCNN's 5 points
    of every face in ``rgb``, by the pipeline's path."""
    from fer_stream import attention as att

    d = det.detect(rgb)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    pts = lm(gray, d.xyxy)
    h, w = rgb.shape[:2]
    pose = att.head_pose(pts, (w, h))
    ear = att.eye_aspect_ratio(pts).mean(1)
    return d.xyxy, pose, ear, pts, att.head_pose5(d.landmarks, (w, h))


def _attentive_by_pose(yaw, pitch, cfg) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return (np.abs(yaw) <= cfg.max_abs_yaw) & (pitch >= cfg.pitch_min) & (pitch <= cfg.pitch_max)


def pose_curves(quick: bool) -> dict:
    from fer_stream import attention as att
    from fer_stream.faces.align import face_transforms
    from fer_stream.faces.detect import make_detector
    from fer_stream.faces.detections import iou_matrix
    from fer_stream.faces.landmarks import LandmarkPredictor

    cfg = att.AttentionConfig()
    full_det = make_detector("mtcnn", min_face_px=40)
    lm = LandmarkPredictor()
    small_dets = {}
    refs = []  # (frame, box, yaw, pitch, ear, attentive)
    crop_ratio = []
    for name, rgb in real_frames(quick):
        boxes, pose, ear, pts, _ = _read(full_det, lm, rgb)
        for i, b in enumerate(boxes):
            w = b[2] - b[0]
            if w < MIN_REF_PX or not np.isfinite(pose[i]).all() or not np.isfinite(ear[i]):
                continue
            m = face_transforms(pts[i : i + 1], boxes[i : i + 1], size=48)[0]
            crop_ratio.append(48 / math.sqrt(abs(np.linalg.det(m[:, :2]))) / w)
            refs.append((name, rgb, b, pose[i], ear[i]))
    sizes = (16, 24, 48) if quick else POSE_SIZES
    keys = ("dyaw", "dpitch", "dear", "agree_pose", "agree_full", "dyaw5", "dpitch5", "agree_pose5")
    rows = {px: {**{k: [] for k in keys}, "found": 0} for px in sizes}
    for _name, rgb, box, pose_ref, ear_ref in refs:
        w = box[2] - box[0]
        att_ref_pose = _attentive_by_pose(pose_ref[0], pose_ref[1], cfg)
        att_ref = att.attentive(pose_ref[0:1], pose_ref[1:2], np.array([ear_ref]), cfg)[0]
        for px in sizes:
            s = px / w
            if s >= 1:
                continue
            small = cv2.resize(rgb, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
            mp = max(12.0, round(px * 0.7))  # P-Net's window is 12 px
            det = small_dets.setdefault(mp, make_detector("mtcnn", min_face_px=mp))
            boxes, pose, ear, _, pose5 = _read(det, lm, small)
            if not len(boxes):
                continue
            iou = iou_matrix(box[None] * s, boxes)[0]
            j = int(iou.argmax())
            if iou[j] < 0.4 or not np.isfinite(pose[j]).all():
                continue
            r = rows[px]
            r["found"] += 1
            r["dyaw"].append(abs(float(pose[j, 0] - pose_ref[0])))
            r["dpitch"].append(abs(float(pose[j, 1] - pose_ref[1])))
            r["dear"].append(abs(float(ear[j] - ear_ref)))
            r["agree_pose"].append(bool(_attentive_by_pose(pose[j, 0], pose[j, 1], cfg) == att_ref_pose))
            full = att.attentive(pose[j : j + 1, 0], pose[j : j + 1, 1], ear[j : j + 1], cfg)[0]
            r["agree_full"].append(bool(full == att_ref))
            if np.isfinite(pose5[j]).all():  # the 5-point pose the pipeline uses below the eyes gate
                r["dyaw5"].append(abs(float(pose5[j, 0] - pose_ref[0])))
                r["dpitch5"].append(abs(float(pose5[j, 1] - pose_ref[1])))
                r["agree_pose5"].append(
                    bool(_attentive_by_pose(pose5[j, 0], pose5[j, 1], cfg) == att_ref_pose)
                )
    out = {"faces": len(refs), "crop_side_over_box": round(float(np.median(crop_ratio)), 3) if refs else None}
    out["size"] = {}
    for px, r in rows.items():
        n = len(r["dyaw"])
        q = lambda v, p: round(float(np.percentile(v, p)), 3) if v else None  # noqa: E731
        out["size"][px] = {
            "n": n,
            "recall": round(r["found"] / max(1, len(refs)), 3),
            "yaw_median": q(r["dyaw"], 50),
            "yaw_p90": q(r["dyaw"], 90),
            "pitch_median": q(r["dpitch"], 50),
            "pitch_p90": q(r["dpitch"], 90),
            "ear_median": q(r["dear"], 50),
            "ear_p90": q(r["dear"], 90),
            "attentive_pose_agreement": round(float(np.mean(r["agree_pose"])), 3) if n else None,
            "attentive_agreement": round(float(np.mean(r["agree_full"])), 3) if n else None,
            "n5": len(r["dyaw5"]),
            "yaw5_median": q(r["dyaw5"], 50),
            "yaw5_p90": q(r["dyaw5"], 90),
            "pitch5_median": q(r["dpitch5"], 50),
            "pitch5_p90": q(r["dpitch5"], 90),
            "attentive5_pose_agreement": round(float(np.mean(r["agree_pose5"])), 3)
            if r["agree_pose5"]
            else None,
        }
    return out


def fit_five_point_model() -> dict:
    """The 3D positions of MTCNN's five points on the generic head, by triangulation: on every real
    face at least 60 px wide, the 68-point fit gives the head's pose; each MTCNN point seen in all
    those views is the 3D point that projects best onto them (linear least squares). Symmetrised
    left/right. Printed for ``fer_stream.attention.MODEL5_3D``."""
    from fer_stream import attention as att
    from fer_stream.faces.detect import make_detector
    from fer_stream.faces.landmarks import LandmarkPredictor

    det, lm = make_detector("mtcnn", min_face_px=40), LandmarkPredictor()
    views = []  # (projection matrix, (5, 2) MTCNN points)
    for _name, rgb in real_frames(False):
        d = det.detect(rgb)
        pts = lm(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), d.xyxy)
        h, w = rgb.shape[:2]
        cam = att.camera_matrix((w, h))
        for i, b in enumerate(d.xyxy):
            if b[2] - b[0] < 60 or not np.isfinite(pts[i]).all():
                continue
            img = np.ascontiguousarray(pts[i][att.MODEL_INDEX])
            ok, rvec, tvec = cv2.solvePnP(att.MODEL_3D, img, cam, None, flags=cv2.SOLVEPNP_EPNP)
            ok, rvec, tvec = cv2.solvePnP(
                att.MODEL_3D, img, cam, None, rvec, tvec, useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE
            )
            if ok and tvec[2] > 0:
                proj = cam @ np.hstack([cv2.Rodrigues(rvec)[0], tvec.reshape(3, 1)])
                views.append((proj, d.landmarks[i]))
    model = []
    for k in range(5):
        rows = []
        for proj, pts5 in views:
            u, v = pts5[k]
            rows += [u * proj[2] - proj[0], v * proj[2] - proj[1]]
        a = np.array(rows)
        model.append(np.linalg.lstsq(a[:, :3], -a[:, 3], rcond=None)[0])
    model = np.array(model)
    for left, right in ((0, 1), (3, 4)):  # a symmetric head: mirror x, average the rest
        x = (abs(model[left, 0]) + abs(model[right, 0])) / 2
        yz = (model[left, 1:] + model[right, 1:]) / 2
        model[left] = [-x if model[left, 0] < 0 else x, *yz]
        model[right] = [-model[left, 0], *yz]
    model[2, 0] = 0.0
    return {"faces": len(views), "model5_3d": np.round(model, 3).tolist()}


# --------------------------------------------------------------------------------------------------
# Gates


def _smallest(grid: dict, ok) -> float | None:
    """Smallest size from which every larger size on ``grid`` passes ``ok(metrics)``."""
    sizes = sorted(grid, key=float)
    best = None
    for px in reversed(sizes):
        if not ok(grid[px]):
            break
        best = float(px)
    return best


def derive_gates(emotion: dict, pose: dict) -> dict:
    full = emotion["size"][max(emotion["size"], key=float)]["accuracy"]
    e_crop = _smallest(emotion["size"], lambda m: m["accuracy"] >= full - 0.08 and m["share_tv"] <= 0.10)

    def pose_ok(m, s=""):
        return (
            m[f"n{s}" if s else "n"] >= 10
            and m[f"yaw{s}_p90"] <= 10
            and m[f"pitch{s}_p90"] <= 10
            and m[f"attentive{s}_pose_agreement"] >= 0.9
        )

    # The pipeline reads head pose from the 68 points; the 5-point pose (which would spare the
    # 68-point model on small faces) is measured by the same rule, and used only if it passes.
    p_px = _smallest(pose["size"], pose_ok)
    p5 = _smallest(pose["size"], lambda m: pose_ok(m, "5"))
    eyes = _smallest(pose["size"], lambda m: m["n"] >= 10 and m["ear_p90"] <= 0.05)
    ratio = pose["crop_side_over_box"] or 1.0
    return {
        "emotion_crop_px": e_crop,
        "emotion_min_px": None if e_crop is None else float(math.ceil(e_crop / ratio)),
        "pose_min_px": p_px,
        "pose5_min_px": p5,
        "eyes_min_px": None if eyes is None else max(eyes, p_px or 0.0),
        "crop_side_over_box": ratio,
        "rules": GATE_RULES,
    }


# --------------------------------------------------------------------------------------------------
# Plots


def plots(res: dict, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    gates = res["derived_gates"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for name, curves in res["emotion"].items():
        xs = sorted(curves["size"], key=float)
        for ax, key, title in zip(
            axes,
            ("accuracy", "share_tv", "sad_share"),
            ("accuracy", "class-share TV distance", "'sad' share"),
        ):
            ax.plot([float(x) for x in xs], [curves["size"][x][key] for x in xs], marker="o", label=name)
            ax.set_title(title)
            ax.set_xlabel("face crop side, px")
    if gates.get("emotion_crop_px"):
        for ax in axes:
            ax.axvline(gates["emotion_crop_px"], color="grey", ls="--", lw=1)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    written.append(folder / "emotion_vs_size.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for name, curves in res["emotion"].items():
        for ax, key, xlabel in zip(axes, ("blur", "jpeg"), ("Gaussian blur sigma, px", "JPEG quality")):
            xs = sorted(curves[key], key=float)
            ax.plot([float(x) for x in xs], [curves[key][x]["accuracy"] for x in xs], marker="o", label=name)
            ax.set_xlabel(xlabel)
            ax.set_ylabel("accuracy")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    written.append(folder / "emotion_vs_blur_jpeg.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    pose = res["pose"]["size"]
    xs = [x for x in sorted(pose, key=float) if pose[x]["n"]]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for key, label in (
        ("yaw_p90", "yaw p90 (68 points)"),
        ("pitch_p90", "pitch p90 (68 points)"),
        ("yaw5_p90", "yaw p90 (5 points)"),
        ("pitch5_p90", "pitch p90 (5 points)"),
    ):
        axes[0].plot([float(x) for x in xs], [pose[x][key] for x in xs], marker="o", label=label)
    axes[0].set_ylabel("abs error vs full size, deg")
    axes[1].plot([float(x) for x in xs], [pose[x]["ear_p90"] for x in xs], marker="o", label="EAR p90")
    axes[1].plot([float(x) for x in xs], [pose[x]["ear_median"] for x in xs], marker="o", label="EAR median")
    axes[1].set_ylabel("abs EAR error")
    for key, label in (
        ("attentive_pose_agreement", "attentive (pose, 68 points)"),
        ("attentive5_pose_agreement", "attentive (pose, 5 points)"),
        ("attentive_agreement", "attentive (pose + eyes)"),
        ("recall", "detected"),
    ):
        axes[2].plot([float(x) for x in xs], [pose[x][key] for x in xs], marker="o", label=label)
    axes[2].set_ylim(0, 1.02)
    for ax, g in zip(axes, (gates.get("pose_min_px"), gates.get("eyes_min_px"), gates.get("pose_min_px"))):
        ax.set_xlabel("face box width, px")
        ax.legend(fontsize=7)
        if g:
            ax.axvline(g, color="grey", ls="--", lw=1)
    fig.tight_layout()
    written.append(folder / "pose_vs_size.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)
    return written


def markdown(res: dict) -> str:
    """The curves as Markdown tables (docs/VALIDITY.md quotes them)."""
    out = []
    for name, c in res["emotion"].items():
        sizes = sorted(c["size"], key=float)
        out.append(f"**{name}**, by face crop side (px):\n")
        out.append("| px | " + " | ".join(str(s) for s in sizes) + " |")
        out.append("|---|" + "---|" * len(sizes))
        for key in ("accuracy", "macro_f1", "share_tv", "sad_share"):
            out.append(f"| {key} | " + " | ".join(f"{c['size'][s][key]:.3f}" for s in sizes) + " |")
        out.append(f"\n(n = {c['size'][sizes[0]]['n']} faces per point)\n")
        for kind, label in (
            ("blur", "blur sigma (px), at full size"),
            ("jpeg", "JPEG quality, at full size"),
        ):
            xs = sorted(c[kind], key=float)
            out.append(f"| {label} | " + " | ".join(str(x) for x in xs) + " |")
            out.append("|---|" + "---|" * len(xs))
            out.append("| accuracy | " + " | ".join(f"{c[kind][x]['accuracy']:.3f}" for x in xs) + " |")
            out.append("")
    pose = res["pose"]["size"]
    sizes = sorted(pose, key=float)
    out.append(
        f"**Head pose, eyes, attentive** vs face box width ({res['pose']['faces']} reference faces):\n"
    )
    out.append("| px | " + " | ".join(str(s) for s in sizes) + " |")
    out.append("|---|" + "---|" * len(sizes))
    keys = (
        "n", "recall", "yaw_median", "yaw_p90", "pitch_median", "pitch_p90", "n5", "yaw5_p90",
        "pitch5_p90", "ear_median", "ear_p90", "attentive_pose_agreement", "attentive5_pose_agreement",
        "attentive_agreement",
    )  # fmt: skip
    for key in keys:
        vals = [pose[s].get(key) for s in sizes]
        out.append(f"| {key} | " + " | ".join("-" if v is None else f"{v:g}" for v in vals) + " |")
    g = res["derived_gates"]
    out.append("")
    out.append(
        f"Derived gates (box px): emotion {g['emotion_min_px']} (crop {g['emotion_crop_px']} px / "
        f"crop-to-box {g['crop_side_over_box']}), pose {g['pose_min_px']} (5-point pose: "
        f"{g['pose5_min_px']}), eyes {g['eyes_min_px']}."
    )
    return "\n".join(out) + "\n"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a few hundred faces, a few sizes (CI)")
    ap.add_argument(
        "--weights",
        action="append",
        default=None,
        help="emotion models to measure (name=path or a built-in name; repeatable); default: default",
    )
    ap.add_argument("--json", default=str(ROOT / "bench" / "results" / "validity.json"))
    ap.add_argument("--plots", default=str(ROOT / "docs" / "validity"), help="folder for PNGs ('' for none)")
    ap.add_argument("--no-ckplus", action="store_true")
    ap.add_argument(
        "--reuse-emotion", help="take the emotion curves from this earlier JSON (re-measure pose only)"
    )
    ap.add_argument("--fit-five", action="store_true", help="print the 3D model of MTCNN's 5 points and stop")
    a = ap.parse_args(argv)
    if a.fit_five:
        res = fit_five_point_model()
        print(json.dumps(res))
        return res
    t0 = time.time()
    models = {}
    for item in a.weights or ["default"]:
        name, _, path = item.partition("=")
        models[name] = path or name
    res: dict = {"command": "python bench/validity.py " + " ".join(argv or sys.argv[1:]), "emotion": {}}
    if a.reuse_emotion:
        old = json.loads(Path(a.reuse_emotion).read_text())
        res["emotion"] = old["emotion"]
        res["emotion_command"] = old.get("emotion_command", old["command"])
    else:
        images, y = fer_val(a.quick)
        for name, w in models.items():
            res["emotion"][f"{name} / FER2013 val"] = emotion_curves(w, images, y, a.quick, None)
    if not a.no_ckplus and not a.quick and not a.reuse_emotion:
        from fer_stream.labels import FER2013_LABELS

        ck_x, ck_y, keep = ckplus_shared(FER2013_LABELS)
        for name, w in models.items():
            res["emotion"][f"{name} / CK+ (6 shared labels)"] = emotion_curves(w, ck_x, ck_y, False, keep)
    res["pose"] = pose_curves(a.quick)
    first = next(iter(res["emotion"]))
    res["derived_gates"] = derive_gates(res["emotion"][first], res["pose"])
    res["derived_gates"]["from_model"] = first
    res["seconds"] = round(time.time() - t0, 1)
    if a.plots:
        res["plots"] = [p.name for p in plots(res, Path(a.plots))]
    text = json.dumps(res, indent=1)
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(text + "\n")
    if a.json:
        Path(a.json).with_suffix(".md").write_text(markdown(res))
    print(json.dumps(res["derived_gates"], indent=1))
    return res


if __name__ == "__main__":
    main()
