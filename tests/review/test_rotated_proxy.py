"""A rotated phone video in Label Studio (issue 14, item 3): the reviewer draws on the
picture the dataset's boxes are in, the upright one. A browser may or may not apply the
file's display matrix, so a rotated video is never served as it is: it gets an H.264
proxy re-encoded upright, with no matrix, frame for frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.engine.videos import make_mp4
from tubelet.engine.probe import probe_task
from tubelet.engine.task import VideoTask
from tubelet.engine.video import VideoReader
from tubelet.engine.video_container import inspect
from tubelet.review.media import ensure_proxy, needs_proxy


def test_a_rotated_video_is_reviewed_through_an_upright_proxy(tmp_path: Path) -> None:
    upright = probe_task(VideoTask(video_id="clip", uri=str(make_mp4(tmp_path / "clip.mp4", n=30))))
    assert not needs_proxy(upright)  # H.264 as it is: served as it is

    phone = make_mp4(tmp_path / "phone.mp4", n=30, rotation=90)
    row = probe_task(VideoTask(video_id="phone", uri=str(phone)))
    assert (row.width, row.height, row.rotation, row.codec) == (64, 96, 270, "h264")
    assert needs_proxy(row)
    proxy = ensure_proxy(row, tmp_path / "media")
    info = inspect(proxy, rotation=True)
    assert (info.width, info.height, info.rotation) == (64, 96, 0)
    with VideoReader(str(proxy)) as served, VideoReader(str(phone)) as source:
        assert served.n_frames == source.n_frames == 30
        for i in (0, 14, 29):
            a, b = served.frames([i])[0].astype(int), source.frames([i])[0].astype(int)
            assert np.abs(a - b).mean() < 4, i
