"""KeyframeDetector: the shared keyframe loop every detector stage runs.

A detector only says how a batch of RGB frames becomes boxes (``detect``). This base
opens the task's video, samples keyframes at ``keyframe_fps``, decodes them in chunks
of ``frame_batch`` (bounded memory: one chunk of decoded frames at a time), and turns
the boxes into ``Detection`` rows in the pixels of the ORIGINAL frame, clipped to it,
each with an appearance descriptor (a colour histogram, ``detectors.appearance``) taken
from the decoded keyframe, so every detector gives association an appearance cue.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from tubelet.annotators.detectors.appearance import describe
from tubelet.annotators.detectors.boxes import FrameBoxes
from tubelet.engine.determinism import start_video
from tubelet.engine.stage import Stage
from tubelet.engine.task import VideoTask
from tubelet.engine.video import Size, VideoReader
from tubelet.schemas import Detection
from tubelet.schemas.geometry import clip_box, mask_to_box
from tubelet.schemas.rle import encode_mask


@dataclass
class KeyframeDetector(Stage):
    """Base of the detector stages: keyframe sampling, chunked decode, box conversion.

    ``keyframe_fps``: keyframes per second of video (None: every frame);
    ``max_keyframes``: cap per video (spread over the whole video when exceeded);
    ``frame_batch``: frames decoded and passed to ``detect`` at once;
    ``max_side``: decode so the longer side is at most this (None: native size) —
    the decoder scales, which is cheaper than decoding full size and resizing;
    ``appearance``: compute each detection's colour descriptor (cheap: one small
    histogram per detection). ``seed``: the run's seed; each video starts the process-wide
    generators (OpenCV's KNN background model draws from OpenCV's) at its own seed, and
    torch on ``resources.cpus`` threads (``tubelet.engine.determinism``).
    """

    keyframe_fps: float | None = 2.0
    max_keyframes: int | None = None
    frame_batch: int = 8
    max_side: int | None = None
    appearance: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.keyframe_fps is not None and self.keyframe_fps <= 0:
            raise ValueError(f"keyframe_fps must be positive, got {self.keyframe_fps}")
        if self.frame_batch < 1:
            raise ValueError(f"frame_batch must be at least 1, got {self.frame_batch}")
        if self.max_side is not None and self.max_side < 16:
            raise ValueError(f"max_side must be at least 16 pixels, got {self.max_side}")

    # -- what a detector implements -----------------------------------------------------
    def detect(self, frames: np.ndarray) -> list[FrameBoxes]:
        """Boxes for each RGB uint8 frame of ``frames`` ``(n, h, w, 3)``, in its pixels."""
        raise NotImplementedError

    def begin_video(self, video: VideoReader, keyframes: list[int], size: Size) -> None:
        """Called before a video's first chunk (stateful detectors reset here)."""

    # -- the shared loop ------------------------------------------------------------------
    def process(self, batch: list[VideoTask]) -> list[VideoTask]:
        for task in batch:
            task.detections.extend(self.detect_task(task))
        return batch

    def detect_task(self, task: VideoTask) -> list[Detection]:
        """The detections of one task's keyframes (raises on an unreadable video)."""
        start_video(self.seed, task.video_id, self.resources.cpus)
        with VideoReader(task.uri, fps=task.fps) as video:
            keyframes = video.sample_indices(fps=self.keyframe_fps, max_frames=self.max_keyframes)
            task.keyframes = sorted(set(task.keyframes) | {int(k) for k in keyframes})
            width, height = video.meta.width, video.meta.height
            size = decode_size(width, height, self.max_side)
            self.begin_video(video, keyframes, size)
            times = video.timestamps()
            out: list[Detection] = []
            for chunk in _chunks(keyframes, self.frame_batch):
                frames = video.frames(chunk, size=None if size == (width, height) else size)
                found = self.detect(frames)
                if len(found) != len(chunk):
                    raise RuntimeError(f"{self.name}.detect returned {len(found)} results for {len(chunk)} frames")
                for idx, boxes, frame in zip(chunk, found, frames):
                    out.extend(
                        to_detections(
                            boxes,
                            idx,
                            float(times[idx]),
                            frames.shape[2],
                            frames.shape[1],
                            width,
                            height,
                            self.model_id,
                            frame=frame if self.appearance else None,
                        )
                    )
        return out


def decode_size(width: int, height: int, max_side: int | None) -> Size:
    """``(w, h)`` with the longer side at most ``max_side``, aspect kept, even numbers."""
    if max_side is None or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    # even sizes: the scaler of some decoders misbehaves on odd ones
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def to_detections(
    boxes: FrameBoxes,
    frame_idx: int,
    t_s: float,
    frame_w: int,
    frame_h: int,
    width: int,
    height: int,
    detector: str | None,
    frame: np.ndarray | None = None,
) -> list[Detection]:
    """``Detection`` rows for boxes found on a ``frame_w x frame_h`` frame of a video
    whose original size is ``width x height``: boxes scaled and clipped, empty ones
    dropped; a mask is resized (nearest) to the original size and its box is the mask's.
    With ``frame`` (the RGB frame the boxes were found on) each row gets an appearance
    descriptor of its mask, or of the inner part of its box.
    """
    if not len(boxes):
        return []
    scale = np.array([width / frame_w, height / frame_h] * 2)
    xyxy = clip_box(boxes.xyxy * scale, width, height)
    out = []
    for i in range(len(boxes)):
        box, rle = xyxy[i], None
        if boxes.masks is not None:
            mask = resize_mask(boxes.masks[i], width, height)
            tight = mask_to_box(mask)
            if tight is None:
                continue
            box, rle = np.asarray(tight), encode_mask(mask)
        if not (box[2] > box[0] and box[3] > box[1]):
            continue
        out.append(
            Detection(
                frame_idx=int(frame_idx),
                t_s=t_s,
                box_xyxy=[float(v) for v in box],
                score=float(boxes.scores[i]),
                category=boxes.categories[i],
                mask_rle=rle,
                detector=detector,
                appearance=None if frame is None else _appearance(frame, boxes, i),
            )
        )
    return out


def _appearance(frame: np.ndarray, boxes: FrameBoxes, i: int) -> list[float] | None:
    """Box ``i``'s descriptor on the detector's own frame (before scaling to the original
    size: the same pixels, fewer of them)."""
    mask = None
    if boxes.masks is not None:
        mask = resize_mask(boxes.masks[i], frame.shape[1], frame.shape[0])
    return describe(frame, boxes.xyxy[i], mask)


def resize_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """Nearest-neighbour resize of a 2-D mask to ``width x height`` (numpy only)."""
    h, w = mask.shape
    if (w, h) == (width, height):
        return mask
    rows = np.minimum((np.arange(height) + 0.5) * h / height, h - 1).astype(np.intp)
    cols = np.minimum((np.arange(width) + 0.5) * w / width, w - 1).astype(np.intp)
    return mask[rows[:, None], cols[None, :]]


def _chunks(items: list[int], n: int) -> Iterator[list[int]]:
    for start in range(0, len(items), n):
        yield items[start : start + n]
