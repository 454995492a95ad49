"""ProcessRunner: a pool of worker processes on this machine, each running every stage.

What a job on one machine without GPUs needs, at a fraction of Ray's start-up: workers
fork from a server that has the engine imported, take bundles, run all stages and write
their part; the driver commits. A worker that dies (a segfault in a decoder, the
out-of-memory killer) costs its bundle only: the pool is rebuilt and the bundle's videos
retried one by one (``streaming``).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import multiprocessing
import os
import pickle
import signal
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from tubelet.engine.parts import PartRecord
from tubelet.engine.pipeline import Pipeline
from tubelet.engine.progress import Progress, ReportPump
from tubelet.engine.runners import process_worker
from tubelet.engine.runners.common import RunnerError, WorkerSettings
from tubelet.engine.runners.plan import smallest_bundle
from tubelet.engine.runners.streaming import Bundle, StreamStats, stream
from tubelet.engine.stage import Stage
from tubelet.engine.storage import Storage
from tubelet.engine.task import VideoTask
from tubelet.engine.worker_progress import QueueLink, drain
from tubelet.engine.writer import ShardWriter

log = logging.getLogger(__name__)


class WorkerLostError(RuntimeError):
    """A pool worker died while it held a bundle."""


class ProcessRunner:
    """Runs bundles on ``workers`` processes (default: one per CPU this process may use),
    each applying ``settings`` before its stages' setup."""

    name = "process"

    def __init__(self, workers: int | None = None, settings: WorkerSettings | None = None) -> None:
        self.workers = workers or available_cpus()
        self.settings = settings or WorkerSettings()

    def run(
        self, pipeline: Pipeline, tasks: Iterable[VideoTask], writer: ShardWriter, progress: Progress | None = None
    ) -> StreamStats:
        """Run ``pipeline`` over ``tasks`` on the pool; the driver commits each part."""
        backend = ProcessBackend(pipeline.stages, writer.storage, self.workers, self.settings, progress, writer.run_id)
        return stream(
            tasks, backend, writer, progress, bundle_size=writer.shard_size, min_bundle=smallest_bundle(pipeline.stages)
        )


class ProcessBackend:
    """Bundles on a ``ProcessPoolExecutor`` whose workers fork from a preloaded server."""

    def __init__(
        self,
        stages: Sequence[Stage],
        storage: Storage,
        workers: int,
        settings: WorkerSettings | None = None,
        progress: Progress | None = None,
        run_id: str = "",
    ) -> None:
        self.slots = workers
        self._stages = pickle.dumps(list(stages), protocol=pickle.HIGHEST_PROTOCOL)
        self._storage = storage.root
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload([process_worker.__name__])
        # workers report what they do through a queue a thread of the driver drains
        self._reports = self._context.Queue() if progress is not None else None
        self._pump = None
        link = None
        if progress is not None and self._reports is not None:
            link = QueueLink(run_id, self._reports)
            self._pump = ReportPump(functools.partial(drain, self._reports), progress.worker_report)
        self._settings = dataclasses.replace(settings or WorkerSettings(), progress=link)
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[Future[PartRecord], Bundle] = {}
        self._broken = False
        self._dead = ""  # which workers of the last broken pool died

    def submit(self, bundle: Bundle) -> None:
        for _ in range(2):
            if self._broken:  # its other bundles have failed already; poll hands them over
                self._shutdown()
                self._broken = False
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self.slots,
                    mp_context=self._context,
                    initializer=process_worker.init_worker,
                    initargs=(self._stages, self._storage, self._settings),
                )
            try:
                self._futures[self._pool.submit(process_worker.run_bundle, bundle.shard, bundle.tasks)] = bundle
                return
            except BrokenProcessPool:  # a worker died since the last poll: this bundle goes to a new pool
                self._note_dead_workers()
                self._broken = True
        raise RunnerError("the process pool broke again as soon as it was started; its workers cannot run here")

    def poll(self, timeout_s: float) -> list[tuple[Bundle, PartRecord | BaseException]]:
        finished, _ = wait(list(self._futures), timeout=timeout_s, return_when=FIRST_COMPLETED)
        out: list[tuple[Bundle, PartRecord | BaseException]] = []
        for future in finished:
            bundle = self._futures.pop(future)
            try:
                out.append((bundle, future.result()))
            except BrokenProcessPool as error:
                self._note_dead_workers()
                self._broken = True
                out.append((bundle, WorkerLostError(f"{self._dead or 'a worker process died'} ({error})")))
            except BaseException as error:  # noqa: BLE001 - the driver decides what each failure means
                out.append((bundle, error))
        return out

    def _note_dead_workers(self) -> None:
        """Say which workers of the broken pool died, and how (for the log and the reject)."""
        processes = getattr(self._pool, "_processes", None) or {}  # the executor's own pid -> Process
        dead = [f"pid {pid} {_how(process.exitcode)}" for pid, process in processes.items() if process.exitcode]
        if dead:
            self._dead = "pool worker " + ", ".join(dead)

    def close(self) -> None:
        for future in self._futures:
            future.cancel()
        self._futures.clear()
        self._shutdown()
        if self._pump is not None:
            self._pump.close()
            self._pump = None
        if self._reports is not None:
            self._reports.close()
            self._reports.join_thread()
            self._reports = None

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=not self._broken, cancel_futures=True)
            self._pool = None


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, not the machine's count)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


def _how(exitcode: int | None) -> str:
    """``-9`` -> "killed by SIGKILL", ``17`` -> "exited with 17"."""
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with {exitcode}"
