"""`fer-stream demo`: the demo lecture, analysed as ``jobs/analyze_lectures.py --demo``."""

from __future__ import annotations

from fer_stream.cli import exits


def _demo(a) -> int:
    from fer_stream.demo import run_demo

    rows = run_demo(a.workdir, sample_fps=a.sample_fps)
    return exits.OK if rows else exits.ERROR


def register(sub) -> None:
    p = sub.add_parser("demo", help="make a demo lecture from registry-shipped faces and analyse it")
    p.add_argument("--workdir", default="demo_output")
    p.add_argument("--sample-fps", type=float, default=2.0)
    p.set_defaults(func=_demo)
