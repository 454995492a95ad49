"""``<out>/meta/info.json``: what a dataset is, which code and config made it, and how big.

Read it with :func:`read_info`, which refuses a dataset written with a newer MAJOR
schema version than this code understands (see ``tubelet.schemas.version``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tubelet.schemas.version import SCHEMA_VERSION, parse_version


class SchemaVersionError(ValueError):
    """A dataset's schema version is one this code cannot read."""


@dataclass
class RunInfo:
    """One run that wrote to the dataset."""

    run_id: str
    started_at: str  # ISO 8601, UTC
    # "running" | "finished" | "failed" | "interrupted" | "crashed" (its driver died while
    # "running"; a later run found it so). Whether a "running" run's driver is alive:
    # tubelet.engine.run_state.
    status: str = "running"
    finished_at: str | None = None
    runner: str | None = None
    tubelet_version: str | None = None
    planned: int = 0
    skipped: int = 0  # planned items already committed by an earlier run
    done: int = 0
    failed: int = 0
    rejected_rows: int = 0  # manifest rows rejected before any stage ran
    error: str | None = None
    #: The driver process: host, boot_id, pid, pid_started (its start time, so a reused pid
    #: is told apart). None for runs recorded before it was kept.
    driver: dict[str, Any] | None = None
    heartbeat_at: str | None = None  # ISO 8601, UTC; refreshed by the driver while it runs


@dataclass
class DatasetInfo:
    """The content of ``meta/info.json``."""

    pipeline: str
    config_hash: str
    schema_version: str = SCHEMA_VERSION
    tubelet_version: str = "unknown"
    params: dict[str, Any] = field(default_factory=dict)
    model_ids: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # rows per table, committed
    created_at: str = ""
    updated_at: str = ""
    runs: list[RunInfo] = field(default_factory=list)
    #: Datasets this one was made from (``source: dataset``): location, version, state.
    inputs: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetInfo:
        """Build from a parsed ``info.json``; unknown keys (from newer minor versions) are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        run_keys = {f.name for f in dataclasses.fields(RunInfo)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["runs"] = [RunInfo(**{k: v for k, v in r.items() if k in run_keys}) for r in data.get("runs", [])]
        return cls(**kwargs)


def check_schema_version(version: str, *, where: str = "dataset") -> None:
    """Raise SchemaVersionError when ``version`` has a newer MAJOR than :data:`SCHEMA_VERSION`."""
    try:
        major = parse_version(version)[0]
    except ValueError as error:
        raise SchemaVersionError(f"{where}: bad schema_version {version!r}") from error
    ours = parse_version(SCHEMA_VERSION)[0]
    if major > ours:
        raise SchemaVersionError(
            f"{where} has schema version {version}, newer than this tubelet reads "
            f"({SCHEMA_VERSION}, major {ours}); upgrade tubelet to read it"
        )


def info_from_json(text: str, *, where: str = "info.json") -> DatasetInfo:
    """Parse and check the text of an ``info.json`` (``where`` names it in errors)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{where}: not valid JSON: {error}") from error
    if not isinstance(data, dict) or "schema_version" not in data:
        raise ValueError(f"{where}: not a tubelet info.json (no schema_version)")
    check_schema_version(str(data["schema_version"]), where=where)
    return DatasetInfo.from_dict(data)


def info_to_json(info: DatasetInfo) -> str:
    """The text of ``info.json`` for ``info``."""
    return json.dumps(info.to_dict(), indent=2, sort_keys=False, default=str) + "\n"


def read_info(path: str | os.PathLike[str]) -> DatasetInfo:
    """Read and check a local ``info.json`` (the file, or the dataset root that holds ``meta/info.json``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "meta" / "info.json"
    if not path.is_file():
        raise FileNotFoundError(f"no dataset info at {path} (not a tubelet dataset, or no run started yet)")
    return info_from_json(path.read_text(), where=str(path))


def write_info(path: str | os.PathLike[str], info: DatasetInfo) -> None:
    """Write a local ``info.json`` atomically (temporary file, fsync, rename)."""
    write_json_atomic(Path(path), info.to_dict())


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically and durably."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=False, default=str)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
