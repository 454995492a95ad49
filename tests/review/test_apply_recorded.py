"""``tubelet.review.apply`` on recorded Label Studio exports (no server needed).

Each test applies one recorded review (``record_exports.py``) to the rows it was pushed
from, as ``review pull`` does, and checks the outcome exactly: which rows changed to
what, which are gone, which ``reviews`` rows with which verdicts, which rejects.
Re-tracking and instruction generation are stand-ins that record their calls.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from tests.review.recorded import REVIEWER, Recorded, parse, pushed_rows, recorded
from tubelet.review.apply import Applied, apply_review
from tubelet.review.corrections import Retracked
from tubelet.review.tasks import VideoRows
from tubelet.schemas.records import Answer, Instruction, Message, Reject, Tubelet, TubeletFrame
from tubelet.schemas.rle import encode_mask

PROJECT = "recorded"
TOLERANCE = 2.0 + 0.05  # the push's tolerance plus Label Studio's percent rounding (as apply allows)
EPS = 1e-3


class Regenerator:
    """Stands in for instruction generation: records the rows it sees, returns fixed instructions."""

    def __init__(self, ids: tuple[str, ...] = ("scene:fresh:1", "scene:fresh:2")) -> None:
        self.ids, self.calls = ids, []

    def __call__(self, rows: VideoRows) -> list[Instruction]:
        self.calls.append(rows)
        return [
            Instruction(
                instruction_id=i,
                video_id=rows.video.video_id,
                task_type="counting",
                messages=[Message("user", "How many?"), Message("assistant", str(len(rows.tubelets)))],
                answer=Answer(text=str(len(rows.tubelets))),
            )
            for i in self.ids
        ]


class Retracker:
    """Stands in for the tracker: records each call and answers the span's rows, each
    visible one with a box-shaped mask and score 0.5, except on ``lost`` frames (or fails)."""

    def __init__(self, error: Exception | None = None, lost: Collection[int] = ()) -> None:
        self.error, self.lost, self.calls = error, set(lost), []

    def __call__(self, tube: Tubelet, boxes: dict[int, list[float] | None], prompts: list[int]) -> Retracked:
        self.calls.append((tube, boxes, prompts))
        if self.error:
            raise self.error
        rows = [
            TubeletFrame(f, f / tube.fps, box or [0.0, 0.0, 1.0, 1.0], None, None, False)
            if box is None or f in self.lost
            else TubeletFrame(f, f / tube.fps, box, _box_rle(box, tube), 0.5, True)
            for f, box in boxes.items()
        ]
        rows = [replace(r, visible=boxes[r.frame_idx] is not None) for r in rows]
        return Retracked(replace(tube, frames=rows), {f: "scripted loss" for f in self.lost if boxes.get(f)})


def _box_rle(box: list[float], tube: Tubelet) -> dict[str, Any]:
    mask = np.zeros((tube.height, tube.width), dtype=bool)
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    mask[max(0, y1) : max(y1 + 1, y2), max(0, x1) : max(x1 + 1, x2)] = True
    return encode_mask(mask)


def _with_masks(rows: VideoRows) -> VideoRows:
    """``rows`` with a box-shaped mask on every visible frame (the recordings leave masks out)."""
    rows.tubelets = [
        replace(t, frames=[replace(f, mask_rle=_box_rle(f.box_xyxy, t)) if f.visible else f for f in t.frames])
        for t in rows.tubelets
    ]
    return rows


def _apply(rec: Recorded, rows: VideoRows, **options: Any) -> Applied:
    return apply_review(rows, parse(rec, rows), project=PROJECT, tolerance_px=2.0, **options)


def _verdicts(applied: Applied) -> dict[tuple[str, str], str]:
    return {(r.item_table, r.item_id): r.verdict for r in applied.reviews}


def _changes(applied: Applied) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    """Every verdict but accept, with its payload less the task and annotation ids."""
    return {
        (r.item_table, r.item_id): (
            r.verdict,
            {k: v for k, v in r.payload.items() if k not in ("task_id", "annotation_id")},
        )
        for r in applied.reviews
        if r.verdict != "accept"
    }


def _accepted(rows: VideoRows, *, but: Collection[str] = ()) -> dict[tuple[str, str], str]:
    """accept for every pushed tubelet, entity and event, except the ids in ``but``."""
    items = [
        *(("tubelets", t.tubelet_id) for t in rows.tubelets),
        *(("entities", e.entity_id) for e in rows.entities),
        *(("events", e.event_id) for e in rows.events),
    ]
    return {item: "accept" for item in items if item[1] not in but}


def _box(tube: Tubelet, frame_idx: int) -> list[float]:
    return next(f.box_xyxy for f in tube.frames if f.frame_idx == frame_idx)


@pytest.mark.parametrize(
    ("scenario", "video_id", "counts"),
    [("unchanged", "scene", (3, 3, 10, 48)), ("unchanged_30fps", "mirror30", (4, 4, 13, 0))],
)
def test_an_unedited_review_accepts_everything_and_changes_nothing(
    scenario: str, video_id: str, counts: tuple[int, int, int, int]
) -> None:
    rec, rows = recorded(scenario), pushed_rows(video_id)
    tubelets, entities, events, instructions = counts
    regenerate, retrack = Regenerator(), Retracker()
    applied = _apply(rec, rows, regenerate=regenerate, retrack=retrack)
    assert _verdicts(applied) == _accepted(rows) and len(applied.reviews) == tubelets + entities + events
    assert not applied.changed and applied.rejects == []
    for table in ("tubelets", "entities", "events", "instructions"):
        assert getattr(applied.rows, table) == getattr(rows, table), table
    assert regenerate.calls == [] and retrack.calls == []  # nothing to regenerate or re-track
    assert applied.counts["instructions_before"] == applied.counts["instructions_after"] == instructions
    # every verdict names its reviewer, time, project and annotation
    annotation = rec.annotation
    for review in applied.reviews:
        assert (review.reviewer, review.reviewed_at, review.project, review.video_id) == (
            REVIEWER,
            annotation["updated_at"],
            PROJECT,
            video_id,
        )
        assert review.payload == {"task_id": rec.task["id"], "annotation_id": annotation["id"]}
    # applying the same annotation again gives the same rows, review ids included
    again = _apply(rec, pushed_rows(video_id))
    assert [r.review_id for r in again.reviews] == [r.review_id for r in applied.reviews]
    assert len({r.review_id for r in applied.reviews}) == len(applied.reviews)


# the moved_boxes edits, and the keyframe intervals around them (pushed keyframes, 0-based)
RED, GREEN = "scene:track:1", "scene:track:2"
EDITED_INTERVALS = {RED: [(27, 42), (49, 71)], GREEN: [(28, 36)]}


def _edited_box(rec: Recorded, old: Tubelet, frame_idx: int) -> list[float]:
    """The box the recorder put on ``frame_idx`` of ``old``: its own box moved by the edit."""
    (edit,) = [
        e
        for e in rec.edits["moved"] + rec.edits["added"]
        if (e["tubelet_id"], e["frame_idx"]) == (old.tubelet_id, frame_idx)
    ]
    x1, y1, x2, y2 = _box(old, frame_idx)
    return [x1 + edit["dx_px"], y1 + edit["dy_px"], x2 + edit["dx_px"], y2 + edit["dy_px"]]


def _span_frames(tube: Tubelet) -> list[list[int]]:
    """The tubelet's frames inside each edited keyframe interval."""
    frames = [f.frame_idx for f in tube.frames]
    return [[f for f in frames if lo < f < hi] for lo, hi in EDITED_INTERVALS[tube.tubelet_id]]


