"""Counting, order and verification answers of a tracked dataset against ground truth."""

from __future__ import annotations

import pytest

from tests.evaluation.test_evaluation import N, box_a, box_b, track, videos_table
from tubelet.annotators.instructions.generator import GeneratorConfig
from tubelet.evaluation.answers import answer_agreement
from tubelet.schemas.arrow import records_to_table

pytest.importorskip("scipy")

CONFIG = GeneratorConfig(task_types=("counting", "entity_order", "timestamp_verification"), max_per_task=50)


def named(tubelet, category):
    tubelet.category = category
    return tubelet


def agreement(tracked, gt, **kwargs):
    return answer_agreement(
        records_to_table("tubelets", tracked),
        records_to_table("tubelets", gt),
        videos_table(),
        config=CONFIG,
        **kwargs,
    )


def test_a_faithful_tracking_agrees_on_every_question_whatever_its_category_names():
    # ground truth: a swan over the whole video, a duck from frame 8; the tracker calls
    # both "bird" and sees them exactly
    gt = [
        named(track("swan", {i: box_a(i) for i in range(N)}, masks=False), "swan"),
        named(track("duck", {i: box_b(i) for i in range(8, N)}, masks=False), "duck"),
    ]
    tracked = [
        named(track("p1", {i: box_a(i) for i in range(N)}, masks=False), "bird"),
        named(track("p2", {i: box_b(i) for i in range(8, N)}, masks=False), "bird"),
    ]
    forward, backward = agreement(tracked, gt)
    for result in (forward, backward):
        overall = result.overall()
        assert overall["entity_order"].comparable == overall["entity_order"].asked > 0
        assert overall["timestamp_verification"].comparable == overall["timestamp_verification"].asked > 0
    # tracked -> gt: "how many birds" is 2, the swans and ducks together: all agree
    assert forward.total().equal == forward.total().comparable == forward.total().asked, forward.examples
    # gt -> tracked: "how many swans" (1) and "how many ducks" (1) are 2 birds each there
    counting = backward.overall()["counting"]
    assert (counting.asked, counting.comparable, counting.equal) == (2, 2, 0)
    assert {e["target"] for e in backward.examples} == {"2"}


def test_a_late_and_split_track_gives_wrong_answers():
    gt = [
        track("a", {i: box_a(i) for i in range(N)}, masks=False),
        track("b", {i: box_b(i) for i in range(5, N)}, masks=False),
    ]
    # the tracker starts a only at frame 10 (after b) and splits b into two tracks
    tracked = [
        track("p1", {i: box_a(i) for i in range(10, N)}, masks=False),
        track("p2", {i: box_b(i) for i in range(5, 15)}, masks=False),  # b's counterpart: the longer part
        track("p3", {i: box_b(i) for i in range(15, N)}, masks=False),
    ]
    forward, backward = agreement(tracked, gt)
    # gt -> tracked: "which appears first, a or b" is a; the tracked dataset says b
    order = backward.overall()["entity_order"]
    assert order.comparable == 1 and order.equal == 0
    # "how many things": 2 in the ground truth, 3 tracked, both ways
    assert forward.overall()["counting"].equal == 0 and backward.overall()["counting"].equal == 0


def test_questions_about_objects_without_a_counterpart_are_not_comparable():
    gt = [track("a", {i: box_a(i) for i in range(N)}, masks=False)]
    tracked = [
        track("p1", {i: box_a(i) for i in range(N)}, masks=False),
        named(track("p2", {i: box_b(i) for i in range(6, N)}, masks=False), "kite"),  # not annotated
    ]
    forward, _ = agreement(tracked, gt)
    overall = forward.overall()
    assert overall["entity_order"].asked > 0 and overall["entity_order"].comparable == 0
    assert overall["counting"].asked == 2 and overall["counting"].comparable == 1  # "kites": no counterpart
    verification = overall["timestamp_verification"]
    assert verification.comparable < verification.asked  # the kite's are left out
    # a counterpart needs min_similarity: a far-off match does not count
    shifted = [track("p1", {i: box_a(i) for i in range(N)}, masks=False, shift=20.0)]  # IoU 0.2
    forward, _ = agreement(shifted, gt, min_similarity=0.3)
    assert forward.total().comparable == 0
