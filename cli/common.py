"""What every command shares: exit codes, the user-facing error, opening a dataset."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Callable, Iterator

from tubelet.engine.dataset import Dataset
from tubelet.engine.errors import one_line
from tubelet.engine.locks import DatasetLockedError
from tubelet.engine.runners.ray_instance import ClusterConnectionError

# The exit codes of every command (docs/architecture.md, "Exit codes"): a script can
# tell "done", "done, but some videos failed", "refused" and "broke" apart.
EXIT_OK = 0  # everything done; item-level rejects of a finished run (a track too short) are no failure
EXIT_FAILURES = 1  # finished, but some videos or manifest rows failed (validate: problems; export: items left out)
EXIT_USAGE = 2  # refused, nothing done: bad arguments, manifest or input, a dataset that cannot be read
EXIT_RUN_FAILED = 3  # started and did not finish: a failed or crashed run (status: the last run did not finish)
EXIT_RUNNING = 4  # status: a run is writing the dataset now
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports a command SIGINT ended
EXIT_REJECTS = EXIT_FAILURES  # the former name

EPILOG = """exit codes:
  0    all good (item-level rejects of a finished run, e.g. tracks too short to keep, are no failure)
  1    finished, but some videos or manifest rows failed (run, status, review push/pull); validate
       found problems; export left items out
  2    refused, nothing done: bad arguments, a bad manifest or input, a dataset that cannot be read,
       a failed query, nothing in common to evaluate
  3    started but did not finish: a run that failed (a stage that cannot start, a worker pool or
       Ray node that died, storage refusing a write) or crashed; status: the last run did so
  4    status: a run is writing the dataset now
  130  interrupted (Ctrl-C); a run keeps what it committed: run it again to resume
"""

#: How a command module registers a sub-command: ``add(name, help) -> parser``.
AddCommand = Callable[[str, str], argparse.ArgumentParser]


class CommandError(Exception):
    """A failure the user can fix from its message alone (no traceback); exit code 2
    unless ``exit_code`` says otherwise."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


#: Errors that mean the input was refused before any work (exit 2); any other error
#: happened while working (exit 3).
REFUSALS: tuple[type[BaseException], ...] = (
    ValueError,  # bad values, manifests (ManifestError), schemas, a config mismatch
    LookupError,  # unknown ids, versions, pipelines
    FileNotFoundError,
    FileExistsError,  # a release or export destination that is not empty
    NotADirectoryError,
    DatasetLockedError,  # another run is writing: nothing was done
    ClusterConnectionError,  # the Ray cluster to join is unreachable or refuses this driver: nothing ran
)


def exit_code_of(error: BaseException) -> int:
    """The exit code of a command that raised ``error``."""
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(error, CommandError):
        return error.exit_code
    return EXIT_USAGE if isinstance(error, REFUSALS) else EXIT_RUN_FAILED


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
