"""``--protocol motchallenge`` against TrackEval itself, on a sequence built here (no assets).

The sequence (6 frames of 128x96) holds every rule of TrackEval's MOT17 preprocessing:
pedestrians scored, a zero-marked pedestrian, distractor classes (static person,
reflection, a track that turns from pedestrian into a static person), a car, a box
partly left of the frame, one that walks out on the right (partly, then wholly outside),
a fully occluded (visibility 0) pedestrian row, and an ID switch. Its gt.txt is imported
by the MOT importer; the predictions are tubelets built here. TrackEval reads the same
gt.txt and a tracker file written from the predictions.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.evaluation.trackeval_reference import assert_same, trackeval_mot17
from tubelet.annotators.importers.stage import ImportAnnotations
from tubelet.cli.main import main
from tubelet.engine.probe import probe_task
from tubelet.engine.stage import run_stage
from tubelet.engine.task import VideoTask
from tubelet.engine.writer import ShardWriter
from tubelet.evaluation import ProtocolInputError, evaluate
from tubelet.schemas import Tubelet, TubeletFrame
from tubelet.schemas.arrow import records_to_table, rows_to_table
from tubelet.schemas.info import DatasetInfo, write_info

pytest.importorskip("trackeval")
pytest.importorskip("motmetrics")

W, H, N, FPS = 128, 96, 6, 10.0
SEQ = "syn-seq"


def ped1(t: int) -> tuple[float, ...]:
    return (2.0 + 3 * t, 4.0, 12.0, 20.0)  # walks right


def ped2(t: int) -> tuple[float, ...]:
    return (104.0 + 5 * t, 40.0, 12.0, 20.0)  # x2 > 128 from t=3, wholly outside at t=5 (x ≥ 128)


STATIC = {
    3: ((20.0, 60.0, 10.0, 16.0), 0, 1),  # a pedestrian marked zero (consider 0): not scored
    4: ((40.0, 4.0, 8.0, 14.0), 0, 7),  # static person: a distractor
    5: ((60.0, 76.0, 24.0, 14.0), 0, 3),  # a car: not scored, and no distractor
    6: ((96.0, 0.0, 8.0, 10.0), 0, 12),  # a reflection: a distractor, nothing predicts it
    8: ((-6.0, 30.0, 14.0, 24.0), 1, 1),  # a pedestrian half left of the frame
}
TURNS = (60.0, 30.0, 10.0, 16.0)  # track 7: pedestrian on frames 1-3, static person on 4-6


def gt_lines() -> list[str]:
    rows = []
    for t in range(N):
        rows.append((t + 1, 1, *ped1(t), 1, 1, 0.0 if t == 2 else 1.0))  # fully occluded on frame 3
        rows.append((t + 1, 2, *ped2(t), 1, 1, 1.0))
        for tid, (box, conf, cls) in STATIC.items():
            rows.append((t + 1, tid, *box, conf, cls, 0.5))
        rows.append((t + 1, 7, *TURNS, 1 if t < 3 else 0, 1 if t < 3 else 7, 1.0))
    rows.sort(key=lambda r: (r[1], r[0]))  # MOTChallenge's own order: by id, then frame
    return [",".join(f"{v:g}" for v in r) for r in rows]


def xyxy(box: tuple[float, ...], shift: float = 0.0) -> list[float]:
    x, y, w, h = box
    clipped = [min(max(v, 0.0), lim) for v, lim in ((x + shift, W), (y, H), (x + w + shift, W), (y + h, H))]
    return [float(v) for v in clipped]


def pred(name: str, boxes: dict[int, list[float]], hidden: tuple[int, ...] = ()) -> Tubelet:
    """A predicted tubelet: clipped boxes as trackers give them; ``hidden`` frames not visible."""
    frames = [
        TubeletFrame(frame_idx=t, t_s=t / FPS, box_xyxy=b, score=0.8, visible=t not in hidden)
        for t, b in sorted(boxes.items())
    ]
    return Tubelet(f"{SEQ}:track:{name}", SEQ, "person", "test", name, FPS, W, H, frames)


def predictions() -> list[Tubelet]:
    return [
        pred("a", {0: xyxy(ped1(0)), 1: xyxy(ped1(1)), 2: xyxy(ped1(2)), 3: xyxy(ped2(3))}),  # then switches
        pred("b", {**{t: xyxy(ped2(t), 1) for t in range(3)}, **{t: xyxy(ped1(t)) for t in range(3, N)}}),
        pred("c", {t: xyxy(STATIC[3][0]) for t in range(N)}),  # on the zero-marked pedestrian
        pred("d", {t: xyxy(STATIC[4][0]) for t in range(N)}),  # on the static person
        pred("e", {t: xyxy(STATIC[5][0]) for t in range(N)}),  # on the car
        pred("f", {t: xyxy(TURNS) for t in range(N)}),  # on track 7, pedestrian then static
        pred("g", {t: xyxy(STATIC[8][0]) for t in range(N)}),  # clipped: IoU 8/14 with the gt box
        pred("h", {1: [70.0, 50.0, 80.0, 60.0], 2: [70.0, 50.0, 80.0, 60.0]}, hidden=(2,)),  # spurious
    ]


@pytest.fixture(scope="module")
def sequence(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The imported ground truth (tables) and the gt.txt it came from."""
    root = tmp_path_factory.mktemp("mot-protocol")
    img1 = root / SEQ / "img1"
    img1.mkdir(parents=True)
    for t in range(N):
        Image.fromarray(np.full((H, W, 3), 40 * t, dtype=np.uint8)).save(img1 / f"{t + 1:06d}.jpg")
    gt_txt = root / SEQ / "gt" / "gt.txt"
    gt_txt.parent.mkdir()
    gt_txt.write_text("\n".join(gt_lines()) + "\n")
    task = VideoTask(video_id=SEQ, uri=str(img1), fps=FPS, annotations={"format": "mot", "path": str(gt_txt)})
    task.video = probe_task(task, decode_check=False)
    [task] = run_stage(ImportAnnotations(), [task])
    assert not task.failed and task.rejects == []
    return {
        "root": root,
        "gt_txt": gt_txt,
        "task": task,
        "gt": records_to_table("tubelets", task.tubelets),
        "videos": records_to_table("videos", [task.video]),
    }


