"""InlineRunner: every stage in this process, a bundle at a time (debugging, small tests)."""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Iterable, Sequence

from tubelet.engine.parts import PartRecord
from tubelet.engine.pipeline import Pipeline
from tubelet.engine.progress import Progress
from tubelet.engine.runners.common import WorkerSettings, process_bundle, setup_stage, teardown_stage
from tubelet.engine.runners.plan import smallest_bundle
from tubelet.engine.runners.streaming import Bundle, StreamStats, stream
from tubelet.engine.stage import Stage
from tubelet.engine.storage import Storage
from tubelet.engine.task import VideoTask
from tubelet.engine.worker_progress import CallbackLink
from tubelet.engine.writer import ShardWriter


class InlineRunner:
    """Runs the stages in-process: ``setup()`` once each before the first bundle, parts of
    ``shard_size`` videos written and committed as the run goes on. ``settings`` apply
    to this process for the run's length."""

    name = "inline"

    def __init__(self, settings: WorkerSettings | None = None) -> None:
        self.settings = settings or WorkerSettings()

    def run(
        self, pipeline: Pipeline, tasks: Iterable[VideoTask], writer: ShardWriter, progress: Progress | None = None
    ) -> StreamStats:
        """Run ``pipeline`` over ``tasks`` and commit each bundle's part with ``writer``."""
        link = CallbackLink(writer.run_id, progress.worker_report) if progress is not None else None
        backend = InlineBackend(pipeline.stages, writer.storage, dataclasses.replace(self.settings, progress=link))
        return stream(
            tasks, backend, writer, progress, bundle_size=writer.shard_size, min_bundle=smallest_bundle(pipeline.stages)
        )


class InlineBackend:
    """Processes one queued bundle per ``poll``, in this process, so each bundle is
    committed before the next one starts."""

    slots = 1

    def __init__(self, stages: Sequence[Stage], storage: Storage, settings: WorkerSettings | None = None) -> None:
        self.stages = list(stages)
        self.storage = storage
        self.settings = settings or WorkerSettings()
        self._previous: str | None = None
        self._applied = False
        self._started: list[Stage] | None = None
        self._queue: deque[Bundle] = deque()

    def submit(self, bundle: Bundle) -> None:
        self._queue.append(bundle)

    def poll(self, timeout_s: float) -> list[tuple[Bundle, PartRecord | BaseException]]:
        if not self._queue:
            return []
        if self._started is None:
            self._setup()
        bundle = self._queue.popleft()
        return [(bundle, process_bundle(self.stages, self.storage, bundle.shard, bundle.tasks))]

    def close(self) -> None:
        for stage in reversed(self._started or []):
            teardown_stage(stage)
        self._started = []
        if self._applied:  # the driver's own defaults again
            WorkerSettings.restore(self._previous)
            self._applied = False

    def _setup(self) -> None:
        self._started = []
        self._previous, self._applied = self.settings.apply(), True
        for stage in self.stages:
            setup_stage(stage)  # a failure leaves the ones already set up for close()
            self._started.append(stage)
