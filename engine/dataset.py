"""Dataset: the read side of a tubelet output (a local folder or object storage).

It reads only files named by a committed ledger entry, so it never sees a shard that a
running (or killed) run has not committed, and it never deletes anything. On a local
folder, DuckDB reads the Parquet files itself; on object storage the views scan pyarrow
datasets through fsspec (no DuckDB extension to download).

Files are checked as they are read (``engine.integrity``): a whole-file read compares the
file with the size and sha256 its ledger entry recorded, every read verifies the page
checksums, and a file that fails is a ``CorruptFileError`` naming it. DuckDB views
(``connect``) read the files themselves and check neither: ``tubelet query`` names the
corrupt file when a query fails, ``tubelet validate`` checks every file.

Revisions: a video listed in some entry's ``replaces`` has its rows (every table but
``rejects``) taken only from the last such entry, in ledger order; ``read_table``,
``records``, ``counts`` and the ``connect`` views all apply this. ``Dataset(root,
version=name)`` reads exactly the shards of a named version (see ``tubelet.engine.versions``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    import pyarrow.dataset as pads


from tubelet.engine.integrity import read_columns, read_verified
from tubelet.engine.ledger import (
    LedgerEntry,
    Status,
    item_status,
    read_entries,
    replaced_by,
    row_counts,
)
from tubelet.engine.storage import StorageLocation, as_storage
from tubelet.engine.versions import Version, get_version, version_entries
from tubelet.schemas.arrow import TABLE_SCHEMAS, empty_table, table_to_records
from tubelet.schemas.info import DatasetInfo, info_from_json

INFO_FILE = "meta/info.json"
PLAN_FILE = "meta/plan.json"

#: View that lists every committed item: key, status, shard, run_id.
ITEMS_VIEW = "ledger_items"

#: The one table revisions never filter: rejects are history.
UNFILTERED_TABLES = frozenset({"rejects"})

#: Name of the helper table ``connect`` registers when the ledger holds revisions:
#: ``(tbl, video_id, keep_file)`` = rows of ``video_id`` in view ``tbl`` come from ``keep_file`` only.
REPLACED_TABLE = "_tubelet_replaced"


class Dataset:
    """A tubelet dataset folder, opened read-only."""

    def __init__(self, root: StorageLocation, version: str | None = None) -> None:
        """Open ``root`` (a folder or a URL); with ``version``, read exactly that named
        version's shards (KeyError, naming the known versions, when there is no such version)."""
        self.storage = as_storage(root)
        #: The dataset's location as given: a local path or a URL.
        self.root = self.storage.root
        local = self.storage.local_path()
        if local is not None and not local.is_dir():
            raise FileNotFoundError(f"no dataset at {self.root}")
        #: The named version this reads, or None for the current ledger.
        self.version: Version | None = get_version(self.storage, version) if version is not None else None

    def info(self) -> DatasetInfo:
        """``meta/info.json``, checked: raises SchemaVersionError for a newer major schema."""
        try:
            text = self.storage.read_text(INFO_FILE)
        except FileNotFoundError:
            raise FileNotFoundError(f"no dataset info at {self.storage.url(INFO_FILE)}") from None
        return info_from_json(text, where=self.storage.url(INFO_FILE))

    def ledger(self) -> list[LedgerEntry]:
        """Committed ledger entries, oldest first (those of the version, when one was given)."""
        if self.version is not None:
            return version_entries(self.storage, self.version)
        return read_entries(self.storage)

    def item_status(self) -> dict[str, Status]:
        """``{item key: "done" | "failed"}`` for every committed item."""
        return item_status(self.ledger())

    def planned(self) -> list[str]:
        """Item keys the latest run planned (``meta/plan.json``); empty when there is none."""
        try:
            return list(json.loads(self.storage.read_text(PLAN_FILE)).get("items", []))
        except FileNotFoundError:
            return []

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
                    ids = self.storage.read_table(self.file_of(entry, table), columns=["video_id"]).column("video_id")
                    total += pc.sum(lookup.keep(ids, entry.shard)).as_py() or 0
            counts[table] = total
        return counts

    def file_of(self, entry: LedgerEntry, table: str) -> str:
        """The storage path of ``entry``'s file of ``table`` (KeyError when it has none)."""
        return str(entry.files[table]["path"])

    def entry_table(self, entry: LedgerEntry, table: str, columns: list[str] | None = None) -> pa.Table:
        """The rows ``entry`` committed to ``table`` in the current schema (all of them:
        revisions are not applied). FileNotFoundError names a missing file, CorruptFileError
        a corrupt one (the whole file is checked against its digest unless ``columns`` are
        picked: then only their pages' checksums)."""
        rel = self.file_of(entry, table)
        try:
            if columns is None:
                data = read_verified(self.storage, entry, table)
            else:
                data = read_columns(self.storage, entry, table, columns)
        except FileNotFoundError:
            raise FileNotFoundError(f"shard {entry.shard} names {self.storage.url(rel)}, which is missing") from None
        return data if columns is not None else conform(data, table)

    def files(self, table: str) -> list[str]:
        """Where the committed Parquet files of ``table`` are (local paths or URLs), oldest
        first; FileNotFoundError names one that is missing."""
        _check_table(table)
        out = []
        for entry in self.ledger():
            if table in entry.files:
                rel = self.file_of(entry, table)
                if not self.storage.exists(rel):
                    raise FileNotFoundError(f"shard {entry.shard} names {self.storage.url(rel)}, which is missing")
                out.append(self.storage.url(rel))
        return out

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
            data = self.entry_table(entry, table)
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
        local = self.storage.local_path() is not None
        if owners and local:
            con.register(REPLACED_TABLE, _replaced_mapping(self.storage.url, entries, owners))
        for table in TABLE_SCHEMAS:
            paths = [self.storage.url(self.file_of(e, table)) for e in entries if table in e.files]
            if paths and not local:
                con.register(table, self._arrow_view(table, entries, owners))
            elif paths:
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

    def _arrow_view(self, table: str, entries: list[LedgerEntry], owners: dict[str, str]) -> pads.Dataset:
        """A table's committed files as one pyarrow dataset (for object storage), with the
        rows of replaced videos left out of every file but their last revision's."""
        import pyarrow.dataset as pads  # slow to import (it pulls pandas in): only object-storage reads need it

        schema = TABLE_SCHEMAS[table]
        mine = [e for e in entries if table in e.files]
        if not owners or table in UNFILTERED_TABLES:
            return self.storage.arrow_dataset([self.file_of(e, table) for e in mine], schema=schema)
        parts = []
        for entry in mine:
            part = self.storage.arrow_dataset([self.file_of(entry, table)], schema=schema)
            others = [v for v, shard in owners.items() if shard != entry.shard]
            if others:
                part = part.filter(~pads.field("video_id").isin(others))
            parts.append(part)
        return pads.dataset(parts)


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


def _replaced_mapping(url: Any, entries: list[LedgerEntry], owners: dict[str, str]) -> pa.Table:
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
            keep.append(url(str(info["path"])) if info else None)
    return pa.table(
        {"tbl": tbl, "video_id": videos, "keep_file": keep},
        schema=pa.schema([("tbl", pa.string()), ("video_id", pa.string()), ("keep_file", pa.string())]),
    )


def _check_table(table: str) -> None:
    if table not in TABLE_SCHEMAS:
        raise KeyError(f"unknown table {table!r}; tables: {', '.join(TABLE_SCHEMAS)}")


def conform(data: pa.Table, table: str) -> pa.Table:
    """Reorder columns to the current schema, adding the ones an older file lacks as nulls."""
    schema = TABLE_SCHEMAS[table]
    columns = [data.column(f.name) if f.name in data.column_names else pa.nulls(data.num_rows, f.type) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
