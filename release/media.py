"""Where a release's videos live: ``media/<safe video id>.<ext>``, relative to the release root.

Every release names its videos this way, in the ``videos`` table and in every rendering,
whether or not it carries them, so it never holds a path of the machine that built it.
``meta/media.jsonl`` lists, per video, the file the release expects and the *name* (no
folder) of the source it came from, so a user of a release without media knows what to
put where.

With ``with_media`` the files are written there: a video file is copied byte for byte;
an image folder (DAVIS, MOT frame folders) is re-encoded to an H.264 mp4 at the video's
frame rate, one frame per image in the reader's order
(``tubelet.engine.video_write.export_mp4``), so every frame index and time of the tables
stays valid. A rotated video (a phone's display matrix) is re-encoded the same way,
upright and without a matrix: its boxes and masks are in the upright frame, and a loader
that ignores the matrix (decord when it scales) would otherwise see the pictures
sideways. The ``videos`` row of a re-encoded video says ``codec: h264`` and ``rotation: 0``
in both cases: the tables of a release are the same with and without its media.

Only the frames the video is made of leave a frame folder (here and in ``tubelet export``,
through :func:`folder_frames`): the image files the reader numbers, each a regular file
inside the folder whose content is a JPEG or PNG. Nothing else lying there (a private
key, a ``.git`` folder, other links) is read, and a frame that is a link leading out of
the folder, or not an image, stops the release with an error naming the video and the
frame rather than carrying the file it points at.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from tubelet.engine import remote_media
from tubelet.engine.video import VideoError, frame_files
from tubelet.engine.video_write import export_mp4

MEDIA_DIR = "media"
MEDIA_LIST = "meta/media.jsonl"
#: The codecs tubelet's reader reports for an image folder (``engine/video.py``).
FRAME_CODECS = frozenset({"jpeg", "png", "jpeg+png"})
#: The codec of a frame folder re-encoded for a release.
ENCODED_CODEC = "h264"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: What a frame's content may be (Pillow's names; MPO is a camera's multi-picture JPEG).
#: What a frame file must start with to be carried: JPEG (MPO too, a JPEG) or PNG. Read from
#: the bytes, not through Pillow, whose plugins (some import optional libraries on the
#: spot) decide differently from one process to the next.
FRAME_SIGNATURES = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"))


class MediaError(ValueError):
    """A video cannot be put into the release (missing, unreadable, or re-encoded to other frames)."""


def safe_name(video_id: str) -> str:
    """``video_id`` as a file name: itself when it is one already, else its safe characters plus a
    short hash of the id (``a/b`` and ``a_b`` stay apart)."""
    name = _UNSAFE.sub("_", video_id).lstrip(".")[:100]
    if name == video_id:
        return name
    return f"{name or 'video'}-{hashlib.sha1(video_id.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class VideoMedia:
    """One video's file in the release and where it comes from."""

    video_id: str
    uri: str  # the source, as the dataset has it (never written into the release)
    path: str  # relative to the release root
    frames: bool  # an image folder, re-encoded to mp4
    source_codec: str | None
    fps: float | None
    n_frames: int | None
    rotation: int | None = None  # the source's turn to upright (``videos.rotation``)

    @property
    def reencoded(self) -> bool:
        """Whether the file at ``path`` is re-encoded from decoded frames: a frame folder, or a
        rotated video (written upright, without a display matrix)."""
        return self.frames or bool(self.rotation)

    @property
    def codec(self) -> str | None:
        """The codec of the file at ``path``."""
        return ENCODED_CODEC if self.reencoded else self.source_codec

    @property
    def released_rotation(self) -> int | None:
        """``videos.rotation`` of the file at ``path``: 0 once re-encoded upright."""
        return 0 if self.reencoded else self.rotation


@dataclass(frozen=True)
class VideoSource:
    """What the media plan reads of one ``videos`` row."""

    video_id: str
    uri: str
    codec: str | None = None
    fps: float | None = None
    n_frames: int | None = None
    rotation: int | None = None


def plan_media(videos: Iterable[VideoSource]) -> dict[str, VideoMedia]:
    """Each video's file in the release, by id. Names that would differ only by case (one file on
    macOS and Windows) get the id's hash appended."""
    planned = []
    for v in videos:
        frames = _is_frame_folder(v.uri, v.codec)
        suffix = ".mp4" if frames or v.rotation else PurePosixPath(_uri_path(v.uri)).suffix.lower()
        planned.append((v, frames, safe_name(v.video_id), suffix))
    clashes = Counter((stem + suffix).casefold() for _, _, stem, suffix in planned)
    out: dict[str, VideoMedia] = {}
    for v, frames, stem, suffix in planned:
        if clashes[(stem + suffix).casefold()] > 1:
            stem = f"{stem}-{hashlib.sha1(v.video_id.encode()).hexdigest()[:8]}"
        path = f"{MEDIA_DIR}/{stem}{suffix}"
        out[v.video_id] = VideoMedia(v.video_id, v.uri, path, frames, v.codec, v.fps, v.n_frames, v.rotation)
    return out


