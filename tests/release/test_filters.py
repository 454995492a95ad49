"""The release's row filters and their cascade (tubelet.release.filters), on small hand-made
tables: no pipeline run needed."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa

from tubelet.release.filters import ShardFilter, latest_verdicts, rejected_items
from tubelet.schemas.arrow import TABLE_SCHEMAS


def _table(name: str, rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=TABLE_SCHEMAS[name])


def _review(rid: str, item: str, verdict: str, at: str, table: str = "tubelets") -> dict:
    return {
        "review_id": rid,
        "video_id": "v",
        "item_table": table,
        "item_id": item,
        "verdict": verdict,
        "reviewed_at": at,
    }


def _shard() -> dict[str, pa.Table]:
    """Video v with tubelets t1 (score 0.9), t2 (0.3), t3 (no score); video w with tubelet u1."""
    tubelets = [
        {"tubelet_id": "t1", "video_id": "v", "mean_score": 0.9},
        {"tubelet_id": "t2", "video_id": "v", "mean_score": 0.3},
        {"tubelet_id": "t3", "video_id": "v", "mean_score": None},
        {"tubelet_id": "u1", "video_id": "w", "mean_score": 0.9},
    ]
    entities = [
        {"entity_id": f"e{t['tubelet_id']}", "video_id": t["video_id"], "tubelet_id": t["tubelet_id"]} for t in tubelets
    ]
    events = [
        {"event_id": "ev1", "video_id": "v", "tubelet_ids": ["t1"]},
        {"event_id": "ev12", "video_id": "v", "tubelet_ids": ["t1", "t2"]},
    ]
    instructions = [
        {"instruction_id": "i1", "video_id": "v", "regions": [{"placeholder": "<region0>", "tubelet_id": "t1"}]},
        {"instruction_id": "i2", "video_id": "v", "answer": {"text": "x", "tubelet_ids": ["t2"]}},
        {"instruction_id": "i3", "video_id": "v", "provenance": ["ev12"]},
        {"instruction_id": "i4", "video_id": "v", "provenance": ["ev1", "et1"]},
    ]
    reviews = [_review("r1", "t2", "accept", "2026-01-01"), _review("r2", "i4", "reject", "2026-01-01", "instructions")]
    return {
        "tubelets": _table("tubelets", tubelets),
        "entities": _table("entities", entities),
        "events": _table("events", events),
        "instructions": _table("instructions", instructions),
        "reviews": _table("reviews", reviews),
    }


def test_latest_verdict_by_time_then_review_id() -> None:
    reviews = _table(
        "reviews",
        [
            _review("r1", "a", "reject", "2026-01-02"),
            _review("r2", "a", "accept", "2026-01-01"),  # older: r1 stands
            _review("r3", "b", "accept", "2026-01-01"),
            _review("r4", "b", "reject", "2026-01-01"),  # same time: the larger review id wins
            _review("r5", "c", "reject", "2026-01-01", table="entities"),
        ],
    )
    assert latest_verdicts(reviews) == {
        ("tubelets", "a"): "reject",
        ("tubelets", "b"): "reject",
        ("entities", "c"): "reject",
    }
    assert rejected_items(_table("reviews", [])) == set()


def test_min_score_cascades_to_what_points_at_the_tubelets() -> None:
    dropped: Counter[str] = Counter()
    kept = ShardFilter(set(), 0.5, dropped).keep(_shard(), ["v"])
    assert kept.tubelets.column("tubelet_id").to_pylist() == ["t1"]  # t2 below, t3 unscored; w not kept
    assert kept.entities.column("entity_id").to_pylist() == ["et1"]
    assert kept.events.column("event_id").to_pylist() == ["ev1"]
    assert [r["instruction_id"] for r in kept.instruction_rows] == ["i1", "i4"]
    assert kept.instructions.column("instruction_id").to_pylist() == ["i1", "i4"]
    assert kept.reviews.num_rows == 2
    assert dropped == Counter(
        {"tubelets:min_score": 2, "entities:dangling": 2, "events:dangling": 1, "instructions:dangling": 2}
    )


def test_rejected_items_and_unreviewed_videos_are_dropped() -> None:
    shard = _shard()
    dropped: Counter[str] = Counter()
    rows = ShardFilter(rejected_items(shard["reviews"]), None, dropped)
    videos = rows.reviewed_videos_only(_table("videos", [{"video_id": "v"}, {"video_id": "w"}]), {"v"})
    assert videos.column("video_id").to_pylist() == ["v"]
    kept = rows.keep(shard, ["v"])
    assert kept.tubelets.column("tubelet_id").to_pylist() == ["t1", "t2", "t3"]
    assert [r["instruction_id"] for r in kept.instruction_rows] == ["i1", "i2", "i3"]
    assert {k: v for k, v in dropped.items() if v} == {"videos:not_reviewed": 1, "instructions:rejected": 1}
