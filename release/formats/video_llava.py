"""``video-llava``: the JSON that Video-LLaVA's trainer reads
(PKU-YuanGroup/Video-LLaVA, ``videollava/train/train.py`` ``LazySupervisedDataset``).

What its loader does with an item, and so what is written:
- ``video``: a path (or a list of at most one) joined to ``--video_folder``, decoded by the
  LanguageBind video processor (decord or OpenCV, ``num_frames`` = 8 frames spread evenly); a
  folder of frames cannot be decoded, so such items are left out (counted);
- ``conversations``: a human turn that starts with ``<video>`` may hold at most one; every
  ``<video>`` becomes ``num_frames`` ``<image>`` tokens, one per sampled frame, and every
  ``<image>`` in the text needs an image. So the first human turn opens with exactly one
  ``<video>``, and no turn holds ``<image>``;
- no region input: each ``<regionN>`` is written out as the object's box on its first listed
  frame and that frame's time.
"""

from __future__ import annotations

from typing import Any

from tubelet.release.formats.common import RenderInput, with_regions_in_words


def render(item: RenderInput) -> dict[str, Any]:
    return with_regions_in_words(item, "<video>", "<image>", "Video-LLaVA's video processor")
