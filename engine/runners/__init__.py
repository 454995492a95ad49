"""Runners: run a pipeline's stages over a stream of tasks; parts are written where the
tasks finish and committed by the driver (``engine.runners.streaming``).

Every runner has the same interface and writes the same rows for the same input:

    runner.run(pipeline, tasks, writer, progress) -> StreamStats

- ``process``: a pool of worker processes on this machine (no GPU scheduling);
- ``ray``: Ray tasks and actor pools, on a private local instance or a cluster;
- ``inline``: in this process (debugging, the smallest tests);
- ``auto`` (the default) picks ``ray`` for a cluster address or a stage that needs a
  GPU; otherwise ``process``, or ``inline`` for a single video, or a small job of cheap
  stages (no model to load), where starting workers would cost more than they save; it
  says why in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol

from tubelet.engine.config import RayOptions
from tubelet.engine.pipeline import Pipeline
from tubelet.engine.progress import Progress
from tubelet.engine.runners.common import WorkerSettings
from tubelet.engine.runners.inline import InlineRunner
from tubelet.engine.runners.process_runner import ProcessRunner, available_cpus
from tubelet.engine.runners.ray_instance import cluster_address
from tubelet.engine.runners.ray_runner import RayRunner
from tubelet.engine.runners.streaming import StreamStats
from tubelet.engine.task import VideoTask
from tubelet.engine.writer import ShardWriter

__all__ = [
    "InlineRunner",
    "ProcessRunner",
    "RayRunner",
    "Runner",
    "WorkerSettings",
    "choose_runner",
    "make_runner",
]

log = logging.getLogger(__name__)

RUNNERS = ("auto", "process", "ray", "inline")
#: Up to this many videos, a pipeline with no model (probe, import) runs inline under
#: ``auto``: a worker pool costs ~0.7 s to start and saves ~6 ms a video on 2 cores
#: (docs/benchmarks.md, "Runners").
SMALL_CHEAP_JOB = 128


class Runner(Protocol):
    """What run_pipeline needs of a runner."""

    name: str

    def run(
        self, pipeline: Pipeline, tasks: Iterable[VideoTask], writer: ShardWriter, progress: Progress | None = None
    ) -> StreamStats:
        """Run every stage over ``tasks``; commit each finished part with ``writer``."""
        ...


def make_runner(
    name: str,
    ray_options: RayOptions | None = None,
    *,
    address: str | None = None,
    settings: WorkerSettings | None = None,
) -> Runner:
    """The runner called ``name`` ("process", "ray" or "inline"); ``address`` overrides
    ``ray_options.address``; every worker applies ``settings`` (e.g. the video backend)."""
    options = ray_options or RayOptions()
    if name == "inline":
        return InlineRunner(settings)
    if name == "process":
        return ProcessRunner(workers=options.num_cpus, settings=settings)
    if name == "ray":
        return RayRunner(
            address=address or options.address,
            num_cpus=options.num_cpus,
            num_gpus=options.num_gpus,
            settings=settings,
        )
    raise ValueError(f"unknown runner {name!r}; choose one of {', '.join(RUNNERS)}")


def choose_runner(
    name: str,
    pipeline: Pipeline,
    ray_options: RayOptions | None = None,
    *,
    address: str | None = None,
    pending: int | None = None,
    settings: WorkerSettings | None = None,
) -> Runner:
    """``make_runner(name)``, where ``auto`` becomes ``ray``, ``process`` or ``inline``
    (logged with the reason); ``pending`` is how many videos the run will process."""
    options = ray_options or RayOptions()
    if name != "auto":
        log.info("runner: %s (asked for)", name, extra={"event": "runner", "runner": name})
        return make_runner(name, options, address=address, settings=settings)
    target = cluster_address(address or options.address)
    gpu_stages = [s.name for s in pipeline.stages if s.resources.gpus > 0]
    if target:
        chosen, why = "ray", f"joining the Ray cluster at {target}"
    elif gpu_stages or options.num_gpus:
        chosen, why = "ray", f"{', '.join(gpu_stages) or 'ray.num_gpus'} needs GPUs, which Ray schedules"
    elif pending is not None and pending <= 1:
        chosen, why = (
            "inline",
            f"{pending} video{'' if pending == 1 else 's'} to process: nothing to share between workers",
        )
    elif pending is not None and pending <= SMALL_CHEAP_JOB and not any(s.needs_actor for s in pipeline.stages):
        chosen, why = (
            "inline",
            f"{pending} videos and no model to load: workers would cost more to start than they save",
        )
    else:
        workers = options.num_cpus or available_cpus()
        chosen = "process"
        why = (
            f"{workers} worker processes on this machine: no GPU stage and no cluster address "
            "(Ray would add seconds of start-up; --runner ray to use it)"
        )
    log.info("runner: %s (%s)", chosen, why, extra={"event": "runner", "runner": chosen, "reason": why})
    return make_runner(chosen, options, address=target, settings=settings)
