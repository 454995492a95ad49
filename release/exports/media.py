"""A video's pixels for an export: its local file (or fetched copy), JPEG frames, an mp4.

Frames are written as the formats' readers load them: one JPEG per frame. A JPEG frame of
an image folder is copied byte for byte (no second compression); other frames (PNG
folders, video files) are decoded and encoded once at the export's JPEG quality, which
gives the same bytes every time. Only the frames the video is made of are read, each a
regular image file inside its folder (``tubelet.release.media.folder_frames``): a frame
linked out of the folder, or whose content is no image, stops the export — nothing else
lying in the folder is read. A video whose media cannot be read stops the export with an
error naming the video and its uri.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from tubelet.engine import remote_media
from tubelet.engine.remote_media import RemoteMediaError
from tubelet.engine.video import VideoError, VideoReader
from tubelet.engine.video_write import EXPORT_BATCH, export_mp4
from tubelet.release.exports.common import ExportError, frame_name
from tubelet.release.media import Frame, MediaError, folder_frames
from tubelet.schemas import VideoRecord

JPEG_SUFFIXES = (".jpg", ".jpeg")


@contextmanager
def local_media(video: VideoRecord) -> Iterator[Path]:
    """The video's file or frame folder on this machine (a remote one fetched for the block)."""
    uri = video.uri
    if remote_media.is_remote(uri):
        try:
            lease = remote_media.fetch(uri)
        except RemoteMediaError as error:
            raise ExportError(f"video {video.video_id}: its media {uri} cannot be fetched ({error})") from None
        with lease:
            yield lease.path
        return
    path = Path(uri[len("file://") :] if uri.startswith("file://") else uri)
    if not path.exists():
        raise ExportError(f"video {video.video_id}: its media {uri} is missing")
    yield path


def _reader_fps(video: VideoRecord, path: Path) -> float | None:
    """The frame rate to open the media with: the dataset's for a folder or a manifest override."""
    return video.fps if path.is_dir() or video.fps_source == "manifest" else None


def write_frames(video: VideoRecord, folder: Path, name_of: Callable[[int], str], quality: int) -> int:
    """Write every frame of ``video`` into ``folder`` as ``name_of(frame_idx)`` (a ``.jpg`` name);
    the number of frames written. ExportError when the media is missing or not the video
    the dataset describes."""
    folder.mkdir(parents=True, exist_ok=True)
    with local_media(video) as path:
        try:
            if path.is_dir():
                return _folder_frames(video, path, folder, name_of, quality)
            return _decoded_frames(video, path, folder, name_of, quality)
        except (VideoError, OSError, IndexError) as error:
            raise ExportError(f"video {video.video_id}: cannot read its frames from {video.uri}: {error}") from None


def write_indexed_frames(video: VideoRecord, folder: Path, quality: int) -> int:
    """``write_frames`` named by 0-based frame index (``00000.jpg``…), as DAVIS and YouTube-VIS name them."""
    return write_frames(video, folder, functools.partial(frame_name, n_frames=video.n_frames, suffix=".jpg"), quality)


def _checked_frames(video: VideoRecord, path: Path) -> list[Frame]:
    """The frames of the image folder ``path`` an export may read (ExportError otherwise)."""
    try:
        return folder_frames(path, video.video_id)
    except MediaError as error:
        raise ExportError(str(error)) from None


def _folder_frames(video: VideoRecord, path: Path, folder: Path, name_of: Callable[[int], str], quality: int) -> int:
    frames = _checked_frames(video, path)
    if len(frames) != video.n_frames:
        raise ExportError(
            f"video {video.video_id}: {video.uri} holds {len(frames)} frames, the dataset says {video.n_frames}"
        )
    for i, frame in enumerate(frames):
        if frame.format == "JPEG" and frame.path.suffix.lower() in JPEG_SUFFIXES:
            shutil.copyfile(frame.path, folder / name_of(i))
        else:
            with Image.open(frame.path) as image:
                _save_jpeg(np.asarray(image.convert("RGB")), folder / name_of(i), quality)
    return len(frames)


def _decoded_frames(video: VideoRecord, path: Path, folder: Path, name_of: Callable[[int], str], quality: int) -> int:
    with VideoReader(str(path), fps=_reader_fps(video, path)) as reader:
        if reader.n_frames != video.n_frames:
            raise ExportError(
                f"video {video.video_id}: {video.uri} has {reader.n_frames} frames, the dataset says {video.n_frames}"
            )
        for start in range(0, reader.n_frames, EXPORT_BATCH):
            indices = list(range(start, min(start + EXPORT_BATCH, reader.n_frames)))
            for i, rgb in zip(indices, reader.frames(indices), strict=True):
                _save_jpeg(rgb, folder / name_of(i), quality)
        return reader.n_frames


def _save_jpeg(rgb: np.ndarray, path: Path, quality: int) -> None:
    Image.fromarray(rgb).save(path, format="JPEG", quality=quality)


def is_mp4_file(video: VideoRecord) -> bool:
    """Whether the video's media is an mp4 file copied as it is, not re-encoded: not a rotated
    one, which is re-encoded upright without its display matrix (its rows are in the upright frame)."""
    return video.uri.lower().endswith(".mp4") and not video.rotation


def check_local_media(video: VideoRecord) -> None:
    """ExportError now, before any work, when a local video's media is missing (remote media is
    checked when fetched)."""
    if not remote_media.is_remote(video.uri):
        with local_media(video):
            pass


def place_mp4(video: VideoRecord, dest: Path) -> bool:
    """The video as an mp4 at ``dest``: an mp4 file copied as it is (True), anything else
    (an image folder, another container) re-encoded to H.264 frame for frame (False)."""
    with local_media(video) as path:
        if path.is_file() and is_mp4_file(video):
            shutil.copyfile(path, dest)
            return True
        if path.is_dir():
            _checked_frames(video, path)
        try:
            written = export_mp4(str(path), dest, fps=_reader_fps(video, path))
        except (VideoError, OSError, ValueError) as error:
            raise ExportError(f"video {video.video_id}: cannot re-encode {video.uri} to mp4: {error}") from None
    if written != video.n_frames:
        raise ExportError(
            f"video {video.video_id}: {video.uri} gave {written} frames, the dataset says {video.n_frames}"
        )
    return False
