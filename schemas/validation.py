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
import functools
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
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

#: A problem message for row (or frame) ``i`` of a batch.
_Message = Callable[[int], str]


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

    def add_many(self, kind: str, hits: np.ndarray, message: _Message) -> None:
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


def _value(arr: pa.Array | None, i: int) -> Any:
    """``arr[i]`` as a Python value; None when the column is missing."""
    return arr[i].as_py() if arr is not None else None


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
    label = _video_label(batch, start)
    for name in ("video_id", "uri"):
        _check_video_string(report, batch, name, label)
    for name in ("fps", "duration_s"):
        _check_video_positive_float(report, batch, name, label)
    for name in ("n_frames", "width", "height"):
        _check_video_positive_int(report, batch, name, label)
    _check_fps_source(report, batch, label)


def _video_label(batch: pa.RecordBatch, start: int) -> _Message:
    """How messages name row ``i`` of a videos batch."""
    ids = _column(batch, "video_id")
    return lambda i: f"videos row {start + i} ({_value(ids, i)!r})"


def _video_column(report: _Report, batch: pa.RecordBatch, name: str) -> pa.Array | None:
    """A required column of a videos batch; reports it and returns None when missing."""
    col = _column(batch, name)
    if col is None:
        report.add(f"videos without a {name} column", f"videos: no {name} column")
    return col


def _check_video_string(report: _Report, batch: pa.RecordBatch, name: str, label: _Message) -> None:
    col = _video_column(report, batch, name)
    if col is None:
        return
    values, nulls = _np(col, "")
    report.add_many(f"empty videos.{name}", nulls | (values == ""), lambda i: f"{label(i)}: {name} is empty")


def _check_video_positive_float(report: _Report, batch: pa.RecordBatch, name: str, label: _Message) -> None:
    col = _video_column(report, batch, name)
    if col is None:
        return
    v, nulls = _np(col, math.nan)
    report.add_many(
        f"non-positive videos.{name}",
        nulls | ~np.isfinite(v) | (v <= 0),
        lambda i: f"{label(i)}: {name} = {v[i]:g} is not a positive number",
    )


def _check_video_positive_int(report: _Report, batch: pa.RecordBatch, name: str, label: _Message) -> None:
    col = _video_column(report, batch, name)
    if col is None:
        return
    v, nulls = _np(col, 0)
    report.add_many(
        f"non-positive videos.{name}",
        nulls | (v <= 0),
        lambda i: f"{label(i)}: {name} = {v[i]} is not positive",
    )


def _check_fps_source(report: _Report, batch: pa.RecordBatch, label: _Message) -> None:
    src = _column(batch, "fps_source")
    if src is None:  # optional column: every fps is then the container's
        return
    values, _ = _np(src, "")
    report.add_many(
        "unknown videos.fps_source",
        ~np.isin(values.astype(object), _FPS_SOURCES),
        lambda i: f"{label(i)}: fps_source {values[i]!r} is not one of {_FPS_SOURCES}",
    )


# --------------------------------------------------------------------------- tubelets


@dataclasses.dataclass
class _Videos:
    """The columns of the videos table that tubelet checks need, indexed by row."""

    ids: pa.Array | None
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
    for start, batch in _batches(table):
        budget = _mask_budget(check_masks, mask_sample, batch.num_rows, table.num_rows)
        _check_tubelet_batch(report, batch, start, vids, budget, rng)
    return report.finish()


def _mask_budget(check_masks: MaskCheck, mask_sample: int, batch_rows: int, table_rows: int) -> int | None:
    """How many masks of a batch to decode; None for all of them."""
    if check_masks == "sample":
        # Spread the sample over batches in proportion to their rows.
        return max(1, round(mask_sample * batch_rows / max(table_rows, 1)))
    return None if check_masks == "all" else 0


