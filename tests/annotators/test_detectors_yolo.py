"""YoloDetector: random weights offline (always), real TFLite weights (with the assets)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("ultralytics")

from tubelet.annotators.detectors import YoloDetector
from tubelet.cli.sample import SampleInfo
from tubelet.engine.resources import Resources
from tubelet.engine.stage import run_stage
from tubelet.engine.task import VideoTask
from tubelet.schemas.geometry import box_inside, box_iou, mask_to_box

TFLITE = "models/yolov8n-int8-tflite/yolov8n_int8.tflite"


def _run(stage: YoloDetector, uri: Path | str, fps: float | None = None) -> VideoTask:
    stage.setup()
    try:
        [task] = run_stage(stage, [VideoTask(video_id="v", uri=str(uri), fps=fps)])
    finally:
        stage.teardown()
    assert not task.failed, task.rejects
    return task


@pytest.fixture(scope="module")
def scene(synthetic_sample: SampleInfo) -> Path:
    return synthetic_sample.video


def test_random_weights_run_offline_through_the_stage(scene: Path) -> None:
    import torch

    torch.manual_seed(0)
    stage = YoloDetector(weights="yolov8n.yaml", imgsz=160, conf=0.0, max_det=4, keyframe_fps=2, frame_batch=4)
    assert stage.model_id == "yolov8n.yaml" and stage.max_side == 160
    task = _run(stage, scene)
    # 72 frames at 24 fps -> 6 keyframes (3 s at 2 fps), up to max_det boxes on each
    frames = sorted({d.frame_idx for d in task.detections})
    assert set(frames) <= {0, 12, 24, 36, 48, 60} and len(frames) >= 3
    assert all(1 <= sum(d.frame_idx == f for d in task.detections) <= 4 for f in frames)
    for d in task.detections:
        assert box_inside(d.box_xyxy, 640, 360)  # boxes in the original 640x360 pixels
        assert d.t_s == pytest.approx(d.frame_idx / 24.0, abs=1e-3)
        assert 0.0 <= d.score <= 1.0 and d.detector == "yolov8n.yaml"
        assert d.category.isdigit()  # a config-built model names its classes "0".."79"


def test_class_filter_keeps_only_named_classes(scene: Path) -> None:
    import torch

    def categories(classes: list[str]) -> list[str]:
        torch.manual_seed(0)
        stage = YoloDetector(weights="yolov8n.yaml", imgsz=160, conf=0.0, max_det=3, classes=classes, keyframe_fps=1)
        return [d.category for d in _run(stage, scene).detections]

    # an untrained head scores one class highest everywhere ("0" here): kept or removed
    kept, removed = categories(["0"]), categories(["5"])
    assert kept and set(kept) == {"0"}
    assert set(removed) <= {"5"} and len(removed) < len(kept)
    with pytest.raises(ValueError, match="not in the model"):
        YoloDetector(weights="yolov8n.yaml", classes=["unicorn"]).setup()


def test_missing_weights_are_not_downloaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="allow_download"):
        YoloDetector(weights="yolov8x-never-cached.pt").setup()
    assert list(tmp_path.iterdir()) == []


def test_cuda_device_reserves_a_gpu() -> None:
    assert YoloDetector(device="cuda").resources.gpus == 1
    assert YoloDetector(device="cuda", resources=Resources(gpus=0.5)).resources.gpus == 0.5
    assert YoloDetector(device="cpu").resources.gpus == 0
    assert YoloDetector(device="cpu").needs_actor


@pytest.fixture(scope="module")
def tflite(assets: Path) -> Path:
    if importlib.util.find_spec("ai_edge_litert") is None:
        pytest.skip("ai-edge-litert not installed (Ultralytics needs it to run .tflite)")
    path = assets / TFLITE
    if not path.exists():
        pytest.skip(f"{path} not found")
    return path


@pytest.mark.assets
def test_tflite_finds_the_dog_in_davis(tflite: Path, assets: Path) -> None:
    frames = assets / "davis2016/JPEGImages/480p/dog"
    masks = assets / "davis2016/Annotations/480p/dog"
    task = _run(YoloDetector(weights=str(tflite), keyframe_fps=4), frames, fps=24.0)
    keyframes = list(range(0, 60, 6))  # 60 frames at 24 fps, 4 keyframes a second
    assert {d.frame_idx for d in task.detections} <= set(keyframes)
    good = 0
    for f in keyframes:
        truth = mask_to_box(np.array(Image.open(masks / f"{f:05d}.png")))
        dogs = [d for d in task.detections if d.frame_idx == f and d.category == "dog"]
        good += max((box_iou(truth, d.box_xyxy) for d in dogs), default=0.0) >= 0.5
    assert good >= 7, f"dog found at IoU >= 0.5 on {good} of {len(keyframes)} keyframes"
    assert all(d.detector == "yolov8n_int8.tflite" for d in task.detections)


@pytest.mark.assets
def test_tflite_finds_the_children_in_bedroom(tflite: Path, assets: Path) -> None:
    stage = YoloDetector(weights=str(tflite), classes=["person"], keyframe_fps=1, frame_batch=4)
    task = _run(stage, assets / "videos/sam2-demo/bedroom.mp4")
    keyframes = list(range(0, 200, 30))  # 6.7 s at 30 fps, one keyframe a second
    with_person = {d.frame_idx for d in task.detections}
    assert with_person <= set(keyframes) and len(with_person) >= 6
    assert {d.category for d in task.detections} == {"person"}
    assert all(box_inside(d.box_xyxy, 960, 540) and d.score >= 0.25 for d in task.detections)
    # two children: at least one keyframe holds two distinct people
    per_frame = [[d.box_xyxy for d in task.detections if d.frame_idx == f] for f in keyframes]
    assert any(len(b) >= 2 and box_iou(b[0], b[1]) < 0.3 for b in per_frame)


def test_segmentation_weights_give_masks_at_the_video_size(scene: Path) -> None:
    import torch

    from tubelet.schemas.rle import decode_rle

    torch.manual_seed(0)
    stage = YoloDetector(weights="yolov8n-seg.yaml", imgsz=160, conf=0.0, max_det=4, keyframe_fps=2)
    task = _run(stage, scene)
    assert task.detections, "a random segmentation model at conf 0 still returns boxes"
    with_masks = [d for d in task.detections if d.mask_rle is not None]
    assert with_masks, "segmentation weights must give masks"
    for d in with_masks:
        mask = decode_rle(d.mask_rle)
        assert mask.shape == (360, 640) and mask.any()  # the original frame size, not imgsz
        assert d.box_xyxy == pytest.approx(mask_to_box(mask))  # the box is the mask's


def test_task_is_read_from_the_weights_name() -> None:
    assert YoloDetector(weights="runs/best-seg.tflite")._task() == "segment"
    assert YoloDetector(weights="yolov8n_int8.tflite")._task() == "detect"
    assert YoloDetector(weights="yolov8n-seg.pt")._task() == "segment"
    assert YoloDetector(weights="yolov8n.pt")._task() is None  # the checkpoint knows
    with pytest.raises(ValueError, match="task"):
        YoloDetector(weights="x.pt", task="pose")._task()
