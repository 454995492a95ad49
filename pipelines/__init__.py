"""Named pipelines, each assembled from stages in a short module of its own.

``build_pipeline(name, params)`` resolves a manifest's ``pipeline:``; ``pipeline_for(config)``
builds a loaded manifest's (its path params resolved from the manifest's folder);
``run_manifest`` builds it and runs it.
"""

from tubelet.pipelines.registry import PIPELINES, build_pipeline, pipeline_for, run_manifest

__all__ = ["PIPELINES", "build_pipeline", "pipeline_for", "run_manifest"]
