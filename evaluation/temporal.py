"""Per-pair box and time metrics: mean box IoU, tIoU and vIoU.

Spans are sets of frames of the video's frame grid (``tracks.frame_grid``): a track's
span is every grid frame from its first to its last *visible* frame. Counting grid
frames rather than seconds keeps the metrics exact for sparsely annotated videos.

- tIoU = |S_p ∩ S_g| / |S_p ∪ S_g| (temporal IoU of the visible spans);
- vIoU (HC-STVG: Tang et al., "Human-centric Spatio-Temporal Video Grounding With
  Visual Transformers", 2021, eq. 7): vIoU = (1/|S_u|) Σ_{t ∈ S_i} IoU(b̂_t, b_t), with
  S_i / S_u the intersection / union of the predicted and ground-truth spans. HC-STVG
  boxes exist on every frame of a span; ours may be invisible inside it (occlusion), so
  a frame of S_i scores 1 when both tracks agree the object is out of view, 0 when only
  one sees it, else the box IoU (so a ground truth scores 1 against itself);
- box IoU: mean over the frames where the ground truth is visible of the IoU with the
  predicted box there (0 where the prediction has none).
"""

from __future__ import annotations

from collections.abc import Sequence

from tubelet.evaluation.tracks import Track
from tubelet.schemas.geometry import box_iou


def span(track: Track | None, grid: Sequence[int]) -> set[int]:
    """Grid frames from the track's first to its last visible frame (empty if never visible)."""
    if track is None:
        return set()
    visible = track.visible
    if not visible:
        return set()
    first, last = visible[0], visible[-1]
    return {f for f in grid if first <= f <= last}


def frame_box_iou(pred: Track | None, gt: Track, frame: int) -> float:
    """Box IoU on one frame; 0 when either track has no visible box there."""
    g = gt.box_at(frame)
    p = pred.box_at(frame) if pred is not None else None
    if g is None or p is None:
        return 0.0
    return float(box_iou(p, g))


def mean_box_iou(pred: Track | None, gt: Track) -> float | None:
    """Mean box IoU over the frames where the ground truth is visible (None if it never is)."""
    frames = gt.visible
    if not frames:
        return None
    return sum(frame_box_iou(pred, gt, f) for f in frames) / len(frames)


def tiou(pred: Track | None, gt: Track, grid: Sequence[int]) -> float | None:
    """Temporal IoU of the visible spans (None when neither track is ever visible)."""
    s_p, s_g = span(pred, grid), span(gt, grid)
    union = s_p | s_g
    if not union:
        return None
    return len(s_p & s_g) / len(union)


def viou(pred: Track | None, gt: Track, grid: Sequence[int]) -> float | None:
    """HC-STVG vIoU: box IoU summed over S_i, divided by |S_u| (None when S_u is empty)."""
    s_p, s_g = span(pred, grid), span(gt, grid)
    union = s_p | s_g
    if not union:
        return None
    return sum(_span_frame_score(pred, gt, f) for f in s_p & s_g) / len(union)


def _span_frame_score(pred: Track, gt: Track, frame: int) -> float:
    if pred.box_at(frame) is None and gt.box_at(frame) is None:
        return 1.0
    return frame_box_iou(pred, gt, frame)
