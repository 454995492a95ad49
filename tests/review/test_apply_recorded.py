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

import pytest

from tests.review.recorded import REVIEWER, Recorded, parse, pushed_rows, recorded
from tubelet.review.apply import Applied, apply_review
from tubelet.review.tasks import VideoRows
from tubelet.schemas.records import Answer, Instruction, Message, Reject, Tubelet

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
    """Stands in for the tracker: records each call, marks the tubelet it returns (or fails)."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error, self.calls = error, []

    def __call__(self, tube: Tubelet, boxes: dict[int, list[float] | None], prompts: list[int]) -> Tubelet:
        self.calls.append((tube, boxes, prompts))
        if self.error:
            raise self.error
        return replace(tube, extra={**tube.extra, "retracked": True})


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


def test_moved_keyframes_correct_the_tracks_and_prompt_the_tracker_there() -> None:
    rec, rows = recorded("moved_boxes"), pushed_rows("scene")
    old = {t.tubelet_id: t for t in rows.tubelets}
    regenerate, retrack = Regenerator(), Retracker()
    applied = _apply(rec, rows, regenerate=regenerate, retrack=retrack)
    assert _changes(applied) == {
        ("tubelets", RED): ("correct", {"frames_changed": 32, "prompt_frames": [32, 59]}),
        ("tubelets", GREEN): ("correct", {"frames_changed": 7, "prompt_frames": [33]}),
    }
    assert _verdicts(applied) == {**_accepted(rows), ("tubelets", RED): "correct", ("tubelets", GREEN): "correct"}
    # the tracker gets the reviewer's boxes on the tubelet's frames (None: out of view), prompted on the edits
    (red, red_boxes, red_prompts), (green, green_boxes, green_prompts) = retrack.calls
    assert (red.tubelet_id, red_prompts, green.tubelet_id, green_prompts) == (RED, [32, 59], GREEN, [33])
    assert sorted(red_boxes) == [f.frame_idx for f in old[RED].frames]  # frames 27..71
    assert sorted(green_boxes) == [f.frame_idx for f in old[GREEN].frames]  # frames 0..71
    assert [f for f, box in green_boxes.items() if box is None] == [23, 24, 25, 26]  # its gap stays a gap
    for tube, boxes, prompts in retrack.calls:
        for frame in prompts:
            assert boxes[frame] == pytest.approx(_edited_box(rec, old[tube.tubelet_id], frame), abs=EPS)
    # the tracker's answers replace the corrected tubelets; the untouched one is the same row
    assert [t.extra.get("retracked") for t in applied.rows.tubelets] == [True, True, None]
    assert applied.rows.tubelets[2] == rows.tubelets[2] and applied.counts["masks_regenerated"] == 2
    # changed tracks regenerate the instructions, from the reviewed rows
    assert len(regenerate.calls) == 1 and regenerate.calls[0].tubelets == applied.rows.tubelets
    assert [i.instruction_id for i in applied.rows.instructions] == ["scene:fresh:1", "scene:fresh:2"]
    assert applied.counts["instructions_regenerated"] == 2 and applied.rejects == []


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
    rec, rows = recorded("moved_boxes"), pushed_rows("scene")
    applied = _apply(rec, rows, retrack=Retracker(RuntimeError("no frames")))
    reason = "masks not regenerated (RuntimeError: no frames); the reviewed boxes are kept without masks"
    assert applied.rejects == [
        Reject(item=tid, stage="review", video_id="scene", reason=reason) for tid in (RED, GREEN)
    ]
    assert [t.extra.get("reviewed") for t in applied.rows.tubelets] == [True, True, None]
    assert not any("retracked" in t.extra for t in applied.rows.tubelets)
    assert _verdicts(applied)[("tubelets", RED)] == "correct" and "masks_regenerated" not in applied.counts


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
    expected = Tubelet(
        tubelet_id=tid,
        video_id="scene",
        category="moving object",
        source="review",
        track_id=region,
        fps=24.0,
        width=640,
        height=360,
        frames=[],
        extra={"reviewed": True, "retracked": True},
    )
    assert new == expected
    # without a tracker, the drawn boxes are its frames: shown from the first keyframe to the disabled last one
    plain = _apply(rec, pushed_rows("scene"))
    drawn = plain.rows.tubelets[3]
    assert [(f.frame_idx, f.t_s, f.visible) for f in drawn.frames] == [(f, f / 24.0, True) for f in range(9, 30)]
    for frame, box in rec.edits["keyframes"].items():
        assert _box(drawn, int(frame)) == pytest.approx(box, abs=EPS)
    entity = next(e for e in applied.rows.entities if e.entity_id == eid)
    assert (entity.tubelet_id, entity.category, entity.model_id) == (tid, "moving object", "review")
    assert (entity.referring_expression, entity.caption) == (rec.edits["expression"], rec.edits["caption"])
    assert applied.rows.entities[:3] == rows.entities
