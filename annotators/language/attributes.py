"""Measured attributes of tubelets (the lite path: no model).

Everything here is computed from a tubelet's rows and the pixels under its mask:

- ``colour``: the basic colour name most of the object's pixels are nearest to, in
  CIE Lab, over the sampled frames (pixels near the mask's boundary are left out:
  they mix with the background, and compression smears colour there);
- ``size``: small / medium / large by the median fraction of the frame it covers;
- ``position``: left / centre / right × top / middle / bottom of its median box centre;
- ``direction`` / ``speed``: the mean box-centre velocity over consecutive visible rows,
  in frame widths (x) and heights (y) per second; ``still`` below a threshold; ``depth``:
  ``away`` / ``closer`` when the object shrinks / grows a lot (motion along the view);
- ``relations``: left of / right of / above / below / larger than each other tubelet
  of the video, judged on the frames where both are visible.

The result is a plain JSON-able dict (it is stored in ``Entity.attributes``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tubelet.annotators.language.visual_prompt import box_mask, frame_region, sample_frames
from tubelet.schemas import Tubelet, TubeletFrame
from tubelet.schemas.rle import rle_area

#: Basic colour names (Berlin & Kay's eleven) with sRGB prototypes; some names have two,
#: so that light and dark variants (sky blue, navy) land on their name, not on grey.
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
    "brown": ((120, 75, 40),),
}
#: Lightness counts half in the colour distance: shading changes L most, the name least.
LAB_WEIGHTS = np.array([0.5, 1.0, 1.0], dtype=np.float32)

DIRECTIONS = ("right", "down-right", "down", "down-left", "left", "up-left", "up", "up-right")


@dataclass(frozen=True)
class AttributeConfig:
    """Thresholds of the measured attributes.

    ``boundary_px``: pixels this close to the mask's edge are not used for colour
    (erosion; the whole mask when erosion leaves fewer than ``min_colour_pixels``).
    ``small_area``/``large_area``: area fractions of the frame below / at or above
    which an object is small / large. ``still_speed``: frame sizes per second below
    which it is still; ``fast_speed``: at or above which it is fast;
    ``depth_ratio``: the area change that makes an object move ``away`` / ``closer``. Relations need a
    centre offset of ``relation_margin`` (fraction of the frame) on at least
    ``relation_share`` of the shared frames; ``larger_ratio`` is the median area ratio
    for "larger than".
    """

    boundary_px: int = 3
    min_colour_pixels: int = 20
    max_colour_pixels: int = 20000
    small_area: float = 0.02
    large_area: float = 0.15
    still_speed: float = 0.05
    fast_speed: float = 0.5
    relation_margin: float = 0.05
    relation_share: float = 0.7
    larger_ratio: float = 1.5
    depth_ratio: float = 1.6


# -- colour ------------------------------------------------------------------------


def _lab(rgb: np.ndarray) -> np.ndarray:
    """CIE Lab (L 0-100) of RGB uint8 values shaped (..., 3), as (n, 3) float32."""
    import cv2

    flat = np.asarray(rgb, dtype=np.float32).reshape(-1, 1, 3) / 255.0
    return cv2.cvtColor(flat, cv2.COLOR_RGB2Lab).reshape(-1, 3)


_NAMES = [name for name, protos in PALETTE.items() for _ in protos]
_PROTOTYPES = _lab(np.array([p for protos in PALETTE.values() for p in protos], dtype=np.uint8))


def colour_indices(pixels: np.ndarray) -> np.ndarray:
    """For RGB uint8 pixels shaped (n, 3): the index into ``list(PALETTE)`` of each one's name."""
    lab = _lab(pixels)
    d = (((lab[:, None, :] - _PROTOTYPES[None, :, :]) * LAB_WEIGHTS) ** 2).sum(axis=2)
    names = list(PALETTE)
    lookup = np.array([names.index(n) for n in _NAMES])
    return lookup[np.argmin(d, axis=1)]


def colour_histogram(pixels: np.ndarray) -> dict[str, float]:
    """Fraction of ``pixels`` (RGB uint8, (n, 3)) per colour name, largest first, zeros left out."""
    pixels = np.asarray(pixels, dtype=np.uint8).reshape(-1, 3)
    if len(pixels) == 0:
        return {}
    counts = np.bincount(colour_indices(pixels), minlength=len(PALETTE)) / len(pixels)
    names = list(PALETTE)
    order = np.argsort(-counts, kind="stable")
    return {names[i]: round(float(counts[i]), 4) for i in order if counts[i] > 0}


def colour_name(pixels: np.ndarray) -> str | None:
    """The colour name most of ``pixels`` are nearest to (None for no pixels)."""
    hist = colour_histogram(pixels)
    return next(iter(hist), None)


