"""What the container says about a video file, read (almost) without decoding pixels.

decord decodes but does not name the codec nor say how many frames the container's
index lists; PyAV (FFmpeg's demuxer) does both, and lets us find where a file that
was cut short ends. Everything here reads headers or packets, never pixels, except
``inspect(path, rotation=True)``, which decodes one frame for its display rotation.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import av

#: FFmpeg demuxers that read still images, not videos (a .jpg renamed to .mp4).
_STILL_IMAGE_FORMATS = {"image2", "image2pipe"}
#: Boxes an ISO-BMFF file starts with (old QuickTime files may lack 'ftyp').
_FIRST_BOXES = {b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"}


class ContainerError(Exception):
    """The file is not a container FFmpeg can read, or holds no video stream."""


@dataclass(frozen=True)
class ContainerInfo:
    """The first video stream of a container, as its headers describe it."""

    format: str  # FFmpeg demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    codec: str  # FFmpeg codec name, e.g. "h264", "hevc", "mpeg4", "vp9", "av1"; "unknown": no decoder
    width: int
    height: int
    listed_frames: int  # frames the index lists; 0 when the container does not say
    rotation: int = 0  # clockwise quarter turns to show it upright, in degrees (read when asked)

    @property
    def is_still_image(self) -> bool:
        return is_still_image_format(self.format)


def is_still_image_format(name: str) -> bool:
    """Whether FFmpeg's demuxer ``name`` reads still images (JPEG, PNG...), not videos."""
    return name in _STILL_IMAGE_FORMATS or name.endswith("_pipe")


def video_stream(container: Any) -> Any:
    """The video stream FFmpeg picks (``av_find_best_stream``, as decord does: a cover
    picture is not the video); ``ContainerError`` when there is none."""
    stream = container.streams.best("video")
    if stream is None:
        raise ContainerError("the file has no video stream")
    return stream


def inspect(path: Path, rotation: bool = False) -> ContainerInfo:
    """Read the container's headers; raise ``ContainerError`` if unreadable. With
    ``rotation`` the first frame is decoded too: FFmpeg hands the display matrix (phone
    videos) to decoded frames, and PyAV does not expose the stream's copy."""
    try:
        with av.open(str(path)) as container:
            stream = video_stream(container)
            ctx = stream.codec_context  # None when FFmpeg has no decoder for the codec
            if ctx is None:
                return ContainerInfo(container.format.name, "unknown", 0, 0, int(stream.frames or 0))
            info = ContainerInfo(container.format.name, ctx.name, ctx.width, ctx.height, int(stream.frames or 0))
            if rotation:
                info = replace(info, rotation=_first_frame_rotation(container, stream))
            return info
    except av.FFmpegError as error:
        raise ContainerError(f"no video container could be read ({error.strerror or error})") from None


def _first_frame_rotation(container: Any, stream: Any) -> int:
    """``clockwise`` of the first frame that decodes; 0 when none does."""
    try:
        for frame in container.decode(stream):
            return clockwise(frame.rotation)
    except av.FFmpegError:
        pass
    return 0


def first_incomplete_packet(path: Path) -> int | None:
    """Index (decode order) of the first video packet the file does not hold in full.

    None when every packet the demuxer reaches is whole and the index lists no more.
    FFmpeg flags a packet cut off by the end of the file as corrupt.
    """

    try:
        container = av.open(str(path))
    except av.FFmpegError:
        return None
    with container:
        try:
            stream = video_stream(container)
        except ContainerError:
            return None
        listed = int(stream.frames or 0)
        complete = 0
        try:
            for packet in container.demux(stream):
                if packet.size == 0:  # the flush packet at the end
                    continue
                if packet.is_corrupt:
                    return complete
                complete += 1
        except av.FFmpegError:
            return complete
    return complete if listed and complete < listed else None


def clockwise(rotation: float) -> int:
    """PyAV's ``VideoFrame.rotation`` (counter-clockwise degrees) as the clockwise turn to
    apply, snapped to a quarter turn — decord's reading of the same display matrix."""
    return int(round(-float(rotation) / 90.0)) % 4 * 90


def mp4_cut(path: Path) -> str | None:
    """Say how an ISO-BMFF (mp4/mov) file was cut short; None if it is not one or is whole.

    Walks the top-level boxes: a file cut while it was written often lacks its index
    (``moov``, written last by default) or ends inside a box.
    """
    size = path.stat().st_size
    boxes: list[str] = []
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8 or head[4:8] not in _FIRST_BOXES:
            return None
        pos = 0
        while pos + 8 <= size:
            f.seek(pos)
            box_size, kind = struct.unpack(">I4s", f.read(8))
            name = kind.decode("latin-1")
            if box_size == 1:
                box_size = struct.unpack(">Q", f.read(8))[0]
            elif box_size == 0:  # runs to the end of the file
                box_size = size - pos
            if box_size < 8:
                return None  # not a box structure we understand: let the caller say "not a video"
            if pos + box_size > size:
                cut = f"the file ends inside its '{name}' box ({size - pos} of {box_size} bytes present)"
                if "moov" not in boxes and name != "moov":
                    cut += " and has no index ('moov' box)"
                return cut
            boxes.append(name)
            pos += box_size
    if "moov" not in boxes:
        return "the mp4 has no index ('moov' box): the file was cut off before it was finished"
    return None
