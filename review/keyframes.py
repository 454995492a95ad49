"""Tubelet boxes ⇄ Label Studio video keyframes (pure).

Label Studio (LS) shows an object track as a ``videorectangle`` result whose
``value.sequence`` lists keyframes ``{frame (1-based), time, x, y, width, height
(percent of the frame), rotation, enabled}``. LS export (label_studio_sdk's
``extract_key_frames``, used by ``interpolate_key_frames``) turns keyframes into
per-frame boxes like this:

- every keyframe is a box on its own frame, an ``enabled: false`` one included;
- an enabled keyframe is interpolated linearly, per coordinate and by frame number, up to
  the next keyframe (whatever that one's ``enabled``); an enabled *last* keyframe is held
  until the video's last frame;
- after a disabled keyframe the track is hidden until the next keyframe.

So a track that leaves the view (or ends before the video does) gets a disabled keyframe
on its last visible frame, and an enabled one on the frame it comes back.

Here frames are 0-based and boxes absolute-pixel ``[x1, y1, x2, y2]``, as in the dataset
(docs/data-format.md). ``select_keyframes`` picks few keyframes that reproduce a tubelet
within a pixel tolerance, ``interpolate_keyframes`` is what LS would show for them, and
``to_ls_sequence`` / ``from_ls_sequence`` convert to and from LS's ``sequence``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Box = tuple[float, float, float, float]

PERCENT_DECIMALS = 4  # 1e-4 % of a 3840-px frame is 0.004 px: far inside any tolerance
TIME_DECIMALS = 6
_EPS_S = 1e-6  # float noise (and to_ls_sequence rounding) allowed for in keyframe times
_EPS_PX = 1e-6  # float noise allowed for when checking the tolerance


@dataclass(frozen=True)
class Keyframe:
    """One LS keyframe in dataset terms."""

    frame_idx: int  # 0-based
    box_xyxy: Box  # absolute pixels
    enabled: bool  # False: the box shows on this frame, hidden after it until the next keyframe


# ------------------------------------------------------------------ selection
def select_keyframes(
    track: Sequence[tuple[int, Sequence[float] | None]], *, tolerance_px: float = 2.0, n_frames: int
) -> list[Keyframe]:
    """Few keyframes from which LS reproduces ``track``.

    ``track`` lists a tubelet's frames in ascending order as ``(frame_idx, box)``, ``box``
    None where the object is out of view. With the keyframes returned,
    ``interpolate_keyframes(..., n_frames)`` gives every listed visible frame's box within
    ``tolerance_px`` (max abs error over the 4 coordinates), and shows nothing on listed
    invisible frames, before the first visible frame, or after the last one (unless that
    is the video's last frame). Frames not listed between two listed visible frames (a
    sampled tubelet) are interpolated, unconstrained.

    Each run of consecutive visible rows is simplified Douglas–Peucker-style (split at the
    worst-reproduced frame until all fit; the keyframes keep the track's own boxes), then
    keyframes whose neighbours already interpolate across them are dropped. A run's last
    keyframe is disabled unless the run ends on frame ``n_frames - 1``, where holding the
    previous keyframe may even make it unnecessary. A track never visible gives ``[]``.

    Raises ``ValueError`` for frames not strictly ascending or outside ``[0, n_frames)``,
    a box that is not 4 finite numbers, or a negative tolerance.
    """
    if tolerance_px < 0:
        raise ValueError(f"tolerance_px must be >= 0, got {tolerance_px}")
    limit = max(tolerance_px - _EPS_PX, _EPS_PX)
    keyframes: list[Keyframe] = []
    runs = _visible_runs(track, n_frames)
    for n, (frames, boxes) in enumerate(runs):
        reaches_end = n == len(runs) - 1 and frames[-1] == n_frames - 1
        keep = _simplify(frames, boxes, limit)
        if reaches_end and len(keep) >= 2 and _holds(boxes, keep[-2], limit):
            keep.pop()  # the enabled keyframe before it is held to the end anyway
        for i in keep:
            enabled = reaches_end or i != len(frames) - 1
            keyframes.append(Keyframe(int(frames[i]), _box(boxes[i]), enabled))
    return keyframes


def _visible_runs(
    track: Sequence[tuple[int, Sequence[float] | None]], n_frames: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(frames, boxes [n, 4])`` of each maximal run of listed rows that are visible."""
    runs: list[tuple[list[int], list[Sequence[float]]]] = []
    previous = -1
    in_run = False
    for frame_idx, box in track:
        frame_idx = int(frame_idx)
        if not 0 <= frame_idx < n_frames:
            raise ValueError(f"track frame {frame_idx} lies outside the video's frames 0–{n_frames - 1}")
        if frame_idx <= previous:
            raise ValueError(f"track frames must be strictly ascending: {frame_idx} after {previous}")
        previous = frame_idx
        if box is None:
            in_run = False
            continue
        if not in_run:
            runs.append(([], []))
            in_run = True
        runs[-1][0].append(frame_idx)
        runs[-1][1].append(box)
    out = []
    for frames, boxes in runs:
        try:
            array = np.asarray(boxes, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(f"track boxes must be 4 numbers each (frames {frames[0]}–{frames[-1]}): {error}") from None
        if array.ndim != 2 or array.shape[1] != 4 or not np.isfinite(array).all():
            raise ValueError(f"track boxes must be 4 finite numbers each (frames {frames[0]}–{frames[-1]})")
        out.append((np.asarray(frames, dtype=np.float64), array))
    return out


def _segment_error(frames: np.ndarray, boxes: np.ndarray, i: int, j: int) -> np.ndarray:
    """Max abs error of each row strictly between ``i`` and ``j`` when interpolated from them
    (the same arithmetic as LS: ``a + (b - a) * (offset / span)``)."""
    t = (frames[i + 1 : j] - frames[i]) / (frames[j] - frames[i])
    predicted = boxes[i] + (boxes[j] - boxes[i]) * t[:, None]
    return np.abs(predicted - boxes[i + 1 : j]).max(axis=1)


def _fits(frames: np.ndarray, boxes: np.ndarray, i: int, j: int, limit: float) -> bool:
    return j - i < 2 or bool(_segment_error(frames, boxes, i, j).max() <= limit)


def _simplify(frames: np.ndarray, boxes: np.ndarray, limit: float) -> list[int]:
    """Indices of the rows to keep: first and last, and enough between that interpolating
    between kept rows reproduces every row within ``limit``."""
    n = len(frames)
    if n <= 2:
        return list(range(n))
    keep = np.zeros(n, dtype=bool)
    keep[0] = keep[-1] = True
    stack = [(0, n - 1)]
    while stack:
        i, j = stack.pop()
        if j - i < 2:
            continue
        errors = _segment_error(frames, boxes, i, j)
        worst = int(errors.argmax())
        if errors[worst] > limit:
            m = i + 1 + worst
            keep[m] = True
            stack += [(i, m), (m, j)]
    kept = [int(i) for i in np.flatnonzero(keep)]
    pruned = [kept[0]]  # drop a keyframe when its neighbours interpolate across it
    for k in range(1, len(kept) - 1):
        if not _fits(frames, boxes, pruned[-1], kept[k + 1], limit):
            pruned.append(kept[k])
    pruned.append(kept[-1])
    return pruned


def _holds(boxes: np.ndarray, i: int, limit: float) -> bool:
    """Whether holding row ``i``'s box reproduces every later row within ``limit``."""
    return bool(np.abs(boxes[i + 1 :] - boxes[i]).max() <= limit)


def _box(values: Sequence[float]) -> Box:
    x1, y1, x2, y2 = (float(v) for v in values)
    return (x1, y1, x2, y2)


# ------------------------------------------------------------------ what LS shows
def interpolate_keyframes(keyframes: Sequence[Keyframe], n_frames: int) -> dict[int, Box]:
    """The box on each frame where LS export shows one, keyed by 0-based frame, ascending.

    Mirrors ``extract_key_frames``: each keyframe's own box on its frame; from an enabled
    keyframe, linear interpolation up to the next keyframe, or, for the last one, its box
    held through frame ``n_frames - 1``; nothing after a disabled keyframe until the next.
    Keyframes are taken in frame order; of two on one frame the later one listed wins.
    """
    ordered = sorted(keyframes, key=lambda k: k.frame_idx)
    shown: dict[int, Box] = {}
    for n, key in enumerate(ordered):
        shown[key.frame_idx] = key.box_xyxy
        if not key.enabled:
            continue
        if n + 1 < len(ordered):
            nxt = ordered[n + 1]
            span = nxt.frame_idx - key.frame_idx
            for offset in range(1, span):
                t = offset / span
                shown[key.frame_idx + offset] = _box(a + (b - a) * t for a, b in zip(key.box_xyxy, nxt.box_xyxy))
        else:
            for frame_idx in range(key.frame_idx + 1, n_frames):
                shown[frame_idx] = key.box_xyxy
    return dict(sorted(shown.items()))


# ------------------------------------------------------------------ LS sequence
def to_ls_sequence(keyframes: Sequence[Keyframe], *, width: int, height: int, fps: float) -> list[dict[str, Any]]:
    """LS ``sequence`` items for ``keyframes``: 1-based ``frame``, ``time = frame_idx / fps``
    (LS puts 1-based frame n at ``(n - 1) / fps``), percent coordinates rounded to
    ``PERCENT_DECIMALS`` decimals, ``rotation`` 0."""
    if width <= 0 or height <= 0 or fps <= 0:
        raise ValueError(f"width, height and fps must be positive, got {width}, {height}, {fps}")
    out = []
    for key in keyframes:
        x1, y1, x2, y2 = key.box_xyxy
        out.append(
            {
                "frame": int(key.frame_idx) + 1,
                "time": round(key.frame_idx / fps, TIME_DECIMALS),
                "x": round(x1 / width * 100.0, PERCENT_DECIMALS),
                "y": round(y1 / height * 100.0, PERCENT_DECIMALS),
                "width": round((x2 - x1) / width * 100.0, PERCENT_DECIMALS),
                "height": round((y2 - y1) / height * 100.0, PERCENT_DECIMALS),
                "rotation": 0,
                "enabled": bool(key.enabled),
            }
        )
    return out


def from_ls_sequence(sequence: Sequence[Mapping[str, Any]], *, width: int, height: int) -> list[Keyframe]:
    """Keyframes (0-based, pixel boxes) from LS ``sequence`` items, sorted by frame.

    Of several items on one frame the last listed is kept; a missing ``enabled`` means
    True; other keys (``time``, ``rotation``, ``auto`` on frames LS interpolated) are
    ignored, so an exported per-frame sequence gives back every shown box. Raises
    ``ValueError`` for a frame that is not an integer >= 1 or a coordinate that is missing
    or not a finite number.
    """
    by_frame: dict[int, Keyframe] = {}
    for item in sequence:
        frame = _number(item, "frame")
        if frame != int(frame) or frame < 1:
            raise ValueError(f"keyframe frame must be an integer >= 1 (1-based), got {item.get('frame')!r}")
        x, y, w, h = (_number(item, key) for key in ("x", "y", "width", "height"))
        box = (x / 100.0 * width, y / 100.0 * height, (x + w) / 100.0 * width, (y + h) / 100.0 * height)
        by_frame[int(frame) - 1] = Keyframe(int(frame) - 1, box, bool(item.get("enabled", True)))
    return [by_frame[f] for f in sorted(by_frame)]


def _number(item: Mapping[str, Any], key: str) -> float:
    value = item.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        where = f" (frame {item.get('frame')!r})" if key != "frame" else ""
        raise ValueError(f"keyframe {key!r} must be a finite number, got {value!r}{where}")
    return float(value)


def keyframes_time_mismatch(sequence: Sequence[Mapping[str, Any]], fps: float) -> list[int]:
    """1-based frames whose ``time`` is off ``(frame - 1) / fps`` by more than half a frame.

    A sign that LS played the video at another frame rate (its default is 24 fps). Items
    LS interpolated (``"auto": true``) are skipped: LS derives their times itself, rounds
    them to 0.01 s, and stretches the hold after the last keyframe to the video's
    ``duration``, a frame past the last frame's time. Items without a numeric ``frame``
    or ``time`` are skipped too (``from_ls_sequence`` reports bad frames).
    """
    allowed = 0.5 / fps + _EPS_S
    out = set()
    for item in sequence:
        if item.get("auto"):
            continue
        frame, time = item.get("frame"), item.get("time")
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (frame, time))
        if numbers and abs(time - (frame - 1) / fps) > allowed:
            out.add(int(frame))
    return sorted(out)
