"""Row-level checks of dataset tables, for ``tubelet validate``.

Every check returns a list of human-readable problems and never raises on bad data.
The tubelet checks run vectorised over the flattened ``frames`` of a whole record batch
(numpy on Arrow buffers), so a table of millions of frames validates in seconds. The
only per-frame Python work is checking mask RLEs, which by default is done on a
sample (``check_masks="sample"``); ``"all"`` checks every mask, ``"none"`` none.
Each kind of problem is reported for at most ``max_examples`` rows, followed by one
line counting the rest, so a systematic error does not bury the others.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tubelet.schemas.arrow import PRIMARY_KEYS, TUBELETS, VIDEOS
from tubelet.schemas.records import Tubelet, VideoRecord
from tubelet.schemas.rle import rle_problem

MaskCheck = Literal["sample", "all", "none"]

#: Tolerance for box comparisons, in pixels (boxes are float64 but come from floats).
BOX_TOL = 1e-6
_FPS_SOURCES = ("container", "manifest")


class _Report:
    """Problems grouped by kind, each kind cut to ``max_examples`` lines plus a count."""

    def __init__(self, max_examples: int) -> None:
        self.max_examples = max_examples
        self.lines: list[str] = []
        self.counts: Counter[str] = Counter()

    def add(self, kind: str, message: str) -> None:
        self.counts[kind] += 1
        if self.counts[kind] <= self.max_examples:
            self.lines.append(message)

    def add_many(self, kind: str, hits: np.ndarray, message: Any) -> None:
        """Report ``message(i)`` for the first hits of a boolean array; count the rest."""
        idx = np.flatnonzero(hits)
        if idx.size == 0:
            return
        room = max(self.max_examples - self.counts[kind], 0)
        for i in idx[:room]:
            self.lines.append(message(int(i)))
        self.counts[kind] += int(idx.size)

    def finish(self) -> list[str]:
        for kind, n in self.counts.items():
            if n > self.max_examples:
                self.lines.append(f"... and {n - self.max_examples} more: {kind}")
        return self.lines


def _np(arr: pa.Array, fill: Any) -> tuple[np.ndarray, np.ndarray]:
    """Values (nulls replaced by ``fill``) and the null mask of an Arrow array."""
    nulls = arr.is_null().to_numpy(zero_copy_only=False)
    if arr.null_count:
        arr = pc.fill_null(arr, pa.scalar(fill, arr.type))
    return arr.to_numpy(zero_copy_only=False), nulls


def _fixed(arr: pa.Array, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A list column of ``n`` numbers per row as a ``(len, n)`` float array.

    Returns the values (NaN where null or of the wrong length), the null mask, and the
    lengths (``n`` for fixed-size lists; -1 where null).
    """
    nulls = arr.is_null().to_numpy(zero_copy_only=False)
    if pa.types.is_fixed_size_list(arr.type):
        child = arr.values.slice(arr.offset * n, len(arr) * n).cast(pa.float64())
        values = child.to_numpy(zero_copy_only=False).reshape(-1, n).astype(np.float64)
        values[nulls] = np.nan
        return values, nulls, np.where(nulls, -1, n)
    lengths = _np(pc.list_value_length(arr), -1)[0].astype(np.int64)
    values = np.full((len(arr), n), np.nan)
    ok = ~nulls & (lengths == n)
    if ok.any():
        flat = pc.list_flatten(arr.filter(pa.array(ok)))
        values[ok] = flat.cast(pa.float64()).to_numpy(zero_copy_only=False).reshape(-1, n)
    return values, nulls, lengths


def _column(batch: pa.RecordBatch | pa.Table, name: str) -> pa.Array | None:
    if name not in batch.schema.names:
        return None
    col = batch.column(name)
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def _fmt_box(b: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:g}" for v in b) + "]"


# ---------------------------------------------------------------------------- videos


