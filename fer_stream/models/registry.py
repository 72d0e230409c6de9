"""Every network by name: a builder per preset, and the config of a checkpoint read back.

Presets: ``paper``, ``lite``, ``smoke``, ``paper-se``, ``xception`` (rows of the separable-residual
table, ``sepres.py``) and ``inception-v4``, ``inception-v4-smoke`` (``inception_v4.py``). A
checkpoint's ``arch`` dict names its family (``"family": "inception_v4"``); files without one
(every file written before Inception-v4 existed) are ``sepres``.
"""

from __future__ import annotations

import dataclasses

from torch import nn

from fer_stream.models import inception_v4, sepres
from fer_stream.models.inception_v4 import InceptionConfig, InceptionV4
from fer_stream.models.sepres import ArchConfig, SepResNet

Config = ArchConfig | InceptionConfig

PRESETS: dict[str, Config] = {**sepres.PRESETS, **inception_v4.PRESETS}


def names() -> tuple[str, ...]:
    return tuple(PRESETS)


def with_classes(cfg: Config, num_classes: int | None) -> Config:
    """The same architecture with another number of outputs (``None``: unchanged)."""
    if num_classes is None or num_classes == cfg.num_classes:
        return cfg
    return dataclasses.replace(cfg, num_classes=int(num_classes))


def from_config(cfg: Config) -> nn.Module:
    """The network of a config, freshly initialised."""
    if isinstance(cfg, InceptionConfig):
        return InceptionV4(cfg)
    if isinstance(cfg, ArchConfig):
        return SepResNet(cfg)
    raise TypeError(f"not a network config: {type(cfg).__name__}")


def build(preset: str | Config, num_classes: int | None = None) -> nn.Module:
    """Build a preset by name (see the module docstring) or from a config."""
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise KeyError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
        preset = PRESETS[preset]
    return from_config(with_classes(preset, num_classes))


def config_from_dict(d: dict) -> Config:
    """A checkpoint's ``arch`` dict back to its config."""
    family = d.get("family", "sepres")
    if family == inception_v4.FAMILY:
        return InceptionConfig.from_dict(d)
    if family == "sepres":
        return ArchConfig.from_dict(d)
    raise ValueError(f"unknown network family {family!r} in a checkpoint's arch")


__all__ = ["Config", "PRESETS", "build", "config_from_dict", "from_config", "names", "with_classes"]
