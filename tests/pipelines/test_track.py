"""The track pipeline, lite profile, end to end on the bundled sample, scored by eval.

The sample has three objects with known masks: one enters at frame 27, two cross, one
leaves (frames 44–50) and comes back. The lite profile (motion detection + optical flow
with GrabCut) must find all three with stable ids, and `tubelet eval` against the
imported ground truth gives the figures asserted here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tubelet.cli.sample import SampleInfo
from tubelet.engine.config import RunConfig
from tubelet.engine.dataset import Dataset
from tubelet.engine.validate import validate_dataset
from tubelet.evaluation.report import evaluate_datasets
from tubelet.pipelines import run_manifest


def _run(tmp: Path, video: Path, pipeline: str, out: str, runner: str, **extra: object) -> None:
    entry = {"uri": str(video), "video_id": "scene", **extra}
    config = RunConfig(
        pipeline=pipeline,
        output=str(tmp / out),
        runner=runner,
        videos=[entry],
        params={"profile": "lite", "keyframe_fps": 4} if pipeline == "track" else {},
        ray={"num_cpus": 2},
    )
    summary = run_manifest(config, progress=False, log_to_stderr=False)
    assert (summary.done, summary.failed) == (1, 0)


@pytest.mark.ray
def test_lite_track_finds_enters_and_reidentifies_the_sample_objects(
    tmp_path: Path, synthetic_sample: SampleInfo
) -> None:
    masks = {"format": "davis", "path": str(synthetic_sample.masks_dir)}
    _run(tmp_path, synthetic_sample.video, "import", "gt", "inline", annotations=masks)
    _run(tmp_path, synthetic_sample.video, "track", "pred", "ray")

    assert validate_dataset(tmp_path / "pred").ok
    con = Dataset(tmp_path / "pred").connect()
    rows = con.execute("SELECT start_frame, n_visible, source FROM tubelets ORDER BY start_frame DESC").fetchall()
    assert len(rows) == 3
    late_start, _, source = rows[0]
    assert 24 <= late_start <= 28  # the red square enters at frame 27
    assert source == "motion-mog2+flow"

    overall = evaluate_datasets(tmp_path / "pred", tmp_path / "gt").to_dict()["overall"]
    assert overall["n_matched"] == 3 and overall["id_switches"] == 0
    assert overall["jf"] >= 0.85  # measured 0.94
    assert overall["tiou"] >= 0.95  # the triangle's return keeps its id and its span
    assert overall["idf1"] >= 0.9


@pytest.mark.slow
def test_full_profile_sam2_path_runs_end_to_end_with_random_weights(
    tmp_path: Path, synthetic_sample: SampleInfo
) -> None:
    """SAM 2.1-tiny built from the packaged config with random weights at image size 256:
    the masks mean nothing, but every piece of the full path runs and writes valid rows."""
    params = {
        "profile": "full",
        "detector": "motion",  # YOLO random weights would find nothing to track
        "keyframe_fps": 1,
        "track_fps": 2,  # few frames: random weights make every object a new one to chase both ways
        "tracker_options": {"image_size": 256, "max_window": 16},
    }
    entry = {"uri": str(synthetic_sample.video), "video_id": "scene"}
    config = RunConfig(pipeline="track", output=str(tmp_path / "pred"), runner="inline", videos=[entry], params=params)
    summary = run_manifest(config, progress=False, log_to_stderr=False)
    assert (summary.done, summary.failed) == (1, 0)

    report = validate_dataset(tmp_path / "pred", all_masks=True)  # masks decode at 640x360
    assert report.ok, report.summary()
    con = Dataset(tmp_path / "pred").connect()
    produced = con.execute("SELECT count(*) FROM tubelets").fetchone()[0]
    rejected = con.execute("SELECT count(*) FROM rejects WHERE stage = 'track_masklets'").fetchone()[0]
    assert produced + rejected >= 1  # the motion detector's objects reached the tracker
    sources = {s for (s,) in con.execute("SELECT DISTINCT source FROM tubelets").fetchall()}
    assert sources <= {"motion-mog2+sam2"}
    tracked = {
        f
        for (f,) in con.execute(
            "SELECT DISTINCT f.frame_idx FROM (SELECT unnest(frames) AS f FROM tubelets)"
        ).fetchall()
    }
    sampled = set(range(0, 72, 12))  # 2 of the sample's 24 fps
    assert tracked <= sampled | {k for k in range(72) if k % 24 == 0}  # tracked frames and keyframes only
    info = Dataset(tmp_path / "pred").info()
    assert "track_masklets" in info.model_ids


def test_yolo_keeps_weak_boxes_for_the_second_pass_and_open_vocabulary_does_not() -> None:
    """track's `conf: null` is per detector: YOLO keeps boxes down to association's
    weak_score (its second pass needs them), the open-vocabulary detector 0.25; a given
    `conf` wins for both."""
    from tubelet.annotators.tracking.association import AssociationConfig
    from tubelet.pipelines import build_pipeline

    def detector(params: dict) -> object:
        return build_pipeline("track", params).stages[1]

    assert detector({"weights": "yolov8n.pt"}).conf == AssociationConfig().weak_score == 0.1
    assert detector({"prompts": "dog."}).box_threshold == 0.25
    assert detector({"weights": "yolov8n.pt", "conf": 0.4}).conf == 0.4
    assert detector({"prompts": "dog.", "conf": 0.4}).box_threshold == 0.4
