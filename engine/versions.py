"""Named versions of a dataset, revisions, and revert.

A *version* is a snapshot of the set of committed ledger entries (shard names), stored
in ``<out>/meta/versions.json`` (written atomically). Shards are immutable, so a version
names an exact state of every table: ``tubelet.engine.dataset.Dataset(root, version=name)``
reads it back.

A *revision* (:func:`commit_revision`) is a committed shard whose ledger entry lists
the videos it ``replaces``: readers then take every row of those videos (all tables but
``rejects``) from that shard only. :func:`revert` makes the ledger equal to a version
again; entries it takes out are moved to ``<out>/meta/reverted/`` with their data files
kept, so the reverted state can still be read through its own version.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tubelet.engine.ledger import (
    LedgerEntry,
    entry_path,
    ledger_dir,
    read_entries,
    read_reverted_entries,
    reverted_dir,
)
from tubelet.engine.writer import ShardWriter, _lock, _unlock, utc_now
from tubelet.schemas.info import fsync_dir, write_json_atomic

#: Version of the ``meta/versions.json`` layout.
VERSIONS_FORMAT = 1

_AUTO_NAME = re.compile(r"^v(\d+)$")


@dataclass(frozen=True)
class Version:
    """A named snapshot: the shards (ledger entries) committed at ``created_at``."""

    name: str
    shards: tuple[str, ...]  # shard names, in ledger order
    created_at: str  # ISO 8601, UTC
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shards": list(self.shards), "created_at": self.created_at, "note": self.note}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Version:
        return cls(
            name=str(data["name"]),
            shards=tuple(str(s) for s in data["shards"]),
            created_at=str(data["created_at"]),
            note=str(data.get("note", "")),
        )


@dataclass
class _Store:
    versions: list[Version] = field(default_factory=list)


def versions_path(root: str | os.PathLike[str]) -> Path:
    """``<root>/meta/versions.json``."""
    return Path(root) / "meta" / "versions.json"


def list_versions(root: str | os.PathLike[str]) -> list[Version]:
    """Every named version, oldest first (empty when none was tagged)."""
    return _load(Path(root)).versions


def get_version(root: str | os.PathLike[str], name: str) -> Version:
    """The version called ``name``; KeyError listing the known names when there is none."""
    versions = list_versions(root)
    for version in versions:
        if version.name == name:
            return version
    known = ", ".join(v.name for v in versions) or "none"
    raise KeyError(f"no version {name!r} in {root}; versions: {known}")


def version_entries(root: str | os.PathLike[str], version: Version) -> list[LedgerEntry]:
    """The ledger entries of ``version`` in ledger order, from the ledger or ``meta/reverted``.

    Raises FileNotFoundError when an entry of the version is in neither.
    """
    root = Path(root)
    by_shard = {e.shard: e for e in read_reverted_entries(root)}
    by_shard.update({e.shard: e for e in read_entries(root)})
    missing = [s for s in version.shards if s not in by_shard]
    if missing:
        raise FileNotFoundError(f"version {version.name!r}: ledger entries missing: {', '.join(missing)}")
    return sorted((by_shard[s] for s in version.shards), key=lambda e: e.shard)


def tag_version(root: str | os.PathLike[str], name: str | None = None, note: str = "") -> Version:
    """Record the current committed state as a named version and return it.

    ``name`` None picks the next ``vN``; then, if the state equals the latest version's,
    that version is returned instead of a duplicate. An explicit name always makes a
    new version (it may name the same state as another). ValueError for a name in use.
    """
    root = Path(root)
    with _versions_lock(root):
        return _tag(root, name, note)


def commit_revision(
    root: str | os.PathLike[str],
    records_by_video: Mapping[str, Sequence[Any]],
    *,
    note: str,
    run_id: str | None = None,
) -> tuple[Version, Version]:
    """Commit one shard that replaces the listed videos, between two tagged versions.

    ``records_by_video`` maps each video id to its FULL new rows, as record dataclasses
    (``VideoRecord``, ``Tubelet``, ``Entity``, ``Event``, ``Instruction``, ``Review``;
    ``Reject`` rows are added to the history). Every earlier row of those videos in
    every table but ``rejects`` stops being read, so a table left out here has no rows
    of the video afterwards. Tags the state before (``before``, an auto-named version,
    reusing the latest when unchanged) and after (note ``note``); returns
    ``(before, after)``. Holds the dataset's write lock: DatasetLockedError while a run
    writes it. ValueError when ``records_by_video`` is empty.
    """

    if not records_by_video:
        raise ValueError("commit_revision: no videos to revise")
    root = Path(root)
    writer = ShardWriter(root, shard_size=len(records_by_video) + 1, run_id=run_id)
    try:
        for video_id, records in records_by_video.items():  # checks every row before committing
            writer.add_revision(video_id, records)
        with _versions_lock(root):
            before = _tag(root, None, f"before revision: {note}" if note else "before revision")
        writer.flush()
        with _versions_lock(root):
            after = _tag(root, None, note, force=True)
    except BaseException:
        writer.abort()  # nothing of a half-checked revision is committed
        raise
    writer.close()
    return before, after


def revert(root: str | os.PathLike[str], name: str) -> Version:
    """Make the dataset equal to version ``name`` again and tag that as a new version.

    Ledger entries not in the version (those committed after it) are moved to
    ``meta/reverted/``, and entries of the version found there are moved back; data files
    are never deleted, so every version stays readable. Their items are no longer
    committed: a later run redoes the videos of a reverted normal shard. The new version
    has the note ``"revert to <name>"`` (or is the latest version, when that one already
    names this state). Each entry moves with one rename; a revert that stops half-way
    is finished by running it again. Holds the dataset's write lock.
    """

    root = Path(root)
    target = get_version(root, name)
    fd = _lock(root)
    try:
        with _versions_lock(root):
            current = {e.shard for e in read_entries(root)}
            parked = {e.shard for e in read_reverted_entries(root)}
            wanted = set(target.shards)
            missing = wanted - current - parked
            if missing:
                raise FileNotFoundError(f"version {name!r}: ledger entries missing: {', '.join(sorted(missing))}")
            reverted_dir(root).mkdir(parents=True, exist_ok=True)
            ledger_dir(root).mkdir(parents=True, exist_ok=True)
            for shard in sorted(wanted - current):  # back into the ledger
                os.replace(reverted_dir(root) / f"{shard}.json", entry_path(root, shard))
            for shard in sorted(current - wanted):  # out of the ledger, data kept
                os.replace(entry_path(root, shard), reverted_dir(root) / f"{shard}.json")
            fsync_dir(reverted_dir(root))
            fsync_dir(ledger_dir(root))
            return _tag(root, None, f"revert to {name}")
    finally:
        _unlock(fd)


# -- internals ---------------------------------------------------------------------------


def _tag(root: Path, name: str | None, note: str, *, force: bool = False) -> Version:
    """Tag the current ledger; caller holds the versions lock. ``force`` skips the
    "same state as the latest version" shortcut of auto-named tags."""

    store = _load(root)
    names = {v.name for v in store.versions}
    if name is not None:
        if not name or name != name.strip():
            raise ValueError(f"bad version name {name!r}")
        if name in names:
            raise ValueError(f"version {name!r} exists already")
    shards = tuple(e.shard for e in read_entries(root))
    latest = store.versions[-1] if store.versions else None
    if name is None and not force and latest is not None and set(latest.shards) == set(shards):
        return latest
    if name is None:
        numbers = [int(m.group(1)) for v in store.versions if (m := _AUTO_NAME.match(v.name))]
        n = max(numbers, default=0) + 1
        while f"v{n}" in names:
            n += 1
        name = f"v{n}"
    version = Version(name=name, shards=shards, created_at=utc_now(), note=note)
    store.versions.append(version)
    write_json_atomic(
        versions_path(root), {"format": VERSIONS_FORMAT, "versions": [v.to_dict() for v in store.versions]}
    )
    return version


def _load(root: Path) -> _Store:
    path = versions_path(root)
    if not path.is_file():
        return _Store()
    try:
        data = json.loads(path.read_text())
        fmt = int(data.get("format", VERSIONS_FORMAT))
        if fmt > VERSIONS_FORMAT:
            raise ValueError(f"versions format {fmt} is newer than this tubelet reads ({VERSIONS_FORMAT})")
        return _Store([Version.from_dict(v) for v in data["versions"]])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: bad versions file: {error}") from error


@contextmanager
def _versions_lock(root: Path) -> Iterator[None]:
    """Serialize read-modify-write of versions.json (blocking; separate from the run lock)."""
    meta = root / "meta"
    meta.mkdir(parents=True, exist_ok=True)
    fd = os.open(meta / ".versions.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
