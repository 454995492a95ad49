"""Record dataclasses: one class per row of each dataset table.

These are plain data: no I/O, no model code. Conventions (see docs/data-format.md):
frame indices are absolute (0-based, in the original video), times are seconds from
the container's timestamps, boxes are absolute-pixel ``[x1, y1, x2, y2]`` inside the
frame, masks are COCO RLE dicts ``{"size": [h, w], "counts": str}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RLE = dict[str, Any]  # {"size": [height, width], "counts": str}


@dataclass
class VideoRecord:
    """One probed video (or image-folder sequence): the `videos` table."""

    video_id: str
    uri: str
    fps: float
    n_frames: int
    duration_s: float
    width: int
    height: int
    codec: str
    fps_source: str = "container"  # "container" or "manifest" (an explicit override)
    source: str | None = None
    split: str | None = None
    licence: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Degrees clockwise (0/90/180/270) each decoded picture was turned to show it upright
    # (a phone's display matrix); width/height are after the turn. None: not recorded
    # (datasets written before schema 1.2.0).
    rotation: int | None = 0


@dataclass
class TubeletFrame:
    """One frame of a tubelet: where the object is at an absolute frame index."""

    frame_idx: int
    t_s: float
    box_xyxy: list[float]
    mask_rle: RLE | None = None
    score: float | None = None
    visible: bool = True
    # Full extent of an annotation that reaches beyond the frame (MOT boxes are amodal);
    # box_xyxy is always that box clipped to the frame. None when it fits inside.
    amodal_xyxy: list[float] | None = None


@dataclass
class Detection:
    """One object found on one keyframe by a detector (intermediate: not a table).

    Trackers turn detections into tubelets; ``mask_rle`` is set by detectors that
    segment (or by a tracker's prompt refinement). ``appearance`` is a small
    L1-normalised colour histogram of the object's pixels (see
    ``tubelet.annotators.detectors.appearance``), which association uses to tell apart
    re-entering objects; None when the detector did not compute one.
    """

    frame_idx: int
    t_s: float
    box_xyxy: list[float]
    score: float
    category: str
    mask_rle: RLE | None = None
    detector: str | None = None  # model id, e.g. "yolov8n_int8.tflite"
    appearance: list[float] | None = None  # colour histogram of the object's pixels


@dataclass
class Tubelet:
    """One object tracked through a video (a masklet when masks are present)."""

    tubelet_id: str
    video_id: str
    category: str
    source: str  # e.g. "import:davis", "import:mot", "yolo+sam2", "review"
    track_id: str  # the object's id in its source (palette index, MOT id, tracker id)
    fps: float
    width: int
    height: int
    frames: list[TubeletFrame]
    score: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    # Summary statistics derived from frames; filled in by tubelet.schemas.arrow on write.
    @property
    def visible_frames(self) -> list[TubeletFrame]:
        return [f for f in self.frames if f.visible]


@dataclass
class Entity:
    """Who a tubelet is, in words: the `entities` table (captions live here too)."""

    entity_id: str
    video_id: str
    tubelet_id: str
    category: str
    referring_expression: str | None = None
    generalized_noun: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    caption: str | None = None
    model_id: str | None = None
    prompt_version: str | None = None


@dataclass
class Event:
    """A segment of an action/behaviour timeline: the `events` table."""

    event_id: str
    video_id: str
    tubelet_ids: list[str]
    start_s: float
    end_s: float
    start_frame: int
    end_frame: int
    text: str
    label: str | None = None
    source: str | None = None
    model_id: str | None = None
    prompt_version: str | None = None  # the prompt template (name@version) a model answered


@dataclass
class Message:
    role: str  # "user" | "assistant" | "system"
    content: str


@dataclass
class RegionRef:
    """A placeholder in a message that points at a region: a tubelet on some frames."""

    placeholder: str  # e.g. "<region0>"
    tubelet_id: str
    frame_idx: list[int] = field(default_factory=list)


@dataclass
class BoxAt:
    frame_idx: int
    t_s: float
    box_xyxy: list[float]


@dataclass
class Answer:
    """The structured answer, checkable against the tables."""

    text: str | None = None
    span_s: list[float] | None = None  # [start_s, end_s]
    boxes: list[BoxAt] = field(default_factory=list)
    tubelet_ids: list[str] = field(default_factory=list)


@dataclass
class Instruction:
    """One instruction–answer pair: the `instructions` table."""

    instruction_id: str
    video_id: str
    task_type: str
    messages: list[Message]
    answer: Answer
    regions: list[RegionRef] = field(default_factory=list)
    generator_id: str | None = None
    provenance: list[str] = field(default_factory=list)  # ids of the rows it came from
    # What the question asks about, machine-readable (e.g. {"t_s": 3.2, "attribute":
    # "colour"}): the checker re-derives the answer from this, not from the wording.
    query: dict[str, Any] = field(default_factory=dict)


@dataclass
class Review:
    """A reviewer's verdict on one item: the `reviews` table."""

    review_id: str
    video_id: str
    item_table: str
    item_id: str
    verdict: str  # "accept" | "correct" | "reject"
    reviewer: str | None = None
    reviewed_at: str | None = None  # ISO 8601
    project: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class Reject:
    """Something that could not be processed, and why: the `rejects` table."""

    item: str  # what was rejected: a uri, a video id, a tubelet id, a manifest row
    stage: str
    reason: str
    video_id: str | None = None
    traceback: str | None = None
