"""`fer-stream` command line: one module per command, each a thin wrapper over the library.

Every command module has ``register(subparsers)``, which adds its parser(s) and sets ``func``
(parsed args -> exit code from :mod:`fer_stream.cli.exits`). Heavy imports stay inside ``func``
so that ``fer-stream --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys

from fer_stream.cli import (
    analyze,
    check,
    classify,
    demo,
    detect,
    enroll,
    exits,
    export,
    forget,
    models,
    nightly,
    report,
)

COMMANDS = (models, classify, detect, check, demo, analyze, report, nightly, forget, enroll, export)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="fer-stream", description=__doc__, epilog=exits.EPILOG)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for module in COMMANDS:
        module.register(sub)
    a = ap.parse_args(argv)
    from fer_stream.demo import DemoError  # imports av: after parsing, so --help stays fast

    try:
        return a.func(a)
    except DemoError as e:  # `demo` and `analyze --demo` without the demo extra
        print(f"fer-stream {a.cmd}: {e}", file=sys.stderr)
        return exits.ERROR


if __name__ == "__main__":
    sys.exit(main())
