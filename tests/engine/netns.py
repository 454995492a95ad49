"""A network namespace of a test's own, with only a loopback interface.

Whatever runs in it (``ray start``, ``tubelet run``) can listen on nothing but that
namespace's 127.0.0.1: it is unreachable from the machine's networks and cannot clash
with ports on the machine. Its processes are found by the namespace they live in
(``/proc/PID/ns/net``), so a test ends exactly what it started, daemons included,
without ``ray stop`` (which ends every Ray process on the machine).

A holder process (``sleep``) keeps the namespace alive; commands enter it with
``nsenter``. Root (CAP_SYS_ADMIN) creates it directly; others need unprivileged user
namespaces.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.engine.raytools import is_loopback, listening_sockets

_HOLDER_SCRIPT = "ip link set lo up && echo ready && exec sleep infinity"
_CAP_SYS_ADMIN = 21


class NamespaceUnavailableError(RuntimeError):
    """This machine or user cannot create a network namespace."""


@dataclass
class NetworkNamespace:
    """A loopback-only network namespace, alive while ``holder`` runs."""

    holder: subprocess.Popen[bytes]
    enter: list[str]
    identity: str

    @classmethod
    def create(cls, timeout_s: float = 10.0) -> NetworkNamespace:
        """A new namespace with ``lo`` up; NamespaceUnavailableError if the system refuses one."""
        rootless = not can_create_directly()
        unshare = ["unshare", "--map-root-user", "--net"] if rootless else ["unshare", "--net"]
        try:
            holder = subprocess.Popen(
                [*unshare, "sh", "-c", _HOLDER_SCRIPT],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except FileNotFoundError as error:
            raise NamespaceUnavailableError(f"{error.filename} is not installed") from None
        if not _says_ready(holder, timeout_s):
            holder.kill()
            _, err = holder.communicate()
            raise NamespaceUnavailableError(
                err.decode(errors="replace").strip() or f"unshare exited {holder.returncode}"
            )
        enter = ["nsenter", f"--target={holder.pid}", "--net"]
        if rootless:  # the namespace belongs to the user namespace unshare made
            enter[1:1] = ["--user", "--preserve-credentials"]
        return cls(holder=holder, enter=enter, identity=os.readlink(f"/proc/{holder.pid}/ns/net"))

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside the namespace."""
        return [*self.enter, *argv]

    def pids(self) -> set[int]:
        """Every live process inside the namespace, except the holder."""
        found = set()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != self.holder.pid and self._lives_here(entry):
                found.add(int(entry.name))
        return found

    def interfaces(self) -> list[str]:
        """The names of the namespace's network interfaces."""
        out = subprocess.run(self.command(["ip", "-o", "link", "show"]), capture_output=True, text=True, check=True)
        return [line.split(":")[1].strip() for line in out.stdout.splitlines()]

    def listeners(self) -> list[tuple[str, int]]:
        """``(local address, pid)`` of every listening TCP socket inside the namespace."""
        return listening_sockets(inside=self.enter)

    def exposed(self) -> list[tuple[str, int]]:
        """Listening sockets inside the namespace on anything but loopback."""
        return [(address, pid) for address, pid in self.listeners() if not is_loopback(address)]

    def stop_processes(self, grace_s: float = 5.0) -> set[int]:
        """SIGTERM every process inside, SIGKILL what is left after ``grace_s``; the pids still alive."""
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
            for pid in self.pids():
                _signal(pid, sig)
            deadline = time.monotonic() + wait_s
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.2)
            if not self.pids():
                break
        return self.pids()

    def close(self) -> None:
        """End the holder: the namespace goes with its last process."""
        self.holder.kill()
        self.holder.communicate()

    def _lives_here(self, proc: Path) -> bool:
        try:
            return os.readlink(proc / "ns" / "net") == self.identity and not _is_zombie(proc)
        except OSError:  # gone, or not ours to inspect
            return False


def can_create_directly() -> bool:
    """Whether this process may create a network namespace itself: it holds CAP_SYS_ADMIN
    (root, unless a container took the capability away)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) & (1 << _CAP_SYS_ADMIN))
    return False


def _says_ready(holder: subprocess.Popen[bytes], timeout_s: float) -> bool:
    assert holder.stdout is not None
    ready, _, _ = select.select([holder.stdout], [], [], timeout_s)
    return bool(ready) and holder.stdout.readline().strip() == b"ready"


def _is_zombie(proc: Path) -> bool:
    return (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
