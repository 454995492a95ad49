"""Fragmentation: how many predicted tracks each ground-truth object was matched to."""

from __future__ import annotations

import pytest

from tests.evaluation.test_evaluation import N, box_a, box_b, gt_tracks, track, videos_table
from tubelet.evaluation.fragments import fragments, overall_tracks_per_object
from tubelet.schemas.arrow import records_to_table

pytest.importorskip("scipy")


def _fragments(pred, gt=None):
    gt = gt if gt is not None else gt_tracks(masks=False)
    tables = records_to_table("tubelets", pred), records_to_table("tubelets", gt)
    return fragments(*tables, gt_videos=videos_table())


def test_one_track_per_object_is_one() -> None:
    (result,) = _fragments(gt_tracks(masks=False))
    assert result.by_object == {"v:t:a": ["v:t:a"], "v:t:b": ["v:t:b"]}
    assert result.tracks_per_object == 1.0 and result.split == 0 and result.matched == 2


def test_an_object_split_in_three_counts_three_tracks() -> None:
    # object a is tracked by three fragments in turn (a gap, then a re-detection);
    # object b by one track; one stray track matches nothing
    pred = [
        track("p1", {i: box_a(i) for i in range(0, 6)}, masks=False),
        track("p2", {i: box_a(i) for i in range(8, 14)}, masks=False),
        track("p3", {i: box_a(i) for i in range(14, N)}, masks=False),
        track("p4", {i: box_b(i) for i in range(N)}, masks=False),
        track("stray", {i: [0.0, 60.0, 10.0, 75.0] for i in range(N)}, masks=False),
    ]
    (result,) = _fragments(pred)
    assert result.by_object["v:t:a"] == ["v:t:p1", "v:t:p2", "v:t:p3"]
    assert result.by_object["v:t:b"] == ["v:t:p4"]
    assert result.tracks_per_object == 2.0 and result.split == 1
    assert overall_tracks_per_object([result]) == 2.0


def test_a_track_coming_back_after_a_switch_is_counted_once_and_misses_are_left_out() -> None:
    # p1 holds a, p2 takes over for a while, then p1 again: two tracks, not three
    pred = [
        track("p1", {**{i: box_a(i) for i in range(0, 5)}, **{i: box_a(i) for i in range(10, N)}}, masks=False),
        track("p2", {i: box_a(i) for i in range(5, 10)}, masks=False),
    ]
    (result,) = _fragments(pred)
    assert result.by_object["v:t:a"] == ["v:t:p1", "v:t:p2"]
    assert result.by_object["v:t:b"] == []  # never matched: a miss, not a fragment
    assert result.tracks_per_object == 2.0 and result.matched == 1


def test_below_the_iou_threshold_is_no_match() -> None:
    shifted = [track("p", {i: box_a(i) for i in range(N)}, masks=False, shift=20.0)]  # IoU 1/5 with a
    (result,) = _fragments(shifted)
    assert result.by_object == {"v:t:a": [], "v:t:b": []}
    assert result.tracks_per_object is None
