"""`review serve` says what it waits for while Label Studio starts, with the time elapsed.

A stand-in for the ``label-studio`` executable prints what Label Studio 1.23 prints as it
starts (the PyPI version check, "Initializing database..", "Starting development
server at …"), pausing between the steps as a first start does (scaled down), then
answers ``/health`` on the port it was given.
"""

from __future__ import annotations

import os
import socket
import stat
import sys
import time
from pathlib import Path

import pytest

from tubelet.cli.main import main
from tubelet.review.server import running_server, start_server, stop_pid

FAKE = """#!{python}
import argparse, http.server, pathlib, sys, time
parser = argparse.ArgumentParser()
parser.add_argument("command")
parser.add_argument("--port", type=int)
parser.add_argument("--data-dir")
args, _ = parser.parse_known_args()
database = pathlib.Path(args.data_dir) / "label_studio.sqlite3"
first = not database.exists()
def say(text, pause):
    print(text, flush=True)
    time.sleep(pause)
say("=> Database and media directory: " + args.data_dir, {pause})
say("Starting new HTTPS connection (1): pypi.org:443", {pause})
if first:
    say("Initializing database..", 3 * {pause})
    database.write_text("migrated")
say("Starting development server at http://127.0.0.1:%d/" % args.port, {pause})
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b'{{"status": "UP"}}')
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", args.port), Health).serve_forever()
"""

PAUSE_S = 0.6
EVERY_S = 0.5


@pytest.fixture()
def fake_label_studio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    binary = tmp_path / "label-studio"
    binary.write_text(FAKE.format(python=sys.executable, pause=PAUSE_S))
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("TUBELET_LABEL_STUDIO", str(binary))
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "a-test-token-0123456789")
    monkeypatch.setenv("LABEL_STUDIO_PASSWORD", "a-test-password")
    return binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_first_start_says_each_step_and_keeps_saying_it_waits(fake_label_studio: Path, tmp_path: Path) -> None:
    said: list[tuple[float, str]] = []
    port = free_port()
    server = start_server(
        tmp_path / "data",
        port=port,
        wait_s=60,
        report=lambda message: said.append((time.monotonic(), message)),
        report_every_s=EVERY_S,
    )
    try:
        messages = [m for _, m in said]
        assert messages[0].startswith(f"starting Label Studio (pid {server.pid}) on 127.0.0.1:{port}")
        assert "a first start creates its database" in messages[0] and str(server.log_path) in messages[0]
        steps = [m.split(": ", 1)[1].rsplit(" (", 1)[0] for m in messages[1:-1]]
        # each step once it shows in Label Studio's log, in order (repeats are the heartbeat)
        distinct = [s for i, s in enumerate(steps) if i == 0 or s != steps[i - 1]]
        assert distinct[-3:] == [
            "asking pypi.org for a newer Label Studio version",
            "creating its database (migrations)",
            f"waiting for port {port} to answer",
        ], messages
        assert distinct[:-3] in ([], ["loading its code"]), messages
        assert steps.count("creating its database (migrations)") >= 3  # 1.8 s of migrations, a line every 0.5 s
        times = [t for t, _ in said]
        assert max(b - a for a, b in zip(times, times[1:])) <= EVERY_S + 0.7
        elapsed = [int(m.rsplit("(", 1)[1].split(" s)")[0]) for m in messages[1:-1]]
        assert elapsed == sorted(elapsed) and elapsed[-1] >= 2
        assert messages[-1].startswith(f"Label Studio answers on http://127.0.0.1:{port} after ")
    finally:
        server.stop()
    assert running_server(tmp_path / "data") is None


def test_a_restart_skips_the_database_step(fake_label_studio: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    start_server(data, port=free_port(), wait_s=60).stop()
    said: list[str] = []
    server = start_server(data, port=free_port(), wait_s=60, report=said.append, report_every_s=EVERY_S)
    server.stop()
    assert "first start" not in said[0]
    assert not [m for m in said if "database" in m]
    assert said[-1].startswith("Label Studio answers on")


def test_a_server_that_never_answers_names_its_last_step(fake_label_studio: Path, tmp_path: Path) -> None:
    from tubelet.review.client import ReviewServerError

    said: list[str] = []
    with pytest.raises(ReviewServerError, match=r"within 2s \(last step: creating its database \(migrations\)\)"):
        start_server(tmp_path / "data", port=free_port(), wait_s=2.0, report=said.append, report_every_s=EVERY_S)
    assert running_server(tmp_path / "data") is None


def test_review_serve_prints_the_steps_on_stderr(fake_label_studio: Path, tmp_path: Path, capsys) -> None:
    data, port = tmp_path / "data", free_port()
    try:
        assert main(["review", "serve", "--data-dir", str(data), "--port", str(port)]) == 0
        captured = capsys.readouterr()
        assert f"Label Studio is running at http://127.0.0.1:{port}" in captured.out  # what to use: stdout
        err = captured.err.splitlines()
        assert err[0].startswith("starting Label Studio (pid ")
        assert any(line.startswith("waiting for Label Studio: creating its database (migrations) (") for line in err)
        assert err[-1].startswith(f"Label Studio answers on http://127.0.0.1:{port} after ")
        assert os.environ["LABEL_STUDIO_API_KEY"] not in captured.err + captured.out
    finally:
        pid = running_server(data)
        if pid is not None:
            stop_pid(pid)
