"""VideoTask: the unit of work that flows between stages."""

from __future__ import annotations

import traceback as tb
from dataclasses import dataclass, field
from typing import Any

from tubelet.schemas import Detection, Entity, Event, Instruction, Reject, Review, Tubelet, VideoRecord

#: Longest traceback kept in a reject row (the tail, where the error is).
TRACEBACK_CHARS = 2000


@dataclass(frozen=True)
class DatasetRef:
    """A tubelet dataset (a folder or a URL), at a named version or its current state."""

    location: str
    version: str | None = None


@dataclass
class VideoTask:
    """One video with what the manifest says about it and everything annotated so far.

    Frames are never carried: a stage decodes what it needs through ``tubelet.engine.video``.
    A task that a stage failed on keeps its rejects and is passed over by later stages.
    """

    video_id: str
    uri: str
    fps: float | None = None  # an explicit frame rate (needed for image folders)
    source: str | None = None
    split: str | None = None
    licence: str | None = None
    annotations: dict[str, Any] | None = None  # e.g. {"format": "davis", "path": "..."}
    extra: dict[str, Any] = field(default_factory=dict)
    #: The dataset this video was listed from (a manifest ``dataset:`` entry), whose rows
    #: ``source: dataset`` pipelines start from; None for videos listed by uri.
    origin: DatasetRef | None = None

    video: VideoRecord | None = None
    detections: list[Detection] = field(default_factory=list)  # keyframe detections, not written
    # frames a detector looked at, with or without detections (absence is evidence too)
    keyframes: list[int] = field(default_factory=list)
    tubelets: list[Tubelet] = field(default_factory=list)
    entities: list[Entity] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    instructions: list[Instruction] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    failed_stage: str | None = None

    @property
    def failed(self) -> bool:
        return self.failed_stage is not None

    def reject(self, stage: str, item: str, reason: str, traceback: str | None = None) -> None:
        """Record that one item of this video (not the video itself) was rejected."""
        self.rejects.append(Reject(item=item, stage=stage, reason=reason, video_id=self.video_id, traceback=traceback))

    def fail(self, stage: str, error: BaseException) -> None:
        """Mark the whole video failed at ``stage`` with the error as the reason."""
        trace = "".join(tb.format_exception(type(error), error, error.__traceback__))
        self.reject(stage, self.uri, f"{type(error).__name__}: {error}", trace[-TRACEBACK_CHARS:])
        self.failed_stage = stage

    def records(self) -> dict[str, list[Any]]:
        """The rows this task contributes to each table.

        A failed video contributes only its rejects, so the dataset never holds a
        half-annotated video; its ledger entry says it failed.
        """
        if self.failed:
            return {"rejects": list(self.rejects)}
        return {
            "videos": [self.video] if self.video is not None else [],
            "tubelets": list(self.tubelets),
            "entities": list(self.entities),
            "events": list(self.events),
            "instructions": list(self.instructions),
            "reviews": list(self.reviews),
            "rejects": list(self.rejects),
        }
