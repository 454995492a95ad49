"""ShardWriter: the only code that writes dataset rows, exactly once.

Layout: ``<out>/data/<table>/<shard>.parquet`` and ``<out>/meta/ledger/<shard>.json``.
Finished tasks are buffered and committed every ``shard_size`` items: each non-empty
table goes to a temporary file, is fsynced and renamed into place, then the ledger
entry is written the same way. The ledger entry is the commit point; on open, the
writer deletes temporary files and data files no entry names (what a killed run left);
the files of entries a revert moved to ``meta/reverted/`` are kept.

:meth:`ShardWriter.add_revision` buffers a *revision* of a video: its full new rows,
committed in an entry whose ``replaces`` names the video, so readers drop the video's
earlier rows (see ``tubelet.engine.ledger``).
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType, TracebackType

import pyarrow as pa
import pyarrow.parquet as pq

from tubelet.engine.ledger import LedgerEntry, Status, item_status, read_entries, read_reverted_entries, write_entry
from tubelet.engine.task import VideoTask
from tubelet.schemas import Reject
from tubelet.schemas.arrow import TABLE_SCHEMAS, records_to_table, table_of
from tubelet.schemas.info import fsync_dir

log = logging.getLogger(__name__)

#: Name of the stage recorded on rejects made when a task's rows do not fit the schema.
WRITE_STAGE = "write"


def utc_now() -> str:
    """Current time, ISO 8601 in UTC (what the ledger and info.json store)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_run_id() -> str:
    """A run id that sorts by start time and is unique across machines: ``20250101T120000Z-1a2b3c``."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


class DatasetLockedError(RuntimeError):
    """Another process is writing the same dataset."""


@dataclass
class _Item:
    key: str
    status: Status
    tables: dict[str, pa.Table]  # non-empty tables only, already in the dataset schema
    replaces: bool = False  # a revision: its rows replace every earlier row of the video


class ShardWriter:
    """Buffers finished items and commits them in atomic shards with a ledger entry.

    Use as a context manager (or call :meth:`close`): leaving commits what is buffered,
    since every buffered task has finished all its stages.
    """

    def __init__(self, root: str | os.PathLike[str], *, shard_size: int = 32, run_id: str | None = None) -> None:
        if shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {shard_size}")
        self.root = Path(root)
        self.shard_size = shard_size
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _lock(self.root)
        try:
            entries = read_entries(self.root)
            reverted = read_reverted_entries(self.root)
            #: Paths (relative to the root) removed on open: orphans of a killed run.
            self.removed: list[str] = _remove_orphans(self.root, entries + reverted)
        except BaseException:
            _unlock(self._lock_fd)
            raise
        #: The greatest shard name committed so far (ledger or reverted); a revision must sort after it.
        self._latest_shard = max((e.shard for e in entries + reverted), default="")
        #: The run id; by default a new one that sorts after every committed shard.
        self.run_id = run_id or _run_id_after(new_run_id(), self._latest_shard)
        for path in self.removed:
            log.warning(
                "removed orphan %s (left by an interrupted run)", path, extra={"event": "orphan_removed", "path": path}
            )
        self._status: dict[str, Status] = item_status(entries)
        self._buffer: list[_Item] = []
        self._buffered: set[str] = set()
        self._seq = 0
        self._closed = False
        #: Items committed by this writer, by status.
        self.committed_counts: dict[str, int] = {"done": 0, "failed": 0}
        #: Ledger entries this writer committed.
        self.entries: list[LedgerEntry] = []

    # -- what is already there -------------------------------------------------------

    @property
    def committed(self) -> Mapping[str, Status]:
        """Every committed item key (from earlier runs and this one) with its status."""
        return MappingProxyType(self._status)

    def is_committed(self, key: str) -> bool:
        return key in self._status

    # -- adding ------------------------------------------------------------------------

    def add(self, task: VideoTask) -> bool:
        """Buffer a finished task; commits a shard when ``shard_size`` items are buffered.

        Returns False (and writes nothing) for a key already committed or buffered.
        """
        key = task.video_id
        if self._seen(key):
            return False
        try:
            tables = _tables(task.records())
        except Exception as error:  # noqa: BLE001 - a row that does not fit the schema fails its video only
            log.warning("video %s: rows do not fit the schema: %s", key, error)
            task.fail(WRITE_STAGE, error)
            tables = _tables(task.records())
        self._push(_Item(key, "failed" if task.failed else "done", tables))
        return True

    def add_rejects(self, key: str, rejects: Iterable[Reject]) -> bool:
        """Buffer an item that failed before any stage (e.g. a bad manifest row) with its rejects."""
        if self._seen(key):
            return False
        self._push(_Item(key, "failed", _tables({"rejects": list(rejects)})))
        return True

    def add_revision(self, video_id: str, records: Iterable[object]) -> None:
        """Buffer a revision of ``video_id``: ``records`` (record dataclasses of any tables)
        are the video's FULL new rows. Once committed, readers take every row of the video,
        in every table but ``rejects``, from this entry only; a table with no record here
        has no rows of the video any more. Unlike :meth:`add`, a video already committed
        is not skipped (that is the point); the entry marks it ``done``.

        Raises ValueError for a record of another video, or for a second revision of the
        same video buffered in this writer; a row that does not fit the schema raises.
        """
        by_table: dict[str, list[object]] = {}
        for record in records:
            owner = getattr(record, "video_id", video_id)
            if owner != video_id:
                raise ValueError(f"revision of {video_id!r} holds a {type(record).__name__} of video {owner!r}")
            by_table.setdefault(table_of(record), []).append(record)
        if video_id in self._buffered:
            raise ValueError(f"video {video_id!r} is already buffered in this writer; flush before revising it again")
        self._push(_Item(video_id, "done", _tables(by_table), replaces=True))

    def _seen(self, key: str) -> bool:
        if key in self._status or key in self._buffered:
            log.warning("item %s already written; not writing it again", key)
            return True
        return False

    def _push(self, item: _Item) -> None:
        self._check_open()
        self._buffer.append(item)
        self._buffered.add(item.key)
        if len(self._buffer) >= self.shard_size:
            self.flush()

    # -- committing --------------------------------------------------------------------

    def flush(self) -> LedgerEntry | None:
        """Commit the buffered items as one shard now; returns its ledger entry (None if empty)."""
        self._check_open()
        if not self._buffer:
            return None
        shard = f"{self.run_id}-{self._seq + 1:05d}"
        if any(item.replaces for item in self._buffer) and shard <= self._latest_shard:
            # Readers resolve revisions in ledger (shard name) order.
            raise ValueError(
                f"revision shard {shard} would not sort after the committed shard {self._latest_shard}; "
                "use a run_id that sorts later (e.g. ShardWriter's default)"
            )
        items, self._buffer = self._buffer, []
        self._seq += 1
        files: dict[str, dict[str, int | str]] = {}
        for table in TABLE_SCHEMAS:
            parts = [item.tables[table] for item in items if table in item.tables]
            if not parts:
                continue
            data = pa.concat_tables(parts)
            rel = f"data/{table}/{shard}.parquet"
            _write_parquet_atomic(self.root / rel, data)
            files[table] = {"path": rel, "rows": data.num_rows}
        entry = LedgerEntry(
            shard=shard,
            run_id=self.run_id,
            committed_at=utc_now(),
            items={item.key: item.status for item in items},
            files=files,
            replaces=[item.key for item in items if item.replaces],
        )
        write_entry(self.root, entry)  # the commit point
        for item in items:
            self._status[item.key] = item.status
            self._buffered.discard(item.key)
            self.committed_counts[item.status] += 1
        self.entries.append(entry)
        self._latest_shard = max(self._latest_shard, shard)
        log.debug(
            "committed shard %s: %d items, %s",
            shard,
            len(items),
            {t: f["rows"] for t, f in files.items()},
            extra={"event": "shard_committed", "shard": shard, "items": len(items)},
        )
        return entry

    def close(self) -> None:
        """Commit what is buffered and release the dataset lock. Safe to call twice."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            _unlock(self._lock_fd)

    def abort(self) -> None:
        """Release the lock without committing the buffer (its items will be redone)."""
        if not self._closed:
            self._buffer.clear()
            self._buffered.clear()
            self._closed = True
            _unlock(self._lock_fd)

    @property
    def buffered(self) -> int:
        """Items waiting for the next commit."""
        return len(self._buffer)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("ShardWriter is closed")

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Buffered tasks have finished every stage, so committing them is right even
        # when the run stops on an error or Ctrl-C; only a failure of the commit itself
        # leaves them for the next run.
        self.close()


