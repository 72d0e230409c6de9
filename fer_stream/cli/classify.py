"""`fer-stream classify`: aligned face crops (image files) -> probabilities, one JSON line each."""

from __future__ import annotations

import json
import sys

import cv2
import numpy as np

from fer_stream.cli import exits


def _classify(a) -> int:
    """Classify already-cropped face images (one face per file)."""
    from fer_stream.classify import EmotionClassifier

    clf = EmotionClassifier(a.weights, device=a.device, tta=a.tta)
    crops, names, bad = [], [], 0
    for path in a.images:
        img = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        if img is None:
            print(f"fer-stream: cannot read image {path}", file=sys.stderr)
            bad += 1
            continue
        crops.append(cv2.resize(img, (clf.input_size,) * 2, interpolation=cv2.INTER_AREA))
        names.append(path)
    probs = clf.predict(np.stack(crops) if crops else np.zeros((0, clf.input_size, clf.input_size), np.uint8))
    for name, p in zip(names, probs):
        row = {
            "file": name,
            "emotion": clf.labels[int(p.argmax())],
            **{f"p_{lab}": round(float(v), 4) for lab, v in zip(clf.labels, p)},
        }
        print(json.dumps(row))
    return exits.ERROR if bad else exits.OK


def register(sub) -> None:
    p = sub.add_parser("classify", help="classify face crops (image files), one JSON line each")
    p.add_argument("images", nargs="+")
    p.add_argument("--weights", default="default", help="built-in name or checkpoint path")
    p.add_argument("--device", default="auto")
    p.add_argument("--tta", action="store_true", help="average with the mirrored face")
    p.set_defaults(func=_classify)
