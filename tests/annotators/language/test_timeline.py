"""ActionTimeline lite mode: motion states, presence events, ids; the synthetic sample; DAVIS."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.samples import fresh_copy
from tubelet.annotators.language.motion_states import MotionConfig
from tubelet.annotators.language.timeline import ActionTimeline, event_id
from tubelet.annotators.language.timeline_lite import lite_items
from tubelet.cli.sample import SampleInfo
from tubelet.engine.stage import run_stage
from tubelet.engine.task import VideoTask
from tubelet.schemas import Tubelet, TubeletFrame, VideoRecord

W, H, FPS = 640, 360, 24.0


def make_tubelet(
    centres: list[tuple[float, float] | None], size: float | list[float] = 40.0, start: int = 0, tid: str = "v:t:1"
) -> Tubelet:
    """A tubelet from per-frame centres (None = invisible), square boxes clipped to the frame."""
    sizes = size if isinstance(size, list) else [size] * len(centres)
    frames, last = [], None
    for k, (c, s) in enumerate(zip(centres, sizes)):
        i = start + k
        if c is None:
            frames.append(TubeletFrame(i, i / FPS, last, visible=False))
            continue
        box = [max(0.0, c[0] - s / 2), max(0.0, c[1] - s / 2), min(W, c[0] + s / 2), min(H, c[1] + s / 2)]
        frames.append(TubeletFrame(i, i / FPS, box))
        last = box
    return Tubelet(tid, "v", "thing", "test", "1", FPS, W, H, frames)


def task_with(*tubelets: Tubelet, n_frames: int) -> VideoTask:
    task = VideoTask(video_id="v", uri="unused.mp4")
    task.video = VideoRecord("v", "unused.mp4", FPS, n_frames, n_frames / FPS, W, H, "h264")
    task.tubelets = list(tubelets)
    return task


def still_right_still(speed_px_s: float = 200.0, jitter: float = 0.0, seed: int = 0) -> list[tuple[float, float]]:
    """24 still frames, 36 frames moving right, 24 still frames (84 frames)."""
    xs = [100.0] * 24 + [100.0 + speed_px_s * (k + 1) / FPS for k in range(36)]
    xs += [xs[-1]] * 24
    rng = np.random.default_rng(seed)
    noise = rng.uniform(-jitter, jitter, (len(xs), 2))
    return [(x + dx, 180.0 + dy) for x, (dx, dy) in zip(xs, noise)]


def motion_labels(items) -> list[tuple[str, int, int]]:
    return [(i.label, i.start_frame, i.end_frame) for i in items if i.kind == "segment"]


def test_still_then_moving_right_then_still() -> None:
    items = lite_items(make_tubelet(still_right_still()), n_frames=84)
    segs = motion_labels(items)
    assert [s[0] for s in segs] == ["still", "move_right", "still"]
    # boundaries near frames 24 and 60, blurred by at most the 0.5 s smoothing window
    assert abs(segs[1][1] - 24) <= 6 and abs(segs[2][1] - 60) <= 6
    assert segs[0][1] == 0 and segs[-1][2] == 83  # the segments tile the run
    assert all(a[2] + 1 == b[1] for a, b in zip(segs, segs[1:]))
    texts = [i.text for i in items if i.kind == "segment"]
    assert texts == ["stays still", "moves right", "stays still"]  # 200 px/s = 0.27 diag/s
    assert [i.kind for i in items] == ["segment"] * 3  # starts at frame 0 and ends at the last frame


def test_speed_words() -> None:
    fast = lite_items(make_tubelet(still_right_still(speed_px_s=400.0)), n_frames=84)
    slow = lite_items(make_tubelet(still_right_still(speed_px_s=50.0)), n_frames=84)
    assert [i.text for i in fast][1] == "moves right quickly"
    assert [i.text for i in slow][1] == "moves right slowly"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mask_jitter_does_not_split_segments(seed: int) -> None:
    centres = still_right_still(jitter=4.0, seed=seed)
    centres[10] = (centres[10][0] + 30, centres[10][1])  # a one-frame mask glitch
    centres[40] = (centres[40][0], centres[40][1] - 25)
    items = lite_items(make_tubelet(centres), n_frames=84)
    assert [s[0] for s in motion_labels(items)] == ["still", "move_right", "still"]
    # Jitter alone on a still object: one segment, still.
    still = [(300 + dx, 200 + dy) for dx, dy in np.random.default_rng(seed).uniform(-4, 4, (72, 2))]
    assert [s[0] for s in motion_labels(lite_items(make_tubelet(still), n_frames=72))] == ["still"]


def test_without_smoothing_jitter_would_fragment() -> None:
    # The test above can fail: the same jitter, unsmoothed and unmerged, splits the run.
    raw = MotionConfig(smooth_s=0.0, min_segment_s=0.0)
    items = lite_items(make_tubelet(still_right_still(jitter=4.0)), n_frames=84, config=raw)
    assert len(motion_labels(items)) > 3


def test_direction_change_starts_a_segment_and_scale_gives_towards() -> None:
    right = [(100 + 200 * k / FPS, 180.0) for k in range(36)]
    down = [(right[-1][0], 180 + 150 * (k + 1) / FPS) for k in range(30)]
    assert [s[0] for s in motion_labels(lite_items(make_tubelet(right + down), 66))] == ["move_right", "move_down"]
    growing = make_tubelet([(320.0, 180.0)] * 48, size=[40 * 1.03**k for k in range(48)])
    [seg] = lite_items(growing, 48)
    assert (seg.label, seg.text) == ("move_towards", "moves towards the camera")
    shrinking = make_tubelet([(320.0, 180.0)] * 48, size=[160 * 0.97**k for k in range(48)])
    assert lite_items(shrinking, 48)[0].label == "move_away"


def test_gap_gives_leave_and_reenter() -> None:
    centres = [(300.0, 180.0)] * 30 + [None] * 10 + [(320.0, 190.0)] * 20
    items = lite_items(make_tubelet(centres, start=5), n_frames=100)
    presence = [(i.label, i.start_frame, i.text) for i in items if i.kind != "segment"]
    assert presence == [
        ("appear", 5, "appears"),
        ("leave", 34, "disappears from view"),
        ("reenter", 45, "reappears"),
        ("leave", 64, "disappears from view"),
    ]
    # motion segments never bridge the gap
    assert [s[1:] for s in motion_labels(items)] == [(5, 34), (45, 64)]
    leave = next(i for i in items if i.label == "leave")
    assert leave.start_s == leave.end_s == pytest.approx(34 / FPS)


def test_touching_the_right_edge_leaves_the_frame_to_the_right() -> None:
    # Enters from the left edge at frame 10, crosses, last seen touching the right edge.
    centres = [(10 + 300 * k / FPS, 150.0) for k in range(50)]
    assert centres[-1][0] + 20 >= W
    items = lite_items(make_tubelet(centres, start=10), n_frames=90)
    by_label = {i.label: i for i in items}
    assert by_label["appear"].text == "enters the frame from the left" and by_label["appear"].start_frame == 10
    assert by_label["leave"].text == "leaves the frame to the right" and by_label["leave"].start_frame == 59
    assert by_label["move_right"].text == "moves right quickly"
    assert [i.label for i in items] == ["appear", "move_right", "leave"]  # arrival first, departure last


def test_stage_events_ids_and_fields() -> None:
    a = make_tubelet(still_right_still(), tid="v:t:a")
    b = make_tubelet([(300.0, 180.0)] * 20 + [None] * 4 + [(300.0, 180.0)] * 20, start=10, tid="v:t:b")
    stage = ActionTimeline()
    assert not stage.needs_actor and stage.model_id is None
    [task] = run_stage(stage, [task_with(a, b, n_frames=84)])
    assert not task.failed and task.rejects == []
    for index, tube in enumerate(task.tubelets):
        events = [e for e in task.events if e.tubelet_ids == [tube.tubelet_id]]
        assert [e.event_id for e in events] == [event_id("v", index, n) for n in range(len(events))]
        assert [e.start_s for e in events] == sorted(e.start_s for e in events)
        assert all(e.source == "lite" and e.model_id is None and e.video_id == "v" for e in events)
        assert all(e.start_s == e.start_frame / FPS and e.end_s == e.end_frame / FPS for e in events)
    assert [e.label for e in task.events if e.tubelet_ids == ["v:t:b"]] == [
        "appear",
        "still",
        "leave",
        "reenter",
        "still",
        "leave",
    ]
    [again] = run_stage(ActionTimeline(), [task_with(a, b, n_frames=84)])
    assert again.events == task.events  # deterministic


def test_stage_config_is_checked_at_build() -> None:
    with pytest.raises(ValueError, match="mode"):
        ActionTimeline(mode="fast")
    with pytest.raises(TypeError):
        ActionTimeline(motion={"speed": 1})
    with pytest.raises(ValueError, match="hysteresis"):
        ActionTimeline(motion={"move_speed": 0.01, "still_speed": 0.05})
    with pytest.raises(ValueError, match="placeholders"):
        ActionTimeline(mode="vlm", prompt="what does {thing} do?")
    with pytest.raises(ValueError, match="unknown VLM backend"):
        ActionTimeline(mode="vlm", backend="carrier-pigeon")


def test_needs_the_probed_video() -> None:
    task = task_with(make_tubelet([(1.0, 1.0)]), n_frames=1)
    task.video = None
    [done] = run_stage(ActionTimeline(), [task])
    assert done.failed and "probe_video" in done.rejects[0].reason


# -- the synthetic sample, through the import pipeline's stages ---------------------------


def test_sample_appear_leave_reenter(synthetic_sample: SampleInfo, imported_sample: VideoTask) -> None:
    task = fresh_copy(imported_sample)
    gt = {o["category"]: o for o in json.loads(synthetic_sample.ground_truth.read_text())["objects"]}
    [task] = run_stage(ActionTimeline(), [task])
    assert not task.failed and task.rejects == []

    def events(i: int) -> list:
        return [e for e in task.events if e.tubelet_ids == [task.tubelets[i].tubelet_id]]

    square, circle, triangle = events(0), events(1), events(2)
    appear = next(e for e in square if e.label == "appear")
    assert appear.start_frame == gt["red square"]["first_frame"] == 27
    assert appear.start_s == pytest.approx(27 / 24) and appear.text == "enters the frame from the left"
    assert [e.label for e in square] == ["appear", "move_right"]  # still in view at the end: no leave
    assert [e.label for e in circle] == ["move_right"]  # whole clip: no appear, no leave

    seen = sorted(int(f) for f in gt["blue triangle"]["boxes_xyxy"])
    gap = [f for f in range(seen[0], seen[-1]) if f not in seen]
    last_before, first_after = gap[0] - 1, gap[-1] + 1
    leave = next(e for e in triangle if e.label == "leave")
    reenter = next(e for e in triangle if e.label == "reenter")
    assert abs(leave.start_frame - last_before) <= 1 and abs(leave.start_s - last_before / 24) <= 1 / 24 + 1e-9
    assert abs(reenter.start_frame - first_after) <= 1 and abs(reenter.start_s - first_after / 24) <= 1 / 24 + 1e-9
    assert leave.text == "leaves the frame to the left"
    assert [e.label for e in triangle] == ["move_left", "leave", "reenter", "move_right"]
    assert [e.event_id for e in triangle] == [f"sample-scene:event:2:{n}" for n in range(4)]


# -- DAVIS --------------------------------------------------------------------------------


def import_davis_sequence(root: Path, seq: str) -> VideoTask:
    from tubelet.annotators.importers.davis import davis_sequence_entries
    from tubelet.annotators.importers.stage import ImportAnnotations
    from tubelet.engine.probe import probe_task

    [entry] = [e for e in davis_sequence_entries(root) if e["video_id"] == seq]
    task = VideoTask(video_id=seq, uri=entry["uri"], fps=24.0, annotations=entry["annotations"])
    task.video = probe_task(task, decode_check=False)
    [task] = run_stage(ImportAnnotations(), [task])
    return task


@pytest.mark.assets
def test_davis_lite_timelines_are_sensible(assets: Path) -> None:
    root = assets / "davis2016"
    car = import_davis_sequence(root, "car-shadow")
    [car] = run_stage(ActionTimeline(), [car])
    events = car.events
    assert not car.failed and events and all(e.source == "lite" for e in events)
    # The car drives off to the left, away from the camera (its box shrinks to a quarter).
    assert events[0].label == "move_left" and events[0].start_frame == 0
    assert "move_away" in [e.label for e in events]
    moving = sum(e.end_frame - e.start_frame + 1 for e in events if e.label.startswith("move_"))
    assert moving == car.video.n_frames  # moving the whole time, never "still"
    assert events[-1].end_frame == car.video.n_frames - 1

    swan = import_davis_sequence(root, "blackswan")
    [swan] = run_stage(ActionTimeline(), [swan])
    # The camera follows the swan: it drifts slowly in the frame and is never "quick".
    assert swan.events and not any("quickly" in e.text for e in swan.events)
    assert len(swan.events) <= 3 and "still" in [e.label for e in swan.events]
    assert all(e.label == "still" or e.text.endswith("slowly") for e in swan.events)
    assert sum(e.end_frame - e.start_frame + 1 for e in swan.events) == swan.video.n_frames  # tiles the clip
