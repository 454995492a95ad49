"""The run ledger: one JSON file per committed shard, ``<out>/meta/ledger/<shard>.json``.

A ledger entry names the items (video ids, or ``manifest:<file:line>`` for rejected
manifest rows) a shard holds with their status, and the data files it wrote with their
row counts. Writing the entry (temporary file + rename) is the commit point of a shard:
a data file no entry names does not belong to the dataset.

An entry may also be a *revision*: its ``replaces`` lists video ids whose rows (in every
table but ``rejects``) it replaces; readers take those videos' rows only from the last
entry, in ledger order, that replaces them. Entries moved out of the ledger by
``tubelet.engine.versions.revert`` live in ``<out>/meta/reverted/`` (kept, not part of the data).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tubelet.schemas.info import write_json_atomic

#: Newest ledger entry format this code reads (bumped if the JSON layout ever changes).
#: 1: the original layout; 2: adds ``replaces`` (only entries with a ``replaces`` are
#: written as format 2, so older readers refuse revisions rather than misread them).
LEDGER_FORMAT = 2

#: Format of an entry without ``replaces``.
PLAIN_LEDGER_FORMAT = 1

#: Format of an entry with a non-empty ``replaces``.
REVISION_LEDGER_FORMAT = 2

Status = Literal["done", "failed"]

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
    files: dict[str, dict[str, int | str]] = field(default_factory=dict)  # table -> {"path", "rows"}
    format: int = PLAIN_LEDGER_FORMAT
    #: Video ids whose rows this entry replaces (a revision); empty for a normal shard.
    replaces: list[str] = field(default_factory=list)

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
    return {str(k): v for k, v in value.items()}


def _files(value: object) -> dict[str, dict[str, int | str]]:
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise TypeError("'files' must map tables to {path, rows}")
    return {str(k): dict(v) for k, v in value.items()}


def ledger_dir(root: Path) -> Path:
    return root / "meta" / "ledger"


def entry_path(root: Path, shard: str) -> Path:
    return ledger_dir(root) / f"{shard}.json"


def write_entry(root: Path, entry: LedgerEntry) -> Path:
    """Commit ``entry``: atomic and durable. Its data files must already be in place."""
    path = entry_path(root, entry.shard)
    write_json_atomic(path, entry.to_dict())
    return path


def reverted_dir(root: Path) -> Path:
    """Where ``tubelet.engine.versions.revert`` keeps the entries it took out of the ledger."""
    return root / "meta" / "reverted"


def read_entries(root: Path) -> list[LedgerEntry]:
    """All committed entries, oldest first (shard names sort by time)."""
    return _read_folder(ledger_dir(root))


def read_reverted_entries(root: Path) -> list[LedgerEntry]:
    """Entries taken out of the ledger by a revert (their data files are kept), by shard name."""
    return _read_folder(reverted_dir(root))


def _read_folder(folder: Path) -> list[LedgerEntry]:
    if not folder.is_dir():
        return []
    entries = []
    for path in sorted(folder.glob("*.json")):
        if path.name.startswith("."):
            continue  # a temporary file of an uncommitted entry
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: corrupt ledger entry: {error}") from error
        entries.append(LedgerEntry.from_dict(data, source=str(path)))
    return entries


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
