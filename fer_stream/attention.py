"""Attention signals from 68-point landmarks: head pose, eye openness, PERCLOS, presence. Pure numpy + cv2.

Definitions, defaults, sources and how to tune them for a camera: ``docs/ATTENTION.md``.

Conventions (all angles in degrees; "left"/"right" as seen in the image, which is not mirrored):

* ``yaw > 0``: the head turns towards the image's right, i.e. the subject turns to *their* left.
* ``pitch > 0``: the head tilts up (chin up, looking above the camera); ``pitch < 0``: looking down.
* ``roll > 0``: the head tilts towards the image's right (the subject's left shoulder): the eye line
  turns clockwise on screen, the image-right eye lower. For a near-frontal face it equals
  ``atan2(dy, dx)`` of the eye line (image-left eye to image-right eye, y down).
* All zero: a face looking straight at the camera (``relative_to="line_of_sight"``, the default) or
  a face parallel to the image plane (``relative_to="camera_axes"``); the two differ for faces away
  from the image centre (by up to half the field of view at the frame's edge).

The head rotation is ``R = Ry(-yaw) @ Rx(-pitch) @ Rz(roll)`` in OpenCV camera axes (x right, y down,
z forward): yaw about the vertical axis first, then pitch, then roll about the nose axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Generic 3D head: 14 points of the anthropometric model from the University of Coimbra
# (glAnthropometric3DModel.cpp) as used by lincolnhard/head-pose-estimation, with their dlib
# 68-point indices. The source axes are x towards the image's left, y up, z towards the camera
# (units about cm); flipping all three gives OpenCV camera axes for a face looking at the camera.
MODEL_INDEX = np.array([17, 21, 22, 26, 36, 39, 42, 45, 31, 35, 48, 54, 57, 8])
MODEL_3D = -np.array(
    [
        [6.825897, 6.760612, 4.402142],  # 17 image-left brow, outer end
        [1.330353, 7.122144, 6.903745],  # 21 image-left brow, inner end
        [-1.330353, 7.122144, 6.903745],  # 22 image-right brow, inner end
        [-6.825897, 6.760612, 4.402142],  # 26 image-right brow, outer end
        [5.311432, 5.485328, 3.987654],  # 36 image-left eye, outer corner
        [1.789930, 5.393625, 4.413414],  # 39 image-left eye, inner corner
        [-1.789930, 5.393625, 4.413414],  # 42 image-right eye, inner corner
        [-5.311432, 5.485328, 3.987654],  # 45 image-right eye, outer corner
        [2.005628, 1.409845, 6.165652],  # 31 nostril wing, image-left
        [-2.005628, 1.409845, 6.165652],  # 35 nostril wing, image-right
        [2.774015, -2.080775, 5.048531],  # 48 mouth corner, image-left
        [-2.774015, -2.080775, 5.048531],  # 54 mouth corner, image-right
        [0.000000, -3.116408, 6.097667],  # 57 lower lip, centre
        [0.000000, -7.415691, 4.070434],  # 8 chin
    ]
)

# MTCNN's five points (image-left eye centre, image-right eye centre, nose tip, image-left and
# image-right mouth corner) on the same generic head, in the same (OpenCV camera) axes: fitted by
# triangulation over 71 real faces >= 60 px given their 68-point pose, symmetrised
# (`python bench/validity.py --fit-five`). Head pose of faces too small for the 68-point model
# could come from these (``head_pose5``); measured against the 68-point pose (docs/VALIDITY.md), its
# pitch is too far off to be used, so the pipeline does not (bench/validity.py keeps measuring it).
MODEL5_3D = np.array(
    [
        [-3.48, -5.481, -6.426],
        [3.48, -5.481, -6.426],
        [0.0, -1.503, -9.1],
        [-3.373, 1.623, -5.714],
        [3.373, 1.623, -5.714],
    ]
)

# Eye contours in the 68-point layout, p1..p6 of Soukupova & Cech (2016): p1, p4 the corners,
# p2, p3 the upper lid, p6, p5 the lower lid below them.
EYES = (np.arange(36, 42), np.arange(42, 48))

# Presence states of a known student in one sampled frame (values are what records store).
VISIBLE_ATTENTIVE = "attentive"
VISIBLE_INATTENTIVE = "inattentive"
VISIBLE_UNMEASURED = "unmeasured"  # face seen but no usable landmarks/pose: neither attentive nor not
NOT_VISIBLE = "not_visible"  # student known to the session but not detected in this frame
STATES = (VISIBLE_ATTENTIVE, VISIBLE_INATTENTIVE, VISIBLE_UNMEASURED, NOT_VISIBLE)

ATTENTIVE_SCORE = 0.5  # attention_score >= this <=> every condition of AttentionConfig holds


@dataclass(frozen=True)
class AttentionConfig:
    """Thresholds of the attention signals; tune per camera placement (docs/ATTENTION.md).

    Attributes:
        max_abs_yaw: degrees; ``|yaw|`` above this counts as looking away sideways.
        pitch_min: degrees; lower pitch (looking further down: desk, phone) counts as away.
        pitch_max: degrees; higher pitch (looking further up than the front of the room) counts as away.
        ear_closed: eye aspect ratio below which the eyes count as closed.
        soft_deg: degrees; width of the logistic ramp of the score at the yaw and pitch limits.
        soft_ear: EAR units; width of the ramp at ``ear_closed``.
        perclos_window_s: seconds of the PERCLOS window.
        perclos_drowsy: PERCLOS at or above this flags drowsiness.
    """

    max_abs_yaw: float = 30.0
    pitch_min: float = -25.0
    pitch_max: float = 20.0
    ear_closed: float = 0.2
    soft_deg: float = 5.0
    soft_ear: float = 0.02
    perclos_window_s: float = 60.0
    perclos_drowsy: float = 0.15

    def __post_init__(self):
        if not self.max_abs_yaw > 0 or not self.pitch_min < self.pitch_max:
            raise ValueError(f"need max_abs_yaw > 0 and pitch_min < pitch_max, got {self}")
        if not (self.soft_deg > 0 and self.soft_ear > 0 and self.perclos_window_s > 0):
            raise ValueError(f"soft_deg, soft_ear and perclos_window_s must be > 0, got {self}")
        if not 0 < self.perclos_drowsy <= 1 or not self.ear_closed > 0:
            raise ValueError(f"need 0 < perclos_drowsy <= 1 and ear_closed > 0, got {self}")


def _lm68(lm68: np.ndarray) -> np.ndarray:
    lm = np.asarray(lm68, np.float64)
    if lm.ndim != 3 or lm.shape[1:] != (68, 2):
        raise ValueError(f"lm68 must be (N, 68, 2), got {lm.shape}")
    return lm


def camera_matrix(image_wh: tuple[int, int], focal_px: float | None = None) -> np.ndarray:
    """``(3, 3)`` pinhole intrinsics: principal point at the image centre, square pixels, no distortion.

    ``focal_px`` defaults to the image width (a 53-degree horizontal field of view) for an uncalibrated
    camera; for a known horizontal field of view ``fov``, ``focal_px = width / 2 / tan(fov / 2)``.
    """
    w, h = float(image_wh[0]), float(image_wh[1])
    f = w if focal_px is None else float(focal_px)
    return np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]])


def euler_from_matrix(rot: np.ndarray) -> np.ndarray:
    """``(N, 3, 3)`` head rotations (camera axes) -> ``(N, 3)`` yaw, pitch, roll degrees (see module doc)."""
    rot = np.asarray(rot, np.float64)
    yaw = -np.arctan2(rot[:, 0, 2], rot[:, 2, 2])
    pitch = np.arcsin(np.clip(rot[:, 1, 2], -1, 1))
    roll = np.arctan2(rot[:, 1, 0], rot[:, 1, 1])
    return np.degrees(np.stack([yaw, pitch, roll], 1))


def matrix_from_euler(ypr: np.ndarray) -> np.ndarray:
    """``(N, 3)`` yaw, pitch, roll degrees -> ``(N, 3, 3)`` rotations ``Ry(-yaw) @ Rx(-pitch) @ Rz(roll)``."""
    a, b, g = np.radians(np.asarray(ypr, np.float64).reshape(-1, 3)).T
    a, b = -a, -b
    one, zero = np.ones_like(a), np.zeros_like(a)
    ry = np.stack([np.cos(a), zero, np.sin(a), zero, one, zero, -np.sin(a), zero, np.cos(a)], 1)
    rx = np.stack([one, zero, zero, zero, np.cos(b), -np.sin(b), zero, np.sin(b), np.cos(b)], 1)
    rz = np.stack([np.cos(g), -np.sin(g), zero, np.sin(g), np.cos(g), zero, zero, zero, one], 1)
    return ry.reshape(-1, 3, 3) @ rx.reshape(-1, 3, 3) @ rz.reshape(-1, 3, 3)


def _towards(v: np.ndarray) -> np.ndarray:
    """``(N, 3)`` unit vectors -> ``(N, 3, 3)`` smallest rotations taking the optical axis to them."""
    c = v[:, 2]
    k = np.zeros((len(v), 3, 3))  # cross-product matrix of (0, 0, 1) x v = (-vy, vx, 0)
    k[:, 0, 2], k[:, 1, 2] = v[:, 0], v[:, 1]
    k[:, 2, 0], k[:, 2, 1] = -v[:, 0], -v[:, 1]
    return np.eye(3) + k + (k @ k) / (1 + c)[:, None, None]


def head_pose(
    lm68: np.ndarray,
    image_wh: tuple[int, int],
    relative_to: str = "line_of_sight",
    focal_px: float | None = None,
) -> np.ndarray:
    """Head yaw, pitch and roll from 68-point landmarks, by fitting a generic 3D head (``cv2.solvePnP``).

    Args:
        lm68: ``(N, 68, 2)`` (x, y) pixels of the frame (``LandmarkPredictor`` order).
        image_wh: ``(width, height)`` of that frame in pixels; sets the assumed camera (``camera_matrix``).
        relative_to: ``"line_of_sight"``: zero when the face looks straight at the camera, wherever it is in
            the frame (what "looking to the front" means when the camera is at the front);
            ``"camera_axes"``: zero when the face is parallel to the image plane.
        focal_px: focal length in pixels (``camera_matrix``); default the image width.

    Returns:
        ``(N, 3) float32`` yaw, pitch, roll in degrees, signs as in the module docstring; a NaN row where a
        landmark used is NaN or the fit fails. Exact on noise-free projections of the model and within a
        few degrees with 1 px of landmark noise (tests); on real faces the error also includes the generic
        head's mismatch and the guessed focal length, and is not measured in this repository.
    """
    return _fit_pose(_lm68(lm68)[:, MODEL_INDEX], MODEL_3D, image_wh, relative_to, focal_px)


def head_pose5(
    points5: np.ndarray,
    image_wh: tuple[int, int],
    relative_to: str = "line_of_sight",
    focal_px: float | None = None,
) -> np.ndarray:
    """Head yaw, pitch and roll from MTCNN's five points (``Detections.landmarks``), fitting
    ``MODEL5_3D`` (EPnP start, Levenberg-Marquardt refinement): for faces too small for the
    68-point model, where it costs nothing extra. Same conventions and return as :func:`head_pose`;
    five points constrain the pose less than fourteen (its agreement: docs/VALIDITY.md)."""
    pts = np.asarray(points5, np.float64)
    if pts.ndim != 3 or pts.shape[1:] != (5, 2):
        raise ValueError(f"points5 must be (N, 5, 2), got {pts.shape}")
    return _fit_pose(pts, MODEL5_3D, image_wh, relative_to, focal_px, epnp=True)


def _fit_pose(
    pts: np.ndarray,
    model: np.ndarray,
    image_wh: tuple[int, int],
    relative_to: str,
    focal_px: float | None,
    epnp: bool = False,
) -> np.ndarray:
    """``(N, K, 2)`` image points of the ``(K, 3)`` model points -> ``(N, 3)`` yaw, pitch, roll."""
    if relative_to not in ("line_of_sight", "camera_axes"):
        raise ValueError(f"relative_to must be 'line_of_sight' or 'camera_axes', got {relative_to!r}")
    cam = camera_matrix(image_wh, focal_px)
    rot = np.full((len(pts), 3, 3), np.nan)
    pos = np.full((len(pts), 3), np.nan)
    model_span = np.ptp(model[:, :2], axis=0).max()
    for i in np.flatnonzero(np.isfinite(pts).all((1, 2))):
        img = np.ascontiguousarray(pts[i])  # solvePnP rejects strided views
        span = np.ptp(img, axis=0).max()
        if span < 1:
            continue
        # Start from a face parallel to the image at the distance its size implies, so that the
        # Levenberg-Marquardt fit converges to the head in front of the camera, not a mirrored one.
        z = cam[0, 0] * model_span / span
        rvec0, t0 = np.zeros(3), np.array([*((img.mean(0) - cam[:2, 2]) * z / cam[0, 0]), z]) - model.mean(0)
        if epnp:  # few points: EPnP's closed form is the better start when the head is turned
            ok, r, t = cv2.solvePnP(model, img, cam, None, flags=cv2.SOLVEPNP_EPNP)
            if ok and float(np.asarray(t).reshape(3)[2]) > 0:
                rvec0, t0 = np.asarray(r, np.float64).reshape(3), np.asarray(t, np.float64).reshape(3)
        ok, rvec, tvec = cv2.solvePnP(
            model, img, cam, None, rvec0, t0, useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE
        )
        tvec = np.asarray(tvec, np.float64).reshape(3)
        if ok and tvec[2] > 0:
            rot[i] = cv2.Rodrigues(np.asarray(rvec, np.float64).reshape(3))[0]
            pos[i] = rot[i] @ model.mean(0) + tvec
    if relative_to == "line_of_sight":
        with np.errstate(invalid="ignore"):
            sight = pos / np.linalg.norm(pos, axis=1, keepdims=True)  # camera -> face
            rot = np.swapaxes(_towards(sight), 1, 2) @ rot
    return euler_from_matrix(rot).astype(np.float32)


def eye_aspect_ratio(lm68: np.ndarray) -> np.ndarray:
    """Eye aspect ratio of each eye (Soukupova & Cech 2016): ``(|p2-p6| + |p3-p5|) / (2 |p1-p4|)``.

    Args:
        lm68: ``(N, 68, 2)`` pixels.

    Returns:
        ``(N, 2) float32``: column 0 the image-left eye (points 36-41), column 1 the image-right eye (42-47).
        Independent of face size and in-plane rotation; near 0 for closed eyes, roughly 0.25-0.3 for open
        ones, lower for smiling or squinting eyes and small faces (docs/ATTENTION.md). NaN stays NaN.
    """
    lm = _lm68(lm68)
    p = np.stack([lm[:, idx] for idx in EYES], 1)  # (N, 2, 6, 2)
    d = lambda i, j: np.linalg.norm(p[:, :, i] - p[:, :, j], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((d(1, 5) + d(2, 4)) / (2 * d(0, 3))).astype(np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(x / 2))  # = 1 / (1 + exp(-x)), without overflow warnings


def _mean_ear(ear: np.ndarray) -> np.ndarray:
    ear = np.asarray(ear, np.float64)
    return ear.mean(-1) if ear.ndim == 2 else ear


def attention_score(
    yaw: np.ndarray, pitch: np.ndarray, ear: np.ndarray, cfg: AttentionConfig = AttentionConfig()
) -> np.ndarray:
    """Attention score: the weakest of smooth factors for head not turned away, not tilted away, eyes open.

    ``score = min(s((max_abs_yaw - |yaw|) / soft_deg), s((pitch_max - pitch) / soft_deg),
    s((pitch - pitch_min) / soft_deg), s((ear - ear_closed) / soft_ear))`` with ``s`` the logistic
    function. Each factor is 0.5 exactly at its limit, so ``score >= 0.5`` (``ATTENTIVE_SCORE``) holds
    exactly when all conditions hold; the score never increases as the head turns further away.

    Args:
        yaw, pitch: ``(N,)`` degrees (``head_pose`` columns 0 and 1).
        ear: ``(N,)`` eye aspect ratio, or ``(N, 2)`` per eye (averaged, as in Soukupova & Cech).
        cfg: thresholds.

    Returns:
        ``(N,) float32`` in [0, 1]; NaN where any input is NaN (no landmarks: unmeasured, not "inattentive").
    """
    yaw = np.asarray(yaw, np.float64)
    pitch = np.asarray(pitch, np.float64)
    ear = _mean_ear(ear)
    factors = [
        _sigmoid((cfg.max_abs_yaw - np.abs(yaw)) / cfg.soft_deg),
        _sigmoid((cfg.pitch_max - pitch) / cfg.soft_deg),
        _sigmoid((pitch - cfg.pitch_min) / cfg.soft_deg),
        _sigmoid((ear - cfg.ear_closed) / cfg.soft_ear),
    ]
    return np.minimum.reduce(np.broadcast_arrays(*factors)).astype(np.float32)  # np.minimum keeps NaN


def attentive(
    yaw: np.ndarray, pitch: np.ndarray, ear: np.ndarray, cfg: AttentionConfig = AttentionConfig()
) -> np.ndarray:
    """``(N,) bool``: ``|yaw| <= max_abs_yaw``, ``pitch_min <= pitch <= pitch_max`` and eyes open
    (mean EAR >= ``ear_closed``), i.e. ``attention_score >= 0.5``. False where unmeasurable (NaN); use
    ``presence_states`` to tell that apart from inattentive."""
    with np.errstate(invalid="ignore"):
        return attention_score(yaw, pitch, ear, cfg) >= ATTENTIVE_SCORE


def presence_states(visible: np.ndarray, score: np.ndarray) -> np.ndarray:
    """State of each known student in one sampled frame (or each row of a student x frame table).

    Args:
        visible: ``(N,) bool``: the student's face was detected (and identified) in the frame.
        score: ``(N,)`` ``attention_score`` (ignored where not visible; NaN = no usable landmarks).

    Returns:
        ``(N,)`` str array of ``NOT_VISIBLE`` (not detected: *not* counted as inattentive; reports leave
        it out of attention rates and report it as presence), ``VISIBLE_UNMEASURED`` (detected, attention
        unknown), ``VISIBLE_ATTENTIVE`` or ``VISIBLE_INATTENTIVE``.
    """
    visible = np.asarray(visible, bool)
    score = np.broadcast_to(np.asarray(score, np.float64), visible.shape)
    with np.errstate(invalid="ignore"):
        state = np.where(score >= ATTENTIVE_SCORE, VISIBLE_ATTENTIVE, VISIBLE_INATTENTIVE)
    state = np.where(np.isnan(score), VISIBLE_UNMEASURED, state)
    return np.where(visible, state, NOT_VISIBLE).astype(f"<U{max(map(len, STATES))}")


def perclos(
    ear: np.ndarray, pts_s: np.ndarray, window_s: float = 60.0, ear_closed: float = 0.2
) -> np.ndarray:
    """PERCLOS: the fraction of the trailing window in which the eyes were closed, at every sample.

    Each sample ``i`` gets ``closed / measured`` over the samples at times ``t`` with
    ``pts_s[i] - window_s < t <= pts_s[i]``, where measured = samples with a finite EAR (NaN: face not
    visible or no landmarks, left out) and closed = measured samples with EAR < ``ear_closed``. Samples
    count equally, so with regular sampling this is the proportion of time; at sparse sampling (e.g.
    1 fps) it is an estimate of it.

    Args:
        ear: ``(T,)`` eye aspect ratio or ``(T, 2)`` per eye (averaged) of one student, in time order.
        pts_s: ``(T,)`` seconds from the start of the stream, non-decreasing.
        window_s: window length in seconds (``AttentionConfig.perclos_window_s``).
        ear_closed: closed-eye threshold (``AttentionConfig.ear_closed``).

    Returns:
        ``(T,) float32`` in [0, 1]; NaN where the window holds no measured sample. Early samples use the
        shorter window available so far.
    """
    ear = _mean_ear(ear)
    pts = np.asarray(pts_s, np.float64)
    if ear.ndim != 1 or pts.shape != ear.shape:
        raise ValueError(f"ear (T,) or (T,2) and pts_s (T,) must match, got {ear.shape} and {pts.shape}")
    if np.any(np.diff(pts) < 0) or not np.isfinite(pts).all():
        raise ValueError("pts_s must be finite and non-decreasing")
    measured = np.isfinite(ear)
    with np.errstate(invalid="ignore"):
        closed = measured & (ear < ear_closed)
    cum_m = np.concatenate([[0], np.cumsum(measured)])
    cum_c = np.concatenate([[0], np.cumsum(closed)])
    start = np.searchsorted(pts, pts - window_s, side="right")  # first sample inside (t - window, t]
    end = np.arange(1, len(pts) + 1)
    n_m, n_c = cum_m[end] - cum_m[start], cum_c[end] - cum_c[start]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_m > 0, n_c / n_m, np.nan).astype(np.float32)


def drowsy(perclos_values: np.ndarray, cfg: AttentionConfig = AttentionConfig()) -> np.ndarray:
    """``(T,) bool``: PERCLOS at or above ``cfg.perclos_drowsy`` (False where NaN)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(perclos_values, np.float64) >= cfg.perclos_drowsy


