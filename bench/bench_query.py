"""Benchmark: DuckDB over a tubelets table of 1 million frame rows.

Builds a dataset in the real on-disk format (Parquet shards under ``data/<table>/``,
one ledger entry per shard, ``meta/info.json``): 10,000 tubelets x 100 frames over 100
videos, with boxes, small COCO RLE masks on visible frames and scores, in 10 shards.
Then times, through ``tubelet.engine.dataset.Dataset.connect()`` (the views ``tubelet query``
uses), a query that unnests every frame and aggregates per category: frames, visible
frames and mean visible box area. Prints the median of 5 runs (target: < 1 s).

    python bench/bench_query.py [--tubelets 10000] [--frames 100] [--shards 10] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tubelet.engine.dataset import Dataset
from tubelet.engine.ledger import LedgerEntry, commit_entry
from tubelet.schemas.arrow import FRAME_TYPE, TABLE_SCHEMAS
from tubelet.schemas.info import DatasetInfo, write_info
from tubelet.schemas.rle import encode_mask

WIDTH, HEIGHT, FPS = 640, 360, 25.0
CATEGORIES = ["person", "car", "dog", "bicycle", "cat", "bus", "bird", "horse"]
QUERY = """
WITH f AS (SELECT category, unnest(frames) AS f FROM tubelets)
SELECT category,
       count(*) AS frames,
       count(*) FILTER (WHERE f.visible) AS visible_frames,
       avg((f.box_xyxy[3] - f.box_xyxy[1]) * (f.box_xyxy[4] - f.box_xyxy[2])) FILTER (WHERE f.visible) AS mean_box_area,
       avg(f.score) FILTER (WHERE f.visible) AS mean_score
