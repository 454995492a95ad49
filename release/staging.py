"""Folders that appear whole or not at all: built in a hidden sibling, renamed into place.

A release and an export are both written this way, so a reader never sees half of one
and a failed build leaves nothing behind; neither ever writes into a folder that holds
files already.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def is_free(dest: Path) -> bool:
    """Whether ``dest`` is absent or an empty folder (a place a new folder may go)."""
    return not dest.exists() or (dest.is_dir() and not any(dest.iterdir()))


@contextmanager
def staged_folder(dest: Path, tag: str) -> Iterator[Path]:
    """A hidden sibling folder to build ``dest`` in (``.<name>.<tag>-<pid>``): renamed to
    ``dest`` when the block succeeds, removed when it fails. ``dest`` must be free."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f".{dest.name}.{tag}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        if dest.exists():
            dest.rmdir()  # empty: callers check is_free first
        os.rename(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
