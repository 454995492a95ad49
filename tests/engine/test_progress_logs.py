"""Progress (bar on a TTY, log lines otherwise) and structured run logs."""

from __future__ import annotations

import io
import json
import logging
import re
import time

import pytest

from tubelet.engine.logs import RunLogging, parse_level, read_log
from tubelet.engine.progress import Progress, ReportPump
from tubelet.engine.worker_progress import WorkerReport


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def report(worker: str = "w1", **fields: object) -> WorkerReport:
    values: dict[str, object] = {
        "worker": worker,
        "stage": "track",
        "video": "clip-1",
        "videos": 1,
        "stage_frames": 0,
        "video_frames": None,
        "frames": 0,
        "running": True,
    }
    values.update(fields)
    return WorkerReport(**values)  # type: ignore[arg-type]


def test_progress_counts_rate_and_eta():
    now = [100.0]
    progress = Progress(10, enabled=False, clock=lambda: now[0])
    assert progress.eta_s is None and progress.rate == 0.0
    now[0] = 104.0
    progress.advance()
    progress.advance(failed=True)
    assert (progress.done, progress.failed, progress.pending) == (1, 1, 8)
    assert progress.rate == 0.5 and progress.eta_s == 16.0
    assert progress.summary() == (
        "2/10 videos (1 failed) · elapsed 0:00:04 · ETA 0:00:16 · 0 frames, 0.0/s · 0.50 videos/s · starting workers"
    )


def test_worker_reports_say_what_runs_and_count_frames():
    now = [0.0]
    progress = Progress(3, enabled=False, clock=lambda: now[0])
    progress.worker_report(report("w1", stage_frames=40, video_frames=120, frames=42))
    progress.worker_report(report("w2", video="clip-2", stage="probe", frames=2))
    now[0] = 2.0
    assert progress.frames == 44 and progress.frame_rate == 22.0
    assert progress.summary().endswith(
        "44 frames, 22.0/s · 0.00 videos/s · probe: clip-2 0 frames; track: clip-1 40/120 frames"
    )
    # the latest report of a worker wins (counts are cumulative): a lost report costs nothing
    progress.worker_report(report("w1", stage_frames=130, video_frames=120, frames=132))
    assert progress.frames == 134 and "track: clip-1 120/120 frames" in progress.summary()  # capped at the video's
    # a committed video is no longer running, but its frames still count
    progress.advance(item="clip-1")
    assert [r.worker for r in progress.running()] == ["w2"] and progress.frames == 134
    for i in range(3, 7):  # more than DETAILED_WORKERS busy: counted per stage
        progress.worker_report(report(f"w{i}", video=f"clip-{i}"))
    assert "running probe ×1, track ×4" in progress.summary()


def test_log_lines_come_every_interval_while_nothing_finishes(caplog):
    """A stage that runs for long on one video: lines keep coming, with the time elapsed."""
    caplog.set_level(logging.INFO, logger="tubelet.engine.progress")
    with Progress(2, stream=io.StringIO(), log_interval_s=0.1) as progress:
        progress.worker_report(report(stage_frames=8, frames=8))
        time.sleep(0.75)
    records = [r for r in caplog.records if r.name == "tubelet.engine.progress"]
    assert 6 <= len(records) <= 10  # one per interval, and the last one on close
    gaps = [b.created - a.created for a, b in zip(records, records[1:-1])]
    assert all(0.05 < gap < 0.4 for gap in gaps), gaps
    assert all(r.event == "progress" and r.done == 0 and r.frames == 8 for r in records)
    assert records[0].running == {"track": 1} and records[0].eta_s is None
    message = records[0].getMessage()
    assert message.startswith("progress: 0/2 videos · elapsed 0:00:00 · ETA ? · 8 frames")
    assert message.endswith("· track: clip-1 8 frames")


def test_the_default_intervals_and_the_variables_that_change_them(monkeypatch):
    monkeypatch.delenv("TUBELET_PROGRESS_TTY_S", raising=False)
    monkeypatch.delenv("TUBELET_PROGRESS_LOG_S", raising=False)
    assert Progress(1, enabled=False, stream=FakeTty()).interval_s == 10.0
    assert Progress(1, enabled=False, stream=io.StringIO()).interval_s == 30.0
    monkeypatch.setenv("TUBELET_PROGRESS_TTY_S", "2.5")
    monkeypatch.setenv("TUBELET_PROGRESS_LOG_S", "7")
    assert Progress(1, enabled=False, stream=FakeTty()).interval_s == 2.5
    assert Progress(1, enabled=False, stream=io.StringIO()).interval_s == 7.0
    monkeypatch.setenv("TUBELET_PROGRESS_LOG_S", "soon")
    assert Progress(1, enabled=False, stream=io.StringIO()).interval_s == 30.0  # warned, default kept


def test_a_terminal_gets_one_line_redrawn_at_least_every_interval(caplog):
    stream = FakeTty()
    with Progress(3, stream=stream, tty_interval_s=0.1, desc="track") as progress:
        time.sleep(0.55)  # nothing happens: the line still moves (elapsed time)
        for _ in range(3):
            progress.advance()
    text = stream.getvalue()
    draws = [d for d in text.split("\r") if d.strip()]
    assert len(draws) >= 5, text
    assert draws[0].startswith("track: 0/3 videos · elapsed 0:00:00 · ETA ?") and "starting workers" in draws[0]
    assert draws[-1].startswith("track: 3/3 videos") and "all videos finished" in draws[-1] and text.endswith("\n")
    assert text.count("\n") == 1  # one line, redrawn in place
    assert not [r for r in caplog.records if r.name == "tubelet.engine.progress"]


def test_disabled_progress_draws_and_logs_nothing(caplog):
    caplog.set_level(logging.INFO, logger="tubelet.engine.progress")
    stream = FakeTty()
    with Progress(3, enabled=False, stream=stream, tty_interval_s=0.01) as progress:
        progress.advance()
        time.sleep(0.05)
    with Progress(3, enabled=False, stream=io.StringIO(), log_interval_s=0.01) as progress:
        time.sleep(0.05)
    assert stream.getvalue() == "" and not caplog.records


def test_a_pump_delivers_fetched_reports_until_closed():
    waiting = [[report("a", frames=1)], [], [report("a", frames=5), report("b", frames=2)]]
    fetched_after_close = [report("b", frames=3)]
    got: list[WorkerReport] = []

    def fetch(wait_s: float) -> list[WorkerReport]:
        time.sleep(min(wait_s, 0.01))
        if waiting:
            return waiting.pop(0)
        return fetched_after_close if wait_s == 0.0 else []

    pump = ReportPump(fetch, got.append, wait_s=0.01)
    deadline = time.monotonic() + 5
    while waiting and time.monotonic() < deadline:
        time.sleep(0.01)
    pump.close()
    assert [(r.worker, r.frames) for r in got] == [("a", 1), ("a", 5), ("b", 2), ("b", 3)]


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
