"""The separable-residual expression network of Yu (Xception-derived, ReLU6).

Paper, Section 4, on a 1x48x48 grayscale face::

    stem      conv3x3 32 -> BN -> ReLU6 -> conv3x3 64 -> BN -> ReLU6     (stride 1)
    stage 1   Residual 1   128  stride 2
    stage 2   Residual 2   256  stride 1
    stage 3   Residual 1   728  stride 2
    stage 4   Residual 2   728  stride 1
    stage 5   Residual 2   728  stride 1
    stage 6   Residual 1   728  stride 2
    stage 7   SeparableConv2D 728 stride 1
    head      global average pool -> 1x1 conv to the classes

The table ``PAPER_STAGES`` below is that list, row for row; presets are the same table with a
width multiplier and a stem stride.

Choices where the paper's text is ambiguous (and why):

* **Separable conv** = depthwise 3x3 -> BN -> pointwise 1x1 -> BN, no activation between the
  two halves (Chollet's Xception ablation found an intermediate non-linearity hurts), all convs
  bias-free because a BN follows each. With this reading the ``paper`` preset has exactly the
  5,421,983 parameters measured for the paper's network, which the alternatives we counted
  (single BN, biased convs, three separable convs per block) do not reproduce.
* **Residual blocks** are post-activation: ``relu6(sep(relu6(sep(x))) + shortcut(x))``. The
  second separable conv's output stays linear until the addition (the paper keeps that path
  linear, as MobileNetV2 does for its bottleneck outputs).
* **Stride** sits in the second separable conv's depthwise 3x3 (rather than Xception's extra
  3x3 max-pool): no parameters either way, and it spends fewer multiply-adds at a 48x48 input.
* **Residual 1** projects the shortcut with a strided 1x1 conv + BN. **Residual 2** uses the
  identity, except where its input and output channels differ (stage 2, 128 -> 256), where it
  needs a 1x1 conv + BN projection (stride 1) to make the addition well-defined.
* Stem convs are padded ('same') so 48 -> 48 -> 24 -> 24 -> 12 -> 12 -> 12 -> 6 -> 6.

Baselines of the paper's Table 1 are presets of the same table (``XCEPTION_STAGES``, ``paper-se``);
InceptionV4, whose branching blocks are not rows of separable convs, is its own module
(``inception_v4.py``).

``xception``: Chollet's Xception (2017, Fig. 5) adapted to a 1x48x48 face as the paper adapted its
own network. Every choice:

* **Kept from Chollet**: the entry flow's three strided residual blocks (128, 256, 728; two
  separable convs each, a strided 1x1 conv + BN shortcut), the middle flow's eight identity
  blocks of three 728-channel separable convs, the exit flow's block (separable 728, separable
  1024, strided 1x1 shortcut to 1024) followed by separable 1536 and 2048, global average pool,
  one linear layer; ReLU (not ReLU6); **pre-activation** order (ReLU before each separable conv,
  the sum of a block stays linear, so the next shortcut sees it unrectified: ``preact``); and
  downsampling by a 3x3 stride-2 **max-pool** after a block's last separable conv
  (``downsample="maxpool"``), so that block's convs run at the full resolution.
* **Adapted to 48x48 gray**: 1 input channel; both stem convs stride 1 with 'same' padding (Chollet:
  stride 2 then 'valid' on 299 px). Chollet downsamples 32x (299 -> 10 at the exit flow); at 48 px
  that would leave 2x2 maps, so, like the paper's network, the stem keeps full resolution and the
  entry flow's three strided blocks take 48 -> 24 -> 12 -> 6: the middle flow runs at 6x6 (the
  paper's last stages run at 6x6 too) and the exit flow's strided block leaves 3x3.
* **Separable conv** as everywhere in this table: depthwise 3x3 -> BN -> pointwise 1x1 -> BN
  (Keras' SeparableConv2D has no BN between the two halves: +2 parameters per input channel of
  each separable conv, 0.3 % of the total here; no activation in between either way).
* No dropout (Chollet uses none on ImageNet; every preset here trains with the same recipe).

``paper-se``: the paper's network with squeeze-and-excitation (Hu et al., SENet, 2018) in its six
residual blocks, the channel attention the paper names as its next step: on the residual branch,
after the second separable conv and before the addition (SE-ResNet's placement), global average
pool -> 1x1 conv to ``channels // 16`` (at least 8) -> ReLU6 (the network's activation;
SENet uses ReLU) -> 1x1 conv back -> sigmoid, which rescales each channel. The stage-7 separable
conv is not a residual block and has none.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from torch import nn

BlockKind = Literal["residual1", "residual2", "separable"]


@dataclass(frozen=True)
class Stage:
    """One row of the architecture table.

    ``convs``: separable convs in a residual block (2 in the paper; 3 in Xception's middle flow).
    ``inner``: output channels of all but the block's last separable conv; 0 = ``channels``
    (Xception's exit block: separable 728 then separable 1024).
    """

    block: BlockKind
    channels: int
    stride: int
    convs: int = 2
    inner: int = 0


# The paper's Section 4, one row per block (kind, output channels, stride).
PAPER_STAGES: tuple[Stage, ...] = (
    Stage("residual1", 128, 2),
    Stage("residual2", 256, 1),
    Stage("residual1", 728, 2),
    Stage("residual2", 728, 1),
    Stage("residual2", 728, 1),
    Stage("residual1", 728, 2),
    Stage("separable", 728, 1),
)

# Chollet's Xception, entry / middle / exit flow, at 48x48 (module docstring: every choice).
XCEPTION_STAGES: tuple[Stage, ...] = (
    # entry flow: 48 -> 24 -> 12 -> 6 (max-pool after each block's second separable conv)
    Stage("residual1", 128, 2),
    Stage("residual1", 256, 2),
    Stage("residual1", 728, 2),
    # middle flow: eight blocks of three separable convs, identity shortcut, at 6x6
    *(Stage("residual2", 728, 1, convs=3),) * 8,
    # exit flow: separable 728 -> separable 1024 (+ max-pool to 3x3), then 1536 and 2048
    Stage("residual1", 1024, 2, inner=728),
    Stage("separable", 1536, 1),
    Stage("separable", 2048, 1),
)


ACTIVATIONS: dict[str, type[nn.Module]] = {"relu6": nn.ReLU6, "relu": nn.ReLU}


@dataclass(frozen=True)
class ArchConfig:
    """Everything needed to rebuild the network; stored inside every checkpoint."""

    name: str
    stages: tuple[Stage, ...] = PAPER_STAGES
    stem_channels: tuple[int, ...] = (32, 64)
    stem_stride: int = 1  # stride of the first stem conv; 2 quarters the cost of everything after
    width: float = 1.0  # multiplies every channel count (rounded to a multiple of 8)
    in_channels: int = 1
    input_size: int = 48
    num_classes: int = 7
    dropout: float = 0.0  # before the classifier; 0 in the paper
    activation: str = "relu6"  # "relu": Chollet's Xception
    preact: bool = False  # activation before each separable conv of a block, the sum left linear
    downsample: str = "depthwise"  # stride in the last depthwise conv, or "maxpool" 3x3/2 after it
    se_ratio: int = 0  # squeeze-and-excitation in each residual block (channels // ratio); 0: none

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.downsample not in ("depthwise", "maxpool"):
            raise ValueError(f"downsample must be depthwise or maxpool, got {self.downsample!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ArchConfig:
        d = dict(d)
        d["stages"] = tuple(Stage(**s) if isinstance(s, dict) else Stage(*s) for s in d["stages"])
        d["stem_channels"] = tuple(d["stem_channels"])
        return cls(**d)


def _scaled(channels: int, width: float) -> int:
    """Channel count times the width multiplier, rounded to a multiple of 8 (at least 8)."""
    if width == 1.0:
        return channels
    return max(8, int(math.ceil(channels * width / 8.0)) * 8)


class SeparableConv(nn.Sequential):
    """Depthwise 3x3 (stride s) -> BN -> pointwise 1x1 -> BN. Linear: no activation inside."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__(
            nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False),
            nn.BatchNorm2d(cin),
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )


