"""The run ledger: one JSON file per committed shard, ``<out>/meta/ledger/<shard>.json``.

A ledger entry names the items (video ids, or ``manifest:<file:line>`` for rejected
manifest rows) a shard holds with their status, and the data files it wrote with their
row counts. Writing the entry (temporary file + rename) is the commit point of a shard:
a data file no entry names does not belong to the dataset.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from schemas.info import write_json_atomic

#: Version of the ledger entry format (bumped if the JSON layout ever changes).
LEDGER_FORMAT = 1

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
    format: int = LEDGER_FORMAT

    def to_dict(self) -> dict[str, object]:
        return {
            "format": self.format,
            "shard": self.shard,
            "run_id": self.run_id,
            "committed_at": self.committed_at,
            "items": self.items,
            "files": self.files,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object], *, source: str = "ledger entry") -> LedgerEntry:
        try:
            fmt = int(data.get("format", LEDGER_FORMAT))  # type: ignore[arg-type]
            if fmt > LEDGER_FORMAT:
                raise ValueError(f"ledger format {fmt} is newer than this tubelet reads ({LEDGER_FORMAT})")
            return cls(
                shard=str(data["shard"]),
                run_id=str(data["run_id"]),
                committed_at=str(data["committed_at"]),
                items=dict(data["items"]),  # type: ignore[arg-type]
                files={str(k): dict(v) for k, v in dict(data.get("files") or {}).items()},  # type: ignore[arg-type]
                format=fmt,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{source}: bad ledger entry: {error}") from error


def ledger_dir(root: Path) -> Path:
    return root / "meta" / "ledger"


def entry_path(root: Path, shard: str) -> Path:
    return ledger_dir(root) / f"{shard}.json"


def write_entry(root: Path, entry: LedgerEntry) -> Path:
    """Commit ``entry``: atomic and durable. Its data files must already be in place."""
    path = entry_path(root, entry.shard)
    write_json_atomic(path, entry.to_dict())
    return path


def read_entries(root: Path) -> list[LedgerEntry]:
    """All committed entries, oldest first (shard names sort by time)."""
    folder = ledger_dir(root)
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


def row_counts(entries: list[LedgerEntry]) -> dict[str, int]:
    """Committed rows per table."""
    counts: dict[str, int] = {}
    for entry in entries:
        for table, info in entry.files.items():
            counts[table] = counts.get(table, 0) + int(info["rows"])
    return counts
