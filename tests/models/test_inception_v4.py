import pytest
import torch

from fer_stream.models import inception_v4
from fer_stream.models.inception_v4 import InceptionConfig, Mixed, build
from fer_stream.models.sepres import count_macs, count_parameters
from tests.helpers import assert_trainable


def test_the_published_network_at_299_rgb():
    # 3 channels, 1000 classes, 299 px: exactly timm's inception_v4 (42.68 M parameters; its model
    # card says 12.3 GMACs, our counter 12.25 G: convs and the classifier only).
    cfg = InceptionConfig(in_channels=3, num_classes=1000, input_size=299, resize_to=299)
    model = build(cfg)
    assert count_parameters(model) == 42_679_816
    assert count_macs(model) == 12_253_974_624


def test_preset_counts_are_pinned():
    # 1 gray channel, 7 classes, run at 139 px after upsampling the 48 px face.
    model = build("inception-v4")
    assert count_parameters(model) == 41_152_999
    assert count_macs(model) == 2_142_832_160


def test_grids_at_139_and_block_widths():
    model = build("inception-v4").eval()
    mixed = [m for m in model.features if isinstance(m, Mixed)]
    assert len(mixed) == 3 + 4 + 1 + 7 + 1 + 3
    shapes = []
    hooks = [m.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:]))) for m in mixed]
    with torch.no_grad():
        out = model(torch.zeros(1, 1, 48, 48))  # takes the project's 48 px crops
    for h in hooks:
        h.remove()
    assert out.shape == (1, 7)
    assert shapes[2] == (384, 15, 15)  # stem output: Inception-A runs on 15x15
    assert set(shapes[3:7]) == {(384, 15, 15)}
    assert shapes[7] == (1024, 7, 7) and set(shapes[8:15]) == {(1024, 7, 7)}
    assert shapes[15] == (1536, 3, 3) and set(shapes[16:]) == {(1536, 3, 3)}


def test_input_size_limits():
    with pytest.raises(ValueError, match="at least 75"):
        InceptionConfig(resize_to=74)
    # 75 px is the smallest input the unpadded stride-2 ops accept (Inception-C then runs on 1x1).
    model = build(InceptionConfig(resize_to=75, repeats=(1, 1, 1), width=0.125)).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 1, 48, 48)).shape == (2, 7)


@pytest.mark.parametrize("n", [0, 3])
def test_output_shape_including_empty_batch(n):
    model = build("inception-v4-smoke").eval()
    with torch.no_grad():
        out = model(torch.randn(n, 1, 48, 48))
    assert out.shape == (n, 7) and torch.isfinite(out).all()


def test_full_network_forward_and_small_start():
    model = build("inception-v4").eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, 48, 48))
    assert out.shape == (2, 7) and out.abs().max() < 2.0


def test_trainable_and_config_roundtrip():
    torch.manual_seed(0)
    model = build("inception-v4-smoke", num_classes=5).train()
    assert model.config.num_classes == 5
    assert_trainable(model, model.features[0][0].weight, classes=5, lr=3e-3)
    for cfg in inception_v4.PRESETS.values():
        assert InceptionConfig.from_dict(cfg.to_dict()) == cfg
        assert cfg.to_dict()["family"] == inception_v4.FAMILY
