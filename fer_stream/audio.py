"""Sound in -> when someone is speaking: decode a video's audio track (PyAV), score it with a voice
activity detector, and turn the scores into speech segments. Nothing else about the sound is kept.

``decode_audio(path, start_s, end_s) -> Audio`` decodes one time span of the first audio stream to
16 kHz mono float32 (in memory, for the detector only). ``SileroVad().probabilities(samples)`` gives
one speech probability per 32 ms frame (Silero VAD's ONNX model from the ``silero-vad`` wheel, MIT,
run with ONNX Runtime on one CPU thread: docs/BENCHMARKS.md "Voice activity" measured it against
``webrtcvad``). ``speech_segments(p)`` turns those into ``(start_s, end_s, mean p)`` with hysteresis.
``detect_speech(path, start_s, end_s)`` does all three for one segment of a video and never raises
for the audio itself: a video without an audio track, or with one that does not decode, gives a
:class:`SpeechResult` whose ``status`` says why its speech is null.

Privacy: the samples live in memory for the length of one segment's detection and are never
written; no transcript, no speaker embedding is computed (docs/PRIVACY.md).
"""

from __future__ import annotations

import enum
import importlib.metadata
import os
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import av
import numpy as np

SAMPLE_RATE = 16_000  # Hz: what both detectors take
FRAME = 512  # samples per Silero frame at 16 kHz: 32 ms
FRAME_S = FRAME / SAMPLE_RATE
CONTEXT = 64  # samples of the previous frame Silero v5+ reads before each frame
SILERO_VERSION = "6.2.3"
SILERO_INSTALL = f"pip install --no-deps silero-vad=={SILERO_VERSION}"
# A decoded span shorter than this share of what was asked for is a broken track, not a quiet one.
MIN_DECODED_SHARE = 0.5


class SpeechStatus(enum.StrEnum):
    """The ``videos/`` table's ``speech`` column: why a done video's speech is what it is."""

    DONE = "done"  # the audio was analysed: the speech/ rows are every speech segment (maybe none)
    NO_AUDIO = "no_audio"  # the file has no audio stream: speech is null
    AUDIO_ERROR = "audio_error"  # the audio stream did not decode (``speech_error`` says why): null
    OFF = "off"  # the speech signal was not asked for (``--signals``): null


class AudioError(Exception):
    """The audio of a video cannot be analysed; never fails the video (its speech is null)."""

    status = SpeechStatus.AUDIO_ERROR


class NoAudioStreamError(AudioError):
    status = SpeechStatus.NO_AUDIO


class AudioDecodeError(AudioError):
    """The audio stream exists but (most of it) does not decode."""


class VadNotInstalled(FileNotFoundError):
    """The ``silero-vad`` wheel (its ONNX model) is not installed. A FileNotFoundError: like missing
    weights, the run is wrong as a whole, and the pipeline says so before it analyses anything."""


