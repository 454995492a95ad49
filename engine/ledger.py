"""The run ledger: one JSON file per committed shard under ``<out>/meta/ledger/``.

A ledger entry names the items (video ids, or ``manifest:<file:line>`` for rejected
manifest rows) a shard holds with their status, and the data files it wrote with their
row counts. Creating the entry is the commit point of a shard: a data file no entry
names does not belong to the dataset.

**The commit is one new object, created only if absent.** Entries are named by a commit
sequence, ``c000000000001.json``, ``c000000000002.json``, …; a writer commits by creating
the next name with a conditional put (``Storage.create``: a hard link on a local folder,
``If-None-Match: *`` on S3). If the name exists, someone else committed first: the writer
reads the new entries, refuses to commit an item one of them holds, and tries the next
name. So two writers can never both commit the same video, whether or not the storage
has locks or an atomic rename (Delta Lake and Iceberg commit the same way). Entries of
datasets written before the sequence (named after their shard, ``<run_id>-00001.json``)
sort before every sequenced name and are read as they are.

Entries are checked when read, and one that does not hold is refused with an error naming
its file and field: every item's status is ``done`` or ``failed``, and every file it names
is ``data/<table>/<name>.parquet`` inside the dataset — no absolute path, no ``..``, no
link leading out of the dataset's folder — with a row count (and, since entries record
them, the file's size and sha256: see ``engine.integrity``).

An entry may also be a *revision*: its ``replaces`` lists video ids whose rows (in every
table but ``rejects``) it replaces; readers take those videos' rows only from the last
entry, in ledger order, that replaces them. Entries moved out of the ledger by
``tubelet.engine.versions.revert`` live in ``<out>/meta/reverted/`` (kept, not part of the data).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Literal

from tubelet.engine.storage import Storage, StorageLocation, as_storage

#: Newest ledger entry format this code reads (bumped if the JSON layout ever changes).
#: 1: the original layout; 2: adds ``replaces`` (only entries with a ``replaces`` are
#: written as format 2, so older readers refuse revisions rather than misread them).
LEDGER_FORMAT = 2

#: Format of an entry without ``replaces``.
PLAIN_LEDGER_FORMAT = 1

#: Format of an entry with a non-empty ``replaces``.
REVISION_LEDGER_FORMAT = 2

LEDGER_DIR = "meta/ledger"
#: Where ``tubelet.engine.versions.revert`` keeps the entries it took out of the ledger.
REVERTED_DIR = "meta/reverted"
#: A sequenced entry name: ``c`` sorts after the digits legacy (shard-named) entries start with.
_SEQUENCED = re.compile(r"^c(\d{12})$")

Status = Literal["done", "failed"]

#: The statuses an item may have.
STATUSES: tuple[Status, ...] = ("done", "failed")
_TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

#: Key prefix of items that are manifest rows rejected before any stage ran.
MANIFEST_KEY_PREFIX = "manifest:"


def manifest_key(row: str) -> str:
    """The ledger key of a rejected manifest row (``row`` is ``"file:line"``)."""
    return f"{MANIFEST_KEY_PREFIX}{row}"


@dataclass
class LedgerEntry:
    """The commit record of one shard."""

    shard: str
    run_id: str
    committed_at: str  # ISO 8601, UTC
    items: dict[str, Status]  # key -> "done" | "failed", in commit order
    files: dict[str, dict[str, int | str]] = field(default_factory=dict)  # table -> {"path", "rows", "bytes", "sha256"}
    format: int = PLAIN_LEDGER_FORMAT
    #: Video ids whose rows this entry replaces (a revision); empty for a normal shard.
    replaces: list[str] = field(default_factory=list)
    #: The entry's file name without ``.json`` (its place in ledger order); set when read or committed.
    name: str = field(default="", compare=False)
    #: Where the entry was read from (its file's path or URL), for messages; set when read.
    source: str = field(default="", compare=False)

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {
            "format": max(self.format, REVISION_LEDGER_FORMAT) if self.replaces else self.format,
            "shard": self.shard,
            "run_id": self.run_id,
            "committed_at": self.committed_at,
            "items": self.items,
            "files": self.files,
        }
        if self.replaces:
            data["replaces"] = list(self.replaces)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, object], *, source: str = "ledger entry") -> LedgerEntry:
        try:
            fmt = int(str(data.get("format", PLAIN_LEDGER_FORMAT)))
            if fmt > LEDGER_FORMAT:
                raise ValueError(f"ledger format {fmt} is newer than this tubelet reads ({LEDGER_FORMAT})")
            replaces = data.get("replaces") or []
            if not isinstance(replaces, list) or not all(isinstance(v, str) for v in replaces):
                raise ValueError(f"'replaces' must be a list of video ids, got {replaces!r}")
            return cls(
                shard=str(data["shard"]),
                run_id=str(data["run_id"]),
                committed_at=str(data["committed_at"]),
                items=_items(data["items"]),
                files=_files(data.get("files") or {}),
                format=fmt,
                replaces=list(replaces),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{source}: bad ledger entry: {error}") from error


def _items(value: object) -> dict[str, Status]:
    if not isinstance(value, dict):
        raise TypeError(f"'items' must be a mapping, got {type(value).__name__}")
    for key, status in value.items():
        if status not in STATUSES:
            raise ValueError(f"item {key!r} has the unknown status {status!r} (a status is 'done' or 'failed')")
    return {str(k): v for k, v in value.items()}


def _files(value: object) -> dict[str, dict[str, int | str]]:
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise TypeError("'files' must map tables to {path, rows}")
    for table, info in value.items():
        _check_file(str(table), info)
    return {str(k): dict(v) for k, v in value.items()}


def _check_file(table: str, info: dict[str, object]) -> None:
    """One ``files`` item: a table's file inside the dataset, its row count, size and digest."""
    if not _TABLE_NAME.match(table):
        raise ValueError(f"files: {table!r} is not a table name")
    path = info.get("path")
    wrong = path_problem(table, path)
    if wrong:
        raise ValueError(f"files.{table}.path {path!r} {wrong}")
    for key in ("rows", "bytes"):
        count = info.get(key, 0)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"files.{table}.{key} {count!r} is not a count")
    if "rows" not in info:
        raise ValueError(f"files.{table} has no row count ('rows')")
    digest = info.get("sha256")
    if digest is not None and not (isinstance(digest, str) and _SHA256.match(digest)):
        raise ValueError(f"files.{table}.sha256 {digest!r} is not a sha256 digest")


