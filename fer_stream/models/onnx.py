"""ONNX export of the project's own torch networks, and ONNX Runtime sessions for CPU inference.

Why: on CPU, ONNX Runtime runs these small depthwise-separable / PReLU networks several times
faster than torch eager (measured: docs/BENCHMARKS.md, ``bench/onnx_speed.py``); torch stays for
training and CUDA. Nothing is downloaded: graphs are exported from the torch modules here, at
first use, into a cache folder (``$FER_STREAM_CACHE`` or ``~/.cache/fer_stream/onnx``), keyed by
the sha256 of the weights and the exporter settings, and written atomically (Ray workers of one
node may export at the same time; the last rename wins with identical bytes).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from pathlib import Path
from typing import overload

import numpy as np
import torch

from fer_stream.ops.atomic import write_atomic

OPSET = 17
_EXPORT_VERSION = "1"  # bump when the export settings change: old cache files are then not reused


def available() -> bool:
    """Is ``onnxruntime`` importable (the CPU backend)?"""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def cache_dir() -> Path:
    root = os.environ.get("FER_STREAM_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "fer_stream" / "onnx"


def _state_sha(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in module.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().float().numpy().tobytes())
    return h.hexdigest()


def to_onnx_bytes(
    module: torch.nn.Module,
    example: torch.Tensor,
    input_name: str,
    output_names: list[str],
    dynamic: dict[str, dict[int, str]],
    metadata: dict[str, str] | None = None,
) -> bytes:
    """Export ``module`` (eval mode, float32, CPU) to ONNX bytes; ``metadata`` goes into the model's
    ``metadata_props`` (labels, preprocessing: what another runtime needs to use it)."""
    module = module.float().cpu().eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            # the TorchScript exporter (dynamo=False) writes to a file object too; the stubs say a path
            buf,  # type: ignore[arg-type]
            input_names=[input_name],
            output_names=output_names,
            dynamic_axes=dynamic,
            opset_version=OPSET,
            dynamo=False,
        )
    data = buf.getvalue()
    if metadata:
        import onnx

        model = onnx.load_from_string(data)
        for k, v in metadata.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = k, v
        data = model.SerializeToString()
    return data


def cached_export(module: torch.nn.Module, name: str, export) -> Path:
    """The cache file of ``module`` (exported by ``export() -> bytes`` when missing)."""
    key = hashlib.sha256(f"{name}:{_EXPORT_VERSION}:{OPSET}:{_state_sha(module)}".encode()).hexdigest()[:20]
    path = cache_dir() / f"{name}-{key}.onnx"
    if not path.is_file():
        data = export()
        write_atomic(path, lambda f: f.write(data))
    return path


def session(path: str | os.PathLike, threads: int):
    """A CPU ``onnxruntime.InferenceSession`` with ``threads`` intra-op threads (the CPUs the process
    holds: Ray's ``OMP_NUM_THREADS=1`` does not apply to ORT's own pool, so it is set explicitly)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, int(threads))
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def emotion_metadata(weights) -> dict[str, str]:
    """What a user's runtime needs to use an exported emotion model (``fer-stream export``)."""
    meta = weights.meta
    return {
        "fer_stream.version": str(weights.version),
        "labels": json.dumps(list(weights.labels)),
        "input": json.dumps(
            {
                "shape": ["N", 1, int(meta["input_size"]), int(meta["input_size"])],
                "grayscale": True,
                "scale": "x / 255",
                "normalize": meta["normalize"],
                "layout": "NCHW float32, aligned face crops (FER2013 framing, fer_stream.faces.align)",
            }
        ),
        "output": json.dumps(
            {
                "name": "logits",
                "probabilities": "softmax(logits / temperature)",
                "temperature": meta.get("temperature", 1.0),
            }
        ),
    }


@overload
def export_emotion(weights, path: None = None) -> bytes: ...
@overload
def export_emotion(weights, path: str | os.PathLike) -> Path: ...
def export_emotion(weights, path: str | os.PathLike | None = None) -> Path | bytes:
    """The emotion network of ``weights`` (a ``checkpoint.Weights``) as ONNX with its metadata:
    written to ``path`` when given, else returned as bytes."""
    s = int(weights.meta["input_size"])
    data = to_onnx_bytes(
        weights.build(),
        torch.zeros(2, 1, s, s),
        "x",
        ["logits"],
        {"x": {0: "n"}, "logits": {0: "n"}},
        emotion_metadata(weights),
    )
    if path is None:
        return data
    return write_atomic(path, lambda f: f.write(data))


class OrtNet:
    """Call an ONNX session like the torch module it came from: ``numpy (N, C, H, W) float32`` in,
    ``{output name: numpy array}`` out."""

    def __init__(self, path: Path, threads: int):
        self.sess = session(path, threads)
        self.input = self.sess.get_inputs()[0].name
        self.outputs = [o.name for o in self.sess.get_outputs()]

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        out = self.sess.run(None, {self.input: np.ascontiguousarray(x, np.float32)})
        return dict(zip(self.outputs, out))
