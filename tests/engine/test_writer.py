"""ShardWriter: atomic commits, orphan clean-up, exactly-once across re-opens."""

from __future__ import annotations

import hashlib
import json

import pyarrow.parquet as pq
import pytest

import tubelet.engine.ledger as ledger_module
from tests.engine.pipelines_for_tests import MakeVideo
from tubelet.engine.dataset import Dataset
from tubelet.engine.ledger import read_entries
from tubelet.engine.task import VideoTask
from tubelet.engine.writer import DatasetLockedError, ShardWriter
from tubelet.schemas import Reject, VideoRecord


def tasks(n: int, start: int = 0) -> list[VideoTask]:
    made = [VideoTask(video_id=f"v{i:03d}", uri=f"synthetic://v{i:03d}") for i in range(start, start + n)]
    return MakeVideo().process(made)


def temp_files(root) -> list[str]:
    return [str(p) for p in root.rglob("*.tmp")]


def test_commits_every_shard_size_and_at_close(tmp_path):
    with ShardWriter(tmp_path, shard_size=4, run_id="r1") as w:
        for i, task in enumerate(tasks(10)):
            assert w.add(task)
            # a shard is committed as soon as it is full, not before
            assert len(read_entries(tmp_path)) == (i + 1) // 4
        assert w.buffered == 2
    entries = read_entries(tmp_path)
    assert [e.shard for e in entries] == ["r1-00001", "r1-00002", "r1-00003"]
    assert [len(e.items) for e in entries] == [4, 4, 2]
    for entry in entries:
        assert set(entry.files) == {"videos", "tubelets", "events"}
        for table, info in entry.files.items():
            path = tmp_path / str(info["path"])
            assert path == tmp_path / "data" / table / f"{entry.shard}.parquet"
            assert pq.ParquetFile(path).metadata.num_rows == info["rows"] == len(entry.items)
    assert Dataset(tmp_path).counts() == {"videos": 10, "tubelets": 10, "events": 10}
    assert temp_files(tmp_path) == []


def test_ledger_entry_format(tmp_path):
    done, failed = tasks(2)
    failed.fail("probe", ValueError("corrupt"))
    with ShardWriter(tmp_path, shard_size=10, run_id="r1") as w:
        w.add(done)
        w.add(failed)
        w.add_rejects("manifest:list.jsonl:3", [Reject(item="list.jsonl:3", stage="manifest", reason="bad json")])
    # the commit is the first sequenced entry of the ledger
    data = json.loads((tmp_path / "meta" / "ledger" / "c000000000001.json").read_text())
    assert data["format"] == 1 and data["run_id"] == "r1" and data["shard"] == "r1-00001"
    assert data["items"] == {"v000": "done", "v001": "failed", "manifest:list.jsonl:3": "failed"}
    rejects = data["files"]["rejects"]
    blob = (tmp_path / "data" / "rejects" / "r1-00001.parquet").read_bytes()
    assert rejects == {
        "path": "data/rejects/r1-00001.parquet",
        "rows": 2,
        "bytes": len(blob),
        "sha256": hashlib.sha256(blob).hexdigest(),
    }
    assert data["files"]["videos"]["rows"] == 1  # a failed video contributes only its rejects


def test_reopen_skips_committed_keys(tmp_path):
    with ShardWriter(tmp_path, shard_size=3) as w:
        for task in tasks(5):
            w.add(task)
    with ShardWriter(tmp_path, shard_size=3) as w:
        assert set(w.committed) == {f"v{i:03d}" for i in range(5)}
        assert not w.add(tasks(1)[0])  # v000 again: refused
        assert w.add(tasks(1, start=5)[0])
        assert not w.add(tasks(1, start=5)[0])  # buffered already: refused too
    rows = Dataset(tmp_path).read_table("videos").column("video_id").to_pylist()
    assert sorted(rows) == [f"v{i:03d}" for i in range(6)]