def path_problem(table: str, path: object) -> str | None:
    """What is wrong with ``path`` as the file of ``table`` a ledger entry names, or None:
    it must be ``data/<table>/<name>.parquet``, relative, with no ``..``."""
    if not isinstance(path, str) or not path:
        return "is not a path (a table's file is data/<table>/<name>.parquet)"
    if path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path) or "\\" in path:
        return "is absolute: an entry names files inside the dataset only"
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "goes up or around ('..', '.', '//'): an entry names files inside the dataset only"
    if len(parts) != 3 or parts[:2] != ["data", table] or not parts[2].endswith(".parquet") or parts[2][0] == ".":
        return f"is not a file under data/{table}/ (a table's rows live in data/<table>/<name>.parquet)"
    return None


def entry_path(name: str, *, folder: str = LEDGER_DIR) -> str:
    """The storage path of the entry called ``name``."""
    return f"{folder}/{name}.json"


def sequence_name(seq: int) -> str:
    """The name of the ``seq``-th sequenced commit."""
    return f"c{seq:012d}"


def read_entries(root: StorageLocation) -> list[LedgerEntry]:
    """All committed entries, in ledger order (by name: commit sequence)."""
    return _read_folder(as_storage(root), LEDGER_DIR)


def read_reverted_entries(root: StorageLocation) -> list[LedgerEntry]:
    """Entries taken out of the ledger by a revert (their data files are kept), by name."""
    return _read_folder(as_storage(root), REVERTED_DIR)


def _entry_names(storage: Storage, folder: str) -> list[str]:
    """Entry names in ``folder``, sorted; temporary files (dot-names) are not entries."""
    names = []
    for rel in storage.list_files(folder):
        base = rel.rsplit("/", 1)[-1]
        if base.endswith(".json") and not base.startswith(".") and rel.count("/") == folder.count("/") + 1:
            names.append(base[: -len(".json")])
    return sorted(names)


def _read_folder(storage: Storage, folder: str, skip: set[str] | frozenset[str] = frozenset()) -> list[LedgerEntry]:
    names = [n for n in _entry_names(storage, folder) if n not in skip]
    for name in names:  # an entry that is a link out of the dataset is not read at all
        target = storage.leads_out(entry_path(name, folder=folder))
        if target is not None:
            raise ValueError(
                f"{storage.url(entry_path(name, folder=folder))}: bad ledger entry: it leads out of the dataset "
                f"(a link to {target})"
            )
    blobs = storage.read_many([entry_path(n, folder=folder) for n in names])
    entries = []
    for name in names:
        rel = entry_path(name, folder=folder)
        try:
            data = json.loads(blobs[rel])
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{storage.url(rel)}: corrupt ledger entry: {error}") from error
        if not isinstance(data, dict):
            raise ValueError(f"{storage.url(rel)}: corrupt ledger entry: not a JSON object")
        entry = LedgerEntry.from_dict(data, source=storage.url(rel))
        entry.name, entry.source = name, storage.url(rel)
        _check_confined(storage, entry)
        entries.append(entry)
    return entries


