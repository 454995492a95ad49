"""Progress (bar on a TTY, log lines otherwise) and structured run logs."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from tubelet.engine.logs import RunLogging, parse_level, read_log
from tubelet.engine.progress import Progress


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_counts_rate_and_eta():
    now = [100.0]
    progress = Progress(10, enabled=False, clock=lambda: now[0])
    assert progress.eta_s is None and progress.rate == 0.0
    now[0] = 104.0
    progress.advance()
    progress.advance(failed=True)
    assert (progress.done, progress.failed, progress.pending) == (1, 1, 8)
    assert progress.rate == 0.5 and progress.eta_s == 16.0
    assert progress.summary() == "done 1 · failed 1 · pending 8 · 0.50 videos/s · ETA 0:00:16"


def test_progress_logs_lines_when_not_a_terminal(caplog):
    caplog.set_level(logging.INFO, logger="tubelet.engine.progress")
    with Progress(3, stream=io.StringIO(), interval_s=0) as progress:
        progress.advance()
        progress.advance(failed=True)
        progress.advance()
    lines = [r for r in caplog.records if r.name == "tubelet.engine.progress"]
    assert len(lines) == 4  # one per video (interval 0) and a last one on close
    assert "done 2 · failed 1 · pending 0" in lines[-1].getMessage()
    assert lines[-1].event == "progress" and lines[-1].pending == 0


def test_progress_draws_a_bar_on_a_terminal(caplog):
    stream = FakeTty()
    with Progress(3, stream=stream) as progress:
        for _ in range(3):
            progress.advance()
    assert "3/3" in stream.getvalue() and "done=3" in stream.getvalue()
    assert not [r for r in caplog.records if r.name == "tubelet.engine.progress"]


def test_run_logging_writes_json_lines_and_readable_stderr(tmp_path, capsys):
    log = logging.getLogger("tubelet.engine.some_module")
    with RunLogging(tmp_path, "r1", level="info") as run_log:
        log.info("committed %d videos", 3, extra={"event": "shard_committed", "items": 3})
        log.debug("not at info level")
        try:
            raise ValueError("bad")
        except ValueError:
            log.exception("stage failed")
    log.warning("after close: not captured")

    records = read_log(run_log.path)
    assert [r["msg"] for r in records] == ["committed 3 videos", "stage failed"]
    first = records[0]
    assert (first["event"], first["items"], first["run_id"], first["level"], first["logger"]) == (
        "shard_committed",
        3,
        "r1",
        "INFO",
        "tubelet.engine.some_module",
    )
    assert "ValueError: bad" in records[1]["exc"]
    err = capsys.readouterr().err
    ours = [
        line for line in err.splitlines() if re.match(r"\d\d:\d\d:\d\d [A-Z]+ +tubelet\.engine\.some_module: ", line)
    ]
    assert [line[9:] for line in ours] == [
        "INFO    tubelet.engine.some_module: committed 3 videos",
        "ERROR   tubelet.engine.some_module: stage failed",
    ]
    assert json.loads(run_log.path.read_text().splitlines()[0])["ts"].endswith("+00:00")


def test_log_levels():
    assert parse_level("debug") == logging.DEBUG and parse_level(30) == 30
    with pytest.raises(ValueError, match="unknown log level"):
        parse_level("loud")


def test_read_log_skips_a_torn_last_line(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"msg": "a"}\n{"msg": "b')
    assert read_log(path) == [{"msg": "a"}]