def validate_videos(table: pa.Table, *, max_examples: int = 20) -> list[str]:
    """Problems with the rows of a ``videos`` table (ids, sizes, fps, duration)."""
    report = _Report(max_examples)
    _check_unique(report, "videos", table, "video_id")
    for start, batch in _batches(table):
        _check_video_batch(report, batch, start)
    return report.finish()


def _check_video_batch(report: _Report, batch: pa.RecordBatch, start: int) -> None:
    ids = _column(batch, "video_id")

    def label(i: int) -> str:
        vid = ids[i].as_py() if ids is not None else None
        return f"videos row {start + i} ({vid!r})"

    for name in ("video_id", "uri"):
        col = _column(batch, name)
        if col is None:
            report.add(f"videos without a {name} column", f"videos: no {name} column")
            continue
        values, nulls = _np(col, "")
        report.add_many(
            f"empty videos.{name}",
            nulls | (values == ""),
            lambda i, n=name: f"{label(i)}: {n} is empty",
        )

    for name in ("fps", "duration_s"):
        col = _column(batch, name)
        if col is None:
            report.add(f"videos without a {name} column", f"videos: no {name} column")
            continue
        v, nulls = _np(col, math.nan)
        bad = nulls | ~np.isfinite(v) | (v <= 0)
        report.add_many(
            f"non-positive videos.{name}",
            bad,
            lambda i, n=name, v=v: f"{label(i)}: {n} = {v[i]:g} is not a positive number",
        )
    for name in ("n_frames", "width", "height"):
        col = _column(batch, name)
        if col is None:
            report.add(f"videos without a {name} column", f"videos: no {name} column")
            continue
        v, nulls = _np(col, 0)
        report.add_many(
            f"non-positive videos.{name}",
            nulls | (v <= 0),
            lambda i, n=name, v=v: f"{label(i)}: {n} = {v[i]} is not positive",
        )
    src = _column(batch, "fps_source")
    if src is not None:
        values, nulls = _np(src, "")
        bad = ~np.isin(values.astype(object), _FPS_SOURCES)
        report.add_many(
            "unknown videos.fps_source",
            bad,
            lambda i: f"{label(i)}: fps_source {values[i]!r} is not one of {_FPS_SOURCES}",
        )


# --------------------------------------------------------------------------- tubelets


@dataclasses.dataclass
class _Videos:
    """The columns of the videos table that tubelet checks need, indexed by row."""

    ids: pa.Array
    n_frames: np.ndarray
    fps: np.ndarray
    duration: np.ndarray
    container_time: np.ndarray
    width: np.ndarray
    height: np.ndarray

    @classmethod
    def of(cls, table: pa.Table) -> _Videos:
        def col(name: str, fill: Any) -> np.ndarray:
            c = _column(table, name)
            return _np(c, fill)[0] if c is not None else np.full(table.num_rows, fill)

        def padded(values: np.ndarray, sentinel: Any) -> np.ndarray:
            # one extra row at the end, indexed by -1 for tubelets of an unknown video
            return np.append(values, np.array([sentinel], dtype=values.dtype))

        source = col("fps_source", "container").astype(object)
        return cls(
            ids=_column(table, "video_id"),
            n_frames=padded(col("n_frames", 0).astype(np.int64), 0),
            fps=padded(col("fps", math.nan).astype(np.float64), math.nan),
            duration=padded(col("duration_s", math.nan).astype(np.float64), math.nan),
            container_time=padded(source == "container", False),
            width=padded(col("width", 0).astype(np.int64), 0),
            height=padded(col("height", 0).astype(np.int64), 0),
        )


