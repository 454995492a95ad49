"""Runners: run a pipeline's stages over tasks and hand each finished task to the writer.

Both runners have the same interface and write identical rows for the same input:

    runner.run(pipeline, tasks, writer, progress)

``InlineRunner`` runs in-process (debugging, the smallest tests); ``RayRunner`` streams
the tasks through Ray Data (the default, on one machine or a cluster).
"""

from __future__ import annotations

from typing import Protocol

from tubelet.engine.config import RayOptions
from tubelet.engine.pipeline import Pipeline
from tubelet.engine.progress import Progress
from tubelet.engine.runners.inline import InlineRunner
from tubelet.engine.runners.ray_runner import RayRunner
from tubelet.engine.task import VideoTask
from tubelet.engine.writer import ShardWriter

__all__ = ["InlineRunner", "RayRunner", "Runner", "make_runner"]

RUNNERS = ("ray", "inline")


class Runner(Protocol):
    """What run_manifest needs of a runner."""

    name: str

    def run(
        self, pipeline: Pipeline, tasks: list[VideoTask], writer: ShardWriter, progress: Progress | None = None
    ) -> None:
        """Run every stage over ``tasks``; ``writer.add`` each finished task exactly once."""
        ...


def make_runner(name: str, ray_options: RayOptions | None = None, *, address: str | None = None) -> Runner:
    """The runner called ``name`` ("ray" or "inline"); ``address`` overrides ``ray_options.address``."""
    if name == "inline":
        return InlineRunner()
    if name == "ray":
        options = ray_options or RayOptions()
        return RayRunner(
            address=address or options.address,
            num_cpus=options.num_cpus,
            num_gpus=options.num_gpus,
        )
    raise ValueError(f"unknown runner {name!r}; choose one of {', '.join(RUNNERS)}")
