"""One Label Studio task per video: its data and its predictions (pure, no server).

A task holds the video's tubelets as keyframed ``videorectangle`` tracks, its referring
expressions and captions as per-region text, its events as ``timelinelabels`` spans and
its instructions as choices to reject. Label Studio counts frames from 1 and converts
times with the task's ``fps``; the dataset counts from 0 (``keyframes`` converts).

Region ids are short stable hashes (Label Studio shows them in its UI and uses them to
tie a per-region text to its box); the task's data maps each back to its row, so a pull
never guesses which tubelet or event a result belongs to.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tubelet.preview.overlay import short_id
from tubelet.review.keyframes import select_keyframes, to_ls_sequence
from tubelet.review.label_config import (
    DATA_FPS,
    DATA_INSTRUCTIONS,
    DATA_VIDEO,
    NAMES,
)
from tubelet.schemas.records import Entity, Event, Instruction, Tubelet, VideoRecord

#: Keys of a task's data that tubelet writes (besides the config's ``video``/``fps``/``instructions``).
DATA_VIDEO_ID = "video_id"
DATA_TUBELETS = "tubelet_regions"  # region id -> tubelet id
DATA_EVENTS = "event_regions"  # region id -> event id
DATA_FINGERPRINT = "tubelet_fingerprint"  # hash of data + predictions: re-push skips equal tasks
DATA_TOLERANCE = "tolerance_px"  # the keyframe tolerance the task was pushed with (pull compares with it)


@dataclass
class VideoRows:
    """Everything one video contributes to a review task."""

    video: VideoRecord
    tubelets: list[Tubelet] = field(default_factory=list)
    entities: list[Entity] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    instructions: list[Instruction] = field(default_factory=list)


def region_id(kind: str, row_id: str) -> str:
    """A short, stable Label Studio region id for a row (``t…`` tubelets, ``e…`` events)."""
    return kind + hashlib.sha1(row_id.encode("utf-8")).hexdigest()[:11]


def track_label(tubelet: Tubelet) -> str:
    """What the Regions panel shows under a track: its short id and its tubelet id (``#4  scene:track:4``)."""
    return f"{short_id(tubelet)}  {tubelet.tubelet_id}"


def track_of(tubelet: Tubelet) -> list[tuple[int, list[float] | None]]:
    """``(frame_idx, box or None when out of view)`` for each listed frame, ascending."""
    return [
        (f.frame_idx, list(f.box_xyxy) if f.visible else None)
        for f in sorted(tubelet.frames, key=lambda f: f.frame_idx)
    ]


def build_task(
    rows: VideoRows, media_url: str, *, tolerance_px: float = 2.0, model_version: str = "tubelet"
) -> dict[str, Any]:
    """The task (``{"data", "predictions"}``) of one video, ready for a bulk import."""
    video = rows.video
    expressions = {e.tubelet_id: e for e in rows.entities}
    tubelet_regions: dict[str, str] = {}
    result: list[dict[str, Any]] = []
    scores = []
    for tube in sorted(rows.tubelets, key=lambda t: t.tubelet_id):
        rid = region_id("t", tube.tubelet_id)
        keyframes = select_keyframes(track_of(tube), tolerance_px=tolerance_px, n_frames=video.n_frames)
        if not keyframes:
            continue  # never visible: nothing a reviewer could see
        tubelet_regions[rid] = tube.tubelet_id
        sequence = to_ls_sequence(keyframes, width=video.width, height=video.height, fps=video.fps)
        result.append(
            _region(
                rid,
                NAMES.box,
                "videorectangle",
                {
                    "sequence": sequence,
                    "labels": [tube.category],
                    "framesCount": video.n_frames,
                    "duration": video.n_frames / video.fps,
                },
            )
        )
        result.append(_region(rid, NAMES.track, "textarea", {"text": [track_label(tube)]}))
        entity = expressions.get(tube.tubelet_id)
        if entity and entity.referring_expression:
            result.append(_region(rid, NAMES.expression, "textarea", {"text": [entity.referring_expression]}))
        if entity and entity.caption:
            result.append(_region(rid, NAMES.caption, "textarea", {"text": [entity.caption]}))
        if tube.score is not None:
            scores.append(float(tube.score))
    event_regions: dict[str, str] = {}
    for event in sorted(rows.events, key=lambda e: e.event_id):
        rid = region_id("e", event.event_id)
        event_regions[rid] = event.event_id
        result.append(
            _region(
                rid,
                NAMES.events,
                "timelinelabels",
                {
                    "ranges": [{"start": event.start_frame + 1, "end": event.end_frame + 1}],
                    "timelinelabels": [event.label or event.text],
                },
            )
        )
    data = {
        DATA_VIDEO: media_url,
        DATA_FPS: video.fps,
        "title": f"{video.video_id}  ({video.n_frames} frames at {video.fps:g} fps)",
        DATA_VIDEO_ID: video.video_id,
        "n_frames": video.n_frames,
        "width": video.width,
        "height": video.height,
        DATA_INSTRUCTIONS: [_instruction_choice(i) for i in sorted(rows.instructions, key=lambda i: i.instruction_id)],
        DATA_TUBELETS: tubelet_regions,
        DATA_EVENTS: event_regions,
        DATA_TOLERANCE: tolerance_px,
    }
    prediction = {
        "model_version": model_version,
        "result": result,
        "score": round(sum(scores) / len(scores), 4) if scores else None,
    }
    data[DATA_FINGERPRINT] = fingerprint(data, prediction)
    return {"data": data, "predictions": [prediction]}


def fingerprint(data: dict[str, Any], prediction: dict[str, Any]) -> str:
    """A hash of what a task shows: equal fingerprints mean a re-push has nothing to change."""
    payload = {k: v for k, v in data.items() if k != DATA_FINGERPRINT}
    text = json.dumps([payload, prediction], sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def _region(rid: str, from_name: str, kind: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"id": rid, "from_name": from_name, "to_name": NAMES.video, "type": kind, "value": value}


def _instruction_choice(inst: Instruction) -> dict[str, str]:
    """One instruction as a choice: its id is the value, the question and answer its label."""
    question = next((m.content for m in inst.messages if m.role == "user"), "")
    answer = next((m.content for m in inst.messages if m.role == "assistant"), "")
    shown = f"<b>{html.escape(inst.task_type)}</b>: {html.escape(question)} <i>→ {html.escape(answer)}</i>"
    return {"value": inst.instruction_id, "html": shown}


def instruction_ids(task_data: dict[str, Any]) -> list[str]:
    """The instruction ids a pushed task offers for rejection."""
    return [str(c.get("value")) for c in task_data.get(DATA_INSTRUCTIONS) or [] if isinstance(c, dict)]


def categories_and_labels(videos: Sequence[VideoRows]) -> tuple[set[str], set[str]]:
    """The tubelet categories and event labels of ``videos`` (for the labeling config)."""
    cats = {t.category for v in videos for t in v.tubelets}
    labels = {e.label or e.text for v in videos for e in v.events}
    return cats, labels
