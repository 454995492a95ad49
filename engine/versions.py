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
from typing import Any

from tubelet.engine.ledger import (
    REVERTED_DIR,
    LedgerEntry,
    entry_path,
    read_entries,
    read_reverted_entries,
)
from tubelet.engine.locks import acquire_write_lock
from tubelet.engine.storage import Storage, StorageLocation, as_storage
from tubelet.engine.writer import ShardWriter, utc_now

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


#: Where the named versions are kept.
VERSIONS_FILE = "meta/versions.json"


def list_versions(root: StorageLocation) -> list[Version]:
    """Every named version, oldest first (empty when none was tagged)."""
    return _load(as_storage(root)).versions


def get_version(root: StorageLocation, name: str) -> Version:
    """The version called ``name``; KeyError listing the known names when there is none."""
    versions = list_versions(root)
    for version in versions:
        if version.name == name:
            return version
    known = ", ".join(v.name for v in versions) or "none"
    raise KeyError(f"no version {name!r} in {as_storage(root).root}; versions: {known}")


def version_entries(root: StorageLocation, version: Version) -> list[LedgerEntry]:
    """The ledger entries of ``version`` in ledger order, from the ledger or ``meta/reverted``.

    Raises FileNotFoundError when an entry of the version is in neither.
    """
    storage = as_storage(root)
    by_shard = {e.shard: e for e in read_reverted_entries(storage)}
    by_shard.update({e.shard: e for e in read_entries(storage)})
    missing = [s for s in version.shards if s not in by_shard]
    if missing:
        raise FileNotFoundError(f"version {version.name!r}: ledger entries missing: {', '.join(missing)}")
    return sorted((by_shard[s] for s in version.shards), key=lambda e: e.name)


def tag_version(root: StorageLocation, name: str | None = None, note: str = "") -> Version:
    """Record the current committed state as a named version and return it.

    ``name`` None picks the next ``vN``; then, if the state equals the latest version's,
    that version is returned instead of a duplicate. An explicit name always makes a
    new version (it may name the same state as another). ValueError for a name in use.
    """
    storage = as_storage(root)
    with _versions_lock(storage):
        return _tag(storage, name, note)


def commit_revision(
    root: StorageLocation,
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
    storage = as_storage(root)
    writer = ShardWriter(storage, shard_size=len(records_by_video) + 1, run_id=run_id)
    try:
        for video_id, records in records_by_video.items():  # checks every row before committing
            writer.add_revision(video_id, records)
        with _versions_lock(storage):
            before = _tag(storage, None, f"before revision: {note}" if note else "before revision")
        writer.flush()
        with _versions_lock(storage):
            after = _tag(storage, None, note, force=True)
    except BaseException:
        writer.abort()  # nothing of a half-checked revision is committed
        raise
    writer.close()
    return before, after


def revert(root: StorageLocation, name: str) -> Version:
    """Make the dataset equal to version ``name`` again and tag that as a new version.

    Ledger entries not in the version (those committed after it) are moved to
    ``meta/reverted/``, and entries of the version found there are moved back; data files
    are never deleted, so every version stays readable. Their items are no longer
    committed: a later run redoes the videos of a reverted normal shard. The new version
    has the note ``"revert to <name>"`` (or is the latest version, when that one already
    names this state). Each entry moves by itself (a rename on a local folder; a copy,
    then a delete of the original, on object storage), so a revert that stops half-way is
    finished by running it again. Holds the dataset's write lock.
    """

    storage = as_storage(root)
    target = get_version(storage, name)
    with acquire_write_lock(storage, f"revert-{name}"), _versions_lock(storage):
        current = {e.shard: e.name for e in read_entries(storage)}
        parked = {e.shard: e.name for e in read_reverted_entries(storage)}
        wanted = set(target.shards)
        missing = wanted - set(current) - set(parked)
        if missing:
            raise FileNotFoundError(f"version {name!r}: ledger entries missing: {', '.join(sorted(missing))}")
        for shard in sorted(wanted - set(current)):  # back into the ledger
            _move(storage, entry_path(parked[shard], folder=REVERTED_DIR), entry_path(parked[shard]))
        for shard in sorted(set(current) - wanted):  # out of the ledger, data kept
            _move(storage, entry_path(current[shard]), entry_path(current[shard], folder=REVERTED_DIR))
        return _tag(storage, None, f"revert to {name}")


def _move(storage: Storage, source: str, target: str) -> None:
    """Move one ledger entry between the ledger and ``meta/reverted`` (see ``revert``)."""
    path = storage.local_path()
    if path is not None:
        (path / target).parent.mkdir(parents=True, exist_ok=True)
        os.replace(path / source, path / target)
        return
    storage.write_bytes(target, storage.read_bytes(source))
    storage.delete(source)


# -- internals ---------------------------------------------------------------------------


def _tag(storage: Storage, name: str | None, note: str, *, force: bool = False) -> Version:
    """Tag the current ledger; caller holds the versions lock. ``force`` skips the
    "same state as the latest version" shortcut of auto-named tags."""

    store = _load(storage)
    names = {v.name for v in store.versions}
    if name is not None:
        if not name or name != name.strip():
            raise ValueError(f"bad version name {name!r}")
        if name in names:
            raise ValueError(f"version {name!r} exists already")
    shards = tuple(e.shard for e in read_entries(storage))
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
    data = {"format": VERSIONS_FORMAT, "versions": [v.to_dict() for v in store.versions]}
    storage.write_text(VERSIONS_FILE, json.dumps(data, indent=1))
    return version


def _load(storage: Storage) -> _Store:
    try:
        text = storage.read_text(VERSIONS_FILE)
    except FileNotFoundError:
        return _Store()
    try:
        data = json.loads(text)
        fmt = int(data.get("format", VERSIONS_FORMAT))
        if fmt > VERSIONS_FORMAT:
            raise ValueError(f"versions format {fmt} is newer than this tubelet reads ({VERSIONS_FORMAT})")
        return _Store([Version.from_dict(v) for v in data["versions"]])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{storage.url(VERSIONS_FILE)}: bad versions file: {error}") from error


@contextmanager
def _versions_lock(storage: Storage) -> Iterator[None]:
    """Serialize read-modify-write of versions.json (blocking; separate from the run lock).
    Object storage has no locks: there tagging relies on one reviewer at a time."""
    root = storage.local_path()
    if root is None:
        yield
        return
    meta = root / "meta"
    meta.mkdir(parents=True, exist_ok=True)
    fd = os.open(meta / ".versions.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
