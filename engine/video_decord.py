"""The decord backend: video files decoded by decord (batched decode with seeks, scaled
inside the decoder). decord is optional — it has wheels for x86-64 Linux and Windows
only — and imported only when a file is opened with this backend.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from tubelet.engine.video_file import check_file, decode_failure, file_meta, frame_times, open_failure
from tubelet.engine.video_types import Size, VideoError, VideoMeta, resize, short


class DecordSource:
    """A video file decoded by decord; one decoder per output size, opened on demand."""

    name = "decord"

    def __init__(self, path: Path, uri: str, fps: float | None, size: Size | None, threads: int) -> None:
        self.path, self.uri, self.fps, self.threads = path, uri, fps, threads
        check_file(path, uri)
        self._decoders: dict[Size | None, Any] | None = {}
        self._resize_after: set[Size] = set()
        self._first: Any = None
        self._first = self._decoder(size)  # any decoder gives frame count and timestamps
        self.n_frames = len(self._first)
        if self.n_frames == 0:
            raise VideoError(uri, "no_frames", "the file has no decodable video frames")

    def _decoder(self, size: Size | None) -> Any:
        if self._decoders is None:
            raise RuntimeError(f"video reader closed: {self.uri}")
        if size not in self._decoders:
            decord = load_decord()
            for other in [k for k, d in self._decoders.items() if d is not self._first]:
                del self._decoders[other]  # keep the first and the newest decoder, not one per size
            w, h = size or (-1, -1)
            try:
                self._decoders[size] = decord.VideoReader(
                    str(self.path), ctx=decord.cpu(0), width=w, height=h, num_threads=self.threads
                )
            except (decord.DECORDError, RuntimeError) as error:
                raise open_failure(self.path, self.uri, "decord", short(error)) from None
        return self._decoders[size]

    def meta(self) -> VideoMeta:
        end = float(self._first.get_frame_timestamp(self.n_frames - 1)[-1])
        return file_meta(
            self.path,
            self.uri,
            n_frames=self.n_frames,
            fps=self.fps,
            container_fps=float(self._first.get_avg_fps()),
            end_s=end,
        )

    def timestamps(self) -> np.ndarray:
        starts = None if self.fps is not None else self._first.get_frame_timestamp(np.arange(self.n_frames))[:, 0]
        return frame_times(starts, self.n_frames, self.fps)

    def decode(self, indices: list[int], size: Size | None) -> np.ndarray:
        decord = load_decord()
        if size in self._resize_after:
            return resize(self.decode(indices, None), size)
        decoder = self._decoder(size)
        # decord's output bridge is process-global; sam2's own mp4 loader switches it
        # to torch, after which get_batch returns tensors without asnumpy()
        decord.bridge.reset_bridge()
        try:
            frames = decoder.get_batch(indices).asnumpy()
        except decord.DECORDError as error:
            if size is not None and "DECORDArrayCopyFromTo" in str(error):
                # decord's scaler emits the wrong width for some sizes (e.g. 48 or 24 px
                # wide): decode at native size and resize afterwards for this size.
                assert self._decoders is not None
                self._decoders.pop(size, None)
                self._resize_after.add(size)
                return self.decode(indices, size)
            raise self._locate_failure(indices, size, error) from None
        # After a seek decord's reader keeps pushing packets until its decoding thread
        # returns a frame, and that thread then decodes every pushed packet into an
        # unbounded queue in the background: often the rest of the file (measured on
        # 640x360: ~0.7 MiB per frame, +440 MiB after one call on a 30 s video, +750 MiB
        # on a 5 min one; dmlc/decord#197, #208). Rewinding to frame 0 (a keyframe: cheap,
        # and exact) stops that thread and frees its queue. The price: a following call
        # inside the same GOP seeks to its keyframe instead of reusing decoded-ahead frames.
        decoder.seek(0)
        return frames

    def _locate_failure(self, indices: list[int], size: Size | None, error: Exception) -> VideoError:
        """Find the first frame of a failed batch that cannot be decoded (error path only)."""
        decord = load_decord()
        assert self._decoders is not None
        self._decoders.pop(size, None)  # its state is unknown after a failure: reopen
        bad = indices[-1]
        try:
            decoder = self._decoder(size)
            for i in indices:
                try:
                    decoder[i]
                except decord.DECORDError:
                    bad = i
                    break
        except VideoError:
            pass
        self._decoders.pop(size, None)
        return decode_failure(self.path, self.uri, bad, short(error))

    def check(self) -> None:
        """Nothing beyond decoding the first and last frame (the reader does that)."""

    def close(self) -> None:
        self._decoders = None
        self._first = None


@functools.cache
def load_decord() -> Any:
    """decord, quiet (our ``VideoError`` says what went wrong)."""
    import decord

    decord.logging.set_level(decord.logging.QUIET)
    return decord
