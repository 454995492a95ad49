"""What every runner shares: the settings a worker applies when it starts, setting a stage
up, and running stages over a bundle of tasks."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from tubelet.engine import worker_progress
from tubelet.engine.parts import PartRecord, write_tasks
from tubelet.engine.stage import Stage, run_stage
from tubelet.engine.storage import Storage
from tubelet.engine.task import VideoTask
from tubelet.engine.video_backend import VideoBackendError, get_video_backend, resolve_backend, set_video_backend
from tubelet.engine.worker_progress import ProgressLink

log = logging.getLogger(__name__)


class StageSetupError(RuntimeError):
    """A stage's ``setup()`` raised: the run stops (a missing model is no per-video failure)."""


class PartWriteError(RuntimeError):
    """A worker could not write a part (storage full, unreachable, refused): the run stops."""


class RunnerError(RuntimeError):
    """What runs the stages broke, through no video's fault — this machine's Ray raylet or
    GCS died, actors that keep dying, a worker pool that cannot start: the run stops as
    failed, saying what died; what it committed is kept."""


@dataclass(frozen=True)
class WorkerSettings:
    """Per-process settings of a run, which every worker applies before it sets its
    stages up: in the driver (inline), a pool process, a Ray actor or task process on
    any node. They travel with the work, so a worker needs nothing from its environment.

    ``video_backend``: what ``VideoReader`` decodes files with ("auto", "decord",
    "pyav"); ``auto`` is resolved by each worker (decord where it imports); None leaves
    the worker's own choice (``TUBELET_VIDEO_BACKEND``, else auto). ``run_pipeline``
    always sets it.

    ``progress``: where the worker reports what it is doing (``worker_progress``); the
    runners set it when the run shows progress.
    """

    video_backend: str | None = None
    progress: ProgressLink | None = None

    def apply(self) -> str | None:
        """Make these the process's defaults; returns the previous video backend (for
        ``restore``). A backend that cannot be used here is a StageSetupError (the run stops)."""
        worker_progress.connect(self.progress)
        previous = get_video_backend()
        if self.video_backend is None:
            return previous
        set_video_backend(self.video_backend)
        try:
            resolve_backend(self.video_backend)
        except VideoBackendError as error:
            set_video_backend(previous)
            raise StageSetupError(f"worker: {error}") from error
        return previous

    @staticmethod
    def restore(previous: str | None) -> None:
        """Undo ``apply`` (the inline runner, which shares the driver's process)."""
        set_video_backend(previous)
        worker_progress.connect(None)


def setup_stage(stage: Stage) -> None:
    """Call ``stage.setup()``, turning its error into a one-line StageSetupError."""
    try:
        stage.setup()
    except Exception as error:
        raise StageSetupError(f"stage {stage.name}: setup() failed: {type(error).__name__}: {error}") from error


def teardown_stage(stage: Stage) -> None:
    """Call ``stage.teardown()``; a failure is logged, never raised (it must not hide the run's outcome)."""
    try:
        stage.teardown()
    except Exception:
        log.exception("teardown of stage %s failed", stage.name)


def batch_size(stage: Stage) -> int:
    """The stage's batch size, at least 1."""
    return max(int(stage.batch_size or 1), 1)


def run_stages(stages: Sequence[Stage], tasks: list[VideoTask]) -> list[VideoTask]:
    """Every stage in order over ``tasks``, each in batches of its own batch size, failures
    isolated per video (``run_stage``). The stages must be set up."""
    for stage in stages:
        size = batch_size(stage)
        tasks = [t for i in range(0, len(tasks), size) for t in _run_batch(stage, tasks[i : i + size])]
    return tasks


def _run_batch(stage: Stage, batch: list[VideoTask]) -> list[VideoTask]:
    """``run_stage``, with the driver told which stage runs on which videos."""
    with worker_progress.stage_batch(stage.name, [t for t in batch if not t.failed]):
        return run_stage(stage, batch)


def write_bundle(storage: Storage, shard: str, tasks: list[VideoTask]) -> PartRecord:
    """Write finished tasks as part ``shard``; PartWriteError (which stops the run) when
    the storage refuses: that is no fault of the videos."""
    try:
        return write_tasks(storage, shard, tasks)
    except Exception as error:
        raise PartWriteError(
            f"cannot write part {shard} to {storage.root}: {type(error).__name__}: {' '.join(str(error).split())}"
        ) from error


def process_bundle(stages: Sequence[Stage], storage: Storage, shard: str, tasks: list[VideoTask]) -> PartRecord:
    """What a worker does with a bundle: every stage, then write it as a part."""
    return write_bundle(storage, shard, run_stages(stages, tasks))
