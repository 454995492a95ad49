"""What both file backends (decord, PyAV) share: checks before opening, the metadata of
an opened file, frame times, and the diagnosis that turns a decoder's failure into a
``VideoError`` naming the cause — so a file gets the same error whichever backend reads it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tubelet.engine import video_container
from tubelet.engine.video_types import VideoError, VideoMeta

TS_DECIMALS = 6  # microseconds: what survives decord's float32 seconds, without the noise


def check_file(path: Path, uri: str) -> None:
    """``missing`` or ``empty`` before any decoder sees the file."""
    if not path.exists():
        raise VideoError(uri, "missing", "path does not exist")
    if path.stat().st_size == 0:
        raise VideoError(uri, "empty", "zero-byte file")


def open_failure(path: Path, uri: str, decoder: str, error: str) -> VideoError:
    """Why ``decoder`` could not open ``path``: not a video, a still image, cut short, or
    a codec it cannot decode (``error`` is the decoder's own message, shortened)."""
    try:
        info = video_container.inspect(path)
    except video_container.ContainerError as not_readable:
        cut = video_container.mp4_cut(path)
        if cut:
            return VideoError(uri, "truncated", cut)
        return VideoError(uri, "not_a_video", str(not_readable))
    if info.is_still_image:
        return still_image(uri, info)
    cut_frame = video_container.first_incomplete_packet(path)
    if cut_frame is not None:
        return VideoError(
            uri,
            "truncated",
            f"the container lists {info.listed_frames} frames but the file ends inside frame {cut_frame} (decode order)",
        )
    return VideoError(uri, "unsupported", f"{info.codec} video that {decoder} cannot open ({error})")


def still_image(uri: str, info: video_container.ContainerInfo) -> VideoError:
    """A JPEG or PNG with a video's name."""
    return VideoError(uri, "not_a_video", f"a still image ({info.codec}), not a video")


def decode_failure(path: Path, uri: str, frame: int, error: str) -> VideoError:
    """Frame ``frame`` could not be decoded: ``truncated`` when the file ends inside a
    packet, else ``corrupt``."""
    cut_frame = video_container.first_incomplete_packet(path)
    if cut_frame is not None:
        return VideoError(
            uri, "truncated", f"frame {frame} cannot be decoded: the file ends inside frame {cut_frame} (decode order)"
        )
    return VideoError(uri, "corrupt", f"frame {frame} cannot be decoded ({error})")


def file_meta(
    path: Path, uri: str, *, n_frames: int, fps: float | None, container_fps: float, end_s: float
) -> VideoMeta:
    """The ``VideoMeta`` of an opened file whose decoder reads ``n_frames`` frames at an
    average ``container_fps``, the last ending at ``end_s`` (``fps``: a manifest override).

    Raises ``truncated`` when the container lists more frames than can be read (a cut
    file whose index survived), ``not_a_video`` for a still image, ``no_fps`` when
    neither the container nor the manifest gives a frame rate.
    """
    try:
        info = video_container.inspect(path, rotation=True)
    except video_container.ContainerError as error:
        raise VideoError(uri, "not_a_video", str(error)) from None
    if info.is_still_image:
        raise still_image(uri, info)
    if info.listed_frames and n_frames < info.listed_frames:
        cut_frame = video_container.first_incomplete_packet(path)
        where = f": the file ends inside frame {cut_frame} (decode order)" if cut_frame is not None else ""
        raise VideoError(
            uri, "truncated", f"the container lists {info.listed_frames} frames but only {n_frames} can be read{where}"
        )
    if fps is not None:
        rate, source, duration = float(fps), "manifest", n_frames / float(fps)
    else:
        rate, source = float(container_fps), "container"
        if not rate > 0:
            raise VideoError(uri, "no_fps", "the container has no frame rate; set fps in the manifest")
        duration = round(end_s, TS_DECIMALS) if end_s > 0 else n_frames / rate
    width, height = info.width, info.height
    if info.rotation in (90, 270):
        width, height = height, width  # frames are decoded upright, as a player shows them
    return VideoMeta(rate, n_frames, duration, width, height, info.codec, source, info.rotation)


def frame_times(starts_s: np.ndarray | None, n_frames: int, fps: float | None) -> np.ndarray:
    """Start time of every frame: ``i / fps`` with a manifest fps, else the container's
    start times in float32 seconds (as decord reports them) rounded to microseconds."""
    if fps is not None or starts_s is None:
        return np.arange(n_frames, dtype=np.float64) / float(fps or 1.0)
    return np.round(np.asarray(starts_s, dtype=np.float32).astype(np.float64), TS_DECIMALS)
