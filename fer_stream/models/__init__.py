"""Networks (one per file) and the registry of presets and built-in weights."""

from fer_stream.models.checkpoint import BUILTIN, Weights, WeightsError, load, save
from fer_stream.models.sepres import PRESETS, ArchConfig, SepResNet, Stage, build

__all__ = [
    "BUILTIN",
    "PRESETS",
    "ArchConfig",
    "SepResNet",
    "Stage",
    "Weights",
    "WeightsError",
    "build",
    "load",
    "save",
]
