"""A crashed run never looks alive or fine (issue 14, item 6): real `tubelet run`
processes, killed for real.

- SIGKILL of the driver: `status` said "running" (exit 4) while it ran, says "crashed"
  (exit 3) once it is gone, and the run that resumes records it so and exits 0.
- SIGKILL of a process-pool worker: its bundle is retried, the log names the worker.
- SIGKILL of Ray's raylet: the run ends "failed" saying what died, exit 3 (Ray used to
  `_exit(1)` the driver: "finished with rejects", no message, info.json "running").
- SIGKILL of a Ray actor: it is replaced and the run finishes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.engine.raytools import kill_session, session_pids
from tubelet.cli.common import EXIT_OK, EXIT_RUN_FAILED, EXIT_RUNNING
from tubelet.cli.main import main
from tubelet.engine.dataset import Dataset

ROOT = Path(__file__).resolve().parents[2]
N = 12


def write_manifest(tmp_path: Path, runner: str, stages: list[dict]) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(
        json.dumps(
            {
                "pipeline": "tests.engine.pipelines_for_tests:build",
                "output": "out",
                "runner": runner,
                "shard_size": 2,
                "params": {"stages": stages},
                "videos": [{"uri": f"synthetic://v{i}", "video_id": f"v{i:03d}"} for i in range(N)],
                "ray": {"num_cpus": 2},
            }
        )
    )
    return path


def start_run(manifest: Path, log: Path) -> subprocess.Popen:
    """`tubelet run` of this tree in a session of its own (so that it and its workers can be found)."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # a private Ray, never a cluster
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tubelet", "run", str(manifest), "--no-progress", "--log-level", "info"],
            cwd=manifest.parent,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_for(proc: subprocess.Popen, log: Path, ready: Callable[[], bool], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        assert proc.poll() is None, f"the run ended too soon: {log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"timed out: {log.read_text()[-3000:]}"
        time.sleep(0.05)


def committed(out: Path, at_least: int) -> Callable[[], bool]:
    ledger = out / "meta" / "ledger"
    return lambda: ledger.is_dir() and len(list(ledger.glob("c*.json"))) >= at_least


def status(capsys: pytest.CaptureFixture[str], out: Path) -> tuple[int, str]:
    code = main(["status", str(out)])
    return code, capsys.readouterr().out


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return 0


def test_a_killed_driver_is_crashed_not_running(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, "process", [{"kind": "make"}, {"kind": "slow", "sleep_s": 0.3}])
    out, log = tmp_path / "out", tmp_path / "run.log"
    proc = start_run(manifest, log)
    try:
        wait_for(proc, log, committed(out, 1))
        code, text = status(capsys, out)
        assert code == EXIT_RUNNING, text
        assert f": running (driver pid {proc.pid} on " in text
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its pool, as the OOM killer or `kill -9` would
        proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while session_pids(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)

    assert Dataset(out).info().runs[-1].status == "running"  # what the killed driver left written
    code, text = status(capsys, out)
    assert code == EXIT_RUN_FAILED, text
    assert f": crashed (driver pid {proc.pid} on " in text and "is gone" in text

    rerun = start_run(manifest, tmp_path / "rerun.log")
    assert rerun.wait(timeout=120) == EXIT_OK, (tmp_path / "rerun.log").read_text()[-3000:]
    runs = Dataset(out).info().runs
    assert [r.status for r in runs] == ["crashed", "finished"]
    assert runs[0].error.startswith(f"the run ended without recording how (found by run {runs[1].run_id})")
    code, text = status(capsys, out)
    assert code == EXIT_OK and f"videos: {N} done, 0 failed, 0 pending" in text


def kill_one_during_run(
    tmp_path: Path, runner: str, stages: list[dict], shards: int, victims: Callable[[subprocess.Popen], list[int]]
) -> tuple[int, str, int, set[int]]:
    """Run the manifest; once ``shards`` are committed SIGKILL the first of ``victims``
    (one process of the run's session) and let the run go on. Returns its exit code, its
    log, the victim and what of the session outlived it."""
    manifest = write_manifest(tmp_path, runner, stages)
    log = tmp_path / "run.log"
    proc = start_run(manifest, log)
    try:
        wait_for(proc, log, committed(tmp_path / "out", shards))
        found = victims(proc)
        assert found, "expected a process to kill"
        os.kill(found[0], signal.SIGKILL)
        code = proc.wait(timeout=180)
    finally:
        left = kill_session(proc)
    return code, log.read_text(), found[0], left


def pool_workers(proc: subprocess.Popen) -> list[int]:
    """The pool's worker processes: they fork from the fork server, a child of the driver."""
    return [p for p in session_pids(proc.pid) if parent(p) not in (proc.pid, 0) and "forkserver" in comm(p)]


def ray_processes(name: str) -> Callable[[subprocess.Popen], list[int]]:
    """The processes of the run's own Ray instance whose command line holds ``name``."""
    return lambda proc: [p for p in session_pids(proc.pid) if name in comm(p)]


def test_a_killed_pool_worker_costs_a_retry_and_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    stages = [{"kind": "make"}, {"kind": "slow", "sleep_s": 0.3}]
    code, text, worker, _ = kill_one_during_run(tmp_path, "process", stages, 1, pool_workers)
    assert code == EXIT_OK, text[-3000:]
    assert f"pool worker pid {worker} killed by SIGKILL" in text
    assert status(capsys, tmp_path / "out")[0] == EXIT_OK
    assert Dataset(tmp_path / "out").info().runs[-1].done == N


#: An actor pool (the model stage keeps state), slow enough to be killed in the middle.
RAY_STAGES = [{"kind": "make"}, {"kind": "model"}, {"kind": "slow", "sleep_s": 0.5}]


@pytest.mark.slow
@pytest.mark.ray
def test_a_dead_raylet_fails_the_run_saying_so(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("ray")
    code, text, raylet, left = kill_one_during_run(tmp_path, "ray", RAY_STAGES, 2, ray_processes("raylet/raylet"))
    assert code == EXIT_RUN_FAILED, text[-3000:]
    assert f"failed: RunnerError: Ray's raylet (pid {raylet}, exit -9) died on this machine" in text
    assert not left, f"Ray processes outlived the run: {left}"
    run = Dataset(tmp_path / "out").info().runs[-1]
    assert run.status == "failed" and f"raylet (pid {raylet}" in run.error
    code, text = status(capsys, tmp_path / "out")
    assert code == EXIT_RUN_FAILED and ": failed (RunnerError" in text


@pytest.mark.slow
@pytest.mark.ray
def test_a_killed_ray_actor_is_replaced(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("ray")
    code, text, _, _ = kill_one_during_run(tmp_path, "ray", RAY_STAGES, 1, ray_processes("ray::make_video_model_slow"))
    assert code == EXIT_OK, text[-3000:]
    assert "replaced a dead actor" in text
    assert Dataset(tmp_path / "out").info().runs[-1].done == N and status(capsys, tmp_path / "out")[0] == EXIT_OK
