"""The VLM timeline: windows over a tubelet's life, one structured question per window.

Each window's frames are decoded small, the tubelet is outlined in them, and the model
answers ``{"action": str, "label": str}``. Adjacent windows with the same label become
one item; a window whose answer stays malformed is returned as a failure for the
stage's rejects (``<tubelet_id>@<start_s>-<end_s>``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tubelet.annotators.language.prompts import PromptTemplate
from tubelet.annotators.language.timeline_lite import TimelineItem, visible_runs
from tubelet.annotators.language.visual_prompt import VisualPromptConfig, frame_region
from tubelet.annotators.language.visual_prompt import highlight as mark
from tubelet.schemas import Tubelet, TubeletFrame

ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "action": {"type": "string", "minLength": 1, "maxLength": 200},
        "label": {"type": "string", "minLength": 1, "maxLength": 60},
    },
    "required": ["action", "label"],
    "additionalProperties": False,
}

#: Placeholders a window template may use.
TEMPLATE_FIELDS = frozenset({"category", "tubelet_id", "track_id", "start_s", "end_s", "n_frames", "window"})

#: The released question for one window. Change its text or schema only with its version.
ACTION_WINDOW = PromptTemplate(
    name="action_window",
    version="1",
    system="You describe what objects do in videos, briefly. You only state what is visible.",
    text=(
        "These {n_frames} frames are in time order, from {start_s:.2f} s to {end_s:.2f} s of a video. "
        "The {category} marked with a red outline and tint is the object of interest. What does it do "
        'during this time? Answer in JSON with "action": a short phrase starting with a verb (e.g. '
        '"walks to the left", "stands still") and "label": one lowercase snake_case action label '
        '(e.g. "walk", "stand_still", "jump").'
    ),
    schema=ANSWER_SCHEMA,
)


def window_template(text: str | None = None) -> PromptTemplate:
    """``ACTION_WINDOW``, or a custom text with the same schema (version: its fingerprint).

    Raises ValueError when ``text`` uses a placeholder outside ``TEMPLATE_FIELDS``.
    """
    if text is None:
        return ACTION_WINDOW
    custom = PromptTemplate(
        name="action_window_custom", version="0", text=text, schema=ANSWER_SCHEMA, system=ACTION_WINDOW.system
    )
    unknown = sorted(custom.fields - TEMPLATE_FIELDS)
    if unknown:
        raise ValueError(
            f"timeline prompt uses unknown placeholders {unknown}; placeholders: {', '.join(sorted(TEMPLATE_FIELDS))}"
        )
    return PromptTemplate(
        name=custom.name, version=custom.fingerprint, text=text, schema=ANSWER_SCHEMA, system=ACTION_WINDOW.system
    )


@dataclass
class Window:
    """One question: the tubelet's visible frames inside ``[start, start + window_s)``."""

    index: int  # position among the tubelet's windows (adjacency for merging)
    frames: list[TubeletFrame]  # visible frames inside the window
    sampled: list[TubeletFrame] = field(default_factory=list)  # the ones shown to the model

    @property
    def start_s(self) -> float:
        return self.frames[0].t_s

    @property
    def end_s(self) -> float:
        return self.frames[-1].t_s


def window_item(tubelet_id: str, window: Window) -> str:
    """The reject item of a window: ``<tubelet_id>@<start_s>-<end_s>`` (seconds, 3 decimals)."""
    return f"{tubelet_id}@{window.start_s:.3f}-{window.end_s:.3f}"


def make_windows(
    tubelet: Tubelet, window_s: float, stride_s: float | None = None, frames_per_window: int = 4
) -> list[Window]:
    """Windows of ``window_s`` every ``stride_s`` (default: back to back) over each visible
    run of ``tubelet``; the last window of a run is the first that reaches its end.

    A window never spans a gap (the object was out of view): each run starts its own
    grid, and window indices skip one across a gap so the runs' windows are never
    adjacent (never merged).
    """
    if window_s <= 0 or (stride_s is not None and stride_s <= 0) or frames_per_window < 1:
        raise ValueError("window_s and stride_s must be > 0, frames_per_window >= 1")
    stride = stride_s or window_s
    windows: list[Window] = []
    index = 0
    eps = 1e-9
    for run in visible_runs(tubelet):
        times = np.array([f.t_s for f in run])
        t0, t1 = times[0], times[-1]
        k = 0
        while True:
            start = t0 + k * stride
            end = start + window_s
            last = end > t1 + eps
            inside = (times >= start - eps) & ((times < end - eps) | last)
            frames = [f for f, keep in zip(run, inside) if keep]
            if frames:
                picks = np.unique(np.round(np.linspace(0, len(frames) - 1, min(frames_per_window, len(frames)))))
                windows.append(Window(index, frames, [frames[int(i)] for i in picks]))
            index += 1
            if last:
                break
            k += 1
        index += 1  # the gap
    return windows


def render_prompt(template: PromptTemplate, tubelet: Tubelet, window: Window) -> str:
    """Fill ``template``'s placeholders (a subset of ``TEMPLATE_FIELDS``) for one window."""
    values = dict(
        category=tubelet.category,
        tubelet_id=tubelet.tubelet_id,
        track_id=tubelet.track_id,
        start_s=window.start_s,
        end_s=window.end_s,
        n_frames=len(window.sampled),
        window=window.index,
    )
    return template.render(**{k: v for k, v in values.items() if k in template.fields})


def scaled_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) with the longer side at most ``max_side`` (never upscaled), even."""
    scale = min(1.0, max_side / max(width, height))
    return max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)


def highlight(
    image: np.ndarray,
    frame: TubeletFrame,
    frame_size: tuple[int, int],
    config: VisualPromptConfig = VisualPromptConfig(),
) -> np.ndarray:
    """A copy of ``image`` with the tubelet marked as the entity stage marks it
    (``visual_prompt``: tinted and outlined mask, else box). ``frame_size`` is the
    tubelet's (width, height); ``image`` may be decoded smaller."""
    mask = frame_region(frame, image.shape, frame_size)
    return mark(image, mask, config.colour, config.tint_alpha, config.outline_px)


def normalise_label(label: str) -> str:
    """``"Walk Left"`` -> ``"walk_left"``: labels compare equal across windows."""
    return re.sub(r"[^a-z0-9]+", "_", label.strip().lower()).strip("_") or "unknown"


def merge_answers(windows: Iterable[Window], answers: dict[int, dict]) -> list[TimelineItem]:
    """One item per run of adjacent answered windows with the same label.

    ``answers`` maps window index -> ``{"action", "label"}``; an unanswered window (a
    reject) breaks a run. The item spans the first window's first frame to the last
    window's last frame, and its text is the first window's action.
    """
    items: list[TimelineItem] = []
    previous: int | None = None
    for window in windows:
        answer = answers.get(window.index)
        if answer is None:
            previous = None
            continue
        label = normalise_label(answer["label"])
        a, b = window.frames[0], window.frames[-1]
        if previous is not None and previous == window.index - 1 and items[-1].label == label:
            items[-1].end_frame, items[-1].end_s = max(items[-1].end_frame, b.frame_idx), max(items[-1].end_s, b.t_s)
        else:
            items.append(TimelineItem(a.frame_idx, b.frame_idx, a.t_s, b.t_s, label, answer["action"].strip()))
        previous = window.index
    return items
