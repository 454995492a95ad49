"""Pipelines by name: what a manifest's ``pipeline:`` key resolves to.

A pipeline module exposes ``build(params: dict) -> Pipeline``, declared with
``@takes_params(Model)``: it validates its own parameters and raises ValueError naming
the bad one. Its module docstring's first line is the pipeline's one-line description.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import Any

from tubelet.engine.config import RunConfig
from tubelet.engine.errors import one_line
from tubelet.engine.manifest import manifest_error
from tubelet.engine.pipeline import Pipeline
from tubelet.engine.run import RunSummary, run_pipeline
from tubelet.pipelines.params import ParamPaths, ParamsError, check_params, params_model_of, resolve_paths

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

    Raises UnknownPipelineError for a name that is neither, saying which names are known.
    """
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            builder: Builder = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as error:
            raise UnknownPipelineError(f"cannot load the pipeline {name!r}: {error}") from error
        return builder
    if name not in PIPELINES:
        close = difflib.get_close_matches(name, list(PIPELINES), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownPipelineError(
            f"unknown pipeline {name!r}{hint} (known: {', '.join(PIPELINES)}; or package.module:function)"
        )
    registered: Builder = importlib.import_module(PIPELINES[name]).build
    return registered


class UnknownPipelineError(KeyError):
    """A pipeline name that is not registered, or a ``module:function`` that cannot be loaded."""

    def __str__(self) -> str:  # KeyError's own quotes the message
        return str(self.args[0]) if self.args else ""


def build_pipeline(name: str, params: dict[str, Any] | None = None, paths: ParamPaths | None = None) -> Pipeline:
    """Build the pipeline called ``name`` with the manifest's ``params``.

    ``name`` is a registered name, or ``"package.module:function"`` for a user's own
    pipeline (the function takes the params dict). The params are checked against the
    pipeline's declared model (nested params too) and its path parameters resolved
    (``tubelet.pipelines.params.PATH_RULE``) from ``paths`` — by default the current
    directory; ``pipeline_for`` passes the manifest's folder — before the builder runs.
    Raises UnknownPipelineError, or ParamsError (a ValueError) listing every bad parameter.
    """
    builder = builder_of(name)
    params = dict(params or {})
    model = params_model_of(builder)
    if model is not None:
        problems = check_params(model, params)
        try:
            params = resolve_paths(model, params, paths or ParamPaths(), pipeline=name)
        except ParamsError as error:
            problems += error.problems
        if problems:
            raise ParamsError(name, problems)
    return builder(params)


def pipeline_for(config: RunConfig) -> Pipeline:
    """The manifest's pipeline, its path params resolved from the manifest's folder
    (those given with ``--set``: from the folder they were given in).

    Nothing is run or written: a pipeline name or a parameter the pipeline refuses is a
    ManifestError naming the manifest's file and line (or the ``--set`` option) and the
    key, like the loader's own errors.
    """
    try:
        return build_pipeline(config.pipeline, config.params, ParamPaths.of(config))
    except UnknownPipelineError as error:
        raise manifest_error(config, [(("pipeline",), str(error))]) from None
    except ParamsError as error:
        raise manifest_error(config, [(("params", *loc), message) for loc, message in error.problems]) from None
    except ValueError as error:  # the builder's own check across parameters
        raise manifest_error(config, [(("params",), one_line(error))]) from None


def run_manifest(config: RunConfig, **options: Any) -> RunSummary:
    """Build the manifest's pipeline, then run it (``tubelet.engine.run.run_pipeline``)."""
    return run_pipeline(pipeline_for(config), config, **options)
