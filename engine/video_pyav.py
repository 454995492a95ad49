"""The PyAV backend: video files decoded by FFmpeg through PyAV, on every platform PyAV
has wheels for (Linux x86-64 and aarch64, macOS, Windows).

It gives what the decord backend gives, value for value:

- frame count, start times and duration from the video packets' timestamps, indexed
  once when the file opens (a demux pass, no decoding), computed as decord computes
  them (``(pts - start_time) * time_base`` in float32 seconds, sorted);
- pixels through the filter graph decord builds — ``[transpose,]scale=W:H`` to RGB24
  with swscale's bilinear filter (the default of the FFmpeg 4.1 inside decord's wheel)
  — so frames are identical at native size and scaled, and upright for rotated videos;
- decoding of sorted indices with keyframe seeks: a wanted frame is reached by decoding
  forward when no keyframe lies between it and the decoder's position, else by seeking
  to its keyframe. The decoder stays where it stopped, so the next call that continues
  forward costs no seek. PyAV decodes in the calling thread: nothing runs ahead in the
  background (decord's memory problem, see ``video_decord``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from tubelet.engine import video_container
from tubelet.engine.video_file import check_file, decode_failure, file_meta, frame_times, open_failure
from tubelet.engine.video_types import Size, VideoError, VideoMeta, short

#: decord's filters per clockwise turn (transpose=1: 90° clockwise, 2: 90° counter-clockwise)
_TURNS = {0: [], 90: ["1"], 180: ["1", "1"], 270: ["2"]}


@dataclass(frozen=True)
class PacketIndex:
    """The video packets of a file in presentation order: what decord reads at open."""

    pts: np.ndarray  # int64, sorted
    starts_s: np.ndarray  # float64 seconds from the stream's start, before float32 rounding
    end_s: float  # when the last frame ends (float32, as decord reports it)
    keyframes: np.ndarray  # presentation indices of the keyframes, sorted


class PyAVSource:
    """A video file decoded by PyAV; one open container, the decoder kept between calls."""

    name = "pyav"

    def __init__(self, path: Path, uri: str, fps: float | None, threads: int) -> None:
        self.path, self.uri, self.fps, self.threads = path, uri, fps, threads
        check_file(path, uri)
        self._container: Any = None
        self._frames: Iterator[tuple[int, Any]] | None = None  # the decoder's position, as a stream
        self._last = -1  # index of the last frame that stream gave
        self._after_corrupt = False  # the decoder was fed a packet the file holds only in part
        self._graph: Any = None
        self._graph_key: tuple[Any, ...] | None = None
        #: work counters (tests, bench/bench_decode.py): seeks to a keyframe, decodes
        #: from the start after a seek that went past its frame, frames the decoder gave
        self.seeks = self.restarts = self.decoded = 0
        self._open()
        try:
            self._index = _index_packets(self._container, self._stream)
        except av.FFmpegError as error:
            self.close()
            raise open_failure(path, uri, "PyAV", short(error)) from None
        self.n_frames = len(self._index.pts)
        if self.n_frames == 0:
            self.close()
            raise VideoError(uri, "no_frames", "the file has no decodable video frames")
        self._frame_of_pts = {int(p): i for i, p in enumerate(self._index.pts)}

    def _open(self) -> None:
        if self._container is not None:
            self._container.close()
        try:
            self._container = av.open(str(self.path))
            self._stream = video_container.video_stream(self._container)
        except (av.FFmpegError, video_container.ContainerError) as error:
            self.close()
            raise open_failure(self.path, self.uri, "PyAV", short(error)) from None
        if video_container.is_still_image_format(self._container.format.name):
            self.close()
            raise open_failure(self.path, self.uri, "PyAV", "a still image")
        if self._stream.codec_context is None:  # FFmpeg has no decoder for this codec
            self.close()
            raise open_failure(self.path, self.uri, "PyAV", "no decoder for its codec")
        # as decord: FFmpeg's own threading (frame and slice), one thread per core by default
        self._stream.thread_type = "AUTO"
        self._stream.thread_count = self.threads

    # -- metadata ----------------------------------------------------------------------
    def meta(self) -> VideoMeta:
        return file_meta(
            self.path,
            self.uri,
            n_frames=self.n_frames,
            fps=self.fps,
            container_fps=float(self._stream.average_rate or 0.0),
            end_s=self._index.end_s,
        )

    def timestamps(self) -> np.ndarray:
        return frame_times(self._index.starts_s, self.n_frames, self.fps)

    # -- decoding ----------------------------------------------------------------------
    def decode(self, indices: list[int], size: Size | None) -> np.ndarray:
        if self._container is None:
            raise RuntimeError(f"video reader closed: {self.uri}")
        out: np.ndarray | None = None
        for k, target in enumerate(indices):
            rgb = self._convert(self._frame(target), size)
            if out is None:
                out = np.empty((len(indices), *rgb.shape), dtype=np.uint8)
            out[k] = rgb
        assert out is not None
        return out

    def _frame(self, target: int) -> Any:
        """The decoded frame ``target``: forward from where the decoder is, or from the
        keyframe before it (a seek) when that is nearer; from the very start if the seek
        went past it (a container whose seeks are not exact)."""
        key = self._keyframe_before(target)
        if self._frames is None or target <= self._last or key > self._last:
            self._start_at(key)
        frame = self._forward_to(target)
        if frame is None:
            self._start_at(None)
            frame = self._forward_to(target)
        if frame is None:
            self._frames = None
            raise decode_failure(self.path, self.uri, target, "the decoder skipped it")
        return frame

    def _forward_to(self, target: int) -> Any | None:
        """Decode forward to frame ``target``; None if the decoder is already past it."""
        assert self._frames is not None
        try:
            for index, frame in self._frames:
                self._last = index
                self.decoded += 1
                if index == target:
                    if self._after_corrupt:  # what follows a cut packet is not the file's picture
                        raise decode_failure(self.path, self.uri, target, "the file is cut short")
                    return frame
                if index > target:
                    return None
        except av.FFmpegError as error:
            self._frames = None
            raise decode_failure(self.path, self.uri, target, short(error)) from None
        self._frames = None
        raise decode_failure(self.path, self.uri, target, "the file ends before it")

    def _keyframe_before(self, target: int) -> int:
        keys = self._index.keyframes
        pos = int(np.searchsorted(keys, target, side="right")) - 1
        return int(keys[pos]) if pos >= 0 else 0

    def _start_at(self, key: int | None) -> None:
        """Seek to keyframe ``key`` (None: reopen and decode from the very start)."""
        if key is None:
            self._open()
            self.restarts += 1
        else:
            pts = int(self._index.pts[key])
            self._container.seek(pts, stream=self._stream, backward=True, any_frame=False)
            self.seeks += 1
        self._last = -1
        self._after_corrupt = False
        self._frames = self._decoded(0 if key is None else key)

    def _decoded(self, first: int) -> Iterator[tuple[int, Any]]:
        """Frames from the decoder's position on, with their indices; frames before
        ``first`` (leading frames of an open GOP after a seek) are skipped."""
        for packet in self._container.demux(self._stream):
            if packet.is_corrupt:
                self._after_corrupt = True
            for frame in packet.decode():
                index = self._frame_of_pts.get(frame.pts) if frame.pts is not None else None
                if index is None:
                    index = self._last + 1  # no timestamp: the next in presentation order
                if index >= first:
                    yield index, frame

    def _convert(self, frame: Any, size: Size | None) -> np.ndarray:
        """RGB24 at ``size`` (None: native), upright, through decord's filter graph."""
        turn = video_container.clockwise(frame.rotation)
        key = (frame.width, frame.height, frame.format.name, turn, size)
        if key != self._graph_key:
            self._graph, self._graph_key = self._build_graph(frame, turn, size), key
        self._graph.vpush(frame)
        return np.asarray(self._graph.vpull().to_ndarray())

    def _build_graph(self, frame: Any, turn: int, size: Size | None) -> Any:
        upright = (frame.height, frame.width) if turn in (90, 270) else (frame.width, frame.height)
        width, height = size or upright
        graph = av.filter.Graph()
        chain = [
            graph.add_buffer(
                width=frame.width, height=frame.height, format=frame.format, time_base=self._stream.time_base
            )
        ]
        chain += [graph.add("transpose", how) for how in _TURNS[turn]]
        chain += [
            graph.add("scale", f"{width}:{height}:flags=bilinear"),
            graph.add("format", "rgb24"),
            graph.add("buffersink"),
        ]
        for a, b in zip(chain, chain[1:]):
            a.link_to(b)
        graph.configure()
        return graph

    def check(self) -> None:
        """Nothing beyond decoding the first and last frame (the reader does that)."""

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = None
        self._frames = None
        self._graph = self._graph_key = None


def _index_packets(container: Any, stream: Any) -> PacketIndex:
    """One demux pass over the video packets (no decoding), then back to the start."""
    pts, durations, keys = [], [], []
    for packet in container.demux(stream):
        stamp = packet.pts if packet.pts is not None else packet.dts
        if stamp is None:
            continue  # PyAV's flush packet at the end
        pts.append(int(stamp))
        durations.append(int(packet.duration or 0))
        keys.append(bool(packet.is_keyframe))
    order = np.argsort(np.asarray(pts, dtype=np.int64), kind="stable")
    sorted_pts = np.asarray(pts, dtype=np.int64)[order]
    start = int(stream.start_time or 0)
    tb = stream.time_base
    factor = float(tb.numerator) / float(tb.denominator) if tb else 0.0
    starts = (sorted_pts - start).astype(np.float64) * factor
    end = 0.0
    if len(order):
        last = int(order[-1])
        end = float(np.float32((pts[last] + durations[last] - start) * factor))
    return PacketIndex(
        pts=sorted_pts,
        starts_s=starts,
        end_s=end,
        keyframes=np.flatnonzero(np.asarray(keys, dtype=bool)[order]),
    )
