"""``tubelet diff RELEASE_A RELEASE_B``: what was added, removed and changed between two releases.

Rows are matched per table by primary key (``tubelet.schemas.arrow.PRIMARY_KEYS``); a split or
table without rows has no file in a release and is simply read as empty. A row is
*changed* when its key is in both releases and its content differs (its split included:
a row that moved split is also counted as ``moved``). Instructions are also broken down
per task type. Each release is read streaming; what is held is one digest per row.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tubelet.release.build import INFO_FILE, RELEASE_TABLES, iter_table
from tubelet.schemas.arrow import PRIMARY_KEYS


@dataclass
class TableDiff:
    added: int = 0
    removed: int = 0
    changed: int = 0
    moved: int = 0  # changed split (also counted in changed)
    unchanged: int = 0
    examples: dict[str, list[str]] = field(default_factory=lambda: {"added": [], "removed": [], "changed": []})

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "removed": self.removed,
            "changed": self.changed,
            "moved": self.moved,
            "unchanged": self.unchanged,
            "examples": self.examples,
        }


@dataclass
class ReleaseDiff:
    a: str
    b: str
    versions: tuple[str | None, str | None]
    tables: dict[str, TableDiff]
    task_types: dict[str, dict[str, int]]  # task_type -> {added, removed, changed}

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "versions": list(self.versions),
            "tables": {t: d.to_dict() for t, d in self.tables.items()},
            "task_types": self.task_types,
        }


def _digests(folder: Path, table: str) -> dict[str, tuple[str, str, str | None]]:
    """``{key: (split, content digest, task_type)}`` of every row of one release table."""
    key = PRIMARY_KEYS[table]
    assert key is not None
    out: dict[str, tuple[str, str, str | None]] = {}
    for split, batch in iter_table(folder, table):
        for row in batch.to_pylist():
            digest = hashlib.sha1(json.dumps(row, sort_keys=True, default=str).encode()).hexdigest()
            out[row[key]] = (split, digest, row.get("task_type") if table == "instructions" else None)
    return out


def _version(folder: Path) -> str | None:
    try:
        return json.loads((folder / "meta" / "info.json").read_text())["version"]
    except (OSError, KeyError, ValueError):
        return None


def diff_releases(a: str | os.PathLike[str], b: str | os.PathLike[str], examples: int = 5) -> ReleaseDiff:
    """Compare release ``a`` (old) with ``b`` (new), table by table."""
    fa, fb = Path(a), Path(b)
    for f in (fa, fb):
        if not (f / INFO_FILE).is_file() and not (f / "data").is_dir():
            raise FileNotFoundError(f"{f} is not a release (no {INFO_FILE}, no data/ folder)")
    tables: dict[str, TableDiff] = {}
    per_type: dict[str, Counter[str]] = {}
    for table in RELEASE_TABLES:
        da, db = _digests(fa, table), _digests(fb, table)
        d = TableDiff()
        for key, (split, digest, task) in db.items():
            old = da.get(key)
            if old is None:
                d.added += 1
                kind = "added"
            elif old[1] != digest or old[0] != split:
                d.changed += 1
                d.moved += old[0] != split
                kind = "changed"
            else:
                d.unchanged += 1
                continue
            if len(d.examples[kind]) < examples:
                d.examples[kind].append(key)
            if table == "instructions":
                per_type.setdefault(task or "unknown", Counter())[kind] += 1
        for key, (_, _, task) in da.items():
            if key not in db:
                d.removed += 1
                if len(d.examples["removed"]) < examples:
                    d.examples["removed"].append(key)
                if table == "instructions":
                    per_type.setdefault(task or "unknown", Counter())["removed"] += 1
        for kind in d.examples:
            d.examples[kind].sort()
        tables[table] = d
    task_types = {t: {k: c.get(k, 0) for k in ("added", "removed", "changed")} for t, c in sorted(per_type.items())}
    return ReleaseDiff(str(fa), str(fb), (_version(fa), _version(fb)), tables, task_types)


def format_diff(diff: ReleaseDiff) -> str:
    """The human table of a diff."""
    va, vb = diff.versions
    lines = [
        f"{diff.a} ({va or '?'}) -> {diff.b} ({vb or '?'})",
        "",
        f"{'table':<14} {'added':>8} {'removed':>8} {'changed':>8} {'moved':>6} {'same':>8}",
    ]
    for table, d in diff.tables.items():
        lines.append(f"{table:<14} {d.added:>8} {d.removed:>8} {d.changed:>8} {d.moved:>6} {d.unchanged:>8}")
    if diff.task_types:
        lines += ["", f"{'instructions by task type':<26} {'added':>8} {'removed':>8} {'changed':>8}"]
        for task, c in diff.task_types.items():
            lines.append(f"{task:<26} {c['added']:>8} {c['removed']:>8} {c['changed']:>8}")
    shown = [(t, k, ids) for t, d in diff.tables.items() for k, ids in d.examples.items() if ids]
    if shown:
        lines.append("")
        for table, kind, ids in shown:
            lines.append(f"{table} {kind}: {', '.join(ids)}")
    return "\n".join(lines)
