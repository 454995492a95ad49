"""A rotated phone video in releases and exports (issue 14, item 3).

The dataset's boxes and masks are in the upright frame, as a player shows the video. A
release or export must not hand a consumer a file whose pixels are in another frame: a
loader that ignores the display matrix (decord when it scales, many trainers' own
readers) would pair every mask with a sideways picture. So a rotated file is re-encoded
upright with no display matrix, as a frame folder is, and its row says ``rotation`` 0.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.samples import rotated_sample
from tubelet.cli.sample import SampleInfo
from tubelet.engine.config import RunConfig
from tubelet.engine.dataset import Dataset
from tubelet.engine.video import VideoReader
from tubelet.engine.video_container import inspect
from tubelet.pipelines import run_manifest
from tubelet.release.build import ReleaseOptions, data_files, release
from tubelet.release.exports.common import ExportOptions
from tubelet.release.exports.export import export
from tubelet.schemas.rle import decode_rle

VIDEO = "scene-ccw90"


@pytest.fixture(scope="module")
def rotated_ds(tmp_path_factory: pytest.TempPathFactory, synthetic_sample: SampleInfo) -> tuple[Path, str]:
    """The sample turned 90 degrees counter-clockwise by its display matrix, its (turned) masks imported."""
    tmp = tmp_path_factory.mktemp("rotated")
    entry = rotated_sample(synthetic_sample, tmp / "media", 90)
    config = RunConfig(pipeline="import", output=str(tmp / "ds"), runner="inline", videos=[entry])
    summary = run_manifest(config, progress=False, log_to_stderr=False)
    assert (summary.done, summary.failed) == (1, 0)
    return tmp / "ds", entry["uri"]


def _rows(folder: Path, table: str) -> list[dict]:
    return [r for paths in data_files(folder, table).values() for p in paths for r in pq.read_table(p).to_pylist()]


def _check_upright_copy(copy: Path, source_uri: str, tubelets: list[dict]) -> None:
    """``copy`` has no display matrix, the source's frames as shown, and the masks land on their objects."""
    info = inspect(copy, rotation=True)
    assert (info.width, info.height, info.rotation) == (360, 640, 0)
    with VideoReader(str(copy)) as released, VideoReader(source_uri) as source:
        assert released.n_frames == source.n_frames == 72
        red = next(t for t in tubelets if t["category"] == "red square")
        checked = 0
        for f in red["frames"][::8]:
            frame = released.frames([f["frame_idx"]])[0].astype(np.int32)
            assert np.abs(frame - source.frames([f["frame_idx"]])[0].astype(np.int32)).mean() < 3
            mask = decode_rle(f["mask_rle"]).astype(bool) if f["mask_rle"] else None
            if mask is not None and mask.sum() > 200:
                r, g, b = (frame[..., c][mask].mean() for c in range(3))
                assert r > g + 60 and r > b + 60  # the red square is under its mask
                checked += 1
        assert checked >= 2


def test_a_rotated_video_is_released_upright_without_a_display_matrix(
    rotated_ds: tuple[Path, str], tmp_path: Path
) -> None:
    ds, uri = rotated_ds
    for name, with_media in (("bare", False), ("a", True), ("b", True)):
        release(ds, tmp_path / name, ReleaseOptions(version="1", with_media=with_media), created_at="2000-01-01")
    [row] = _rows(tmp_path / "a", "videos")
    assert (row["uri"], row["codec"], row["width"], row["height"], row["rotation"]) == (
        f"media/{VIDEO}.mp4",
        "h264",
        360,
        640,
        0,
    )
    assert _rows(tmp_path / "bare", "videos") == [row]  # the same tables with or without the media
    copy = tmp_path / "a" / "media" / f"{VIDEO}.mp4"
    assert copy.read_bytes() == (tmp_path / "b" / "media" / f"{VIDEO}.mp4").read_bytes()  # deterministic
    assert copy.read_bytes() != Path(uri).read_bytes()  # re-encoded, not copied with its matrix
    _check_upright_copy(copy, uri, _rows(tmp_path / "a", "tubelets"))


def test_a_rotated_video_is_exported_upright_to_webdataset(rotated_ds: tuple[Path, str], tmp_path: Path) -> None:
    ds, uri = rotated_ds
    report = export(ds, tmp_path / "wds", ExportOptions(format="webdataset"))
    assert report.counts.get("mp4_reencoded") == 1 and not report.counts.get("mp4_copied")
    [shard] = sorted((tmp_path / "wds").glob("*.tar"))
    with tarfile.open(shard) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(".mp4"))
        (tmp_path / "sample.mp4").write_bytes(tar.extractfile(member).read())  # type: ignore[union-attr]
        sidecar = next(m for m in tar.getmembers() if m.name.endswith(".json"))
        video = json.loads(tar.extractfile(sidecar).read())["video"]  # type: ignore[union-attr]
    assert (video["rotation"], video["media"]) == (
        270,
        {"member": member.name, "copied": False, "codec": "h264", "rotation": 0},
    )
    _check_upright_copy(tmp_path / "sample.mp4", uri, Dataset(ds).read_table("tubelets").to_pylist())
