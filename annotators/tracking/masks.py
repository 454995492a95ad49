"""Mask steps of the lite tracker, at its working resolution: carry a mask to the next
frame along dense optical flow, settle its outline with the object's colours, and
segment a box (GrabCut) only where no carried mask fits it.

Why temporal: GrabCut on every box costs most of a lite run and, given perfect boxes,
tops out at J&F 0.589 on DAVIS-2016; a mask carried by the flow keeps the object's shape
from frame to frame and only its outline needs deciding, which a colour model does in a
few milliseconds. The pieces:

- :func:`warp_mask`: the previous mask pulled along the backward flow (a soft mask);
- :class:`ColourModel`: foreground/background colour histograms learned where the
  object was last anchored (its mask, and a ring around it inside a grown box);
- :func:`settle`: pixels deep inside (or outside) the warped mask keep its answer, a
  thin band along the outline is decided by the warped value plus the colour evidence,
  holes are filled;
- :func:`fits_box`: whether a carried mask still agrees with a detector's box; where it
  does not (drifted, shrunk, swallowed background) the box is segmented again with
  :func:`segment_box`: GrabCut at a reduced size, or, where GrabCut finds nothing
  plausible (a box of a few pixels, an object of the background's colours), the ellipse
  inscribed in the box — every tracked object has a mask on every frame it is seen.

Everything is deterministic: GrabCut's k-means start draws from OpenCV's RNG, which is
seeded before every call from ``seed`` and the frame index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from tubelet.schemas.geometry import box_iou, mask_to_box

LEVELS = 16  # colour levels per RGB channel in the histograms (16³ bins)
_SHIFT = 8 - int(np.log2(LEVELS))


def _bins(rgb: np.ndarray) -> np.ndarray:
    """The histogram bin of each RGB pixel."""
    q = (rgb >> _SHIFT).astype(np.int32)
    return (q[..., 0] * LEVELS + q[..., 1]) * LEVELS + q[..., 2]


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def grown_box(box: Sequence[float], shape: tuple[int, int], margin: float) -> tuple[int, int, int, int]:
    """``box`` grown by ``margin`` of its size on each side, as integer slice bounds
    clipped to an image of ``shape`` (h, w)."""
    h, w = shape
    x1, y1, x2, y2 = (float(v) for v in box)
    mx, my = margin * (x2 - x1), margin * (y2 - y1)
    return (
        int(max(0, np.floor(x1 - mx))),
        int(max(0, np.floor(y1 - my))),
        int(min(w, np.ceil(x2 + mx))),
        int(min(h, np.ceil(y2 + my))),
    )


@dataclass
class ColourModel:
    """Foreground and background colour histograms of one object (L1-normalised)."""

    fg: np.ndarray
    bg: np.ndarray

    @classmethod
    def learn(cls, rgb: np.ndarray, mask: np.ndarray, ring: float = 0.3) -> ColourModel | None:
        """From ``mask`` on ``rgb``: the foreground is the mask shrunk by a pixel (its
        outline mixes both), the background what lies within ``ring`` of the mask's box
        size around it, off the mask grown by two pixels. None for an empty mask."""
        box = mask_to_box(mask)
        if box is None:
            return None
        x1, y1, x2, y2 = grown_box(box, mask.shape, ring)
        m = mask[y1:y2, x1:x2].astype(np.uint8)
        bins = _bins(rgb[y1:y2, x1:x2])
        inner = cv2.erode(m, _disk(1)) > 0
        if inner.sum() < 20:
            inner = m > 0
        outside = ~(cv2.dilate(m, _disk(2)) > 0)
        fg = np.bincount(bins[inner], minlength=LEVELS**3).astype(np.float64)
        bg = np.bincount(bins[outside], minlength=LEVELS**3).astype(np.float64)
        # add-one smoothing: a colour never seen on either side says nothing
        return cls((fg + 1) / (fg.sum() + fg.size), (bg + 1) / (bg.sum() + bg.size))

    def log_ratio(self, rgb: np.ndarray, limit: float) -> np.ndarray:
        """log P(colour | object) / P(colour | background) per pixel, clipped to ±limit."""
        bins = _bins(rgb)
        return np.clip(np.log(self.fg[bins] / self.bg[bins]), -limit, limit)


def warp_mask(mask: np.ndarray, flow: np.ndarray, grid: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """``mask`` (bool or soft, previous frame) pulled onto the current frame along
    ``flow`` (current -> previous, per pixel): a soft mask in [0, 1]. ``grid`` is the
    pixel coordinates (x, y) as float32, shared between calls."""
    gx, gy = grid
    return cv2.remap(mask.astype(np.float32), gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR, borderValue=0.0)


def settle(
    soft: np.ndarray, rgb: np.ndarray, model: ColourModel | None, band: int, prior: float, colour_limit: float
) -> np.ndarray:
    """The boolean mask of a warped ``soft`` mask: deeper than ``band`` pixels inside or
    outside its outline it keeps the warped answer; in the band a pixel is in when
    ``prior * (2 soft - 1)`` plus the colour log-ratio (at most ``colour_limit``) is
    positive. Holes are filled (a flow warp tears them; objects here have none that a
    mask at this resolution would keep)."""
    hard = soft >= 0.5
    if model is None or band <= 0 or not hard.any():
        return fill_holes(hard)
    box = mask_to_box(hard)
    assert box is not None
    x1, y1, x2, y2 = grown_box(box, hard.shape, 0.0)
    x1, y1 = max(0, x1 - band - 1), max(0, y1 - band - 1)
    x2, y2 = min(hard.shape[1], x2 + band + 1), min(hard.shape[0], y2 + band + 1)
    crop = hard[y1:y2, x1:x2].astype(np.uint8)
    core = cv2.erode(crop, _disk(band)) > 0
    outline = (cv2.dilate(crop, _disk(band)) > 0) & ~core
    ys, xs = np.nonzero(outline)
    evidence = prior * (2.0 * soft[y1:y2, x1:x2][ys, xs] - 1.0)
    evidence += model.log_ratio(rgb[y1:y2, x1:x2][ys, xs], colour_limit)
    decided = core.copy()
    decided[ys, xs] = evidence > 0
    out = np.zeros_like(hard)
    out[y1:y2, x1:x2] = decided
    return fill_holes(out)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask`` with every background region that does not reach the border filled."""
    box = mask_to_box(mask)
    if box is None:
        return mask
    x1, y1, x2, y2 = grown_box(box, mask.shape, 0.0)
    crop = mask[y1:y2, x1:x2]
    padded = np.pad(~crop, 1, constant_values=True).astype(np.uint8)
    _, labels = cv2.connectedComponents(padded, connectivity=4)
    out = mask.copy()
    out[y1:y2, x1:x2] |= labels[1:-1, 1:-1] != labels[0, 0]
    return out