def test_import_keeps_every_row_the_protocol_reads(sequence: dict) -> None:
    tubes = {t.track_id: t for t in sequence["task"].tubelets}
    assert sorted(tubes, key=int) == ["1", "2", "3", "4", "5", "6", "7", "8"]
    two = tubes["2"]  # wholly outside on frame 6: no frame there, kept in extra.outside
    assert [f.frame_idx for f in two.frames] == [0, 1, 2, 3, 4]
    assert two.frames[3].amodal_xyxy == [119.0, 40.0, 131.0, 60.0] and two.frames[3].box_xyxy[2] == W
    assert two.extra["outside"] == [
        {"frame_idx": 5, "xyxy": [129.0, 40.0, 141.0, 60.0], "mot_class": 1, "visibility": 1.0, "consider": True}
    ]
    seven = tubes["7"]  # a track that changes class keeps each row's class
    assert seven.extra["mot_classes"] == [1, 1, 1, 7, 7, 7] and seven.extra["consider"] == [True] * 3 + [False] * 3
    assert seven.extra["mot_class"] == 1 and seven.category == "pedestrian"  # earliest class on a tie
    assert tubes["1"].frames[2].visible is False and tubes["1"].extra["visibility"][2] == 0.0


@pytest.mark.parametrize("side", ["predictions", "ground truth"])
def test_motchallenge_protocol_equals_trackeval(sequence: dict, side: str, tmp_path: Path) -> None:
    pred = records_to_table("tubelets", predictions()) if side == "predictions" else sequence["gt"]
    report = evaluate(pred, sequence["gt"], gt_videos=sequence["videos"], protocol="motchallenge")
    reference = trackeval_mot17(tmp_path / "trackeval", {SEQ: (sequence["gt_txt"], N, None)}, pred)
    (video,) = report.videos
    assert_same(video.trackeval, reference[SEQ], SEQ)
    assert_same(report.trackeval, reference["COMBINED_SEQ"], "combined")
    o = report.overall
    assert o["mota"] == pytest.approx(reference["COMBINED_SEQ"]["CLEAR"]["MOTA"], abs=5e-4)
    assert o["hota"] == pytest.approx(float(np.mean(reference["COMBINED_SEQ"]["HOTA"]["HOTA"])), abs=5e-4)
    # the rules at work, counted by hand: 21 pedestrian boxes to find (tracks 1, 2, 8 on 6
    # frames, track 7 on 3), one of track 2 wholly outside the frame; d (6) and f on track
    # 7's static frames (3) are removed as distractor matches
    assert o["gt_boxes"] == 21 and report.videos[0].n_gt == 4
    if side == "predictions":
        assert o["distractor_matches"] == 9
        assert o["id_switches"] == 2  # a and b trade pedestrians 1 and 2 on frame 4
        # c (zero-marked pedestrian, 6), e (car, 6), h (1 visible frame) are false positives;
        # track 2 is missed on frame 5 (a clipped box: IoU 4/12) and 6 (outside)
        assert o["false_positives"] == 13 and o["misses"] == 2
        assert o["loca"] < 1  # g's clipped box against the unclipped ground truth
    else:
        # ground truth against itself: the car and the zero-marked pedestrian are false
        # positives, the fully occluded row and the one outside the frame (neither visible) misses
        assert o["misses"] == 2 and o["false_positives"] == 6 * 2 and o["id_switches"] == 0


