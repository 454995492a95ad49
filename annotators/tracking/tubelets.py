"""From association's tracks to ``Tubelet`` records: duplicate merging, per-tubelet
statistics and quality filters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tubelet.annotators.tracking.matching import containment, overlap
from tubelet.annotators.tracking.propagator import Region
from tubelet.schemas.geometry import clip_box
from tubelet.schemas.records import Tubelet, TubeletFrame, VideoRecord


@dataclass
class Track:
    """One object as association knows it: its regions by absolute frame."""

    obj_id: int
    category: str
    origin_frame: int  # the keyframe it was first prompted on
    origin_score: float  # that detection's score
    regions: dict[int, Region] = field(default_factory=dict)
    confirmed: dict[int, float] = field(default_factory=dict)  # keyframe -> matching detection's score
    labels: dict[int, str] = field(default_factory=dict)  # keyframe -> matching detection's category
    reentries: list[int] = field(default_factory=list)  # keyframes where it came back
    merged_from: list[int] = field(default_factory=list)
    # descriptors of its last confirming detections (newest last): the re-entry appearance cue
    appearance: list[list[float]] = field(default_factory=list)

    @property
    def mean_score(self) -> float:
        return float(np.mean([r.score for r in self.regions.values()])) if self.regions else 0.0

    def confirm(self, keyframe: int, score: float, category: str) -> None:
        """A detection of ``category`` confirmed the object on ``keyframe``: it votes for
        the object's category with its score (one vote per keyframe; a later one for the
        same keyframe is ignored)."""
        if keyframe in self.confirmed:
            return
        self.confirmed[keyframe] = float(score)
        self.labels[keyframe] = category
        self.category = self.leader()

    def forget(self, keyframes: Iterable[int]) -> None:
        """Drop the confirmations (and votes) of ``keyframes``."""
        for k in list(keyframes):
            self.confirmed.pop(k, None)
            self.labels.pop(k, None)
        self.category = self.leader()

    @property
    def votes(self) -> dict[str, float]:
        """Score-weighted votes per category over the confirming detections, in the order
        the categories were first seen."""
        out: dict[str, float] = {}
        for k in sorted(self.labels):
            out[self.labels[k]] = out.get(self.labels[k], 0.0) + self.confirmed[k]
        return out

    def leader(self) -> str:
        """The category with most votes (the first seen on a tie); the current one without
        votes."""
        votes = self.votes
        return max(votes, key=lambda c: votes[c]) if votes else self.category

    def answers_to(self, category: str) -> bool:
        """Whether a detection of ``category`` may be this object: its category, or one a
        detection confirming it gave (a detector that flickers between dog and cat)."""
        return category == self.category or category in self.labels.values()


def merge_duplicates(
    tracks: Sequence[Track], iou: float, frame_fraction: float, min_shared: int, inside: float = 1.01
) -> tuple[list[Track], int]:
    """Merge tracks that are one object: on more than ``frame_fraction`` of the frames both
    are seen on (and on at least ``min_shared``) they overlap by ``iou`` whatever their
    categories, or — for tracks one of whose categories the other answers to — the
    smaller lies ``inside`` the other (a detector that boxed a dog's back half as well as
    the dog: a part, not a second dog; above 1: never).

    The longer track (then the higher mean score, then the lower id) keeps its id and its
    regions; it gains the other's frames it lacks and its category votes. Returns the
    tracks left (by id) and the number merged away.
    """
    order = sorted(tracks, key=lambda t: (-len(t.regions), -t.mean_score, t.obj_id))
    kept: list[Track] = []
    merged = 0
    for track in order:
        into = next((k for k in kept if _duplicates(k, track, iou, frame_fraction, min_shared, inside)), None)
        if into is None:
            kept.append(track)
            continue
        for f, region in track.regions.items():
            into.regions.setdefault(f, region)
        for f, score in track.confirmed.items():
            into.confirm(f, score, track.labels.get(f, track.category))
        into.reentries = sorted(set(into.reentries) | set(track.reentries))
        into.merged_from.extend([track.obj_id, *track.merged_from])
        merged += 1
    return sorted(kept, key=lambda t: t.obj_id), merged


def _duplicates(a: Track, b: Track, iou: float, frame_fraction: float, min_shared: int, inside: float) -> bool:
    shared = sorted(set(a.regions) & set(b.regions))
    if len(shared) < max(1, min_shared):
        return False
    # whatever the detector called them, two tracks on the same pixels most of the time
    # are one object (a dog also called "cat" must not become two)
    hits = sum(overlap(a.regions[f], b.regions[f]) >= iou for f in shared)
    if hits > frame_fraction * len(shared):
        return True
    if not (a.answers_to(b.category) or b.answers_to(a.category)) or inside > 1:
        return False
    nested = sum(containment(a.regions[f], b.regions[f]) >= inside for f in shared)
    return nested > frame_fraction * len(shared)


def build_tubelets(
    tracks: Sequence[Track],
    video: VideoRecord,
    frames: Sequence[int],
    timestamps: Mapping[int, float] | Sequence[float],
    source: str,
    anchor: int | None,
    min_length: int,
    min_mean_score: float,
    min_area: float,
) -> tuple[list[Tubelet], list[tuple[str, str]]]:
    """One tubelet per track, and the ``(tubelet_id, reason)`` of those that fail a filter.

    Every tracked frame from an object's first to its last appearance is listed; frames
    where it is not seen have ``visible=False``, no mask and its last visible box (as the
    DAVIS importer does).
    """
    kept: list[Tubelet] = []
    rejects: list[tuple[str, str]] = []
    for track in tracks:
        tubelet = _tubelet(track, video, frames, timestamps, source, anchor)
        reason = _failed_filter(tubelet, min_length, min_mean_score, min_area)
        if reason is None:
            kept.append(tubelet)
        else:
            rejects.append((tubelet.tubelet_id, reason))
    return kept, rejects


def _tubelet(
    track: Track,
    video: VideoRecord,
    frames: Sequence[int],
    timestamps: Mapping[int, float] | Sequence[float],
    source: str,
    anchor: int | None,
) -> Tubelet:
    seen = sorted(track.regions)
    rows: list[TubeletFrame] = []
    last_box: list[float] = []
    for f in frames:
        if f < seen[0] or f > seen[-1]:
            continue
        region = track.regions.get(f)
        if region is None:
            rows.append(TubeletFrame(f, float(timestamps[f]), list(last_box), visible=False))
            continue
        last_box = clip_box(region.box, video.width, video.height).tolist()  # type: ignore[arg-type]
        rows.append(TubeletFrame(f, float(timestamps[f]), last_box, region.mask_rle, float(region.score)))
    areas = np.array([track.regions[f].area for f in seen], dtype=np.float64)
    mean_area = float(areas.mean())
    area_cv = float(areas.std() / mean_area) if mean_area > 0 else 0.0
    mean_score = track.mean_score
    votes = track.votes
    extra: dict[str, Any] = {
        "tracker_id": track.obj_id,
        "n_visible": len(seen),
        "mean_score": mean_score,
        "median_area": float(np.median(areas)),
        # Mask-area stability: 1 for a constant area; a drifting or flickering mask
        # (area jumping between frames) scores low.
        "area_cv": area_cv,
        "area_stability": max(0.0, 1.0 - area_cv),
        "origin_frame": track.origin_frame,
        "anchor_frame": anchor,
        "confirmed_keyframes": sorted(track.confirmed),
        # the category is decided once for the whole track: score-weighted votes of the
        # detections that confirmed it, and the winner's share of them
        "category_votes": {c: round(v, 4) for c, v in votes.items()},
        "category_confidence": round(votes[track.category] / sum(votes.values()), 4) if votes else None,
        "mean_detection_score": float(np.mean(list(track.confirmed.values()))) if track.confirmed else None,
        "reentries": list(track.reentries),
        "merged_from": sorted(track.merged_from),
    }
    return Tubelet(
        tubelet_id=f"{video.video_id}:track:{track.obj_id}",
        video_id=video.video_id,
        category=track.category,
        source=source,
        track_id=str(track.obj_id),
        fps=video.fps,
        width=video.width,
        height=video.height,
        frames=rows,
        score=mean_score,
        extra=extra,
    )


def _failed_filter(tubelet: Tubelet, min_length: int, min_mean_score: float, min_area: float) -> str | None:
    extra = tubelet.extra
    if extra["n_visible"] < min_length:
        return f"too short: visible on {extra['n_visible']} frames < min_length {min_length}"
    if extra["mean_score"] < min_mean_score:
        return f"low score: mean score {extra['mean_score']:.3f} < min_mean_score {min_mean_score}"
    if extra["median_area"] < min_area:
        return f"too small: median area {extra['median_area']:.1f} px < min_area {min_area}"
    return None
