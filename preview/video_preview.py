"""A video's frames with its rows drawn on them, written as mp4 (H.264) or GIF.

``render_preview(root, video_id, to, fps=..., max_frames=..., scale=...)`` streams: the
frame indices are chosen up front (``VideoReader.sample_indices``), decoded in batches
of ``batch`` frames, drawn (``overlay.draw_frame``) and handed to the encoder one by
one, so at most one batch of decoded frames is in memory. The mp4 is PyAV's libx264 in
yuv420p (width and height rounded down to even numbers); the GIF is Pillow's (its
writer keeps the palette-quantised frames, 1 byte a pixel, until it closes the file:
bound a long GIF with ``max_frames`` / ``scale``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from tubelet.engine.dataset import Dataset
from tubelet.engine.video import VideoReader
from tubelet.engine.video_write import write_mp4
from tubelet.preview.overlay import OverlayStyle, VideoRows, draw_frame, even_size

FORMATS = {".mp4": "mp4", ".gif": "gif"}
DEFAULT_BATCH = 32


@dataclass
class PreviewResult:
    path: Path
    format: str
    frames: int
    width: int
    height: int
    fps: float
    seconds: float

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


def preview_format(path: str | os.PathLike[str]) -> str:
    """``mp4`` or ``gif`` from the file's extension (ValueError otherwise)."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: a preview is written as .mp4 or .gif (or .png for a contact sheet)")
    return FORMATS[suffix]


def open_dataset(root: str | os.PathLike[str]) -> Dataset:
    return Dataset(root)


def reader_for(rows: VideoRows) -> VideoReader:
    video = rows.video
    fps = video.fps if video.fps_source == "manifest" or Path(video.uri).is_dir() else None
    return VideoReader(video.uri, fps=fps)


def rendered_frames(
    rows: VideoRows,
    indices: list[int],
    size: tuple[int, int],
    batch: int = DEFAULT_BATCH,
    style: OverlayStyle | None = None,
) -> Iterator[tuple[int, float, np.ndarray]]:
    """``(frame_idx, t_s, drawn RGB frame)`` for ``indices``, decoded ``batch`` at a time."""
    with reader_for(rows) as reader:
        times = reader.timestamps()
        for start in range(0, len(indices), max(1, batch)):
            chunk = indices[start : start + max(1, batch)]
            frames = reader.frames(chunk, size=size)
            for idx, frame in zip(chunk, frames):
                yield idx, float(times[idx]), draw_frame(frame, idx, rows, float(times[idx]), style)
            del frames


def preview_indices(rows: VideoRows, fps: float | None = None, max_frames: int | None = None) -> list[int]:
    """The frames a preview shows: every frame, or a ``fps`` grid, at most ``max_frames``."""
    with reader_for(rows) as reader:
        return reader.sample_indices(fps=fps, max_frames=max_frames)


def render_preview(
    root: str | os.PathLike[str],
    video_id: str,
    to: str | os.PathLike[str],
    *,
    fps: float | None = None,
    max_frames: int | None = None,
    scale: float = 1.0,
    batch: int = DEFAULT_BATCH,
    style: OverlayStyle | None = None,
    rows: VideoRows | None = None,
) -> PreviewResult:
    """Write the preview of ``video_id`` of dataset ``root`` to ``to`` (.mp4 or .gif).

    ``fps``: sample the video at this rate (None: every frame), which is also the
    output's frame rate; ``max_frames`` caps the frames (spread over the whole video);
    ``scale`` resizes the frames (decoded at that size).
    """
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    fmt = preview_format(to)
    t0 = time.perf_counter()
    rows = rows or VideoRows.load(open_dataset(root), video_id)
    indices = preview_indices(rows, fps, max_frames)
    if not indices:
        raise ValueError(f"video {video_id!r}: no frames to preview")
    size = even_size(rows.video.width, rows.video.height, scale)
    out_fps = _output_fps(rows, indices, fps)
    path = Path(to)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = (image for _, _, image in rendered_frames(rows, indices, size, batch, style))
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        n = (
            write_mp4(tmp, frames, out_fps, crf=23, preset="veryfast")
            if fmt == "mp4"
            else _write_gif(tmp, frames, out_fps)
        )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return PreviewResult(path, fmt, n, size[0], size[1], out_fps, time.perf_counter() - t0)


def _output_fps(rows: VideoRows, indices: list[int], fps: float | None) -> float:
    if fps:
        return float(fps)
    if len(indices) > 1 and rows.video.fps:
        # every frame, or max_frames spread out: keep the preview as long as the video
        span = (indices[-1] - indices[0] + 1) / rows.video.fps
        return max(1.0, min(float(rows.video.fps), len(indices) / span))
    return float(rows.video.fps or 10.0)


def _write_gif(path: Path, frames: Iterator[np.ndarray], fps: float) -> int:
    count = [0]

    def images() -> Iterator[Image.Image]:
        for image in frames:
            count[0] += 1
            # an adaptive palette per frame: the tints stay readable
            yield Image.fromarray(image).quantize(
                colors=255, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
            )

    stream = images()
    first = next(stream, None)
    if first is None:
        raise ValueError("no frames")
    duration = max(20, round(1000 / fps))
    first.save(
        path, format="GIF", save_all=True, append_images=stream, duration=duration, loop=0, optimize=False, disposal=1
    )
    return count[0]
