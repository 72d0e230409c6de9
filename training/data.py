"""Face-expression datasets as arrays, from the three formats users have.

* Parquet with columns ``image`` (PNG/JPEG bytes), ``label`` and optional ``subject``
  (the layout of ``../shared/data``); a directory holding ``train.parquet``/``val.parquet``.
* The original Kaggle ``fer2013.csv`` (``emotion, pixels, Usage``): ``Training`` is the train
  split, ``PublicTest`` the val split, ``PrivateTest`` the test split.
* A folder ``root/<label>/*.png|jpg`` (or ``root/train/<label>/...`` and ``root/val/<label>/...``).

Everything is decoded once into ``uint8 (N, 48, 48)``; a 28k-image set is 66 MB.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq

from fer_stream.labels import CKPLUS_LABELS, FER2013_LABELS, canonical

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp"}
CSV_USAGE = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}


@dataclass(frozen=True)
class FaceSet:
    """Parallel arrays: ``images uint8 (N, S, S)``, ``labels (N,) str`` (canonical names),
    ``subjects (N,) object`` (None where unknown)."""

    images: np.ndarray
    labels: np.ndarray
    subjects: np.ndarray
    source: str

    def __post_init__(self):
        n = len(self.images)
        if self.images.ndim != 3 or self.images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (N,S,S), got {self.images.dtype} {self.images.shape}")
        if len(self.labels) != n or len(self.subjects) != n:
            raise ValueError("images, labels and subjects must have the same length")

    def __len__(self) -> int:
        return len(self.images)

    def take(self, idx) -> FaceSet:
        return FaceSet(self.images[idx], self.labels[idx], self.subjects[idx], self.source)


def _decode(buf: bytes, size: int) -> np.ndarray | None:
    img = cv2.imdecode(np.frombuffer(buf, np.uint8), cv2.IMREAD_GRAYSCALE)
    if img is None:
        return None
    if img.shape != (size, size):
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return img


def _pack(images: list, labels: list, subjects: list, source: str, size: int) -> FaceSet:
    keep = [i for i, im in enumerate(images) if im is not None]
    arr = np.stack([images[i] for i in keep]) if keep else np.zeros((0, size, size), np.uint8)
    return FaceSet(
        arr,
        np.array([canonical(labels[i]) for i in keep], dtype=object),
        np.array([subjects[i] for i in keep], dtype=object),
        source,
    )


def read_parquet(path: Path, size: int = 48) -> FaceSet:
    t = pq.read_table(path)
    cols = set(t.column_names)
    images = [_decode(b, size) for b in t.column("image").to_pylist()]
    labels = t.column("label").to_pylist()
    subjects = t.column("subject").to_pylist() if "subject" in cols else [None] * len(labels)
    return _pack(images, labels, subjects, str(path), size)


def read_fer2013_csv(path: Path, split: str, size: int = 48) -> FaceSet:
    usage = CSV_USAGE[split]
    images, labels = [], []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("Usage", usage) != usage:
                continue
            px = np.array(row["pixels"].split(), dtype=np.uint8)
            side = int(round(np.sqrt(px.size)))
            img = px.reshape(side, side)
            if side != size:
                img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
            images.append(img)
            labels.append(FER2013_LABELS[int(row["emotion"])])
    return _pack(images, labels, [None] * len(labels), f"{path}:{usage}", size)


def read_folder(root: Path, size: int = 48) -> FaceSet:
    images, labels = [], []
    for label_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(label_dir.iterdir()):
            if f.suffix.lower() in IMAGE_EXTS:
                images.append(_decode(f.read_bytes(), size))
                labels.append(label_dir.name)
    return _pack(images, labels, [None] * len(labels), str(root), size)


def load(path: str | Path, split: str = "train", size: int = 48) -> FaceSet:
    """Load one split (``train``, ``val``, ``test``) from a file or directory of any format."""
    path = Path(path)
    if path.suffix == ".parquet":
        return read_parquet(path, size)
    if path.suffix == ".csv":
        return read_fer2013_csv(path, split, size)
    if path.is_dir():
        for candidate in (path / f"{split}.parquet", path / "fer2013.csv"):
            if candidate.is_file():
                return load(candidate, split, size)
        if (path / split).is_dir():
            return read_folder(path / split, size)
        if split == "train" and any(p.is_dir() for p in path.iterdir()):
            return read_folder(path, size)
        raise FileNotFoundError(f"no {split} split in {path}")
    raise FileNotFoundError(f"not a dataset: {path} (want .parquet, fer2013.csv or a folder)")


def label_order(labels) -> tuple[str, ...]:
    """The output order for a label set: FER2013's if it fits, else CK+'s, else sorted."""
    present = {canonical(x) for x in labels}
    for order in (FER2013_LABELS, CKPLUS_LABELS):
        if present <= set(order):
            return order
    return tuple(sorted(present))


def subject_folds(subjects: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Fold index (0..k-1) per image, whole subjects per fold (subject-independent k-fold).

    Subjects are shuffled with ``seed`` then dealt largest-first onto the currently smallest
    fold, so folds are balanced in images and no subject is in two folds.
    """
    uniq, counts = np.unique(subjects.astype(str), return_counts=True)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(uniq))
    order = order[np.argsort(-counts[order], kind="stable")]
    fold_of, sizes = {}, np.zeros(k, int)
    for i in order:
        f = int(np.argmin(sizes))
        fold_of[uniq[i]] = f
        sizes[f] += counts[i]
    return np.array([fold_of[s] for s in subjects.astype(str)])
