"""Structured run logs: JSON lines to ``<out>/meta/logs/<run_id>.jsonl``, readable lines on stderr.

Every record of the project's loggers (``engine``, ``schemas``, ``annotators``,
``pipelines``) goes to both. Fields passed with ``extra={...}`` (by convention an
``event`` name plus numbers) become keys of the JSON line, so a run can be audited
with ``duckdb`` or ``jq`` afterwards.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType

from tqdm import tqdm

from tubelet.engine.storage import Storage

#: The packages whose loggers a run captures.
PROJECT_LOGGERS = ("tubelet",)

# Attributes every LogRecord has; anything else was passed with ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, msg, run_id, the extras, exc."""

    def __init__(self, run_id: str | None = None) -> None:
        super().__init__()
        self.run_id = run_id

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if self.run_id:
            line["run_id"] = self.run_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class _StderrHandler(logging.Handler):
    """Writes through tqdm so log lines do not tear an active progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never crash a run
            self.handleError(record)


def parse_level(level: str | int) -> int:
    """``"info"``/``"DEBUG"``/``20`` -> a logging level; ValueError for anything else."""
    if isinstance(level, int):
        return level
    value = logging.getLevelName(level.upper())
    if not isinstance(value, int):
        raise ValueError(f"unknown log level {level!r} (use debug, info, warning, error)")
    return value


class RunLogging:
    """Handlers installed for one run; :meth:`close` removes them and restores levels."""

    def __init__(
        self,
        log_dir: Path,
        run_id: str,
        *,
        level: str | int = "INFO",
        stderr: bool = True,
        publish_to: Storage | None = None,
    ) -> None:
        """Log to ``log_dir/<run_id>.jsonl``; with ``publish_to`` (a dataset on object storage,
        where files cannot be appended to), the file is copied to its ``meta/logs/`` on close."""
        self.level = parse_level(level)
        self.run_id = run_id
        self.publish_to = publish_to
        log_dir.mkdir(parents=True, exist_ok=True)
        #: Where this run's JSON lines go.
        self.path = log_dir / f"{run_id}.jsonl"
        self._handlers: list[logging.Handler] = []
        file_handler = logging.FileHandler(self.path, encoding="utf-8")
        file_handler.setFormatter(JsonLinesFormatter(run_id))
        self._handlers.append(file_handler)
        if stderr:
            console = _StderrHandler()
            console.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
            self._handlers.append(console)
        self._saved_levels: dict[str, int] = {}
        for name in PROJECT_LOGGERS:
            logger = logging.getLogger(name)
            self._saved_levels[name] = logger.level
            logger.setLevel(self.level)
            for handler in self._handlers:
                handler.setLevel(self.level)
                logger.addHandler(handler)

    def close(self) -> None:
        for name, saved in self._saved_levels.items():
            logger = logging.getLogger(name)
            for handler in self._handlers:
                logger.removeHandler(handler)
            logger.setLevel(saved)
        for handler in self._handlers:
            handler.close()
        self._saved_levels.clear()
        if self.publish_to is not None and self.path.is_file():
            try:
                self.publish_to.write_bytes(f"meta/logs/{self.run_id}.jsonl", self.path.read_bytes())
            except Exception as error:  # noqa: BLE001 - the run's outcome matters more than its log
                print(f"tubelet: could not copy the run log to {self.publish_to.root}: {error}", file=sys.stderr)
            self.publish_to = None

    def __enter__(self) -> RunLogging:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def read_log(path: str | Path) -> list[dict[str, object]]:
    """The records of a ``.jsonl`` run log (skips a torn last line of a killed run)."""
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
