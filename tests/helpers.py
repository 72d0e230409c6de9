from __future__ import annotations

import contextlib
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def shared(rel: str) -> Path:
    """A file in ../shared/data, or skip the test saying what is missing."""
    p = SHARED / rel
    if not p.exists():
        pytest.skip(f"real data not available: {p} (see ../shared/data/README.md)")
    return p


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
    import os
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
