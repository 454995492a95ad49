"""InlineRunner: every stage in this process, one chunk of tasks at a time."""

from __future__ import annotations

import logging

from tubelet.engine.pipeline import Pipeline
from tubelet.engine.progress import Progress
from tubelet.engine.runners.common import batch_size, deliver, setup_stage
from tubelet.engine.stage import Stage, run_stage
from tubelet.engine.task import VideoTask
from tubelet.engine.writer import ShardWriter

log = logging.getLogger(__name__)


class InlineRunner:
    """Runs stages in-process: ``setup()`` once each, batches of ``stage.batch_size``.

    Tasks go through all stages a chunk at a time (the largest batch size), so finished
    videos reach the writer, and get committed, while the run goes on.
    """

    name = "inline"

    def run(
        self, pipeline: Pipeline, tasks: list[VideoTask], writer: ShardWriter, progress: Progress | None = None
    ) -> None:
        """Run ``pipeline`` over ``tasks`` (mutated in place) and add each to ``writer``."""
        if not tasks:
            return
        started: list[Stage] = []
        try:
            for stage in pipeline.stages:
                setup_stage(stage)
                started.append(stage)
            chunk = max([batch_size(s) for s in pipeline.stages] + [1])
            for start in range(0, len(tasks), chunk):
                batch = tasks[start : start + chunk]
                for stage in pipeline.stages:
                    size = batch_size(stage)
                    batch = [t for i in range(0, len(batch), size) for t in run_stage(stage, batch[i : i + size])]
                for task in batch:
                    deliver(task, writer, progress)
        finally:
            for stage in reversed(started):
                try:
                    stage.teardown()
                except Exception:
                    log.exception("teardown of stage %s failed", stage.name)
