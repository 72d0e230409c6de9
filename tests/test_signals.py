"""Choosing what is inferred (``PipelineConfig.signals``, ``--signals``/``--attention-only``):
without emotion the emotion model is never read or run and no expression value is stored; the
choice is in the config hash, the run record, ``fer-stream check`` and the run summary
(docs/COMPLIANCE.md)."""

from __future__ import annotations

import argparse
import json
import shutil
import time

import pyarrow.compute as pc
import pytest

import fer_stream
from fer_stream import cli, nightly, records
from fer_stream.cli import check
from fer_stream.cli.options import add_analysis_args, config_from_args
from fer_stream.config import DEFAULT_SIGNALS, ModelInfo, PipelineConfig, Signal, config_hash, parse_signals
from fer_stream.labels import FER2013_LABELS
from tests.helpers import shared

EMOTION_COLUMNS = [*(f"p_{x}" for x in FER2013_LABELS), "emotion", "model_version"]
ATTENTION_ONLY = PipelineConfig(signals=frozenset({Signal.ATTENTION}), weights="/nonexistent/emotion.pt")


def _config(*argv: str) -> PipelineConfig:
    p = argparse.ArgumentParser()
    add_analysis_args(p)
    return config_from_args(p.parse_args(list(argv)))


def test_signals_default_flags_and_errors():
    assert PipelineConfig().signals == DEFAULT_SIGNALS == {Signal.ATTENTION, Signal.EMOTION, Signal.SPEECH}
    assert _config().signals == DEFAULT_SIGNALS and _config().emotion
    assert _config("--attention-only").signals == {Signal.ATTENTION}
    assert _config("--signals", "attention").signals == {Signal.ATTENTION}
    both = _config("--signals", "attention,identity", "--identity-threshold", "0.5")
    assert both.signals == {Signal.ATTENTION, Signal.IDENTITY} and both.identity.threshold == 0.5
    assert _config("--identity").signals == {*DEFAULT_SIGNALS, Signal.IDENTITY}
    with pytest.raises(ValueError, match="unknown"):
        parse_signals("attention,mood")
    with pytest.raises(ValueError, match="attention"):
        PipelineConfig(signals=frozenset({Signal.EMOTION}))
    with pytest.raises(ValueError, match="not both"):
        _config("--attention-only", "--signals", "attention,emotion")


def test_the_signals_are_in_the_config_hash():
    full = PipelineConfig().analysis(ModelInfo.load("default"))
    only = ATTENTION_ONLY.analysis(None)
    assert full["signals"] == ["attention", "emotion", "speech"] and only["signals"] == ["attention"]
    assert "vad" in full and "vad" not in only  # the speech detector is hashed only when it runs
    assert only["model_version"] is None and only["weights_sha256"] is None
    assert config_hash(full) != config_hash(only)
    # the same analysis but for the signals hashes differently too (not only through the weights)
    assert config_hash({**full, "signals": ["attention"]}) != config_hash(full)
    with pytest.raises(ValueError, match="emotion model"):
        ATTENTION_ONLY.analysis(ModelInfo.load("default"))


def test_attention_only_never_loads_the_emotion_model_and_stores_no_expression(monkeypatch):
    from fer_stream import classify
    from fer_stream.models import checkpoint

    def refuse(*a, **k):
        raise AssertionError("the emotion model was loaded")

    monkeypatch.setattr(ModelInfo, "load", classmethod(refuse))
    monkeypatch.setattr(checkpoint, "load", refuse)
    monkeypatch.setattr(classify.EmotionClassifier, "__init__", refuse)
    clip = shared("videos/single_face.mp4")
    with pytest.raises(AssertionError, match="loaded"):  # the default does load it: the trap works
        fer_stream.analyze(clip, PipelineConfig())

    table = fer_stream.analyze(clip, ATTENTION_ONLY, course="ML101")
    assert table.schema.equals(records.FACES_SCHEMA) and table.num_rows > 0
    for c in EMOTION_COLUMNS:
        assert table.column(c).null_count == table.num_rows, c
    assert not any(table.column("emotion_readable").to_pylist())
    assert table.column("attention").null_count < table.num_rows  # attention is still measured
    assert set(table.column("head_state").to_pylist()) - {None}


