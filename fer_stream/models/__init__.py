"""Networks (one per file) and the registry of presets and built-in weights.

``build(name)`` builds any preset of ``registry.PRESETS``: the separable-residual table
(``paper``, ``lite``, ``smoke``, ``paper-se``, ``xception``) and ``inception-v4``.
"""

from fer_stream.models.checkpoint import BUILTIN, Weights, WeightsError, load, save
from fer_stream.models.inception_v4 import InceptionConfig, InceptionV4
from fer_stream.models.registry import PRESETS, build
from fer_stream.models.sepres import ArchConfig, SepResNet, Stage, count_macs, count_parameters

__all__ = [
    "BUILTIN",
    "PRESETS",
    "ArchConfig",
    "InceptionConfig",
    "InceptionV4",
    "SepResNet",
    "Stage",
    "Weights",
    "WeightsError",
    "build",
    "count_macs",
    "count_parameters",
    "load",
    "save",
]
