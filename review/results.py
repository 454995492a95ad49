"""Exported Label Studio tasks → what the reviewer said, in dataset terms (pure).

Input is one task of a JSON export made with ``interpolate_key_frames``: every track's
``sequence`` then lists each frame the box is on, with ``"auto": true`` on the frames
Label Studio interpolated. Frames become 0-based; percent boxes become pixels.

Nothing is decided here about what changed: ``ReviewedTask`` is the reviewer's final
state, and ``tubelet.review.apply`` compares it with the dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tubelet.review.keyframes import from_ls_sequence, keyframes_time_mismatch
from tubelet.review.label_config import NAMES
from tubelet.review.tasks import (
    DATA_EVENTS,
    DATA_TUBELETS,
    DATA_VIDEO_ID,
    instruction_ids,
)

Box = list[float]


@dataclass
class ReviewedTrack:
    """One track as the reviewer left it."""

    region_id: str
    tubelet_id: str | None  # None: a track the reviewer drew
    category: str | None
    boxes: dict[int, Box]  # 0-based frame -> pixel box, on every frame the box is shown
    keyframes: list[int]  # 0-based frames the reviewer (or the push) placed a keyframe on


@dataclass
class ReviewedEvent:
    region_id: str
    event_id: str | None  # None: a span the reviewer added
    label: str
    start_frame: int  # 0-based, inclusive
    end_frame: int


@dataclass
class ReviewedTask:
    """The latest submitted annotation of one task."""

    task_id: int
    video_id: str
    annotation_id: int
    reviewer: str | None
    reviewed_at: str | None
    tracks: list[ReviewedTrack] = field(default_factory=list)
    events: list[ReviewedEvent] = field(default_factory=list)
    expressions: dict[str, str] = field(default_factory=dict)  # region id -> text
    captions: dict[str, str] = field(default_factory=dict)
    rejected_instructions: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # reported; the rest of the task applies
    blocking: list[str] = field(default_factory=list)  # mismatches: the task is not applied at all


def latest_annotation(task: dict[str, Any]) -> dict[str, Any] | None:
    """The task's most recently updated annotation that was submitted (not skipped)."""
    done = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
    if not done:
        return None
    return max(done, key=lambda a: (str(a.get("updated_at") or a.get("created_at") or ""), int(a.get("id") or 0)))


def parse_task(
    task: dict[str, Any], *, width: int, height: int, fps: float, n_frames: int, reviewers: dict[int, str] | None = None
) -> ReviewedTask | None:
    """The reviewer's final state of one exported task; None when it has no annotation.

    ``width``/``height``/``fps``/``n_frames`` are the dataset's: a track whose keyframe
    times disagree with ``fps``, or whose frame count differs from ``n_frames``, goes to
    ``blocking`` (the task must not be applied: a missing track would read as deleted);
    unknown regions and choices go to ``problems`` (reported, the rest applies).
    """
    annotation = latest_annotation(task)
    if annotation is None:
        return None
    data = task.get("data") or {}
    tubelets: dict[str, str] = data.get(DATA_TUBELETS) or {}
    events: dict[str, str] = data.get(DATA_EVENTS) or {}
    by = annotation.get("completed_by")
    by_id = by.get("id") if isinstance(by, dict) else by
    reviewed = ReviewedTask(
        task_id=int(task["id"]),
        video_id=str(data.get(DATA_VIDEO_ID)),
        annotation_id=int(annotation["id"]),
        reviewer=(reviewers or {}).get(by_id, None if by_id is None else f"user:{by_id}"),
        reviewed_at=annotation.get("updated_at") or annotation.get("created_at"),
    )
    offered = set(instruction_ids(data))
    track_ids: set[str] = set()
    for item in annotation.get("result") or []:
        kind, name, rid, value = item.get("type"), item.get("from_name"), str(item.get("id")), item.get("value") or {}
        if kind == "videorectangle":
            track = _track(
                rid, value, tubelets, width=width, height=height, fps=fps, n_frames=n_frames, problems=reviewed.blocking
            )
            if track is not None:
                reviewed.tracks.append(track)
                track_ids.add(rid)
        elif kind == "timelinelabels" and name == NAMES.events:
            reviewed.events.extend(_spans(rid, value, events, n_frames, reviewed.problems))
        elif kind == "textarea" and name == NAMES.track:
            continue  # the tubelet's id, shown to the reviewer: the push's, not the reviewer's
        elif kind == "textarea" and name in (NAMES.expression, NAMES.caption):
            text = " ".join(str(t) for t in value.get("text") or []).strip()
            (reviewed.expressions if name == NAMES.expression else reviewed.captions)[rid] = text
        elif kind == "choices" and name == NAMES.rejected:
            for choice in value.get("choices") or []:
                if choice in offered:
                    reviewed.rejected_instructions.append(str(choice))
                else:
                    reviewed.problems.append(f"rejected instruction {choice!r} is not one this task offered")
        else:
            reviewed.problems.append(f"result {rid!r} of type {kind!r} from {name!r} is not part of the tubelet config")
    for texts, what in ((reviewed.expressions, "expression"), (reviewed.captions, "caption")):
        for rid in [r for r in texts if r not in track_ids]:
            reviewed.problems.append(f"{what} for region {rid!r}, which is no track of this task")
            del texts[rid]
    return reviewed


