"""Shared test fixtures: where the real assets are, and an offline, loopback-only env."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import s3 as s3_server
from tests.engine.raytools import descendants, listeners, non_loopback
from tests.samples import import_sample
from tubelet.cli.sample import SampleInfo, write_sample
from tubelet.engine.task import VideoTask
from tubelet.engine.video_backend import decord_import_error, set_video_backend

ROOT = Path(__file__).resolve().parents[1]

# Offline and loopback-only for everything the tests start.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

# Object storage: a moto S3 server on loopback (started by the `s3` fixture on first use).
# The AWS variables are set now, before any Ray or process worker starts, so they inherit them.
_S3_PORT = s3_server.free_port()
os.environ.update(s3_server.point_aws_at(_S3_PORT))


def _assets_dir() -> Path | None:
    configured = os.environ.get("TUBELET_ASSETS")
    path = Path(configured) if configured else ROOT.parent / "shared" / "assets"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def assets() -> Path:
    """The real test assets (``TUBELET_ASSETS`` or ../shared/assets); skip when absent."""
    path = _assets_dir()
    if path is None:
        pytest.skip("real assets not found (set TUBELET_ASSETS or provide ../shared/assets)")
    return path


@pytest.fixture(params=["decord", "pyav"])
def video_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test once per video backend, as this process's default (decord skips
    where it is not installed: its wheels are for x86-64 Linux and Windows only)."""
    if request.param == "decord" and decord_import_error():
        pytest.skip(f"decord is not installed ({decord_import_error()})")
    previous = set_video_backend(request.param)
    try:
        yield request.param
    finally:
        set_video_backend(previous)


@pytest.fixture(scope="session")
def s3() -> Iterator[s3_server.S3]:
    """A real S3-protocol server on 127.0.0.1 (moto), with a bucket of this session."""
    pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    server = s3_server.start_server(_S3_PORT)
    try:
        s3 = s3_server.S3(endpoint=os.environ["AWS_ENDPOINT_URL"], bucket="", server=server)
        s3.bucket = s3_server.new_bucket(s3.fs())
        yield s3
    finally:
        server.stop()


@pytest.fixture(scope="session")
def synthetic_sample(tmp_path_factory: pytest.TempPathFactory) -> SampleInfo:
    """The bundled synthetic sample (video, frames, DAVIS masks, list), written once per
    session. Read it; never write into its folder."""
    return write_sample(tmp_path_factory.mktemp("synthetic-sample"))


@pytest.fixture(scope="session")
def imported_sample(synthetic_sample: SampleInfo) -> VideoTask:
    """The sample with its ground-truth masks imported as tubelets, once per session.
    Tests that change it take ``tests.samples.fresh_copy`` of it."""
    return import_sample(synthetic_sample)


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray instance: 2 CPUs, one fake GPU, listening on 127.0.0.1 only.

    The runners reuse an initialized Ray and leave it running, so the ~5 s start-up is
    paid once per test session.
    """
    ray = pytest.importorskip("ray")
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray.init(
        num_cpus=2,
        num_gpus=1,
        _node_ip_address="127.0.0.1",
        include_dashboard=False,
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
