"""Tiny videos and image folders made inside tests (never copied from the assets)."""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image


def frame_pattern(i: int, width: int, height: int) -> np.ndarray:
    """An RGB frame that says its own index: red level 8*i and a bar i pixels wide."""
    rng = np.random.default_rng(i)
    img = rng.integers(0, 40, size=(height, width, 3), dtype=np.uint8)  # texture: bigger packets
    img[:, :, 0] = min(8 * i, 255)
    img[: height // 2, : i % width, 1] = 255
    return img


def make_mp4(
    path: Path,
    n: int = 48,
    fps: int = 30,
    width: int = 96,
    height: int = 64,
    faststart: bool = False,
    rotation: int = 0,
    ticks: list[int] | None = None,
) -> Path:
    """Encode ``n`` frames as H.264 mp4 with PyAV; ``faststart`` puts the index (moov) first.

    ``rotation``: a display matrix that turns the picture ``rotation`` degrees
    counter-clockwise (what a phone writes); ``ticks``: each frame's start in 1/``fps``
    second units (a variable frame rate), instead of 0, 1, 2, ...
    """
    frames = (frame_pattern(i, width, height) for i in range(n))
    return encode_mp4(path, frames, fps, faststart=faststart, rotation=rotation, ticks=ticks)


def encode_mp4(
    path: Path,
    frames: Iterable[np.ndarray],
    fps: int = 30,
    faststart: bool = False,
    rotation: int = 0,
    ticks: list[int] | None = None,
) -> Path:
    """Encode RGB ``frames`` as H.264 mp4 with PyAV (options as ``make_mp4``); the size is the first frame's."""
    import av

    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = 12  # a key frame every 12 frames, so seeks are real
        stream.options = {"threads": "1"}  # x264's output depends on its thread count
        if rotation:
            stream.set_display_rotation(rotation)
        if ticks is not None:
            stream.codec_context.time_base = Fraction(1, fps)
        for i, rgb in enumerate(frames):
            if i == 0:
                stream.height, stream.width = rgb.shape[:2]
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            if ticks is not None:
                frame.pts, frame.time_base = ticks[i], Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def rotated_copy(src: Path, dst: Path, rotation: int) -> Path:
    """``src`` re-encoded frame for frame, the same coded pictures, with a display matrix
    that turns them ``rotation`` degrees counter-clockwise (what a phone held sideways
    writes): a player shows every frame as ``np.rot90(frame, rotation // 90)``."""
    import av

    with av.open(str(src)) as container:
        stream = container.streams.video[0]
        fps = int(round(float(stream.average_rate)))
        frames = (frame.to_ndarray(format="rgb24") for frame in container.decode(stream))
        return encode_mp4(dst, frames, fps, rotation=rotation)


def make_audio_only(path: Path, seconds: float = 0.5, rate: int = 16000) -> Path:
    """An mp4 with one AAC audio stream and no video stream."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=rate)
        for i in range(int(seconds * rate) // 1024):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def make_folder(path: Path, n: int = 6, width: int = 40, height: int = 30, suffix: str = ".png") -> Path:
    """Write ``n`` frames named 1..n without zero padding (natural order matters)."""
    path.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(frame_pattern(i, width, height)).save(path / f"frame_{i + 1}{suffix}")
    return path


def cut(src: Path, dst: Path, fraction: float | None = None, drop_bytes: int | None = None) -> Path:
    """Copy the first part of ``src``: a ``fraction`` of it, or all but ``drop_bytes``."""
    data = src.read_bytes()
    keep = int(len(data) * fraction) if fraction is not None else len(data) - int(drop_bytes or 0)
    dst.write_bytes(data[:keep])
    return dst


def unknown_codec(src: Path, dst: Path) -> Path:
    """A copy of an H.264 mp4 whose sample entry names a codec nobody has ('zzzz' for 'avc1')."""
    data = src.read_bytes()
    at = data.rfind(b"avc1")  # the stsd entry (the last one; 'ftyp' may list avc1 as a brand)
    dst.write_bytes(data[:at] + b"zzzz" + data[at + 4 :])
    return dst
