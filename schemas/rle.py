"""COCO run-length encoded masks (pycocotools' compressed string form).

A mask in the dataset is ``{"size": [height, width], "counts": str}``: pycocotools'
compressed RLE with ``counts`` as a UTF-8 string (JSON and Arrow friendly). Every
function here also accepts ``counts`` as bytes, or as the uncompressed COCO list of
run lengths. Boxes are pixel-exact: ``x2`` is the last column with a pixel + 1.

``decode_rle`` checks that the runs cover exactly ``height * width`` pixels before
handing them to pycocotools, whose decoder trusts its input and returns uninitialised
memory for a too-short ``counts``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools import mask as _coco

RLE = dict[str, Any]


def encode_mask(mask: np.ndarray) -> RLE:
    """Encode a 2-D mask (bool, or any integer type where nonzero is foreground)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (height, width), got shape {mask.shape}")
    rle = _coco.encode(np.asfortranarray(mask != 0, dtype=np.uint8))
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": rle["counts"].decode("utf-8")}


def encode_masks(masks: np.ndarray) -> list[RLE]:
    """Encode a stack of masks shaped (n, height, width) in one pycocotools call."""
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"masks must be 3-D (n, height, width), got shape {masks.shape}")
    n, h, w = masks.shape
    if n == 0:
        return []
    # pycocotools wants (h, w, n) in Fortran order
    rles = _coco.encode(np.asfortranarray((masks != 0).transpose(1, 2, 0), dtype=np.uint8))
    return [{"size": [int(h), int(w)], "counts": r["counts"].decode("utf-8")} for r in rles]


def rle_size(rle: RLE) -> tuple[int, int]:
    """``(height, width)`` of an RLE."""
    h, w = rle["size"]
    return int(h), int(w)


def _to_coco(rle: RLE) -> dict[str, Any]:
    """The form pycocotools' C functions take: compressed counts as bytes."""
    h, w = rle_size(rle)
    counts = rle["counts"]
    if isinstance(counts, str):
        return {"size": [h, w], "counts": counts.encode("utf-8")}
    if isinstance(counts, bytes):
        return {"size": [h, w], "counts": counts}
    # uncompressed COCO RLE: a list of run lengths
    return _coco.frPyObjects({"size": [h, w], "counts": [int(c) for c in counts]}, h, w)


def rle_counts(rle: RLE) -> np.ndarray:
    """The run lengths of an RLE (background first), decoded without pycocotools.

    Raises ValueError on a malformed counts string. Vectorised: a 1080p mask's few
    thousand characters take microseconds.
    """
    counts = rle["counts"]
    if isinstance(counts, (list, tuple, np.ndarray)):
        return np.asarray(counts, dtype=np.int64)
    if isinstance(counts, str):
        counts = counts.encode("utf-8")
    c = np.frombuffer(counts, dtype=np.uint8).astype(np.int64) - 48
    if c.size == 0:
        return np.zeros(0, dtype=np.int64)
    if c.min() < 0 or c.max() > 63:
        raise ValueError("RLE counts hold characters outside the compressed alphabet")
    more = (c & 0x20) != 0
    if more[-1]:
        raise ValueError("RLE counts end in the middle of a number")
    # Each number is a little-endian group of 5-bit digits; the last digit of a group
    # has no continuation bit and carries the sign in its 0x10 bit.
    ends = np.flatnonzero(~more)
    starts = np.concatenate(([0], ends[:-1] + 1))
    group = np.repeat(np.arange(ends.size), ends - starts + 1)
    position = np.arange(c.size) - starts[group]
    if position.max() > 11:  # 60 bits: far beyond any real run length
        raise ValueError("RLE counts hold a number too long to be a run length")
    values = np.add.reduceat((c & 0x1F) << (5 * position), starts)
    negative = (c[ends] & 0x10) != 0
    values = values - (negative.astype(np.int64) << (5 * (position[ends] + 1)))
    # pycocotools stores runs from the fourth on as the difference to the run two back
    runs = values.copy()
    runs[1::2] = np.cumsum(values[1::2])
    runs[2::2] = np.cumsum(values[2::2])
    return runs


