"""``tubelet.review.results`` on recorded Label Studio exports (no server needed).

Each scenario was reviewed in a real Label Studio and exported with
``interpolate_key_frames`` (``record_exports.py``); these tests check that parsing the
export gives back exactly what the reviewer did, in dataset terms.
"""

from __future__ import annotations

import copy

import pytest

from tests.review.recorded import REVIEWER, parse, pushed_rows, recorded
from tubelet.review.keyframes import select_keyframes
from tubelet.review.results import ReviewedEvent, latest_annotation, parse_task
from tubelet.review.tasks import build_task, track_of

TOLERANCE = 2.0 + 0.05  # the push's keyframe tolerance, plus Label Studio's percent rounding
EPS = 1e-3  # percent boxes with 4 decimals: 1e-4 % of 640 px is 0.0006 px


def _shifted(box: list[float], dx: float = 0.0, dy: float = 0.0) -> list[float]:
    return [box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy]


def test_the_latest_submitted_annotation_wins_over_a_later_skip() -> None:
    rec = recorded("unchanged")
    submitted, skipped = sorted(rec.task["annotations"], key=lambda a: a["id"])
    assert skipped["was_cancelled"] and skipped["updated_at"] > submitted["updated_at"]
    assert latest_annotation(rec.task) is submitted
    assert latest_annotation({**rec.task, "annotations": [skipped]}) is None


@pytest.mark.parametrize(("scenario", "video_id"), [("unchanged", "scene"), ("unchanged_30fps", "mirror30")])
def test_an_unedited_annotation_reads_back_as_pushed(scenario: str, video_id: str) -> None:
    rec, rows = recorded(scenario), pushed_rows(video_id)
    reviewed = parse(rec, rows)
    assert (reviewed.task_id, reviewed.video_id) == (rec.task["id"], video_id)
    assert reviewed.annotation_id == rec.annotation["id"] and reviewed.reviewed_at == rec.annotation["updated_at"]
    assert reviewed.reviewer == REVIEWER
    assert (reviewed.problems, reviewed.blocking, reviewed.rejected_instructions, reviewed.captions) == ([], [], [], {})
    tubes = {t.tubelet_id: t for t in rows.tubelets}
    assert sorted(t.tubelet_id for t in reviewed.tracks) == sorted(tubes)
    for track in reviewed.tracks:
        tube = tubes[track.tubelet_id]
        assert track.region_id == rec.region_of(tube.tubelet_id) and track.category == tube.category
        # Label Studio shows a box on exactly the visible frames, each within the push tolerance
        visible = {f.frame_idx: f.box_xyxy for f in tube.frames if f.visible}
        assert sorted(track.boxes) == sorted(visible)
        assert max(abs(a - b) for f, box in visible.items() for a, b in zip(box, track.boxes[f])) <= TOLERANCE
        # and its keyframes are the pushed ones
        pushed = select_keyframes(track_of(tube), tolerance_px=2.0, n_frames=rows.video.n_frames)
        assert track.keyframes == [k.frame_idx for k in pushed]
    expected_events = {
        (rec.region_of(e.event_id), e.event_id, e.label, e.start_frame, e.end_frame) for e in rows.events
    }
    assert {(e.region_id, e.event_id, e.label, e.start_frame, e.end_frame) for e in reviewed.events} == expected_events
    assert reviewed.expressions == {rec.region_of(e.tubelet_id): e.referring_expression for e in rows.entities}


def test_a_reviewer_unknown_to_the_server_is_named_by_user_id() -> None:
    rec, v = recorded("unchanged"), pushed_rows("scene").video
    reviewed = parse_task(rec.task, width=v.width, height=v.height, fps=v.fps, n_frames=v.n_frames)
    assert reviewed is not None and reviewed.reviewer == f"user:{rec.annotation['completed_by']}"


