"""Comparative and relational statements, checked frame by frame.

A referring expression is used for the whole life of its object: "the dog left of the
person" names the dog in a question about any time. So every comparative or relational
phrase is a claim about many frames, and each one is measured on those frames and kept
only when it holds on most of them (``share``; the attributes use 0.8):

- a relation between two objects ("left of", "right of", "above", "below", "larger
  than") on the frames where both are visible;
- where an object is ("on the left") on its visible frames;
- how it moves ("moving left", "that stays still") and whether it gets closer or
  farther ("towards the camera") over its visible life, by comparing each frame of the
  first third of that life with each frame of the last third.

Relations are judged on boxes and (for size) mask areas: "a left of b" on a frame when
a's box centre lies left of b's whole box and b's centre right of a's whole box, so two
overlapping objects are neither left nor right of each other, and "a left of b" holds
exactly when "b right of a" does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tubelet.schemas import Tubelet, TubeletFrame
from tubelet.schemas.rle import rle_area

#: The relations of one object to another that expressions may state.
RELATIONS = ("left of", "right of", "above", "below", "larger than")

#: Image-axis signs (x, y) of each direction word: 0 where the direction says nothing.
DIRECTION_SIGNS: dict[str, tuple[int, int]] = {
    "right": (1, 0),
    "down-right": (1, 1),
    "down": (0, 1),
    "down-left": (-1, 1),
    "left": (-1, 0),
    "up-left": (-1, -1),
    "up": (0, -1),
    "up-right": (1, -1),
}

#: At most this many frames of each third are compared pairwise (evenly spread).
_MAX_TREND_FRAMES = 40


def centre(box: Sequence[float]) -> tuple[float, float]:
    """The centre of an ``[x1, y1, x2, y2]`` box."""
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def area(row: TubeletFrame) -> float:
    """The row's mask area in pixels, or its box area without a mask."""
    if row.mask_rle is not None:
        return float(rle_area(row.mask_rle))
    x1, y1, x2, y2 = row.box_xyxy
    return max(0.0, x2 - x1) * max(0.0, y2 - y1)


def co_visible(a: Tubelet, b: Tubelet) -> list[tuple[TubeletFrame, TubeletFrame]]:
    """``(a's row, b's row)`` for every frame where both are visible, in a's order."""
    rows_b = {f.frame_idx: f for f in b.frames if f.visible}
    return [(f, rows_b[f.frame_idx]) for f in a.frames if f.visible and f.frame_idx in rows_b]


def frame_relations(fa: TubeletFrame, fb: TubeletFrame, larger_ratio: float) -> set[str]:
    """The relations of ``RELATIONS`` that hold of a to b on one frame (boxes and areas)."""
    (ax, ay), (bx, by) = centre(fa.box_xyxy), centre(fb.box_xyxy)
    a1, b1 = fa.box_xyxy, fb.box_xyxy
    out = set()
    if ax < b1[0] and bx > a1[2]:
        out.add("left of")
    if ax > b1[2] and bx < a1[0]:
        out.add("right of")
    if ay < b1[1] and by > a1[3]:
        out.add("above")
    if ay > b1[3] and by < a1[1]:
        out.add("below")
    if area(fa) >= larger_ratio * max(area(fb), 1.0):
        out.add("larger than")
    return out


def relation_shares(a: Tubelet, b: Tubelet, larger_ratio: float) -> tuple[dict[str, float], int]:
    """Per relation of a to b, the share of their co-visible frames where it holds, and
    how many frames that is (no frames: empty shares)."""
    shared = co_visible(a, b)
    if not shared:
        return {}, 0
    counts = dict.fromkeys(RELATIONS, 0)
    for fa, fb in shared:
        for name in frame_relations(fa, fb, larger_ratio):
            counts[name] += 1
    return {name: round(n / len(shared), 4) for name, n in counts.items()}, len(shared)


def _spread(values: Sequence[float], n: int) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if len(arr) <= n:
        return arr
    return arr[np.round(np.linspace(0, len(arr) - 1, n)).astype(int)]