def validate_tubelets(
    table: pa.Table,
    videos: pa.Table | None = None,
    *,
    check_masks: MaskCheck = "sample",
    mask_sample: int = 256,
    seed: int = 0,
    max_examples: int = 20,
) -> list[str]:
    """Problems with the rows of a ``tubelets`` table.

    Per frame: ``frame_idx`` in ``[0, n_frames)`` (needs ``videos``), frames sorted and
    unique, ``t_s`` increasing and, for times synthesised from the fps (``fps_source``
    ``manifest``: frame folders and overrides), within half a frame of
    ``frame_idx / fps``; for container timestamps, within the duration. Boxes valid and
    inside the frame, ``amodal_xyxy`` containing ``box_xyxy``, mask sizes equal to the
    frame size, no mask on an invisible frame, and mask RLEs that decode (sampled).
    Per tubelet: unique id, known video with the same size and fps, non-empty frames,
    summary columns that match the frames.
    """
    if check_masks not in ("sample", "all", "none"):
        raise ValueError(f"check_masks must be 'sample', 'all' or 'none', got {check_masks!r}")
    report = _Report(max_examples)
    _check_unique(report, "tubelets", table, "tubelet_id")
    vids = _Videos.of(videos) if videos is not None else None
    rng = np.random.default_rng(seed)
    # Spread the mask sample over batches in proportion to their rows.
    total = max(table.num_rows, 1)
    for start, batch in _batches(table):
        if check_masks == "sample":
            budget: int | None = max(1, round(mask_sample * batch.num_rows / total))
        else:
            budget = None if check_masks == "all" else 0
        _check_tubelet_batch(report, batch, start, vids, budget, rng)
    return report.finish()


