"""Row-level validation: a clean dataset passes; every planted error is named."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from tubelet.schemas import Tubelet, TubeletFrame, VideoRecord
from tubelet.schemas.arrow import record_to_row, rows_to_table
from tubelet.schemas.rle import encode_mask
from tubelet.schemas.validation import check_tubelet, check_video, validate_tables, validate_tubelets, validate_videos

W, H = 16, 12


def _mask(x1: int, y1: int, x2: int, y2: int) -> dict[str, Any]:
    m = np.zeros((H, W), dtype=bool)
    m[y1:y2, x1:x2] = True
    return encode_mask(m)


def _videos() -> list[VideoRecord]:
    return [
        # a frame folder: times are frame_idx / fps
        VideoRecord("v1", "/d/v1", 24.0, 10, 10 / 24, W, H, "jpeg", "manifest"),
        # a file: times come from the container, not locked to the fps grid
        VideoRecord("v2", "/d/v2.mp4", 30.0, 30, 1.0, W, H, "h264", "container"),
    ]


def _tubelets() -> list[Tubelet]:
    masked = [TubeletFrame(i, i / 24, [1.0 + i, 2.0, 5.0 + i, 6.0], _mask(1 + i, 2, 5 + i, 6)) for i in range(4)]
    masked.append(TubeletFrame(4, 4 / 24, [4.0, 2.0, 8.0, 6.0], None, visible=False))
    boxes = [
        TubeletFrame(0, 0.0, [0.0, 0.0, 4.0, 4.0], amodal_xyxy=[-3.0, -1.0, 4.0, 4.0]),
        TubeletFrame(5, 0.171, [2.0, 2.0, 16.0, 12.0], amodal_xyxy=[2.0, 2.0, 19.0, 13.5]),
        TubeletFrame(29, 0.99, [3.0, 3.0, 6.0, 6.0], score=0.5),
    ]
    return [
        Tubelet("v1:davis:1", "v1", "dog", "import:davis", "1", 24.0, W, H, masked),
        Tubelet("v2:mot:7", "v2", "pedestrian", "import:mot", "7", 30.0, W, H, boxes),
    ]


def _tables(rows: list[dict[str, Any]] | None = None) -> tuple[pa.Table, pa.Table]:
    videos = rows_to_table("videos", [record_to_row(v) for v in _videos()])
    tubelets = rows_to_table("tubelets", rows if rows is not None else [record_to_row(t) for t in _tubelets()])
    return tubelets, videos


def _planted(change: Any) -> list[str]:
    """Problems after ``change(rows)`` plants an error in the clean tubelet rows."""
    rows = [record_to_row(t) for t in _tubelets()]
    change(rows)
    tubelets, videos = _tables(rows)
    return validate_tubelets(tubelets, videos, check_masks="all")


def test_clean_tables_have_no_problems() -> None:
    tubelets, videos = _tables()
    assert validate_videos(videos) == []
    assert validate_tubelets(tubelets, videos, check_masks="all") == []
    assert validate_tables({"videos": videos, "tubelets": tubelets}) == []
    assert validate_tubelets(tubelets) == []  # without videos: the checks that need none
    for t, v in zip(_tubelets(), _videos(), strict=True):
        assert check_tubelet(t, v) == []
        assert check_video(v) == []


def test_box_outside_the_frame() -> None:
    def plant(rows: list[dict[str, Any]]) -> None:
        rows[1]["frames"][2]["box_xyxy"] = [3.0, 3.0, 17.0, 6.0]

    [problem] = _planted(plant)
    assert "'v2:mot:7' (row 1) frames[2] (frame_idx 29)" in problem
    assert "outside the 16x12 frame" in problem


def test_inverted_and_short_boxes() -> None:
    def plant(rows: list[dict[str, Any]]) -> None:
        rows[0]["frames"][0]["box_xyxy"] = [5.0, 2.0, 1.0, 6.0]
        rows[0]["frames"][1]["box_xyxy"] = [1.0, 2.0, 5.0]

    problems = _planted(plant)
    assert any("frames[0]" in p and "is not x1 < x2" in p for p in problems)
    assert any("frames[1]" in p and "has 3 numbers, not 4" in p for p in problems)
    assert len(problems) == 2


def test_mask_of_the_wrong_size() -> None:
    def plant(rows: list[dict[str, Any]]) -> None:
        rows[0]["frames"][1]["mask_rle"] = encode_mask(np.ones((W, H), dtype=bool))  # transposed

    [problem] = _planted(plant)
    assert "frames[1]" in problem and "mask size [16, 12] is not the frame size [12, 16]" in problem


def test_mask_whose_runs_do_not_cover_the_frame() -> None:
    def plant(rows: list[dict[str, Any]]) -> None:
        short = encode_mask(np.ones((H // 2, W), dtype=bool))["counts"]  # half the pixels
        rows[0]["frames"][2]["mask_rle"] = {"size": [H, W], "counts": short}

    [problem] = _planted(plant)
    assert "frames[2]" in problem and "mask does not decode" in problem and "cover 96 pixels" in problem
    # the sampled check (the default) finds it too when the sample reaches it
    rows = [record_to_row(t) for t in _tubelets()]
    plant(rows)
    tubelets, videos = _tables(rows)
    assert validate_tubelets(tubelets, videos, check_masks="none") == []
    assert len(validate_tubelets(tubelets, videos, mask_sample=1000)) == 1


def test_frame_beyond_the_video() -> None:
    def plant(rows: list[dict[str, Any]]) -> None:
        rows[1]["frames"][2]["frame_idx"] = 30
        rows[1]["end_frame"] = 30  # keep the summary true: only the frame is wrong

    [problem] = _planted(plant)
    assert "frame_idx 30" in problem and "n_frames = 30" in problem


def test_unsorted_and_repeated_frames() -> None:
    def unsorted(rows: list[dict[str, Any]]) -> None:
        rows[0]["frames"][1], rows[0]["frames"][2] = rows[0]["frames"][2], rows[0]["frames"][1]

    problems = _planted(unsorted)
    assert any("frames[2] (frame_idx 1)" in p and "not sorted" in p for p in problems)

    def repeated(rows: list[dict[str, Any]]) -> None:
        rows[0]["frames"][2] = copy.deepcopy(rows[0]["frames"][1])

    problems = _planted(repeated)
    assert any("frames[2]" in p and "listed twice" in p for p in problems)


def test_times() -> None:
    def off_grid(rows: list[dict[str, Any]]) -> None:
        rows[0]["frames"][2]["t_s"] = 2 / 24 + 0.6 / 24  # a frame folder: must be on the grid

    [problem] = _planted(off_grid)
    assert "more than half a frame from frame_idx / fps" in problem

    def late(rows: list[dict[str, Any]]) -> None:
        rows[1]["frames"][2]["t_s"] = 1.5  # container times: within the duration

    [problem] = _planted(late)
    assert "after the video's duration" in problem

    def backwards(rows: list[dict[str, Any]]) -> None:
        rows[1]["frames"][1]["t_s"] = 0.0

    [problem] = _planted(backwards)
    assert "does not increase" in problem


def test_amodal_box_must_contain_the_box() -> None:
    def plant(rows: list[dict[str, Any]]) -> None:
        rows[1]["frames"][1]["amodal_xyxy"] = [3.0, 2.0, 19.0, 13.5]

    [problem] = _planted(plant)
    assert "does not contain box [2, 2, 16, 12]" in problem


def test_mask_on_an_invisible_frame_and_summary_mismatch() -> None:
    def plant(rows: list[dict[str, Any]]) -> None:
        rows[0]["frames"][4]["mask_rle"] = _mask(4, 2, 8, 6)
        rows[0]["n_visible"] = 7

    problems = _planted(plant)
    assert any("invisible frame has a mask" in p for p in problems)
    assert any("n_visible = 7 but the frames say 4" in p for p in problems)


def test_tubelet_level_problems() -> None:
    def plant(rows: list[dict[str, Any]]) -> None:
        rows[1]["video_id"] = "nope"
        rows[0]["width"] = 32
        rows.append({**rows[0], "width": W})  # the same id twice

    problems = _planted(plant)
    assert any("video 'nope' is not in the videos table" in p for p in problems)
    assert any("size 32x12 is not the video's 16x12" in p for p in problems)
    assert any("tubelet_id 'v1:davis:1' appears 2 times" in p for p in problems)


def test_video_rows() -> None:
    v = _videos()
    v[0].fps = 0.0
    v[1].width = -4
    rows = [record_to_row(r) for r in v] + [record_to_row(_videos()[0])]
    problems = validate_videos(rows_to_table("videos", rows))
    assert any("videos row 0 ('v1'): fps = 0 is not a positive number" in p for p in problems)
    assert any("videos row 1 ('v2'): width = -4 is not positive" in p for p in problems)
    assert any("video_id 'v1' appears 2 times" in p for p in problems)
    assert check_video({"video_id": "x"})  # not even the schema: a problem, not an exception


def test_null_frame_fields() -> None:
    def plant(rows: list[dict[str, Any]]) -> None:
        rows[0]["frames"][2]["t_s"] = None
        rows[0]["frames"][4]["visible"] = None
        rows[0]["frames"][0]["mask_rle"]["counts"] = None
        rows[1]["frames"][0]["box_xyxy"] = None  # its amodal box is then not compared with it

    assert _planted(plant) == [
        "tubelet 'v1:davis:1' (row 0) frames[2] (frame_idx 2): t_s = nan is not a time",
        "tubelet 'v2:mot:7' (row 1) frames[0] (frame_idx 0): box_xyxy is null",
        "tubelet 'v1:davis:1' (row 0) frames[4] (frame_idx 4): visible is null",
        "tubelet 'v1:davis:1' (row 0) frames[0] (frame_idx 0): mask counts is null",
    ]

    def null_idx(rows: list[dict[str, Any]]) -> None:
        rows[0]["frames"][1]["frame_idx"] = None

    assert "tubelet 'v1:davis:1' (row 0) frames[1] (frame_idx -1): frame_idx is null" in _planted(null_idx)


def test_tubelet_without_frames_and_fps_of_another_video() -> None:
    def plant(rows: list[dict[str, Any]]) -> None:
        rows[1]["frames"] = []
        rows[0]["fps"] = 25.0

    assert _planted(plant) == [
        "tubelet 'v1:davis:1' (row 0): fps 25 is not the video's 24",
        "tubelet 'v2:mot:7' (row 1): no frames",
    ]


def test_video_missing_column_and_unknown_fps_source() -> None:
    rows = [record_to_row(v) for v in _videos()]
    rows[0]["fps_source"] = "guess"
    rows[1]["uri"] = ""
    table = rows_to_table("videos", rows).drop_columns(["duration_s"])
    assert validate_videos(table) == [
        "videos row 1 ('v2'): uri is empty",
        "videos: no duration_s column",
        "videos row 0 ('v1'): fps_source 'guess' is not one of ('container', 'manifest')",
    ]


def test_tubelets_without_an_id_column_are_still_checked() -> None:
    rows = [record_to_row(t) for t in _tubelets()]
    rows[1]["frames"][2]["box_xyxy"] = [3.0, 3.0, 17.0, 6.0]
    tubelets, videos = _tables(rows)
    problems = validate_tubelets(tubelets.drop_columns(["tubelet_id"]), videos)
    assert problems == ["tubelet None (row 1) frames[2] (frame_idx 29): box [3, 3, 17, 6] is outside the 16x12 frame"]


def test_primary_keys_of_the_other_tables() -> None:
    entities = pa.table({"entity_id": ["e1", "e2", "e1"]})
    rejects = pa.table({"item": ["a", "a"]})  # no primary key: an item may fail twice
    assert validate_tables({"entities": entities, "rejects": rejects}) == ["entities: entity_id 'e1' appears 2 times"]


def test_check_tubelet_sees_unsorted_records() -> None:
    t = _tubelets()[0]
    t.frames.reverse()  # records_to_table would sort these; the check must not
    problems = check_tubelet(t, _videos()[0])
    assert problems and all("not sorted" in p for p in problems)


def test_many_problems_are_cut_and_counted() -> None:
    frames = [TubeletFrame(i, i / 24, [0.0, 0.0, 20.0, 5.0]) for i in range(10)]  # all too wide
    t = Tubelet("v1:x:1", "v1", "c", "s", "1", 24.0, W, H, frames)
    table = rows_to_table("tubelets", [record_to_row(t)])
    problems = validate_tubelets(table, max_examples=3)
    assert len(problems) == 4
    assert problems[-1] == "... and 7 more: frames with a box outside the frame"


def test_large_table_locates_errors_across_batches() -> None:
    n = 70_000  # more than one record batch of 65,536 rows
    frame = {
        "frame_idx": 0,
        "t_s": 0.0,
        "box_xyxy": [0.0, 0.0, 1.0, 1.0],
        "mask_rle": None,
        "score": None,
        "visible": True,
        "amodal_xyxy": None,
    }
    bad = dict(frame, box_xyxy=[0.0, 0.0, 1.0, 99.0])
    rows = [
        {
            "tubelet_id": f"t{i}",
            "video_id": "v1",
            "width": W,
            "height": H,
            "fps": 24.0,
            "frames": [bad if i == 66_000 else frame],
        }
        for i in range(n)
    ]
    tubelets, videos = _tables(rows)
    [problem] = validate_tubelets(tubelets, videos)
    assert problem.startswith("tubelet 't66000' (row 66000) frames[0]")


def test_bad_option() -> None:
    tubelets, _ = _tables()
    with pytest.raises(ValueError):
        validate_tubelets(tubelets, check_masks="some")  # type: ignore[arg-type]
