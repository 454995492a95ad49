"""Named pipelines, each assembled from stages in a short module of its own.

``build_pipeline(name, params)`` resolves a manifest's ``pipeline:``; ``run_manifest``
builds it and runs it.
"""

from tubelet.pipelines.registry import PIPELINES, build_pipeline, run_manifest

__all__ = ["PIPELINES", "build_pipeline", "run_manifest"]
