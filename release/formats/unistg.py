"""``unistg``: Uni-STG style JSON lines, ``{"id", "video", "task_type", "question", "answer"}``, the
answer as "From <t> to <t>. At <t>: [x1, y1, x2, y2]." (SpaceVLLM's grounding text) or the
answer's text; boxes and times in the release's box and time formats."""

from __future__ import annotations

from typing import Any

from tubelet.annotators.instructions.derive import sub_times
from tubelet.annotators.instructions.renderers import to_unistg
from tubelet.release.formats.common import RenderInput


def render(item: RenderInput) -> dict[str, Any]:
    video, time = item.video, item.time
    out = to_unistg(item.inst, video.width, video.height, item.options.box_format, time)
    out["video"] = video.path
    if item.options.times != "seconds":
        out["question"] = sub_times(out["question"], time.show)
    return out
