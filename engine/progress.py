"""Run progress: a tqdm bar on a terminal, a periodic log line otherwise.

Both show done / failed / pending, videos per second and the time left.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import IO

from tqdm import tqdm

log = logging.getLogger(__name__)


class Progress:
    """Counts finished videos. Runners call :meth:`advance` once per video they finish."""

    def __init__(
        self,
        total: int,
        *,
        enabled: bool = True,
        stream: IO[str] | None = None,
        interval_s: float = 10.0,
        desc: str = "videos",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self._clock = clock
        self.done = 0
        self.failed = 0
        self.interval_s = interval_s
        self._start = self._clock()
        self._last_line = self._start
        self._bar = None
        self.enabled = enabled
        stream = stream if stream is not None else sys.stderr
        if enabled and total and _is_tty(stream):
            self._bar = tqdm(total=total, desc=desc, unit="video", file=stream, dynamic_ncols=True)

    @property
    def pending(self) -> int:
        return max(self.total - self.done - self.failed, 0)

    @property
    def rate(self) -> float:
        """Videos finished per second since the start."""
        elapsed = self._clock() - self._start
        finished = self.done + self.failed
        return finished / elapsed if elapsed > 0 and finished else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current rate (None before the first video finishes)."""
        rate = self.rate
        return self.pending / rate if rate else None

    def advance(self, failed: bool = False, n: int = 1) -> None:
        """Count ``n`` finished videos (failed or done)."""
        if failed:
            self.failed += n
        else:
            self.done += n
        if self._bar is not None:
            self._bar.update(n)
            self._bar.set_postfix(done=self.done, failed=self.failed, refresh=False)
        elif self.enabled and self._clock() - self._last_line >= self.interval_s:
            self._log_line()

    def summary(self) -> str:
        """``done 10 · failed 1 · pending 5 · 2.3 videos/s · ETA 0:00:02``."""
        eta = self.eta_s
        eta_text = _hms(eta) if eta is not None else "?"
        return (
            f"done {self.done} · failed {self.failed} · pending {self.pending} · "
            f"{self.rate:.2f} videos/s · ETA {eta_text}"
        )

    def _log_line(self) -> None:
        self._last_line = self._clock()
        log.info(
            "progress: %s",
            self.summary(),
            extra={
                "event": "progress",
                "done": self.done,
                "failed": self.failed,
                "pending": self.pending,
                "videos_per_s": round(self.rate, 3),
            },
        )

    def close(self) -> None:
        """Close the bar (or write a last line)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.enabled and self.total:
            self._log_line()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_tty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _hms(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
