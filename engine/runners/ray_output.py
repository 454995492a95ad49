"""Ray's own output: kept off the user's console unless debug logs were asked for.

Ray prints a good deal that says nothing to someone running tubelet: the token-mode
warning of every local start, its C++ log lines (e.g. the ``E`` line about "constructor
arguments in the object store"), Ray Data's console messages ("Progress bars
disabled", "Starting execution of Dataset …") when a stage uses Ray Data, and whatever
its worker processes print in its own formats. While a run holds a Ray session, unless
the ``tubelet`` loggers are at DEBUG (``tubelet -v``, ``--log-level debug``,
``TUBELET_LOG_LEVEL=debug``):

- the driver's ``ray`` loggers stop below ERROR (``quiet_driver_logs``);
- the lines Ray forwards from its workers and raylets (``log_to_driver``) pass through
  a filter that drops the lines in Ray's own formats and Ray Data's messages, and keeps
  everything else — what a stage or tubelet's own loggers print in a worker still shows
  (``filter_forwarded_lines``). Dropped lines go to the ``tubelet`` DEBUG log.

What it cannot reach: a C++ log line of the driver process itself, written straight to
its stderr (file descriptor 2) — tubelet's driver creates no actor that makes one.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)

#: Ray's C++ log format: ``[2026-01-02 03:04:05,678 E 123 456] core_worker.cc:2465: …``.
_CPP_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [DIWEF] \d+ \d+\] ")
#: Ray's Python log format: ``2026-01-02 03:04:05,678\tWARNING file.py:85 -- …``.
_PY_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\s+(DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+:\d+ -- ")
#: Ray Data's console messages, which a worker prints without any format.
_RAY_DATA_LINE = re.compile(
    r"^(Registered dataset logger for dataset|Starting execution of Dataset|Execution plan of Dataset|"
    r"Progress bars (for operators )?disabled|✔️\s+Dataset \S+ execution finished)"
)
#: The name Ray gives its console printer of forwarded lines (``ray._private.worker.connect``).
_PRINTER = "ray_print_logs"


def wants_ray_output() -> bool:
    """Whether the user asked for debug logs (then Ray's output is left as Ray prints it)."""
    return logging.getLogger("tubelet").isEnabledFor(logging.DEBUG)


def is_ray_noise(line: str) -> bool:
    """Whether ``line`` is Ray's own output rather than a stage's or tubelet's."""
    return bool(_CPP_LINE.match(line) or _PY_LINE.match(line) or _RAY_DATA_LINE.match(line))


@contextlib.contextmanager
def quiet_driver_logs() -> Iterator[int]:
    """The driver's ``ray`` loggers at ERROR (at WARNING, Ray's usual, when debug logs were
    asked for) while the block runs; yields the level for ``ray.init(logging_level=...)``."""
    level = logging.WARNING if wants_ray_output() else logging.ERROR
    ray_logger = logging.getLogger("ray")
    saved = ray_logger.level
    ray_logger.setLevel(level)
    try:
        yield level
    finally:
        ray_logger.setLevel(saved)


def filter_forwarded_lines() -> None:
    """Put the filter in front of Ray's printer of forwarded lines (call after
    ``ray.init``; ``ray.shutdown`` removes it with the printer). Does nothing when debug
    logs were asked for, or when this Ray has no such printer (its output is then left
    as it is)."""
    if wants_ray_output():
        return
    try:
        from ray._private.ray_logging import global_worker_stdstream_dispatcher as dispatcher
    except ImportError:
        return
    printer = dict(getattr(dispatcher, "handlers", [])).get(_PRINTER)
    if printer is None:
        return

    def filtered(data: dict[str, Any]) -> None:
        kept = []
        for line in data.get("lines") or []:
            if is_ray_noise(line):
                log.debug("ray (%s): %s", data.get("actor_name") or data.get("pid"), line)
            else:
                kept.append(line)
        if kept:
            printer({**data, "lines": kept})

    dispatcher.remove_handler(_PRINTER)
    dispatcher.add_handler(_PRINTER, filtered)
