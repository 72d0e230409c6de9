"""`fer-stream models`: the built-in emotion models and their measured metrics."""

from __future__ import annotations

import json

from fer_stream.cli import exits


def _models(a) -> int:
    from fer_stream.models import BUILTIN, checkpoint

    for name in BUILTIN:
        w = checkpoint.load(name)
        m = w.meta
        print(
            json.dumps(
                {
                    "name": name,
                    "version": w.version,
                    "preset": w.arch.name,
                    "labels": list(w.labels),
                    "input_size": m["input_size"],
                    "metrics": m.get("metrics", {}),
                    "file": str(checkpoint.builtin_path(name)),
                }
            )
        )
    return exits.OK


def register(sub) -> None:
    p = sub.add_parser("models", help="list the built-in emotion models and their metrics")
    p.set_defaults(func=_models)
