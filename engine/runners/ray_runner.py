"""RayRunner: bundles streamed through a pipeline's steps on Ray, written where they finish.

The pipeline's stages are grouped into steps (``plan``: consecutive stages on the same
kind of device). A step that keeps state runs in an actor pool sized to what the
cluster holds; the others run as Ray tasks. A bundle of videos enters as one object,
goes from step to step as an object reference (worker to worker, never through the
driver), and the last step writes its part to the dataset and returns only the
``PartRecord`` the driver commits.

``setup()`` runs once per worker before its first bundle: in an actor's constructor, or,
for a step run as tasks, the first time a worker process runs it (``ready_stages``);
``teardown()`` when the actor ends or the process exits.

Failures: a Python error inside a stage is isolated per video by ``run_stage``; a
``StageSetupError`` or ``PartWriteError`` stops the run; a worker or actor that dies
loses its bundle, which ``streaming`` retries video by video (a dead actor is replaced);
this machine's raylet or GCS dying, or actors that keep dying, is a ``RunnerError``: the
run stops as failed, saying what died.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import logging
import re
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tubelet.engine.parts import PartRecord
from tubelet.engine.pipeline import Pipeline
from tubelet.engine.progress import Progress, ReportPump
from tubelet.engine.resources import Resources
from tubelet.engine.runners.common import (
    PartWriteError,
    RunnerError,
    StageSetupError,
    WorkerSettings,
    run_stages,
    setup_stage,
    teardown_stage,
    write_bundle,
)
from tubelet.engine.runners.plan import Step, cluster_of, plan_steps, size_steps, smallest_bundle
from tubelet.engine.runners.ray_instance import alive_nodes, dead_local_ray, ray_session
from tubelet.engine.runners.streaming import Bundle, StreamStats, stream
from tubelet.engine.stage import Stage
from tubelet.engine.storage import Storage, open_storage
from tubelet.engine.task import VideoTask
from tubelet.engine.worker_progress import WorkerReport
from tubelet.engine.writer import ShardWriter

log = logging.getLogger(__name__)

#: Calls queued on one actor at a time (one running, one waiting: no idle gap between bundles).
CALLS_PER_ACTOR = 2
#: Most actors a run replaces (per pool actor) before it gives up on a pool that keeps dying.
MAX_REPLACEMENTS_PER_ACTOR = 5
#: How long the driver waits for the workers' progress (read every ReportPump interval).
DRAIN_TIMEOUT_S = 5.0


class RayRunner:
    """Runs a pipeline on Ray: a private instance on 127.0.0.1, or a cluster at ``address``.

    If Ray is already initialized in this process, that instance is used and left running.
    """

    name = "ray"

    def __init__(
        self,
        *,
        address: str | None = None,
        num_cpus: int | None = None,
        num_gpus: float | None = None,
        settings: WorkerSettings | None = None,
    ) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.settings = settings or WorkerSettings()

    def run(
        self, pipeline: Pipeline, tasks: Iterable[VideoTask], writer: ShardWriter, progress: Progress | None = None
    ) -> StreamStats:
        """Stream ``tasks`` through every step; the driver commits each part."""
        with ray_session(self.address, self.num_cpus, self.num_gpus):
            backend = RayBackend(
                pipeline.stages, writer.storage, run_id=writer.run_id, settings=self.settings, progress=progress
            )
            return stream(
                tasks,
                backend,
                writer,
                progress,
                bundle_size=writer.shard_size,
                min_bundle=smallest_bundle(pipeline.stages),
            )


# -- what runs on the workers ----------------------------------------------------------------

#: Stages set up in this worker process, by their step's token. Ray reuses a task's worker
#: process for later tasks, so this keeps the Stage contract for tasks: ``setup()`` once
#: per worker before its first batch, ``teardown()`` when the process exits.
_READY: dict[str, list[Stage]] = {}


def ready_stages(token: str, stages: Sequence[Stage]) -> list[Stage]:
    """The stages of step ``token``, set up once in this process."""
    ready = _READY.get(token)
    if ready is None:
        for stage in stages:
            setup_stage(stage)
        ready = _READY[token] = list(stages)
        atexit.register(_teardown_all, ready)
    return ready


def _teardown_all(stages: Sequence[Stage]) -> None:
    for stage in reversed(stages):
        teardown_stage(stage)


def run_step(stages: Sequence[Stage], tasks: list[VideoTask], part: tuple[str, str] | None) -> Any:
    """A step's work on one bundle. An inner step returns ``(videos, tasks)`` as two
    objects, so the driver can learn it finished (the small first one) while the tasks
    go on to the next step untouched; the last step (``part``: storage root, shard)
    writes the part and returns its PartRecord."""
    done = run_stages(stages, tasks)
    if part is None:
        return len(done), done
    storage_root, shard = part
    return write_bundle(_storage(storage_root), shard, done)


_STORAGES: dict[str, Storage] = {}


def _storage(root: str) -> Storage:
    """One Storage (one client) per root per worker process."""
    if root not in _STORAGES:
        _STORAGES[root] = open_storage(root)
    return _STORAGES[root]


def task_function(
    step: Step, token: str, settings: WorkerSettings | None = None
) -> Callable[[list[VideoTask], tuple[str, str] | None], Any]:
    """The function a stateless step runs as a Ray task, named after the step (Ray ships
    it, with the step's stages and the run's settings, once per worker)."""
    stages = step.stages
    settings = settings or WorkerSettings()

    def run(tasks: list[VideoTask], part: tuple[str, str] | None) -> Any:
        settings.apply()  # every call: a task process may serve other runs in between
        return run_step(ready_stages(token, stages), tasks, part)

    run.__name__ = run.__qualname__ = _identifier(step.name)
    return run


class StepWorker:
    """An actor of a step's pool: the run's settings, then ``setup()`` of every stage when
    it starts, ``teardown()`` when it ends. ``actor_class`` subclasses it per step."""

    stages: tuple[Stage, ...] = ()
    settings: WorkerSettings = WorkerSettings()

    def __init__(self) -> None:
        self.settings.apply()
        started = []
        try:
            for stage in self.stages:
                setup_stage(stage)
                started.append(stage)
        except BaseException:
            _teardown_all(started)
            raise
        self._ready = True

    def run(self, tasks: list[VideoTask], part: tuple[str, str] | None) -> Any:
        return run_step(self.stages, tasks, part)

    def __del__(self) -> None:
        # Ray drops the actor's instance when the actor ends gracefully, which lands here.
        if getattr(self, "_ready", False):
            _teardown_all(self.stages)


def actor_class(step: Step, settings: WorkerSettings | None = None) -> type[StepWorker]:
    """A StepWorker subclass named after ``step`` that carries its stages and the run's settings."""
    attributes = {"stages": step.stages, "settings": settings or WorkerSettings(), "__module__": __name__}
    return type(_identifier(step.name), (StepWorker,), attributes)


