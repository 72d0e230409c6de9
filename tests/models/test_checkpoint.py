import numpy as np
import pytest
import torch

from fer_stream.classify import EmotionClassifier
from fer_stream.labels import CKPLUS_LABELS, FER2013_LABELS
from fer_stream.models import BUILTIN, WeightsError, build, checkpoint


@pytest.fixture
def tiny_weights(tmp_path):
    torch.manual_seed(0)
    model = build("smoke").eval()
    meta = checkpoint.make_meta(FER2013_LABELS, 0.5, 0.25, version="smoke-test")
    return checkpoint.save(tmp_path / "w.pt", model, meta, half=True), model


def test_roundtrip_keeps_architecture_meta_and_outputs(tiny_weights):
    path, model = tiny_weights
    w = checkpoint.load(path)
    assert w.arch == model.config
    assert w.labels == FER2013_LABELS and w.version == "smoke-test"
    assert all(v.dtype == torch.float16 for v in w.state_dict.values() if v.is_floating_point())
    x = torch.randn(4, 1, 48, 48)
    with torch.no_grad():
        # half precision on disk: same predictions within fp16 rounding
        assert torch.allclose(w.build()(x), model(x), atol=5e-2)


def test_bad_weights_are_typed_errors(tmp_path):
    with pytest.raises(WeightsError, match="no weights"):
        checkpoint.load(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read"):
        checkpoint.load(junk)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(WeightsError, match="not a fer_stream weights file"):
        checkpoint.load(other)


def test_classifier_reads_preprocessing_from_meta(tiny_weights):
    path, _ = tiny_weights
    clf = EmotionClassifier(str(path), device="cpu", threads=1)
    assert (clf.mean, clf.std, clf.input_size) == (0.5, 0.25, 48)
    crops = np.random.default_rng(0).integers(0, 255, (5, 48, 48), dtype=np.uint8)
    p = clf.predict(crops)
    assert p.shape == (5, 7) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
    # Other crop sizes and RGB crops go through the same preprocessing.
    assert clf.predict(np.repeat(crops[:, :, :, None], 3, -1)).shape == (5, 7)
    assert clf.predict(np.zeros((2, 64, 64), np.uint8)).shape == (2, 7)
    # No faces: an empty (0, 7) array, not None.
    assert clf.predict(np.zeros((0, 48, 48), np.uint8)).shape == (0, 7)
    out = clf({"crops": crops})
    assert list(out["emotion"]) == [FER2013_LABELS[i] for i in p.argmax(1)]
    with pytest.raises(ValueError):
        clf.predict(np.zeros((48, 48), np.uint8))


def test_flip_tta_is_mirror_invariant(tiny_weights):
    path, _ = tiny_weights
    clf = EmotionClassifier(str(path), device="cpu", tta=True)
    crops = np.random.default_rng(1).integers(0, 255, (3, 48, 48), dtype=np.uint8)
    np.testing.assert_allclose(clf.predict(crops), clf.predict(crops[:, :, ::-1]), atol=1e-5)


@pytest.mark.parametrize("name,labels", [("default", FER2013_LABELS), ("ckplus", CKPLUS_LABELS)])
def test_builtin_models_ship_and_describe_themselves(name, labels):
    path = checkpoint.builtin_path(name)
    assert path.is_file(), f"built-in weights missing: {path}"
    assert path.stat().st_size < 25 * 2**20
    w = checkpoint.load(name)
    assert w.labels == labels
    meta = w.meta
    assert meta["input_size"] == 48 and meta["grayscale"] is True
    assert 0 < meta["normalize"]["std"] < 1
    assert {"data", "n_train"} <= set(meta["training"]) and meta["metrics"]
    assert set(BUILTIN) == {"default", "ckplus"}
