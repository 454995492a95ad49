"""MOT import: every gt.txt row reproduced exactly; rows that do not fit are rejects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tubelet.annotators.importers.mot import MOT17_CLASSES, mot_sequence_entries, read_mot_gt
from tubelet.annotators.importers.stage import ImportAnnotations
from tubelet.engine.config import VideoEntry
from tubelet.engine.probe import probe_task
from tubelet.engine.stage import run_stage
from tubelet.engine.task import VideoTask
from tubelet.schemas import records_to_table
from tubelet.schemas.validation import validate_tubelets

STAGE = ImportAnnotations()
SEQUENCES = [f"MOT17-{n}-FRCNN" for n in ("02", "04", "05", "09", "10", "11", "13")]


def _run(uri: Path | str, annotations: dict[str, Any] | None, fps: float, video_id: str) -> VideoTask:
    task = VideoTask(video_id=video_id, uri=str(uri), fps=fps, annotations=annotations)
    task.video = probe_task(task, decode_check=False)
    [done] = run_stage(STAGE, [task])
    return done


@pytest.mark.assets
def test_mot_entries_are_video_entries(assets: Path) -> None:
    entries = mot_sequence_entries(assets / "mot17-mini" / "train")
    assert [e["video_id"] for e in entries] == SEQUENCES
    for e in entries:
        VideoEntry.model_validate(e)
        assert Path(e["uri"]).name == "img1" and Path(e["annotations"]["path"]).is_file()
        assert e["source"] == "mot17" and e["split"] == "train"
    rates = {e["video_id"]: e["fps"] for e in entries}
    assert rates["MOT17-05-FRCNN"] == 14.0 and rates["MOT17-13-FRCNN"] == 25.0
    # seqLength is the original length, kept aside: the folder holds only a few frames
    assert entries[0]["extra"] == {"seq_length": 600}


@pytest.mark.assets
@pytest.mark.parametrize("seq", SEQUENCES)
def test_mot17_gt_is_reproduced_exactly(assets: Path, seq: str) -> None:
    [entry] = [e for e in mot_sequence_entries(assets / "mot17-mini" / "train") if e["video_id"] == seq]
    task = _run(entry["uri"], entry["annotations"], entry["fps"], seq)
    assert not task.failed and task.rejects == []
    video = task.video
    gt = np.loadtxt(entry["annotations"]["path"], delimiter=",", ndmin=2)
    tubes = {t.track_id: t for t in task.tubelets}
    # one frame per row; a row wholly outside the frame would be in extra.outside (none here)
    assert sum(len(t.frames) for t in tubes.values()) == len(gt)
    assert not any("outside" in t.extra for t in tubes.values())
    clipped = 0
    for frame, tid, x, y, w, h, conf, cls, vis in gt:
        tube = tubes[str(int(tid))]
        assert tube.tubelet_id == f"{seq}:mot:{int(tid)}" and tube.source == "import:mot"
        assert tube.category == MOT17_CLASSES[int(cls)] and tube.extra["mot_class"] == int(cls)
        [k] = [k for k, f in enumerate(tube.frames) if f.frame_idx == int(frame) - 1]
        assert tube.extra["mot_classes"][k] == int(cls)
        f = tube.frames[k]
        exact = [x, y, x + w, y + h]
        inside = [min(max(v, 0.0), lim) for v, lim in zip(exact, [video.width, video.height] * 2, strict=True)]
        assert (f.amodal_xyxy or f.box_xyxy) == exact
        assert f.box_xyxy == inside
        assert (f.amodal_xyxy is None) == (inside == exact)
        clipped += f.amodal_xyxy is not None
        assert f.t_s == f.frame_idx / video.fps
        assert f.visible == (vis > 0) and f.mask_rle is None and f.score is None
        assert tube.extra["visibility"][k] == vis and tube.extra["consider"][k] == bool(conf)
    assert clipped > 0  # every one of these sequences has boxes reaching outside the frame
    videos = records_to_table("videos", [video])
    assert validate_tubelets(records_to_table("tubelets", task.tubelets), videos) == []


# -------------------------------------------------------------------- synthetic sequence

GT_LINES = """\
1,1,5,5,10,10,1,1,1.0
2,1,6,5,10,10,1,1,0.5
3,1,-4,5,10,10,1,1,0.0
4,1,8,5,10,10,1,1,1.0
5,1,9,5,10,10,1,1,1.0
4,2,1,1,5,5,0,8,1.0
2,3,50,5,10,10,1,1,1.0
2,1,6,5,10,10,1,1,0.5
1,2,3
1,4,1,1,-5,5,1,1,1
1,5,1,1,5,5,1,3,1.0
2,5,1,1,5,5,1,4,1.0
1,6,30,20,20,20,0,7,0.25
0,7,1,1,5,5,1,1,1

