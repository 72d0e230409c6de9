"""Shared pytest fixtures. Plain helpers (paths, the real data, synthetic data, a real Ray head) are in
``tests/helpers.py``, imported as ``from tests.helpers import ...``."""

from __future__ import annotations

import pytest

# The embedded Ray of the pipeline tests: 2 CPUs (this machine's cores), a small object store (the
# clips are tiny), no dashboard (it would take port 8265 and the agent's default port).
LOCAL_RAY = dict(address="local", num_cpus=2, include_dashboard=False, object_store_memory=256 << 20)


def _start_local_ray():
    import ray  # here, not at the top: only the Ray tests pay for importing it

    if not ray.is_initialized():
        ray.init(**LOCAL_RAY)
    return ray


@pytest.fixture(scope="module")
def local_ray():
    """An embedded Ray in this process, for the tests of one module; yields the ``ray`` module.

    Module scope, not session: a Ray runs only while its module's tests run (the worker processes
    hold torch and the models; other tests, and a training job on the machine, need the memory),
    and a test that kills actors leaves nothing behind for the next module. Module-scoped fixtures
    (a pipeline run shared by a module's tests) may use it.
    """
    yield _start_local_ray()
    import ray

    ray.shutdown()  # a no-op when a test already shut Ray down


@pytest.fixture(autouse=True)
def _local_ray_is_up(request):
    """A test that shut Ray down does not leave the next test of its module without one: a bare
    ``ray.get`` would auto-start a plain ``ray.init()``, which joins whatever
    ``/tmp/ray/ray_current_cluster`` names."""
    if "local_ray" in request.fixturenames:
        _start_local_ray()
