"""Storage: the same operations on a local folder and on a real S3-protocol server."""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pytest

from tubelet.engine.storage import LocalStorage, ObjectStorage, as_storage, is_url, open_storage


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path):
    if request.param == "local":
        return open_storage(tmp_path / "ds")
    return open_storage(request.getfixturevalue("s3").url())


def test_kinds(tmp_path, s3):
    assert isinstance(open_storage(tmp_path), LocalStorage) and not is_url(tmp_path)
    assert isinstance(open_storage(f"file://{tmp_path}"), LocalStorage)
    assert isinstance(open_storage(s3.url("x")), ObjectStorage) and is_url(s3.url("x"))
    local = open_storage(tmp_path)
    assert as_storage(local) is local


def test_write_read_list_delete(storage):
    assert storage.list_files("meta") == [] and storage.top_level() == []
    storage.write_text("meta/a.json", "1")
    storage.write_bytes("meta/sub/b.bin", b"\x00\x01")
    storage.write_text("meta/a.json", "2")  # replaced whole
    assert storage.read_text("meta/a.json") == "2"
    assert storage.list_files("meta") == ["meta/a.json", "meta/sub/b.bin"]
    assert storage.top_level() == ["meta"]
    assert storage.read_many(["meta/a.json", "meta/sub/b.bin"]) == {"meta/a.json": b"2", "meta/sub/b.bin": b"\x00\x01"}
    assert storage.exists("meta/a.json") and not storage.exists("meta/nope")
    with pytest.raises(FileNotFoundError):
        storage.read_bytes("meta/nope")
    storage.delete("meta/a.json")
    storage.delete("meta/a.json")  # absent: nothing happens
    assert storage.list_files("meta") == ["meta/sub/b.bin"]


def test_create_is_put_if_absent(storage):
    assert storage.create("meta/ledger/c1.json", b"first")
    assert not storage.create("meta/ledger/c1.json", b"second")
    assert storage.read_bytes("meta/ledger/c1.json") == b"first"


def test_parquet(storage):
    table = pa.table({"video_id": ["a", "b"], "n": [1, 2]})
    written = storage.write_parquet("data/videos/p.parquet", table, compression="zstd")
    assert written.size == len(storage.read_bytes("data/videos/p.parquet")) > 0
    assert written.sha256 == hashlib.sha256(storage.read_bytes("data/videos/p.parquet")).hexdigest()
    assert storage.read_table("data/videos/p.parquet").equals(table)
    assert storage.read_table("data/videos/p.parquet", columns=["n"]).column("n").to_pylist() == [1, 2]
    assert storage.arrow_dataset(["data/videos/p.parquet"]).to_table().num_rows == 2


def test_storage_travels_by_location(storage):
    import pickle

    copy = pickle.loads(pickle.dumps(storage))
    assert type(copy) is type(storage) and copy.root == storage.root
