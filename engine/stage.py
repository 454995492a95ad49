"""Stage: a named step of a pipeline, and the one place that isolates its failures."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from typing import ClassVar

from typing_extensions import Self

from tubelet.engine.resources import Resources
from tubelet.engine.task import VideoTask

log = logging.getLogger(__name__)


class Stage:
    """A step of a pipeline.

    Subclasses are usually dataclasses whose fields are the stage's typed config. They
    override ``process`` and, when they hold a model, ``setup``/``teardown``. Import
    model libraries inside ``setup()`` so importing the stage never needs them.

    The contract every runner keeps (inline, Ray tasks and Ray actors alike): ``setup()``
    runs once per worker before its first batch, then ``process`` on batches of up to
    ``batch_size`` tasks, then ``teardown()`` when the worker is done. A stage never calls
    its own ``setup()``; outside a runner, use ``with stage.started(): ...``. Stages that
    keep state (``needs_actor``: a ``setup()`` of their own or a GPU) run in an actor pool
    on Ray, so the model stays loaded; the others run as tasks.
    """

    name: ClassVar[str] = ""
    resources: Resources = Resources()
    batch_size: int = 1

    @property
    def model_id(self) -> str | None:
        """Identifier of the model (and revision) this stage uses, recorded in
        meta/info.json; None for a stage without a model. Known at configuration time."""
        return None

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("name"):
            # ProbeVideo -> probe_video
            cls.name = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()

    def setup(self) -> None:
        """Load models or open resources, once per worker."""

    def process(self, batch: list[VideoTask]) -> list[VideoTask]:
        """Annotate a batch of tasks in place or return new ones (same length, same order)."""
        raise NotImplementedError

    def teardown(self) -> None:
        """Release what ``setup`` acquired."""

    @contextlib.contextmanager
    def started(self) -> Iterator[Self]:
        """``setup()`` now and ``teardown()`` on leaving: run a stage by hand, outside a runner."""
        self.setup()
        try:
            yield self
        finally:
            self.teardown()

    @property
    def needs_actor(self) -> bool:
        """Whether workers must keep state between batches (a loaded model, a GPU)."""
        return type(self).setup is not Stage.setup or self.resources.gpus > 0


def run_stage(stage: Stage, batch: list[VideoTask]) -> list[VideoTask]:
    """Run ``stage`` on the live tasks of ``batch``; a failing video never fails the batch.

    Failed tasks pass through untouched. If the batch raises, each task is retried on
    its own so that only the videos that really fail are marked failed.
    """
    live = [t for t in batch if not t.failed]
    if not live:
        return batch
    try:
        done = _process_checked(stage, live)
    except Exception as batch_error:  # noqa: BLE001 - isolate per video below
        if len(live) == 1:
            live[0].fail(stage.name, batch_error)
            return batch
        log.info("stage %s failed on a batch of %d; retrying one by one", stage.name, len(live))
        done = []
        for task in live:
            try:
                done.extend(_process_checked(stage, [task]))
            except Exception as error:  # noqa: BLE001
                task.fail(stage.name, error)
                done.append(task)
    by_id = {t.video_id: t for t in done}
    return [by_id.get(t.video_id, t) for t in batch]


def _process_checked(stage: Stage, tasks: list[VideoTask]) -> list[VideoTask]:
    out = stage.process(tasks)
    if len(out) != len(tasks):
        raise RuntimeError(f"stage {stage.name} returned {len(out)} tasks for {len(tasks)}")
    return out
