"""RayRunner: the pipeline as a Ray Data stream, one ``map_batches`` per stage.

Tasks travel as pickled ``VideoTask`` bytes in a binary column. Stages that keep state
(a ``setup()``, a GPU) run in an actor pool, so the model loads once per worker; cheap
stages run as plain Ray tasks. The driver consumes results as they stream out and hands
them to the single ShardWriter, which is what makes the output exactly-once.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import os
import pickle
import re
import secrets
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from tubelet.engine.pipeline import Pipeline
from tubelet.engine.progress import Progress
from tubelet.engine.runners.common import StageSetupError, batch_size, deliver, setup_stage
from tubelet.engine.stage import Stage, run_stage
from tubelet.engine.task import VideoTask
from tubelet.engine.writer import ShardWriter

log = logging.getLogger(__name__)

_SCHEMA = pa.schema([("key", pa.string()), ("task", pa.large_binary())])
#: Blocks per CPU of the cluster: a whole multiple, so equal blocks end together, and more
#: than one, so a slow block does not hold the run's tail alone.
BLOCKS_PER_CPU = 2
#: Most rows a block holds. Each block is one Ray task per stage, which costs ~0.2 s of
#: scheduling on a saturated 2-core machine (bench/bench_parallel.py): blocks must be big
#: enough to amortize that, and small enough that large runs still balance across workers.
MAX_ROWS_PER_BLOCK = 64
#: How often Ray Data re-reads the cluster's size (its default, 1 s, is also how long it
#: runs a single task at the start of every dataset before it has read it once).
LIMITS_REFRESH_S = 0.1


class ResourceError(RuntimeError):
    """A stage asks for resources no node of the cluster has (Ray would wait forever)."""


class RayRunner:
    """Runs a pipeline on Ray Data: a local instance on 127.0.0.1, or a cluster at ``address``.

    If Ray is already initialized in this process, that instance is used and left running.
    """

    name = "ray"

    def __init__(
        self, *, address: str | None = None, num_cpus: int | None = None, num_gpus: float | None = None
    ) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus

    def run(
        self, pipeline: Pipeline, tasks: list[VideoTask], writer: ShardWriter, progress: Progress | None = None
    ) -> None:
        """Stream ``tasks`` through every stage and add each finished task to ``writer``."""
        if not tasks:
            return
        import ray

        with ray_session(self.address, self.num_cpus, self.num_gpus), _ray_data_settings():
            nodes = _alive_nodes()
            ds: Any = ray.data.from_items(
                [{"key": t.video_id, "task": pickle.dumps(t, protocol=pickle.HIGHEST_PROTOCOL)} for t in tasks],
                override_num_blocks=num_blocks(len(tasks), _total(nodes, "CPU"), pipeline),
            )
            for stage in pipeline.stages:
                ds = ds.map_batches(**map_args(stage, nodes))
            try:
                for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
                    for blob in batch.column("task").to_pylist():
                        deliver(pickle.loads(blob), writer, progress)
            except Exception as error:
                # Ray wraps a failed actor start in pages of its own traceback: say it in one line.
                failed_setup = re.search(r"StageSetupError: (.+)", str(error))
                if failed_setup:
                    raise StageSetupError(failed_setup.group(1)) from error
                raise


# -- one stage as a Ray Data operator ----------------------------------------------------


def apply_stage(batch: pa.Table, stage: Stage) -> pa.Table:
    """Unpickle a batch of tasks, run the stage on it (failures isolated), pickle it back."""
    tasks = [pickle.loads(blob) for blob in batch.column("task").to_pylist()]
    done = run_stage(stage, tasks)
    return pa.table(
        {
            "key": [t.video_id for t in done],
            "task": [pickle.dumps(t, protocol=pickle.HIGHEST_PROTOCOL) for t in done],
        },
        schema=_SCHEMA,
    )


class StageWorker:
    """An actor of a stage's pool: ``setup()`` once when it starts, ``teardown()`` when it ends.

    ``worker_class`` subclasses it per stage with the stage baked in, so Ray ships the
    stage with the class (no constructor arguments) and names the operator after it.
    """

    stage: Stage

    def __init__(self) -> None:
        setup_stage(self.stage)
        self._ready = True

    def __call__(self, batch: pa.Table) -> pa.Table:
        return apply_stage(batch, self.stage)

    def __del__(self) -> None:
        # Ray Data drops the UDF on graceful actor shutdown, which lands here.
        if getattr(self, "_ready", False):
            _teardown(self.stage)


def worker_class(stage: Stage) -> type[StageWorker]:
    """A StageWorker subclass named after ``stage`` that carries it."""
    return type(stage.name, (StageWorker,), {"stage": stage, "__module__": __name__})


#: Stages already set up in this worker process, by their operator's token. Ray reuses a
#: task's worker process for later tasks, so this keeps the Stage contract for tasks:
#: ``setup()`` once per worker before its first batch, ``teardown()`` when it exits.
_READY: dict[str, Stage] = {}


def ready_stage(token: str, stage: Stage) -> Stage:
    """The stage of operator ``token``, set up once in this process."""
    ready = _READY.get(token)
    if ready is None:
        setup_stage(stage)
        ready = _READY[token] = stage
        atexit.register(_teardown, ready)
    return ready


def _teardown(stage: Stage) -> None:
    try:
        stage.teardown()
    except Exception:  # a failing teardown must not hide the run's outcome
        log.exception("teardown of stage %s failed", stage.name)


def task_function(stage: Stage) -> Any:
    """A function named after ``stage`` that runs it on a batch (for stateless stages)."""
    token = f"{stage.name}-{secrets.token_hex(8)}"

    def run(batch: pa.Table) -> pa.Table:
        return apply_stage(batch, ready_stage(token, stage))

    run.__name__ = run.__qualname__ = stage.name
    return run


def map_args(stage: Stage, nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``map_batches`` keyword arguments for ``stage`` on a cluster of ``nodes``."""
    import ray

    res = stage.resources
    args: dict[str, Any] = {
        "batch_size": batch_size(stage),
        "batch_format": "pyarrow",
        "num_cpus": res.cpus,
        "udf_modifying_row_count": False,
    }
    if res.memory:
        args["memory"] = res.memory
    capacity = workers_that_fit(stage, nodes)  # also fails fast when nothing fits
    if stage.needs_actor:
        if res.gpus:
            args["num_gpus"] = res.gpus
        args["fn"] = worker_class(stage)
        args["compute"] = ray.data.ActorPoolStrategy(min_size=1, max_size=capacity)
    else:
        args["fn"] = task_function(stage)
    return args