@dataclass(frozen=True)
class Audio:
    """``samples``: ``(n,) float32`` in [-1, 1], mono, ``SAMPLE_RATE`` Hz; ``start_s``: stream time of
    sample 0, seconds; ``decode_errors``: packets or frames skipped as undecodable."""

    samples: np.ndarray
    start_s: float
    decode_errors: int = 0

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def decode_audio(path: str | os.PathLike, start_s: float = 0.0, end_s: float | None = None) -> Audio:
    """The first audio stream of ``path`` over ``[start_s, end_s)``, as 16 kHz mono float32.

    Only the audio stream's packets are decoded (a separate pass from the video's). Raises
    :class:`NoAudioStreamError` for a file without audio, :class:`AudioDecodeError` when the stream
    cannot be opened or less than ``MIN_DECODED_SHARE`` of the span decodes.
    """
    try:
        container = av.open(str(path), metadata_errors="replace")
    except (av.FFmpegError, OSError) as e:
        raise AudioDecodeError(f"cannot open the file for audio: {e}") from e
    with container:
        if not container.streams.audio:
            raise NoAudioStreamError("no audio stream")
        stream = container.streams.audio[0]
        if stream.codec_context is None:
            raise AudioDecodeError("no decoder in this FFmpeg build for the audio codec")
        stream.codec_context.thread_count = 1
        tb = float(stream.time_base) if stream.time_base else 1.0 / SAMPLE_RATE
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        if start_s > 0:
            try:
                container.seek(int(max(0.0, start_s - 1.0) / tb), stream=stream, backward=True)
            except av.FFmpegError as e:
                raise AudioDecodeError(f"cannot seek the audio stream: {e}") from e
        chunks: list[np.ndarray] = []
        first_s: float | None = None
        errors = 0
        done = False
        packets = container.demux(stream)
        while not done:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError:  # a demuxer error: skip on, as the video decoder does
                errors += 1
                if errors > 1000:
                    break
                continue
            try:
                frames = packet.decode()
            except av.FFmpegError:
                errors += 1
                continue
            for frame in frames:
                if frame.pts is None:
                    continue
                t = float(frame.pts * tb)
                if end_s is not None and t >= end_s:
                    done = True
                    break
                for out in resampler.resample(frame):
                    x = out.to_ndarray().reshape(-1)
                    if first_s is None:
                        first_s = t
                    chunks.append(x)
        samples = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    if first_s is None:
        raise AudioDecodeError(f"no audio decoded ({errors} undecodable packets)")
    # keep [start_s, end_s): drop what the seek landed before start_s
    skip = max(0, round((start_s - first_s) * SAMPLE_RATE))
    samples = samples[skip:]
    begin = first_s + skip / SAMPLE_RATE
    if end_s is not None:
        samples = samples[: max(0, round((end_s - begin) * SAMPLE_RATE))]
    wanted = None if end_s is None else end_s - start_s
    if wanted and len(samples) / SAMPLE_RATE < MIN_DECODED_SHARE * wanted and errors:
        raise AudioDecodeError(
            f"only {len(samples) / SAMPLE_RATE:.1f} s of {wanted:.1f} s decoded "
            f"({errors} undecodable packets)"
        )
    return Audio(samples=samples, start_s=begin, decode_errors=errors)


# --------------------------------------------------------------------------------------------------
# Voice activity detectors


def silero_model_path() -> Path:
    """``silero_vad.onnx`` of the installed ``silero-vad`` distribution (nothing imported from it:
    its package pulls torchaudio; the wheel is installed with ``--no-deps``)."""
    try:
        dist = importlib.metadata.distribution("silero-vad")
    except importlib.metadata.PackageNotFoundError as e:
        raise VadNotInstalled(f"the voice activity model is not installed: {SILERO_INSTALL}") from e
    files = [f for f in dist.files or [] if str(f).endswith("data/silero_vad.onnx")]
    if not files:
        raise VadNotInstalled(f"silero-vad {dist.version} has no data/silero_vad.onnx: {SILERO_INSTALL}")
    return Path(str(dist.locate_file(files[0])))


