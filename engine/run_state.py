"""A run's state is what happened, not what was last written.

``meta/info.json`` says "running" from a run's start until its driver writes how it ended.
A driver that is killed (SIGKILL, the out-of-memory killer, a reboot, Ray exiting the
process when its raylet dies) never writes it, so each run also records its driver
(host, boot id, pid and the pid's start time) and a heartbeat the driver refreshes every
``HEARTBEAT_S`` seconds. A run recorded "running" is then

- **running** when its driver process still exists (same machine and boot: a fact), or,
  run elsewhere, when its heartbeat is younger than ``STALE_S``;
- **crashed** otherwise: nothing will write its end. The next run on the dataset (which
  holds the write lock, so no live driver can exist) records it as "crashed".
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from types import TracebackType

from tubelet.engine.dataset import INFO_FILE
from tubelet.engine.process_identity import ProcessIdentity
from tubelet.engine.storage import Storage
from tubelet.engine.writer import utc_now
from tubelet.schemas.info import DatasetInfo, RunInfo, info_to_json

log = logging.getLogger(__name__)

#: Seconds between two heartbeats of a running driver.
HEARTBEAT_S = 30.0
#: A driver on another machine silent this long is taken for dead (four missed heartbeats).
STALE_S = 4 * HEARTBEAT_S

#: Statuses a run ends with; "running" is the only one that may be out of date.
ENDED = ("finished", "failed", "interrupted", "crashed")


@dataclass(frozen=True)
class RunState:
    """What a run is now: ``status`` (running, crashed, or how it ended) and a line saying why."""

    status: str
    detail: str = ""

    @property
    def ended_badly(self) -> bool:
        """The run did not finish: it failed, was interrupted or crashed."""
        return self.status in ("failed", "interrupted", "crashed")


def run_state(run: RunInfo, *, now: datetime | None = None) -> RunState:
    """The state of ``run``: as recorded when it ended; for a run recorded "running",
    whether its driver is alive (see the module docstring)."""
    if run.status != "running":
        return RunState(run.status, run.error or "")
    if not run.driver:
        return RunState("running", "recorded by a tubelet that kept no driver: whether it is alive is unknown")
    driver = ProcessIdentity.from_dict(run.driver)
    who = f"driver pid {driver.pid} on {driver.host}"
    age = _age_s(run.heartbeat_at, now)
    beat = f"last heartbeat {age:.0f} s ago" if age is not None else "no heartbeat recorded"
    alive = driver.alive()
    if alive is None:  # another machine: only the heartbeat tells
        if age is not None and age <= STALE_S:
            return RunState("running", f"{who}, {beat}")
        return RunState("crashed", f"{who} silent: {beat} (more than {STALE_S:.0f} s)")
    if alive:
        return RunState("running", f"{who}, {beat}")
    return RunState("crashed", f"{who} is gone ({beat}); what it committed is kept, run the manifest again to resume")


def _age_s(stamp: str | None, now: datetime | None) -> float | None:
    if not stamp:
        return None
    try:
        then = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return max(((now or datetime.now(timezone.utc)) - then).total_seconds(), 0.0)


def mark_crashed(info: DatasetInfo, found_by: str) -> list[RunInfo]:
    """Record as "crashed" the runs of ``info`` still "running": called by a run that holds
    the dataset's write lock, so none of them can be alive. Returns them."""
    crashed = []
    for run in info.runs:
        if run.status == "running":
            state = run_state(run)
            run.status = "crashed"
            run.error = f"the run ended without recording how (found by run {found_by}): {state.detail}"
            crashed.append(run)
    return crashed


class RunRecord:
    """``meta/info.json`` while a run is on: the driver's writes and its heartbeat.

    A daemon thread rewrites info.json every ``interval`` seconds with a fresh
    ``heartbeat_at``; every write of the run goes through ``save`` under one lock, so a
    heartbeat never lands between two writes of the driver with older contents.
    """

    def __init__(self, storage: Storage, info: DatasetInfo, run: RunInfo, *, interval: float = HEARTBEAT_S) -> None:
        self.storage, self.info, self.run = storage, info, run
        self.interval = interval
        run.driver = ProcessIdentity.current().to_dict()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def save(self) -> None:
        """Write info.json as it is now, with a fresh heartbeat."""
        with self._lock:
            self.run.heartbeat_at = utc_now()
            self.storage.write_text(INFO_FILE, info_to_json(self.info))

    def start(self) -> RunRecord:
        """Start the heartbeat."""
        self._thread = threading.Thread(target=self._beat, name="tubelet-heartbeat", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the heartbeat (before the driver writes how the run ended); safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 10)
            self._thread = None

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.save()
            except Exception:  # a missed heartbeat is retried; four in a row make a remote reader doubt
                log.warning("could not refresh the run's heartbeat in %s", self.storage.url(INFO_FILE), exc_info=True)

    def __enter__(self) -> RunRecord:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
