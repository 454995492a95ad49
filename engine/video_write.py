"""Writing videos: H.264 mp4 through PyAV's libx264.

``write_mp4(path, frames, fps)`` encodes RGB frames as they come (one in memory at a
time); ``export_mp4(uri, dest, start=, stop=)`` re-encodes frames ``[start, stop)`` of
any video tubelet reads (a file or an image folder) at its frame rate, so frame ``i`` of
the copy is frame ``start + i`` of the source. Releases and exports use it to turn image
folders into the mp4 their consumers load, and to cut clips.

The bytes repeat: one encoder thread (x264's output depends on its thread count) and
fixed options. Frames whose width and height are both even are stored as yuv420p (what
every player reads); an odd size is kept exact in yuv444p rather than cropped or padded,
so boxes and masks stay valid on the copy.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tubelet.engine.video import VideoReader

#: Frames decoded at once while re-encoding (bounds memory: 32 frames of 1080p is ~200 MB).
EXPORT_BATCH = 32
#: Near-transparent quality for datasets (x264's "visually lossless" range starts near 18).
DATASET_CRF = 17


def write_mp4(
    path: str | os.PathLike[str],
    frames: Iterable[np.ndarray],
    fps: float,
    *,
    crf: int = DATASET_CRF,
    preset: str = "fast",
) -> int:
    """Encode uint8 RGB frames ``(H, W, 3)`` (all the same size) to an H.264 mp4 at ``fps``;
    the number of frames written. ValueError when there is no frame or a size changes."""
    if fps <= 0:
        raise ValueError(f"{path}: fps must be positive, got {fps}")
    stream_iter = iter(frames)
    first = next(stream_iter, None)
    if first is None:
        raise ValueError(f"{path}: no frames to write")
    height, width = first.shape[:2]
    pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    n = 0
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.options = {"crf": str(crf), "preset": preset, "threads": "1"}
        for image in _same_size(first, stream_iter, path):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24").reformat(format=pix_fmt)
            for packet in stream.encode(frame):
                container.mux(packet)
            n += 1
        for packet in stream.encode():
            container.mux(packet)
    return n


def _same_size(first: np.ndarray, rest: Iterator[np.ndarray], path: str | os.PathLike[str]) -> Iterator[np.ndarray]:
    yield first
    for k, image in enumerate(rest, start=1):
        if image.shape != first.shape:
            raise ValueError(f"{path}: frame {k} is {image.shape}, frame 0 is {first.shape}")
        yield image


def export_mp4(
    uri: str,
    dest: str | os.PathLike[str],
    *,
    fps: float | None = None,
    start: int = 0,
    stop: int | None = None,
    batch: int = EXPORT_BATCH,
) -> int:
    """Re-encode frames ``[start, stop)`` of the video at ``uri`` (``fps``: an image folder's
    frame rate, as in the manifest) to an mp4 at ``dest``; the number of frames written.

    The copy plays at the source's frame rate (a variable-rate file gets its mean rate).
    It is written to a temporary name and renamed, so ``dest`` is whole or absent.
    """
    dest = Path(dest)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    try:
        with VideoReader(uri, fps=fps) as video:
            stop = video.n_frames if stop is None else stop
            if not 0 <= start < stop <= video.n_frames:
                raise ValueError(f"{uri}: frames [{start}, {stop}) are not inside its {video.n_frames} frames")
            rate = video.meta.fps
            n = write_mp4(tmp, _decoded(video, range(start, stop), batch), rate)
        os.replace(tmp, dest)
        return n
    finally:
        tmp.unlink(missing_ok=True)


def _decoded(video: VideoReader, indices: range, batch: int) -> Iterator[np.ndarray]:
    """The frames at ``indices``, decoded ``batch`` at a time."""
    for at in range(0, len(indices), batch):
        yield from video.frames(list(indices[at : at + batch]))
