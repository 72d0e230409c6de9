"""Face alignment: rotate each face so its eyes are level, crop it like FER2013, resize to the model's input.

Crop geometry (the "FER2013 template"). FER2013 faces fill the 48x48 image from the forehead to the
chin. Measured with this package's landmark predictor on the FER2013 PublicTest images that dlib's
HOG detector finds (``python -m bench.landmarks --calibrate 1200``), a FER2013 crop has, as fractions
of its side: the eye midpoint at ``(0.50, 0.39)``, eye centres ``0.37`` apart and the mouth midpoint
``0.39`` below the eyes (medians); the chin touches the bottom edge. ``align_faces`` reproduces that at
the default ``margin=0.15``:

* with landmarks: the eye line sets the rotation (eyes horizontal in the crop) and the eye midpoint
  the position; the face size is the larger of the eye distance and the eye-to-mouth distance
  (each divided by its template value; with both, divided by ``MAX_CUE_BIAS``, the median excess of
  the larger cue), so a turned head (shorter eye distance) or a raised chin (shorter eye-mouth
  distance) does not blow the crop up;
* without landmarks (NaN, e.g. HOG boxes): an unrotated square on the box, scaled and shifted as the
  landmark crop relates to dlib's HOG box on real photos (same command: side 1.03 box sides, centre
  0.06 box sides above the box centre). FER2013's own HOG boxes are no guide here: its tight crops
  leave HOG no room to fire at the face's full scale.

``margin`` sets the border: the crop side is ``(1 + 2 * margin)`` "face squares" about a fixed centre,
where the face square is ``1 / 1.3`` of the FER2013-like crop (about brow to lower lip). ``margin=0.15``
gives FER2013 framing; 0.25 gives a crop 15% wider, 0.05 one 15% tighter.
"""

from __future__ import annotations

import cv2
import numpy as np

from fer_stream.faces.landmarks import five_from_68

DEFAULT_MARGIN = 0.15
# The FER2013 template as fractions of the crop side at DEFAULT_MARGIN (see the module docstring).
EYE_Y = 0.39  # eye midpoint, from the top
EYE_DIST = 0.37  # between the two eye centres
EYE_MOUTH = 0.39  # eye midpoint to mouth midpoint, perpendicular to the eye line
# The larger of the two size cues exceeds a typical face's size by this factor (median on the same
# images); dividing by it makes the median crop scale match FER2013's (--fer2013: align_scale_over_fer).
MAX_CUE_BIAS = 1.06
# Box fallback, from landmark crops vs dlib HOG boxes on real photos (module docstring).
BOX_SCALE = 1.03  # crop side / box side
BOX_DY = -0.06  # crop centre - box centre, in box sides (negative: up)


