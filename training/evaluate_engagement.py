"""Measure the per-face attention score against human labels (issue 23) and write
``bench/results/engagement.json``:

    python -m training.evaluate_engagement --json bench/results/engagement.json

Scores compared, all through the pipeline's own face stage (``training/engagement_data.py``):

* ``shipped``: the score ``fer_stream.engagement`` ships (the records' ``attention`` since issue 23);
* ``p_up``: the head state's P(up) (the records' ``attention`` of issue 22);
* ``pose``: the head-pose score of ``fer_stream.attention.attention_score`` (before issue 22; EAR
  gated off, as at run time).

Measured:

* DAiSEE val (1,429 frames, 166 not engaged): AUC engaged (2-3) vs not (0-1) with a bootstrap 95 %
  interval (frames resampled with replacement, 2,000 times, percentile interval), both over the
  frames where a face was found and with a frame without a face scored 0; the share called
  ``attentive`` (score >= 0.5) in each class, and the balanced accuracy of that flag.
* classroom_heads test frames (608 heads, the time split of ``training/headstate_data.py``): AUC up vs
  rest over all labelled heads with a missed head scored 0, the same over detected heads, and the
  head-up rate MAE (per frame, the mean score over every detected face against the labelled share).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from fer_stream import attention as att
from fer_stream import engagement
from fer_stream.ops.atomic import write_json_atomic
from training import engagement_data as ED
from training import headstate_data as D

BOOTSTRAP = 2000


def scores(sig: dict[str, np.ndarray], prefix: str = "") -> dict[str, np.ndarray]:
    """``shipped``, ``p_up`` and ``pose`` scores of each row (NaN where not measured)."""
    g = {k: sig[prefix + k] for k in ("head_probs", "yaw", "pitch", "roll", "face_px")}
    pose = att.attention_score(g["yaw"], g["pitch"], np.full(len(g["yaw"]), np.inf), att.AttentionConfig())
    return {
        "shipped": engagement.load().score(**g).astype(np.float64),
        "p_up": g["head_probs"][:, ED.UP].astype(np.float64),
        "pose": np.asarray(pose, np.float64),
    }


def bootstrap_auc(y: np.ndarray, s: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """Percentile 95 % interval of the AUC over :data:`BOOTSTRAP` resamples of the rows."""
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(BOOTSTRAP):
        i = rng.integers(0, len(y), len(y))
        aucs.append(D.auc(y[i], s[i]))
    lo, hi = np.nanpercentile(aucs, [2.5, 97.5])
    return round(float(lo), 4), round(float(hi), 4)


def daisee_metrics(sig: dict[str, np.ndarray]) -> dict:
    y = sig["label"] == 1
    found = sig["found"].astype(bool)
    out: dict = {
        "frames": int(len(y)),
        "engaged": int(y.sum()),
        "not_engaged": int((~y).sum()),
        "face_found": int(found.sum()),
        "median_face_px": round(float(np.nanmedian(sig["face_px"])), 1),
        "pose_readable": int(np.isfinite(sig["yaw"]).sum()),
    }
    for name, s in scores(sig).items():
        ok = found & np.isfinite(s)
        zero = np.where(ok, s, 0.0)
        flag = s[ok] >= att.ATTENTIVE_SCORE
        tpr, tnr = float(flag[y[ok]].mean()), float(1 - flag[~y[ok]].mean())
        out[name] = {
            "auc_found": round(D.auc(y[ok], s[ok]), 4),
            "auc_found_ci95": bootstrap_auc(y[ok], s[ok]),
            "auc_missing_0": round(D.auc(y, zero), 4),
            "auc_missing_0_ci95": bootstrap_auc(y, zero),
            "attentive_share_engaged": round(tpr, 4),
            "attentive_share_not_engaged": round(1 - tnr, 4),
            "balanced_accuracy_at_0.5": round((tpr + tnr) / 2, 4),
            "mean_score_by_level": [
                round(float(np.nanmean(s[ok & (sig["level"] == lv)])), 4) for lv in range(4)
            ],
        }
    return out


def classroom_metrics(sig: dict[str, np.ndarray]) -> dict:
    y = sig["label"] == 1
    found = sig["found"].astype(bool)
    det = scores(sig, "det_")
    out: dict = {"heads": int(len(y)), "up": int(y.sum()), "detected": int(found.sum())}
    for name, s in scores(sig).items():
        ok = found & np.isfinite(s)
        pred = np.array([np.nanmean(det[name][sig["det_frame"] == f]) for f in sig["frame_numbers"]])
        err = pred - sig["frame_true_rate"]
        out[name] = {
            "auc_up_vs_rest_all_heads_missed_0": round(D.auc(y, np.where(ok, s, 0.0)), 4),
            "auc_up_vs_rest_detected": round(D.auc(y[ok], s[ok]), 4),
            "head_up_rate_mae": round(float(np.nanmean(np.abs(err))), 4),
            "head_up_rate_bias": round(float(np.nanmean(err)), 4),
        }
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--daisee", default="../shared/data/daisee")
    ap.add_argument("--classroom", default="../shared/data/classroom_heads")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)
    sig = ED.load_all(Path(args.daisee), Path(args.classroom))
    model = engagement.load()
    res = {
        "what": "per-face attention score against human labels (issue 23), through the pipeline's face stage",
        "command": "python -m training.evaluate_engagement "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "weights": {"version": model.version, **engagement.fingerprint()},
        "bootstrap": f"{BOOTSTRAP} resamples of the frames (faces), percentile 95 % interval, seed 0",
        "caveat": "DAiSEE: one webcam data set, clip labels on one frame per clip, research use only; "
        "classroom_heads: one room, one camera, one day. Neither number is general.",
        "daisee_val": daisee_metrics(sig["daisee_val"]),
        "classroom_test": classroom_metrics(sig["classroom_test"]),
        "training_choice": model.meta.get("training", {}).get("choice"),
    }
    for part in ("daisee_val", "classroom_test"):
        print(part, json.dumps({k: v for k, v in res[part].items() if isinstance(v, dict)}, indent=None))
    if args.json:
        write_json_atomic(args.json, res)
    return res


if __name__ == "__main__":
    main()
