"""The one video reader every stage decodes through.

A video is a file (decoded by decord or PyAV — ``tubelet.engine.video_backend`` says
which; both give the same frames and times — with seeks to keyframes, optionally scaled
by the decoder itself) or a folder of JPEG/PNG frames with an explicit fps (decoded with
Pillow). Frame indices are always absolute indices of the original video; times are
seconds from the container's timestamps, or ``i / fps`` when an fps is given (image
folders, or a manifest override for a file).

    with VideoReader("clip.mp4") as video:
        idx = video.sample_indices(fps=2)           # nearest frames to a 2 fps grid
        rgb = video.frames(idx, size=(448, 252))    # uint8 (N, 252, 448, 3)

A ``uri`` is a local path, a ``file://`` URL, or any URL fsspec opens (``s3://bucket/clip.mp4``;
a prefix is an image folder): remote videos are decoded from a local copy in this
process's bounded cache (``tubelet.engine.remote_media``), held while the reader is open.

Anything that cannot be read raises ``VideoError`` whose ``kind`` names the cause.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tubelet.engine import remote_media, worker_progress
from tubelet.engine.remote_media import MediaLease, RemoteMediaError
from tubelet.engine.video_backend import resolve_backend
from tubelet.engine.video_decord import DecordSource
from tubelet.engine.video_folder import FolderSource, frame_files
from tubelet.engine.video_pyav import PyAVSource
from tubelet.engine.video_types import FrameSource, Size, VideoError, VideoMeta, check_size

__all__ = ["Size", "VideoError", "VideoMeta", "VideoReader", "frame_files", "open_video", "probe", "sample_indices"]


def sample_indices(
    timestamps: np.ndarray,
    fps: float | None = None,
    start_s: float = 0.0,
    end_s: float | None = None,
    max_frames: int | None = None,
) -> list[int]:
    """Frame indices whose start times are nearest to a uniform time grid.

    The window is ``[start_s, end_s)``, clipped to the video (which ends one frame
    after the last timestamp). The grid is ``start_s + k / fps`` inside the window;
    ``fps=None`` takes every frame of the window. When that gives more than
    ``max_frames`` points, ``max_frames`` points are spread evenly over the whole
    window instead (a lower rate, same coverage). Only frames that start inside the
    window are candidates; ties go to the earlier frame. Returns sorted absolute
    indices without duplicates.
    """
    if fps is not None and fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    if start_s < 0:
        raise ValueError(f"start_s must not be negative, got {start_s}")
    ts = np.asarray(timestamps, dtype=np.float64)
    if len(ts) == 0:
        return []
    # the video ends one (typical) frame after the last start time
    video_end = float(ts[-1]) + (float(np.median(np.diff(ts))) if len(ts) > 1 else 1.0)
    end_s = video_end if end_s is None else min(end_s, video_end)
    eps = 1e-6  # timestamps are rounded to microseconds
    lo = int(np.searchsorted(ts, start_s - eps, side="left"))
    hi = int(np.searchsorted(ts, end_s - eps, side="left"))
    if hi <= lo:
        return []
    candidates = ts[lo:hi]
    grid: np.ndarray
    if fps is None:
        grid = candidates
    else:
        n_grid = int(np.floor((end_s - start_s) * fps - eps)) + 1
        grid = start_s + np.arange(max(n_grid, 1)) / fps
    if max_frames is not None and len(grid) > max_frames:
        grid = start_s + np.arange(max_frames) * ((end_s - start_s) / max_frames)
    pos = np.clip(np.searchsorted(candidates, grid, side="left"), 1, len(candidates) - 1)
    if len(candidates) == 1:
        nearest = np.zeros(len(grid), dtype=np.int64)
    else:
        before, after = candidates[pos - 1], candidates[pos]
        nearest = np.where(np.abs(grid - before) <= np.abs(after - grid), pos - 1, pos)
    return [int(i) + lo for i in np.unique(nearest)]


class VideoReader:
    """Read frames of one video file or image folder; use as a context manager.

    ``fps`` is an explicit frame rate: required for image folders; for a file it
    overrides the container (``fps_source="manifest"``, times become ``i / fps``).
    ``size`` is the default decode size ``(width, height)`` for ``frames`` (None:
    native), in the orientation frames are shown in. Files scale inside the decoder,
    which measured faster than decoding at full size and resizing after
    (bench/bench_decode.py). ``backend`` ("auto", "decord", "pyav") decodes a file; None
    takes this process's choice (``tubelet.engine.video_backend``); ``self.backend``
    says which decodes ("pillow" for a folder).

    ``frames_requested`` counts the indices asked for; ``frames_decoded`` the frames
    this reader actually decoded (each distinct frame of a call once).
    """

    def __init__(
        self,
        uri: str,
        fps: float | None = None,
        *,
        size: Size | None = None,
        num_threads: int = 0,
        backend: str | None = None,
    ) -> None:
        if fps is not None and fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.uri = uri
        self.size = check_size(size)
        self.frames_decoded = 0
        self.frames_requested = 0
        self._media = _fetch_remote(uri) if remote_media.is_remote(uri) else None
        try:
            path = self._media.path if self._media is not None else _local_path(uri)
            self._source: FrameSource
            if path.is_dir():
                self._source, self.backend = FolderSource(path, uri, fps), "pillow"
            else:
                self.backend = resolve_backend(backend)
                self._source = _open_file(path, uri, fps, self.size, num_threads, self.backend)
        except BaseException:
            self._release_media()
            raise

    # -- context manager -------------------------------------------------------------
    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the decoders (and a remote video's cached copy). The reader cannot decode after this."""
        self._source.close()
        self._release_media()

    def _release_media(self) -> None:
        if self._media is not None:
            self._media.release()

    # -- metadata --------------------------------------------------------------------
    @property
    def n_frames(self) -> int:
        """Number of frames (cheap: does not inspect the container)."""
        return self._source.n_frames

    @functools.cached_property
    def meta(self) -> VideoMeta:
        """fps, frame count, duration, native size and codec (inspects the container)."""
        return self._source.meta()

    def timestamps(self) -> np.ndarray:
        """Start time in seconds of every frame, shape ``(n_frames,)``."""
        return self._timestamps

    @functools.cached_property
    def _timestamps(self) -> np.ndarray:
        ts = self._source.timestamps()
        ts.setflags(write=False)
        return ts

    def frame_time(self, idx: int) -> float:
        """Start time in seconds of frame ``idx``."""
        return float(self._timestamps[self._check_index(idx)])

    def sample_indices(
        self,
        fps: float | None = None,
        start_s: float = 0.0,
        end_s: float | None = None,
        max_frames: int | None = None,
    ) -> list[int]:
        """Frame indices nearest to a uniform time grid at ``fps`` (see ``sample_indices``)."""
        return sample_indices(self._timestamps, fps, start_s, end_s, max_frames)

    # -- decoding --------------------------------------------------------------------
    def frames(self, indices: Sequence[int], size: Size | None = None) -> np.ndarray:
        """Decode frames as uint8 RGB ``(N, H, W, 3)`` in the order of ``indices``.

        ``size`` is ``(width, height)``; None uses the reader's ``size`` (or native).
        Each distinct frame is decoded once, in ascending order (sequential decode).
        """
        size = check_size(size) or self.size
        wanted = [self._check_index(i) for i in indices]
        self.frames_requested += len(wanted)
        unique = sorted(set(wanted))
        if not unique:
            w, h = size or (self.meta.width, self.meta.height)
            return np.zeros((0, h, w, 3), dtype=np.uint8)
        decoded = self._source.decode(unique, size)
        self.frames_decoded += len(unique)
        worker_progress.add_frames(len(unique))  # the driver's progress line, while a video is long
        if unique == wanted:
            return decoded
        order = np.searchsorted(np.asarray(unique), np.asarray(wanted))
        return decoded[order]

    def check_decodable(self) -> None:
        """Decode the first and the last frame; raise ``VideoError`` if either fails.

        Catches files cut short whose index survived, and (image folders) frames of
        different sizes.
        """
        self._source.check()
        self.frames(sorted({0, self.n_frames - 1}))

    def _check_index(self, idx: int) -> int:
        i = int(idx)
        if not 0 <= i < self.n_frames:
            raise IndexError(f"frame {idx} out of range: {self.uri} has {self.n_frames} frames")
        return i


#: Alias: ``with open_video(uri) as video: ...``
open_video = VideoReader


def probe(uri: str, fps: float | None = None, decode_check: bool = True) -> VideoMeta:
    """Inspect a video: its ``VideoMeta``, or ``VideoError`` naming why it cannot be read.

    With ``decode_check`` the first and last frames are decoded, so a file cut short
    (even one whose index survived) is rejected here rather than by a later stage.
    """
    with VideoReader(uri, fps=fps) as video:
        meta = video.meta
        if decode_check:
            video.check_decodable()
        return meta


# -- helpers ---------------------------------------------------------------------------


def _open_file(path: Path, uri: str, fps: float | None, size: Size | None, threads: int, backend: str) -> FrameSource:
    if backend == "decord":
        return DecordSource(path, uri, fps, size, threads)
    return PyAVSource(path, uri, fps, threads)


def _local_path(uri: str) -> Path:
    return Path(uri[len("file://") :] if uri.startswith("file://") else uri)


def _fetch_remote(uri: str) -> MediaLease:
    """The local copy of a remote video; a fetch failure is a ``VideoError`` of the same kind."""
    try:
        return remote_media.fetch(uri)
    except RemoteMediaError as error:
        raise VideoError(uri, error.kind, error.detail) from None
