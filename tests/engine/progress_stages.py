"""Stages for the progress and console tests (``tests.engine.progress_stages:build``).

``slow_frames`` decodes its video in small chunks through ``VideoReader`` and sleeps
between them: a long video, in miniature, whose progress must reach the driver before
it is finished. ``ray_noise`` makes Ray print what a user should not see: it creates a
helper actor with restarts and an argument in the object store (Ray's ``E`` line about
"constructor arguments in the object store") and runs a Ray Data pipeline with progress
bars disabled ("Progress bars disabled").
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from tubelet.engine import Pipeline, Stage, VideoTask
from tubelet.engine.video import VideoReader
from tubelet.schemas import VideoRecord


@dataclass
class SlowFrames(Stage):
    """Decodes every frame of the task's uri, ``chunk`` at a time, sleeping ``pause_s`` after each chunk."""

    chunk: int = 8
    pause_s: float = 0.1

    def process(self, batch: list[VideoTask]) -> list[VideoTask]:
        for task in batch:
            with VideoReader(task.uri) as reader:
                n = reader.n_frames
                task.video = VideoRecord(
                    video_id=task.video_id,
                    uri=task.uri,
                    fps=24.0,
                    n_frames=n,
                    duration_s=n / 24.0,
                    width=64,
                    height=48,
                    codec="test",
                )
                for start in range(0, n, self.chunk):
                    reader.frames(range(start, min(start + self.chunk, n)), size=(64, 48))
                    time.sleep(self.pause_s)
        return batch


@dataclass
class Count(Stage):
    """A second stage over the probed video (so a report knows the video's frame count)."""

    pause_s: float = 0.0

    def process(self, batch: list[VideoTask]) -> list[VideoTask]:
        time.sleep(self.pause_s * len(batch))
        return batch


@dataclass
class RayNoise(Stage):
    """Makes Ray print its noise from inside a worker (see the module docstring)."""

    def process(self, batch: list[VideoTask]) -> list[VideoTask]:
        import ray
        import ray.data

        @ray.remote(num_cpus=0, max_restarts=1)
        class Helper:
            def __init__(self, blob: bytes) -> None:
                self.size = len(blob)

            def size_of(self) -> int:
                return self.size

        helper = Helper.remote(ray.put(b"x" * 200_000))  # > 100 KB: an argument in the object store
        assert ray.get(helper.size_of.remote()) == 200_000
        ray.kill(helper)
        ray.data.DataContext.get_current().enable_progress_bars = False
        assert ray.data.from_items([{"x": 1}]).take_all() == [{"x": 1}]
        return batch


STAGES: dict[str, type[Stage]] = {"slow_frames": SlowFrames, "count": Count, "ray_noise": RayNoise}


def build(params: dict[str, Any]) -> Pipeline:
    """``params = {"stages": [{"kind": "slow_frames", ...config}, ...]}``."""
    stages = []
    for spec in params.get("stages", [{"kind": "slow_frames"}, {"kind": "count"}]):
        spec = dict(spec)
        stages.append(STAGES[spec.pop("kind")](**spec))
    return Pipeline(name="progress-test", stages=stages, params=params)
