"""Identity and detection metrics from per-frame boxes.

- CLEAR MOT (MOTA, MOTP) — Bernardin & Stiefelhagen, "Evaluating Multiple Object
  Tracking Performance: The CLEAR MOT Metrics" (2008): MOTA = 1 − (FN + FP + IDSW) / GT;
- IDF1 / IDP / IDR — Ristani et al., "Performance Measures and a Data Set for
  Multi-Target, Multi-Camera Tracking" (2016): IDF1 = 2 IDTP / (2 IDTP + IDFP + IDFN);
- precision / recall of the CLEAR MOT matching; motmetrics' MOTP is the mean distance
  ``1 − IoU`` of the matched boxes (0 is perfect), not the IoU.

All of these are computed by ``motmetrics`` (py-motmetrics): this module only feeds it
one frame at a time — the ground-truth and predicted objects visible on that frame and
their distance ``1 − box IoU``, with pairs below the IoU threshold marked impossible
(NaN), as ``motmetrics.distances.iou_matrix`` does. That helper itself is not called:
motmetrics 1.4.0 uses ``np.asfarray``, which numpy 2 removed.

Ground-truth frames marked ignored (MOT's consider = 0, see ``tracks``) are don't-care
regions, in the manner of TrackEval's MOT preprocessing: on each frame, predictions are
matched one-to-one (Hungarian on IoU ≥ the threshold) to all ground-truth boxes, those
matched to an ignored box are removed, and ignored boxes are not objects. This is the
default protocol's convention, not the official one: TrackEval removes only predictions
on distractor classes (static person, reflection, person on vehicle, distractor), counts
one on a car or a zero-marked pedestrian as a false positive, and scores unclipped and
fully occluded boxes (``motchallenge`` does that); here every non-considered box is a
don't-care and only visible boxes clipped to the frame count, so a ground truth scores 1
against itself.

Box recall at an IoU threshold is a detection measure, independent of identities: on
each frame, ground-truth and predicted boxes are matched one-to-one (Hungarian on IoU,
scipy), and a ground-truth box is recalled when its match reaches the threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tubelet.evaluation.tracks import Track
from tubelet.schemas.geometry import box_iou

#: motmetrics metric names → the keys this package reports.
MOT_METRICS = {
    "mota": "mota",
    "motp": "motp",
    "idf1": "idf1",
    "idp": "idp",
    "idr": "idr",
    "precision": "precision",
    "recall": "recall",
    "num_switches": "id_switches",
    "num_false_positives": "false_positives",
    "num_misses": "misses",
    "num_objects": "gt_boxes",
    "num_predictions": "pred_boxes",
    "mostly_tracked": "mostly_tracked",
    "mostly_lost": "mostly_lost",
}


def _boxes(tracks: Sequence[Track], frame: int, kind: str) -> tuple[list[int], np.ndarray]:
    """Indices and boxes of the tracks with a box of ``kind`` on ``frame``: "visible"
    (predictions), "counted" or "ignored" (ground truth)."""
    ids, boxes = [], []
    for k, t in enumerate(tracks):
        b = (
            t.box_at(frame)
            if kind == "visible"
            else t.counted_box_at(frame)
            if kind == "counted"
            else t.ignored_box_at(frame)
        )
        if b is not None:
            ids.append(k)
            boxes.append(b)
    return ids, np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


@dataclass(frozen=True)
class ScoredFrame:
    """What one frame is scored on: the ground-truth boxes to find and the predicted boxes
    left once ignored ground truth absorbed its matches (indices into the video's tracks)."""

    frame: int
    gt_ids: list[int]
    gt_boxes: np.ndarray
    pred_ids: list[int]
    pred_boxes: np.ndarray


def frame_boxes(preds: Sequence[Track], gts: Sequence[Track], frame: int, iou: float) -> ScoredFrame:
    """The boxes to score on ``frame``: ignored ground truth left out, with the predictions
    it absorbs (see the module docstring)."""
    from scipy.optimize import linear_sum_assignment  # scipy is slow to import: only where it is used

    g_ids, g_boxes = _boxes(gts, frame, "counted")
    p_ids, p_boxes = _boxes(preds, frame, "visible")
    _, ignored = _boxes(gts, frame, "ignored")
    if len(ignored) and len(p_ids):
        every = np.concatenate([g_boxes, ignored])
        ious = np.asarray(box_iou(every, p_boxes))
        rows, cols = linear_sum_assignment(ious, maximize=True)
        drop = {int(c) for r, c in zip(rows, cols) if r >= len(g_boxes) and ious[r, c] >= iou}
        keep = [k for k in range(len(p_ids)) if k not in drop]
        p_ids, p_boxes = [p_ids[k] for k in keep], p_boxes[keep]
    return ScoredFrame(frame, g_ids, g_boxes, p_ids, p_boxes)


def scored_frames(
    preds: Sequence[Track], gts: Sequence[Track], grid: Sequence[int], iou: float = 0.5
) -> list[ScoredFrame]:
    """``frame_boxes`` of every grid frame: computed once, read by every metric."""
    return [frame_boxes(preds, gts, frame, iou) for frame in grid]


def accumulate(frames: Sequence[ScoredFrame], iou: float = 0.5) -> Any:
    """A ``motmetrics.MOTAccumulator`` holding one update per scored frame.

    Object ids are the tracks' indices (motmetrics stores ids as floats), ground truth
    and predictions in separate id spaces as motmetrics expects.
    """
    import motmetrics as mm  # imported here: only evaluation needs it

    acc = mm.MOTAccumulator(auto_id=False)
    for f in frames:
        dist = np.empty((len(f.gt_ids), len(f.pred_ids)), dtype=np.float64)
        if f.gt_ids and f.pred_ids:
            dist = 1.0 - np.asarray(box_iou(f.gt_boxes, f.pred_boxes))
            dist[dist > 1.0 - iou + 1e-12] = np.nan  # below the IoU threshold: cannot match
        acc.update(f.gt_ids, f.pred_ids, dist, frameid=f.frame)
    return acc


def identity_metrics(accumulators: Sequence[Any], names: Sequence[str]) -> dict[str, dict[str, float]]:
    """motmetrics' summary per accumulator plus ``"OVERALL"`` (counts summed over videos)."""
    import motmetrics as mm

    if not accumulators:
        return {}
    host = mm.metrics.create()
    summary = host.compute_many(list(accumulators), names=list(names), metrics=list(MOT_METRICS), generate_overall=True)
    out: dict[str, dict[str, float]] = {}
    for name, row in summary.iterrows():
        out[str(name)] = {MOT_METRICS[k]: _number(k, row[k]) for k in MOT_METRICS}
    return out


#: motmetrics metrics that are counts (reported as integers).
_COUNTS = {
    "num_switches",
    "num_false_positives",
    "num_misses",
    "num_objects",
    "num_predictions",
    "mostly_tracked",
    "mostly_lost",
}


def _number(name: str, value: Any) -> float | int:
    return int(value) if name in _COUNTS else float(value)


def box_recall_counts(frames: Sequence[ScoredFrame], iou: float = 0.5) -> tuple[int, int]:
    """``(recalled, total)`` ground-truth boxes over the scored frames."""
    from scipy.optimize import linear_sum_assignment  # scipy is slow to import: only where it is used

    recalled = total = 0
    for f in frames:
        total += len(f.gt_boxes)
        if len(f.gt_boxes) == 0 or len(f.pred_boxes) == 0:
            continue
        ious = np.asarray(box_iou(f.gt_boxes, f.pred_boxes))
        rows, cols = linear_sum_assignment(ious, maximize=True)
        recalled += int((ious[rows, cols] >= iou).sum())
    return recalled, total
