"""Hub-ready releases: every table loads with ``datasets.load_dataset(RELEASE, table)`` (eager and
streaming) from the card's configs, the default config loads, no file is empty, the front matter
is a valid Hub dataset card, empty splits and tables are left out and said so, the licence is
derived or given, and ``--push-to-hub`` makes the right calls (a recording double: the upload
itself needs the network)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.release.release_data import tiny_source
from tubelet.cli.main import main as tubelet
from tubelet.release import hub
from tubelet.release.build import RELEASE_TABLES, ReleaseOptions, data_files, iter_table, release
from tubelet.release.diff import diff_releases
from tubelet.release.hub import HubUploadError, push_release
from tubelet.release.licence import decide_licence, hub_license_id

#: The Hub's task ids a dataset may declare (huggingface.js packages/tasks, those not hidden for datasets).
HUB_DATASET_TASKS = {
    "video-text-to-text",
    "visual-question-answering",
    "object-detection",
    "image-segmentation",
    "mask-generation",
    "video-classification",
}


@pytest.fixture(scope="module")
def rel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A release of ten videos (every table has rows; reviews only in one split)."""
    tmp = tmp_path_factory.mktemp("hub-ready")
    release(tiny_source(tmp / "ds", 10), tmp / "r", ReleaseOptions(version="1.0"))
    return tmp / "r"


def _info(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "meta" / "info.json").read_text())


def _load_every_table(folder: Path, cache: Path) -> dict[str, dict[str, tuple[int, int]]]:
    """``{table: {split: (eager rows, streamed rows)}}`` for every config of the card."""
    datasets = pytest.importorskip("datasets")
    out: dict[str, dict[str, tuple[int, int]]] = {}
    for table in _info(folder)["files"]:
        eager = datasets.load_dataset(str(folder), table, cache_dir=str(cache))
        streamed = datasets.load_dataset(str(folder), table, streaming=True)
        assert set(eager) == set(streamed)
        out[table] = {s: (eager[s].num_rows, sum(1 for _ in streamed[s])) for s in eager}
    return out


def _check_no_empty_file(folder: Path) -> int:
    """Every file has bytes, every Parquet file rows, every rendering items; the number of files."""
    files = [p for p in folder.rglob("*") if p.is_file()]
    for path in files:
        assert path.stat().st_size > 0, path
        if path.suffix == ".parquet":
            assert pq.ParquetFile(path).metadata.num_rows > 0, path
        elif path.suffix == ".json" and "instructions" in path.parts:
            assert json.loads(path.read_text()), path
        elif path.suffix == ".jsonl":
            assert path.read_text().strip(), path
    return len(files)


def test_every_table_loads_eager_and_streaming(rel: Path, tmp_path: Path) -> None:
    info = _info(rel)
    assert set(info["files"]) == set(RELEASE_TABLES)
    loaded = _load_every_table(rel, tmp_path / "hf")
    for table, splits in loaded.items():
        expected = {s: n for s, n in info["counts"][table].items() if n}
        assert {s: rows for s, (rows, _) in splits.items()} == expected, table
        assert {s: rows for s, (_, rows) in splits.items()} == expected, table
    assert sum(rows for rows, _ in loaded["reviews"].values()) == 1