def test_moved_keyframes_correct_the_tracks_and_prompt_the_tracker_there() -> None:
    rec, rows = recorded("moved_boxes"), _with_masks(pushed_rows("scene"))
    old = {t.tubelet_id: t for t in rows.tubelets}
    regenerate, retrack = Regenerator(), Retracker()
    applied = _apply(rec, rows, regenerate=regenerate, retrack=retrack)
    # the spans are the frames strictly between the keyframes around each edit (the anchors)
    assert _changes(applied) == {
        ("tubelets", RED): ("correct", {"spans": [[28, 41], [50, 70]], "prompt_frames": [32, 59]}),
        ("tubelets", GREEN): ("correct", {"spans": [[29, 35]], "prompt_frames": [33]}),
    }
    assert _verdicts(applied) == {**_accepted(rows), ("tubelets", RED): "correct", ("tubelets", GREEN): "correct"}
    # the tracker gets one call per span: the reviewer's boxes there, prompted on the edit
    calls = [(tube.tubelet_id, sorted(boxes), prompts) for tube, boxes, prompts in retrack.calls]
    (red1, red2), (green1,) = _span_frames(old[RED]), _span_frames(old[GREEN])
    assert calls == [(RED, red1, [32]), (RED, red2, [59]), (GREEN, green1, [33])]
    for tube, boxes, prompts in retrack.calls:
        for frame in prompts:
            assert boxes[frame] == pytest.approx(_edited_box(rec, old[tube.tubelet_id], frame), abs=0.005)
        for box in boxes.values():  # rounded to 0.01 px: no float noise from the percentages
            assert box is not None and all(round(v, 2) == v for v in box)
    # outside the spans every row is the same (box bit for bit, mask, score); inside, the tracker's
    for fixed in applied.rows.tubelets[:2]:
        spanned = {f for span in _span_frames(old[fixed.tubelet_id]) for f in span}
        before = {f.frame_idx: f for f in old[fixed.tubelet_id].frames}
        assert [f.frame_idx for f in fixed.frames] == list(before)
        for row in fixed.frames:
            if row.frame_idx in spanned:
                assert row.score == 0.5 and row.mask_rle is not None
            else:
                assert row == before[row.frame_idx]
        assert fixed.extra == {**old[fixed.tubelet_id].extra, "reviewed": True}
    assert applied.rows.tubelets[2] == rows.tubelets[2]
    spanned = len(red1) + len(red2) + len(green1)
    assert (applied.counts["frames_corrected"], applied.counts["masks_regenerated"]) == (spanned, spanned)
    visible_masks = sum(1 for t in rows.tubelets[:2] for f in t.frames if f.mask_rle is not None)
    assert applied.counts["masks_kept"] == visible_masks - spanned
    assert applied.counts["masks_not_regenerated"] == 0 and applied.rejects == []
    # changed tracks regenerate the instructions, from the reviewed rows
    assert len(regenerate.calls) == 1 and regenerate.calls[0].tubelets == applied.rows.tubelets
    assert [i.instruction_id for i in applied.rows.instructions] == ["scene:fresh:1", "scene:fresh:2"]
    assert applied.counts["instructions_regenerated"] == 2