def signals(
    lm68: np.ndarray,
    image_wh: tuple[int, int],
    cfg: AttentionConfig = AttentionConfig(),
    focal_px: float | None = None,
    pose_readable: np.ndarray | None = None,
    eyes_readable: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """All per-face signals of one frame, as parallel ``(N,)`` arrays ready for a record.

    ``head_pose`` (line of sight, ``focal_px`` as there), ``eye_aspect_ratio`` averaged over both eyes,
    ``attention_score`` and the ``attentive`` flag.

    ``pose_readable``, ``eyes_readable``: ``(N,) bool`` from ``fer_stream.validity.readable`` (face
    size gates; default all readable). Where the pose is not readable, yaw/pitch/roll, EAR and the
    score are NaN (unmeasured, never inattentive). Where only the eyes are not (a face too small
    for the eye contour), EAR is NaN and the score rests on head pose alone: the eyes-open factor
    is left out rather than guessed.

    Returns:
        ``yaw``, ``pitch``, ``roll`` (float32 degrees), ``ear`` (float32 mean of both eyes), ``score``
        (float32 in [0, 1] or NaN) and ``attentive`` (bool).
    """
    n = len(lm68)
    pose_ok = np.ones(n, bool) if pose_readable is None else np.asarray(pose_readable, bool)
    eyes_ok = pose_ok & (np.ones(n, bool) if eyes_readable is None else np.asarray(eyes_readable, bool))
    pose = head_pose(lm68, image_wh, focal_px=focal_px)
    pose[~pose_ok] = np.nan
    ear = eye_aspect_ratio(lm68).mean(1).astype(np.float32)
    ear[~eyes_ok] = np.nan
    # +inf makes the eyes-open factor 1 (the minimum ignores it) where the eyes are not read but the
    # pose is; a NaN EAR from failed landmarks on a readable face still makes the score NaN.
    ear_for_score = np.where(pose_ok & ~eyes_ok, np.inf, ear)
    score = attention_score(pose[:, 0], pose[:, 1], ear_for_score, cfg)
    with np.errstate(invalid="ignore"):
        flag = score >= ATTENTIVE_SCORE
    return {
        "yaw": pose[:, 0],
        "pitch": pose[:, 1],
        "roll": pose[:, 2],
        "ear": ear,
        "score": score,
        "attentive": flag,
    }
