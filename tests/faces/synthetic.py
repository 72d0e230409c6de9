"""Synthetic face descriptors, seat maps and track summaries for the tests of
``fer_stream.faces.descriptors`` and ``fer_stream.identity`` (no model, no photo)."""

from __future__ import annotations

import os
import stat

import numpy as np

from fer_stream.faces.track import TrackSummary

RNG = np.random.default_rng(7)

SEATS = {
    "room": "B-204",
    "units": "normalized",
    "seats": [
        {"student_id": "st-1", "rect": [0.0, 0.0, 0.5, 1.0]},
        {"student_id": "st-2", "rect": [0.5, 0.0, 1.0, 0.5]},
    ],
}


def unit(v) -> np.ndarray:
    """A random direction scaled so that two of them are ~1.0 apart (dlib: different people ~0.8-1)."""
    v = np.asarray(v, np.float64)
    return (v / np.linalg.norm(v) * 0.7).astype(np.float32)


def person(n: int = 3) -> list[np.ndarray]:
    """``n`` descriptors of different people."""
    return [unit(RNG.normal(size=128)) for _ in range(n)]


def near(v: np.ndarray, d: float = 0.2) -> np.ndarray:
    """A descriptor at distance ``d`` from ``v``."""
    step = RNG.normal(size=128)
    return (v + step / np.linalg.norm(step) * d).astype(np.float32)


def summary(centres_px, hits=10) -> TrackSummary:
    """Tracks 1..n with 40x40 px faces at ``centres_px``."""
    n = len(centres_px)
    box = np.array([[x, y, 40, 40] for x, y in centres_px], np.float32)
    return TrackSummary(np.arange(1, n + 1), np.zeros(n), np.full(n, 5.0), np.full(n, hits), box)


def mode(path) -> int:
    """Permission bits of a file or folder."""
    return stat.S_IMODE(os.stat(path).st_mode)
