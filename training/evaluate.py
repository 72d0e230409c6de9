"""Evaluate a model on a labelled face set; print one JSON line.

    python -m training.evaluate --data ../shared/data/fer2013/val.parquet --weights default
    python -m training.evaluate --data ../shared/data/ckplus/ckplus48.parquet --weights ckplus

``--weights`` is a built-in name (``default``, ``ckplus``) or a checkpoint path. Dataset labels
are mapped to canonical names (``anger`` -> ``angry``, ``sadness`` -> ``sad``); an image whose
label the model cannot output (``contempt`` for a FER2013 model, ``neutral`` for a CK+ model)
is counted in ``skipped`` and left out of the accuracy. Inference goes through
``fer_stream.classify`` so the pipeline's preprocessing is what is measured.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from fer_stream.classify import EmotionClassifier, default_threads
from training import data as D


def evaluate(data: str, weights: str, split: str = "val", tta: bool = False, device: str = "auto") -> dict:
    clf = EmotionClassifier(weights, device=device, threads=default_threads(), tta=tta)
    ds = D.load(data, split, size=clf.input_size)
    index = {n: i for i, n in enumerate(clf.labels)}
    keep = np.array([lab in index for lab in ds.labels], bool)
    y = np.array([index[lab] for lab in ds.labels[keep]], int)
    pred = clf.predict(ds.images[keep]).argmax(1) if keep.any() else np.zeros(0, int)
    k = len(clf.labels)
    confusion = np.zeros((k, k), int)
    np.add.at(confusion, (y, pred), 1)
    per_class = {
        name: float(confusion[i, i] / confusion[i].sum())
        for i, name in enumerate(clf.labels)
        if confusion[i].sum()
    }
    return {
        "accuracy": float((pred == y).mean()) if len(y) else float("nan"),
        "n": int(len(y)),
        "skipped": int((~keep).sum()),
        "per_class": per_class,
        "confusion": confusion.tolist(),
        "labels": list(clf.labels),
        "weights": weights,
        "model_version": clf.version,
        "data": str(data),
        "tta": tta,
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="Parquet file, fer2013.csv or image folder")
    ap.add_argument("--weights", default="default", help="built-in name or checkpoint path")
    ap.add_argument("--split", default="val", help="split to read from a csv/dir dataset")
    ap.add_argument("--tta", action="store_true", help="average with the mirrored face")
    ap.add_argument("--device", default="auto")
    a = ap.parse_args(argv)
    res = evaluate(a.data, a.weights, a.split, a.tta, a.device)
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
