"""ONNX Runtime backend (issue 14): same answers as torch, within stated tolerances."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from fer_stream.classify import EmotionClassifier
from fer_stream.faces.mtcnn import MTCNN
from tests.helpers import shared


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_STREAM_CACHE", str(tmp_path / "onnx"))  # exported afresh, not from ~/.cache


def test_emotion_probabilities_agree_with_torch():
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (130, 48, 48), dtype=np.uint8)  # > 2 batches of 64, a ragged tail
    a = EmotionClassifier("default", device="cpu", threads=1, backend="torch")
    b = EmotionClassifier("default", device="cpu", threads=1, backend="onnx")
    assert b.backend == "onnx" and b.ort is not None
    pa, pb = a.predict(crops), b.predict(crops)
    assert pb.shape == (130, 7) and np.allclose(pb.sum(1), 1, atol=1e-5)
    # float32 graphs with the same weights: only summation order differs
    assert np.abs(pa - pb).max() < 1e-4
    assert (pa.argmax(1) == pb.argmax(1)).all()
    ta = EmotionClassifier("default", device="cpu", tta=True, backend="torch").predict(crops[:5])
    tb = EmotionClassifier("default", device="cpu", tta=True, backend="onnx").predict(crops[:5])
    assert np.abs(ta - tb).max() < 1e-4  # the mirrored pass too
    assert b.predict(np.zeros((0, 48, 48), np.uint8)).shape == (0, 7)


def test_mtcnn_boxes_agree_with_torch():
    bgr = cv2.imread(str(shared("faces/multi_face.jpg")))
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    a, b = MTCNN(backend="torch"), MTCNN(backend="onnx", threads=1)
    da, db = a.detect(rgb), b.detect(rgb)
    assert len(da) == len(db) > 0
    assert np.abs(da.xyxy - db.xyxy).max() < 0.5  # pixels
    assert np.abs(da.score - db.score).max() < 1e-4
    assert np.abs(da.landmarks - db.landmarks).max() < 0.5
    ra, rb = a.refine(rgb, da.xyxy), b.refine(rgb, da.xyxy)
    assert len(ra) == len(rb) and np.abs(ra.xyxy - rb.xyxy).max() < 0.5


def test_backend_choice_is_validated():
    with pytest.raises(ValueError, match="backend"):
        EmotionClassifier("default", device="cpu", backend="tensorrt")
    with pytest.raises(ValueError, match="backend"):
        MTCNN(backend="openvino")


def test_export_cli_writes_a_runnable_model_with_its_metadata(tmp_path, capsys):
    import onnx
    import onnxruntime as ort

    from fer_stream.cli import main

    path = tmp_path / "emotion.onnx"
    assert main(["export", "--onnx", str(path), "--weights", "default"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["onnx"] == str(path) and out["labels"][3] == "happy"
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(meta["labels"]) == out["labels"]
    spec = json.loads(meta["input"])
    assert spec["shape"][1:] == [1, 48, 48] and set(spec["normalize"]) == {"mean", "std"}
    # a runtime that knows nothing of fer_stream reproduces the classifier from the metadata
    crops = np.random.default_rng(1).integers(0, 256, (4, 48, 48), dtype=np.uint8)
    x = ((crops / 255.0 - spec["normalize"]["mean"]) / spec["normalize"]["std"]).astype(np.float32)[:, None]
    logits = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    t = json.loads(meta["output"])["temperature"]
    p = np.exp(logits / t - (logits / t).max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    ref = EmotionClassifier("default", device="cpu", backend="torch").predict(crops)
    assert np.abs(p - ref).max() < 1e-4
    assert main(["export", "--onnx", str(tmp_path / "x.onnx"), "--weights", str(tmp_path / "nope.pt")]) == 1
