"""fer_stream: classroom lecture videos -> per-student emotion and attention records."""

__version__ = "0.1.0"
