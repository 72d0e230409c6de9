"""Pictures are not people: tracks whose face never moves the way a living face does (issue 22).

A face on a poster, a photo on the wall or a frozen frame on a screen is found, tracked and
classified like a student's. What gives it away is that nothing about it changes except by noise.
Two kinds of evidence are collected per track, each sampled frame::

    MotionMeter.update(track_id, pts_s, xyxy, crops)  ->  summary(): TrackMotion  ->  static_tracks()

* **appearance change**: a picture is flat and rigid, so its aligned crops differ only by the
  alignment (the crop's rotation, scale and position follow the detector's landmarks, which on a
  picture flip between a few fits as full detections and refinements alternate), compression noise
  (renewed at every keyframe) and the room's brightness. A living face, however still, turns a
  little (the nose moves against the cheeks), blinks, breathes, changes its expression: changes no
  rotation, scale or shift can undo. Each crop is blurred (``BLUR_SIGMA``: drops the finest
  compression grain), its face window normalised to zero mean and unit deviation (brightness and
  contrast do not count), registered onto the mean of the track's earlier windows by the rotation,
  scale and shift that match best (:func:`appearance_change`: the alignment does not count), and
  the mean absolute difference that remains is its change. The registered window then joins the
  mean (a mean, so one odd crop cannot spoil the reference). A histogram of the changes is kept.
* **centre spread**: the standard deviation of the box centre over the track, in mean face widths.
  A picture's box only jitters with the detector's noise; a seated person sways and leans.

A track is static when it has enough evidence (``min_samples`` over ``min_seconds``) and both are
at picture level: the ``change_quantile`` of its appearance changes is at most ``max_change`` and its
centre spread at most ``max_centre_spread``. Other evidence was measured and left out because it
does not tell a still person from a picture (landmark shape jitter, box size jitter): see
docs/VALIDITY.md, "Static faces", and ``bench/static_faces.py``, which measured every threshold.

Per-track state is constant in size (running sums, the mean face window, a 122-bin histogram),
so memory does not grow with a track's length. A segment's evidence is a :class:`TrackMotion` of
parallel arrays; the segments of one video concatenate (:meth:`TrackMotion.concat`) like
``TrackSummary``: tracks never span segments, so each track is judged on its own segment's
evidence, and a poster seen in six segments is six static tracks. Pure numpy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SHIFT_PX = 2  # whole-pixel shifts of a crop searched first, each way
# Gauss-Newton steps registering a crop onto the track's mean face (rotation, scale, shift): the
# detector's landmarks on a picture flip between a few fits (full detection vs refinement), which
# rotate a crop by up to ~9 degrees and scale it by ~8 %; 8 steps bring those to noise level.
REGISTER_STEPS = 8
BLUR_SIGMA = 1.0  # Gaussian blur of the crops, pixels of the 48 px crop: the finest compression grain
# Per-sample appearance changes are counted in bins between these edges: log-spaced from 0.01 to 3
# (about 5 % per bin); values outside fall in the first or last bin. A quantile read from the
# histogram is the upper edge of its bin: at most 5 % high, so towards "not static".
CHANGE_EDGES = np.geomspace(0.01, 3.0, 121)
N_BINS = len(CHANGE_EDGES) + 1
# A track's mean face window is dropped after this many seconds unseen (the tracker never revives a
# track after ``TrackerConfig.max_age_s``, 10 s by default); its evidence stays.
FORGET_AFTER_S = 60.0


@dataclass(frozen=True)
class StillnessConfig:
    """When a track counts as a picture. Every value is measured by ``bench/static_faces.py`` on real
    clips with pictures composited in (``bench/results/static_faces.json``, docs/VALIDITY.md).

    Attributes:
        min_samples: fewer sampled faces than this and the track is undecided (not static). Tracks
            cut to their first k samples and judged: k = 4 made 46 of 2,867 real people's tracks
            static, 6 made 2 of 1,944, 8 made 3 of 1,454, 10 none of 930. 8 samples span two full
            cycles of the pipeline's keyframe detection (one full detection in 4 sampled frames at
            the defaults), so a picture's alternating alignments have each been seen twice.
        min_seconds: first to last sample at least this long, else undecided: 8 samples at the
            pipeline's 2 fps span 3.5 s, the shortest span measured. At a higher sampling rate 8
            samples cover less time than a still person needs to show a change.
        change_quantile: which quantile of a track's per-sample appearance changes is compared: the
            75th, so a few blinks or turns need not be caught, but a quarter of the samples must
            differ from the mean face by more than a picture's noise.
        max_change: static only at or below this change (face-contrast units). Measured on whole
            tracks of faces at least 20 px wide: pictures at most 0.21,
            the stillest real people whose box barely moved from 0.242 up (a man 39 px wide in CRF
            35 video with camera noise); 0.22 lies between, about 5 % from each. Exceptions, all in
            docs/VALIDITY.md: a poster with faces cut by its edge while the scene behind changes
            (0.25, 0.34), one 31 px classroom student in CRF 35 with camera noise (0.11, 0.16).
            Under 20 px the two overlap (pictures up to 0.41, people from 0.18).
        max_centre_spread: static only at or below this centre spread (face widths). Pictures of
            20 px and more measured at most 0.059 (the detector's box flips between a few fits on a
            picture, as its landmarks do); 0.065 keeps 10 % above. Real people whose appearance
            changed least are mostly far above (0.18-0.33); a still person's box spreads 0.04 and
            less, which is why appearance decides for them.
    """

    min_samples: int = 8
    min_seconds: float = 3.5
    change_quantile: float = 0.75
    max_change: float = 0.22
    max_centre_spread: float = 0.065

    def __post_init__(self):
        if self.min_samples < 2 or not self.min_seconds >= 0:
            raise ValueError("need min_samples >= 2 and min_seconds >= 0")
        if not 0.0 < self.change_quantile <= 1.0:
            raise ValueError(f"change_quantile must be in (0, 1], got {self.change_quantile}")
        if not self.max_change >= 0 or not self.max_centre_spread >= 0:
            raise ValueError("max_change and max_centre_spread must be >= 0")


@dataclass(frozen=True)
class TrackMotion:
    """Motion evidence of T tracks, as parallel arrays (one segment's, or several concatenated).

    Attributes:
        track_id: ``(T,) int64`` unique track ids.
        samples: ``(T,) int64`` sampled faces of the track (>= 1).
        first_pts_s, last_pts_s: ``(T,) float64`` seconds of its first and last sample.
        mean_width: ``(T,) float32`` mean box width, pixels.
        centre_spread: ``(T,) float32`` standard deviation of the box centre (root of the summed x
            and y variances) over the track, in mean box widths.
        change_hist: ``(T, N_BINS) int32`` counts of the per-sample appearance changes (all samples
            but the first) in the bins of :data:`CHANGE_EDGES`.
    """

    track_id: np.ndarray
    samples: np.ndarray
    first_pts_s: np.ndarray
    last_pts_s: np.ndarray
    mean_width: np.ndarray
    centre_spread: np.ndarray
    change_hist: np.ndarray

    def __post_init__(self):
        tid = np.asarray(self.track_id, np.int64).reshape(-1)
        n = len(tid)
        cols = {
            "track_id": tid,
            "samples": np.asarray(self.samples, np.int64).reshape(n),
            "first_pts_s": np.asarray(self.first_pts_s, np.float64).reshape(n),
            "last_pts_s": np.asarray(self.last_pts_s, np.float64).reshape(n),
            "mean_width": np.asarray(self.mean_width, np.float32).reshape(n),
            "centre_spread": np.asarray(self.centre_spread, np.float32).reshape(n),
            "change_hist": np.asarray(self.change_hist, np.int32).reshape(n, N_BINS),
        }
        if len(np.unique(tid)) != n:
            raise ValueError("track ids must be unique (segments have disjoint id ranges)")
        if np.any(cols["samples"] < 1) or np.any(cols["last_pts_s"] < cols["first_pts_s"]):
            raise ValueError("need samples >= 1 and last_pts_s >= first_pts_s")
        for name, value in cols.items():
            object.__setattr__(self, name, value)

    @classmethod
    def empty(cls) -> TrackMotion:
        z = np.zeros(0)
        return cls(z, z, z, z, z, z, np.zeros((0, N_BINS), np.int32))

    @classmethod
    def concat(cls, parts: Sequence[TrackMotion]) -> TrackMotion:
        """The union of several summaries (the segments of one video). ``ValueError`` on a shared id."""
        if not parts:
            return cls.empty()
        names = [f.name for f in dataclasses.fields(cls)]
        return cls(**{f: np.concatenate([getattr(p, f) for p in parts]) for f in names})

    def __len__(self) -> int:
        return len(self.track_id)

    def change(self, q: float) -> np.ndarray:
        """``(T,) float32`` the ``q`` quantile of each track's appearance changes (the upper edge of
        the histogram bin it falls in); NaN for a track with a single sample."""
        counts = self.change_hist.astype(np.int64)
        total = counts.sum(1)
        cum = np.cumsum(counts, 1)
        k = np.argmax(cum >= np.ceil(q * total)[:, None], axis=1)  # first bin reaching the quantile
        upper = np.append(CHANGE_EDGES, np.inf).astype(np.float32)[k]
        return np.where(total > 0, upper, np.nan).astype(np.float32)


def static_tracks(motion: TrackMotion, config: StillnessConfig = StillnessConfig()) -> np.ndarray:
    """Track ids judged static (a picture, not a person): ``(K,) int64``, in ``motion``'s order.

    Static = enough evidence (``samples >= min_samples`` and ``last - first >= min_seconds``) and
    nothing moved beyond a picture's noise: appearance change (its ``change_quantile``) at most
    ``max_change`` and centre spread at most ``max_centre_spread``.

    A track with less evidence is undecided and not returned: flagging a real student static hides
    all their rows from every report, while an undecided picture track is short and is still
    filtered by what every student must have anyway (``StudentConfig.min_track_hits``).
    """
    enough = (motion.samples >= config.min_samples) & (
        motion.last_pts_s - motion.first_pts_s >= config.min_seconds
    )
    with np.errstate(invalid="ignore"):
        still = (motion.change(config.change_quantile) <= config.max_change) & (
            motion.centre_spread <= config.max_centre_spread
        )
    return motion.track_id[enough & still]


class MotionMeter:
    """Collects :class:`TrackMotion` evidence over the sampled frames of one stream (or segment).

    Call :meth:`update` once per sampled frame, in stream order, with the frame's tracked faces;
    :meth:`summary` at any time. State per track: counts and running sums (box centre and width,
    relative to the track's first box), the running sum of its blurred crops, the change histogram.
    """

    def __init__(self):
        self._row: dict[int, int] = {}  # track id -> row in the arrays below
        self._ids: list[int] = []
        self._n = np.zeros(0, np.int64)
        self._t = np.zeros((0, 2))  # first, last pts_s
        self._box = np.zeros((0, 5))  # sums of w, dx, dy, dx^2, dy^2 (dx, dy: centre - first centre)
        self._origin = np.zeros((0, 2))  # first box centre
        self._hist = np.zeros((0, N_BINS), np.int32)
        # track id -> (sum of its registered normalised face windows (h, w), how many): its mean face
        self._face_sum: dict[int, tuple[np.ndarray, int]] = {}

    def update(
        self,
        track_id: np.ndarray,
        pts_s: float,
        xyxy: np.ndarray,
        crops: np.ndarray,
        landmarks: np.ndarray | None = None,
    ) -> None:
        """Add one sampled frame's faces.

        Args:
            track_id: ``(N,) int`` the faces' track ids (N may be 0).
            pts_s: seconds from the start of the stream.
            xyxy: ``(N, 4)`` boxes, pixels.
            crops: ``(N, S, S) uint8`` aligned gray faces (``FrameFaces.crops``; S >= 24).
            landmarks: ``(N, 5, 2)`` detector points or None. Accepted for callers that have them;
                not used: their jitter was measured and does not tell a still person from a picture.
        """
        tid = np.asarray(track_id, np.int64).reshape(-1)
        n = len(tid)
        box = np.asarray(xyxy, np.float64).reshape(n, 4)
        crops = np.asarray(crops)
        if crops.shape[:1] != (n,) or (n and (crops.ndim != 3 or crops.shape[1] != crops.shape[2])):
            raise ValueError(f"crops must be ({n}, S, S), got {crops.shape}")
        if landmarks is not None and np.asarray(landmarks).shape != (n, 5, 2):
            raise ValueError(f"landmarks must be ({n}, 5, 2), got {np.asarray(landmarks).shape}")
        if len(np.unique(tid)) != n:
            raise ValueError("a track appears twice in one frame")
        self._forget(pts_s)
        if n == 0:
            return
        if crops.shape[1] < 24:
            raise ValueError(f"crops must be at least 24 px, got {crops.shape[1]}")
        rows = np.array([self._row_of(int(t), pts_s, b) for t, b in zip(tid, box)])
        blurred = _blur(crops.astype(np.float64), BLUR_SIGMA)
        # appearance change against the mean of the track's earlier (registered) faces
        seen = np.array([t in self._face_sum for t in tid.tolist()])
        windows = face_window(blurred)
        if seen.any():
            mean = _normalise(np.stack([s / k for s, k in (self._face_sum[t] for t in tid[seen].tolist())]))
            change, windows[seen] = appearance_change(mean, blurred[seen])
            np.add.at(self._hist, (rows[seen], np.searchsorted(CHANGE_EDGES, change)), 1)
        for t, w in zip(tid.tolist(), windows):
            s, k = self._face_sum.get(t, (0.0, 0))
            self._face_sum[t] = (s + w, k + 1)
        w = box[:, 2] - box[:, 0]
        d = (box[:, :2] + box[:, 2:]) / 2 - self._origin[rows]
        self._box[rows] += np.column_stack([w, d, d**2])
        self._n[rows] += 1
        self._t[rows, 1] = pts_s

    def _row_of(self, t: int, pts_s: float, box: np.ndarray) -> int:
        if t not in self._row:
            k = self._row[t] = len(self._ids)
            self._ids.append(t)
            if k == len(self._n):  # full: double every array (amortised constant time per track)
                grow = max(16, k)
                self._n = np.concatenate([self._n, np.zeros(grow, np.int64)])
                self._t = np.concatenate([self._t, np.zeros((grow, 2))])
                self._box = np.concatenate([self._box, np.zeros((grow, 5))])
                self._origin = np.concatenate([self._origin, np.zeros((grow, 2))])
                self._hist = np.concatenate([self._hist, np.zeros((grow, N_BINS), np.int32)])
            self._t[k] = pts_s
            self._origin[k] = (box[:2] + box[2:]) / 2
        return self._row[t]

    def _forget(self, pts_s: float) -> None:
        """Drop the mean crops of tracks unseen for :data:`FORGET_AFTER_S` (memory stays flat)."""
        for t in [t for t in self._face_sum if pts_s - self._t[self._row[t], 1] > FORGET_AFTER_S]:
            del self._face_sum[t]

    def summary(self) -> TrackMotion:
        """The evidence of every track seen so far."""
        t = len(self._ids)
        if not t:
            return TrackMotion.empty()
        count = self._n[:t].astype(np.float64)
        box = self._box[:t]
        mean_w = box[:, 0] / count
        var = box[:, 3:5] / count[:, None] - (box[:, 1:3] / count[:, None]) ** 2
        spread = np.sqrt(np.maximum(var, 0).sum(1)) / np.maximum(mean_w, 1e-9)
        return TrackMotion(
            track_id=np.array(self._ids, np.int64),
            samples=self._n[:t].copy(),
            first_pts_s=self._t[:t, 0].copy(),
            last_pts_s=self._t[:t, 1].copy(),
            mean_width=mean_w,
            centre_spread=spread,
            change_hist=self._hist[:t].copy(),
        )


def _blur(crops: np.ndarray, sigma: float) -> np.ndarray:
    """``(N, S, S)`` float -> the same, Gaussian-blurred (separable, edges replicated)."""
    r = max(1, int(round(3 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    p = np.pad(crops, ((0, 0), (r, r), (r, r)), mode="edge")
    s = crops.shape[1]
    rows = sum(k[i] * p[:, i : i + s, :] for i in range(2 * r + 1))
    return sum(k[i] * rows[:, :, i : i + s] for i in range(2 * r + 1))


def _window(size: int) -> tuple[slice, slice]:
    """The face inside an aligned crop (``fer_stream.faces.align``'s FER2013 framing): brows to chin,
    cheek to cheek, with ``SHIFT_PX`` to spare at every edge."""
    return slice(round(size * 0.17), round(size * 0.92)), slice(round(size * 0.17), round(size * 0.83))


def _normalise(a: np.ndarray) -> np.ndarray:
    """Zero mean, unit deviation per image ``(N, h, w)``: brightness and contrast do not count."""
    a = a - a.mean((1, 2), keepdims=True)
    return a / np.maximum(a.std((1, 2), keepdims=True), 1e-3)


def face_window(crops: np.ndarray) -> np.ndarray:
    """``(N, S, S)`` blurred crops -> ``(N, h, w)`` their normalised face windows (a reference)."""
    ys, xs = _window(crops.shape[1])
    return _normalise(crops[:, ys, xs])


def _bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``img (N, C, S, S)`` sampled at ``x, y (N, h, w)`` (pixels; clamped to the image): ``(N, C, h, w)``."""
    s = img.shape[-1]
    x, y = np.clip(x, 0, s - 1.001), np.clip(y, 0, s - 1.001)
    x0, y0 = np.floor(x).astype(np.intp), np.floor(y).astype(np.intp)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    flat = img.reshape(len(img), img.shape[1], s * s)
    at = (y0 * s + x0).reshape(len(img), 1, -1)  # the top-left neighbour of every sample

    def take(offset: int) -> np.ndarray:
        idx = np.broadcast_to(at + offset, (len(img), img.shape[1], at.shape[-1]))
        return np.take_along_axis(flat, idx, 2).reshape(len(img), img.shape[1], *x.shape[1:])

    top = (1 - fx) * take(0) + fx * take(1)
    return (1 - fy) * top + fy * ((1 - fx) * take(s) + fx * take(s + 1))


def appearance_change(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How much ``cur`` differs from ``ref`` once the alignment's differences are undone.

    A crop of a flat, rigid picture differs from another crop of it only by the similarity transform
    (rotation, scale, shift) that its landmarks put into the alignment, and by noise. So ``cur`` is
    registered onto ``ref``: the best whole-pixel shift up to ``SHIFT_PX`` first, then
    ``REGISTER_STEPS`` Gauss-Newton steps on rotation, scale and shift (rotation up to ~11 degrees,
    scale 15 %); what still differs is what a flat picture cannot do.

    Args:
        ref: ``(N, h, w)`` normalised face windows (:func:`face_window`, or a mean of registered ones).
        cur: ``(N, S, S)`` blurred crops.

    Returns:
        ``(N,) float32`` mean absolute difference of the normalised windows (face-contrast units;
        0: the same picture), and ``(N, h, w)`` ``cur``'s normalised window registered onto ``ref``.
    """
    n, s = len(cur), cur.shape[1]
    ys, xs = _window(s)
    yy, xx = np.mgrid[ys, xs].astype(np.float64)
    u, v = xx - (s - 1) / 2, yy - (s - 1) / 2  # window pixels about the crop centre
    p = np.zeros((n, 4))  # scale - 1, rotation (~radians), shift x, shift y
    best = np.full(n, np.inf)
    for dy in range(-SHIFT_PX, SHIFT_PX + 1):
        for dx in range(-SHIFT_PX, SHIFT_PX + 1):
            d = np.abs(ref - _normalise(cur[:, ys.start + dy : ys.stop + dy, xs.start + dx : xs.stop + dx]))
            d = d.mean((1, 2))
            p[d < best, 2:] = dx, dy
            best = np.minimum(d, best)
    gy, gx = np.gradient(cur, axis=(1, 2))
    stack = np.stack([cur, gx, gy], 1)  # sampled together: one set of indices per step

    def sample(p: np.ndarray, grid: tuple, channels: slice = slice(None)) -> np.ndarray:
        x, y, du, dv = grid
        a, b, tx, ty = (p[:, k, None, None] for k in range(4))
        return _bilinear(stack[:, channels], x + a * du - b * dv + tx, y + b * du + a * dv + ty)

    # Gauss-Newton on the normalised difference, on every other pixel (4 unknowns need few; 4x faster)
    half = tuple(g[::2, ::2] for g in (xx, yy, u, v))
    hu, hv, ref_half = half[2], half[3], ref[:, ::2, ::2]
    for _ in range(REGISTER_STEPS):
        w, ix, iy = sample(p, half).transpose(1, 0, 2, 3)
        sd = np.maximum(w.std((1, 2), keepdims=True), 1e-3)
        r = (w - w.mean((1, 2), keepdims=True)) / sd - ref_half
        ix, iy = ix / sd, iy / sd
        jac = np.stack([ix * hu + iy * hv, iy * hu - ix * hv, ix, iy], 1).reshape(n, 4, -1)
        hess = jac @ jac.transpose(0, 2, 1) + 1e-6 * np.eye(4)
        p -= np.linalg.solve(hess, jac @ r.reshape(n, -1, 1))[..., 0]
        p = np.clip(p, [-0.15, -0.2, -4, -4], [0.15, 0.2, 4, 4])  # a similar face, not any face
    registered = _normalise(sample(p, (xx, yy, u, v), slice(0, 1))[:, 0])
    return np.abs(registered - ref).mean((1, 2)).astype(np.float32), registered
