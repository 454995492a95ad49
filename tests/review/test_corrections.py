"""Which frames a review corrects: anchors, edits and spans, on Label Studio's own arithmetic.

Each test pushes a tubelet's keyframes as ``push`` does (``select_keyframes`` +
``to_ls_sequence``), edits the sequence as a reviewer would, expands it to every frame
with label-studio-sdk's ``extract_key_frames`` (what an export with
``interpolate_key_frames`` runs) and reads it back with ``parse_task``, as ``pull`` does.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from tubelet.review.corrections import Correction, find_corrections, splice
from tubelet.review.keyframes import select_keyframes, to_ls_sequence
from tubelet.review.results import ReviewedTrack, parse_task
from tubelet.review.tasks import DATA_TUBELETS, DATA_VIDEO_ID, track_of
from tubelet.schemas.records import Tubelet, TubeletFrame

W, H, FPS, N = 640, 360, 24.0, 60
TOL = 2.0
MOVE = 3.75  # percent of the width: 24 px


def _tube(boxes: np.ndarray, frames: range, hidden: frozenset[int] = frozenset()) -> Tubelet:
    rows = [
        TubeletFrame(
            f, f / FPS, [float(v) for v in boxes[f]], {"size": [H, W], "counts": f"m{f}"}, 0.9, f not in hidden
        )
        for f in frames
    ]
    return Tubelet("v:track:1", "v", "thing", "test", "1", FPS, W, H, rows, 0.9)


def _walk(seed: int) -> np.ndarray:
    """A box wandering in integer pixels (as trackers store them), ``[N, 4]``."""
    rng = np.random.default_rng(seed)
    t = np.arange(N)[:, None]
    centre = np.array([320.0, 180.0]) + np.cumsum(rng.normal(0, 2.0, (N, 2)), axis=0) + t * rng.normal(0, 1.5, 2)
    size = np.array([80.0, 60.0]) + 10 * np.sin(t / 15)
    return np.round(np.hstack([centre - size / 2, centre + size / 2]))


def _pushed(tube: Tubelet) -> list[dict[str, Any]]:
    keys = select_keyframes(track_of(tube), tolerance_px=TOL, n_frames=N)
    return to_ls_sequence(keys, width=W, height=H, fps=FPS)


def _reviewed(tube: Tubelet, sequence: list[dict[str, Any]]) -> ReviewedTrack:
    """The track ``pull`` reads back from an export of ``sequence``."""
    video = pytest.importorskip("label_studio_sdk._extensions.label_studio_tools.postprocessing.video")
    result = {
        "id": "t1",
        "from_name": "box",
        "to_name": "video",
        "type": "videorectangle",
        "value": {"sequence": sequence, "labels": ["thing"], "framesCount": N, "duration": N / FPS},
    }
    exported = video.extract_key_frames([result])
    task = {
        "id": 1,
        "data": {DATA_VIDEO_ID: "v", DATA_TUBELETS: {"t1": tube.tubelet_id}},
        "annotations": [{"id": 2, "result": exported, "completed_by": 1, "updated_at": "2026-01-01T00:00:00Z"}],
    }
    reviewed = parse_task(task, width=W, height=H, fps=FPS, n_frames=N)
    assert reviewed is not None and not reviewed.blocking, reviewed
    (track,) = reviewed.tracks
    return track


def _spans(correction: Correction) -> list[tuple[int, int, list[int]]]:
    return [(s.frames[0], s.frames[-1], s.prompts) for s in correction.spans]


def _boxes_only(tube: Tubelet, correction: Correction) -> Tubelet:
    """``tube`` corrected without a tracker, as ``apply`` writes it."""
    rows = {
        f: TubeletFrame(f, f / FPS, box or [0.0, 0.0, 0.0, 0.0], None, None, box is not None)
        for s in correction.spans
        for f, box in s.boxes.items()
    }
    return splice(tube, rows)


@pytest.mark.parametrize("seed", range(8))
def test_an_untouched_track_is_not_corrected(seed: int) -> None:
    """Pushed keyframes come back (through percentages and LS's interpolation) as anchors."""
    tube = _tube(_walk(seed), range(5, 55), hidden=frozenset({20, 21, 22}))
    assert find_corrections(tube, _reviewed(tube, _pushed(tube)), tolerance_px=TOL).spans == []


@pytest.mark.parametrize("seed", range(4))
def test_a_moved_keyframe_corrects_the_frames_between_its_neighbours(seed: int) -> None:
    tube = _tube(_walk(seed), range(N))
    sequence = _pushed(tube)
    assert len(sequence) >= 3
    i = len(sequence) // 2
    sequence[i]["x"] = round(sequence[i]["x"] + MOVE, 4)
    before, key, after = (sequence[j]["frame"] - 1 for j in (i - 1, i, i + 1))
    correction = find_corrections(tube, _reviewed(tube, sequence), tolerance_px=TOL)
    assert _spans(correction) == [(before + 1, after - 1, [key])]
    (span,) = correction.spans
    assert span.frames == list(range(before + 1, after))
    old = tube.frames[key].box_xyxy
    assert span.boxes[key] == pytest.approx([old[0] + 24.0, old[1], old[2] + 24.0, old[3]], abs=0.006)
    assert all(round(v, 2) == v for box in span.boxes.values() for v in box)  # no percent noise
    # put back together: the rows outside the span are the very same objects' values
    fixed = _boxes_only(tube, correction)
    assert [f for f in fixed.frames if f.frame_idx not in span.boxes] == [
        f for f in tube.frames if f.frame_idx not in span.boxes
    ]
    # a second pull of the same annotation finds nothing left to correct
    assert find_corrections(fixed, _reviewed(tube, sequence), tolerance_px=TOL).spans == []


def test_a_deleted_keyframe_corrects_the_frames_it_interpolated() -> None:
    """A box going right then down: without its corner keyframe LS cuts the corner."""
    path = [[10.0 + 8 * min(f, 30), 10.0 + 6 * max(0, f - 30)] for f in range(N)]
    boxes = np.array([[x, y, x + 40, y + 30] for x, y in path])
    tube = _tube(boxes, range(N))
    sequence = _pushed(tube)
    corner = next(j for j, k in enumerate(sequence) if k["frame"] == 31)
    previous, following = sequence[corner - 1]["frame"] - 1, sequence[corner + 1]["frame"] - 1
    del sequence[corner]
    correction = find_corrections(tube, _reviewed(tube, sequence), tolerance_px=TOL)
    # no edit inside: the tracker is prompted on the span's first frame
    assert _spans(correction) == [(previous + 1, following - 1, [previous + 1])]


def test_a_track_cut_short_hides_the_frames_after_its_new_end() -> None:
    tube = _tube(_walk(3), range(N))
    sequence = _pushed(tube)
    i = len(sequence) // 2
    end = sequence[i]["frame"] - 1
    sequence = copy.deepcopy(sequence[: i + 1])
    sequence[i]["enabled"] = False  # the reviewer ends the track here
    correction = find_corrections(tube, _reviewed(tube, sequence), tolerance_px=TOL)
    assert _spans(correction) == [(end + 1, N - 1, [])]  # nothing visible to re-track
    fixed = _boxes_only(tube, correction)
    rows = {f.frame_idx: f for f in fixed.frames}
    assert rows[end] == tube.frames[end]  # the new end is an anchor: kept as it was
    assert all(not rows[f].visible and rows[f].box_xyxy == tube.frames[end].box_xyxy for f in range(end + 1, N))


def test_an_extended_track_gains_rows_on_its_stride() -> None:
    tube = _tube(_walk(5), range(10, 40, 2))  # a sampled tubelet: every other frame
    sequence = _pushed(tube)
    last = copy.deepcopy(sequence[-1])
    sequence[-1]["enabled"] = True
    sequence.append({**last, "frame": 51, "time": round(50 / FPS, 6), "enabled": False})
    correction = find_corrections(tube, _reviewed(tube, sequence), tolerance_px=TOL)
    (span,) = correction.spans
    assert span.frames == [*range(40, 50, 2), 50] and span.prompts == [50]