def _identifier(name: str) -> str:
    return re.sub(r"\W", "_", name) or "step"


class ProgressSink:
    """A small actor (no CPU) that keeps the latest report of each worker until the driver
    drains it: the driver receives one report per busy worker per drain, however often
    the workers send."""

    def __init__(self) -> None:
        self._latest: dict[str, WorkerReport] = {}

    def report(self, report: WorkerReport) -> None:
        self._latest[report.worker] = report

    def drain(self) -> list[WorkerReport]:
        out, self._latest = list(self._latest.values()), {}
        return out


@dataclass(frozen=True)
class ActorLink:
    """A Ray worker's link to the run's ``ProgressSink`` (a call it does not wait for)."""

    token: str
    sink: Any

    def send(self, report: WorkerReport) -> None:
        self.sink.report.remote(report)


# -- the driver's side ---------------------------------------------------------------------------


@dataclass
class _Pool:
    """The actors of a stateful step and the calls each has outstanding."""

    step_index: int
    make: Callable[[], Any]
    size: int
    actors: list[Any] = field(default_factory=list)
    busy: dict[Any, int] = field(default_factory=dict)
    waiting: deque[tuple[Bundle, Any]] = field(default_factory=deque)
    replaced: int = 0

    def start(self) -> None:
        self.actors = [self.make() for _ in range(self.size)]
        self.busy = {a: 0 for a in self.actors}

    def free_actor(self) -> Any | None:
        actor = min(self.actors, key=lambda a: self.busy[a])
        return actor if self.busy[actor] < CALLS_PER_ACTOR else None

    def replace(self, actor: Any) -> None:
        """A dead actor's place goes to a new one (set up afresh)."""
        import ray

        if actor not in self.busy:
            return  # replaced already, for another of its calls
        self.replaced += 1
        if self.replaced > MAX_REPLACEMENTS_PER_ACTOR * self.size:
            raise RunnerError(f"the actors of step {self.step_index} keep dying ({self.replaced} replaced); stopping")
        with_calls = self.busy.pop(actor)
        self.actors.remove(actor)
        ray.kill(actor, no_restart=True)
        fresh = self.make()
        self.actors.append(fresh)
        self.busy[fresh] = 0
        log.warning("replaced a dead actor of step %d (%d calls were outstanding)", self.step_index, with_calls)


