"""MotionDetector: moving objects by OpenCV background subtraction (lite, no weights)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tubelet.annotators.detectors.boxes import FrameBoxes
from tubelet.annotators.detectors.keyframes import KeyframeDetector
from tubelet.engine.video import Size, VideoReader

METHODS = ("mog2", "knn")
PRIME_REPEATS = 20


@dataclass
class MotionDetector(KeyframeDetector):
    """Boxes and masks of what moves against a static background, on keyframes.

    Per video: the background model is primed with the per-pixel median of
    ``prime_frames`` frames spread over the whole video (objects that move are not in
    the median, so the model starts clean instead of calling the first frames all
    foreground); then each keyframe, in order, is subtracted (learning slowly at
    ``learning_rate``), cleaned (open, then close, with an ellipse of
    ``kernel`` pixels) and split into connected components. Components smaller than
    ``min_area`` (fraction of the frame) are dropped. ``score`` is the fraction of the
    box that is foreground. Deterministic; assumes a static camera.
    """

    keyframe_fps: float | None = 4.0
    max_side: int | None = 640
    method: str = "mog2"
    prime_frames: int = 15
    learning_rate: float = 0.005
    var_threshold: float = 25.0  # MOG2: squared Mahalanobis distance; KNN: squared distance / 16
    kernel: int = 5
    min_area: float = 0.001
    category: str = "moving object"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.prime_frames < 1 or self.kernel < 1 or not 0 <= self.learning_rate <= 1:
            raise ValueError("prime_frames and kernel must be >= 1, learning_rate in [0, 1]")
        self._subtractor: Any = None

    @property
    def model_id(self) -> str:
        return f"motion-{self.method}"

    def begin_video(self, video: VideoReader, keyframes: list[int], size: Size) -> None:
        import cv2

        if self.method == "mog2":
            self._subtractor = cv2.createBackgroundSubtractorMOG2(varThreshold=self.var_threshold, detectShadows=False)
        else:
            self._subtractor = cv2.createBackgroundSubtractorKNN(
                dist2Threshold=self.var_threshold * 16, detectShadows=False
            )
        prime = video.sample_indices(max_frames=self.prime_frames)
        decode = None if size == (video.meta.width, video.meta.height) else size
        stack = video.frames(prime, size=decode)
        stack.sort(axis=0)  # in place on uint8: np.median would copy the stack as float64
        median = stack[len(stack) // 2]
        # The same image several times at the automatic rate (1/n): MOG2 and KNN both
        # end with the median as their background (KNN needs several samples per pixel).
        median_bgr = np.ascontiguousarray(median[..., ::-1])
        for _ in range(PRIME_REPEATS):
            self._subtractor.apply(median_bgr, learningRate=-1)

    def detect(self, frames: np.ndarray) -> list[FrameBoxes]:
        if self._subtractor is None:
            raise RuntimeError(f"{self.name}: begin_video() must run before detect()")
        return [self._detect_one(frame) for frame in frames]

    def _detect_one(self, frame: np.ndarray) -> FrameBoxes:
        import cv2

        fg = self._subtractor.apply(np.ascontiguousarray(frame[..., ::-1]), learningRate=self.learning_rate)
        fg = (fg > 127).astype(np.uint8)  # 127 marks shadows when they are detected
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (self.kernel, self.kernel))
        fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, kernel)  # specks of noise
        fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, kernel)  # holes and cracks inside objects
        n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
        min_pixels = self.min_area * fg.shape[0] * fg.shape[1]
        keep = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= min_pixels]
        if not keep:
            return FrameBoxes.empty()
        x, y, w, h, area = (stats[keep, k].astype(np.float64) for k in range(5))
        return FrameBoxes(
            xyxy=np.stack([x, y, x + w, y + h], axis=1),
            scores=area / (w * h),
            categories=[self.category] * len(keep),
            masks=np.stack([labels == i for i in keep]),
        )