def _check_tubelet_batch(
    report: _Report,
    batch: pa.RecordBatch,
    start: int,
    vids: _Videos | None,
    mask_budget: int | None,
    rng: np.random.Generator,
) -> None:
    rows = _TubeletRows.of(batch, start)
    video_ids = _column(batch, "video_id")
    # The video of each tubelet, when a videos table is given (-1: unknown video).
    video_row = _video_rows(video_ids, vids) if vids is not None else np.full(batch.num_rows, -1, dtype=np.int64)
    _check_tubelets(report, rows, vids, video_ids, video_row)
    frame_list = _column(batch, "frames")
    lengths, null_frames = _np(pc.list_value_length(frame_list), 0)
    report.add_many("tubelets without frames", null_frames | (lengths == 0), lambda i: f"{rows.label(i)}: no frames")
    frames = _Frames.of(rows, frame_list, lengths, video_row)
    if frames is None:  # not one frame in the batch
        return
    _check_frames(report, frames, vids, mask_budget, rng)
    _check_summary_columns(report, batch, frames)


def _check_tubelets(
    report: _Report, rows: _TubeletRows, vids: _Videos | None, video_ids: pa.Array | None, video_row: np.ndarray
) -> None:
    """Per tubelet: a positive size and fps and, given the videos, a known video of that size and fps."""
    _check_tubelet_size(report, rows)
    _check_tubelet_fps(report, rows)
    if vids is None:
        return
    _check_video_known(report, rows, video_ids, video_row)
    _check_size_matches_video(report, rows, vids, video_row)
    _check_fps_matches_video(report, rows, vids, video_row)


def _check_frames(
    report: _Report, frames: _Frames, vids: _Videos | None, mask_budget: int | None, rng: np.random.Generator
) -> None:
    """Per frame: index, time, boxes, visibility and mask; the checks against the video need ``vids``."""
    _check_frame_idx(report, frames)
    if vids is not None:
        _check_frames_within_video(report, frames, vids)
    _check_frame_order(report, frames)
    _check_times(report, frames)
    if vids is not None:
        _check_synthetic_times(report, frames, vids)
        _check_times_within_duration(report, frames, vids)
    _check_box_lengths(report, frames)
    _check_box(report, frames)
    _check_amodal_box(report, frames)
    report.add_many("frames with a null visible", frames.vis_null, lambda j: f"{frames.at(j)}: visible is null")
    _check_masks(report, frames, mask_budget, rng)


@dataclasses.dataclass
class _TubeletRows:
    """The per-tubelet columns of a batch that the checks need, and the rows' names."""

    start: int
    ids: pa.Array | None
    width: np.ndarray
    height: np.ndarray
    fps: np.ndarray

    @classmethod
    def of(cls, batch: pa.RecordBatch, start: int) -> _TubeletRows:
        return cls(
            start=start,
            ids=_column(batch, "tubelet_id"),
            width=_np(_column(batch, "width"), 0)[0].astype(np.float64),
            height=_np(_column(batch, "height"), 0)[0].astype(np.float64),
            fps=_np(_column(batch, "fps"), math.nan)[0].astype(np.float64),
        )

    def label(self, i: int) -> str:
        return f"tubelet {_value(self.ids, i)!r} (row {self.start + i})"


def _check_tubelet_size(report: _Report, rows: _TubeletRows) -> None:
    report.add_many(
        "tubelets without a positive width/height",
        (rows.width <= 0) | (rows.height <= 0),
        lambda i: f"{rows.label(i)}: size {rows.width[i]:g}x{rows.height[i]:g} is not positive",
    )


def _check_tubelet_fps(report: _Report, rows: _TubeletRows) -> None:
    report.add_many(
        "tubelets without a positive fps",
        ~(rows.fps > 0),  # NaN too
        lambda i: f"{rows.label(i)}: fps {rows.fps[i]:g} is not positive",
    )


def _video_rows(video_ids: pa.Array | None, vids: _Videos) -> np.ndarray:
    """The row of each tubelet's video in the videos table; -1 (the sentinel row) if unknown."""
    return _np(pc.index_in(video_ids, value_set=vids.ids), -1)[0].astype(np.int64)


