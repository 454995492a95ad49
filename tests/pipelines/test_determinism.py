"""Same input, same output (issue 14, item 9).

One manifest — the lite track pipeline over several videos (the sample's mp4, its frame
folder, a rotated copy and, when ../shared/assets is here, a real DAVIS sequence)
— runs inline, on a process pool, on a local Ray instance and inline in reversed video
order; every data row must be the same bytes. Only where the rows went differs: run ids
are in the part files' names and the ledger, commit times in the ledger (meta), never in
a data row. Before the fix, OpenCV's GrabCut drew its k-means start from OpenCV's
process-wide RNG, so a video's masks depended on what the process had segmented before:
inline and reversed order differed.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.engine.videos import rotated_copy
from tubelet.cli.sample import SampleInfo
from tubelet.engine.config import RunConfig
from tubelet.engine.dataset import Dataset
from tubelet.pipelines import run_manifest
from tubelet.schemas.arrow import TABLE_SCHEMAS

DAVIS = "dog"  # a real frame folder (assets): a textured scene, a moving camera
PARAMS = {"profile": "lite", "keyframe_fps": 4}


def _assets() -> Path | None:
    configured = os.environ.get("TUBELET_ASSETS")
    path = Path(configured) if configured else Path(__file__).resolve().parents[3] / "shared" / "assets"
    return path if (path / "davis2016").is_dir() else None


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory, synthetic_sample: SampleInfo) -> list[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("determinism")
    entries: list[dict[str, Any]] = [
        {"uri": str(synthetic_sample.video), "video_id": "scene"},
        {"uri": str(synthetic_sample.frames_dir), "video_id": "scene-frames", "fps": 24.0},
    ]
    path = rotated_copy(synthetic_sample.video, tmp / "ccw90.mp4", 90)
    entries.append({"uri": str(path), "video_id": "scene-ccw90"})
    assets = _assets()
    if assets is not None:
        folder = assets / "davis2016" / "JPEGImages" / "480p" / DAVIS
        entries.append({"uri": str(folder), "video_id": f"davis-{DAVIS}", "fps": 24.0})
    return entries


def data_rows(root: Path) -> dict[str, list[str]]:
    """Every committed row of every table as canonical JSON (sorted keys, floats as Python
    prints them: exact), in sorted order — shards group rows differently per runner."""
    dataset = Dataset(root)
    return {
        table: sorted(json.dumps(row, sort_keys=True, default=repr) for row in dataset.read_table(table).to_pylist())
        for table in TABLE_SCHEMAS
    }


def digest(rows: dict[str, list[str]]) -> str:
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:16]


def _run(tmp: Path, name: str, videos: list[dict[str, Any]], runner: str) -> dict[str, list[str]]:
    config = RunConfig(
        pipeline="track",
        output=str(tmp / name),
        runner=runner,
        videos=videos,
        params=PARAMS,
        shard_size=2,  # several parts, made by different workers
        ray={"num_cpus": 2},
    )
    summary = run_manifest(config, progress=False, log_to_stderr=False)
    assert (summary.done, summary.failed) == (len(videos), 0)
    return data_rows(tmp / name)


@pytest.fixture(scope="module")
def inline_rows(tmp_path_factory: pytest.TempPathFactory, videos: list[dict[str, Any]]) -> dict[str, list[str]]:
    rows = _run(tmp_path_factory.mktemp("inline"), "out", videos, "inline")
    assert len(rows["tubelets"]) >= 3 * 3  # three objects in each copy of the sample
    return rows


def _assert_same(rows: dict[str, list[str]], reference: dict[str, list[str]]) -> None:
    differ = {t: sum(a != b for a, b in zip(rows[t], reference[t])) for t in rows if rows[t] != reference[t]}
    assert not differ, f"tables differ (rows that differ): {differ}; {digest(rows)} vs {digest(reference)}"


def test_reversed_video_order_gives_the_same_rows(
    tmp_path: Path, videos: list[dict[str, Any]], inline_rows: dict[str, list[str]]
) -> None:
    _assert_same(_run(tmp_path, "reversed", videos[::-1], "inline"), inline_rows)


def test_a_process_pool_gives_the_same_rows(
    tmp_path: Path, videos: list[dict[str, Any]], inline_rows: dict[str, list[str]]
) -> None:
    _assert_same(_run(tmp_path, "process", videos, "process"), inline_rows)


@pytest.mark.ray
def test_ray_gives_the_same_rows(
    tmp_path: Path, videos: list[dict[str, Any]], inline_rows: dict[str, list[str]], ray_local: Any
) -> None:
    _assert_same(_run(tmp_path, "ray", videos, "ray"), inline_rows)


def test_a_video_alone_gives_the_rows_it_gives_among_others(
    tmp_path: Path, videos: list[dict[str, Any]], inline_rows: dict[str, list[str]]
) -> None:
    """In the whole run the rotated copy came after two other videos; run alone, after what
    this process ran before, it must give the same rows."""
    [one] = [v for v in videos if v["video_id"] == "scene-ccw90"]
    alone = _run(tmp_path, "alone", [one], "inline")
    mine = {t: [r for r in rows if json.loads(r).get("video_id") == one["video_id"]] for t, rows in inline_rows.items()}
    _assert_same(alone, mine)
