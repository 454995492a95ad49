"""``videorefer`` (alias ``strefer``): the JSON that VideoRefer's first trainer reads
(DAMO-NLP-SG/VideoRefer, ``videorefer/train.py``, VideoLLaMA2-based; Strefer uses the same shape).

What its loader does with an item, and so what is written:
- ``video``: one path, joined to ``--data_folder``; a video file (decord) or a folder of frames
  (sorted file names, index = frame number);
- ``conversations``: human/gpt turns; ``<video>`` opens the first human turn; each ``<region>``
  token takes the next ``annotation`` entry's mask features, in order;
- ``annotation[i]``: ``{str(frame_idx): {"segmentation": COCO RLE, "bbox"}}``, frame indices of
  the original video (the loader decodes exactly those frames); a ``null`` segmentation becomes an
  all-zero mask, so a region without masks (box-only tubelets) gets box-shaped masks here instead
  (counted); an item without regions has no ``annotation`` (the loader then uses frame 0).
"""

from __future__ import annotations

from typing import Any

from tubelet.release.formats.common import RenderInput, base_item, region_masks, with_region_tokens


def render(item: RenderInput) -> dict[str, Any]:
    conversation, regions = with_region_tokens(item, banned=("<image>", "<region>"))
    video = item.video
    out = {**base_item(item, conversation), "video": video.path, "height": video.height, "width": video.width}
    if regions:
        out["annotation"] = [
            {
                str(frame.frame_idx): {"segmentation": rle, "bbox": list(frame.box_xyxy)}
                for frame, rle in region_masks(item, ref, tube, ref.frame_idx)
            }
            for ref, tube in regions
        ]
    return out