def test_frames_without_a_regenerated_mask_are_named_in_rejects() -> None:
    rec, rows = recorded("moved_boxes"), _with_masks(pushed_rows("scene"))
    applied = _apply(rec, rows, retrack=Retracker(lost={40, 41, 60}))
    reason = "mask not regenerated: scripted loss; the reviewed box is kept without a mask"
    assert applied.rejects == [
        Reject(item=f"{RED} frames 40-41", stage="review", video_id="scene", reason=reason),
        Reject(item=f"{RED} frame 60", stage="review", video_id="scene", reason=reason),
    ]
    assert applied.counts["masks_not_regenerated"] == 3
    red = {f.frame_idx: f for f in applied.rows.tubelets[0].frames}
    assert all(red[f].mask_rle is None and red[f].visible for f in (40, 41, 60))
    assert red[32].mask_rle is not None


def test_moved_keyframes_without_a_tracker_keep_the_reviewed_boxes() -> None:
    rec, rows = recorded("moved_boxes"), pushed_rows("scene")
    applied = _apply(rec, rows)
    for old, fixed in zip(rows.tubelets[:2], applied.rows.tubelets[:2]):
        assert fixed.extra == {**old.extra, "reviewed": True}
        # same frames, times and visibility; out of view, the last box seen is held
        assert [(f.frame_idx, f.t_s, f.visible) for f in fixed.frames] == [
            (f.frame_idx, f.t_s, f.visible) for f in old.frames
        ]
        for e in rec.edits["moved"] + rec.edits["added"]:
            if e["tubelet_id"] == old.tubelet_id:
                assert _box(fixed, e["frame_idx"]) == pytest.approx(_edited_box(rec, old, e["frame_idx"]), abs=EPS)
        # the boxes that moved past the tolerance lie between the edited keyframes and their neighbours
        moved = [
            f.frame_idx
            for f, g in zip(old.frames, fixed.frames)
            if max(abs(a - b) for a, b in zip(f.box_xyxy, g.box_xyxy)) > TOLERANCE
        ]
        assert moved and all(any(lo < f < hi for lo, hi in EDITED_INTERVALS[old.tubelet_id]) for f in moved)
    green = applied.rows.tubelets[1].frames
    assert [f.box_xyxy for f in green[23:27]] == [green[22].box_xyxy] * 4  # out of view: the last box seen, held
    assert applied.rows.tubelets[2] == rows.tubelets[2]
    # no regenerate given: the instructions stay as they were
    assert applied.rows.instructions == rows.instructions and "instructions_regenerated" not in applied.counts


