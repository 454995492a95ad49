"""Datasets the release tests build, and the checks they share.

- ``tiny_source(root, n)``: ``n`` hand-built videos (tests/engine/tiny_dataset.py's rows:
  tubelets with masks, an entity, an event and an instruction each) committed through the
  real ShardWriter, with a review on the first video; no media behind the uris.
- ``media_source(root, sample)``: the synthetic sample's mp4 and its frame folder through
  the ``unistg`` pipeline (ground-truth masks imported, grounding instructions): real media
  of both kinds.
- ``absolute_paths(folder, needles)``: every place a file under ``folder`` (Parquet
  values and metadata decoded) names one of ``needles``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pyarrow.parquet as pq

from tests.engine.tiny_dataset import _task
from tubelet.cli.sample import SampleInfo
from tubelet.engine.writer import ShardWriter
from tubelet.schemas.info import DatasetInfo, write_info
from tubelet.schemas.records import Review


def tiny_source(root: Path, n_videos: int, *, licence: str | None = "CC-BY-4.0") -> Path:
    """``n_videos`` videos ``v00``… with every table filled (reviews: one, on ``v00``), 3 per shard."""
    tasks = []
    for i in range(n_videos):
        task = _task(f"v{i:02d}", ["person", "dog"])
        assert task.video is not None
        task.video.licence = licence
        if i == 0:
            task.reviews = [
                Review("review:1", task.video_id, "tubelets", task.tubelets[0].tubelet_id, "accept", "qa", "2026-01-01")
            ]
        tasks.append(task)
    with ShardWriter(root, shard_size=3, run_id="20250101T000000Z-rel000") as writer:
        for task in tasks:
            writer.add(task)
    write_info(root / "meta" / "info.json", DatasetInfo(pipeline="test", config_hash="0" * 16))
    return root


def media_source(root: Path, sample: SampleInfo | Path) -> Path:
    """The sample's ``scene.mp4`` and ``frames/`` (24 fps) with their masks imported and grounding
    instructions; ``sample``: the sample or its video list (``videos.jsonl``)."""
    from tubelet.engine.config import RunConfig
    from tubelet.pipelines import run_manifest

    config = RunConfig(
        pipeline="unistg",
        output=str(root),
        runner="inline",
        videos=[{"path": str(sample if isinstance(sample, Path) else sample.video_list)}],
        params={"source": "import", "decode_check": False, "max_per_task": 2},
    )
    summary = run_manifest(config, progress=False, log_to_stderr=False)
    assert (summary.done, summary.failed) == (2, 0)
    return root


def machine_paths(*paths: Path) -> list[str]:
    """The absolute paths a portable file must not name: each as given and resolved."""
    out = set()
    for path in paths:
        out |= {str(path), str(path.resolve())}
    return sorted(p for p in out if p not in ("/", ""))


def absolute_paths(folder: Path, needles: Iterable[str]) -> list[str]:
    """``file: needle`` for every file under ``folder`` that names one of ``needles``: Parquet files
    are decoded (values and key-value metadata, as zstd hides them from a byte search), others read
    as bytes."""
    needles = list(needles)
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            text = json.dumps(table.to_pylist(), default=str) + str(table.schema.metadata or {})
            data = text.encode()
        else:
            data = path.read_bytes()
        found += [f"{path.relative_to(folder)}: {n}" for n in needles if n.encode() in data]
    return found
