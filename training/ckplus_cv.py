"""CK+ subject-independent 10-fold cross-validation, fine-tuning from FER2013 weights.

    python -m training.ckplus_cv --init default --data ../shared/data/ckplus/ckplus48.parquet
    python -m training.ckplus_cv --init default --save-final fer_stream/models/weights/ckplus.pt

CK+48 holds the last 3 (nearly identical) frames of each sequence, so folds are split **by
subject**: no person is ever in both the training and the test part of a fold. Each fold
starts from the same FER2013 weights (shared labels keep their classifier rows, ``contempt``
starts fresh), fine-tunes for a fixed number of epochs on the other 9 folds, and is tested once
on its own fold: the test fold never steers training (no early stopping on it).
Prints one JSON line per fold on stderr and a final JSON line with mean and std on stdout.
``--save-final`` then fine-tunes on all of CK+ with the same recipe and writes shipped weights.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

from fer_stream.labels import CKPLUS_LABELS
from fer_stream.models import checkpoint, registry
from training import data as D
from training.train import Hyper, fit, per_class_accuracy, predict, to_tensor, transfer


def load_ckplus(path) -> tuple[D.FaceSet, np.ndarray]:
    """CK+ faces of the seven CK+ labels and their class index in ``CKPLUS_LABELS`` order.

    CK+48 has no neutral: its 7 classes are CK+'s own (anger, contempt, disgust, fear, happy,
    sadness, surprise); anything else in the file is dropped.
    """
    ds = D.load(path, "train")
    ds = ds.take(np.array([lab in CKPLUS_LABELS for lab in ds.labels], bool))
    return ds, np.array([CKPLUS_LABELS.index(lab) for lab in ds.labels])


def folds_of(subjects: np.ndarray, k: int = 10, seed: int = 0) -> np.ndarray:
    """The subject-independent folds of every CK+ number here (``training.table1`` uses them too):
    fold index per image, whole subjects per fold (``training.data.subject_folds``)."""
    return D.subject_folds(subjects, k, seed)


def finetune_hyper(a) -> Hyper:
    # Small data: short schedule, lower peak lr than from scratch, mild regularisation.
    return Hyper(
        epochs=a.epochs,
        batch_size=a.batch_size,
        lr=a.lr,
        weight_decay=a.weight_decay,
        label_smoothing=0.1,
        warmup_epochs=1.0,
        patience=10**6,
        class_weight_power=0.5,
        seed=a.seed,
    )


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/ckplus/ckplus48.parquet")
    ap.add_argument("--init", default="default", help="FER2013 weights to start every fold from")
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--only-folds", type=int, default=0, help="run just the first N folds (smoke)")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--save-final", default=None, help="also train on all subjects, write weights here")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads or os.cpu_count() or 1)
    device = (
        "cuda"
        if a.device == "auto" and torch.cuda.is_available()
        else ("cpu" if a.device == "auto" else a.device)
    )
    t0 = time.time()

    init = checkpoint.load(a.init)
    ds, y = load_ckplus(a.data)
    labels = CKPLUS_LABELS
    # Normalise as the pretrained network expects (its stem BN statistics were learned so).
    mean, std = init.meta["normalize"]["mean"], init.meta["normalize"]["std"]
    x = to_tensor(ds.images, mean, std)
    folds = folds_of(ds.subjects, a.folds, a.seed)
    hp = finetune_hyper(a)

    def fresh():
        # Any architecture of the registry: the init's own, with CK+'s seven outputs.
        model = registry.from_config(registry.with_classes(init.arch, len(labels)))
        transfer(model, init, labels)
        return model

    accs, conf = [], np.zeros((len(labels), len(labels)), int)
    for f in range(a.only_folds or a.folds):
        te = folds == f
        model = fresh()
        fit(model, x[~te], y[~te], None, None, hp, device, quiet=True)
        pred = predict(model, x[te], device).argmax(1)
        np.add.at(conf, (y[te], pred), 1)
        acc = float((pred == y[te]).mean())
        accs.append(acc)
        subjects = sorted(set(ds.subjects[te]))
        print(
            json.dumps(
                {
                    "fold": f,
                    "accuracy": acc,
                    "n_test": int(te.sum()),
                    "n_subjects": len(subjects),
                    "seconds": round(time.time() - t0, 1),
                }
            ),
            file=sys.stderr,
            flush=True,
        )
    res = {
        "mean_accuracy": float(np.mean(accs)),
        "std_accuracy": float(np.std(accs)),
        "pooled_accuracy": float(np.trace(conf) / conf.sum()),
        "folds": len(accs),
        "fold_accuracy": accs,
        "per_class": {n: float(conf[i, i] / conf[i].sum()) for i, n in enumerate(labels) if conf[i].sum()},
        "confusion": conf.tolist(),
        "labels": list(labels),
        "init": a.init,
        "init_version": init.version,
        "n": int(len(y)),
        "split": "subject-independent",
        "epochs": a.epochs,
        "seconds": round(time.time() - t0, 1),
    }
    if a.save_final:
        model = fresh()
        fit(model, x, y, None, None, hp, device, quiet=True)
        meta = checkpoint.make_meta(
            labels,
            mean,
            std,
            init.meta["input_size"],
            version=f"{init.version}-ckplus",
            training={
                "data": str(a.data),
                "n_train": int(len(y)),
                "init": a.init,
                "init_version": init.version,
                "hyper": hp.__dict__,
                "device": device,
            },
            metrics={
                "ckplus_10fold_mean": res["mean_accuracy"],
                "ckplus_10fold_std": res["std_accuracy"],
                "train_per_class": per_class_accuracy(predict(model, x, device).argmax(1), y, labels),
            },
        )
        checkpoint.save(a.save_final, model.cpu(), meta, half=True)
        res["saved"] = a.save_final
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
