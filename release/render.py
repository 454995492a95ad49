"""The instruction renderings of a shard: one item per kept instruction row and format
(``tubelet.release.formats``: one module per consumer), with what could not be written as its
consumer loads it counted, never dropped silently."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from tubelet.release.filters import column_rows
from tubelet.release.formats import DEFAULT_FORMATS, FORMATS, NotLoadableError, RenderInput, RenderOptions, render_item
from tubelet.release.formats.common import BOX_MASKS, VideoInfo
from tubelet.schemas.arrow import row_to_record
from tubelet.schemas.records import Instruction, Tubelet

__all__ = ["DEFAULT_FORMATS", "FORMATS", "RenderOptions", "ShardRenderer"]

log = logging.getLogger(__name__)


class ShardRenderer:
    """Renders the instruction rows of one shard. The formats of a row share its record, and the
    rows share the tubelet records of their regions, so each is built once.

    ``notes`` counts, per ``(format, note)``, the regions given box-shaped masks and the rows left
    out by reason (``skipped:<reason>``); each kind is logged once per video and format.
    ``media_root`` is the folder relative video paths are under (the release), to tell a frame
    folder from a video file."""

    def __init__(
        self,
        instruction_rows: Sequence[Mapping[str, Any]],
        videos: pa.Table,
        tubelets: pa.Table,
        options: RenderOptions | None = None,
        notes: Counter[tuple[str, str]] | None = None,
        media_root: str | Path | None = None,
    ) -> None:
        self.options = options or RenderOptions()
        self.notes: Counter[tuple[str, str]] = Counter() if notes is None else notes
        self.media_root = Path(media_root) if media_root is not None else None
        self.video_rows = {
            vid: (w, h, d) for vid, w, h, d in column_rows(videos, "video_id", "width", "height", "duration_s")
        }
        self.tubelet_rows = _region_tubelets(instruction_rows, tubelets)
        self.tubelet_records: dict[str, Tubelet] = {}
        self.videos: dict[tuple[str, str], VideoInfo] = {}
        self.warned: set[tuple[str, str, str]] = set()  # (format, note, video_id)
        self._last: tuple[Mapping[str, Any], Instruction] | None = None  # (row, its record)

    def render(self, fmt: str, row: Mapping[str, Any], video_path: str) -> dict[str, Any]:
        """One instruction row in format ``fmt``; NotLoadableError (a ValueError, counted in ``notes``) where
        its consumer could not load it as written."""
        record = self._record(row)
        try:
            item = RenderInput(
                inst=record,
                video=self._video(record.video_id, video_path),
                tubelets=self._region_records(record),
                options=self.options,
                note=lambda note: self._note(fmt, note, record.video_id),
            )
            return render_item(fmt, item)
        except NotLoadableError as skip:
            self._note(fmt, f"skipped:{skip.reason}", record.video_id, str(skip))
            raise

    def _note(self, fmt: str, note: str, video_id: str, detail: str = "") -> None:
        self.notes[(fmt, note)] += 1
        if (fmt, note, video_id) in self.warned:
            return
        self.warned.add((fmt, note, video_id))
        if note == BOX_MASKS:
            log.warning("%s, video %s: tubelets without masks; their regions get box-shaped masks", fmt, video_id)
        else:
            log.warning("%s, video %s: instruction left out (%s)", fmt, video_id, detail)

    def _video(self, video_id: str, path: str) -> VideoInfo:
        key = (video_id, path)
        if key not in self.videos:
            if video_id not in self.video_rows:
                raise NotLoadableError("video_missing", f"video {video_id} is not in the shard's videos")
            width, height, duration = self.video_rows[video_id]
            local = self.media_root / path if self.media_root is not None else Path(path)
            self.videos[key] = VideoInfo(path, int(width), int(height), float(duration or 0.0), local.is_dir())
        return self.videos[key]

    def _record(self, row: Mapping[str, Any]) -> Instruction:
        """The row as an ``Instruction`` record, built once for all its formats."""
        # the previous row is held in _last, so its identity cannot be reused by another row
        if self._last is None or self._last[0] is not row:
            self._last = (row, row_to_record("instructions", dict(row)))
        return self._last[1]

    def _region_records(self, record: Instruction) -> dict[str, Tubelet]:
        """The tubelet records built so far, with those of this record's regions added."""
        for region in record.regions:
            tid = region.tubelet_id
            if tid not in self.tubelet_records and tid in self.tubelet_rows:
                self.tubelet_records[tid] = row_to_record("tubelets", self.tubelet_rows[tid])
        return self.tubelet_records


def _region_tubelets(instruction_rows: Sequence[Mapping[str, Any]], tubelets: pa.Table) -> dict[str, dict[str, Any]]:
    """The rows of the tubelets that some instruction's regions name, by id (only those become Python rows)."""
    needed = {r["tubelet_id"] for row in instruction_rows for r in row["regions"] or []}
    index = {tid: i for i, tid in enumerate(tubelets.column("tubelet_id").to_pylist()) if tid in needed}
    if not index:
        return {}
    taken = tubelets.take(pa.array(sorted(index.values()), pa.int64())).to_pylist()
    return {row["tubelet_id"]: row for row in taken}
