"""Dataset: the read side of a tubelet output folder (used by the CLI and the tests).

It reads only files named by a committed ledger entry, so it never sees a shard that a
running (or killed) run has not committed, and it never deletes anything.

Revisions: a video listed in some entry's ``replaces`` has its rows (every table but
``rejects``) taken only from the last such entry, in ledger order; ``read_table``,
``records``, ``counts`` and the ``connect`` views all apply this. ``Dataset(root,
version=name)`` reads exactly the shards of a named version (see ``tubelet.engine.versions``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tubelet.engine.ledger import (
    LedgerEntry,
    Status,
    item_status,
    read_entries,
    replaced_by,
    row_counts,
)
from tubelet.engine.versions import Version, get_version, version_entries
from tubelet.schemas.arrow import TABLE_SCHEMAS, empty_table, table_to_records
from tubelet.schemas.info import DatasetInfo, read_info

#: View that lists every committed item: key, status, shard, run_id.
ITEMS_VIEW = "ledger_items"

#: The one table revisions never filter: rejects are history.
UNFILTERED_TABLES = frozenset({"rejects"})

#: Name of the helper table ``connect`` registers when the ledger holds revisions:
#: ``(tbl, video_id, keep_file)`` = rows of ``video_id`` in view ``tbl`` come from ``keep_file`` only.
REPLACED_TABLE = "_tubelet_replaced"


class Dataset:
    """A tubelet dataset folder, opened read-only."""

    def __init__(self, root: str | os.PathLike[str], version: str | None = None) -> None:
        """Open ``root``; with ``version``, read exactly that named version's shards
        (KeyError, naming the known versions, when there is no such version)."""
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"no dataset at {self.root}")
        #: The named version this reads, or None for the current ledger.
        self.version: Version | None = get_version(self.root, version) if version is not None else None

    def info(self) -> DatasetInfo:
        """``meta/info.json``, checked: raises SchemaVersionError for a newer major schema."""
        return read_info(self.root / "meta" / "info.json")

    def ledger(self) -> list[LedgerEntry]:
        """Committed ledger entries, oldest first (those of the version, when one was given)."""
        if self.version is not None:
            return version_entries(self.root, self.version)
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
        """Rows per table as readers see them.

        From the ledger alone when no entry is a revision; otherwise the tables a revision
        filters are counted from their ``video_id`` column (replaced rows left out).
        """
        entries = self.ledger()
        counts = row_counts(entries)
        owners = replaced_by(entries)
        if not owners:
            return counts
        lookup = RevisionFilter(owners)
        for table in counts:
            if table in UNFILTERED_TABLES:
                continue
            total = 0
            for entry in entries:
                if table in entry.files:
                    ids = pq.read_table(self._path(entry, table), columns=["video_id"]).column("video_id")
                    total += pc.sum(lookup.keep(ids, entry.shard)).as_py() or 0
            counts[table] = total
        return counts

    def _path(self, entry: LedgerEntry, table: str) -> Path:
        path = self.root / str(entry.files[table]["path"])
        if not path.is_file():
            raise FileNotFoundError(f"shard {entry.shard} names {path}, which is missing")
        return path

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
        """All committed rows of ``table`` in the current schema (columns added later are null),
        less the rows of replaced videos that a later revision supersedes."""
        _check_table(table)
        entries = self.ledger()
        owners = replaced_by(entries) if table not in UNFILTERED_TABLES else {}
        lookup = RevisionFilter(owners) if owners else None
        parts = []
        for entry in entries:
            if table not in entry.files:
                continue
            data = _conform(pq.read_table(self._path(entry, table)), table)
            if lookup is not None:
                data = data.filter(lookup.keep(data.column("video_id"), entry.shard))
            parts.append(data)
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
        owners = replaced_by(entries)
        if owners:
            con.register(REPLACED_TABLE, _replaced_mapping(self.root, entries, owners))
        for table in TABLE_SCHEMAS:
            paths = [str(self.root / str(e.files[table]["path"])) for e in entries if table in e.files]
            if paths:
                listing = ", ".join(_sql_str(p) for p in paths)
                if owners and table not in UNFILTERED_TABLES:
                    # Rows of a replaced video come only from its last revision's file.
                    con.execute(
                        f"CREATE VIEW {table} AS SELECT * EXCLUDE (filename) "
                        f"FROM read_parquet([{listing}], union_by_name = true, filename = true) AS t "
                        f"WHERE NOT EXISTS (SELECT 1 FROM {REPLACED_TABLE} AS r WHERE r.tbl = {_sql_str(table)} "
                        "AND r.video_id = t.video_id AND r.keep_file IS DISTINCT FROM t.filename)"
                    )
                else:
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
            schema=pa.schema(
                [("key", pa.string()), ("status", pa.string()), ("shard", pa.string()), ("run_id", pa.string())]
            ),
        )
        con.register(ITEMS_VIEW, items)
        return con


class RevisionFilter:
    """Which file a replaced video's rows may come from: vectorized over a video_id column."""

    def __init__(self, owners: dict[str, str]) -> None:
        self.videos = pa.array(list(owners), pa.string())
        self.shards = pa.array(list(owners.values()), pa.string())

    def keep(self, video_ids: pa.ChunkedArray | pa.Array, shard: str) -> pa.ChunkedArray | pa.Array:
        """True for the rows of the entry ``shard`` a reader keeps: a row of a video no
        revision replaces, or of a video whose last revision is this entry."""
        index = pc.index_in(video_ids, value_set=self.videos)
        owner = pc.take(self.shards, index)
        return pc.or_kleene(pc.is_null(owner), pc.equal(owner, shard))


def _replaced_mapping(root: Path, entries: list[LedgerEntry], owners: dict[str, str]) -> pa.Table:
    """``(tbl, video_id, keep_file)`` for every filtered table and replaced video; keep_file
    is the owning revision's file of that table (null: the revision has no rows there)."""
    by_shard = {e.shard: e for e in entries}
    tbl, videos, keep = [], [], []
    for table in TABLE_SCHEMAS:
        if table in UNFILTERED_TABLES:
            continue
        for video_id, shard in owners.items():
            info = by_shard[shard].files.get(table)
            tbl.append(table)
            videos.append(video_id)
            keep.append(str(root / str(info["path"])) if info else None)
    return pa.table(
        {"tbl": tbl, "video_id": videos, "keep_file": keep},
        schema=pa.schema([("tbl", pa.string()), ("video_id", pa.string()), ("keep_file", pa.string())]),
    )


def _check_table(table: str) -> None:
    if table not in TABLE_SCHEMAS:
        raise KeyError(f"unknown table {table!r}; tables: {', '.join(TABLE_SCHEMAS)}")


def _conform(data: pa.Table, table: str) -> pa.Table:
    """Reorder columns to the current schema, adding the ones an older file lacks as nulls."""
    schema = TABLE_SCHEMAS[table]
    columns = [data.column(f.name) if f.name in data.column_names else pa.nulls(data.num_rows, f.type) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
