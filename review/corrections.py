"""Which frames of a tubelet a reviewer corrected, and the tubelet put back together (pure).

Label Studio shows a track as keyframes and interpolates every frame between two of
them. A reviewer who moves one keyframe therefore changes the frames from the keyframe
before it to the keyframe after it, and nothing else. So a pull:

* calls a reviewed keyframe an **anchor** when its box is the tubelet's own box on that
  frame (within the percentages' rounding: push writes each keyframe as the row's box in
  percent to 4 decimals) — the reviewer left it where the push put it — and an **edit**
  otherwise (moved, added, or placed where the object was out of view);
* calls the frames between two neighbouring keyframes (and before the first, after the
  last) a **segment**; a segment is *touched* when one of its keyframes is an edit or
  one of its frames differs from the tubelet by more than the push tolerance (that
  catches a deleted keyframe, a track cut short or extended, a visibility change);
* corrects the frames of touched segments plus the edit keyframes: runs of consecutive
  such frames are the **spans**, bounded by anchors or the track's ends. A span takes the
  reviewer's boxes (rounded to 0.01 px, so percentages leave no float noise) and is
  re-tracked from its edits forwards to the next anchor and backwards to the previous
  one (``retrack``). Every other row is kept as it was: the same box bit for bit, the
  same mask and score.

``splice`` puts the tubelet back together from its kept rows and its spans' new rows.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from tubelet.review.keyframes import PERCENT_DECIMALS
from tubelet.review.results import ReviewedTrack
from tubelet.schemas.records import Tubelet, TubeletFrame

BOX_DECIMALS = 2  # reviewed boxes are stored to 0.01 px: finer than any reviewer can place one
ROUNDING_PX = 0.5 * 10**-BOX_DECIMALS  # what storing a reviewed box to 0.01 px moves it by
LS_ROUNDING_PX = 0.05  # slack for Label Studio's percentages on interpolated frames (as push allows)
# ``extra`` lists aligned with ``frames`` (import:mot); re-aligned when frames change
FRAME_ALIGNED_EXTRA = ("visibility", "consider", "mot_classes")

Box = list[float]


@dataclass
class Span:
    """One run of corrected frames of a tubelet."""

    boxes: dict[int, Box | None]  # frame -> the reviewer's box (None: out of view), ascending
    prompts: list[int]  # where the tracker is prompted: the edits inside, else the first visible frame

    @property
    def frames(self) -> list[int]:
        return list(self.boxes)

    @property
    def visible(self) -> list[int]:
        return [f for f, box in self.boxes.items() if box is not None]


@dataclass
class Retracked:
    """A re-tracked tubelet (``tubelet.review.retrack``), and why each visible frame left
    without a mask has none."""

    tubelet: Tubelet
    missing: dict[int, str]  # frame -> reason, for every visible frame without a mask


@dataclass
class Correction:
    """What a reviewed track changes in a tubelet: nothing when ``spans`` is empty."""

    spans: list[Span] = field(default_factory=list)

    @property
    def frames(self) -> list[int]:
        return [f for span in self.spans for f in span.boxes]


def find_corrections(tube: Tubelet, track: ReviewedTrack, *, tolerance_px: float) -> Correction:
    """The spans of ``tube`` that ``track`` (the reviewer's final state) corrects."""
    if not track.boxes:
        return Correction()
    rows = {f.frame_idx: f for f in tube.frames}
    reviewed = _grid(tube, track)
    keys = sorted(set(track.keyframes) & set(reviewed))
    anchors = {k for k in keys if _is_anchor(rows.get(k), reviewed[k], tube)}
    limit = tolerance_px + LS_ROUNDING_PX
    touched: set[int] = set()  # segment numbers: 0 before the first keyframe, n after the n-th
    for frame, box in reviewed.items():
        if frame in keys:
            continue
        segment = bisect.bisect_left(keys, frame)
        if _differs(rows.get(frame), box, limit):
            touched.add(segment)
    for n, key in enumerate(keys):
        if key not in anchors:  # an edit changes the frames on both sides of it
            touched |= {n, n + 1}
    corrected = [
        f
        for f in reviewed
        if (f not in keys and bisect.bisect_left(keys, f) in touched) or (f in keys and f not in anchors)
    ]
    spans = []
    for run in _runs(list(reviewed), set(corrected)):
        boxes = {f: _rounded(reviewed[f]) for f in run}
        visible = [f for f in run if boxes[f] is not None]
        edits = [k for k in keys if k in boxes and k not in anchors and boxes[k] is not None]
        spans.append(Span(boxes, edits or visible[:1]))
    return Correction(spans)


def _grid(tube: Tubelet, track: ReviewedTrack) -> dict[int, Box | None]:
    """The reviewer's box (None: not shown) on every frame a corrected tubelet may have a row on.

    That is the tubelet's own frames, the reviewer's keyframes, and where the reviewer
    extended the track past the tubelet's frames, frames at the tubelet's stride.
    """
    listed = sorted(f.frame_idx for f in tube.frames)
    grid = set(listed) | set(track.keyframes)
    if listed:
        steps = [b - a for a, b in zip(listed, listed[1:]) if b > a]
        stride, lo, hi = (min(steps) if steps else 1), listed[0], listed[-1]
        grid |= {f for f in track.boxes if not lo <= f <= hi and (f - lo) % stride == 0}
    else:  # a track the reviewer drew: every frame it is shown on
        grid |= set(track.boxes)
    return {f: track.boxes.get(f) for f in sorted(grid)}


def _is_anchor(row: TubeletFrame | None, box: Box | None, tube: Tubelet) -> bool:
    """Whether a keyframe's box is the row's own (what push wrote there), up to rounding."""
    if row is None or not row.visible or box is None:
        return False
    # percent to PERCENT_DECIMALS on x and width each, so x2 = x + width carries two roundings
    sizes = (tube.width, tube.height, tube.width, tube.height)
    return all(
        abs(a - b) <= max(ROUNDING_PX, 2 * 0.5 * 10**-PERCENT_DECIMALS / 100 * size) + 1e-6
        for a, b, size in zip(row.box_xyxy, box, sizes)
    )


def _differs(row: TubeletFrame | None, box: Box | None, limit: float) -> bool:
    before = list(row.box_xyxy) if row is not None and row.visible else None
    if before is None or box is None:
        return (before is None) != (box is None)
    return max(abs(a - b) for a, b in zip(before, box)) > limit


def _runs(frames: Sequence[int], chosen: set[int]) -> list[list[int]]:
    """Maximal runs of ``chosen`` frames that are neighbours in ``frames``."""
    runs: list[list[int]] = []
    previous_chosen = False
    for f in frames:
        if f in chosen:
            if previous_chosen:
                runs[-1].append(f)
            else:
                runs.append([f])
        previous_chosen = f in chosen
    return runs


def _rounded(box: Sequence[float] | None) -> Box | None:
    return None if box is None else [round(float(v), BOX_DECIMALS) + 0.0 for v in box]


def splice(tube: Tubelet, new_rows: Mapping[int, TubeletFrame]) -> Tubelet:
    """``tube`` with ``new_rows`` (the spans' frames) in place of its own rows on those
    frames; its other rows are kept as they are. Out-of-view new rows carry the last
    visible box before them (the first after, when none is before), as the dataset does;
    frame-aligned ``extra`` lists follow the frames; the score is the visible frames' mean."""
    rows = {f.frame_idx: f for f in tube.frames}
    frames = [new_rows.get(f, rows.get(f)) for f in sorted(set(rows) | set(new_rows))]
    merged: list[TubeletFrame] = [f for f in frames if f is not None]
    visible_boxes = [(f.frame_idx, f.box_xyxy) for f in merged if f.visible]
    for i, row in enumerate(merged):
        if row.visible or row.frame_idx not in new_rows or not visible_boxes:
            continue
        before = [box for frame, box in visible_boxes if frame < row.frame_idx]
        held = before[-1] if before else visible_boxes[0][1]
        merged[i] = replace(row, box_xyxy=list(held), mask_rle=None, score=None, amodal_xyxy=None)
    extra = dict(tube.extra)
    for key in FRAME_ALIGNED_EXTRA:
        values = extra.get(key)
        if isinstance(values, list) and len(values) == len(tube.frames):
            by_frame = {f.frame_idx: v for f, v in zip(tube.frames, values)}
            extra[key] = [by_frame.get(f.frame_idx) for f in merged]
    extra["reviewed"] = True
    scores = [f.score for f in merged if f.visible and f.score is not None]
    score = sum(scores) / len(scores) if scores else tube.score
    return replace(tube, frames=merged, score=score, extra=extra)


def clip_box(box: Sequence[float] | None, width: int, height: int) -> tuple[Box | None, Box | None]:
    """The box clipped to the frame (None when nothing of it is inside) and the amodal box
    (the box as given when it reaches outside the frame, else None)."""
    if box is None:
        return None, None
    b = [float(v) for v in box]
    if len(b) != 4 or not all(math.isfinite(v) for v in b):
        raise ValueError(f"a reviewed box must be 4 finite numbers, got {box!r}")
    c = [
        min(max(b[0], 0.0), width),
        min(max(b[1], 0.0), height),
        min(max(b[2], 0.0), width),
        min(max(b[3], 0.0), height),
    ]
    if not (c[0] < c[2] and c[1] < c[3]):
        return None, None
    return c, (b if b != c else None)