def test_moved_and_added_keyframes_come_back_in_pixels() -> None:
    rec, rows = recorded("moved_boxes"), pushed_rows("scene")
    tracks = {t.tubelet_id: t for t in parse(rec, rows).tracks}
    before = {t.tubelet_id: t for t in parse(recorded("unchanged"), rows).tracks}
    own = {t.tubelet_id: {f.frame_idx: f.box_xyxy for f in t.frames} for t in rows.tubelets}
    edited: dict[str, list[tuple[int, int]]] = {tid: [] for tid in tracks}  # keyframe intervals an edit touches
    for edit in rec.edits["moved"] + rec.edits["added"]:
        tid, frame, dx, dy = edit["tubelet_id"], edit["frame_idx"], edit["dx_px"], edit["dy_px"]
        track, old = tracks[tid], before[tid]
        # the reviewer's box: the track's own box moved by the edit (the push keeps own boxes on keyframes)
        assert track.boxes[frame] == pytest.approx(_shifted(own[tid][frame], dx, dy), abs=EPS)
        previous, following = max(k for k in old.keyframes if k < frame), min(k for k in old.keyframes if k > frame)
        edited[tid].append((previous, following))
        if edit in rec.edits["moved"]:
            # Label Studio interpolates the shift into the frames around a moved keyframe, linearly to zero
            for f in range(previous + 1, following):
                share = (f - previous) / (frame - previous) if f <= frame else (following - f) / (following - frame)
                assert track.boxes[f] == pytest.approx(_shifted(old.boxes[f], dx * share, dy * share), abs=0.01), f
    assert tracks["scene:track:1"].keyframes == sorted([*before["scene:track:1"].keyframes, 59])
    assert tracks["scene:track:2"].keyframes == before["scene:track:2"].keyframes
    # everything outside the edited intervals is as pushed, the untouched track included
    for tid, track in tracks.items():
        assert sorted(track.boxes) == sorted(before[tid].boxes)
        for f, box in before[tid].boxes.items():
            if not any(lo < f < hi for lo, hi in edited[tid]):
                assert track.boxes[f] == pytest.approx(box, abs=EPS), (tid, f)
    assert edited["scene:track:3"] == []


def test_a_deleted_track_and_its_text_are_absent() -> None:
    rec = recorded("deleted_track")
    reviewed = parse(rec)
    deleted = rec.region_of(rec.edits["tubelet_id"])
    assert sorted(t.tubelet_id for t in reviewed.tracks) == ["scene:track:1", "scene:track:2"]
    assert deleted not in reviewed.expressions and len(reviewed.expressions) == 2
    assert len(reviewed.events) == 10  # its spans were left in place
    assert (reviewed.problems, reviewed.blocking) == ([], [])


def test_edited_deleted_and_new_spans() -> None:
    rec = recorded("spans")
    events = {e.region_id: e for e in parse(rec).events}
    edits = rec.edits
    assert len(events) == 10  # 10 pushed, one deleted, one added
    assert rec.region_of(edits["deleted"]["event_id"]) not in events
    shortened = events[rec.region_of("scene:event:1:3")]
    assert (shortened.event_id, shortened.start_frame, shortened.end_frame) == ("scene:event:1:3", 27, 68)
    assert events[rec.region_of("scene:event:0:1")].label == "move_left"
    assert events["Sp4nRv01aB"] == ReviewedEvent("Sp4nRv01aB", None, "appear", 9, 11)


def test_edited_texts_and_a_text_for_no_track() -> None:
    rec = recorded("texts")
    reviewed = parse(rec)
    red, green, blue = (rec.region_of(f"scene:track:{n}") for n in (1, 2, 3))
    assert reviewed.expressions == {red: "the small red square", green: "the green moving object", blue: ""}
    assert reviewed.captions == {green: "a green square that leaves and comes back"}
    assert reviewed.problems == ["expression for region 'N0Track9zz', which is no track of this task"]
    assert reviewed.blocking == []


def test_rejected_instructions_only_those_the_task_offered() -> None:
    rec = recorded("rejected_instructions")
    reviewed = parse(rec)
    assert reviewed.rejected_instructions == rec.edits["rejected"]
    assert reviewed.problems == ["rejected instruction 'not-an-offered-instruction' is not one this task offered"]


