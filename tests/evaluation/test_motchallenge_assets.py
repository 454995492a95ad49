"""``tubelet eval --protocol motchallenge`` on MOT17-mini equals TrackEval's MOT17
evaluation of the same files (needs ../shared/assets; skipped when absent).

(a) the lite profile's tracks (YOLOv8n int8 on every frame, as docs/benchmarks.md's
MOT17-mini run) and (b) the ground truth against itself, both against the ground truth
imported from the sequences' gt.txt. TrackEval reads the assets' gt.txt as it is, with a
seqinfo.ini whose seqLength is the frames the cut sequence has (see
``trackeval_reference``), and a tracker file written from the predicted tubelets.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.evaluation.trackeval_reference import assert_same, trackeval_mot17
from tubelet.annotators.importers.mot import mot_sequence_entries
from tubelet.cli.main import main
from tubelet.engine.config import RunConfig
from tubelet.engine.dataset import Dataset
from tubelet.pipelines import run_manifest

pytest.importorskip("trackeval")
pytest.importorskip("motmetrics")

YOLO = Path("models") / "yolov8n-int8-tflite" / "yolov8n_int8.tflite"
#: The lite profile as docs/benchmarks.md ran it on MOT17-mini: every frame a keyframe.
LITE = {"classes": ["person"], "keyframe_fps": 30, "association": {"min_length": 1}}


def _run(out: Path, pipeline: str, entries: list[dict], params: dict) -> Path:
    config = RunConfig(pipeline=pipeline, output=str(out), runner="inline", videos=entries, params=params)
    summary = run_manifest(config, progress=False, log_to_stderr=False)
    assert (summary.done, summary.failed) == (len(entries), 0)
    return out


@pytest.fixture(scope="module")
def mot17(assets: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """MOT17-mini imported as ground truth, and tracked by the lite profile."""
    pytest.importorskip("ultralytics")
    pytest.importorskip("ai_edge_litert")
    train = assets / "mot17-mini" / "train"
    entries = mot_sequence_entries(train)
    root = tmp_path_factory.mktemp("mot17-protocol")
    gt = _run(root / "gt", "import", entries, {})
    bare = [{k: v for k, v in e.items() if k != "annotations"} for e in entries]
    pred = _run(root / "pred", "track", bare, {"profile": "lite", "weights": str(assets / YOLO), **LITE})
    n_frames = {v["video_id"]: v["n_frames"] for v in Dataset(gt).read_table("videos").to_pylist()}
    sequences = {s: (train / s / "gt" / "gt.txt", n, train / s / "seqinfo.ini") for s, n in n_frames.items()}
    return {"gt": gt, "pred": pred, "sequences": sequences, "root": root}


def _eval(pred: Path, gt: Path, capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    capsys.readouterr()  # drop what came before (TrackEval prints its progress)
    assert main(["eval", str(pred), str(gt), "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.assets
@pytest.mark.parametrize("side", ["lite tracks", "ground truth"])
def test_mot17_mini_equals_trackeval(mot17: dict, side: str, capsys: pytest.CaptureFixture[str]) -> None:
    pred = mot17["pred"] if side == "lite tracks" else mot17["gt"]
    report = _eval(pred, mot17["gt"], capsys, "--protocol", "motchallenge")
    tubelets = Dataset(pred).read_table("tubelets")
    reference = trackeval_mot17(mot17["root"] / "trackeval", mot17["sequences"], tubelets)

    assert [v["video_id"] for v in report["videos"]] == sorted(mot17["sequences"]) and len(report["videos"]) == 7
    for video in report["videos"]:
        assert_same(video["trackeval"], reference[video["video_id"]], video["video_id"])
    combined = reference["COMBINED_SEQ"]
    assert_same(report["trackeval"], combined, "combined")
    o = report["overall"]
    official = {
        "mota": combined["CLEAR"]["MOTA"],
        "idf1": combined["Identity"]["IDF1"],
        **{k.lower(): float(np.mean(combined["HOTA"][k])) for k in ("HOTA", "DetA", "AssA", "LocA")},
    }
    for key, value in official.items():
        assert round(o[key], 3) == round(value, 3), key  # the printed table's 3 decimals
    assert (o["id_switches"], o["false_positives"], o["misses"], o["true_positives"]) == tuple(
        combined["CLEAR"][k] for k in ("IDSW", "CLR_FP", "CLR_FN", "CLR_TP")
    )
    assert o["gt_boxes"] == o["true_positives"] + o["misses"]

    default = _eval(pred, mot17["gt"], capsys)["overall"]  # the default protocol, for contrast
    if side == "ground truth":
        assert default["mota"] == 1.0 and default["hota"] == pytest.approx(1.0)
        assert o["mota"] < 0.5 and o["false_positives"] > 0  # cars, occluders… count as official false positives
    else:
        assert default["hota"] > 0 and default["mota"] != pytest.approx(o["mota"], abs=1e-3)