class SileroVad:
    """Silero VAD (ONNX) on ONNX Runtime, one CPU thread: speech probability per 32 ms frame.

    The model is recurrent: frames run in order, each with the state and the last ``CONTEXT``
    samples of the one before. To spend one ONNX call on many frames, the audio is cut into
    ``window_s`` windows run side by side as a batch, each from a zero state (as the model starts
    every file); ``window_s`` is long against the few frames the state needs to settle.
    """

    def __init__(self, window_s: float = 30.0, threads: int = 1):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # the model's unused initialisers are no news
        self.session = ort.InferenceSession(
            str(silero_model_path()), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self.window = max(1, round(window_s / FRAME_S))  # frames per window

    def probabilities(self, samples: np.ndarray) -> np.ndarray:
        """``(n,) float32`` 16 kHz mono -> ``(ceil(n / FRAME),) float32`` P(speech) per frame."""
        n_frames = -(-len(samples) // FRAME)
        if n_frames == 0:
            return np.zeros(0, np.float32)
        window = min(self.window, n_frames)
        n_win = -(-n_frames // window)
        flat = np.zeros(n_win * window * FRAME, np.float32)
        flat[: len(samples)] = samples
        x = flat.reshape(n_win, window, FRAME)
        state = np.zeros((2, n_win, 128), np.float32)
        context = np.zeros((n_win, CONTEXT), np.float32)
        sr = np.array(SAMPLE_RATE, np.int64)
        out = np.empty((n_win, window), np.float32)
        for j in range(window):
            chunk = np.concatenate([context, x[:, j]], axis=1)
            p, state = self.session.run(None, {"input": chunk, "state": state, "sr": sr})
            out[:, j] = p[:, 0]
            context = chunk[:, -CONTEXT:]
        return out.reshape(-1)[:n_frames]


class WebrtcVad:
    """WebRTC's GMM voice activity detector (``webrtcvad-wheels``; no model file): 0 or 1 per 30 ms
    frame, ``mode`` 0 (least) to 3 (most aggressive at calling non-speech). For the comparison in
    ``bench/vad.py``; the pipeline uses :class:`SileroVad`."""

    frame = 480  # 30 ms at 16 kHz

    def __init__(self, mode: int = 2):
        import webrtcvad

        self.vad = webrtcvad.Vad(mode)

    def probabilities(self, samples: np.ndarray) -> np.ndarray:
        pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
        n = len(pcm) // self.frame
        return np.array(
            [
                self.vad.is_speech(pcm[i * self.frame : (i + 1) * self.frame].tobytes(), SAMPLE_RATE)
                for i in range(n)
            ],
            np.float32,
        )


@lru_cache(maxsize=1)
def shared_vad() -> SileroVad:
    """One detector per process (Ray reuses worker processes: the model loads once)."""
    return SileroVad()


# --------------------------------------------------------------------------------------------------
# Probabilities -> segments


@dataclass(frozen=True, kw_only=True)
class SpeechConfig:
    """How frame probabilities become speech segments (hysteresis, as VADs are usually read).

    A segment starts where P(speech) reaches ``threshold`` and ends where it stays below
    ``threshold - 0.15`` for ``min_silence_s``; segments shorter than ``min_speech_s`` are dropped (a
    cough, a chair). 0.5 / 0.25 s / 0.3 s: the detector's documented defaults and what
    ``bench/vad.py`` scored best against the hand labels with.
    """

    threshold: float = 0.5
    min_speech_s: float = 0.25
    min_silence_s: float = 0.3


@dataclass(frozen=True, kw_only=True)
class Segments:
    """Parallel arrays, seconds of the stream: ``start_s``, ``end_s``, ``p_mean`` (mean P(speech) over
    the segment's frames), each ``(n,)``; :meth:`empty` has shape ``(0,)``."""

    start_s: np.ndarray
    end_s: np.ndarray
    p_mean: np.ndarray

    def __post_init__(self):
        n = len(self.start_s)
        if len(self.end_s) != n or len(self.p_mean) != n:
            raise ValueError("Segments: start_s, end_s and p_mean of different lengths")

    @classmethod
    def empty(cls) -> Segments:
        return cls(start_s=np.zeros(0), end_s=np.zeros(0), p_mean=np.zeros(0, np.float32))

    def __len__(self) -> int:
        return len(self.start_s)

    @staticmethod
    def concat(parts: list[Segments], join_gap_s: float = 0.0) -> Segments:
        """Segments of consecutive spans, in time order; a segment ending at a span's seam within
        ``join_gap_s`` of the next one's start is joined to it (a sentence cut by the seam)."""
        starts: list[float] = []
        ends: list[float] = []
        ps: list[float] = []
        weights: list[float] = []
        for part in parts:
            for s, e, p in zip(part.start_s.tolist(), part.end_s.tolist(), part.p_mean.tolist()):
                if ends and s - ends[-1] <= join_gap_s:
                    w0, w1 = weights[-1], e - s
                    ps[-1] = (ps[-1] * w0 + p * w1) / max(w0 + w1, 1e-9)
                    ends[-1], weights[-1] = max(e, ends[-1]), w0 + w1
                else:
                    starts.append(s)
                    ends.append(e)
                    ps.append(p)
                    weights.append(e - s)
        return Segments(
            start_s=np.asarray(starts, np.float64),
            end_s=np.asarray(ends, np.float64),
            p_mean=np.asarray(ps, np.float32),
        )


def speech_segments(
    p: np.ndarray, start_s: float = 0.0, config: SpeechConfig | None = None, frame_s: float = FRAME_S
) -> Segments:
    """``(n,)`` P(speech) per frame (frame ``i`` covers ``start_s + i * frame_s`` onwards) -> segments."""
    config = config or SpeechConfig()
    on, off = config.threshold, config.threshold - 0.15
    hang = max(1, round(config.min_silence_s / frame_s))
    spans: list[tuple[int, int]] = []
    begin, quiet = -1, 0
    for i, x in enumerate(np.asarray(p, np.float64).tolist()):
        if begin < 0:
            if x >= on:
                begin, quiet = i, 0
        elif x < off:
            quiet += 1
            if quiet >= hang:
                spans.append((begin, i - quiet + 1))
                begin = -1
        else:
            quiet = 0
    if begin >= 0:
        spans.append((begin, len(p) - quiet))
    spans = [(a, b) for a, b in spans if (b - a) * frame_s >= config.min_speech_s]
    if not spans:
        return Segments.empty()
    p = np.asarray(p, np.float32)
    return Segments(
        start_s=np.array([start_s + a * frame_s for a, _ in spans]),
        end_s=np.array([start_s + b * frame_s for _, b in spans]),
        p_mean=np.array([p[a:b].mean() for a, b in spans], np.float32),
    )


@dataclass(frozen=True, kw_only=True)
class SpeechResult:
    """One span's speech: ``segments`` when ``status`` is done (else empty, and ``error`` says why),
    ``audio_s`` the span's seconds of audio analysed, ``seconds`` the time decoding and detecting."""

    status: SpeechStatus
    segments: Segments = field(default_factory=Segments.empty)
    error: str | None = None
    audio_s: float = 0.0
    seconds: float = 0.0

    @staticmethod
    def off() -> SpeechResult:
        return SpeechResult(status=SpeechStatus.OFF)

    @staticmethod
    def combine(parts: list[SpeechResult], join_gap_s: float) -> SpeechResult:
        """A video's speech from its segments' (in time order): null (the first failure's status and
        error) unless every segment's audio was analysed."""
        seconds = float(sum(p.seconds for p in parts))
        bad = [p for p in parts if p.status != SpeechStatus.DONE]
        if bad:
            return SpeechResult(status=bad[0].status, error=bad[0].error, seconds=seconds)
        return SpeechResult(
            status=SpeechStatus.DONE,
            segments=Segments.concat([p.segments for p in parts], join_gap_s),
            audio_s=float(sum(p.audio_s for p in parts)),
            seconds=seconds,
        )


def detect_speech(
    path: str | os.PathLike,
    start_s: float = 0.0,
    end_s: float | None = None,
    vad: SileroVad | None = None,
    config: SpeechConfig | None = None,
) -> SpeechResult:
    """Speech segments of ``path`` over ``[start_s, end_s)``. An audio track that is absent or does not
    decode is a result (``status``, ``error``), never an exception: it must not fail the video."""
    t0 = time.perf_counter()
    try:
        audio = decode_audio(path, start_s, end_s)
    except AudioError as e:
        return SpeechResult(status=e.status, error=str(e), seconds=time.perf_counter() - t0)
    p = (vad or shared_vad()).probabilities(audio.samples)
    return SpeechResult(
        status=SpeechStatus.DONE,
        segments=speech_segments(p, audio.start_s, config),
        audio_s=audio.duration_s,
        seconds=time.perf_counter() - t0,
    )
