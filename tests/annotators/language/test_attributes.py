"""Measured attributes: colour names from mask pixels, size, position, motion, relations —
on the synthetic sample (exact masks, known colours and script) and on tiny scenes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tubelet.annotators.language.attributes import (
    AttributeConfig,
    direction_of,
    measure_video,
    position_of,
    relations,
)
from tubelet.annotators.language.colours import colour_histogram, colour_name
from tubelet.annotators.language.visual_prompt import frames_needed
from tubelet.engine.task import VideoTask
from tubelet.engine.video import VideoReader
from tubelet.schemas import Tubelet, TubeletFrame
from tubelet.schemas.rle import encode_mask

# -- helpers shared with test_entities -----------------------------------------------

#: An object of a test scene: category, RGB colour, half side in px, centre at frame i.
SceneObject = tuple[str, tuple[int, int, int], int, Callable[[int], tuple[float, float]]]


def make_scene(
    root: Path,
    objects: list[SceneObject],
    n: int = 12,
    size: tuple[int, int] = (320, 180),
    fps: float = 10.0,
    video_id: str = "scene",
) -> VideoTask:
    """A lossless PNG-folder video of flat squares on a grey background, and a task with
    one exact-mask tubelet per object (the PNGs keep colours exact)."""
    width, height = size
    root.mkdir(parents=True, exist_ok=True)
    frames = []
    for i in range(n):
        image = np.full((height, width, 3), 128, np.uint8)
        masks = []
        for _, colour, half, centre in objects:
            cx, cy = centre(i)
            mask = np.zeros((height, width), bool)
            r1, r2 = max(0, round(cy - half)), max(0, round(cy + half))
            c1, c2 = max(0, round(cx - half)), max(0, round(cx + half))
            mask[r1:r2, c1:c2] = True
            image[mask] = colour
            masks.append(mask)
        Image.fromarray(image).save(root / f"{i:05d}.png")
        frames.append(masks)
    task = VideoTask(video_id=video_id, uri=str(root), fps=fps)
    for k, (category, *_rest) in enumerate(objects):
        rows = []
        for i in range(n):
            mask = frames[i][k]
            ys, xs = np.nonzero(mask)
            if len(xs) == 0:
                rows.append(TubeletFrame(frame_idx=i, t_s=i / fps, box_xyxy=[0, 0, 1, 1], visible=False))
                continue
            box = [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
            rows.append(TubeletFrame(frame_idx=i, t_s=i / fps, box_xyxy=box, mask_rle=encode_mask(mask)))
        task.tubelets.append(
            Tubelet(
                tubelet_id=f"{video_id}:t:{k}",
                video_id=video_id,
                category=category,
                source="test",
                track_id=str(k),
                fps=fps,
                width=width,
                height=height,
                frames=rows,
            )
        )
    return task


def read_frames(task: VideoTask, n_frames: int = 4) -> dict[int, np.ndarray]:
    indices = frames_needed(task.tubelets, n_frames)
    with VideoReader(task.uri, fps=task.fps) as reader:
        return dict(zip(indices, reader.frames(indices)))


# -- the sample ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_attrs(imported_sample: VideoTask) -> dict[str, dict]:
    task = imported_sample
    by_category = {t.category: t.tubelet_id for t in task.tubelets}
    measured = measure_video(task.tubelets, read_frames(task))
    json.dumps(measured)  # stored as JSON: must serialise as is
    return {category: measured[tid] for category, tid in by_category.items()}


def test_colours_of_the_sample_match_what_was_drawn(sample_attrs: dict[str, dict]) -> None:
    for category in ("red square", "green circle", "blue triangle"):
        attrs = sample_attrs[category]
        assert attrs["colour"] == category.split()[0]
        assert attrs["colours"][attrs["colour"]] > 0.9  # striped and compressed, still one name


def test_motion_of_the_sample_follows_the_script(sample_attrs: dict[str, dict]) -> None:
    # engine/sample.py: the square and the circle move right, the triangle mostly left
    square, circle, triangle = (sample_attrs[c] for c in ("red square", "green circle", "blue triangle"))
    assert square["direction"] == "right" and circle["direction"] == "right"
    assert triangle["direction"] == "left"
    # the circle: 426 px in 71 frames at 24 fps over a 640 px frame
    assert circle["speed"] == pytest.approx(426 / 640 / (71 / 24), rel=0.05)
    assert circle["velocity"][1] == pytest.approx(0, abs=0.01)
    assert square["visible_s"][0] == pytest.approx(27 / 24)


def test_size_position_and_relations_of_the_sample(sample_attrs: dict[str, dict]) -> None:
    square, circle = sample_attrs["red square"], sample_attrs["green circle"]
    assert {a["size"] for a in sample_attrs.values()} == {"small"}  # ~1.4 % of the frame each
    # both cross the frame: the square stays at the top, the circle's "middle" alone says nothing
    assert square["position"] == {"horizontal": None, "vertical": "top"} and circle["position"] is None
    assert square["checks"]["position"][1] == 1.0 and square["checks"]["position"][0] < 0.8
    rels = {(r["relation"], r["category"]) for r in square["relations"]}
    assert ("above", "green circle") in rels and ("left of", "green circle") in rels
    assert ("below", "red square") in {(r["relation"], r["category"]) for r in circle["relations"]}


# -- colour names --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rgb", "name"),
    [
        ((215, 40, 40), "red"),
        ((168, 31, 31), "red"),
        ((50, 190, 60), "green"),
        ((30, 90, 205), "blue"),
        ((0, 0, 128), "blue"),
        ((135, 206, 235), "blue"),
        ((255, 215, 0), "yellow"),
        ((255, 140, 0), "orange"),
        ((128, 0, 128), "purple"),
        ((255, 182, 193), "pink"),
        ((100, 50, 20), "brown"),
        ((10, 10, 10), "black"),
        ((250, 250, 250), "white"),
        ((128, 128, 128), "grey"),
    ],
)
def test_colour_names(rgb: tuple[int, int, int], name: str) -> None:
    assert colour_name(np.array([rgb], np.uint8)) == name


def test_colour_histogram_is_of_pixels_not_of_the_mean() -> None:
    # half red, half blue: the mean (purple) is not what the object is
    pixels = np.array([(200, 30, 30)] * 60 + [(40, 80, 200)] * 40, np.uint8)
    assert colour_histogram(pixels) == {"red": 0.6, "blue": 0.4}
    assert colour_name(np.zeros((0, 3), np.uint8)) is None


def test_boundary_pixels_are_ignored(tmp_path: Path) -> None:
    # a red square whose 2-px border is painted green (as compression smears edges)
    task = make_scene(tmp_path / "v", [("box", (200, 30, 30), 12, lambda i: (100, 90))], n=2)
    frames = read_frames(task)
    mask = np.zeros((180, 320), bool)
    mask[78:102, 88:112] = True
    inner = np.zeros_like(mask)
    inner[80:100, 90:110] = True
    for image in frames.values():
        image[mask & ~inner] = (40, 160, 60)
    attrs = measure_video(task.tubelets, frames)[task.tubelets[0].tubelet_id]
    assert attrs["colours"] == {"red": 1.0}
    no_erosion = measure_video(task.tubelets, frames, config=AttributeConfig(boundary_px=0))
    assert "green" in no_erosion[task.tubelets[0].tubelet_id]["colours"]


# -- geometry --------------------------------------------------------------------------


def test_still_object_sizes_and_positions(tmp_path: Path) -> None:
    task = make_scene(
        tmp_path / "v",
        [
            ("big", (40, 80, 200), 60, lambda i: (250.0, 140.0)),  # 120x120 of 320x180: 25 %
            ("dot", (200, 30, 30), 4, lambda i: (30.0 + 0.1 * (i % 2), 20.0)),  # jitters in place
            ("mid", (40, 160, 60), 20, lambda i: (160.0, 90.0)),
        ],
    )
    big, dot, mid = (measure_video(task.tubelets, read_frames(task))[t.tubelet_id] for t in task.tubelets)
    assert (big["size"], dot["size"], mid["size"]) == ("large", "small", "medium")
    assert big["position"] == {"horizontal": "right", "vertical": "bottom"}
    assert dot["position"] == {"horizontal": "left", "vertical": "top"}
    assert mid["position"] == {"horizontal": "centre", "vertical": "middle"}
    assert dot["direction"] == "still" and dot["speed_class"] == "still"
    assert {(r["relation"], r["category"]) for r in big["relations"]} >= {("larger than", "mid"), ("right of", "mid")}


def test_diagonal_motion_and_depth(tmp_path: Path) -> None:
    task = make_scene(
        tmp_path / "v",
        [
            ("a", (200, 30, 30), 10, lambda i: (300.0 - 20 * i, 20.0 + 10 * i)),  # left and down
            ("b", (40, 80, 200), 10, lambda i: (160.0, 90.0)),
        ],
        n=12,
    )
    # b grows: 20 px -> 60 px wide over the clip
    grow = make_scene(tmp_path / "g", [("c", (40, 80, 200), 1, lambda i: (160.0, 90.0))], n=12)
    for k, row in enumerate(grow.tubelets[0].frames):
        half = 10 + 2 * k
        row.box_xyxy = [160 - half, 90 - half, 160 + half, 90 + half]
        row.mask_rle = None
    measured = measure_video(task.tubelets, read_frames(task))
    assert measured["scene:t:0"]["direction"] == "down-left"
    assert measured["scene:t:0"]["velocity"] == pytest.approx([-20 * 10 / 320, 10 * 10 / 180], rel=0.01)
    assert measured["scene:t:0"]["depth"] is None
    assert measure_video(grow.tubelets, {})["scene:t:0"]["depth"] == "closer"


def test_direction_and_position_helpers() -> None:
    assert [direction_of(*v) for v in [(1, 0), (0, 1), (-1, 0), (0, -1), (1, -1), (-1, 0.3)]] == [
        "right",
        "down",
        "left",
        "up",
        "up-right",
        "left",
    ]
    assert position_of(0.1, 0.9) == ("left", "bottom") and position_of(0.5, 0.5) == ("centre", "middle")


def test_no_shared_frames_no_relations(tmp_path: Path) -> None:
    task = make_scene(
        tmp_path / "v",
        [
            ("a", (200, 30, 30), 10, lambda i: (30.0, 90.0) if i < 5 else (-100.0, -100.0)),
            ("b", (40, 80, 200), 10, lambda i: (290.0, 90.0) if i >= 6 else (-100.0, -100.0)),
        ],
    )
    a, b = task.tubelets
    assert relations(a, b) == [] and relations(b, a) == []
