"""Dataset: the read side of a tubelet output folder (used by the CLI and the tests).

It reads only files named by a committed ledger entry, so it never sees a shard that a
running (or killed) run has not committed, and it never deletes anything.
"""

from __future__ import annotations

import json
import os
from typing import Any
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from engine.ledger import LedgerEntry, Status, item_status, read_entries, row_counts
from schemas.arrow import TABLE_SCHEMAS, empty_table, table_to_records
from schemas.info import DatasetInfo, read_info

#: View that lists every committed item: key, status, shard, run_id.
ITEMS_VIEW = "ledger_items"


class Dataset:
    """A tubelet dataset folder, opened read-only."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"no dataset at {self.root}")

    def info(self) -> DatasetInfo:
        """``meta/info.json``, checked: raises SchemaVersionError for a newer major schema."""
        return read_info(self.root / "meta" / "info.json")

    def ledger(self) -> list[LedgerEntry]:
        """Committed ledger entries, oldest first."""
        return read_entries(self.root)

    def item_status(self) -> dict[str, Status]:
        """``{item key: "done" | "failed"}`` for every committed item."""
        return item_status(self.ledger())

    def planned(self) -> list[str]:
        """Item keys the latest run planned (``meta/plan.json``); empty when there is none."""
        path = self.root / "meta" / "plan.json"
        if not path.is_file():
            return []
        return list(json.loads(path.read_text()).get("items", []))

    def pending(self) -> list[str]:
        """Planned item keys not committed yet."""
        status = self.item_status()
        return [key for key in self.planned() if key not in status]

    def counts(self) -> dict[str, int]:
        """Committed rows per table (from the ledger, without reading Parquet)."""
        return row_counts(self.ledger())

    def files(self, table: str) -> list[Path]:
        """The committed Parquet files of ``table``, oldest first."""
        _check_table(table)
        paths = []
        for entry in self.ledger():
            if table in entry.files:
                path = self.root / str(entry.files[table]["path"])
                if not path.is_file():
                    raise FileNotFoundError(f"shard {entry.shard} names {path}, which is missing")
                paths.append(path)
        return paths

    def read_table(self, table: str) -> pa.Table:
        """All committed rows of ``table`` in the current schema (columns added later are null)."""
        parts = [_conform(pq.read_table(p), table) for p in self.files(table)]
        return pa.concat_tables(parts) if parts else empty_table(table)

    def records(self, table: str) -> list[Any]:
        """Every row of ``table`` as its record dataclass (``Tubelet``, ``Instruction``…)."""
        return table_to_records(table, self.read_table(table))

    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with one view per table, plus ``ledger_items``.

        A table with no committed file is an empty view with the table's schema, so
        queries never fail because a pipeline did not produce that table.
        """
        con = duckdb.connect()
        entries = self.ledger()
        for table in TABLE_SCHEMAS:
            paths = [str(self.root / str(e.files[table]["path"])) for e in entries if table in e.files]
            if paths:
                listing = ", ".join(_sql_str(p) for p in paths)
                con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet([{listing}], union_by_name = true)")
            else:
                con.register(table, empty_table(table))
        items = pa.table(
            {
                "key": [k for e in entries for k in e.items],
                "status": [s for e in entries for s in e.items.values()],
                "shard": [e.shard for e in entries for _ in e.items],
                "run_id": [e.run_id for e in entries for _ in e.items],
            },
            schema=pa.schema([("key", pa.string()), ("status", pa.string()), ("shard", pa.string()), ("run_id", pa.string())]),
        )
        con.register(ITEMS_VIEW, items)
        return con


def _check_table(table: str) -> None:
    if table not in TABLE_SCHEMAS:
        raise KeyError(f"unknown table {table!r}; tables: {', '.join(TABLE_SCHEMAS)}")


def _conform(data: pa.Table, table: str) -> pa.Table:
    """Reorder columns to the current schema, adding the ones an older file lacks as nulls."""
    schema = TABLE_SCHEMAS[table]
    columns = [
        data.column(f.name) if f.name in data.column_names else pa.nulls(data.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
