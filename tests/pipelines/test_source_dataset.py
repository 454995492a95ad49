"""``source: dataset``: language rows made again from an existing dataset's tubelets,
without tracking again, from a local folder or object storage; the new dataset records
where its inputs came from."""

from __future__ import annotations

import json

import pytest

from tubelet.annotators.importers.dataset import LoadFromDataset
from tubelet.cli.sample import SampleInfo
from tubelet.engine.config import RunConfig
from tubelet.engine.dataset import Dataset
from tubelet.engine.stage import run_stage
from tubelet.engine.task import DatasetRef, VideoTask
from tubelet.pipelines import run_manifest


def run(output: str, videos: list[dict], pipeline: str = "import", **params) -> Dataset:
    config = RunConfig.model_validate(
        {"pipeline": pipeline, "output": output, "runner": "inline", "videos": videos, "params": params}
    )
    summary = run_manifest(config, progress=False, log_to_stderr=False)
    assert summary.failed == 0 and summary.done == len(Dataset(output).item_status())
    return Dataset(output)


def rows(dataset: Dataset, table: str) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True, default=str) for r in dataset.read_table(table).to_pylist())


@pytest.fixture(params=["local", "s3"])
def source(request, tmp_path, synthetic_sample: SampleInfo) -> Dataset:
    """The sample's ground truth imported, into a folder or a bucket."""
    location = str(tmp_path / "gt") if request.param == "local" else request.getfixturevalue("s3").url()
    masks = {"format": "davis", "path": str(synthetic_sample.masks_dir)}
    return run(location, [{"uri": str(synthetic_sample.video), "video_id": "scene", "annotations": masks}])


def test_strefer_from_a_dataset_reuses_its_tubelets(tmp_path, source):
    out = run(str(tmp_path / "lang"), [{"dataset": source.root}], pipeline="strefer", source="dataset")
    assert rows(out, "tubelets") == rows(source, "tubelets")  # taken as they are, not tracked again
    assert rows(out, "videos") == rows(source, "videos")
    assert out.counts()["entities"] == 3 and out.counts()["instructions"] > 0
    [origin] = out.info().inputs
    assert origin["dataset"] == source.root and origin["pipeline"] == "import"
    assert origin["config_hash"] == source.info().config_hash and origin["ledger_entries"] == 1

    # again, keeping the entities and events: only the instructions are made anew
    again = run(
        str(tmp_path / "again"),
        [{"dataset": str(tmp_path / "lang")}],
        pipeline="strefer",
        source="dataset",
        keep=["entities", "events"],
        seed=7,
    )
    assert rows(again, "entities") == rows(out, "entities")
    assert rows(again, "events") == rows(out, "events")
    assert again.counts()["instructions"] > 0


def test_a_video_the_dataset_does_not_hold_fails_with_the_reason(tmp_path, source):
    stage = LoadFromDataset()
    tasks = [
        VideoTask(video_id="scene", uri="x", origin=DatasetRef(source.root)),
        VideoTask(video_id="elsewhere", uri="y", origin=DatasetRef(source.root)),
        VideoTask(video_id="listed", uri="z"),
    ]
    with stage.started():
        done = run_stage(stage, tasks)
    assert not done[0].failed and len(done[0].tubelets) == 3
    assert "video elsewhere is not in the dataset" in done[1].rejects[0].reason
    assert "needs `videos: [{dataset:" in done[2].rejects[0].reason


def test_where_selects_videos_and_a_missing_source_stops_before_writing(tmp_path, source):
    out = str(tmp_path / "none")
    config = RunConfig.model_validate(
        {
            "pipeline": "strefer",
            "output": out,
            "runner": "inline",
            "params": {"source": "dataset"},
            "videos": [{"dataset": source.root, "where": "video_id = 'nope'"}],
        }
    )
    assert run_manifest(config, progress=False, log_to_stderr=False).planned == 0
    missing = RunConfig.model_validate({**config.model_dump(), "videos": [{"dataset": str(tmp_path / "nowhere")}]})
    with pytest.raises(FileNotFoundError, match="nowhere"):
        run_manifest(missing, progress=False, log_to_stderr=False)
    assert not (tmp_path / "none" / "data").exists()
