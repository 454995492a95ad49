"""Appearance descriptors (colour histograms) and how re-entry combines them with position."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cv2")

from tubelet.annotators.detectors.appearance import (
    N_BINS,
    appearance_distance,
    describe,
    histogram,
    mean_descriptor,
    remember,
)
from tubelet.annotators.tracking.matching import reentry_costs


def scene(colour: tuple[int, int, int], seed: int = 0, at: tuple[int, int] = (20, 30)) -> np.ndarray:
    """A 96x128 noisy grey frame with a 30x40 block of ``colour`` (noisy too) at ``at``."""
    rng = np.random.default_rng(seed)
    frame = rng.integers(100, 130, (96, 128, 3)).astype(np.uint8)
    y, x = at
    block = np.array(colour) + rng.integers(-15, 16, (40, 30, 3))
    frame[y : y + 40, x : x + 30] = np.clip(block, 0, 255).astype(np.uint8)
    return frame


def box_at(at: tuple[int, int] = (20, 30)) -> list[float]:
    y, x = at
    return [float(x), float(y), float(x + 30), float(y + 40)]


def test_descriptor_is_a_small_l1_normalised_histogram():
    d = describe(scene((200, 40, 40)), box_at())
    assert d is not None and len(d) == N_BINS
    assert sum(d) == pytest.approx(1.0) and min(d) >= 0.0


def test_same_object_is_near_and_different_colours_are_far():
    red = describe(scene((200, 40, 40)), box_at())
    assert appearance_distance(red, red) == pytest.approx(0.0, abs=1e-9)
    # the same object elsewhere, other noise, a loose box: still near
    moved = describe(scene((200, 40, 40), seed=5, at=(50, 80)), [78.0, 47.0, 113.0, 92.0])
    assert appearance_distance(red, moved) < 0.15
    # the same red in dimmer or brighter light (value and saturation move; soft bins
    # keep it near): nearer than any other colour
    lit = [describe(scene(c, seed=2), box_at()) for c in ((160, 35, 30), (120, 30, 25), (230, 80, 80))]
    assert max(appearance_distance(red, d) for d in lit) < 0.4
    for colour in [(40, 180, 60), (40, 60, 200), (220, 220, 220), (20, 20, 20), (128, 128, 128), (210, 200, 40)]:
        other = describe(scene(colour), box_at())
        assert appearance_distance(red, other) > 0.8, colour


def test_red_hues_on_both_sides_of_zero_share_a_bin():
    # OpenCV hue: ~2 and ~178 are both red; a bin edge at 0 would split them apart
    a = histogram(np.array([[220, 30, 40]] * 50))  # a touch of blue: hue ~178
    b = histogram(np.array([[220, 40, 30]] * 50))  # a touch of green: hue ~2
    assert appearance_distance(a, b) < 0.15


def test_grey_levels_are_told_apart_without_hue():
    white, black, grey = (histogram(np.array([[v, v, v]] * 50)) for v in (240, 10, 128))
    assert appearance_distance(white, black) > 0.9
    assert appearance_distance(white, grey) > 0.8 and appearance_distance(black, grey) > 0.8


def test_mask_excludes_the_background_and_the_box_uses_its_inner_part():
    frame = scene((40, 60, 200))
    frame[:, :] = (200, 40, 40)  # a red background...
    frame[20:60, 30:60] = (40, 60, 200)  # ...around a blue block
    mask = np.zeros(frame.shape[:2], bool)
    mask[20:60, 30:60] = True
    blue = histogram(np.array([[40, 60, 200]]))
    assert appearance_distance(describe(frame, box_at(), mask), blue) < 1e-6
    # a box twice too wide: its inner part is still mostly the block
    loose = describe(frame, [15.0, 20.0, 75.0, 60.0])
    assert appearance_distance(loose, blue) < 0.25
    # box-only descriptors read the frame only inside the box (clipped to the frame)
    assert describe(frame, [-50.0, -50.0, 5.0, 5.0]) is None  # inner part is outside
    assert describe(frame, [30.0, 20.0, 33.0, 23.0]) is None  # a sliver: too few pixels
    assert describe(frame, box_at(), np.zeros(frame.shape[:2], bool)) is None
    with pytest.raises(ValueError):
        describe(frame, box_at(), mask[:10])


def test_track_memory_is_the_mean_of_the_last_few():
    memory: list[list[float]] = []
    a, b = [1.0, 0.0], [0.0, 1.0]
    remember(memory, a, keep=2)
    remember(memory, None, keep=2)  # a detection without a descriptor changes nothing
    remember(memory, b, keep=2)
    remember(memory, b, keep=2)
    assert memory == [b, b]
    assert mean_descriptor([a, b]) == pytest.approx([0.5, 0.5])
    assert mean_descriptor([]) is None
    remember(memory, a, keep=0)
    assert memory == [b, b]


def test_reentry_costs_gate_by_position_and_decide_by_appearance():
    inf, nan = np.inf, np.nan
    # one detection, two lost objects; the first is nearer, the second looks the same
    position = np.array([[0.05, 0.2]])
    looks = np.array([[0.9, 0.1]])
    cost = reentry_costs(position, looks, max_appearance=0.5)
    assert np.isinf(cost[0, 0]) and cost[0, 1] == pytest.approx(0.1, abs=1e-2)
    # appearance decides when both are plausible
    cost = reentry_costs(position, np.array([[0.4, 0.1]]), max_appearance=0.5)
    assert cost[0, 1] < cost[0, 0]
    # position stays a gate: looking the same does not bring back an implausible one
    cost = reentry_costs(np.array([[inf, 0.2]]), np.array([[0.0, 0.3]]), max_appearance=0.5)
    assert np.isinf(cost[0, 0]) and np.isfinite(cost[0, 1])
    # far from every lost object: nothing allowed (a new object)
    assert np.isinf(reentry_costs(position, np.array([[0.7, 0.8]]), 0.5)).all()
    # no descriptors anywhere: position alone, exactly as before
    assert reentry_costs(position, np.full((1, 2), nan), 0.5).tolist() == position.tolist()
    # some pairs without descriptors: position decides (scales are not mixed), the
    # appearance veto still applies where it is known
    cost = reentry_costs(np.array([[0.05, 0.2, 0.3]]), np.array([[0.9, nan, 0.1]]), 0.5)
    assert np.isinf(cost[0, 0]) and cost[0, 1:].tolist() == [0.2, 0.3]
