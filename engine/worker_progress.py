"""What a worker tells the driver while it works: which stage runs on which video, and
how many frames it has decoded — so a long video shows progress before it is finished.

The worker side is a per-process state (one worker runs one batch at a time): the
runners mark each stage batch (``stage_batch``), ``VideoReader.frames`` counts the frames
it decodes (``add_frames``; a stage that processes frames without decoding them may call
it too), and the state goes to the driver through the run's ``ProgressLink`` — a callback
in the driver's own process (inline), a queue (process pool) or a small Ray actor (Ray).

What travels is one ``WorkerReport`` (~150 bytes): sent when a stage batch starts and
ends, and while it runs at most once every ``SEND_INTERVAL_S``. Each report carries
cumulative counts, so a lost or throttled report costs nothing: the driver keeps the
latest one per worker. Without a link (a stage used outside a run) nothing is sent.
"""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tubelet.engine.task import VideoTask

#: Most seconds between two reports of a busy worker (a stage start or end is sent at once).
SEND_INTERVAL_S = 0.5


@dataclass(frozen=True)
class WorkerReport:
    """One worker's state, as the driver receives it."""

    worker: str  # host:pid, unique while the run lasts
    stage: str  # the stage running (or that ran last)
    video: str  # the first video of its batch
    videos: int  # videos in the batch
    stage_frames: int  # frames this batch has decoded in this stage so far
    video_frames: int | None  # the video's frame count, once a stage has probed it
    frames: int  # frames this worker has decoded in this run, every stage
    running: bool  # False once the batch has left the stage


class ProgressLink(Protocol):
    """How a worker's reports reach the driver. ``token`` names the run: a worker process
    that serves several runs (a reused Ray task process) starts counting afresh per run."""

    @property
    def token(self) -> str: ...

    def send(self, report: WorkerReport) -> None:
        """Deliver ``report``; never raises, never blocks for long."""
        ...


@dataclass(frozen=True)
class CallbackLink:
    """The driver's own process (the inline runner): reports are a function call."""

    token: str
    callback: Callable[[WorkerReport], None]

    def send(self, report: WorkerReport) -> None:
        self.callback(report)


@dataclass(frozen=True)
class QueueLink:
    """A process-pool worker: reports go into a ``multiprocessing`` queue the driver drains."""

    token: str
    queue: Any  # multiprocessing.Queue (travels to a worker only as its initializer's argument)

    def send(self, report: WorkerReport) -> None:
        with contextlib.suppress(queue.Full, OSError, ValueError):  # a closed queue: the run is over
            self.queue.put_nowait(report)


def drain(source: Any, wait_s: float = 0.0) -> list[WorkerReport]:
    """The reports waiting in a ``QueueLink``'s queue, after waiting up to ``wait_s`` for
    the first (the driver's side)."""
    out = []
    try:
        if wait_s > 0:
            out.append(source.get(timeout=wait_s))
        while True:
            out.append(source.get_nowait())
    except (queue.Empty, OSError, ValueError, EOFError):  # empty, or closed: the run is over
        return out


@dataclass
class _State:
    """This process's worker state for the run of ``token``."""

    token: str
    stage: str = ""
    video: str = ""
    videos: int = 0
    stage_frames: int = 0
    video_frames: int | None = None
    frames: int = 0
    running: bool = False
    sent_at: float = float("-inf")


_link: ProgressLink | None = None
_state: _State | None = None
_worker = f"{socket.gethostname()}:{os.getpid()}"


def connect(link: ProgressLink | None) -> None:
    """Send this process's reports through ``link`` (None: send nothing). A new run's
    link (another token) starts the counts afresh."""
    global _link, _state, _worker
    _link = link
    _worker = f"{socket.gethostname()}:{os.getpid()}"  # a forked worker is another process
    if link is None:
        _state = None
    elif _state is None or _state.token != link.token:
        _state = _State(link.token)
        if isinstance(link, QueueLink):
            # the worker must be able to exit even if the driver stopped reading
            link.queue.cancel_join_thread()


def connected() -> bool:
    """Whether reports go anywhere (a cheap check for callers)."""
    return _link is not None


@contextlib.contextmanager
def stage_batch(stage: str, tasks: Sequence[VideoTask]) -> Iterator[None]:
    """Mark ``stage`` running on ``tasks``: a report when it starts and when it ends."""
    state = _state
    if state is None or not tasks:
        yield
        return
    first = tasks[0]
    state.stage, state.video, state.videos = stage, first.video_id, len(tasks)
    state.stage_frames, state.running = 0, True
    state.video_frames = first.video.n_frames if first.video is not None else None
    _send(state)
    try:
        yield
    finally:
        state.running = False
        _send(state)


def add_frames(n: int) -> None:
    """Count ``n`` frames decoded (or otherwise processed) by the running stage."""
    state = _state
    if state is None or n <= 0:
        return
    state.frames += n
    state.stage_frames += n
    if time.monotonic() - state.sent_at >= SEND_INTERVAL_S:
        _send(state)


def _send(state: _State) -> None:
    link = _link
    if link is None:
        return
    state.sent_at = time.monotonic()
    report = WorkerReport(
        worker=_worker,
        stage=state.stage,
        video=state.video,
        videos=state.videos,
        stage_frames=state.stage_frames,
        video_frames=state.video_frames,
        frames=state.frames,
        running=state.running,
    )
    try:
        link.send(report)
    except Exception:  # noqa: BLE001 - progress must never fail a video
        pass