def _check_video_known(report: _Report, rows: _TubeletRows, video_ids: pa.Array | None, video_row: np.ndarray) -> None:
    report.add_many(
        "tubelets of a video not in the videos table",
        video_row < 0,
        lambda i: f"{rows.label(i)}: video {_value(video_ids, i)!r} is not in the videos table",
    )


def _check_size_matches_video(report: _Report, rows: _TubeletRows, vids: _Videos, video_row: np.ndarray) -> None:
    vr = video_row
    mismatch = (vr >= 0) & ((vids.width[vr] != rows.width) | (vids.height[vr] != rows.height))
    report.add_many(
        "tubelets whose size differs from their video's",
        mismatch,
        lambda i: (
            f"{rows.label(i)}: size {rows.width[i]:g}x{rows.height[i]:g} is not the video's "
            f"{vids.width[vr[i]]}x{vids.height[vr[i]]}"
        ),
    )


def _check_fps_matches_video(report: _Report, rows: _TubeletRows, vids: _Videos, video_row: np.ndarray) -> None:
    vr = video_row
    mismatch = (vr >= 0) & ~np.isclose(vids.fps[vr], rows.fps, rtol=1e-6, atol=0)
    report.add_many(
        "tubelets whose fps differs from their video's",
        mismatch,
        lambda i: f"{rows.label(i)}: fps {rows.fps[i]:g} is not the video's {vids.fps[vr[i]]:g}",
    )


@dataclasses.dataclass
class _Boxes:
    """A box column of the flattened frames: ``(n, 4)`` values, null mask and list lengths."""

    values: np.ndarray
    null: np.ndarray
    length: np.ndarray

    @functools.cached_property
    def short(self) -> np.ndarray:
        """Not null, but not 4 numbers."""
        return ~self.null & (self.length != 4)

    @functools.cached_property
    def usable(self) -> np.ndarray:
        """4 numbers: null and short boxes are reported once, then left out of the geometry checks."""
        return ~(self.null | self.short)

    @functools.cached_property
    def ordered(self) -> np.ndarray:
        """Finite, with ``x1 < x2`` and ``y1 < y2``."""
        v = self.values
        return np.isfinite(v).all(axis=1) & (v[:, 0] < v[:, 2]) & (v[:, 1] < v[:, 3])


