"""The tubelet runtime: stages, pipelines, runners, video IO, shard writer, CLI."""

from tubelet.engine.pipeline import Pipeline
from tubelet.engine.resources import Resources
from tubelet.engine.stage import Stage
from tubelet.engine.task import VideoTask

__all__ = ["Pipeline", "Resources", "Stage", "VideoTask"]
