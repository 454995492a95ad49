"""Dataset: the read side — committed files only, DuckDB views, status and plan."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.engine.test_writer import tasks
from tests.engine.tiny_dataset import recommit_file
from tubelet.engine.dataset import Dataset
from tubelet.engine.writer import ShardWriter
from tubelet.schemas.arrow import TABLE_SCHEMAS
from tubelet.schemas.info import SchemaVersionError


@pytest.fixture
def dataset(tmp_path):
    batch = tasks(5)
    batch[4].fail("probe", RuntimeError("unreadable"))
    with ShardWriter(tmp_path, shard_size=2) as w:
        for task in batch:
            w.add(task)
    (tmp_path / "meta" / "plan.json").write_text(json.dumps({"items": [f"v{i:03d}" for i in range(7)]}))
    return Dataset(tmp_path)


def test_views_for_every_table_even_empty_ones(dataset):
    con = dataset.connect()
    assert con.execute("select count(*) from videos").fetchone() == (4,)
    assert con.execute("select count(*) from instructions").fetchone() == (0,)
    for table, schema in TABLE_SCHEMAS.items():
        names = [d[0] for d in con.execute(f"select * from {table} limit 0").description]
        assert names == schema.names, table
    # nested columns are queryable
    n = con.execute("select sum(len(frames)) from tubelets").fetchone()[0]
    assert n == 4 * 5
    assert con.execute("select status, count(*) from ledger_items group by 1 order by 1").fetchall() == [
        ("done", 4),
        ("failed", 1),
    ]


def test_status_plan_pending(dataset):
    assert dataset.item_status() == {"v000": "done", "v001": "done", "v002": "done", "v003": "done", "v004": "failed"}
    assert dataset.planned() == [f"v{i:03d}" for i in range(7)]
    assert dataset.pending() == ["v005", "v006"]


def test_files_and_read_table_are_committed_only(dataset):
    files = dataset.files("videos")
    assert len(files) == 2  # shards of 2 + 2; the third shard has only the failed video's reject
    stray = Path(dataset.root) / "data" / "videos" / "not-committed.parquet"
    pq.write_table(tasks_table(), stray)
    assert dataset.files("videos") == files
    assert dataset.read_table("videos").num_rows == 4
    assert dataset.connect().execute("select count(*) from videos").fetchone() == (4,)
    assert dataset.read_table("videos").schema == TABLE_SCHEMAS["videos"]
    assert dataset.read_table("reviews").num_rows == 0
    with pytest.raises(KeyError):
        dataset.files("nope")


def tasks_table() -> pa.Table:
    return pa.table({"video_id": ["zzz"]})


def test_read_table_fills_columns_an_older_file_lacks(dataset):
    path = dataset.files("events")[0]
    old = pq.read_table(path).drop_columns(["model_id"])
    pq.write_table(old, path)
    for entry in (Path(dataset.root) / "meta" / "ledger").glob("*.json"):  # entries of then recorded no digest
        data = json.loads(entry.read_text())
        for info in data["files"].values():
            info.pop("sha256"), info.pop("bytes")
        entry.write_text(json.dumps(data))
    table = dataset.read_table("events")
    assert table.schema == TABLE_SCHEMAS["events"]
    assert table.column("model_id").null_count == table.num_rows
    assert dataset.connect().execute("select count(model_id), count(*) from events").fetchone() == (0, 4)


def test_videos_written_before_rotation_was_recorded_read_as_unknown(dataset):
    """Schema 1.2.0 added ``videos.rotation``: an older file reads with it null (not 0: nobody
    looked), and the records say None."""
    for path in dataset.files("videos"):
        recommit_file(Path(dataset.root), Path(path), pq.read_table(path).drop_columns(["rotation"]))
    videos = dataset.read_table("videos")
    assert videos.num_rows and videos.column("rotation").null_count == videos.num_rows
    assert {v.rotation for v in dataset.records("videos")} == {None}


def test_info_is_checked(dataset):
    with pytest.raises(FileNotFoundError):
        dataset.info()
    (Path(dataset.root) / "meta" / "info.json").write_text(
        json.dumps({"schema_version": "99.0.0", "pipeline": "x", "config_hash": "y"})
    )
    with pytest.raises(SchemaVersionError):
        dataset.info()


def test_missing_committed_file_is_an_error(dataset):
    Path(dataset.files("videos")[0]).unlink()
    with pytest.raises(FileNotFoundError, match="missing"):
        dataset.files("videos")


def test_not_a_dataset(tmp_path):
    with pytest.raises(FileNotFoundError):
        Dataset(tmp_path / "nothing")
    assert Dataset(tmp_path).item_status() == {}
    assert Dataset(tmp_path).planned() == []
