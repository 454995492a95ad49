"""SIGKILL a run part-way, re-run it: every video exactly once, only the rest redone —
on a local folder and on object storage (a real S3-protocol server on loopback)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.engine.raytools import session_pids
from tubelet.engine.config import RunConfig
from tubelet.engine.dataset import Dataset
from tubelet.engine.ledger import read_entries
from tubelet.engine.logs import read_log
from tubelet.engine.storage import open_storage
from tubelet.pipelines import run_manifest

ROOT = Path(__file__).resolve().parents[2]
N = 24

DRIVER = """
import json, sys
from tubelet.engine.config import RunConfig
from tubelet.pipelines import run_manifest
if __name__ == "__main__":
    run_manifest(RunConfig.model_validate(json.load(open(sys.argv[1]))), progress=False)
"""


def config(out: str, runner: str) -> dict:
    return {
        "pipeline": "tests.engine.pipelines_for_tests:build",
        "output": out,
        "runner": runner,
        "shard_size": 3,
        "params": {"stages": [{"kind": "make"}, {"kind": "slow", "sleep_s": 0.05}, {"kind": "instruct"}]},
        "videos": [{"uri": f"synthetic://v{i}", "video_id": f"v{i:03d}"} for i in range(N)],
        "ray": {"num_cpus": 2},
    }


def kill_part_way(tmp_path: Path, out: str, runner: str) -> None:
    """Start the run in its own process group; SIGKILL the whole group once 2 shards are in."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config(out, runner)))
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    # this tree's tubelet (src/) and its tests, whatever the venv's editable install points at
    env = {
        **os.environ,
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    }
    log = open(tmp_path / "driver.log", "w")
    proc = subprocess.Popen(
        [sys.executable, str(script), str(path)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    storage = open_storage(out)
    deadline = time.monotonic() + 120
    try:
        while len(storage.list_files("meta/ledger")) < 2:
            assert proc.poll() is None, (
                f"the run ended before it was killed: {(tmp_path / 'driver.log').read_text()[-3000:]}"
            )
            assert time.monotonic() < deadline, "no shard committed in time"
            time.sleep(0.05)
        started = session_pids(proc.pid)
        assert proc.pid in started
        if runner in ("ray", "process"):
            assert len(started) > 2, "expected the run's own workers"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        log.close()
    # nothing of the killed run (its workers included) survives
    deadline = time.monotonic() + 30
    while session_pids(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not session_pids(proc.pid)


def resume_and_check(out: str, runner: str) -> None:
    storage = open_storage(out)
    before = Dataset(out).item_status()
    assert 0 < len(before) < N, "the kill should land part-way"
    referenced = {str(f["path"]) for e in read_entries(out) for f in e.files.values()}
    unreferenced = sorted(rel for rel in storage.list_files("data") if rel not in referenced)
    # a kill that lands while a ledger entry is being written leaves its temporary file
    unreferenced = sorted(unreferenced + [rel for rel in storage.list_files("meta/ledger") if rel.endswith(".tmp")])

    summary = run_manifest(RunConfig.model_validate(config(out, runner)), progress=False, log_to_stderr=False)

    # the second run did only what was left, and removed what the killed one left
    assert summary.skipped_already_done == len(before)
    assert summary.done == N - len(before) and summary.failed == 0
    assert sorted(summary.removed_orphans) == unreferenced
    if summary.log_path is not None:
        start = next(r for r in read_log(summary.log_path) if r.get("event") == "run_start")
        assert (start["skipped"], start["pending"]) == (len(before), N - len(before))
    shards = [e for e in read_entries(out) if e.run_id == summary.run_id]
    assert sum(len(e.items) for e in shards) == N - len(before)
    assert not set(before) & {k for e in shards for k in e.items}

    # every video exactly once, none lost, no file the ledger does not name
    con = Dataset(out).connect()
    for table in ("videos", "tubelets", "events", "instructions"):
        total, distinct = con.execute(f"select count(*), count(distinct video_id) from {table}").fetchone()
        assert total == distinct == N, table
    assert con.execute("select count(*), count(distinct key) from ledger_items").fetchone() == (N, N)
    referenced = {str(f["path"]) for e in read_entries(out) for f in e.files.values()}
    assert set(storage.list_files("data")) == referenced
    assert not [rel for rel in storage.list_files("") if rel.endswith(".tmp")]
    runs = Dataset(out).info().runs
    # the killed run never got to say more; the run that resumed found its driver gone
    assert [r.status for r in runs] == ["crashed", "finished"]
    assert f"found by run {summary.run_id}" in runs[0].error and "is gone" in runs[0].error


@pytest.mark.parametrize("runner", ["inline", "process"])
def test_sigkill_then_resume(tmp_path, runner):
    out = str(tmp_path / "out")
    kill_part_way(tmp_path, out, runner)
    resume_and_check(out, runner)


def test_sigkill_then_resume_on_object_storage(tmp_path, s3):
    # the killed run's lease names a dead process of this machine: the re-run takes it over at once
    out = s3.url("resume")
    kill_part_way(tmp_path, out, "process")
    resume_and_check(out, "process")


@pytest.mark.slow
@pytest.mark.ray
def test_sigkill_ray_then_resume(ray_local, tmp_path):
    out = str(tmp_path / "out")
    kill_part_way(tmp_path, out, "ray")
    resume_and_check(out, "ray")
