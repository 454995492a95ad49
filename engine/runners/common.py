"""What every runner shares: setting a stage up, and running stages over a bundle of tasks."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from tubelet.engine.parts import PartRecord, write_tasks
from tubelet.engine.stage import Stage, run_stage
from tubelet.engine.storage import Storage
from tubelet.engine.task import VideoTask

log = logging.getLogger(__name__)


class StageSetupError(RuntimeError):
    """A stage's ``setup()`` raised: the run stops (a missing model is no per-video failure)."""


class PartWriteError(RuntimeError):
    """A worker could not write a part (storage full, unreachable, refused): the run stops."""


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
        tasks = [t for i in range(0, len(tasks), size) for t in run_stage(stage, tasks[i : i + size])]
    return tasks


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