@dataclasses.dataclass
class _Frames:
    """The frames of a batch's tubelets, flattened: frame ``j`` belongs to tubelet ``parent[j]``.

    Per-tubelet arrays (``lengths``, ``offsets``) are indexed by batch row, all others by frame.
    """

    rows: _TubeletRows
    lengths: np.ndarray
    offsets: np.ndarray
    parent: np.ndarray
    pos: np.ndarray  # position of the frame inside its tubelet, for messages
    fidx: np.ndarray
    fidx_null: np.ndarray
    t_s: np.ndarray
    t_null: np.ndarray
    visible: np.ndarray
    vis_null: np.ndarray
    box: _Boxes
    amodal: _Boxes
    mask: pa.Array
    width: np.ndarray
    height: np.ndarray
    video_row: np.ndarray
    same: np.ndarray  # the previous frame belongs to the same tubelet
    prev: np.ndarray  # frame_idx of the previous frame

    @classmethod
    def of(cls, rows: _TubeletRows, frames: pa.Array, lengths: np.ndarray, video_row: np.ndarray) -> _Frames | None:
        """The frames of a batch's ``frames`` column; None when no tubelet has any."""
        parent = _np(pc.list_parent_indices(frames), 0)[0].astype(np.int64)
        flat = pc.list_flatten(frames)
        if len(flat) == 0:
            return None
        fields = dict(zip([f.name for f in flat.type], flat.flatten(), strict=True))
        fidx, fidx_null = _np(fields["frame_idx"], -1)
        fidx = fidx.astype(np.int64)
        t_s, t_null = _np(fields["t_s"], math.nan)
        visible, vis_null = _np(fields["visible"], False)
        box = _Boxes(*_fixed(fields["box_xyxy"], 4))
        amodal = _Boxes(*_fixed(fields["amodal_xyxy"], 4))
        offsets = np.concatenate(([0], np.cumsum(lengths)))
        same = np.zeros(len(parent), dtype=bool)
        same[1:] = parent[1:] == parent[:-1]
        return cls(
            rows=rows,
            lengths=lengths,
            offsets=offsets,
            parent=parent,
            pos=np.arange(len(parent)) - offsets[parent],
            fidx=fidx,
            fidx_null=fidx_null,
            t_s=t_s.astype(np.float64),
            t_null=t_null,
            visible=visible,
            vis_null=vis_null,
            box=box,
            amodal=amodal,
            mask=fields["mask_rle"],
            width=rows.width[parent],
            height=rows.height[parent],
            video_row=video_row[parent],
            same=same,
            prev=np.roll(fidx, 1),
        )

    def at(self, j: int) -> str:
        """How messages name frame ``j``."""
        return f"{self.rows.label(int(self.parent[j]))} frames[{self.pos[j]}] (frame_idx {self.fidx[j]})"

    @functools.cached_property
    def bad_t(self) -> np.ndarray:
        """``t_s`` is null, not finite or negative: reported once, then left out of the time checks."""
        return self.t_null | ~np.isfinite(self.t_s) | (self.t_s < 0)


def _check_frame_idx(report: _Report, f: _Frames) -> None:
    report.add_many("frames with a null frame_idx", f.fidx_null, lambda j: f"{f.at(j)}: frame_idx is null")
    report.add_many(
        "frames with a negative frame_idx",
        ~f.fidx_null & (f.fidx < 0),
        lambda j: f"{f.at(j)}: frame_idx is negative",
    )


def _check_frames_within_video(report: _Report, f: _Frames, vids: _Videos) -> None:
    vr = f.video_row
    beyond = (vr >= 0) & ~f.fidx_null & (f.fidx >= vids.n_frames[vr])
    report.add_many(
        "frames beyond the video's n_frames",
        beyond,
        lambda j: f"{f.at(j)}: frame_idx is not below the video's n_frames = {vids.n_frames[vr[j]]}",
    )


def _check_frame_order(report: _Report, f: _Frames) -> None:
    report.add_many("frames listed twice", f.same & (f.fidx == f.prev), lambda j: f"{f.at(j)}: frame listed twice")
    report.add_many(
        "frames out of order",
        f.same & (f.fidx < f.prev),
        lambda j: f"{f.at(j)}: frames not sorted (follows frame_idx {f.prev[j]})",
    )


def _check_times(report: _Report, f: _Frames) -> None:
    """Every ``t_s`` is a time, increasing with ``frame_idx`` within a tubelet."""
    bad_t = f.bad_t
    report.add_many(
        "frames with a missing or negative t_s", bad_t, lambda j: f"{f.at(j)}: t_s = {f.t_s[j]} is not a time"
    )
    prev_t = np.roll(f.t_s, 1)
    report.add_many(
        "frames whose t_s does not increase",
        f.same & ~bad_t & (f.t_s <= prev_t) & (f.fidx > f.prev),
        lambda j: f"{f.at(j)}: t_s = {f.t_s[j]:g} does not increase (previous {prev_t[j]:g})",
    )


def _check_synthetic_times(report: _Report, f: _Frames, vids: _Videos) -> None:
    """Times made from the fps (not the container's) lie within half a frame of ``frame_idx / fps``."""
    vr = f.video_row
    fps = vids.fps[vr]
    synthetic = (vr >= 0) & ~vids.container_time[vr]
    expected = f.fidx / np.where(fps > 0, fps, np.nan)
    off = synthetic & ~f.bad_t & ~f.fidx_null & ~(np.abs(f.t_s - expected) <= 0.5 / fps)
    report.add_many(
        "frames whose t_s is not frame_idx / fps",
        off,
        lambda j: f"{f.at(j)}: t_s = {f.t_s[j]:g} is more than half a frame from frame_idx / fps = {expected[j]:g}",
    )


