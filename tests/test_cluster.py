"""Beyond one machine (issue 16): placement arithmetic and per-video claims (plain Python), then a real
two-node Ray cluster on this machine (`ray start --head` + `ray start --address`, jobs through
`ray job submit`): a lecture's segments on both nodes, an input a worker node cannot read, two jobs
on one output, and a node lost mid-run.

The cluster tests share one cluster (module fixture; every Ray process is killed at the end, also
when a test fails) and run in file order: the node-loss tests kill nodes, so they come last.
"""

import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.compute as pc
import pytest

from bench.compare_records import compare
from fer_stream import pipeline, records
from fer_stream.config import PipelineConfig
from fer_stream.ops import claims, layout
from tests.helpers import ROOT, RayCluster, systemd_words

# --------------------------------------------------------------------------------------------------
# Placement: the classifier actors follow the hardware (no Ray)


def _node(name: str, **resources) -> dict:
    return {"name": name, "resources": resources}


def test_placement_problem_packs_the_actors_node_by_node():
    cpu = {"CPU": 1.0}
    two = [_node("a", CPU=3), _node("b", CPU=2)]
    assert pipeline.placement_problem(2, cpu, two) is None  # 2 actors, 3 CPUs left for video
    assert pipeline.placement_problem(4, cpu, two) is None  # 1 CPU left
    assert "leave no node a CPU" in pipeline.placement_problem(5, cpu, two)
    # each actor fits on one node only: 2 x 3 CPUs do not fit on nodes of 3 and 2
    problem = pipeline.placement_problem(2, {"CPU": 3.0}, two)
    assert "can hold 1" in problem and "a: CPU 3" in problem and "b: CPU 2" in problem
    gpu = {"CPU": 1.0, "GPU": 1.0}
    gpus = [_node("cpu-node", CPU=16), _node("gpu-node", CPU=8, GPU=2)]
    assert pipeline.placement_problem(2, gpu, gpus) is None
    assert "can hold 2" in pipeline.placement_problem(3, gpu, gpus)
    # the only node with the `classifier` resource is gone: nothing can hold the pool
    pinned = {"CPU": 1.0, "classifier": 1.0}
    assert pipeline.placement_problem(1, pinned, [_node("head", CPU=3)]).startswith(
        "1 classifier actor(s) need CPU 1, classifier 1 each; the alive nodes can hold 0"
    )


@pytest.mark.parametrize(
    "resources, classifiers, expect",
    [  # (actors, device, what each holds, video workers), or the error
        ({"CPU": 16, "GPU": 2}, None, (2, "cuda", {"CPU": 1, "GPU": 1}, 14)),
        ({"CPU": 5, "classifier": 1}, None, (1, "cpu", {"CPU": 1, "classifier": 1}, 4)),
        ({"CPU": 5}, 2, (2, "cpu", {"CPU": 1}, 3)),
        ({"CPU": 16, "GPU": 2}, 3, "each classifier actor needs a GPU of its own, the cluster has 2"),
        ({"CPU": 5, "classifier": 1}, 2, "'classifier' resource for 1 classifier actor"),
        ({"CPU": 2}, 2, "leave no CPU for the video workers"),
    ],
)
def test_classifier_plan_follows_the_hardware(monkeypatch, resources, classifiers, expect):
    monkeypatch.setattr(pipeline.ray, "cluster_resources", lambda: resources)
    cfg = PipelineConfig(classifiers=classifiers)
    if isinstance(expect, str):  # a request the cluster cannot hold: a clear error, not a hang
        with pytest.raises(pipeline.PlacementError, match=expect):
            pipeline.classifier_plan(cfg)
        return
    n, device, opts, slots = pipeline.classifier_plan(cfg)
    assert (n, device, pipeline.actor_needs(opts), slots) == expect
    assert opts["scheduling_strategy"] == "SPREAD" and opts["max_restarts"] == 3


