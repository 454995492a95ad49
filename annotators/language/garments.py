"""What people wear: the colour of the upper and the lower garment of a person mask.

People are described by their clothes, never by a colour of the whole body: over a
person mask most pixels can be skin and hair, and a colour word for them ("the black
person") reads as a description of the person's skin. So no colour of the whole mask is
measured for a person (``is_person``); instead, on each sampled frame,

- the mask's own rows give the body's extent: the **upper** band is the rows from
  ``upper_band[0]`` to ``upper_band[1]`` of its height (below the head, above the
  waist), the **lower** band ``lower_band`` (thighs to shins, above the shoes);
- pixels near the mask's edge are left out, as for objects, and so are skin-coloured
  pixels (bare arms, legs, hands): the YCrCb rule of Chai & Ngan (1999), whose
  chrominance box holds light and dark skin alike, with its lower Cr bound raised so
  that cream and grey fabrics, barely chromatic, are not taken for skin;
- frames where the mask comes within ``edge_margin`` of the top or the bottom of the
  picture (the body is cut, so the bands would fall elsewhere on it) or is less than
  ``min_upright`` times taller than wide (sitting, lying, bending over: the rows no
  longer run from head to feet) are not used.

A band's colour is named only when clothing is a good part of what is left
(``min_cloth_share`` of the band's pixels are not skin), ``min_named`` of those pixels
have a clear colour name (``colours``: muted and in-between pixels have none), and one
name covers ``min_dominance`` of the named ones; otherwise it is None and nothing is
said about it. Skin-like fabrics (khaki, beige) and two-colour tops therefore go
unnamed rather than risk a false or unfit word.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tubelet.annotators.language.colours import colour_histogram, inner_region, pooled

#: Categories that are people (COCO's ``person`` and the words ground truth and
#: open-vocabulary prompts use for one).
PERSON_CATEGORIES = frozenset(
    {
        "person",
        "people",
        "human",
        "man",
        "woman",
        "boy",
        "girl",
        "child",
        "kid",
        "baby",
        "pedestrian",
        "rider",
        "player",
        "skier",
        "surfer",
        "dancer",
    }
)

#: Skin chrominance (YCrCb, 8-bit): Chai & Ngan's box, Cr from 138 instead of 133.
SKIN_CR = (138, 173)
SKIN_CB = (77, 127)


def is_person(category: str) -> bool:
    """Whether ``category`` names one person: its last word is in ``PERSON_CATEGORIES``
    ("young woman" is one; "horse and rider" is two things, and not one person)."""
    words = category.strip().lower().split()
    return bool(words) and words[-1] in PERSON_CATEGORIES and "and" not in words


@dataclass(frozen=True)
class GarmentConfig:
    """Where the garments are on a person mask and when a colour is named (module docstring)."""

    upper_band: tuple[float, float] = (0.2, 0.45)
    lower_band: tuple[float, float] = (0.55, 0.85)
    min_cloth_share: float = 0.4
    min_named: float = 0.3
    min_dominance: float = 0.6
    min_pixels: int = 50
    min_upright: float = 1.6
    edge_margin: float = 0.01
    boundary_px: int = 3
    max_pixels: int = 20000

    def __post_init__(self) -> None:
        for name in ("upper_band", "lower_band"):
            lo, hi = getattr(self, name)
            if not 0.0 <= lo < hi <= 1.0:
                raise ValueError(f"{name} must be two fractions 0 <= low < high <= 1, got {(lo, hi)}")
        object.__setattr__(self, "upper_band", tuple(self.upper_band))
        object.__setattr__(self, "lower_band", tuple(self.lower_band))


def skin(pixels: np.ndarray) -> np.ndarray:
    """Whether each RGB uint8 pixel of ``pixels`` ((n, 3)) has skin chrominance."""
    import cv2

    if len(pixels) == 0:
        return np.zeros(0, dtype=bool)
    ycrcb = cv2.cvtColor(np.asarray(pixels, dtype=np.uint8).reshape(-1, 1, 3), cv2.COLOR_RGB2YCrCb).reshape(-1, 3)
    cr, cb = ycrcb[:, 1], ycrcb[:, 2]
    return (cr >= SKIN_CR[0]) & (cr <= SKIN_CR[1]) & (cb >= SKIN_CB[0]) & (cb <= SKIN_CB[1])


def body_bands(region: np.ndarray, config: GarmentConfig) -> tuple[np.ndarray, np.ndarray] | None:
    """The upper and lower bands (bool images, without the mask's edge) of one person
    mask, or None when the frame cannot place them (empty, cut by the top or bottom of the
    picture, wider than tall)."""
    rows = np.flatnonzero(region.any(axis=1))
    cols = np.flatnonzero(region.any(axis=0))
    if len(rows) == 0:
        return None
    top, bottom = int(rows[0]), int(rows[-1]) + 1
    height, width = bottom - top, int(cols[-1]) + 1 - int(cols[0])
    margin = config.edge_margin * region.shape[0]
    if top <= margin or bottom >= region.shape[0] - margin or height < config.min_upright * width:
        return None
    inner = inner_region(region, config.boundary_px, config.min_pixels)
    bands = []
    for lo, hi in (config.upper_band, config.lower_band):
        band = np.zeros_like(region)
        r1, r2 = top + math.floor(lo * height), top + math.ceil(hi * height)
        band[r1:r2] = inner[r1:r2]
        bands.append(band)
    return bands[0], bands[1]


def _named(pixels: list[np.ndarray], config: GarmentConfig) -> tuple[str | None, dict[str, float]]:
    """The garment colour of one band's pixels over the frames, and its top names."""
    allpix = pooled(pixels, config.max_pixels)
    cloth = allpix[~skin(allpix)]
    if len(cloth) < config.min_pixels or len(cloth) < config.min_cloth_share * len(allpix):
        return None, {}
    hist = colour_histogram(cloth)
    top = dict(list(hist.items())[:3])
    named = sum(hist.values())
    if not hist or named < config.min_named:
        return None, top
    name, share = next(iter(hist.items()))
    return (name if share >= config.min_dominance * named else None), top


def garment_colours(samples: Iterable[tuple[np.ndarray, np.ndarray]], config: GarmentConfig) -> dict[str, Any]:
    """``{"upper", "lower"}`` colour names (None: not named) of a person, from
    ``(RGB image, bool mask)`` samples, with ``upper_colours``/``lower_colours`` (the top
    three names and their shares among clothing pixels) and ``frames`` (samples used)."""
    upper: list[np.ndarray] = []
    lower: list[np.ndarray] = []
    used = 0
    for image, region in samples:
        bands = body_bands(region, config)
        if bands is None:
            continue
        used += 1
        upper.append(image[bands[0]])
        lower.append(image[bands[1]])
    up, up_hist = _named(upper, config)
    low, low_hist = _named(lower, config)
    return {"upper": up, "lower": low, "upper_colours": up_hist, "lower_colours": low_hist, "frames": used}


def garment_phrase(upper: str | None, lower: str | None) -> str | None:
    """ "in a white top and blue bottoms", "in a white top", "in blue bottoms", "dressed in
    blue" (both the same); None when neither is known."""
    if upper and lower:
        return f"dressed in {upper}" if upper == lower else f"in a {upper} top and {lower} bottoms"
    if upper:
        return f"in a {upper} top"
    if lower:
        return f"in {lower} bottoms"
    return None