def _track(
    rid: str,
    value: dict[str, Any],
    tubelets: dict[str, str],
    *,
    width: int,
    height: int,
    fps: float,
    n_frames: int,
    problems: list[str],
) -> ReviewedTrack | None:
    tubelet_id = tubelets.get(rid)
    what = f"track {tubelet_id or rid!r}"
    seen_frames = value.get("framesCount")
    if seen_frames and abs(int(seen_frames) - n_frames) > 1:
        problems.append(f"{what}: Label Studio counted {seen_frames} frames, the dataset has {n_frames}; not applied")
        return None
    sequence = value.get("sequence") or []
    shifted = keyframes_time_mismatch(sequence, fps)
    if shifted:
        problems.append(
            f"{what}: keyframe times disagree with {fps:g} fps at frames {shifted[:5]} (Label Studio "
            "frame rate differs from the dataset's); not applied"
        )
        return None
    try:
        shown = from_ls_sequence(sequence, width=width, height=height)
        placed = from_ls_sequence([k for k in sequence if not k.get("auto")], width=width, height=height)
    except ValueError as error:
        problems.append(f"{what}: {error}; not applied")
        return None
    outside = [k.frame_idx for k in shown if k.frame_idx >= n_frames]
    if outside:
        problems.append(f"{what}: frames {outside[:5]} lie past the video's last frame {n_frames - 1}; not applied")
        return None
    labels = value.get("labels") or []
    return ReviewedTrack(
        region_id=rid,
        tubelet_id=tubelet_id,
        category=str(labels[0]) if labels else None,
        boxes={k.frame_idx: list(k.box_xyxy) for k in shown},
        keyframes=[k.frame_idx for k in placed],
    )


def _spans(
    rid: str, value: dict[str, Any], events: dict[str, str], n_frames: int, problems: list[str]
) -> list[ReviewedEvent]:
    labels = value.get("timelinelabels") or []
    out = []
    for span in value.get("ranges") or []:
        start, end = int(span["start"]) - 1, int(span["end"]) - 1
        if not 0 <= start <= end < n_frames:
            problems.append(f"span {rid!r} covers frames {start + 1}–{end + 1}, outside 1–{n_frames}; not applied")
            continue
        out.append(
            ReviewedEvent(
                region_id=rid,
                event_id=events.get(rid),
                label=str(labels[0]) if labels else "",
                start_frame=start,
                end_frame=end,
            )
        )
    return out
