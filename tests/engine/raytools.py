"""Helpers for tests that start Ray: process trees, listening sockets, free ports."""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


def descendants(pid: int) -> set[int]:
    """``pid`` and every process below it (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        if p not in found:
            found.add(p)
            todo.extend(children.get(p, []))
    return found


def session_pids(sid: int) -> set[int]:
    """Processes whose session id is ``sid`` (a process group started with start_new_session)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[3]) == sid:
                    pids.add(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return pids


def listeners(pids: set[int]) -> list[tuple[str, int]]:
    """``(local address, pid)`` of every TCP socket in LISTEN state owned by ``pids``."""
    return [(address, pid) for address, pid in listening_sockets() if pid in pids]


def listening_sockets(inside: Sequence[str] = ()) -> list[tuple[str, int]]:
    """``(local address, pid)`` of every listening TCP socket; ``inside``: a command prefix
    that runs ``ss`` in another network namespace (``nsenter --net ...``)."""
    out = subprocess.run([*inside, "ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        for pid in re.findall(r"pid=(\d+)", line):
            found.append((parts[3], int(pid)))
    return found


def listening_on(port: int) -> list[str]:
    """Every ``ss`` LISTEN line for ``port``, whoever owns it."""
    out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if len(line.split()) > 3 and line.split()[3].endswith(f":{port}")]


def is_loopback(address: str) -> bool:
    """Whether ``ss``'s local address (``127.0.0.1:80``, ``[::ffff:127.0.0.1]:80``, ``*:80``) is loopback-only."""
    host = address.rsplit(":", 1)[0].strip("[]").split("%")[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False  # "*" and names: every interface
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


def non_loopback(pids: set[int]) -> list[tuple[str, int]]:
    """Listening sockets of ``pids`` reachable from outside this machine."""
    return [(addr, pid) for addr, pid in listeners(pids) if not is_loopback(addr)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_session(proc: subprocess.Popen, grace_s: float = 10.0) -> set[int]:
    """End every process of ``proc``'s session (it was started with start_new_session).

    SIGTERM first, SIGKILL what is left after ``grace_s``; returns the pids still alive
    after that (empty when all is gone).
    """
    sid = proc.pid  # start_new_session: the leader's pid is the session id
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        for pid in session_pids(sid):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + wait_s
        while session_pids(sid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not session_pids(sid):
            break
    return session_pids(sid)
