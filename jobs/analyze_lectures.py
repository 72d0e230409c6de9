"""Ray job entry point: ``fer_stream.cli.analyze`` (``fer-stream analyze``) as a script.

    python jobs/analyze_lectures.py --input lectures/ --output records/     # embedded Ray
    ray job submit --working-dir . -- python jobs/analyze_lectures.py --input ... --output ...

``fer_stream`` is importable without a path hack: installed (``pip install -e .``) for plain
runs, and under ``ray job submit --working-dir .`` Ray puts the working dir first on the job's
PYTHONPATH. ``--help`` lists the options and exit codes.
"""

import sys

from fer_stream.cli.analyze import main

if __name__ == "__main__":
    sys.exit(main())
