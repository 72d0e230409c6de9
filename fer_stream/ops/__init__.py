"""Operating an output folder: its layout (every folder and file name), the writer's lock, run records."""
