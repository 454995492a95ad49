"""Detector stages without weights: the shared keyframe loop and MotionDetector."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("cv2")

from tubelet.annotators.detectors import FrameBoxes, MotionDetector
from tubelet.annotators.detectors.appearance import N_BINS, appearance_distance, histogram
from tubelet.annotators.detectors.keyframes import decode_size, resize_mask, to_detections
from tubelet.cli.sample import SampleInfo
from tubelet.engine.stage import run_stage
from tubelet.engine.task import VideoTask
from tubelet.engine.video import VideoReader
from tubelet.schemas import Detection
from tubelet.schemas.geometry import box_iou
from tubelet.schemas.rle import decode_rle, rle_to_box_xyxy


@pytest.fixture(scope="module")
def sample(synthetic_sample: SampleInfo) -> SampleInfo:
    return synthetic_sample


def _detect(stage: MotionDetector, uri: Path, fps: float | None = None) -> VideoTask:
    stage.setup()
    [task] = run_stage(stage, [VideoTask(video_id="v", uri=str(uri), fps=fps)])
    assert not task.failed, task.rejects
    return task


def _recall(sample, stage: MotionDetector, detections: list[Detection]) -> tuple[int, int]:
    """Ground-truth objects on the keyframes matched by a detection at IoU >= 0.5."""
    gt = json.loads(sample.ground_truth.read_text())
    by_frame: dict[int, list[Detection]] = defaultdict(list)
    for d in detections:
        by_frame[d.frame_idx].append(d)
    with VideoReader(str(sample.video)) as video:
        keyframes = video.sample_indices(fps=stage.keyframe_fps)
    hits = total = 0
    for f in keyframes:
        for obj in gt["objects"]:
            box = obj["boxes_xyxy"].get(str(f))
            if box is None:
                continue
            total += 1
            hits += max((box_iou(box, d.box_xyxy) for d in by_frame[f]), default=0.0) >= 0.5
    return hits, total


@pytest.mark.parametrize("method", ["mog2", "knn"])
def test_motion_finds_the_moving_objects(sample, method: str) -> None:
    stage = MotionDetector(method=method, keyframe_fps=4)
    task = _detect(stage, sample.video)
    hits, total = _recall(sample, stage, task.detections)
    # 12 keyframes, 30 visible objects; the triangle crossing the circle merges them once
    assert total == 30
    assert hits >= 0.85 * total, (hits, total)
    assert len(task.detections) <= total + 3  # few false alarms on the static background
    for d in task.detections:
        assert d.category == "moving object" and d.detector == f"motion-{method}"
        assert 0 < d.score <= 1
        assert d.t_s == pytest.approx(d.frame_idx / 24.0, abs=1e-3)
        assert d.mask_rle is not None and d.mask_rle["size"] == [360, 640]
        assert rle_to_box_xyxy(d.mask_rle) == d.box_xyxy  # box is the mask's tight box


def test_motion_on_smaller_decode_keeps_original_pixels(sample) -> None:
    stage = MotionDetector(max_side=320, keyframe_fps=4)
    task = _detect(stage, sample.video)
    hits, total = _recall(sample, stage, task.detections)
    assert hits >= 0.8 * total, (hits, total)
    assert all(d.mask_rle["size"] == [360, 640] for d in task.detections)
    assert max(d.box_xyxy[2] for d in task.detections) > 320  # scaled back, not decode pixels


def test_motion_is_deterministic_and_reads_image_folders(sample) -> None:
    first = _detect(MotionDetector(keyframe_fps=6), sample.frames_dir, fps=24.0).detections
    second = _detect(MotionDetector(keyframe_fps=6), sample.frames_dir, fps=24.0).detections
    assert first and first == second
    assert sorted({d.frame_idx for d in first})[:3] == [0, 4, 8]


def test_motion_finds_nothing_in_a_static_scene(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    for i in range(10):
        image.save(tmp_path / f"{i:05d}.png")
    assert _detect(MotionDetector(keyframe_fps=None), tmp_path, fps=10.0).detections == []


def test_corrupt_videos_become_rejects_and_spare_the_batch(sample, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all" * 100)
    cut = tmp_path / "cut.mp4"
    data = sample.video.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    stage = MotionDetector(keyframe_fps=4)
    stage.setup()
    tasks = [
        VideoTask(video_id="bad", uri=str(garbage)),
        VideoTask(video_id="good", uri=str(sample.video)),
        VideoTask(video_id="cut", uri=str(cut)),
    ]
    bad, good, cut_task = run_stage(stage, tasks)
    assert not good.failed and good.detections
    for task in (bad, cut_task):
        assert task.failed_stage == "motion_detector" and task.detections == []
        [reject] = task.rejects
        assert reject.stage == "motion_detector" and reject.reason.startswith("VideoError: ")
    assert "not_a_video" in bad.rejects[0].reason


def test_motion_config_is_checked() -> None:
    with pytest.raises(ValueError, match="method"):
        MotionDetector(method="frame-diff")
    with pytest.raises(ValueError, match="keyframe_fps"):
        MotionDetector(keyframe_fps=0)


def test_to_detections_scales_clips_and_drops_empty_boxes() -> None:
    boxes = FrameBoxes(
        xyxy=[[10, 10, 20, 30], [-5, 40, 500, 60], [70, 10, 90, 20]],  # the last is outside
        scores=[0.9, 0.5, 0.4],
        categories=["a", "b", "c"],
    )
    # found on a 80x60 decode of a 160x120 video
    out = to_detections(boxes, 7, 0.25, 80, 60, 160, 120, "m")
    assert [d.box_xyxy for d in out] == [
        [20.0, 20.0, 40.0, 60.0],
        [0.0, 80.0, 160.0, 120.0],
        [140.0, 20.0, 160.0, 40.0],
    ]
    boxes.xyxy[2] = [85, 10, 95, 20]
    out = to_detections(boxes, 7, 0.25, 80, 60, 160, 120, "m")
    assert [d.category for d in out] == ["a", "b"]
    assert all(d.frame_idx == 7 and d.t_s == 0.25 and d.detector == "m" for d in out)


def test_masks_are_resized_to_the_original_frame() -> None:
    mask = np.zeros((1, 6, 8), bool)
    mask[0, 2:4, 1:3] = True
    out = to_detections(FrameBoxes([[1, 2, 3, 4]], [1.0], ["x"], mask), 0, 0.0, 8, 6, 16, 12, None)
    [d] = out
    assert d.box_xyxy == [2.0, 4.0, 6.0, 8.0]
    assert decode_rle(d.mask_rle).sum() == 16
    same = mask[0]
    assert resize_mask(same, 8, 6) is same  # no copy when the size already fits


def test_decode_size_keeps_aspect_and_even_sides() -> None:
    assert decode_size(1280, 720, 640) == (640, 360)
    assert decode_size(854, 480, 640) == (640, 360)
    assert decode_size(640, 360, 640) == (640, 360)
    assert decode_size(1000, 3001, None) == (1000, 3001)
    with pytest.raises(ValueError):
        FrameBoxes([[0, 0, 1, 1]], [0.5, 0.6], ["a"])


def test_max_keyframes_spreads_a_capped_number_over_the_video(sample) -> None:
    task = _detect(MotionDetector(keyframe_fps=None, max_keyframes=4, frame_batch=3), sample.video)
    assert {d.frame_idx for d in task.detections} <= {0, 18, 36, 54}
    assert len({d.frame_idx for d in task.detections}) >= 3


def test_every_detection_gets_an_appearance_descriptor(sample) -> None:
    # the shared keyframe loop computes it, on the decoded frame: the sample's red
    # square, green circle and blue triangle are each near themselves, far from the others
    gt = json.loads(sample.ground_truth.read_text())
    for max_side in (None, 320):
        task = _detect(MotionDetector(keyframe_fps=4, max_side=max_side), sample.video)
        assert task.detections
        assert all(d.appearance is not None and len(d.appearance) == N_BINS for d in task.detections)
        owner = {}
        for i, d in enumerate(task.detections):
            ious = [box_iou(o["boxes_xyxy"].get(str(d.frame_idx), [0, 0, 0, 0]), d.box_xyxy) for o in gt["objects"]]
            if max(ious) >= 0.7:  # skip the merged blob of two crossing objects
                owner[i] = int(np.argmax(ious))
        assert len(set(owner.values())) == 3
        pairs = [(a, b) for a in owner for b in owner if a < b]
        same = [
            appearance_distance(task.detections[a].appearance, task.detections[b].appearance)
            for a, b in pairs
            if owner[a] == owner[b]
        ]
        other = [
            appearance_distance(task.detections[a].appearance, task.detections[b].appearance)
            for a, b in pairs
            if owner[a] != owner[b]
        ]
        assert max(same) < 0.35 and min(other) > 0.65, (max_side, max(same), min(other))
    off = _detect(MotionDetector(keyframe_fps=4, appearance=False), sample.video)
    assert off.detections and all(d.appearance is None for d in off.detections)


def test_to_detections_describes_boxes_and_masks_on_the_detectors_frame() -> None:
    frame = np.full((60, 80, 3), 128, np.uint8)
    frame[10:30, 10:30] = (220, 30, 30)  # red block
    frame[10:30, 50:70] = (30, 30, 220)  # blue block
    red = histogram(np.array([[220, 30, 30]]))
    boxes = FrameBoxes([[8, 8, 32, 32], [48, 8, 72, 32]], [0.9, 0.8], ["a", "a"])
    out = to_detections(boxes, 0, 0.0, 80, 60, 160, 120, None, frame=frame)
    assert appearance_distance(out[0].appearance, red) < 0.1  # inner part of the box: the block
    assert appearance_distance(out[1].appearance, red) > 0.9
    assert to_detections(boxes, 0, 0.0, 80, 60, 160, 120, None)[0].appearance is None  # no frame
    # a mask given at half the detector's frame size is resized to it first
    mask = np.zeros((1, 30, 40), bool)
    mask[0, 5:15, 25:35] = True  # = the blue block at full size
    found = FrameBoxes([[0, 0, 80, 60]], [0.9], ["a"], mask)
    [d] = to_detections(found, 0, 0.0, 80, 60, 80, 60, None, frame=frame)
    assert appearance_distance(d.appearance, histogram(np.array([[30, 30, 220]]))) < 1e-9
