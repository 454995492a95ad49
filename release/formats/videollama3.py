"""``videollama3``: the JSON that VideoRefer-VideoLLaMA3's trainer reads
(DAMO-NLP-SG/VideoRefer, ``videorefer_videollama3/train.py``, built on VideoLLaMA3's).

What its loader does with an item, and so what is written:
- ``video``: a list; a one-element list is a video joined to ``--data_folder`` (a file read with
  ffmpeg and decord, or a folder of frames); a bare string raises "Unsupported video format";
- ``conversations``: ``<video>`` in a human turn becomes the video input (added at the start when
  missing; we write it once, first);
- ``masks``: one ``{str(frame_idx): COCO RLE}`` per region, frame indices of the original video
  (decord decodes those frames for the region crops). Every mask takes the next ``<region>`` of the
  text, so an object gets exactly one mask ("single mask per object"): the region's first
  listed frame. An empty mask becomes the whole frame, so tubelets without masks get box-shaped
  ones (counted). An item without regions has no ``masks`` key (an empty list would not stack).

VideoLLaMA3's own trainer reads the same file (``video`` list, ``conversations``) and ignores
``masks``; there a region is the literal text ``<region>``.
"""

from __future__ import annotations

from typing import Any

from tubelet.release.formats.common import RenderInput, base_item, region_masks, with_region_tokens


def render(item: RenderInput) -> dict[str, Any]:
    conversation, regions = with_region_tokens(item, banned=("<image>", "<region>", "<REGION>"))
    video = item.video
    out = {**base_item(item, conversation), "video": [video.path], "height": video.height, "width": video.width}
    if regions:
        out["masks"] = [
            {str(frame.frame_idx): rle for frame, rle in region_masks(item, ref, tube, ref.frame_idx[:1])}
            for ref, tube in regions
        ]
    return out
