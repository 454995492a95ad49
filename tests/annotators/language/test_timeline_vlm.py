"""ActionTimeline VLM mode: windows, merging, rejects; the fake OpenAI server; a tiny model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from tests.annotators.language.fake_server import FakeChatServer
from tests.annotators.language.scripted_backend import ScriptedBackend
from tests.annotators.language.test_timeline import make_tubelet
from tubelet.annotators.language.timeline import ActionTimeline
from tubelet.annotators.language.timeline_vlm import (
    ACTION_WINDOW,
    highlight,
    make_windows,
    window_item,
    window_template,
)
from tubelet.engine.stage import run_stage
from tubelet.engine.task import VideoTask
from tubelet.schemas import TubeletFrame

pytest.importorskip("cv2")  # the sample video and visual_prompt need OpenCV


@pytest.fixture(scope="module")
def sample(imported_sample: VideoTask) -> VideoTask:
    return imported_sample


def fresh(task: VideoTask, keep: list[int] | None = None, categories: list[str] | None = None) -> VideoTask:
    """A copy of the imported sample task with no events, some tubelets, new categories."""
    tubelets = [task.tubelets[i] for i in (keep if keep is not None else range(len(task.tubelets)))]
    if categories is not None:
        tubelets = [dataclasses.replace(t, category=c) for t, c in zip(tubelets, categories)]
    return dataclasses.replace(task, tubelets=tubelets, events=[], rejects=[])


def scripted_stage(backend: ScriptedBackend, **config: object) -> ActionTimeline:
    stage = ActionTimeline(mode="vlm", backend="openai", **config)  # type: ignore[arg-type]
    stage._backend = backend  # a test double in place of the (never set up) HTTP client
    return stage


def answer(label: str, action: str | None = None) -> str:
    return f'{{"action": "{action or label + "s"}", "label": "{label}"}}'


# -- pure parts -------------------------------------------------------------------------


def test_windows_cover_each_visible_run_and_never_span_a_gap() -> None:
    # visible 0-23, gap 24-59 (1.5 s), visible 60-71; 0.5 s windows
    tube = make_tubelet([(300.0, 180.0)] * 24 + [None] * 36 + [(300.0, 180.0)] * 12)
    windows = make_windows(tube, window_s=0.5, frames_per_window=4)
    assert [w.index for w in windows] == [0, 1, 3]  # the index skips across the gap: never adjacent
    assert [(w.frames[0].frame_idx, w.frames[-1].frame_idx) for w in windows] == [(0, 11), (12, 23), (60, 71)]
    assert windows[0].start_s == 0 and windows[-1].end_s == pytest.approx(71 / 24)
    assert all(len(w.sampled) == min(4, len(w.frames)) for w in windows)
    assert [f.frame_idx for f in windows[0].sampled] == [0, 4, 7, 11]  # evenly spread, ends included
    overlapping = make_windows(make_tubelet([(300.0, 180.0)] * 48), window_s=1.0, stride_s=0.5)
    assert [(w.frames[0].frame_idx, w.frames[-1].frame_idx) for w in overlapping] == [(0, 23), (12, 35), (24, 47)]
    assert window_item("v:t:1", overlapping[1]) == "v:t:1@0.500-1.458"


def test_highlight_marks_the_object_only() -> None:
    image = np.zeros((90, 160, 3), np.uint8)
    mask = np.zeros((180, 320), np.uint8)
    mask[60:120, 100:200] = 1
    from tubelet.schemas.rle import encode_mask

    frame = TubeletFrame(0, 0.0, [100.0, 60.0, 200.0, 120.0], mask_rle=encode_mask(mask))
    out = highlight(image, frame, (320, 180))
    red = (out[..., 0] > 0) & (out[..., 1] == 0)
    ys, xs = np.nonzero(red)
    assert red.any() and xs.min() >= 45 and xs.max() <= 104 and ys.min() >= 25 and ys.max() <= 64
    assert not red[:20].any() and not red[:, :40].any()  # far from the object: untouched
    boxed = highlight(image, dataclasses.replace(frame, mask_rle=None), (320, 180))
    assert np.array_equal(boxed > 0, out > 0)  # box == mask here (a rectangle)


def test_template_placeholders_are_checked() -> None:
    assert window_template() is ACTION_WINDOW and ACTION_WINDOW.id == "action_window@1"
    assert window_template("json {category}").fields == {"category"}
    with pytest.raises(ValueError, match="placeholders"):
        window_template("what does {thing} do?")


# -- scripted backend: merging and rejects per window -----------------------------------


def test_adjacent_windows_merge_and_a_bad_window_is_rejected(sample: VideoTask) -> None:
    # The green circle is visible on all 72 frames: six 0.5 s windows.
    backend = ScriptedBackend(
        model_id="scripted-vlm",
        script={
            "0": [answer("roll")],
            "1": [answer("Roll", "rolls on")],
            "2": [answer("bounce")],
            "3": ["{broken", "still broken", "nope"],
            "4": [answer("roll")],
            "5": [answer("roll")],
        },
    )
    stage = scripted_stage(backend, window_s=0.5, retries=2)
    with stage.started():
        [task] = run_stage(stage, [fresh(sample, keep=[1])])
    assert not task.failed
    got = [(e.label, e.start_frame, e.end_frame, e.text) for e in task.events]
    assert got == [("roll", 0, 23, "rolls"), ("bounce", 24, 35, "bounces"), ("roll", 48, 71, "rolls")]
    assert all(e.source == e.model_id == "scripted-vlm" for e in task.events)
    assert all(e.prompt_version == "action_window@1" for e in task.events)  # which prompt answered
    assert [e.event_id for e in task.events] == [f"sample-scene:event:0:{n}" for n in range(3)]
    [reject] = task.rejects
    assert reject.item == "sample-scene:davis:2@1.500-1.958" and reject.stage == "action_timeline"
    assert "after 3 asks" in reject.reason and "action_window@1" in reject.reason
    first = backend.seen[0]
    assert len(first.images) == 4 and first.images[0].shape == (252, 448, 3)
    assert "green circle" in first.prompt and "0.00 s to 0.46 s" in first.prompt
    assert len(backend.seen) == 6 + 2  # window 3 asked three times


# -- the fake OpenAI-compatible server --------------------------------------------------


def test_fake_server_merges_valid_windows_and_rejects_malformed(sample: VideoTask) -> None:
    # The fake server answers "json X" with X: the category carries each tubelet's script.
    valid = '{"action": "slides to the right", "label": "Slide Right"}'
    malformed = '{"action": "rolls", label: roll'
    task = fresh(sample, categories=[valid, malformed, valid])
    with FakeChatServer() as server:
        stage = ActionTimeline(
            mode="vlm",
            backend="openai",
            window_s=0.5,
            stride_s=0.25,
            retries=1,
            frames_per_window=2,
            image_max_side=160,
            prompt="json {category}",
            backend_options={"model": "fake-vlm", "base_url": server.base_url, "api_key_env": None, "max_retries": 0},
        )
        stage.setup()
        try:
            [task] = run_stage(stage, [task])
        finally:
            stage.teardown()
    assert not task.failed and stage.model_id == "fake-vlm"
    by_tube = {t.tubelet_id: [e for e in task.events if e.tubelet_ids == [t.tubelet_id]] for t in task.tubelets}
    square, circle, triangle = by_tube.values()
    # every overlapping window of the square said the same: one event over its whole life
    assert [(e.label, e.start_frame, e.end_frame, e.source) for e in square] == [
        ("appear", 27, 27, "lite"),
        ("slide_right", 27, 71, "fake-vlm"),
    ]
    assert square[1].text == "slides to the right" and square[1].model_id == "fake-vlm"
    # the circle's windows all failed twice (asked, re-asked): rejected, no events
    circle_windows = make_windows(task.tubelets[1], 0.5, 0.25, 2)
    assert circle == [] and len(circle_windows) == 11
    assert [r.item for r in task.rejects] == [window_item("sample-scene:davis:2", w) for w in circle_windows]
    assert all(r.reason.startswith("malformed JSON") and "after 2 asks" in r.reason for r in task.rejects)
    # the triangle's gap splits its windows: two VLM events around the lite leave/reenter
    assert [e.label for e in triangle] == ["slide_right", "leave", "reenter", "slide_right"]
    assert [e.event_id for e in triangle] == [f"sample-scene:event:2:{n}" for n in range(4)]
    bodies = [b for b in server.bodies if "slides" in str(b["messages"][-1]["content"][-1]["text"])]
    assert bodies and all(sum(p["type"] == "image_url" for p in b["messages"][-1]["content"]) == 2 for b in bodies)
    assert all(b["messages"][0]["role"] == "system" for b in server.bodies)


# -- a tiny random Qwen2.5-VL, end to end -----------------------------------------------


def test_tiny_random_model_runs_and_garbage_is_rejected(sample: VideoTask, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tests.annotators.language.tiny_vlm import build_tiny_qwen25_vl

    path = build_tiny_qwen25_vl(tmp_path / "tiny")
    stage = ActionTimeline(
        mode="vlm",
        backend="transformers",
        window_s=1.0,
        retries=1,
        frames_per_window=2,
        image_max_side=112,
        max_new_tokens=12,
        backend_options={"model": str(path), "device": "cpu", "batch_size": 4},
    )
    with stage.started():
        [task] = run_stage(stage, [fresh(sample, keep=[2])])
    assert not task.failed and stage.model_id == "tiny"
    windows = make_windows(task.tubelets[0], 1.0, None, 2)
    vlm_events = [e for e in task.events if e.source == "tiny"]
    # Random weights write garbage: each window is a clean reject with a reason ...
    assert vlm_events == [] and len(task.rejects) == len(windows) == 3
    assert all(r.item.startswith("sample-scene:davis:3@") and "after 2 asks" in r.reason for r in task.rejects)
    # ... and the presence events, which need no model, are still there.
    assert [e.label for e in task.events if e.source == "lite"] == ["leave", "reenter"]
