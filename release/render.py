"""The instruction renderings of a release: strefer (VideoRefer JSON), unistg (JSON lines) and
llava (conversations JSON), one item per kept instruction row."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from tubelet.annotators.instructions.renderers import to_unistg, to_videorefer
from tubelet.release.filters import column_rows
from tubelet.schemas.arrow import row_to_record
from tubelet.schemas.records import Instruction, Tubelet

#: Rendering formats of the instruction files, with their file suffix.
FORMATS: dict[str, str] = {"strefer": ".json", "unistg": ".jsonl", "llava": ".json"}
#: LLaVA's speaker of each message role it carries (other roles are left out).
_LLAVA_SPEAKERS = {"user": "human", "assistant": "gpt"}


def to_llava(row: Mapping[str, Any], video_path: str, tubelets: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """LLaVA-style conversations: ``<video>`` opens the first human turn; ``<regionN>``
    placeholders become the region's pixel box on its first frame (LLaVA has no region input)."""
    regions = {r["placeholder"]: r for r in row["regions"] or []}
    conversations = [
        {"from": _LLAVA_SPEAKERS[m["role"]], "value": _fill_regions(m["content"], regions, tubelets)}
        for m in row["messages"] or []
        if m["role"] in _LLAVA_SPEAKERS
    ]
    if conversations and conversations[0]["from"] == "human":
        conversations[0]["value"] = "<video>\n" + conversations[0]["value"]
    if not conversations or conversations[-1]["from"] != "gpt":  # a conversation ends on the answer
        conversations.append({"from": "gpt", "value": (row["answer"] or {}).get("text") or ""})
    return {
        "id": row["instruction_id"],
        "video": video_path,
        "task_type": row["task_type"],
        "conversations": conversations,
    }


def _fill_regions(
    text: str, regions: Mapping[str, Mapping[str, Any]], tubelets: Mapping[str, Mapping[str, Any]]
) -> str:
    """``text`` with each ``<regionN>`` placeholder it holds written out as the region's box."""
    for placeholder, ref in regions.items():
        if placeholder in text:
            text = text.replace(placeholder, _region_text(ref, tubelets.get(ref["tubelet_id"])))
    return text


def _region_text(ref: Mapping[str, Any], tubelet: Mapping[str, Any] | None) -> str:
    """A ``<regionN>`` placeholder as text for LLaVA: its box on its first listed frame."""
    if tubelet is None:
        return "the object"
    frames = {f["frame_idx"]: f for f in tubelet["frames"] or []}
    for idx in ref.get("frame_idx") or []:
        f = frames.get(idx)
        if f is not None:
            box = ", ".join(_num(v) for v in f["box_xyxy"])
            return f"the object at [{box}] at {_num(f['t_s'])}s"
    return "the object"


def _num(v: float) -> str:
    text = f"{v:.2f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


class ShardRenderer:
    """Renders the instruction rows of one shard. The formats of a row share its record, and the
    rows share the tubelet records of their regions, so each is built once."""

    def __init__(self, instruction_rows: Sequence[Mapping[str, Any]], videos: pa.Table, tubelets: pa.Table) -> None:
        self.dims = {vid: (w, h) for vid, w, h in column_rows(videos, "video_id", "width", "height")}
        self.tubelet_rows = _region_tubelets(instruction_rows, tubelets)
        self.tubelet_records: dict[str, Tubelet] = {}
        self._last: tuple[dict[str, Any], Instruction] | None = None  # (row, its record)

    def render(self, fmt: str, row: dict[str, Any], video_path: str) -> dict[str, Any]:
        """One instruction row in format ``fmt``; KeyError or ValueError where the row cannot be."""
        if fmt == "llava":
            return to_llava(row, video_path, self.tubelet_rows)
        record = self._record(row)
        if fmt == "unistg":
            width, height = self.dims[row["video_id"]]
            item = to_unistg(record, width, height)
            item["video"] = video_path
            return item
        return to_videorefer(record, self._region_records(record), video_path=video_path)

    def _record(self, row: dict[str, Any]) -> Instruction:
        """The row as an ``Instruction`` record, built once for all its formats."""
        # the previous row is held in _last, so its identity cannot be reused by another row
        if self._last is None or self._last[0] is not row:
            self._last = (row, row_to_record("instructions", row))
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