def trend_share(values: Sequence[float], sign: int) -> float | None:
    """Share of (early, late) pairs — a frame of the first third, a frame of the last third
    — where ``values`` moved in ``sign``'s direction (+1 up, -1 down); None with fewer than
    three values."""
    if len(values) < 3:
        return None
    third = len(values) // 3
    early = _spread(values[:third], _MAX_TREND_FRAMES)
    late = _spread(values[-third:], _MAX_TREND_FRAMES)
    return round(float((sign * (late[None, :] - early[:, None]) > 0).mean()), 4)


def depth_share(tubelet: Tubelet, depth: str) -> float | None:
    """How consistently the object grows (``"closer"``) or shrinks (``"away"``)."""
    return trend_share([area(r) for r in tubelet.visible_frames], 1 if depth == "closer" else -1)


def direction_share(tubelet: Tubelet, direction: str) -> float | None:
    """How consistently the object moved in ``direction`` (a word of ``DIRECTION_SIGNS``):
    the least share over the axes the direction names."""
    rows = tubelet.visible_frames
    sx, sy = DIRECTION_SIGNS[direction]
    shares = []
    for axis, sign in ((0, sx), (1, sy)):
        if sign:
            share = trend_share([centre(r.box_xyxy)[axis] for r in rows], sign)
            if share is None:
                return None
            shares.append(share)
    return min(shares)


def still_share(tubelet: Tubelet, spread: float) -> float | None:
    """Share of visible frames whose box centre is within ``spread`` (a fraction of the
    frame's width and height) of the median centre: how true "stays still" is."""
    rows = tubelet.visible_frames
    if not rows:
        return None
    xs = np.array([centre(r.box_xyxy)[0] for r in rows]) / tubelet.width
    ys = np.array([centre(r.box_xyxy)[1] for r in rows]) / tubelet.height
    near = (np.abs(xs - np.median(xs)) <= spread) & (np.abs(ys - np.median(ys)) <= spread)
    return round(float(near.mean()), 4)


def third_of(value: float, names: tuple[str, str, str]) -> str:
    """The name of the third of [0, 1] that ``value`` falls in."""
    return names[0] if value < 1 / 3 else names[2] if value >= 2 / 3 else names[1]


#: The thirds of the frame along x and along y.
HORIZONTAL = ("left", "centre", "right")
VERTICAL = ("top", "middle", "bottom")


def position_shares(tubelet: Tubelet, horizontal: str, vertical: str) -> tuple[float, float] | None:
    """Shares of visible frames whose box centre lies in the named third of the frame's
    width, and in the named third of its height (each is a statement of its own)."""
    rows = tubelet.visible_frames
    if not rows:
        return None
    h_hits = v_hits = 0
    for r in rows:
        cx, cy = centre(r.box_xyxy)
        h_hits += third_of(cx / tubelet.width, HORIZONTAL) == horizontal
        v_hits += third_of(cy / tubelet.height, VERTICAL) == vertical
    return round(h_hits / len(rows), 4), round(v_hits / len(rows), 4)


def rank_share(tubelet_id: str, group: Sequence[Tubelet], axis: int, rank: int) -> tuple[float, int]:
    """How true "the ``rank``-th (0-based) of ``group`` along ``axis`` (0: from the left,
    1: from the top)" is of ``tubelet_id``: the share of the frames where the whole group
    is visible on which its box centre has that rank, and how many such frames there are."""
    rows = [{f.frame_idx: f for f in t.frames if f.visible} for t in group]
    frames = set(rows[0]).intersection(*rows[1:]) if rows else set()
    mine = next(k for k, t in enumerate(group) if t.tubelet_id == tubelet_id)
    hits = 0
    for idx in frames:
        at = [centre(r[idx].box_xyxy)[axis] for r in rows]
        # strictly: exactly ``rank`` others before it and the rest after (a tie is no order)
        before = sum(v < at[mine] for k, v in enumerate(at) if k != mine)
        after = sum(v > at[mine] for k, v in enumerate(at) if k != mine)
        hits += before == rank and after == len(group) - 1 - rank
    return (round(hits / len(frames), 4) if frames else 0.0), len(frames)