def _check_tubelet_batch(
    report: _Report,
    batch: pa.RecordBatch,
    start: int,
    vids: _Videos | None,
    mask_budget: int | None,
    rng: np.random.Generator,
) -> None:
    n = batch.num_rows
    ids = _column(batch, "tubelet_id")

    def label(i: int) -> str:
        return f"tubelet {ids[i].as_py()!r} (row {start + i})"

    width = _np(_column(batch, "width"), 0)[0].astype(np.float64)
    height = _np(_column(batch, "height"), 0)[0].astype(np.float64)
    fps = _np(_column(batch, "fps"), math.nan)[0].astype(np.float64)
    bad_size = (width <= 0) | (height <= 0)
    report.add_many(
        "tubelets without a positive width/height",
        bad_size,
        lambda i: f"{label(i)}: size {width[i]:g}x{height[i]:g} is not positive",
    )
    report.add_many(
        "tubelets without a positive fps",
        ~(fps > 0),
        lambda i: f"{label(i)}: fps {fps[i]:g} is not positive",
    )

    # The video of each tubelet, when a videos table is given (-1: unknown video).
    vrow = np.full(n, -1, dtype=np.int64)
    if vids is not None:
        vrow = _np(pc.index_in(_column(batch, "video_id"), value_set=vids.ids), -1)[0].astype(np.int64)
        video_ids = _column(batch, "video_id")
        report.add_many(
            "tubelets of a video not in the videos table",
            vrow < 0,
            lambda i: f"{label(i)}: video {video_ids[i].as_py()!r} is not in the videos table",
        )
        known = vrow >= 0
        vr = np.where(known, vrow, -1)
        mismatch = known & ((vids.width[vr] != width) | (vids.height[vr] != height))
        report.add_many(
            "tubelets whose size differs from their video's",
            mismatch,
            lambda i: (
                f"{label(i)}: size {width[i]:g}x{height[i]:g} is not the video's "
                f"{vids.width[vr[i]]}x{vids.height[vr[i]]}"
            ),
        )
        fps_mismatch = known & ~np.isclose(vids.fps[vr], fps, rtol=1e-6, atol=0)
        report.add_many(
            "tubelets whose fps differs from their video's",
            fps_mismatch,
            lambda i: f"{label(i)}: fps {fps[i]:g} is not the video's {vids.fps[vr[i]]:g}",
        )

    frames = _column(batch, "frames")
    lengths, null_frames = _np(pc.list_value_length(frames), 0)
    report.add_many(
        "tubelets without frames",
        null_frames | (lengths == 0),
        lambda i: f"{label(i)}: no frames",
    )

    parent = _np(pc.list_parent_indices(frames), 0)[0].astype(np.int64)
    flat = pc.list_flatten(frames)
    if len(flat) == 0:
        return
    fields = dict(zip([f.name for f in flat.type], flat.flatten(), strict=True))
    fidx, fidx_null = _np(fields["frame_idx"], -1)
    fidx = fidx.astype(np.int64)
    t_s, t_null = _np(fields["t_s"], math.nan)
    t_s = t_s.astype(np.float64)
    visible, vis_null = _np(fields["visible"], False)
    box, box_null, box_len = _fixed(fields["box_xyxy"], 4)
    amodal, amodal_null, amodal_len = _fixed(fields["amodal_xyxy"], 4)

    # Position of each frame inside its tubelet, for messages.
    offsets = np.concatenate(([0], np.cumsum(lengths)))
    pos = np.arange(len(parent)) - offsets[parent]

    def at(j: int) -> str:
        return f"{label(int(parent[j]))} frames[{pos[j]}] (frame_idx {fidx[j]})"

    # frame indices
    report.add_many("frames with a null frame_idx", fidx_null, lambda j: f"{at(j)}: frame_idx is null")
    report.add_many(
        "frames with a negative frame_idx",
        ~fidx_null & (fidx < 0),
        lambda j: f"{at(j)}: frame_idx is negative",
    )
    vr = np.where(vrow[parent] >= 0, vrow[parent], -1)
    known = vrow[parent] >= 0
    if vids is not None:
        beyond = known & ~fidx_null & (fidx >= vids.n_frames[vr])
        report.add_many(
            "frames beyond the video's n_frames",
            beyond,
            lambda j: f"{at(j)}: frame_idx is not below the video's n_frames = {vids.n_frames[vr[j]]}",
        )
    same = np.zeros(len(parent), dtype=bool)
    same[1:] = parent[1:] == parent[:-1]
    prev = np.roll(fidx, 1)
    report.add_many("frames listed twice", same & (fidx == prev), lambda j: f"{at(j)}: frame listed twice")
    report.add_many(
        "frames out of order",
        same & (fidx < prev),
        lambda j: f"{at(j)}: frames not sorted (follows frame_idx {prev[j]})",
    )

    # times
    bad_t = t_null | ~np.isfinite(t_s) | (t_s < 0)
    report.add_many(
        "frames with a missing or negative t_s",
        bad_t,
        lambda j: f"{at(j)}: t_s = {t_s[j]} is not a time",
    )
    prev_t = np.roll(t_s, 1)
    report.add_many(
        "frames whose t_s does not increase",
        same & ~bad_t & (t_s <= prev_t) & (fidx > prev),
        lambda j: f"{at(j)}: t_s = {t_s[j]:g} does not increase (previous {prev_t[j]:g})",
    )
    if vids is not None:
        frame_fps = vids.fps[vr]
        synthetic = known & ~vids.container_time[vr]
        expected = fidx / np.where(frame_fps > 0, frame_fps, np.nan)
        off = synthetic & ~bad_t & ~fidx_null & ~(np.abs(t_s - expected) <= 0.5 / frame_fps)
        report.add_many(
            "frames whose t_s is not frame_idx / fps",
            off,
            lambda j: f"{at(j)}: t_s = {t_s[j]:g} is more than half a frame from frame_idx / fps = {expected[j]:g}",
        )
        limit = vids.duration[vr] + 1.0 / frame_fps
        late = known & vids.container_time[vr] & ~bad_t & (t_s > limit)
        report.add_many(
            "frames after the end of the video",
            late,
            lambda j: f"{at(j)}: t_s = {t_s[j]:g} is after the video's duration {vids.duration[vr[j]]:g}",
        )

    # boxes
    w, h = width[parent], height[parent]
    report.add_many("frames without a box", box_null, lambda j: f"{at(j)}: box_xyxy is null")
    box_short = ~box_null & (box_len != 4)
    report.add_many(
        "boxes without 4 numbers",
        box_short,
        lambda j: f"{at(j)}: box_xyxy has {box_len[j]} numbers, not 4",
    )
    amodal_short = ~amodal_null & (amodal_len != 4)
    report.add_many(
        "amodal boxes without 4 numbers",
        amodal_short,
        lambda j: f"{at(j)}: amodal_xyxy has {amodal_len[j]} numbers, not 4",
    )
    box_null, amodal_null = box_null | box_short, amodal_null | amodal_short  # reported: skip below
    valid = np.isfinite(box).all(axis=1) & (box[:, 0] < box[:, 2]) & (box[:, 1] < box[:, 3])
    report.add_many(
        "frames with an empty or inverted box",
        ~box_null & ~valid,
        lambda j: f"{at(j)}: box {_fmt_box(box[j])} is not x1 < x2, y1 < y2",
    )
    inside = (box[:, 0] >= -BOX_TOL) & (box[:, 1] >= -BOX_TOL) & (box[:, 2] <= w + BOX_TOL) & (box[:, 3] <= h + BOX_TOL)
    report.add_many(
        "frames with a box outside the frame",
        ~box_null & valid & ~inside,
        lambda j: f"{at(j)}: box {_fmt_box(box[j])} is outside the {w[j]:g}x{h[j]:g} frame",
    )
    a_valid = np.isfinite(amodal).all(axis=1) & (amodal[:, 0] < amodal[:, 2]) & (amodal[:, 1] < amodal[:, 3])
    report.add_many(
        "frames with an empty or inverted amodal box",
        ~amodal_null & ~a_valid,
        lambda j: f"{at(j)}: amodal box {_fmt_box(amodal[j])} is not x1 < x2, y1 < y2",
    )
    contains = (
        (amodal[:, 0] <= box[:, 0] + BOX_TOL)
        & (amodal[:, 1] <= box[:, 1] + BOX_TOL)
        & (amodal[:, 2] >= box[:, 2] - BOX_TOL)
        & (amodal[:, 3] >= box[:, 3] - BOX_TOL)
    )
    report.add_many(
        "frames whose amodal box does not contain the box",
        ~amodal_null & a_valid & ~box_null & ~contains,
        lambda j: f"{at(j)}: amodal box {_fmt_box(amodal[j])} does not contain box {_fmt_box(box[j])}",
    )

    # visibility and masks
    report.add_many("frames with a null visible", vis_null, lambda j: f"{at(j)}: visible is null")
    mask = fields["mask_rle"]
    has_mask = ~mask.is_null().to_numpy(zero_copy_only=False)
    if has_mask.any():
        mask_parts = dict(zip([f.name for f in mask.type], mask.flatten(), strict=True))
        size, size_null, _ = _fixed(mask_parts["size"], 2)
        wrong = has_mask & (size_null | (size[:, 0] != h) | (size[:, 1] != w))
        report.add_many(
            "masks whose size is not the frame size",
            wrong,
            lambda j: (
                f"{at(j)}: mask size {_fmt_box(size[j])} is not the frame size [{h[j]:g}, {w[j]:g}] (height, width)"
            ),
        )
        report.add_many(
            "masks on invisible frames",
            has_mask & ~vis_null & ~visible.astype(bool),
            lambda j: f"{at(j)}: invisible frame has a mask",
        )
        candidates = np.flatnonzero(has_mask & ~wrong)
        if mask_budget is not None and candidates.size > mask_budget:
            candidates = np.sort(rng.choice(candidates, size=mask_budget, replace=False))
        counts = mask_parts["counts"]
        for j in candidates:
            rle = {"size": [int(h[j]), int(w[j])], "counts": counts[int(j)].as_py()}
            if rle["counts"] is None:
                report.add("masks that do not decode", f"{at(int(j))}: mask counts is null")
                continue
            problem = rle_problem(rle, (int(h[j]), int(w[j])))
            if problem:
                report.add("masks that do not decode", f"{at(int(j))}: mask does not decode: {problem}")

    # summary columns, derived from frames on write
    first = np.where(lengths > 0, offsets[:-1], 0)
    last = np.where(lengths > 0, offsets[1:] - 1, 0)
    has = lengths > 0
    n_vis = np.bincount(parent, weights=visible.astype(np.float64), minlength=n).astype(np.int64)
    for name, expected in (
        ("start_frame", fidx[first]),
        ("end_frame", fidx[last]),
        ("n_frames", lengths),
        ("n_visible", n_vis),
    ):
        col = _column(batch, name)
        if col is None:
            continue
        stored, nulls = _np(col, 0)
        mismatch = has & ~nulls & (stored.astype(np.int64) != expected)
        report.add_many(
            f"tubelets whose {name} does not match their frames",
            mismatch,
            lambda i, n=name, s=stored, e=expected: f"{label(i)}: {n} = {s[i]} but the frames say {e[i]}",
        )


