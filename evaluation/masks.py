"""Per-pair mask metrics: DAVIS J and F averaged over the ground truth's annotated frames.

A frame the ground truth lists but marks invisible has an empty ground-truth mask
(DAVIS annotates absence as an empty mask). A predicted frame that is missing, not
visible or without a mask is an empty prediction. Per DAVIS, a sequence's J (F) is the
mean of the per-frame values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tubelet.evaluation.davis import BOUND_TH, contour_accuracy, region_similarity
from tubelet.evaluation.tracks import Track
from tubelet.schemas.rle import decode_rle, rle_size


@dataclass(frozen=True)
class MaskScores:
    j: float
    f: float

    @property
    def jf(self) -> float:
        """J&F: the mean of the two (DAVIS 2017 reporting)."""
        return (self.j + self.f) / 2


def _size(gt: Track) -> tuple[int, int]:
    for obs in gt.frames.values():
        if obs.mask is not None:
            return rle_size(obs.mask)
    return gt.height, gt.width


def mask_scores(pred: Track | None, gt: Track, bound_th: float = BOUND_TH) -> MaskScores | None:
    """Mean J and F of ``pred`` against ``gt`` over the frames ``gt`` lists.

    None when the ground truth carries no masks (box-only GT such as MOT), or when the
    prediction is a matched track with no masks at all (a box tracker): J&F would only
    measure that it does not segment.
    """
    if not gt.has_masks or (pred is not None and not pred.has_masks):
        return None
    size = _size(gt)
    empty = np.zeros(size, dtype=bool)
    js, fs = [], []
    for frame in gt.listed:
        g_rle = gt.mask_at(frame)
        g = decode_rle(g_rle) if g_rle is not None else empty
        p_rle = pred.mask_at(frame) if pred is not None else None
        p = decode_rle(p_rle) if p_rle is not None else empty
        if p.shape != g.shape:
            raise ValueError(
                f"{pred.tubelet_id if pred else '?'} frame {frame}: mask size {p.shape} is not the ground truth's {g.shape}"
            )
        js.append(region_similarity(p, g))
        fs.append(contour_accuracy(p, g, bound_th))
    if not js:
        return None
    return MaskScores(float(np.mean(js)), float(np.mean(fs)))