def test_shard_names_are_unique_across_runs(tmp_path):
    for start in (0, 2, 4):
        with ShardWriter(tmp_path, shard_size=1) as w:
            for task in tasks(2, start):
                w.add(task)
    shards = [e.shard for e in read_entries(tmp_path)]
    assert len(shards) == len(set(shards)) == 6


def test_kill_before_the_ledger_entry_leaves_orphans_that_reopen_removes(tmp_path, monkeypatch):
    with ShardWriter(tmp_path, shard_size=2) as w:
        for task in tasks(2):
            w.add(task)
    committed = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "data").rglob("*.parquet"))

    # The next shard's data files land, then the process "dies" before its ledger entry.
    def die(self, entry, **kwargs):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(ledger_module.Ledger, "commit", die)
    w = ShardWriter(tmp_path, shard_size=2)
    with pytest.raises(KeyboardInterrupt):
        for task in tasks(2, start=2):
            w.add(task)
    w.abort()
    killed = w.run_id
    monkeypatch.undo()
    on_disk = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "data").rglob("*.parquet"))
    assert len(on_disk) == len(committed) + 3  # videos, tubelets, events of the lost shard
    # a temporary file half-written by the killed run, a ledger temp file, and a user's file
    (tmp_path / "data" / "videos" / f".{w.run_id}-00009.parquet.0a1b2c3d.tmp").write_bytes(b"PAR1 half")
    (tmp_path / "meta" / "ledger" / ".c000000000009.json.abcd1234.tmp").write_text("{")
    (tmp_path / "meta" / "ledger" / ".mine.tmp").write_text("not tubelet's")
    # readers never see the uncommitted shard
    assert Dataset(tmp_path).counts()["videos"] == 2
    assert Dataset(tmp_path).connect().execute("select count(*) from videos").fetchone() == (2,)

    with ShardWriter(tmp_path, shard_size=2) as w:
        assert len(w.removed) == 5
        assert f"data/videos/.{killed}-00009.parquet.0a1b2c3d.tmp" in w.removed
        assert "meta/ledger/.c000000000009.json.abcd1234.tmp" in w.removed
        assert set(w.committed) == {"v000", "v001"}  # v002, v003 were not committed: redo them
        for task in tasks(2, start=2):
            assert w.add(task)
    on_disk = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "data").rglob("*.parquet"))
    referenced = sorted(str(f["path"]) for e in read_entries(tmp_path) for f in e.files.values())
    assert on_disk == referenced
    assert temp_files(tmp_path) == [str(tmp_path / "meta" / "ledger" / ".mine.tmp")]
    ids = Dataset(tmp_path).connect().execute("select video_id from videos order by 1").fetchall()
    assert ids == [("v000",), ("v001",), ("v002",), ("v003",)]


def test_a_second_writer_is_refused_while_the_first_is_open(tmp_path):
    with ShardWriter(tmp_path):
        with pytest.raises(DatasetLockedError, match="being written by another run"):
            ShardWriter(tmp_path)
    ShardWriter(tmp_path).close()  # released


def test_rows_that_do_not_fit_the_schema_fail_only_their_own(tmp_path):
    good, bad = tasks(2)
    bad.video = VideoRecord(
        video_id="v001", uri="x", fps="fast", n_frames=1, duration_s=1, width=1, height=1, codec="x"
    )  # type: ignore[arg-type]
    with ShardWriter(tmp_path) as w:
        w.add(good)
        w.add(bad)
    ds = Dataset(tmp_path)
    assert ds.item_status() == {"v000": "done", "v001": "failed"}
    rejects = ds.read_table("rejects").to_pylist()
    assert [(r["video_id"], r["stage"]) for r in rejects] == [("v001", "write")]
    assert ds.read_table("videos").column("video_id").to_pylist() == ["v000"]


def test_empty_writer_commits_nothing(tmp_path):
    with ShardWriter(tmp_path) as w:
        assert w.flush() is None
    assert read_entries(tmp_path) == []
    with pytest.raises(ValueError):
        ShardWriter(tmp_path, shard_size=0)