def test_a_failed_retrack_keeps_the_review_and_says_why() -> None:
    rec, rows = recorded("moved_boxes"), _with_masks(pushed_rows("scene"))
    applied = _apply(rec, rows, retrack=Retracker(RuntimeError("no frames")))
    reason = (
        "mask not regenerated: re-tracking failed (RuntimeError: no frames); the reviewed box is kept without a mask"
    )
    assert applied.rejects == [
        Reject(item=item, stage="review", video_id="scene", reason=reason)
        for item in (f"{RED} frames 28-41", f"{RED} frames 50-70", f"{GREEN} frames 29-35")
    ]
    assert [t.extra.get("reviewed") for t in applied.rows.tubelets] == [True, True, None]
    assert _verdicts(applied)[("tubelets", RED)] == "correct"
    assert applied.counts["masks_regenerated"] == 0 and applied.counts["masks_not_regenerated"] == 14 + 21 + 7
    # the rows outside the spans keep their masks
    assert applied.counts["masks_kept"] > 0
    red = {f.frame_idx: f for f in applied.rows.tubelets[0].frames}
    assert red[27].mask_rle is not None and red[45].mask_rle is not None and red[30].mask_rle is None


def test_a_tubelet_without_masks_takes_the_reviewed_boxes_and_no_tracker() -> None:
    rec, rows = recorded("moved_boxes"), pushed_rows("scene")  # box-only rows
    retrack = Retracker()
    applied = _apply(rec, rows, retrack=retrack)
    assert retrack.calls == [] and applied.rejects == []
    assert applied.counts["masks_regenerated"] == applied.counts["masks_not_regenerated"] == 0


