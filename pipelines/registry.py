"""Pipelines by name: what a manifest's ``pipeline:`` key resolves to.

A pipeline module exposes ``build(params: dict) -> Pipeline``; it validates its own
parameters and raises ValueError naming the bad one.
"""

from __future__ import annotations

import importlib
from typing import Any

from tubelet.engine.config import RunConfig
from tubelet.engine.pipeline import Pipeline
from tubelet.engine.run import RunSummary, run_pipeline

#: pipeline name -> module that builds it (imported only when asked for: each pulls in
#: its own annotators)
PIPELINES: dict[str, str] = {
    "ingest": "tubelet.pipelines.ingest",
    "import": "tubelet.pipelines.import_gt",
    "track": "tubelet.pipelines.track",
    "unistg": "tubelet.pipelines.unistg",
    "strefer": "tubelet.pipelines.strefer",
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


def run_manifest(config: RunConfig, **options: Any) -> RunSummary:
    """Build the manifest's pipeline, then run it (``tubelet.engine.run.run_pipeline``)."""
    return run_pipeline(build_pipeline(config.pipeline, config.params), config, **options)
