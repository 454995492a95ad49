"""Tubelets as evaluation tracks: per-frame boxes, masks and visibility, grouped by video.

Read once from the ``tubelets`` Arrow table (see docs/data-format.md) so the metrics
never touch Arrow. A frame counts as *present* for a track only when it is listed and
``visible``; a listed invisible frame says "annotated, and not in view".

Ground truth may mark frames not to be scored: MOT's "consider" flag (0 for
non-pedestrian classes: occluders, vehicles, static persons, reflections), stored by
the MOT importer as ``extra.consider`` aligned with ``frames``. Such a frame is
*ignored*: it is no object to find, and a prediction on it is no false positive
(``identity`` treats it as a don't-care region). That is the default protocol's convention;
``motchallenge`` reads the MOT rows itself, as TrackEval does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

RLE = dict[str, Any]


@dataclass(frozen=True)
class FrameObs:
    """What a tubelet says about one frame."""

    box: np.ndarray  # (4,) xyxy pixels, clipped to the frame
    mask: RLE | None
    visible: bool
    ignore: bool = False  # ground truth says: do not score this frame


@dataclass
class Track:
    """One tubelet, indexed by absolute frame."""

    tubelet_id: str
    video_id: str
    width: int
    height: int
    frames: dict[int, FrameObs] = field(default_factory=dict)

    @property
    def listed(self) -> list[int]:
        """Frames the tubelet lists (annotated), visible or not, ascending."""
        return sorted(self.frames)

    @property
    def visible(self) -> list[int]:
        """Frames where the object is in view, ascending."""
        return [f for f in self.listed if self.frames[f].visible]

    @property
    def considered(self) -> bool:
        """Whether any frame is to be scored (a MOT occluder or car track is not)."""
        return any(not o.ignore for o in self.frames.values())

    def counted_box_at(self, frame: int) -> np.ndarray | None:
        """The box on ``frame`` when visible and not ignored: a box a tracker must find."""
        obs = self.frames.get(frame)
        return obs.box if obs is not None and obs.visible and not obs.ignore else None

    def ignored_box_at(self, frame: int) -> np.ndarray | None:
        """The box on an ignored frame (visible or not): a don't-care region."""
        obs = self.frames.get(frame)
        return obs.box if obs is not None and obs.ignore else None

    @property
    def has_masks(self) -> bool:
        return any(o.mask is not None for o in self.frames.values())

    def box_at(self, frame: int) -> np.ndarray | None:
        """The box on ``frame`` when the object is visible there, else None."""
        obs = self.frames.get(frame)
        return obs.box if obs is not None and obs.visible else None

    def mask_at(self, frame: int) -> RLE | None:
        """The mask on ``frame`` when the object is visible there and has one, else None."""
        obs = self.frames.get(frame)
        return obs.mask if obs is not None and obs.visible else None


def tracks_by_video(table: pa.Table, videos: Iterable[str] | None = None) -> dict[str, list[Track]]:
    """Tracks of a ``tubelets`` table per video_id (only ``videos`` when given), sorted by id."""
    wanted = set(videos) if videos is not None else None
    columns = ["tubelet_id", "video_id", "width", "height", "frames", "extra"]
    out: dict[str, list[Track]] = {}
    for row in table.select(columns).to_pylist():
        if wanted is not None and row["video_id"] not in wanted:
            continue
        track = Track(row["tubelet_id"], row["video_id"], int(row["width"] or 0), int(row["height"] or 0))
        frames = row["frames"] or []
        ignore = _ignored(row["extra"], len(frames))
        for f, skip in zip(frames, ignore):
            box = np.asarray(f["box_xyxy"] if f["box_xyxy"] is not None else [0, 0, 0, 0], dtype=np.float64)
            # A visible frame without a box cannot be scored as present; treat it as absent.
            visible = bool(f["visible"]) and f["box_xyxy"] is not None
            track.frames[int(f["frame_idx"])] = FrameObs(box, f["mask_rle"], visible, skip)
        out.setdefault(row["video_id"], []).append(track)
    for tracks in out.values():
        tracks.sort(key=lambda t: t.tubelet_id)
    return out


def _ignored(extra: str | None, n: int) -> list[bool]:
    """Per frame, whether ``extra.consider`` (MOT, aligned with frames) says to skip it."""
    consider = json.loads(extra).get("consider") if extra else None
    if not isinstance(consider, list) or len(consider) != n:
        return [False] * n
    return [not bool(c) for c in consider]


def frame_counts(videos: pa.Table) -> dict[str, int]:
    """``{video_id: n_frames}`` from a ``videos`` table."""
    return {r["video_id"]: int(r["n_frames"]) for r in videos.select(["video_id", "n_frames"]).to_pylist()}


def frame_grid(gt: list[Track], n_frames: int | None) -> list[int]:
    """The frames a video is judged on: all its frames when the GT video row gives the
    count (DAVIS and MOT annotate every frame), else every frame some GT tubelet lists."""
    if n_frames is not None and n_frames > 0:
        listed_beyond = [f for t in gt for f in t.frames if f >= n_frames]
        return sorted(set(range(n_frames)).union(listed_beyond))
    return sorted({f for t in gt for f in t.frames})


def select_videos(known: Iterable[str], videos: Iterable[str] | None) -> list[str]:
    """The videos to score: ``known`` (sorted), or those of ``videos``; an id the ground
    truth does not have is an error."""
    known = sorted(known)
    if videos is None:
        return known
    wanted = list(videos)
    unknown = [v for v in wanted if v not in set(known)]
    if unknown:
        raise ValueError(f"not in the ground truth: {', '.join(unknown)}")
    return [v for v in known if v in set(wanted)]
