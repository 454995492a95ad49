"""ImportAnnotations: the stage that turns a video's existing ground truth into tubelets."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tubelet.annotators.importers.common import FrameIndex, ImportResult
from tubelet.annotators.importers.davis import import_davis
from tubelet.annotators.importers.mot import import_mot
from tubelet.engine.stage import Stage
from tubelet.engine.task import VideoTask
from tubelet.engine.video import VideoReader

Importer = Callable[[str | Path, FrameIndex, Mapping[str, str]], ImportResult]

#: annotation format -> importer
IMPORTERS: dict[str, Importer] = {"davis": import_davis, "mot": import_mot}


@dataclass
class ImportAnnotations(Stage):
    """Append the tubelets of ``task.annotations`` (``{format, path, categories}``).

    Needs ``task.video`` (run ``ProbeVideo`` first): frame count, size and fps come
    from it, times from the video's timestamps. A missing or unreadable annotation
    raises, so the video is rejected with that message; parts of an annotation that
    do not fit the video (a row, a mask file, a track) are rejects of this stage and
    the rest is imported.
    """

    def process(self, batch: list[VideoTask]) -> list[VideoTask]:
        for task in batch:
            self.import_task(task)
        return batch

    def import_task(self, task: VideoTask) -> None:
        """Import one task's annotation in place."""
        if task.video is None:
            raise ValueError(f"video {task.video_id} has no probed metadata: run ProbeVideo before {self.name}")
        ann = task.annotations
        if not ann or not ann.get("path"):
            raise ValueError(f"video {task.video_id} has no annotations to import (set annotations: {{format, path}})")
        fmt = ann.get("format")
        if fmt not in IMPORTERS:
            known = ", ".join(IMPORTERS)
            raise ValueError(f"unknown annotation format {fmt!r} for video {task.video_id}; known: {known}")
        result = IMPORTERS[fmt](ann["path"], frame_index(task), ann.get("categories") or {})
        task.tubelets.extend(result.tubelets)
        for rejected in result.rejects:
            task.reject(self.name, rejected.item, rejected.reason)


def frame_index(task: VideoTask) -> FrameIndex:
    """The frames of the task's video with their timestamps, as ``tubelet.engine.video`` reads them."""
    video = task.video
    assert video is not None
    fps = task.fps or (video.fps if video.fps_source == "manifest" else None)
    with VideoReader(task.uri, fps=fps) as reader:
        timestamps = reader.timestamps()
    return FrameIndex.of(video, timestamps, uri=task.uri)