def _check_confined(storage: Storage, entry: LedgerEntry) -> None:
    """Refuse an entry whose file is a link (or sits in a linked folder) leading out of the dataset."""
    for table, info in entry.files.items():
        target = storage.leads_out(str(info["path"]))
        if target is not None:
            raise ValueError(
                f"{entry.source}: bad ledger entry: files.{table}.path {info['path']!r} leads out of the dataset "
                f"(a link to {target}): a dataset reads only its own files"
            )


def next_sequence(storage: Storage) -> int:
    """The sequence number after every sequenced entry, in the ledger or reverted."""
    numbers = [
        int(m.group(1))
        for folder in (LEDGER_DIR, REVERTED_DIR)
        for name in _entry_names(storage, folder)
        if (m := _SEQUENCED.match(name))
    ]
    return max(numbers, default=0) + 1


class CommitConflictError(RuntimeError):
    """Another writer committed some of an entry's items first; the entry was not committed."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        shown = ", ".join(keys[:5]) + (" …" if len(keys) > 5 else "")
        super().__init__(f"{len(keys)} item(s) were committed by another writer meanwhile: {shown}")


class Ledger:
    """The ledger of one dataset as a writer sees it: what is committed, and ``commit``.

    ``commit`` creates the next sequenced entry only if that name is free (see the module
    docstring); on a clash it reads what the other writer committed and tries again, or
    raises CommitConflictError when an item of the entry is committed already.
    """

    def __init__(self, root: StorageLocation, *, entries: list[LedgerEntry] | None = None) -> None:
        self.storage = as_storage(root)
        entries = read_entries(self.storage) if entries is None else entries
        self._seen = {e.name for e in entries}
        #: Status of every committed item (a later entry wins; entries never overlap).
        self.status: dict[str, Status] = item_status(entries)
        #: The greatest shard name committed so far (revisions must sort after it).
        self.latest_shard = max((e.shard for e in entries), default="")
        self._next = next_sequence(self.storage)

    def commit(self, entry: LedgerEntry, *, may_overlap: bool = False) -> LedgerEntry:
        """Commit ``entry`` (its data files must already be written); returns it, named.

        ``may_overlap`` allows items already committed (a revision re-commits its videos).
        """
        if not may_overlap:
            self._refuse_overlap(entry)
        data = json.dumps(entry.to_dict(), indent=1).encode()
        while True:
            name = sequence_name(self._next)
            if self.storage.create(entry_path(name), data):
                entry.name = name
                self._record(entry)
                self._next += 1
                return entry
            self.refresh()  # someone else took this name: see what they committed
            if not may_overlap:
                self._refuse_overlap(entry)

    def refresh(self) -> list[LedgerEntry]:
        """Read entries other writers committed since; returns them."""
        new = _read_folder(self.storage, LEDGER_DIR, skip=self._seen)
        for entry in new:
            self._record(entry)
        self._next = max(self._next, next_sequence(self.storage))
        return new

    def _record(self, entry: LedgerEntry) -> None:
        self._seen.add(entry.name)
        self.status.update(entry.items)
        self.latest_shard = max(self.latest_shard, entry.shard)

    def _refuse_overlap(self, entry: LedgerEntry) -> None:
        taken = [key for key in entry.items if key in self.status]
        if taken:
            raise CommitConflictError(taken)


def commit_entry(root: StorageLocation, entry: LedgerEntry) -> LedgerEntry:
    """Commit one entry as the next in the ledger (its data files must be in place), items
    already committed or not: for tools and tests that plant entries by hand."""
    return Ledger(root).commit(entry, may_overlap=True)


def item_status(entries: list[LedgerEntry]) -> dict[str, Status]:
    """Status of every committed item; a later entry wins (it never should overlap)."""
    status: dict[str, Status] = {}
    for entry in entries:
        status.update(entry.items)
    return status


def replaced_by(entries: list[LedgerEntry]) -> dict[str, str]:
    """``{video id: shard}``: for each replaced video, the last entry (in the given,
    ledger order) whose ``replaces`` holds it; that entry alone supplies its rows."""
    owners: dict[str, str] = {}
    for entry in entries:
        for video_id in entry.replaces:
            owners[video_id] = entry.shard
    return owners


def row_counts(entries: list[LedgerEntry]) -> dict[str, int]:
    """Committed rows per table (rows a later revision replaced still count here)."""
    counts: dict[str, int] = {}
    for entry in entries:
        for table, info in entry.files.items():
            counts[table] = counts.get(table, 0) + int(info["rows"])
    return counts
