"""Datasets to preview: the synthetic sample and two DAVIS-2016 sequences, each imported
from its ground-truth masks and run through strefer (lite) for entities, events and
instructions."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.samples import rotated_sample
from tubelet.cli.sample import SampleInfo

DAVIS_SEQUENCES = {"blackswan": "swan", "dog": "dog"}


def _strefer_import(out: Path, videos: list[dict]) -> Path:
    from tubelet.engine.config import RunConfig
    from tubelet.pipelines import run_manifest

    config = RunConfig(pipeline="strefer", output=str(out), runner="inline", videos=videos, params={"source": "import"})
    summary = run_manifest(config, progress=False, log_to_stderr=False)
    assert summary.done == len(videos) and summary.failed == 0
    return out


@pytest.fixture(scope="session")
def sample_dataset(tmp_path_factory: pytest.TempPathFactory, synthetic_sample: SampleInfo) -> Path:
    tmp = tmp_path_factory.mktemp("preview-sample")
    sample = synthetic_sample
    videos = [
        {
            "uri": str(sample.video),
            "video_id": "scene",
            "annotations": {
                "format": "davis",
                "path": str(sample.masks_dir),
                "categories": {"1": "red square", "2": "green circle", "3": "blue triangle"},
            },
        }
    ]
    return _strefer_import(tmp / "out", videos)


@pytest.fixture(scope="session")
def davis_dataset(assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = assets / "davis2016"
    if not root.is_dir():
        pytest.skip("davis2016 not in the assets")
    videos = [
        {
            "uri": str(root / "JPEGImages" / "480p" / seq),
            "video_id": seq,
            "fps": 24.0,
            "annotations": {
                "format": "davis",
                "path": str(root / "Annotations" / "480p" / seq),
                "categories": {"1": category},
            },
        }
        for seq, category in DAVIS_SEQUENCES.items()
    ]
    return _strefer_import(tmp_path_factory.mktemp("preview-davis") / "out", videos)


@pytest.fixture(scope="session")
def rotated_dataset(tmp_path_factory: pytest.TempPathFactory, synthetic_sample: SampleInfo) -> Path:
    """The sample as a phone held sideways records it (a display matrix turning it 90 degrees
    counter-clockwise), its masks imported in the upright frame, as a player shows it."""
    tmp = tmp_path_factory.mktemp("preview-rotated")
    return _strefer_import(tmp / "out", [rotated_sample(synthetic_sample, tmp / "media", 90)])


@pytest.fixture(params=["sample", "rotated", "davis"])
def any_dataset(request: pytest.FixtureRequest) -> tuple[Path, str]:
    """(dataset, a video id) for the sample, its rotated copy, and DAVIS when the assets are here."""
    if request.param == "sample":
        return request.getfixturevalue("sample_dataset"), "scene"
    if request.param == "rotated":
        return request.getfixturevalue("rotated_dataset"), "scene-ccw90"
    return request.getfixturevalue("davis_dataset"), "blackswan"
