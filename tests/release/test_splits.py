"""Release splits (tubelet.release.splits): groups by source_group or by video, ratios honoured on
small releases, warnings for empty splits, independent of order, few moves when videos are added;
and the same through a real release."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tests.release.release_data import tiny_source
from tubelet.release.build import ReleaseOptions, release
from tubelet.release.splits import DEFAULT_SPLITS, VideoToSplit, assign_splits, group_key, normalise, split_quotas

RATIOS = normalise(DEFAULT_SPLITS)


def _singles(n: int, prefix: str = "v") -> list[VideoToSplit]:
    return [VideoToSplit(f"{prefix}{i}") for i in range(n)]


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (7, {"train": 5, "val": 1, "test": 1}),  # 5.6/0.7/0.7 by largest remainder
        (10, {"train": 8, "val": 1, "test": 1}),
        (20, {"train": 16, "val": 2, "test": 2}),
        (100, {"train": 80, "val": 10, "test": 10}),
    ],
)
def test_ratios_hold_on_small_releases(n: int, expected: dict[str, int]) -> None:
    result = assign_splits(_singles(n), RATIOS)
    assert result.videos() == expected
    assert result.warnings(RATIOS) == [] and result.empty() == []


def test_never_grouped_by_source_but_by_source_group() -> None:
    # one dataset (source) of ten videos: they spread over the splits
    same_source = [VideoToSplit(f"davis-{i}", None) for i in range(10)]
    assert len(set(assign_splits(same_source, RATIOS).of_video.values())) == 3
    # clips of one recording stay together, whatever their ids
    clips = [VideoToSplit(f"clip{i}", json.dumps({"source_group": f"rec{i % 4}"})) for i in range(40)]
    clips += [VideoToSplit(f"g{i}", {"group": "other"}) for i in range(3)]
    result = assign_splits(clips, RATIOS)
    for rec in range(4):
        assert len({result.of_video[f"clip{i}"] for i in range(rec, 40, 4)}) == 1
    assert len({result.of_video[f"g{i}"] for i in range(3)}) == 1
    assert sum(result.groups.values()) == 5
    assert group_key("x", {"source_group": "r"}) == group_key("y", '{"source_group": "r"}') != group_key("x", None)
    assert group_key("x", {"source_group": "r", "group": "q"}) == "group:r"  # source_group first


def test_an_empty_split_warns() -> None:
    result = assign_splits(_singles(2), RATIOS)
    assert result.videos() == {"train": 2}
    assert result.empty() == ["val", "test"]
    warnings = result.warnings(RATIOS)
    assert len(warnings) == 2 and "'val' is empty" in warnings[0] and "2 video(s) in 2 group(s)" in warnings[0]
    assert split_quotas(3, [0.8, 0.1, 0.1]) == [3, 0, 0] and split_quotas(5, [0.8, 0.1, 0.1]) == [4, 1, 0]
    # a split asked to be empty is not a surprise
    zero = normalise({"train": 1.0, "val": 0.0})
    assert assign_splits(_singles(5), zero).warnings(zero) == []


def test_same_set_same_assignment_in_any_order() -> None:
    videos = [VideoToSplit(f"v{i}", {"group": f"g{i % 7}"} if i % 3 else None) for i in range(60)]
    first = assign_splits(videos, RATIOS).of_video
    rng = random.Random(0)
    for _ in range(5):
        shuffled = list(videos)
        rng.shuffle(shuffled)
        assert assign_splits(shuffled, RATIOS).of_video == first


def test_adding_videos_moves_few() -> None:
    # adding one video moves at most one group across each of the two boundaries
    for n in (10, 37, 100, 250):
        before = assign_splits(_singles(n), RATIOS).of_video
        after = assign_splits(_singles(n + 1), RATIOS).of_video
        assert sum(before[v] != after[v] for v in before) <= 2
    # adding 10 videos to 200: about 10 videos' worth of moves per boundary, not a reshuffle
    before = assign_splits(_singles(200), RATIOS).of_video
    after = assign_splits(_singles(210), RATIOS).of_video
    assert sum(before[v] != after[v] for v in before) <= 20


def test_keep_splits_pins_videos_and_counts_conflicts() -> None:
    videos = [
        VideoToSplit("a", {"group": "g"}, "demo"),
        VideoToSplit("b", {"group": "g"}, None),  # follows its group's kept split
        VideoToSplit("c", {"group": "h"}, "x"),
        VideoToSplit("d", {"group": "h"}, "y"),  # its group straddles: counted
        *_singles(10),
    ]
    result = assign_splits(videos, RATIOS, keep_splits=True)
    assert result.of_video["a"] == result.of_video["b"] == "demo"
    assert (result.of_video["c"], result.of_video["d"]) == ("x", "y")
    assert result.conflicts == 1 and any("straddle" in w for w in result.warnings(RATIOS))
    assert result.names == ["train", "val", "test", "demo", "x", "y"]
    assert sorted(result.of_video[f"v{i}"] for i in range(10)).count("train") == 8
    with pytest.raises(ValueError, match="not a valid split name"):
        assign_splits([VideoToSplit("e", None, "my split")], RATIOS, keep_splits=True)


def test_release_of_ten_videos_is_8_1_1_and_two_videos_warn(tmp_path: Path, caplog) -> None:
    ten = tiny_source(tmp_path / "ten", 10)
    report = release(ten, tmp_path / "r10", ReleaseOptions(version="1", formats=()))
    assert report.counts["videos"] == {"train": 8, "val": 1, "test": 1} and report.warnings == []

    two = tiny_source(tmp_path / "two", 2)
    with caplog.at_level("WARNING", logger="tubelet.release.build"):
        report = release(two, tmp_path / "r2", ReleaseOptions(version="1", formats=()))
    assert report.counts["videos"] == {"train": 2}
    assert [r.getMessage() for r in caplog.records] == [f"release 1: {w}" for w in report.warnings]
    info = json.loads((tmp_path / "r2" / "meta" / "info.json").read_text())
    assert info["warnings"] == report.warnings and len(report.warnings) == 2
    card = (tmp_path / "r2" / "README.md").read_text()
    assert all(f"**Warning:** {w}" in card for w in report.warnings)
