"""Pipelines by name: what a manifest's ``pipeline:`` key resolves to.

A pipeline module exposes ``build(params: dict) -> Pipeline``, declared with
``@takes_params(Model)``: it validates its own parameters and raises ValueError naming
the bad one. Its module docstring's first line is the pipeline's one-line description.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from tubelet.engine.config import RunConfig
from tubelet.engine.pipeline import Pipeline
from tubelet.engine.run import RunSummary, run_pipeline
from tubelet.pipelines.params import ParamPaths, params_model_of, resolve_paths

#: pipeline name -> module that builds it (imported only when asked for: each pulls in
#: its own annotators)
PIPELINES: dict[str, str] = {
    "ingest": "tubelet.pipelines.ingest",
    "import": "tubelet.pipelines.import_gt",
    "track": "tubelet.pipelines.track",
    "unistg": "tubelet.pipelines.unistg",
    "strefer": "tubelet.pipelines.strefer",
}

Builder = Callable[[dict[str, Any]], Pipeline]


def builder_of(name: str) -> Builder:
    """The function that builds the pipeline ``name``: a registered name, or
    ``"package.module:function"`` for a user's own pipeline outside this package.

    Raises KeyError (listing the known names) for an unknown name, ImportError or
    AttributeError for a ``module:function`` that cannot be imported.
    """
    if ":" in name:
        module_name, _, attr = name.partition(":")
        builder: Builder = getattr(importlib.import_module(module_name), attr)
        return builder
    if name not in PIPELINES:
        raise KeyError(f"unknown pipeline {name!r}; known: {', '.join(sorted(PIPELINES))}")
    registered: Builder = importlib.import_module(PIPELINES[name]).build
    return registered


def build_pipeline(name: str, params: dict[str, Any] | None = None, paths: ParamPaths | None = None) -> Pipeline:
    """Build the pipeline called ``name`` with the manifest's ``params``.

    ``name`` is a registered name, or ``"package.module:function"`` for a user's own
    pipeline (the function takes the params dict). Path parameters of its params model
    are resolved first (``tubelet.pipelines.params.PATH_RULE``) from ``paths`` — by
    default the current directory; ``pipeline_for`` passes the manifest's folder.
    """
    builder = builder_of(name)
    params = dict(params or {})
    model = params_model_of(builder)
    if model is not None:
        try:
            params = resolve_paths(model, params, paths or ParamPaths())
        except ValueError as error:
            raise ValueError(f"{name}: bad params: {error}") from None
    return builder(params)


def pipeline_for(config: RunConfig) -> Pipeline:
    """The manifest's pipeline, its path params resolved from the manifest's folder
    (those given with ``--set``: from the folder they were given in)."""
    return build_pipeline(config.pipeline, config.params, ParamPaths.of(config))


def run_manifest(config: RunConfig, **options: Any) -> RunSummary:
    """Build the manifest's pipeline, then run it (``tubelet.engine.run.run_pipeline``)."""
    return run_pipeline(pipeline_for(config), config, **options)
