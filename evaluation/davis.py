"""DAVIS region similarity J and contour accuracy F.

Definitions from Perazzi et al., "A Benchmark Dataset and Evaluation Methodology for
Video Object Segmentation" (CVPR 2016), as implemented by the official DAVIS toolkits
(``davis2017-evaluation/davis2017/metrics.py``: ``db_eval_iou``, ``f_measure``,
``_seg2bmap``):

- J = |M ∩ G| / |M ∪ G| (1 when both masks are empty);
- F = 2PR / (P + R) of the boundary pixels: a predicted boundary pixel is a true
  positive when a ground-truth boundary pixel lies within ``bound_pix`` of it (and
  vice versa for recall), with ``bound_pix = ceil(bound_th * ||(h, w)||)``,
  ``bound_th = 0.008`` of the image diagonal. "Within" is a dilation by a disk of that
  radius (skimage's ``disk``: x² + y² ≤ r²), exactly as the toolkit does.
"""

from __future__ import annotations

import math

import numpy as np

#: DAVIS boundary tolerance as a fraction of the image diagonal.
BOUND_TH = 0.008


def region_similarity(pred: np.ndarray, gt: np.ndarray) -> float:
    """J: mask IoU, 1.0 when both masks are empty (DAVIS ``db_eval_iou``)."""
    pred, gt = pred.astype(bool), gt.astype(bool)
    union = np.logical_or(pred, gt).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(pred, gt).sum() / union)


def seg2bmap(seg: np.ndarray) -> np.ndarray:
    """Boundary map of a binary mask: a pixel is boundary when it differs from its east,
    south or south-east neighbour (DAVIS ``_seg2bmap`` at the mask's own size)."""
    seg = seg.astype(bool)
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ e) | (seg ^ s) | (seg ^ se)
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = False
    return b


def disk(radius: int) -> np.ndarray:
    """skimage.morphology.disk: the (2r+1)² footprint of x² + y² ≤ r²."""
    r = int(radius)
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    return (x * x + y * y) <= r * r


def bound_pixels(shape: tuple[int, int], bound_th: float = BOUND_TH) -> int:
    """The match tolerance in pixels: ``bound_th`` itself when ≥ 1, else a fraction of the diagonal."""
    if bound_th >= 1:
        return int(bound_th)
    return int(math.ceil(bound_th * math.hypot(shape[0], shape[1])))


def dilate(mask: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """Binary dilation by a symmetric footprint: OpenCV's (as the DAVIS toolkit) when
    installed, else scipy's, which gives the same result more slowly."""
    from scipy import ndimage  # scipy is slow to import: only where it is used

    try:
        import cv2
    except ImportError:
        return ndimage.binary_dilation(mask, structure=footprint)
    return cv2.dilate(mask.astype(np.uint8), footprint.astype(np.uint8)).astype(bool)


def boundary_precision_recall(pred: np.ndarray, gt: np.ndarray, bound_th: float = BOUND_TH) -> tuple[float, float]:
    """Boundary precision and recall with the DAVIS conventions for empty boundaries."""
    if pred.shape != gt.shape:
        raise ValueError(f"masks of different sizes: {pred.shape} vs {gt.shape}")
    footprint = disk(bound_pixels(pred.shape, bound_th))
    pred_b, gt_b = seg2bmap(pred), seg2bmap(gt)
    n_pred, n_gt = int(pred_b.sum()), int(gt_b.sum())
    if n_pred == 0 and n_gt == 0:
        return 1.0, 1.0
    if n_pred == 0:
        return 1.0, 0.0
    if n_gt == 0:
        return 0.0, 1.0
    # Dilation only reaches r pixels beyond a boundary: working on the boundaries' box
    # grown by r gives the same matches, many times faster on large frames.
    r = footprint.shape[0] // 2
    rows = np.flatnonzero((pred_b | gt_b).any(axis=1))
    cols = np.flatnonzero((pred_b | gt_b).any(axis=0))
    window = (slice(max(rows[0] - r, 0), rows[-1] + r + 1), slice(max(cols[0] - r, 0), cols[-1] + r + 1))
    pred_b, gt_b = pred_b[window], gt_b[window]
    pred_dil = dilate(pred_b, footprint)
    gt_dil = dilate(gt_b, footprint)
    precision = float(np.logical_and(pred_b, gt_dil).sum() / n_pred)
    recall = float(np.logical_and(gt_b, pred_dil).sum() / n_gt)
    return precision, recall


def contour_accuracy(pred: np.ndarray, gt: np.ndarray, bound_th: float = BOUND_TH) -> float:
    """F: the F-measure of boundary precision and recall (DAVIS ``f_measure``)."""
    precision, recall = boundary_precision_recall(pred, gt, bound_th)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)
