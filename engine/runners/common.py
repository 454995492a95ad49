"""What both runners share: handing finished tasks over, and setting up a stage."""

from __future__ import annotations

from tubelet.engine.progress import Progress
from tubelet.engine.stage import Stage
from tubelet.engine.task import VideoTask
from tubelet.engine.writer import ShardWriter


class StageSetupError(RuntimeError):
    """A stage's ``setup()`` raised: the run stops (a missing model is no per-video failure)."""


def setup_stage(stage: Stage) -> None:
    """Call ``stage.setup()``, turning its error into a one-line StageSetupError."""
    try:
        stage.setup()
    except Exception as error:
        raise StageSetupError(f"stage {stage.name}: setup() failed: {type(error).__name__}: {error}") from error


def deliver(task: VideoTask, writer: ShardWriter, progress: Progress | None) -> None:
    """Hand a finished task to the writer and count it."""
    if writer.add(task) and progress is not None:
        progress.advance(failed=task.failed)


def batch_size(stage: Stage) -> int:
    """The stage's batch size, at least 1."""
    return max(int(stage.batch_size or 1), 1)
