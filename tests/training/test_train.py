"""The training scripts end to end, small enough for CI."""

import json

import numpy as np
import pytest

from fer_stream.labels import CKPLUS_LABELS, FER2013_LABELS
from fer_stream.models import checkpoint
from tests.helpers import shared, synthetic_faces, write_parquet
from training import ckplus_cv, evaluate, train


@pytest.mark.slow
def test_smoke_training_loss_falls_and_weights_describe_themselves(tmp_path):
    imgs, labs = synthetic_faces(40, FER2013_LABELS, seed=0)
    vimgs, vlabs = synthetic_faces(8, FER2013_LABELS, seed=1)
    write_parquet(tmp_path / "train.parquet", imgs, labs)
    write_parquet(tmp_path / "val.parquet", vimgs, vlabs, split="PublicTest")
    out = tmp_path / "run"
    s = train.main(["--smoke", "--data", str(tmp_path), "--out", str(out), "--threads", "2"])
    # The loss falls, and what was learned is real: val accuracy above twice chance (1/7);
    # measured 0.46 (loss 1.96 -> 1.62) with seed 0.
    assert s["last_loss"] < s["first_loss"], s
    assert s["val_accuracy"] > 2 / 7, s
    w = checkpoint.load(out / "best.pt")
    assert w.labels == FER2013_LABELS and w.arch.name == "smoke"
    assert w.meta["training"]["n_train"] == len(imgs)  # 280 < the smoke limit of 384
    assert abs(w.meta["normalize"]["mean"] - imgs.mean() / 255) < 0.05
    # Resume continues from last.pt rather than starting over.
    assert (out / "last.pt").is_file()
    r = train.main(["--smoke", "--data", str(tmp_path), "--out", str(out), "--resume", "--epochs", "6"])
    assert r["epochs"] == s["epochs"]  # nothing left to do: all epochs were done


@pytest.mark.slow
@pytest.mark.parametrize("precision", [[], ["--cpu-bf16"]], ids=["fp32", "cpu-bf16"])
def test_smoke_training_on_real_fer2013(tmp_path, precision):
    data = shared("fer2013/train.parquet").parent
    s = train.main(["--smoke", "--data", str(data), "--out", str(tmp_path), "--threads", "2", *precision])
    assert s["last_loss"] < s["first_loss"], s


def test_evaluate_maps_labels_and_counts_skipped(tmp_path):
    imgs, labs = synthetic_faces(6, CKPLUS_LABELS, seed=2)
    labs = ["anger" if x == "angry" else "sadness" if x == "sad" else x for x in labs]  # CK+ spelling
    f = write_parquet(tmp_path / "ck.parquet", imgs, labs, subjects=["S1"] * len(labs))
    res = evaluate.evaluate(str(f), "default")
    # the FER2013 model cannot say "contempt": those 6 are skipped, the other 36 are scored
    assert res["skipped"] == 6 and res["n"] == 36
    assert np.array(res["confusion"]).sum() == 36
    assert res["labels"] == list(FER2013_LABELS)
    assert set(res["per_class"]) == {"angry", "disgust", "fear", "happy", "sad", "surprise"}
    json.dumps(res)


@pytest.mark.slow
def test_default_model_accuracy_on_fer2013_val():
    # Bar: 3 points under the shipped default's measured val accuracy (docs/RESULTS.md),
    # well above chance (25 % majority class): catches a broken preprocessing path.
    res = evaluate.evaluate(str(shared("fer2013/val.parquet")), "default")
    assert res["n"] == 3589 and res["skipped"] == 0
    measured = checkpoint.load("default").meta["metrics"]["val_accuracy"]
    assert res["accuracy"] >= measured - 0.03, res["accuracy"]
    assert res["accuracy"] > 0.55


@pytest.mark.slow
def test_ckplus_cv_runs_one_fold_from_default(tmp_path):
    data = shared("ckplus/ckplus48.parquet")
    out = tmp_path / "ck.pt"
    res = ckplus_cv.main(
        [
            "--data",
            str(data),
            "--init",
            "default",
            "--only-folds",
            "1",
            "--epochs",
            "1",
            "--save-final",
            str(out),
            "--threads",
            "2",
        ]
    )
    assert res["folds"] == 1 and 0.0 <= res["mean_accuracy"] <= 1.0
    assert res["split"] == "subject-independent" and res["labels"] == list(CKPLUS_LABELS)
    w = checkpoint.load(out)
    assert w.labels == CKPLUS_LABELS and w.meta["training"]["init"] == "default"
