"""The tubelet runtime: stages, pipelines, runners, video IO, shard writer, CLI."""

from engine.pipeline import Pipeline
from engine.resources import Resources
from engine.stage import Stage
from engine.task import VideoTask

__all__ = ["Pipeline", "Resources", "Stage", "VideoTask"]
