"""Self-describing weights: a checkpoint carries everything inference needs.

A weights file is ``torch.save`` of a plain dict::

    {"format": "fer_stream.weights/1",
     "arch": config.to_dict(),                # rebuilds the network (registry.config_from_dict)
     "state_dict": {...},                     # float16 on disk for shipped models
     "meta": {"labels": [...],                # output order of the logits
              "input_size": 48, "grayscale": True,
              "normalize": {"mean": m, "std": s},   # x = (pixel/255 - m) / s
              "version": "lite-fer2013-...",  # goes into every record as model_version
              "training": {...}, "metrics": {...}}}

Inference (``fer_stream.classify``) reads its preprocessing from ``meta`` and never re-declares it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from fer_stream.models import registry

FORMAT = "fer_stream.weights/1"

# Built-in models shipped inside the package (fer_stream/models/weights/<file>).
BUILTIN: dict[str, str] = {"default": "default.pt", "ckplus": "ckplus.pt"}


class WeightsError(ValueError):
    """A weights file is missing, unreadable or not a fer_stream checkpoint."""


@dataclass(frozen=True)
class Weights:
    arch: registry.Config
    state_dict: dict[str, torch.Tensor]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.meta["labels"])

    @property
    def version(self) -> str:
        return str(self.meta.get("version", self.arch.name))

    def build(self) -> torch.nn.Module:
        """The network in float32 with these weights loaded, in eval mode."""
        model = registry.from_config(self.arch)
        model.load_state_dict({k: v.float() for k, v in self.state_dict.items()})
        return model.eval()


def make_meta(labels, mean: float, std: float, input_size: int = 48, **extra) -> dict[str, Any]:
    return {
        "labels": list(labels),
        "input_size": int(input_size),
        "grayscale": True,
        "normalize": {"mean": float(mean), "std": float(std)},
        **extra,
    }


def save(path: str | Path, model: torch.nn.Module, meta: dict[str, Any], half: bool = False) -> Path:
    """Write a self-describing weights file (``half=True``: float16 tensors, for shipping)."""
    sd = {
        k: (v.detach().cpu().half() if half and v.is_floating_point() else v.detach().cpu())
        for k, v in model.state_dict().items()
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    config: Any = model.config  # every registry network keeps its architecture config
    torch.save({"format": FORMAT, "arch": config.to_dict(), "state_dict": sd, "meta": meta}, tmp)
    tmp.replace(path)  # atomic: a crash never leaves half a weights file
    return path


def builtin_path(name: str) -> Path:
    return Path(str(resources.files("fer_stream.models") / "weights" / BUILTIN[name]))


def load(name_or_path: str | Path) -> Weights:
    """Load a built-in model by name (``default``, ``ckplus``) or a checkpoint path."""
    if str(name_or_path) in BUILTIN:
        path = builtin_path(str(name_or_path))
    else:
        path = Path(name_or_path)
    if not path.is_file():
        known = ", ".join(BUILTIN)
        raise WeightsError(f"no weights at {path} (built-in names: {known})")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a corrupt file
        raise WeightsError(f"cannot read weights {path}: {e}") from e
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise WeightsError(f"{path} is not a fer_stream weights file (format {FORMAT})")
    # Training checkpoints keep the model under "model"; weights files under "state_dict".
    return Weights(registry.config_from_dict(obj["arch"]), obj["state_dict"], obj["meta"])
