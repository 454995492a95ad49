"""Revisions (ledger entries that replace a video's rows), named versions and revert."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.engine import tiny_dataset
from tests.engine.test_run import make_config
from tubelet.engine.dataset import REPLACED_TABLE, Dataset
from tubelet.engine.ledger import LedgerEntry, read_entries, read_reverted_entries, replaced_by
from tubelet.engine.versions import (
    VERSIONS_FILE,
    commit_revision,
    list_versions,
    revert,
    tag_version,
)
from tubelet.engine.writer import ShardWriter
from tubelet.pipelines import run_manifest
from tubelet.schemas import Answer, Instruction, Message, Reject
from tubelet.schemas.arrow import TABLE_SCHEMAS

FILTERED = [t for t in TABLE_SCHEMAS if t != "rejects"]


def revised_a(category: str = "human", text: str = "Which one is the human?") -> list[object]:
    """Video ``a`` as a reviewer left it: one tubelet (not two), another instruction."""
    task = tiny_dataset._task("a", [category])
    task.instructions = [
        Instruction(
            instruction_id="a:reviewed",
            video_id="a",
            task_type="region_qa",
            messages=[Message("user", text), Message("assistant", "<region0>")],
            answer=Answer(text="the first one", tubelet_ids=[task.tubelets[0].tubelet_id]),
        )
    ]
    records = [r for table, rows in task.records().items() for r in rows]
    return records + [Reject(item="a", stage="review", reason="two tubelets merged", video_id="a")]


def rows_of(ds: Dataset, table: str, video_id: str) -> list[dict]:
    return [r for r in ds.read_table(table).to_pylist() if r["video_id"] == video_id]


def sql(ds: Dataset, query: str) -> list[tuple]:
    return ds.connect().execute(query).fetchall()


def snapshot(ds: Dataset) -> dict[str, list[dict]]:
    """Every value of every table, order-independent."""
    return {
        t: sorted(ds.read_table(t).to_pylist(), key=lambda r: json.dumps(r, sort_keys=True, default=str))
        for t in TABLE_SCHEMAS
    }


@pytest.fixture
def root(tmp_path) -> Path:
    return tiny_dataset.build(tmp_path / "ds")


def test_every_table_has_video_id():
    for table, schema in TABLE_SCHEMAS.items():
        field = schema.field("video_id")
        assert field.nullable == (table == "rejects"), table


def test_revision_replaces_one_video_in_read_table_and_sql(root):
    old = Dataset(root)
    assert old.counts()["tubelets"] == 3 and old.counts()["rejects"] == 1
    b_before = {t: rows_of(old, t, "b") for t in FILTERED}

    before, after = commit_revision(root, {"a": revised_a()}, note="review 1")
    assert (before.name, after.name) == ("v1", "v2") and after.note == "review 1"
    assert len(after.shards) == len(before.shards) + 1

    ds = Dataset(root)
    tubelets = ds.read_table("tubelets")
    assert sorted(zip(tubelets.column("video_id").to_pylist(), tubelets.column("category").to_pylist())) == [
        ("a", "human"),
        ("b", "cat"),
    ]
    instructions = ds.read_table("instructions")
    assert sorted(instructions.column("instruction_id").to_pylist()) == ["a:reviewed", "b:i1"]
    assert ds.read_table("videos").num_rows == 2  # not 3: the video row was replaced too
    # rejects are history: the old one of b and the new one of a
    assert sorted(ds.read_table("rejects").column("stage").to_pylist()) == ["import:test", "review"]
    assert ds.counts() == {"videos": 2, "tubelets": 2, "entities": 2, "events": 2, "instructions": 2, "rejects": 2}
    # other videos are left alone, value for value
    for table in FILTERED:
        assert rows_of(ds, table, "b") == b_before[table], table

    assert sql(ds, "select video_id, category from tubelets order by 1") == [("a", "human"), ("b", "cat")]
    assert sql(ds, "select instruction_id, messages[1].content from instructions order by 1") == [
        ("a:reviewed", "Which one is the human?"),
        ("b:i1", "When does <region0> move?"),
    ]
    assert sql(ds, "select count(*) from videos") == [(2,)]
    assert sql(ds, "select count(*) from rejects") == [(2,)]
    assert sql(ds, "select key, status from ledger_items where key = 'a' order by shard") == [
        ("a", "done"),
        ("a", "done"),
    ]
    con = ds.connect()
    for table, schema in TABLE_SCHEMAS.items():  # no helper column leaks into a view
        assert [d[0] for d in con.execute(f"select * from {table} limit 0").description] == schema.names, table
    assert ds.records("tubelets")[0].category in {"human", "cat"}


def test_views_stay_plain_without_revisions(root):
    con = Dataset(root).connect()
    sqls = dict(con.execute("select view_name, sql from duckdb_views() where not internal").fetchall())
    assert "filename" not in sqls["tubelets"]
    assert REPLACED_TABLE not in [r[0] for r in con.execute("show tables").fetchall()]


def test_pre_revision_version_reads_the_old_rows_and_revert_restores_them(root):
    original = snapshot(Dataset(root))
    before, after = commit_revision(root, {"a": revised_a()}, note="review 1")
    assert snapshot(Dataset(root, version=before.name)) == original
    assert Dataset(root, version=after.name).read_table("tubelets").num_rows == 2
    assert sql(Dataset(root, version="v1"), "select count(*) from tubelets where video_id = 'a'") == [(2,)]

    back = revert(root, before.name)
    assert back.name == "v3" and back.note == "revert to v1" and set(back.shards) == set(before.shards)
    assert snapshot(Dataset(root)) == original
    assert Dataset(root).counts() == Dataset(root, version="v1").counts()
    # the reverted revision is kept, and still readable through its version
    [parked] = read_reverted_entries(root)
    assert parked.replaces == ["a"] and all((root / str(f["path"])).is_file() for f in parked.files.values())
    assert snapshot(Dataset(root, version=after.name)) != original
    assert (
        Dataset(root, version=after.name)
        .read_table("instructions")
        .column("instruction_id")
        .to_pylist()
        .count("a:reviewed")
        == 1
    )
    # a writer opened later keeps the files of reverted entries (they are no orphans)
    with ShardWriter(root) as writer:
        assert writer.removed == []
        assert writer.committed["a"] == "done"
    assert all((root / str(f["path"])).is_file() for f in parked.files.values())
    # revert to the revised version again: "redo"
    again = revert(root, after.name)
    assert set(again.shards) == set(after.shards) and read_reverted_entries(root) == []
    assert sql(Dataset(root), "select category from tubelets where video_id = 'a'") == [("human",)]


def test_two_successive_revisions_last_wins(root):
    commit_revision(root, {"a": revised_a("human", "first")}, note="review 1")
    _, last = commit_revision(root, {"a": revised_a("robot", "second")}, note="review 2")
    ds = Dataset(root)
    assert [e.replaces for e in ds.ledger()][-2:] == [["a"], ["a"]]
    assert replaced_by(ds.ledger()) == {"a": last.shards[-1]}
    assert sql(ds, "select category from tubelets where video_id = 'a'") == [("robot",)]
    assert ds.read_table("tubelets").num_rows == 2
    assert sql(ds, "select messages[1].content from instructions where video_id = 'a'") == [("second",)]
    assert ds.counts()["instructions"] == 2 and ds.counts()["rejects"] == 3
    assert [v.name for v in list_versions(root)] == ["v1", "v2", "v3"]  # v2 is both "after 1" and "before 2"


def test_revision_that_drops_a_table_removes_the_videos_rows_there(root):
    only_video = [r for r in revised_a() if type(r).__name__ == "VideoRecord"]
    commit_revision(root, {"a": only_video}, note="keep the video row only")
    ds = Dataset(root)
    for table in ("tubelets", "entities", "events", "instructions"):
        assert set(ds.read_table(table).column("video_id").to_pylist()) == {"b"}, table
        assert sql(ds, f"select distinct video_id from {table}") == [("b",)], table
    assert ds.counts()["videos"] == 2 and ds.counts()["tubelets"] == 1


def test_revision_checks_its_rows_and_commits_nothing_on_error(root):
    wrong = revised_a() + [tiny_dataset._tubelet("b", "5", "cat", range(2))]
    with pytest.raises(ValueError, match="video 'b'"):
        commit_revision(root, {"a": wrong}, note="bad")
    assert all(not e.replaces for e in read_entries(root)) and list_versions(root) == []
    with pytest.raises(ValueError):
        commit_revision(root, {}, note="nothing")


def test_ledger_order_is_commit_order_whatever_the_run_ids(root):
    # a shard whose run id sorts "in the future", then a revision with one from the past:
    # the revision is still the later commit, so its rows are the ones read
    with ShardWriter(root, shard_size=1, run_id="20990101T000000Z-later0") as writer:
        writer.add(tiny_dataset._task("c", ["cow"]))
    commit_revision(root, {"a": revised_a()}, note="y", run_id="19990101T000000Z-early0")
    entries = read_entries(root)
    assert [e.name for e in entries] == sorted(e.name for e in entries)
    assert entries[-1].replaces == ["a"] and entries[-1].run_id == "19990101T000000Z-early0"
    assert sql(Dataset(root), "select category from tubelets where video_id = 'a'") == [("human",)]


def test_old_ledger_entries_without_replaces_load(root):
    # the oldest layout: entries named after their shard, without a format key
    ledger = root / "meta" / "ledger"
    for sequenced in sorted(ledger.glob("c*.json")):
        data = json.loads(sequenced.read_text())
        assert "replaces" not in data and data["format"] == 1
        del data["format"]
        (ledger / f"{data['shard']}.json").write_text(json.dumps(data))
        sequenced.unlink()
    [first, _] = read_entries(root)
    assert first.replaces == [] and first.format == 1 and first.name == first.shard
    assert Dataset(root).read_table("tubelets").num_rows == 3
    _, after = commit_revision(root, {"a": revised_a()}, note="r")
    newest = read_entries(root)[-1]
    assert newest.name == "c000000000001" and newest.shard == after.shards[-1]  # sorts after every old name
    raw = json.loads((ledger / f"{newest.name}.json").read_text())
    assert raw["format"] == 2 and raw["replaces"] == ["a"] and raw["items"] == {"a": "done"}
    assert LedgerEntry.from_dict(raw).to_dict() == raw
    with pytest.raises(ValueError, match="replaces"):
        LedgerEntry.from_dict({**raw, "replaces": "a"})
    with pytest.raises(ValueError, match="newer"):
        LedgerEntry.from_dict({**raw, "format": 3})


def test_writer_add_revision_is_not_skipped_and_resume_keeps_it(root):
    with ShardWriter(root, shard_size=10) as writer:
        assert writer.add(tiny_dataset._task("a", ["again"])) is False  # a normal re-add is skipped
        writer.add_revision("a", revised_a())
        with pytest.raises(ValueError, match="already buffered"):
            writer.add_revision("a", revised_a())
        assert writer.add(tiny_dataset._task("c", ["cow"])) is True
    entry = writer.last_entry
    assert entry is not None and entry.replaces == ["a"] and entry.items == {"a": "done", "c": "done"}
    # a resumed "run" skips everything committed, revised video included, and breaks nothing
    with ShardWriter(root, shard_size=10) as writer:
        assert writer.removed == []
        assert dict(writer.committed) == {"a": "done", "b": "done", "c": "done"}
        assert [writer.add(tiny_dataset._task(v, ["x"])) for v in "abc"] == [False, False, False]
    assert writer.last_entry is None
    assert sql(Dataset(root), "select video_id, category from tubelets order by 1, 2") == [
        ("a", "human"),
        ("b", "cat"),
        ("c", "cow"),
    ]


def test_rerun_of_a_pipeline_after_a_revision(tmp_path):
    config = make_config(tmp_path)
    run_manifest(config, progress=False, log_to_stderr=False)
    out = tmp_path / "out"
    ds = Dataset(out)
    old = ds.records("tubelets")
    v1 = [t for t in old if t.video_id == "v001"]
    v1[0].category = "reviewed"
    v1_rows = [r for t in ("videos", "events", "instructions") for r in ds.records(t) if r.video_id == "v001"]
    commit_revision(out, {"v001": v1 + v1_rows}, note="review")
    expected = snapshot(Dataset(out))

    summary = run_manifest(config, progress=False, log_to_stderr=False)
    assert summary.done == 0 and summary.removed_orphans == []
    assert snapshot(Dataset(out)) == expected
    assert sql(Dataset(out), "select category from tubelets where video_id = 'v001'") == [("reviewed",)]
    assert Dataset(out).counts()["tubelets"] == len(old)


def test_tag_version_names_dedup_and_survive_reopen(root):
    v1 = tag_version(root)
    assert v1.name == "v1" and tag_version(root) == v1  # same state: no duplicate
    named = tag_version(root, "pre-review", note="before Label Studio")
    assert named.shards == v1.shards and named.note == "before Label Studio"
    with pytest.raises(ValueError, match="exists"):
        tag_version(root, "pre-review")
    with ShardWriter(root, shard_size=1) as writer:
        writer.add(tiny_dataset._task("c", ["cow"]))
    v2 = tag_version(root)
    assert v2.name == "v2" and len(v2.shards) == 3
    assert json.loads((root / VERSIONS_FILE).read_text())["versions"][1]["name"] == "pre-review"
    assert list_versions(root) == [v1, named, v2]  # read back from meta/versions.json
    assert Dataset(root, version="pre-review").read_table("videos").num_rows == 2
    with pytest.raises(KeyError, match="pre-review"):
        Dataset(root, version="nope")
    with pytest.raises(KeyError):
        revert(root, "nope")
    assert list(root.joinpath("meta").glob(".*.tmp")) == []
