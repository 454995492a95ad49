"""Releases (tubelet.release.build) and their diff (tubelet.release.diff), over a strefer (lite) run of
the synthetic sample under four video ids: a1 and a2 are clips of one recording (source srcA,
extra.source_group recA), b1 is srcB, c1 is srcC with extra.source_group g1."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.release.consumers import LOADERS, Media, load_release
from tests.release.release_data import absolute_paths, machine_paths
from tubelet.release.build import (
    RELEASE_TABLES,
    ReleaseExistsError,
    ReleaseOptions,
    data_files,
    release,
    verify_checksums,
)
from tubelet.release.diff import diff_releases, format_diff
from tubelet.release.splits import VideoToSplit, assign_splits, group_key, parse_splits

VIDEOS = [
    ("a1", "srcA", {"source_group": "recA"}),
    ("a2", "srcA", {"source_group": "recA"}),
    ("b1", "srcB", None),
    ("c1", "srcC", {"source_group": "g1"}),
]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("cv2")
    from tubelet.cli.sample import write_sample
    from tubelet.engine.config import RunConfig
    from tubelet.engine.versions import tag_version
    from tubelet.pipelines import run_manifest

    tmp = tmp_path_factory.mktemp("release-source")
    sample = write_sample(tmp / "sample")
    videos = [
        {
            "uri": str(sample.video),
            "video_id": v,
            "source": s,
            "licence": "CC-BY-4.0" if s == "srcA" else "CC0",
            **({"extra": e} if e else {}),
        }
        for v, s, e in VIDEOS
    ]
    config = RunConfig(
        pipeline="strefer",
        output=str(tmp / "out"),
        runner="inline",
        videos=videos,
        params={"track": {"profile": "lite", "keyframe_fps": 4}},
    )
    summary = run_manifest(config, progress=False, log_to_stderr=False)
    assert summary.done == 4 and summary.failed == 0
    tag_version(tmp / "out", "v1")
    return tmp / "out"


def _rows(folder: Path, table: str) -> defaultdict[str, list[dict]]:
    """Rows per split (a split without rows has no file: it reads as an empty list)."""
    out: defaultdict[str, list[dict]] = defaultdict(list)
    for split, paths in data_files(folder, table).items():
        out[split] = [r for p in paths for r in pq.read_table(p).to_pylist()]
    return out


def test_release_is_byte_identical_but_created_at(source: Path, tmp_path: Path) -> None:
    opts = ReleaseOptions(version="1.0", with_media=True)
    release(source, tmp_path / "r1", opts, created_at="2000-01-01T00:00:00+00:00")
    release(source, tmp_path / "r2", opts, created_at="2030-06-01T12:00:00+00:00")
    files1 = sorted(p.relative_to(tmp_path / "r1").as_posix() for p in (tmp_path / "r1").rglob("*") if p.is_file())
    files2 = sorted(p.relative_to(tmp_path / "r2").as_posix() for p in (tmp_path / "r2").rglob("*") if p.is_file())
    assert files1 == files2
    assert {
        "README.md",
        "SHA256SUMS",
        "meta/info.json",
        "meta/plots/durations.png",
        "meta/plots/tubelet_lengths.png",
        "media/a1.mp4",
    } <= set(files1)
    for rel in files1:
        a, b = (tmp_path / "r1" / rel).read_bytes(), (tmp_path / "r2" / rel).read_bytes()
        if rel == "meta/info.json":
            ia, ib = json.loads(a), json.loads(b)
            assert ia.pop("created_at") != ib.pop("created_at")
            assert ia == ib
        elif rel == "SHA256SUMS":
            la = [x for x in a.decode().splitlines() if not x.endswith("  meta/info.json")]
            lb = [x for x in b.decode().splitlines() if not x.endswith("  meta/info.json")]
            assert la == lb and len(la) == len(files1) - 2  # every file but itself and info.json
        else:
            assert a == b, rel
    assert verify_checksums(tmp_path / "r1") == [] and verify_checksums(tmp_path / "r2") == []
    needles = machine_paths(source.parent, tmp_path, Path.cwd(), Path.home())
    assert absolute_paths(tmp_path / "r1", needles) == []  # portable: no path of this machine
    (tmp_path / "r1" / "README.md").write_text("tampered")
    assert verify_checksums(tmp_path / "r1") == ["README.md"]
    info = json.loads((tmp_path / "r2" / "meta" / "info.json").read_text())
    assert info["version"] == "1.0" and info["source"]["version"] == "v1"  # the tagged state
    assert info["pipeline"] == "strefer" and info["model_ids"]
    assert sum(info["counts"]["videos"].values()) == 4
    card = (tmp_path / "r2" / "README.md").read_text()
    for needle in (
        "## Instructions per task type",
        "## Tubelets per category",
        "CC-BY-4.0",
        "Review coverage",
        "### instructions (key `instruction_id`)",
        "meta/plots/durations.png",
    ):
        assert needle in card


def test_release_refuses_a_non_empty_folder(source: Path, tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    release(source, tmp_path / "r", ReleaseOptions(version="1", formats=()))  # empty: fine
    with pytest.raises(ReleaseExistsError):
        release(source, tmp_path / "r", ReleaseOptions(version="2", formats=()))
    assert not list(tmp_path.glob(".r.partial-*"))


def test_splits_by_group_and_references_stay_in_split(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    release(source, out, ReleaseOptions(version="1.0", splits=parse_splits("train=0.5,val=0.25,test=0.25")))
    videos = _rows(out, "videos")
    split_of_video: dict[str, str] = {}
    for split, rows in videos.items():
        for r in rows:
            assert r["video_id"] not in split_of_video
            split_of_video[r["video_id"]] = split
    assert set(split_of_video) == {"a1", "a2", "b1", "c1"}
    assert split_of_video["a1"] == split_of_video["a2"]  # one recording (source_group), one split
    expected = assign_splits([VideoToSplit(v, e) for v, _, e in VIDEOS], parse_splits("train=0.5,val=0.25,test=0.25"))
    assert split_of_video == expected.of_video

    tables = {t: _rows(out, t) for t in RELEASE_TABLES}
    n_inst = 0
    for split in videos:
        vids = {r["video_id"] for r in tables["videos"][split]}
        tubs = {r["tubelet_id"] for r in tables["tubelets"][split]}
        ents = {r["entity_id"] for r in tables["entities"][split]}
        evs = {r["event_id"] for r in tables["events"][split]}
        for t in ("tubelets", "entities", "events", "instructions", "reviews"):
            assert all(r["video_id"] in vids for r in tables[t][split])
        assert all(r["tubelet_id"] in tubs for r in tables["entities"][split])
        assert all(set(r["tubelet_ids"]) <= tubs for r in tables["events"][split])
        for r in tables["instructions"][split]:
            n_inst += 1
            assert {g["tubelet_id"] for g in r["regions"]} <= tubs
            assert set(r["answer"]["tubelet_ids"] or []) <= tubs
            assert set(r["provenance"]) <= tubs | ents | evs
    assert n_inst > 0


def test_split_assignment_unit() -> None:
    ratios = parse_splits("train=8,val=1,test=1")
    assert ratios == {"train": 0.8, "val": 0.1, "test": 0.1}
    assert group_key("x", '{"group": "g"}') == group_key("y", {"group": "g"})
    assert group_key("x", None) != group_key("y", None)
    kept = assign_splits([VideoToSplit("x", None, "val"), VideoToSplit("y")], ratios, keep_splits=True)
    assert kept.of_video["x"] == "val"
    shares = assign_splits([VideoToSplit(f"k{i}") for i in range(5000)], ratios).videos()
    assert shares == {"train": 4000, "val": 500, "test": 500}
    with pytest.raises(ValueError):
        parse_splits("train")


def test_load_dataset_and_renderings(source: Path, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "r"
    release(source, out, ReleaseOptions(version="1.0", with_media=True, splits={"train": 0.5, "val": 0.5}))
    counts = json.loads((out / "meta" / "info.json").read_text())["counts"]
    for table in RELEASE_TABLES:
        files = {s: p for s, p in data_files(out, table).items() if counts[table][s]}
        if not files:
            continue
        loaded = datasets.load_dataset("parquet", data_files=files, cache_dir=str(tmp_path / "hf"))
        for split in files:
            assert loaded[split].num_rows == counts[table][split]
    videos = {r["video_id"]: r for rows in _rows(out, "videos").values() for r in rows}
    assert all(not Path(v["uri"]).is_absolute() and (out / v["uri"]).is_file() for v in videos.values())
    for split, n in counts["instructions"].items():
        if not n:  # an empty split has no rendering file
            assert not list((out / "instructions").glob(f"*/{split}.json*"))
            continue
        videorefer = json.loads((out / "instructions" / "videorefer" / f"{split}.json").read_text())
        llava = json.loads((out / "instructions" / "llava-video" / f"{split}.json").read_text())
        unistg = [
            json.loads(line) for line in (out / "instructions" / "unistg" / f"{split}.jsonl").read_text().splitlines()
        ]
        assert len(videorefer) == len(llava) == len(unistg) == n
        for item in videorefer:
            assert (out / item["video"]).is_file()
            human = item["conversations"][0]["value"]
            assert human.startswith("<video>\n") and human.count("<region>") == len(item.get("annotation", []))
        for item in llava:
            assert (out / item["video"]).is_file()
            conv = item["conversations"]
            assert conv[0]["from"] == "human" and conv[0]["value"].startswith("<image>\n")
            assert conv[-1]["from"] == "gpt" and "<region" not in conv[0]["value"]
        for item in unistg:
            assert (out / item["video"]).is_file() and isinstance(item["answer"], str)
    info = json.loads((out / "meta" / "info.json").read_text())
    media = Media()
    for fmt in LOADERS:  # the lite tracker's masklets load in every consumer (tests/release/consumers.py)
        if fmt in info["rendered"]:
            result = load_release(out, fmt, media)
            assert result.failed == [] and len(result.loaded) == sum(info["rendered"][fmt].values()) > 0


def _revise(root: Path) -> tuple[str, str]:
    """A revision that rewrites one instruction's answer text of a1, and a new video d1."""
    from tubelet.engine.dataset import Dataset
    from tubelet.engine.task import VideoTask
    from tubelet.engine.versions import commit_revision
    from tubelet.engine.writer import ShardWriter
    from tubelet.schemas.records import Message

    ds = Dataset(root)
    records = [
        r
        for t in ("videos", "tubelets", "entities", "events", "instructions", "reviews")
        for r in ds.records(t)
        if r.video_id == "a1"
    ]
    inst = next(r for r in records if type(r).__name__ == "Instruction")
    changed = dataclasses.replace(inst, messages=[*inst.messages[:-1], Message("assistant", "A corrected answer.")])
    records = [changed if r is inst else r for r in records]
    commit_revision(root, {"a1": records}, note="fix one answer")
    video = next(r for r in ds.records("videos") if r.video_id == "b1")
    new = dataclasses.replace(video, video_id="d1", source="srcD")
    with ShardWriter(root) as writer:
        writer.add(VideoTask(video_id="d1", uri=new.uri, source="srcD", video=new))
    return inst.instruction_id, inst.task_type


