"""Motion-state segmentation of a box trajectory (the lite timeline: no model, no pixels).

One visible run of a tubelet (consecutive visible frames) is turned into segments
``still`` / ``move_<direction>``: box centres and scales are smoothed (a running
median, robust to mask jitter, then a local linear fit for the velocity), the velocity
is normalised by the frame diagonal per second, and a small state machine with
hysteresis labels every frame. Segments shorter than ``min_segment_s`` are absorbed
by their longer neighbour, so one noisy frame never splits a segment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tubelet.schemas.geometry import edges_touched

#: Direction -> (label, text without adverb).
DIRECTIONS: dict[str, tuple[str, str]] = {
    "left": ("move_left", "moves left"),
    "right": ("move_right", "moves right"),
    "up": ("move_up", "moves up"),
    "down": ("move_down", "moves down"),
    "towards": ("move_towards", "moves towards the camera"),
    "away": ("move_away", "moves away from the camera"),
}
STILL = "still"


@dataclass(frozen=True)
class MotionConfig:
    """Thresholds of the segmentation. Speeds are in frame diagonals per second;
    growth in natural-log box scale (sqrt of the area) per second.

    ``move_speed``/``still_speed``: start moving above the first, stop below the second
    (hysteresis). ``grow_rate``: the growth that counts as much as ``move_speed``.
    ``direction_margin``: a new direction must beat the current one by this factor.
    ``slow_speed``/``fast_speed``: "slowly" below, "quickly" above.
    ``edge_margin``: a box this close to a border (fraction of the frame side, at least
    one pixel) touches it.
    """

    smooth_s: float = 0.5
    move_speed: float = 0.05
    still_speed: float = 0.03
    grow_rate: float = 0.35
    direction_margin: float = 1.5
    min_segment_s: float = 0.5
    slow_speed: float = 0.1
    fast_speed: float = 0.3
    edge_margin: float = 0.005

    def __post_init__(self) -> None:
        if not 0 < self.still_speed <= self.move_speed:
            raise ValueError("need 0 < still_speed <= move_speed (hysteresis)")
        if self.smooth_s < 0 or self.min_segment_s < 0 or self.grow_rate <= 0 or self.direction_margin < 1:
            raise ValueError("smooth_s, min_segment_s >= 0; grow_rate > 0; direction_margin >= 1")


@dataclass
class MotionSegment:
    """Frames ``[start, end]`` (positions in the run, inclusive) in one state."""

    start: int
    end: int
    state: str  # "still" or a key of DIRECTIONS
    speed: float  # median translation speed, diagonals per second

    @property
    def label(self) -> str:
        return STILL if self.state == STILL else DIRECTIONS[self.state][0]

    def text(self, config: MotionConfig) -> str:
        """``stays still``, ``moves right quickly``, ``moves towards the camera`` ..."""
        if self.state == STILL:
            return "stays still"
        text = DIRECTIONS[self.state][1]
        if self.state in ("towards", "away"):
            return text
        if self.speed >= config.fast_speed:
            return f"{text} quickly"
        if self.speed < config.slow_speed:
            return f"{text} slowly"
        return text


@dataclass
class RunMotion:
    """The segments of one run plus the smoothed velocity of every frame (px/s)."""

    segments: list[MotionSegment]
    velocity: np.ndarray  # (n, 2) px/s


def _window(times: np.ndarray, smooth_s: float) -> int:
    """Half-width in frames of the smoothing window."""
    if len(times) < 2 or smooth_s <= 0:
        return 0
    dt = float(np.median(np.diff(times)))
    return max(1, int(round(smooth_s / max(dt, 1e-6) / 2)))


def _running_median(x: np.ndarray, half: int) -> np.ndarray:
    if half == 0:
        return x.copy()
    return np.array([np.median(x[max(0, i - half) : i + half + 1], axis=0) for i in range(len(x))])


def _local_slope(times: np.ndarray, x: np.ndarray, half: int) -> np.ndarray:
    """Slope of a least-squares line through each frame's window (per column of ``x``)."""
    n = len(times)
    out = np.zeros_like(x, dtype=float)
    if n < 2:
        return out
    half = max(half, 1)
    for i in range(n):
        lo, hi = max(0, i - half), min(n, i + half + 1)
        t = times[lo:hi] - times[lo:hi].mean()
        denom = float((t * t).sum())
        if denom > 0:
            out[i] = (t[:, None] * (x[lo:hi] - x[lo:hi].mean(axis=0))).sum(axis=0) / denom
    return out


