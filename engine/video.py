"""The one video reader every stage decodes through.

A video is a file (decoded with decord: batched decode with seeks, optionally scaled
by the decoder itself) or a folder of JPEG/PNG frames with an explicit fps (decoded
with Pillow). Frame indices are always absolute indices of the original video; times
are seconds from the container's timestamps, or ``i / fps`` when an fps is given
(image folders, or a manifest override for a file).

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
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import decord
import numpy as np
from PIL import Image, UnidentifiedImageError

from tubelet.engine import remote_media, video_container
from tubelet.engine.remote_media import IMAGE_SUFFIXES, MediaLease, RemoteMediaError

#: (width, height) in pixels.
Size = tuple[int, int]

_TS_DECIMALS = 6  # decord reports float32 seconds; keep microseconds, drop the noise


@dataclass(frozen=True)
class VideoMeta:
    """What a probe says about a video. ``fps_source`` is "container" or "manifest"."""

    fps: float
    n_frames: int
    duration_s: float
    width: int
    height: int
    codec: str
    fps_source: str = "container"


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
    native). Files scale inside the decoder, which measured faster than decoding at
    full size and resizing after (bench/bench_decode.py).

    ``frames_requested`` counts the indices asked for; ``frames_decoded`` the frames
    this reader actually decoded (each distinct frame of a call once).
    """

    def __init__(self, uri: str, fps: float | None = None, *, size: Size | None = None, num_threads: int = 0) -> None:
        if fps is not None and fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.uri = uri
        self.size = _check_size(size)
        self.frames_decoded = 0
        self.frames_requested = 0
        self._media = _fetch_remote(uri) if remote_media.is_remote(uri) else None
        try:
            path = self._media.path if self._media is not None else _local_path(uri)
            if path.is_dir():
                self._source: _FileSource | _FolderSource = _FolderSource(path, uri, fps)
            else:
                self._source = _FileSource(path, uri, fps, self.size, num_threads)
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
        size = _check_size(size) or self.size
        wanted = [self._check_index(i) for i in indices]
        self.frames_requested += len(wanted)
        unique = sorted(set(wanted))
        if not unique:
            w, h = size or (self.meta.width, self.meta.height)
            return np.zeros((0, h, w, 3), dtype=np.uint8)
        decoded = self._source.decode(unique, size)
        self.frames_decoded += len(unique)
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


# -- sources ---------------------------------------------------------------------------


class _FileSource:
    """A video file decoded by decord; one decoder per output size, opened on demand."""

    def __init__(self, path: Path, uri: str, fps: float | None, size: Size | None, threads: int) -> None:
        self.path, self.uri, self.fps, self.threads = path, uri, fps, threads
        if not path.exists():
            raise VideoError(uri, "missing", "path does not exist")
        if path.stat().st_size == 0:
            raise VideoError(uri, "empty", "zero-byte file")
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
            decord = _decord()
            for other in [k for k, d in self._decoders.items() if d is not self._first]:
                del self._decoders[other]  # keep the first and the newest decoder, not one per size
            w, h = size or (-1, -1)
            try:
                self._decoders[size] = decord.VideoReader(
                    str(self.path), ctx=decord.cpu(0), width=w, height=h, num_threads=self.threads
                )
            except (decord.DECORDError, RuntimeError) as error:
                raise self._explain_open_failure(error) from None
        return self._decoders[size]

    def _explain_open_failure(self, error: Exception) -> VideoError:
        try:
            info = video_container.inspect(self.path)
        except video_container.ContainerError as not_readable:
            cut = video_container.mp4_cut(self.path)
            if cut:
                return VideoError(self.uri, "truncated", cut)
            return VideoError(self.uri, "not_a_video", str(not_readable))
        if info.is_still_image:
            return VideoError(self.uri, "not_a_video", f"a still image ({info.codec}), not a video")
        cut_frame = video_container.first_incomplete_packet(self.path)
        if cut_frame is not None:
            return VideoError(
                self.uri,
                "truncated",
                f"the container lists {info.listed_frames} frames but the file ends inside frame "
                f"{cut_frame} (decode order)",
            )
        return VideoError(self.uri, "unsupported", f"{info.codec} video that decord cannot open ({_short(error)})")

    def meta(self) -> VideoMeta:
        try:
            info = video_container.inspect(self.path)
        except video_container.ContainerError as error:
            raise VideoError(self.uri, "not_a_video", str(error)) from None
        if info.is_still_image:
            raise VideoError(self.uri, "not_a_video", f"a still image ({info.codec}), not a video")
        if info.listed_frames and self.n_frames < info.listed_frames:
            cut_frame = video_container.first_incomplete_packet(self.path)
            where = f"the file ends inside frame {cut_frame} (decode order)" if cut_frame is not None else ""
            raise VideoError(
                self.uri,
                "truncated",
                f"the container lists {info.listed_frames} frames but only {self.n_frames} can be read"
                + (f": {where}" if where else ""),
            )
        if self.fps is not None:
            fps, source, duration = float(self.fps), "manifest", self.n_frames / float(self.fps)
        else:
            fps, source = float(self._first.get_avg_fps()), "container"
            if not fps > 0:
                raise VideoError(self.uri, "no_fps", "the container has no frame rate; set fps in the manifest")
            end = float(self._first.get_frame_timestamp(self.n_frames - 1)[-1])
            duration = round(end, _TS_DECIMALS) if end > 0 else self.n_frames / fps
        return VideoMeta(fps, self.n_frames, duration, info.width, info.height, info.codec, source)

    def timestamps(self) -> np.ndarray:
        if self.fps is not None:
            return np.arange(self.n_frames, dtype=np.float64) / float(self.fps)
        starts = self._first.get_frame_timestamp(np.arange(self.n_frames))[:, 0]
        return np.round(starts.astype(np.float64), _TS_DECIMALS)

    def decode(self, indices: list[int], size: Size | None) -> np.ndarray:
        decord = _decord()
        if size in self._resize_after:
            return _resize(self.decode(indices, None), size)
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
        decord = _decord()
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
        cut_frame = video_container.first_incomplete_packet(self.path)
        if cut_frame is not None:
            return VideoError(
                self.uri,
                "truncated",
                f"frame {bad} cannot be decoded: the file ends inside frame {cut_frame} (decode order)",
            )
        return VideoError(self.uri, "corrupt", f"frame {bad} cannot be decoded ({_short(error)})")

    def check(self) -> None:
        """Nothing beyond decoding the first and last frame (the reader does that)."""

    def close(self) -> None:
        self._decoders = None
        self._first = None


