"""Records → Arrow tables → Parquet → back, for every table, and the tubelet summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from tubelet.schemas import (
    TABLE_SCHEMAS,
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
    records_to_table,
    table_of,
)
from tubelet.schemas.arrow import empty_table, record_to_row
from tubelet.schemas.rle import decode_rle, encode_mask


def _mask(h: int, w: int, box: tuple[int, int, int, int]) -> np.ndarray:
    m = np.zeros((h, w), dtype=bool)
    x1, y1, x2, y2 = box
    m[y1:y2, x1:x2] = True
    return m


def _tubelet(tid: str = "v1:davis:1", frames: list[TubeletFrame] | None = None) -> Tubelet:
    if frames is None:
        frames = [
            # deliberately out of order: the table sorts them
            TubeletFrame(2, 2 / 24, [4.0, 3.0, 9.0, 7.0], encode_mask(_mask(12, 16, (4, 3, 9, 7))), 0.75),
            TubeletFrame(0, 0.0, [1.0, 1.0, 5.0, 6.0], encode_mask(_mask(12, 16, (1, 1, 5, 6))), 0.5),
            TubeletFrame(1, 1 / 24, [1.0, 1.0, 5.0, 6.0], None, 0.25, visible=False),
            TubeletFrame(3, 3 / 24, [0.0, 0.0, 6.0, 12.0], None, None, amodal_xyxy=[-4.0, 0.0, 6.0, 15.0]),
        ]
    return Tubelet(tid, "v1", "dog", "import:davis", "1", 24.0, 16, 12, frames, score=0.5, extra={"k": [1, 2]})


def _records() -> dict[str, list[Any]]:
    return {
        "videos": [
            VideoRecord(
                "v1", "/data/v1", 24.0, 50, 50 / 24, 16, 12, "jpeg", "manifest", "davis", "val", "research", {"seq": 1}
            ),
            VideoRecord("v2", "/data/v2.mp4", 29.97, 300, 10.01, 1280, 720, "h264"),
        ],
        "tubelets": [_tubelet(), _tubelet("v1:davis:2", frames=[])],
        "entities": [
            Entity(
                "e1",
                "v1",
                "v1:davis:1",
                "dog",
                "the brown dog on the left",
                "dog",
                {"colour": "brown"},
                "A dog.",
                "vlm-x",
                "p1",
            ),
            Entity("e2", "v1", "v1:davis:2", "cat"),
        ],
        "events": [Event("ev1", "v1", ["v1:davis:1"], 0.0, 0.125, 0, 3, "the dog runs", "run", "vlm", "vlm-x")],
        "instructions": [
            Instruction(
                "i1",
                "v1",
                "stg",
                [Message("user", "When does <region0> run?"), Message("assistant", "From 0.0 s to 0.125 s.")],
                Answer("0.0-0.125", [0.0, 0.125], [BoxAt(0, 0.0, [1.0, 1.0, 5.0, 6.0])], ["v1:davis:1"]),
                [RegionRef("<region0>", "v1:davis:1", [0, 2])],
                "gen-1",
                ["ev1", "v1:davis:1"],
            ),
            Instruction("i2", "v1", "caption", [], Answer()),
        ],
        "reviews": [
            Review(
                "r1",
                "v1",
                "tubelets",
                "v1:davis:1",
                "correct",
                "ann",
                "2026-01-01T00:00:00Z",
                "p",
                {"box": [1, 2, 3, 4]},
            )
        ],
        "rejects": [
            Reject("/data/bad.mp4", "probe_video", "truncated: ...", None, "Traceback ..."),
            Reject("x", "manifest", "bad row"),
        ],
    }


def test_every_table_is_covered() -> None:
    assert set(_records()) == set(TABLE_SCHEMAS)


@pytest.mark.parametrize("table", sorted(TABLE_SCHEMAS))
def test_round_trip_through_parquet(table: str, tmp_path: Path) -> None:
    # The records hold null amodal boxes, masks and spans: with fixed-size list types
    # Arrow's Parquet writer refuses (or its reader fails on) exactly these.
    records = _records()[table]
    assert all(table_of(r) == table for r in records)
    arrow = records_to_table(table, records)
    assert arrow.schema == TABLE_SCHEMAS[table]
    path = tmp_path / f"{table}.parquet"
    pq.write_table(arrow, path)
    back = pq.read_table(path)
    assert back.schema == TABLE_SCHEMAS[table]
    assert back.to_pylist() == [record_to_row(r) for r in records]
    assert empty_table(table).schema == TABLE_SCHEMAS[table]


def test_tubelet_row_sorts_frames_and_summarises() -> None:
    row = records_to_table("tubelets", [_tubelet()]).to_pylist()[0]
    assert [f["frame_idx"] for f in row["frames"]] == [0, 1, 2, 3]
    assert row["start_frame"] == 0 and row["end_frame"] == 3
    assert row["start_s"] == 0.0 and row["end_s"] == pytest.approx(3 / 24)
    assert row["n_frames"] == 4 and row["n_visible"] == 3
    assert row["mean_score"] == pytest.approx((0.5 + 0.75) / 2)  # visible frames only
    assert json.loads(row["extra"]) == {"k": [1, 2]}
    # masks survive exactly; the amodal box only where it was given
    assert np.array_equal(decode_rle(row["frames"][2]["mask_rle"]), _mask(12, 16, (4, 3, 9, 7)))
    assert row["frames"][1]["mask_rle"] is None and row["frames"][1]["visible"] is False
    assert row["frames"][3]["amodal_xyxy"] == [-4.0, 0.0, 6.0, 15.0]
    assert row["frames"][0]["amodal_xyxy"] is None


def test_empty_tubelet_summary_is_null() -> None:
    row = records_to_table("tubelets", [_tubelet(frames=[])]).to_pylist()[0]
    assert row["n_frames"] == 0 and row["n_visible"] == 0
    assert row["start_frame"] is None and row["end_s"] is None and row["mean_score"] is None


def test_duckdb_reads_frames_and_json(tmp_path: Path) -> None:
    pq.write_table(records_to_table("tubelets", [_tubelet()]), tmp_path / "t.parquet")
    con = duckdb.connect()
    n_visible, k1, first_box = con.execute(
        "SELECT n_visible, json_extract(extra, '$.k[1]')::INT, frames[1].box_xyxy FROM read_parquet(?)",
        [str(tmp_path / "t.parquet")],
    ).fetchone()
    assert (n_visible, k1, first_box) == (3, 2, [1.0, 1.0, 5.0, 6.0])
    (hidden,) = con.execute(
        "SELECT count(*) FROM (SELECT unnest(frames) AS f FROM read_parquet(?)) WHERE NOT f.visible",
        [str(tmp_path / "t.parquet")],
    ).fetchone()
    assert hidden == 1
