"""Arrow schemas of the dataset tables and conversion to and from record dataclasses.

Free-form dictionaries (``extra``, ``attributes``, ``payload``, ``query``) are stored as JSON
strings so every table keeps a fixed schema that DuckDB can query (``json_extract``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa

from tubelet.schemas.records import (
    Answer,
    BoxAt,
    Entity,
    Event,
    Instruction,
    Message,
    RegionRef,
    Reject,
    Review,
    Tubelet,
    TubeletFrame,
    VideoRecord,
)

# Boxes ([x1, y1, x2, y2]), RLE sizes ([h, w]) and spans ([start_s, end_s]) are plain
# lists, not fixed-size lists: Arrow's Parquet reader/writer cannot round-trip a null
# fixed-size list (apache/arrow#35692, #24425), and amodal_xyxy, mask_rle and span_s
# are nullable. tubelet.schemas.validation checks that boxes have 4 numbers and masks 2 sizes.
_box = pa.list_(pa.float64())
_rle = pa.struct([("size", pa.list_(pa.int32())), ("counts", pa.string())])

FRAME_TYPE = pa.struct(
    [
        ("frame_idx", pa.int32()),
        ("t_s", pa.float64()),
        ("box_xyxy", _box),
        ("mask_rle", _rle),
        ("score", pa.float32()),
        ("visible", pa.bool_()),
        ("amodal_xyxy", _box),
    ]
)

VIDEOS = pa.schema(
    [
        ("video_id", pa.string(), False),
        ("uri", pa.string(), False),
        ("fps", pa.float64(), False),
        ("n_frames", pa.int64(), False),
        ("duration_s", pa.float64(), False),
        ("width", pa.int32(), False),
        ("height", pa.int32(), False),
        ("codec", pa.string()),
        ("fps_source", pa.string()),
        ("source", pa.string()),
        ("split", pa.string()),
        ("licence", pa.string()),
        ("extra", pa.string()),
        ("rotation", pa.int32()),
    ]
)

TUBELETS = pa.schema(
    [
        ("tubelet_id", pa.string(), False),
        ("video_id", pa.string(), False),
        ("category", pa.string()),
        ("source", pa.string()),
        ("track_id", pa.string()),
        ("fps", pa.float64()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("frames", pa.list_(FRAME_TYPE)),
        ("score", pa.float32()),
        # summary statistics, derived from frames on write
        ("start_frame", pa.int32()),
        ("end_frame", pa.int32()),
        ("start_s", pa.float64()),
        ("end_s", pa.float64()),
        ("n_frames", pa.int32()),
        ("n_visible", pa.int32()),
        ("mean_score", pa.float32()),
        ("extra", pa.string()),
    ]
)

ENTITIES = pa.schema(
    [
        ("entity_id", pa.string(), False),
        ("video_id", pa.string(), False),
        ("tubelet_id", pa.string(), False),
        ("category", pa.string()),
        ("referring_expression", pa.string()),
        ("generalized_noun", pa.string()),
        ("attributes", pa.string()),
        ("caption", pa.string()),
        ("model_id", pa.string()),
        ("prompt_version", pa.string()),
    ]
)

EVENTS = pa.schema(
    [
        ("event_id", pa.string(), False),
        ("video_id", pa.string(), False),
        ("tubelet_ids", pa.list_(pa.string())),
        ("start_s", pa.float64()),
        ("end_s", pa.float64()),
        ("start_frame", pa.int32()),
        ("end_frame", pa.int32()),
        ("text", pa.string()),
        ("label", pa.string()),
        ("source", pa.string()),
        ("model_id", pa.string()),
        ("prompt_version", pa.string()),
    ]
)

_box_at = pa.struct([("frame_idx", pa.int32()), ("t_s", pa.float64()), ("box_xyxy", _box)])

INSTRUCTIONS = pa.schema(
    [
        ("instruction_id", pa.string(), False),
        ("video_id", pa.string(), False),
        ("task_type", pa.string()),
        ("messages", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
        (
            "answer",
            pa.struct(
                [
                    ("text", pa.string()),
                    ("span_s", pa.list_(pa.float64())),
                    ("boxes", pa.list_(_box_at)),
                    ("tubelet_ids", pa.list_(pa.string())),
                ]
            ),
        ),
        (
            "regions",
            pa.list_(
                pa.struct(
                    [
                        ("placeholder", pa.string()),
                        ("tubelet_id", pa.string()),
                        ("frame_idx", pa.list_(pa.int32())),
                    ]
                )
            ),
        ),
        ("generator_id", pa.string()),
        ("provenance", pa.list_(pa.string())),
        ("query", pa.string()),
    ]
)

REVIEWS = pa.schema(
    [
        ("review_id", pa.string(), False),
        ("video_id", pa.string(), False),
        ("item_table", pa.string()),
        ("item_id", pa.string()),
        ("verdict", pa.string()),
        ("reviewer", pa.string()),
        ("reviewed_at", pa.string()),
        ("project", pa.string()),
        ("payload", pa.string()),
    ]
)

REJECTS = pa.schema(
    [
        ("item", pa.string(), False),
        ("stage", pa.string(), False),
        ("reason", pa.string(), False),
        ("video_id", pa.string()),
        ("traceback", pa.string()),
    ]
)

#: Every table of a dataset, by name, with its Arrow schema.
TABLE_SCHEMAS: dict[str, pa.Schema] = {
    "videos": VIDEOS,
    "tubelets": TUBELETS,
    "entities": ENTITIES,
    "events": EVENTS,
    "instructions": INSTRUCTIONS,
    "reviews": REVIEWS,
    "rejects": REJECTS,
}

#: Primary-key column of each table (rejects have none: an item may fail twice).
PRIMARY_KEYS: dict[str, str | None] = {
    "videos": "video_id",
    "tubelets": "tubelet_id",
    "entities": "entity_id",
    "events": "event_id",
    "instructions": "instruction_id",
    "reviews": "review_id",
    "rejects": None,
}

_RECORD_TABLE = {
    VideoRecord: "videos",
    Tubelet: "tubelets",
    Entity: "entities",
    Event: "events",
    Instruction: "instructions",
    Review: "reviews",
    Reject: "rejects",
}

_JSON_COLUMNS = {"extra", "attributes", "payload", "query"}


def table_of(record: Any) -> str:
    """Name of the table a record dataclass belongs to."""
    return _RECORD_TABLE[type(record)]


def _tubelet_summary(t: Tubelet) -> dict[str, Any]:
    frames = t.frames
    visible = [f for f in frames if f.visible]
    scores = [f.score for f in visible if f.score is not None]
    return {
        "start_frame": frames[0].frame_idx if frames else None,
        "end_frame": frames[-1].frame_idx if frames else None,
        "start_s": frames[0].t_s if frames else None,
        "end_s": frames[-1].t_s if frames else None,
        "n_frames": len(frames),
        "n_visible": len(visible),
        "mean_score": sum(scores) / len(scores) if scores else None,
    }


def record_to_row(record: Any) -> dict[str, Any]:
    """A record dataclass as a plain dict matching its table's Arrow schema."""
    row = dataclasses.asdict(record)
    for key in _JSON_COLUMNS & row.keys():
        row[key] = json.dumps(row[key], sort_keys=True) if row[key] else None
    if isinstance(record, Tubelet):
        row["frames"] = sorted(row["frames"], key=lambda f: f["frame_idx"])
        record = dataclasses.replace(record, frames=sorted(record.frames, key=lambda f: f.frame_idx))
        row.update(_tubelet_summary(record))
    return row


