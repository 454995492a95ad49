"""A pull keeps what the reviewer did not touch and re-tracks only what they corrected.

Against a real Label Studio: the reviewer moves one keyframe box of the longest track by
24 px. Label Studio interpolates a keyframe's box to its neighbouring keyframes, so the
correction covers the frames strictly between the keyframe before it and the keyframe
after it (the *anchors*, which the reviewer left where they were). Everything outside
that span must come back byte-identical (boxes bit for bit, masks, scores); inside it
the boxes are the reviewer's (rounded to 0.01 px, no float noise from the percentages)
and every visible frame has a regenerated mask or a reject that names the video, the
tubelet and the frame.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from pathlib import Path

import pytest

from tubelet.annotators.instructions.derive import answer_box
from tubelet.cli.main import main
from tubelet.review.client import LabelStudioClient
from tubelet.review.push import push
from tubelet.review.tasks import DATA_TUBELETS
from tubelet.schemas.records import Reject

from .test_review_loop import _annotate, _rows, _tasks

pytestmark = pytest.mark.labelstudio

MOVE_PERCENT = 3.75  # 24 px of the 640-px-wide scene


@pytest.fixture
def client(label_studio) -> LabelStudioClient:
    return LabelStudioClient(label_studio.url, label_studio.token)


def _summary(printed: str) -> Counter[str]:
    """The counts line of ``tubelet review pull`` (``frames_corrected 4, masks_kept 58, ...``)."""
    (line,) = [line for line in printed.splitlines() if "masks_" in line]
    return Counter({key: int(value) for key, value in re.findall(r"(\w+) (\d+)", line)})


def _printed_rejects(printed: str) -> list[Reject]:
    """The ``reject: ITEM: REASON`` lines of ``tubelet review pull``."""
    found = re.findall(r"^  reject: (.+?): (.+)$", printed, flags=re.M)
    return [Reject(item=item, stage="review", reason=reason) for item, reason in found]


def _frames_named(rejects, tubelet_id: str) -> set[int]:
    """The frames the rejects of ``tubelet_id`` name (``<id> frame N`` or ``<id> frames N-M``)."""
    named: set[int] = set()
    for reject in rejects:
        match = re.fullmatch(re.escape(tubelet_id) + r" frames? (\d+)(?:-(\d+))?", reject.item)
        if match:
            first = int(match[1])
            named |= set(range(first, int(match[2] or first) + 1))
    return named


@pytest.mark.parametrize("onto", ["object", "background"])
def test_moving_one_keyframe_retracks_only_the_frames_it_affects(
    client: LabelStudioClient, dataset: Path, onto: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``object``: a box wide enough that 24 px to the right still holds most of the
    object (the tracker regenerates its masks); ``background``: the keyframe with the
    widest span, whatever its size (a small object moved off: masks may not come back,
    and the pull must say which frames lack one)."""
    project = f"span-{onto}"
    before = _rows(dataset)
    tubes = {t.tubelet_id: t for t in before["tubelets"]}
    push(dataset, project, client=client)
    task = _tasks(client, project)["scene"]
    regions = task["data"][DATA_TUBELETS]
    result = copy.deepcopy(task["prediction"])
    track, i = max(
        (
            (r, i)
            for r in result
            if r["type"] == "videorectangle"
            for i in range(1, len(r["value"]["sequence"]) - 1)
            if all(k["enabled"] for k in r["value"]["sequence"][i - 1 : i + 1])
            and (onto == "background" or r["value"]["sequence"][i]["width"] >= 4 * MOVE_PERCENT)
        ),
        key=lambda ri: ri[0]["value"]["sequence"][ri[1] + 1]["frame"] - ri[0]["value"]["sequence"][ri[1] - 1]["frame"],
    )
    tid = regions[track["id"]]
    old = tubes[tid]
    assert any(f.mask_rle is not None for f in old.frames), "the track must start with masks"
    seq = track["value"]["sequence"]
    seq[i]["x"] = round(seq[i]["x"] + MOVE_PERCENT, 4)
    moved_frame, previous, following = seq[i]["frame"] - 1, seq[i - 1]["frame"] - 1, seq[i + 1]["frame"] - 1
    _annotate(client, task["id"], result)

    capsys.readouterr()
    code = main(["review", "pull", str(dataset), "--project", project])  # as the README runs it
    printed = capsys.readouterr().out
    assert "1 applied" in printed, printed
    counts = _summary(printed)
    after = _rows(dataset)
    new = next(t for t in after["tubelets"] if t.tubelet_id == tid)
    old_rows = {f.frame_idx: f for f in old.frames}
    new_rows = {f.frame_idx: f for f in new.frames}
    assert sorted(new_rows) == sorted(old_rows)
    span = {f for f in old_rows if previous < f < following}
    assert moved_frame in span
    # outside the span: the very same rows (boxes bit for bit, masks, scores, visibility)
    kept = [f for f in old_rows if f not in span]
    assert kept and all(new_rows[f] == old_rows[f] for f in kept), [f for f in kept if new_rows[f] != old_rows[f]]
    # inside: the reviewer's boxes, rounded to 0.01 px
    assert new_rows[moved_frame].box_xyxy[0] == pytest.approx(old_rows[moved_frame].box_xyxy[0] + 24.0, abs=0.011)
    for f in span:
        assert all(round(v, 2) == v for v in new_rows[f].box_xyxy), (f, new_rows[f].box_xyxy)
    # every visible frame of the span has a regenerated mask, or a reject naming it
    visible = {f for f in span if new_rows[f].visible}
    without = {f for f in visible if new_rows[f].mask_rle is None}
    assert counts["masks_regenerated"] == len(visible - without), printed
    if onto == "object":
        assert visible and not without, printed
    assert counts["masks_not_regenerated"] == len(without), printed
    assert counts["masks_kept"] == sum(1 for f in kept if old_rows[f].mask_rle is not None)
    assert code == (1 if without else 0), printed
    assert _frames_named(_printed_rejects(printed), tid) == without
    stored = [r for r in after["rejects"] if r.stage == "review" and r.video_id == "scene"]
    assert _frames_named(stored, tid) == without
    assert all("mask" in r.reason for r in stored if r.item.startswith(tid))
    # the other tracks: untouched rows
    for other in before["tubelets"]:
        if other.tubelet_id != tid:
            assert next(t for t in after["tubelets"] if t.tubelet_id == other.tubelet_id) == other
    # the regenerated answers point at boxes the dataset holds, as answers round them (no float noise)
    boxes = {(t.tubelet_id, f.frame_idx): answer_box(f.box_xyxy) for t in after["tubelets"] for f in t.frames}
    answered = [b for i in after["instructions"] if i.video_id == "scene" for b in i.answer.boxes]
    assert answered
    for box in answered:
        assert any(box.box_xyxy == boxes.get((t, box.frame_idx)) for t in tubes), box
