"""Measured attributes of tubelets (the lite path: no model).

Everything here is computed from a tubelet's rows and the pixels under its mask:

- ``colour`` (objects only): the basic colour name most of the object's pixels are
  nearest to, in CIE Lab, over the sampled frames (pixels near the mask's boundary are
  left out: they mix with the background, and compression smears colour there);
- ``garments`` (people only, ``garments.is_person``): the colours of the upper and the
  lower garment, measured on bands of the mask below the head, skin left out
  (``tubelet.annotators.language.garments``). A person never gets a colour of the whole
  mask: that reads as the colour of their skin;
- ``size``: small / medium / large by the median fraction of the frame it covers;
- ``position``: left / centre / right × top / middle / bottom of its box centre (either
  part None when it does not hold);
- ``direction`` / ``speed``: the mean box-centre velocity over consecutive visible rows,
  in frame widths (x) and heights (y) per second; ``still`` below a threshold; ``depth``:
  ``away`` / ``closer`` when the object shrinks / grows a lot (motion along the view);
- ``relations``: left of / right of / above / below / larger than each other tubelet
  of the video, judged on the frames where both are visible.

Position, direction, depth and relations are statements about many frames: each is
checked frame by frame (``tubelet.annotators.language.comparisons``) and left out (None,
or not listed) unless it holds on ``relation_share`` of them; ``checks`` records the
shares. The result is a plain JSON-able dict (it is stored in ``Entity.attributes``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tubelet.annotators.language.colours import colour_histogram, object_pixels, pooled
from tubelet.annotators.language.comparisons import (
    area,
    centre,
    co_visible,
    depth_share,
    direction_share,
    position_shares,
    relation_shares,
    still_share,
)
from tubelet.annotators.language.garments import GarmentConfig, garment_colours, is_person
from tubelet.annotators.language.visual_prompt import box_mask, frame_region, sample_frames
from tubelet.schemas import Tubelet

DIRECTIONS = ("right", "down-right", "down", "down-left", "left", "up-left", "up", "up-right")


@dataclass(frozen=True)
class AttributeConfig:
    """Thresholds of the measured attributes.

    ``boundary_px``: pixels this close to the mask's edge are not used for colour
    (erosion; the whole mask when erosion leaves fewer than ``min_colour_pixels``).
    ``small_area``/``large_area``: area fractions of the frame below / at or above
    which an object is small / large. ``still_speed``: frame sizes per second below
    which it is still; ``fast_speed``: at or above which it is fast;
    ``depth_ratio``: the area change that makes an object move ``away`` / ``closer``.
    ``relation_share``: the least share of the frames a statement is about on which it
    must hold (position, motion, depth, relations); ``relation_min_frames``: the fewest
    co-visible frames a relation is judged on; ``larger_ratio``: the area ratio that
    makes one object "larger than" another on a frame; ``still_spread``: how far (a
    fraction of the frame) from its median centre a still object may be.
    ``garments``: ``GarmentConfig`` fields (a dict in a manifest).
    """

    boundary_px: int = 3
    min_colour_pixels: int = 20
    max_colour_pixels: int = 20000
    small_area: float = 0.02
    large_area: float = 0.15
    still_speed: float = 0.05
    fast_speed: float = 0.5
    relation_share: float = 0.8
    relation_min_frames: int = 3
    larger_ratio: float = 1.5
    depth_ratio: float = 1.6
    still_spread: float = 0.05
    garments: GarmentConfig = field(default_factory=GarmentConfig)

    def __post_init__(self) -> None:
        if isinstance(self.garments, Mapping):
            object.__setattr__(self, "garments", GarmentConfig(**self.garments))
        if not 0.5 < self.relation_share <= 1.0:
            raise ValueError(f"relation_share must be in (0.5, 1] (true on most frames), got {self.relation_share}")


# -- geometry ----------------------------------------------------------------------


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
        (ax, ay), (bx, by) = centre(a.box_xyxy), centre(b.box_xyxy)
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
    first = float(np.median([area(r) for r in visible[:third]]))
    last = float(np.median([area(r) for r in visible[-third:]]))
    if first <= 0 or last <= 0:
        return None
    return "away" if last * ratio <= first else "closer" if last >= first * ratio else None


# -- per tubelet -------------------------------------------------------------------


def measure_tubelet(
    tubelet: Tubelet, frames: Mapping[int, np.ndarray], n_frames: int = 4, config: AttributeConfig | None = None
) -> dict[str, Any]:
    """The measured attributes of one tubelet (no relations: see ``measure_video``).

    ``frames`` maps frame index → RGB image (any size: masks and boxes are scaled); the
    colours are read on ``sample_frames(tubelet, n_frames)`` that ``frames`` holds. Keys
    with nothing to measure, or whose statement does not hold on most frames, are None.
    """
    config = config or AttributeConfig()
    visible = tubelet.visible_frames
    frame_area = float(tubelet.width * tubelet.height)
    out: dict[str, Any] = {
        "category": tubelet.category,
        "colour": None,
        "colours": {},
        "garments": None,
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
        "checks": {},
        "relations": [],
    }
    if not visible:
        return out
    out["visible_s"] = [round(float(visible[0].t_s), 4), round(float(visible[-1].t_s), 4)]

    samples = list(_samples(tubelet, frames, n_frames))
    if is_person(tubelet.category):
        # what a person wears, never a colour of the whole person (skin, hair)
        out["garments"] = garment_colours(((image, region) for image, region, _ in samples), config.garments)
    elif samples:
        pixels = [
            object_pixels(image, region, config.boundary_px, config.min_colour_pixels) for image, region, _ in samples
        ]
        hist = colour_histogram(pooled(pixels, config.max_colour_pixels))
        out["colours"] = dict(list(hist.items())[:3])
        out["colour"] = next(iter(hist), None)

    fraction = float(np.median([area(r) for r in visible])) / frame_area
    out["area_fraction"] = round(fraction, 5)
    out["size"] = size_class(fraction, config)
    cx = float(np.median([centre(r.box_xyxy)[0] for r in visible])) / tubelet.width
    cy = float(np.median([centre(r.box_xyxy)[1] for r in visible])) / tubelet.height
    out["centre"] = [round(cx, 4), round(cy, 4)]
    h, v = position_of(cx, cy)
    shares = position_shares(tubelet, h, v)
    if shares is not None:
        out["checks"]["position"] = list(shares)
        # each half of "at the top left" is a statement of its own: keep what holds
        held = {
            "horizontal": h if _holds(shares[0], config) else None,
            "vertical": v if _holds(shares[1], config) else None,
        }
        # "in the middle" of one axis alone, with the other unknown, says nothing
        vague = (held["horizontal"] is None and held["vertical"] in ("middle", None)) or (
            held["vertical"] is None and held["horizontal"] == "centre"
        )
        out["position"] = None if vague else held

    vel = velocity(tubelet)
    if vel is not None:
        speed = math.hypot(*vel)
        out["velocity"] = [round(vel[0], 4), round(vel[1], 4)]
        out["speed"] = round(speed, 4)
        out["speed_class"] = "still" if speed < config.still_speed else "fast" if speed >= config.fast_speed else "slow"
        if speed < config.still_speed:
            candidates = ["still"]
        else:  # a diagonal that does not hold may still hold along one of its axes
            first = direction_of(*vel)
            candidates = [first, *(_axis_directions(vel, config.still_speed) if "-" in first else [])]
        for direction in candidates:
            share = (
                still_share(tubelet, config.still_spread)
                if direction == "still"
                else direction_share(tubelet, direction)
            )
            out["checks"].setdefault("direction", share)
            if _holds(share, config):
                out["direction"] = direction
                out["checks"]["direction"] = share
                break
    depth = depth_trend(tubelet, config.depth_ratio)
    if depth is not None:
        out["checks"]["depth"] = share = depth_share(tubelet, depth)
        if _holds(share, config):
            out["depth"] = depth
    return out


def _axis_directions(vel: tuple[float, float], still_speed: float) -> list[str]:
    """The one-axis directions of a velocity that are not still, the faster first ("down", "right")."""
    vx, vy = vel
    axes = [(abs(vx), "right" if vx > 0 else "left"), (abs(vy), "down" if vy > 0 else "up")]
    return [word for speed, word in sorted(axes, key=lambda a: -a[0]) if speed >= still_speed]


def _holds(share: float | None, config: AttributeConfig) -> bool:
    return share is not None and share >= config.relation_share


def _samples(
    tubelet: Tubelet, frames: Mapping[int, np.ndarray], n_frames: int
) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """``(image, bool region, frame index)`` of the sampled rows that ``frames`` holds."""
    out = []
    size = (tubelet.width, tubelet.height)
    for row in sample_frames(tubelet, n_frames):
        image = frames.get(row.frame_idx)
        if image is None:
            continue
        # A box holds background too: without a mask, use the box's inner half only.
        region = (
            frame_region(row, image.shape, size)
            if row.mask_rle is not None
            else _inner_box(row.box_xyxy, image.shape, size)
        )
        out.append((image, region, row.frame_idx))
    return out


def _inner_box(box: Sequence[float], shape: tuple[int, ...], source_size: tuple[int, int]) -> np.ndarray:
    height, width = shape[:2]
    sx, sy = width / source_size[0], height / source_size[1]
    x1, y1, x2, y2 = box
    dx, dy = (x2 - x1) / 4, (y2 - y1) / 4
    return box_mask([(x1 + dx) * sx, (y1 + dy) * sy, (x2 - dx) * sx, (y2 - dy) * sy], height, width)


# -- relations ---------------------------------------------------------------------


def checked_relations(a: Tubelet, b: Tubelet, config: AttributeConfig | None = None) -> list[dict[str, Any]]:
    """What ``a`` is relative to ``b``: ``{"relation", "share", "frames"}`` for each
    relation of ``comparisons.RELATIONS`` that holds on ``relation_share`` of the (at
    least ``relation_min_frames``) frames where both are visible."""
    config = config or AttributeConfig()
    shares, n = relation_shares(a, b, config.larger_ratio)
    if n < config.relation_min_frames:
        return []
    return [{"relation": name, "share": share, "frames": n} for name, share in shares.items() if _holds(share, config)]


def relations(a: Tubelet, b: Tubelet, config: AttributeConfig | None = None) -> list[str]:
    """The names of ``checked_relations(a, b)`` (empty when they share too few visible frames)."""
    return [r["relation"] for r in checked_relations(a, b, config)]


def measure_video(
    tubelets: Sequence[Tubelet],
    frames: Mapping[int, np.ndarray],
    n_frames: int = 4,
    config: AttributeConfig | None = None,
) -> dict[str, dict[str, Any]]:
    """``measure_tubelet`` for every tubelet of one video, with ``relations`` filled:
    a list of ``{"relation", "tubelet_id", "category", "share", "frames"}`` per tubelet."""
    config = config or AttributeConfig()
    out = {t.tubelet_id: measure_tubelet(t, frames, n_frames, config) for t in tubelets}
    for a in tubelets:
        for b in tubelets:
            if a is b or not co_visible(a, b):
                continue
            out[a.tubelet_id]["relations"].extend(
                {
                    "relation": r["relation"],
                    "tubelet_id": b.tubelet_id,
                    "category": b.category,
                    "share": r["share"],
                    "frames": r["frames"],
                }
                for r in checked_relations(a, b, config)
            )
    return out
