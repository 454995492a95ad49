"""A dataset's videos and their rows, as the review loop reads them.

``push`` builds its tasks from these rows and ``pull`` applies annotations to them, so
both read them here: a task shows, and a pull rewrites, exactly the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tubelet.engine.dataset import Dataset
from tubelet.review.tasks import VideoRows
from tubelet.schemas.arrow import table_to_records


def select_videos(dataset: Dataset, where: str | None) -> list[str]:
    """Ids of the dataset's videos matching ``where`` (all of them when None)."""
    sql = "SELECT video_id FROM videos" + (f" WHERE {where}" if where else "") + " ORDER BY video_id"
    con = dataset.connect()
    try:
        return [r[0] for r in con.execute(sql).fetchall()]
    except Exception as error:  # noqa: BLE001 - duckdb raises several kinds; all mean a bad --where
        raise ValueError(f"--where {where!r}: {error}") from None
    finally:
        con.close()


def load_rows(dataset: Dataset, video_ids: Iterable[str]) -> dict[str, VideoRows]:
    """The rows of each video, from every table a review task shows or a pull rewrites."""
    wanted = list(dict.fromkeys(video_ids))
    rows = {v.video_id: VideoRows(video=v) for v in _records(dataset, "videos", wanted)}
    for table, attr in (
        ("tubelets", "tubelets"),
        ("entities", "entities"),
        ("events", "events"),
        ("instructions", "instructions"),
    ):
        for record in _records(dataset, table, wanted):
            if record.video_id in rows:
                getattr(rows[record.video_id], attr).append(record)
    return rows


def _records(dataset: Dataset, table: str, video_ids: Sequence[str]) -> list[Any]:
    data = dataset.read_table(table)
    data = data.filter(pc.is_in(data.column("video_id"), value_set=pa.array(video_ids, pa.string())))
    return table_to_records(table, data)
