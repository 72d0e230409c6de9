"""What a classroom camera does to a face before the classifier sees it, as image operations.

A student at the back is 10-40 px wide in the frame; the pipeline warps that region up to the
model's 48x48 input (``fer_stream.faces.align``: bilinear), so the classifier sees a blurry
upscale. These functions reproduce it on 48x48 dataset faces, for two uses that must agree:

* ``bench/validity.py`` measures accuracy against face size, blur and JPEG quality (fixed values);
* ``training/train.py --degrade P`` trains on randomly degraded faces (random values), so the
  model answers small faces less wrongly (issue 13).

All take and return ``uint8 (N, S, S)`` grayscale.
"""

from __future__ import annotations

import cv2
import numpy as np


def shrink(images: np.ndarray, px: int) -> np.ndarray:
    """Each face reduced to ``px x px`` (INTER_AREA: a camera's pixels average the light) and
    brought back to its size with bilinear interpolation (what the aligner's warp does)."""
    s = images.shape[-1]
    if px >= s:
        return images.copy()
    out = np.empty_like(images)
    for i, img in enumerate(images):
        small = cv2.resize(img, (px, px), interpolation=cv2.INTER_AREA)
        out[i] = cv2.resize(small, (s, s), interpolation=cv2.INTER_LINEAR)
    return out


def blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of ``sigma`` pixels (defocus, motion of a slow shutter)."""
    if sigma <= 0:
        return images.copy()
    return (
        np.stack([cv2.GaussianBlur(img, (0, 0), sigma) for img in images]) if len(images) else images.copy()
    )


def jpeg(images: np.ndarray, quality: int) -> np.ndarray:
    """JPEG-compressed at ``quality`` (1-100) and decoded (a recorder's compression blocks)."""
    out = np.empty_like(images)
    for i, img in enumerate(images):
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        out[i] = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    return out


def random_degrade(
    images: np.ndarray,
    rng: np.random.Generator,
    p_shrink: float = 0.6,
    px_range: tuple[int, int] = (10, 48),
    p_blur: float = 0.2,
    p_jpeg: float = 0.2,
) -> np.ndarray:
    """Training-time degradation, each face independently.

    Sizes are drawn log-uniformly in ``px_range`` (each halving of size is as likely as the next,
    as perspective makes it in a classroom); blur sigma 0.5-1.5 px; JPEG quality 20-80. The
    remaining ``1 - p_shrink`` faces keep full resolution, so full-size accuracy is still trained.
    """
    out = images.copy()
    n = len(out)
    lo, hi = np.log(px_range[0]), np.log(px_range[1])
    for i in range(n):
        img = out[i : i + 1]
        if rng.random() < p_shrink:
            img = shrink(img, int(round(np.exp(rng.uniform(lo, hi)))))
        if rng.random() < p_blur:
            img = blur(img, float(rng.uniform(0.5, 1.5)))
        if rng.random() < p_jpeg:
            img = jpeg(img, int(rng.integers(20, 81)))
        out[i] = img[0]
    return out
