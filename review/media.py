"""Making a dataset's videos playable in Label Studio.

Label Studio plays videos in the reviewer's browser, which decodes H.264, VP8/VP9 and
AV1 but not, say, MPEG-4 part 2 (OpenCV's ``mp4v``) or a folder of JPEGs. Such videos
get a review proxy: every frame re-encoded to H.264 at the video's own frame rate, so
frame ``n`` of the proxy is frame ``n`` of the dataset (checked by counting). So does a
rotated video (a phone's display matrix): its proxy is upright, with no matrix, as the
dataset's boxes are. Other playable files are served as they are.

Files reach the browser through Label Studio's local-files storage: a URL
``/data/local-files/?d=<path relative to the document root>``, allowed once the project
has a local storage whose path contains the file.
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from tubelet.engine.video import VideoReader
from tubelet.schemas.records import VideoRecord

#: Codecs browsers play in an mp4/webm container.
BROWSER_CODECS = frozenset({"h264", "vp8", "vp9", "av1"})


class MediaError(RuntimeError):
    """A video could not be made playable (its reason names the file)."""


def needs_proxy(video: VideoRecord) -> bool:
    """Whether the browser cannot play ``video.uri`` as it is, or might show it in another
    orientation than the dataset's boxes (a rotated video: browsers differ on display matrices)."""
    return not (Path(video.uri).is_file() and video.codec.lower() in BROWSER_CODECS) or bool(video.rotation)


def proxy_path(media_dir: str | os.PathLike[str], video: VideoRecord) -> Path:
    """Where ``video``'s proxy lives (named by id and frame count, so a changed video gets a new one)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in video.video_id)
    return Path(media_dir) / f"{safe}.{video.n_frames}f.mp4"


def ensure_proxy(video: VideoRecord, media_dir: str | os.PathLike[str], *, crf: int = 20) -> Path:
    """The H.264 proxy of ``video`` (made once; reused while its frame count matches)."""
    path = proxy_path(media_dir, video)
    if path.is_file() and _frame_count(path) == video.n_frames:
        return path

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.mp4")
    try:
        with VideoReader(video.uri) as reader, av.open(str(partial), "w") as out:
            stream = out.add_stream("libx264", rate=_rate(video.fps))
            stream.width, stream.height = video.width - video.width % 2, video.height - video.height % 2
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf), "preset": "veryfast"}
            for start in range(0, video.n_frames, 32):
                batch = reader.frames(list(range(start, min(video.n_frames, start + 32))))
                for rgb in batch:
                    frame = av.VideoFrame.from_ndarray(rgb[: stream.height, : stream.width], format="rgb24")
                    for packet in stream.encode(frame.reformat(format="yuv420p")):
                        out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
    except Exception as error:  # noqa: BLE001 - any decode/encode failure names the video
        partial.unlink(missing_ok=True)
        raise MediaError(
            f"cannot make a browser-playable copy of {video.uri}: {type(error).__name__}: {error}"
        ) from None
    count = _frame_count(partial)
    if count != video.n_frames:
        partial.unlink(missing_ok=True)
        raise MediaError(f"the proxy of {video.uri} has {count} frames, the dataset {video.n_frames}; not used")
    partial.replace(path)
    return path


@dataclass(frozen=True)
class LocalFile:
    """How Label Studio serves one file: the task's URL and the storage folder that allows it."""

    url: str  # /data/local-files/?d=<path relative to the document root>
    folder: str  # the local-files storage path: the document root joined with the file's folder


def local_file(path: str | os.PathLike[str], document_root: str = "/") -> LocalFile:
    """How Label Studio, serving local files from ``document_root``, serves ``path``.

    Label Studio joins its ``LOCAL_FILES_DOCUMENT_ROOT`` with the URL's ``d`` and serves
    the file only when a storage of the project has exactly that folder (or one above it)
    as its path; it resolves no symbolic link and nothing relative to our directory. So
    both come from one relative path: the file's real location (links resolved) relative
    to the real document root, else, when only the path as written lies under the root,
    that one. Raises MediaError when the file is outside the root, or directly in it
    (Label Studio refuses a storage at its document root).
    """
    root = Path(os.path.abspath(os.path.expanduser(document_root)))
    relative = None
    for file, base in (
        (Path(os.path.realpath(path)), Path(os.path.realpath(root))),
        (Path(os.path.abspath(path)), root),
    ):
        if file.is_relative_to(base):
            relative = file.relative_to(base)
            break
    if relative is None:
        raise MediaError(
            f"{os.path.abspath(path)} is outside Label Studio's document root {root} (LOCAL_FILES_DOCUMENT_ROOT): "
            "serve Label Studio with a --document-root above the videos and push with the same one"
        )
    if relative.parent == Path("."):
        raise MediaError(
            f"{os.path.abspath(path)} lies directly in Label Studio's document root {root}, where Label Studio "
            "allows no storage: move it into a sub-folder, or use a document root above it"
        )
    return LocalFile(
        url="/data/local-files/?d=" + urllib.parse.quote(relative.as_posix()),
        folder=str(root / relative.parent),
    )


def _rate(fps: float):  # noqa: ANN202 - a Fraction, av's frame-rate type

    return Fraction(fps).limit_denominator(1001)


def _frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.demux(video=0) if _.size)
