"""``llava-video``: the JSON that LLaVA-NeXT's trainer reads for LLaVA-Video and LLaVA-OneVision
(LLaVA-VL/LLaVA-NeXT, ``llava/train/train.py`` ``LazySupervisedDataset``).

What its loader does with an item, and so what is written:
- ``video``: one path joined to ``--video_folder``, decoded with decord (frames sampled at
  ``--video_fps``, at most ``--frames_upbound``); a folder of frames is read only under a path
  holding "shareVideoGPTV", so items whose video is a frame folder are left out (counted);
- ``conversations``: the video's features go where ``<image>`` stands in the text; with no
  ``<image>`` they are dropped without a word, with two they are misplaced. So the first human
  turn opens with exactly one ``<image>``, and no other turn holds one;
- no region input: each ``<regionN>`` is written out as the object's box on its first listed
  frame and that frame's time ("the object at [x1, y1, x2, y2] at 1.25s").
"""

from __future__ import annotations

from typing import Any

from tubelet.release.formats.common import RenderInput, with_regions_in_words


def render(item: RenderInput) -> dict[str, Any]:
    return with_regions_in_words(item, "<image>", "<video>", "LLaVA-NeXT's loader")