# ------------------------------------------------------------------ tables and rows


def _batches(table: pa.Table, rows: int = 65536) -> Iterable[tuple[int, pa.RecordBatch]]:
    start = 0
    for batch in table.to_batches(max_chunksize=rows):
        yield start, batch
        start += batch.num_rows


def _check_unique(report: _Report, table_name: str, table: pa.Table, key: str) -> None:
    if key not in table.schema.names or table.num_rows == 0:
        return
    counts = pc.value_counts(table.column(key).drop_null())
    dup = counts.filter(pc.greater(counts.field("counts"), 1))
    for value, n in zip(dup.field("values").to_pylist(), dup.field("counts").to_pylist(), strict=True):
        report.add(f"duplicate {table_name}.{key}", f"{table_name}: {key} {value!r} appears {n} times")


def validate_tables(
    tables: Mapping[str, pa.Table],
    *,
    check_masks: MaskCheck = "sample",
    mask_sample: int = 256,
    max_examples: int = 20,
) -> list[str]:
    """Problems across a dataset's tables: videos and tubelets row checks (tubelets
    against the videos table when present) and unique primary keys of every table."""
    problems: list[str] = []
    videos = tables.get("videos")
    for name, table in tables.items():
        if name == "videos":
            problems += validate_videos(table, max_examples=max_examples)
        elif name == "tubelets":
            problems += validate_tubelets(
                table, videos, check_masks=check_masks, mask_sample=mask_sample, max_examples=max_examples
            )
        elif PRIMARY_KEYS.get(name):
            report = _Report(max_examples)
            _check_unique(report, name, table, PRIMARY_KEYS[name])
            problems += report.finish()
    return problems


