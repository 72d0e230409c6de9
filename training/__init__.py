"""Training and evaluation scripts for fer_stream's emotion networks (not imported by the library)."""
