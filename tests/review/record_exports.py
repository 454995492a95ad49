"""Record the Label Studio exports the ``*_recorded`` tests replay (run by hand).

    .venv/bin/python -m pytest tests/review/record_exports.py -q -p no:cacheprovider

Not collected by a normal run (the name does not start with ``test_``). It starts the
session's Label Studio (``conftest.label_studio``, 127.0.0.1, stopped at the end), pushes
one video of the tracked dataset into one project per scenario with ``push``, submits an
annotation made from the pushed prediction with that scenario's edits through the REST
API (as ``test_review_loop.py`` does), and exports it with ``LabelStudioClient.export``:
the JSON export with ``interpolate_key_frames``, exactly what ``review pull`` reads.

Written under ``tests/review/data/``: ``rows.json``, the videos' rows as pushed, and
``export_<scenario>.json``: ``edits`` (what was changed, in dataset terms), ``reviewers``
(what ``client.reviewers()`` answered) and ``export`` (the export). To keep them small,
what the unit tests do not need is left out: masks (nothing is re-tracked), the 30 fps
video's instructions (none is rejected there), each annotation's copy of the prediction
it started from, and the HTML shown for each instruction choice (its ``value``, the
instruction id, stays). E-mails become ``reviewer@example.test`` and local
paths ``<dataset>``/``<source>``; the token and password are checked to be absent.
Re-recording gives new task, annotation and user ids and times: the unit tests read
those from the fixtures, never hard-code them.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.review.conftest import PASSWORD, TOKEN
from tubelet.engine.dataset import Dataset
from tubelet.review.client import LabelStudioClient
from tubelet.review.push import push
from tubelet.review.rows import load_rows
from tubelet.review.tasks import DATA_EVENTS, DATA_TUBELETS, DATA_VIDEO_ID, VideoRows
from tubelet.schemas.arrow import record_to_row

pytestmark = pytest.mark.labelstudio

DATA = Path(__file__).parent / "data"
PLACEHOLDER_EMAIL = "reviewer@example.test"
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def _percent_box(box: list[float], width: int, height: int) -> dict[str, float]:
    x1, y1, x2, y2 = box
    return {
        "x": round(x1 / width * 100, 4),
        "y": round(y1 / height * 100, 4),
        "width": round((x2 - x1) / width * 100, 4),
        "height": round((y2 - y1) / height * 100, 4),
    }


def _keyframe(frame_idx: int, box: list[float], rows: VideoRows, *, enabled: bool = True) -> dict[str, Any]:
    """A keyframe as the labeling UI writes one (1-based frame, time at the video's fps)."""
    v = rows.video
    return {
        "frame": frame_idx + 1,
        "time": frame_idx / v.fps,
        **_percent_box(box, v.width, v.height),
        "rotation": 0,
        "enabled": enabled,
    }


def _box_at(rows: VideoRows, tubelet_id: str, frame_idx: int) -> list[float]:
    tube = next(t for t in rows.tubelets if t.tubelet_id == tubelet_id)
    return list(next(f for f in tube.frames if f.frame_idx == frame_idx).box_xyxy)


class Task:
    """One pushed task and the result list the reviewer edits (starts as the prediction)."""

    def __init__(self, task: dict[str, Any], prediction: list[dict[str, Any]], rows: VideoRows) -> None:
        self.task, self.rows = task, rows
        self.result = copy.deepcopy(prediction)
        self.track_region = {t: r for r, t in task["data"][DATA_TUBELETS].items()}
        self.event_region = {e: r for r, e in task["data"][DATA_EVENTS].items()}

    def item(self, region: str, kind: str) -> dict[str, Any]:
        return next(r for r in self.result if r["id"] == region and r["type"] == kind)

    def track(self, tubelet_id: str) -> dict[str, Any]:
        return self.item(self.track_region[tubelet_id], "videorectangle")

    def span(self, event_id: str) -> dict[str, Any]:
        return self.item(self.event_region[event_id], "timelinelabels")

    def add(self, region: str, from_name: str, kind: str, value: dict[str, Any]) -> None:
        self.result.append({"id": region, "from_name": from_name, "to_name": "video", "type": kind, "value": value})


# ------------------------------------------------------------------ the scenarios
# Each edits ``task.result`` and returns what it changed, in dataset terms (0-based frames, pixels).


def unchanged(task: Task) -> dict[str, Any]:
    return {"note": "submitted as predicted"}


def moved_boxes(task: Task) -> dict[str, Any]:
    moved = []
    # pushed keyframes mid-track: 3.75 % of 640 px = 24 px right (red), left (green, after its gap)
    for tubelet_id, frame_idx, dx in (("scene:track:1", 32, 24.0), ("scene:track:2", 33, -24.0)):
        key = next(k for k in task.track(tubelet_id)["value"]["sequence"] if k["frame"] == frame_idx + 1)
        key["x"] = round(key["x"] + dx / task.rows.video.width * 100, 4)
        moved.append({"tubelet_id": tubelet_id, "frame_idx": frame_idx, "dx_px": dx, "dy_px": 0.0})
    # no keyframe on frame 59 of the red track: the reviewer adds one, 9 px (2.5 % of 360) lower
    sequence = task.track("scene:track:1")["value"]["sequence"]
    box = _box_at(task.rows, "scene:track:1", 59)
    sequence.append(_keyframe(59, [box[0], box[1] + 9, box[2], box[3] + 9], task.rows))
    sequence.sort(key=lambda k: k["frame"])
    return {"moved": moved, "added": [{"tubelet_id": "scene:track:1", "frame_idx": 59, "dx_px": 0.0, "dy_px": 9.0}]}


def deleted_track(task: Task) -> dict[str, Any]:
    tubelet_id = "scene:track:3"
    region = task.track_region[tubelet_id]
    task.result = [r for r in task.result if r["id"] != region]  # the box and its texts; its spans stay
    return {"tubelet_id": tubelet_id}


def spans(task: Task) -> dict[str, Any]:
    task.span("scene:event:1:3")["value"]["ranges"][0]["end"] -= 3
    task.span("scene:event:0:1")["value"]["timelinelabels"] = ["move_left"]
    deleted = task.event_region["scene:event:2:1"]
    task.result = [r for r in task.result if r["id"] != deleted]
    task.add(
        "Sp4nRv01aB", "events", "timelinelabels", {"ranges": [{"start": 10, "end": 12}], "timelinelabels": ["appear"]}
    )
    return {
        "shortened": {"event_id": "scene:event:1:3", "end_frame": [71, 68]},
        "relabelled": {"event_id": "scene:event:0:1", "label": ["move_right", "move_left"]},
        "deleted": {"event_id": "scene:event:2:1"},
        "added": {"region_id": "Sp4nRv01aB", "label": "appear", "frames": [9, 11]},
    }


def texts(task: Task) -> dict[str, Any]:
    expression = task.item(task.track_region["scene:track:1"], "textarea")
    expression["value"]["text"] = ["the small red square"]
    task.add(
        task.track_region["scene:track:2"],
        "caption",
        "textarea",
        {"text": ["a green square that leaves and comes back"]},
    )
    task.item(task.track_region["scene:track:3"], "textarea")["value"]["text"] = []  # every line erased
    task.add("N0Track9zz", "expression", "textarea", {"text": ["a text for no track"]})
    return {
        "expression": {"tubelet_id": "scene:track:1", "text": "the small red square"},
        "caption": {"tubelet_id": "scene:track:2", "text": "a green square that leaves and comes back"},
        "cleared_expression": {"tubelet_id": "scene:track:3"},
        "orphan_text_region": "N0Track9zz",
    }


def rejected_instructions(task: Task) -> dict[str, Any]:
    offered = [c["value"] for c in task.task["data"]["instructions"]]
    chosen = [offered[0], offered[5], "not-an-offered-instruction"]
    task.add("verdict", "rejected_instructions", "choices", {"choices": chosen})
    return {"rejected": chosen[:2], "not_offered": chosen[2]}


def new_track(task: Task) -> dict[str, Any]:
    region = "Nw7rK2pQ4x"
    boxes = {9: [300.0, 250.0, 360.0, 300.0], 19: [340.0, 250.0, 400.0, 300.0], 29: [380.0, 240.0, 440.0, 290.0]}
    sequence = [_keyframe(f, box, task.rows, enabled=f != 29) for f, box in boxes.items()]
    v = task.rows.video
    value = {
        "sequence": sequence,
        "labels": ["moving object"],
        "framesCount": v.n_frames,
        "duration": v.n_frames / v.fps,
    }
    task.add(region, "box", "videorectangle", value)
    task.add(region, "expression", "textarea", {"text": ["the grey shadow under the red square"]})
    task.add(region, "caption", "textarea", {"text": ["a soft grey shadow"]})
    return {
        "region_id": region,
        "keyframes": {str(f): box for f, box in boxes.items()},
        "last_keyframe_disabled": True,
        "expression": "the grey shadow under the red square",
        "caption": "a soft grey shadow",
    }


def wrong_fps(task: Task) -> dict[str, Any]:
    for item in task.result:
        if item["type"] == "videorectangle":
            for k in item["value"]["sequence"]:
                k["time"] = (k["frame"] - 1) / 24.0  # a tool that assumed Label Studio's default 24 fps
    return {"video_fps": task.rows.video.fps, "times_at_fps": 24.0}


def past_end(task: Task) -> dict[str, Any]:
    sequence = task.track("scene:track:1")["value"]["sequence"]
    last = sequence[-1]
    sequence.append({**last, "frame": 76, "time": 75 / task.rows.video.fps, "enabled": True})
    task.add(
        "Sp4nOut02b", "events", "timelinelabels", {"ranges": [{"start": 70, "end": 80}], "timelinelabels": ["leave"]}
    )
    return {
        "tubelet_id": "scene:track:1",
        "keyframe_frame_idx": 75,
        "span_region_id": "Sp4nOut02b",
        "span_frames": [69, 79],
    }


SCENARIOS = {
    "unchanged": ("scene", unchanged),
    "unchanged_30fps": ("mirror30", unchanged),  # its blue tracks leave for good: out-of-view rows to the end
    "moved_boxes": ("scene", moved_boxes),
    "deleted_track": ("scene", deleted_track),
    "spans": ("scene", spans),
    "texts": ("scene", texts),
    "rejected_instructions": ("scene", rejected_instructions),
    "new_track": ("scene", new_track),
    "wrong_fps": ("mirror30", wrong_fps),
    "past_end": ("scene", past_end),
}


# ------------------------------------------------------------------ recording


def _scrub(value: Any, replacements: dict[str, str]) -> Any:
    """E-mails to the placeholder, local paths to ``<dataset>``, everywhere in a JSON value."""
    if isinstance(value, dict):
        return {k: _scrub(v, replacements) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, replacements) for v in value]
    if isinstance(value, str):
        for old, new in replacements.items():
            value = value.replace(old, new)
        return EMAIL.sub(PLACEHOLDER_EMAIL, value)
    return value


