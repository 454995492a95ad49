"""What every video source shares: sizes, metadata, the error type, and the source protocol.

A *source* is one opened video — a file decoded by a backend (``video_decord``,
``video_pyav``) or a frame folder (``video_folder``) — behind ``tubelet.engine.video.VideoReader``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from PIL import Image

#: (width, height) in pixels.
Size = tuple[int, int]


@dataclass(frozen=True)
class VideoMeta:
    """What a probe says about a video. ``fps_source`` is "container" or "manifest".

    ``width`` and ``height`` are those of the frames as displayed: a phone video whose
    container says "rotate by 90°" has them swapped against the coded picture, as its
    decoded frames do. ``rotation`` is that turn: the degrees clockwise (0, 90, 180, 270)
    every decoded picture was turned to show it upright, as a player does (the
    convention of the legacy ``rotate`` tag and of exiftool's "Rotation").
    """

    fps: float
    n_frames: int
    duration_s: float
    width: int
    height: int
    codec: str
    fps_source: str = "container"
    rotation: int = 0


class VideoError(Exception):
    """A video that cannot be read.

    ``kind`` is one of: ``missing``, ``empty``, ``not_a_video``, ``truncated``,
    ``corrupt``, ``unsupported``, ``no_fps``, ``no_frames``, ``mixed_sizes``; for a
    remote uri also ``denied``, ``unreachable`` and ``fetch_failed`` (see
    ``tubelet.engine.remote_media.RemoteMediaError``).
    The message reads ``"<kind>: <detail> [<uri>]"`` so a reject row names the cause.
    """

    def __init__(self, uri: str, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail} [{uri}]")
        self.uri = uri
        self.kind = kind
        self.detail = detail

    def __reduce__(self) -> tuple[Any, ...]:
        # Ray pickles exceptions across workers; the default would call __init__(message).
        return (type(self), (self.uri, self.kind, self.detail))


class FrameSource(Protocol):
    """One opened video, as ``VideoReader`` drives it. ``decode`` takes sorted, distinct,
    valid indices and returns uint8 RGB ``(N, H, W, 3)`` at ``size`` (None: native)."""

    n_frames: int

    def meta(self) -> VideoMeta: ...

    def timestamps(self) -> np.ndarray: ...

    def decode(self, indices: list[int], size: Size | None) -> np.ndarray: ...

    def check(self) -> None: ...

    def close(self) -> None: ...


def check_size(size: Size | None) -> Size | None:
    """``size`` as a ``(width, height)`` tuple of positive ints (None stays None)."""
    if size is None:
        return None
    w, h = (int(v) for v in size)
    if w <= 0 or h <= 0:
        raise ValueError(f"size must be (width, height) in positive pixels, got {size}")
    return (w, h)


def resize(frames: np.ndarray, size: Size) -> np.ndarray:
    """Each frame resized to ``size`` with Pillow's bilinear filter."""
    out = np.empty((len(frames), size[1], size[0], 3), dtype=np.uint8)
    for k, frame in enumerate(frames):
        out[k] = np.asarray(Image.fromarray(frame).resize(size, Image.Resampling.BILINEAR))
    return out


def short(error: BaseException, limit: int = 200) -> str:
    """The first line of a decoder's error, without decord's "[time] file.cc:line:" prefix."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    text = lines[0] if lines else type(error).__name__
    text = re.sub(r"^\[[\d:]+\]\s*\S+:\d+:\s*", "", text)
    return text[:limit]
