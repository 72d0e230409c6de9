"""bench/gpu.sh --smoke: every step of the GPU run, at toy sizes, on CPU (no CUDA needed)."""

import json
import os
import subprocess
import sys

import pytest

from fer_stream.labels import FER2013_LABELS
from fer_stream.models import checkpoint
from tests.helpers import ROOT, synthetic_faces, write_parquet


@pytest.mark.slow
def test_gpu_script_smoke_on_cpu(tmp_path):
    data = tmp_path / "data" / "fer2013"
    data.mkdir(parents=True)
    write_parquet(data / "train.parquet", *synthetic_faces(20, FER2013_LABELS, seed=0))
    write_parquet(data / "val.parquet", *synthetic_faces(6, FER2013_LABELS, seed=1), split="PublicTest")
    out, work = tmp_path / "out", tmp_path / "work"
    env = {
        **os.environ,
        "OUT": str(out),
        "WORK": str(work),
        "DATA": str(tmp_path / "data"),
        "PY": sys.executable,
        "FER_STREAM_CACHE": str(tmp_path / "cache"),  # ONNX exports of the CPU classifier timing
    }
    r = subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu.sh"), "--smoke"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    log = (out / "gpu.log").read_text()
    steps = {s["step"]: s["rc"] for s in summary["steps"]}
    assert steps == {"machine": 0, "fer2013": 0, "salvage": 0, "ship": 0, "table1": 0, "classifier": 0}, log[
        -3000:
    ]
    assert summary["smoke"] is True and summary["fer2013_train"]["preset"] == "smoke"
    # The device tool brings back at most 8 files, none in sub-folders here.
    files = sorted(p.name for p in out.iterdir())
    assert files == [
        "classifier.json",
        "gpu.log",
        "machine.json",
        "smoke-fer2013.pt",
        "summary.json",
        "table1.jsonl",
        "table1.md",
    ]
    # The FER2013 model ships in half precision; the salvage path (used when the time limit stops
    # training) writes a loadable self-describing file from last.pt.
    w = checkpoint.load(out / "smoke-fer2013.pt")
    assert w.labels == FER2013_LABELS and w.version == "smoke-fer2013-gpu"
    salvaged = checkpoint.load(work / "fer2013" / "salvaged.pt")
    assert salvaged.meta["training"]["salvaged_from"] == "last.pt"
    # Table 1: the FER2013 model of step 1 is the fine-tuning start of its architecture.
    rows = [json.loads(x) for x in (out / "table1.jsonl").read_text().splitlines()]
    assert {(r["model"], r["init"]) for r in rows} == {
        ("smoke", "scratch"),
        ("smoke", "fer2013"),
        ("inception-v4-smoke", "scratch"),
    }
    assert "| `smoke` | FER2013" in (out / "table1.md").read_text()
    clf = json.loads((out / "classifier.json").read_text())
    assert {r["preset"] for r in clf["rows"]} >= {"smoke", "inception-v4-smoke"}
    assert all(r["faces_s_b8"] > 0 and r["faces_s_b16"] > 0 for r in clf["rows"])
