"""One-to-one matching of predicted to ground-truth tubelets within a video.

The similarity of a pair is its mean per-frame IoU over the grid frames where either
track is visible (a frame where only one is visible scores 0): mask IoU when every
track of the video carries masks, box IoU otherwise. The Hungarian algorithm (scipy's
``linear_sum_assignment``) maximises the summed similarity; pairs with similarity 0
stay unmatched, so a ground-truth tubelet nothing overlaps is a miss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tubelet.evaluation.tracks import Track
from tubelet.schemas.geometry import box_iou
from tubelet.schemas.rle import rle_iou_matrix


@dataclass(frozen=True)
class Match:
    pred: int  # index into the video's predicted tracks
    gt: int  # index into the video's ground-truth tracks
    similarity: float


def _visible(tracks: Sequence[Track], frame: int, masks: bool) -> tuple[list[int], list]:
    """Indices of the tracks visible on ``frame`` and their masks (``masks``) or boxes;
    with masks, a visible frame without one is left out (it overlaps nothing)."""
    ids, shapes = [], []
    for k, t in enumerate(tracks):
        shape = t.mask_at(frame) if masks else t.box_at(frame)
        if shape is not None:
            ids.append(k)
            shapes.append(shape)
    return ids, shapes


def uses_masks(preds: Sequence[Track], gts: Sequence[Track]) -> bool:
    """Whether a video is compared on masks: every track of both sides carries masks."""
    return bool(preds) and bool(gts) and all(t.has_masks for t in [*preds, *gts])


def similarity_matrix(preds: Sequence[Track], gts: Sequence[Track], grid: Sequence[int]) -> np.ndarray:
    """``(len(preds), len(gts))`` mean per-frame IoU over the frames where either is visible.

    One IoU matrix per frame rather than one loop per pair: MOT videos hold ~100 tracks.
    """
    visible_p = [set(t.visible) for t in preds]
    visible_g = [set(t.visible) for t in gts]
    frames = sorted(set(grid).intersection(set().union(*visible_p, *visible_g)))
    seen_p = np.array([[f in v for f in frames] for v in visible_p], dtype=np.float64).reshape(len(preds), -1)
    seen_g = np.array([[f in v for f in frames] for v in visible_g], dtype=np.float64).reshape(len(gts), -1)
    either = seen_p.sum(1)[:, None] + seen_g.sum(1)[None, :] - seen_p @ seen_g.T
    masks = uses_masks(preds, gts)
    total = np.zeros((len(preds), len(gts)), dtype=np.float64)
    for frame in frames:
        p_ids, p_shapes = _visible(preds, frame, masks)
        g_ids, g_shapes = _visible(gts, frame, masks)
        if not p_ids or not g_ids:
            continue
        iou = (
            rle_iou_matrix(p_shapes, g_shapes) if masks else np.asarray(box_iou(np.array(p_shapes), np.array(g_shapes)))
        )
        total[np.ix_(p_ids, g_ids)] += iou
    return np.divide(total, either, out=np.zeros_like(total), where=either > 0)


def match_tracks(preds: Sequence[Track], gts: Sequence[Track], grid: Sequence[int]) -> list[Match]:
    """Hungarian matching maximising the summed similarity; zero-similarity pairs dropped."""
    from scipy.optimize import linear_sum_assignment  # scipy is slow to import: only where it is used

    if not preds or not gts:
        return []
    sim = similarity_matrix(preds, gts, grid)
    rows, cols = linear_sum_assignment(sim, maximize=True)
    return [Match(int(i), int(j), float(sim[i, j])) for i, j in zip(rows, cols) if sim[i, j] > 0]
