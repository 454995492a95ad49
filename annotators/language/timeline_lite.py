"""Timeline items computed from tubelet rows alone: motion segments and presence events.

``presence_items`` (appears / leaves / re-enters) need no model and are used by both
timeline modes; ``motion_items`` is the lite mode's motion-state segmentation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tubelet.annotators.language.motion_states import (
    MotionConfig,
    RunMotion,
    edge_towards,
    segment_run,
    touched_edges,
)
from tubelet.schemas import Tubelet, TubeletFrame

#: Sort order of items that start on the same frame: arrivals, then what the object
#: does, then departures.
KIND_ORDER = {"appear": 0, "reenter": 0, "segment": 1, "leave": 2}

_EDGE_FROM = {"left": "from the left", "right": "from the right", "top": "from the top", "bottom": "from the bottom"}
_EDGE_TO = {"left": "to the left", "right": "to the right", "top": "at the top", "bottom": "at the bottom"}


@dataclass
class TimelineItem:
    """One future ``Event`` of one tubelet, before ids are given."""

    start_frame: int
    end_frame: int
    start_s: float
    end_s: float
    label: str
    text: str
    kind: str = "segment"  # "segment", "appear", "leave", "reenter"

    def sort_key(self) -> tuple[float, int, float, int, str]:
        return (self.start_s, KIND_ORDER.get(self.kind, 1), self.end_s, self.start_frame, self.label)


def visible_runs(tubelet: Tubelet) -> list[list[TubeletFrame]]:
    """Consecutive visible frames; a run ends at an invisible frame or a frame-index gap."""
    runs: list[list[TubeletFrame]] = []
    previous: TubeletFrame | None = None
    for frame in sorted(tubelet.frames, key=lambda f: f.frame_idx):
        if frame.visible:
            contiguous = previous is not None and previous.visible and frame.frame_idx == previous.frame_idx + 1
            if contiguous:
                runs[-1].append(frame)
            else:
                runs.append([frame])
        previous = frame
    return runs


def run_motion(run: list[TubeletFrame], tubelet: Tubelet, config: MotionConfig) -> RunMotion:
    """``segment_run`` on one visible run of ``tubelet``."""
    times = np.array([f.t_s for f in run], dtype=float)
    boxes = np.array([f.box_xyxy for f in run], dtype=float)
    return segment_run(times, boxes, tubelet.width, tubelet.height, config)


def motion_items(
    tubelet: Tubelet, config: MotionConfig = MotionConfig(), motions: list[RunMotion] | None = None
) -> list[TimelineItem]:
    """Motion segments (``still`` / ``move_<direction>``) of every visible run."""
    runs = visible_runs(tubelet)
    motions = motions if motions is not None else [run_motion(r, tubelet, config) for r in runs]
    items = []
    for run, motion in zip(runs, motions):
        for seg in motion.segments:
            a, b = run[seg.start], run[seg.end]
            items.append(TimelineItem(a.frame_idx, b.frame_idx, a.t_s, b.t_s, seg.label, seg.text(config)))
    return items


def presence_items(
    tubelet: Tubelet, n_frames: int, config: MotionConfig = MotionConfig(), motions: list[RunMotion] | None = None
) -> list[TimelineItem]:
    """``appear`` (first visible frame, unless the video's first), ``leave`` (last visible
    frame of each run, unless the video's last) and ``reenter`` (first visible frame after
    a gap). A box touching a border there says which: "leaves the frame to the right"."""
    runs = visible_runs(tubelet)
    if not runs:
        return []
    motions = motions if motions is not None else [run_motion(r, tubelet, config) for r in runs]
    items = []
    for k, (run, motion) in enumerate(zip(runs, motions)):
        first, last = run[0], run[-1]
        if k > 0 or first.frame_idx > 0:
            edges = touched_edges(first.box_xyxy, tubelet.width, tubelet.height, config.edge_margin)
            # entering: the object moves away from the border it came through
            edge = edge_towards(edges, -motion.velocity[0] if len(motion.velocity) else None)
            if k == 0:
                text = f"enters the frame {_EDGE_FROM[edge]}" if edge else "appears"
                label, kind = "appear", "appear"
            else:
                text = f"re-enters the frame {_EDGE_FROM[edge]}" if edge else "reappears"
                label, kind = "reenter", "reenter"
            items.append(TimelineItem(first.frame_idx, first.frame_idx, first.t_s, first.t_s, label, text, kind))
        if last.frame_idx < n_frames - 1:
            edges = touched_edges(last.box_xyxy, tubelet.width, tubelet.height, config.edge_margin)
            edge = edge_towards(edges, motion.velocity[-1] if len(motion.velocity) else None)
            text = f"leaves the frame {_EDGE_TO[edge]}" if edge else "disappears from view"
            items.append(TimelineItem(last.frame_idx, last.frame_idx, last.t_s, last.t_s, "leave", text, "leave"))
    return items


def lite_items(tubelet: Tubelet, n_frames: int, config: MotionConfig = MotionConfig()) -> list[TimelineItem]:
    """The whole lite timeline of one tubelet, ordered by start."""
    runs = visible_runs(tubelet)
    motions = [run_motion(r, tubelet, config) for r in runs]
    items = motion_items(tubelet, config, motions) + presence_items(tubelet, n_frames, config, motions)
    return sorted(items, key=TimelineItem.sort_key)
