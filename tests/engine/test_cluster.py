"""RayRunner joins a two-node Ray cluster (``address=``) on loopback, and the run spreads over it.

The cluster gets its own processes, ports and temp dir; the run's driver is a subprocess
because this test process may already hold the session's local Ray instance.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.engine.raytools import free_port, kill_session, listeners, listening_on, non_loopback, session_pids

ROOT = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).with_name("ray"))
N = 16

DRIVER = """
import json, sys
import ray
from tubelet.engine.config import RunConfig
from tubelet.pipelines import run_manifest
config, address = RunConfig.model_validate(json.load(open(sys.argv[1]))), sys.argv[2]
summary = run_manifest(config, runner="ray", address=address, progress=False, log_to_stderr=False)
assert not ray.is_initialized(), "RayRunner must disconnect from the cluster it joined"
ray.init(address=address)
nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
ray.shutdown()
print("RESULT " + json.dumps({"done": summary.done, "failed": summary.failed, "nodes": nodes}))
"""


def node_ports() -> list[str]:
    """Explicit free ports for everything a node listens on, so two nodes never clash."""
    names = [
        "node-manager-port",
        "object-manager-port",
        "dashboard-agent-listen-port",
        "dashboard-agent-grpc-port",
        "runtime-env-agent-port",
        "metrics-export-port",
    ]
    return [f"--{name}={free_port()}" for name in names]


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


@pytest.mark.slow
@pytest.mark.cluster
@pytest.mark.ray
def test_run_on_a_two_node_loopback_cluster(tmp_path):
    port = free_port()
    temp_dir = tempfile.mkdtemp(prefix="/tmp/tbc")  # short: Ray's socket paths must fit 107 bytes
    token = Path(temp_dir) / "token"
    token.write_text(os.urandom(16).hex())
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        # a token-protected cluster, with its own token (never the user's ~/.ray)
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token),
    }
    common = [
        "--node-ip-address=127.0.0.1",
        "--num-cpus=1",
        f"--temp-dir={temp_dir}",
        "--block",
        "--disable-usage-stats",
    ]
    logs = [open(tmp_path / "head.log", "w"), open(tmp_path / "worker.log", "w")]
    head = subprocess.Popen(
        [RAY, "start", "--head", f"--port={port}", "--include-dashboard=false", *common, *node_ports()],
        env=env,
        cwd=ROOT,
        stdout=logs[0],
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    procs = [head]
    try:
        wait_for(
            lambda: any(a.endswith(f":{port}") for a, _ in listeners(session_pids(head.pid))), 60, "the head's GCS"
        )
        worker = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "tests" / "engine" / "ray_start_loopback.py"),
                "start",
                f"--address=127.0.0.1:{port}",
                *common,
                *node_ports(),
            ],
            env={**env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"},  # `ray start` refuses worker nodes otherwise
            cwd=ROOT,
            stdout=logs[1],
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs.append(worker)
        wait_for(lambda: any(comm(p) == "raylet" for p in session_pids(worker.pid)), 60, "the worker's raylet")

        notes = tmp_path / "notes"
        notes.mkdir()
        config = {
            "pipeline": "tests.engine.pipelines_for_tests:build",
            "output": str(tmp_path / "out"),
            "shard_size": 4,
            "params": {
                "stages": [
                    {"kind": "make"},
                    {"kind": "slow", "sleep_s": 0.3},
                    {"kind": "where", "notes": str(notes)},
                    {"kind": "instruct"},
                ]
            },
            "videos": [{"uri": f"synthetic://v{i}", "video_id": f"v{i:03d}"} for i in range(N)],
        }
        (tmp_path / "config.json").write_text(json.dumps(config))
        driver = subprocess.run(
            [sys.executable, "-c", DRIVER, str(tmp_path / "config.json"), f"127.0.0.1:{port}"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert driver.returncode == 0, driver.stdout[-3000:] + driver.stderr[-5000:]
        result = json.loads(driver.stdout.split("RESULT ", 1)[1])

        exposed = non_loopback(session_pids(head.pid) | session_pids(worker.pid))
        assert not exposed, f"the cluster listens beyond loopback: {exposed}"
    finally:
        for proc in reversed(procs):
            left = kill_session(proc, grace_s=3)
            assert not left, f"processes left after killing {proc.args[:2]}: {left}"
        for log in logs:
            log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)

    assert (result["done"], result["failed"]) == (N, 0)
    assert len(result["nodes"]) == 2, result
    used = {p.read_text() for p in notes.glob("node-*")}
    assert used == set(result["nodes"]), f"batches ran on {used}, cluster nodes {result['nodes']}"
    assert not session_pids(head.pid) | session_pids(procs[-1].pid)
    assert not listening_on(port), "the cluster's GCS port is still open"

    from tubelet.engine.dataset import Dataset

    con = Dataset(tmp_path / "out").connect()
    assert con.execute("select count(*), count(distinct video_id) from videos").fetchone() == (N, N)


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""
