"""The ``tubelet`` command line: the parser and the entry point.

Each group of commands lives in a module of its own with an ``add_commands``:

    tubelet run | sample                                         (tubelet.cli.run)
    tubelet status | query | validate | eval                     (tubelet.cli.dataset)
    tubelet review serve|stop|push|pull|revert | versions        (tubelet.cli.review)
    tubelet preview | report                                     (tubelet.cli.preview)
    tubelet release | diff | push                                (tubelet.cli.release)
    tubelet pipelines                                            (tubelet.cli.pipelines)
    tubelet export                                               (tubelet.cli.export)

Exit codes (``tubelet.cli.common``; docs/architecture.md, "Exit codes"):

    0    all good (item-level rejects of a finished run are no failure)
    1    finished, but some videos or manifest rows failed; validate found problems
    2    refused, nothing done: bad arguments, manifest or input
    3    started but did not finish: a failed or crashed run
    4    status: a run is writing the dataset now
    130  interrupted (Ctrl-C)

Errors print one line on stderr; ``--log-level debug`` (``-v``) adds the traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence
from typing import TextIO

from tubelet import __version__
from tubelet.cli import dataset, export, pipelines, preview, release, review, run
from tubelet.cli.common import EPILOG, EXIT_OK, CommandError, exit_code_of, log_level
from tubelet.engine.errors import one_line
from tubelet.engine.manifest import ManifestError
from tubelet.engine.runners.ray_instance import ClusterConnectionError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tubelet`` (exposed for docs and tests)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--log-level",
        default=argparse.SUPPRESS,
        choices=["debug", "info", "warning", "error"],
        help="log verbosity; debug also prints tracebacks and Ray's own output (default: warning; run: info; "
        "or TUBELET_LOG_LEVEL)",
    )
    common.add_argument(
        "-v",
        "--verbose",
        dest="log_level",
        action="store_const",
        const="debug",
        default=argparse.SUPPRESS,
        help="debug logs: the same as --log-level debug",
    )
    parser = argparse.ArgumentParser(
        prog="tubelet",
        description="Turn raw videos into spatio-temporal instruction datasets.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"tubelet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[common],
        )

    run.add_commands(add)
    dataset.add_commands(add)
    review.add_commands(add, common)
    preview.add_commands(add)
    release.add_commands(add)
    pipelines.add_commands(add)
    export.add_commands(add)
    return parser


class _CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is now, so an in-process caller may swap it."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def _setup_logging(level: str) -> None:
    handler = _CurrentStderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    for name in ("tubelet",):
        logger = logging.getLogger(name)
        logger.setLevel(level.upper())
        if not logger.handlers:
            logger.addHandler(handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``tubelet``; returns the exit code (see the module docstring)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse: 0 for --help, 2 for bad arguments
        return int(exit_.code or 0)
    try:
        level = log_level(args, "warning")
    except CommandError as error:
        _error(str(error))
        return error.exit_code
    if args.func is not run.cmd_run:  # a run installs its own log handlers (tubelet.engine.logs)
        _setup_logging(level)
    debug = level == "debug"
    try:
        return args.func(args)
    except KeyboardInterrupt as error:
        _error("interrupted; committed shards are kept, run again to resume")
        return exit_code_of(error)
    except BrokenPipeError:
        # `tubelet query ... | head`: the reader left; not an error of ours
        sys.stderr.close()
        return EXIT_OK
    except Exception as error:  # noqa: BLE001 - every failure becomes one line and its exit code
        if debug:
            traceback.print_exc()
        _error(_describe(error), hint=not debug and not _expected(error))
        return exit_code_of(error)


def _expected(error: BaseException) -> bool:
    """Errors whose message says it all (no 'use --log-level debug' hint)."""
    return isinstance(error, (CommandError, ManifestError, FileNotFoundError, ClusterConnectionError))


def _describe(error: BaseException) -> str:
    if isinstance(error, (CommandError, ManifestError, ClusterConnectionError)):
        return str(error)
    if isinstance(error, FileNotFoundError):
        return one_line(str(error))
    return f"{type(error).__name__}: {one_line(str(error))}"


def _error(message: str, *, hint: bool = False) -> None:
    # One line per problem (a manifest may have several), the hint on the last.
    lines = message.splitlines() or [""]
    if hint:
        lines[-1] += " (--log-level debug shows the traceback)"
    for line in lines:
        print(f"tubelet: error: {line}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
