"""``unistg`` and the rendering options: Uni-STG answers read back to the structured answers, and a
release made with ``--boxes normalised --times tokens`` still loads in every consumer, its boxes
and times reading back within their rounding."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from tests.release.conftest import RELEASES, Released
from tests.release.consumers import FILE_ONLY_FORMATS, LOADERS, Media, read_items
from tubelet.annotators.instructions.derive import times_in
from tubelet.annotators.instructions.renderers import TimeFormat, box_tolerance, parse_unistg


def _read_back(released: Released, release: Path, box_format: str, bins: int | None) -> int:
    """Check every Uni-STG line of ``release`` against the instruction it renders; the number checked."""
    videos = {v["video_id"]: v for v in released.videos.values()}
    items = read_items(sorted((release / "instructions" / "unistg").glob("*.jsonl")))
    assert len(items) == sum(
        json.loads((release / "meta" / "info.json").read_text())["counts"]["instructions"].values()
    )
    for item in items:
        row, video = released.instructions[item["id"]], videos[released.instructions[item["id"]]["video_id"]]
        assert set(item) == {"id", "video", "task_type", "question", "answer"} and (release / item["video"]).exists()
        time = TimeFormat(bins=bins, duration_s=video["duration_s"]) if bins else TimeFormat()
        span, boxes = parse_unistg(item["answer"], video["width"], video["height"], box_format, time)
        answer = row["answer"]
        if answer["span_s"]:
            assert span == pytest.approx(answer["span_s"], abs=time.tolerance())
        assert len(boxes) == len(answer["boxes"] or [])
        for (t, box), want in zip(boxes, answer["boxes"] or []):
            assert t == pytest.approx(want["t_s"], abs=time.tolerance())
            assert box == pytest.approx(
                want["box_xyxy"], abs=box_tolerance(video["width"], video["height"], box_format)
            )
        if not answer["span_s"] and not answer["boxes"]:
            assert item["answer"] == next(m["content"] for m in row["messages"] if m["role"] == "assistant")
    return len(items)


@pytest.mark.parametrize("name", RELEASES)
def test_unistg_reads_back_to_the_answers(request: pytest.FixtureRequest, name: str) -> None:
    released = request.getfixturevalue(name)
    n = _read_back(released, released.path, "pixel", None)
    assert n == sum(released.info["rendered"]["unistg"].values()) and released.info["render_skipped"]["unistg"] == 0
    print(f"\n[formats] {released.name:<9} unistg       {n}/{n} read back")


def test_cli_normalised_boxes_and_time_tokens(demo_release: Released, tmp_path: Path) -> None:
    from tubelet.cli.release import add_commands

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    add_commands(lambda name, h: sub.add_parser(name, help=h))
    out = tmp_path / "r"
    argv = [
        "release",
        str(demo_release.source),
        "--version",
        "t",
        "--to",
        str(out),
        "--with-media",
        "--splits",
        "train=1",
    ]
    args = parser.parse_args([*argv, "--boxes", "normalised", "--times", "tokens", "--time-bins", "50"])
    assert args.func(args) == 0
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["options"]["boxes"] == "normalised" and info["options"]["times"] == "tokens"
    assert _read_back(demo_release, out, "unit", 50) == len(demo_release.instructions)
    unistg = {i["id"]: i for i in read_items([out / "instructions" / "unistg" / "train.jsonl"])}
    media = Media()
    for fmt in ("videorefer", "videollama3", *FILE_ONLY_FORMATS):
        items = read_items([out / "instructions" / fmt / "train.json"])
        assert len(items) == len(demo_release.instructions)
        for item in items:
            LOADERS[fmt](item, out, media)
            row = demo_release.instructions[item["id"]]
            question = next(m["content"] for m in row["messages"] if m["role"] == "user")
            human, answer = (t["value"] for t in item["conversations"])
            in_words = len(row["regions"]) if fmt in FILE_ONLY_FORMATS else 0  # "the object at [...] at <t_k>"
            assert human.count("<t_") == len(times_in(question)) + in_words and not times_in(human)
            if row["answer"]["span_s"] or row["answer"]["boxes"]:
                assert answer == unistg[item["id"]]["answer"]  # the grounded answer in the same formats
    with pytest.raises(SystemExit):
        parser.parse_args([*argv, "--boxes", "percent"])
