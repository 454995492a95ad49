"""The bundled synthetic sample as tests use it: written once per session (the
``synthetic_sample`` fixture in tests/conftest.py), its ground-truth masks imported."""

from __future__ import annotations

import copy
import json

from tubelet.cli.sample import SampleInfo
from tubelet.engine.stage import run_stage
from tubelet.engine.task import VideoTask
from tubelet.pipelines import build_pipeline

CATEGORIES = ["red square", "green circle", "blue triangle"]


def import_sample(info: SampleInfo) -> VideoTask:
    """The sample's mp4 with its exact masks as tubelets, through the ``import`` pipeline's stages."""
    row = json.loads(info.video_list.read_text().splitlines()[0])
    annotations = dict(row["annotations"], path=str(info.masks_dir))
    task = VideoTask(video_id=row["video_id"], uri=str(info.video), annotations=annotations)
    for stage in build_pipeline("import", {"decode_check": False}).stages:
        [task] = run_stage(stage, [task])
    assert not task.failed and [t.category for t in task.tubelets] == CATEGORIES
    return task


def fresh_copy(task: VideoTask) -> VideoTask:
    """A deep copy, for a test that changes the task (the session's one stays untouched)."""
    return copy.deepcopy(task)
