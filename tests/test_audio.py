"""Speech activity (issue 25): a clip spliced from real speech (espeak-ng) and silence gives the
stretches it holds; a clip without audio and one whose audio does not decode are analysed, their
speech null and the reason recorded; the pipeline writes speech/ with the video's other records."""

from __future__ import annotations

import av
import numpy as np
import pyarrow.compute as pc
import pytest

from bench.speech import RATE, add_audio, espeak
from fer_stream import records
from fer_stream.audio import (
    SpeechResult,
    SpeechStatus,
    decode_audio,
    detect_speech,
    speech_segments,
)
from fer_stream.config import PipelineConfig, Signal
from tests.helpers import needs_espeak

# Start and end of each utterance may be off by this much: the detector's 32 ms frames, the
# hysteresis (0.3 s of silence ends a stretch) and AAC's priming delay.
TOL_S = 0.35
SECONDS = 14.0


def _video(path, seconds: float = SECONDS, fps: int = 5):
    """A small silent H.264 clip (no audio stream)."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
        for i in range(int(seconds * fps)):
            img = np.full((64, 64, 3), (i * 7) % 255, np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """``(spliced, labels)``, ``silent`` (no audio stream) and ``corrupt`` (garbage audio packets)."""
    needs_espeak()
    d = tmp_path_factory.mktemp("audio")
    silent = _video(d / "silent.mp4")
    # silence 2 s, a sentence, silence 4 s, another voice's sentence, silence to the end
    a = espeak("Good morning everyone, today we look at gradient descent.", "en")
    b = espeak("Please open your notebooks at page forty two.", "en-us+f3")
    track = np.zeros(int(SECONDS * RATE), np.float32)
    labels = []
    at = 2.0
    for utt in (a, b):
        i = int(at * RATE)
        track[i : i + len(utt)] = utt
        labels.append((at, at + len(utt) / RATE))
        at += len(utt) / RATE + 4.0
    assert labels[-1][1] < SECONDS - 1
    spliced = add_audio(silent, track, d / "spliced.mp4")
    corrupt = d / "corrupt.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(spliced)) as src, av.open(str(corrupt), "w") as dst:
        vout = dst.add_stream_from_template(src.streams.video[0])
        aout = dst.add_stream_from_template(src.streams.audio[0])
        for packet in src.demux():
            if packet.dts is None:
                continue
            if packet.stream.type == "audio":  # same timing, random bytes: no AAC decodes from it
                bad = av.Packet(rng.integers(0, 256, packet.size, np.uint8).tobytes())
                bad.pts, bad.dts, bad.time_base = packet.pts, packet.dts, packet.time_base
                bad.stream = aout
                dst.mux(bad)
            else:
                packet.stream = vout
                dst.mux(packet)
    return spliced, labels, silent, corrupt


def _pairs(result: SpeechResult) -> list[tuple[float, float]]:
    return list(zip(result.segments.start_s.tolist(), result.segments.end_s.tolist()))


def test_spliced_speech_and_silence_give_the_utterances(clips):
    spliced, labels, _, _ = clips
    result = detect_speech(spliced)
    assert result.status == SpeechStatus.DONE and result.error is None
    assert result.audio_s == pytest.approx(SECONDS, abs=0.1)
    got = _pairs(result)
    assert len(got) == len(labels), (got, labels)
    for (s, e), (ls, le) in zip(got, labels):
        assert abs(s - ls) <= TOL_S and abs(e - le) <= TOL_S, (got, labels)
    assert np.all(result.segments.p_mean >= 0.5)


def test_segments_of_a_split_video_join_into_the_whole_videos(clips):
    """Two pipeline segments cut inside the first utterance: the seam does not split it."""
    spliced, labels, _, _ = clips
    cut = (labels[0][0] + labels[0][1]) / 2
    parts = [detect_speech(spliced, 0.0, cut), detect_speech(spliced, cut, None)]
    assert parts[0].audio_s == pytest.approx(cut, abs=0.05)
    joined = SpeechResult.combine(parts, join_gap_s=PipelineConfig().speech.min_silence_s)
    whole = detect_speech(spliced)
    assert len(joined.segments) == len(whole.segments) == len(labels)
    for (s, e), (ws, we) in zip(_pairs(joined), _pairs(whole)):
        assert abs(s - ws) <= 0.1 and abs(e - we) <= 0.1


def test_no_audio_and_corrupt_audio_are_statuses_with_reasons(clips):
    _, _, silent, corrupt = clips
    none = detect_speech(silent)
    assert none.status == SpeechStatus.NO_AUDIO and "no audio stream" in (none.error or "")
    assert len(none.segments) == 0
    broken = detect_speech(corrupt)
    assert broken.status == SpeechStatus.AUDIO_ERROR and "decoded" in (broken.error or ""), broken
    # one bad segment makes the whole video's speech null, with that reason
    whole = SpeechResult.combine([detect_speech(clips[0]), broken], join_gap_s=0.3)
    assert whole.status == SpeechStatus.AUDIO_ERROR and len(whole.segments) == 0


def test_a_digitally_silent_track_is_analysed_and_has_no_speech(tmp_path):
    """A real track that holds silence (the shared Pexels clip's is all zeros) is 'done', not null."""
    clip = add_audio(_video(tmp_path / "v.mp4", 4.0), np.zeros(4 * RATE, np.float32), tmp_path / "s.mp4")
    assert decode_audio(clip).duration_s == pytest.approx(4.0, abs=0.1)
    result = detect_speech(clip)
    assert result.status == SpeechStatus.DONE and len(result.segments) == 0


def test_hysteresis_keeps_short_pauses_and_drops_blips():
    f = 0.032
    p = np.r_[np.zeros(10), np.ones(20), np.zeros(5), np.ones(20), np.zeros(20), np.ones(3), np.zeros(20)]
    seg = speech_segments(p, start_s=100.0)
    # the 5-frame (0.16 s) pause is inside one stretch; the 3-frame (0.1 s) blip is dropped
    assert len(seg) == 1
    assert seg.start_s[0] == pytest.approx(100 + 10 * f) and seg.end_s[0] == pytest.approx(100 + 55 * f)
    assert speech_segments(np.zeros(0)).start_s.shape == (0,)


def test_the_pipeline_writes_speech_with_the_video_and_never_fails_it_for_audio(clips, local_ray, tmp_path):
    from fer_stream import pipeline

    spliced, labels, silent, corrupt = clips
    config = PipelineConfig(signals=frozenset({Signal.ATTENTION, Signal.SPEECH}), segment_s=5.0)
    out = tmp_path / "out"
    summary = pipeline.run([spliced, silent, corrupt], out, config, progress=False)
    assert [r.status for r in summary.results] == ["done"] * 3, summary.results
    videos = {r["path"]: r for r in records.read(out, "videos").to_pylist()}
    heard = videos[str(spliced)]
    assert heard["speech"] == "done" and heard["speech_error"] is None and heard["segments"] > 1
    assert heard["audio_s"] > 0
    speech = records.read(out, "speech", filter=pc.field("video_id") == heard["video_id"]).to_pylist()
    assert len(speech) == len(labels)
    for row, (ls, le) in zip(sorted(speech, key=lambda r: r["start_s"]), labels):
        assert abs(row["start_s"] - ls) <= TOL_S and abs(row["end_s"] - le) <= TOL_S
    assert videos[str(silent)]["speech"] == "no_audio"
    assert videos[str(corrupt)]["speech"] == "audio_error" and videos[str(corrupt)]["speech_error"]
    # null speech has no speech/ file: only the heard video's
    assert {r["video_id"] for r in records.read(out, "speech").to_pylist()} == {heard["video_id"]}
    # switched off: not decoded at all
    off = PipelineConfig(signals=frozenset({Signal.ATTENTION}))
    pipeline.run([spliced], tmp_path / "off", off, progress=False)
    (row,) = records.read(tmp_path / "off", "videos").to_pylist()
    assert row["speech"] == "off" and row["audio_s"] is None
    assert records.read(tmp_path / "off", "speech").num_rows == 0


def test_a_missing_voice_model_stops_the_run_before_any_video_is_analysed(monkeypatch, tmp_path):
    import importlib.metadata

    import fer_stream
    from fer_stream import pipeline
    from fer_stream.audio import VadNotInstalled

    real = importlib.metadata.distribution

    def without_silero(name):
        if name == "silero-vad":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", without_silero)
    video = tmp_path / "lecture.mp4"
    video.write_bytes(b"never decoded")
    with pytest.raises(VadNotInstalled, match="silero-vad"):
        fer_stream.analyze(video)
    with pytest.raises(FileNotFoundError, match="silero-vad"):  # the CLI's "the run is wrong" (exit 1)
        pipeline.run([str(video)], tmp_path / "out", PipelineConfig(), force=False, strict=False)
    assert not (tmp_path / "out" / "videos").exists()
    # without the speech signal nothing needs it
    assert not PipelineConfig(signals=frozenset({Signal.ATTENTION})).hears
