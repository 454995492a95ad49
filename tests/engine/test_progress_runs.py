"""Progress of real runs: lines at the configured interval, fed by the workers while a
video is still being processed, on every runner; one updating line on a terminal.

The intervals default to 10 s (terminal) and 30 s (logs); these tests set them small
through ``TUBELET_PROGRESS_TTY_S`` / ``TUBELET_PROGRESS_LOG_S``.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from tests.engine.progress_stages import build
from tests.engine.videos import make_mp4
from tubelet.engine.config import RunConfig
from tubelet.engine.logs import read_log
from tubelet.engine.run import run_pipeline

ROOT = Path(__file__).resolve().parents[2]
INTERVAL_S = 0.4
#: What a loaded 2-core machine may add to an interval (thread wake-ups, a busy driver).
SLACK_S = 1.0


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 frames: 6 chunks of 8, 0.4 s apart: about 2.4 s a video."""
    return make_mp4(tmp_path_factory.mktemp("progress") / "clip.mp4", n=48)


def config(tmp_path: Path, clip: Path, runner: str, n: int = 2) -> RunConfig:
    return RunConfig(
        pipeline="tests.engine.progress_stages:build",
        output=str(tmp_path / "out"),
        runner=runner,  # type: ignore[arg-type]
        shard_size=1,
        params={"stages": [{"kind": "slow_frames", "pause_s": 0.4}, {"kind": "count"}]},
        videos=[{"uri": str(clip), "video_id": f"clip-{i}"} for i in range(n)],
    )


def progress_records(out: Path) -> list[dict[str, object]]:
    [log] = sorted((out / "meta" / "logs").glob("*.jsonl"))
    return [r for r in read_log(log) if r.get("event") == "progress"]


def seconds(record: dict[str, object]) -> float:
    return datetime.fromisoformat(str(record["ts"])).timestamp()


@pytest.mark.parametrize("runner", ["inline", "process", pytest.param("ray", marks=pytest.mark.ray)])
def test_log_lines_come_at_the_interval_and_from_workers_mid_video(request, tmp_path, clip, monkeypatch, runner):
    if runner == "ray":
        request.getfixturevalue("ray_local")
    monkeypatch.setenv("TUBELET_PROGRESS_LOG_S", str(INTERVAL_S))
    run = config(tmp_path, clip, runner)
    summary = run_pipeline(build(run.params), run, progress=True, log_to_stderr=False)
    assert summary.done == 2

    records = progress_records(tmp_path / "out")
    times = [seconds(r) for r in records]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert len(records) >= 4, records
    # the first line comes one interval after the start; none is farther apart than that
    assert max(gaps) <= INTERVAL_S + SLACK_S, gaps
    # before any video was finished, a worker said which stage runs on which video and
    # how many frames it has decoded: progress from inside a long video
    mid_video = [r for r in records if r["done"] == 0 and int(r["frames"]) > 0]  # type: ignore[call-overload]
    assert mid_video, records
    assert any(re.search(r"slow_frames: clip-\d \d+ frames", str(r["msg"])) for r in mid_video)
    assert "slow_frames" in mid_video[0]["running"]  # type: ignore[operator]
    last = records[-1]
    assert (last["done"], last["failed"], last["pending"]) == (2, 0, 0)
    assert last["frames"] == 2 * 48 and "2/2 videos" in str(last["msg"])


def test_no_progress_means_no_progress_records(tmp_path, clip, monkeypatch):
    monkeypatch.setenv("TUBELET_PROGRESS_LOG_S", str(INTERVAL_S))
    run = config(tmp_path, clip, "inline", n=1)
    run_pipeline(build(run.params), run, progress=False, log_to_stderr=False)
    assert progress_records(tmp_path / "out") == []


def write_manifest(tmp_path: Path, clip: Path, runner: str = "inline") -> Path:
    manifest = tmp_path / "run.yaml"
    data = config(tmp_path, clip, runner).model_dump(mode="json", exclude_defaults=True)
    manifest.write_text(yaml.safe_dump(data))
    return manifest


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUBELET_PROGRESS")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def test_a_terminal_gets_one_updating_line_at_the_interval(tmp_path, clip):
    """`tubelet run` with stderr on a pseudo-terminal: the line is redrawn in place
    (carriage returns, no new lines between redraws) at least every interval."""
    master, slave = pty.openpty()
    command = [sys.executable, "-m", "tubelet", "run", str(write_manifest(tmp_path, clip)), "--log-level", "warning"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=slave, env=cli_env(TUBELET_PROGRESS_TTY_S=str(INTERVAL_S)), cwd=ROOT
    )
    os.close(slave)
    chunks: list[tuple[float, bytes]] = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                break
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed its end
                break
            if not data:
                break
            chunks.append((time.monotonic(), data))
    finally:
        os.close(master)
        out, _ = process.communicate(timeout=60)
    assert process.returncode == 0, (out, chunks)
    text = b"".join(c for _, c in chunks).decode()
    draws = [(t, c.decode()) for t, c in chunks if b"progress-test:" in c]
    assert len(draws) >= 4, text
    gaps = [b[0] - a[0] for a, b in zip(draws, draws[1:])]
    assert max(gaps) <= INTERVAL_S + SLACK_S, gaps
    assert re.search(r"progress-test: 0/2 videos · elapsed [\d:]+ · ETA \? · .* · slow_frames: clip-0 \d+ frames", text)
    # one line, redrawn: every draw starts with a carriage return; the only new line is the last
    assert text.count("\n") <= 1 and text.count("\r") >= len(draws) - 1, repr(text)
    assert "progress-test: 2/2 videos" in text.rstrip("\r\n").rsplit("\r", 1)[-1]  # the line left at the end
    assert "progress:" not in text  # no log records on a terminal


def test_without_a_terminal_progress_is_log_lines(tmp_path, clip):
    """`tubelet run` with stderr on a pipe: plain `progress:` log lines at the interval."""
    result = subprocess.run(
        [sys.executable, "-m", "tubelet", "run", str(write_manifest(tmp_path, clip))],
        capture_output=True,
        text=True,
        env=cli_env(TUBELET_PROGRESS_LOG_S=str(INTERVAL_S)),
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "tubelet.engine.progress: progress:" in line]
    assert len(lines) >= 4, result.stderr
    assert "\r" not in result.stderr
    assert re.search(r"progress: 0/2 videos · .* · slow_frames: clip-0 \d+ frames", result.stderr), result.stderr
    assert "progress: 2/2 videos" in lines[-1]