FROM f GROUP BY category ORDER BY category
"""


def mask_pool(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` real RLE strings of ellipses (a few hundred bytes each, like real masks)."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    pool = []
    for _ in range(n):
        cx, cy = rng.uniform(80, WIDTH - 80), rng.uniform(60, HEIGHT - 60)
        ax, ay = rng.uniform(10, 70), rng.uniform(10, 50)
        pool.append(encode_mask(((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 <= 1)["counts"])
    return pool


def tubelets_shard(
    first: int, n_tubelets: int, n_frames: int, n_videos: int, rng: np.random.Generator, pool: list[str]
) -> pa.Table:
    """``n_tubelets`` tubelets of ``n_frames`` frames each, built column-wise (no Python rows)."""
    total = n_tubelets * n_frames
    ids = np.arange(first, first + n_tubelets)
    start = rng.integers(0, 400, n_tubelets)
    frame_idx = (start[:, None] + np.arange(n_frames)[None, :]).ravel().astype(np.int32)
    # a box that drifts: random start, small random walk
    x1 = rng.uniform(0, WIDTH - 200, n_tubelets)[:, None] + np.cumsum(
        rng.normal(0, 1.5, (n_tubelets, n_frames)), axis=1
    )
    y1 = rng.uniform(0, HEIGHT - 150, n_tubelets)[:, None] + np.cumsum(
        rng.normal(0, 1.0, (n_tubelets, n_frames)), axis=1
    )
    w = rng.uniform(20, 180, n_tubelets)[:, None].repeat(n_frames, axis=1)
    h = rng.uniform(20, 140, n_tubelets)[:, None].repeat(n_frames, axis=1)
    x1, y1 = np.clip(x1, 0, WIDTH - w).ravel(), np.clip(y1, 0, HEIGHT - h).ravel()
    boxes = np.stack([x1, y1, x1 + w.ravel(), y1 + h.ravel()], axis=1).ravel()
    visible = rng.random(total) < 0.9
    score = np.where(visible, rng.uniform(0.3, 1.0, total), np.nan).astype(np.float32)

    box_type = FRAME_TYPE.field("box_xyxy").type
    box_arr = pa.ListArray.from_arrays(
        pa.array(np.arange(0, 4 * total + 1, 4, dtype=np.int32)), pa.array(boxes), type=box_type
    )
    mask_type = FRAME_TYPE.field("mask_rle").type
    size_type = mask_type.field("size").type
    counts = pa.array(np.array(pool, dtype=object)[rng.integers(0, len(pool), total)], pa.string(), mask=~visible)
    # Invisible frames have no mask: their (null) size lists must be empty for Parquet.
    size_offsets = np.concatenate(([0], np.cumsum(np.where(visible, 2, 0)))).astype(np.int32)
    sizes = pa.ListArray.from_arrays(
        pa.array(size_offsets),
        pa.array(np.tile(np.array([HEIGHT, WIDTH], np.int32), int(visible.sum()))),
        type=size_type,
        mask=pa.array(~visible),
    )
    masks = pa.StructArray.from_arrays([sizes, counts], fields=list(mask_type), mask=pa.array(~visible))
    frames = pa.StructArray.from_arrays(
        [
            pa.array(frame_idx),
            pa.array(frame_idx / FPS),
            box_arr,
            masks,
            pa.array(score, mask=~visible),
            pa.array(visible),
            pa.nulls(total, FRAME_TYPE.field("amodal_xyxy").type),
        ],
        fields=list(FRAME_TYPE),
    )
    offsets = pa.array(np.arange(0, total + 1, n_frames, dtype=np.int32))
    frame_lists = pa.ListArray.from_arrays(offsets, frames, type=TABLE_SCHEMAS["tubelets"].field("frames").type)
    first_idx, last_idx = start, start + n_frames - 1
    n_visible = visible.reshape(n_tubelets, n_frames).sum(axis=1)
    video = ids % n_videos
    columns = {
        "tubelet_id": [f"v{v:05d}:bench:{i}" for v, i in zip(video, ids)],
        "video_id": [f"v{v:05d}" for v in video],
        "category": [CATEGORIES[i % len(CATEGORIES)] for i in ids],
        "source": ["bench"] * n_tubelets,
        "track_id": [str(i) for i in ids],
        "fps": np.full(n_tubelets, FPS),
        "width": np.full(n_tubelets, WIDTH, np.int32),
        "height": np.full(n_tubelets, HEIGHT, np.int32),
        "frames": frame_lists,
        "score": np.nanmean(score.reshape(n_tubelets, n_frames), axis=1).astype(np.float32),
        "start_frame": first_idx.astype(np.int32),
        "end_frame": last_idx.astype(np.int32),
        "start_s": first_idx / FPS,
        "end_s": last_idx / FPS,
        "n_frames": np.full(n_tubelets, n_frames, np.int32),
        "n_visible": n_visible.astype(np.int32),
        "mean_score": np.nanmean(score.reshape(n_tubelets, n_frames), axis=1).astype(np.float32),
        "extra": [None] * n_tubelets,
    }
    schema = TABLE_SCHEMAS["tubelets"]
    return pa.Table.from_arrays(
        [
            pa.array(columns[f.name], f.type) if not isinstance(columns[f.name], pa.Array) else columns[f.name]
            for f in schema
        ],
        schema=schema,
    )


def videos_table(n_videos: int) -> pa.Table:
    rows = [
        {
            "video_id": f"v{v:05d}",
            "uri": f"/videos/v{v:05d}.mp4",
            "fps": FPS,
            "n_frames": 600,
            "duration_s": 24.0,
            "width": WIDTH,
            "height": HEIGHT,
            "codec": "h264",
            "fps_source": "container",
        }
        for v in range(n_videos)
    ]
    return pa.Table.from_pylist(rows, schema=TABLE_SCHEMAS["videos"])


def build(root: Path, n_tubelets: int, n_frames: int, n_shards: int, n_videos: int, seed: int = 0) -> None:
    """Write the benchmark dataset: one ledger entry per shard, as ShardWriter would."""
    rng = np.random.default_rng(seed)
    pool = mask_pool(64, rng)
    per_shard = -(-n_tubelets // n_shards)
    videos = videos_table(n_videos)
    for s in range(n_shards):
        first = s * per_shard
        count = min(per_shard, n_tubelets - first)
        if count <= 0:
            break
        shard = f"bench-{s:05d}"
        files = {}
        tables = {"tubelets": tubelets_shard(first, count, n_frames, n_videos, rng, pool)}
        if s == 0:
            tables["videos"] = videos
        for name, table in tables.items():
            rel = f"data/{name}/{shard}.parquet"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, root / rel, compression="zstd")
            files[name] = {"path": rel, "rows": table.num_rows}
        items = {f"v{v:05d}": "done" for v in range(n_videos)} if s == 0 else {f"bench-item-{s}": "done"}
        commit_entry(
            root,
            LedgerEntry(
                shard=shard, run_id="bench", committed_at="2025-01-01T00:00:00+00:00", items=items, files=files
            ),
        )
    write_info(root / "meta" / "info.json", DatasetInfo(pipeline="bench", config_hash="0" * 16))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tubelets", type=int, default=10_000)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--shards", type=int, default=10)
    parser.add_argument("--videos", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="write the dataset here and keep it (default: a temporary folder)")
    args = parser.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="tubelet-bench-"))
    try:
        t0 = time.perf_counter()
        build(root, args.tubelets, args.frames, args.shards, args.videos)
        built = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in (root / "data").rglob("*.parquet"))
        print(
            f"dataset: {args.tubelets} tubelets x {args.frames} frames = {args.tubelets * args.frames:,} frame rows, "
            f"{args.shards} shards, {size / 1e6:.1f} MB Parquet (built in {built:.1f} s)"
        )

        con = Dataset(root).connect()
        times, result = [], None
        for _ in range(args.runs):
            t0 = time.perf_counter()
            result = con.execute(QUERY).fetchall()
            times.append(time.perf_counter() - t0)
        frames = sum(r[1] for r in result)
        assert frames == args.tubelets * args.frames, (frames, args.tubelets * args.frames)
        print("query: unnest(frames) + group by category (frames, visible frames, mean box area, mean score)")
        for row in result:
            print(
                f"  {row[0]:<8} {row[1]:>9,} frames  {row[2]:>9,} visible  mean area {row[3]:8.1f} px  score {row[4]:.3f}"
            )
        print(f"runs: {', '.join(f'{t:.3f}' for t in times)} s")
        median = statistics.median(times)
        print(
            f"median of {args.runs}: {median:.3f} s over {frames:,} frame rows "
            f"({frames / median / 1e6:.1f} M frames/s) -- target < 1 s: {'met' if median < 1 else 'NOT met'}"
        )
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