def _rows_json(rows: VideoRows, replacements: dict[str, str]) -> dict[str, Any]:
    tubelets = []
    for tube in rows.tubelets:
        row = record_to_row(tube)
        for frame in row["frames"]:
            frame["mask_rle"] = None  # most of the bytes, and no unit test re-tracks
        tubelets.append({k: row[k] for k in row if k in tube.__dataclass_fields__})
    return _scrub(
        {
            "video": record_to_row(rows.video),
            "tubelets": tubelets,
            "entities": [record_to_row(e) for e in rows.entities],
            "events": [record_to_row(e) for e in rows.events],
            "instructions": [record_to_row(i) for i in rows.instructions],
        },
        replacements,
    )


def _slim(export: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The export less what no pull reads and most of the bytes are (see the module docstring)."""
    for task in export:
        for annotation in task.get("annotations") or []:
            annotation.pop("prediction", None)
        for choice in task["data"].get("instructions") or []:
            choice.pop("html", None)
    return export


def _write(path: Path, value: Any) -> None:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"
    assert TOKEN not in text and PASSWORD not in text, path
    path.write_text(text)


def test_record(label_studio, dataset: Path) -> None:
    client = LabelStudioClient(label_studio.url, label_studio.token)
    rows = load_rows(Dataset(dataset), ["scene", "mirror30"])
    replacements = {str(dataset).lstrip("/"): "<dataset>", str(dataset): "<dataset>"}
    replacements.update({str(Path(r.video.uri).parent).lstrip("/"): "<source>" for r in rows.values()})
    replacements.update({str(Path(r.video.uri).parent): "<source>" for r in rows.values()})
    DATA.mkdir(exist_ok=True)
    scene, other = _rows_json(rows["scene"], replacements), _rows_json(rows["mirror30"], replacements)
    del other["instructions"]  # its scenarios reject none
    _write(DATA / "rows.json", {"scene": scene, "mirror30": other})
    reviewers = {str(k): v for k, v in client.reviewers().items()}
    for name, (video_id, edit) in SCENARIOS.items():
        project = f"record-{name}"
        push(dataset, project, client=client, where=f"video_id = '{video_id}'")
        proj = client.find_project(project)
        (listed,) = list(client.tasks(proj.id))
        (prediction,) = list(client.sdk.predictions.list(task=listed["id"]))
        assert listed["data"][DATA_VIDEO_ID] == video_id
        task = Task(listed, prediction.result, rows[video_id])
        edits = edit(task)
        client.sdk.annotations.create(id=listed["id"], result=task.result, lead_time=30.0)
        if name == "unchanged":  # then skipped: the later, cancelled annotation must not count
            client.sdk.annotations.create(id=listed["id"], result=[], was_cancelled=True, lead_time=2.0)
            edits["skipped_after"] = True
        export = _slim(client.export(proj.id))
        record = {"scenario": name, "video_id": video_id, "edits": edits, "reviewers": reviewers, "export": export}
        _write(DATA / f"export_{name}.json", _scrub(record, replacements))
