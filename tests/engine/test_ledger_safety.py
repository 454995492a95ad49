"""A tampered ledger: entries that point out of the dataset, or hold an unknown status, are
refused by every reader with an error naming the ledger file and the entry's field."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.engine import tiny_dataset
from tubelet.cli.main import main as tubelet
from tubelet.engine.dataset import Dataset
from tubelet.engine.ledger import read_entries
from tubelet.engine.writer import ShardWriter

ENTRY = "meta/ledger/c000000000001.json"  # video a's shard


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    return tiny_dataset.build(tmp_path_factory.mktemp("ledger") / "ds")


def tampered(clean: Path, tmp_path: Path, change) -> Path:
    """A copy of the clean dataset whose first ledger entry ``change(data, root)`` edited;
    an outside copy of a's videos file (``tmp_path/outside/stolen.parquet``) to point at."""
    root = tmp_path / "ds"
    shutil.copytree(clean, root)
    outside = tmp_path / "outside"
    outside.mkdir()
    data = json.loads((root / ENTRY).read_text())
    shutil.copyfile(root / data["files"]["videos"]["path"], outside / "stolen.parquet")
    change(data, root)
    (root / ENTRY).write_text(json.dumps(data))
    return root


def point_videos_at(path: str):
    def change(data, root):
        data["files"]["videos"]["path"] = path

    return change


def link_videos_out(data, root):
    """Replace the committed videos file by a link to the outside copy."""
    own = root / data["files"]["videos"]["path"]
    own.unlink()
    own.symlink_to(root.parent / "outside" / "stolen.parquet")


def unknown_status(data, root):
    data["items"]["a"] = "approved"


def no_path(data, root):
    del data["files"]["videos"]["path"]


def bad_rows(data, root):
    data["files"]["videos"]["rows"] = "many"


CASES = {
    "absolute": (lambda tmp: point_videos_at(str(tmp / "outside" / "stolen.parquet")), "absolute"),
    "parent": (lambda root: point_videos_at("../outside/stolen.parquet"), ".."),
    "inner-parent": (lambda root: point_videos_at("data/videos/../../../outside/stolen.parquet"), ".."),
    "other-folder": (lambda root: point_videos_at("meta/info.json"), "data/videos/"),
    "symlink-out": (lambda root: link_videos_out, "leads out of the dataset"),
    "status": (lambda root: unknown_status, "'approved'"),
    "no-path": (lambda root: no_path, "path"),
    "bad-rows": (lambda root: bad_rows, "rows"),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("command", ["query", "validate", "status"])
def test_every_reader_refuses_a_tampered_entry_naming_it(clean, tmp_path, capsys, case, command):
    make, reason = CASES[case]
    root = tampered(clean, tmp_path, make(tmp_path))
    args = {
        "query": ["query", str(root), "SELECT count(*) AS n FROM videos", "--format", "json"],
        "validate": ["validate", str(root)],
        "status": ["status", str(root)],
    }[command]
    code = tubelet(args)
    out, err = capsys.readouterr()
    text = out + err
    assert code != 0, f"{command} accepted a ledger entry with {case}: {text}"
    assert "Traceback" not in text
    assert "c000000000001.json" in text and reason in text, text
    if command == "query":
        assert code == 2 and out == ""  # no rows read from a file outside the dataset


@pytest.mark.parametrize("case", ["absolute", "parent", "status"])
def test_the_python_api_names_the_ledger_file(clean, tmp_path, case):
    make, reason = CASES[case]
    root = tampered(clean, tmp_path, make(tmp_path))
    with pytest.raises(ValueError, match=r"c000000000001\.json") as refused:
        read_entries(root)
    assert reason in str(refused.value)
    with pytest.raises(ValueError, match=r"c000000000001\.json"):
        Dataset(root).read_table("videos")
    with pytest.raises(ValueError, match=r"c000000000001\.json"):
        ShardWriter(root)  # a writer stops before it deletes anything


def test_a_ledger_entry_that_is_a_link_out_is_not_read(clean, tmp_path, capsys):
    root = tampered(clean, tmp_path, lambda data, root: None)
    entry = root / ENTRY
    shutil.move(entry, tmp_path / "outside" / "entry.json")
    entry.symlink_to(tmp_path / "outside" / "entry.json")
    assert tubelet(["query", str(root), "SELECT count(*) FROM videos"]) == 2
    err = capsys.readouterr().err
    assert "c000000000001.json" in err and "leads out of the dataset" in err


def test_a_link_inside_the_dataset_is_read(clean, tmp_path):
    """A link whose target stays inside the dataset is no escape."""

    def inner_link(data, root):
        own = root / data["files"]["videos"]["path"]
        copy = own.with_name("copy.parquet")
        shutil.copyfile(own, copy)
        own.unlink()
        own.symlink_to(copy.name)

    root = tampered(clean, tmp_path, inner_link)
    assert Dataset(root).read_table("videos").num_rows == 2
