from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def shared(rel: str) -> Path:
    """A file in ../shared/data, or skip the test saying what is missing."""
    p = SHARED / rel
    if not p.exists():
        pytest.skip(f"real data not available: {p} (see ../shared/data/README.md)")
    return p


def synthetic_faces(n_per_class: int, labels, size: int = 48, seed: int = 0):
    """Learnable toy 'faces': each class is a bright bar at its own angle, plus noise.

    Returns ``uint8 (N, size, size)`` and the label name of each image.
    """
    rng = np.random.default_rng(seed)
    imgs, labs = [], []
    for k, name in enumerate(labels):
        for _ in range(n_per_class):
            img = rng.normal(110, 20, (size, size)).clip(0, 255).astype(np.uint8)
            ang = np.pi * k / len(labels)
            c = size / 2 + rng.normal(0, 1.5, 2)
            d = np.array([np.cos(ang), np.sin(ang)]) * size * 0.4
            p1, p2 = (c - d).astype(int), (c + d).astype(int)
            cv2.line(img, tuple(int(v) for v in p1), tuple(int(v) for v in p2), 250, 4)
            imgs.append(img)
            labs.append(name)
    return np.stack(imgs), labs


def write_parquet(path: Path, images, labels, subjects=None, split="Training") -> Path:
    png = [cv2.imencode(".png", im)[1].tobytes() for im in images]
    n = len(png)
    table = pa.table(
        {
            "image": pa.array(png, pa.binary()),
            "label": labels,
            "split": [split] * n,
            "subject": subjects if subjects is not None else pa.nulls(n, pa.string()),
            "source_file": [f"img{i}.png" for i in range(n)],
        }
    )
    pq.write_table(table, path)
    return path