class SqueezeExcite(nn.Module):
    """Channel attention (SENet): ``x * sigmoid(W2 act(W1 mean_hw(x)))``, hidden width c // ratio."""

    def __init__(self, channels: int, ratio: int, act: type[nn.Module] = nn.ReLU6):
        super().__init__()
        hidden = max(8, channels // ratio)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.act = act(inplace=True)
        self.expand = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * torch.sigmoid(self.expand(self.act(self.reduce(s))))


class Residual(nn.Module):
    """``convs`` separable convs (``sep1``, ``sep2``, ...) with a shortcut.

    ``project=True`` (Residual 1, or Residual 2 when channels change): 1x1 conv (strided) + BN.
    Otherwise the identity (Residual 2). Post-activation (the paper):
    ``act(sepN(...act(sep1(x))) + shortcut(x))``; ``preact`` (Xception):
    ``sepN(act(...sep1(act(x)))) + shortcut(x)``. The stride sits in the last separable conv's
    depthwise 3x3, or (``downsample="maxpool"``) in a 3x3 max-pool after it. ``se_ratio``: a
    squeeze-and-excitation on the branch before the addition.
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        stride: int,
        project: bool,
        *,
        convs: int = 2,
        inner: int = 0,
        act: type[nn.Module] = nn.ReLU6,
        preact: bool = False,
        downsample: str = "depthwise",
        se_ratio: int = 0,
    ):
        super().__init__()
        widths = [cin] + [inner or cout] * (convs - 1) + [cout]
        for i in range(convs):
            s = stride if i == convs - 1 and downsample == "depthwise" else 1
            self.add_module(f"sep{i + 1}", SeparableConv(widths[i], widths[i + 1], s))
        self.convs, self.preact = convs, preact
        # Not in place before the first conv of a pre-activation block: x also feeds the shortcut.
        self.act = act(inplace=not preact)
        self.pool = nn.MaxPool2d(3, stride, 1) if downsample == "maxpool" and stride != 1 else nn.Identity()
        self.se = SqueezeExcite(cout, se_ratio, act) if se_ratio else nn.Identity()
        if project or cin != cout or stride != 1:
            self.shortcut: nn.Module = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )
        else:
            self.shortcut = nn.Identity()

    @property
    def last(self) -> SeparableConv:
        return getattr(self, f"sep{self.convs}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        for i in range(self.convs):
            if self.preact or i > 0:
                y = self.act(y)
            y = getattr(self, f"sep{i + 1}")(y)
        y = self.se(self.pool(y))
        out = y + self.shortcut(x)
        return out if self.preact else self.act(out)


class SepResNet(nn.Module):
    """The network. ``forward(x (N, C, H, W) float) -> (N, num_classes) logits``."""

    def __init__(self, config: ArchConfig):
        super().__init__()
        self.config = config
        w = config.width
        act = ACTIVATIONS[config.activation]
        layers: list[nn.Module] = []
        cin = config.in_channels
        for i, c in enumerate(config.stem_channels):
            c = _scaled(c, w)
            stride = config.stem_stride if i == 0 else 1
            layers += [nn.Conv2d(cin, c, 3, stride, 1, bias=False), nn.BatchNorm2d(c), act(True)]
            cin = c
        for st in config.stages:
            c = _scaled(st.channels, w)
            if st.block == "separable":
                layers += [SeparableConv(cin, c, st.stride), act(True)]
            else:
                layers.append(
                    Residual(
                        cin,
                        c,
                        st.stride,
                        project=st.block == "residual1",
                        convs=st.convs,
                        inner=_scaled(st.inner, w) if st.inner else 0,
                        act=act,
                        preact=config.preact,
                        downsample=config.downsample,
                        se_ratio=config.se_ratio,
                    )
                )
            cin = c
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Conv2d(cin, config.num_classes, 1)  # the paper's 1x1 conv to the classes
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # Zero the last BN of each residual branch: every block starts as (roughly) its
        # shortcut, which makes the deep 728-channel stack train from the first epoch.
        for m in self.modules():
            if isinstance(m, Residual):
                bn = m.last[3]
                assert isinstance(bn, nn.BatchNorm2d)
                nn.init.zeros_(bn.weight)
        # A small classifier start: ReLU6 features summed over hundreds of channels would
        # otherwise give logits of +-20 and a first-epoch loss far above log(7).
        nn.init.normal_(self.head.weight, std=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x))
        return self.head(self.dropout(x)).flatten(1)


PRESETS: dict[str, ArchConfig] = {
    # Exactly the paper's network.
    "paper": ArchConfig(name="paper"),
    # Same table, half width, strided stem: ~1/16 of the paper's multiply-adds, so that one
    # FER2013 epoch trains in about 2 minutes on 2 CPU cores.
    "lite": ArchConfig(name="lite", width=0.5, stem_stride=2, dropout=0.2),
    # A few-hundred-image smoke preset for CI: the same code path, tiny widths.
    "smoke": ArchConfig(name="smoke", width=0.125, stem_stride=2),
    # Table 1 baselines (module docstring). The paper's network plus SENet channel attention:
    "paper-se": ArchConfig(name="paper-se", se_ratio=16),
    # Chollet's Xception at 48x48 gray:
    "xception": ArchConfig(
        name="xception", stages=XCEPTION_STAGES, activation="relu", preact=True, downsample="maxpool"
    ),
}


def build(preset: str | ArchConfig, num_classes: int | None = None) -> SepResNet:
    """Build a preset by name (``paper``, ``lite``, ``smoke``, ``paper-se``, ``xception``) or a config."""
    cfg = PRESETS[preset] if isinstance(preset, str) else preset
    if num_classes is not None and num_classes != cfg.num_classes:
        cfg = ArchConfig.from_dict({**cfg.to_dict(), "num_classes": num_classes})
    return SepResNet(cfg)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module) -> int:
    """Multiply-adds of one forward pass on one face: convs and linear layers (BN, activations,
    pooling, SE's rescaling and resizing excluded). Any network of the registry: it reads
    ``model.config.in_channels`` and ``.input_size`` and counts with forward hooks."""
    macs = 0

    def conv_hook(m: nn.Conv2d, _inp, out):
        nonlocal macs
        k = m.weight.numel() // m.out_channels  # (cin/groups) * kh * kw
        macs += out.shape[-1] * out.shape[-2] * m.out_channels * k

    def linear_hook(m: nn.Linear, _inp, out):
        nonlocal macs
        macs += out.numel() // out.shape[0] * m.in_features  # per face: batch is 1

    hs = [m.register_forward_hook(conv_hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    hs += [m.register_forward_hook(linear_hook) for m in model.modules() if isinstance(m, nn.Linear)]
    cfg: Any = model.config  # ArchConfig or InceptionConfig: what every registry network has
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, cfg.in_channels, cfg.input_size, cfg.input_size))
    model.train(was_training)
    for h in hs:
        h.remove()
    return macs


__all__ = [
    "ArchConfig",
    "PAPER_STAGES",
    "PRESETS",
    "SepResNet",
    "SqueezeExcite",
    "Stage",
    "XCEPTION_STAGES",
    "build",
    "count_macs",
    "count_parameters",
]
