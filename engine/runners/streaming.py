"""The driver's side of every runner: bundles in flight, commits, retries, bounded memory.

Tasks stream in from the manifest (never all in memory). The driver cuts them into
*bundles* — one bundle becomes one part, ``data/<table>/<shard>.parquet``, written by
whichever worker finishes it — and keeps a bounded number of bundles in flight, twice
what the backend works on at once. What comes back is a ``PartRecord`` (ids, file names,
row counts, status): the driver commits it (``ShardWriter.commit_part``), so rows and
masks never travel to the driver.

Failures:
- a stage raising on a video is isolated inside the worker (``run_stage``);
- a stage whose ``setup()`` fails, a part that cannot be written, or a runner that
  broke (``StageSetupError``, ``PartWriteError``, ``RunnerError``) stops the run: nothing
  is lost, a re-run resumes;
- a worker lost mid-bundle (a crash in a decoder, an out-of-memory kill, a node gone)
  costs only that bundle: its videos are retried one at a time, alone in flight (so a
  pool that dies as a whole cannot blame a bystander), and a video that loses its
  worker again is committed as failed, with the reason.
"""

from __future__ import annotations

import logging
import math
import pickle
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from tubelet.engine.errors import one_line
from tubelet.engine.parts import PartRecord
from tubelet.engine.progress import Progress
from tubelet.engine.runners.common import PartWriteError, RunnerError, StageSetupError
from tubelet.engine.task import VideoTask
from tubelet.engine.writer import ShardWriter

log = logging.getLogger(__name__)

#: Stage name on the rejects of videos whose worker was lost twice.
WORKER_STAGE = "worker"


@dataclass
class Bundle:
    """Videos that travel, are processed and are written together, as part ``shard``."""

    shard: str
    tasks: list[VideoTask]
    retry: bool = False  # a video retried alone after its bundle's worker was lost


class Backend(Protocol):
    """Where bundles are processed: in this process, a process pool, or a Ray cluster."""

    #: Bundles the backend can work on at once; the driver keeps twice that many in flight.
    slots: int

    def submit(self, bundle: Bundle) -> None:
        """Start processing ``bundle``: every stage, then write it as a part."""
        ...

    def poll(self, timeout_s: float) -> list[tuple[Bundle, PartRecord | BaseException]]:
        """Bundles finished since the last call (waits up to ``timeout_s`` for one)."""
        ...

    def close(self) -> None:
        """Stop the workers (tearing the stages down); safe to call twice."""
        ...


@dataclass
class StreamStats:
    """What a run sent and received, for the summary and the benchmarks."""

    bundles: int = 0
    items: int = 0
    retried: int = 0  # videos retried alone after a lost worker
    bytes_to_driver: int = 0  # pickled size of every PartRecord received
    sizes: list[int] = field(default_factory=list)  # videos per bundle, in order

    @property
    def bytes_per_item(self) -> float:
        return self.bytes_to_driver / self.items if self.items else 0.0


def stream(
    tasks: Iterable[VideoTask],
    backend: Backend,
    writer: ShardWriter,
    progress: Progress | None,
    *,
    bundle_size: int,
    min_bundle: int = 1,
) -> StreamStats:
    """Process every task on ``backend`` and commit its part; returns what was sent.

    Bundles hold ``bundle_size`` videos while the stream is long; once its end is in
    sight they shrink (never below ``min_bundle``) so every worker gets a share of it.
    """
    stats = StreamStats()
    window = max(2 * backend.slots, 1)
    feed = _Feed(iter(tasks), prefetch=window * max(bundle_size, 1))
    retries: deque[Bundle] = deque()
    in_flight = 0
    try:
        while True:
            if retries:
                # a retried video runs alone, so a worker lost again is its own doing
                if not in_flight:
                    backend.submit(retries.popleft())
                    in_flight += 1
            else:
                while in_flight < window and not feed.empty:
                    size = (
                        bundle_size if not feed.exhausted else _shrink(feed.buffered, window, bundle_size, min_bundle)
                    )
                    backend.submit(Bundle(writer.next_shard(), feed.take(size)))
                    in_flight += 1
            if not in_flight:
                break
            for bundle, result in backend.poll(timeout_s=1.0):
                in_flight -= 1
                retries.extend(_settle(bundle, result, writer, progress, stats))
    finally:
        backend.close()
    return stats


def _settle(
    bundle: Bundle,
    result: PartRecord | BaseException,
    writer: ShardWriter,
    progress: Progress | None,
    stats: StreamStats,
) -> list[Bundle]:
    """Commit a finished bundle, or fail the video of a lost retry; returns the bundles to
    retry (one per video of a lost bundle)."""
    if isinstance(result, PartRecord):
        stats.bundles += 1
        stats.items += len(result.items)
        stats.sizes.append(len(result.items))
        stats.bytes_to_driver += len(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
        if writer.commit_part(result) and progress is not None:
            for key, status in result.items.items():
                progress.advance(failed=status == "failed", item=key)
        return []
    if isinstance(result, (StageSetupError, PartWriteError, RunnerError, KeyboardInterrupt)):
        raise result
    if not bundle.retry:
        log.warning(
            "lost the worker of part %s (%s: %s); retrying its %d videos one at a time",
            bundle.shard,
            type(result).__name__,
            one_line(result, 300),
            len(bundle.tasks),
        )
        stats.retried += len(bundle.tasks)
        return [Bundle(writer.next_shard(), [task], retry=True) for task in bundle.tasks]
    [task] = bundle.tasks
    log.warning("video %s lost its worker again when retried alone; committing it as failed", task.video_id)
    task.fail(WORKER_STAGE, RuntimeError(f"the worker processing this video was lost twice: {one_line(result, 300)}"))
    if writer.add(task) and progress is not None:
        progress.advance(failed=True, item=task.video_id)
    return []


def _shrink(remaining: int, window: int, bundle_size: int, min_bundle: int) -> int:
    """Bundle size for the last ``remaining`` videos: spread over the window."""
    return max(min(bundle_size, math.ceil(remaining / window)), min(min_bundle, bundle_size), 1)


class _Feed:
    """Tasks read ahead from the stream, at most ``prefetch`` of them."""

    def __init__(self, tasks: Iterator[VideoTask], prefetch: int) -> None:
        self._tasks = tasks
        self._prefetch = prefetch
        self._buffer: deque[VideoTask] = deque()
        self.exhausted = False
        self._fill()

    @property
    def empty(self) -> bool:
        return not self._buffer

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def take(self, n: int) -> list[VideoTask]:
        out = [self._buffer.popleft() for _ in range(min(n, len(self._buffer)))]
        self._fill()
        return out

    def _fill(self) -> None:
        while not self.exhausted and len(self._buffer) < self._prefetch:
            try:
                self._buffer.append(next(self._tasks))
            except StopIteration:
                self.exhausted = True
