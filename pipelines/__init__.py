"""Named pipelines, each assembled from stages in a short module of its own.

A pipeline module exposes ``build(params: dict) -> engine.pipeline.Pipeline``; it
validates its own parameters and raises ValueError naming the bad one.
"""

from __future__ import annotations

import importlib
from typing import Any

from engine.pipeline import Pipeline

#: pipeline name -> module that builds it (imported only when asked for)
PIPELINES: dict[str, str] = {
    "ingest": "pipelines.ingest",
    "import": "pipelines.import_gt",
    "track": "pipelines.track",
    "unistg": "pipelines.unistg",
    "strefer": "pipelines.strefer",
}


def build_pipeline(name: str, params: dict[str, Any] | None = None) -> Pipeline:
    """Build the pipeline called ``name`` with the manifest's ``params``.

    ``name`` is a registered name, or ``"package.module:function"`` for a user's own
    pipeline outside this package (the function takes the params dict).
    """
    if ":" in name:
        module_name, _, attr = name.partition(":")
        return getattr(importlib.import_module(module_name), attr)(dict(params or {}))
    if name not in PIPELINES:
        raise KeyError(f"unknown pipeline {name!r}; known: {', '.join(sorted(PIPELINES))}")
    module = importlib.import_module(PIPELINES[name])
    return module.build(dict(params or {}))
