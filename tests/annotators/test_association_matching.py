"""The keyframe-level pieces of association: regions, overlap, Hungarian, NMS, anchor,
re-entry cue."""

from __future__ import annotations

import numpy as np
import pytest

from tubelet.annotators.tracking.matching import (
    edges_touched,
    hungarian,
    overlap,
    reentry_distance,
    region_of,
    select_anchor,
    suppress_duplicates,
)
from tubelet.annotators.tracking.propagator import Region
from tubelet.schemas.records import Detection
from tubelet.schemas.rle import encode_mask


def _mask(x1: int, y1: int, x2: int, y2: int, h: int = 40, w: int = 60) -> np.ndarray:
    m = np.zeros((h, w), dtype=bool)
    m[y1:y2, x1:x2] = True
    return m


def test_region_converts_between_mask_forms_and_derives_its_box():
    m = _mask(5, 10, 15, 30)
    from_array, from_rle = Region(mask=m, score=0.7), Region(mask=encode_mask(m))
    assert from_array.box == from_rle.box == [5.0, 10.0, 15.0, 30.0]
    assert from_array.area == from_rle.area == 200.0
    assert np.array_equal(from_rle.mask_array, m)
    compact = from_array.compact()
    assert isinstance(compact.mask, dict) and compact.score == 0.7 and compact.box == from_array.box
    assert Region(box_xyxy=[0, 0, 4, 5]).area == 20.0
    assert Region(mask=np.zeros((4, 4), bool)).is_empty
    with pytest.raises(ValueError):
        Region()


def test_overlap_uses_masks_when_both_have_them_else_boxes():
    # an L-shaped mask: box IoU with its own box is 1, mask IoU is not
    l_shape = _mask(0, 0, 20, 20)
    l_shape[5:, 5:] = False
    full = _mask(0, 0, 20, 20)
    assert overlap(Region(mask=l_shape), Region(mask=full)) == pytest.approx(l_shape.sum() / 400)
    assert overlap(Region(mask=l_shape), Region(box_xyxy=[0, 0, 20, 20])) == pytest.approx(1.0)


def test_hungarian_maximises_the_total_where_greedy_would_not():
    # greedy takes (0, 0) = 0.9 first and leaves row 1 with 0.1; the best total pairs
    # (0, 1) and (1, 0)
    score = np.array([[0.9, 0.8], [0.85, 0.1]])
    assert sorted(hungarian(score, score >= 0.3)) == [(0, 1), (1, 0)]


def test_hungarian_never_returns_a_disallowed_pair():
    score = np.array([[0.9, 0.2], [0.95, 0.1]])
    allowed = score >= 0.3  # column 1 is allowed for nobody; rows compete for column 0
    assert hungarian(score, allowed) == [(1, 0)]
    assert hungarian(np.zeros((0, 3)), np.zeros((0, 3), bool)) == []


def _det(box, score=0.9, category="person", frame=0):
    return Detection(frame, 0.0, list(box), score, category)


def test_nms_per_category_keeps_the_best_of_each_cluster():
    dets = [
        _det([0, 0, 10, 10], 0.6),
        _det([0, 0, 10, 11], 0.9),  # same person, better score
        _det([0, 0, 10, 10], 0.8, "dog"),  # another category at the same place: kept
        _det([30, 30, 40, 40], 0.7),
    ]
    kept, suppressed = suppress_duplicates(dets, 0.7)
    assert suppressed == 1
    assert [(d.score, d.category) for d in kept] == [(0.9, "person"), (0.8, "dog"), (0.7, "person")]


def test_anchor_most_confident_detections_earliest_on_ties():
    d = _det([0, 0, 1, 1])
    assert select_anchor({0: [d], 5: [d, d], 10: [d, d], 15: []}) == 5
    assert select_anchor({3: [], 7: []}) is None


def test_edges_and_reentry_cue():
    w, h = 100, 80
    assert edges_touched([0, 10, 10, 20], w, h, 0.05) == {"left"}
    assert edges_touched([95, 75, 100, 80], w, h, 0.05) == {"right", "bottom"}
    assert edges_touched([40, 30, 50, 40], w, h, 0.05) == set()
    # left through the right edge, back through the right edge: a fit, even far apart
    assert reentry_distance([96, 0, 100, 10], [97, 60, 100, 75], w, h, 0.05, 0.1) is not None
    # back through the other edge: not the same object
    assert reentry_distance([96, 0, 100, 10], [0, 60, 4, 75], w, h, 0.05, 0.1) is None
    # occluded mid-frame, reappears next to where it was
    near = reentry_distance([40, 30, 50, 40], [42, 31, 52, 41], w, h, 0.05, 0.1)
    assert near == pytest.approx(np.hypot(2, 1) / np.hypot(w, h))
    assert reentry_distance([40, 30, 50, 40], [70, 30, 80, 40], w, h, 0.05, 0.1) is None


def test_region_of_detection_keeps_its_mask():
    rle = encode_mask(_mask(1, 1, 4, 4))
    r = region_of(Detection(0, 0.0, [1, 1, 4, 4], 0.5, "cup", mask_rle=rle))
    assert r.mask is rle and r.score == 0.5 and r.box == [1.0, 1.0, 4.0, 4.0]