def workers_that_fit(stage: Stage, nodes: list[dict[str, Any]]) -> int:
    """How many workers of ``stage`` the cluster can hold at once; ResourceError if none."""
    res = stage.resources
    need = {"CPU": res.cpus, "GPU": res.gpus, "memory": float(res.memory or 0)}
    total = 0
    for node in nodes:
        have = node.get("Resources", {})
        fits = [math.floor(have.get(k, 0.0) / v + 1e-9) for k, v in need.items() if v > 0]
        total += min(fits) if fits else 64  # a stage that reserves nothing: cap the pool anyway
    if total < 1:
        cluster = {k: _total(nodes, k) for k in ("CPU", "GPU")}
        hint = " (declare GPUs with ray.num_gpus for a local instance, or add GPU nodes)" if res.gpus else ""
        raise ResourceError(
            f"stage {stage.name} needs {res} per worker, which no node of the Ray cluster has "
            f"(cluster: {cluster}){hint}; Ray would wait for it forever"
        )
    return total


def num_blocks(n_tasks: int, cpus: float, pipeline: Pipeline) -> int:
    """Blocks to split the tasks into: BLOCKS_PER_CPU per CPU, each at least one batch, at most 64 rows."""
    biggest_batch = max([batch_size(s) for s in pipeline.stages] + [1])
    per_block = math.ceil(n_tasks / max(cpus * BLOCKS_PER_CPU, 1))
    per_block = max(min(per_block, MAX_ROWS_PER_BLOCK), biggest_batch, 1)
    return max(math.ceil(n_tasks / per_block), 1)


