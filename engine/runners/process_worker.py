"""What runs inside a process-pool worker (imported by the pool's fork server, so workers
start with these modules loaded).

The pipeline's stages and the run's ``WorkerSettings`` arrive once per worker (the pool's
initializer); the settings are applied and the stages set up before the worker's first
bundle; ``teardown()`` runs when the worker exits.
"""

from __future__ import annotations

import pickle
from multiprocessing import util

from tubelet.engine.parts import PartRecord
from tubelet.engine.runners.common import WorkerSettings, process_bundle, setup_stage, teardown_stage
from tubelet.engine.stage import Stage
from tubelet.engine.storage import Storage, open_storage
from tubelet.engine.task import VideoTask

_stages: list[Stage] = []
_storage: Storage | None = None
_settings = WorkerSettings()
_ready = False


def init_worker(stages: bytes, storage: str, settings: WorkerSettings | None = None) -> None:
    """The pool's initializer: the pipeline's stages, where to write, the run's settings."""
    global _stages, _storage, _settings
    _stages = pickle.loads(stages)
    _storage = open_storage(storage)
    _settings = settings or WorkerSettings()


def run_bundle(shard: str, tasks: list[VideoTask]) -> PartRecord:
    """Every stage over ``tasks``, then write them as part ``shard``."""
    global _ready
    assert _storage is not None, "init_worker was not called"
    if not _ready:
        _settings.apply()  # a failure raises StageSetupError, which stops the run
        for stage in _stages:
            setup_stage(stage)
        _ready = True
        # multiprocessing runs these at a worker's exit (atexit handlers do not run there)
        util.Finalize(None, _teardown, exitpriority=10)
    return process_bundle(_stages, _storage, shard, tasks)


def _teardown() -> None:
    for stage in reversed(_stages):
        teardown_stage(stage)
