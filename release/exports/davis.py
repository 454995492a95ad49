"""DAVIS-2017 folders: one palette PNG of object ids per frame, the frames, the image sets.

Layout (as davis2017-evaluation's ``DAVIS`` class and tubelet's DAVIS importer read it)::

    DIR/ImageSets/2017/<split>.txt              one sequence name per line
    DIR/Annotations/<resolution>/<seq>/00000.png   every frame of the video, named by frame index
    DIR/JPEGImages/<resolution>/<seq>/00000.jpg    the frames (unless frames=False)

A mask PNG is mode ``P`` with the DAVIS palette (PASCAL VOC's colour map): value 0 is
background, ``k`` is object ``k``. Objects are the tubelets that have masks, numbered
1..N: their own ids when those are exactly 1..N (a DAVIS import keeps its palette
indices), else by first visible frame, then track id, then tubelet id
(``common.object_order``); the map is in ``tubelet_export.json``. Every frame gets a PNG
(an empty one where no object is), because the reader pairs each JPEG with a mask.

What a palette PNG cannot hold is counted, never silently lost:

- box-only tubelets (no mask on any frame) are left out, each with a warning;
- a visible frame without a mask (a box-only frame of a masked tubelet) has no pixels;
- where masks overlap, a pixel shows the object with the lower id (the one that appeared
  first); the pixels and frames this hides are counted, and a frame where an object
  loses every pixel shows it absent;
- past 254 objects in one video (255 is DAVIS's "void"), the later ones are left out.

davis2017-evaluation's semi-supervised reader counts a sequence's objects from the highest
id on its first frame; objects that appear later are counted in
``objects_after_first_frame``. The resolution folder is a name (default ``480p``):
frames and masks keep the video's size.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from tubelet.release.exports.common import (
    Exporter,
    ExportError,
    VideoItem,
    first_frame,
    frame_name,
    numbered,
    write_text,
)
from tubelet.release.exports.media import write_indexed_frames
from tubelet.schemas import Tubelet
from tubelet.schemas.rle import RLE, decode_rle, rle_size

#: Object ids a DAVIS palette PNG can hold (0 is background, 255 void).
MAX_OBJECTS = 254
IMAGE_SETS_YEAR = "2017"


def davis_palette() -> bytes:
    """The DAVIS palette: PASCAL VOC's colour map, whose bits of the index spread over R, G, B."""
    colours = bytearray()
    for index in range(256):
        r = g = b = 0
        c = index
        for bit in range(8):
            r |= (c & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        colours += bytes((r, g, b))
    return bytes(colours)


PALETTE = davis_palette()


class DavisExporter(Exporter):
    """Writes a DAVIS-2017 folder (see the module docstring)."""

    def add(self, item: VideoItem) -> None:
        video = item.video
        masked = self._masked(item.tubelets)
        ids = numbered(masked, keep="contiguous")
        for tubelet in masked:
            if ids[tubelet.tubelet_id] > MAX_OBJECTS:
                reason = f"video {video.video_id} has more than {MAX_OBJECTS} objects with masks"
                self.tally.leave_out(tubelet.tubelet_id, reason, "too_many_objects")
        kept = [t for t in masked if ids[t.tubelet_id] <= MAX_OBJECTS]
        self.objects[video.video_id] = {str(ids[t.tubelet_id]): t.tubelet_id for t in kept}
        self.tally.counts["objects"] += len(kept)
        self.tally.counts["objects_after_first_frame"] += sum(first_frame(t) > 0 for t in kept)

        per_frame = self._masks_by_frame(kept, ids, item)
        annotations = self.out / "Annotations" / self.options.resolution / item.name
        annotations.mkdir(parents=True, exist_ok=True)
        for frame_idx in range(video.n_frames):
            labels = self._labels(per_frame.get(frame_idx, []), video.height, video.width)
            _save_png(labels, annotations / frame_name(frame_idx, video.n_frames, ".png"))
        self.tally.counts["pngs_written"] += video.n_frames
        if self.options.frames:
            images = self.out / "JPEGImages" / self.options.resolution / item.name
            self.tally.counts["frames_written"] += write_indexed_frames(video, images, self.options.jpeg_quality)
        self.place(item)

    def _masked(self, tubelets: list[Tubelet]) -> list[Tubelet]:
        """The tubelets with a mask on some frame; the others are left out with a warning."""
        masked = []
        for tubelet in tubelets:
            if any(f.mask_rle is not None for f in tubelet.frames):
                masked.append(tubelet)
            else:
                reason = "a box-only tubelet: DAVIS annotations are masks"
                self.tally.leave_out(tubelet.tubelet_id, reason, "box_only")
        return masked

    def _masks_by_frame(
        self, tubelets: list[Tubelet], ids: dict[str, int], item: VideoItem
    ) -> dict[int, list[tuple[int, RLE]]]:
        """``{frame_idx: [(object id, mask)]}`` over the visible frames that have a mask."""
        video = item.video
        per_frame: dict[int, list[tuple[int, RLE]]] = defaultdict(list)
        for tubelet in tubelets:
            for f in tubelet.frames:
                if not f.visible:
                    continue
                if f.mask_rle is None:
                    self.tally.counts["visible_frames_without_mask"] += 1
                    continue
                if rle_size(f.mask_rle) != (video.height, video.width):
                    raise ExportError(
                        f"tubelet {tubelet.tubelet_id}: the mask of frame {f.frame_idx} is "
                        f"{rle_size(f.mask_rle)} (height, width), the video is {(video.height, video.width)}"
                    )
                if not 0 <= f.frame_idx < video.n_frames:
                    raise ExportError(
                        f"tubelet {tubelet.tubelet_id}: frame {f.frame_idx} is outside the video's {video.n_frames}"
                    )
                per_frame[f.frame_idx].append((ids[tubelet.tubelet_id], f.mask_rle))
        return per_frame

    def _labels(self, masks: list[tuple[int, RLE]], height: int, width: int) -> np.ndarray:
        """One frame's index map: lower ids painted last, so they win where masks overlap."""
        labels = np.zeros((height, width), dtype=np.uint8)
        decoded = [(oid, decode_rle(rle)) for oid, rle in sorted(masks, key=lambda m: -m[0])]
        for oid, mask in decoded:
            labels[mask] = oid
        if len(decoded) > 1:
            self._count_overlap(decoded, labels)
        self.tally.counts["masks_written"] += len(decoded)
        return labels

    def _count_overlap(self, decoded: list[tuple[int, np.ndarray]], labels: np.ndarray) -> None:
        """Count the pixels of each mask that show another object, and the masks that lost all."""
        hidden = 0
        for oid, mask in decoded:
            area = int(np.count_nonzero(mask))
            lost = area - int(np.count_nonzero(labels[mask] == oid))
            hidden += lost
            if lost and lost == area:
                self.tally.counts["object_frames_hidden_by_overlap"] += 1
        if hidden:
            self.tally.counts["overlap_pixels"] += hidden
            self.tally.counts["overlap_frames"] += 1

    def finish(self) -> None:
        for split, names in sorted(self.videos.items()):
            write_text(
                self.out / "ImageSets" / IMAGE_SETS_YEAR / f"{split}.txt", "".join(f"{n}\n" for n in sorted(names))
            )


def _save_png(labels: np.ndarray, path: Path) -> None:
    image = Image.frombytes("P", (labels.shape[1], labels.shape[0]), labels.tobytes())
    image.putpalette(PALETTE)
    image.save(path, format="PNG")
