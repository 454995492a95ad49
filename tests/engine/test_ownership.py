"""A writer never deletes what tubelet did not write, and never writes into a folder that
is not a tubelet dataset (local folders and object storage alike)."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.engine import tiny_dataset
from tubelet.cli.main import main as tubelet
from tubelet.engine.config import RunConfig
from tubelet.engine.dataset import Dataset
from tubelet.engine.ownership import NotADatasetError
from tubelet.engine.storage import Storage, open_storage
from tubelet.engine.versions import commit_revision
from tubelet.engine.writer import ShardWriter
from tubelet.pipelines import run_manifest

#: Somebody else's files, some named the way tubelet names its own.
STRANGERS = {
    "notes.txt": b"my notes",
    "data/videos/20250101T120000Z-abcdef-00001.parquet": b"a parquet file named like tubelet's",
    "data/train/part-0.parquet": b"another tool's parquet",
    "meta/sub/.draft.tmp": b"a hidden temporary file",
    "meta/.info.json.0badc0de.tmp": b"a temporary file named like tubelet's",
}


@pytest.fixture(params=["local", "s3"])
def location(request, tmp_path) -> str:
    if request.param == "local":
        return str(tmp_path / "out")
    return request.getfixturevalue("s3").url()


def plant(storage: Storage, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        storage.write_bytes(rel, data)


def snapshot(storage: Storage) -> dict[str, bytes]:
    """Every file under the root (hidden ones included) with its bytes."""
    return {rel: storage.read_bytes(rel) for rel in storage.list_files("")}


def config(out: str, *video_ids: str) -> dict:
    return {
        "pipeline": "tests.engine.pipelines_for_tests:build",
        "output": out,
        "runner": "inline",
        "params": {"stages": [{"kind": "make"}]},
        "videos": [{"uri": f"synthetic://{v}", "video_id": v} for v in video_ids],
    }


def test_a_writer_refuses_a_folder_that_is_not_a_dataset_and_touches_nothing(location):
    storage = open_storage(location)
    plant(storage, STRANGERS)
    before = snapshot(storage)
    with pytest.raises(NotADatasetError) as refused:
        ShardWriter(location)
    message = str(refused.value)
    assert storage.root in message and "not a tubelet dataset" in message
    assert snapshot(storage) == before  # nothing deleted, nothing created (not even a lock)


def test_a_run_into_a_folder_that_is_not_a_dataset_is_refused_before_creating_anything(location, tmp_path, capsys):
    storage = open_storage(location)
    plant(storage, STRANGERS)
    before = snapshot(storage)
    manifest = tmp_path / "m.yaml"
    manifest.write_text(yaml.safe_dump(config(str(tmp_path / "elsewhere"), "v1")))
    assert tubelet(["run", str(manifest), "--out", location]) == 2
    err = capsys.readouterr().err
    assert storage.root in err and "not a tubelet dataset" in err and "Traceback" not in err
    assert snapshot(storage) == before


def test_a_release_folder_is_not_a_dataset_to_write_into(tmp_path, capsys):
    """A release has a meta/info.json too, but not a dataset's: a run must refuse it
    before its log or lock lands there."""
    source = tiny_dataset.build(tmp_path / "ds")
    release = tmp_path / "release"
    assert tubelet(["release", str(source), "--version", "1", "--to", str(release), "--format", ""]) == 0
    (release / "meta" / ".notes.tmp").write_text("mine")
    storage = open_storage(release)
    before = snapshot(storage)
    manifest = tmp_path / "m.yaml"
    manifest.write_text(yaml.safe_dump(config(str(release), "v1")))
    capsys.readouterr()
    assert tubelet(["run", str(manifest)]) == 2
    err = capsys.readouterr().err
    assert str(release) in err and "meta/info.json" in err and "not a tubelet dataset" in err
    assert snapshot(storage) == before
    with pytest.raises(NotADatasetError):
        ShardWriter(release)
    assert snapshot(storage) == before


def test_a_dataset_keeps_the_files_tubelet_did_not_write(location):
    """Inside a real dataset, a writer deletes only its own runs' leftovers: a stranger's
    files survive runs and revisions, even when named like tubelet's."""
    first = run_manifest(RunConfig.model_validate(config(location, "v1")), progress=False, log_to_stderr=False)
    storage = open_storage(location)
    strangers = {
        "data/videos/20250101T120000Z-abcdef-00001.parquet": b"a run that is not this dataset's",
        "data/videos/notes.parquet": b"not a tubelet name",
        "data/videos/.scratch.tmp": b"not a tubelet temporary name",
        "meta/.notes.tmp": b"mine",
        "meta/ledger/.draft.tmp": b"mine too",
        "extra/readme.txt": b"a folder of my own",
    }
    plant(storage, strangers)
    # what a killed run of this dataset left: a data file no entry names, and (on a local
    # folder) a half-written temporary file of another part
    own = {f"data/videos/{first.run_id}-00099.parquet": b"PAR1 half a part"}
    if storage.is_local:
        own[f"data/tubelets/.{first.run_id}-00098.parquet.0a1b2c3d.tmp"] = b"PAR1"
        own["meta/ledger/.c000000000007.json.1f2e3d4c.tmp"] = b"{"
    plant(storage, own)

    second = run_manifest(RunConfig.model_validate(config(location, "v1", "v2")), progress=False, log_to_stderr=False)
    assert sorted(second.removed_orphans) == sorted(own)
    video = Dataset(location).records("videos")[0]
    commit_revision(location, {video.video_id: [video]}, note="a revision opens a writer too")
    with ShardWriter(location) as writer:
        assert writer.removed == []
    after = snapshot(storage)
    for rel, data in strangers.items():
        assert after.get(rel) == data, f"{rel} was deleted or changed"
    assert not set(own) & set(after)


def test_a_file_is_no_output(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(NotADatasetError, match="is a file, not a folder"):
        ShardWriter(tmp_path / "notes.txt")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_an_empty_folder_or_a_first_run_only_starting_is_writable(tmp_path):
    (tmp_path / "empty").mkdir()
    ShardWriter(tmp_path / "empty").close()
    # a first run killed before its info.json: its log and lock only
    starting = tmp_path / "starting"
    (starting / "meta" / "logs").mkdir(parents=True)
    (starting / "meta" / "logs" / "20250101T120000Z-abcdef.jsonl").write_text(json.dumps({"event": "x"}) + "\n")
    (starting / "meta" / ".lock").write_text("")
    summary = run_manifest(RunConfig.model_validate(config(str(starting), "v1")), progress=False, log_to_stderr=False)
    assert summary.done == 1
