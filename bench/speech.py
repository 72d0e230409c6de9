"""Speech tracks with known labels, for bench/vad.py, bench/pipeline.py and the audio tests.

Real speech comes from Debian's ``espeak-ng`` (``apt-get install -y espeak-ng``), a formant
synthesiser: every utterance's span is known, so the labels are exact where hand labels would be
ears. Between utterances go the sounds a classroom has that are not speech: silence, room noise,
music (chords with a beat), clapping and chair scrapes (noise bursts).

    samples, labels = speech_track(120.0, seed=0)      # 16 kHz mono float32, [(start_s, end_s)]
    add_audio(video, samples, out)                     # the video with that track (AAC)
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

RATE = 16_000
SENTENCES = (
    "Good morning everyone, today we look at gradient descent.",
    "Please open your notebooks at page forty two.",
    "Who can tell me what the derivative of x squared is?",
    "Right, the slope of the loss tells us which way to step.",
    "Let us take five minutes to try the exercise in pairs.",
    "If the learning rate is too large, the steps overshoot the minimum.",
    "Remember that the homework is due on Friday.",
    "So what happens when the data are not linearly separable?",
)
VOICES = ("en", "en-us", "en+f3", "en-gb-scotland", "en+m3", "en-us+f2")
# What fills the gaps between utterances: non-speech sounds a lecture room has.
GAPS = ("silence", "room", "music", "claps", "scrape")


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def espeak(text: str, voice: str = "en", speed: int = 160) -> np.ndarray:
    """``text`` spoken by espeak-ng: ``(n,) float32`` at 16 kHz, leading/trailing silence trimmed."""
    with tempfile.TemporaryDirectory() as d:
        wav = Path(d) / "s.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), text], check=True)
        x = read_audio(wav)
    loud = np.flatnonzero(np.abs(x) > 0.01)
    return x[loud[0] : loud[-1] + 1] if len(loud) else x[:0]


def read_audio(path: str | Path) -> np.ndarray:
    """The first audio stream of ``path`` as 16 kHz mono float32."""
    out = []
    with av.open(str(path)) as c:
        rs = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        for frame in c.decode(audio=0):
            out += [f.to_ndarray().reshape(-1) for f in rs.resample(frame)]
        out += [f.to_ndarray().reshape(-1) for f in rs.resample(None)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


def gap_sound(kind: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """``seconds`` of a non-speech sound at 16 kHz (``GAPS``)."""
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    if kind == "silence":
        return np.zeros(n, np.float32)
    if kind == "room":  # ventilation hum and hiss
        return (0.01 * rng.standard_normal(n) + 0.02 * np.sin(2 * np.pi * 50 * t)).astype(np.float32)
    if kind == "music":  # a triad every half second on a beat, with harmonics
        root = 220 * 2 ** (rng.integers(0, 12, size=int(seconds * 2) + 1) / 12)
        f0 = root[(t * 2).astype(int)]
        x = sum(np.sin(2 * np.pi * f0 * r * h * t) / h for r in (1, 1.26, 1.5) for h in (1, 2, 3))
        env = 0.5 + 0.5 * np.exp(-((t * 2) % 1) * 6)
        return (0.05 * x * env).astype(np.float32)
    if kind == "claps":  # short noise bursts at random
        x = 0.002 * rng.standard_normal(n)
        for start in rng.integers(0, max(1, n - 800), size=max(1, int(seconds * 6))):
            x[start : start + 800] += 0.3 * rng.standard_normal(800) * np.exp(-np.arange(800) / 150)
        return x.astype(np.float32)
    if kind == "scrape":  # a chair: band-passed noise sweeping in pitch
        w = rng.standard_normal(n)
        x = np.convolve(w, np.ones(8) / 8, mode="same") * np.sin(2 * np.pi * (300 + 200 * t) * t)
        return (0.08 * x).astype(np.float32)
    raise ValueError(f"unknown gap sound {kind!r}")


def speech_track(
    seconds: float, seed: int = 0, gap_s: tuple[float, float] = (1.5, 6.0), noise: float = 0.0
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """A track of espeak utterances (random sentence and voice) between non-speech gaps.

    Returns ``(samples, labels)``: ``(n,) float32`` 16 kHz mono and the utterances' ``(start_s, end_s)``.
    ``noise``: standard deviation of white noise added everywhere (0.01: a quiet room).
    """
    rng = np.random.default_rng(seed)
    parts: list[np.ndarray] = []
    labels: list[tuple[float, float]] = []
    n = 0
    total = int(seconds * RATE)
    while n < total:
        gap = gap_sound(str(rng.choice(GAPS)), float(rng.uniform(*gap_s)), rng)
        parts.append(gap)
        n += len(gap)
        if n >= total:
            break
        utt = espeak(str(rng.choice(SENTENCES)), str(rng.choice(VOICES)))
        utt = (utt * rng.uniform(0.3, 1.0)).astype(np.float32)
        labels.append((n / RATE, min(total, n + len(utt)) / RATE))
        parts.append(utt)
        n += len(utt)
    x = np.concatenate(parts)[:total]
    if noise:
        x = x + noise * rng.standard_normal(len(x)).astype(np.float32)
    return x.astype(np.float32), labels


def add_audio(video: str | Path, samples: np.ndarray, out: str | Path, bitrate: int = 64_000) -> Path:
    """``video``'s video stream (copied, not re-encoded) with ``samples`` (16 kHz mono) as an AAC
    track, written to ``out`` (.mp4)."""
    with av.open(str(video)) as src, av.open(str(out), "w") as dst:
        vin = src.streams.video[0]
        vout = dst.add_stream_from_template(vin)
        aout = dst.add_stream("aac", rate=RATE, layout="mono")
        aout.bit_rate = bitrate
        for packet in src.demux(vin):
            if packet.dts is None:
                continue
            packet.stream = vout
            dst.mux(packet)
        step = 1024
        for i in range(0, len(samples), step):
            frame = av.AudioFrame.from_ndarray(
                samples[None, i : i + step].astype(np.float32), format="flt", layout="mono"
            )
            frame.sample_rate = RATE
            frame.pts = i
            frame.time_base = Fraction(1, RATE)
            for p in aout.encode(frame):
                dst.mux(p)
        for p in aout.encode(None):
            dst.mux(p)
    return Path(out)


def label_frames(labels: list[tuple[float, float]], seconds: float, step_s: float = 0.01) -> np.ndarray:
    """``(ceil(seconds / step_s),) bool``: inside an utterance, per ``step_s``."""
    y = np.zeros(int(np.ceil(seconds / step_s)), bool)
    for a, b in labels:
        y[int(a / step_s) : int(np.ceil(b / step_s))] = True
    return y
