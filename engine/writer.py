"""ShardWriter: a dataset opened for writing, and the only code that commits to it.

Layout: ``<out>/data/<table>/<shard>.parquet`` and ``<out>/meta/ledger/<name>.json``.
Parts are written where tasks finish — by Ray or process workers (``engine.parts``), or
here, for what the driver writes itself (manifest rejects, revisions, the inline
runner's tasks) — and committed here, one ledger entry each (``Ledger.commit``: a
conditional create, the commit point).

Opening a writer refuses an output that holds files and is no tubelet dataset, takes
the dataset's write lock (``engine.locks``), claims its run id in ``meta/writers/`` and
deletes what a killed run of this dataset left behind: temporary files and data files
that no ledger entry names — only files it can prove tubelet wrote for this dataset
(``engine.ownership``). The files of entries a revert moved to ``meta/reverted/`` are kept.

:meth:`ShardWriter.add_revision` buffers a *revision* of a video: its full new rows,
committed in an entry whose ``replaces`` names the video, so readers drop the video's
earlier rows (see ``engine.ledger``).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime, timezone
from types import MappingProxyType, TracebackType

from tubelet.engine.ledger import (
    MANIFEST_KEY_PREFIX,
    CommitConflictError,
    Ledger,
    LedgerEntry,
    Status,
    read_entries,
    read_reverted_entries,
)
from tubelet.engine.locks import DatasetLockedError, acquire_write_lock
from tubelet.engine.ownership import NotADatasetError, check_output, claim, orphans
from tubelet.engine.ownership import owned_runs as dataset_runs
from tubelet.engine.parts import WRITE_STAGE, PartItem, PartRecord, tables_of, task_item, write_part
from tubelet.engine.storage import Storage, StorageLocation, as_storage
from tubelet.engine.task import VideoTask
from tubelet.schemas import Reject
from tubelet.schemas.arrow import table_of

log = logging.getLogger(__name__)

__all__ = ["WRITE_STAGE", "DatasetLockedError", "NotADatasetError", "ShardWriter", "new_run_id", "utc_now"]


def utc_now() -> str:
    """Current time, ISO 8601 in UTC (what the ledger and info.json store)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_run_id() -> str:
    """A run id that sorts by start time and is unique across machines: ``20250101T120000Z-1a2b3c``."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


class ShardWriter:
    """A dataset opened for writing by one run: commits parts, buffers driver-side items.

    Use as a context manager (or call :meth:`close`): leaving commits what is buffered,
    since every buffered task has finished all its stages.
    """

    def __init__(
        self,
        root: StorageLocation,
        *,
        shard_size: int = 32,
        run_id: str | None = None,
        owned_runs: Collection[str] | None = None,
    ) -> None:
        if shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {shard_size}")
        self.storage: Storage = as_storage(root)
        self.root = self.storage.root
        self.shard_size = shard_size
        self.run_id = run_id or new_run_id()
        check_output(self.storage)  # before the lock: nothing is created in somebody else's folder
        self._lock = acquire_write_lock(self.storage, self.run_id)
        try:
            entries = read_entries(self.storage)
            reverted = read_reverted_entries(self.storage)
            runs = dataset_runs(self.storage, entries + reverted, owned_runs or ())
            claim(self.storage, self.run_id, utc_now())  # before this run writes any file
            #: Paths (relative to the root) removed on open: what a killed run left.
            self.removed: list[str] = orphans(self.storage, entries + reverted, runs)
            for rel in self.removed:
                self.storage.delete(rel)
            self.ledger = Ledger(self.storage, entries=entries)
        except BaseException:
            self._lock.release()
            raise
        for path in self.removed:
            log.warning(
                "removed orphan %s (left by an interrupted run)", path, extra={"event": "orphan_removed", "path": path}
            )
        self._buffer: list[PartItem] = []
        self._buffered: set[str] = set()
        self._parts = 0
        self._closed = False
        #: Items committed by this writer, by status.
        self.committed_counts: dict[str, int] = {"done": 0, "failed": 0}
        #: Of those, manifest rows rejected before any stage (not videos).
        self.committed_manifest_rejects = 0
        #: The last ledger entry this writer committed (earlier ones are in the ledger:
        #: a run of a million videos does not keep them all here).
        self.last_entry: LedgerEntry | None = None

    # -- what is already there -------------------------------------------------------

    @property
    def committed(self) -> Mapping[str, Status]:
        """Every committed item key (from earlier runs and this one) with its status."""
        return MappingProxyType(self.ledger.status)

    def is_committed(self, key: str) -> bool:
        return key in self.ledger.status

    def next_shard(self) -> str:
        """A new shard name of this run: ``<run id>-<n>`` (workers name their parts with it)."""
        self._parts += 1
        return f"{self.run_id}-{self._parts:05d}"

    # -- committing what workers wrote ---------------------------------------------------

    def commit_part(self, record: PartRecord) -> bool:
        """Commit a part a worker wrote. False (nothing committed; its files are left to
        the next run's orphan cleanup) when one of its items is committed already."""
        self._check_open()
        try:
            entry = self.ledger.commit(record.entry(self.run_id, utc_now()), may_overlap=bool(record.replaces))
        except CommitConflictError as conflict:
            log.warning("part %s not committed: %s", record.shard, conflict)
            return False
        for key, status in entry.items.items():
            self.committed_counts[status] += 1
            self.committed_manifest_rejects += key.startswith(MANIFEST_KEY_PREFIX)
        self.last_entry = entry
        log.debug(
            "committed shard %s: %d items, %s",
            entry.shard,
            len(entry.items),
            {t: f["rows"] for t, f in entry.files.items()},
            extra={"event": "shard_committed", "shard": entry.shard, "items": len(entry.items)},
        )
        return True

    # -- adding here (the driver writes these parts itself) ------------------------------

    def add(self, task: VideoTask) -> bool:
        """Buffer a finished task; commits a shard when ``shard_size`` items are buffered.

        Returns False (and writes nothing) for a key already committed or buffered.
        """
        if self._seen(task.video_id):
            return False
        self._push(task_item(task))
        return True

    def add_rejects(self, key: str, rejects: Iterable[Reject]) -> bool:
        """Buffer an item that failed before any stage (e.g. a bad manifest row) with its rejects."""
        if self._seen(key):
            return False
        self._push(PartItem(key, "failed", tables_of({"rejects": list(rejects)})))
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
        self._push(PartItem(video_id, "done", tables_of(by_table), replaces=True))

    def _seen(self, key: str) -> bool:
        if key in self.ledger.status or key in self._buffered:
            log.warning("item %s already written; not writing it again", key)
            return True
        return False

    def _push(self, item: PartItem) -> None:
        self._check_open()
        self._buffer.append(item)
        self._buffered.add(item.key)
        if len(self._buffer) >= self.shard_size:
            self.flush()

    def flush(self) -> LedgerEntry | None:
        """Commit the buffered items as one shard now; returns its ledger entry (None if empty)."""
        self._check_open()
        if not self._buffer:
            return None
        items, self._buffer = self._buffer, []
        record = write_part(self.storage, self.next_shard(), items)
        self._buffered.difference_update(item.key for item in items)
        if not self.commit_part(record):
            raise CommitConflictError([item.key for item in items if item.key in self.ledger.status])
        return self.last_entry

    # -- closing -----------------------------------------------------------------------

    def close(self) -> None:
        """Commit what is buffered and release the dataset lock. Safe to call twice."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            self._lock.release()

    def abort(self) -> None:
        """Release the lock without committing the buffer (its items will be redone)."""
        if not self._closed:
            self._buffer.clear()
            self._buffered.clear()
            self._closed = True
            self._lock.release()

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
