"""A tiny, hand-built dataset for the validate/query/status tests, written through the
real ShardWriter (data files + ledger entries) plus a meta/info.json.

``build(root, plant=...)`` writes a clean dataset; each name in ``plant`` breaks it in
one known way, so a test can check that ``tubelet validate`` finds exactly that.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tubelet.engine.task import VideoTask
from tubelet.engine.writer import ShardWriter
from tubelet.schemas import (
    Answer,
    BoxAt,
    Entity,
    Event,
    Instruction,
    Message,
    RegionRef,
    Tubelet,
    TubeletFrame,
    VideoRecord,
)
from tubelet.schemas.info import DatasetInfo, write_info
from tubelet.schemas.rle import encode_mask

W, H, N, FPS = 64, 48, 10, 10.0

PLANTS = ("duplicate_id", "dangling_video", "frame_beyond", "box_outside", "rle_size", "dangling_tubelet")


def _mask(box: list[float], width: int = W, height: int = H) -> dict:
    m = np.zeros((height, width), dtype=np.uint8)
    x1, y1, x2, y2 = (int(v) for v in box)
    m[y1:y2, x1:x2] = 1
    return encode_mask(m)


def _tubelet(
    video_id: str, track: str, category: str, frames: Iterable[int], *, tubelet_id: str | None = None
) -> Tubelet:
    rows = []
    for i in frames:
        box = [2.0 + i, 4.0, 20.0 + i, 30.0]
        rows.append(TubeletFrame(frame_idx=i, t_s=i / FPS, box_xyxy=box, mask_rle=_mask(box), score=0.9))
    return Tubelet(
        tubelet_id=tubelet_id or f"{video_id}:test:{track}",
        video_id=video_id,
        category=category,
        source="test",
        track_id=track,
        fps=FPS,
        width=W,
        height=H,
        frames=rows,
        score=0.9,
    )


def _task(video_id: str, categories: list[str]) -> VideoTask:
    task = VideoTask(video_id=video_id, uri=f"/videos/{video_id}.mp4", source="test", split="val")
    task.video = VideoRecord(
        video_id=video_id,
        uri=task.uri,
        fps=FPS,
        n_frames=N,
        duration_s=N / FPS,
        width=W,
        height=H,
        codec="h264",
        source="test",
        split="val",
    )
    task.tubelets = [_tubelet(video_id, str(k + 1), c, range(2, 8)) for k, c in enumerate(categories)]
    first = task.tubelets[0]
    task.entities = [
        Entity(
            entity_id=f"{video_id}:e1",
            video_id=video_id,
            tubelet_id=first.tubelet_id,
            category=first.category,
            referring_expression=f"the {first.category}",
        )
    ]
    task.events = [
        Event(
            event_id=f"{video_id}:ev1",
            video_id=video_id,
            tubelet_ids=[first.tubelet_id],
            start_s=0.2,
            end_s=0.7,
            start_frame=2,
            end_frame=7,
            text="it moves right",
        )
    ]
    task.instructions = [
        Instruction(
            instruction_id=f"{video_id}:i1",
            video_id=video_id,
            task_type="temporal_grounding",
            messages=[Message("user", "When does <region0> move?"), Message("assistant", "From 0.2 s to 0.7 s.")],
            answer=Answer(
                span_s=[0.2, 0.7], boxes=[BoxAt(3, 0.3, [5.0, 4.0, 23.0, 30.0])], tubelet_ids=[first.tubelet_id]
            ),
            regions=[RegionRef("<region0>", first.tubelet_id, [2, 3])],
        )
    ]
    return task


def build(root: Path, plant: Iterable[str] = ()) -> Path:
    """Write the dataset to ``root``: videos ``a`` (2 tubelets) and ``b`` (1), one shard each."""
    plant = set(plant)
    unknown = plant - set(PLANTS)
    assert not unknown, unknown
    a = _task("a", ["person", "dog"])
    b = _task("b", ["cat"])
    b.reject("import:test", "b:mask:9", "mask 9 has no frame")
    tasks = [a, b]
    if "duplicate_id" in plant:
        b.tubelets.append(_tubelet("b", "9", "cat", range(3), tubelet_id=a.tubelets[0].tubelet_id))
    if "dangling_video" in plant:
        ghost = VideoTask(video_id="ghost", uri="/videos/ghost.mp4")
        ghost.tubelets = [_tubelet("ghost", "1", "bird", range(3))]
        tasks.append(ghost)
    if "frame_beyond" in plant:
        extra = _tubelet("a", "7", "person", [8])
        extra.frames[0].frame_idx = 12  # the video has 10 frames
        extra.frames[0].t_s = 1.2
        a.tubelets.append(extra)
    if "box_outside" in plant:
        a.tubelets[1].frames[0].box_xyxy = [50.0, 4.0, 70.0, 30.0]  # x2 beyond width 64
    if "rle_size" in plant:
        a.tubelets[1].frames[1].mask_rle = _mask([2, 4, 20, 30], width=32, height=48)
    if "dangling_tubelet" in plant:
        b.entities.append(Entity(entity_id="b:e2", video_id="b", tubelet_id="b:test:404", category="cat"))
    with ShardWriter(root, shard_size=1, run_id="20250101T000000Z-test00") as writer:
        for task in tasks:
            writer.add(task)
    write_info(root / "meta" / "info.json", DatasetInfo(pipeline="test", config_hash="0" * 16))
    return root


def recommit_file(root: Path, path: Path, table: pa.Table) -> None:
    """Rewrite the committed file ``path`` with ``table`` as if it had been committed so (its
    ledger entry's size and sha256 updated): planted rows or an older layout, not a corrupt file."""
    pq.write_table(table, path)
    blob = path.read_bytes()
    rel = Path(path).relative_to(root).as_posix()
    for entry_path in (Path(root) / "meta" / "ledger").glob("*.json"):
        entry = json.loads(entry_path.read_text())
        for file in entry["files"].values():
            if file.get("path") == rel:
                file.update(bytes=len(blob), sha256=hashlib.sha256(blob).hexdigest())
                entry_path.write_text(json.dumps(entry))
