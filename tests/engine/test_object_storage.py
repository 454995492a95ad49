"""Outputs on object storage (a real S3-protocol server on loopback): commits that stay
exactly-once without locks or renames, one writer at a time, and every reader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tubelet.cli.main import main as tubelet
from tubelet.engine.config import RunConfig
from tubelet.engine.ledger import CommitConflictError, Ledger, LedgerEntry, read_entries
from tubelet.engine.locks import LEASE_FILE, DatasetLockedError
from tubelet.engine.storage import open_storage
from tubelet.pipelines import run_manifest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["local", "s3"])
def location(request, tmp_path) -> str:
    if request.param == "local":
        return str(tmp_path / "ds")
    return request.getfixturevalue("s3").url()


def entry(shard: str, *keys: str) -> LedgerEntry:
    return LedgerEntry(shard=shard, run_id="r", committed_at="t", items=dict.fromkeys(keys, "done"))


def test_two_writers_never_commit_the_same_item(location):
    """No lock: writer B commits first; A's commit of the same name fails, A reads B's
    entry and refuses the item B holds, then commits a disjoint one under the next name."""
    a, b = Ledger(location), Ledger(location)
    b.commit(entry("b-1", "v1", "v2"))
    with pytest.raises(CommitConflictError, match="v2"):
        a.commit(entry("a-1", "v2", "v3"))
    a.commit(entry("a-2", "v3"))
    names = [(e.name, e.shard) for e in read_entries(location)]
    assert names == [("c000000000001", "b-1"), ("c000000000002", "a-2")]
    assert Ledger(location).status == {"v1": "done", "v2": "done", "v3": "done"}


DRIVER = """
import json, sys
from tubelet.engine.config import RunConfig
from tubelet.pipelines import run_manifest
if __name__ == "__main__":
    run_manifest(RunConfig.model_validate(json.load(open(sys.argv[1]))), progress=False)
"""


def slow_config(out: str, n: int = 30) -> dict:
    return {
        "pipeline": "tests.engine.pipelines_for_tests:build",
        "output": out,
        "runner": "inline",
        "shard_size": 2,
        "params": {"stages": [{"kind": "make"}, {"kind": "slow", "sleep_s": 0.1}]},
        "videos": [{"uri": f"synthetic://v{i}", "video_id": f"v{i:03d}"} for i in range(n)],
    }


def test_a_second_writer_is_refused_while_a_run_writes(tmp_path, s3):
    out = s3.url("busy")
    (tmp_path / "config.json").write_text(json.dumps(slow_config(out)))
    (tmp_path / "driver.py").write_text(DRIVER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), str(tmp_path / "config.json")], env=env)
    try:
        storage = open_storage(out)
        deadline = time.monotonic() + 60
        while not storage.list_files("meta/ledger"):
            assert first.poll() is None and time.monotonic() < deadline, "the first run never committed"
            time.sleep(0.05)
        lease = json.loads(storage.read_text(LEASE_FILE))
        assert lease["pid"] == first.pid
        with pytest.raises(DatasetLockedError, match=f"being written by run {lease['owner']}"):
            run_manifest(RunConfig.model_validate(slow_config(out)), progress=False, log_to_stderr=False)
    finally:
        assert first.wait(timeout=120) == 0
    assert not open_storage(out).exists(LEASE_FILE)  # released at the end of the run
    statuses = {k for e in read_entries(out) for k in e.items}
    assert len(statuses) == 30


def test_every_reader_works_on_an_s3_dataset(tmp_path, s3, synthetic_sample, capsys):
    """Import ground truth to S3, then status, query, validate, eval and release read it."""
    out = s3.url("gt")
    masks = {"format": "davis", "path": str(synthetic_sample.masks_dir)}
    config = RunConfig.model_validate(
        {
            "pipeline": "import",
            "output": out,
            "runner": "inline",
            "videos": [{"uri": str(synthetic_sample.video), "video_id": "scene", "annotations": masks}],
        }
    )
    assert run_manifest(config, progress=False, log_to_stderr=False).done == 1
    capsys.readouterr()

    assert tubelet(["status", out]) == 0
    assert "videos: 1 done, 0 failed, 0 pending" in capsys.readouterr().out
    assert tubelet(["query", out, "SELECT count(*) AS n FROM tubelets", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 3}]
    assert tubelet(["validate", out, "--all-masks"]) == 0
    assert ": OK" in capsys.readouterr().out
    assert tubelet(["eval", out, out, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["overall"]["jf"] == pytest.approx(1.0)
    assert tubelet(["release", out, "--version", "1", "--to", str(tmp_path / "rel"), "--format", ""]) == 0
    assert (tmp_path / "rel" / "SHA256SUMS").is_file()
    assert "tubelets" in capsys.readouterr().out
