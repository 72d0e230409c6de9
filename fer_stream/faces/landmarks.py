"""68-point facial landmarks (dlib's ensemble-of-regression-trees predictor) for boxes of one image.

The model file ships with the ``face_recognition_models`` package (installed from the package
registry like any dependency); nothing is downloaded at run time. Point order is iBUG 300-W /
Multi-PIE, as seen in the image (0-based): 0-16 jaw (8 = chin), 17-21 and 22-26 brows, 27-35 nose
(30 = tip), 36-41 image-left eye (the subject's right eye), 42-47 image-right eye, 48-67 mouth
(48 and 54 = corners).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

# Built-in predictors: name -> file in face_recognition_models/models/.
MODEL_FILES: dict[str, str] = {"68": "shape_predictor_68_face_landmarks.dat"}

# Indices of the 68-point layout used elsewhere (alignment, attention).
LEFT_EYE = slice(36, 42)  # image-left eye, p1..p6 of Soukupova & Cech (outer corner first)
RIGHT_EYE = slice(42, 48)  # image-right eye, p1 = inner corner
NOSE_TIP = 30
MOUTH_LEFT, MOUTH_RIGHT = 48, 54
CHIN = 8


class LandmarkModelError(FileNotFoundError):
    """The landmark model file is missing or not a dlib shape predictor."""


def model_path(model: str = "68") -> Path:
    """Path of a built-in predictor (``"68"``) or of an explicit ``.dat`` file.

    Raises:
        LandmarkModelError: the file (or the ``face_recognition_models`` package) is absent.
    """
    if model not in MODEL_FILES:
        path = Path(model)
        if not path.is_file():
            raise LandmarkModelError(
                f"landmark model {model!r} is neither one of {sorted(MODEL_FILES)} nor an existing file"
            )
        return path
    # find_spec locates the package without importing it (its __init__ needs pkg_resources).
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise LandmarkModelError(
            f"the face_recognition_models package, which holds the dlib model "
            f"{MODEL_FILES[model]}, is not installed (pip install face_recognition_models)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / MODEL_FILES[model]
    if not path.is_file():
        raise LandmarkModelError(f"landmark model missing: {path} (reinstall face_recognition_models)")
    return path


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"image must be uint8 (H,W) gray or (H,W,3) RGB, got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)


class LandmarkPredictor:
    """dlib's 68-point shape predictor (Kazemi & Sullivan 2014, trained on iBUG 300-W).

    A stateful stage: the model loads once in ``__init__``; each call handles one image's boxes.
    dlib predicts one box at a time (cost per face: docs/BENCHMARKS.md, ``bench/landmarks.py``);
    the loop lives here so callers pass whole frames.

    Args:
        model: ``"68"`` (built-in) or the path of a dlib ``shape_predictor`` ``.dat`` file with 68 points.

    Raises:
        LandmarkModelError: the model file is missing or unreadable.
    """

    def __init__(self, model: str = "68"):
        import dlib  # imported here so that modules importing this one do not need dlib

        self._dlib = dlib
        self.path = model_path(model)
        try:
            self._predictor = dlib.shape_predictor(str(self.path))
        except RuntimeError as e:  # dlib raises RuntimeError on a corrupt or wrong file
            raise LandmarkModelError(f"cannot load landmark model {self.path}: {e}") from e
        self.num_parts = 68

    def __call__(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Landmarks of every box.

        Args:
            image: ``(H, W) uint8`` gray or ``(H, W, 3) uint8`` RGB frame.
            boxes: ``(N, 4)`` ``x1, y1, x2, y2`` face boxes in pixels (e.g. ``Detections.xyxy``); rounded to
                whole pixels for dlib. A box with a non-finite coordinate gets NaN landmarks.

        Returns:
            ``(N, 68, 2) float32`` (x, y) in pixels of ``image``, iBUG 68-point order (see module docstring).
        """
        image = _check_image(image)
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        out = np.full((len(boxes), self.num_parts, 2), np.nan, np.float32)
        rect = self._dlib.rectangle
        for i, (x1, y1, x2, y2) in enumerate(np.round(boxes)):
            if not np.isfinite((x1, y1, x2, y2)).all():
                continue
            shape = self._predictor(image, rect(int(x1), int(y1), int(x2), int(y2)))
            out[i] = [(p.x, p.y) for p in shape.parts()]
        return out


def five_from_68(lm68: np.ndarray) -> np.ndarray:
    """Reduce 68-point landmarks to the 5 points of ``Detections.landmarks``.

    Args:
        lm68: ``(N, 68, 2)`` (x, y) pixels.

    Returns:
        ``(N, 5, 2) float32``: image-left eye centre (mean of points 36-41), image-right eye centre (42-47),
        nose tip (30), image-left mouth corner (48), image-right mouth corner (54). NaN stays NaN.
    """
    lm68 = np.asarray(lm68, np.float32)
    if lm68.ndim != 3 or lm68.shape[1:] != (68, 2):
        raise ValueError(f"lm68 must be (N, 68, 2), got {lm68.shape}")
    return np.stack(
        [
            lm68[:, LEFT_EYE].mean(1),
            lm68[:, RIGHT_EYE].mean(1),
            lm68[:, NOSE_TIP],
            lm68[:, MOUTH_LEFT],
            lm68[:, MOUTH_RIGHT],
        ],
        axis=1,
    )
