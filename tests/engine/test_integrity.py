"""Corrupt shards are found and named: every data file carries Parquet page checksums and
its sha256 in the ledger; ``validate`` checks both, and readers name the file they
cannot trust."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.engine import tiny_dataset
from tubelet.cli.main import main as tubelet
from tubelet.engine.dataset import Dataset
from tubelet.engine.ledger import read_entries
from tubelet.engine.storage import open_storage

TABLE = "tubelets"


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    return tiny_dataset.build(tmp_path_factory.mktemp("integrity") / "ds")


def shard_file(root: Path) -> str:
    """The tubelets file of the first shard (video a: two tubelets with masks and scores)."""
    return str(read_entries(root)[0].files[TABLE]["path"])


def places(path: Path) -> dict[str, int]:
    """Byte offsets to corrupt: inside data pages of several columns, the footer, its length
    and the magic bytes at both ends."""
    meta = pq.ParquetFile(path).metadata
    size = path.stat().st_size
    footer_len = int.from_bytes(path.read_bytes()[-8:-4], "little")
    group = meta.row_group(0)
    where = {}
    for i in range(group.num_columns):
        column = group.column(i)
        name = column.path_in_schema
        if name in ("video_id", "frames.list.element.score", "frames.list.element.box_xyxy.list.element"):
            where[f"page:{name}"] = column.data_page_offset + column.total_compressed_size // 2
    assert len(where) == 3, [group.column(i).path_in_schema for i in range(group.num_columns)]
    where["footer"] = size - 8 - footer_len // 2
    where["footer-length"] = size - 7
    where["end-magic"] = size - 2
    where["start-magic"] = 1
    return where


def corrupt_copy(clean: Path, tmp_path: Path, offset: int) -> Path:
    root = tmp_path / "ds"
    shutil.copytree(clean, root)
    path = root / shard_file(root)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    return root


def test_every_file_carries_its_digest_and_page_checksums(clean, tmp_path):
    for entry in read_entries(clean):
        for info in entry.files.values():
            blob = (clean / str(info["path"])).read_bytes()
            assert info["sha256"] == hashlib.sha256(blob).hexdigest()
            assert info["bytes"] == len(blob)
    # a byte flipped inside a data page fails the page's CRC (pyarrow checks it when asked)
    path = clean / shard_file(clean)
    offset = places(path)["page:frames.list.element.score"]
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    copy = tmp_path / "copy.parquet"
    copy.write_bytes(bytes(data))
    with pytest.raises(OSError, match="CRC"):
        pq.read_table(copy, page_checksum_verification=True)


@pytest.mark.parametrize(
    "place", ["page:video_id", "page:scores", "page:boxes", "footer", "footer-length", "end-magic", "start-magic"]
)
def test_validate_names_a_corrupt_file_wherever_the_bytes_flipped(clean, tmp_path, capsys, place):
    names = {
        "page:scores": "page:frames.list.element.score",
        "page:boxes": "page:frames.list.element.box_xyxy.list.element",
    }
    offset = places(clean / shard_file(clean))[names.get(place, place)]
    root = corrupt_copy(clean, tmp_path, offset)
    rel = shard_file(root)

    code = tubelet(["validate", str(root)])
    out, err = capsys.readouterr()
    assert code != 0, f"validate passed a shard with a byte flipped at {place}: {out}{err}"
    assert rel in out + err and "Traceback" not in out + err

    # readers that cannot trust the file name it instead of printing a bare pyarrow message
    code = tubelet(["release", str(root), "--version", "1", "--to", str(tmp_path / "rel"), "--format", ""])
    out, err = capsys.readouterr()
    assert code == 2 and rel in err, out + err
    assert not (tmp_path / "rel").exists()
    with pytest.raises(ValueError, match=rel):
        Dataset(root).read_table(TABLE)

    code = tubelet(["query", str(root), "SELECT max(mean_score) AS m, count(*) AS n FROM tubelets", "--format", "json"])
    out, err = capsys.readouterr()
    if code != 0:
        assert code == 2 and rel in err, err


def test_validate_finds_a_corrupt_file_on_object_storage(clean, s3, capsys):
    out = s3.url()
    storage = open_storage(out)
    for path in sorted(p for p in clean.rglob("*") if p.is_file()):
        data = path.read_bytes()
        rel = path.relative_to(clean).as_posix()
        if rel == shard_file(clean):
            data = bytearray(data)
            data[places(path)["page:frames.list.element.score"]] ^= 0xFF
        storage.write_bytes(rel, bytes(data))
    assert tubelet(["validate", out]) == 1
    printed = capsys.readouterr().out
    assert shard_file(clean) in printed and "sha256" in printed
