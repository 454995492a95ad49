"""Run progress, as the driver shows it: one updating line on a terminal, a log line
every so often otherwise.

Both say the same: videos finished of the total (and how many failed), what the workers
are doing now (stage, video, frames decoded of the video's frames), frames decoded in
all and their rate, videos per second, the time elapsed and the time left. Workers feed
it while a video is still being processed (``tubelet.engine.worker_progress``); the
runners count finished videos (``advance``).

A thread of its own draws the line, so a stage that runs for minutes on one video, or a
model that loads, never leaves the user without a sign of life:

- on a terminal (``stream.isatty()``): the line is redrawn when something changed (at
  most once a second) and at least every ``tty_interval_s`` (default 10 s,
  ``TUBELET_PROGRESS_TTY_S``);
- otherwise: a ``progress: …`` log record (INFO, ``event=progress`` with the numbers as
  fields in the run's JSON log) every ``log_interval_s`` (default 30 s,
  ``TUBELET_PROGRESS_LOG_S``), and a last one when the run ends.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import IO

from tqdm import tqdm

from tubelet.engine.worker_progress import WorkerReport

log = logging.getLogger(__name__)

#: Defaults of the two intervals (seconds), and the variables that change them.
TTY_INTERVAL_S, LOG_INTERVAL_S = 10.0, 30.0
TTY_INTERVAL_ENV, LOG_INTERVAL_ENV = "TUBELET_PROGRESS_TTY_S", "TUBELET_PROGRESS_LOG_S"
#: On a terminal, changes are drawn at most this often.
REDRAW_MIN_S = 1.0
#: The frame rate shown is measured over about this many seconds.
RATE_WINDOW_S = 60.0
#: Up to this many busy workers are described one by one; more are counted per stage.
DETAILED_WORKERS = 3


class Progress:
    """Counts finished videos and what the workers report; shows it (see the module docstring).

    Runners call :meth:`advance` once per video they commit and hand worker reports to
    :meth:`worker_report`. Thread-safe; use as a context manager (or call :meth:`close`).
    """

    def __init__(
        self,
        total: int,
        *,
        enabled: bool = True,
        stream: IO[str] | None = None,
        tty_interval_s: float | None = None,
        log_interval_s: float | None = None,
        desc: str = "videos",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.desc = desc
        self.enabled = enabled
        self.done = 0
        self.failed = 0
        self._clock = clock
        self._start = clock()
        self._lock = threading.RLock()
        self._workers: dict[str, WorkerReport] = {}
        self._finished_videos: set[str] = set()
        self._samples: deque[tuple[float, int]] = deque([(self._start, 0)])
        self._bar: tqdm | None = None
        self._dirty = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        stream = stream if stream is not None else sys.stderr
        self.tty = _is_tty(stream)
        self.interval_s = (
            _interval(tty_interval_s, TTY_INTERVAL_ENV, TTY_INTERVAL_S)
            if self.tty
            else _interval(log_interval_s, LOG_INTERVAL_ENV, LOG_INTERVAL_S)
        )
        self._last_shown = self._start
        if not (enabled and total):
            return
        if self.tty:
            sized = _has_size(stream)  # a terminal that reports no size (a bare pty) gets 120 columns
            self._bar = tqdm(
                total=total,
                file=stream,
                bar_format="{desc}",
                dynamic_ncols=sized,
                ncols=None if sized else 120,
                nrows=None if sized else 24,
                leave=True,
            )
            self._bar.set_description_str(self._line())
        self._thread = threading.Thread(target=self._tick, name="tubelet-progress", daemon=True)
        self._thread.start()

    # -- what the runners report ---------------------------------------------------------

    def advance(self, failed: bool = False, n: int = 1, item: str | None = None) -> None:
        """Count ``n`` finished videos (failed or done); ``item``: the video's id, whose
        worker report is then no longer shown as running."""
        with self._lock:
            if failed:
                self.failed += n
            else:
                self.done += n
            if item is not None:
                self._finished_videos.add(item)
                for key, report in list(self._workers.items()):
                    if report.video == item and report.videos <= 1:
                        self._workers[key] = _idle(report)
            self._dirty = True
        if self._bar is not None:
            self._draw()  # a finished video shows at once

    def worker_report(self, report: WorkerReport) -> None:
        """The latest state of one worker (reports carry cumulative counts: the last wins)."""
        with self._lock:
            if report.video in self._finished_videos:
                report = _idle(report)
            self._workers[report.worker] = report
            self._dirty = True

    # -- the numbers -----------------------------------------------------------------------

    @property
    def pending(self) -> int:
        return max(self.total - self.done - self.failed, 0)

    @property
    def frames(self) -> int:
        """Frames decoded by every worker of the run so far."""
        with self._lock:
            return sum(r.frames for r in self._workers.values())

    @property
    def rate(self) -> float:
        """Videos finished per second since the start."""
        elapsed = self._clock() - self._start
        finished = self.done + self.failed
        return finished / elapsed if elapsed > 0 and finished else 0.0

    @property
    def frame_rate(self) -> float:
        """Frames decoded per second, over the last minute or so."""
        with self._lock:
            now, frames = self._clock(), self.frames
            while len(self._samples) > 1 and now - self._samples[1][0] >= RATE_WINDOW_S:
                self._samples.popleft()
            then, before = self._samples[0]
            return (frames - before) / (now - then) if now > then else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current video rate (None before the first video finishes)."""
        rate = self.rate
        return self.pending / rate if rate else None

    def running(self) -> list[WorkerReport]:
        """The workers busy with a stage now, in a stable order."""
        with self._lock:
            return sorted((r for r in self._workers.values() if r.running), key=lambda r: (r.stage, r.video))

    def summary(self) -> str:
        """``3/10 videos (1 failed) · elapsed 0:02:30 · ETA 0:05:00 · 1234 frames, 41.0/s ·
        0.02 videos/s · track_masklets: clip-7 340/720 frames`` (what runs comes last: it is
        the part of variable length, which a narrow terminal cuts)."""
        eta = self.eta_s
        parts = [
            f"{self.done + self.failed}/{self.total} videos" + (f" ({self.failed} failed)" if self.failed else ""),
            f"elapsed {_hms(self._clock() - self._start)}",
            f"ETA {_hms(eta) if eta is not None else '?'}",
            f"{self.frames} frames, {self.frame_rate:.1f}/s",
            f"{self.rate:.2f} videos/s",
            self._now_doing(),
        ]
        return " · ".join(parts)

    # -- showing it ------------------------------------------------------------------------

    def _tick(self) -> None:
        """The thread that keeps the line alive (see the module docstring)."""
        while True:
            now = self._clock()
            due = self._last_shown + self.interval_s
            wait = max(due - now, 0.0)
            if self._bar is not None:
                wait = min(wait, REDRAW_MIN_S)
            if self._stop.wait(wait):
                return
            now = self._clock()
            with self._lock:
                self._samples.append((now, self.frames))
            if self._bar is not None:
                if self._dirty or now - self._last_shown >= self.interval_s:
                    self._draw()
            elif now - self._last_shown >= self.interval_s:
                self._log_line()

    def _draw(self) -> None:
        with self._lock:
            bar = self._bar
            if bar is None:
                return
            self._dirty = False
            self._last_shown = self._clock()
            bar.set_description_str(self._line(), refresh=True)

    def _line(self) -> str:
        return f"{self.desc}: {self.summary()}"

    def _log_line(self) -> None:
        with self._lock:
            self._last_shown = self._clock()
            eta = self.eta_s
            stages = Counter(r.stage for r in self.running())
            log.info(
                "progress: %s",
                self.summary(),
                extra={
                    "event": "progress",
                    "done": self.done,
                    "failed": self.failed,
                    "pending": self.pending,
                    "frames": self.frames,
                    "frames_per_s": round(self.frame_rate, 3),
                    "videos_per_s": round(self.rate, 4),
                    "eta_s": round(eta, 1) if eta is not None else None,
                    "running": dict(sorted(stages.items())),
                },
            )

    def close(self) -> None:
        """Stop the thread; leave the final line (or write a last log record)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            if self._bar is not None:
                self._draw()
                self._bar.close()
                self._bar = None
            elif self.enabled and self.total:
                self._log_line()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _now_doing(self) -> str:
        """What the workers do now: one in detail, several counted per stage."""
        running = self.running()
        if running:
            return _describe_running(running)
        if not self.pending:
            return "all videos finished"
        if not self._workers:
            return "starting workers"  # setting stages up (loading models), or Ray starting
        return "no stage running"  # between stages: writing a part, waiting for the next video


class ReportPump:
    """The driver's side of a link whose reports must be fetched (a queue, a Ray actor): a
    thread that fetches them and hands them to ``deliver`` until :meth:`close`, so they
    arrive while the driver waits for results. ``fetch(wait_s)`` returns the reports
    waiting (waiting up to about ``wait_s`` for some); it must not raise."""

    def __init__(
        self,
        fetch: Callable[[float], list[WorkerReport]],
        deliver: Callable[[WorkerReport], None],
        wait_s: float = 0.25,
    ) -> None:
        self._fetch, self._deliver, self._wait_s = fetch, deliver, wait_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tubelet-progress-reports", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for report in self._fetch(self._wait_s):
                self._deliver(report)

    def close(self) -> None:
        """Stop the thread, then deliver what is still waiting."""
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()
        for report in self._fetch(0.0):
            self._deliver(report)


def _describe_running(running: list[WorkerReport]) -> str:
    """A few workers in detail (stage, video, frames), more counted per stage."""
    if len(running) <= DETAILED_WORKERS:
        return "; ".join(_describe_worker(r) for r in running)
    per_stage = Counter(r.stage for r in running)
    return "running " + ", ".join(f"{stage} ×{n}" for stage, n in sorted(per_stage.items()))


def _describe_worker(r: WorkerReport) -> str:
    """``track_masklets: clip-7 340/720 frames``: frames the stage has decoded, of the video's
    (capped there: a tracker that decodes some frames twice is not past the end)."""
    if r.video_frames:
        frames = f"{min(r.stage_frames, r.video_frames)}/{r.video_frames} frames"
    else:
        frames = f"{r.stage_frames} frames"
    more = f" (+{r.videos - 1} videos)" if r.videos > 1 else ""
    return f"{r.stage}: {r.video}{more} {frames}"


def _idle(report: WorkerReport) -> WorkerReport:
    """``report`` of a worker whose video is committed: its frames count, it runs nothing."""
    return dataclasses.replace(report, running=False)


def _interval(value: float | None, env: str, default: float) -> float:
    """``value``, else the environment variable ``env`` (seconds), else ``default``."""
    if value is not None:
        return max(float(value), 0.01)
    text = os.environ.get(env)
    if not text:
        return default
    try:
        seconds = float(text)
        if seconds <= 0:
            raise ValueError
    except ValueError:
        log.warning("%s=%r is not a positive number of seconds; using %g", env, text, default)
        return default
    return seconds


def _has_size(stream: IO[str]) -> bool:
    """Whether the terminal says how wide it is (tqdm then follows its width)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns > 0
    except (AttributeError, ValueError, OSError):
        return False


def _is_tty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _hms(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