def _run_id_after(run_id: str, latest_shard: str) -> str:
    """``run_id``, or (when its shards would not sort after ``latest_shard``, e.g. within
    the same second) a run id derived from ``latest_shard`` that does."""
    if not latest_shard or f"{run_id}-00001" > latest_shard:
        return run_id
    base, _, seq = latest_shard.rpartition("-")
    prefix = base if base and seq.isdigit() else latest_shard
    return f"{prefix}r{secrets.token_hex(3)}"  # "r" sorts after "-": after every shard of that run


def _tables(records: Mapping[str, list[object]]) -> dict[str, pa.Table]:
    return {table: records_to_table(table, rows) for table, rows in records.items() if rows}


def _write_parquet_atomic(path: Path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            pq.write_table(table, f, compression="zstd")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def _remove_orphans(root: Path, entries: list[LedgerEntry]) -> list[str]:
    """Delete temporary files and data files that no ledger entry names."""
    referenced = {str(info["path"]) for entry in entries for info in entry.files.values()}
    removed: list[str] = []
    candidates: list[Path] = []
    data = root / "data"
    if data.is_dir():
        candidates += [p for p in data.glob("*/*") if p.is_file()]
    meta = root / "meta"
    if meta.is_dir():
        candidates += [p for p in meta.rglob(".*.tmp") if p.is_file()]
    for path in sorted(candidates):
        rel = path.relative_to(root).as_posix()
        is_tmp = path.name.startswith(".") and path.name.endswith(".tmp")
        is_orphan = path.suffix == ".parquet" and rel not in referenced
        if is_tmp or is_orphan:
            path.unlink()
            removed.append(rel)
    return removed


def _lock(root: Path) -> int:
    """Take the dataset's write lock (released by the OS if the process dies)."""
    meta = root / "meta"
    meta.mkdir(parents=True, exist_ok=True)
    fd = os.open(meta / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise DatasetLockedError(f"{root} is being written by another run (pid {holder})") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def _unlock(fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