def test_a_drawn_track_is_new_with_its_texts() -> None:
    rec = recorded("new_track")
    reviewed = parse(rec)
    region = rec.edits["region_id"]
    (track,) = [t for t in reviewed.tracks if t.tubelet_id is None]
    assert (track.region_id, track.category, track.keyframes) == (region, "moving object", [9, 19, 29])
    assert sorted(track.boxes) == list(range(9, 30))  # shown up to its disabled last keyframe, not after
    for frame, box in rec.edits["keyframes"].items():
        assert track.boxes[int(frame)] == pytest.approx(box, abs=EPS)
    assert track.boxes[14] == pytest.approx([320.0, 250.0, 380.0, 300.0], abs=0.01)  # interpolated
    assert reviewed.expressions[region] == "the grey shadow under the red square"
    assert reviewed.captions == {region: "a soft grey shadow"}
    assert len(reviewed.tracks) == 4 and (reviewed.problems, reviewed.blocking) == ([], [])


def test_keyframe_times_at_another_frame_rate_block_every_track() -> None:
    rec, rows = recorded("wrong_fps"), pushed_rows("mirror30")
    reviewed = parse(rec, rows)
    assert reviewed.tracks == []
    reason = "(Label Studio frame rate differs from the dataset's); not applied"
    assert reviewed.blocking == [
        f"track 'mirror30:track:1': keyframe times disagree with 30 fps at frames [28, 29, 33, 34, 38] {reason}",
        f"track 'mirror30:track:2': keyframe times disagree with 30 fps at frames [5, 6, 8, 13, 14] {reason}",
        f"track 'mirror30:track:3': keyframe times disagree with 30 fps at frames [6, 10, 11, 13, 14] {reason}",
        f"track 'mirror30:track:4': keyframe times disagree with 30 fps at frames [54, 55, 56, 58, 59] {reason}",
    ]
    # read at the 24 fps the times were written at, the same tracks are fine: the check is the frame rate
    v = rows.video
    at_24 = parse_task(rec.task, width=v.width, height=v.height, fps=24.0, n_frames=v.n_frames)
    assert at_24 is not None and at_24.blocking == [] and len(at_24.tracks) == 4


def test_frames_past_the_end_block_the_track_and_drop_the_span() -> None:
    rec = recorded("past_end")
    reviewed = parse(rec)
    assert reviewed.blocking == [
        "track 'scene:track:1': frames [72, 73, 74, 75] lie past the video's last frame 71; not applied"
    ]
    # the blocked track's text has no track left to go with (reported; the task is not applied anyway)
    assert reviewed.problems == [
        "span 'Sp4nOut02b' covers frames 70–80, outside 1–72; not applied",
        f"expression for region {rec.region_of('scene:track:1')!r}, which is no track of this task",
    ]
    assert sorted(t.tubelet_id for t in reviewed.tracks) == ["scene:track:2", "scene:track:3"]
    assert "Sp4nOut02b" not in {e.region_id for e in reviewed.events}


def test_the_pushed_track_ids_are_shown_not_read_back() -> None:
    """The read-only id text under each track (``track``) is the push's: a pull ignores
    it, whatever it says, and reports nothing about it."""
    rec, rows = recorded("unchanged"), pushed_rows("scene")
    pushed = build_task(rows, "/data/local-files/?d=scene.mp4")["predictions"][0]["result"]
    ids = [r for r in pushed if r["from_name"] == "track"]
    assert [r["value"]["text"] for r in ids] == [[f"#{t.track_id}  {t.tubelet_id}"] for t in rows.tubelets]
    task = copy.deepcopy(rec.task)
    annotation = latest_annotation(task)
    annotation["result"] += [{**r, "value": {"text": ["edited by the reviewer"]}} for r in ids]
    v = rows.video
    reviewed = parse_task(task, width=v.width, height=v.height, fps=v.fps, n_frames=v.n_frames)
    assert reviewed is not None and reviewed.problems == [] and reviewed.blocking == []
    assert reviewed.expressions == parse(rec, rows).expressions
