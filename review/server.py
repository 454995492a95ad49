"""Start and stop a local Label Studio for people who have none (``tubelet review serve``).

The server binds to 127.0.0.1 only, keeps its database and uploads in ``data_dir``, and
serves the dataset's videos from local files (``LOCAL_FILES_DOCUMENT_ROOT``). Its admin
user and API token come from the environment (``LABEL_STUDIO_USERNAME``,
``LABEL_STUDIO_PASSWORD``, ``LABEL_STUDIO_API_KEY``), never from files tubelet writes.

Label Studio pins ``numpy<2.3`` and an older OpenCV, so it is best installed in its own
virtual environment: ``find_label_studio`` looks for ``TUBELET_LABEL_STUDIO``, then
``label-studio`` on ``PATH``, then ``.venv-ls/bin/label-studio`` (what ``make`` builds).
A first start runs the database migrations (~50 s); a restart on the same ``data_dir``
takes seconds.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tubelet.review.client import ENV_TOKEN, ReviewServerError

ENV_BINARY = "TUBELET_LABEL_STUDIO"
ENV_USERNAME = "LABEL_STUDIO_USERNAME"
ENV_PASSWORD = "LABEL_STUDIO_PASSWORD"
DEFAULT_USERNAME = "admin@localhost"
PID_FILE = "tubelet-label-studio.pid"
LOG_FILE = "tubelet-label-studio.log"
#: Label Studio's database in its data dir (absent before a first start: migrations follow).
DATABASE_FILE = "label_studio.sqlite3"


class ServerRefusedError(ReviewServerError, ValueError):
    """Label Studio was not started: it is missing, credentials are missing or unusable, or a
    server from the same data folder runs already (nothing was done: exit 2)."""


def find_label_studio() -> str:
    """The ``label-studio`` executable to run (see the module docstring)."""
    candidates = [os.environ.get(ENV_BINARY), shutil.which("label-studio")]
    # `make install` puts it in .venv-ls beside the project's .venv
    candidates.append(str(Path(sys.prefix).parent / ".venv-ls" / "bin" / "label-studio"))
    for path in candidates:
        if path and os.access(path, os.X_OK):
            return path
    raise ServerRefusedError(
        f"label-studio is not installed: `python -m venv .venv-ls && .venv-ls/bin/pip install "
        f"label-studio` (or `make install`), or set {ENV_BINARY} to its executable"
    )


@dataclass
class LocalServer:
    """A Label Studio process started by tubelet."""

    url: str
    pid: int
    data_dir: Path
    log_path: Path

    def stop(self, timeout_s: float = 20.0) -> None:
        """Stop the server (its whole process group) and forget its pid file."""
        stop_pid(self.pid, timeout_s)
        (self.data_dir / PID_FILE).unlink(missing_ok=True)


def start_server(
    data_dir: str | os.PathLike[str],
    *,
    port: int = 8080,
    document_root: str = "/",
    wait_s: float = 180.0,
    binary: str | None = None,
    report: Callable[[str], None] | None = None,
    report_every_s: float = 10.0,
) -> LocalServer:
    """Start Label Studio on ``127.0.0.1:port`` with ``data_dir``; wait until it answers.

    ``report`` receives what it waits for, with the time elapsed: once when it starts,
    whenever Label Studio's log shows the next step (``STARTUP_STEPS``), and every
    ``report_every_s`` in between — a first start spends about a minute on migrations.

    Raises ReviewServerError when the credentials are missing from the environment, a
    server from this ``data_dir`` is already running, or it does not come up in ``wait_s``.
    """
    token, password = os.environ.get(ENV_TOKEN), os.environ.get(ENV_PASSWORD)
    if not token or not password:
        raise ServerRefusedError(
            f"set {ENV_TOKEN} (the API token to create, e.g. `python -c 'import secrets; print(secrets.token_hex(20))'`)"
            f" and {ENV_PASSWORD} (the admin's password); {ENV_USERNAME} defaults to {DEFAULT_USERNAME}"
        )
    if len(token) < 6:  # Label Studio prints (instead of applying) a shorter token
        raise ServerRefusedError(f"{ENV_TOKEN} is too short: use at least 6 characters (40 hex digits are usual)")
    data = Path(data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    running = running_server(data)
    if running is not None:
        raise ServerRefusedError(
            f"a Label Studio from {data} is already running (pid {running}); "
            f"stop it with `tubelet review stop --data-dir {data}`"
        )
    env = dict(os.environ)
    env.update(
        {
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",  # a preset token needs the legacy token auth
            "LOCAL_FILES_SERVING_ENABLED": "true",
            "LOCAL_FILES_DOCUMENT_ROOT": document_root,
            "LABEL_STUDIO_USER_TOKEN": token,
            "DJANGO_DB": "sqlite",
            "SENTRY_DSN": "",
            "FRONTEND_SENTRY_DSN": "",
            "COLLECT_ANALYTICS": "false",
        }
    )
    # The token and password travel in the environment (LABEL_STUDIO_USER_TOKEN,
    # LABEL_STUDIO_PASSWORD), not in argv, so `ps` never shows them. Label Studio applies
    # the token when it creates the admin, i.e. on the first start of a data_dir.
    command = [
        binary or find_label_studio(),
        "start",
        "--no-browser",
        "--internal-host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data),
        "--username",
        env.get(ENV_USERNAME) or DEFAULT_USERNAME,
        "--enable-legacy-api-token",
    ]
    log_path = data / LOG_FILE
    first_start = not (data / DATABASE_FILE).is_file()
    with open(log_path, "ab") as log_file:
        log_start = log_file.tell()  # what this start writes comes after what earlier ones left
        process = subprocess.Popen(
            command, env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=data, start_new_session=True
        )
    (data / PID_FILE).write_text(str(process.pid))
    server = LocalServer(url=f"http://127.0.0.1:{port}", pid=process.pid, data_dir=data, log_path=log_path)
    say = report or (lambda _message: None)
    say(
        f"starting Label Studio (pid {process.pid}) on 127.0.0.1:{port} with {data}"
        + (": a first start creates its database (about a minute)" if first_start else "")
        + f"; its log: {log_path}"
    )
    started = time.monotonic()
    deadline = started + wait_s
    step, said_at = "loading its code", started
    while time.monotonic() < deadline:
        if process.poll() is not None:
            (data / PID_FILE).unlink(missing_ok=True)
            raise ReviewServerError(f"Label Studio exited with code {process.returncode}; see {log_path}")
        if _healthy(server.url):
            say(f"Label Studio answers on {server.url} after {time.monotonic() - started:.0f} s")
            return server
        now = time.monotonic()
        current = _startup_step(log_path, log_start, port) or step
        if current != step or now - said_at >= report_every_s:
            say(f"waiting for Label Studio: {current} ({now - started:.0f} s)")
            step, said_at = current, now
        time.sleep(0.5)
    server.stop()
    raise ReviewServerError(
        f"Label Studio did not answer on {server.url} within {wait_s:.0f}s (last step: {step}); see {log_path}"
    )


#: What Label Studio's log says as it starts, and what tubelet then says it waits for.
STARTUP_STEPS = (
    ("pypi.org", "asking pypi.org for a newer Label Studio version"),
    ("Initializing database", "creating its database (migrations)"),
    ("Starting development server", "waiting for port {port} to answer"),
)


def _startup_step(log_path: Path, start: int, port: int) -> str | None:
    """The last step of STARTUP_STEPS that the log shows since byte ``start``, or None."""
    try:
        with open(log_path, "rb") as log_file:
            log_file.seek(start)
            text = log_file.read().decode("utf-8", "replace")
    except OSError:
        return None
    seen = [(text.rfind(marker), step) for marker, step in STARTUP_STEPS if marker in text]
    return max(seen)[1].format(port=port) if seen else None


def running_server(data_dir: str | os.PathLike[str]) -> int | None:
    """The pid of a live server started from ``data_dir``, else None."""
    path = Path(data_dir) / PID_FILE
    if not path.is_file():
        return None
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        path.unlink(missing_ok=True)
        return None
    except PermissionError:
        pass
    return pid


def stop_pid(pid: int, timeout_s: float = 20.0) -> None:
    """SIGTERM the process group of ``pid``, then SIGKILL what is left after ``timeout_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                waited, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                waited = 0
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
            if waited == pid:
                return
            time.sleep(0.2)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False