def test_a_fake_gpu_is_named_with_its_fix():
    import torch

    assert pipeline.device_problem("cpu") is None
    if torch.cuda.is_available():
        assert pipeline.device_problem("cuda") is None
    else:  # a node started with --num-gpus whose torch cannot use one
        assert "install a CUDA build of torch" in pipeline.device_problem("cuda")


# --------------------------------------------------------------------------------------------------
# Claims: one run analyses a video at a time (no Ray)

HOLD = """
import sys, time
from fer_stream.ops.claims import Claims
c = Claims(sys.argv[1], "cfg", "run-1")
assert c.claim(sys.argv[2]) is None
print("held", flush=True)
time.sleep(120)
"""


def _holder(output: Path, video_id: str) -> subprocess.Popen:
    """Another process holding ``video_id``'s claim until it is killed."""
    p = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(output), video_id], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert p.stdout.readline().strip() == "held"
    return p


def test_a_claim_has_one_holder_and_a_dead_holder_blocks_no_one(tmp_path):
    holder = _holder(tmp_path, "v1")
    try:
        mine = claims.Claims(tmp_path, "cfg", "run-2")
        owner = mine.claim("v1")
        assert owner["run_id"] == "run-1" and owner["pid"] == holder.pid  # who, for the waiting line
        assert "run run-1 (pid" in claims.describe_owner(owner)
        assert mine.claim("v2") is None and mine.claim("v2") is None  # another video; twice is fine
        assert mine.remove_stale() == 0  # live claims stay
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # the kernel dropped the dead holder's flock: its claim is taken over, and said so
    assert mine.claim("v1") is None and mine.took_over["v1"]["run_id"] == "run-1"
    mine.release_all()
    assert not (tmp_path / layout.CLAIMS_DIR).exists()  # an output keeps only records between runs
    # a claim file left by a killed run that held no video any more is cleared at the next start
    dead = _holder(tmp_path, "v3")
    dead.send_signal(signal.SIGKILL)
    dead.wait()
    assert layout.claim_file(tmp_path, "v3", "cfg").exists()
    assert claims.Claims(tmp_path, "cfg", "run-3").remove_stale() == 1
    assert not layout.claim_file(tmp_path, "v3", "cfg").exists()


# --------------------------------------------------------------------------------------------------
# deploy/ray-node.service: a node at boot (no Ray started)


def test_the_ray_node_unit_runs_ray_start_as_its_env_file_says(tmp_path):
    from ray.scripts.scripts import start

    unit = (ROOT / "deploy" / "ray-node.service").read_text().splitlines()
    (exec_start,) = [x.split("=", 1)[1] for x in unit if x.startswith("ExecStart=")]
    env = dict(x.split("=", 1)[1].split("=", 1) for x in unit if x.startswith("Environment="))
    assert env["RAY_AUTH_MODE"] == "token" and env["RAY_AUTH_TOKEN_PATH"] == "/etc/fer-stream/ray_auth_token"
    example = [x.lstrip("# ") for x in (ROOT / "deploy" / "ray-node.env.example").read_text().splitlines()]
    node_args = [x.split("=", 1)[1] for x in example if x.startswith("RAY_NODE_ARGS=")]
    (resources,) = [
        shlex.split(x.split("=", 1)[1])[0] for x in example if x.startswith("RAY_NODE_RESOURCES=")
    ]
    assert json.loads(resources) == {"classifier": 2}  # systemd takes the quoted JSON as one value
    assert len(node_args) == 3 and node_args[0].startswith("--head")
    for args in node_args:
        for extra in ({}, {"RAY_NODE_RESOURCES": resources}):
            words = systemd_words(exec_start, env | {"RAY_NODE_ARGS": args} | extra)
            assert words[:3] == ["/opt/fer_stream/.venv/bin/ray", "start", "--block"]
            params = start.make_context("start", words[2:]).params  # `ray start`'s own option parser
            assert params["block"] and json.loads(params["resources"]) == json.loads(
                extra.get("RAY_NODE_RESOURCES", "{}")
            )
            assert params["head"] == args.startswith("--head")
            assert params["head"] or params["address"] == "ray-head:6379"
    if shutil.which("systemd-analyze"):  # as systemd reads it (bar the install path)
        (tmp_path / "ray-node.service").write_text(
            "\n".join(unit).replace("/opt/fer_stream/.venv/bin/ray", shutil.which("true")) + "\n"
        )
        r = subprocess.run(
            ["systemd-analyze", "verify", str(tmp_path / "ray-node.service")], capture_output=True
        )
        assert r.returncode == 0 and not r.stderr.strip(), r.stderr


