"""Parallel speed-up of RayRunner over InlineRunner, and the engine's per-video overhead.

A CPU-bound stage (a fixed amount of numpy work, calibrated to ~50 ms per video on one
core) runs over 200 synthetic videos with each runner, rows committed by the real
ShardWriter. Then a no-op stage measures what the engine itself costs per video once Ray
is up. Targets: speed-up >= 1.6x on 2 cores; overhead <= 30 ms per video.

    .venv/bin/python bench/bench_parallel.py [--videos 200] [--work-ms 50] [--cpus 2]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from tubelet.engine import Pipeline, Stage, VideoTask
from tubelet.engine.runners import InlineRunner, RayRunner
from tubelet.engine.writer import ShardWriter
from tubelet.schemas import VideoRecord


def numpy_work(iterations: int) -> float:
    x = np.arange(20_000, dtype=np.float64)
    for _ in range(iterations):
        x = np.sqrt(x * x + 1.0)
    return float(x[-1])


def calibrate(target_s: float) -> int:
    """Iterations of numpy_work that take ``target_s`` on one core here."""
    numpy_work(50)  # warm up
    start = time.perf_counter()
    numpy_work(500)
    per_iteration = (time.perf_counter() - start) / 500
    return max(int(target_s / per_iteration), 1)


@dataclass
class Work(Stage):
    """A fixed amount of CPU work per video, and a row to commit."""

    iterations: int = 0

    def process(self, batch: list[VideoTask]) -> list[VideoTask]:
        for task in batch:
            checksum = numpy_work(self.iterations)
            task.video = VideoRecord(
                video_id=task.video_id,
                uri=task.uri,
                fps=10.0,
                n_frames=1,
                duration_s=0.1,
                width=8,
                height=8,
                codec="bench",
                extra={"checksum": round(checksum, 3)},
            )
        return batch


@dataclass
class WorkModel(Work):
    """The same work in an actor pool (a stage with a model loaded in setup())."""

    def setup(self) -> None:
        self.loaded = True


def tasks(n: int) -> list[VideoTask]:
    return [VideoTask(video_id=f"b{i:05d}", uri=f"synthetic://b{i}") for i in range(n)]


def timed_run(runner, stage: Stage, n: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        with ShardWriter(out, shard_size=32) as writer:
            runner.run(Pipeline("bench", [stage]), tasks(n), writer, None)
        elapsed = time.perf_counter() - start
        assert len(writer.committed) == n
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=200)
    parser.add_argument("--work-ms", type=float, default=50.0)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--noop-videos", type=int, default=1000)
    args = parser.parse_args()
    n = args.videos

    iterations = calibrate(args.work_ms / 1000)
    work, model = Work(iterations=iterations), WorkModel(iterations=iterations)
    print(
        f"machine: {os.cpu_count()} cores; Ray given {args.cpus} CPUs; {n} videos; "
        f"{iterations} numpy iterations ~ {args.work_ms:.0f} ms per video on one core"
    )

    inline_s = timed_run(InlineRunner(), work, n)
    print(f"inline   CPU stage      : {inline_s:6.2f} s  ({inline_s / n * 1000:5.1f} ms/video)")

    import ray

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    start = time.perf_counter()
    ray.init(num_cpus=args.cpus, _node_ip_address="127.0.0.1", include_dashboard=False, logging_level=logging.ERROR)
    init_s = time.perf_counter() - start
    print(f"ray.init                : {init_s:6.2f} s  (excluded below)")
    try:
        ray_runner = RayRunner()
        cold_s = timed_run(ray_runner, work, n)
        print(
            f"ray      CPU stage, cold: {cold_s:6.2f} s  speed-up {inline_s / cold_s:4.2f}x  (first run starts the workers)"
        )
        warm_s = timed_run(ray_runner, work, n)
        print(f"ray      CPU stage, warm: {warm_s:6.2f} s  speed-up {inline_s / warm_s:4.2f}x  (target >= 1.6x)")
        actor_s = timed_run(ray_runner, model, n)
        print(
            f"ray      actor stage    : {actor_s:6.2f} s  speed-up {inline_s / actor_s:4.2f}x  (pool of {args.cpus}, includes actor start)"
        )

        noop = Work(iterations=0)
        m = args.noop_videos
        inline_noop = timed_run(InlineRunner(), noop, m)
        timed_run(ray_runner, noop, 50)  # warm the workers for this stage
        ray_noop = timed_run(ray_runner, noop, m)
        print(f"inline   no-op stage    : {inline_noop / m * 1000:6.2f} ms/video over {m} videos")
        print(
            f"ray      no-op stage    : {ray_noop / m * 1000:6.2f} ms/video over {m} videos  (target <= 30 ms; "
            f"{ray_noop:.2f} s total)"
        )
        small = timed_run(ray_runner, noop, n)
        print(f"ray      no-op stage    : {small / n * 1000:6.2f} ms/video over {n} videos ({small:.2f} s total)")
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
