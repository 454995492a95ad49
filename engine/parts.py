"""Writing a part: the Parquet files of a group of finished tasks, where the tasks finished.

A worker (or the driver, for what it writes itself) turns each task into Arrow tables,
writes one file per non-empty table, ``data/<table>/<shard>.parquet``, and returns a
``PartRecord``: the shard name, each item's status and the files with their row counts,
sizes and sha256 digests (what ``tubelet validate`` checks the files against).
That record is all the driver needs to commit the part (``ShardWriter.commit_part``):
the rows themselves, masks included, never travel to the driver.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from tubelet.engine.ledger import LedgerEntry, Status
from tubelet.engine.storage import Storage
from tubelet.engine.task import VideoTask
from tubelet.schemas.arrow import TABLE_SCHEMAS, records_to_table

log = logging.getLogger(__name__)

#: Name of the stage recorded on rejects made when a task's rows do not fit the schema.
WRITE_STAGE = "write"
#: Parquet options of every data file: a CRC32 in every page header, so a reader that
#: verifies them (all of tubelet's pyarrow reads do) notices a flipped byte in a page.
PARQUET_OPTIONS = {"compression": "zstd", "write_page_checksum": True}


@dataclass
class PartItem:
    """One item of a part: its key, status and rows (non-empty tables, in the dataset schema)."""

    key: str
    status: Status
    tables: dict[str, pa.Table]
    replaces: bool = False  # a revision: its rows replace every earlier row of the video


@dataclass(frozen=True)
class PartRecord:
    """A written part, as the driver commits it (a few hundred bytes, whatever the rows weigh)."""

    shard: str
    items: dict[str, Status]  # in the order they were written
    files: dict[str, dict[str, int | str]]  # table -> {"path", "rows", "bytes", "sha256"}
    replaces: list[str] = field(default_factory=list)

    def entry(self, run_id: str, committed_at: str) -> LedgerEntry:
        """The ledger entry that commits this part."""
        return LedgerEntry(
            shard=self.shard,
            run_id=run_id,
            committed_at=committed_at,
            items=dict(self.items),
            files={table: dict(info) for table, info in self.files.items()},
            replaces=list(self.replaces),
        )


def tables_of(records: Mapping[str, Sequence[object]]) -> dict[str, pa.Table]:
    """Record dataclasses by table -> Arrow tables (empty tables left out); raises when a
    row does not fit its table's schema."""
    return {table: records_to_table(table, list(rows)) for table, rows in records.items() if rows}


def task_item(task: VideoTask) -> PartItem:
    """The rows ``task`` contributes, as a part item. A task whose rows do not fit the
    schema fails (a reject of stage ``write``) rather than failing its neighbours."""
    try:
        tables = tables_of(task.records())
    except Exception as error:  # noqa: BLE001 - a row that does not fit the schema fails its video only
        log.warning("video %s: rows do not fit the schema: %s", task.video_id, error)
        task.fail(WRITE_STAGE, error)
        tables = tables_of(task.records())
    return PartItem(task.video_id, "failed" if task.failed else "done", tables)


def write_part(storage: Storage, shard: str, items: Sequence[PartItem]) -> PartRecord:
    """Write ``items`` as the files of part ``shard`` (one per non-empty table)."""
    files: dict[str, dict[str, int | str]] = {}
    for table in TABLE_SCHEMAS:
        pieces = [item.tables[table] for item in items if table in item.tables]
        if not pieces:
            continue
        data = pa.concat_tables(pieces)
        path = part_path(table, shard)
        written = storage.write_parquet(path, data, **PARQUET_OPTIONS)
        files[table] = {"path": path, "rows": data.num_rows, "bytes": written.size, "sha256": written.sha256}
    return PartRecord(
        shard=shard,
        items={item.key: item.status for item in items},
        files=files,
        replaces=[item.key for item in items if item.replaces],
    )


def write_tasks(storage: Storage, shard: str, tasks: Sequence[VideoTask]) -> PartRecord:
    """Write finished tasks as part ``shard`` (what a worker runs after the last stage)."""
    return write_part(storage, shard, [task_item(task) for task in tasks])


def part_path(table: str, shard: str) -> str:
    """Where part ``shard`` keeps its rows of ``table``."""
    return f"data/{table}/{shard}.parquet"