# --------------------------------------------------------------------------------------------------
# A real cluster: head (3 CPUs) + node_b (2 CPUs, {"node_b": 1}), token auth, jobs via `ray job submit`


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cluster")


@pytest.fixture(scope="module")
def weights(base) -> Path:
    """The shipped weights, copied: every run of the module uses these, even if the checkout's
    default changes while the jobs ship it."""
    from fer_stream.models import checkpoint

    return Path(shutil.copy(checkpoint.builtin_path("default"), base / "weights.pt"))


@pytest.fixture(scope="module")
def analysis(weights) -> list[str]:
    """The jobs' analysis flags: 8 s at 2 fps in 4 segments of 2 s."""
    return ["--weights", str(weights), "--sample-fps", "2", "--segment-s", "2"]


@pytest.fixture(scope="module")
def lecture(base) -> Path:
    """The demo class (17 faces, 1280x720), 8 s: 16 sampled frames, 4 segments of 2 s."""
    from fer_stream.demo import make_demo_clip

    return make_demo_clip(base / "in" / "ML101" / "2024-03-05_lecture.mp4", seconds=8, fps=10)


@pytest.fixture(scope="module")
def single_node(base, lecture, weights) -> Path:
    """The records of the same lecture from an embedded one-node Ray in this process (same segments:
    segment length, not the cluster's size, cuts an 8 s clip), made before the cluster starts."""
    import ray

    out = base / "single_node"
    if ray.is_initialized():  # another module's embedded Ray: this one has its own settings
        ray.shutdown()
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=256 << 20)
    try:
        cfg = PipelineConfig(weights=str(weights), sample_fps=2.0, segment_s=2.0)
        s = pipeline.run([lecture], out, cfg, progress=False)
    finally:
        ray.shutdown()
    assert s.outcome == "ok" and s.results[0].faces > 200, s.describe()
    return out


@pytest.fixture(scope="module")
def cluster(base, single_node):
    """Head with 3 CPUs, node_b with 2 CPUs and a custom resource. ``base/head_only`` is an empty
    tmpfs in node_b's own mount namespace, a folder on the head's disk only (``cluster.hidden``;
    ``None`` where this process may not make mount namespaces)."""
    hidden = base / "head_only"
    hidden.mkdir()
    can_hide = subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode == 0
    with RayCluster(base) as c:
        c.start_head(num_cpus=3)
        c.add_node("node_b", num_cpus=2, resources={"node_b": 1}, hide=(hidden,) if can_hide else ())
        c.hidden = hidden if can_hide else None
        yield c


def _summary(path: Path) -> dict:
    return json.loads(path.read_text())


def assert_same_records(a: Path, b: Path) -> None:
    """faces/ and frames/ of ``b`` are ``a``'s rows (no missing, no duplicate) with the same values."""
    for table, res in compare(str(a), str(b)).items():
        assert res["same_keys"], (table, res["rows_before"], res["rows_after"])
        for col, diff in res["differing_columns"].items():
            if "max_abs_diff" in diff:
                assert diff["max_abs_diff"] <= 1e-5 and diff["null_mismatch"] == 0, (table, col, diff)
            else:
                assert diff["agreement"] == 1.0, (table, col, diff)


