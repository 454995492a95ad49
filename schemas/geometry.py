"""Box geometry in absolute pixels.

Boxes are ``[x1, y1, x2, y2]`` with ``x2``/``y2`` exclusive (a box over pixel columns
3..5 is ``[3, 6]``), as in the dataset. Every function takes one box (shape ``(4,)``)
or many (shape ``(n, 4)``) as any array-like and returns numpy values of the matching
shape; call ``.tolist()`` to store a result in a record.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BoxLike = Sequence[float] | np.ndarray


def _boxes(box: BoxLike) -> np.ndarray:
    arr = np.asarray(box, dtype=np.float64)
    if arr.shape[-1:] != (4,) or arr.ndim > 2:
        raise ValueError(f"boxes must have shape (4,) or (n, 4), got {arr.shape}")
    return arr


def xywh_to_xyxy(box: BoxLike) -> np.ndarray:
    """``[x, y, w, h]`` (top-left and size, as COCO and MOT) to ``[x1, y1, x2, y2]``."""
    b = _boxes(box)
    return np.concatenate([b[..., :2], b[..., :2] + b[..., 2:]], axis=-1)


def xyxy_to_xywh(box: BoxLike) -> np.ndarray:
    """``[x1, y1, x2, y2]`` to ``[x, y, w, h]``."""
    b = _boxes(box)
    return np.concatenate([b[..., :2], b[..., 2:] - b[..., :2]], axis=-1)


def clip_box(box: BoxLike, width: float, height: float) -> np.ndarray:
    """The box clipped to the frame ``[0, width] x [0, height]`` (may become empty)."""
    b = _boxes(box)
    limits = np.array([width, height, width, height], dtype=np.float64)
    return np.clip(b, 0.0, limits)


def _area(b: np.ndarray) -> np.ndarray:
    return np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)


def box_area(box: BoxLike) -> np.ndarray:
    """Area of each box; zero for empty or inverted boxes."""
    return _area(_boxes(box))


def box_iou(a: BoxLike, b: BoxLike) -> np.ndarray | float:
    """IoU of two boxes (a scalar), or the pairwise matrix ``(len(a), len(b))``.

    The IoU of two empty boxes is 0.
    """
    a_arr, b_arr = _boxes(a), _boxes(b)
    single = a_arr.ndim == 1 and b_arr.ndim == 1
    a2, b2 = np.atleast_2d(a_arr)[:, None, :], np.atleast_2d(b_arr)[None, :, :]
    iw = np.clip(np.minimum(a2[..., 2], b2[..., 2]) - np.maximum(a2[..., 0], b2[..., 0]), 0, None)
    ih = np.clip(np.minimum(a2[..., 3], b2[..., 3]) - np.maximum(a2[..., 1], b2[..., 1]), 0, None)
    inter = iw * ih
    union = _area(a2) + _area(b2) - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return float(iou[0, 0]) if single else iou


def box_is_valid(box: BoxLike) -> np.ndarray:
    """Whether each box is finite and non-empty (``x1 < x2`` and ``y1 < y2``)."""
    b = _boxes(box)
    return np.isfinite(b).all(axis=-1) & (b[..., 0] < b[..., 2]) & (b[..., 1] < b[..., 3])


def box_inside(box: BoxLike, width: float, height: float) -> np.ndarray:
    """Whether each box is valid and lies inside the frame: ``0 <= x1 < x2 <= width``."""
    b = _boxes(box)
    inside = (b[..., 0] >= 0) & (b[..., 1] >= 0) & (b[..., 2] <= width) & (b[..., 3] <= height)
    return box_is_valid(b) & inside


def box_contains(outer: BoxLike, inner: BoxLike, tol: float = 1e-6) -> np.ndarray:
    """Whether each ``outer`` box contains the matching ``inner`` box (within ``tol``)."""
    o, i = _boxes(outer), _boxes(inner)
    return (
        (o[..., 0] <= i[..., 0] + tol)
        & (o[..., 1] <= i[..., 1] + tol)
        & (o[..., 2] >= i[..., 2] - tol)
        & (o[..., 3] >= i[..., 3] - tol)
    )


def mask_to_box(mask: np.ndarray) -> list[float] | None:
    """Tight pixel-exact box of a 2-D mask (``x2`` = last column + 1); None if empty."""
    m = np.asarray(mask) != 0
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {m.shape}")
    cols = np.flatnonzero(m.any(axis=0))
    if cols.size == 0:
        return None
    rows = np.flatnonzero(m.any(axis=1))
    return [float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)]


def normalize_box(box: BoxLike, width: float, height: float) -> np.ndarray:
    """Pixel box to fractions of the frame size (for exporters)."""
    return _boxes(box) / np.array([width, height, width, height], dtype=np.float64)


def denormalize_box(box: BoxLike, width: float, height: float) -> np.ndarray:
    """Fractions of the frame size back to pixels."""
    return _boxes(box) * np.array([width, height, width, height], dtype=np.float64)


def edges_touched(box: Sequence[float], width: float, height: float, margin: float, min_px: float = 0.0) -> list[str]:
    """The frame borders (``left``, ``right``, ``top``, ``bottom``, in that order) that
    ``box`` lies within ``margin`` of: a fraction of the frame size, at least ``min_px``."""
    x1, y1, x2, y2 = (float(v) for v in box)
    mx, my = max(min_px, margin * width), max(min_px, margin * height)
    near = {"left": x1 <= mx, "right": x2 >= width - mx, "top": y1 <= my, "bottom": y2 >= height - my}
    return [edge for edge, yes in near.items() if yes]
