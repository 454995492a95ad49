"""Appearance descriptors: a small colour histogram of what one detection covers.

Detectors compute one per detection from the keyframe's pixels (``KeyframeDetector``);
association only compares descriptors (it never sees pixels) to tell apart lost objects
of one category when they come back. numpy + OpenCV only: importable anywhere.

The descriptor is an L1-normalised HSV histogram of ``N_BINS`` bins: chromatic pixels
by hue (8) x saturation (3), and achromatic pixels (grey, black, white: their hue is
noise) by value alone (4). Chromatic pixels ignore value, as in the usual hue-saturation
histograms: brightness is what changes most when an object walks into other light.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

HUE_BINS, SAT_BINS, GRAY_BINS = 8, 3, 4
N_BINS = HUE_BINS * SAT_BINS + GRAY_BINS  # 28
ACHROMATIC = 0.2 * 255  # saturation or value below this: the hue means nothing
BOX_INSET = 0.2  # without a mask, use the box shrunk by this fraction per side (less background)
MAX_PIXELS = 1024  # larger regions are read on a sparser grid: plenty for 28 bins
MIN_PIXELS = 16  # fewer pixels than this give no descriptor (a sliver says nothing)


def describe(frame: np.ndarray, box: Sequence[float], mask: np.ndarray | None = None) -> list[float] | None:
    """The descriptor of an object on ``frame`` (RGB uint8 ``(h, w, 3)``).

    With ``mask`` (bool ``(h, w)``, same size as ``frame``) the histogram is of the mask's
    pixels; without, of the inner part of ``box`` (``[x1, y1, x2, y2]`` in the frame's
    pixels). None when too few pixels are left.
    """
    h, w = frame.shape[:2]
    if mask is not None:
        if mask.shape != (h, w):
            raise ValueError(f"mask of shape {mask.shape} for a frame of {(h, w)}")
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if rows.size == 0:
            return None
        r1, r2, c1, c2 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    else:
        x1, y1, x2, y2 = (float(v) for v in box)
        dx, dy = (x2 - x1) * BOX_INSET, (y2 - y1) * BOX_INSET
        c1, r1 = max(0, math.floor(x1 + dx)), max(0, math.floor(y1 + dy))
        c2, r2 = min(w, math.ceil(x2 - dx)), min(h, math.ceil(y2 - dy))
        if c2 <= c1 or r2 <= r1:
            return None
    # a regular grid of at most ~MAX_PIXELS pixels: big objects cost no more than small
    step = max(1, math.ceil(math.sqrt((r2 - r1) * (c2 - c1) / MAX_PIXELS)))
    crop = frame[r1:r2:step, c1:c2:step]
    pixels = crop[mask[r1:r2:step, c1:c2:step]] if mask is not None else crop.reshape(-1, 3)
    if mask is not None and step > 1 and len(pixels) < MIN_PIXELS:  # a thin mask the grid misses
        pixels = frame[r1:r2, c1:c2][mask[r1:r2, c1:c2]][:MAX_PIXELS]
    if len(pixels) < MIN_PIXELS:
        return None
    return histogram(pixels).tolist()


def histogram(pixels: np.ndarray) -> np.ndarray:
    """The L1-normalised ``N_BINS`` histogram of RGB uint8 pixels ``(n, 3)``.

    Soft binning: a pixel is shared between the two nearest bins of each axis (linear
    weights), so a colour near a bin edge does not flip a whole object to another bin.
    """
    import cv2

    rgb = np.ascontiguousarray(np.asarray(pixels, dtype=np.uint8).reshape(-1, 1, 3))
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).reshape(-1, 3).astype(np.float64)
    hue, sat, val = hsv[:, 0], hsv[:, 1], hsv[:, 2]  # OpenCV: hue 0..179, the others 0..255
    gray = (sat < ACHROMATIC) | (val < ACHROMATIC)
    # hue bin centres at 0, 22.5, ... (red, orange, ...): circular, so red near 0 and near
    # 179 share bin 0
    h_lo, h_w = _soft(hue * HUE_BINS / 180.0, HUE_BINS, circular=True)
    s_lo, s_w = _soft((sat - ACHROMATIC) / (255.0 - ACHROMATIC) * (SAT_BINS - 1), SAT_BINS)
    g_lo, g_w = _soft(val / 255.0 * (GRAY_BINS - 1), GRAY_BINS)
    idx, weight = [], []
    for dh, wh in ((0, 1.0 - h_w), (1, h_w)):
        for ds, ws in ((0, 1.0 - s_w), (1, s_w)):
            idx.append(((h_lo + dh) % HUE_BINS) * SAT_BINS + np.minimum(s_lo + ds, SAT_BINS - 1))
            weight.append(np.where(gray, 0.0, wh * ws))
    grey_base = HUE_BINS * SAT_BINS
    for dg, wg in ((0, 1.0 - g_w), (1, g_w)):
        idx.append(grey_base + np.minimum(g_lo + dg, GRAY_BINS - 1))
        weight.append(np.where(gray, wg, 0.0))
    counts = np.bincount(np.concatenate(idx), weights=np.concatenate(weight), minlength=N_BINS)
    return counts / max(float(counts.sum()), 1e-12)


def _soft(x: np.ndarray, n: int, circular: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """For positions ``x`` on a bin axis (bin centres at 0..n-1): the lower bin and the
    weight of the next one."""
    if not circular:
        x = np.clip(x, 0.0, n - 1)
    lo = np.floor(x)
    frac = x - lo
    lo = lo.astype(np.int64) % n if circular else np.minimum(lo.astype(np.int64), n - 1)
    return lo, frac


def appearance_distance(a: Sequence[float], b: Sequence[float]) -> float:
    """Histogram-intersection distance of two descriptors, ``1 - sum(min(a, b))``: the
    share of colour that differs, 0 for the same colours, 1 for colours that share no
    bin. Linear in that share (unlike Bhattacharyya's square root), so a few stray
    background pixels in a box cost a few per cent, not a third of the scale."""
    p, q = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if p.shape != q.shape:
        raise ValueError(f"descriptors of different lengths: {p.shape} and {q.shape}")
    p, q = p / max(p.sum(), 1e-12), q / max(q.sum(), 1e-12)
    return float(min(1.0, max(0.0, 1.0 - float(np.minimum(p, q).sum()))))


def mean_descriptor(descriptors: Sequence[Sequence[float]]) -> list[float] | None:
    """The mean of some descriptors (still L1-normalised); None when there are none."""
    if not descriptors:
        return None
    mean = np.mean(np.asarray(descriptors, dtype=np.float64), axis=0)
    return (mean / max(mean.sum(), 1e-12)).tolist()


def remember(memory: list[list[float]], descriptor: Sequence[float] | None, keep: int) -> None:
    """Append ``descriptor`` to ``memory`` (in place), keeping the last ``keep``: a
    track's appearance is the mean of its last few confirming detections, so it follows
    slow changes (pose, light) without forgetting the object."""
    if descriptor is None or keep <= 0:
        return
    memory.append([float(v) for v in descriptor])
    del memory[:-keep]