# -- the Ray instance --------------------------------------------------------------------


@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int | None, num_gpus: float | None) -> Iterator[None]:
    """Use the Ray already initialized here, else join ``address`` or start a loopback-only instance.

    Only what this function started is shut down.
    """
    import ray

    if ray.is_initialized():
        if address:
            log.warning("Ray is already initialized in this process; ignoring address %s", address)
        yield
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    common: dict[str, Any] = {"logging_level": logging.WARNING, "configure_logging": True}
    if address:
        log.info("joining Ray cluster at %s", address)
        ray.init(address=address, **common)
    else:
        log.info("starting a local Ray instance (cpus=%s, gpus=%s) on 127.0.0.1", num_cpus, num_gpus)
        with _loopback_only():
            sizes: dict[str, Any] = {"num_cpus": num_cpus, "num_gpus": num_gpus}  # Ray types num_gpus int
            ray.init(
                **sizes,
                _node_ip_address="127.0.0.1",
                include_dashboard=False,
                **common,
            )
    try:
        yield
    finally:
        ray.shutdown()


_CLUSTER_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


@contextlib.contextmanager
def _loopback_only() -> Iterator[None]:
    """While a local instance starts: make Ray bind 127.0.0.1 only, not every interface.

    Ray reads the switch from the environment once, when it is first imported, so the
    already-imported constant is set too; the processes Ray starts inherit the variable.
    """
    saved_env = os.environ.get(_CLUSTER_ENV)
    os.environ[_CLUSTER_ENV] = "0"
    ray_constants: Any
    try:
        from ray._private import ray_constants
    except ImportError:  # a Ray that moved it reads the environment variable
        ray_constants = None
    saved_flag = getattr(ray_constants, "ENABLE_RAY_CLUSTER", None)
    if saved_flag is not None:
        ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if saved_flag is not None:
            ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        if saved_env is None:
            os.environ.pop(_CLUSTER_ENV, None)
        else:
            os.environ[_CLUSTER_ENV] = saved_env


@contextlib.contextmanager
def _ray_data_settings() -> Iterator[None]:
    """Ray Data settings for the duration of a run, restored after it.

    Our progress replaces Ray Data's bars and per-dataset log lines, and Ray Data reads
    the cluster size sooner, so all workers start at once rather than after a second.
    """
    import ray

    ctx = ray.data.DataContext.get_current()
    saved_bars = ctx.enable_progress_bars
    ray_data_log = logging.getLogger("ray.data")
    saved_level = ray_data_log.level
    resource_manager: Any
    try:  # an internal knob: leave it alone if a Ray version moved it
        from ray.data._internal.execution.resource_manager import ResourceManager as resource_manager  # noqa: N813 - a class used as a namespace

        saved_refresh = getattr(resource_manager, "GLOBAL_LIMITS_UPDATE_INTERVAL_S", None)
    except ImportError:
        resource_manager, saved_refresh = None, None
    ctx.enable_progress_bars = False
    ray_data_log.setLevel(logging.WARNING)
    if saved_refresh is not None:
        resource_manager.GLOBAL_LIMITS_UPDATE_INTERVAL_S = min(saved_refresh, LIMITS_REFRESH_S)
    try:
        yield
    finally:
        ctx.enable_progress_bars = saved_bars
        ray_data_log.setLevel(saved_level)
        if saved_refresh is not None:
            resource_manager.GLOBAL_LIMITS_UPDATE_INTERVAL_S = saved_refresh


def _alive_nodes() -> list[dict[str, Any]]:
    import ray

    return [n for n in ray.nodes() if n.get("Alive")]


def _total(nodes: list[dict[str, Any]], resource: str) -> float:
    return sum(n.get("Resources", {}).get(resource, 0.0) for n in nodes)
