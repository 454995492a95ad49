"""What a worker reports while it works: stage batches, frames decoded, throttled, per run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.engine.videos import make_mp4
from tubelet.engine import worker_progress
from tubelet.engine.task import VideoTask
from tubelet.engine.video import VideoReader
from tubelet.engine.worker_progress import CallbackLink, WorkerReport


@pytest.fixture()
def reports() -> Iterator[list[WorkerReport]]:
    got: list[WorkerReport] = []
    worker_progress.connect(CallbackLink("run-1", got.append))
    try:
        yield got
    finally:
        worker_progress.connect(None)


def test_a_stage_batch_is_reported_when_it_starts_and_ends(reports, monkeypatch):
    monkeypatch.setattr(worker_progress, "SEND_INTERVAL_S", 3600.0)  # only the batch edges
    tasks = [VideoTask(video_id="a", uri="a.mp4"), VideoTask(video_id="b", uri="b.mp4")]
    with worker_progress.stage_batch("track", tasks):
        worker_progress.add_frames(5)
        worker_progress.add_frames(7)
    start, end = reports
    assert (start.stage, start.video, start.videos, start.running, start.frames) == ("track", "a", 2, True, 0)
    assert (end.stage_frames, end.frames, end.running) == (12, 12, False)
    assert len(repr(end)) < 250  # what travels to the driver stays small


def test_frames_are_sent_at_most_every_interval(reports, monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(worker_progress.time, "monotonic", lambda: clock[0])
    with worker_progress.stage_batch("track", [VideoTask(video_id="a", uri="a.mp4")]):
        for _ in range(10):  # 10 chunks within one interval: no report
            clock[0] += worker_progress.SEND_INTERVAL_S / 20
            worker_progress.add_frames(1)
        clock[0] += worker_progress.SEND_INTERVAL_S
        worker_progress.add_frames(1)  # an interval later: one report
    assert [(r.stage_frames, r.running) for r in reports] == [(0, True), (11, True), (11, False)]


def test_video_reader_counts_the_frames_it_decodes(reports, tmp_path):
    clip = make_mp4(tmp_path / "clip.mp4", n=12)
    with worker_progress.stage_batch("decode", [VideoTask(video_id="a", uri=str(clip))]):
        with VideoReader(str(clip)) as reader:
            reader.frames([0, 1, 2, 2])  # 3 distinct frames decoded
            reader.frames(range(5, 12))
    assert reports[-1].frames == 10 and reports[-1].stage_frames == 10


def test_counts_start_afresh_for_another_run_and_stop_without_a_link(reports):
    with worker_progress.stage_batch("s", [VideoTask(video_id="a", uri="a")]):
        worker_progress.add_frames(4)
    assert reports[-1].frames == 4
    second: list[WorkerReport] = []
    worker_progress.connect(CallbackLink("run-2", second.append))  # a reused process, a new run
    with worker_progress.stage_batch("s", [VideoTask(video_id="b", uri="b")]):
        worker_progress.add_frames(1)
    assert second[-1].frames == 1
    worker_progress.connect(None)
    with worker_progress.stage_batch("s", [VideoTask(video_id="c", uri="c")]):
        worker_progress.add_frames(1)
    assert len(second) == 2 and not worker_progress.connected()


def test_a_link_that_fails_never_fails_the_stage():
    def broken(report: WorkerReport) -> None:
        raise OSError("the driver is gone")

    worker_progress.connect(CallbackLink("run-3", broken))
    try:
        with worker_progress.stage_batch("s", [VideoTask(video_id="a", uri="a")]):
            worker_progress.add_frames(100)
    finally:
        worker_progress.connect(None)