def test_a_deleted_track_takes_its_entity_and_events_with_it() -> None:
    rec, rows = recorded("deleted_track"), pushed_rows("scene")
    tid = rec.edits["tubelet_id"]
    its_events = {e.event_id for e in rows.events if e.tubelet_ids == [tid]}
    assert len(its_events) == 4
    regenerate = Regenerator()
    applied = _apply(rec, rows, regenerate=regenerate, rejected_before={"scene:fresh:2"})
    # only the tubelet gets a verdict: its entity and events leave with it
    assert _changes(applied) == {("tubelets", tid): ("reject", {})}
    assert _verdicts(applied) == {
        **_accepted(rows, but={tid, f"{tid}:entity", *its_events}),
        ("tubelets", tid): "reject",
    }
    assert [t.tubelet_id for t in applied.rows.tubelets] == ["scene:track:1", "scene:track:2"]
    assert [e.entity_id for e in applied.rows.entities] == ["scene:track:1:entity", "scene:track:2:entity"]
    assert applied.rows.events == [e for e in rows.events if e.event_id not in its_events]
    assert applied.counts["events_dropped_with_their_tubelets"] == 4
    # regenerated from the rows without it; an instruction rejected by an earlier review stays out
    (seen,) = regenerate.calls
    assert [t.tubelet_id for t in seen.tubelets] == ["scene:track:1", "scene:track:2"]
    assert [i.instruction_id for i in applied.rows.instructions] == ["scene:fresh:1"]
    assert (applied.counts["instructions_before"], applied.counts["instructions_after"]) == (48, 1)


def test_span_edits_correct_reject_and_add_events() -> None:
    rec, rows = recorded("spans"), pushed_rows("scene")
    applied = _apply(rec, rows, regenerate=Regenerator())
    new_id = "scene:event:review:Sp4nRv01aB:0"
    assert _changes(applied) == {
        ("events", "scene:event:1:3"): ("correct", {"frames": [[27, 71], [27, 68]]}),
        ("events", "scene:event:0:1"): ("correct", {"label": ["move_right", "move_left"]}),
        ("events", "scene:event:2:1"): ("reject", {}),
        ("events", new_id): ("add", {}),
    }
    before = {e.event_id: e for e in rows.events}
    after = {e.event_id: e for e in applied.rows.events}
    times = {f.frame_idx: f.t_s for t in rows.tubelets for f in t.frames}  # the video's frame times
    assert after["scene:event:1:3"] == replace(before["scene:event:1:3"], end_frame=68, end_s=times[68])
    assert after["scene:event:0:1"] == replace(before["scene:event:0:1"], label="move_left", text="move_left")
    assert "scene:event:2:1" not in after
    new = after[new_id]
    assert (new.start_frame, new.end_frame, new.start_s, new.end_s) == (9, 11, times[9], times[11])
    assert (new.label, new.text, new.source, new.tubelet_ids, new.video_id) == (
        "appear",
        "appear",
        "review",
        [],
        "scene",
    )
    unchanged = before.keys() - {"scene:event:1:3", "scene:event:0:1", "scene:event:2:1"}
    assert all(after[e] == before[e] for e in unchanged) and len(after) == 10
    assert applied.rows.tubelets == rows.tubelets and applied.rows.entities == rows.entities
    assert [i.instruction_id for i in applied.rows.instructions] == ["scene:fresh:1", "scene:fresh:2"]


def test_edited_texts_correct_the_entities() -> None:
    rec, rows = recorded("texts"), pushed_rows("scene")
    applied = _apply(rec, rows, regenerate=Regenerator())
    expression, caption = rec.edits["expression"]["text"], rec.edits["caption"]["text"]
    assert _changes(applied) == {
        ("entities", "scene:track:1:entity"): (
            "correct",
            {"referring_expression": ["the red moving object", expression]},
        ),
        ("entities", "scene:track:2:entity"): ("correct", {"caption": [None, caption]}),
        ("entities", "scene:track:3:entity"): ("correct", {"referring_expression": ["the blue moving object", None]}),
    }
    before = {e.entity_id: e for e in rows.entities}
    after = {e.entity_id: e for e in applied.rows.entities}
    reviewed = {"reviewed": True}
    assert after["scene:track:1:entity"] == replace(
        before["scene:track:1:entity"],
        referring_expression=expression,
        attributes={**before["scene:track:1:entity"].attributes, **reviewed},
    )
    assert after["scene:track:2:entity"] == replace(
        before["scene:track:2:entity"],
        caption=caption,
        attributes={**before["scene:track:2:entity"].attributes, **reviewed},
    )
    assert after["scene:track:3:entity"] == replace(  # every line erased: no expression
        before["scene:track:3:entity"],
        referring_expression=None,
        attributes={**before["scene:track:3:entity"].attributes, **reviewed},
    )
    # the text for no track is reported against the task, the rest applies
    assert applied.rejects == [
        Reject(
            item=f"task {rec.task['id']}",
            stage="review",
            video_id="scene",
            reason="expression for region 'N0Track9zz', which is no track of this task",
        )
    ]
    assert [i.instruction_id for i in applied.rows.instructions] == ["scene:fresh:1", "scene:fresh:2"]


