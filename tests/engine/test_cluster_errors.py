"""A join that cannot happen says why and what to check, in seconds.

The token cases against a real token-protected cluster are in test_cluster.py; these need
no cluster: an address nothing listens at, and how Ray's errors are read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.engine.raytools import free_port
from tubelet.engine.runners import ray_instance

ROOT = Path(__file__).resolve().parents[2]
TUBELET = str(Path(sys.executable).with_name("tubelet"))
#: Ray itself retries a head nobody answers at for about a minute.
FAST_FAILURE_S = 15.0
#: What ``ray.init`` raises for a refused token: the refusal is only text, two errors down.
RAY_INIT_REFUSAL = (
    "Failed to connect to GCS. Last connection error: Traceback (most recent call last):\n"
    '  File "python/ray/includes/common.pxi", line 119, in ray._raylet.check_status\n'
    "ray.exceptions.AuthenticationError: RPC error: InvalidAuthToken: Authentication token is missing or "
    "incorrect. Note: RAY_AUTH_MODE is currently 'disabled' (not 'token')."
)


@pytest.fixture
def no_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No token settings and an empty HOME; returns HOME."""
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def ray_init_failure(text: str) -> ConnectionError:
    """An error shaped like ``ray.init``'s: ConnectionError raised from a RuntimeError."""
    try:
        try:
            raise RuntimeError(text)
        except RuntimeError as inner:
            raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.5:6379") from inner
    except ConnectionError as outer:
        return outer


def test_an_address_nothing_listens_at_fails_in_seconds(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(
        json.dumps(
            {
                "pipeline": "tests.engine.pipelines_for_tests:build",
                "output": str(tmp_path / "out"),
                "videos": [{"uri": "synthetic://v0"}],
            }
        )
    )
    env = {name: value for name, value in os.environ.items() if name != "RAY_ADDRESS"}
    env["PYTHONPATH"] = str(ROOT)

    started = time.monotonic()
    run = subprocess.run(
        [TUBELET, "run", str(manifest), "--address", address, "--no-progress"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    seconds = time.monotonic() - started

    error = next((line for line in run.stderr.splitlines() if line.startswith("tubelet: error:")), run.stderr)
    assert run.returncode == 2, run.stdout + run.stderr
    for phrase in [
        address,
        "nothing answers there",
        f"ray status --address {address}",
        "firewall",
        "--node-ip-address",
    ]:
        assert phrase in error, f"{phrase!r} missing from: {error}"
    assert seconds < FAST_FAILURE_S, f"took {seconds:.1f} s to fail"


def test_a_token_refusal_inside_ray_init_errors_is_recognised(no_token: Path) -> None:
    message = ray_instance._join_failure("10.0.0.5:6379", ray_init_failure(RAY_INIT_REFUSAL))

    assert message.startswith("cannot join the Ray cluster at 10.0.0.5:6379: token authentication failed")
    assert "(InvalidAuthToken: Authentication token is missing or incorrect)" in message
    assert "RAY_AUTH_MODE=unset: set RAY_AUTH_MODE=token here" in message
    assert "~/.ray/auth_token" in message and "`ray get-auth-token` on the head" in message


def test_other_join_failures_lead_with_reachability(no_token: Path) -> None:
    error = ray_init_failure("Timed out while waiting for GCS to become available.")

    message = ray_instance._join_failure("10.0.0.5:6379", error)

    assert message.startswith("cannot join the Ray cluster at 10.0.0.5:6379: Failed to connect to Ray cluster")
    checks = message.split(". Check ", 1)[1]
    assert checks.startswith("reachability: `ray status --address 10.0.0.5:6379`")
    assert "RAY_AUTH_MODE=unset and no token" in checks and "versions: Ray" in checks


def test_token_source_follows_rays_order(no_token: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert ray_instance._token_source() is None
    home_token = no_token / ".ray" / "auth_token"
    home_token.parent.mkdir()
    home_token.write_text("t1")
    assert ray_instance._token_source() == str(home_token)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(no_token / "missing"))
    assert ray_instance._token_source() is None, "Ray does not fall back to ~/.ray/auth_token"
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(home_token))
    assert ray_instance._token_source() == f"RAY_AUTH_TOKEN_PATH={home_token}"
    monkeypatch.setenv("RAY_AUTH_TOKEN", "t2")
    assert ray_instance._token_source() == "RAY_AUTH_TOKEN"