def test_diff_reports_added_video_and_changed_instruction(source: Path, tmp_path: Path) -> None:
    # one split: a video added to a small release may move a neighbour across a split boundary
    # (tubelet.release.splits), which would show as changed rows here; test_splits.py covers that
    one = {"train": 1.0}
    release(source, tmp_path / "r1", ReleaseOptions(version="1.0", formats=(), splits=one))
    copy = tmp_path / "ds"
    shutil.copytree(source, copy)
    inst_id, task_type = _revise(copy)
    release(copy, tmp_path / "r2", ReleaseOptions(version="1.1", formats=(), splits=one))
    diff = diff_releases(tmp_path / "r1", tmp_path / "r2")
    assert diff.versions == ("1.0", "1.1")
    v = diff.tables["videos"]
    assert (v.added, v.removed, v.changed) == (1, 0, 0) and v.examples["added"] == ["d1"]
    i = diff.tables["instructions"]
    assert (i.added, i.removed, i.changed) == (0, 0, 1) and i.examples["changed"] == [inst_id]
    assert diff.task_types == {task_type: {"added": 0, "removed": 0, "changed": 1}}
    for t in ("tubelets", "entities", "events"):
        assert (diff.tables[t].added, diff.tables[t].removed, diff.tables[t].changed) == (0, 0, 0)
    text = format_diff(diff)
    assert "videos" in text and inst_id in text

    from tubelet.cli.release import add_commands

    parser = argparse.ArgumentParser()
    common = argparse.ArgumentParser(add_help=False)
    sub = parser.add_subparsers(dest="command", required=True)
    add_commands(lambda name, h: sub.add_parser(name, help=h, parents=[common]))
    args = parser.parse_args(["diff", str(tmp_path / "r1"), str(tmp_path / "r2"), "--json"])
    assert args.func(args) == 0
    args = parser.parse_args(
        [
            "release",
            str(copy),
            "--version",
            "2",
            "--to",
            str(tmp_path / "r3"),
            "--format",
            "video-llava,strefer",
            "--splits",
            "train=1",
        ]
    )
    assert args.func(args) == 0
    assert json.loads((tmp_path / "r3" / "meta" / "info.json").read_text())["counts"]["videos"] == {"train": 5}
    assert sorted(p.name for p in (tmp_path / "r3" / "instructions").iterdir()) == ["strefer", "video-llava"]


