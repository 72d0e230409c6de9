"""Emotion label names: one canonical vocabulary, and the aliases datasets use.

FER2013's order ``angry, disgust, fear, happy, sad, surprise, neutral`` (0..6) is the order of
the ``p_*`` columns in the records. CK+ says ``anger``/``sadness`` and has ``contempt`` but no
``neutral``; :func:`canonical` maps any of these spellings to one name.
"""

from __future__ import annotations

FER2013_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
CKPLUS_LABELS: tuple[str, ...] = ("angry", "contempt", "disgust", "fear", "happy", "sad", "surprise")

_ALIASES = {
    "anger": "angry",
    "sadness": "sad",
    "happiness": "happy",
    "joy": "happy",
    "surprised": "surprise",
    "fearful": "fear",
    "disgusted": "disgust",
    "calm": "neutral",
}


def canonical(label: str) -> str:
    """``'Anger'`` -> ``'angry'``; unknown names pass through lowercased and stripped."""
    name = str(label).strip().lower()
    return _ALIASES.get(name, name)
