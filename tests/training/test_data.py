import numpy as np
import pytest

from fer_stream.labels import CKPLUS_LABELS, FER2013_LABELS, canonical
from tests.helpers import shared, synthetic_faces, write_parquet
from training import data as D


def test_canonical_label_names():
    assert [canonical(x) for x in ["Anger", "sadness", "happy ", "contempt"]] == [
        "angry",
        "sad",
        "happy",
        "contempt",
    ]
    assert D.label_order(["anger", "happy", "contempt"]) == CKPLUS_LABELS
    assert D.label_order(["happy", "neutral"]) == FER2013_LABELS


def test_three_formats_read_the_same_faces(tmp_path):
    imgs, labs = synthetic_faces(3, ["happy", "sad"], seed=1)
    # Parquet
    pq_set = D.load(write_parquet(tmp_path / "train.parquet", imgs, labs))
    # Kaggle CSV, with a PublicTest row that must not appear in the train split
    csv = tmp_path / "fer2013.csv"
    rows = ["emotion,pixels,Usage"] + [
        f"{FER2013_LABELS.index(lab)},{' '.join(map(str, im.ravel()))},Training"
        for im, lab in zip(imgs, labs)
    ]
    rows.append(f"0,{' '.join(['0'] * 48 * 48)},PublicTest")
    csv.write_text("\n".join(rows) + "\n")
    csv_set = D.load(csv, "train")
    assert len(D.load(csv, "val")) == 1
    # Folder of PNGs per label
    import cv2

    for i, (im, lab) in enumerate(zip(imgs, labs)):
        (tmp_path / "folder" / lab).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / "folder" / lab / f"{i}.png"), im)
    dir_set = D.load(tmp_path / "folder", "train")
    for s in (pq_set, csv_set, dir_set):
        assert s.images.shape == (6, 48, 48) and s.images.dtype == np.uint8
        assert sorted(s.labels) == sorted(labs)
    np.testing.assert_array_equal(pq_set.images, csv_set.images)


def test_bad_paths_raise(tmp_path):
    with pytest.raises(FileNotFoundError):
        D.load(tmp_path / "nope.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError):
        D.load(tmp_path / "empty", "val")


def test_subject_folds_never_share_a_subject():
    subjects = np.array([f"S{i % 37:03d}" for i in range(500)], dtype=object)
    folds = D.subject_folds(subjects, 10, seed=3)
    for s in np.unique(subjects):
        assert len(set(folds[subjects == s])) == 1
    sizes = np.bincount(folds, minlength=10)
    assert sizes.min() > 0 and sizes.max() - sizes.min() <= 20


def test_real_ckplus_folds_are_subject_independent():
    ds = D.load(shared("ckplus/ckplus48.parquet"))
    assert len(ds) == 837 and set(ds.labels) == set(CKPLUS_LABELS)
    folds = D.subject_folds(ds.subjects, 10)
    for f in range(10):
        assert not set(ds.subjects[folds == f]) & set(ds.subjects[folds != f])
