"""The Table 1 baselines that are presets of the separable-residual table: ``paper-se`` and ``xception``."""

import pytest
import torch

from fer_stream.models.sepres import (
    PRESETS,
    XCEPTION_STAGES,
    ArchConfig,
    Residual,
    SeparableConv,
    SqueezeExcite,
    build,
    count_macs,
    count_parameters,
)
from tests.helpers import assert_trainable


@pytest.mark.parametrize(
    "preset,params,macs",
    [
        # The paper's network and its lite/smoke presets are unchanged by the new table fields.
        ("paper", 5_421_983, 812_434_088),
        ("lite", 1_407_623, 52_348_016),
        ("smoke", 104_999, 3_958_368),
        ("paper-se", 5_697_803, 812_706_408),
        ("xception", 20_866_815, 842_278_976),
    ],
)
def test_parameter_and_multiply_add_counts_are_pinned(preset, params, macs):
    model = build(preset)
    assert count_parameters(model) == params
    assert count_macs(model) == macs


def test_xception_is_chollets_network_up_to_the_stated_changes():
    # With Chollet's 3 input channels and 1000 classes, and without the BN this table puts between
    # each depthwise and pointwise half (2 parameters per input channel), the count is Keras'
    # Xception's 22,855,952 trainable parameters exactly.
    cfg = ArchConfig.from_dict({**PRESETS["xception"].to_dict(), "in_channels": 3, "num_classes": 1000})
    model = build(cfg)
    mid_bn = sum(count_parameters(m[1]) for m in model.modules() if isinstance(m, SeparableConv))
    assert count_parameters(model) - mid_bn == 22_855_952


def test_xception_flows_and_spatial_sizes():
    assert len(XCEPTION_STAGES) == 3 + 8 + 3
    model = build("xception").eval()
    blocks = [m for m in model.features if isinstance(m, Residual)]
    assert len(blocks) == 12
    middle = blocks[3:11]
    assert all(b.convs == 3 and isinstance(b.shortcut, torch.nn.Identity) for b in middle)
    assert all(b.preact for b in blocks)
    assert all(isinstance(b.pool, torch.nn.MaxPool2d) for b in blocks[:3] + blocks[11:])
    assert {type(m).__name__ for m in model.modules() if "ReLU" in type(m).__name__} == {"ReLU"}
    exit_block = blocks[11]
    assert exit_block.sep1[2].out_channels == 728 and exit_block.sep2[2].out_channels == 1024
    sizes = []
    hooks = [b.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[1:]))) for b in blocks]
    with torch.no_grad():
        fmap = model.features(torch.zeros(1, 1, 48, 48))
    for h in hooks:
        h.remove()
    # entry flow 48 -> 24 -> 12 -> 6, middle flow at 6x6, exit flow to 3x3
    assert sizes[:3] == [(128, 24, 24), (256, 12, 12), (728, 6, 6)]
    assert set(sizes[3:11]) == {(728, 6, 6)} and sizes[11] == (1024, 3, 3)
    assert fmap.shape == (1, 2048, 3, 3)


def test_preactivation_leaves_the_shortcut_input_unrectified():
    # Xception's order: ReLU before each separable conv, not in place (x also feeds the shortcut).
    block = Residual(8, 8, 1, project=False, act=torch.nn.ReLU, preact=True).eval()
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        for m in block.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.zero_()  # the branch adds nothing: the output is the raw input
        out = block(x)
    torch.testing.assert_close(out, x)
    assert (out < 0).any()  # the sum stays linear: no activation after the addition


def test_paper_se_is_the_paper_plus_six_squeeze_excitations():
    paper, se = build("paper"), build("paper-se")
    ses = [m for m in se.modules() if isinstance(m, SqueezeExcite)]
    assert len(ses) == 6  # one per residual block; the stage-7 separable conv has none
    assert count_parameters(se) - sum(count_parameters(m) for m in ses) == count_parameters(paper)
    # 728 channels // 16 = 45 hidden units; 128 // 16 = 8
    assert [m.reduce.out_channels for m in ses] == [8, 16, 45, 45, 45, 45]
    # The rest of the network is the paper's, tensor for tensor.
    own = {k: v.shape for k, v in se.state_dict().items() if ".se." not in k}
    assert own == {k: v.shape for k, v in paper.state_dict().items()}


def test_squeeze_excitation_rescales_channels_only():
    se = SqueezeExcite(16, 4)
    x = torch.rand(3, 16, 5, 5)
    y = se(x)
    ratio = y / x
    # one factor in (0, 1) per (face, channel), the same at every pixel
    torch.testing.assert_close(ratio, ratio[..., :1, :1].expand_as(ratio))
    assert ((ratio > 0) & (ratio < 1)).all()


@pytest.mark.parametrize("preset", ["paper-se", "xception"])
@pytest.mark.parametrize("n", [0, 2])
def test_output_shape_including_empty_batch(preset, n):
    model = build(preset).eval()
    with torch.no_grad():
        out = model(torch.randn(n, 1, 48, 48))
    assert out.shape == (n, 7) and torch.isfinite(out).all()
    if n:
        assert out.abs().max() < 2.0  # the classifier starts near uniform


@pytest.mark.parametrize("preset", ["paper-se", "xception"])
def test_baselines_are_trainable(preset):
    torch.manual_seed(0)
    model = build(preset)
    assert_trainable(model, model.features[0].weight, classes=7, steps=3)


def test_config_checks_and_old_dicts():
    with pytest.raises(ValueError, match="activation"):
        ArchConfig(name="x", activation="gelu")
    with pytest.raises(ValueError, match="downsample"):
        ArchConfig(name="x", downsample="avgpool")
    # A config dict written before these fields existed (the shipped weights) reads as the paper's
    # post-activation, depthwise-strided, SE-free network.
    old = {
        k: v
        for k, v in PRESETS["lite"].to_dict().items()
        if k not in {"activation", "preact", "downsample", "se_ratio"}
    }
    old["stages"] = [
        {"block": s["block"], "channels": s["channels"], "stride": s["stride"]} for s in old["stages"]
    ]
    assert ArchConfig.from_dict(old) == PRESETS["lite"]
    for p in ("paper-se", "xception"):
        assert ArchConfig.from_dict(PRESETS[p].to_dict()) == PRESETS[p]