def records_to_table(table: str, records: Iterable[Any]) -> pa.Table:
    """Build an Arrow table of ``table``'s schema from record dataclasses."""
    rows = [record_to_row(r) for r in records]
    return rows_to_table(table, rows)


def rows_to_table(table: str, rows: Sequence[dict[str, Any]]) -> pa.Table:
    """Build an Arrow table of ``table``'s schema from plain dict rows."""
    schema = TABLE_SCHEMAS[table]
    return pa.Table.from_pylist(list(rows), schema=schema)


def empty_table(table: str) -> pa.Table:
    """A zero-row table with ``table``'s schema (for views over tables not yet written)."""
    return TABLE_SCHEMAS[table].empty_table()


_TABLE_RECORD = {table: cls for cls, table in _RECORD_TABLE.items()}


def row_to_record(table: str, row: dict[str, Any]) -> Any:
    """The record dataclass of one row read back from ``table`` (the inverse of
    :func:`record_to_row`): JSON columns decoded, nested structs rebuilt, derived
    summary columns (a tubelet's ``n_visible``…) dropped."""
    cls = _TABLE_RECORD[table]
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in row.items() if k in names}
    for key in _JSON_COLUMNS & values.keys():
        values[key] = json.loads(values[key]) if values[key] else {}
    if cls is Tubelet:
        values["frames"] = [TubeletFrame(**f) for f in values["frames"] or []]
        values["extra"] = values.get("extra") or {}
    elif cls is Instruction:
        a = values["answer"] or {}
        values["answer"] = Answer(
            text=a.get("text"),
            span_s=a.get("span_s"),
            boxes=[BoxAt(**b) for b in a.get("boxes") or []],
            tubelet_ids=list(a.get("tubelet_ids") or []),
        )
        values["messages"] = [Message(**m) for m in values["messages"] or []]
        values["regions"] = [RegionRef(**r) for r in values.get("regions") or []]
        values["provenance"] = list(values.get("provenance") or [])
    elif cls is Event:
        values["tubelet_ids"] = list(values.get("tubelet_ids") or [])
    return cls(**values)


def table_to_records(table: str, data: pa.Table) -> list[Any]:
    """Every row of an Arrow table of ``table``'s schema as record dataclasses."""
    return [row_to_record(table, row) for row in data.to_pylist()]
