"""HOTA under tubelet's own convention (the default protocol), by TrackEval's metric code.

HOTA scores the same boxes as the identity metrics (``identity.scored_frames``: visible
ground truth that is considered, predictions less those an ignored box absorbs), so the
two agree on what a miss and a false positive are. The similarity of a pair is box IoU,
or mask IoU when every track of the video carries masks — the rule of the tubelet
matching (``matching.uses_masks``), and what TrackEval itself uses for its segmentation
benchmarks (MOTS, DAVIS, YouTube-VIS). A visible track frame without a mask then
overlaps nothing. The report says which (``hota_similarity``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tubelet.evaluation.identity import ScoredFrame
from tubelet.evaluation.trackeval_metrics import FramePairs
from tubelet.evaluation.tracks import RLE, Track
from tubelet.schemas.geometry import box_iou
from tubelet.schemas.rle import rle_iou_matrix


def _mask_iou(gt_masks: list[RLE | None], pred_masks: list[RLE | None]) -> np.ndarray:
    """Mask IoU ``(gt, pred)``; a missing mask overlaps nothing."""
    out = np.zeros((len(gt_masks), len(pred_masks)), dtype=np.float64)
    g = [(k, m) for k, m in enumerate(gt_masks) if m is not None]
    p = [(k, m) for k, m in enumerate(pred_masks) if m is not None]
    if g and p:
        out[np.ix_([k for k, _ in g], [k for k, _ in p])] = rle_iou_matrix([m for _, m in g], [m for _, m in p])
    return out


def hota_pairs(
    frames: Sequence[ScoredFrame], preds: Sequence[Track], gts: Sequence[Track], masks: bool
) -> list[FramePairs]:
    """One ``FramePairs`` per scored frame (ids are the tracks' indices)."""
    out = []
    for f in frames:
        if masks:
            sim = _mask_iou(
                [gts[g].mask_at(f.frame) for g in f.gt_ids], [preds[p].mask_at(f.frame) for p in f.pred_ids]
            )
        elif f.gt_ids and f.pred_ids:
            sim = np.asarray(box_iou(f.gt_boxes, f.pred_boxes), dtype=np.float64)
        else:
            sim = np.zeros((len(f.gt_ids), len(f.pred_ids)), dtype=np.float64)
        out.append(FramePairs(f.gt_ids, f.pred_ids, sim))
    return out
