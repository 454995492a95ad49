"""Fixtures of the runtime tests: ONE local Ray instance shared by every Ray test."""

from __future__ import annotations

import logging
import os

import pytest

from tests.engine.raytools import descendants, listeners, non_loopback


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray instance: 2 CPUs, one fake GPU, listening on 127.0.0.1 only.

    The runners reuse an initialized Ray and leave it running, so the ~5 s start-up is
    paid once per test session.
    """
    ray = pytest.importorskip("ray")
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray.init(
        num_cpus=2, num_gpus=1, _node_ip_address="127.0.0.1", include_dashboard=False,
        logging_level=logging.WARNING,
    )
    try:
        mine = descendants(os.getpid())
        assert listeners(mine), "expected the Ray processes to listen on some port"
        exposed = non_loopback(mine)
        assert not exposed, f"Ray listens beyond loopback: {exposed}"
        yield ray
    finally:
        ray.shutdown()


def pytest_configure(config):
    # Ray Data warns about its own deprecated settings whenever a dataset starts.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:ray.data.context")