def test_rejected_instructions_leave_without_regenerating() -> None:
    rec, rows = recorded("rejected_instructions"), pushed_rows("scene")
    first, second = rec.edits["rejected"]
    earlier = next(i.instruction_id for i in rows.instructions if i.instruction_id not in {first, second})
    regenerate = Regenerator()
    applied = _apply(rec, rows, regenerate=regenerate, rejected_before={earlier})
    assert _changes(applied) == {("instructions", first): ("reject", {}), ("instructions", second): ("reject", {})}
    assert _verdicts(applied) == {
        **_accepted(rows),
        ("instructions", first): "reject",
        ("instructions", second): "reject",
    }
    assert regenerate.calls == []  # rejections alone keep the other instructions as they are
    assert applied.rows.instructions == [
        i for i in rows.instructions if i.instruction_id not in {first, second, earlier}
    ]
    assert (applied.counts["instructions_before"], applied.counts["instructions_after"]) == (48, 45)
    assert applied.rejects == [
        Reject(
            item=f"task {rec.task['id']}",
            stage="review",
            video_id="scene",
            reason="rejected instruction 'not-an-offered-instruction' is not one this task offered",
        )
    ]
    assert applied.changed  # a rejection is a change


def test_a_drawn_track_becomes_a_review_tubelet_with_its_entity() -> None:
    rec, rows = recorded("new_track"), pushed_rows("scene")
    region = rec.edits["region_id"]
    tid, eid = f"scene:review:{region}", f"scene:review:{region}:entity"
    retrack = Retracker()
    applied = _apply(rec, rows, retrack=retrack, regenerate=Regenerator())
    assert _changes(applied) == {("tubelets", tid): ("add", {"frames": 21}), ("entities", eid): ("add", {})}
    ((blank, boxes, prompts),) = retrack.calls
    assert (blank.frames, prompts, sorted(boxes)) == ([], [9, 19, 29], list(range(9, 30)))
    assert applied.rows.tubelets[:3] == rows.tubelets
    new = applied.rows.tubelets[3]
    assert [(f.frame_idx, f.score, f.mask_rle is not None) for f in new.frames] == [
        (f, 0.5, True) for f in range(9, 30)
    ]
    expected = Tubelet(
        tubelet_id=tid,
        video_id="scene",
        category="moving object",
        source="review",
        track_id=region,
        fps=24.0,
        width=640,
        height=360,
        frames=new.frames,
        score=0.5,
        extra={"reviewed": True},
    )
    assert new == expected
    # without a tracker, the drawn boxes are its frames: shown from the first keyframe to the disabled last one
    plain = _apply(rec, pushed_rows("scene"))
    drawn = plain.rows.tubelets[3]
    assert plain.rejects == []  # it never had masks: none are missing
    assert [(f.frame_idx, f.t_s, f.visible) for f in drawn.frames] == [(f, f / 24.0, True) for f in range(9, 30)]
    for frame, box in rec.edits["keyframes"].items():
        assert _box(drawn, int(frame)) == pytest.approx(box, abs=EPS)
    entity = next(e for e in applied.rows.entities if e.entity_id == eid)
    assert (entity.tubelet_id, entity.category, entity.model_id) == (tid, "moving object", "review")
    assert (entity.referring_expression, entity.caption) == (rec.edits["expression"], rec.edits["caption"])
    assert applied.rows.entities[:3] == rows.entities