def segment_run(
    times: np.ndarray, boxes: np.ndarray, width: int, height: int, config: MotionConfig = MotionConfig()
) -> RunMotion:
    """Segment one visible run: ``times`` (n,) seconds, ``boxes`` (n, 4) xyxy pixels."""
    times = np.asarray(times, dtype=float)
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    n = len(times)
    if n == 0:
        return RunMotion([], np.zeros((0, 2)))
    centre = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)
    scale = np.sqrt(np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1.0))
    signal = np.concatenate([centre, np.log(scale)[:, None]], axis=1)
    half = _window(times, config.smooth_s)
    # Median first: a jittering mask edge moves the box for a frame or two, not the object.
    slope = _local_slope(times, _running_median(signal, half), half)
    velocity, growth = slope[:, :2], slope[:, 2]
    diagonal = math.hypot(width, height)
    v = velocity / diagonal
    # Growth is mapped onto the speed scale so one threshold decides "moving".
    g = growth / config.grow_rate * config.move_speed
    scores = np.stack([-v[:, 0], v[:, 0], -v[:, 1], v[:, 1], g, -g], axis=1)
    names = ["left", "right", "up", "down", "towards", "away"]
    speed = np.hypot(v[:, 0], v[:, 1])
    activity = np.maximum(speed, np.abs(g))

    states: list[str] = []
    state = STILL
    for i in range(n):
        best = int(np.argmax(scores[i]))
        if state == STILL:
            if activity[i] >= config.move_speed:
                state = names[best]
        elif activity[i] < config.still_speed:
            state = STILL
        else:
            current = scores[i][names.index(state)]
            # Hysteresis on direction too: a diagonal path must not flip left/up per frame.
            if names[best] != state and (current <= 0 or scores[i][best] > config.direction_margin * current):
                state = names[best]
        states.append(state)

    dt = float(np.median(np.diff(times))) if n > 1 else 0.0
    segments = _merge_short(_runs(states), times, dt, config.min_segment_s)
    for seg in segments:
        seg.speed = float(np.median(speed[seg.start : seg.end + 1]))
    return RunMotion(segments, velocity)


def _runs(states: list[str]) -> list[MotionSegment]:
    out: list[MotionSegment] = []
    for i, s in enumerate(states):
        if out and out[-1].state == s:
            out[-1].end = i
        else:
            out.append(MotionSegment(i, i, s, 0.0))
    return out


def _merge_short(segments: list[MotionSegment], times: np.ndarray, dt: float, min_s: float) -> list[MotionSegment]:
    """Absorb segments shorter than ``min_s`` into their longer neighbour, shortest first."""

    def duration(s: MotionSegment) -> float:
        return float(times[s.end] - times[s.start]) + dt

    segments = list(segments)
    while len(segments) > 1:
        i = min(range(len(segments)), key=lambda k: (duration(segments[k]), k))
        if duration(segments[i]) >= min_s:
            break
        left = segments[i - 1] if i > 0 else None
        right = segments[i + 1] if i + 1 < len(segments) else None
        target = left if right is None or (left is not None and duration(left) >= duration(right)) else right
        segments[i].state = target.state  # type: ignore[union-attr]
        merged: list[MotionSegment] = []
        for s in segments:
            if merged and merged[-1].state == s.state:
                merged[-1].end = s.end
            else:
                merged.append(s)
        segments = merged
    return segments


def touched_edges(
    box: list[float] | np.ndarray, width: int, height: int, margin: float = MotionConfig.edge_margin
) -> list[str]:
    """The frame borders a box touches (within ``margin`` of the frame size, 1 px at least)."""
    return edges_touched(box, width, height, margin, min_px=1.0)


def edge_towards(edges: list[str], velocity: np.ndarray | None) -> str | None:
    """Of the touched ``edges``, the one the velocity points at most (the first one when
    the velocity says nothing)."""
    if not edges:
        return None
    if velocity is None or not np.any(velocity):
        return edges[0]
    outward = {"left": (-1, 0), "right": (1, 0), "top": (0, -1), "bottom": (0, 1)}
    return max(edges, key=lambda e: float(np.dot(outward[e], velocity)))
