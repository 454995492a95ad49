"""The embedded demo sample: the mp4 decodes as written, the masks are the drawn objects."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tubelet.cli import sample
from tubelet.engine.manifest import expand_videos, load_manifest
from tubelet.engine.video import VideoReader

pytest.importorskip("cv2")

RED, GREEN, BLUE = 1, 2, 3


@pytest.fixture(scope="module")
def written(synthetic_sample: sample.SampleInfo) -> sample.SampleInfo:
    return synthetic_sample


def mask(info: sample.SampleInfo, frame: int) -> np.ndarray:
    with Image.open(info.masks_dir / f"{frame:05d}.png") as image:
        assert image.mode == "P"
        return np.asarray(image)


def eroded(m: np.ndarray, r: int = 3) -> np.ndarray:
    """The mask without an ``r``-pixel rim, where compression blurs the colours."""
    import cv2

    return cv2.erode(m.astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)).astype(bool)


@pytest.mark.usefixtures("video_backend")
def test_the_mp4_reads_back(written: sample.SampleInfo) -> None:
    with VideoReader(str(written.video)) as video:
        assert video.n_frames == sample.N_FRAMES == 72
        assert video.frames([0]).shape == (1, 360, 640, 3)
        assert video.meta.fps == pytest.approx(24.0)
        assert np.allclose(video.timestamps(), np.arange(72) / 24.0, atol=1e-3)


def test_files_and_palette(written: sample.SampleInfo) -> None:
    assert len(list(written.frames_dir.glob("*.jpg"))) == 72
    assert len(list(written.masks_dir.glob("*.png"))) == 72
    with Image.open(written.masks_dir / "00000.png") as image:
        palette = image.getpalette()
    # DAVIS-2017 palette: index 1 dark red, 2 dark green, 3 olive
    assert palette[3:12] == [128, 0, 0, 0, 128, 0, 128, 128, 0]
    values = set()
    for f in range(72):
        values |= set(np.unique(mask(written, f)).tolist())
    assert values == {0, 1, 2, 3}


def test_the_story_of_the_scene(written: sample.SampleInfo) -> None:
    present = {oid: [f for f in range(72) if (mask(written, f) == oid).any()] for oid in (RED, GREEN, BLUE)}
    # the red square enters mid-video, from the left edge
    assert present[RED] == list(range(27, 72))
    first = mask(written, 27) == RED
    assert first[:, 0].any() and first.sum() < 56 * 56
    # the circle is there throughout; the triangle crosses in front of it
    assert present[GREEN] == list(range(72))
    full = (mask(written, 0) == GREEN).sum()
    crossing = min((mask(written, f) == GREEN).sum() for f in range(20, 30))
    assert 0 < crossing < 0.5 * full
    # the triangle leaves on the left and comes back
    assert present[BLUE] == [f for f in range(72) if not 44 <= f <= 50]
    assert (mask(written, 43) == BLUE)[:, 0].any() and (mask(written, 51) == BLUE)[:, 0].any()


@pytest.mark.usefixtures("video_backend")
@pytest.mark.parametrize("frame", [5, 25, 40, 65])
def test_masks_match_the_drawn_objects(written: sample.SampleInfo, frame: int) -> None:
    with VideoReader(str(written.video)) as video:
        video_rgb = video.frames([frame])[0].astype(float)
    with Image.open(written.frames_dir / f"{frame:05d}.jpg") as image:
        jpeg_rgb = np.asarray(image.convert("RGB")).astype(float)
    labels = mask(written, frame)
    for oid, _, bgr, _, _ in sample.OBJECTS:
        inside = eroded(labels == oid)
        if inside.sum() < 20:
            continue
        want = np.array(bgr[::-1], float)
        for rgb in (video_rgb, jpeg_rgb):
            mean = rgb[inside].mean(axis=0)
            # stripes darken part of the object to 78 %: the mean lies between
            assert np.all(mean >= 0.78 * want - 12) and np.all(mean <= want + 12), (oid, mean, want)
    # pixels that no mask claims look like the background, not like any object
    bg = eroded(labels == 0, 4)
    bg_mean = video_rgb[bg].mean(axis=0)
    for _, _, bgr, _, _ in sample.OBJECTS:
        assert np.abs(bg_mean - np.array(bgr[::-1], float)).max() > 60


def test_ground_truth_boxes_are_the_mask_boxes(written: sample.SampleInfo) -> None:
    gt = json.loads(written.ground_truth.read_text())
    assert (gt["fps"], gt["n_frames"], gt["width"], gt["height"]) == (24.0, 72, 640, 360)
    for obj in gt["objects"]:
        for f, box in obj["boxes_xyxy"].items():
            ys, xs = np.nonzero(mask(written, int(f)) == obj["id"])
            assert box == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    assert [o["category"] for o in gt["objects"]] == ["red square", "green circle", "blue triangle"]
    assert [o["visible_frames"] for o in gt["objects"]] == [45, 72, 65]


def test_deterministic(written: sample.SampleInfo, tmp_path: Path) -> None:
    again = sample.write_sample(tmp_path / "again")

    def digest(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    for rel in ("masks/00030.png", "frames/00030.jpg", "ground_truth.json", "videos.jsonl"):
        assert digest(written.root / rel) == digest(again.root / rel), rel
    with VideoReader(str(written.video)) as first, VideoReader(str(again.video)) as second:
        assert np.array_equal(first.frames([0, 30, 71]), second.frames([0, 30, 71]))


def test_video_list_expands(written: sample.SampleInfo, tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(f"pipeline: import\noutput: out\nvideos:\n  - path: {written.video_list}\n")
    tasks, rejects = expand_videos(load_manifest(manifest))
    assert rejects == []
    assert [(t.video_id, t.uri, t.fps) for t in tasks] == [
        ("sample-scene", str(written.video), None),
        ("sample-scene-frames", str(written.frames_dir), 24.0),
    ]
    for task in tasks:
        assert task.annotations == {
            "format": "davis",
            "path": str(written.masks_dir),
            "categories": sample.categories(),
        }
