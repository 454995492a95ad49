"""Box geometry: conversions, clipping, IoU and containment on single boxes and batches."""

from __future__ import annotations

import numpy as np
import pytest

from tubelet.schemas.geometry import (
    box_area,
    box_contains,
    box_inside,
    box_iou,
    box_is_valid,
    clip_box,
    denormalize_box,
    mask_to_box,
    normalize_box,
    xywh_to_xyxy,
    xyxy_to_xywh,
)


def test_xywh_xyxy_round_trip_single_and_batch() -> None:
    assert xywh_to_xyxy([912, 484, 97, 109]).tolist() == [912, 484, 1009, 593]
    assert xyxy_to_xywh([912, 484, 1009, 593]).tolist() == [912, 484, 97, 109]
    rng = np.random.default_rng(0)
    boxes = rng.uniform(-50, 500, size=(100, 4))
    assert np.allclose(xyxy_to_xywh(xywh_to_xyxy(boxes)), boxes)
    assert xywh_to_xyxy(boxes).shape == (100, 4)
    with pytest.raises(ValueError):
        xywh_to_xyxy([1, 2, 3])


def test_clip_box_keeps_the_inside_part() -> None:
    # a MOT-style box reaching past the left and bottom edges of a 1920x1080 frame
    assert clip_box([-12, 1000, 40, 1130], 1920, 1080).tolist() == [0, 1000, 40, 1080]
    assert clip_box([10, 20, 30, 40], 1920, 1080).tolist() == [10, 20, 30, 40]
    # entirely outside: clipping leaves an empty box
    out = clip_box([2000, 10, 2100, 50], 1920, 1080)
    assert not box_is_valid(out)
    batch = clip_box([[-1, -1, 5, 5], [1, 1, 700, 500]], 640, 480)
    assert batch.tolist() == [[0, 0, 5, 5], [1, 1, 640, 480]]


def test_area_and_validity() -> None:
    assert box_area([0, 0, 10, 5]) == 50
    assert box_area([10, 0, 0, 5]) == 0  # inverted
    assert box_area([[0, 0, 2, 2], [1, 1, 1, 3]]).tolist() == [4, 0]
    assert box_is_valid([0, 0, 1, 1])
    assert not box_is_valid([0, 0, 0, 1])
    assert not box_is_valid([0, 0, np.nan, 1])


def test_iou() -> None:
    assert box_iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert box_iou([0, 0, 10, 10], [10, 0, 20, 10]) == 0.0  # touching edges do not overlap
    assert box_iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert box_iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0
    a = np.array([[0, 0, 10, 10], [5, 5, 15, 15], [100, 100, 110, 110]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10]])
    m = box_iou(a, b)
    assert m.shape == (3, 2)
    assert m[0, 0] == 1.0 and m[2].tolist() == [0.0, 0.0]
    assert np.allclose(box_iou(b, a), m.T)
    assert m[1, 1] == pytest.approx(50 / 150)  # [5,5,15,15] vs [5,0,15,10]: 10x5 overlap
    assert m[1, 0] == pytest.approx(25 / 175)


def test_inside_and_contains() -> None:
    assert box_inside([0, 0, 640, 480], 640, 480)  # edges are inclusive (x2 is exclusive)
    assert not box_inside([0, 0, 640.5, 480], 640, 480)
    assert not box_inside([-0.5, 0, 10, 10], 640, 480)
    assert not box_inside([5, 5, 5, 10], 640, 480)
    assert box_inside([[1, 1, 2, 2], [1, 1, 700, 2]], 640, 480).tolist() == [True, False]
    assert box_contains([-10, -10, 50, 50], [0, 0, 50, 50])
    assert not box_contains([0, 0, 40, 50], [0, 0, 50, 50])


def test_mask_to_box_is_pixel_exact() -> None:
    m = np.zeros((8, 12), dtype=np.uint8)
    assert mask_to_box(m) is None
    m[2:5, 3:9] = 1
    assert mask_to_box(m) == [3.0, 2.0, 9.0, 5.0]
    m[7, 11] = 1
    assert mask_to_box(m) == [3.0, 2.0, 12.0, 8.0]
    with pytest.raises(ValueError):
        mask_to_box(np.zeros(5))


def test_normalize_round_trip() -> None:
    box = [192, 108, 960, 540]
    n = normalize_box(box, 1920, 1080)
    assert n.tolist() == [0.1, 0.1, 0.5, 0.5]
    assert np.allclose(denormalize_box(n, 1920, 1080), box)