class _FolderSource:
    """A folder of JPEG/PNG frames in natural name order, at an explicit fps."""

    def __init__(self, path: Path, uri: str, fps: float | None) -> None:
        self.uri = uri
        self.files = frame_files(path)
        if not self.files:
            raise VideoError(uri, "no_frames", "folder has no JPEG/PNG frames")
        if fps is None:
            raise VideoError(uri, "no_fps", "an image folder needs an explicit fps (set fps in the manifest)")
        self.fps = float(fps)
        self.n_frames = len(self.files)
        self.width, self.height = self._header_size(0)
        self._closed = False

    def _header_size(self, idx: int) -> Size:
        try:
            with Image.open(self.files[idx]) as image:
                return image.size
        except (OSError, UnidentifiedImageError) as error:
            name = self.files[idx].name
            raise VideoError(self.uri, "corrupt", f"frame {idx} ({name}) is not an image: {error}") from None

    def meta(self) -> VideoMeta:
        suffixes = sorted({"jpeg" if p.suffix.lower() in (".jpg", ".jpeg") else "png" for p in self.files})
        return VideoMeta(
            fps=self.fps,
            n_frames=self.n_frames,
            duration_s=self.n_frames / self.fps,
            width=self.width,
            height=self.height,
            codec="+".join(suffixes),
            fps_source="manifest",
        )

    def timestamps(self) -> np.ndarray:
        return np.arange(self.n_frames, dtype=np.float64) / self.fps

    def decode(self, indices: list[int], size: Size | None) -> np.ndarray:
        if self._closed:
            raise RuntimeError(f"video reader closed: {self.uri}")
        w, h = size or (self.width, self.height)
        out = np.empty((len(indices), h, w, 3), dtype=np.uint8)
        for k, idx in enumerate(indices):
            out[k] = self._decode_one(idx, size)
        return out

    def _decode_one(self, idx: int, size: Size | None) -> np.ndarray:
        name = self.files[idx].name
        try:
            with Image.open(self.files[idx]) as image:
                self._check_frame_size(idx, image.size)
                if size is not None and size != image.size:
                    image.draft("RGB", size)  # JPEG: decode at a reduced scale >= size (cheap)
                    rgb = image.convert("RGB").resize(size, Image.Resampling.BILINEAR)
                else:
                    rgb = image.convert("RGB")
                return np.asarray(rgb)
        except (OSError, UnidentifiedImageError) as error:
            raise VideoError(self.uri, "corrupt", f"frame {idx} ({name}) cannot be decoded: {error}") from None

    def _check_frame_size(self, idx: int, size: Size) -> None:
        if size != (self.width, self.height):
            raise VideoError(
                self.uri,
                "mixed_sizes",
                f"frames of different sizes: frame {idx} ({self.files[idx].name}) is {size[0]}x{size[1]}, "
                f"frame 0 is {self.width}x{self.height}",
            )

    def check(self) -> None:
        """Read every frame's header (cheap: no pixels) to catch mixed sizes."""
        for idx in range(self.n_frames):
            self._check_frame_size(idx, self._header_size(idx))

    def close(self) -> None:
        self._closed = True


# -- helpers ---------------------------------------------------------------------------


def _local_path(uri: str) -> Path:
    return Path(uri[len("file://") :] if uri.startswith("file://") else uri)


def _fetch_remote(uri: str) -> MediaLease:
    """The local copy of a remote video; a fetch failure is a ``VideoError`` of the same kind."""
    try:
        return remote_media.fetch(uri)
    except RemoteMediaError as error:
        raise VideoError(uri, error.kind, error.detail) from None


def _check_size(size: Size | None) -> Size | None:
    if size is None:
        return None
    w, h = (int(v) for v in size)
    if w <= 0 or h <= 0:
        raise ValueError(f"size must be (width, height) in positive pixels, got {size}")
    return (w, h)


def _resize(frames: np.ndarray, size: Size) -> np.ndarray:
    out = np.empty((len(frames), size[1], size[0], 3), dtype=np.uint8)
    for k, frame in enumerate(frames):
        out[k] = np.asarray(Image.fromarray(frame).resize(size, Image.Resampling.BILINEAR))
    return out


def _natural_key(name: str) -> list[Any]:
    # frame_2.jpg before frame_10.jpg, whatever the zero padding
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def frame_files(folder: Path) -> list[Path]:
    """The JPEG/PNG frames of an image folder, in the order the reader numbers them."""
    return sorted(
        (p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")),
        key=lambda p: _natural_key(p.name),
    )


def _short(error: BaseException, limit: int = 200) -> str:
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    text = lines[0] if lines else type(error).__name__
    text = re.sub(r"^\[[\d:]+\]\s*\S+:\d+:\s*", "", text)  # drop decord's "[time] file.cc:line:"
    return text[:limit]


@functools.cache
def _decord() -> Any:
    decord.logging.set_level(decord.logging.QUIET)  # our VideoError says what went wrong
    return decord
