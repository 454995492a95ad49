"""The lite tracker's mask steps (annotators/tracking/masks.py) on small drawn frames."""

from __future__ import annotations

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from tubelet.annotators.tracking.masks import (  # noqa: E402
    ColourModel,
    clip_to_box,
    fill_holes,
    fits_box,
    grabcut_box,
    settle,
    warp_mask,
)

H, W = 60, 80
RED, GREEN = (200, 30, 30), (30, 160, 40)


def scene(x1: int, x2: int, y1: int = 20, y2: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """A red rectangle on green grass with a little noise; its mask."""
    rng = np.random.default_rng(0)
    rgb = np.empty((H, W, 3), np.uint8)
    rgb[:] = GREEN
    rgb[y1:y2, x1:x2] = RED
    rgb = np.clip(rgb.astype(int) + rng.integers(-12, 13, rgb.shape), 0, 255).astype(np.uint8)
    mask = np.zeros((H, W), bool)
    mask[y1:y2, x1:x2] = True
    return rgb, mask


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_colour_model_tells_the_object_from_its_surroundings() -> None:
    rgb, mask = scene(20, 50)
    model = ColourModel.learn(rgb, mask)
    assert model is not None
    ratio = model.log_ratio(rgb, limit=3.0)
    assert ratio[mask].mean() > 2.0 and ratio[~mask].mean() < -2.0
    assert np.abs(ratio).max() <= 3.0  # clipped: one colour never decides alone
    assert ColourModel.learn(rgb, np.zeros_like(mask)) is None


def test_warp_follows_the_flow() -> None:
    _, mask = scene(20, 50)
    flow = np.zeros((H, W, 2), np.float32)
    flow[..., 0] = -5.0  # every pixel came from 5 px to its left: the object moved right
    gx, gy = np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32))
    moved = warp_mask(mask, flow, (gx, gy)) >= 0.5
    _, truth = scene(25, 55)
    assert np.array_equal(moved, truth)


def test_settle_moves_the_outline_to_the_colours_and_keeps_the_core() -> None:
    rgb, truth = scene(20, 50)
    model = ColourModel.learn(rgb, truth)
    # a warped mask 3 px too far right: the colours pull its outline back onto the object
    _, off = scene(23, 53)
    settled = settle(off.astype(np.float32), rgb, model, band=4, prior=2.0, colour_limit=3.0)
    assert iou(settled, truth) > 0.95 > iou(off, truth)
    # without a colour model the warped mask is kept as it is
    assert np.array_equal(settle(off.astype(np.float32), rgb, None, 4, 2.0, 3.0), off)


def test_settle_cannot_empty_the_core_of_a_mask() -> None:
    rgb, truth = scene(20, 50)
    model = ColourModel.learn(rgb, ~truth & clip_to_box(np.ones_like(truth), [10, 10, 70, 50], 0.0))
    assert model is not None  # a model that calls the object background everywhere
    settled = settle(truth.astype(np.float32), rgb, model, band=3, prior=2.0, colour_limit=3.0)
    core = cv2.erode(truth.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    assert settled[core].all()


def test_fill_holes_and_clip_to_box() -> None:
    _, mask = scene(20, 50)
    holed = mask.copy()
    holed[28:32, 30:34] = False
    assert np.array_equal(fill_holes(holed), mask)
    notch = mask.copy()
    notch[20:24, 30:34] = False  # open to the outside: not a hole
    assert np.array_equal(fill_holes(notch), notch)
    clipped = clip_to_box(mask, [30, 0, 40, 60], 0.0)
    assert clipped.sum() == 10 * 20 and clipped[:, 30:40].sum() == clipped.sum()


def test_fits_box() -> None:
    _, mask = scene(20, 50)
    assert fits_box(mask, [20, 20, 50, 40], 0.5, (0.25, 1.0))
    assert not fits_box(mask, [45, 20, 75, 40], 0.5, (0.25, 1.0))  # drifted off the box
    thin = np.zeros_like(mask)
    thin[20:40, 20:23] = True
    assert not fits_box(thin, [20, 20, 50, 40], 0.05, (0.25, 1.0))  # covers a tenth of the box
    assert not fits_box(np.zeros_like(mask), [20, 20, 50, 40], 0.0, (0.0, 1.0))


@pytest.mark.parametrize("side", [None, 32])
def test_grabcut_box_segments_the_box_and_is_deterministic(side) -> None:
    rgb, truth = scene(20, 50)
    first = grabcut_box(rgb, [16, 16, 54, 44], side, 2, seed=7)
    assert first is not None and iou(first, truth) > 0.8
    cv2.setRNGSeed(12345)  # whatever ran before, the seed decides
    again = grabcut_box(rgb, [16, 16, 54, 44], side, 2, seed=7)
    assert again is not None and np.array_equal(first, again)
    assert grabcut_box(rgb, [10, 10, 12, 12], side, 2, seed=7) is None  # too small to hold anything
