"""Shared pytest fixtures. Plain helpers (paths, synthetic data, a real Ray head) are in
``tests/helpers.py``, imported as ``from tests.helpers import ...``."""