def fits_box(mask: np.ndarray, box: Sequence[float], min_iou: float, fill: tuple[float, float]) -> bool:
    """Whether ``mask`` (already clipped near ``box``) still describes the object the box
    holds: the boxes overlap by ``min_iou`` and the mask covers a plausible share of the
    box (``fill``: least and most share)."""
    tight = mask_to_box(mask)
    if tight is None:
        return False
    area = max(1e-6, (box[2] - box[0]) * (box[3] - box[1]))
    share = float(mask.sum()) / area
    return float(box_iou(tight, list(box))) >= min_iou and fill[0] <= share <= fill[1]


def clip_to_box(mask: np.ndarray, box: Sequence[float], margin: float) -> np.ndarray:
    """``mask`` with everything outside ``box`` grown by ``margin`` removed."""
    x1, y1, x2, y2 = grown_box(box, mask.shape, margin)
    out = np.zeros_like(mask)
    out[y1:y2, x1:x2] = mask[y1:y2, x1:x2]
    return out


def run_grabcut(crop: np.ndarray, labels: np.ndarray, rect: tuple[int, ...] | None, iterations: int, seed: int) -> bool:
    """GrabCut on ``crop`` (BGR), refining ``labels`` in place — from ``rect`` when given,
    else from ``labels`` — after seeding OpenCV's RNG (per thread) with ``seed``: its
    k-means start is drawn from it. False when OpenCV refuses (e.g. a rectangle covering
    the whole crop leaves no background to learn)."""
    cv2.setRNGSeed(int(seed))
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    mode = cv2.GC_INIT_WITH_RECT if rect is not None else cv2.GC_INIT_WITH_MASK
    try:
        cv2.grabCut(crop, labels, rect, bgd, fgd, iterations, mode)
    except cv2.error:
        return False
    return True