class RayBackend:
    """Bundles through the steps: tasks for stateless steps, actor pools for the others."""

    def __init__(
        self,
        stages: Sequence[Stage],
        storage: Storage,
        *,
        run_id: str = "",
        settings: WorkerSettings | None = None,
        progress: Progress | None = None,
    ) -> None:
        import ray

        self.storage_root = storage.root
        self.steps = plan_steps(stages)
        placed = size_steps(self.steps, cluster_of(alive_nodes()))
        sizes = [p.workers for p in placed]
        token = run_id or secrets.token_hex(4)
        self._sink: Any = None
        self._pump: ReportPump | None = None
        if progress is not None:  # workers report through it while they work (worker_progress)
            self._sink = ray.remote(num_cpus=0, max_restarts=0)(ProgressSink).remote()
            settings = dataclasses.replace(settings or WorkerSettings(), progress=ActorLink(token, self._sink))
            self._pump = ReportPump(functools.partial(_drain_sink, self._sink), progress.worker_report)
        self._tasks: list[Any] = []
        self._pools: dict[int, _Pool] = {}
        for i, (step, size) in enumerate(zip(self.steps, sizes)):
            options = _ray_options(placed[i].resources)
            if step.stateful:
                remote_class = ray.remote(**options, max_restarts=0, max_task_retries=0)(actor_class(step, settings))
                self._pools[i] = _Pool(i, remote_class.remote, size)
                self._pools[i].start()
                self._tasks.append(None)
            else:
                self._tasks.append(ray.remote(**options, max_retries=1)(task_function(step, f"{token}-{i}", settings)))
        #: Bundles worked on at once: every actor of every pool, every CPU for tasks.
        self.slots = max(sum(sizes), 1)
        #: the ref that says a step finished -> (bundle, step, actor or None, the tasks it passes on)
        self._in_flight: dict[Any, tuple[Bundle, int, Any, Any]] = {}
        log.info(
            "ray: %s",
            "; ".join(
                f"{s.name}: {'actors' if s.stateful else 'tasks'} x{p.workers} ({p.resources})"
                for s, p in zip(self.steps, placed)
            ),
            extra={"event": "ray_plan", "steps": [s.name for s in self.steps], "sizes": sizes},
        )

    def submit(self, bundle: Bundle) -> None:
        import ray

        _check_local_ray()  # ray.put with the raylet gone: Ray would _exit(1) the driver
        self._start(bundle, 0, ray.put(bundle.tasks))

    def _start(self, bundle: Bundle, index: int, tasks_ref: Any) -> None:
        """Send ``bundle`` (its tasks as an object ref) into step ``index``."""
        last = index == len(self.steps) - 1
        part = (self.storage_root, bundle.shard) if last else None
        returns = 1 if last else 2
        pool = self._pools.get(index)
        actor = None
        if pool is None:
            refs = self._tasks[index].options(num_returns=returns).remote(tasks_ref, part)
        else:
            actor = pool.free_actor()
            if actor is None:
                pool.waiting.append((bundle, tasks_ref))
                return
            pool.busy[actor] += 1
            refs = actor.run.options(num_returns=returns).remote(tasks_ref, part)
        done_ref, out_ref = (refs, None) if last else refs
        self._in_flight[done_ref] = (bundle, index, actor, out_ref)

    def poll(self, timeout_s: float) -> list[tuple[Bundle, PartRecord | BaseException]]:
        import ray

        if not self._in_flight:
            return []
        _check_local_ray()
        refs = list(self._in_flight)
        ready, _ = ray.wait(refs, num_returns=1, timeout=timeout_s, fetch_local=False)
        if ready:
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0, fetch_local=False)
        out: list[tuple[Bundle, PartRecord | BaseException]] = []
        for ref in ready:
            bundle, index, actor, tasks_ref = self._in_flight.pop(ref)
            pool = self._pools.get(index)
            result = _result(ref)  # a PartRecord, a video count (inner step), or the error
            if isinstance(result, WorkerLostError):
                _check_local_ray()  # a worker lost with its raylet is no reason to retry
            if pool is not None and actor is not None:
                if isinstance(result, WorkerLostError):
                    pool.replace(actor)
                else:
                    pool.busy[actor] -= 1
                self._dispatch_waiting(pool)
            if isinstance(result, int):
                self._start(bundle, index + 1, tasks_ref)  # the tasks move on worker to worker
            else:
                out.append((bundle, result))
        return out

    def _dispatch_waiting(self, pool: _Pool) -> None:
        while pool.waiting and pool.free_actor() is not None:
            bundle, tasks_ref = pool.waiting.popleft()
            self._start(bundle, pool.step_index, tasks_ref)

    def close(self) -> None:
        for pool in self._pools.values():
            for actor in pool.actors:
                # a graceful end: the actor finishes its queue, drops its instance (teardown)
                actor.__ray_terminate__.remote()
            pool.actors.clear()
        self._in_flight.clear()
        if self._pump is not None:
            self._pump.close()
            self._pump = None
        if self._sink is not None:
            self._sink.__ray_terminate__.remote()
            self._sink = None


