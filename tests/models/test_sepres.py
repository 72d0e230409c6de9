import pytest
import torch

from fer_stream.models.sepres import (
    PAPER_STAGES,
    PRESETS,
    ArchConfig,
    Residual,
    Stage,
    build,
    count_macs,
    count_parameters,
)
from tests.helpers import assert_trainable


def test_paper_table_is_section_4():
    # Residual 1, 2, 1, 2, 2, 1 then a separable conv; channels and strides as in the paper.
    assert [s.block for s in PAPER_STAGES] == [
        "residual1",
        "residual2",
        "residual1",
        "residual2",
        "residual2",
        "residual1",
        "separable",
    ]
    assert [s.channels for s in PAPER_STAGES] == [128, 256, 728, 728, 728, 728, 728]
    assert [s.stride for s in PAPER_STAGES] == [2, 1, 2, 1, 1, 2, 1]
    assert PRESETS["paper"].stem_channels == (32, 64) and PRESETS["paper"].stem_stride == 1


@pytest.mark.parametrize("preset,params", [("paper", 5_421_983), ("lite", 1_407_623), ("smoke", 104_999)])
def test_parameter_counts_are_pinned(preset, params):
    assert count_parameters(build(preset)) == params


def test_paper_multiply_adds():
    # 812,434,088 multiply-adds per 48x48 face (convs + head), i.e. "about 812M".
    assert count_macs(build("paper")) == 812_434_088
    # The lite preset is the same table at ~1/16 of the cost.
    assert count_macs(build("lite")) < count_macs(build("paper")) / 12


@pytest.mark.parametrize("preset", ["paper", "lite"])
@pytest.mark.parametrize("n", [0, 1, 3])
def test_output_shape_including_empty_batch(preset, n):
    model = build(preset).eval()
    with torch.no_grad():
        out = model(torch.randn(n, 1, 48, 48))
    assert out.shape == (n, 7)
    assert torch.isfinite(out).all()


def test_residual_shortcuts_follow_the_paper():
    model = build("paper")
    blocks = [m for m in model.features if isinstance(m, Residual)]
    assert len(blocks) == 6
    kinds = [s.block for s in PAPER_STAGES[:6]]
    for block, kind in zip(blocks, kinds):
        projected = not isinstance(block.shortcut, torch.nn.Identity)
        # Residual 1 always projects; Residual 2 only where channels change (128 -> 256).
        assert projected == (kind == "residual1" or block.sep1[0].in_channels != block.sep2[2].out_channels)
    assert [isinstance(b.shortcut, torch.nn.Identity) for b in blocks] == [
        False,
        False,
        False,
        True,
        True,
        False,
    ]


def test_relu6_everywhere_and_spatial_sizes():
    model = build("paper").eval()
    acts = {type(m).__name__ for m in model.modules() if "ReLU" in type(m).__name__}
    assert acts == {"ReLU6"}
    with torch.no_grad():
        fmap = model.features(torch.zeros(2, 1, 48, 48))
    assert fmap.shape == (2, 728, 6, 6)  # 48 -> 24 -> 12 -> 6 by the three stride-2 rows


def test_config_roundtrip_and_class_count():
    cfg = PRESETS["lite"]
    assert ArchConfig.from_dict(cfg.to_dict()) == cfg
    m = build("lite", num_classes=8)
    assert m.config.num_classes == 8 and m(torch.zeros(2, 1, 48, 48)).shape == (2, 8)
    custom = ArchConfig(
        name="tiny", stages=(Stage("residual1", 16, 2), Stage("separable", 16, 1)), stem_channels=(8,)
    )
    assert build(custom).eval()(torch.zeros(1, 1, 48, 48)).shape == (1, 7)


def test_untrained_logits_are_small():
    # The classifier starts near uniform: loss ~ log(7), not the +-20 logits of a naive init.
    model = build("lite").eval()
    with torch.no_grad():
        out = model(torch.randn(16, 1, 48, 48))
    assert out.abs().max() < 2.0


def test_paper_preset_is_trainable():
    # Without a GPU the paper network is proven trainable here (tests.helpers.assert_trainable).
    torch.manual_seed(0)
    model = build("paper")
    assert_trainable(model, model.features[0].weight, classes=7)
