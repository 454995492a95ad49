"""`tubelet eval`: metrics of a prediction against ground truth, on hand-built tables.

The synthetic video has two objects that never overlap, so each planted perturbation
changes a known set of metrics by an amount worked out by hand in the test.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest

from tubelet.cli.main import main
from tubelet.engine.task import VideoTask
from tubelet.engine.writer import ShardWriter
from tubelet.evaluation import contour_accuracy, evaluate, region_similarity
from tubelet.evaluation.davis import bound_pixels, boundary_precision_recall, dilate, disk, seg2bmap
from tubelet.schemas import Tubelet, TubeletFrame, VideoRecord
from tubelet.schemas.arrow import records_to_table
from tubelet.schemas.info import DatasetInfo, write_info
from tubelet.schemas.rle import encode_mask

pytest.importorskip("scipy")  # J/F and the matching; the identity metrics also need motmetrics

W, H, N, FPS = 100, 80, 20, 10.0
# r = ceil(0.008 * hypot(100, 80)) = ceil(1.02) = 2 pixels of boundary tolerance


def box_a(i: int) -> list[float]:
    return [5.0 + i, 10.0, 35.0 + i, 50.0]  # 30 x 40, moves right; x stays below 55


def box_b(i: int) -> list[float]:
    return [60.0, 5.0 + i, 90.0, 45.0 + i]  # 30 x 40, moves down; x stays above 60


def rect_mask(box: list[float], erode: int = 0) -> dict:
    m = np.zeros((H, W), dtype=np.uint8)
    x1, y1, x2, y2 = (int(v) for v in box)
    m[y1 + erode : y2 - erode, x1 + erode : x2 - erode] = 1
    return encode_mask(m)


def track(
    track_id: str,
    boxes: dict[int, list[float]],
    *,
    masks: bool = True,
    erode: int = 0,
    video_id: str = "v",
    shift: float = 0.0,
) -> Tubelet:
    frames = [
        TubeletFrame(
            frame_idx=i,
            t_s=i / FPS,
            box_xyxy=[box[0] + shift, box[1], box[2] + shift, box[3]],
            mask_rle=rect_mask(box, erode) if masks else None,
            score=0.9,
        )
        for i, box in sorted(boxes.items())
    ]
    return Tubelet(
        tubelet_id=f"{video_id}:t:{track_id}",
        video_id=video_id,
        category="thing",
        source="test",
        track_id=track_id,
        fps=FPS,
        width=W,
        height=H,
        frames=frames,
    )


def gt_tracks(masks: bool = True) -> list[Tubelet]:
    return [
        track("a", {i: box_a(i) for i in range(N)}, masks=masks),
        track("b", {i: box_b(i) for i in range(N)}, masks=masks),
    ]


def videos_table(ids: tuple[str, ...] = ("v",)):
    return records_to_table(
        "videos",
        [
            VideoRecord(
                video_id=v, uri=f"/videos/{v}", fps=FPS, n_frames=N, duration_s=N / FPS, width=W, height=H, codec="jpeg"
            )
            for v in ids
        ],
    )


def run_eval(pred: list[Tubelet], gt: list[Tubelet], **kwargs):
    pytest.importorskip("motmetrics")
    return evaluate(
        records_to_table("tubelets", pred), records_to_table("tubelets", gt), gt_videos=videos_table(), **kwargs
    )


def objects(report) -> dict[str, dict]:
    return {o.gt_tubelet_id.rsplit(":", 1)[-1]: o.__dict__ for v in report.videos for o in v.objects}


# ------------------------------------------------------------------ DAVIS J and F


def rect(shape: tuple[int, int], rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    m[rows[0] : rows[1], cols[0] : cols[1]] = True
    return m


def test_boundary_of_a_rectangle_has_2_h_plus_w_pixels() -> None:
    # seg2bmap marks the last row/column inside and the row/column before the first outside
    b = seg2bmap(rect((20, 20), (4, 12), (5, 11)))
    assert b.sum() == 2 * (8 + 6)
    assert b[4:12, 10].all() and b[3, 4:11].all() and not b[5:11, 5:10].any()


def test_disk_and_tolerance_follow_the_davis_toolkit() -> None:
    assert disk(1).sum() == 5 and disk(2).sum() == 13 and disk(8).shape == (17, 17)
    assert bound_pixels((480, 854)) == 8  # ceil(0.008 * 979.7)
    assert bound_pixels((80, 100)) == 2 and bound_pixels((64, 64)) == 1
    assert bound_pixels((64, 64), bound_th=3) == 3  # >= 1: pixels, as in DAVIS


def test_f_measure_matches_hand_computed_values() -> None:
    shape = (64, 64)  # tolerance 1 pixel
    square1 = rect(shape, (4, 12), (4, 12))  # 32 boundary pixels
    square2 = rect(shape, (40, 48), (40, 48))  # 32, far from square1
    far = rect(shape, (20, 24), (50, 56))  # 4 x 6: 20 boundary pixels, far from both
    # pred finds one of two GT squares: P = 32/32, R = 32/64 -> F = 2/3
    assert boundary_precision_recall(square1, square1 | square2) == (1.0, 0.5)
    assert contour_accuracy(square1, square1 | square2) == pytest.approx(2 / 3)
    # pred adds a far blob: P = 32/52, R = 1 -> F = 2P/(P+1) = 64/84
    p, r = boundary_precision_recall(square1 | far, square1)
    assert (p, r) == (pytest.approx(32 / 52), 1.0)
    assert contour_accuracy(square1 | far, square1) == pytest.approx(64 / 84)
    # nothing in common: 0; DAVIS conventions for empty masks
    assert contour_accuracy(square2, square1) == 0.0
    empty = np.zeros(shape, dtype=bool)
    assert contour_accuracy(empty, empty) == 1.0 and contour_accuracy(empty, square1) == 0.0
    assert region_similarity(empty, empty) == 1.0
    assert region_similarity(square1, square1 | square2) == pytest.approx(0.5)


def test_f_tolerance_is_a_dilation_by_the_bound() -> None:
    shape = (80, 100)  # tolerance 2 pixels
    gt = rect(shape, (10, 50), (20, 50))
    assert contour_accuracy(rect(shape, (10, 50), (22, 52)), gt) == 1.0  # shifted by 2: within
    shifted3 = contour_accuracy(rect(shape, (10, 50), (23, 53)), gt)
    assert 0 < shifted3 < 1  # left/right sides now miss; top/bottom rows still match
    assert contour_accuracy(rect(shape, (13, 47), (23, 47)), gt) == 0.0  # eroded by 3


def test_opencv_and_scipy_dilation_agree() -> None:
    pytest.importorskip("cv2")
    from scipy import ndimage

    rng = np.random.default_rng(0)
    mask = rng.random((50, 70)) > 0.97
    for r in (1, 2, 5):
        assert np.array_equal(dilate(mask, disk(r)), ndimage.binary_dilation(mask, structure=disk(r)))


# ------------------------------------------------------------ whole evaluation


def test_ground_truth_against_itself_scores_one() -> None:
    report = run_eval(gt_tracks(), gt_tracks())
    o = report.overall
    for key in (
        "j",
        "f",
        "jf",
        "box_iou",
        "tiou",
        "viou",
        "viou@0.3",
        "viou@0.5",
        "box_recall",
        "mota",
        "idf1",
        "precision",
        "recall",
        "hota",
        "deta",
        "assa",
        "loca",
    ):
        assert o[key] == pytest.approx(1.0), key
    assert (o["id_switches"], o["false_positives"], o["misses"], o["gt_boxes"]) == (0, 0, 0, 2 * N)
    assert o["hota_similarity"] == "mask" and report.trackeval["HOTA"]["HOTA_TP"] == [2 * N] * 19
    assert (o["n_gt"], o["n_pred"], o["n_matched"]) == (2, 2, 2)
    assert [v.video_id for v in report.videos] == ["v"]


def test_box_only_ground_truth_has_no_j_and_f() -> None:
    report = run_eval(gt_tracks(masks=False), gt_tracks(masks=False))
    assert report.overall["jf"] is None and report.overall["j"] is None
    assert report.overall["box_iou"] == 1.0 and report.overall["idf1"] == 1.0


def test_shifted_boxes_lower_box_metrics_only() -> None:
    k = 3
    pred = [track("a", {i: box_a(i) for i in range(N)}, shift=k), gt_tracks()[1]]
    report = run_eval(pred, gt_tracks())
    a, b = objects(report)["a"], objects(report)["b"]
    expected = (30 - k) / (30 + k)  # same height, overlap 30-k of a 30+k wide union
    assert a["box_iou"] == pytest.approx(expected) and a["viou"] == pytest.approx(expected)
    assert a["tiou"] == 1.0 and a["j"] == 1.0 and a["f"] == 1.0  # masks untouched
    assert b["box_iou"] == 1.0
    assert report.overall["box_iou"] == pytest.approx((expected + 1) / 2)
    assert report.overall["mota"] == 1.0 and report.overall["idf1"] == 1.0  # IoU 0.82 still matches
    # a stricter threshold than 27/33 turns every shifted box into a miss and a false positive
    strict = run_eval(pred, gt_tracks(), iou=0.9)
    assert strict.overall["box_recall"] == pytest.approx(0.5)
    assert strict.overall["mota"] == pytest.approx(1 - (N + N) / (2 * N))
    assert strict.overall["false_positives"] == N and strict.overall["misses"] == N


def test_eroded_masks_lower_j_and_f_beyond_the_tolerance() -> None:
    for erode, f_expected in ((1, 1.0), (3, 0.0)):  # boundary tolerance is 2 pixels here
        pred = [track("a", {i: box_a(i) for i in range(N)}, erode=erode), gt_tracks()[1]]
        a = objects(run_eval(pred, gt_tracks()))["a"]
        j_expected = (30 - 2 * erode) * (40 - 2 * erode) / (30 * 40)
        assert a["j"] == pytest.approx(j_expected)
        assert a["f"] == pytest.approx(f_expected)
        assert a["jf"] == pytest.approx((j_expected + f_expected) / 2)
        assert a["box_iou"] == 1.0 and a["viou"] == 1.0 and a["tiou"] == 1.0  # boxes untouched


def test_hota_uses_mask_iou_when_every_track_has_masks() -> None:
    erode = 1
    iou = (30 - 2 * erode) * (40 - 2 * erode) / (30 * 40)  # 0.887: below the top two alphas 0.9, 0.95
    pred = [track("a", {i: box_a(i) for i in range(N)}, erode=erode), gt_tracks()[1]]
    o = run_eval(pred, gt_tracks()).overall
    assert o["hota_similarity"] == "mask"
    alphas = np.arange(0.05, 0.99, 0.05)
    # per alpha, the eroded track is a hit while its IoU reaches alpha; LocA is the mean IoU of the hits
    deta = np.where(alphas <= iou, 1.0, N / (N + 2 * N))  # above: a's N boxes are misses and false positives
    loca = np.where(alphas <= iou, (iou + 1) / 2, 1.0)
    assert o["deta"] == pytest.approx(deta.mean()) and o["loca"] == pytest.approx(loca.mean())
    box_only = run_eval([pred[0], track("b", {i: box_b(i) for i in range(N)}, masks=False)], gt_tracks()).overall
    assert box_only["hota_similarity"] == "box" and box_only["loca"] == pytest.approx(1.0)  # boxes untouched


def test_half_length_prediction_halves_the_time_metrics() -> None:
    pred = [track("a", {i: box_a(i) for i in range(N // 2)}), gt_tracks()[1]]
    report = run_eval(pred, gt_tracks())
    a = objects(report)["a"]
    assert a["tiou"] == 0.5 and a["viou"] == 0.5 and a["box_iou"] == 0.5
    # dropped frames are empty predictions: J = 0 and F = 0 (recall 0) there
    assert a["j"] == 0.5 and a["f"] == 0.5
    assert report.overall["box_recall"] == pytest.approx(30 / 40)
    assert report.overall["mota"] == pytest.approx(1 - 10 / 40) and report.overall["misses"] == 10
    assert report.overall["id_switches"] == 0


def test_swapped_ids_halfway_are_two_switches() -> None:
    half = N // 2
    pred = [
        track("x", {i: box_a(i) if i < half else box_b(i) for i in range(N)}),
        track("y", {i: box_b(i) if i < half else box_a(i) for i in range(N)}),
    ]
    report = run_eval(pred, gt_tracks())
    o = report.overall
    assert o["id_switches"] == 2
    assert o["mota"] == pytest.approx(1 - 2 / (2 * N))  # boxes all right: only the 2 switches count
    assert o["idf1"] == pytest.approx(0.5)  # each id holds its object half the time
    # HOTA: every box found (DetA 1); each true positive's ids share 10 of the 20 + 20
    # frames they span, so its association score is 10 / (20 + 20 - 10) = 1/3
    assert o["deta"] == pytest.approx(1.0) and o["assa"] == pytest.approx(1 / 3)
    assert o["hota"] == pytest.approx(math.sqrt(1 / 3))
    assert o["box_recall"] == 1.0 and o["recall"] == 1.0 and o["precision"] == 1.0
    a = objects(report)["a"]
    assert a["tiou"] == 1.0 and a["viou"] == pytest.approx(0.5)  # the matched track is right half the time


def test_missing_track_is_a_miss_and_extra_track_a_false_positive() -> None:
    report = run_eval([gt_tracks()[0]], gt_tracks())
    b = objects(report)["b"]
    assert b["pred_tubelet_id"] is None and b["tiou"] == 0.0 and b["viou"] == 0.0
    assert b["j"] == 0.0 and b["f"] == 0.0 and b["box_iou"] == 0.0
    assert report.overall["jf"] == pytest.approx(0.5) and report.overall["n_matched"] == 1
    assert report.overall["mota"] == pytest.approx(0.5) and report.overall["misses"] == N

    extra = track("z", {i: [40.0, 60.0, 55.0, 75.0] for i in range(N)})  # overlaps no object
    report = run_eval(gt_tracks() + [extra], gt_tracks())
    assert report.overall["jf"] == 1.0 and report.overall["box_recall"] == 1.0
    assert report.overall["false_positives"] == N
    assert report.overall["mota"] == pytest.approx(0.5) and report.overall["precision"] == pytest.approx(2 / 3)


def test_occlusion_gap_inside_a_span_keeps_self_viou_one() -> None:
    gap = gt_tracks()
    gap[0].frames[5] = TubeletFrame(frame_idx=5, t_s=0.5, box_xyxy=box_a(4), visible=False)
    report = run_eval(copy.deepcopy(gap), gap)
    a = objects(report)["a"]
    assert a["viou"] == 1.0 and a["tiou"] == 1.0 and a["j"] == 1.0 and a["box_iou"] == 1.0
    # the prediction that does see the object there is wrong on that frame
    a = objects(run_eval(gt_tracks(), gap))["a"]
    assert a["viou"] == pytest.approx((N - 1) / N) and a["box_iou"] == 1.0
    assert a["j"] == pytest.approx((N - 1) / N)


def test_ignored_ground_truth_is_a_dont_care_region() -> None:
    # MOT stores "consider" per frame; an occluder/car track is all false
    occluder = track("o", {i: [40.0, 60.0, 55.0, 75.0] for i in range(N)}, masks=False)
    occluder.extra = {"mot_class": 10, "consider": [False] * N}
    gt = gt_tracks() + [occluder]
    for pred in (gt, gt_tracks()):  # a prediction on it is no false positive; none is no miss
        report = run_eval(copy.deepcopy(pred), gt)
        o = report.overall
        assert (o["n_gt"], o["ignored_gt"], o["gt_boxes"]) == (2, 1, 2 * N)
        assert o["mota"] == 1.0 and o["precision"] == 1.0 and o["box_recall"] == 1.0 and o["jf"] == 1.0
        assert set(objects(report)) == {"a", "b"}
    # the same prediction against the track made considered: now it is an object
    counted = copy.deepcopy(gt)
    counted[2].extra = {"mot_class": 1, "consider": [True] * N}
    assert run_eval(gt_tracks(), counted).overall["misses"] == N


def test_video_filter_and_unknown_video() -> None:
    other = [track("a", {i: box_a(i) for i in range(N)}, video_id="w")]
    pred = records_to_table("tubelets", gt_tracks() + other)
    gt = records_to_table("tubelets", gt_tracks() + other)
    pytest.importorskip("motmetrics")
    report = evaluate(pred, gt, videos=["w"])
    assert [v.video_id for v in report.videos] == ["w"] and report.overall["n_gt"] == 1
    with pytest.raises(ValueError, match="not in the ground truth: nope"):
        evaluate(pred, gt, videos=["nope"])
    report = evaluate(pred, records_to_table("tubelets", gt_tracks()))
    assert report.pred_only_videos == ["w"] and [v.video_id for v in report.videos] == ["v"]


# ------------------------------------------------------------------------ CLI


def write_dataset(root: Path, tubelets: list[Tubelet]) -> Path:
    pytest.importorskip("motmetrics")  # every CLI test evaluates
    task = VideoTask(video_id="v", uri="/videos/v", source="test")
    task.video = VideoRecord(
        video_id="v", uri="/videos/v", fps=FPS, n_frames=N, duration_s=N / FPS, width=W, height=H, codec="jpeg"
    )
    task.tubelets = tubelets
    with ShardWriter(root, shard_size=1, run_id="20250101T000000Z-evalt0") as writer:
        writer.add(task)
    write_info(root / "meta" / "info.json", DatasetInfo(pipeline="test", config_hash="0" * 16))
    return root


def test_cli_json_and_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt = write_dataset(tmp_path / "gt", gt_tracks())
    pred = write_dataset(tmp_path / "pred", [track("a", {i: box_a(i) for i in range(N // 2)}), gt_tracks()[1]])
    assert main(["eval", str(pred), str(gt), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["overall"]["tiou"] == pytest.approx(0.75) and data["iou"] == 0.5
    (video,) = data["videos"]
    assert video["video_id"] == "v" and video["n_matched"] == 2
    assert {o["gt_tubelet_id"]: o["tiou"] for o in video["objects"]} == {"v:t:a": 0.5, "v:t:b": 1.0}
    assert all(v is None or not isinstance(v, float) or math.isfinite(v) for v in data["overall"].values())

    assert main(["eval", str(pred), str(gt), "--iou", "0.3", "--videos", "v"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:5] == ["video", "gt", "pred", "match", "J"]
    assert any(line.startswith("OVERALL") for line in out.splitlines()) and "IoU threshold 0.3" in out


def test_cli_unreadable_inputs_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt = write_dataset(tmp_path / "gt", gt_tracks())
    assert main(["eval", str(tmp_path / "missing"), str(gt)]) == 2
    assert "no dataset at" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()  # a folder without meta/info.json
    assert main(["eval", str(broken), str(gt)]) == 2
    assert "cannot read the dataset" in capsys.readouterr().err
    assert main(["eval", str(gt), str(gt), "--videos", "nope"]) == 2
    assert "not in the ground truth" in capsys.readouterr().err
    assert main(["eval", str(gt), str(gt), "--iou", "0"]) == 2


def test_matching_is_global_not_greedy() -> None:
    from tubelet.evaluation.matching import match_tracks, similarity_matrix
    from tubelet.evaluation.tracks import tracks_by_video

    def boxes(x1: float, x2: float) -> dict[int, list[float]]:
        return {0: [x1, 0.0, x2, 10.0]}  # one frame, all 10 high: IoU is overlap/union in x

    gts = [track("a", boxes(0, 10), masks=False), track("b", boxes(6, 16), masks=False)]
    preds = [track("p1", boxes(2, 12), masks=False), track("p2", boxes(0, 6), masks=False)]
    tp = tracks_by_video(records_to_table("tubelets", preds))["v"]
    tg = tracks_by_video(records_to_table("tubelets", gts))["v"]
    sim = similarity_matrix(tp, tg, [0])
    np.testing.assert_allclose(sim, [[8 / 12, 6 / 14], [6 / 10, 0.0]])
    # best pair first (p1-a) would leave p2 with nothing; Hungarian takes p1-b + p2-a
    pairs = {(tp[m.pred].tubelet_id, tg[m.gt].tubelet_id) for m in match_tracks(tp, tg, [0])}
    assert pairs == {("v:t:p1", "v:t:b"), ("v:t:p2", "v:t:a")}
