"""Rows read back from the tables rebuild the records that wrote them."""

from __future__ import annotations

import numpy as np

from tubelet.schemas.arrow import records_to_table, table_to_records
from tubelet.schemas.records import (
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
from tubelet.schemas.rle import encode_mask


def test_every_language_table_round_trips() -> None:
    mask = np.zeros((36, 64), bool)
    mask[4:10, 5:20] = True
    frames = [
        TubeletFrame(0, 0.0, [5, 4, 20, 10], encode_mask(mask), 0.5, True),
        TubeletFrame(1, 0.04, [6, 4, 21, 10], None, 0.25, False, [6, 4, 70, 10]),
    ]
    records = {
        "videos": [VideoRecord("v", "v.mp4", 25.0, 2, 0.08, 64, 36, "h264", extra={"a": 1})],
        "tubelets": [Tubelet("v:track:1", "v", "dog", "lite", "1", 25.0, 64, 36, frames, 0.5, {"k": [1, 2]})],
        "entities": [
            Entity(
                "v:track:1:entity",
                "v",
                "v:track:1",
                "dog",
                "the red dog",
                "animal",
                {"colour": "red", "position": {"horizontal": "left"}},
                "A red dog.",
                "lite",
                "entity_lite@1",
            )
        ],
        "events": [Event("v:event:0:0", "v", ["v:track:1"], 0.0, 0.04, 0, 1, "moves right", "move_right", "lite")],
        "instructions": [
            Instruction(
                "v:spatial_grounding:0123456789ab",
                "v",
                "spatial_grounding",
                [Message("user", "Where is <region0> at 0s?"), Message("assistant", "At 0s: [5, 4, 20, 10].")],
                Answer(None, [0.0, 0.04], [BoxAt(0, 0.0, [5.0, 4.0, 20.0, 10.0])], ["v:track:1"]),
                [RegionRef("<region0>", "v:track:1", [0])],
                "tubelet-templates/v1",
                ["v:track:1"],
                {"t_s": 0.0},
            )
        ],
    }
    for table, rows in records.items():
        assert table_to_records(table, records_to_table(table, rows)) == rows, table
