"""What the ground-truth importers share: their result type, ids and frame listing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tubelet.engine.video import frame_files
from tubelet.schemas import Tubelet, TubeletFrame, VideoRecord


@dataclass
class RejectedItem:
    """One part of an annotation that does not fit the video (a file, a row, a track)."""

    item: str
    reason: str


@dataclass
class ImportResult:
    """Tubelets read from one video's annotation, and what was rejected on the way."""

    tubelets: list[Tubelet] = field(default_factory=list)
    rejects: list[RejectedItem] = field(default_factory=list)


@dataclass(frozen=True)
class FrameIndex:
    """How an annotation's frames map onto the video: its frame count and start times.

    ``names`` are the frame files' stems in frame order for an image folder (None for a
    video file), which lets importers check that annotation files name real frames.
    """

    video: VideoRecord
    timestamps: np.ndarray
    names: list[str] | None = None

    def __post_init__(self) -> None:
        if len(self.timestamps) != self.video.n_frames:
            raise ValueError(f"{len(self.timestamps)} timestamps for a video of {self.video.n_frames} frames")
        if self.names is not None and len(self.names) != self.video.n_frames:
            raise ValueError(
                f"{len(self.names)} frame files in {self.video.uri} but the video has {self.video.n_frames} frames"
            )

    @property
    def n_frames(self) -> int:
        return self.video.n_frames

    def t_s(self, frame_idx: int) -> float:
        return float(self.timestamps[frame_idx])

    @classmethod
    def of(cls, video: VideoRecord, timestamps: np.ndarray | None = None, uri: str | None = None) -> FrameIndex:
        """The index of ``video`` read from ``uri`` (default ``video.uri``).

        ``timestamps`` default to ``frame_idx / fps``, what ``tubelet.engine.video`` gives an
        image folder; pass the reader's ``timestamps()`` for a video file.
        """
        if timestamps is None:
            timestamps = np.arange(video.n_frames, dtype=np.float64) / video.fps
        path = Path(uri or video.uri)
        names = [p.stem for p in frame_files(path)] if path.is_dir() else None
        return cls(video, np.asarray(timestamps, dtype=np.float64), names)


def tubelet_id(video_id: str, fmt: str, object_id: Any) -> str:
    """The stable id of an imported tubelet: ``<video_id>:<format>:<object_id>``."""
    return f"{video_id}:{fmt}:{object_id}"


def imported_tubelet(
    video: VideoRecord,
    fmt: str,
    object_id: Any,
    category: str,
    frames: list[TubeletFrame],
    extra: dict[str, Any],
) -> Tubelet:
    """A tubelet of ``video`` imported from ``fmt``, carrying the video's fps and size."""
    return Tubelet(
        tubelet_id=tubelet_id(video.video_id, fmt, object_id),
        video_id=video.video_id,
        category=category,
        source=f"import:{fmt}",
        track_id=str(object_id),
        fps=video.fps,
        width=video.width,
        height=video.height,
        frames=frames,
        extra=extra,
    )
