"""WebDataset tar shards: one sample per video, the video as ``mp4`` and its rows as ``json``.

Layout::

    DIR/<split>-000000.tar, <split>-000001.tar, …   ``shard_size`` samples each, by key

A sample is two tar members, ``<key>.json`` then ``<key>.mp4``; ``webdataset.WebDataset``
groups consecutive members by the name before the first dot, so the key is the video's
file-safe name (``common.safe_name``: no dot, never ``__x__``), and members sort so that a
sample's files are adjacent. The mp4 is the video's own file when it is one (copied
byte for byte), else the image folder or other container re-encoded to H.264 frame for
frame (``tubelet.engine.video_write.export_mp4``), so frame ``i`` of the mp4 is
``frame_idx`` ``i`` of the annotations either way.

The json is ``{"video", "tubelets", "entities", "events", "instructions"}``: the rows as
the dataset holds them (boxes ``[x1, y1, x2, y2]`` in pixels, masks as COCO RLE, times in
seconds), ``extra`` fields as objects, and the video row without its ``uri`` (a path of
the machine that exported it) but with ``media``: the member name, whether it was copied
or re-encoded, and its codec.

Written with ``tarfile`` rather than ``webdataset.TarWriter``, which stamps members with the
current time. The bytes repeat: members in sorted order with mtime 0, uid/gid 0, no user or group
names, mode 0644, PAX format; the json with sorted keys; re-encoded mp4s are
deterministic (``video_write``).
"""

from __future__ import annotations

import dataclasses
import io
import tarfile
from typing import Any

from tubelet.release.exports.common import Exporter, ExportError, VideoItem
from tubelet.release.exports.media import check_local_media, is_mp4_file, place_mp4
from tubelet.schemas import VideoRecord


class WebDatasetExporter(Exporter):
    """Writes tar shards (see the module docstring)."""

    stage_name = ".stage-webdataset"

    def add(self, item: VideoItem) -> None:
        check_local_media(item.video)
        self.stage_json(item, sample_json(item))
        self.objects[item.video.video_id] = {t.tubelet_id: t.tubelet_id for t in item.tubelets}
        self.place(item)
        self.tally.counts["boxes"] += sum(1 for t in item.tubelets for f in t.frames if f.visible)
        self.tally.counts["masks"] += sum(1 for t in item.tubelets for f in t.frames if f.mask_rle is not None)

    def finish(self) -> None:
        for split, samples in sorted(self.videos.items()):
            keys = sorted(samples)
            size = self.options.shard_size
            for n, start in enumerate(range(0, len(keys), size)):
                shard = self.out / f"{split}-{n:06d}.tar"
                with tarfile.open(shard, "w", format=tarfile.PAX_FORMAT) as tar:
                    for key in keys[start : start + size]:
                        self._add_sample(tar, split, key, samples[key])
                self.tally.counts["shards"] += 1
        self.drop_stage()

    def _add_sample(self, tar: tarfile.TarFile, split: str, key: str, video: VideoRecord) -> None:
        staged = self.staged(split, key)
        _add_member(tar, f"{key}.json", staged.read_bytes())
        staged.unlink()
        mp4 = staged.with_suffix(".mp4")
        copied = place_mp4(video, mp4)
        if copied != is_mp4_file(video):  # the json said otherwise
            raise ExportError(f"video {video.video_id}: {video.uri} changed while it was exported")
        with mp4.open("rb") as fh:
            _add_member(tar, f"{key}.mp4", fh, size=mp4.stat().st_size)
        mp4.unlink()
        self.tally.counts["samples"] += 1
        self.tally.counts["mp4_copied" if copied else "mp4_reencoded"] += 1


def sample_json(item: VideoItem) -> dict[str, Any]:
    """The ``json`` member of a video's sample."""
    video = dataclasses.asdict(item.video)
    del video["uri"]
    copied = is_mp4_file(item.video)
    video["media"] = {
        "member": f"{item.name}.mp4",
        "copied": copied,
        "codec": item.video.codec if copied else "h264",
        "rotation": item.video.rotation if copied else 0,  # a rotated video is re-encoded upright
    }
    return {
        "key": item.name,
        "video": video,
        "tubelets": [dataclasses.asdict(t) for t in item.tubelets],
        "entities": [dataclasses.asdict(e) for e in item.entities],
        "events": [dataclasses.asdict(e) for e in item.events],
        "instructions": [dataclasses.asdict(i) for i in item.instructions],
    }


def _add_member(tar: tarfile.TarFile, name: str, data: bytes | io.BufferedReader, size: int | None = None) -> None:
    """One regular file with fixed metadata, so the same content gives the same tar bytes."""
    info = tarfile.TarInfo(name)
    info.size = len(data) if isinstance(data, bytes) else int(size or 0)
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    tar.addfile(info, io.BytesIO(data) if isinstance(data, bytes) else data)
