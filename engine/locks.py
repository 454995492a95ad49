"""One writer per dataset: refuse a second run while one is writing.

The lock is a courtesy, not what makes commits exactly-once (the ledger's conditional
create does that, see ``tubelet.engine.ledger``): it tells a user at once that another
run is writing, instead of letting two runs race for the same videos.

- A local folder: ``fcntl.flock`` on ``meta/.lock``; the OS releases it when the
  process dies, however it dies.
- Object storage has no locks: a *lease*, the object ``meta/writer.lock`` created only
  if absent, naming its holder (run id, host, pid) and renewed by a heartbeat. Another
  writer is refused while the heartbeat is fresh; a lease whose holder is provably dead
  (same host, process gone) or whose heartbeat is older than ``lease_s`` is taken over.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

from tubelet.engine.process_identity import boot_id as _boot_id
from tubelet.engine.process_identity import process_started as _process_started
from tubelet.engine.storage import Storage

log = logging.getLogger(__name__)

LOCK_FILE = "meta/.lock"
LEASE_FILE = "meta/writer.lock"
#: A lease not renewed for this long is abandoned (its holder died without releasing it).
LEASE_S = 120.0


class DatasetLockedError(RuntimeError):
    """Another process is writing the same dataset."""


class WriteLock(ABC):
    """Held while a writer may commit; a context manager."""

    @abstractmethod
    def release(self) -> None:
        """Give the lock up (safe to call twice)."""

    def __enter__(self) -> WriteLock:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def acquire_write_lock(storage: Storage, owner: str) -> WriteLock:
    """Take the dataset's write lock for ``owner`` (a run id); DatasetLockedError if held."""
    path = storage.local_path()
    if path is not None:
        return FileLock(path)
    return Lease(storage, owner)


class FileLock(WriteLock):
    """``flock`` on ``<root>/meta/.lock``, holding the writer's pid for the message."""

    def __init__(self, root: Path) -> None:
        meta = root / "meta"
        meta.mkdir(parents=True, exist_ok=True)
        fd = os.open(meta / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DatasetLockedError(f"{root} is being written by another run (pid {holder})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None


@dataclass
class _Holder:
    owner: str
    host: str
    boot_id: str
    pid: int
    pid_started: str
    heartbeat_at: float  # seconds since the epoch, the holder's clock
    lease_s: float

    def alive_here(self) -> bool | None:
        """Whether the holder process is alive, when it ran on this machine (None: elsewhere)."""
        if self.host != socket.gethostname() or self.boot_id != _boot_id():
            return None
        return _process_started(self.pid) == self.pid_started

    def stale(self, now: float) -> bool:
        return now - self.heartbeat_at > self.lease_s


class Lease(WriteLock):
    """A lease object on storage without locks, renewed by a daemon thread."""

    def __init__(self, storage: Storage, owner: str, *, lease_s: float = LEASE_S) -> None:
        self.storage = storage
        self.holder = _Holder(
            owner=owner,
            host=socket.gethostname(),
            boot_id=_boot_id(),
            pid=os.getpid(),
            pid_started=_process_started(os.getpid()),
            heartbeat_at=time.time(),
            lease_s=lease_s,
        )
        if not storage.create(LEASE_FILE, self._payload()):
            self._take_over_if_abandoned()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="tubelet-lease", daemon=True)
        self._thread.start()

    def _payload(self) -> bytes:
        return json.dumps(asdict(self.holder)).encode()

    def _take_over_if_abandoned(self) -> None:
        try:
            other = _Holder(**json.loads(self.storage.read_bytes(LEASE_FILE)))
        except FileNotFoundError:
            other = None  # released meanwhile
        except (ValueError, TypeError) as error:
            raise DatasetLockedError(f"{self.storage.url(LEASE_FILE)} is not a tubelet lease ({error})") from None
        if other is not None:
            alive = other.alive_here()
            if alive or (alive is None and not other.stale(time.time())):
                age = max(time.time() - other.heartbeat_at, 0.0)
                raise DatasetLockedError(
                    f"{self.storage.root} is being written by run {other.owner} (host {other.host}, pid {other.pid}, "
                    f"lease renewed {age:.0f} s ago); if that run is dead, its lease expires "
                    f"{max(other.lease_s - age, 0):.0f} s from now"
                )
            log.warning("taking over the abandoned write lease of run %s (host %s)", other.owner, other.host)
            self.storage.delete(LEASE_FILE)
        if not self.storage.create(LEASE_FILE, self._payload()):
            raise DatasetLockedError(f"{self.storage.root}: another writer took the lease at the same moment")

    def _renew(self) -> None:
        while not self._stop.wait(self.holder.lease_s / 4):
            self.holder.heartbeat_at = time.time()
            try:
                self.storage.write_bytes(LEASE_FILE, self._payload())
            except Exception:  # a failed renewal is retried; the lease outlives a few
                log.warning("could not renew the write lease of %s", self.storage.root, exc_info=True)

    def release(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            current = json.loads(self.storage.read_bytes(LEASE_FILE))
        except (FileNotFoundError, ValueError):
            return
        if current.get("owner") == self.holder.owner:  # never delete someone else's lease
            self.storage.delete(LEASE_FILE)
