"""HeadNet: a small CNN that reads a student's head state from a 15-40 px classroom face (issue 22).

Input: ``(N, 3, 32, 32)`` RGB crops of the square region around a detected face
(``fer_stream.head_state.head_crop_boxes``), normalised as the checkpoint's ``meta["normalize"]``
says. Output: ``(N, 4)`` logits in ``meta["labels"]`` order (``up, down, around, phone``).

The ``headnet`` preset, row for row from ``HEADNET_STAGES``::

    stage   block  channels  stride  map
    stem    conv      16       1     32x32
    1       conv      24       2     16x16
    2       conv      24       1     16x16
    3       conv      48       2      8x8
    4       res       48       1      8x8
    5       conv      64       2      4x4
    6       res       64       1      4x4
    head    global average pool -> dropout -> linear to the classes

``conv``: 3x3 conv (bias-free) -> BN -> ReLU. ``res``: two of them with an identity shortcut
(post-activation: ``relu(bn(conv(relu(bn(conv(x))))) + x)``), so the deepest maps get a second look
without another downsampling. Why so small: a 15 px face cropped at twice its size holds about
30x30 pixels of information; 32 px in and three stride-2 stages leave a 4x4 map, which is as coarse
as a head's layout (hair above, face below, hands at the bottom) gets. About 0.17 M parameters,
0.33 MB in float16, 7.6 M multiply-adds per face.

Checkpoints use the project's weights format (``fer_stream.models.checkpoint``: ``format``,
``arch``, ``state_dict``, ``meta``); ``arch`` carries ``"family": "headnet"``, so the emotion
registry never mistakes one for an expression network. :func:`load_weights` reads them back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from fer_stream.models.checkpoint import FORMAT, WeightsError

FAMILY = "headnet"
BlockKind = Literal["conv", "res"]
BUILTIN: dict[str, str] = {"default": "headstate.pt"}  # fer_stream/models/weights/<file>


@dataclass(frozen=True)
class Stage:
    """One row of the table: a ``conv`` (3x3 conv-BN-ReLU) or a ``res`` block (two, plus identity)."""

    block: BlockKind
    channels: int
    stride: int


# The shipped network (module docstring): 32 -> 16 -> 8 -> 4.
HEADNET_STAGES: tuple[Stage, ...] = (
    Stage("conv", 24, 2),
    Stage("conv", 24, 1),
    Stage("conv", 48, 2),
    Stage("res", 48, 1),
    Stage("conv", 64, 2),
    Stage("res", 64, 1),
)

# The same shape at a quarter of the widths: the training script's --smoke preset (seconds).
SMOKE_STAGES: tuple[Stage, ...] = (
    Stage("conv", 8, 2),
    Stage("conv", 16, 2),
    Stage("conv", 24, 2),
)


@dataclass(frozen=True)
class HeadNetConfig:
    """Everything needed to rebuild the network; stored in every checkpoint's ``arch``."""

    name: str
    stages: tuple[Stage, ...] = HEADNET_STAGES
    stem_channels: int = 16
    in_channels: int = 3
    input_size: int = 32
    num_classes: int = 4
    dropout: float = 0.2
    family: str = field(default=FAMILY)

    def __post_init__(self):
        if self.family != FAMILY:
            raise ValueError(f"not a {FAMILY} config: family {self.family!r}")
        for st in self.stages:
            if st.block == "res" and st.stride != 1:
                raise ValueError(f"a res block keeps the map size (stride 1), got {st}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> HeadNetConfig:
        d = dict(d)
        d["stages"] = tuple(Stage(**s) if isinstance(s, dict) else Stage(*s) for s in d["stages"])
        return cls(**d)


def _conv_bn_relu(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class ResBlock(nn.Module):
    """``relu(bn(conv(relu(bn(conv(x))))) + x)``, 3x3 convs, channels and map size unchanged."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = _conv_bn_relu(channels, channels, 1)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn2(self.conv2(self.conv1(x))) + x)


class HeadNet(nn.Module):
    """The network. ``forward(x (N, 3, S, S) float, normalised) -> (N, num_classes) logits``."""

    def __init__(self, config: HeadNetConfig):
        super().__init__()
        self.config = config
        layers: list[nn.Module] = [_conv_bn_relu(config.in_channels, config.stem_channels, 1)]
        cin = config.stem_channels
        for st in config.stages:
            if st.block == "res":
                if st.channels != cin:
                    raise ValueError(f"a res block needs channels in == out, got {cin} -> {st.channels}")
                layers.append(ResBlock(cin))
            else:
                layers.append(_conv_bn_relu(cin, st.channels, st.stride))
            cin = st.channels
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(cin, config.num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, ResBlock):
                nn.init.zeros_(m.bn2.weight)  # each res block starts as the identity
        nn.init.normal_(self.head.weight, std=0.01)  # start near uniform probabilities
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.pool(self.features(x)).flatten(1)))


PRESETS: dict[str, HeadNetConfig] = {
    "headnet": HeadNetConfig(name="headnet"),
    "headnet-smoke": HeadNetConfig(name="headnet-smoke", stages=SMOKE_STAGES, stem_channels=8, dropout=0.0),
}


def build(preset: str | HeadNetConfig, num_classes: int | None = None) -> HeadNet:
    """A fresh network of a preset (``headnet``, ``headnet-smoke``) or a config."""
    cfg = PRESETS[preset] if isinstance(preset, str) else preset
    if num_classes is not None and num_classes != cfg.num_classes:
        cfg = HeadNetConfig.from_dict({**cfg.to_dict(), "num_classes": int(num_classes)})
    return HeadNet(cfg)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@dataclass(frozen=True)
class HeadWeights:
    """A head-state checkpoint read back: architecture, tensors and ``meta`` (labels, input size,
    normalisation, crop geometry, training data, metrics)."""

    arch: HeadNetConfig
    state_dict: dict[str, torch.Tensor]
    meta: dict[str, Any]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.meta["labels"])

    @property
    def version(self) -> str:
        return str(self.meta.get("version", self.arch.name))

    def build(self) -> HeadNet:
        """The network in float32 with these weights, in eval mode."""
        model = HeadNet(self.arch)
        model.load_state_dict({k: v.float() for k, v in self.state_dict.items()})
        return model.eval()


def builtin_path(name: str = "default") -> Path:
    return Path(str(resources.files("fer_stream.models") / "weights" / BUILTIN[name]))


def load_weights(name_or_path: str | Path = "default") -> HeadWeights:
    """A shipped head-state model by name (``default``) or a checkpoint path."""
    path = builtin_path(str(name_or_path)) if str(name_or_path) in BUILTIN else Path(name_or_path)
    if not path.is_file():
        raise WeightsError(f"no head-state weights at {path} (built-in names: {', '.join(BUILTIN)})")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a corrupt file
        raise WeightsError(f"cannot read weights {path}: {e}") from e
    if not isinstance(obj, dict) or obj.get("format") != FORMAT or obj["arch"].get("family") != FAMILY:
        raise WeightsError(f"{path} is not a fer_stream head-state weights file ({FORMAT}, {FAMILY})")
    return HeadWeights(HeadNetConfig.from_dict(obj["arch"]), obj["state_dict"], obj["meta"])


__all__ = [
    "BUILTIN",
    "FAMILY",
    "HEADNET_STAGES",
    "HeadNet",
    "HeadNetConfig",
    "HeadWeights",
    "PRESETS",
    "ResBlock",
    "SMOKE_STAGES",
    "Stage",
    "build",
    "builtin_path",
    "count_parameters",
    "load_weights",
]
