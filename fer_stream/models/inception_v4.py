"""Inception-v4 (Szegedy, Ioffe, Vanhoucke, Alemi 2017, Figs. 3-9): the paper's Table 1 baseline.

Its blocks are parallel branches concatenated, not rows of separable convs, so it is its own module
rather than a preset of ``sepres``; it is still written as data: each block below is a tuple of
branches, each branch a chain of ``Conv`` (conv -> BN -> ReLU) and ``Pool`` ops, and
``Fork`` ends a branch in two convs on the same input (Inception-C's 1x3 / 3x1 split)::

    stem        conv3x3/2 V 32, conv3x3 V 32, conv3x3 64, Mixed-3a, Mixed-4a, Mixed-5a -> 384
    4 x Inception-A         384
    Reduction-A (k, l, m, n = 192, 224, 256, 384)     -> 1024, grid / 2
    7 x Inception-B         1024
    Reduction-B                                       -> 1536, grid / 2
    3 x Inception-C         1536
    global average pool -> dropout 0.2 -> linear to the classes

Channel counts, kernel shapes and 'valid' (V) paddings follow the figures as the TensorFlow
reference implements them (timm's ``inception_v4``); with 3 input channels and 1000 classes this
module has exactly that model's 42,679,816 parameters (pinned in ``tests/models``).

**Input size.** The published network runs on 299x299 (grids 35 / 17 / 8 for A / B / C). Its
unpadded stride-2 convs and pools need at least 75x75 (below that Reduction-B has nothing left to
reduce), and at 75 Inception-C would run on 1x1 maps, where its factorised 1x3 / 3x1 convs see
only padding. 139x139 is the smallest input at which Inception-C's grid is 3x3 (grids 15 / 7 / 3),
so that is what it runs on here, at about a fifth of the 299-px cost.

**How a 48x48 gray face is fed.** Like every network of the registry, the module takes the
project's ``(N, 1, 48, 48)`` normalised crops (checkpoint ``input_size`` 48, so training,
``EmotionClassifier`` and ONNX export need nothing new); its first op upsamples them bilinearly to
``resize_to`` (139). Gray stays one input channel: copying it into three RGB channels would feed
the same information through three times the first conv's weights (a from-scratch network has
no ImageNet RGB filters to reuse).

Other choices: BN eps 1e-3 (TensorFlow's, as the reference); PyTorch's default conv init; the
classifier starts small (std 0.01) like ``sepres`` so an untrained network's loss is near log(K).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

FAMILY = "inception_v4"
MIN_INPUT = 75  # the smallest input every unpadded stride-2 op of the network accepts


@dataclass(frozen=True)
class Conv:
    """conv (kh, kw) -> BN -> ReLU; ``valid``: no padding (the figures' "V"), else 'same'."""

    out: int
    k: int | tuple[int, int] = 1
    stride: int = 1
    valid: bool = False


@dataclass(frozen=True)
class Pool:
    """3x3 pool: ``max`` stride 2 unpadded (reductions) or ``avg`` stride 1 padded (A/B/C)."""

    kind: str


@dataclass(frozen=True)
class Fork:
    """Two convs on the same input, concatenated: Inception-C's 1x3 / 3x1 split."""

    a: Conv
    b: Conv


Op = Conv | Pool | Fork
Block = tuple[tuple[Op, ...], ...]  # branches, concatenated along channels

STEM: tuple[Conv, ...] = (Conv(32, 3, 2, valid=True), Conv(32, 3, valid=True), Conv(64, 3))
MIXED_3A: Block = ((Pool("max"),), (Conv(96, 3, 2, valid=True),))
MIXED_4A: Block = (
    (Conv(64), Conv(96, 3, valid=True)),
    (Conv(64), Conv(64, (1, 7)), Conv(64, (7, 1)), Conv(96, 3, valid=True)),
)
MIXED_5A: Block = ((Conv(192, 3, 2, valid=True),), (Pool("max"),))
INCEPTION_A: Block = (
    (Conv(96),),
    (Conv(64), Conv(96, 3)),
    (Conv(64), Conv(96, 3), Conv(96, 3)),
    (Pool("avg"), Conv(96)),
)
REDUCTION_A: Block = (
    (Conv(384, 3, 2, valid=True),),
    (Conv(192), Conv(224, 3), Conv(256, 3, 2, valid=True)),
    (Pool("max"),),
)
INCEPTION_B: Block = (
    (Conv(384),),
    (Conv(192), Conv(224, (1, 7)), Conv(256, (7, 1))),
    (Conv(192), Conv(192, (7, 1)), Conv(224, (1, 7)), Conv(224, (7, 1)), Conv(256, (1, 7))),
    (Pool("avg"), Conv(128)),
)
REDUCTION_B: Block = (
    (Conv(192), Conv(192, 3, 2, valid=True)),
    (Conv(256), Conv(256, (1, 7)), Conv(320, (7, 1)), Conv(320, 3, 2, valid=True)),
    (Pool("max"),),
)
INCEPTION_C: Block = (
    (Conv(256),),
    (Conv(384), Fork(Conv(256, (1, 3)), Conv(256, (3, 1)))),
    (Conv(384), Conv(448, (3, 1)), Conv(512, (1, 3)), Fork(Conv(256, (1, 3)), Conv(256, (3, 1)))),
    (Pool("avg"), Conv(256)),
)


@dataclass(frozen=True)
class InceptionConfig:
    """Everything needed to rebuild the network; stored inside every checkpoint (``family``
    tells ``fer_stream.models.registry`` which builder reads it)."""

    name: str = "inception-v4"
    family: str = FAMILY
    input_size: int = 48  # the crops the module takes
    resize_to: int = 139  # what the network runs on after the bilinear upsampling (>= 75)
    in_channels: int = 1
    num_classes: int = 7
    repeats: tuple[int, int, int] = (4, 7, 3)  # Inception-A, -B, -C blocks
    width: float = 1.0  # multiplies every conv's channels (smoke tests only)
    dropout: float = 0.2  # the paper's keep probability 0.8

    def __post_init__(self):
        if self.resize_to < MIN_INPUT:
            raise ValueError(f"Inception-v4 needs an input of at least {MIN_INPUT} px, got {self.resize_to}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> InceptionConfig:
        d = dict(d)
        d["repeats"] = tuple(d["repeats"])
        return cls(**d)


def _pair(k: int | tuple[int, int]) -> tuple[int, int]:
    return (k, k) if isinstance(k, int) else (k[0], k[1])


class ConvBN(nn.Sequential):
    def __init__(self, cin: int, spec: Conv, width: float):
        kh, kw = _pair(spec.k)
        pad = (0, 0) if spec.valid else (kh // 2, kw // 2)
        cout = max(4, int(math.ceil(spec.out * width)))
        super().__init__(
            nn.Conv2d(cin, cout, (kh, kw), spec.stride, pad, bias=False),
            nn.BatchNorm2d(cout, eps=1e-3),
            nn.ReLU(inplace=True),
        )
        self.out_channels = cout


class ForkBN(nn.Module):
    def __init__(self, cin: int, spec: Fork, width: float):
        super().__init__()
        self.a, self.b = ConvBN(cin, spec.a, width), ConvBN(cin, spec.b, width)
        self.out_channels = self.a.out_channels + self.b.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.a(x), self.b(x)], 1)


def _branch(cin: int, ops: tuple[Op, ...], width: float) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    for op in ops:
        if isinstance(op, Pool):
            layers.append(
                nn.MaxPool2d(3, 2)
                if op.kind == "max"
                else nn.AvgPool2d(3, 1, 1, count_include_pad=False)  # as the reference
            )
            continue
        m = ConvBN(cin, op, width) if isinstance(op, Conv) else ForkBN(cin, op, width)
        layers.append(m)
        cin = m.out_channels
    return nn.Sequential(*layers), cin


class Mixed(nn.Module):
    """One block: its branches on the same input, concatenated along channels."""

    def __init__(self, cin: int, block: Block, width: float):
        super().__init__()
        built = [_branch(cin, ops, width) for ops in block]
        self.branches = nn.ModuleList(b for b, _ in built)
        self.out_channels = sum(c for _, c in built)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([b(x) for b in self.branches], 1)


class InceptionV4(nn.Module):
    """``forward(x (N, C, input_size, input_size) float) -> (N, num_classes) logits``."""

    def __init__(self, config: InceptionConfig):
        super().__init__()
        self.config = config
        w = config.width
        layers: list[nn.Module] = []
        cin = config.in_channels
        for spec in STEM:
            stem = ConvBN(cin, spec, w)
            layers.append(stem)
            cin = stem.out_channels
        n_a, n_b, n_c = config.repeats
        blocks = (
            [MIXED_3A, MIXED_4A, MIXED_5A]
            + [INCEPTION_A] * n_a
            + [REDUCTION_A]
            + [INCEPTION_B] * n_b
            + [REDUCTION_B]
            + [INCEPTION_C] * n_c
        )
        for block in blocks:
            mixed = Mixed(cin, block, w)
            layers.append(mixed)
            cin = mixed.out_channels
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(cin, config.num_classes)
        nn.init.normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.config.resize_to
        if x.shape[-2:] != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False)
        x = self.pool(self.features(x)).flatten(1)
        return self.head(self.dropout(x))


PRESETS: dict[str, InceptionConfig] = {
    "inception-v4": InceptionConfig(),
    # The same code path at a few thousand parameters, for CI (table1 / gpu.sh smoke runs).
    "inception-v4-smoke": InceptionConfig(
        name="inception-v4-smoke", resize_to=MIN_INPUT, repeats=(1, 1, 1), width=0.0625
    ),
}


def build(preset: str | InceptionConfig, num_classes: int | None = None) -> InceptionV4:
    cfg = PRESETS[preset] if isinstance(preset, str) else preset
    if num_classes is not None and num_classes != cfg.num_classes:
        cfg = InceptionConfig.from_dict({**cfg.to_dict(), "num_classes": num_classes})
    return InceptionV4(cfg)


__all__ = ["FAMILY", "InceptionConfig", "InceptionV4", "PRESETS", "build"]
