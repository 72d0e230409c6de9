"""`fer-stream export --onnx PATH [--weights NAME]`: the emotion model for other runtimes.

The ONNX file carries, in its metadata (``metadata_props``), the label names, the input size and
normalisation, and the temperature of the softmax: enough to use it without fer_stream.
"""

from __future__ import annotations

import json
import sys

from fer_stream.cli import exits


def _export(a) -> int:
    from fer_stream.models import checkpoint, onnx

    try:
        w = checkpoint.load(a.weights)
        path = onnx.export_emotion(w, a.onnx)
    except (checkpoint.WeightsError, OSError) as e:
        print(f"fer-stream export: {e}", file=sys.stderr)
        return exits.ERROR
    print(
        json.dumps(
            {"onnx": str(path), "version": w.version, "labels": list(w.labels), "bytes": path.stat().st_size}
        )
    )
    return exits.OK


def register(sub) -> None:
    p = sub.add_parser(
        "export",
        help="export an emotion model to ONNX (labels and preprocessing in its metadata)",
        description=__doc__,
    )
    p.add_argument("--onnx", required=True, metavar="PATH", help="the .onnx file to write")
    p.add_argument("--weights", default="default", help="built-in name or weights file (default: default)")
    p.set_defaults(func=_export)
