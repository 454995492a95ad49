"""YoloDetector: closed-vocabulary boxes from any Ultralytics YOLO model on keyframes."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tubelet.annotators.detectors.boxes import FrameBoxes
from tubelet.annotators.detectors.keyframes import KeyframeDetector
from tubelet.engine.resources import Resources

#: Weights given by these suffixes are model configs: built with random weights, nothing read.
CONFIG_SUFFIXES = (".yaml", ".yml")


@dataclass
class YoloDetector(KeyframeDetector):
    """Detect objects with Ultralytics YOLO on keyframes sampled at ``keyframe_fps``.

    ``weights``: anything ``ultralytics.YOLO`` loads — a path to .pt/.onnx/.tflite/an
    export folder, a name found in the working directory or Ultralytics' weights_dir
    (e.g. ``"yolov8n.pt"`` once cached), or a model config (``"yolov8n.yaml"``: random
    weights, for tests). Nothing is downloaded unless ``allow_download``; Ultralytics
    never pip-installs from a worker (``YOLO_AUTOINSTALL=0``).
    ``classes``: category names to keep (None: all). ``device``: "cpu", "cuda",
    "cuda:1", or None (Ultralytics picks). ``max_side`` defaults to ``imgsz``: YOLO
    letterboxes to ``imgsz`` anyway, so decoding larger only costs time.
    ``task``: ``"detect"`` or ``"segment"``; None reads it from the weights (a ``-seg``
    name, or the model itself). Segmentation weights (e.g. ``yolov8n-seg.pt``) give a
    mask per detection, and trackers are then prompted with masks instead of boxes.
    """

    weights: str = "yolov8n.pt"
    classes: list[str] | None = None
    conf: float = 0.25
    iou: float = 0.7
    imgsz: int = 640
    max_det: int = 300
    device: str | None = None
    allow_download: bool = False
    task: str | None = None
    resources: Resources = field(default_factory=Resources)

    def __post_init__(self) -> None:
        if self.max_side is None:
            self.max_side = self.imgsz
        super().__post_init__()
        if not 0 <= self.conf <= 1 or not 0 <= self.iou <= 1:
            raise ValueError(f"conf and iou must be in [0, 1], got conf={self.conf}, iou={self.iou}")
        if self.device and self.device.startswith("cuda") and self.resources.gpus == 0:
            # the scheduler must place this worker on a GPU, or CUDA is not visible to it
            self.resources = dataclasses.replace(self.resources, gpus=1.0)
        self._model: Any = None
        self._class_ids: list[int] | None = None

    @property
    def model_id(self) -> str:
        return Path(str(self.weights)).name

    def setup(self) -> None:
        # Ultralytics reads these at import: no pip installs, no downloads, no telemetry.
        os.environ.setdefault("YOLO_AUTOINSTALL", "0")
        if not self.allow_download:
            os.environ.setdefault("YOLO_OFFLINE", "1")
        from ultralytics import YOLO

        self._model = YOLO(self._resolve_weights(), task=self._task())
        self._class_ids = self._class_filter(self._model.names)

    def teardown(self) -> None:
        self._model = None

    def _resolve_weights(self) -> str:
        """A local path for the weights, or the config name; FileNotFoundError if absent."""
        weights = str(self.weights)
        if Path(weights).suffix in CONFIG_SUFFIXES or Path(weights).exists() or self.allow_download:
            return weights
        from ultralytics.utils import SETTINGS

        cached = Path(SETTINGS["weights_dir"]) / weights
        if cached.exists():
            return str(cached)
        raise FileNotFoundError(
            f"YOLO weights {weights!r} not found locally (nor in {cached.parent}); give a path, "
            "or set allow_download=True to let Ultralytics fetch them"
        )

    def _task(self) -> str | None:
        """The Ultralytics task; exported formats (.tflite, .onnx) cannot always tell."""
        if self.task is not None:
            if self.task not in ("detect", "segment"):
                raise ValueError(f"task must be 'detect' or 'segment', got {self.task!r}")
            return self.task
        stem = Path(str(self.weights)).stem
        if stem.endswith("-seg") or "-seg_" in stem or "_seg" in stem:
            return "segment"
        if Path(str(self.weights)).suffix in (".pt", *CONFIG_SUFFIXES):
            return None  # a .pt or a config knows its own task
        return "detect"

    def _class_filter(self, names: dict[int, str]) -> list[int] | None:
        if self.classes is None:
            return None
        ids = {name: i for i, name in names.items()}
        unknown = [c for c in self.classes if c not in ids]
        if unknown:
            raise ValueError(f"classes {unknown} not in the model's {len(ids)} classes (e.g. {list(ids)[:5]})")
        return [ids[c] for c in self.classes]

    def detect(self, frames: np.ndarray) -> list[FrameBoxes]:
        if self._model is None:
            raise RuntimeError(f"{self.name}: call setup() before process()")
        # Ultralytics takes numpy images as BGR (OpenCV's order); the reader gives RGB.
        images = [np.ascontiguousarray(f[..., ::-1]) for f in frames]
        results = self._model.predict(
            images,
            imgsz=self.imgsz,
            conf=self.conf,
            iou=self.iou,
            classes=self._class_ids,
            max_det=self.max_det,
            device=self.device,
            verbose=False,
        )
        out = []
        for result in results:
            boxes = result.boxes
            cls = boxes.cls.cpu().numpy().astype(int)
            out.append(
                FrameBoxes(
                    xyxy=boxes.xyxy.cpu().numpy(),
                    scores=boxes.conf.cpu().numpy(),
                    categories=[str(result.names[c]) for c in cls],
                    masks=_masks(result),
                )
            )
        return out


def _masks(result: Any) -> np.ndarray | None:
    """A segmentation result's masks at its frame's size, ``(n, h, w)`` bool; None for a
    detection model. Drawn from the polygons Ultralytics maps back to the frame (its
    ``masks.data`` is at the letterboxed input size)."""
    if getattr(result, "masks", None) is None:
        return None
    import cv2

    h, w = result.orig_shape
    masks = np.zeros((len(result.boxes), h, w), np.uint8)
    for i, polygon in enumerate(result.masks.xy):
        if len(polygon) >= 3:
            cv2.fillPoly(masks[i], [np.round(polygon).astype(np.int32)], 1)
    return masks.astype(bool)