def _row_table(row: Any, schema: pa.Schema) -> pa.Table:
    if dataclasses.is_dataclass(row) and not isinstance(row, type):
        # Not tubelet.schemas.arrow.record_to_row: that sorts frames, and unsorted is a problem.
        row = dataclasses.asdict(row)
        for key in ("extra", "attributes", "payload"):
            if key in row:
                row[key] = json.dumps(row[key], sort_keys=True) if row[key] else None
    return pa.Table.from_pylist([dict(row)], schema=schema)


def check_video(row: VideoRecord | Mapping[str, Any]) -> list[str]:
    """Problems with one video (a record or a ``videos`` row dict)."""
    try:
        table = _row_table(row, VIDEOS)
    except (pa.ArrowException, TypeError, ValueError) as error:
        return [f"video row does not fit the videos schema: {error}"]
    return validate_videos(table)


def check_tubelet(
    row: Tubelet | Mapping[str, Any],
    video: VideoRecord | Mapping[str, Any] | None = None,
    *,
    check_masks: bool = True,
) -> list[str]:
    """Problems with one tubelet (a record or a ``tubelets`` row dict), every mask checked."""
    try:
        table = _row_table(row, TUBELETS)
        videos = _row_table(video, VIDEOS) if video is not None else None
    except (pa.ArrowException, TypeError, ValueError) as error:
        return [f"row does not fit its table's schema: {error}"]
    return validate_tubelets(table, videos, check_masks="all" if check_masks else "none")