def test_default_config_is_instructions(rel: Path, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    default = datasets.load_dataset(str(rel), cache_dir=str(tmp_path / "hf"))
    counts = _info(rel)["counts"]["instructions"]
    assert {s: d.num_rows for s, d in default.items()} == {s: n for s, n in counts.items() if n}
    assert "task_type" in default["train"].column_names


def test_no_empty_file_anywhere(rel: Path) -> None:
    assert _check_no_empty_file(rel) > 10


def test_front_matter_is_a_hub_dataset_card(rel: Path) -> None:
    pytest.importorskip("huggingface_hub")
    from huggingface_hub import DatasetCard, DatasetCardData

    card = DatasetCard.load(rel / "README.md")
    data = card.data.to_dict()
    info = _info(rel)
    assert data["license"] == "cc-by-4.0"  # every video's licence is CC-BY-4.0
    assert data["pretty_name"] == "ds (tubelet release 1.0)"
    assert data["size_categories"] == ["n<1K"]
    assert set(data["task_categories"]) <= HUB_DATASET_TASKS
    assert {"video-text-to-text", "object-detection", "image-segmentation"} <= set(data["task_categories"])
    assert "tubelet" in data["tags"]
    configs = {c["config_name"]: c for c in data["configs"]}
    assert list(configs)[0] == "instructions" and configs["instructions"]["default"] is True
    assert sum(bool(c.get("default")) for c in configs.values()) == 1
    for table, files in info["files"].items():
        assert {f["split"]: f["path"] for f in configs[table]["data_files"]} == files
    assert DatasetCardData(**data).to_dict() == data  # what the Hub's own class keeps
    assert card.text.lstrip().startswith("# ds (tubelet release 1.0)")

    datasets = pytest.importorskip("datasets")
    from datasets.utils.metadata import MetadataConfigs

    parsed = MetadataConfigs.from_dataset_card_data(card.data)
    assert set(parsed) == set(info["files"]) and MetadataConfigs.get_default_config_name(parsed) == "instructions"
    assert datasets is not None


def test_empty_splits_and_tables_are_left_out_and_said(tmp_path: Path) -> None:
    # two videos: val and test are empty; min_score drops every tubelet, so what grounds on them goes too
    source = tiny_source(tmp_path / "ds", 2, licence=None)
    out = tmp_path / "r"
    report = release(source, out, ReleaseOptions(version="e", min_score=2.0))
    info = _info(out)
    assert info["empty_tables"] == ["tubelets", "entities", "events", "instructions"]
    assert info["empty_splits"] == {"videos": ["val", "test"], "reviews": ["val", "test"]}
    assert set(info["files"]) == {"videos", "reviews"} and not (out / "instructions").exists()
    assert len(report.warnings) == 2
    _check_no_empty_file(out)
    card = (out / "README.md").read_text()
    assert "Tables without rows (no file, no config): tubelets, entities, events, instructions." in card
    assert "Empty splits (no file): videos: val, test; reviews: val, test." in card
    loaded = _load_every_table(out, tmp_path / "hf")
    assert loaded == {"videos": {"train": (2, 2)}, "reviews": {"train": (1, 1)}}
    datasets = pytest.importorskip("datasets")
    default = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf"))  # no instructions: videos
    assert default["train"].num_rows == 2 and "uri" in default["train"].column_names
    # the readers of a release cope with absent splits and tables
    assert data_files(out, "tubelets") == {} and list(iter_table(out, "instructions")) == []
    assert list(data_files(out, "videos")) == ["train"]
    diff = diff_releases(out, out)
    assert diff.tables["videos"].unchanged == 2 and diff.tables["tubelets"].unchanged == 0
    # a licence no video names
    assert info["licence"]["id"] == "unknown"


def test_licence_from_videos_or_option() -> None:
    assert hub_license_id("CC BY-NC-SA 3.0") == "cc-by-nc-sa-3.0"
    assert hub_license_id("CC-BY-4.0") == "cc-by-4.0"
    assert hub_license_id("CC0") == hub_license_id("CC0-1.0") == "cc0-1.0"
    assert hub_license_id("Apache-2.0 (SAM 2 repository)") == "apache-2.0"
    assert hub_license_id("DAVIS terms (research use)") is None and hub_license_id(None) is None
    agree = decide_licence(None, {"CC0": 2, "CC0-1.0": 3})
    assert (agree.id, agree.given) == ("cc0-1.0", False) and agree.front_matter() == {"license": "cc0-1.0"}
    mixed = decide_licence(None, {"CC0-1.0": 2, "DAVIS terms (research use)": 8})
    assert mixed.id == "other" and mixed.name == "mixed-source-licences"
    assert mixed.details == "CC0-1.0 (2 videos); DAVIS terms (research use) (8 videos)"
    assert mixed.front_matter()["license_link"] == "LICENSE.md"
    one = decide_licence(None, {"DAVIS terms (research use)": 8})
    assert (one.id, one.name) == ("other", "davis-terms-research-use")
    assert decide_licence("mit", {"CC0": 1}).front_matter() == {"license": "mit"}
    assert decide_licence(None, {"unknown": 3}).id == "unknown"
    with pytest.raises(ValueError, match="not a Hub licence id"):
        ReleaseOptions(version="1", license="CC BY 4.0").check()


def test_other_licence_writes_license_md(tmp_path: Path) -> None:
    source = tiny_source(tmp_path / "ds", 3, licence="DAVIS terms (research use)")
    release(source, tmp_path / "r", ReleaseOptions(version="1", formats=()))
    assert "license: other\nlicense_name: davis-terms-research-use\n" in (tmp_path / "r" / "README.md").read_text()
    assert "- DAVIS terms (research use) (3 videos)" in (tmp_path / "r" / "LICENSE.md").read_text()
    release(source, tmp_path / "g", ReleaseOptions(version="1", formats=(), license="cc-by-nc-4.0"))
    assert "license: cc-by-nc-4.0\n" in (tmp_path / "g" / "README.md").read_text()
    assert not (tmp_path / "g" / "LICENSE.md").exists()


class RecordingHub:
    """A double of ``huggingface_hub.HfApi``: records the calls an upload makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def create_repo(self, *args: Any, **kwargs: Any) -> str:
        self.calls.append(("create_repo", args, kwargs))
        return f"https://huggingface.co/datasets/{args[0]}"

    def upload_folder(self, **kwargs: Any) -> Any:
        self.calls.append(("upload_folder", (), kwargs))
        return argparse.Namespace(commit_url=f"https://huggingface.co/datasets/{kwargs['repo_id']}/commit/abc")


def test_push_to_hub_calls(rel: Path) -> None:
    api = RecordingHub()
    url = push_release(rel, "someone/tubelet-demo", private=True, api=api)
    assert url == "https://huggingface.co/datasets/someone/tubelet-demo/commit/abc"
    assert api.calls == [
        ("create_repo", ("someone/tubelet-demo",), {"repo_type": "dataset", "private": True, "exist_ok": True}),
        (
            "upload_folder",
            (),
            {
                "repo_id": "someone/tubelet-demo",
                "folder_path": str(rel),
                "repo_type": "dataset",
                "commit_message": "tubelet release 1.0",
            },
        ),
    ]


def test_push_refuses_a_changed_release(rel: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(rel, copy)
    (copy / "README.md").write_text("changed")
    api = RecordingHub()
    with pytest.raises(HubUploadError, match="differs from its SHA256SUMS"):
        push_release(copy, "someone/x", api=api)
    assert api.calls == []


def test_cli_push_to_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    source = tiny_source(tmp_path / "ds", 3)
    # offline (the tests' environment): the release is written, the upload fails with a clear message
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    args = ["release", str(source), "--version", "1", "--to", str(tmp_path / "r"), "--push-to-hub", "me/ds"]
    assert tubelet(args) == 2
    err = capsys.readouterr().err
    assert "was not uploaded to me/ds (the release stays" in err and "HF_HUB_OFFLINE is set" in err
    assert (tmp_path / "r" / "meta" / "info.json").is_file()
    # online (a recording double in place of HfApi): `tubelet push` uploads the release written above
    api = RecordingHub()
    monkeypatch.setattr(hub, "_default_api", lambda: api)
    assert tubelet(["push", str(tmp_path / "r"), "me/ds", "--private"]) == 0
    assert [c[0] for c in api.calls] == ["create_repo", "upload_folder"]
    assert api.calls[0][2]["private"] is True and api.calls[1][2]["folder_path"] == str(tmp_path / "r")
    assert "uploaded" in capsys.readouterr().out
    args = ["release", str(source), "--version", "2", "--to", str(tmp_path / "r2"), "--push-to-hub", "me/ds2"]
    assert tubelet([*args, "--license", "cc-by-4.0"]) == 0
    assert api.calls[2] == ("create_repo", ("me/ds2",), {"repo_type": "dataset", "private": False, "exist_ok": True})
    assert "license: cc-by-4.0" in (tmp_path / "r2" / "README.md").read_text()
