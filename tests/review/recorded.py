"""Recorded Label Studio exports of reviewed tasks, and the rows they were pushed from.

The files under ``tests/review/data`` were made by ``record_exports.py`` against a real
Label Studio (see its docstring for each scenario's edits); here they are read back
without one. Every call returns fresh objects, so a test may compare its input rows
with what ``apply_review`` returns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from tubelet.review.results import ReviewedTask, latest_annotation, parse_task
from tubelet.review.tasks import DATA_EVENTS, DATA_TUBELETS, VideoRows
from tubelet.schemas.arrow import row_to_record

DATA = Path(__file__).parent / "data"
REVIEWER = "reviewer@example.test"  # the placeholder the recorder wrote for every e-mail
_TABLES = ("tubelets", "entities", "events", "instructions")


@dataclass
class Recorded:
    """One scenario: the exported task, what the recorder edited, and who is who."""

    scenario: str
    video_id: str
    edits: dict[str, Any]
    reviewers: dict[int, str]
    task: dict[str, Any]

    @property
    def annotation(self) -> dict[str, Any]:
        """The annotation a pull applies (the latest one submitted)."""
        annotation = latest_annotation(self.task)
        assert annotation is not None
        return annotation

    def region_of(self, row_id: str) -> str:
        """The Label Studio region id the push gave a tubelet or an event."""
        data = self.task["data"]
        regions = {**data[DATA_TUBELETS], **data[DATA_EVENTS]}
        return next(region for region, row in regions.items() if row == row_id)


@cache
def _text(name: str) -> str:
    return (DATA / name).read_text()


def recorded(scenario: str) -> Recorded:
    """The recorded export of ``scenario`` (``export_<scenario>.json``), which holds one task."""
    record = json.loads(_text(f"export_{scenario}.json"))
    (task,) = record["export"]
    reviewers = {int(user): name for user, name in record["reviewers"].items()}
    return Recorded(record["scenario"], record["video_id"], record["edits"], reviewers, task)


def pushed_rows(video_id: str) -> VideoRows:
    """The rows of ``video_id`` as they were when pushed (``scene``: all; ``mirror30``: its video only)."""
    rows = json.loads(_text("rows.json"))[video_id]
    video = VideoRows(video=row_to_record("videos", rows["video"]))
    for table in _TABLES:
        setattr(video, table, [row_to_record(table, row) for row in rows.get(table, [])])
    return video


def parse(record: Recorded, rows: VideoRows | None = None) -> ReviewedTask:
    """``parse_task`` as ``review pull`` calls it: with the dataset's video and the server's reviewers."""
    v = (rows or pushed_rows(record.video_id)).video
    reviewed = parse_task(
        record.task, width=v.width, height=v.height, fps=v.fps, n_frames=v.n_frames, reviewers=record.reviewers
    )
    assert reviewed is not None
    return reviewed