def test_check_says_which_signals_before_any_work(monkeypatch, capsys):
    calls = []

    def fake_check(path, config, minutes):  # the work: the line must already be out
        calls.append(capsys.readouterr().out)
        raise OSError("stop here")

    monkeypatch.setattr(check, "check_video", fake_check)
    monkeypatch.setattr(cli, "COMMANDS", (check,))
    cli.main(["check", "--attention-only", "x.mp4"])
    assert "signals inferred: attention (not inferred: emotion, identity, speech)" in calls[0]
    cli.main(["check", "x.mp4"])
    assert "signals inferred: attention, emotion, speech (not inferred: identity)" in calls[1]


@pytest.mark.parametrize("command", ["analyze", "nightly"])
def test_analyze_and_nightly_say_which_signals_before_any_work(command, monkeypatch, capsys, tmp_path):
    from fer_stream import pipeline
    from fer_stream.cli import analyze
    from fer_stream.cli import nightly as nightly_cmd

    def no_ray(*a, **k):  # the first piece of work: the line must already be out
        print("CONNECT", flush=True)
        raise ConnectionError("no cluster here")

    monkeypatch.setattr(pipeline, "connect", no_ray)
    monkeypatch.setattr(cli, "COMMANDS", (analyze, nightly_cmd))
    clip = shared("videos/single_face.mp4")
    if command == "analyze":
        argv = [
            "analyze",
            "--input",
            str(clip),
            "--output",
            str(tmp_path / "o"),
            "--attention-only",
            "--quiet",
        ]
    else:
        (tmp_path / "in").mkdir()
        argv = [
            "nightly",
            "--inbox",
            str(tmp_path / "in"),
            "--output",
            str(tmp_path / "o"),
            "--attention-only",
        ]
        argv += ["--quiet"]
    cli.main(argv)
    out = capsys.readouterr().out
    # the first line, before Ray (analyze) or the inbox, lock and run record (nightly)
    assert out.splitlines()[0] == "signals inferred: attention (not inferred: emotion, identity, speech)"


def test_an_attention_only_night_on_ray_records_its_signals_and_reports_no_emotion(local_ray, tmp_path):
    """The Ray pipeline under nightly: weights that do not exist are never read, no classifier
    actor is started, and the run record, videos/ and the reports say attention only."""
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    (inbox / "ML101").mkdir(parents=True)
    shutil.copy(shared("videos/single_face.mp4"), inbox / "ML101" / "2024-03-05_a.mp4")
    time.sleep(1.2)
    rec = nightly.run_night(inbox, out, ATTENTION_ONLY, nightly.NightlyOptions(settle_s=1.0), progress=False)
    assert rec["status"] == "finished" and rec["counts"]["done"] == 1, rec
    assert rec["signals"] == ["attention"] and rec["model_version"] is None
    assert json.loads((out / "runs" / f"{rec['run_id']}.json").read_text())["signals"] == ["attention"]
    faces = records.read(out, "faces")
    assert faces.num_rows > 0
    for c in EMOTION_COLUMNS:
        assert faces.column(c).null_count == faces.num_rows, c
    (row,) = records.read(out, "videos", filter=pc.field("status") == "done").to_pylist()
    assert (
        json.loads(row["config_json"])["signals"] == ["attention"]
        and row["config_hash"] == rec["config_hash"]
    )
    assert row["classify_s"] == 0.0  # nothing classified
    paths = rec["reports"]["courses"]["ML101"]
    assert not any("student_emotions" in p for p in paths)
    page = next(p for p in paths if p.endswith("ML101.html"))
    html = open(page, encoding="utf-8").read()
    assert "Signals inferred: attention." in html and 'id="emotion-mix"' not in html


def test_the_run_summary_names_the_signals(local_ray, tmp_path):
    from fer_stream import pipeline

    summary = pipeline.run(
        [shared("videos/single_face.mp4")], tmp_path / "out", ATTENTION_ONLY, progress=False
    )
    assert summary.outcome == "ok" and summary.classifier_nodes == []
    assert summary.signals == ["attention"] and "signals inferred: attention" in summary.describe()