def _check_times_within_duration(report: _Report, f: _Frames, vids: _Videos) -> None:
    """Container times end within a frame after the video's duration."""
    vr = f.video_row
    limit = vids.duration[vr] + 1.0 / vids.fps[vr]
    late = (vr >= 0) & vids.container_time[vr] & ~f.bad_t & (f.t_s > limit)
    report.add_many(
        "frames after the end of the video",
        late,
        lambda j: f"{f.at(j)}: t_s = {f.t_s[j]:g} is after the video's duration {vids.duration[vr[j]]:g}",
    )


def _check_box_lengths(report: _Report, f: _Frames) -> None:
    report.add_many("frames without a box", f.box.null, lambda j: f"{f.at(j)}: box_xyxy is null")
    report.add_many(
        "boxes without 4 numbers",
        f.box.short,
        lambda j: f"{f.at(j)}: box_xyxy has {f.box.length[j]} numbers, not 4",
    )
    report.add_many(
        "amodal boxes without 4 numbers",
        f.amodal.short,
        lambda j: f"{f.at(j)}: amodal_xyxy has {f.amodal.length[j]} numbers, not 4",
    )


def _check_box(report: _Report, f: _Frames) -> None:
    """Boxes are ordered and inside the frame."""
    box, usable, ordered = f.box.values, f.box.usable, f.box.ordered
    report.add_many(
        "frames with an empty or inverted box",
        usable & ~ordered,
        lambda j: f"{f.at(j)}: box {_fmt_box(box[j])} is not x1 < x2, y1 < y2",
    )
    w, h = f.width, f.height
    inside = (box[:, 0] >= -BOX_TOL) & (box[:, 1] >= -BOX_TOL) & (box[:, 2] <= w + BOX_TOL) & (box[:, 3] <= h + BOX_TOL)
    report.add_many(
        "frames with a box outside the frame",
        usable & ordered & ~inside,
        lambda j: f"{f.at(j)}: box {_fmt_box(box[j])} is outside the {w[j]:g}x{h[j]:g} frame",
    )


def _check_amodal_box(report: _Report, f: _Frames) -> None:
    """Amodal boxes (the whole object, partly hidden or outside the frame) are ordered and contain the box."""
    amodal, box, usable, ordered = f.amodal.values, f.box.values, f.amodal.usable, f.amodal.ordered
    report.add_many(
        "frames with an empty or inverted amodal box",
        usable & ~ordered,
        lambda j: f"{f.at(j)}: amodal box {_fmt_box(amodal[j])} is not x1 < x2, y1 < y2",
    )
    contains = (
        (amodal[:, 0] <= box[:, 0] + BOX_TOL)
        & (amodal[:, 1] <= box[:, 1] + BOX_TOL)
        & (amodal[:, 2] >= box[:, 2] - BOX_TOL)
        & (amodal[:, 3] >= box[:, 3] - BOX_TOL)
    )
    report.add_many(
        "frames whose amodal box does not contain the box",
        usable & ordered & f.box.usable & ~contains,
        lambda j: f"{f.at(j)}: amodal box {_fmt_box(amodal[j])} does not contain box {_fmt_box(box[j])}",
    )


