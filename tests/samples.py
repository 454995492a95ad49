"""The bundled synthetic sample as tests use it: written once per session (the
``synthetic_sample`` fixture in tests/conftest.py), its ground-truth masks imported, and
a phone-style rotated copy of it."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
from PIL import Image

from tests.engine.videos import rotated_copy
from tubelet.cli.sample import SampleInfo, davis_palette
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


def rotated_sample(info: SampleInfo, folder: Path, turn: int = 90) -> dict:
    """A video-list entry for the sample's mp4 re-encoded with a display matrix that turns it
    ``turn`` degrees counter-clockwise (as a phone held sideways writes), with its masks turned
    the same way: the masks of the video as a player shows it."""
    folder.mkdir(parents=True, exist_ok=True)
    video = rotated_copy(info.video, folder / f"scene-ccw{turn}.mp4", turn)
    masks = folder / f"masks-ccw{turn}"
    masks.mkdir(exist_ok=True)
    for png in sorted(info.masks_dir.glob("*.png")):
        with Image.open(png) as image:
            turned = Image.fromarray(np.ascontiguousarray(np.rot90(np.asarray(image), k=turn // 90)), mode="P")
        turned.putpalette(davis_palette())
        turned.save(masks / png.name)
    return {
        "uri": str(video),
        "video_id": f"scene-ccw{turn}",
        "annotations": {"format": "davis", "path": str(masks), "categories": info.categories},
    }