@dataclass(frozen=True)
class Frame:
    """One frame file of a frame folder, checked (see :func:`folder_frames`)."""

    path: Path
    format: str  # from its content: "JPEG" or "PNG"


def folder_frames(folder: Path, video_id: str) -> list[Frame]:
    """The frames of the frame-folder video ``video_id`` in the reader's order, each checked
    before anything is read from it: a regular file inside ``folder`` (a link is followed
    only when it stays inside) holding a JPEG or PNG. MediaError names the video and the
    first frame that is not."""
    root = folder.resolve()
    frames = []
    for index, path in enumerate(frame_files(folder)):
        where = f"video {video_id}: frame {index} ({path.name}) of {folder}"
        real = path.resolve()
        if not real.is_relative_to(root):
            raise MediaError(
                f"{where} is a link leading out of the folder (to {real}): only files inside a video's folder "
                "are carried; replace the link by the file"
            )
        if not real.is_file():
            raise MediaError(f"{where} is not a regular file")
        kind = _image_kind(real)
        if kind is None:
            raise MediaError(f"{where} is not a JPEG or PNG image")
        frames.append(Frame(path, kind))
    return frames


def _image_kind(path: Path) -> str | None:
    """ "JPEG" or "PNG" by the file's first bytes, else None."""
    with path.open("rb") as file:
        head = file.read(8)
    return next((kind for signature, kind in FRAME_SIGNATURES if head.startswith(signature)), None)


def place(media: VideoMedia, release_root: Path) -> None:
    """Write ``media``'s file into the release (copied, or re-encoded from its frames)."""
    dest = release_root / media.path
    dest.parent.mkdir(parents=True, exist_ok=True)
    if media.reencoded:
        if media.frames and not remote_media.is_remote(media.uri):  # fetched copies hold no links
            folder_frames(_local_path(media.uri), media.video_id)
        try:
            written = export_mp4(media.uri, dest, fps=media.fps if media.frames else None)
        except (VideoError, OSError, ValueError) as error:
            raise MediaError(f"video {media.video_id}: cannot re-encode it to mp4: {error}") from None
        if media.n_frames is not None and written != media.n_frames:
            raise MediaError(
                f"video {media.video_id}: re-encoded {written} frames, the videos table says {media.n_frames}"
            )
    elif remote_media.is_remote(media.uri):
        with remote_media.fetch(media.uri) as lease:
            shutil.copyfile(lease.path, dest)
    else:
        src = _local_path(media.uri)
        if not src.is_file():
            raise MediaError(f"video {media.video_id}: {media.uri} is not a file (--with-media)")
        shutil.copyfile(src, dest)


def media_list(media: Mapping[str, VideoMedia], included: bool) -> str:
    """``meta/media.jsonl``: one line per video, by path: where it goes, what it came from, whether it is here."""
    names = Counter(_source_name(m.uri) for m in media.values())
    lines = []
    for m in sorted(media.values(), key=lambda m: m.path):
        item: dict[str, Any] = {
            "path": m.path,
            "video_id": m.video_id,
            "included": included,
            "codec": m.codec,
            "fps": m.fps,
            "n_frames": m.n_frames,
            "source_name": _source_name(m.uri),
            "source_kind": "frames" if m.frames else "file",
            "source_codec": m.source_codec,
        }
        if names[item["source_name"]] > 1:  # e.g. MOT's img1 folders: the parent tells them apart
            item["source_parent"] = PurePosixPath(_uri_path(m.uri)).parent.name
        lines.append(json.dumps(item, sort_keys=True, ensure_ascii=False) + "\n")
    return "".join(lines)


def _is_frame_folder(uri: str, codec: str | None) -> bool:
    """An image folder: a local folder, or (remote, or not on this machine) a video probed as frames."""
    if not remote_media.is_remote(uri):
        local = _local_path(uri)
        if local.exists():
            return local.is_dir()
    return codec in FRAME_CODECS


def _local_path(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))


def _uri_path(uri: str) -> str:
    """The path part of a uri (a URL's path without query), with no trailing slash."""
    path = urlsplit(uri).path if remote_media.is_remote(uri) else uri.removeprefix("file://")
    return path.rstrip("/\\").replace("\\", "/")


def _source_name(uri: str) -> str:
    return PurePosixPath(_uri_path(uri)).name
