"""YouTube-VIS: one JSON per split, as the YouTube-VIS API (``pycocotools.ytvos.YTVOS``) reads it.

Layout (YouTube-VIS 2019/2021's own)::

    DIR/<split>.json
    DIR/<split>/JPEGImages/<seq>/00000.jpg   the frames (unless frames=False)

The JSON holds ``info``, ``licenses``, ``categories`` (``id``, ``name``, ``supercategory``;
ids 1..K by name, the same in every split), ``videos`` (``id``, ``width``, ``height``,
``length`` = the video's frame count, ``file_names`` = ``<seq>/<frame>.jpg`` for every
frame) and ``annotations``, one per tubelet with masks: ``id``, ``video_id``,
``category_id``, ``iscrowd`` 0, ``width``, ``height``, and three lists aligned with
``file_names``:

- ``segmentations``: the frame's mask as compressed COCO RLE (``{"size": [h, w],
  "counts": str}``, which ``YTVOS.annToRLE`` passes to pycocotools as it is), null where
  the tubelet has no mask on that frame;
- ``bboxes``: ``[x, y, w, h]`` of the stored ``box_xyxy`` on a visible frame, else null;
- ``areas``: the mask's pixel count, null where there is no mask.

Video ids are 1..V by sequence name within a split, annotation ids 1..A in video order
then ``common.object_order``; ``tubelet_export.json`` maps them back. Box-only tubelets
are left out with a warning (a VIS annotation is a mask); a visible frame without a mask
keeps its box and is counted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from tubelet.release.exports.common import Exporter, ExportOptions, Tally, VideoItem, frame_name, object_order, xywh
from tubelet.release.exports.media import write_indexed_frames
from tubelet.schemas import Tubelet
from tubelet.schemas.rle import rle_area


class YouTubeVisExporter(Exporter):
    """Writes ``<split>.json`` files and frame folders (see the module docstring)."""

    stage_name = ".stage-youtube-vis"

    def __init__(self, out: Path, options: ExportOptions, tally: Tally) -> None:
        super().__init__(out, options, tally)
        self.categories: set[str] = set()

    def add(self, item: VideoItem) -> None:
        video = item.video
        file_names = [f"{item.name}/{frame_name(i, video.n_frames, '.jpg')}" for i in range(video.n_frames)]
        annotations = []
        for tubelet in object_order(item.tubelets):
            if not any(f.mask_rle is not None for f in tubelet.frames):
                reason = "a box-only tubelet: a YouTube-VIS annotation is a mask"
                self.tally.leave_out(tubelet.tubelet_id, reason, "box_only")
                continue
            annotations.append(self._annotation(tubelet, video.n_frames))
            self.categories.add(tubelet.category)
        fragment = {
            "video": {"width": video.width, "height": video.height, "length": video.n_frames, "file_names": file_names},
            "annotations": annotations,
        }
        self.stage_json(item, fragment)
        self.place(item)
        if self.options.frames:
            images = self.out / item.split / "JPEGImages" / item.name
            self.tally.counts["frames_written"] += write_indexed_frames(video, images, self.options.jpeg_quality)

    def _annotation(self, tubelet: Tubelet, n_frames: int) -> dict[str, Any]:
        segmentations: list[Any] = [None] * n_frames
        bboxes: list[Any] = [None] * n_frames
        areas: list[Any] = [None] * n_frames
        for f in tubelet.frames:
            if not f.visible or not 0 <= f.frame_idx < n_frames:
                continue
            bboxes[f.frame_idx] = xywh(f.box_xyxy)
            self.tally.counts["boxes"] += 1
            if f.mask_rle is None:
                self.tally.counts["visible_frames_without_mask"] += 1
                continue
            segmentations[f.frame_idx] = {"size": list(f.mask_rle["size"]), "counts": f.mask_rle["counts"]}
            areas[f.frame_idx] = rle_area(f.mask_rle)
            self.tally.counts["masks_written"] += 1
        return {
            "category": tubelet.category,
            "tubelet_id": tubelet.tubelet_id,
            "width": tubelet.width,
            "height": tubelet.height,
            "iscrowd": 0,
            "segmentations": segmentations,
            "bboxes": bboxes,
            "areas": areas,
        }

    def finish(self) -> None:
        category_ids = {name: k for k, name in enumerate(sorted(self.categories), start=1)}
        categories = [{"id": k, "name": name, "supercategory": "object"} for name, k in category_ids.items()]
        for split, videos in sorted(self.videos.items()):
            order = sorted(videos)
            with (self.out / f"{split}.json").open("w", encoding="utf-8", newline="\n") as fh:
                _write_split(fh, split, categories, self._videos(split, order), self._annotations(split, order))
            self.tally.counts["json_files"] += 1
        self.drop_stage()

    def _fragments(self, split: str, order: list[str]) -> Iterator[tuple[int, str, dict[str, Any]]]:
        for video_id, name in enumerate(order, start=1):
            yield video_id, name, json.loads(self.staged(split, name).read_text(encoding="utf-8"))

    def _videos(self, split: str, order: list[str]) -> Iterator[dict[str, Any]]:
        for video_id, _name, fragment in self._fragments(split, order):
            yield {"id": video_id, **fragment["video"]}

    def _annotations(self, split: str, order: list[str]) -> Iterator[dict[str, Any]]:
        category_ids = {name: k for k, name in enumerate(sorted(self.categories), start=1)}
        ann_id = 0
        for video_id, name, fragment in self._fragments(split, order):
            mapping = self.objects.setdefault(self.videos[split][name].video_id, {})
            for ann in fragment["annotations"]:
                ann_id += 1
                mapping[str(ann_id)] = ann.pop("tubelet_id")
                yield {"id": ann_id, "video_id": video_id, "category_id": category_ids[ann.pop("category")], **ann}
                self.tally.counts["annotations"] += 1


def _write_split(
    fh: IO[str],
    split: str,
    categories: list[dict[str, Any]],
    videos: Iterator[dict[str, Any]],
    annotations: Iterator[dict[str, Any]],
) -> None:
    """One YouTube-VIS JSON, streamed (keys in sorted order, as ``json.dumps(sort_keys=True)`` writes them)."""
    info = {"description": f"tubelet export, split {split}", "version": "1.0"}
    fh.write('{"annotations":[')
    _write_items(fh, annotations)
    fh.write('],"categories":' + _compact(categories))
    fh.write(',"info":' + _compact(info) + ',"licenses":[],"videos":[')
    _write_items(fh, videos)
    fh.write("]}\n")


def _write_items(fh: IO[str], items: Iterator[dict[str, Any]]) -> None:
    for k, item in enumerate(items):
        fh.write(("," if k else "") + "\n" + _compact(item))


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
