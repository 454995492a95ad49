"""ProbeVideo: the stage that opens each video and records what it is (`videos` table)."""

from __future__ import annotations

from dataclasses import dataclass

from tubelet.engine.stage import Stage
from tubelet.engine.task import VideoTask
from tubelet.engine.video import probe
from tubelet.schemas import VideoRecord


@dataclass
class ProbeVideo(Stage):
    """Fill ``task.video`` from the container (or image folder) and the manifest row.

    With ``decode_check`` the first and last frames are decoded so that files cut
    short are rejected here. A video that cannot be read raises ``VideoError``;
    ``tubelet.engine.stage.run_stage`` turns it into a reject naming the cause. No ``setup()``:
    probing is cheap, so the stage runs as stateless tasks.

    A uri on object storage (``s3://…``) is probed from this worker's cached copy
    (``tubelet.engine.remote_media``); the record keeps the uri as the manifest wrote it.
    """

    decode_check: bool = True

    def process(self, batch: list[VideoTask]) -> list[VideoTask]:
        for task in batch:
            task.video = probe_task(task, decode_check=self.decode_check)
        return batch


def probe_task(task: VideoTask, decode_check: bool = True) -> VideoRecord:
    """The ``VideoRecord`` of one task: the probe's figures plus the manifest's fields."""
    meta = probe(task.uri, fps=task.fps, decode_check=decode_check)
    return VideoRecord(
        video_id=task.video_id,
        uri=task.uri,
        fps=meta.fps,
        n_frames=meta.n_frames,
        duration_s=meta.duration_s,
        width=meta.width,
        height=meta.height,
        codec=meta.codec,
        fps_source=meta.fps_source,
        source=task.source,
        split=task.split,
        licence=task.licence,
        extra=dict(task.extra),
        rotation=meta.rotation,
    )
