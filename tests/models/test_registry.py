import pytest
import torch

from fer_stream.labels import FER2013_LABELS
from fer_stream.models import InceptionV4, SepResNet, build, checkpoint, registry
from fer_stream.models.sepres import count_macs


def test_every_preset_has_a_builder():
    assert set(registry.names()) == {
        "paper",
        "lite",
        "smoke",
        "paper-se",
        "xception",
        "inception-v4",
        "inception-v4-smoke",
    }
    for name in ("smoke", "inception-v4-smoke"):
        model = build(name, num_classes=8)
        assert model.config.name == name and model.config.num_classes == 8
    assert isinstance(build("smoke"), SepResNet) and isinstance(build("inception-v4-smoke"), InceptionV4)
    with pytest.raises(KeyError, match="unknown preset"):
        build("resnet50")


def test_inception_checkpoint_roundtrip(tmp_path):
    torch.manual_seed(0)
    model = build("inception-v4-smoke").eval()
    meta = checkpoint.make_meta(FER2013_LABELS, 0.5, 0.25, version="inc-test")
    path = checkpoint.save(tmp_path / "inc.pt", model, meta)
    w = checkpoint.load(path)
    assert w.arch == model.config
    x = torch.randn(3, 1, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(w.build()(x), model(x))


def test_checkpoints_without_a_family_are_sepres():
    # Every file written before Inception-v4 existed (the shipped ones too) has no "family".
    w = checkpoint.load("default")
    assert isinstance(w.build(), SepResNet) and w.arch.name == "lite"
    assert registry.config_from_dict(w.arch.to_dict()) == w.arch
    with pytest.raises(ValueError, match="unknown network family"):
        registry.config_from_dict({"family": "vgg", "name": "vgg"})


def test_count_macs_counts_linear_layers():
    class Tiny(torch.nn.Module):
        config = type("C", (), {"in_channels": 1, "input_size": 4})

        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 3, padding=1)  # 4*4 * 2 * 9 = 288
            self.fc = torch.nn.Linear(32, 5)  # 160

        def forward(self, x):
            return self.fc(self.conv(x).flatten(1))

    assert count_macs(Tiny()) == 288 + 160
