"""What losing a worker node mid-run costs: a head and a second node started with `ray start` on this
machine (tests.helpers.RayCluster, as tests/test_cluster.py), the demo class through `ray job submit`,
once clean and once with the second node SIGKILLed while it runs a segment and a classifier actor.

    RAY_AUTH_MODE=token nice -n 10 python bench/cluster.py --repeat 3 --json bench/results/cluster.json

Per repeat: "pipeline s" is the run's own wall time (summary wall_s: inspect submitted -> records
written), "dead after s" is how long after the kill the cluster listed the node as dead (the GCS's
health checks), "kill to exit s" from the kill to the job's exit. Medians over --repeat; the node is
started again for every lossy run. Records of every run are compared with the first clean one.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from bench.compare_records import compare  # noqa: E402
from tests.helpers import RayCluster  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=8.0, help="length of the demo class")
    ap.add_argument("--segment-s", type=float, default=2.0)
    ap.add_argument("--head-cpus", type=int, default=3)
    ap.add_argument("--node-cpus", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--json", help="write the results here too")
    a = ap.parse_args(argv)

    from fer_stream.demo import make_demo_clip

    base = Path(tempfile.mkdtemp(prefix="bench_cluster"))
    try:
        make_demo_clip(base / "in" / "ML101" / "2024-03-05_lecture.mp4", seconds=a.seconds, fps=10)
        from fer_stream.models import checkpoint

        weights = shutil.copy(checkpoint.builtin_path("default"), base / "weights.pt")  # one model throughout
        analysis = ["--weights", str(weights), "--sample-fps", "2", "--segment-s", str(a.segment_s)]
        rows = []
        with RayCluster(base) as cluster:
            cluster.start_head(a.head_cpus)

            def job(name: str, node=None) -> dict:
                summary = base / f"{name}.json"
                args = ["--input", str(base / "in"), "--output", str(base / name), *analysis]
                run = cluster.submit([*args, "--classifiers", "2", "--quiet", "--summary-json", str(summary)])
                row: dict = {"run": name}
                if node is not None:
                    deadline = time.monotonic() + 120
                    while not all(
                        any(t.startswith(x) for t in node.titles())
                        for x in ("ray::analyze_segment", "ray::ClassifierActor")
                    ):
                        assert time.monotonic() < deadline, "the node never ran a segment and an actor"
                        time.sleep(0.1)
                    time.sleep(1.0)
                    t_kill = time.monotonic()
                    node.kill()
                    while any(n["node_id"] == node.node_id for n in cluster.alive_nodes()):
                        time.sleep(0.2)
                    row["dead_after_s"] = time.monotonic() - t_kill
                rc = run.wait()
                if node is not None:
                    row["kill_to_exit_s"] = time.monotonic() - t_kill
                s = json.loads(summary.read_text())
                row |= {
                    "exit": rc,
                    "pipeline_s": s["wall_s"],
                    "nodes": len(set(s["results"][0]["segment_nodes"])),
                }
                return row

            for i in range(a.repeat + 1):  # the first clean run warms the workers up and is left out
                node = cluster.add_node(f"node{i}", a.node_cpus, {"node_b": 1})
                clean, lost = job(f"clean{i}"), job(f"lost{i}", node)
                for row in (clean, lost):
                    res = compare(str(base / "clean0"), str(base / row["run"]))
                    row["same_records"] = all(r["same_keys"] for r in res.values())
                    print(json.dumps(row), flush=True)
                if i:
                    rows += [clean, lost]
        out = {"args": vars(a), "runs": rows}
        for kind in ("clean", "lost"):
            mine = [r for r in rows if r["run"].startswith(kind)]
            out[kind] = {
                k: statistics.median(r[k] for r in mine)
                for k in ("pipeline_s", "dead_after_s", "kill_to_exit_s")
                if all(k in r for r in mine)
            }
        text = json.dumps(out, indent=1)
        print(text)
        if a.json:
            Path(a.json).write_text(text + "\n")
        return 0 if all(r["exit"] == 0 and r["same_records"] for r in rows) else 1
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