"""


def _sequence(tmp_path: Path, names: list[str]) -> tuple[Path, Path]:
    img1 = tmp_path / "seq" / "img1"
    img1.mkdir(parents=True)
    for name in names:
        Image.fromarray(np.zeros((30, 40, 3), dtype=np.uint8)).save(img1 / f"{name}.jpg")
    gt = tmp_path / "seq" / "gt.txt"
    gt.write_text(GT_LINES)
    return img1, gt


def test_rows_that_do_not_fit_are_rejected(tmp_path: Path) -> None:
    img1, gt = _sequence(tmp_path, ["000001", "000002", "000003"])
    ann = {"format": "mot", "path": str(gt), "categories": {"7": "standing person"}}
    task = _run(img1, ann, 10.0, "s")
    assert not task.failed
    tubes = {t.track_id: t for t in task.tubelets}
    assert sorted(tubes) == ["1", "5", "6"]

    one = tubes["1"]
    assert [(f.frame_idx, f.t_s, f.visible) for f in one.frames] == [(0, 0.0, True), (1, 0.1, True), (2, 0.2, False)]
    assert one.frames[2].box_xyxy == [0.0, 5.0, 6.0, 15.0] and one.frames[2].amodal_xyxy == [-4.0, 5.0, 6.0, 15.0]
    assert one.extra == {
        "mot_class": 1,
        "mot_classes": [1, 1, 1],
        "visibility": [1.0, 0.5, 0.0],
        "consider": [True, True, True],
    }
    five = tubes["5"]  # a track that changes class keeps each row's; a tie goes to the earliest
    assert five.category == "car" and five.extra["mot_classes"] == [3, 4] and five.extra["mot_class"] == 3
    six = tubes["6"]
    assert six.category == "standing person" and six.extra["consider"] == [False]
    assert six.frames[0].box_xyxy == [30.0, 20.0, 40.0, 30.0] and six.frames[0].amodal_xyxy == [30.0, 20.0, 50.0, 40.0]

    reasons = {r.item: r.reason for r in task.rejects}
    assert all(r.stage == "import_annotations" for r in task.rejects)
    assert "2 gt rows (lines 4-5)" in reasons["s:mot:1"] and "frames 4-5" in reasons["s:mot:1"]
    assert "frames 4" in reasons["s:mot:2"]
    assert "frames 0" in reasons["s:mot:7"]
    assert "entirely outside the 40x30 frame" in reasons[f"{gt}:7"]
    assert "already has a box on frame 2 (line 2)" in reasons[f"{gt}:8"]
    assert "expected 9 fields" in reasons[f"{gt}:9"]
    assert "box size -5x5 is not positive" in reasons[f"{gt}:10"]
    assert len(task.rejects) == 7
    # nothing is lost: every non-blank row is a tubelet frame or named by a reject
    videos = records_to_table("videos", [task.video])
    assert validate_tubelets(records_to_table("tubelets", task.tubelets), videos) == []


def test_frame_files_must_be_numbered_from_one(tmp_path: Path) -> None:
    img1, gt = _sequence(tmp_path, ["000002", "000003", "000004"])
    task = _run(img1, {"format": "mot", "path": str(gt)}, 10.0, "s")
    assert task.failed and "not numbered 1..3" in task.rejects[-1].reason


def test_missing_gt_file_rejects_the_video(tmp_path: Path) -> None:
    img1, _ = _sequence(tmp_path, ["000001"])
    task = _run(img1, {"format": "mot", "path": str(tmp_path / "none.txt")}, 10.0, "s")
    assert task.failed and "FileNotFoundError: MOT annotation file not found" in task.rejects[-1].reason


def test_read_mot_gt_parses_numbers_strictly(tmp_path: Path) -> None:
    gt = tmp_path / "gt.txt"
    gt.write_text("1,1,1.5,2,3,4,1,1,0.7,-1\n1.5,2,1,1,1,1,1,1,1\n2,3,nan,1,1,1,1,1,1\n1,4,1,1,1,1,1,1,1.5\n")
    rows, rejects = read_mot_gt(gt)
    assert [(r.frame, r.track_id, r.xyxy, r.visibility) for r in rows] == [(1, 1, [1.5, 2.0, 4.5, 6.0], 0.7)]
    assert [r.item.rsplit(":", 1)[1] for r in rejects] == ["2", "3", "4"]
    assert "not an integer" in rejects[0].reason and "not a finite number" in rejects[1].reason
    assert "visibility 1.5" in rejects[2].reason
