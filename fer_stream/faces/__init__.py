"""Faces: detection, landmarks, alignment/crops, tracking."""

from fer_stream.faces.detections import Detections

__all__ = ["Detections"]