def _check_masks(report: _Report, f: _Frames, mask_budget: int | None, rng: np.random.Generator) -> None:
    """Mask sizes, masks on invisible frames, and (a sample of) the masks decoding."""
    has_mask = ~f.mask.is_null().to_numpy(zero_copy_only=False)
    if not has_mask.any():
        return
    parts = dict(zip([field.name for field in f.mask.type], f.mask.flatten(), strict=True))
    wrong_size = _check_mask_sizes(report, f, has_mask, parts["size"])
    report.add_many(
        "masks on invisible frames",
        has_mask & ~f.vis_null & ~f.visible.astype(bool),
        lambda j: f"{f.at(j)}: invisible frame has a mask",
    )
    # Masks of the wrong size were reported: decoding them would only repeat it.
    candidates = _mask_sample(np.flatnonzero(has_mask & ~wrong_size), mask_budget, rng)
    _check_masks_decode(report, f, parts["counts"], candidates)


def _check_mask_sizes(report: _Report, f: _Frames, has_mask: np.ndarray, sizes: pa.Array) -> np.ndarray:
    """Reports masks whose size is not the frame's ``[height, width]``, and returns them."""
    size, size_null, _ = _fixed(sizes, 2)
    h, w = f.height, f.width
    wrong = has_mask & (size_null | (size[:, 0] != h) | (size[:, 1] != w))
    report.add_many(
        "masks whose size is not the frame size",
        wrong,
        lambda j: (
            f"{f.at(j)}: mask size {_fmt_box(size[j])} is not the frame size [{h[j]:g}, {w[j]:g}] (height, width)"
        ),
    )
    return wrong


def _mask_sample(candidates: np.ndarray, budget: int | None, rng: np.random.Generator) -> np.ndarray:
    """At most ``budget`` of the candidate frames (all for None), in frame order."""
    if budget is not None and candidates.size > budget:
        return np.sort(rng.choice(candidates, size=budget, replace=False))
    return candidates


def _check_masks_decode(report: _Report, f: _Frames, counts: pa.Array, sample: np.ndarray) -> None:
    for j in sample.tolist():
        size = (int(f.height[j]), int(f.width[j]))
        rle = {"size": list(size), "counts": counts[j].as_py()}
        if rle["counts"] is None:
            report.add("masks that do not decode", f"{f.at(j)}: mask counts is null")
            continue
        problem = rle_problem(rle, size)
        if problem:
            report.add("masks that do not decode", f"{f.at(j)}: mask does not decode: {problem}")


def _check_summary_columns(report: _Report, batch: pa.RecordBatch, f: _Frames) -> None:
    """The summary columns, derived from frames on write, still match the frames."""
    has = f.lengths > 0
    first = np.where(has, f.offsets[:-1], 0)
    last = np.where(has, f.offsets[1:] - 1, 0)
    n_visible = np.bincount(f.parent, weights=f.visible.astype(np.float64), minlength=batch.num_rows).astype(np.int64)
    _check_summary_column(report, batch, f, "start_frame", f.fidx[first])
    _check_summary_column(report, batch, f, "end_frame", f.fidx[last])
    _check_summary_column(report, batch, f, "n_frames", f.lengths)
    _check_summary_column(report, batch, f, "n_visible", n_visible)


def _check_summary_column(report: _Report, batch: pa.RecordBatch, f: _Frames, name: str, expected: np.ndarray) -> None:
    col = _column(batch, name)
    if col is None:  # optional column
        return
    stored, nulls = _np(col, 0)
    # Tubelets without frames were reported as such: there is nothing to compare.
    mismatch = (f.lengths > 0) & ~nulls & (stored.astype(np.int64) != expected)
    report.add_many(
        f"tubelets whose {name} does not match their frames",
        mismatch,
        lambda i: f"{f.rows.label(i)}: {name} = {stored[i]} but the frames say {expected[i]}",
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
        key = PRIMARY_KEYS.get(name)
        if name == "videos":
            problems += validate_videos(table, max_examples=max_examples)
        elif name == "tubelets":
            problems += validate_tubelets(
                table, videos, check_masks=check_masks, mask_sample=mask_sample, max_examples=max_examples
            )
        elif key:  # None for tables without one (rejects), and unknown tables
            report = _Report(max_examples)
            _check_unique(report, name, table, key)
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