def _drain_sink(sink: Any, wait_s: float) -> list[WorkerReport]:
    """The reports the sink holds, read every ``wait_s`` (one round trip); none when it
    cannot be read (progress never stops a run)."""
    import ray
    from ray import exceptions as rex

    time.sleep(wait_s)
    try:
        return list(ray.get(sink.drain.remote(), timeout=DRAIN_TIMEOUT_S))
    except (rex.RayError, TimeoutError) as error:
        log.debug("could not read the workers' progress: %s", error)
        return []


def _result(ref: Any) -> PartRecord | int | BaseException:
    """What a finished step returned (a PartRecord, or an inner step's video count), or
    what went wrong: the run-stopping error a stage raised, or WorkerLostError."""
    import ray
    from ray import exceptions as rex

    try:
        return ray.get(ref)
    except rex.RayTaskError as error:
        cause = error.cause if isinstance(error.cause, BaseException) else error
        if isinstance(cause, (StageSetupError, PartWriteError)):
            return cause
        setup = re.search(r"StageSetupError: (.+)", str(error))
        if setup:
            return StageSetupError(setup.group(1).strip())
        if isinstance(cause, (rex.RayActorError, rex.WorkerCrashedError, rex.ObjectLostError)):
            return WorkerLostError(str(cause))
        raise RuntimeError(f"a worker failed outside any stage: {cause}") from error
    except (rex.RayActorError, rex.WorkerCrashedError, rex.ObjectLostError, rex.NodeDiedError) as error:
        setup = re.search(r"StageSetupError: (.+)", str(error))
        if setup:
            return StageSetupError(setup.group(1).strip().splitlines()[0])
        return WorkerLostError(f"{type(error).__name__}: {error}")
    except rex.OutOfMemoryError as error:
        return WorkerLostError(f"out of memory: {error}")
    except rex.LocalRayletDiedError as error:
        raise RunnerError(f"the Ray raylet of this machine died ({error}); the run cannot go on") from error


def _check_local_ray() -> None:
    """RunnerError when the Ray processes this driver started (its raylet, its GCS) died."""
    dead = dead_local_ray()
    if dead:
        raise RunnerError(f"Ray's {' and '.join(dead)} died on this machine; the run cannot go on")


class WorkerLostError(RuntimeError):
    """The worker (task process or actor) holding a bundle died."""


def _ray_options(res: Resources) -> dict[str, Any]:
    options: dict[str, Any] = {"num_cpus": res.cpus, "num_gpus": res.gpus}
    if res.memory:
        options["memory"] = res.memory
    return options
