"""What every command shares: exit codes, the user-facing error, opening a dataset."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Callable, Iterator

from tubelet.engine.dataset import Dataset
from tubelet.engine.errors import one_line

EXIT_OK = 0
EXIT_REJECTS = 1
EXIT_FAILED = 2

EPILOG = """exit codes:
  0  all good
  1  completed, but some items were rejected (run, status) or validate found problems
  2  the command failed: bad arguments, bad manifest, unreadable dataset, failed query,
     run crashed or interrupted
"""

#: How a command module registers a sub-command: ``add(name, help) -> parser``.
AddCommand = Callable[[str, str], argparse.ArgumentParser]


class CommandError(Exception):
    """A failure the user can fix from its message alone (exit code 2, no traceback)."""


def open_dataset(root: str, version: str | None = None) -> Dataset:
    try:
        return Dataset(root, version=version)
    except FileNotFoundError as error:
        raise CommandError(str(error)) from None
    except KeyError as error:  # an unknown version: the message lists the known ones
        raise CommandError(str(error.args[0] if error.args else error)) from None


@contextlib.contextmanager
def reading(root: str) -> Iterator[None]:
    """A dataset that cannot be read (no info.json, a newer schema, a corrupt ledger
    entry, a missing shard) is a one-line error, not a traceback."""
    try:
        yield
    except (OSError, ValueError) as error:  # SchemaVersionError is a ValueError
        raise CommandError(f"cannot read the dataset at {root}: {one_line(str(error))}") from error


#: Default log level of every command, when neither --log-level nor -v is given.
LOG_LEVEL_ENV = "TUBELET_LOG_LEVEL"
LOG_LEVELS = ("debug", "info", "warning", "error")


def log_level(args: argparse.Namespace, default: str) -> str:
    """The command's log level: ``--log-level``/``-v``, else ``TUBELET_LOG_LEVEL``, else ``default``.
    Debug also lets Ray's own output through (``engine/runners/ray_output.py``)."""
    given = getattr(args, "log_level", None)
    if given:
        return str(given)
    env = os.environ.get(LOG_LEVEL_ENV, "").strip().lower()
    if not env:
        return default
    if env not in LOG_LEVELS:
        raise CommandError(f"{LOG_LEVEL_ENV}={env!r} is no log level: use one of {', '.join(LOG_LEVELS)}")
    return env