def _eyes_mouth(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image-left eye, image-right eye, mouth midpoint ``(N, 2)`` each from 2, 5 or 68 points."""
    pts = np.asarray(points, np.float64)
    if pts.ndim != 3 or pts.shape[2] != 2 or pts.shape[1] not in (2, 5, 68):
        raise ValueError(f"eyes_or_landmarks must be (N,2,2), (N,5,2) or (N,68,2), got {pts.shape}")
    if pts.shape[1] == 68:
        pts = five_from_68(pts).astype(np.float64)
    left, right = pts[:, 0], pts[:, 1]
    mouth = pts[:, 3:5].mean(1) if pts.shape[1] == 5 else np.full_like(left, np.nan)
    return left, right, mouth


def face_transforms(
    eyes_or_landmarks: np.ndarray, boxes: np.ndarray, size: int = 48, margin: float = DEFAULT_MARGIN
) -> np.ndarray:
    """Affine maps from image pixels to aligned-crop pixels, all faces at once.

    Args:
        eyes_or_landmarks: ``(N, 2, 2)`` eye centres (image-left first), ``(N, 5, 2)``
            ``Detections.landmarks`` or ``(N, 68, 2)`` dlib landmarks, in image pixels; rows with NaN eyes
            use their box.
        boxes: ``(N, 4)`` ``x1, y1, x2, y2`` pixels; used only for rows without usable eyes.
        size: output side in pixels (the classifier's input size, from its checkpoint).
        margin: border on each side of the tight face square, in face-square sides (module docstring).

    Returns:
        ``(N, 2, 3) float64`` matrices ``M`` for ``cv2.warpAffine``:
        ``crop_xy = M[:, :2] @ image_xy + M[:, 2]``.

    Raises:
        ValueError: a row has neither usable eyes nor a finite, non-empty box.
    """
    left, right, mouth = _eyes_mouth(eyes_or_landmarks)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if len(boxes) != len(left):
        raise ValueError(f"{len(left)} landmark rows but {len(boxes)} boxes")
    grow = 1 + 2 * DEFAULT_MARGIN  # template crop side / tight face-square side

    # Landmark path: eye line direction u, and n (u turned 90 degrees towards the chin, image y is down).
    eye_vec = right - left
    eye_dist = np.hypot(eye_vec[:, 0], eye_vec[:, 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        u = eye_vec / eye_dist[:, None]
        n = np.stack([-u[:, 1], u[:, 0]], 1)
        mid = (left + right) / 2
        eye_mouth = np.einsum("ij,ij->i", mouth - mid, n)  # NaN without mouth points
        eye_mouth = np.where(eye_mouth > 0, eye_mouth, np.nan)
        # Face-square side: the larger of the two size cues, or the eye distance alone.
        by_eyes, by_mouth = eye_dist / (EYE_DIST * grow), eye_mouth / (EYE_MOUTH * grow)
        face = np.where(np.isfinite(by_mouth), np.fmax(by_eyes, by_mouth) / MAX_CUE_BIAS, by_eyes)
        centre = mid + n * ((0.5 - EYE_Y) * grow * face)[:, None]
    ok = np.isfinite(face) & (face > 0) & np.isfinite(centre).all(1)

    # Box fallback: unrotated, same template.
    box_side = ((boxes[:, 2] - boxes[:, 0]) + (boxes[:, 3] - boxes[:, 1])) / 2
    box_face = box_side * BOX_SCALE / grow
    box_centre = (boxes[:, :2] + boxes[:, 2:]) / 2 + np.outer(BOX_DY * box_side, [0, 1])
    bad = ~ok & ~(np.isfinite(box_centre).all(1) & (box_side > 0))
    if bad.any():
        raise ValueError(f"faces {np.flatnonzero(bad).tolist()} have neither eyes nor a valid box")
    u = np.where(ok[:, None], u, [1.0, 0.0])
    n = np.where(ok[:, None], n, [0.0, 1.0])
    face = np.where(ok, face, box_face)
    centre = np.where(ok[:, None], centre, box_centre)

    # crop = s * [u; n] (p - centre) + crop centre; pixel centres sit at integer coordinates.
    scale = size / (face * (1 + 2 * margin))
    lin = scale[:, None, None] * np.stack([u, n], 1)  # (N, 2, 2) rows: u, n
    shift = (size - 1) / 2 - np.einsum("nij,nj->ni", lin, centre)
    return np.concatenate([lin, shift[:, :, None]], 2)


def align_faces(
    image: np.ndarray,
    eyes_or_landmarks: np.ndarray,
    boxes: np.ndarray,
    size: int = 48,
    margin: float = DEFAULT_MARGIN,
) -> np.ndarray:
    """Aligned grayscale face crops of one frame (eyes horizontal, FER2013-like framing).

    Args:
        image: ``(H, W) uint8`` gray or ``(H, W, 3) uint8`` RGB frame.
        eyes_or_landmarks: ``(N, 2, 2)``, ``(N, 5, 2)`` or ``(N, 68, 2)`` pixels (see ``face_transforms``);
            NaN rows fall back to an unrotated crop of their box.
        boxes: ``(N, 4)`` ``x1, y1, x2, y2`` pixels.
        size: crop side in pixels (the classifier's ``input_size``).
        margin: border around the tight face square, in face-square sides (module docstring).

    Returns:
        ``(N, size, size) uint8`` gray crops; ``(0, size, size)`` when ``N == 0``. Pixels outside the frame
        repeat the frame's edge.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"image must be uint8 (H,W) gray or (H,W,3) RGB, got {image.dtype} {image.shape}")
    mats = face_transforms(eyes_or_landmarks, boxes, size, margin)
    out = np.empty((len(mats), size, size), np.uint8)
    if not len(mats):
        return out
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    # warpAffine interpolates without low-pass filtering; a face shrunk k-fold is first warped to
    # k*size (k <= 8) and then reduced with INTER_AREA, which averages instead of aliasing.
    border = cv2.BORDER_REPLICATE
    shrink = np.clip(np.round(1 / np.hypot(mats[:, 0, 0], mats[:, 0, 1])), 1, 8).astype(int)
    for i, (m, k) in enumerate(zip(mats, shrink, strict=True)):
        if k == 1:
            out[i] = cv2.warpAffine(gray, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=border)
            continue
        big = m * k
        big[:, 2] += (k - 1) / 2  # keep pixel centres aligned: crop centre (size-1)/2 -> (k*size-1)/2
        warped = cv2.warpAffine(gray, big, (size * k, size * k), flags=cv2.INTER_LINEAR, borderMode=border)
        out[i] = cv2.resize(warped, (size, size), interpolation=cv2.INTER_AREA)
    return out
