"""The propagation interface every masklet tracker implements, and the region it yields.

Association (``tubelet.annotators.tracking.association``) is the one piece of code that decides
object identities; a tracker only has to carry prompted objects from one frame to the
next. SAM 2's video predictor (full profile) and optical flow + GrabCut (lite profile)
both implement :class:`Propagator`.

Memory stays bounded because association drives propagation window by window: before
each window it calls ``reset()`` and re-prompts every live object on the window's first
frame (carried-over prompts, Grounded-SAM-2 style), so a tracker never needs to hold more
than one window of frames and state. A tracker may keep decoded frames or image
features across ``reset()`` as a cache, as long as that cache is bounded.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from tubelet.engine.video import VideoReader
from tubelet.schemas.geometry import mask_to_box
from tubelet.schemas.rle import RLE, decode_rle, encode_mask, rle_area, rle_to_box_xyxy


@dataclass
class Region:
    """Where one object is on one frame, as a tracker sees it.

    ``mask`` is a boolean ``(height, width)`` array or a COCO RLE dict; ``box_xyxy`` is
    absolute-pixel ``[x1, y1, x2, y2]`` and may be omitted when a mask is given (it is
    then the mask's tight box). Both are in the video's own pixel grid: a tracker that
    works at a lower resolution scales its output back up. ``score`` is the tracker's confidence in [0, 1] (SAM 2:
    the sigmoid of its object-score logit; trackers without one report 1.0).
    """

    box_xyxy: list[float] | None = None
    mask: np.ndarray | RLE | None = None
    score: float = 1.0

    def __post_init__(self) -> None:
        if self.box_xyxy is None and self.mask is None:
            raise ValueError("a Region needs a box, a mask, or both")

    @property
    def mask_rle(self) -> RLE | None:
        """The mask as a COCO RLE (encoded on first use)."""
        if self.mask is None or isinstance(self.mask, dict):
            return self.mask
        return encode_mask(self.mask)

    @property
    def mask_array(self) -> np.ndarray | None:
        """The mask as a boolean array (decoded on use)."""
        if self.mask is None:
            return None
        if isinstance(self.mask, dict):
            return decode_rle(self.mask)
        return np.asarray(self.mask) != 0

    @property
    def box(self) -> list[float] | None:
        """The box, or the mask's tight box when no box was given; None for an empty mask."""
        if self.box_xyxy is not None:
            return [float(v) for v in self.box_xyxy]
        if isinstance(self.mask, dict):
            return rle_to_box_xyxy(self.mask)
        return mask_to_box(self.mask)

    @property
    def area(self) -> float:
        """Mask pixels, or the box area when there is no mask."""
        if self.mask is not None:
            rle = self.mask_rle
            return float(rle_area(rle))
        x1, y1, x2, y2 = self.box_xyxy  # type: ignore[misc]
        return float(max(0.0, x2 - x1) * max(0.0, y2 - y1))

    def compact(self) -> Region:
        """The same region holding its mask as RLE: what association keeps per frame."""
        return Region(box_xyxy=self.box, mask=self.mask_rle, score=float(self.score))

    @property
    def is_empty(self) -> bool:
        return self.box is None


@runtime_checkable
class Propagator(Protocol):
    """What a masklet tracker implements for association to drive it.

    Calls come in this order: ``start`` once per video, then any number of windows,
    each ``reset()``, ``add_prompt(...)`` on the window's first frame for every object,
    and one ``propagate(...)`` consumed in order (possibly closed early, e.g. when the
    objects of a backward pass have all disappeared: release the window's state then).

    Optional attributes association reads: with a true ``refits_masks`` a tracker is
    re-prompted from a box-only detection with the detection's box *and* the object's
    propagated mask, and fits the mask into the box (the lite flow tracker with
    ``reanchor=True``: cheaper than segmenting the box again); others get the
    detection's box alone (SAM 2 segments a box prompt better than it refits an old
    mask). With a true ``repeatable_masks`` (a box prompt on a frame always gives the
    same mask) a second walk from a keyframe is prompted with the mask the tracker made
    there rather than the box again.
    """

    def start(self, video: Any, frames: Sequence[int]) -> None:
        """Open ``video`` (whatever the tracker reads: a uri, an ``tubelet.engine.video.VideoReader``,
        an array of frames) and track over ``frames``: absolute frame indices, ascending.
        ``propagate`` yields only these frames."""
        ...

    def add_prompt(
        self,
        frame_idx: int,
        obj_id: int,
        box: Sequence[float] | None = None,
        mask: np.ndarray | RLE | None = None,
    ) -> None:
        """Tell the tracker that object ``obj_id`` is at ``box`` and/or ``mask`` on
        ``frame_idx`` (one of the tracked frames, in the video's pixel grid). Association
        passes the box always and the mask when it has one: use the mask when given (the
        stronger prompt). A second prompt for the same object and frame replaces the first."""
        ...

    def propagate(
        self, start_frame: int, end_frame: int, reverse: bool = False
    ) -> Iterator[tuple[int, dict[int, Region]]]:
        """Yield ``(frame_idx, {obj_id: region})`` for every tracked frame from
        ``start_frame`` to ``end_frame`` inclusive, ascending (descending with
        ``reverse``; then ``end_frame <= start_frame``). The first frame carries the
        prompted regions as the tracker refines them. An object the tracker does not see
        on a frame (out of view, fully occluded, lost) is left out of that frame's dict;
        only prompted objects are ever reported."""
        ...

    def reset(self) -> None:
        """Forget every object, prompt and per-window state; the video stays open."""
        ...


def open_reader(video: Any) -> tuple[Any, bool] | None:
    """The reader a tracker reads ``video`` through, and whether the tracker owns it.

    A path or uri is opened here (the tracker closes it); a reader (anything with
    ``frames`` and ``meta``, e.g. ``tubelet.engine.video.VideoReader``) is used as given and left
    open for its owner; anything else (an array of frames) gives None.
    """
    if isinstance(video, (str, Path)):
        return VideoReader(str(video)), True
    if hasattr(video, "frames") and hasattr(video, "meta"):
        return video, False
    return None


def frames_between(frames: Sequence[int], start: int, end: int) -> list[int]:
    """The tracked ``frames`` from ``start`` to ``end`` inclusive, in walking order
    (descending when ``end < start``): what ``propagate`` yields. For trackers to share."""
    lo, hi = min(start, end), max(start, end)
    inside = [f for f in frames if lo <= f <= hi]
    return inside if end >= start else inside[::-1]