def _done_rows(out: Path) -> list[dict]:
    return records.read(out, "videos", filter=pc.field("status") == "done").to_pylist()


@pytest.mark.cluster
def test_an_input_a_worker_node_cannot_read_fails_before_any_work(cluster, base, analysis):
    if cluster.hidden is None:
        pytest.skip("unshare --mount is not permitted here (needs CAP_SYS_ADMIN): no folder to hide")
    hidden = cluster.hidden / "ML101" / "2024-03-05_local.mp4"
    hidden.parent.mkdir(parents=True)
    hidden.write_bytes((base / "in" / "ML101" / "2024-03-05_lecture.mp4").read_bytes())
    out = base / "out_unreadable"
    job = cluster.submit(["--input", str(hidden), "--output", str(out), *analysis, "--quiet"])
    assert job.wait() != 0, job.output[-3000:]
    node_b = cluster.nodes["node_b"].node_id[:8]
    said = rf"InputsNotShared: node \S+ \({node_b}\) cannot read 1 of the 1 inputs, e\.g\. {hidden}\."
    assert re.search(said, job.output), job.output[-3000:]
    assert "mount at the same path" in job.output
    assert not (out / "videos").exists()  # nothing was analysed


@pytest.mark.cluster
def test_a_lectures_segments_run_on_both_nodes_and_equal_a_single_node_run(
    cluster, base, analysis, single_node
):
    out, summary = base / "out_spread", base / "spread.json"
    args = ["--input", str(base / "in"), "--output", str(out), *analysis, "--classifiers", "2"]
    job = cluster.submit([*args, "--quiet", "--summary-json", str(summary)])
    assert job.wait() == 0, job.output[-3000:]
    (video,) = _summary(summary)["results"]
    head, node_b = cluster.nodes["head"].node_id, cluster.nodes["node_b"].node_id
    # each segment says which node ran it (ray.get_runtime_context().get_node_id(), in the task)
    assert len(video["segment_nodes"]) == 4 and set(video["segment_nodes"]) == {head, node_b}, video
    assert set(_summary(summary)["classifier_nodes"]) == {head, node_b}  # SPREAD: one actor per node
    assert "nodes: segments per node" in job.output
    assert_same_records(single_node, out)
    assert len(_done_rows(out)) == 1


@pytest.mark.cluster
def test_two_jobs_on_one_output_analyse_each_video_once(cluster, base, analysis):
    from fer_stream.demo import make_demo_clip

    inp, out = base / "in_two", base / "out_two"
    for seed in (1, 2, 3):
        make_demo_clip(inp / "ML101" / f"2024-03-0{seed}_lecture.mp4", seconds=4, fps=10, seed=seed)
    args = ["--input", str(inp), "--output", str(out), *analysis, "--classifiers", "1"]
    jobs = [cluster.submit([*args, "--summary-json", str(base / f"two{i}.json")]) for i in (1, 2)]
    assert [job.wait() for job in jobs] == [0, 0], [job.output[-3000:] for job in jobs]
    results = [r for i in (1, 2) for r in _summary(base / f"two{i}.json")["results"]]
    done = [r["path"] for r in results if r["status"] == "done"]
    assert sorted(done) == sorted(str(p) for p in (inp / "ML101").iterdir())  # each once, by one job
    skipped = [r["reason"] for r in results if r["status"] == "skipped"]
    assert len(skipped) == 3 and all("done meanwhile by run" in x or "done before" in x for x in skipped)
    assert any("done meanwhile by run" in x for x in skipped), skipped  # the claim made one wait
    assert "waiting " in jobs[0].output + jobs[1].output
    rows = _done_rows(out)
    assert len(rows) == 3 and len({r["video_id"] for r in rows}) == 3
    frames = records.read(out, "frames")
    keys = list(zip(frames.column("video_id").to_pylist(), frames.column("frame_index").to_pylist()))
    assert len(keys) == len(set(keys)) == sum(r["sampled_frames"] for r in rows)  # complete, no duplicate
    assert not (out / layout.CLAIMS_DIR).exists()  # every claim released


