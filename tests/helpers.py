"""Plain test helpers, imported as ``from tests.helpers import ...``: the repository and the real data
(``shared``), synthetic faces and their Parquet files, free ports and a real ``ray start --head``
(``ray_head``). Fixtures are in ``tests/conftest.py``."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def in_ci() -> bool:
    """True under CI (``CI=true``, as ``.ci/run`` and the usual CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def shared(rel: str) -> Path:
    """A file in ../shared/data. When it is missing, a test run by hand skips saying what is missing;
    under CI (:func:`in_ci`) the test fails: CI has the data, and a skip there would hide that the
    tests on real data never ran."""
    p = SHARED / rel
    if not p.exists():
        why = f"real data not available: {p} (see ../shared/data/README.md)"
        if in_ci():
            pytest.fail(f"{why}; CI must run with ../shared/data", pytrace=False)
        pytest.skip(why)
    return p


def needs_espeak() -> None:
    """Real speech comes from Debian's ``espeak-ng`` (bench/speech.py). Missing: a test run by hand
    skips saying so; under CI it fails (``.ci/run`` installs it, as it does chromium)."""
    import shutil

    if shutil.which("espeak-ng") is None:
        why = "espeak-ng is not installed (apt-get install -y espeak-ng): no real speech to test with"
        if in_ci():
            pytest.fail(f"{why}; CI installs it (.ci/run)", pytrace=False)
        pytest.skip(why)


def synthetic_faces(n_per_class: int, labels, size: int = 48, seed: int = 0):
    """Learnable toy 'faces': each class is a bright bar at its own angle, plus noise.

    Returns ``uint8 (N, size, size)`` and the label name of each image.
    """
    rng = np.random.default_rng(seed)
    imgs, labs = [], []
    for k, name in enumerate(labels):
        for _ in range(n_per_class):
            img = rng.normal(110, 20, (size, size)).clip(0, 255).astype(np.uint8)
            ang = np.pi * k / len(labels)
            c = size / 2 + rng.normal(0, 1.5, 2)
            d = np.array([np.cos(ang), np.sin(ang)]) * size * 0.4
            p1, p2 = (c - d).astype(int), (c + d).astype(int)
            cv2.line(img, tuple(int(v) for v in p1), tuple(int(v) for v in p2), 250, 4)
            imgs.append(img)
            labs.append(name)
    return np.stack(imgs), labs


def write_parquet(path: Path, images, labels, subjects=None, split="Training") -> Path:
    png = [cv2.imencode(".png", im)[1].tobytes() for im in images]
    n = len(png)
    table = pa.table(
        {
            "image": pa.array(png, pa.binary()),
            "label": labels,
            "split": [split] * n,
            "subject": subjects if subjects is not None else pa.nulls(n, pa.string()),
            "source_file": [f"img{i}.png" for i in range(n)],
        }
    )
    pq.write_table(table, path)
    return path


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RayHead:
    """A real `ray start --head` of this test's own (see :func:`ray_head`)."""

    def __init__(self, env: dict[str, str], dashboard: str, deadline: float):
        self.env, self.dashboard, self.deadline = env, dashboard, deadline

    def submit(self, command: list, env: dict[str, str] | None = None, timeout: float = 300):
        """Run ``command`` (a `ray job submit` or a script calling it) until the head's node agent
        is up: the job server answers before the agent has registered with it."""
        import subprocess
        import time

        while True:
            r = subprocess.run(command, env=env or self.env, capture_output=True, text=True, timeout=timeout)
            if "No available agent" not in r.stderr or time.monotonic() > self.deadline:
                return r
            time.sleep(2)


@contextlib.contextmanager
def ray_head(tmp_path: Path):
    """`ray start --head` with token auth (as Ray 2.60 enables by default), every port free, its own
    short temp dir (socket paths are limited to ~107 characters; the head's address file goes there,
    not to /tmp/ray/ray_current_cluster where other ray.init() calls would find it) and its own
    process group, so stopping it stops exactly this head (`ray stop` would stop every Ray on the
    machine). Free ports for everything with a fixed default: an embedded Ray of another test holds
    the dashboard agent's default port 52365, and this head would never get an agent to run jobs.
    Yields a :class:`RayHead`: ``env`` has the token for a submitting client (the job's driver
    inherits the head's env); ``dashboard`` is the job server's address."""
    import secrets
    import shutil
    import signal
    import subprocess
    import sys
    import tempfile
    import time
    import urllib.error
    import urllib.request

    ray_cli = [sys.executable, "-m", "ray.scripts.scripts"]
    port, dash, agent, client = free_port(), free_port(), free_port(), free_port()
    token = secrets.token_hex(32)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    env.pop("RAY_ADDRESS", None)
    temp_dir = tempfile.mkdtemp(prefix="rayh", dir="/tmp")
    log_path = tmp_path / "head.log"
    log = open(log_path, "w")
    head = subprocess.Popen(
        [*ray_cli, "start", "--head", "--block", "--temp-dir", temp_dir, "--num-cpus", "2",
         "--port", str(port), "--dashboard-port", str(dash), "--dashboard-host", "127.0.0.1",
         "--include-dashboard", "true", "--dashboard-agent-listen-port", str(agent),
         "--ray-client-server-port", str(client),
         "--object-store-memory", str(256 << 20), "--disable-usage-stats"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                req = urllib.request.Request(
                    f"http://127.0.0.1:{dash}/api/version", headers={"Authorization": f"Bearer {token}"}
                )
                urllib.request.urlopen(req, timeout=2)
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                assert head.poll() is None, log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, "the head's job server did not come up in 120 s"
                time.sleep(1)
        yield RayHead(env, f"http://127.0.0.1:{dash}", deadline)
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait(10)
        time.sleep(1)
        try:
            os.killpg(head.pid, signal.SIGKILL)  # anything of the group still alive
        except ProcessLookupError:
            pass
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# A real multi-node Ray cluster on this machine (issue 16): `ray start --head` + `ray start --address`


class RayNode:
    """One `ray start --block` of a :class:`RayCluster`: its process group, temp dir and log."""

    def __init__(self, name: str, proc, temp_dir: str, log_path: Path):
        self.name, self.proc, self.temp_dir, self.log_path = name, proc, temp_dir, log_path
        self.node_id: str | None = None

    def processes(self) -> dict[int, str]:
        """``{pid: process title}`` of the node's live processes: every descendant of its `ray start`
        (Ray's workers are children of the raylet, each in a process group of its own)."""
        parent, title = {}, {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:  # "pid (comm) state ppid ...": comm may hold spaces
                    parent[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    title[int(entry)] = f.read().split(b"\0")[0].decode(errors="replace")
            except (OSError, IndexError, ValueError):
                pass
        found, todo = {}, [self.proc.pid]
        while todo:
            pid = todo.pop()
            if pid in title:
                found[pid] = title[pid]
            todo += [c for c, p in parent.items() if p == pid and c not in found]
        return found

    def titles(self) -> list[str]:
        """Process titles of the node (``ray::analyze_segment``, ``ray::ClassifierActor``, ...)."""
        return list(self.processes().values())

    def kill(self) -> None:
        """SIGKILL every process of the node at once: the node is lost, as when its machine dies."""
        import signal
        import subprocess

        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            pass


class JobRun:
    """A `ray job submit` in flight, its output to a log file (a pipe could fill up while nobody reads
    it): :meth:`wait` for its exit status; ``output`` is its log so far."""

    def __init__(self, cmd: list[str], env: dict[str, str], log_path: Path, timeout: float):
        import time

        self.cmd, self.env, self.log_path, self.timeout = cmd, env, log_path, timeout
        self.deadline = time.monotonic() + timeout
        self._start()

    def _start(self) -> None:
        import subprocess

        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait(self) -> int:
        """The exit status. A submit refused because the head's node agent has not registered with
        the job server yet (it answers before that) is sent again."""
        import subprocess
        import time

        while True:
            try:
                rc = self.proc.wait(max(1.0, self.deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                tail = self.output[-3000:]
                raise AssertionError(f"the job ran over {self.timeout:.0f} s: {tail}") from None
            if rc == 0 or "No available agent" not in self.output or time.monotonic() > self.deadline:
                return rc
            time.sleep(2)
            self._start()


class RayCluster:
    """A head and worker nodes started with `ray start` on this machine, every port free, token auth.

    Each node is its own process group with its own short temp dir (sockets, logs, the head's
    address file), so stopping or killing a node touches exactly that node: `ray stop` would stop
    every Ray on the machine. ``env`` is what a submitting client needs (token, PATH with this
    interpreter first: the job's ``python`` is looked up there); ``dashboard`` is the job server.
    Use as a context manager: every node is killed on exit, also when a test fails.
    """

    def __init__(self, tmp_path: Path):
        import secrets
        import sys

        self.tmp_path = tmp_path
        self.ray_cli = [sys.executable, "-m", "ray.scripts.scripts"]
        self.token = secrets.token_hex(32)
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token, "PATH": path}
        self.env.pop("RAY_ADDRESS", None)
        self.nodes: dict[str, RayNode] = {}
        self.gcs = self.dashboard = None
        self.jobs = 0  # jobs submitted: their log files are job1.log, job2.log, ...

    def __enter__(self) -> RayCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self, name: str, args: list[str], hide: tuple[Path, ...] = ()) -> RayNode:
        import shlex
        import subprocess
        import tempfile

        temp_dir = tempfile.mkdtemp(prefix=f"ray{name[:4]}", dir="/tmp")  # socket paths: keep it short
        log_path = self.tmp_path / f"{name}.log"
        cmd = [*self.ray_cli, "start", "--block", "--temp-dir", temp_dir, *args,
               "--dashboard-agent-listen-port", str(free_port()),
               "--object-store-memory", str(200 << 20), "--disable-usage-stats"]  # fmt: skip
        if hide:  # a private mount namespace where each folder is an empty tmpfs: not on this node
            mounts = " && ".join(f"mount -t tmpfs none {shlex.quote(str(h))}" for h in hide)
            cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                   f"{mounts} && exec {shlex.join(cmd)}"]  # fmt: skip
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        node = self.nodes[name] = RayNode(name, proc, temp_dir, log_path)
        return node

    def start_head(self, num_cpus: int, resources: dict | None = None) -> RayNode:
        import json
        import time
        import urllib.error

        port, dash = free_port(), free_port()
        self.gcs, self.dashboard = f"127.0.0.1:{port}", f"http://127.0.0.1:{dash}"
        head = self._start(
            "head",
            ["--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", str(num_cpus),
             "--resources", json.dumps(resources or {}), "--dashboard-port", str(dash),
             "--dashboard-host", "127.0.0.1", "--include-dashboard", "true",
             "--ray-client-server-port", str(free_port())],
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while True:
            try:
                self.api("/api/version")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                self._check_alive(head, deadline, "the head's job server")
                time.sleep(1)
        self._wait_registered(head, deadline)
        return head

    def add_node(
        self, name: str, num_cpus: int, resources: dict | None = None, hide: tuple[Path, ...] = ()
    ) -> RayNode:
        """`ray start --address HEAD` with its own temp dir; ``hide``: folders this node cannot see."""
        import json
        import time

        node = self._start(
            name,
            ["--address", self.gcs, "--node-ip-address", "127.0.0.1", "--num-cpus", str(num_cpus),
             "--resources", json.dumps(resources or {})],
            hide,
        )  # fmt: skip
        self._wait_registered(node, time.monotonic() + 120)
        return node

    def api(self, path: str):
        """GET a path of the head's dashboard (state API, job server) with the token; parsed JSON."""
        import json
        import urllib.request

        req = urllib.request.Request(self.dashboard + path, headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"null")

    def alive_nodes(self) -> list[dict]:
        """The state API's alive nodes: ``node_id``, ``resources_total``, ..."""
        res = self.api("/api/v0/nodes?limit=100&detail=1")
        return [n for n in res["data"]["result"]["result"] if n["state"] == "ALIVE"]

    def _wait_registered(self, node: RayNode, deadline: float) -> None:
        """Until a node the cluster did not have is alive in the state API: its id goes to
        ``node.node_id`` (nodes are added one at a time)."""
        import time

        known = {n.node_id for n in self.nodes.values() if n.node_id}
        while True:
            try:
                new = [n for n in self.alive_nodes() if n["node_id"] not in known]
            except (OSError, KeyError, TypeError):
                new = []
            if new:
                node.node_id = new[0]["node_id"]
                return
            self._check_alive(node, deadline, f"node {node.name}")
            time.sleep(1)

    def _check_alive(self, node: RayNode, deadline: float, what: str) -> None:
        import time

        if node.proc.poll() is not None:
            raise RuntimeError(f"{what} exited: {node.log_path.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up in time: {node.log_path.read_text()[-3000:]}")

    def submit(self, args: list[str], *, timeout: float = 300) -> JobRun:
        """`ray job submit --working-dir ROOT -- python jobs/analyze_lectures.py ARGS`, started."""
        self.jobs += 1
        cmd = [*self.ray_cli, "job", "submit", "--address", self.dashboard, "--working-dir", str(ROOT)]
        cmd += ["--", "python", "jobs/analyze_lectures.py", *args]
        return JobRun(cmd, self.env, self.tmp_path / f"job{self.jobs}.log", timeout)

    def close(self) -> None:
        """Kill every node (workers first, then the head); reap them; remove their temp dirs."""
        import shutil
        import time

        for node in sorted(self.nodes.values(), key=lambda n: n.name == "head"):
            node.kill()
        time.sleep(0.5)
        for node in self.nodes.values():
            node.kill()  # a straggler started while the others were being killed
            shutil.rmtree(node.temp_dir, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# Small shared checks


def systemd_words(command: str, env: dict[str, str]) -> list[str]:
    """systemd.service's ExecStart expansion: ``${X}`` is one word, ``$X`` splits at whitespace."""
    import re
    import shlex

    words = []
    for word in shlex.split(command):
        if re.fullmatch(r"\$[A-Za-z_]\w*", word):
            words += env.get(word[1:], "").split()
        else:
            words.append(re.sub(r"\$\{(\w+)\}", lambda m: env.get(m.group(1), ""), word))
    return words


def assert_trainable(model, first_weight, classes: int, steps: int = 4, lr: float = 1e-3) -> None:
    """A few AdamW steps on one fixed batch of 8: gradients reach ``first_weight`` (the stem) and
    the loss falls. How a network too big to train here is shown to be trainable."""
    import torch

    torch.manual_seed(0)
    model.train()
    x, y = torch.randn(8, 1, 48, 48), torch.arange(8) % classes
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        assert first_weight.grad.abs().sum() > 0
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses
