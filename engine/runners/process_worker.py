"""What runs inside a process-pool worker (imported by the pool's fork server, so workers
start with these modules loaded).

The pipeline's stages arrive once per worker (the pool's initializer) and are set up
before the worker's first bundle; ``teardown()`` runs when the worker exits.
"""

from __future__ import annotations

import pickle
from multiprocessing import util

from tubelet.engine.parts import PartRecord
from tubelet.engine.runners.common import process_bundle, setup_stage, teardown_stage
from tubelet.engine.stage import Stage
from tubelet.engine.storage import Storage, open_storage
from tubelet.engine.task import VideoTask

_stages: list[Stage] = []
_storage: Storage | None = None
_ready = False


def init_worker(stages: bytes, storage: str) -> None:
    """The pool's initializer: the pipeline's stages and where to write."""
    global _stages, _storage
    _stages = pickle.loads(stages)
    _storage = open_storage(storage)


def run_bundle(shard: str, tasks: list[VideoTask]) -> PartRecord:
    """Every stage over ``tasks``, then write them as part ``shard``."""
    global _ready
    assert _storage is not None, "init_worker was not called"
    if not _ready:
        for stage in _stages:
            setup_stage(stage)
        _ready = True
        # multiprocessing runs these at a worker's exit (atexit handlers do not run there)
        util.Finalize(None, _teardown, exitpriority=10)
    return process_bundle(_stages, _storage, shard, tasks)


def _teardown() -> None:
    for stage in reversed(_stages):
        teardown_stage(stage)