def object_pixels(image: np.ndarray, region: np.ndarray, boundary_px: int = 3, min_pixels: int = 20) -> np.ndarray:
    """The RGB pixels of ``region`` (bool mask of the image's size) away from its edge."""
    import cv2

    inner = region
    if boundary_px > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * boundary_px + 1, 2 * boundary_px + 1))
        inner = cv2.erode(region.astype(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE).astype(bool)
        if inner.sum() < min_pixels:  # a thin object: its edge is all there is
            inner = region
    return image[inner]


# -- geometry ----------------------------------------------------------------------


def _centre(box: Sequence[float]) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def _area(row: TubeletFrame) -> float:
    if row.mask_rle is not None:
        return float(rle_area(row.mask_rle))
    x1, y1, x2, y2 = row.box_xyxy
    return max(0.0, x2 - x1) * max(0.0, y2 - y1)


def size_class(area_fraction: float, config: AttributeConfig) -> str:
    """``small`` / ``medium`` / ``large`` for a fraction of the frame."""
    if area_fraction < config.small_area:
        return "small"
    return "large" if area_fraction >= config.large_area else "medium"


def position_of(cx: float, cy: float) -> tuple[str, str]:
    """(``left``|``centre``|``right``, ``top``|``middle``|``bottom``) of a centre in
    frame fractions: thirds of the frame."""
    h = "left" if cx < 1 / 3 else "right" if cx >= 2 / 3 else "centre"
    v = "top" if cy < 1 / 3 else "bottom" if cy >= 2 / 3 else "middle"
    return h, v


def direction_of(vx: float, vy: float) -> str:
    """One of ``DIRECTIONS`` (image axes: y grows downwards), by 45° sectors."""
    angle = math.degrees(math.atan2(vy, vx)) % 360
    return DIRECTIONS[int(((angle + 22.5) % 360) // 45)]


def velocity(tubelet: Tubelet) -> tuple[float, float] | None:
    """Mean box-centre velocity (frame widths, frame heights per second): the summed
    displacement between consecutive visible rows over their summed time; None with no
    such pair. Steps across invisible rows are left out (an object that left and came
    back did not move in between), and per-step jitter of the boxes cancels in the sum."""
    dx = dy = dt = 0.0
    for a, b in zip(tubelet.frames, tubelet.frames[1:]):
        if not (a.visible and b.visible) or b.t_s <= a.t_s:
            continue
        (ax, ay), (bx, by) = _centre(a.box_xyxy), _centre(b.box_xyxy)
        dx += (bx - ax) / tubelet.width
        dy += (by - ay) / tubelet.height
        dt += b.t_s - a.t_s
    if dt <= 0:
        return None
    return dx / dt, dy / dt


def depth_trend(tubelet: Tubelet, ratio: float = 1.6) -> str | None:
    """``"away"`` / ``"closer"`` when the median area of the last third of the visible
    rows is ``ratio`` times smaller / larger than that of the first third (an object
    moving along the camera's axis barely moves in the image); None otherwise."""
    visible = tubelet.visible_frames
    if len(visible) < 3:
        return None
    third = len(visible) // 3
    first = float(np.median([_area(r) for r in visible[:third]]))
    last = float(np.median([_area(r) for r in visible[-third:]]))
    if first <= 0 or last <= 0:
        return None
    return "away" if last * ratio <= first else "closer" if last >= first * ratio else None


# -- per tubelet -------------------------------------------------------------------


def measure_tubelet(
    tubelet: Tubelet, frames: Mapping[int, np.ndarray], n_frames: int = 4, config: AttributeConfig | None = None
) -> dict[str, Any]:
    """The measured attributes of one tubelet (no relations: see ``measure_video``).

    ``frames`` maps frame index → RGB image (any size: masks and boxes are scaled); the
    colour is read on ``sample_frames(tubelet, n_frames)`` that ``frames`` holds. Keys
    with nothing to measure are None (no visible rows, no pixels).
    """
    config = config or AttributeConfig()
    visible = tubelet.visible_frames
    frame_area = float(tubelet.width * tubelet.height)
    out: dict[str, Any] = {
        "category": tubelet.category,
        "colour": None,
        "colours": {},
        "size": None,
        "area_fraction": None,
        "position": None,
        "centre": None,
        "direction": None,
        "speed": None,
        "speed_class": None,
        "velocity": None,
        "depth": None,
        "visible_s": None,
        "relations": [],
    }
    if not visible:
        return out
    out["visible_s"] = [round(float(visible[0].t_s), 4), round(float(visible[-1].t_s), 4)]

    pixels = []
    for row in sample_frames(tubelet, n_frames):
        image = frames.get(row.frame_idx)
        if image is None:
            continue
        size = (tubelet.width, tubelet.height)
        # A box holds background too: without a mask, use the box's inner half only.
        region = (
            frame_region(row, image.shape, size)
            if row.mask_rle is not None
            else _inner_box(row.box_xyxy, image.shape, size)
        )
        pixels.append(object_pixels(image, region, config.boundary_px, config.min_colour_pixels))
    if pixels:
        allpix = np.concatenate(pixels)
        if len(allpix) > config.max_colour_pixels:  # a regular subsample: big objects cost no more
            allpix = allpix[:: math.ceil(len(allpix) / config.max_colour_pixels)]
        hist = colour_histogram(allpix)
        out["colours"] = dict(list(hist.items())[:3])
        out["colour"] = next(iter(hist), None)

    area = float(np.median([_area(r) for r in visible])) / frame_area
    out["area_fraction"] = round(area, 5)
    out["size"] = size_class(area, config)
    cx = float(np.median([_centre(r.box_xyxy)[0] for r in visible])) / tubelet.width
    cy = float(np.median([_centre(r.box_xyxy)[1] for r in visible])) / tubelet.height
    out["centre"] = [round(cx, 4), round(cy, 4)]
    h, v = position_of(cx, cy)
    out["position"] = {"horizontal": h, "vertical": v}

    vel = velocity(tubelet)
    if vel is not None:
        speed = math.hypot(*vel)
        out["velocity"] = [round(vel[0], 4), round(vel[1], 4)]
        out["speed"] = round(speed, 4)
        out["direction"] = "still" if speed < config.still_speed else direction_of(*vel)
        out["speed_class"] = "still" if speed < config.still_speed else "fast" if speed >= config.fast_speed else "slow"
    out["depth"] = depth_trend(tubelet, config.depth_ratio)
    return out


def _inner_box(box: Sequence[float], shape: tuple[int, ...], source_size: tuple[int, int]) -> np.ndarray:
    height, width = shape[:2]
    sx, sy = width / source_size[0], height / source_size[1]
    x1, y1, x2, y2 = box
    dx, dy = (x2 - x1) / 4, (y2 - y1) / 4
    return box_mask([(x1 + dx) * sx, (y1 + dy) * sy, (x2 - dx) * sx, (y2 - dy) * sy], height, width)


# -- relations ---------------------------------------------------------------------


def relations(a: Tubelet, b: Tubelet, config: AttributeConfig | None = None) -> list[str]:
    """What ``a`` is relative to ``b`` on the frames where both are visible: any of
    ``left of``, ``right of``, ``above``, ``below``, ``larger than`` (empty when they
    share no visible frame or nothing holds on ``relation_share`` of those frames)."""
    config = config or AttributeConfig()
    rows_b = {f.frame_idx: f for f in b.frames if f.visible}
    shared = [(f, rows_b[f.frame_idx]) for f in a.frames if f.visible and f.frame_idx in rows_b]
    if not shared:
        return []
    n = len(shared)
    dx = np.array([(_centre(fa.box_xyxy)[0] - _centre(fb.box_xyxy)[0]) / a.width for fa, fb in shared])
    dy = np.array([(_centre(fa.box_xyxy)[1] - _centre(fb.box_xyxy)[1]) / a.height for fa, fb in shared])
    out = []
    for name, holds in (
        ("left of", dx < -config.relation_margin),
        ("right of", dx > config.relation_margin),
        ("above", dy < -config.relation_margin),
        ("below", dy > config.relation_margin),
    ):
        if holds.sum() >= config.relation_share * n:
            out.append(name)
    ratio = np.median([_area(fa) / max(_area(fb), 1.0) for fa, fb in shared])
    if ratio >= config.larger_ratio:
        out.append("larger than")
    return out


def measure_video(
    tubelets: Sequence[Tubelet],
    frames: Mapping[int, np.ndarray],
    n_frames: int = 4,
    config: AttributeConfig | None = None,
) -> dict[str, dict[str, Any]]:
    """``measure_tubelet`` for every tubelet of one video, with ``relations`` filled:
    a list of ``{"relation", "tubelet_id", "category", "frames"}`` per tubelet."""
    config = config or AttributeConfig()
    out = {t.tubelet_id: measure_tubelet(t, frames, n_frames, config) for t in tubelets}
    for a in tubelets:
        for b in tubelets:
            if a is b:
                continue
            rels = relations(a, b, config)
            if not rels:
                continue
            rows_b = {f.frame_idx for f in b.frames if f.visible}
            shared = sum(1 for f in a.frames if f.visible and f.frame_idx in rows_b)
            out[a.tubelet_id]["relations"].extend(
                {"relation": r, "tubelet_id": b.tubelet_id, "category": b.category, "frames": shared} for r in rels
            )
    return out