def rle_problem(rle: Any, size: tuple[int, int] | None = None) -> str | None:
    """What is wrong with ``rle`` (shape, counts, or its size vs ``size``), or None."""
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        return "not an RLE dict with 'size' and 'counts'"
    try:
        h, w = rle_size(rle)
    except (TypeError, ValueError):
        return f"RLE size {rle.get('size')!r} is not [height, width]"
    if h < 0 or w < 0:
        return f"RLE size {[h, w]} is negative"
    if size is not None and (h, w) != tuple(size):
        return f"RLE size {[h, w]} is not the frame size {list(size)}"
    try:
        runs = rle_counts(rle)
    except (ValueError, TypeError) as error:
        return f"RLE counts do not decode: {error}"
    if runs.size and runs.min() < 0:
        return "RLE counts decode to a negative run length"
    if int(runs.sum()) != h * w:
        return f"RLE runs cover {int(runs.sum())} pixels, not height*width = {h * w}"
    return None


def decode_rle(rle: RLE) -> np.ndarray:
    """The boolean (height, width) mask of an RLE; raises ValueError on a malformed one."""
    problem = rle_problem(rle)
    if problem is not None:
        raise ValueError(problem)
    h, w = rle_size(rle)
    if h == 0 or w == 0:
        return np.zeros((h, w), dtype=bool)
    with warnings.catch_warnings():
        # pycocotools' mask wrapper predates numpy 2's __array__(copy=) protocol
        warnings.simplefilter("ignore", DeprecationWarning)
        return _coco.decode(_to_coco(rle)).astype(bool)


def rle_area(rle: RLE) -> int:
    """Number of foreground pixels."""
    return int(_coco.area(_to_coco(rle)))


def rle_to_box_xyxy(rle: RLE) -> list[float] | None:
    """Tight pixel-exact box ``[x1, y1, x2, y2]`` (x2 = last column + 1); None if empty."""
    coco = _to_coco(rle)
    if int(_coco.area(coco)) == 0:
        return None
    x, y, w, h = (float(v) for v in _coco.toBbox(coco))
    return [x, y, x + w, y + h]


def _same_size(rles: Sequence[RLE]) -> tuple[int, int]:
    sizes = {rle_size(r) for r in rles}
    if len(sizes) != 1:
        raise ValueError(f"RLEs of different sizes: {sorted(sizes)}")
    return sizes.pop()


def rle_iou(a: RLE, b: RLE) -> float:
    """Intersection over union of two masks of the same size; 0.0 when both are empty."""
    _same_size([a, b])
    return float(_coco.iou([_to_coco(a)], [_to_coco(b)], [0])[0][0])


def rle_iou_matrix(a: Sequence[RLE], b: Sequence[RLE]) -> np.ndarray:
    """Pairwise IoU, shape (len(a), len(b)), of masks that all have the same size."""
    if not a or not b:
        return np.zeros((len(a), len(b)), dtype=np.float64)
    _same_size([*a, *b])
    iou = _coco.iou([_to_coco(r) for r in a], [_to_coco(r) for r in b], [0] * len(b))
    return np.asarray(iou, dtype=np.float64).reshape(len(a), len(b))


def merge_rles(rles: Sequence[RLE], intersect: bool = False) -> RLE:
    """Union (or, with ``intersect``, intersection) of masks of the same size."""
    if not rles:
        raise ValueError("merge_rles needs at least one RLE")
    h, w = _same_size(rles)
    merged = _coco.merge([_to_coco(r) for r in rles], intersect=intersect)
    return {"size": [h, w], "counts": merged["counts"].decode("utf-8")}


def empty_rle(height: int, width: int) -> RLE:
    """The RLE of an all-background mask."""
    return encode_mask(np.zeros((height, width), dtype=bool))


def box_rle(box_xyxy: Sequence[float], height: int, width: int) -> RLE:
    """The RLE of a box-shaped mask: every pixel the pixel box ``[x1, y1, x2, y2]`` touches
    (columns ``floor(x1)`` to ``ceil(x2) - 1``), clipped to the frame. A box that fits no
    pixel of the frame gives ValueError, not an empty mask."""
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    c0, r0 = max(0, math.floor(x1)), max(0, math.floor(y1))
    c1, r1 = min(width, math.ceil(x2)), min(height, math.ceil(y2))
    if c1 <= c0 or r1 <= r0:
        raise ValueError(f"box {list(box_xyxy)} covers no pixel of a {width}x{height} frame")
    mask = np.zeros((height, width), dtype=bool)
    mask[r0:r1, c0:c1] = True
    return encode_mask(mask)