def grabcut_box(
    rgb: np.ndarray, box: Sequence[float], side: int | None, iterations: int, seed: int
) -> np.ndarray | None:
    """GrabCut from a rectangle on a crop around ``box`` scaled so its longer side is at
    most ``side`` (None: as is); the mask at ``rgb``'s size, or None when GrabCut finds no
    plausible object (15–98% of the box). OpenCV's RNG is seeded with ``seed`` first."""
    h, w = rgb.shape[:2]
    x1, y1, x2, y2 = (int(v) for v in np.round(np.clip(box, 0, [w, h, w, h])))
    if x2 - x1 < 4 or y2 - y1 < 4:
        return None
    pad = max(4, (x2 - x1 + y2 - y1) // 8)
    rx1, ry1, rx2, ry2 = max(0, x1 - pad), max(0, y1 - pad), min(w, x2 + pad), min(h, y2 + pad)
    crop = cv2.cvtColor(np.ascontiguousarray(rgb[ry1:ry2, rx1:rx2]), cv2.COLOR_RGB2BGR)
    scale = 1.0
    if side and max(crop.shape[:2]) > side:
        scale = side / max(crop.shape[:2])
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    labels = np.zeros(crop.shape[:2], np.uint8)
    rect = (
        int(round((x1 - rx1) * scale)),
        int(round((y1 - ry1) * scale)),
        max(1, int(round((x2 - x1) * scale))),
        max(1, int(round((y2 - y1) * scale))),
    )
    if not run_grabcut(crop, labels, rect, iterations, seed):
        return None
    fg = ((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)).astype(np.uint8)
    if scale != 1.0:
        fg = cv2.resize(fg * 255, (rx2 - rx1, ry2 - ry1), interpolation=cv2.INTER_LINEAR) >= 128
    if not 0.15 <= fg.sum() / ((x2 - x1) * (y2 - y1)) <= 0.98:
        return None
    mask = np.zeros((h, w), bool)
    mask[ry1:ry2, rx1:rx2] = fg > 0
    return mask


def ellipse_in(box: Sequence[float], shape: tuple[int, int]) -> np.ndarray:
    """The filled ellipse inscribed in ``box`` on an image of ``shape`` (h, w); at least
    the pixel at the box's centre."""
    h, w = shape
    x1, y1, x2, y2 = (float(v) for v in box)
    mask = np.zeros((h, w), np.uint8)
    centre = (int(round((x1 + x2) / 2 - 0.5)), int(round((y1 + y2) / 2 - 0.5)))
    axes = (max(0, int(round((x2 - x1) / 2 - 0.5))), max(0, int(round((y2 - y1) / 2 - 0.5))))
    cv2.ellipse(mask, centre, axes, 0.0, 0.0, 360.0, 1, thickness=-1)
    out = mask > 0
    if not out.any():
        out[min(h - 1, max(0, centre[1])), min(w - 1, max(0, centre[0]))] = True
    return out


def segment_box(
    rgb: np.ndarray, box: Sequence[float], side: int | None, iterations: int, seed: int
) -> tuple[np.ndarray, bool]:
    """The object in ``box``: GrabCut's mask (:func:`grabcut_box`), else the ellipse
    inscribed in the box (clipped to the image); and whether GrabCut gave it."""
    cut = grabcut_box(rgb, box, side, iterations, seed)
    if cut is not None:
        return cut, True
    return ellipse_in(box, rgb.shape[:2]), False