def test_filters_min_score_reviews(source: Path, tmp_path: Path) -> None:
    from tubelet.engine.dataset import Dataset
    from tubelet.engine.versions import commit_revision
    from tubelet.schemas.records import Review

    copy = tmp_path / "ds"
    shutil.copytree(source, copy)
    ds = Dataset(copy)
    b1 = [
        r
        for t in ("videos", "tubelets", "entities", "events", "instructions")
        for r in ds.records(t)
        if r.video_id == "b1"
    ]
    inst = next(r for r in b1 if type(r).__name__ == "Instruction")
    tub = next(r for r in b1 if type(r).__name__ == "Tubelet")
    reviews = [
        Review(
            review_id="review:1",
            video_id="b1",
            item_table="instructions",
            item_id=inst.instruction_id,
            verdict="accept",
            reviewed_at="2026-01-01T00:00:00",
        ),
        Review(
            review_id="review:2",
            video_id="b1",
            item_table="instructions",
            item_id=inst.instruction_id,
            verdict="reject",
            reviewed_at="2026-01-02T00:00:00",
        ),
        Review(
            review_id="review:3",
            video_id="b1",
            item_table="tubelets",
            item_id=tub.tubelet_id,
            verdict="accept",
            reviewed_at="2026-01-02T00:00:00",
        ),
    ]
    commit_revision(copy, {"b1": b1 + reviews}, note="reviewed b1")

    out = tmp_path / "reviewed"
    report = release(copy, out, ReleaseOptions(version="r", reviewed_only=True, exclude_rejected=True, formats=()))
    assert sum(report.counts["videos"].values()) == 1
    assert report.dropped["videos:not_reviewed"] == 3 and report.dropped["instructions:rejected"] == 1
    inst_ids = {r["instruction_id"] for rows in _rows(out, "instructions").values() for r in rows}
    assert inst.instruction_id not in inst_ids and inst_ids
    card = (out / "README.md").read_text()
    assert "videos with reviews: 1 of 1" in card and "| reject | 1 |" in card

    strict = tmp_path / "strict"
    report = release(copy, strict, ReleaseOptions(version="s", min_score=2.0, formats=("llava-video",)))
    assert sum(report.counts["tubelets"].values()) == 0
    assert sum(report.counts["instructions"].get(s, 0) for s in report.counts["instructions"]) < 192
    for rows in _rows(strict, "instructions").values():
        assert all(not r["regions"] and not (r["answer"]["tubelet_ids"] or []) for r in rows)
