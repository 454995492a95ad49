"""Tubelet ⇄ Label Studio keyframes: selection within tolerance, LS interpolation
semantics (hand-computed), percent conversion and the frame-rate check."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pytest

from tubelet.review.keyframes import (
    Keyframe,
    from_ls_sequence,
    interpolate_keyframes,
    keyframes_time_mismatch,
    select_keyframes,
    to_ls_sequence,
)

W, H, FPS = 854, 480, 24.0
Track = list[tuple[int, list[float] | None]]


def _check(track: Track, keyframes: list[Keyframe], n_frames: int, tol: float) -> None:
    """What LS would show reproduces ``track``: listed visible frames within ``tol``,
    listed invisible frames hidden, nothing before the first or after the last visible
    frame (unless that is the video's last frame)."""
    shown = interpolate_keyframes(keyframes, n_frames)
    visible = [(f, b) for f, b in track if b is not None]
    for frame_idx, box in track:
        if box is None:
            assert frame_idx not in shown, frame_idx
        else:
            assert np.abs(np.subtract(shown[frame_idx], box)).max() <= tol, frame_idx
    if visible:
        first, last = visible[0][0], visible[-1][0]
        assert min(shown) == first and max(shown) == last
        assert keyframes[0].frame_idx == first and keyframes[0].enabled
    else:
        assert shown == {}
    assert [k.frame_idx for k in keyframes] == sorted({k.frame_idx for k in keyframes})


def _walk(rng: np.random.Generator, n: int, jitter: float) -> np.ndarray:
    """A smooth random motion (plus per-frame jitter) of a box, ``[n, 4]``."""
    t = np.arange(n)[:, None]
    centre = np.array([300.0, 200.0]) + np.cumsum(rng.normal(0, 0.3, (n, 2)), axis=0) + t * rng.normal(0, 1.5, 2)
    size = np.array([80.0, 60.0]) + 10 * np.sin(t / rng.uniform(20, 60))
    boxes = np.hstack([centre - size / 2, centre + size / 2])
    return boxes + rng.normal(0, jitter, boxes.shape)


def _track(boxes: np.ndarray, frames: Sequence[int], hidden: set[int] = frozenset()) -> Track:
    return [(f, None if f in hidden else boxes[f].tolist()) for f in frames]


# ------------------------------------------------------------------ selection edge cases
def test_empty_and_never_visible_tracks_give_no_keyframes() -> None:
    assert select_keyframes([], n_frames=10) == []
    assert select_keyframes([(2, None), (3, None)], n_frames=10) == []


def test_single_frame() -> None:
    box = [1.0, 2.0, 30.0, 40.0]
    assert select_keyframes([(4, box)], n_frames=10) == [Keyframe(4, (1.0, 2.0, 30.0, 40.0), False)]
    assert select_keyframes([(9, box)], n_frames=10) == [Keyframe(9, (1.0, 2.0, 30.0, 40.0), True)]
    assert interpolate_keyframes(select_keyframes([(4, box)], n_frames=10), 10) == {4: (1.0, 2.0, 30.0, 40.0)}


def test_constant_velocity_needs_two_keyframes() -> None:
    track = [(f, [10.0 + 2 * f, 20.0 + f, 60.0 + 2 * f, 90.0 + f]) for f in range(300)]
    at_end = select_keyframes(track, n_frames=300)
    assert [(k.frame_idx, k.enabled) for k in at_end] == [(0, True), (299, True)]
    early = select_keyframes(track, n_frames=500)  # the video goes on: the end is disabled
    assert [(k.frame_idx, k.enabled) for k in early] == [(0, True), (299, False)]
    _check(track, at_end, 300, 1e-6)
    _check(track, early, 500, 1e-6)


def test_still_object_to_the_last_frame_is_one_held_keyframe() -> None:
    track = [(f, [5.0, 5.0, 50.0, 50.0]) for f in range(20, 100)]
    assert select_keyframes(track, n_frames=100) == [Keyframe(20, (5.0, 5.0, 50.0, 50.0), True)]


def test_leading_and_trailing_invisible_rows_and_a_gap() -> None:
    box = [10.0, 10.0, 40.0, 40.0]
    track: Track = [(0, None), (1, None), (2, box), (3, box), (4, None), (5, None), (6, box), (7, box), (8, None)]
    keys = select_keyframes(track, n_frames=20)
    assert [(k.frame_idx, k.enabled) for k in keys] == [(2, True), (3, False), (6, True), (7, False)]
    assert sorted(interpolate_keyframes(keys, 20)) == [2, 3, 6, 7]


def test_selection_rejects_bad_tracks() -> None:
    box = [0.0, 0.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="ascending"):
        select_keyframes([(3, box), (2, box)], n_frames=10)
    with pytest.raises(ValueError, match="outside"):
        select_keyframes([(10, box)], n_frames=10)
    with pytest.raises(ValueError, match="4"):
        select_keyframes([(1, [0.0, 1.0])], n_frames=10)
    with pytest.raises(ValueError, match="tolerance"):
        select_keyframes([(1, box)], n_frames=10, tolerance_px=-1)


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("jitter", [0.0, 1.5])
@pytest.mark.parametrize("tol", [1.0, 2.0, 4.0])
def test_random_tracks_reproduced_within_tolerance(seed: int, jitter: float, tol: float) -> None:
    rng = np.random.default_rng(seed)
    n_frames = 400
    boxes = _walk(rng, n_frames, jitter)
    cases = {
        "whole video": _track(boxes, range(n_frames)),
        "ends early": _track(boxes, range(30, 250)),
        "gaps": _track(boxes, range(10, n_frames), hidden=set(range(50, 70)) | {100} | set(range(300, 302))),
        "stride 3": _track(boxes, range(0, n_frames, 3)),
        "stride 3 to the end": _track(boxes, range(1, n_frames, 3), hidden=set(range(91, 130))),
        "trailing hidden": _track(boxes, range(5, 200), hidden=set(range(150, 200))),
    }
    for name, track in cases.items():
        keys = select_keyframes(track, tolerance_px=tol, n_frames=n_frames)
        _check(track, keys, n_frames, tol)
        # and through LS's percent sequence: rounding stays far inside the tolerance
        back = from_ls_sequence(to_ls_sequence(keys, width=W, height=H, fps=FPS), width=W, height=H)
        assert [(k.frame_idx, k.enabled) for k in back] == [(k.frame_idx, k.enabled) for k in keys], name
        _check(track, back, n_frames, tol + 0.01)
        if jitter == 0.0 and name == "whole video":
            assert len(keys) < n_frames / 4  # smooth motion compresses


def test_sampled_frames_between_listed_ones_are_interpolated() -> None:
    track = [(f, [float(f), 0.0, f + 10.0, 10.0]) for f in range(0, 31, 3)]
    keys = select_keyframes(track, n_frames=100)
    assert [(k.frame_idx, k.enabled) for k in keys] == [(0, True), (30, False)]
    shown = interpolate_keyframes(keys, 100)
    assert sorted(shown) == list(range(31)) and shown[7] == (7.0, 0.0, 17.0, 10.0)


def test_long_jittery_track_is_fast() -> None:
    rng = np.random.default_rng(1)
    boxes = _walk(rng, 10_000, 3.0)
    track = _track(boxes, range(10_000))
    started = time.perf_counter()
    keys = select_keyframes(track, tolerance_px=2.0, n_frames=10_000)
    assert time.perf_counter() - started < 3.0
    _check(track, keys, 10_000, 2.0)


# ------------------------------------------------------------------ LS semantics, by hand
def test_interpolation_between_enabled_keyframes() -> None:
    keys = [Keyframe(2, (0.0, 0.0, 10.0, 10.0), True), Keyframe(6, (8.0, 4.0, 22.0, 10.0), True)]
    shown = interpolate_keyframes(keys, 8)  # the last enabled keyframe is held to frame 7
    assert shown == {
        2: (0.0, 0.0, 10.0, 10.0),
        3: (2.0, 1.0, 13.0, 10.0),
        4: (4.0, 2.0, 16.0, 10.0),
        5: (6.0, 3.0, 19.0, 10.0),
        6: (8.0, 4.0, 22.0, 10.0),
        7: (8.0, 4.0, 22.0, 10.0),
    }


def test_disabled_keyframes_show_on_their_frame_then_hide() -> None:
    a, b, c = (0.0, 0.0, 4.0, 4.0), (4.0, 0.0, 8.0, 4.0), (20.0, 20.0, 30.0, 30.0)
    keys = [Keyframe(0, a, True), Keyframe(2, b, False), Keyframe(5, c, True), Keyframe(6, c, False)]
    # enabled 0 interpolates into the disabled 2; 3-4 hidden; 5 → 6; hidden after 6
    assert interpolate_keyframes(keys, 10) == {0: a, 1: (2.0, 0.0, 6.0, 4.0), 2: b, 5: c, 6: c}


def test_disabled_first_keyframe_and_unsorted_input() -> None:
    a, b = (0.0, 0.0, 4.0, 4.0), (10.0, 0.0, 14.0, 4.0)
    keys = [Keyframe(4, b, True), Keyframe(1, a, False)]
    assert interpolate_keyframes(keys, 6) == {1: a, 4: b, 5: b}


def test_hold_stops_at_the_video_end() -> None:
    box = (1.0, 1.0, 2.0, 2.0)
    assert sorted(interpolate_keyframes([Keyframe(3, box, True)], 5)) == [3, 4]
    assert interpolate_keyframes([Keyframe(3, box, True)], 4) == {3: box}
    assert interpolate_keyframes([], 4) == {}


# ------------------------------------------------------------------ LS sequence conversion
def test_to_ls_sequence_fields() -> None:
    keys = [Keyframe(0, (85.4, 48.0, 427.0, 240.0), True), Keyframe(47, (0.0, 0.0, 854.0, 480.0), False)]
    assert to_ls_sequence(keys, width=W, height=H, fps=FPS) == [
        {"frame": 1, "time": 0.0, "x": 10.0, "y": 10.0, "width": 40.0, "height": 40.0, "rotation": 0, "enabled": True},
        {
            "frame": 48,
            "time": 1.958333,
            "x": 0.0,
            "y": 0.0,
            "width": 100.0,
            "height": 100.0,
            "rotation": 0,
            "enabled": False,
        },
    ]


def test_percent_round_trip() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        x1, y1 = rng.uniform(0, W - 1), rng.uniform(0, H - 1)
        box = (x1, y1, rng.uniform(x1, W), rng.uniform(y1, H))
        key = Keyframe(int(rng.integers(0, 1000)), box, bool(rng.integers(0, 2)))
        [back] = from_ls_sequence(to_ls_sequence([key], width=W, height=H, fps=30.0), width=W, height=H)
        assert (back.frame_idx, back.enabled) == (key.frame_idx, key.enabled)
        assert np.abs(np.subtract(back.box_xyxy, box)).max() < 1e-3


def test_from_ls_sequence_sorts_dedups_and_defaults() -> None:
    seq = [
        {"frame": 5, "x": 10, "y": 10, "width": 10, "height": 10, "enabled": False},
        {"frame": 2, "x": 0, "y": 0, "width": 50, "height": 50, "time": 0.04, "rotation": 0},
        {"frame": 5, "x": 20, "y": 20, "width": 10, "height": 10, "enabled": True, "auto": True},
    ]
    assert from_ls_sequence(seq, width=200, height=100) == [
        Keyframe(1, (0.0, 0.0, 100.0, 50.0), True),
        Keyframe(4, (40.0, 20.0, 60.0, 30.0), True),
    ]


def test_exported_per_frame_sequence_gives_the_same_boxes() -> None:
    """What LS export (``interpolate_key_frames``) returns for keyframes on 1-based frames
    1 (enabled), 3 (disabled), 5 (enabled, last) of a 6-frame video: the keyframes, plus
    ``auto`` frames copied from the keyframe before them with interpolated coordinates."""
    k1 = {"frame": 1, "time": 0.0, "x": 0.0, "y": 0.0, "width": 10.0, "height": 10.0, "rotation": 0, "enabled": True}
    k3 = {
        "frame": 3,
        "time": 0.08,
        "x": 20.0,
        "y": 10.0,
        "width": 10.0,
        "height": 10.0,
        "rotation": 0,
        "enabled": False,
    }
    k5 = {"frame": 5, "time": 0.17, "x": 50.0, "y": 50.0, "width": 20.0, "height": 20.0, "rotation": 0, "enabled": True}
    exported = [
        k1,
        {**k1, "frame": 2, "time": 0.04, "x": 10.0, "y": 5.0, "auto": True},
        k3,
        k5,
        {**k5, "frame": 6, "time": 0.25, "auto": True},
    ]
    keys = from_ls_sequence([k1, k3, k5], width=100, height=100)
    expected = interpolate_keyframes(keys, 6)
    assert expected == {
        0: (0.0, 0.0, 10.0, 10.0),
        1: (10.0, 5.0, 20.0, 15.0),
        2: (20.0, 10.0, 30.0, 20.0),
        4: (50.0, 50.0, 70.0, 70.0),
        5: (50.0, 50.0, 70.0, 70.0),
    }
    shown = from_ls_sequence(exported, width=100, height=100)
    assert {k.frame_idx: k.box_xyxy for k in shown} == expected
    assert interpolate_keyframes(shown, 6) == expected


@pytest.mark.parametrize(
    "item, message",
    [
        ({"frame": 0, "x": 1, "y": 1, "width": 1, "height": 1}, "frame"),
        ({"frame": -3, "x": 1, "y": 1, "width": 1, "height": 1}, "frame"),
        ({"frame": 2.5, "x": 1, "y": 1, "width": 1, "height": 1}, "frame"),
        ({"frame": "3", "x": 1, "y": 1, "width": 1, "height": 1}, "frame"),
        ({"frame": 3, "x": "a", "y": 1, "width": 1, "height": 1}, "'x'"),
        ({"frame": 3, "x": 1, "y": None, "width": 1, "height": 1}, "'y'"),
        ({"frame": 3, "x": 1, "y": 1, "height": 1}, "'width'"),
        ({"frame": 3, "x": 1, "y": 1, "width": float("nan"), "height": 1}, "'width'"),
    ],
)
def test_from_ls_sequence_rejects_bad_items(item: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_ls_sequence([item], width=100, height=100)


# ------------------------------------------------------------------ frame-rate check
def test_time_mismatch_flags_another_frame_rate() -> None:
    keys = [Keyframe(f, (0.0, 0.0, 1.0, 1.0), True) for f in (0, 1, 10, 100)]
    assert keyframes_time_mismatch(to_ls_sequence(keys, width=W, height=H, fps=30.0), 30.0) == []
    # LS at its default 24 fps on a 30 fps video: frame n at (n - 1) / 24
    seq = to_ls_sequence(keys, width=W, height=H, fps=24.0)
    assert keyframes_time_mismatch(seq, 30.0) == [11, 101]  # frames 1-2 are within half a frame
    # frames LS interpolated carry its own times (rounded, stretched to the duration): skipped
    auto = [{"frame": 7, "time": 0.5, "x": 0, "y": 0, "width": 1, "height": 1, "auto": True}]
    assert keyframes_time_mismatch(auto, 30.0) == []
