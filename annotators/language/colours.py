"""Colour names of pixels: the eleven basic colour terms, judged in CIE LCh.

Shared by the attributes of objects (``attributes``) and the garments of people
(``garments``). Each pixel gets a name or none, and an object's colour is the name most
of its pixels get — a histogram of names, not the name of the mean colour (half red,
half blue is not purple). A pixel is named by its chroma first:

- below ``ACHROMATIC_C`` it has no hue: black, grey or white by lightness, except in the
  bands between them (dark grey, light grey in shade) where it is not named;
- at or above ``CHROMATIC_C`` it is named by its hue (and lightness: brown is a dark
  orange, pink a light red): the nearest prototype of the palette's hued names;
- in between (muted colours, tinted whites and greys: cream, slate, faded denim) it is
  not named: whichever name it got could be false.

So dark blue jeans are blue (their hue is plain at chroma 15+), not black, as the nearest
palette colour in Lab would have it; and a colour is said only from the pixels that
clearly have it.
"""

from __future__ import annotations

import math

import numpy as np

#: Basic colour names (Berlin & Kay's eleven) with sRGB prototypes; some names have two,
#: so that light and dark variants (sky blue, navy, tan) land on their name.
PALETTE: dict[str, tuple[tuple[int, int, int], ...]] = {
    "black": ((20, 20, 20),),
    "white": ((245, 245, 245),),
    "grey": ((128, 128, 128),),
    "red": ((200, 30, 30), (120, 15, 15)),
    "orange": ((240, 140, 30),),
    "yellow": ((240, 220, 40),),
    "green": ((40, 160, 60), (140, 210, 110)),
    "blue": ((40, 80, 200), (110, 180, 230), (20, 30, 110)),
    "purple": ((120, 50, 150),),
    "pink": ((240, 150, 180),),
    "brown": ((120, 75, 40), (170, 120, 80)),
}
#: Chroma (CIE Lab) below which a pixel has no hue, and at or above which it has one.
ACHROMATIC_C = 8.0
CHROMATIC_C = 15.0
#: Lightness (0-100) of the achromatic names: black below 25, grey in [35, 65), white
#: from 75; a pixel in the gaps is not named.
ACHROMATIC_L = {"black": (0.0, 25.0), "grey": (35.0, 65.0), "white": (75.0, 101.0)}
#: In the distance to a hued prototype, one unit of lightness counts as this many degrees
#: of hue, one unit of chroma as ``HUE_PER_C`` (so brown and orange, pink and red, are
#: told apart by lightness and vividness).
HUE_PER_L = 0.8
HUE_PER_C = 0.3
#: What ``colour_indices`` gives a pixel it does not name.
UNNAMED = -1


def _lab(rgb: np.ndarray) -> np.ndarray:
    """CIE Lab (L 0-100) of RGB uint8 values shaped (..., 3), as (n, 3) float32."""
    import cv2

    flat = np.asarray(rgb, dtype=np.float32).reshape(-1, 1, 3) / 255.0
    return cv2.cvtColor(flat, cv2.COLOR_RGB2Lab).reshape(-1, 3)


def _lch(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lightness, chroma and hue angle (degrees) of RGB uint8 values, each shaped (n,)."""
    lab = _lab(rgb)
    return lab[:, 0], np.hypot(lab[:, 1], lab[:, 2]), np.degrees(np.arctan2(lab[:, 2], lab[:, 1])) % 360


_HUED = [(name, p) for name, protos in PALETTE.items() for p in protos if name not in ACHROMATIC_L]
_HUED_L, _HUED_C, _HUED_H = _lch(np.array([p for _, p in _HUED], dtype=np.uint8))
_HUED_INDEX = np.array([list(PALETTE).index(name) for name, _ in _HUED])


def colour_indices(pixels: np.ndarray) -> np.ndarray:
    """For RGB uint8 pixels shaped (n, 3): the index into ``list(PALETTE)`` of each one's
    name, or ``UNNAMED`` (see the module docstring)."""
    light, chroma, hue = _lch(np.asarray(pixels, dtype=np.uint8).reshape(-1, 3))
    out = np.full(len(light), UNNAMED, dtype=np.int64)
    names = list(PALETTE)
    grey = chroma < ACHROMATIC_C
    for name, (lo, hi) in ACHROMATIC_L.items():
        out[grey & (light >= lo) & (light < hi)] = names.index(name)
    hued = chroma >= CHROMATIC_C
    if hued.any():
        dh = np.abs(hue[hued, None] - _HUED_H[None, :])
        dist = (
            np.minimum(dh, 360 - dh)
            + HUE_PER_L * np.abs(light[hued, None] - _HUED_L[None, :])
            + HUE_PER_C * np.abs(chroma[hued, None] - _HUED_C[None, :])
        )
        out[hued] = _HUED_INDEX[np.argmin(dist, axis=1)]
    return out


def colour_histogram(pixels: np.ndarray) -> dict[str, float]:
    """Fraction of ``pixels`` (RGB uint8, (n, 3)) per colour name, largest first, zeros left
    out; unnamed pixels count in the whole, so the fractions may sum to less than 1."""
    pixels = np.asarray(pixels, dtype=np.uint8).reshape(-1, 3)
    if len(pixels) == 0:
        return {}
    indices = colour_indices(pixels)
    counts = np.bincount(indices[indices != UNNAMED], minlength=len(PALETTE)) / len(pixels)
    names = list(PALETTE)
    order = np.argsort(-counts, kind="stable")
    return {names[i]: round(float(counts[i]), 4) for i in order if counts[i] > 0}


def colour_name(pixels: np.ndarray) -> str | None:
    """The colour name most of ``pixels`` are nearest to (None for no pixels)."""
    hist = colour_histogram(pixels)
    return next(iter(hist), None)


def inner_region(region: np.ndarray, boundary_px: int = 3, min_pixels: int = 20) -> np.ndarray:
    """``region`` (bool image) without the pixels within ``boundary_px`` of its edge: they
    mix with the background, and compression smears colour there. A region that erosion
    leaves with fewer than ``min_pixels`` is kept whole (a thin object: its edge is all there is)."""
    import cv2

    if boundary_px <= 0:
        return region
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * boundary_px + 1, 2 * boundary_px + 1))
    inner = cv2.erode(region.astype(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE).astype(bool)
    return inner if inner.sum() >= min_pixels else region


def object_pixels(image: np.ndarray, region: np.ndarray, boundary_px: int = 3, min_pixels: int = 20) -> np.ndarray:
    """The RGB pixels of ``region`` (bool mask of the image's size) away from its edge."""
    return image[inner_region(region, boundary_px, min_pixels)]


def pooled(pixels: list[np.ndarray], max_pixels: int) -> np.ndarray:
    """``pixels`` of several frames as one (n, 3) array, at most about ``max_pixels`` of
    them: a regular subsample, so big objects cost no more and every frame still counts."""
    allpix = np.concatenate(pixels) if pixels else np.zeros((0, 3), np.uint8)
    if len(allpix) > max_pixels:
        allpix = allpix[:: math.ceil(len(allpix) / max_pixels)]
    return allpix
