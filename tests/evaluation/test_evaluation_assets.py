"""`tubelet eval` on real ground truth: imported DAVIS-2016 masks and MOT17-mini boxes
(needs ../shared/assets; skipped when absent)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tubelet.cli.main import main
from tubelet.schemas.arrow import rows_to_table
from tubelet.schemas.geometry import box_iou

pytest.importorskip("motmetrics")

ROOT = Path(__file__).resolve().parents[2]
ALL_ONE = ("j", "f", "jf", "box_iou", "tiou", "viou", "viou@0.5", "box_recall", "mota", "idf1", "precision", "recall")


@pytest.fixture(scope="module")
def imported(assets: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The DAVIS and MOT import manifests run inline into temporary datasets."""
    from tubelet.engine.manifest import expand_videos, load_manifest
    from tubelet.pipelines import run_manifest

    out = {}
    for name in ("davis", "mot17"):
        root = tmp_path_factory.mktemp(name)
        config = load_manifest(ROOT / "manifests" / f"{name}-import.yaml", [f"output={root}", "runner=inline"])
        tasks, rejects = expand_videos(config)
        if rejects or not all(Path(t.uri).exists() for t in tasks):
            pytest.skip("the manifests' video lists point at ../shared/assets, which is not here")
        summary = run_manifest(config, progress=False, log_to_stderr=False)
        assert summary.failed == 0
        out[name] = root
    return out


def _tables(root: Path) -> tuple[pa.Table, pa.Table]:
    from tubelet.engine.dataset import Dataset

    ds = Dataset(root)
    return ds.read_table("tubelets"), ds.read_table("videos")


@pytest.mark.assets
def test_davis_against_itself(imported: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    root = str(imported["davis"])
    assert main(["eval", root, root, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["videos"]) == 8 and report["overall"]["n_matched"] == 8
    for video in report["videos"] + [report]:
        metrics = video.get("metrics", report["overall"])
        for key in ALL_ONE:
            assert metrics[key] == pytest.approx(1.0), (video.get("video_id"), key)
    assert report["overall"]["id_switches"] == 0


@pytest.mark.assets
def test_davis_first_half_only(imported: dict[str, Path]) -> None:
    from tubelet.evaluation import evaluate

    gt, videos = _tables(imported["davis"])
    rows = gt.to_pylist()
    kept = {}
    for row in rows:
        n = len(row["frames"])
        row["frames"] = row["frames"][: n // 2]
        kept[row["video_id"]] = (n // 2) / n
    report = evaluate(rows_to_table("tubelets", rows), gt, gt_videos=videos)
    for video in report.videos:
        (obj,) = video.objects
        share = kept[video.video_id]
        # every DAVIS-2016 frame shows the object, so every lost frame costs equally
        assert obj.tiou == pytest.approx(share) and obj.viou == pytest.approx(share)
        assert obj.box_iou == pytest.approx(share) and obj.j == pytest.approx(share)
        assert obj.f == pytest.approx(share)  # F = 0 on a frame with an empty prediction


@pytest.mark.assets
def test_mot17_against_itself(imported: dict[str, Path]) -> None:
    from tubelet.evaluation import evaluate

    gt, videos = _tables(imported["mot17"])
    report = evaluate(gt, gt, gt_videos=videos)
    o = report.overall
    for key in ALL_ONE:
        if key in ("j", "f", "jf"):
            assert o[key] is None  # box-only ground truth
        else:
            assert o[key] == pytest.approx(1.0), key
    rows = gt.to_pylist()
    pedestrians = [r for r in rows if any(json.loads(r["extra"])["consider"])]  # MOT's consider flag
    assert o["n_gt"] == len(pedestrians) and o["ignored_gt"] == len(rows) - len(pedestrians) > 0
    never_visible = sum(1 for r in pedestrians if not any(f["visible"] for f in r["frames"]))
    assert o["n_matched"] == o["n_gt"] - never_visible  # nothing to match a never-visible object by
    assert o["gt_boxes"] == sum(f["visible"] for r in pedestrians for f in r["frames"])
    assert o["false_positives"] == 0  # predictions on occluders and cars are don't-cares


@pytest.mark.assets
def test_mot17_swapped_ids(imported: dict[str, Path]) -> None:
    from tubelet.evaluation import evaluate

    gt, videos = _tables(imported["mot17"])
    rows = [r for r in gt.to_pylist() if r["video_id"] == "MOT17-04-FRCNN"]
    n = 8
    full = [
        r
        for r in rows
        if len(r["frames"]) == n and all(f["visible"] for f in r["frames"]) and all(json.loads(r["extra"])["consider"])
    ]
    # two objects seen on every frame whose boxes never overlap, so only identity can go wrong
    a, b = next(
        (a, b)
        for i, a in enumerate(full)
        for b in full[i + 1 :]
        if all(box_iou(fa["box_xyxy"], fb["box_xyxy"]) == 0 for fa, fb in zip(a["frames"], b["frames"]))
    )
    a["frames"], b["frames"] = (
        a["frames"][: n // 2] + b["frames"][n // 2 :],
        b["frames"][: n // 2] + a["frames"][n // 2 :],
    )
    report = evaluate(rows_to_table("tubelets", rows), gt, gt_videos=videos, videos=["MOT17-04-FRCNN"])
    o = report.overall
    assert o["id_switches"] == 2 and o["idf1"] < 1.0
    assert o["mota"] == pytest.approx(1 - 2 / o["gt_boxes"]) and o["box_recall"] == 1.0
    assert np.isclose(o["idf1"], 1 - n / o["gt_boxes"])  # each swapped id is right half its 8 frames
