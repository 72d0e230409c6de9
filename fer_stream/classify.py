"""Batched emotion inference: aligned face crops -> probabilities (CPU or GPU).

A stateful stage in the Ray Data sense: the model loads once in ``__init__``, each call
transforms one batch. It never imports ray; ``pipeline.py`` decides devices and batch sizes.
Preprocessing (input size, grayscale, normalisation) comes from the weights' metadata.
"""

from __future__ import annotations

import os

import cv2
import numpy as np
import torch

from fer_stream.models import checkpoint, onnx


class EmotionClassifier:
    """Classify face crops with a self-describing checkpoint.

    Args:
        weights: a built-in name (``default``, ``ckplus``) or a weights file path.
        device: ``cpu``, ``cuda``, ``cuda:1`` or ``auto`` (CUDA when present).
        threads: torch CPU threads; set it to the CPUs the process holds (Ray sets
            ``OMP_NUM_THREADS=1`` in 1-CPU actors, which would otherwise leave cores idle).
        tta: also classify the mirrored face and average (2x the compute, ~+1 point accuracy).
        backend: ``auto`` (ONNX Runtime on CPU when installed, torch on CUDA), ``onnx`` or
            ``torch``. The ONNX graph is exported from this checkpoint's torch module at first
            use (``fer_stream.models.onnx``); both give the same probabilities within 1e-5.
    """

    def __init__(
        self,
        weights: str = "default",
        device: str = "auto",
        threads: int | None = None,
        tta: bool = False,
        backend: str = "auto",
    ):
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if backend not in ("auto", "onnx", "torch"):
            raise ValueError(f"backend must be auto, onnx or torch, got {backend!r}")
        if threads:
            torch.set_num_threads(int(threads))
        self.weights = checkpoint.load(weights)
        meta = self.weights.meta
        self.labels: tuple[str, ...] = self.weights.labels
        self.version: str = self.weights.version
        self.input_size = int(meta["input_size"])
        self.mean = float(meta["normalize"]["mean"])
        self.std = float(meta["normalize"]["std"])
        # Temperature scaling (training/calibrate.py): softmax(logits / T); 1 for uncalibrated weights.
        self.temperature = float(meta.get("temperature", 1.0))
        self.device = torch.device(device)
        self.tta = tta
        self.model = self.weights.build().to(self.device)
        self.cuda = self.device.type == "cuda"
        if self.cuda:  # tensor cores like NHWC; AMP halves memory traffic
            # Module.to takes memory_format at run time; torch's stubs do not list it
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        if backend == "auto":
            backend = "onnx" if not self.cuda and onnx.available() else "torch"
        if backend == "onnx" and self.cuda:
            raise ValueError("the onnx backend runs on CPU; use backend='torch' on CUDA")
        self.backend = backend
        self.ort: onnx.OrtNet | None = None
        if backend == "onnx":
            path = onnx.cached_export(self.model, "emotion", lambda: onnx.export_emotion(self.weights))
            self.ort = onnx.OrtNet(path, threads or torch.get_num_threads())

    def preprocess(self, crops: np.ndarray) -> torch.Tensor:
        """uint8 crops ``(N, S, S)`` gray or ``(N, S, S, 3)`` RGB -> float ``(N, 1, s, s)``.

        Crops of another size are resized (INTER_AREA) to the checkpoint's input size.
        """
        crops = np.asarray(crops)
        if crops.ndim == 4 and crops.shape[-1] == 3:
            crops = (
                np.stack([cv2.cvtColor(c, cv2.COLOR_RGB2GRAY) for c in crops])
                if len(crops)
                else crops[..., 0]
            )
        if crops.ndim != 3:
            raise ValueError(f"crops must be (N,S,S) or (N,S,S,3), got shape {crops.shape}")
        s = self.input_size
        if crops.shape[1:] != (s, s):
            crops = (
                np.stack([cv2.resize(c, (s, s), interpolation=cv2.INTER_AREA) for c in crops])
                if len(crops)
                else np.zeros((0, s, s), np.uint8)
            )
        x = torch.from_numpy(np.ascontiguousarray(crops, dtype=np.uint8)).float()
        return ((x / 255.0 - self.mean) / self.std).unsqueeze(1)

    @torch.inference_mode()
    def predict(self, crops: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Returns ``(N, K) float32`` probabilities in ``self.labels`` order; rows sum to 1.

        ``batch_size``: crops per forward pass; default 256 on CUDA, 64 on CPU, where a 64-crop
        pass keeps the activations in cache and runs faster than 256 (docs/BENCHMARKS.md,
        ``bench/classifier.py``).
        """
        batch_size = batch_size or (256 if self.cuda else 64)
        x = self.preprocess(crops)
        if self.ort is not None:
            return self._predict_onnx(self.ort, x.numpy(), batch_size)
        out = []
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size].to(self.device, non_blocking=True)
            if self.cuda:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cuda", dtype=torch.float16, enabled=self.cuda):
                p = (self.model(xb).float() / self.temperature).softmax(1)
                if self.tta:
                    p = (p + (self.model(xb.flip(-1)).float() / self.temperature).softmax(1)) / 2
            out.append(p.cpu())
        if not out:
            return np.zeros((0, len(self.labels)), np.float32)
        return torch.cat(out).numpy().astype(np.float32)

    def _predict_onnx(self, ort: onnx.OrtNet, x: np.ndarray, batch_size: int) -> np.ndarray:
        out = []
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size]
            p = _softmax(ort(xb)["logits"] / self.temperature)
            if self.tta:
                p = (p + _softmax(ort(xb[..., ::-1])["logits"] / self.temperature)) / 2
            out.append(p)
        if not out:
            return np.zeros((0, len(self.labels)), np.float32)
        return np.concatenate(out).astype(np.float32)

    def __call__(self, batch: dict) -> dict:
        """Ray-Data-style stage: ``batch["crops"]`` -> adds ``probs (N,K)`` and ``emotion (N,)``."""
        probs = self.predict(batch["crops"])
        batch["probs"] = probs
        batch["emotion"] = (
            np.array(self.labels, dtype=object)[probs.argmax(1)] if len(probs) else np.zeros(0, dtype=object)
        )
        return batch


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def default_threads() -> int:
    """CPUs this process may use (affinity-aware), for ``EmotionClassifier(threads=...)``."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