def test_default_protocol_keeps_its_conventions(sequence: dict) -> None:
    """The same input under the default: clipped boxes, visibility 0 and consider 0 not scored."""
    gt = sequence["gt"]
    o = evaluate(gt, gt, gt_videos=sequence["videos"]).overall
    assert o["mota"] == 1.0 and o["hota"] == pytest.approx(1.0) and o["false_positives"] == 0
    assert o["gt_boxes"] == 21 - 1 - 1  # no visibility-0 row, no row outside the frame


# ----------------------------------------------------------- what the protocol needs


def test_ground_truth_without_mot_rows_is_refused(sequence: dict) -> None:
    rows = sequence["gt"].to_pylist()
    pred = records_to_table("tubelets", predictions())
    davis = [dict(r, source="import:davis", extra=json.dumps({"mask_format": "palette"})) for r in rows]
    with pytest.raises(ProtocolInputError, match=r"has no extra\.mot_classes, extra\.consider; .*import a MOT gt\.txt"):
        evaluate(pred, rows_to_table("tubelets", davis), protocol="motchallenge")
    old = []  # a MOT import made before per-row classes were stored
    for r in rows:
        extra = json.loads(r["extra"])
        old.append(dict(r, extra=json.dumps({k: extra[k] for k in ("mot_class", "visibility", "consider")})))
    with pytest.raises(ProtocolInputError, match=r"8 of 8 .* has no extra\.mot_classes; .*re-import it"):
        evaluate(pred, rows_to_table("tubelets", old), protocol="motchallenge")
    with pytest.raises(ValueError, match="matches at IoU 0.5"):
        evaluate(pred, sequence["gt"], protocol="motchallenge", iou=0.3)


def test_prediction_beyond_the_video_is_refused(sequence: dict) -> None:
    late = pred("late", {N: [1.0, 1.0, 5.0, 5.0]})
    with pytest.raises(ProtocolInputError, match=rf"prediction {SEQ}:track:late has a box on frame {N}, beyond"):
        evaluate(
            records_to_table("tubelets", [late]), sequence["gt"], gt_videos=sequence["videos"], protocol="motchallenge"
        )


def _dataset(root: Path, task: VideoTask, tubelets: list[Tubelet]) -> Path:
    out = VideoTask(video_id=task.video_id, uri=task.uri, source="test")
    out.video, out.tubelets = task.video, tubelets
    with ShardWriter(root, shard_size=1, run_id="20250101T000000Z-motpr0") as writer:
        writer.add(out)
    write_info(root / "meta" / "info.json", DatasetInfo(pipeline="test", config_hash="0" * 16))
    return root


def test_cli_protocol(sequence: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    task = sequence["task"]
    gt = _dataset(tmp_path / "gt", task, task.tubelets)
    pred = _dataset(tmp_path / "pred", task, predictions())
    assert main(["eval", str(pred), str(gt), "--protocol", "motchallenge", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["protocol"] == "motchallenge" and data["overall"]["id_switches"] == 2
    assert len(data["trackeval"]["HOTA"]["HOTA"]) == 19  # per alpha, TrackEval's names
    assert main(["eval", str(pred), str(gt), "--protocol", "motchallenge"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:5] == ["video", "gt", "pred", "HOTA", "DetA"]
    assert "9 predicted boxes removed as matches of distractor classes" in out

    davis_like = [Tubelet(**{**t.__dict__, "source": "import:davis", "extra": {}}) for t in task.tubelets]
    other = _dataset(tmp_path / "davis", task, davis_like)
    assert main(["eval", str(pred), str(other), "--protocol", "motchallenge"]) == 2
    err = capsys.readouterr().err
    assert "lack what it needs" in err and "import a MOT gt.txt" in err


def test_frames_a_reviewer_added_take_the_tracks_class_and_flag(sequence: dict) -> None:
    rows = sequence["gt"].to_pylist()
    for r in rows:  # review.retrack aligns the lists with None on frames the gt.txt lacked
        if r["track_id"] in ("1", "5"):
            extra = json.loads(r["extra"])
            extra["mot_classes"][0] = extra["consider"][0] = None
            r["extra"] = json.dumps(extra)
    pred = records_to_table("tubelets", predictions())
    reviewed = evaluate(pred, rows_to_table("tubelets", rows), gt_videos=sequence["videos"], protocol="motchallenge")
    plain = evaluate(pred, sequence["gt"], gt_videos=sequence["videos"], protocol="motchallenge")
    assert reviewed.trackeval == plain.trackeval  # pedestrian 1 stays scored, the car stays a car