def _wait_for(node, *titles: str, timeout: float = 120) -> None:
    """Until ``node`` runs a process of each title (``ray::analyze_segment``, ...)."""
    deadline = time.monotonic() + timeout
    while not all(any(t.startswith(title) for t in node.titles()) for title in titles):
        assert time.monotonic() < deadline, f"{node.name} never ran {titles}: {node.titles()}"
        time.sleep(0.1)


@pytest.mark.cluster
def test_a_node_lost_mid_run_the_job_finishes_on_the_head_with_exact_records(
    cluster, base, analysis, single_node
):
    out, summary = base / "out_lost", base / "lost.json"
    args = ["--input", str(base / "in"), "--output", str(out), *analysis, "--classifiers", "2"]
    job = cluster.submit([*args, "--quiet", "--summary-json", str(summary)])
    node_b = cluster.nodes["node_b"]
    _wait_for(node_b, "ray::analyze_segment", "ray::ClassifierActor")
    time.sleep(1.0)  # mid-segment: decoding, crops on their way to the classifier
    node_b.kill()  # SIGKILL of the raylet and every worker of the node at once
    assert job.wait() == 0, job.output[-3000:]
    assert "node it was running on is dead" in job.output  # Ray retried the lost segments
    (video,) = _summary(summary)["results"]
    assert set(video["segment_nodes"]) == {cluster.nodes["head"].node_id}  # all redone on the head
    assert_same_records(single_node, out)
    assert len(records.read(out, "videos").to_pylist()) == 1


@pytest.mark.cluster
def test_the_only_classifier_node_lost_stops_clearly_and_a_rerun_completes(
    cluster, base, analysis, single_node
):
    # node_c hosts the classifier (a custom resource stands in for a GPU): its loss leaves no node
    # that can hold the actor, and Ray would wait for one forever
    node_c = cluster.add_node("node_c", num_cpus=2, resources={"classifier": 1})
    out, summary = base / "out_pinned", base / "pinned.json"
    args = ["--input", str(base / "in"), "--output", str(out), *analysis, "--placement-wait-s", "5"]
    job = cluster.submit([*args, "--quiet", "--summary-json", str(summary)])
    _wait_for(node_c, "ray::analyze_segment", "ray::ClassifierActor")
    # the actor past its __init__ (the process is titled from the creation task on, torch imports
    # after that): its ready probe has answered, so the summary can name the node that was lost
    deadline = time.monotonic() + 120
    while not any(t.startswith("ray::ClassifierActor") and "__init__" not in t for t in node_c.titles()):
        assert time.monotonic() < deadline, f"the classifier never got past __init__: {node_c.titles()}"
        time.sleep(0.1)
    time.sleep(1.0)
    node_c.kill()
    assert job.wait() == 1, job.output[-3000:]
    assert "STOPPED: PlacementError: the classifier actors could not be placed for 5 s" in job.output
    assert "the alive nodes can hold 0" in job.output and "run the same command again" in job.output
    s = _summary(summary)
    assert s["exit_code"] == 1 and s["error"].startswith("PlacementError")
    assert s["classifier_nodes"] == [node_c.node_id]
    assert _done_rows(out) == []  # the lecture was not finished: nothing claims it is
    # the rerun, once a classifier node is back, completes the lecture exactly once
    cluster.add_node("node_d", num_cpus=2, resources={"classifier": 1})
    rerun = cluster.submit([*args, "--quiet"])
    assert rerun.wait() == 0, rerun.output[-3000:]
    assert "1 done, 0 skipped, 0 failed" in rerun.output
    assert_same_records(single_node, out)
    assert len(_done_rows(out)) == 1
    assert not (out / layout.CLAIMS_DIR).exists()
