"""Which process is this, and is that one still alive.

A pid alone does not name a process: pids are reused, and a record may come from another
machine or from before a reboot. So a process is named by its host, the kernel's boot id,
its pid and the pid's start time; on the same host and boot, whether it is alive is a
fact (``/proc``), elsewhere it is unknown (a heartbeat has to tell).
"""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


def boot_id() -> str:
    """This boot of this machine ("" where the kernel does not say)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_started(pid: int) -> str:
    """When ``pid`` started (clock ticks since boot), "" if it does not exist: a pid reused
    by another process has another start time."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return ""
        except PermissionError:
            return "alive"  # someone else's process: it exists
        return "alive"  # no /proc (macOS): the pid exists, its identity is unknown
    return stat.rsplit(")", 1)[1].split()[19]


@dataclass(frozen=True)
class ProcessIdentity:
    """A process, named so that it is never mistaken for another."""

    host: str
    boot_id: str
    pid: int
    pid_started: str

    @classmethod
    def current(cls) -> ProcessIdentity:
        """This process."""
        pid = os.getpid()
        return cls(host=socket.gethostname(), boot_id=boot_id(), pid=pid, pid_started=process_started(pid))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProcessIdentity:
        return cls(
            host=str(data.get("host", "")),
            boot_id=str(data.get("boot_id", "")),
            pid=int(data.get("pid", 0)),
            pid_started=str(data.get("pid_started", "")),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def here(self) -> bool:
        """Whether the process ran on this machine, in this boot."""
        return self.host == socket.gethostname() and self.boot_id == boot_id()

    def alive(self) -> bool | None:
        """Whether the process still runs: a fact on this machine (same boot), None elsewhere."""
        if not self.here():
            return None
        return process_started(self.pid) == self.pid_started
